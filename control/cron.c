/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cron: parsing cron schedules and finding their next run, and
 * reading app.json's "cron" entries (see cron.h). Each field becomes a bit set; the next run is found by walking
 * forward from the given time a month, a day, an hour or a minute at a
 * time, whichever field fails first, with timegm() doing the calendar (month
 * lengths, leap years).
 */
#include "control/cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/xalloc.h"

/* app.json is read whole; a bigger one is refused. */
#define CRON_APP_JSON_MAX (64u << 10)
/* How far cron_next() looks: every date pattern (29 February included) recurs within this. */
#define CRON_SEARCH_YEARS 28

struct field {
    const char *name;
    unsigned lo, hi;
    const char *const *names;     /* 3-letter names for values, NULL-terminated, or NULL */
    unsigned name_base;           /* the value names[0] stands for */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                           "sep", "oct", "nov", "dec", NULL };
static const char *const day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

static const struct field fields[F_COUNT] = {
    [F_MINUTE] = { "minute", 0, 59, NULL, 0 },
    [F_HOUR] = { "hour", 0, 23, NULL, 0 },
    [F_DOM] = { "day-of-month", 1, 31, NULL, 0 },
    [F_MONTH] = { "month", 1, 12, month_names, 1 },
    /* 7 is Sunday too; folded onto 0 once the field is read. */
    [F_DOW] = { "day-of-week", 0, 7, day_names, 0 },
};

static const struct {
    const char *name, *fields;
} macros[] = {
    { "@yearly", "0 0 1 1 *" },
    { "@annually", "0 0 1 1 *" },
    { "@monthly", "0 0 1 * *" },
    { "@weekly", "0 0 * * 0" },
    { "@daily", "0 0 * * *" },
    { "@midnight", "0 0 * * *" },
    { "@hourly", "0 * * * *" },
};

/* A number (at most 3 digits) or, where the field has them, a 3-letter name; advances *p. */
static bool read_value(const struct field *f, const char **p, unsigned *ret)
{
    const char *s = *p;
    unsigned v = 0, digits = 0;

    if (isdigit((unsigned char)*s)) {
        while (isdigit((unsigned char)*s) && digits < 4) {
            v = v * 10 + (unsigned)(*s++ - '0');
            digits++;
        }
        if (digits > 3)
            return false;
        *ret = v;
        *p = s;
        return true;
    }
    for (size_t i = 0; f->names && f->names[i]; i++) {
        if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
            *ret = f->name_base + (unsigned)i;
            *p = s + 3;
            return true;
        }
    }
    return false;
}

/* One item of a list: '*', N or N-M, each with an optional /STEP; its values into *bits. */
static int parse_item(const struct field *f, const char *item, uint64_t *bits, struct berth_error **err)
{
    const char *p = item;
    unsigned lo, hi, step = 1;

    if (*p == '*') {
        lo = f->lo;
        hi = f->hi;
        p++;
    } else {
        if (!read_value(f, &p, &lo))
            return berth_error_plain(err, EINVAL, "%s '%s' is not a number%s, a range or '*'", f->name, item,
                                     f->names ? ", a name" : "");
        hi = lo;
        if (*p == '-') {
            p++;
            if (!read_value(f, &p, &hi))
                return berth_error_plain(err, EINVAL, "%s '%s' has a range with no valid end", f->name, item);
        } else if (*p == '/') {
            hi = f->hi;
        }
    }
    if (*p == '/') {
        p++;
        if (!isdigit((unsigned char)*p))
            return berth_error_plain(err, EINVAL, "%s '%s' needs a number after '/'", f->name, item);
        step = 0;
        while (isdigit((unsigned char)*p) && step <= f->hi)
            step = step * 10 + (unsigned)(*p++ - '0');
        if (step == 0 || step > f->hi)
            return berth_error_plain(err, EINVAL, "%s '%s' has a step out of range 1-%u", f->name, item, f->hi);
    }
    if (*p)
        return berth_error_plain(err, EINVAL, "%s '%s' is not a number%s, a range or '*'", f->name, item,
                                 f->names ? ", a name" : "");
    if (lo < f->lo || lo > f->hi || hi < f->lo || hi > f->hi)
        return berth_error_plain(err, EINVAL, "%s '%s' is out of range %u-%u", f->name, item, f->lo, f->hi);
    if (lo > hi)
        return berth_error_plain(err, EINVAL, "%s '%s' is a backward range", f->name, item);
    for (unsigned v = lo; v <= hi; v += step)
        *bits |= 1ULL << v;
    return 0;
}

/* A whole field, a comma-separated list of items; its values into *bits. */
static int parse_field(const struct field *f, const char *text, uint64_t *bits, struct berth_error **err)
{
    _cleanup_free_ char *copy = xstrdup(text);
    char *item = copy, *comma;
    int r;

    *bits = 0;
    for (;;) {
        comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        if (!*item)
            return berth_error_plain(err, EINVAL, "%s '%s' has an empty list item", f->name, text);
        if ((r = parse_item(f, item, bits, err)) < 0)
            return r;
        if (!comma)
            return 0;
        item = comma + 1;
    }
}

/* Splits `text` at blanks into at most max words (pointers into text, which it modifies); the count. */
static unsigned split_words(char *text, char **words, unsigned max)
{
    unsigned n = 0;
    char *p = text;

    for (;;) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (!*p)
            return n;
        if (n == max)
            return max + 1;
        words[n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
}

/* The five fields of `expr` (a macro already expanded) into *c. */
static int parse_fields(const char *expr, struct cron_schedule *c, struct berth_error **err)
{
    _cleanup_free_ char *copy = xstrdup(expr);
    char *words[F_COUNT];
    uint64_t bits[F_COUNT];
    unsigned n = split_words(copy, words, F_COUNT);
    int r;

    if (n == 0)
        return berth_error_plain(err, EINVAL, "the schedule is empty");
    if (n != F_COUNT)
        return berth_error_plain(err, EINVAL, "'%s' has %s%u fields; a schedule has 5: minute hour "
                                 "day-of-month month day-of-week%s", expr, n > F_COUNT ? "more than " : "",
                                 n > F_COUNT ? F_COUNT : n, n > F_COUNT ? " (seconds are not supported)" : "");
    for (unsigned i = 0; i < F_COUNT; i++)
        if ((r = parse_field(&fields[i], words[i], &bits[i], err)) < 0)
            return r;
    if (bits[F_DOW] & (1u << 7))
        bits[F_DOW] = (bits[F_DOW] & ~(1u << 7)) | 1u;
    *c = (struct cron_schedule){
        .minutes = bits[F_MINUTE],
        .hours = (uint32_t)bits[F_HOUR],
        .days = (uint32_t)bits[F_DOM],
        .months = (uint16_t)bits[F_MONTH],
        .weekdays = (uint8_t)bits[F_DOW],
        .days_star = words[F_DOM][0] == '*',
        .weekdays_star = words[F_DOW][0] == '*',
    };
    return 0;
}

int cron_parse(const char *expr, struct cron_schedule *ret, struct berth_error **err)
{
    struct cron_schedule c;
    time_t first;
    int r;

    if (strlen(expr) > CRON_EXPR_MAX)
        return berth_error_plain(err, EINVAL, "the schedule is longer than %d characters", CRON_EXPR_MAX);
    while (*expr == ' ' || *expr == '\t')
        expr++;
    if (*expr == '@') {
        size_t len = strcspn(expr, " \t");

        if (expr[len + strspn(expr + len, " \t")])
            return berth_error_plain(err, EINVAL, "'%s' has words after the macro", expr);
        for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
            if (strlen(macros[i].name) == len && strncasecmp(expr, macros[i].name, len) == 0)
                return parse_fields(macros[i].fields, ret, err);
        return berth_error_plain(err, EINVAL, "'%.*s' is not a known macro (@yearly, @annually, @monthly, "
                                 "@weekly, @daily, @midnight, @hourly)", (int)len, expr);
    }
    if ((r = parse_fields(expr, &c, err)) < 0)
        return r;
    /* From 1 January 2000, a leap year: every date that exists at all comes within the search. */
    if (cron_next(&c, 946684800 - 60, &first) < 0)
        return berth_error_plain(err, EINVAL, "'%s' never runs: no month has such a day", expr);
    *ret = c;
    return 0;
}

static bool day_matches(const struct cron_schedule *c, const struct tm *tm)
{
    bool dom = c->days & (1u << tm->tm_mday), dow = c->weekdays & (1u << tm->tm_wday);

    /* Vixie cron: both restricted, either will do; otherwise the restricted one decides. */
    if (c->days_star || c->weekdays_star)
        return dom && dow;
    return dom || dow;
}

bool cron_matches(const struct cron_schedule *c, time_t t)
{
    struct tm tm;

    if (!gmtime_r(&t, &tm))
        return false;
    return (c->minutes & (1ULL << tm.tm_min)) && (c->hours & (1u << tm.tm_hour)) &&
           (c->months & (1u << (tm.tm_mon + 1))) && day_matches(c, &tm);
}

/* Lets timegm() carry the overflowed field (minute 60, day 32, month 12) into the next, and back. */
static time_t normalise(struct tm *tm)
{
    time_t t = timegm(tm);

    gmtime_r(&t, tm);
    return t;
}

int cron_next(const struct cron_schedule *c, time_t after, time_t *ret)
{
    time_t t = after - (after % 60 + 60) % 60 + 60;
    struct tm tm;
    int last_year;

    if (!gmtime_r(&t, &tm))
        return -ERANGE;
    last_year = tm.tm_year + CRON_SEARCH_YEARS;
    while (tm.tm_year <= last_year) {
        if (!(c->months & (1u << (tm.tm_mon + 1)))) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = 0;
        } else if (!day_matches(c, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = 0;
        } else if (!(c->hours & (1u << tm.tm_hour))) {
            tm.tm_hour++;
            tm.tm_min = 0;
        } else if (!(c->minutes & (1ULL << tm.tm_min))) {
            tm.tm_min++;
        } else {
            *ret = timegm(&tm);
            return 0;
        }
        t = normalise(&tm);
    }
    return -ERANGE;
}

/* ---------------------------------------------------------------- app.json */

/* The id of a job: the same schedule and command keep it across releases. */
static char *job_id(const char *schedule, const char *command)
{
    _cleanup_free_ char *key = xasprintf("%s\n%s", schedule, command);
    char hex[SHA256_HEX_LEN + 1];

    sha256_hex(key, strlen(key), hex);
    return xstrndup(hex, 10);
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

/* Checks app.json's cron[i] and makes its record. */
static int job_from_entry(const json_t *entry, size_t i, json_t **ret, struct berth_error **err)
{
    _cleanup_error_ struct berth_error *why = NULL;
    const json_t *command = json_object_get(entry, "command"), *schedule = json_object_get(entry, "schedule");
    const json_t *maintenance = json_object_get(entry, "maintenance");
    const char *policy = json_get_str(entry, "concurrency_policy");
    struct cron_schedule parsed;
    _cleanup_free_ char *id = NULL;

    if (!json_is_object(entry))
        return berth_error_plain(err, EINVAL, "app.json: cron[%zu] must be an object with \"command\" and "
                                 "\"schedule\"", i);
    if (!json_is_string(command) || blank(json_string_value(command)) ||
        json_string_length(command) > CRON_COMMAND_MAX)
        return berth_error_plain(err, EINVAL, "app.json: cron[%zu] needs a \"command\": a non-empty string of "
                                 "at most %d characters", i, CRON_COMMAND_MAX);
    if (!json_is_string(schedule))
        return berth_error_plain(err, EINVAL, "app.json: cron[%zu] (`%s`) needs a \"schedule\" string such as "
                                 "\"*/5 * * * *\" or \"@daily\"", i, json_string_value(command));
    if (cron_parse(json_string_value(schedule), &parsed, &why) < 0)
        return berth_error_plain(err, EINVAL, "app.json: cron[%zu] (\"%s\"): %s", i, json_string_value(schedule),
                                 berth_error_msg(&why));
    if (maintenance && !json_is_boolean(maintenance))
        return berth_error_plain(err, EINVAL, "app.json: cron[%zu].maintenance must be true or false", i);
    /* berth never overlaps runs of a job; Dokku's "allow" and "replace" would promise otherwise. */
    if (json_object_get(entry, "concurrency_policy") && (!policy || strcmp(policy, "forbid") != 0))
        return berth_error_plain(err, EINVAL, "app.json: cron[%zu].concurrency_policy: berth runs a job once at "
                                 "a time, so only \"forbid\" is supported", i);
    id = job_id(json_string_value(schedule), json_string_value(command));
    *ret = json_pack("{s:s, s:O, s:O}", "id", id, "schedule", schedule, "command", command);
    if (json_is_true(maintenance))
        json_object_set_new(*ret, "maintenance", json_true());
    return 0;
}

/* Two entries with one schedule and command would share an id (and run twice each minute). */
static int check_unique(const json_t *jobs, const json_t *job, size_t i, struct berth_error **err)
{
    size_t j;
    json_t *other;

    json_array_foreach(jobs, j, other)
        if (strcmp(json_get_str(other, "id"), json_get_str(job, "id")) == 0)
            return berth_error_plain(err, EINVAL, "app.json: cron[%zu] repeats cron[%zu] (same schedule and "
                                     "command)", i, j);
    return 0;
}

static int jobs_from_doc(const json_t *doc, json_t **ret, struct berth_error **err)
{
    const json_t *cron = json_object_get(doc, "cron"), *entry;
    _cleanup_json_ json_t *jobs = json_array();
    size_t i;
    int r;

    if (cron && (!json_is_array(cron) || json_array_size(cron) > CRON_JOBS_MAX))
        return berth_error_plain(err, EINVAL, "app.json: cron must be a list of at most %d entries",
                                 CRON_JOBS_MAX);
    json_array_foreach(cron, i, entry) {
        json_t *job = NULL;

        if ((r = job_from_entry(entry, i, &job, err)) < 0)
            return r;
        if ((r = check_unique(jobs, job, i, err)) < 0) {
            json_decref(job);
            return r;
        }
        json_array_append_new(jobs, job);
    }
    *ret = TAKE_PTR(jobs);
    return 0;
}

int cron_jobs_load(const char *app_dir, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/app.json", app_dir);
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
    _cleanup_json_ json_t *doc = NULL;
    json_error_t jerr;
    struct stat st;
    int r;

    if (lstat(path, &st) < 0) {
        if (errno != ENOENT)
            return berth_error_make(err, errno, "app.json");
        *ret = json_array();
        return 0;
    }
    /* The slug is the tenant's: a link could point anywhere on the host. */
    if (!S_ISREG(st.st_mode))
        return berth_error_plain(err, EINVAL, "app.json: not a regular file");
    if ((r = read_file(path, &text, CRON_APP_JSON_MAX, err)) < 0)
        return r;
    doc = json_loadb(text.buf, text.len, 0, &jerr);
    if (!json_is_object(doc))
        return berth_error_plain(err, EINVAL, "app.json: not a JSON object (line %d: %s)", jerr.line,
                                 doc ? "not an object" : jerr.text);
    return jobs_from_doc(doc, ret, err);
}
