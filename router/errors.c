/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's own answers and its access log. Error pages are built once
 * per router as persistent libmicrohttpd responses and shared by every
 * connection (MHD reference-counts responses). They name no app and echo
 * nothing from the request, so an unknown Host cannot probe which apps exist
 * or inject markup. Every code the router can produce is here, with
 * Heroku's status, code and description (reference/HEROKU.md §3.5).
 *
 * The access log line copies Heroku's router line (§3.5):
 *   at=info method=GET path="/" host=a.localhost request_id=... fwd="127.0.0.1"
 *   dyno=web.1 connect=0ms service=2ms status=200 bytes=12 protocol=http
 * with at=error code=Hxx desc="..." for failures. It is on the path of
 * every request, so it is formatted by hand (no printf) into a buffer per
 * loop thread, with the timestamp's seconds formatted once per second, and
 * written in batches (access_log_flush()) rather than once per request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

struct failure_info {
    unsigned status;
    const char *code;
    const char *desc;
    const char *title;
    const char *text;
};

#define APP_ERROR "Application error"

static const struct failure_info failures[FAIL_COUNT] = {
    [FAIL_NONE] = { 200, "", "", "", "" },
    [FAIL_NO_ROUTE] = { 404, "", "No such app", "No such app",
                        "There is no app configured at that hostname." },
    [FAIL_BAD_REQUEST] = { 400, "H26", "Request Error", "Bad request",
                           "The request could not be understood." },
    [FAIL_EXPECTATION] = { 417, "H26", "Request Error", "Expectation failed",
                           "The only expectation this router meets is 100-continue." },
    [FAIL_NO_WEB] = { 503, "H14", "No web processes running", APP_ERROR,
                      "No web processes are running for this application." },
    [FAIL_BLANK] = { 503, "H81", "Blank app", "Nothing deployed yet",
                     "This application has no release yet: push some code to it." },
    [FAIL_MAINTENANCE] = { 503, "H80", "Maintenance mode", "Offline for maintenance",
                           "This application is undergoing maintenance right now. Please check back later." },
    [FAIL_CRASHED] = { 503, "H10", "App crashed", APP_ERROR,
                       "An error occurred in the application and your page could not be served." },
    [FAIL_REFUSED] = { 503, "H21", "Backend connection refused", APP_ERROR,
                       "The application refused the connection." },
    [FAIL_CONNECT_TIMEOUT] = { 503, "H19", "Backend connection timeout", APP_ERROR,
                               "The application did not accept the connection in time." },
    [FAIL_TIMEOUT] = { 503, "H12", "Request timeout", APP_ERROR,
                       "The application did not respond in time." },
    [FAIL_NO_RESPONSE] = { 503, "H13", "Connection closed without response", APP_ERROR,
                           "The application closed the connection without a response." },
    [FAIL_BAD_RESPONSE] = { 502, "H17", "Poorly formatted HTTP response", "Bad gateway",
                            "The application sent a malformed response." },
    [FAIL_RESTRICTED] = { 502, "H25", "HTTP Restriction", "Bad gateway",
                          "The application's response is larger than this router passes on." },
    [FAIL_OVERLOADED] = { 503, "H11", "Backlog too deep", "Service unavailable",
                          "The router is busy: try again in a moment." },
    [FAIL_STOPPING] = { 503, "H24", "Forced close", "Service unavailable",
                        "The router is shutting down." },
};

unsigned failure_status(enum router_failure f)
{
    return failures[f].status;
}

const char *failure_code(enum router_failure f)
{
    return failures[f].code;
}

const char *failure_desc(enum router_failure f)
{
    return failures[f].desc;
}

static void page_body(enum router_failure f, struct strbuf *sb)
{
    strbuf_addf(sb,
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n"
                "<body><h1>%s</h1><p>%s</p></body></html>\n",
                failures[f].title, failures[f].title, failures[f].text);
}

void failure_answer_keep(enum router_failure f, bool body, bool close, struct strbuf *out)
{
    struct strbuf page = STRBUF_INIT;

    page_body(f, &page);
    strbuf_addf(out,
                "HTTP/1.1 %u %s\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache, no-store\r\n"
                "%sContent-Length: %zu\r\n\r\n",
                failures[f].status, MHD_get_reason_phrase_for(failures[f].status),
                close ? "Connection: close\r\n" : "", page.len);
    if (body)
        strbuf_add(out, page.buf, page.len);
    strbuf_release(&page);
}

void failure_answer(enum router_failure f, struct strbuf *out)
{
    failure_answer_keep(f, true, true, out);
}

int error_pages_create(struct MHD_Response *pages[FAIL_COUNT], size_t lengths[FAIL_COUNT])
{
    for (int f = FAIL_NO_ROUTE; f < FAIL_COUNT; f++) {
        struct strbuf sb = STRBUF_INIT;
        size_t len;
        char *body;

        page_body((enum router_failure)f, &sb);
        body = strbuf_detach(&sb, &len);
        lengths[f] = len;
        pages[f] = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!pages[f]) {
            free(body);
            error_pages_destroy(pages);
            return -ENOMEM;
        }
        (void)MHD_add_response_header(pages[f], MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
        (void)MHD_add_response_header(pages[f], MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, no-store");
    }
    return 0;
}

void error_pages_destroy(struct MHD_Response *pages[FAIL_COUNT])
{
    for (int f = 0; f < FAIL_COUNT; f++) {
        if (pages[f])
            MHD_destroy_response(pages[f]);
        pages[f] = NULL;
    }
}

/* ---------------------------------------------------------------- the log buffers */

#define LOG_BUFFER 65536
#define LINE_MAX_BYTES 12288     /* the longest line: a 2048-byte path, each byte escaped as \xNN */
/* Room for a line's prefix: "APP 2026-11-30T17:00:00.123456+00:00 heroku[router]: " or berth's. */
#define PREFIX_MAX 256
#define STAMP_LEN 32             /* "2026-11-30T17:00:00.123456+00:00" */
_Static_assert(ROUTER_APP_NAME_MAX + sizeof(" ") - 1 + STAMP_LEN + sizeof(" heroku[router]: ") - 1 <= PREFIX_MAX,
               "an app's log prefix fits in PREFIX_MAX");

struct log_buffer {
    size_t len;
    uint64_t written;            /* when it last went out */
    char buf[LOG_BUFFER];
};

/*
 * Each loop keeps two buffers: its lines for stderr, and the apps' lines
 * for the router's access_log callback (control writes them to each app's
 * log). Threads that are not loops have no end of turn: their lines go out
 * at once.
 */
static _Thread_local struct log_buffer *logbuf, *appbuf;
static _Thread_local const struct router *appbuf_router;   /* whose callback appbuf goes to */
static _Thread_local time_t stamp_second;   /* the second stamp_text holds */
static _Thread_local char stamp_text[24];   /* "2026-11-30T17:00:00" */
static _Thread_local char scratch[LINE_MAX_BYTES];   /* the line being formatted, without its prefix */

/*
 * A loop writes its lines once it holds LOG_FLUSH_BYTES of them or every
 * LOG_FLUSH_MS, not on every turn: one hand-over (a write(2), or the
 * access_log callback) per some 180 requests rather than per two or
 * three. A line waits at most until the loop's next
 * turn after that (it wakes at least every half second). Each hand-over to
 * control's log thread wakes it (an eventfd write, a context switch on a
 * busy CPU): at 16 KiB, some 60 lines, it woke 1,100 times a second at
 * wrk -c64 and took 0.28 us of CPU per request; at 48 KiB, 460 times and
 * 0.17 us, and the router's CPU per request fell about 3 %.
 */
#define LOG_FLUSH_BYTES 49152
#define LOG_FLUSH_MS 100

static void write_out(const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = write(STDERR_FILENO, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

static void buffer_send(struct log_buffer *b, bool apps, uint64_t now)
{
    if (apps)
        appbuf_router->cfg.access_log(appbuf_router->cfg.access_log_cls, b->buf, b->len);
    else
        write_out(b->buf, b->len);
    b->len = 0;
    b->written = now;
}

static void buffer_flush(struct log_buffer *b, bool apps, uint64_t now)
{
    if (b && b->len && (b->len >= LOG_FLUSH_BYTES || now - b->written >= LOG_FLUSH_MS))
        buffer_send(b, apps, now);
}

void access_log_flush(void)
{
    uint64_t now;

    if ((!logbuf || !logbuf->len) && (!appbuf || !appbuf->len))
        return;
    now = now_ms();
    buffer_flush(logbuf, false, now);
    buffer_flush(appbuf, true, now);
}

void access_log_thread_end(void)
{
    if (logbuf && logbuf->len)
        buffer_send(logbuf, false, 0);
    if (appbuf && appbuf->len)
        buffer_send(appbuf, true, 0);
    free(logbuf);
    free(appbuf);
    logbuf = appbuf = NULL;
}

/* Adds `prefix` and `body` as one line to a loop's buffer (sending it first when full), or sends it at once. */
static void add_line(struct log_buffer **slot, bool apps, const char *prefix, size_t plen, const char *body,
                     size_t blen)
{
    struct log_buffer *b = *slot;

    if (!upstream_loop_self()) {
        char line[PREFIX_MAX + LINE_MAX_BYTES + 1];

        memcpy(line, prefix, plen);
        memcpy(line + plen, body, blen);
        line[plen + blen] = '\n';
        if (apps)
            appbuf_router->cfg.access_log(appbuf_router->cfg.access_log_cls, line, plen + blen + 1);
        else
            write_out(line, plen + blen + 1);
        return;
    }
    if (!b)
        b = *slot = xcalloc(1, sizeof(*b));
    if (LOG_BUFFER - b->len < plen + blen + 1)
        buffer_send(b, apps, now_ms());
    memcpy(b->buf + b->len, prefix, plen);
    memcpy(b->buf + b->len + plen, body, blen);
    b->buf[b->len + plen + blen] = '\n';
    b->len += plen + blen + 1;
}

struct line {
    char *p, *end;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > (size_t)(l->end - l->p))
        n = (size_t)(l->end - l->p);
    memcpy(l->p, s, n);
    l->p += n;
}

static void put_str(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void put_u64(struct line *l, uint64_t v)
{
    char buf[DECIMAL_U64_MAX];
    const char *digits = decimal_u64(v, buf);

    put(l, digits, (size_t)(buf + sizeof(buf) - digits));
}

/* Zero-padded to `width` digits. */
static void put_padded(struct line *l, uint64_t v, int width)
{
    char digits[20];

    for (int i = width - 1; i >= 0; i--, v /= 10)
        digits[i] = (char)('0' + v % 10);
    put(l, digits, (size_t)width);
}

/* Escapes what could break the line or fake a field: quotes, backslashes, control and non-ASCII bytes. */
static void put_escaped(struct line *l, const char *s, size_t max)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; s[i] && i < max && l->end - l->p >= 4; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            *l->p++ = '\\';
            *l->p++ = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            *l->p++ = '\\';
            *l->p++ = 'x';
            *l->p++ = hex[ch >> 4];
            *l->p++ = hex[ch & 15];
        } else {
            *l->p++ = (char)ch;
        }
    }
}

static void put_quoted(struct line *l, const char *s, size_t max)
{
    put(l, "\"", 1);
    put_escaped(l, s, max);
    put(l, "\"", 1);
}

/* "2026-11-30T17:00:00.123456+00:00" (32 bytes), the seconds formatted once per second. */
static void put_stamp(struct line *l)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    if (tv.tv_sec != stamp_second) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(stamp_text, sizeof(stamp_text), "%Y-%m-%dT%H:%M:%S", &tm);
        stamp_second = tv.tv_sec;
    }
    put_str(l, stamp_text);
    put(l, ".", 1);
    put_padded(l, (uint64_t)tv.tv_usec, 6);
    put_str(l, "+00:00");
}

/* Starts a line in this thread's scratch space. */
static void line_begin(struct line *l)
{
    l->p = scratch;
    l->end = scratch + sizeof(scratch);
}

/*
 * The line formatted in scratch goes to stderr as "TIME berth[serve]: ..."
 * (when info is logged) and, for a request routed to an app, to the
 * router's access_log callback as "APP TIME heroku[router]: ...". Each
 * prefix is built on its own from the stamp, so however long the app's
 * name, neither can run past the other or past prefix[] (put() stops at
 * the end; route_table_build() refuses names over ROUTER_APP_NAME_MAX, so
 * an app's prefix is never cut short).
 */
static void line_end(struct line *l, const struct router *r, const char *app)
{
    size_t blen = (size_t)(l->p - scratch);
    char stamp[STAMP_LEN], prefix[PREFIX_MAX];
    struct line s = { stamp, stamp + sizeof(stamp) }, p;

    put_stamp(&s);
    if (app && r->cfg.access_log) {
        p = (struct line){ prefix, prefix + sizeof(prefix) };
        put_str(&p, app);
        put(&p, " ", 1);
        put(&p, stamp, (size_t)(s.p - stamp));
        put_str(&p, " heroku[router]: ");
        appbuf_router = r;
        add_line(&appbuf, true, prefix, (size_t)(p.p - prefix), scratch, blen);
    }
    if (log_enabled(LOG_LEVEL_INFO)) {
        p = (struct line){ prefix, prefix + sizeof(prefix) };
        put(&p, stamp, (size_t)(s.p - stamp));
        put_str(&p, " berth[");
        put_str(&p, log_component_name());
        put_str(&p, "]: ");
        add_line(&logbuf, false, prefix, (size_t)(p.p - prefix), scratch, blen);
    }
}

/* at=info, or at=error code=... desc="...": the router's failure, else how the exchange ended. */
static void put_outcome(struct line *l, const struct proxy_req *req)
{
    const char *at = "error", *code = NULL, *desc = NULL, *sock = NULL;

    if (req->failure != FAIL_NONE && req->failure != FAIL_NO_ROUTE) {
        code = failure_code(req->failure);
        desc = failure_desc(req->failure);
        if (req->failure == FAIL_BLANK || req->failure == FAIL_MAINTENANCE)
            at = "info";
    } else if (req->end_code && strcmp(req->end_code, "H18") == 0) {
        code = "H18";
        desc = "Server Request Interrupted";
        sock = "backend";
    } else if (req->end_code && strcmp(req->end_code, "H15") == 0) {
        code = "H15";
        desc = "Idle connection";
    } else if (req->status == 499) {
        at = "warning";
        code = "H27";
        desc = "Client Request Interrupted";
        sock = "client";
    }
    if (!code) {
        put_str(l, "at=info ");
        return;
    }
    put_str(l, "at=");
    put_str(l, at);
    put_str(l, " code=");
    put_str(l, code);
    put_str(l, " desc=\"");
    put_str(l, desc);
    put_str(l, "\" ");
    if (sock) {
        put_str(l, "sock=");
        put_str(l, sock);
        put(l, " ", 1);
    }
}

void access_log(const struct proxy_req *req)
{
    uint64_t end = now_ms();
    uint64_t service = req->service_start_ms ? end - req->service_start_ms : 0;
    const char *app = req->target ? req->target->app : NULL;
    struct line l;

    if (!log_enabled(LOG_LEVEL_INFO) && !(app && req->router->cfg.access_log))
        return;
    line_begin(&l);
    put_outcome(&l, req);
    put_str(&l, "method=");
    put_escaped(&l, req->method, sizeof(req->method));
    put_str(&l, " path=");
    put_quoted(&l, req->uri ? req->uri : "", 2048);
    put_str(&l, " host=");
    put_escaped(&l, req->host[0] ? req->host : "-", HOST_MAX);
    put_str(&l, " request_id=");
    put_str(&l, req->request_id);
    put_str(&l, " fwd=");
    put_quoted(&l, req->fwd, sizeof(req->fwd));
    put_str(&l, " dyno=");
    put_escaped(&l, req->dyno, ROUTER_DYNO_MAX);
    put_str(&l, " connect=");
    put_u64(&l, req->connect_ms);
    put_str(&l, "ms service=");
    put_u64(&l, service);
    put_str(&l, "ms status=");
    put_u64(&l, (uint64_t)(req->status > 0 ? req->status : 0));
    put_str(&l, " bytes=");
    put_u64(&l, req->bytes_sent);
    put_str(&l, req->tls ? " protocol=https" : " protocol=http");
    line_end(&l, req->router, app);
}

void access_log_refusal(const char *fwd, const char *code, const char *desc, const char *cause,
                        unsigned status)
{
    struct line l;

    if (!log_enabled(LOG_LEVEL_INFO))
        return;
    line_begin(&l);
    put_str(&l, "at=error code=");
    put_str(&l, code);
    put_str(&l, " desc=\"");
    put_str(&l, desc);
    put_str(&l, "\" cause=");
    put_quoted(&l, cause ? cause : "", 256);
    put_str(&l, " fwd=");
    put_quoted(&l, fwd ? fwd : "", INET6_ADDRSTRLEN);
    if (status) {
        put_str(&l, " status=");
        put_u64(&l, status);
    }
    line_end(&l, NULL, NULL);
}
