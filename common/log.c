/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging (see log.h). Each line is formatted into one buffer and written
 * with a single write(2), so lines from several threads never interleave.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/strbuf.h"

/* Set once by main() before threads start; read-only afterwards. */
static const char *log_component = "berth";
static enum log_level log_max_level = LOG_LEVEL_INFO;

void log_setup(const char *component, enum log_level level)
{
    log_component = component;
    log_max_level = level;
}

bool log_enabled(enum log_level level)
{
    return level <= log_max_level;
}

const char *log_component_name(void)
{
    return log_component;
}

void log_timestamp(char *buf, unsigned long size)
{
    struct timeval tv;
    struct tm tm;
    char base[32];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%06ld+00:00", base, (long)tv.tv_usec);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = { "error: ", "warning: ", "", "debug: " };
    struct strbuf sb = STRBUF_INIT;
    char ts[48];
    va_list ap;

    if (level > log_max_level)
        return;
    log_timestamp(ts, sizeof(ts));
    strbuf_addf(&sb, "%s berth[%s]: %s", ts, log_component, names[level]);
    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    strbuf_addch(&sb, '\n');
    (void)!write(STDERR_FILENO, sb.buf, sb.len);
    strbuf_release(&sb);
}
