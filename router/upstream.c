/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The upstream side of a request, on its loop's thread (loop.c runs the
 * loop): it waits for a socket into a backend (connect.c: an agent's
 * answer, or a stock socket the loop dials itself), writes the
 * request, reads and parses the response head, then relays the body into
 * the request's buffer for libmicrohttpd's content reader, decoding
 * chunked bodies (MHD re-chunks towards the client).
 *
 * An upstream socket is registered once, edge-triggered, for its whole
 * life, pooled idle times included: its epoll data is its fd
 * (UPSTREAM_EV_TAG), and the loop's map (l->by_fd) names the request it
 * serves, NULL while it is idle. So a request on a pooled connection costs
 * no epoll_ctl, and an event can never reach a request that is done with
 * the socket, let alone a freed one: finish() unmaps the fd before the
 * request goes. An idle socket's events (the app closed it, or sent bytes
 * nobody asked for) are dropped; pool_take()'s check catches both. Being
 * edge-triggered, the loop reads until a short read (or to the end, when
 * the event says the app closed) and writes until the socket is full; an
 * epoll_ctl(MOD) polls again where that is not enough: when a request
 * starts writing on a socket already registered, and when a paused one
 * resumes.
 *
 * Back-pressure: when a request's buffer holds RESPONSE_BUFFER_MAX bytes
 * the loop leaves the socket unread and drops its events; the content
 * reader has it polled again once it has drained half. Deadlines, checked
 * by the loop's scan every half second over its active requests: the
 * app's connect timeout while a socket is on its way (H19), its first-byte
 * window for the response head (H12), then its rolling idle window while
 * the body flows (H15).
 *
 * A response is checked as Heroku's router checks it: a status line with a
 * reason phrase and a well-formed head (else 502 H17), no head over
 * RESPONSE_HEAD_MAX and no Set-Cookie over SET_COOKIE_MAX (else 502 H25).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define READ_CHUNK (32 * 1024)

#define WATCH_READ (EPOLLIN | EPOLLRDHUP | EPOLLET)

/* fd serves req on l from now on (loop thread only). */
static void map_set(struct upstream_loop *l, int fd, struct proxy_req *req)
{
    if ((unsigned)fd >= l->by_fd_cap) {
        unsigned cap = l->by_fd_cap ? l->by_fd_cap : 64;

        while (cap <= (unsigned)fd)
            cap *= 2;
        l->by_fd = xrealloc(l->by_fd, cap * sizeof(*l->by_fd));
        memset(l->by_fd + l->by_fd_cap, 0, (cap - l->by_fd_cap) * sizeof(*l->by_fd));
        l->by_fd_cap = cap;
    }
    l->by_fd[fd] = req;
}

/* fd serves no request of l any more: its events, if any still come, are dropped. */
static void map_clear(struct upstream_loop *l, int fd)
{
    if ((unsigned)fd < l->by_fd_cap)
        l->by_fd[fd] = NULL;
}

void upstream_map_free(struct upstream_loop *l)
{
    free(l->by_fd);
    l->by_fd = NULL;
    l->by_fd_cap = 0;
}

/* What req's socket is watched for: EPOLLOUT only while it connects or has bytes to write. */
static struct epoll_event watch_event(const struct proxy_req *req)
{
    bool out = req->ustate == UP_CONNECTING || req->ustate == UP_WRITING;
    struct epoll_event ev = { .events = WATCH_READ | (out ? EPOLLOUT : 0),
                              .data.u64 = UPSTREAM_EV_TAG | (uint32_t)req->fd };

    return ev;
}

/*
 * Maps req's socket to req and registers it when it is not yet (a pooled
 * socket is). A registered socket is polled again only when req waits to
 * write: edge-triggered epoll reports a socket already writable only on a
 * new poll. Under req->lock, on req's loop.
 */
static void watch_locked(struct proxy_req *req)
{
    struct epoll_event ev;

    if (req->fd < 0)
        return;
    map_set(req->loop, req->fd, req);
    ev = watch_event(req);
    if (!req->in_epoll) {
        if (epoll_ctl(req->loop->epfd, EPOLL_CTL_ADD, req->fd, &ev) == 0)
            req->in_epoll = true;
    } else if (ev.events & EPOLLOUT) {
        (void)epoll_ctl(req->loop->epfd, EPOLL_CTL_MOD, req->fd, &ev);
    }
}

static bool is_active(const struct upstream_loop *l, const struct proxy_req *req)
{
    return req->lprev || l->active == req;
}

void upstream_track(struct upstream_loop *l, struct proxy_req *req)
{
    if (is_active(l, req))
        return;
    req->lnext = l->active;
    req->lprev = NULL;
    if (l->active)
        l->active->lprev = req;
    l->active = req;
}

static void untrack(struct upstream_loop *l, struct proxy_req *req)
{
    if (req->lprev)
        req->lprev->lnext = req->lnext;
    else if (l->active == req)
        l->active = req->lnext;
    if (req->lnext)
        req->lnext->lprev = req->lprev;
    req->lprev = req->lnext = NULL;
}

/* Writes as much of req->out as the socket takes. Returns -1 on a socket error, else 0. */
static int write_out(struct proxy_req *req)
{
    while (req->written < req->out.len) {
        ssize_t n = send(req->fd, req->out.buf + req->written, req->out.len - req->written,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        req->written += (size_t)n;
    }
    return 0;
}

static void copy_dyno(char dst[ROUTER_DYNO_MAX], const char *name);
static void wake_upload(struct proxy_req *req);

/*
 * A dial (connect.c) is submitted while its connect may still be under
 * way: the first send says whether the connection is up. Returns whether
 * it is; if not (still connecting, or failed: the error comes as an
 * event), the request stays in UP_CONNECTING, under the connect deadline
 * and the dial's own wait, and its socket waits for EPOLLOUT.
 */
static bool dial_sent(struct upstream_loop *l, struct proxy_req *req)
{
    if (write_out(req) < 0 || req->written == 0)
        return false;
    connect_dial_done(l->connector, req);
    connect_succeeded(req);
    req->service_start_ms = now_ms();
    req->connect_ms += req->service_start_ms - req->connect_start_ms;
    return true;
}

void upstream_submit(struct upstream_loop *l, struct proxy_req *req)
{
    bool connected = !req->dialing || dial_sent(l, req);

    if (connected) {
        copy_dyno(req->dyno, req->backend->name);
        req->deadline_ms = now_ms() + req->target->settings.head_timeout_ms;
        /* Usually the whole request goes out here, and the loop first hears of it when the answer comes. */
        (void)write_out(req);
        req->ustate = req->written < req->out.len ? UP_WRITING : UP_HEAD;
    }
    upstream_track(l, req);
    pthread_mutex_lock(&req->lock);
    watch_locked(req);
    pthread_mutex_unlock(&req->lock);
    /* A retry's upload may have filled its buffer while its first backend failed. */
    if (connected && req->stream)
        wake_upload(req);
}

void upstream_unpause_locked(struct proxy_req *req)
{
    struct epoll_event ev;

    if (!req->paused || req->fd < 0 || req->loop_done)
        return;
    req->paused = false;
    /* The bytes left unread raise no new edge: a new poll reports them. */
    ev = watch_event(req);
    if (req->in_epoll)
        (void)epoll_ctl(req->loop->epfd, EPOLL_CTL_MOD, req->fd, &ev);
}

/*
 * Closes an upstream socket, unmapped and out of the loop's epoll first
 * when it is in it: close() alone leaves the registration alive while a
 * process forked meanwhile still holds a copy of the socket (between its
 * fork and exec), and its events would then name an fd number that may
 * already be another socket's.
 */
static void close_registered(struct upstream_loop *l, int fd, bool registered)
{
    map_clear(l, fd);
    if (registered)
        (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    (void)close(fd);
}

void upstream_close_socket(struct upstream_loop *l, struct proxy_req *req)
{
    bool registered;
    int fd;

    pthread_mutex_lock(&req->lock);
    fd = req->fd;
    registered = req->in_epoll;
    req->fd = -1;
    req->in_epoll = false;
    pthread_mutex_unlock(&req->lock);
    if (fd >= 0)
        close_registered(l, fd, registered);
}

/*
 * The retransmission floor of a new connection into a container, from its
 * connect until it has carried an answer. On the container's loopback the
 * handshake is over inside connect(), but when the app's accept queue is
 * full at the instant the handshake's last ACK arrives, the app's kernel
 * drops that ACK, and the request that follows it, without a word: our
 * side holds a connection the app does not have, and the request goes
 * again only when our retransmission timer fires, after the kernel's
 * floor of 200 ms (then 400). Through the router to busybox httpd
 * (backlog 9) at 16 clients that was a few requests a second at 200-400
 * ms, and wrk's p99 66-142 ms against the same busybox's 2.3 ms direct
 * (docs/ARCHITECTURE.md, The router). TCP_RTO_MIN_US lowers the floor for
 * one socket: the request goes again after ~10 ms (whole ticks: 12 ms at
 * HZ=250), when the app has usually taken a connection off its queue,
 * and after twice as long each time if not. The kernel takes no floor
 * under two ticks, 20 ms at HZ=100, where the first refusal (EINVAL) makes
 * that the floor; kernels before 6.15 refuse the option (ENOPROTOOPT), and
 * the first refusal stops the asking there, the floor staying the
 * kernel's.
 */
static _Atomic int fresh_rto_us = FRESH_RTO_MIN_US;   /* 0: the kernel takes no floor of ours */

void upstream_rto_fresh(int fd)
{
    int us = atomic_load_explicit(&fresh_rto_us, memory_order_relaxed);

    if (us == 0 || setsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &us, sizeof(us)) == 0)
        return;
    if (errno == EINVAL && us == FRESH_RTO_MIN_US) {
        us = 2 * FRESH_RTO_MIN_US;
        if (setsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &us, sizeof(us)) == 0) {
            atomic_store_explicit(&fresh_rto_us, us, memory_order_relaxed);
            return;
        }
    }
    if (errno == EINVAL || errno == ENOPROTOOPT)
        atomic_store_explicit(&fresh_rto_us, 0, memory_order_relaxed);
}

/*
 * A connection that has carried an answer is the app's: a kept-alive one
 * gets the kernel's floor back before it is first pooled (once per
 * connection, not per request), and so does a websocket's once its 101 is
 * in; a short floor would draw a retransmission every time an app takes
 * longer than it to answer while its kernel holds back the ACK. A
 * container's network namespace starts with the kernel's TCP_RTO_MIN and
 * its processes cannot change it (/proc/sys is read-only there), so that
 * is the value to give back.
 */
static void rto_settle(const struct proxy_req *req, int fd)
{
    int us = KERNEL_RTO_MIN_US;

    if (!req->from_pool && atomic_load_explicit(&fresh_rto_us, memory_order_relaxed) != 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &us, sizeof(us));
}

/*
 * Whether req's socket, not going back to the pool, ends with a reset
 * rather than a FIN: when the whole answer was read and the app said it
 * closes the connection (Connection: close, an HTTP/1.0 answer, a body the
 * close ends). Such an app has sent its FIN or is about to, so nothing of
 * the exchange is lost. A FIN from us would leave the app's socket in
 * TIME_WAIT, one per request of an app that closes every connection (about
 * 13,000 at a time in the container of busybox httpd under load), and two
 * more packets, whose handling and the TIME_WAIT's later reuse the router
 * pays for in its close() and next connect(). haproxy's `option nolinger`
 * does the same for its servers. Every other close stays a FIN (a
 * keep-alive app not reused, an error, a timeout, a client gone): there the
 * app should see an orderly end.
 */
static bool ends_with_reset(const struct proxy_req *req)
{
    return req->body_done && !req->body_error && !req->head.keep_alive;
}

static void close_with_reset(struct upstream_loop *l, int fd, bool registered)
{
    struct linger now = { .l_onoff = 1, .l_linger = 0 };

    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
    close_registered(l, fd, registered);
}

/*
 * The loop is done with req: the fd, unmapped, goes back to the pool (still
 * registered) or is closed, and the loop's reference is dropped. An event
 * for the fd already in this batch finds no request, or the request that
 * took the connection (or, once closed, the fd number) meanwhile: to one
 * reading or writing it is news a read or a write finds nothing in, and
 * on_event() passes a connecting one only what a connect ends with.
 */
static void finish(struct upstream_loop *l, struct proxy_req *req, bool reuse)
{
    bool registered, reset;
    int fd;

    /* The app may have answered before taking all of a streamed body: never reuse that. */
    if (req->stream)
        reuse = false;
    untrack(l, req);
    if (req->ustate == UP_CONNECTING)
        connect_forget(l->connector, req);
    /* Every end of the upstream side passes here: the backend no longer has the request outstanding. */
    connect_leave(req);

    pthread_mutex_lock(&req->lock);
    fd = req->fd;
    registered = req->in_epoll;
    reset = ends_with_reset(req);   /* never with reuse: that needs keep-alive */
    req->fd = -1;
    req->in_epoll = false;
    req->ustate = UP_DONE;
    req->loop_done = true;
    pthread_mutex_unlock(&req->lock);
    if (fd >= 0) {
        if (reuse && registered) {
            map_clear(l, fd);
            rto_settle(req, fd);
            pool_put(req->backend->pool, req->loop_idx, fd, l->epfd);
        } else if (reset) {
            close_with_reset(l, fd, registered);
        } else {
            close_registered(l, fd, registered);
        }
    }
    proxy_req_unref(req);
}

/* Wakes the client side (the front's connection, or MHD's) after a change made under req->lock. */
static void unlock_and_wake(struct proxy_req *req)
{
    struct front_conn *fc = req->front;
    bool wake = !fc && proxy_req_wake_locked(req);

    pthread_mutex_unlock(&req->lock);
    if (fc)
        front_wake(fc);   /* the loop serves it after this batch of events */
    else if (wake)
        upstream_resume(req->conn);
}

void upstream_fail(struct upstream_loop *l, struct proxy_req *req, enum router_failure f)
{
    bool uploading;

    pthread_mutex_lock(&req->lock);
    if (!req->head_ready)
        req->failure = f;
    else
        req->body_error = true;   /* the response is cut short, the client sees a reset */
    /* A streamed upload still coming in: MHD would answer only after the last byte. */
    uploading = !req->head_ready && req->stream && !req->upload_done && !req->client_gone && f != FAIL_NONE;
    if (uploading)
        req->status = (int)failure_status(f);
    unlock_and_wake(req);
    if (uploading)
        clients_abort(req->conn, f);
    finish(l, req, false);
}

/* Asks for a socket into (another) backend; fails req when none is left. Returns whether req is still the loop's. */
static bool reconnect(struct upstream_loop *l, struct proxy_req *req)
{
    enum router_failure f = connect_begin(l->connector, req, false);

    if (f == FAIL_NONE) {
        /* A dial from the stock goes out at once; otherwise the agent's answer is awaited. */
        if (req->dialing)
            upstream_submit(l, req);
        return true;
    }
    upstream_fail(l, req, f);
    return false;
}

static enum router_failure connect_failure(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return FAIL_REFUSED;
    case ETIMEDOUT:
        return FAIL_CONNECT_TIMEOUT;
    case EAGAIN:
        return FAIL_OVERLOADED;   /* the agent has as many connects under way as it takes */
    default:
        return FAIL_CRASHED;
    }
}

static void copy_dyno(char dst[ROUTER_DYNO_MAX], const char *name)
{
    size_t len = strlen(name);

    if (len >= ROUTER_DYNO_MAX)
        len = ROUTER_DYNO_MAX - 1;
    memcpy(dst, name, len);
    dst[len] = '\0';
}

/* A streamed upload waits for room: wake it once half the buffer went out. */
static void wake_upload(struct proxy_req *req)
{
    pthread_mutex_lock(&req->lock);
    if (req->upload_blocked && req->out.len - req->written < STREAM_BUFFER_MAX / 2) {
        req->upload_blocked = false;
        unlock_and_wake(req);
    } else {
        pthread_mutex_unlock(&req->lock);
    }
}

static void send_request(struct upstream_loop *l, struct proxy_req *req, uint64_t now);

void upstream_connected(struct upstream_loop *l, struct proxy_req *req, int sock, int err)
{
    uint64_t now = now_ms();
    enum router_failure f;

    req->connect_ms += now - req->connect_start_ms;
    /* sock, when there is one, is ready for the loop: non-blocking, TCP_NODELAY (router.h). */
    if (sock < 0) {
        f = connect_failure(err);
        req->last_failure = f;
        /* Refused, slow or gone: every loop skips this backend for a while (busy is not broken). */
        if (f != FAIL_OVERLOADED)
            pool_quarantine(req->backend->pool, now + QUARANTINE_MS);
        (void)reconnect(l, req);
        return;
    }
    upstream_rto_fresh(sock);
    pthread_mutex_lock(&req->lock);
    req->fd = sock;
    req->in_epoll = false;
    pthread_mutex_unlock(&req->lock);
    send_request(l, req, now);
}

void upstream_dialled(struct upstream_loop *l, struct proxy_req *req)
{
    uint64_t now = now_ms();

    req->connect_ms += now - req->connect_start_ms;
    send_request(l, req, now);
}

/* req->fd is connected to the backend: the request goes out, and the socket waits for the answer. */
static void send_request(struct upstream_loop *l, struct proxy_req *req, uint64_t now)
{
    connect_succeeded(req);
    copy_dyno(req->dyno, req->backend->name);
    req->from_pool = false;
    req->service_start_ms = now;
    req->deadline_ms = now + req->target->settings.head_timeout_ms;
    if (write_out(req) < 0) {
        upstream_fail(l, req, FAIL_NO_RESPONSE);
        return;
    }
    req->ustate = req->written < req->out.len ? UP_WRITING : UP_HEAD;
    /* A streamed upload may have filled its buffer while the socket was on its way. */
    if (req->stream)
        wake_upload(req);
    pthread_mutex_lock(&req->lock);
    watch_locked(req);
    pthread_mutex_unlock(&req->lock);
}

/* RFC 9110 9.2.2: a request the client may send twice with the effect of once. */
static bool method_idempotent(const char *m)
{
    static const char *const idempotent[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };

    for (size_t i = 0; i < sizeof(idempotent) / sizeof(*idempotent); i++)
        if (strcmp(m, idempotent[i]) == 0)
            return true;
    return false;
}

/*
 * The upstream closed or failed before sending a single response byte. A
 * pooled connection may simply have been closed by the app's keep-alive
 * timer while idle: an idempotent request is tried once more on a fresh
 * connection. A POST or PATCH is not (as nginx does): the app may have
 * read it and acted before the connection broke.
 * Returns whether req is still the loop's (a retry is under way).
 */
static bool early_failure(struct upstream_loop *l, struct proxy_req *req, enum router_failure f)
{
    if (!req->from_pool || req->retried || req->inbuf.len > 0 || req->stream || !method_idempotent(req->method)) {
        upstream_fail(l, req, f);
        return false;
    }
    req->retried = true;
    req->from_pool = false;
    upstream_close_socket(l, req);
    req->written = 0;
    return reconnect(l, req);
}

void upstream_stream_body(struct proxy_req *req, const char *data, size_t n)
{
    if (req->written) {
        strbuf_remove_prefix(&req->out, req->written);
        req->written = 0;
    }
    strbuf_add(&req->out, data, n);
    if (req->ustate == UP_CONNECTING)
        return;   /* it all goes out once connected */
    /* Body bytes still flowing keep the first-byte window open (H12 counts from the last). */
    req->deadline_ms = now_ms() + req->target->settings.head_timeout_ms;
    pthread_mutex_lock(&req->lock);
    if (req->ustate == UP_HEAD) {
        /* Written out before: ask for EPOLLOUT again; the loop sends on its next turn. */
        req->ustate = UP_WRITING;
        watch_locked(req);
    }
    pthread_mutex_unlock(&req->lock);
}

/* Returns whether req is still the loop's. */
static bool do_write(struct upstream_loop *l, struct proxy_req *req)
{
    if (write_out(req) < 0)
        return early_failure(l, req, FAIL_NO_RESPONSE);
    if (req->written == req->out.len)
        req->ustate = UP_HEAD;
    return true;
}

/* Appends body bytes to the client buffer; under req->lock. Returns true when the body is complete. */
static bool relay_body_locked(struct proxy_req *req, const char *data, size_t n)
{
    const struct http_response_head *h = &req->head;

    switch (h->body) {
    case BODY_NONE:
        if (n)
            req->reusable = false;
        return true;
    case BODY_LENGTH: {
        size_t take = n < req->body_left ? n : (size_t)req->body_left;
        strbuf_add(&req->body, data, take);
        req->body_left -= take;
        if (take < n)
            req->reusable = false;   /* bytes past Content-Length: the connection is out of step */
        return req->body_left == 0;
    }
    case BODY_CHUNKED: {
        ssize_t used = chunked_feed(&req->chunked, data, n, &req->body);
        if (used < 0) {
            req->body_error = true;
            req->reusable = false;
            return true;
        }
        if ((size_t)used < n)
            req->reusable = false;
        return req->chunked.done;
    }
    case BODY_CLOSE:
        strbuf_add(&req->body, data, n);
        return false;
    }
    return true;
}

/* H25: what Heroku's router refuses to pass on even when well-formed. */
static bool head_restricted(const struct http_response_head *h)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, "Set-Cookie") == 0 && strlen(h->headers[i].value) > SET_COOKIE_MAX)
            return true;
    return false;
}

enum { DATA_GONE, DATA_MORE, DATA_PAUSED };

/*
 * Parses the response head once inbuf holds it; 1xx interim responses are
 * dropped. Returns DATA_MORE with UP_BODY set when a final head is in,
 * DATA_MORE in UP_HEAD when more bytes are needed, DATA_GONE when req was
 * finished (failed, or handed to the websocket tunnel).
 */
static int take_head(struct upstream_loop *l, struct proxy_req *req)
{
    for (;;) {
        size_t hl = http_head_length(req->inbuf.buf, req->inbuf.len);

        if (hl == 0) {
            if (req->inbuf.len > RESPONSE_HEAD_MAX) {
                upstream_fail(l, req, FAIL_RESTRICTED);
                return DATA_GONE;
            }
            return DATA_MORE;
        }
        if (hl > RESPONSE_HEAD_MAX) {
            upstream_fail(l, req, FAIL_RESTRICTED);
            return DATA_GONE;
        }
        /* 101 can only answer an Upgrade the client asked for. */
        if (http_parse_response_head(req->inbuf.buf, hl, req->is_head, &req->head) < 0 ||
            (req->head.status == 101 && !req->upgrade)) {
            upstream_fail(l, req, FAIL_BAD_RESPONSE);
            return DATA_GONE;
        }
        if (head_restricted(&req->head)) {
            upstream_fail(l, req, FAIL_RESTRICTED);
            return DATA_GONE;
        }
        req->head_len = hl;
        if (req->head.status == 101) {
            /*
             * Switching protocols: the socket leaves the loop for the
             * websocket tunnel, with whatever followed the head still in
             * inbuf, and leaves the loop's epoll, whose every new byte
             * would otherwise wake the loop for nothing.
             */
            rto_settle(req, req->fd);
            map_clear(l, req->fd);
            if (req->in_epoll)
                (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, req->fd, NULL);
            pthread_mutex_lock(&req->lock);
            req->ws_fd = req->fd;
            req->fd = -1;
            req->in_epoll = false;
            req->head_ready = true;
            req->body_done = true;
            unlock_and_wake(req);
            finish(l, req, false);
            return DATA_GONE;
        }
        if (req->head.status >= 200)
            break;
        strbuf_remove_prefix(&req->inbuf, hl);
    }
    req->ustate = UP_BODY;
    /* An answer before the whole request went out leaves the connection out of step. */
    req->reusable = req->head.keep_alive && req->written == req->out.len && req->upload_done;
    req->body_left = req->head.content_length;
    chunked_init(&req->chunked);
    return DATA_MORE;
}

/* Bytes arrived from upstream. DATA_GONE: req is finished and must not be touched again. */
static int on_data(struct upstream_loop *l, struct proxy_req *req, const char *data, size_t n)
{
    bool done;

    req->deadline_ms = now_ms() + req->target->settings.idle_timeout_ms;
    if (req->ustate != UP_BODY) {
        int st;

        strbuf_add(&req->inbuf, data, n);
        st = take_head(l, req);
        if (st != DATA_MORE || req->ustate != UP_BODY)
            return st;
        pthread_mutex_lock(&req->lock);
        req->head_ready = true;
        done = relay_body_locked(req, req->inbuf.buf + req->head_len, req->inbuf.len - req->head_len);
    } else {
        pthread_mutex_lock(&req->lock);
        done = relay_body_locked(req, data, n);
    }
    if (done) {
        bool reuse = req->reusable && !req->body_error;
        req->body_done = true;
        unlock_and_wake(req);
        finish(l, req, reuse);
        return DATA_GONE;
    }
    if (req->body.len - req->body_off >= RESPONSE_BUFFER_MAX) {
        /* The client is slower than the app: stop reading until the reader drains half. */
        req->paused = true;
        unlock_and_wake(req);
        return DATA_PAUSED;
    }
    unlock_and_wake(req);
    return DATA_MORE;
}

/* Returns whether req is still the loop's (a retry is under way). */
static bool on_eof(struct upstream_loop *l, struct proxy_req *req, bool error)
{
    if (req->ustate != UP_BODY) {
        if (req->inbuf.len > 0) {
            upstream_fail(l, req, FAIL_BAD_RESPONSE);
            return false;
        }
        return early_failure(l, req, FAIL_NO_RESPONSE);
    }
    pthread_mutex_lock(&req->lock);
    if (req->head.body == BODY_CLOSE && !error) {
        req->body_done = true;    /* close-delimited: the end of the connection is the end of the body */
    } else {
        req->body_error = true;
        req->end_code = "H18";    /* the app cut its response short */
    }
    unlock_and_wake(req);
    finish(l, req, false);
    return false;
}

/*
 * Reads what the event announced. A short read drained the socket, and
 * new bytes raise a new edge; but when the event came with the app's end
 * (EPOLLRDHUP), that end raises none, so the reading goes on until it.
 * Returns DATA_GONE, DATA_PAUSED, or DATA_MORE when req waits for more.
 */
static int do_read(struct upstream_loop *l, struct proxy_req *req, uint32_t events)
{
    bool to_end = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    char buf[READ_CHUNK];

    for (;;) {
        ssize_t n = recv(req->fd, buf, sizeof(buf), MSG_DONTWAIT);
        int st;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return DATA_MORE;
            return on_eof(l, req, true) ? DATA_MORE : DATA_GONE;
        }
        if (n == 0)
            return on_eof(l, req, false) ? DATA_MORE : DATA_GONE;
        st = on_data(l, req, buf, (size_t)n);
        if (st != DATA_MORE || ((size_t)n < sizeof(buf) && !to_end))
            return st;
    }
}

static void on_event(struct upstream_loop *l, struct proxy_req *req, uint32_t events)
{
    bool paused;

    /*
     * Before it is connected, a request's socket is registered only while
     * the loop dials it (connect.c). A connect ends with EPOLLOUT or an
     * error; any other event is not its news (one of the fd number's
     * earlier socket, still in the batch, say).
     */
    if (req->ustate == UP_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connect_on_dial(l->connector, req, events);
        return;
    }
    /* Left unread for the client's sake: upstream_unpause_locked() polls it again. */
    pthread_mutex_lock(&req->lock);
    paused = req->paused;
    pthread_mutex_unlock(&req->lock);
    if (paused)
        return;

    if (req->ustate == UP_WRITING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        if (!do_write(l, req))
            return;
        if (req->ustate == UP_CONNECTING)
            return;   /* a stale pooled socket: the retry waits for its own socket */
        if (req->stream)
            wake_upload(req);
    }
    /* Reading goes on while writing: an app may answer (413, say) before taking the whole body. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
        (void)do_read(l, req, events);
}

void upstream_on_fd_event(struct upstream_loop *l, int fd, uint32_t events)
{
    struct proxy_req *req = (unsigned)fd < l->by_fd_cap ? l->by_fd[fd] : NULL;

    /* None: an idle pooled socket, whose news pool_take()'s check finds when it is next taken. */
    if (req && req->fd == fd)
        on_event(l, req, events);
}

/* The client is gone: whatever the upstream still sends is unwanted. */
void upstream_drop(struct upstream_loop *l, struct proxy_req *req)
{
    if (req->ustate != UP_DONE)
        finish(l, req, false);
}

/* A request whose deadline passed: the next backend for a connect, else the timeout's failure. */
static void timed_out(struct upstream_loop *l, struct proxy_req *req, uint64_t now)
{
    bool paused;

    if (req->ustate == UP_CONNECTING) {
        connect_forget(l->connector, req);
        req->connect_ms += now - req->connect_start_ms;
        req->last_failure = FAIL_CONNECT_TIMEOUT;
        pool_quarantine(req->backend->pool, now + QUARANTINE_MS);
        (void)reconnect(l, req);
        return;
    }
    pthread_mutex_lock(&req->lock);
    paused = req->paused;
    pthread_mutex_unlock(&req->lock);
    if (paused) {
        /* Waiting on the client, not the app (libmicrohttpd times an idle client out). */
        req->deadline_ms = now + req->target->settings.idle_timeout_ms;
        return;
    }
    if (req->ustate == UP_BODY)
        req->end_code = "H15";
    upstream_fail(l, req, req->ustate == UP_BODY ? FAIL_NONE : FAIL_TIMEOUT);
}

void upstream_scan_timeouts(struct upstream_loop *l, uint64_t now)
{
    struct proxy_req *req = l->active, *next;

    for (; req; req = next) {
        next = req->lnext;
        if (now >= req->deadline_ms)
            timed_out(l, req, now);
    }
}
