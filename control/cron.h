/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cron: cron schedule expressions, as app.json's "cron" entries
 * carry them (Dokku), the next minute one is due, and the entries of an
 * app.json, checked. No clock of its own and no state: the deploy reads a
 * new slug's entries with it, the scheduler (scheduler.c) asks it which
 * are due, the unit tests pin the rules down.
 *
 * The language is Vixie cron's five fields, all in UTC:
 *
 *     minute (0-59)  hour (0-23)  day-of-month (1-31)  month (1-12 or jan-dec)  day-of-week (0-7 or sun-sat; 7 is Sunday)
 *
 * Each field is '*' or a comma-separated list of N, N-M (M >= N), each
 * optionally followed by /STEP; '*'/STEP steps over the whole range and
 * N/STEP from N to its end. Names are case-insensitive and may bound a range ("mon-fri").
 * The macros @yearly (@annually), @monthly, @weekly, @daily (@midnight) and
 * @hourly stand for their usual five fields; @reboot and a sixth field
 * (seconds) are refused. Vixie's day rule: when both day-of-month and
 * day-of-week are restricted (neither field starts with '*'), a day
 * matches if EITHER matches ("0 0 1 * mon": the 1st and every Monday);
 * otherwise both must. A schedule no date can satisfy ("0 0 30 feb *") is
 * refused rather than accepted to never run.
 */
#ifndef BERTH_CONTROL_CRON_H
#define BERTH_CONTROL_CRON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/error.h"

/* Longer schedules are refused: no real one comes close. */
#define CRON_EXPR_MAX 256
/* An app.json may list at most this many jobs. */
#define CRON_JOBS_MAX 50
/* A job's command is at most this long. */
#define CRON_COMMAND_MAX 4096

struct cron_schedule {
    uint64_t minutes;             /* bit m: minute m, 0..59 */
    uint32_t hours;               /* bit h: 0..23 */
    uint32_t days;                /* bit d: day of month 1..31 */
    uint16_t months;              /* bit m: 1..12 */
    uint8_t weekdays;             /* bit d: 0 (Sunday)..6 */
    bool days_star;               /* the day-of-month field started with '*' (Vixie's rule) */
    bool weekdays_star;           /* likewise the day-of-week field */
};

/*
 * Parses `expr` into *ret. -EINVAL with a message naming the field and
 * what is wrong with it ("hour '25' is out of range 0-23"); *ret is
 * untouched then.
 */
int cron_parse(const char *expr, struct cron_schedule *ret, struct berth_error **err);
/* Whether the minute holding `t` (UTC) is one the schedule runs at. */
bool cron_matches(const struct cron_schedule *c, time_t t);
/*
 * The first minute strictly after `after` at which the schedule runs (the
 * start of that minute, UTC) into *ret. -ERANGE if there is none in the
 * next 28 years (a schedule cron_parse() accepted always has one).
 */
int cron_next(const struct cron_schedule *c, time_t after, time_t *ret);

/*
 * The "cron" entries of the app.json in app_dir (a slug's /app), checked,
 * as Dokku reads them ({"command", "schedule", "maintenance",
 * "concurrency_policy"}): *ret is a JSON array of {"id", "schedule",
 * "command"} (plus "maintenance": true for a suspended one), empty when
 * there is no app.json or no "cron". "id" (10 hex digits) is the same for
 * the same schedule and command in every release. A malformed entry (no
 * command, a schedule that does not parse, a concurrency_policy other than
 * "forbid", a repeated entry, ...) or file (not JSON, not a regular file)
 * fails with -EINVAL and a message naming it ("app.json: cron[1] (\"0 25
 * * * *\"): hour '25' is out of range 0-23"); *ret is untouched then.
 */
int cron_jobs_load(const char *app_dir, json_t **ret, struct berth_error **err);

#endif
