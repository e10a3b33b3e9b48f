/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parsing sizes and durations (units.h). Strict: whole numbers only, a
 * known suffix, nothing after it, no overflow; "1.5G" is refused rather
 * than rounded.
 */
#include "control/units.h"

#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <strings.h>

#include "common/banned.h"

static bool parse_number(const char **p, uint64_t *ret)
{
    uint64_t v = 0;
    const char *s = *p;

    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
            return false;
    }
    *p = s;
    *ret = v;
    return true;
}

bool units_parse_size(const char *s, uint64_t *ret)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {
        { "", 0 }, { "b", 0 },
        { "k", 10 }, { "kb", 10 }, { "kib", 10 },
        { "m", 20 }, { "mb", 20 }, { "mib", 20 },
        { "g", 30 }, { "gb", 30 }, { "gib", 30 },
        { "t", 40 }, { "tb", 40 }, { "tib", 40 },
    };
    uint64_t v;

    if (!s || !parse_number(&s, &v) || v == 0)
        return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
        if (strcasecmp(s, units[i].suffix) != 0)
            continue;
        if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
            return false;
        *ret = v << units[i].shift;
        return true;
    }
    return false;
}

bool units_parse_duration(const char *s, unsigned *ret)
{
    uint64_t v, mult;

    if (!s || !parse_number(&s, &v) || v == 0)
        return false;
    if (*s == '\0' || strcasecmp(s, "s") == 0)
        mult = 1;
    else if (strcasecmp(s, "m") == 0 || strcasecmp(s, "min") == 0)
        mult = 60;
    else if (strcasecmp(s, "h") == 0)
        mult = 3600;
    else
        return false;
    if (v > UINT32_MAX / mult)
        return false;
    *ret = (unsigned)(v * mult);
    return true;
}

bool units_parse_cpus(const char *s, uint64_t *ret_millis)
{
    uint64_t whole, frac = 0, scale = 100;

    if (!s || !parse_number(&s, &whole) || whole > UINT32_MAX)
        return false;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return false;
        for (; isdigit((unsigned char)*s); s++, scale /= 10) {
            if (!scale)
                return false;   /* a fourth decimal */
            frac += (uint64_t)(*s - '0') * scale;
        }
    }
    if (*s || whole * 1000 + frac == 0)
        return false;
    *ret_millis = whole * 1000 + frac;
    return true;
}

void units_format_size(uint64_t bytes, char buf[32])
{
    static const char suffix[] = "KMGT";
    int i = -1;

    while (i < 3 && bytes && bytes % 1024 == 0) {
        bytes /= 1024;
        i++;
    }
    if (i < 0)
        (void)snprintf(buf, 32, "%" PRIu64, bytes);
    else
        (void)snprintf(buf, 32, "%" PRIu64 "%c", bytes, suffix[i]);
}

void units_format_cpus(uint64_t millis, char buf[32])
{
    int len = snprintf(buf, 32, "%" PRIu64 ".%03u", millis / 1000, (unsigned)(millis % 1000));

    while (len > 0 && buf[len - 1] == '0')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '.')
        buf[--len] = '\0';
}
