/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-logs: GET /apps/<app>/logs, the app's log (applog.h) as
 * text/plain lines, filtered by the query (lines, ps, source), and with
 * tail=1 followed: the answer stays open and each new line is sent as it
 * is written. The API runs a thread per connection, so a stream's content
 * callback waits in applog_reader_follow() on its own thread; every
 * STREAM_WAKE_MS it looks whether the client is still there (a closed
 * socket ends the stream, which frees the reader), and the server's stop
 * ends every follow first (applog_end_follows()). The app's ownership was
 * checked by the dispatch (api_apps_handle()).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/applog.h"

/* `lines` when the query names none, as Heroku's CLI. */
#define LOGS_DEFAULT_LINES 100
/* How often a waiting stream looks whether its client left. */
#define STREAM_WAKE_MS 250
/* A process name as the filter takes it: "web", "web.1", "router". */
#define PS_MAX 64
#define TEXT(x) #x
#define NUMBER_TEXT(x) TEXT(x)

struct log_stream {
    struct applog_reader *reader;
    struct strbuf pending;        /* lines not sent yet */
    size_t sent;                  /* bytes of `pending` sent */
    int client_fd;                /* the connection's socket, to notice a client that left */
};

/* Whether the peer closed or reset the connection (it sends nothing after its request). */
static bool client_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };

    return fd < 0 || (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)));
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct log_stream *st = cls;
    size_t n;
    (void)pos;

    while (st->sent == st->pending.len) {
        strbuf_reset(&st->pending);
        st->sent = 0;
        if (client_gone(st->client_fd))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (applog_reader_follow(st->reader, STREAM_WAKE_MS, &st->pending) < 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    n = st->pending.len - st->sent < max ? st->pending.len - st->sent : max;
    memcpy(buf, st->pending.buf + st->sent, n);
    st->sent += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct log_stream *st = cls;

    applog_reader_free(st->reader);
    strbuf_release(&st->pending);
    free(st);
}

/* "web", "web.1": a process type's characters, an optional ".N". */
static bool ps_valid(const char *ps)
{
    size_t len = strlen(ps);

    if (!len || len > PS_MAX || ps[0] < 'a' || ps[0] > 'z')
        return false;
    for (const char *c = ps; *c; c++) {
        if (*c == '.')
            return c[1] && strspn(c + 1, "0123456789") == strlen(c + 1);
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return false;
    }
    return true;
}

/* The query into a filter and a count; false with the 400 answer's words in *ret_msg. */
static bool parse_query(struct MHD_Connection *c, struct applog_filter *f, unsigned *ret_lines, bool *ret_tail,
                        const char **ret_msg)
{
    const char *lines = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lines");
    const char *source = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "source");
    const char *tail = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tail");
    char *end;
    long n = LOGS_DEFAULT_LINES;

    if (lines) {
        errno = 0;
        n = strtol(lines, &end, 10);
        if (!*lines || *end || errno || n < 0 || n > APPLOG_TAIL_MAX) {
            *ret_msg = "lines must be a number from 0 to " NUMBER_TEXT(APPLOG_TAIL_MAX);
            return false;
        }
    }
    *ret_lines = (unsigned)n;
    f->ps = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ps");
    if (f->ps && !ps_valid(f->ps)) {
        *ret_msg = "ps must be a process type or an instance (web, web.1)";
        return false;
    }
    f->source = APPLOG_SOURCE_ALL;
    if (source && strcmp(source, "app") == 0)
        f->source = APPLOG_SOURCE_APP;
    else if (source && strcmp(source, "router") == 0)
        f->source = APPLOG_SOURCE_ROUTER;
    else if (source) {
        *ret_msg = "source must be 'app' or 'router'";
        return false;
    }
    *ret_tail = tail && (strcmp(tail, "1") == 0 || strcmp(tail, "true") == 0);
    if (tail && !*ret_tail && strcmp(tail, "0") != 0 && strcmp(tail, "false") != 0) {
        *ret_msg = "tail must be 1 or 0";
        return false;
    }
    return true;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result api_logs_handle(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct applog_filter f = { 0 };
    struct applog_reader *reader = NULL;
    struct log_stream *st;
    const union MHD_ConnectionInfo *info;
    struct MHD_Response *resp;
    const char *msg = NULL;
    unsigned lines = 0;
    bool tail = false;

    if (strcmp(call->method, "GET") != 0)
        return api_respond_error(call->conn, 405, "logs are read with GET");
    if (!parse_query(call->conn, &f, &lines, &tail, &msg))
        return api_respond_error(call->conn, 400, msg);
    st = xcalloc(1, sizeof(*st));
    strbuf_init(&st->pending, 0);
    if (applog_reader_open(call->server->applog, app, &f, &reader, &err) < 0 ||
        applog_reader_tail(reader, lines, &st->pending, &err) < 0) {
        applog_reader_free(reader);
        strbuf_release(&st->pending);
        free(st);
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    }
    st->reader = reader;
    if (!tail) {
        resp = MHD_create_response_from_buffer(st->pending.len, st->pending.buf, MHD_RESPMEM_MUST_COPY);
        stream_free(st);
        return respond_text(call->conn, resp);
    }
    info = MHD_get_connection_info(call->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    st->client_fd = info ? info->connect_fd : -1;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
    if (!resp)
        stream_free(st);
    return respond_text(call->conn, resp);
}
