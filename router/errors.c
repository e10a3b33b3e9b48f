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

void failure_answer(enum router_failure f, struct strbuf *out)
{
    struct strbuf body = STRBUF_INIT;

    page_body(f, &body);
    strbuf_addf(out,
                "HTTP/1.1 %u %s\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache, no-store\r\n"
                "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                failures[f].status, MHD_get_reason_phrase_for(failures[f].status), body.len);
    strbuf_add(out, body.buf, body.len);
    strbuf_release(&body);
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

/* ---------------------------------------------------------------- the log buffer */

#define LOG_BUFFER 65536
#define LINE_MAX_BYTES 12288     /* the longest line: a 2048-byte path, each byte escaped as \xNN */

struct log_buffer {
    size_t len;
    bool temporary;              /* a line from a thread that is not a loop: written and freed at once */
    time_t second;               /* the second `stamp` holds */
    char stamp[24];              /* "2026-11-30T17:00:00" */
    char buf[LOG_BUFFER];
};

static _Thread_local struct log_buffer *logbuf;
static _Thread_local uint64_t logbuf_written;   /* when this thread's buffer last went out */

/*
 * A loop writes its lines once it holds LOG_FLUSH_BYTES of them or every
 * LOG_FLUSH_MS, not on every turn: one write(2) per hundred requests
 * rather than per two or three. A line waits at most until the loop's next
 * turn after that (it wakes at least every half second).
 */
#define LOG_FLUSH_BYTES 16384
#define LOG_FLUSH_MS 100

static void write_out(struct log_buffer *b)
{
    size_t off = 0;

    while (off < b->len) {
        ssize_t n = write(STDERR_FILENO, b->buf + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    b->len = 0;
}

void access_log_flush(void)
{
    uint64_t now;

    if (!logbuf || !logbuf->len)
        return;
    now = now_ms();
    if (logbuf->len < LOG_FLUSH_BYTES && now - logbuf_written < LOG_FLUSH_MS)
        return;
    write_out(logbuf);
    logbuf_written = now;
}

void access_log_thread_end(void)
{
    if (logbuf)
        write_out(logbuf);
    free(logbuf);
    logbuf = NULL;
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

/* "2026-11-30T17:00:00.123456+00:00 berth[serve]: ", the seconds formatted once per second. */
static void put_prefix(struct line *l, struct log_buffer *b)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    if (tv.tv_sec != b->second) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(b->stamp, sizeof(b->stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        b->second = tv.tv_sec;
    }
    put_str(l, b->stamp);
    put(l, ".", 1);
    put_padded(l, (uint64_t)tv.tv_usec, 6);
    put_str(l, "+00:00 berth[");
    put_str(l, log_component_name());
    put_str(l, "]: ");
}

/* Room for one more line in this thread's buffer; NULL when the log is off at info level. */
static struct log_buffer *line_begin(struct line *l)
{
    struct log_buffer *b;

    if (!log_enabled(LOG_LEVEL_INFO))
        return NULL;
    if (!upstream_loop_self()) {
        b = xcalloc(1, sizeof(*b));
        b->temporary = true;
    } else {
        if (!logbuf)
            logbuf = xcalloc(1, sizeof(*logbuf));
        b = logbuf;
        if (LOG_BUFFER - b->len < LINE_MAX_BYTES)
            write_out(b);
    }
    l->p = b->buf + b->len;
    l->end = b->buf + LOG_BUFFER - 1;   /* room for the newline */
    put_prefix(l, b);
    return b;
}

static void line_end(struct line *l, struct log_buffer *b)
{
    *l->p++ = '\n';
    b->len = (size_t)(l->p - b->buf);
    /* Threads other than the loops have no end of turn: their lines go out at once. */
    if (b->temporary) {
        write_out(b);
        free(b);
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
    struct log_buffer *b;
    struct line l;

    if (!(b = line_begin(&l)))
        return;
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
    line_end(&l, b);
}

void access_log_refusal(const char *fwd, const char *code, const char *desc, const char *cause,
                        unsigned status)
{
    struct log_buffer *b;
    struct line l;

    if (!(b = line_begin(&l)))
        return;
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
    line_end(&l, b);
}
