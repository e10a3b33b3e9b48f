/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for control/cron.c: the five fields with lists, ranges, steps
 * and names, the macros, the refusals (with the field named), and the next
 * run across hour, day, month and year ends, month lengths, leap years
 * (2100 is not one) and Vixie's day-of-month/day-of-week rule; app.json's
 * "cron" entries, read from a temporary directory, and every way one can
 * be wrong. Times are written as UTC "YYYY-MM-DDTHH:MM[:SS]".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "common/tests/tap.h"
#include "control/cron.h"

static time_t at(const char *iso)
{
    struct tm tm = { 0 };
    int n = sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec);

    if (n < 5)
        abort();
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

static const char *fmt(time_t t)
{
    static char buf[32];
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
}

/* Whether `expr`'s next run after `after` is `want`. */
static bool next_is(const char *expr, const char *after, const char *want)
{
    struct cron_schedule c;
    time_t t = 0;

    if (cron_parse(expr, &c, NULL) < 0) {
        printf("# '%s' did not parse\n", expr);
        return false;
    }
    if (cron_next(&c, at(after), &t) < 0 || t != at(want)) {
        printf("# '%s' after %s: got %s, want %s\n", expr, after, t ? fmt(t) : "none", want);
        return false;
    }
    return true;
}

/* Whether `expr` is refused with a message holding `why`. */
static bool refused(const char *expr, const char *why)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct cron_schedule c = { .minutes = 42 };
    int r = cron_parse(expr, &c, &err);

    if (r != -EINVAL || c.minutes != 42 || !strstr(berth_error_msg(&err), why)) {
        printf("# '%s': r=%d, message '%s', want it to hold '%s'\n", expr, r, r < 0 ? berth_error_msg(&err) : "",
               why);
        return false;
    }
    return true;
}

/* Field by field: the struct has padding, whose bytes no assignment promises (memcmp saw them differ under ASan). */
static bool same(const char *a, const char *b)
{
    struct cron_schedule x, y;

    return cron_parse(a, &x, NULL) == 0 && cron_parse(b, &y, NULL) == 0 && x.minutes == y.minutes &&
           x.hours == y.hours && x.days == y.days && x.months == y.months && x.weekdays == y.weekdays &&
           x.days_star == y.days_star && x.weekdays_star == y.weekdays_star;
}

static void test_fields(void)
{
    struct cron_schedule c;

    ok(cron_parse("* * * * *", &c, NULL) == 0 && c.minutes == (1ULL << 60) - 1 && c.hours == (1u << 24) - 1 &&
       c.days == 0xfffffffeu && c.months == 0x1ffe && c.weekdays == 0x7f, "'*' is every value of each field");
    ok(cron_parse("*/15 * * * *", &c, NULL) == 0 && c.minutes == (1ULL << 0 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45),
       "a step over the whole range");
    ok(cron_parse("10-20/5 * * * *", &c, NULL) == 0 && c.minutes == (1ULL << 10 | 1ULL << 15 | 1ULL << 20),
       "a step over a range");
    ok(cron_parse("50/4 * * * *", &c, NULL) == 0 && c.minutes == (1ULL << 50 | 1ULL << 54 | 1ULL << 58),
       "N/STEP runs from N to the field's end");
    ok(cron_parse("1,2,5-7,59 * * * *", &c, NULL) == 0 &&
       c.minutes == (1ULL << 1 | 1ULL << 2 | 1ULL << 5 | 1ULL << 6 | 1ULL << 7 | 1ULL << 59), "lists mix values and ranges");
    ok(cron_parse("0 0 1 jan-mar,DEC *", &c, NULL) == 0 && c.months == (1u << 1 | 1u << 2 | 1u << 3 | 1u << 12),
       "month names, any case, in ranges");
    ok(cron_parse("0 0 * * Mon-fri", &c, NULL) == 0 && c.weekdays == 0x3e, "weekday names in a range");
    ok(cron_parse("0 0 * * 7", &c, NULL) == 0 && c.weekdays == 1, "7 is Sunday");
    ok(cron_parse("0 0 * * 5-7", &c, NULL) == 0 && c.weekdays == (1u << 5 | 1u << 6 | 1u), "5-7 is Friday to Sunday");
    ok(cron_parse("0 0 * * */2", &c, NULL) == 0 && c.weekdays == (1u | 1u << 2 | 1u << 4 | 1u << 6),
       "a weekday step from Sunday");
    ok(cron_parse("  0\t0  * *   *  ", &c, NULL) == 0 && c.minutes == 1 && c.hours == 1,
       "blanks and tabs separate fields");
    ok(cron_parse("0 0 1 * *", &c, NULL) == 0 && !c.days_star && c.weekdays_star, "a restricted day-of-month");
    ok(cron_parse("0 0 */2 * mon", &c, NULL) == 0 && c.days_star && !c.weekdays_star,
       "a field starting with '*' counts as '*' for the day rule (Vixie)");
}

static void test_macros(void)
{
    ok(same("@yearly", "0 0 1 1 *") && same("@annually", "0 0 1 1 *"), "@yearly and @annually");
    ok(same("@monthly", "0 0 1 * *"), "@monthly");
    ok(same("@weekly", "0 0 * * 0"), "@weekly");
    ok(same("@daily", "0 0 * * *") && same("@midnight", "0 0 * * *"), "@daily and @midnight");
    ok(same("@hourly", "0 * * * *"), "@hourly");
    ok(same("@DAILY", "@daily") && same(" @hourly ", "@hourly"), "macros in any case, with blanks around");
}

static void test_refused(void)
{
    char longer[CRON_EXPR_MAX + 10];

    ok(refused("", "empty") && refused("   ", "empty"), "an empty schedule");
    ok(refused("* * * *", "has 4 fields"), "four fields");
    ok(refused("0 * * * * *", "seconds are not supported"), "six fields (seconds)");
    ok(refused("60 * * * *", "minute '60' is out of range 0-59"), "minute 60");
    ok(refused("* 24 * * *", "hour '24' is out of range 0-23"), "hour 24");
    ok(refused("* * 0 * *", "day-of-month '0' is out of range 1-31") &&
       refused("* * 32 * *", "day-of-month '32'"), "day-of-month 0 and 32");
    ok(refused("* * * 13 *", "month '13' is out of range 1-12") && refused("* * * 0 *", "month '0'"),
       "month 0 and 13");
    ok(refused("* * * * 8", "day-of-week '8' is out of range 0-7"), "weekday 8");
    ok(refused("5-2 * * * *", "minute '5-2' is a backward range") && refused("* * * * fri-mon", "backward"),
       "backward ranges");
    ok(refused("*/0 * * * *", "step out of range") && refused("*/60 * * * *", "step out of range 1-59"),
       "steps 0 and past the range");
    ok(refused("*/ * * * *", "needs a number after '/'"), "a step without a number");
    ok(refused("1,,2 * * * *", "empty list item") && refused("1, * * * *", "empty list item"), "empty list items");
    ok(refused("abc * * * *", "minute 'abc' is not a number") && refused("-1 * * * *", "minute '-1'"),
       "words and signs in a number field");
    ok(refused("mon * * * *", "minute 'mon'") && refused("* * * mon *", "month 'mon'") &&
       refused("* * * * jan", "day-of-week 'jan'"), "names only where they belong");
    ok(refused("* * * janu *", "month 'janu'") && refused("1- * * * *", "no valid end") &&
       refused("*5 * * * *", "minute '*5'") && refused("1000 * * * *", "minute '1000'"), "malformed values");
    ok(refused("@reboot", "not a known macro") && refused("@every 5m", "words after the macro") &&
       refused("@daily * * * * *", "words after the macro") && refused("@", "not a known macro"), "unknown macros");
    ok(refused("0 0 30 2 *", "never runs") && refused("0 0 31 apr,jun,sep,nov *", "never runs"),
       "a day no month has");
    memset(longer, '*', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ok(refused(longer, "longer than"), "a schedule past the length cap");
}

static void test_next(void)
{
    ok(next_is("* * * * *", "2026-12-01T12:00:30", "2026-12-01T12:01"), "every minute: the next boundary");
    ok(next_is("* * * * *", "2026-12-01T12:00:00", "2026-12-01T12:01"), "strictly after an exact minute");
    ok(next_is("*/5 * * * *", "2026-12-01T12:03", "2026-12-01T12:05") &&
       next_is("*/5 * * * *", "2026-12-01T12:55", "2026-12-01T13:00"), "every 5 minutes, across the hour");
    ok(next_is("30 2 * * *", "2026-12-01T02:30", "2026-12-02T02:30"), "daily at 02:30, from 02:30: tomorrow");
    ok(next_is("@daily", "2026-12-31T23:59:59", "2027-01-01T00:00"), "across the year end");
    ok(next_is("59 23 31 12 *", "2027-01-01T00:00", "2027-12-31T23:59"), "the last minute of the year");
    ok(next_is("0 0 31 * *", "2026-04-01T00:00", "2026-05-31T00:00"), "the 31st skips a 30-day month");
    ok(next_is("0 0 31 * *", "2026-07-31T00:00", "2026-08-31T00:00") &&
       next_is("0 0 31 * *", "2026-08-31T00:00", "2026-10-31T00:00"), "July and August both have a 31st");
    ok(next_is("0 0 30 * *", "2027-01-30T00:00", "2027-03-30T00:00"), "no 30 February");
    ok(next_is("0 0 29 2 *", "2026-03-01T00:00", "2028-02-29T00:00"), "29 February: the next leap year");
    ok(next_is("0 0 29 2 *", "2096-03-01T00:00", "2104-02-29T00:00"), "2100 is not a leap year");
    ok(next_is("0 0 29 2 *", "2000-01-01T00:00", "2000-02-29T00:00"), "2000 is one");
    ok(next_is("0 0 28-31 2 *", "2027-02-28T00:00", "2028-02-28T00:00") &&
       next_is("0 0 28-31 2 *", "2028-02-28T00:00", "2028-02-29T00:00"), "the end of February, leap or not");
    ok(next_is("@monthly", "2026-12-15T08:00", "2027-01-01T00:00"), "@monthly");
    ok(next_is("@yearly", "2026-06-01T00:00", "2027-01-01T00:00"), "@yearly");
    ok(next_is("@weekly", "2026-12-01T00:00", "2026-12-06T00:00"), "@weekly: Sunday midnight");
    ok(next_is("@hourly", "2026-12-01T23:00", "2026-12-02T00:00"), "@hourly across midnight");
    ok(next_is("0 12 * * 7", "2026-12-01T00:00", "2026-12-06T12:00"), "Sunday as 7");
    ok(next_is("0 0 * * mon", "2026-12-01T00:00", "2026-12-07T00:00"), "weekday only: Mondays");
    ok(next_is("0 0 1 * mon", "2026-11-30T12:00", "2026-12-01T00:00") &&
       next_is("0 0 1 * mon", "2026-12-01T00:00", "2026-12-07T00:00"),
       "day-of-month and weekday both restricted: either (the 1st, then a Monday)");
    ok(next_is("0 0 13 * fri", "2026-11-01T00:00", "2026-11-06T00:00") &&
       next_is("0 0 13 * fri", "2026-11-12T00:00", "2026-11-13T00:00"), "the 13th or a Friday");
    ok(next_is("0 0 1-7 * mon", "2026-12-07T00:00", "2026-12-14T00:00"), "the first week or a Monday");
    ok(next_is("0 0 */2 * mon", "2026-12-01T00:00", "2026-12-07T00:00") &&
       next_is("0 0 */2 * mon", "2026-12-07T00:00", "2026-12-21T00:00"),
       "a '*/2' day-of-month is '*' for the rule: odd days that are Mondays");
    ok(next_is("0 0 29 2 mon", "2027-03-01T00:00", "2028-02-07T00:00"), "29 February or a Monday in February");
    ok(next_is("15 9-17/4 * jan,jul mon-fri", "2026-12-31T23:00", "2027-01-01T09:15") &&
       next_is("15 9-17/4 * jan,jul mon-fri", "2027-01-01T17:15", "2027-01-04T09:15"),
       "hours with a step, months and weekdays together");
}

static void test_matches(void)
{
    struct cron_schedule c;

    cron_parse("*/10 8 * * *", &c, NULL);
    ok(cron_matches(&c, at("2026-12-01T08:20:59")) && cron_matches(&c, at("2026-12-01T08:00")),
       "any second of a due minute matches");
    ok(!cron_matches(&c, at("2026-12-01T08:21")) && !cron_matches(&c, at("2026-12-01T09:20")),
       "another minute or hour does not");
    cron_parse("0 0 1 * mon", &c, NULL);
    ok(cron_matches(&c, at("2026-12-07T00:00")) && cron_matches(&c, at("2026-12-01T00:00")) &&
       !cron_matches(&c, at("2026-12-02T00:00")), "Vixie's either-day rule in matches too");
}

static char app_dir[] = "/tmp/test-cron.XXXXXX";

/* Loads app.json holding `text` (NULL: none): the jobs, or NULL with the message in *why (malloc'ed). */
static json_t *load(const char *text, char **why)
{
    _cleanup_free_ char *path = xasprintf("%s/app.json", app_dir);
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *jobs = NULL;

    (void)unlink(path);
    if (text && write_file_atomic(path, text, strlen(text), 0600, NULL) < 0)
        abort();
    *why = NULL;
    if (cron_jobs_load(app_dir, &jobs, &err) < 0) {
        *why = xstrdup(berth_error_msg(&err));
        return NULL;
    }
    return jobs;
}

/* Whether app.json holding `text` is refused with a message holding `want`. */
static bool jobs_refused(const char *text, const char *want)
{
    _cleanup_free_ char *why = NULL;
    _cleanup_json_ json_t *jobs = load(text, &why);

    if (jobs || !why || !strstr(why, want)) {
        printf("# %s: got '%s', want '%s'\n", text, why ? why : "accepted", want);
        return false;
    }
    return true;
}

static void test_jobs_valid(void)
{
    _cleanup_free_ char *why = NULL, *why2 = NULL, *why3 = NULL;
    _cleanup_json_ json_t *none = load(NULL, &why), *empty = NULL, *jobs = NULL, *again = NULL;
    const char *text = "{\"cron\": [{\"command\": \"echo hi\", \"schedule\": \"*/5 * * * *\"},"
                       " {\"command\": \"worker\", \"schedule\": \"@daily\", \"maintenance\": true,"
                       " \"concurrency_policy\": \"forbid\"}]}";

    ok(json_is_array(none) && json_array_size(none) == 0, "no app.json: no jobs");
    empty = load("{\"healthchecks\": {}}", &why2);
    ok(json_is_array(empty) && json_array_size(empty) == 0, "an app.json without cron: no jobs");
    jobs = load(text, &why3);
    ok(json_array_size(jobs) == 2, "two entries, two jobs");
    ok(jobs && strcmp(json_get_str(json_array_get(jobs, 0), "command"), "echo hi") == 0 &&
       strcmp(json_get_str(json_array_get(jobs, 0), "schedule"), "*/5 * * * *") == 0 &&
       strcmp(json_get_str(json_array_get(jobs, 1), "schedule"), "@daily") == 0, "... schedule and command kept");
    ok(jobs && strlen(json_get_str(json_array_get(jobs, 0), "id")) == 10 &&
       strspn(json_get_str(json_array_get(jobs, 0), "id"), "0123456789abcdef") == 10 &&
       strcmp(json_get_str(json_array_get(jobs, 0), "id"), json_get_str(json_array_get(jobs, 1), "id")) != 0,
       "... each with its own 10-hex-digit id");
    ok(jobs && json_is_true(json_object_get(json_array_get(jobs, 1), "maintenance")) &&
       !json_object_get(json_array_get(jobs, 0), "maintenance"), "... maintenance kept where it is true");
    free(why3);
    again = load("{\"cron\": [{\"schedule\": \"@hourly\", \"command\": \"x\"},"
                 " {\"schedule\": \"*/5 * * * *\", \"command\": \"echo hi\"}]}", &why3);
    ok(jobs && again && strcmp(json_get_str(json_array_get(again, 1), "id"),
                               json_get_str(json_array_get(jobs, 0), "id")) == 0,
       "the same schedule and command keep their id in another app.json, at another place");
}

static void test_jobs_refused(void)
{
    _cleanup_free_ char *path = xasprintf("%s/app.json", app_dir), *big = NULL, *many = NULL;
    _cleanup_free_ char *link_why = NULL, *dir_why = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *jobs = NULL;

    ok(jobs_refused("{\"cron\": [", "not a JSON object") && jobs_refused("[]", "not a JSON object"),
       "app.json that is not a JSON object");
    ok(jobs_refused("{\"cron\": {}}", "cron must be a list") && jobs_refused("{\"cron\": \"@daily\"}", "a list"),
       "cron that is not a list");
    strbuf_addstr(&sb, "{\"cron\": [");
    for (int i = 0; i <= CRON_JOBS_MAX; i++)
        strbuf_addf(&sb, "%s{\"command\": \"echo %d\", \"schedule\": \"@daily\"}", i ? "," : "", i);
    strbuf_addstr(&sb, "]}");
    many = strbuf_detach(&sb, NULL);
    ok(jobs_refused(many, "at most 50 entries"), "more than 50 entries");
    ok(jobs_refused("{\"cron\": [\"@daily echo\"]}", "cron[0] must be an object"), "an entry that is a string");
    ok(jobs_refused("{\"cron\": [{\"schedule\": \"@daily\"}]}", "cron[0] needs a \"command\"") &&
       jobs_refused("{\"cron\": [{\"command\": \" \\t\", \"schedule\": \"@daily\"}]}", "needs a \"command\"") &&
       jobs_refused("{\"cron\": [{\"command\": 5, \"schedule\": \"@daily\"}]}", "needs a \"command\""),
       "a missing, blank or non-string command");
    strbuf_addstr(&sb, "{\"cron\": [{\"schedule\": \"@daily\", \"command\": \"");
    for (int i = 0; i <= CRON_COMMAND_MAX; i++)
        strbuf_addch(&sb, 'x');
    strbuf_addstr(&sb, "\"}]}");
    big = strbuf_detach(&sb, NULL);
    ok(jobs_refused(big, "at most 4096 characters"), "a command past 4096 characters");
    ok(jobs_refused("{\"cron\": [{\"command\": \"x\"}]}", "cron[0] (`x`) needs a \"schedule\"") &&
       jobs_refused("{\"cron\": [{\"command\": \"x\", \"schedule\": 5}]}", "needs a \"schedule\""),
       "a missing or non-string schedule");
    ok(jobs_refused("{\"cron\": [{\"command\": \"x\", \"schedule\": \"@daily\"}, {\"command\": \"y\", "
                    "\"schedule\": \"61 * * * *\"}]}", "cron[1] (\"61 * * * *\"): minute '61' is out of range 0-59"),
       "an invalid schedule, the entry and the field named");
    ok(jobs_refused("{\"cron\": [{\"command\": \"x\", \"schedule\": \"@daily\", \"maintenance\": \"yes\"}]}",
                    "cron[0].maintenance must be true or false"), "maintenance that is not a boolean");
    ok(jobs_refused("{\"cron\": [{\"command\": \"x\", \"schedule\": \"@daily\", \"concurrency_policy\": \"allow\"}]}",
                    "only \"forbid\"") &&
       jobs_refused("{\"cron\": [{\"command\": \"x\", \"schedule\": \"@daily\", \"concurrency_policy\": \"replace\"}]}",
                    "only \"forbid\"") &&
       jobs_refused("{\"cron\": [{\"command\": \"x\", \"schedule\": \"@daily\", \"concurrency_policy\": 1}]}",
                    "only \"forbid\""), "concurrency policies other than forbid");
    ok(jobs_refused("{\"cron\": [{\"command\": \"x\", \"schedule\": \"@daily\"}, {\"command\": \"y\", "
                    "\"schedule\": \"@daily\"}, {\"command\": \"x\", \"schedule\": \"@daily\"}]}",
                    "cron[2] repeats cron[0]"), "a repeated entry");
    (void)unlink(path);
    if (symlink("/etc/passwd", path) < 0)
        abort();
    ok(cron_jobs_load(app_dir, &jobs, &err) == -EINVAL && !jobs &&
       strstr((link_why = xstrdup(berth_error_msg(&err))), "not a regular file"), "app.json as a link is refused");
    berth_error_release(&err);
    (void)unlink(path);
    if (mkdir(path, 0700) < 0)
        abort();
    ok(cron_jobs_load(app_dir, &jobs, &err) == -EINVAL && !jobs &&
       strstr((dir_why = xstrdup(berth_error_msg(&err))), "not a regular file"), "app.json as a directory too");
    (void)rmdir(path);
}

int main(void)
{
    if (!mkdtemp(app_dir))
        abort();
    test_fields();
    test_macros();
    test_refused();
    test_next();
    test_matches();
    test_jobs_valid();
    test_jobs_refused();
    (void)rm_rf(app_dir, NULL);
    return tap_done();
}
