/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/applog: each app's log, <home>/apps/<app>/logs/app.log, in
 * Heroku's format (reference/HEROKU.md §3.7):
 *
 *   2026-11-22T01:02:03.456789+00:00 app[web.1]: the app's own line
 *   2026-11-22T01:02:03.456800+00:00 heroku[web.1]: State changed from starting to up
 *   2026-11-22T01:02:03.456900+00:00 heroku[router]: at=info method=GET path="/" ...
 *   2026-11-22T01:02:03.457000+00:00 app[api]: Release v3 created by admin
 *
 * One log per app, appended to (it survives redeploys and restarts of
 * berth) and rotated by size: past APPLOG_ROTATE_BYTES, app.log becomes
 * app.log.1 (the one before is dropped), so an app keeps at most twice that.
 *
 * Three kinds of writers, never interleaving partial lines (each write(2)
 * holds whole lines, under the app's lock):
 *   - the instances' output, captured by ONE thread for every instance of
 *     every app (applog_pump_add(): an epoll loop over their pipes);
 *   - platform lines, applog_emit(), written from the caller's thread;
 *   - the router's request lines, handed over in batches
 *     (applog_router_lines(), the router's access-log callback) and written
 *     by the same loop thread, so the router never touches a file.
 * Readers (the API's `logs`) take the last lines and follow new ones
 * (applog_reader_*).
 */
#ifndef BERTH_CONTROL_APPLOG_H
#define BERTH_CONTROL_APPLOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/strbuf.h"

struct applog;
struct applog_pump;
struct applog_reader;

/* app.log becomes app.log.1 once a write would take it past this size. */
#define APPLOG_ROTATE_BYTES (16u << 20)
/* Heroku splits an app's output lines longer than this into chunks of it. */
#define APPLOG_LINE_MAX 10000
/* The most lines one read of the log returns (`berth logs -n`). */
#define APPLOG_TAIL_MAX 10000

/*
 * Starts the log thread for the apps under <home>/apps. rotate_bytes 0
 * means APPLOG_ROTATE_BYTES (tests choose smaller).
 */
int applog_start(const char *home, uint64_t rotate_bytes, struct applog **ret, struct berth_error **err);
/*
 * Ends every follow (applog_reader_follow() returns -ESHUTDOWN from then
 * on), and waits (2 s at most) until every reader is freed, so that the
 * API's streaming answers end properly before the API stops.
 */
void applog_end_follows(struct applog *l);
/*
 * Stops the thread, writes what the router handed over and frees it all.
 * Every pump must have been finished before (applog_pump_finish()).
 */
void applog_stop(struct applog *l);
/*
 * Closes the app's log file if open (the app is being destroyed; a later
 * line reopens it), and ends the follows of readers opened before
 * (applog_reader_follow() returns -ENOENT): what an app of that name
 * writes later, perhaps another tenant's, is not theirs.
 */
void applog_forget(struct applog *l, const char *app);

/* ---------------------------------------------------------------- writing */

/*
 * A platform line, `source` as Heroku names it ("heroku[web.1]",
 * "heroku[router]", "app[api]"), written at once from the caller's thread.
 * Failures are logged on the daemon's stderr, never returned: a log line
 * never fails what it describes.
 */
void applog_emit(struct applog *l, const char *app, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void applog_vemit(struct applog *l, const char *app, const char *source, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/*
 * The router's access-log callback (router_config.access_log): `buf`
 * holds `len` bytes of whole lines "APP TIMESTAMP heroku[router]: ...\n".
 * Copied into a queue the log thread writes out; never blocks on a file.
 * `cls` is the struct applog.
 */
void applog_router_lines(void *cls, const char *buf, size_t len);

/* ---------------------------------------------------------------- the instances' output */

/*
 * Captures the output of instance `dyno` ("web.1") of `app` from the read
 * end of its stdout/stderr pipe, `pipe_rd` (taken: closed at its end, or
 * at once on failure). Each line becomes `app[web.1]: line` in the app's
 * log; lines past APPLOG_LINE_MAX bytes are split. With `output`, every
 * line also goes to it, called from the thread that waits in
 * applog_pump_deliver() or applog_pump_finish() (never from the log
 * thread: a slow consumer only pauses this pipe, and so this process).
 */
int applog_pump_add(struct applog *l, const char *app, const char *dyno, int pipe_rd,
                    void (*output)(void *cls, const char *line), void *cls, struct applog_pump **ret,
                    struct berth_error **err);
/*
 * Hands the lines read so far to `output`, waiting up to timeout_ms for
 * more: 1 once the pipe reached its end and every line was delivered, 0
 * otherwise.
 */
int applog_pump_deliver(struct applog_pump *p, int timeout_ms);
/*
 * Waits until every process holding the pipe is gone (its end), every line
 * is in the log and delivered to `output`, then frees the pump. NULL is a
 * no-op.
 */
void applog_pump_finish(struct applog_pump *p);

/* ---------------------------------------------------------------- reading */

enum applog_source {
    APPLOG_SOURCE_ALL,
    APPLOG_SOURCE_APP,        /* app[...] and heroku[...], except heroku[router] */
    APPLOG_SOURCE_ROUTER,     /* heroku[router] only */
};

struct applog_filter {
    enum applog_source source;
    /*
     * A process type ("web": web.1, web.2, ...) or one instance ("web.1");
     * NULL for all. It matches the lines of app[DYNO] and heroku[DYNO].
     */
    const char *ps;
};

/* Whether `line` (one log line, with or without its newline) passes `f`. */
bool applog_line_matches(const char *line, size_t len, const struct applog_filter *f);

/*
 * A reader of the app's log from the moment it is opened: what was
 * written before (applog_reader_tail()) and what comes after
 * (applog_reader_follow()), with no line lost or repeated in between
 * (short of a rotation while following falls behind a whole file).
 */
int applog_reader_open(struct applog *l, const char *app, const struct applog_filter *f,
                       struct applog_reader **ret, struct berth_error **err);
/* Appends the last `n` matching lines written before the open, oldest first, across both files. */
int applog_reader_tail(struct applog_reader *r, unsigned n, struct strbuf *out, struct berth_error **err);
/*
 * Appends the matching whole lines written since the last call (or the
 * open), waiting up to timeout_ms for some: 1 if it added any, 0 if not,
 * -ESHUTDOWN once applog_end_follows() was called, -ENOENT once the app
 * was destroyed (applog_forget()).
 */
int applog_reader_follow(struct applog_reader *r, int timeout_ms, struct strbuf *out);
void applog_reader_free(struct applog_reader *r);

#endif
