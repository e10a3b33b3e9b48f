/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The client side of a proxied request, run by libmicrohttpd from the
 * router's loop threads (upstream.c drives each loop's daemon; LIBRARIES.md
 * §3 request flow):
 *
 *   1. proxy_uri_log() sees the raw URI (with the query string, which the
 *      access handler's `url` lacks) and allocates the request;
 *   2. the first access-handler call routes by Host and builds the upstream
 *      request head; it never queues a response, because a response queued
 *      before the request is fully read makes MHD close the connection;
 *   3. upload calls collect the (already de-chunked) body, capped;
 *   4. the final call obtains an upstream socket (pool, else the connect
 *      callback), suspends the connection and hands the request to an
 *      upstream loop;
 *   5. the loop resumes the connection once the response head is parsed
 *      (or an error page is due) and the handler queues the response, whose
 *      content reader drains the loop's buffer and suspends again whenever
 *      it runs dry;
 *   6. proxy_completed() logs the request and gives it back to the loop.
 *
 * Suspension is always entered with req->lock held and after setting
 * mhd_suspended, and only the party that clears the flag resumes: so a
 * connection is never resumed before it is suspended, nor twice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define READER_BLOCK (32 * 1024)

void *proxy_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct router *r = cls;
    struct proxy_req *req = xcalloc(1, sizeof(*req));
    struct req_shard *shard;

    atomic_init(&req->refs, 1);
    pthread_mutex_init(&req->lock, NULL);
    req->router = r;
    req->conn = conn;
    req->fd = -1;
    req->ws_fd = -1;
    /* Bounded by MHD_OPTION_CONNECTION_MEMORY_LIMIT: MHD refuses longer request lines. */
    req->uri = xstrdup(uri);
    req->start_ms = now_ms();
    strbuf_init(&req->out, 1024);
    strbuf_init(&req->reqbody, 0);
    strbuf_init(&req->inbuf, 0);
    strbuf_init(&req->body, 0);

    req->shard = (unsigned)(((uintptr_t)req >> 6) % REQ_SHARDS);
    shard = &r->shards[req->shard];
    pthread_mutex_lock(&shard->lock);
    req->next = shard->head;
    if (shard->head)
        shard->head->prev = req;
    shard->head = req;
    pthread_mutex_unlock(&shard->lock);
    return req;
}

void proxy_req_unref(struct proxy_req *req)
{
    if (atomic_fetch_sub(&req->refs, 1) != 1)
        return;
    if (req->fd >= 0)
        (void)close(req->fd);
    if (req->ws_fd >= 0)
        (void)close(req->ws_fd);
    route_table_unref(req->table);
    strbuf_release(&req->out);
    strbuf_release(&req->reqbody);
    strbuf_release(&req->inbuf);
    strbuf_release(&req->body);
    pthread_mutex_destroy(&req->lock);
    free(req->uri);
    free(req);
}

bool proxy_req_wake_locked(struct proxy_req *req)
{
    if (!req->mhd_suspended || req->client_gone)
        return false;
    req->mhd_suspended = false;
    return true;
}

/* ---------------------------------------------------------------- request head */

struct head_ctx {
    struct proxy_req *req;
    int nhost;
    const char *host;
    const char *request_id;
    const char *upgrade;          /* Upgrade: value when it names websocket */
    bool conn_upgrade;            /* Connection: lists "upgrade" */
    bool bad_expect;              /* an Expect other than 100-continue (417, as Heroku) */
    struct strbuf xff;
    struct strbuf via;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct head_ctx *c = cls;
    struct strbuf *out = &c->req->out;

    (void)kind;
    if (!value)
        value = "";
    if (strcasecmp(key, "Host") == 0) {
        c->nhost++;
        c->host = value;
    } else if (strcasecmp(key, "Content-Length") == 0 ||
               strcasecmp(key, "Transfer-Encoding") == 0) {
        /* The body is forwarded de-chunked with our own Content-Length. */
        c->req->send_length = true;
        return MHD_YES;
    } else if (strcasecmp(key, "Upgrade") == 0) {
        if (header_value_has_token(value, "websocket"))
            c->upgrade = value;
        return MHD_YES;
    } else if (strcasecmp(key, "Connection") == 0) {
        if (header_value_has_token(value, "upgrade"))
            c->conn_upgrade = true;
        return MHD_YES;
    } else if (strcasecmp(key, "Expect") == 0) {
        /* MHD answers 100-continue itself; nothing else can be met. */
        if (strcasecmp(value, "100-continue") != 0)
            c->bad_expect = true;
        return MHD_YES;
    } else if (header_is_hop_by_hop(key)) {
        return MHD_YES;
    } else if (strcasecmp(key, "X-Forwarded-For") == 0) {
        if (c->xff.len)
            strbuf_addstr(&c->xff, ", ");
        strbuf_addstr(&c->xff, value);
        return MHD_YES;
    } else if (strcasecmp(key, "Via") == 0) {
        if (c->via.len)
            strbuf_addstr(&c->via, ", ");
        strbuf_addstr(&c->via, value);
        return MHD_YES;
    } else if (strcasecmp(key, "X-Request-Id") == 0) {
        if (!c->request_id)
            c->request_id = value;
        return MHD_YES;
    } else if (strcasecmp(key, "X-Forwarded-Proto") == 0 ||
               strcasecmp(key, "X-Forwarded-Port") == 0 ||
               strcasecmp(key, "X-Request-Start") == 0) {
        /* Set by the router alone, whatever the client claims. */
        return MHD_YES;
    }
    strbuf_addstr(out, key);
    strbuf_addstr(out, ": ");
    strbuf_addstr(out, value);
    strbuf_addstr(out, "\r\n");
    return MHD_YES;
}

static void client_ip(struct MHD_Connection *conn, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    buf[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    if (ci->client_addr->sa_family == AF_INET)
        (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, buf, (socklen_t)size);
    else if (ci->client_addr->sa_family == AF_INET6)
        (void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, buf, (socklen_t)size);
}

static uint64_t realtime_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* First access-handler call: route the request and build the upstream head. */
static void begin_request(struct proxy_req *req, const char *method)
{
    struct router *r = req->router;
    struct head_ctx c = { .req = req, .xff = STRBUF_INIT, .via = STRBUF_INIT };
    const char *clen;

    (void)snprintf(req->method, sizeof(req->method), "%s", method);
    req->is_head = strcmp(method, "HEAD") == 0;
    client_ip(req->conn, req->fwd, sizeof(req->fwd));

    strbuf_addf(&req->out, "%s %s HTTP/1.1\r\n", method, req->uri);
    (void)MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_header, &c);

    if (c.upgrade && c.conn_upgrade) {
        /* The only hop-by-hop headers passed on: they ask the app to switch protocols. */
        req->upgrade = true;
        strbuf_addf(&req->out, "Connection: Upgrade\r\nUpgrade: %s\r\n", c.upgrade);
    }
    if (c.request_id && request_id_valid(c.request_id))
        (void)snprintf(req->request_id, sizeof(req->request_id), "%s", c.request_id);
    else
        request_id_generate(req->request_id);

    if (c.nhost != 1 || host_normalise(c.host, req->host) < 0) {
        /* Missing, repeated (RFC 7230 §5.4) or malformed Host: no app can match. */
        req->host[0] = '\0';
        req->failure = c.nhost > 1 ? FAIL_BAD_REQUEST : FAIL_NO_ROUTE;
    } else if (c.bad_expect) {
        req->failure = FAIL_EXPECTATION;
    } else if (atomic_load(&r->stopping)) {
        req->failure = FAIL_STOPPING;
    } else {
        req->table = router_current_table(r);
        req->route = route_table_lookup(req->table, req->host);
        if (!req->route)
            req->failure = FAIL_NO_ROUTE;
    }

    /*
     * A large body of known length is streamed to the app as it arrives
     * (the app sees it at the client's pace, and the router holds at most
     * STREAM_BUFFER_MAX of it); a chunked one is collected, up to
     * REQUEST_BODY_MAX, to be sent with a Content-Length, which more apps
     * understand than a chunked request.
     */
    clen = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen && !MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) &&
        strtoull(clen, NULL, 10) > STREAM_BODY_MIN && !req->upgrade) {
        req->stream = true;
        req->stream_length = strtoull(clen, NULL, 10);
    } else if (clen && strtoull(clen, NULL, 10) > REQUEST_BODY_MAX) {
        req->failure = FAIL_TOO_LARGE;
    }

    if (c.xff.len)
        strbuf_addstr(&c.xff, ", ");
    strbuf_addstr(&c.xff, req->fwd);
    strbuf_addf(&req->out,
                "X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: %s\r\n"
                "X-Request-Start: %llu\r\nX-Request-Id: %s\r\nVia: %s%s1.1 berth\r\n",
                c.xff.buf, r->port_str, (unsigned long long)realtime_ms(), req->request_id,
                c.via.buf, c.via.len ? ", " : "");
    strbuf_release(&c.xff);
    strbuf_release(&c.via);
}

/* ---------------------------------------------------------------- responses */

static enum MHD_Result queue_failure(struct proxy_req *req, enum router_failure f)
{
    struct router *r = req->router;

    req->failure = f;
    req->status = (int)failure_status(f);
    req->response_queued = true;
    return MHD_queue_response(req->conn, failure_status(f), r->pages[f]);
}

static ssize_t content_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct proxy_req *req = cls;
    size_t avail;

    (void)pos;
    pthread_mutex_lock(&req->lock);
    if (req->aborted) {
        pthread_mutex_unlock(&req->lock);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    avail = req->body.len - req->body_off;
    if (avail > 0) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, req->body.buf + req->body_off, n);
        req->body_off += n;
        req->bytes_sent += n;
        if (req->body_off == req->body.len) {
            strbuf_reset(&req->body);
            req->body_off = 0;
        } else if (req->body_off >= RESPONSE_BUFFER_MAX / 2) {
            strbuf_remove_prefix(&req->body, req->body_off);
            req->body_off = 0;
        }
        if (req->paused && req->body.len - req->body_off < RESPONSE_BUFFER_MAX / 2)
            upstream_unpause_locked(req);
        pthread_mutex_unlock(&req->lock);
        return (ssize_t)n;
    }
    if (req->body_error || atomic_load(&req->router->stopping)) {
        pthread_mutex_unlock(&req->lock);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (req->body_done) {
        pthread_mutex_unlock(&req->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing buffered yet: sleep until the upstream loop has more. */
    req->mhd_suspended = true;
    MHD_suspend_connection(req->conn);
    pthread_mutex_unlock(&req->lock);
    return 0;
}

/* Takes the buffered body when the upstream has delivered all of it. */
static bool body_complete(struct proxy_req *req, char **ret, size_t *ret_len)
{
    bool done;

    pthread_mutex_lock(&req->lock);
    done = req->body_done && !req->body_error;
    if (done) {
        if (req->body_off)
            strbuf_remove_prefix(&req->body, req->body_off);
        req->body_off = 0;
        req->bytes_sent = req->body.len;
        *ret = strbuf_detach(&req->body, ret_len);
    }
    pthread_mutex_unlock(&req->lock);
    return done;
}

static enum MHD_Result queue_upstream_response(struct proxy_req *req)
{
    const struct http_response_head *h = &req->head;
    struct MHD_Response *resp;
    char *whole = NULL;
    size_t whole_len = 0;

    if (h->status == 101)
        return ws_queue_response(req);
    enum MHD_Result ret;
    const char *via = NULL;

    if (h->body == BODY_NONE) {
        const char *clen = NULL;
        /* A HEAD answer keeps the upstream's Content-Length; 204 and 304 carry none. */
        for (size_t i = 0; req->is_head && i < h->nheaders; i++)
            if (strcasecmp(h->headers[i].name, "Content-Length") == 0)
                clen = h->headers[i].value;
        if (clen)
            resp = MHD_create_response_from_callback(strtoull(clen, NULL, 10), READER_BLOCK,
                                                     content_reader, req, NULL);
        else
            resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else if (body_complete(req, &whole, &whole_len)) {
        /*
         * The whole body is here already (the common case for small
         * responses): a buffer response lets MHD send head and body in one
         * write instead of going through the content reader.
         */
        resp = MHD_create_response_from_buffer(whole_len, whole, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(whole);
    } else {
        resp = MHD_create_response_from_callback(h->body == BODY_LENGTH ? h->content_length
                                                                         : MHD_SIZE_UNKNOWN,
                                                 READER_BLOCK, content_reader, req, NULL);
    }
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; i < h->nheaders; i++) {
        const char *name = h->headers[i].name;
        if (header_is_hop_by_hop(name) || strcasecmp(name, "Content-Length") == 0)
            continue;
        if (strcasecmp(name, "Via") == 0) {
            via = h->headers[i].value;
            continue;
        }
        (void)MHD_add_response_header(resp, name, h->headers[i].value);
    }
    if (via) {
        char *v = xasprintf("%s, 1.1 berth", via);
        (void)MHD_add_response_header(resp, "Via", v);
        free(v);
    } else {
        (void)MHD_add_response_header(resp, "Via", "1.1 berth");
    }
    req->status = h->status;
    req->response_queued = true;
    ret = MHD_queue_response(req->conn, (unsigned)h->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---------------------------------------------------------------- hand-off */

int proxy_get_upstream(struct proxy_req *req, bool allow_pool)
{
    struct router *r = req->router;
    uint64_t t0;
    int fd = allow_pool ? pool_take(req->route->pool, req->loop_idx, req->dyno) : -1, one = 1, ret, flags;

    if (fd >= 0) {
        req->from_pool = true;
        return fd;
    }
    req->from_pool = false;
    t0 = now_ms();
    req->dyno[0] = '\0';
    ret = r->cfg.connect(r->cfg.connect_cls, req->route->app, req->route->generation, &fd, req->dyno);
    req->dyno[ROUTER_DYNO_MAX - 1] = '\0';
    req->connect_ms += now_ms() - t0;
    if (ret < 0)
        return ret;
    if (fd < 0)
        return -EBADF;
    /* The socket is ours now: the loop needs it non-blocking, and requests are written whole. */
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        (void)close(fd);
        return -EBADF;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/*
 * Gives req an upstream socket and the loop it runs on; the head (and body)
 * in req->out goes out with upstream_submit(). Returns 0, or the failure to
 * answer with.
 */
static enum router_failure attach_upstream(struct proxy_req *req, bool allow_pool)
{
    struct router *r = req->router;
    int fd;

    /* The loop whose daemon runs this handler also carries the upstream side. */
    req->loop = upstream_loop_self();
    req->loop_idx = upstream_loop_index(req->loop);
    fd = proxy_get_upstream(req, allow_pool);
    if (fd < 0)
        return fd == -ENOENT ? FAIL_NO_WEB : FAIL_CONNECT;

    pthread_mutex_lock(&req->lock);
    if (atomic_load(&r->stopping)) {
        pthread_mutex_unlock(&req->lock);
        (void)close(fd);
        return FAIL_STOPPING;
    }
    req->fd = fd;
    /* A pooled socket is still registered (disarmed) with this loop's epoll. */
    req->in_epoll = req->from_pool;
    req->handed_off = true;
    req->service_start_ms = now_ms();
    pthread_mutex_unlock(&req->lock);
    atomic_fetch_add(&req->refs, 1);
    return FAIL_NONE;
}

static enum MHD_Result hand_off(struct proxy_req *req)
{
    enum router_failure f;

    if (req->send_length || req->reqbody.len)
        strbuf_addf(&req->out, "Content-Length: %zu\r\n", req->reqbody.len);
    strbuf_addstr(&req->out, "\r\n");
    strbuf_add(&req->out, req->reqbody.buf, req->reqbody.len);
    strbuf_release(&req->reqbody);

    if ((f = attach_upstream(req, true)) != FAIL_NONE)
        return queue_failure(req, f);
    pthread_mutex_lock(&req->lock);
    req->mhd_suspended = true;
    MHD_suspend_connection(req->conn);
    pthread_mutex_unlock(&req->lock);
    upstream_submit(req->loop, req);
    return MHD_YES;
}

/*
 * A streamed body's bytes. The first ones start the upstream request (on a
 * fresh connection: a pooled one could not be retried once part of the body
 * is gone). While the loop has STREAM_BUFFER_MAX unsent, the bytes stay with
 * MHD and the connection sleeps until the loop wakes it. Once the app has
 * answered, or the request failed, the rest of the body is read and dropped.
 */
static enum MHD_Result stream_upload(struct proxy_req *req, const char *data, size_t *size)
{
    enum router_failure f;
    bool drop;

    if (!req->handed_off) {
        strbuf_addf(&req->out, "Content-Length: %llu\r\n\r\n", (unsigned long long)req->stream_length);
        if ((f = attach_upstream(req, false)) != FAIL_NONE) {
            req->failure = f;   /* the error page follows when the body is read */
            *size = 0;
            return MHD_YES;
        }
        req->retried = true;
        upstream_submit(req->loop, req);
    }
    pthread_mutex_lock(&req->lock);
    drop = req->head_ready || req->failure != FAIL_NONE || req->aborted || req->loop_done;
    if (!drop && req->out.len - req->written >= STREAM_BUFFER_MAX) {
        req->upload_blocked = true;
        req->mhd_suspended = true;
        MHD_suspend_connection(req->conn);
        pthread_mutex_unlock(&req->lock);
        return MHD_YES;   /* *size unchanged: MHD offers the bytes again after the resume */
    }
    pthread_mutex_unlock(&req->lock);
    if (!drop)
        upstream_stream_body(req, data, *size);
    *size = 0;
    return MHD_YES;
}

enum MHD_Result proxy_access(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls)
{
    struct proxy_req *req = *req_cls;
    enum router_failure f;
    bool ready, aborted;

    (void)cls;
    (void)url;
    (void)version;
    if (!req)
        return MHD_NO;
    if (!req->seen) {
        req->seen = true;
        begin_request(req, method);
        return MHD_YES;
    }
    if (*upload_data_size > 0 && req->stream && req->failure == FAIL_NONE)
        return stream_upload(req, upload_data, upload_data_size);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->failure != FAIL_NONE)
            return MHD_YES;   /* discard: the error page follows when the body is read */
        if (req->reqbody.len + n > REQUEST_BODY_MAX) {
            req->failure = FAIL_TOO_LARGE;
            strbuf_release(&req->reqbody);
            return MHD_YES;
        }
        strbuf_add(&req->reqbody, upload_data, n);
        return MHD_YES;
    }
    if (req->response_queued)
        return MHD_YES;
    if (!req->handed_off) {
        if (req->failure != FAIL_NONE)
            return queue_failure(req, req->failure);
        return hand_off(req);
    }

    /* Resumed by the upstream loop (or by router_stop()). */
    pthread_mutex_lock(&req->lock);
    f = req->failure;
    ready = req->head_ready;
    aborted = req->aborted;
    pthread_mutex_unlock(&req->lock);
    if (aborted)
        return queue_failure(req, FAIL_STOPPING);
    if (f != FAIL_NONE)
        return queue_failure(req, f);
    if (ready)
        return queue_upstream_response(req);
    /* A spurious call: wait again. */
    pthread_mutex_lock(&req->lock);
    if (!req->head_ready && req->failure == FAIL_NONE && !req->aborted) {
        req->mhd_suspended = true;
        MHD_suspend_connection(conn);
    }
    pthread_mutex_unlock(&req->lock);
    return MHD_YES;
}

void proxy_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                     enum MHD_RequestTerminationCode toe)
{
    struct router *r = cls;
    struct proxy_req *req = *req_cls;
    bool cancel;

    (void)conn;
    if (!req)
        return;
    *req_cls = NULL;
    pthread_mutex_lock(&req->lock);
    req->client_gone = true;
    /* Usually the loop finished first; then there is nothing to cancel. */
    cancel = req->handed_off && !req->loop_done;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->status == 0)
        req->status = 499;   /* Heroku's H27: the client went away first */
    pthread_mutex_unlock(&req->lock);

    if (r->access_log && req->seen)
        access_log(req);

    pthread_mutex_lock(&r->shards[req->shard].lock);
    if (req->prev)
        req->prev->next = req->next;
    else
        r->shards[req->shard].head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    pthread_mutex_unlock(&r->shards[req->shard].lock);

    if (cancel)
        upstream_cancel(req->loop, req);   /* passes our reference on */
    else
        proxy_req_unref(req);
}
