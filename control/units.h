/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/units: the sizes and durations people type in settings and
 * commands (`memory=512M`, `timeout=15m`), as Heroku's and Docker's tools
 * take them: a whole number with an optional binary suffix (K, M, G, T;
 * "KB", "MiB" and friends too, all powers of 1024) or a time unit (s, m,
 * h; no unit means seconds), and CPU counts (`--cpus 0.5`).
 */
#ifndef BERTH_CONTROL_UNITS_H
#define BERTH_CONTROL_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* "512M" -> 536870912. false for anything else, zero and overflow included. */
bool units_parse_size(const char *s, uint64_t *ret);
/* "15m" -> 900, "90" -> 90. false for anything else, zero included. */
bool units_parse_duration(const char *s, unsigned *ret);

/*
 * A number of CPUs, "0.5", "1", "1.25" (at most three decimals), in
 * thousandths: "0.5" -> 500. false for anything else, zero included.
 */
bool units_parse_cpus(const char *s, uint64_t *ret_millis);
/* 536870912 -> "512M": the largest suffix that divides it, else bytes. */
void units_format_size(uint64_t bytes, char buf[32]);
/* 500 -> "0.5", 2000 -> "2". */
void units_format_cpus(uint64_t millis, char buf[32]);

#endif
