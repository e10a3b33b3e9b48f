/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Daemon logging to stderr, one line per event:
 *   2026-11-22T02:20:24.123456+00:00 berth[serve]: message
 * The timestamp is RFC 5424 with microseconds, like Heroku's log lines.
 * Only main() and request or connection top levels log (STYLE.md); library
 * code returns errors instead.
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/*
 * Process-wide: the level and the component name are set once by main() and
 * read by every thread; they are the one global state logging needs.
 */
void log_setup(const char *component, enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* For callers that format their own lines (the router's access log): whether `level` is logged, and the component. */
bool log_enabled(enum log_level level);
const char *log_component_name(void);

/* Formats `now` as RFC 5424 with microseconds into buf (at least 40 bytes). */
void log_timestamp(char *buf, unsigned long size);

#endif
