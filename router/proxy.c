/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The client side of a proxied request, run by libmicrohttpd on the
 * router's loop threads (loop.c drives each loop's daemons; LIBRARIES.md
 * §3 request flow):
 *
 *   1. proxy_uri_log() sees the raw request-target (with the query string,
 *      which the access handler's `url` lacks) and allocates the request;
 *   2. the first access-handler call routes it and builds the upstream
 *      head (request.c) and takes its share of the router's buffer budget;
 *      it never queues a response, because a response queued before the
 *      request is fully read makes MHD close the connection. A streamed
 *      body starts its upstream request here;
 *   3. upload calls collect a small body, or pass a streamed one on
 *      (re-chunked when the client sent it chunked);
 *   4. the final call gets an upstream socket to the backend with the
 *      fewest outstanding requests (an idle pooled one to it, else one
 *      asked of its port agent without waiting: connect.c),
 *      suspends the connection and hands the request to its loop;
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
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define READER_BLOCK (32 * 1024)

/*
 * Each loop keeps up to REQ_CACHE_MAX finished requests for its next ones,
 * with their lock and buffers as they were: a request then costs no
 * malloc, no mutex set-up and no clearing of its 2 KiB response head.
 * Requests freed on other threads (router_stop()) are simply freed.
 */
#define REQ_CACHE_MAX 64
#define REQ_BUFFER_KEEP (16 * 1024)   /* larger buffers are given back rather than kept */

static _Thread_local struct proxy_req *req_cache;
static _Thread_local unsigned req_cache_n;

static void req_destroy(struct proxy_req *req)
{
    strbuf_release(&req->out);
    strbuf_release(&req->reqbody);
    strbuf_release(&req->inbuf);
    strbuf_release(&req->body);
    pthread_mutex_destroy(&req->lock);
    free(req);
}

static void keep_buffer(struct strbuf *sb)
{
    if (sb->alloc > REQ_BUFFER_KEEP)
        strbuf_release(sb);
    else
        strbuf_reset(sb);
}

static struct proxy_req *req_new(void)
{
    struct proxy_req *req = req_cache;

    if (req) {
        req_cache = req->next;
        req_cache_n--;
    } else {
        req = xmalloc(sizeof(*req));
        pthread_mutex_init(&req->lock, NULL);
        strbuf_init(&req->out, 1024);
        strbuf_init(&req->reqbody, 0);
        strbuf_init(&req->inbuf, 0);
        strbuf_init(&req->body, 0);
    }
    memset(req, 0, offsetof(struct proxy_req, lock));
    req->head.nheaders = 0;
    return req;
}

void proxy_req_cache_trim(void)
{
    while (req_cache) {
        struct proxy_req *req = req_cache;
        req_cache = req->next;
        req_destroy(req);
    }
    req_cache_n = 0;
}

struct proxy_req *proxy_req_open(struct router *r, const char *uri)
{
    struct proxy_req *req = req_new();
    struct req_shard *shard;

    atomic_init(&req->refs, 1);
    req->router = r;
    req->fd = -1;
    req->ws_fd = -1;
    /* Bounded by the guard's request-line limit. */
    req->uri = xstrdup(uri);
    req->start_ms = now_ms();

    req->shard = upstream_loop_index(upstream_loop_self());
    shard = &r->shards[req->shard];
    pthread_mutex_lock(&shard->lock);
    req->next = shard->head;
    if (shard->head)
        shard->head->prev = req;
    shard->head = req;
    pthread_mutex_unlock(&shard->lock);
    return req;
}

void *proxy_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct proxy_req *req = proxy_req_open(cls, uri);

    req->conn = conn;
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
    budget_release_all(req->router, req);
    route_table_unref(req->table);
    free(req->uri);
    if (!upstream_loop_self() || req_cache_n >= REQ_CACHE_MAX) {
        req_destroy(req);
        return;
    }
    keep_buffer(&req->out);
    keep_buffer(&req->reqbody);
    keep_buffer(&req->inbuf);
    keep_buffer(&req->body);
    req->next = req_cache;
    req_cache = req;
    req_cache_n++;
}

bool proxy_req_wake_locked(struct proxy_req *req)
{
    if (!req->mhd_suspended || req->client_gone)
        return false;
    req->mhd_suspended = false;
    return true;
}

/* ---------------------------------------------------------------- the budget */

bool budget_take(struct router *r, struct proxy_req *req, uint64_t bytes)
{
    uint64_t used = atomic_load(&r->budget_used);

    do {
        if (used + bytes > r->budget_max)
            return false;
    } while (!atomic_compare_exchange_weak(&r->budget_used, &used, used + bytes));
    req->budget += bytes;
    return true;
}

void budget_release_all(struct router *r, struct proxy_req *req)
{
    if (req->budget)
        atomic_fetch_sub(&r->budget_used, req->budget);
    req->budget = 0;
}

/*
 * What a request may buffer on the router's side, taken whole before any
 * work starts, so that the request and response buffers of all requests
 * together never outgrow the budget and a request that gets under way is
 * never cut for memory: the response buffer (with a head and a read's
 * worth of slack) and the body it holds. The client side's own copy of
 * the bytes being sent (libmicrohttpd's connection pool; the front's send
 * buffer, whose bound take_body_locked() in front.c gives) is not counted
 * here: it is bounded per connection, and connections by the connection
 * limit (docs/OPERATIONS.md, Limits).
 */
static uint64_t budget_need(const struct proxy_req *req)
{
    uint64_t need = RESPONSE_BUFFER_MAX + RESPONSE_HEAD_MAX / 2;

    if (req->stream)
        need += STREAM_BUFFER_MAX;
    else
        need += req->body_length;
    return need;
}

/* ---------------------------------------------------------------- responses */

static enum MHD_Result queue(struct proxy_req *req, unsigned status, struct MHD_Response *resp)
{
    req->status = (int)status;
    req->response_queued = true;
    clients_set_busy(req->conn, true);
    return MHD_queue_response(req->conn, status, resp);
}

static enum MHD_Result queue_failure(struct proxy_req *req, enum router_failure f)
{
    req->failure = f;
    req->bytes_sent = req->is_head ? 0 : req->router->page_len[f];
    return queue(req, failure_status(f), req->router->pages[f]);
}

void proxy_redirect_location(const struct proxy_req *req, struct strbuf *sb)
{
    const struct router *r = req->router;
    const char *path = req->uri;
    char host[HOST_MAX + 1];

    if (request_target_split(req->uri, host, &path) <= 0)
        path = req->uri;
    strbuf_addstr(sb, "https://");
    strbuf_addstr(sb, req->host);
    if (r->tls_port != 443) {
        strbuf_addch(sb, ':');
        strbuf_addstr(sb, r->tls_port_str);
    }
    if (path[0] != '/')
        strbuf_addch(sb, '/');   /* "http://host?q" has an empty path; "*" has none to keep */
    if (strcmp(path, "*") != 0)
        strbuf_addstr(sb, path);
}

/* https_only: GET and HEAD move for good with 301, anything else with 308 (its method and body kept). */
static enum MHD_Result queue_redirect(struct proxy_req *req)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    struct strbuf loc = STRBUF_INIT;
    enum MHD_Result ret;
    unsigned status = strcmp(req->method, "GET") == 0 || req->is_head ? 301 : 308;

    if (!resp)
        return MHD_NO;
    proxy_redirect_location(req, &loc);
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc.buf);
    strbuf_release(&loc);
    ret = queue(req, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/*
 * Under req->lock. Never once router_stop() has marked the request
 * aborted: its pass to wake suspended connections is over by then.
 */
static bool suspend_locked(struct proxy_req *req)
{
    if (req->aborted)
        return false;
    req->mhd_suspended = true;
    MHD_suspend_connection(req->conn);
    return true;
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
    (void)suspend_locked(req);   /* aborted was checked above */
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

static struct MHD_Response *response_for_body(struct proxy_req *req)
{
    const struct http_response_head *h = &req->head;
    struct MHD_Response *resp;
    char *whole = NULL;
    size_t whole_len = 0;

    if (h->body == BODY_NONE) {
        /* A HEAD answer keeps the upstream's Content-Length; 204 and 304 carry none. */
        const char *clen = req->is_head ? http_response_header(h, "Content-Length") : NULL;

        if (clen)
            return MHD_create_response_from_callback(strtoull(clen, NULL, 10), READER_BLOCK, content_reader,
                                                     req, NULL);
        return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (body_complete(req, &whole, &whole_len)) {
        /*
         * The whole body is here already (the common case for small
         * responses): a buffer response lets MHD send head and body in one
         * write instead of going through the content reader.
         */
        resp = MHD_create_response_from_buffer(whole_len, whole, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(whole);
        return resp;
    }
    return MHD_create_response_from_callback(h->body == BODY_LENGTH ? h->content_length : MHD_SIZE_UNKNOWN,
                                             READER_BLOCK, content_reader, req, NULL);
}

void proxy_response_headers(const struct proxy_req *req, void (*emit)(void *ctx, const char *name, const char *value),
                            void *ctx)
{
    const struct http_response_head *h = &req->head;
    struct strbuf via = STRBUF_INIT;

    for (size_t i = 0; i < h->nheaders; i++) {
        const char *name = h->headers[i].name;
        if (http_response_hop_header(h, name) || strcasecmp(name, "Content-Length") == 0)
            continue;
        /* The app's Via lines are one list (RFC 9110 §5.3): all of them, in order, then ours. */
        if (strcasecmp(name, "Via") == 0) {
            header_list_append(&via, h->headers[i].value);
            continue;
        }
        emit(ctx, name, h->headers[i].value);
    }
    if (via.len) {
        header_list_append(&via, "1.1 berth");
        emit(ctx, "Via", via.buf);
        strbuf_release(&via);
    } else {
        emit(ctx, "Via", "1.1 berth");
    }
}

static void add_to_response(void *resp, const char *name, const char *value)
{
    (void)MHD_add_response_header(resp, name, value);
}

static enum MHD_Result queue_upstream_response(struct proxy_req *req)
{
    const struct http_response_head *h = &req->head;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (h->status == 101) {
        clients_set_busy(req->conn, true);
        return ws_queue_response(req);
    }
    resp = response_for_body(req);
    if (!resp)
        return MHD_NO;
    proxy_response_headers(req, add_to_response, resp);
    ret = queue(req, (unsigned)h->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---------------------------------------------------------------- hand-off */


/*
 * Gives req to its loop's upstream side: over an idle pooled connection
 * when allowed, else through a backend's port agent. Returns FAIL_NONE
 * (the loop holds a reference now), or the failure to answer with.
 */
static enum router_failure start_upstream(struct proxy_req *req, bool allow_pool)
{
    struct upstream_loop *l = req->loop;
    enum router_failure f;

    if (atomic_load(&req->router->stopping))
        return FAIL_STOPPING;
    atomic_fetch_add(&req->refs, 1);
    req->handed_off = true;
    /* The backend is chosen first; a pooled connection only when it goes there (connect.c). */
    f = connect_begin(l->connector, req, allow_pool);
    if (f != FAIL_NONE) {
        req->handed_off = false;
        atomic_fetch_sub(&req->refs, 1);
        return f;
    }
    if (req->from_pool || req->dialing)
        upstream_submit(l, req);
    else
        upstream_track(l, req);
    return FAIL_NONE;
}

enum router_failure proxy_req_start(struct proxy_req *req)
{
    strbuf_addstr(&req->out, "\r\n");
    strbuf_add(&req->out, req->reqbody.buf, req->reqbody.len);
    strbuf_release(&req->reqbody);
    req->upload_done = true;
    return start_upstream(req, true);
}

/* The final call of a request whose body (if any) is in: out it goes. */
static enum MHD_Result hand_off(struct proxy_req *req)
{
    enum router_failure f;
    bool suspended;

    if ((f = proxy_req_start(req)) != FAIL_NONE)
        return queue_failure(req, f);
    /*
     * Nothing can answer before this returns: the loop hears from the
     * upstream only once MHD_run() is done, on this same thread.
     */
    pthread_mutex_lock(&req->lock);
    suspended = suspend_locked(req);
    pthread_mutex_unlock(&req->lock);
    return suspended ? MHD_YES : queue_failure(req, FAIL_STOPPING);
}

/* A streamed body's upstream request starts with its head; the body follows as it comes. */
static void begin_stream(struct proxy_req *req)
{
    enum router_failure f;

    strbuf_addstr(&req->out, "\r\n");
    /* A pooled connection could not be retried once part of the body is gone. */
    if ((f = start_upstream(req, false)) != FAIL_NONE)
        req->failure = f;   /* the error page follows once the body is read */
}

/* Bytes for the upstream, framed as the head announced. */
static void stream_out(struct proxy_req *req, const char *data, size_t n)
{
    if (!req->chunked_up) {
        upstream_stream_body(req, data, n);
        return;
    }
    {
        struct strbuf frame = STRBUF_INIT;
        strbuf_grow(&frame, n + 24);
        http_add_chunk_size(&frame, n);
        strbuf_add(&frame, "\r\n", 2);
        strbuf_add(&frame, data, n);
        strbuf_add(&frame, "\r\n", 2);
        upstream_stream_body(req, frame.buf, frame.len);
        strbuf_release(&frame);
    }
}

/*
 * A streamed body's bytes. While the loop has STREAM_BUFFER_MAX unsent,
 * the bytes stay with MHD and the connection sleeps until the loop wakes
 * it. Once the app has answered, or the request failed, the rest of the
 * body is read and dropped.
 */
static enum MHD_Result stream_upload(struct proxy_req *req, const char *data, size_t *size)
{
    bool drop;

    pthread_mutex_lock(&req->lock);
    drop = !req->handed_off || req->head_ready || req->failure != FAIL_NONE || req->aborted || req->loop_done;
    if (!drop && req->out.len - req->written >= STREAM_BUFFER_MAX) {
        req->upload_blocked = true;
        (void)suspend_locked(req);   /* not when aborted (drop is then true) */
        pthread_mutex_unlock(&req->lock);
        return MHD_YES;   /* *size unchanged: MHD offers the bytes again after the resume */
    }
    pthread_mutex_unlock(&req->lock);
    if (!drop)
        stream_out(req, data, *size);
    *size = 0;
    return MHD_YES;
}

static enum MHD_Result resumed(struct proxy_req *req);

/* The streamed body is all in: its last chunk, then the answer, or a wait for it. */
static enum MHD_Result stream_end(struct proxy_req *req)
{
    req->upload_done = true;
    if (req->chunked_up && !req->loop_done)
        upstream_stream_body(req, "0\r\n\r\n", 5);
    return resumed(req);
}

void proxy_req_begin(struct proxy_req *req, const char *method, bool tls, const char *fwd,
                     const struct request_header *headers, size_t n_headers)
{
    struct upstream_loop *l = upstream_loop_self();
    size_t n = strlen(method);

    req->seen = true;
    req->loop = l;
    req->loop_idx = upstream_loop_index(l);
    req->tls = tls;
    memcpy(req->fwd, fwd, strnlen(fwd, sizeof(req->fwd) - 1));
    req->fwd[sizeof(req->fwd) - 1] = '\0';
    if (n >= sizeof(req->method))
        n = sizeof(req->method) - 1;
    memcpy(req->method, method, n);
    req->method[n] = '\0';
    req->is_head = strcmp(method, "HEAD") == 0;
    request_begin(req, method, headers, n_headers);
    if (req->failure != FAIL_NONE || req->redirect)
        return;
    if (!budget_take(req->router, req, budget_need(req)))
        req->failure = FAIL_OVERLOADED;
}

/* The first call: route, plan, take the budget; a streamed body starts upstream now. */
static enum MHD_Result first_call(struct proxy_req *req, const char *method)
{
    struct upstream_loop *l = upstream_loop_self();
    bool tls = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_DAEMON)->daemon == l->daemons[1];

    proxy_req_begin(req, method, tls, clients_address(req->conn), NULL, 0);
    if (req->failure == FAIL_NONE && !req->redirect && req->stream)
        begin_stream(req);
    return MHD_YES;
}

enum router_failure proxy_req_due(struct proxy_req *req, bool *ret_ready)
{
    enum router_failure f;
    bool aborted;

    pthread_mutex_lock(&req->lock);
    f = req->failure;
    *ret_ready = req->head_ready;
    aborted = req->aborted;
    pthread_mutex_unlock(&req->lock);
    return aborted ? FAIL_STOPPING : f;
}

/* Resumed by the upstream loop (or by router_stop()): answer, or wait again. */
static enum MHD_Result resumed(struct proxy_req *req)
{
    bool ready;
    enum router_failure f = proxy_req_due(req, &ready);

    if (f != FAIL_NONE)
        return queue_failure(req, f);
    if (ready)
        return queue_upstream_response(req);
    /* A spurious call: wait again. */
    pthread_mutex_lock(&req->lock);
    if (!req->head_ready && req->failure == FAIL_NONE)
        (void)suspend_locked(req);
    pthread_mutex_unlock(&req->lock);
    return MHD_YES;
}

enum MHD_Result proxy_access(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls)
{
    struct proxy_req *req = *req_cls;

    (void)cls;
    (void)conn;
    (void)url;
    (void)version;
    if (!req)
        return MHD_NO;
    if (!req->seen)
        return first_call(req, method);
    if (*upload_data_size > 0) {
        if (req->stream)
            return stream_upload(req, upload_data, upload_data_size);
        /* A small body: the guard and MHD hold it to its Content-Length (SMALL_BODY_MAX at most). */
        if (req->failure == FAIL_NONE && !req->redirect)
            strbuf_add(&req->reqbody, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->response_queued)
        return MHD_YES;
    if (req->redirect)
        return queue_redirect(req);
    if (req->stream && req->handed_off && !req->upload_done)
        return stream_end(req);
    if (!req->handed_off) {
        if (req->failure != FAIL_NONE)
            return queue_failure(req, req->failure);
        return hand_off(req);
    }
    return resumed(req);
}

void proxy_req_close(struct proxy_req *req, bool completed)
{
    struct router *r = req->router;
    bool cancel;

    pthread_mutex_lock(&req->lock);
    req->client_gone = true;
    /* Usually the loop finished first; then there is nothing to cancel. */
    cancel = req->handed_off && !req->loop_done;
    if (!completed && req->status == 0)
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

void proxy_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                     enum MHD_RequestTerminationCode toe)
{
    struct proxy_req *req = *req_cls;

    (void)cls;
    clients_set_busy(conn, false);
    if (!req)
        return;
    *req_cls = NULL;
    ws_forget(req);
    proxy_req_close(req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
}
