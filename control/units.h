/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/units: the sizes and durations people type in settings and
 * commands (`memory=512M`, `timeout=15m`), as Heroku's and Docker's tools
 * take them: a whole number with an optional binary suffix (K, M, G, T;
 * "KB", "MiB" and friends too, all powers of 1024) or a time unit (s, m,
 * h; no unit means seconds).
 */
#ifndef BERTH_CONTROL_UNITS_H
#define BERTH_CONTROL_UNITS_H

#include <stdbool.h>
#include <stdint.h>

/* "512M" -> 536870912. false for anything else, zero and overflow included. */
bool units_parse_size(const char *s, uint64_t *ret);
/* "15m" -> 900, "90" -> 90. false for anything else, zero included. */
bool units_parse_duration(const char *s, unsigned *ret);

#endif
