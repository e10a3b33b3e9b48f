/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's loops: one epoll thread each (one per CPU), driving both
 * sides of the requests it owns. Its epoll holds its libmicrohttpd daemon's
 * epoll fd (MHD_USE_EPOLL: MHD_run() is called when that is ready, and at
 * least every half second for MHD's timeouts) and the upstream sockets. For
 * the upstream side a loop writes the request, reads and parses the
 * response head, then relays the body into the request's buffer for
 * libmicrohttpd's content reader, decoding chunked bodies (MHD re-chunks
 * towards the client). Earlier the client side ran in MHD's own worker
 * pool and every response crossed threads twice; measured side by side
 * (tests/bench), one thread per request was the larger part of closing the
 * gap to nginx.
 *
 * Upstream sockets are registered EPOLLONESHOT: after each event the loop
 * re-arms the socket only if it still wants to hear from it. A finished
 * response leaves its socket disarmed, so it can sit in the pool without a
 * stale event ever reaching a freed request, and its next use costs one
 * epoll_ctl(MOD).
 *
 * Back-pressure: when a request's buffer holds RESPONSE_BUFFER_MAX bytes the
 * loop does not re-arm the socket; the content reader re-arms it once it has
 * drained half. Timeouts are checked by a scan every half second
 * over the loop's active requests: 30 s for the response head (H12), then a
 * rolling 55 s idle window while the body flows (H15).
 *
 * Hand-off costs no wake-up: the MHD side writes the request itself
 * (usually in one send) and registers the socket in the loop's epoll, so the
 * loop first hears of a request when its response arrives. It also pushes
 * it on a lock-free list the loop drains on every turn (at least every half
 * second), which puts it under the timeout scan.
 *
 * Cancellations (the client went away while the upstream was still busy)
 * arrive through a mutex-protected queue and an eventfd. They are processed
 * after the fd events of one epoll batch, because a cancel may free a
 * request whose event is still in that batch.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define READ_CHUNK (64 * 1024)
#define MAX_EVENTS 256

struct cmd {
    struct proxy_req *req;
    struct cmd *next;
};

struct upstream_loop {
    struct router *r;
    unsigned idx;
    struct MHD_Daemon *daemon;     /* driven by this loop only */
    uint64_t last_mhd_run;
    bool mhd_again;                /* MHD has work without a new event: run it next turn */
    bool mhd_resumed;              /* this loop resumed a connection: MHD must run */
    uint64_t last_mhd_event;       /* when the daemon last had something to do */
    bool busy_since_trim;          /* requests ran since the last malloc_trim() */
    pthread_t thread;
    int epfd;
    int evfd;
    pthread_mutex_t qlock;
    struct cmd *qhead, *qtail;
    bool stop;                     /* under qlock */
    struct proxy_req *active;      /* loop thread only */
    _Atomic(struct proxy_req *) fresh;   /* handed-off requests not yet on `active` */
    uint64_t last_scan;
};

static _Thread_local struct upstream_loop *self;

struct upstream_loop *upstream_loop_self(void)
{
    return self;
}

/*
 * MHD's resume raises no event in external-epoll mode (seen with 0.9.75: no
 * write to its inter-thread channel), so the loop that resumes a
 * connection also makes sure its daemon runs before it sleeps again. Other
 * threads (router_stop()) rely on the half-second run.
 */
void upstream_resume(struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
    if (self)
        self->mhd_resumed = true;
}

unsigned upstream_loop_index(const struct upstream_loop *l)
{
    return l->idx;
}

void upstream_cancel(struct upstream_loop *l, struct proxy_req *req)
{
    struct cmd *c = xmalloc(sizeof(*c));
    bool was_empty;
    uint64_t one = 1;

    c->req = req;
    c->next = NULL;
    pthread_mutex_lock(&l->qlock);
    was_empty = l->qhead == NULL;
    if (l->qtail)
        l->qtail->next = c;
    else
        l->qhead = c;
    l->qtail = c;
    pthread_mutex_unlock(&l->qlock);
    /* The loop swaps the whole queue out under qlock, so one wake per empty->non-empty edge suffices. */
    if (was_empty)
        (void)!write(l->evfd, &one, sizeof(one));
}

/* Arms req's socket for its next event; under req->lock. */
static void arm_locked(struct proxy_req *req)
{
    struct epoll_event ev = { .data.ptr = req };

    if (req->fd < 0)
        return;
    ev.events = EPOLLONESHOT | EPOLLIN | (req->ustate == UP_WRITING ? EPOLLOUT : 0);
    if (epoll_ctl(req->loop->epfd, req->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, req->fd, &ev) == 0)
        req->in_epoll = true;
}

void upstream_submit(struct upstream_loop *l, struct proxy_req *req)
{
    struct proxy_req *head;

    req->deadline_ms = now_ms() + l->r->head_timeout_ms;
    req->ustate = UP_HEAD;
    while (req->written < req->out.len) {
        ssize_t n = send(req->fd, req->out.buf + req->written, req->out.len - req->written,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /*
             * Full socket buffer, or an error: the loop carries on (a
             * stale pooled socket fails again there and gets its retry).
             */
            req->ustate = UP_WRITING;
            break;
        }
        req->written += (size_t)n;
    }

    /* One reference for the fresh list, dropped when the loop drains it. */
    atomic_fetch_add(&req->refs, 1);
    head = atomic_load(&l->fresh);
    do {
        req->fresh_next = head;
    } while (!atomic_compare_exchange_weak(&l->fresh, &head, req));

    /*
     * Once pushed, the loop may own the request at any moment: only the
     * arming below still touches it, under the lock (a timeout may already
     * have closed the socket; arm_locked() then does nothing). Should the
     * registration fail (it cannot with a valid socket), the head timeout
     * still answers the client.
     */
    pthread_mutex_lock(&req->lock);
    arm_locked(req);
    pthread_mutex_unlock(&req->lock);
}

/* Puts freshly handed-off requests under the timeout scan. */
static void drain_fresh(struct upstream_loop *l)
{
    struct proxy_req *req = atomic_exchange(&l->fresh, NULL), *next;

    for (; req; req = next) {
        next = req->fresh_next;
        req->fresh_next = NULL;
        if (req->ustate != UP_DONE) {
            req->lnext = l->active;
            req->lprev = NULL;
            if (l->active)
                l->active->lprev = req;
            l->active = req;
        }
        proxy_req_unref(req);
    }
}

void upstream_unpause_locked(struct proxy_req *req)
{
    if (!req->paused || req->fd < 0 || req->loop_done)
        return;
    req->paused = false;
    arm_locked(req);
}

/*
 * The loop is done with req: the fd goes back to the pool or is closed, and
 * the loop's reference is dropped. Reuse only happens while handling the
 * socket's own event, so a pooled socket is always disarmed; close() drops
 * an armed one from epoll, and no event for it can still be pending
 * because cancellations and timeouts run after the batch of events.
 */
static void finish(struct upstream_loop *l, struct proxy_req *req, bool reuse)
{
    int fd;

    /* The app may have answered before taking all of a streamed body: never reuse that. */
    if (req->stream)
        reuse = false;
    if (req->lprev)
        req->lprev->lnext = req->lnext;
    else if (l->active == req)
        l->active = req->lnext;
    if (req->lnext)
        req->lnext->lprev = req->lprev;
    req->lprev = req->lnext = NULL;

    pthread_mutex_lock(&req->lock);
    fd = req->fd;
    req->fd = -1;
    req->in_epoll = false;
    req->ustate = UP_DONE;
    req->loop_done = true;
    pthread_mutex_unlock(&req->lock);
    if (fd >= 0) {
        if (reuse)
            pool_put(req->route->pool, req->loop_idx, fd, req->dyno);
        else
            (void)close(fd);
    }
    proxy_req_unref(req);
}

/* Wakes the MHD side after a change made under req->lock. */
static void unlock_and_wake(struct proxy_req *req)
{
    bool wake = proxy_req_wake_locked(req);

    pthread_mutex_unlock(&req->lock);
    if (wake)
        upstream_resume(req->conn);
}

static void fail(struct upstream_loop *l, struct proxy_req *req, enum router_failure f)
{
    pthread_mutex_lock(&req->lock);
    if (!req->head_ready)
        req->failure = f;
    else
        req->body_error = true;   /* H18: the response is cut short, the client sees a reset */
    unlock_and_wake(req);
    finish(l, req, false);
}

static bool do_write(struct upstream_loop *l, struct proxy_req *req);

/*
 * The upstream closed or failed before sending a single response byte. A
 * pooled connection may simply have been closed by the app's keep-alive
 * timer while idle: retry once on a fresh connection, which is safe because
 * the app has not answered (and so, for a well-behaved server, not acted).
 */
/* Returns whether req is still the loop's (a retry is under way). */
static bool early_failure(struct upstream_loop *l, struct proxy_req *req, enum router_failure f)
{
    int fd, old;

    if (!req->from_pool || req->retried || req->inbuf.len > 0) {
        fail(l, req, f);
        return false;
    }
    req->retried = true;
    fd = proxy_get_upstream(req, false);
    if (fd < 0) {
        fail(l, req, fd == -ENOENT ? FAIL_NO_WEB : FAIL_CONNECT);
        return false;
    }
    pthread_mutex_lock(&req->lock);
    old = req->fd;
    req->in_epoll = false;
    req->fd = fd;
    pthread_mutex_unlock(&req->lock);
    if (old >= 0)
        (void)close(old);
    req->written = 0;
    req->ustate = UP_WRITING;
    return do_write(l, req);
}

void upstream_stream_body(struct proxy_req *req, const char *data, size_t n)
{
    if (req->written) {
        strbuf_remove_prefix(&req->out, req->written);
        req->written = 0;
    }
    strbuf_add(&req->out, data, n);
    /* Body bytes still flowing keep the first-byte window open (H12 counts from the last). */
    req->deadline_ms = now_ms() + req->router->head_timeout_ms;
    pthread_mutex_lock(&req->lock);
    if (req->ustate == UP_HEAD) {
        /* Written out before: ask for EPOLLOUT again; the loop sends on its next turn. */
        req->ustate = UP_WRITING;
        arm_locked(req);
    }
    pthread_mutex_unlock(&req->lock);
}

/* Returns whether req is still the loop's. */
static bool do_write(struct upstream_loop *l, struct proxy_req *req)
{
    while (req->written < req->out.len) {
        ssize_t n = send(req->fd, req->out.buf + req->written, req->out.len - req->written,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;   /* re-armed for EPOLLOUT by the caller */
            return early_failure(l, req, FAIL_NO_RESPONSE);
        }
        req->written += (size_t)n;
    }
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

enum { DATA_GONE, DATA_MORE, DATA_PAUSED };

/* Bytes arrived from upstream. DATA_GONE: req is finished and must not be touched again. */
static int on_data(struct upstream_loop *l, struct proxy_req *req, const char *data, size_t n)
{
    size_t hl;
    bool done;

    if (req->ustate == UP_HEAD || req->ustate == UP_WRITING) {
        if (req->inbuf.len + n > RESPONSE_HEAD_MAX + READ_CHUNK) {
            fail(l, req, FAIL_BAD_RESPONSE);
            return DATA_GONE;
        }
        strbuf_add(&req->inbuf, data, n);
        for (;;) {
            hl = http_head_length(req->inbuf.buf, req->inbuf.len);
            if (hl == 0) {
                if (req->inbuf.len > RESPONSE_HEAD_MAX) {
                    fail(l, req, FAIL_BAD_RESPONSE);
                    return DATA_GONE;
                }
                return DATA_MORE;
            }
            if (hl > RESPONSE_HEAD_MAX ||
                http_parse_response_head(req->inbuf.buf, hl, req->is_head, &req->head) < 0 ||
                (req->head.status == 101 && !req->upgrade)) {
                /* 101 can only answer an Upgrade the client asked for. */
                fail(l, req, FAIL_BAD_RESPONSE);
                return DATA_GONE;
            }
            req->head_len = hl;
            if (req->head.status == 101) {
                /*
                 * Switching protocols: the socket leaves the loop for the
                 * websocket tunnel, with whatever followed the head still
                 * in inbuf. It stays registered here, disarmed, until the
                 * tunnel closes it.
                 */
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
            /* 1xx interim responses (100 Continue, 103 Early Hints) are dropped. */
            strbuf_remove_prefix(&req->inbuf, hl);
        }
        req->ustate = UP_BODY;
        /* An answer before the whole request went out leaves the connection out of step. */
        req->reusable = req->head.keep_alive && req->written == req->out.len;
        req->body_left = req->head.content_length;
        chunked_init(&req->chunked);
        req->deadline_ms = now_ms() + IDLE_TIMEOUT_MS;
        pthread_mutex_lock(&req->lock);
        req->head_ready = true;
        done = relay_body_locked(req, req->inbuf.buf + hl, req->inbuf.len - hl);
    } else {
        req->deadline_ms = now_ms() + IDLE_TIMEOUT_MS;
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
            fail(l, req, FAIL_BAD_RESPONSE);
            return false;
        }
        return early_failure(l, req, FAIL_NO_RESPONSE);
    }
    pthread_mutex_lock(&req->lock);
    if (req->head.body == BODY_CLOSE && !error)
        req->body_done = true;    /* close-delimited: the end of the connection is the end of the body */
    else
        req->body_error = true;
    unlock_and_wake(req);
    finish(l, req, false);
    return false;
}

/* Returns DATA_GONE, DATA_PAUSED, or DATA_MORE when the socket should be re-armed. */
static int do_read(struct upstream_loop *l, struct proxy_req *req)
{
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
        /* A short read drained the socket: let epoll say when there is more. */
        if (st != DATA_MORE || (size_t)n < sizeof(buf))
            return st;
    }
}

static void on_event(struct upstream_loop *l, struct proxy_req *req, uint32_t events)
{
    int st = DATA_MORE;

    if (req->ustate == UP_WRITING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        if (!do_write(l, req))
            return;
        if (req->stream) {
            /* A streamed upload waits for room: wake it once half the buffer went out. */
            pthread_mutex_lock(&req->lock);
            if (req->upload_blocked && req->out.len - req->written < STREAM_BUFFER_MAX / 2) {
                req->upload_blocked = false;
                unlock_and_wake(req);
            } else {
                pthread_mutex_unlock(&req->lock);
            }
        }
    }
    /* Reading goes on while writing: an app may answer (413, say) before taking the whole body. */
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        st = do_read(l, req);
    if (st != DATA_MORE)
        return;
    /* Still waiting on the upstream: re-arm (the one-shot registration fired). */
    pthread_mutex_lock(&req->lock);
    if (!req->paused)
        arm_locked(req);
    pthread_mutex_unlock(&req->lock);
}

static void run_commands(struct upstream_loop *l, struct cmd *c)
{
    while (c) {
        struct cmd *next = c->next;
        struct proxy_req *req = c->req;

        /* The client is gone: whatever the upstream still sends is unwanted. */
        if (req->ustate != UP_DONE)
            finish(l, req, false);
        proxy_req_unref(req);
        free(c);
        c = next;
    }
}

static void scan_timeouts(struct upstream_loop *l, uint64_t now)
{
    struct proxy_req *req = l->active, *next;

    for (; req; req = next) {
        bool paused;

        next = req->lnext;
        if (now < req->deadline_ms)
            continue;
        pthread_mutex_lock(&req->lock);
        paused = req->paused;
        pthread_mutex_unlock(&req->lock);
        if (paused) {
            /* Waiting on the client, not the app. */
            req->deadline_ms = now + IDLE_TIMEOUT_MS;
            continue;
        }
        fail(l, req, req->ustate == UP_BODY ? FAIL_NONE : FAIL_TIMEOUT);
    }
}

/* The data.ptr of the daemon's epoll fd and of the listening socket in the loop's epoll (the eventfd's is NULL). */
#define MHD_EVENT ((void *)&mhd_event_tag)
#define LISTEN_EVENT ((void *)&listen_event_tag)
static const char mhd_event_tag, listen_event_tag;

/*
 * Accepts one new client connection and gives it to this loop's daemon.
 * Every loop waits on the listening socket with EPOLLEXCLUSIVE, so the
 * kernel wakes one loop that is idle in epoll_wait(); taking one connection
 * per wake-up spreads them by load, as nginx does with EPOLLEXCLUSIVE
 * (when the MHD daemons shared the socket and raced to accept, one loop
 * did up to 64% of the work under wrk -c64).
 */
static bool accept_one(struct upstream_loop *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(l->r->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_warn("router: accept: %s", strerror(errno));
        return false;
    }
    /* On failure (the connection limit, say) MHD has closed the socket. */
    return MHD_add_connection(l->daemon, fd, (const struct sockaddr *)&ss, len) == MHD_YES;
}

static void *loop_main(void *arg)
{
    struct upstream_loop *l = arg;
    struct epoll_event evs[MAX_EVENTS];

    self = l;
    for (;;) {
        int n = epoll_wait(l->epfd, evs, MAX_EVENTS, l->mhd_again || l->mhd_resumed ? 0 : 500);
        bool commands = false, mhd = l->mhd_again, mhd_event = false, stop;
        struct cmd *c;
        uint64_t now;

        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                commands = true;
            else if (evs[i].data.ptr == MHD_EVENT)
                mhd = mhd_event = true;
            else if (evs[i].data.ptr == LISTEN_EVENT) {
                if (accept_one(l))
                    mhd = mhd_event = true;
            } else
                on_event(l, evs[i].data.ptr, evs[i].events);
        }
        /*
         * After the upstream events, so the connections they resumed are
         * served in this same turn; its callbacks may hand off requests
         * (the fresh list, drained below) or cancel them (the queue).
         */
        now = now_ms();
        if (mhd || l->mhd_resumed || now - l->last_mhd_run >= 500) {
            MHD_UNSIGNED_LONG_LONG wait_ms;

            l->last_mhd_run = now;
            l->mhd_resumed = false;
            if (MHD_run(l->daemon) != MHD_YES)
                log_warn("router: MHD_run failed in loop %u", l->idx);
            /*
             * MHD's epoll is edge-triggered inside: a connection it left
             * with work to do (a send cut short at its own limit, say)
             * raises no new event, and MHD asks to be run again at once.
             */
            l->mhd_again = MHD_get_timeout(l->daemon, &wait_ms) == MHD_YES && wait_ms == 0;
        }
        if (commands) {
            uint64_t v;
            (void)!read(l->evfd, &v, sizeof(v));
        }
        if (atomic_load(&l->fresh))
            drain_fresh(l);
        pthread_mutex_lock(&l->qlock);
        c = l->qhead;
        l->qhead = l->qtail = NULL;
        stop = l->stop;
        pthread_mutex_unlock(&l->qlock);
        run_commands(l, c);
        if (stop)
            break;
        if (l->active && now - l->last_scan >= 500) {
            l->last_scan = now;
            scan_timeouts(l, now);
        }
        /*
         * A burst leaves this thread's malloc arena holding the freed
         * connection buffers; once the loop has been quiet for a second,
         * hand them back to the system (an idle router stays small).
         */
        if (l->active)
            l->busy_since_trim = true;
        if (!l->active && l->busy_since_trim && now - l->last_mhd_event >= 1000) {
            l->busy_since_trim = false;
            (void)malloc_trim(0);
        }
        if (mhd_event)
            l->last_mhd_event = now;
    }
    /*
     * The daemon is ours to stop, on this thread, since no other may call
     * into it; its connections close and their completion callbacks queue
     * cancellations, which upstream_loop_stop() runs after the join.
     */
    MHD_stop_daemon(l->daemon);
    l->daemon = NULL;
    return NULL;
}

struct upstream_loop *upstream_loop_start(struct router *r, unsigned idx, struct MHD_Daemon *daemon,
                                          struct berth_error **err)
{
    struct upstream_loop *l = xcalloc(1, sizeof(*l));
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    struct epoll_event mev = { .events = EPOLLIN, .data.ptr = MHD_EVENT };
    struct epoll_event lev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = LISTEN_EVENT };
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int ret;

    l->r = r;
    l->idx = idx;
    l->daemon = daemon;
    l->epfd = -1;
    l->evfd = -1;
    pthread_mutex_init(&l->qlock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        berth_error_make(err, errno, "epoll_create1");
        goto fail;
    }
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->evfd < 0) {
        berth_error_make(err, errno, "eventfd");
        goto fail;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) < 0) {
        berth_error_make(err, errno, "epoll_ctl");
        goto fail;
    }
    if (!info || info->epoll_fd < 0) {
        berth_error_plain(err, EINVAL, "the HTTP daemon has no epoll fd");
        goto fail;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, info->epoll_fd, &mev) < 0) {
        berth_error_make(err, errno, "epoll_ctl (daemon)");
        goto fail;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, r->listen_fd, &lev) < 0) {
        berth_error_make(err, errno, "epoll_ctl (listening socket)");
        goto fail;
    }
    ret = pthread_create(&l->thread, NULL, loop_main, l);
    if (ret != 0) {
        berth_error_make(err, ret, "starting an upstream thread");
        goto fail;
    }
    return l;
fail:
    if (l->epfd >= 0)
        (void)close(l->epfd);
    if (l->evfd >= 0)
        (void)close(l->evfd);
    pthread_mutex_destroy(&l->qlock);
    free(l);
    return NULL;
}

void upstream_loop_stop(struct upstream_loop *l)
{
    struct cmd *c;
    uint64_t one = 1;

    if (!l)
        return;
    pthread_mutex_lock(&l->qlock);
    l->stop = true;
    pthread_mutex_unlock(&l->qlock);
    (void)!write(l->evfd, &one, sizeof(one));
    pthread_join(l->thread, NULL);

    /* Anything handed over or queued after the last pass, then anything still active. */
    drain_fresh(l);
    c = l->qhead;
    l->qhead = l->qtail = NULL;
    run_commands(l, c);
    while (l->active)
        fail(l, l->active, FAIL_STOPPING);
    (void)close(l->epfd);
    (void)close(l->evfd);
    pthread_mutex_destroy(&l->qlock);
    free(l);
}
