/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sockets into backends without ever waiting on one (internal.h,
 * connector). A backend's port agent (runner.h) connects inside the
 * container on the router's behalf; each loop keeps one private channel
 * per backend, opened on first use and held in the loop's epoll like any
 * other socket. A request asks on the channel with an id of the loop's own
 * and waits in UP_CONNECTING; the answer (a connected socket or the
 * connect's errno) comes back tagged with that id whenever the agent has
 * it, in any order, and goes to upstream_connected(). An id nobody waits
 * for any more (the request timed out or its client left) has its socket
 * closed, so a late answer is never misread as another request's. When a
 * burst fills a channel, requests wait in its queue, in order, until the
 * channel has room again (EPOLLOUT); they are still under their deadline.
 * The channel is watched for room only while its queue holds a request
 * (level-triggered: armed for nothing, EPOLLOUT would wake the loop at
 * every turn), so whatever empties the queue (channel_flush(), or the
 * last queued request leaving in connect_forget()) disarms it.
 *
 * The stock. Each answer above costs the loop a send, a wake-up and a
 * receive, and the agent as much again, per connection; for an app that
 * closes every connection that was most of the router's cost (measured in
 * docs/ARCHITECTURE.md, The router). A socket connects in the network
 * namespace it was made in, whoever calls connect(), so each channel also
 * keeps a stock of unconnected sockets the agent made in the container
 * (ops->ask_stock, up to STOCK_FILL, asked again at STOCK_LOW or below,
 * one ask at a time unless it goes unanswered for STOCK_RETRY_MS; what
 * the answers bring past ROUTER_STOCK_MAX is closed), and a request with
 * a stock socket connects it to 127.0.0.1:PORT itself ("dialing"). On the
 * container's loopback the handshake is usually over by the time
 * connect() returns, so the request
 * is sent at once (upstream_submit()), and the send says the connection is
 * up; a send that finds it still connecting waits for EPOLLOUT, the socket
 * registered like any upstream socket. A connect still waiting after
 * CONNECT_DIAL_WAIT_MS had its SYN dropped by a full accept queue, and the
 * kernel would send it again only after a second: the socket is closed and
 * the agent asked, whose redials (runner/agent.c) handle that case. The
 * first connection of a channel always asks the agent (the stock comes
 * with its answer); a channel whose stock served nothing between two
 * sweeps gives it back, so idle backends hold no descriptors, and a router
 * whose descriptor limit is under STOCK_FD_MIN keeps no stocks at all.
 *
 * Admission. An app whose accept queue is full drops the SYNs of further
 * connects, and every dial that then falls back to the agent, and every
 * redial of the agent, costs CPU the app lacks. So each loop caps the
 * requests it has on new connections to a backend (its pool slot's
 * `open`): no cap until a dial loses its SYN, then half of what was open,
 * grown by one for every `cap` connections made while the cap binds, and
 * lifted past ADMIT_CAP_MAX (additive increase, multiplicative decrease).
 * An app's accept queue is a fixed size, so the `open` at which a SYN was
 * last lost is where the next loss waits: from one below it the cap grows
 * ADMIT_PROBE_SLOW times slower (busybox's queue of ten, 16 clients: the
 * probing at the plain rate lost 2-3 % of the router's connects there,
 * each of them CONNECT_DIAL_WAIT_MS and a redial late).
 * Requests past the cap wait in the loop, in order, under their connect
 * deadline, counted as the backend's outstanding requests (so balancing
 * prefers its siblings), and start as room frees (connect_admit_waiting(),
 * after each turn's events). Requests over pooled connections are not
 * counted: they add nothing to the accept queue.
 *
 * Which backend: the one with the fewest outstanding requests (requests
 * given to it and not finished, counted in its pool by every loop), ties
 * drawn at random, so a slow instance holding requests gets fewer new ones
 * and equal instances share the load (nginx's least_conn, over requests).
 * An idle pooled connection is used only when it goes to that backend. A
 * websocket counts until its 101 arrives: the tunnel that follows is a
 * mostly idle connection, and counting it would starve an instance that
 * holds many of them of requests it could well serve.
 *
 * The loop's timeout scan bounds each wait by the app's connect timeout;
 * a refusal or timeout quarantines the backend in its pool (every loop
 * skips it for QUARANTINE_MS, unless no other is left) and the request
 * tries another of the app's backends by the same rule. No lock is held
 * across any of it, and nothing here blocks: a backend whose accept queue
 * is full costs its own requests their connect timeout and nobody else
 * anything.
 *
 * A channel holds its backend (ops->hold), so the pointer that keys it
 * cannot be reused for another backend while it is open; channels to
 * backends the current table no longer names are closed by a sweep every
 * few seconds, once nothing waits on them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define CHANNEL_BUCKETS 64              /* grows with the number of channels */
#define PENDING_BUCKETS_MIN 256
#define ATTEMPTS_MAX 16                 /* backends one request tries at most */
#define STOCK_FILL 16                   /* a channel's stock after a refill */
#define STOCK_LOW 8                     /* at or below it, a refill is asked */
#define STOCK_RETRY_MS 1000             /* an ask not answered (or answered empty) is repeated after this */
#define CONNECT_DIAL_WAIT_MS 4          /* a dial not complete by then lost its SYN (the agent's REDIAL_FAST_MS) */
#define ADMIT_CAP_MAX 256               /* a cap grown past this is lifted */
#define ADMIT_PROBE_SLOW 16             /* how much slower the cap grows near the last loss */

struct channel {
    uint8_t kind;                 /* EV_CHANNEL: epoll data of fd */
    void *backend;                /* held while the channel is open */
    int fd;
    unsigned waiting;             /* requests asked on it (or queued for it) and not answered */
    struct proxy_req *queue_head, *queue_tail;   /* not sent yet: the channel was full */
    struct channel *hnext;        /* the connector's hash chain */
    int stock[ROUTER_STOCK_MAX];  /* unconnected sockets of the backend's network namespace */
    unsigned n_stock;
    struct sockaddr_in addr;      /* where they connect: 127.0.0.1:PORT */
    uint64_t next_ask_ms;         /* no stock is asked before this (an ask outstanding, or answered empty) */
    bool stock_used;              /* a connect was started on this channel since the last sweep */
};

struct connector {
    struct router *r;
    int epfd;
    uint64_t next_id;
    size_t nchannels, cmask;
    struct channel **channels;    /* chained by backend pointer */
    size_t npending, pmask;
    struct proxy_req **pending;   /* chained by id through req->pending_next */
    struct proxy_req *dial_head, *dial_tail;   /* dialing, oldest first (same wait for all) */
    struct pool_slot *ready;      /* slots with room and waiters, for connect_admit_waiting() */
};

static size_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

struct connector *connector_new(struct router *r, int epfd)
{
    struct connector *c = xcalloc(1, sizeof(*c));

    c->r = r;
    c->epfd = epfd;
    c->cmask = CHANNEL_BUCKETS - 1;
    c->channels = xcalloc(CHANNEL_BUCKETS, sizeof(*c->channels));
    c->pmask = PENDING_BUCKETS_MIN - 1;
    c->pending = xcalloc(PENDING_BUCKETS_MIN, sizeof(*c->pending));
    return c;
}

/* ---------------------------------------------------------------- pending requests */

static void pending_grow(struct connector *c)
{
    size_t size = (c->pmask + 1) * 2;
    struct proxy_req **next = xcalloc(size, sizeof(*next));

    for (size_t i = 0; i <= c->pmask; i++) {
        struct proxy_req *req = c->pending[i], *n;
        for (; req; req = n) {
            size_t s = hash_u64(req->connect_id) & (size - 1);
            n = req->pending_next;
            req->pending_next = next[s];
            next[s] = req;
        }
    }
    free(c->pending);
    c->pending = next;
    c->pmask = size - 1;
}

static void pending_add(struct connector *c, struct proxy_req *req)
{
    size_t s;

    if (c->npending >= c->pmask + 1)
        pending_grow(c);
    s = hash_u64(req->connect_id) & c->pmask;
    req->pending_next = c->pending[s];
    c->pending[s] = req;
    c->npending++;
}

/* Removes and returns the request waiting for `id`, or NULL. */
static struct proxy_req *pending_take(struct connector *c, uint64_t id)
{
    struct proxy_req **p = &c->pending[hash_u64(id) & c->pmask];

    for (; *p; p = &(*p)->pending_next) {
        struct proxy_req *req = *p;
        if (req->connect_id == id) {
            *p = req->pending_next;
            req->pending_next = NULL;
            c->npending--;
            req->channel->waiting--;
            req->channel = NULL;
            req->connect_id = 0;
            return req;
        }
    }
    return NULL;
}

/* Takes req off its channel's queue of requests not sent yet. */
static bool queue_remove(struct channel *ch, struct proxy_req *req)
{
    struct proxy_req **p = &ch->queue_head, *prev = NULL;

    for (; *p; prev = *p, p = &(*p)->queue_next) {
        if (*p != req)
            continue;
        *p = req->queue_next;
        if (ch->queue_tail == req)
            ch->queue_tail = prev;
        req->queue_next = NULL;
        ch->waiting--;
        req->channel = NULL;
        return true;
    }
    return false;
}

static void dial_end(struct connector *c, struct proxy_req *req);
static void wait_remove(struct connector *c, struct proxy_req *req);
static void channel_watch(struct connector *c, struct channel *ch);

void connect_forget(struct connector *c, struct proxy_req *req)
{
    struct channel *ch = req->channel;

    if (req->dialing) {
        dial_end(c, req);
    } else if (req->wait_slot) {
        wait_remove(c, req);
    } else if (req->connect_id) {
        (void)pending_take(c, req->connect_id);
    } else if (ch && queue_remove(ch, req) && !ch->queue_head) {
        /*
         * The last request waiting for room on a full channel left (timed
         * out, or its client went): stop watching for room, or the
         * level-triggered EPOLLOUT would wake the loop at every turn once
         * the agent drained the channel.
         */
        channel_watch(c, ch);
    }
}

/* ---------------------------------------------------------------- channels */

static struct channel **channel_slot(struct connector *c, const void *backend)
{
    struct channel **p = &c->channels[hash_u64((uint64_t)(uintptr_t)backend) & c->cmask];

    while (*p && (*p)->backend != backend)
        p = &(*p)->hnext;
    return p;
}

static void channels_grow(struct connector *c)
{
    size_t size = (c->cmask + 1) * 2;
    struct channel **next = xcalloc(size, sizeof(*next));

    for (size_t i = 0; i <= c->cmask; i++) {
        struct channel *ch = c->channels[i], *n;
        for (; ch; ch = n) {
            size_t s = hash_u64((uint64_t)(uintptr_t)ch->backend) & (size - 1);
            n = ch->hnext;
            ch->hnext = next[s];
            next[s] = ch;
        }
    }
    free(c->channels);
    c->channels = next;
    c->cmask = size - 1;
}

/* The loop's channel to backend, opened now if it has none. NULL with *ret_err when the agent is gone. */
static struct channel *channel_get(struct connector *c, void *backend, int *ret_err)
{
    struct channel **slot = channel_slot(c, backend), *ch;
    struct epoll_event ev = { .events = EPOLLIN };
    int fd, rc;

    if (*slot)
        return *slot;
    rc = c->r->ops->open_channel(backend, &fd);
    if (rc < 0) {
        *ret_err = -rc;
        return NULL;
    }
    ch = xcalloc(1, sizeof(*ch));
    ch->kind = EV_CHANNEL;
    ch->backend = backend;
    ch->fd = fd;
    ev.data.ptr = ch;
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        *ret_err = errno;
        (void)close(fd);
        free(ch);
        return NULL;
    }
    c->r->ops->hold(backend);
    if (c->nchannels >= c->cmask + 1) {
        channels_grow(c);
        slot = channel_slot(c, backend);
    }
    *slot = ch;
    c->nchannels++;
    return ch;
}

/* ---------------------------------------------------------------- the stock */

static void stock_drop(struct channel *ch)
{
    while (ch->n_stock > 0)
        (void)close(ch->stock[--ch->n_stock]);
}

/* A connect starts on ch: asks for more sockets when the stock runs low, unless an ask went out within STOCK_RETRY_MS. */
static void stock_refill(struct connector *c, struct channel *ch, uint64_t now)
{
    ch->stock_used = true;
    if (!c->r->stock || !c->r->ops->ask_stock || ch->n_stock > STOCK_LOW || now < ch->next_ask_ms)
        return;
    /* -EAGAIN (the channel is full) or a broken channel: the next connect asks again. */
    if (c->r->ops->ask_stock(ch->fd, STOCK_FILL - ch->n_stock) == 0)
        ch->next_ask_ms = now + STOCK_RETRY_MS;
}

/* A stock answer: its sockets join the channel's stock; what does not fit, or has nowhere to go, is closed. */
static void stock_take(struct channel *ch, const struct router_answer *a)
{
    if (a->port != 0) {
        ch->addr.sin_family = AF_INET;
        ch->addr.sin_port = htons(a->port);
        ch->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    for (unsigned i = 0; i < a->n_stock; i++) {
        if (a->port != 0 && ch->n_stock < ROUTER_STOCK_MAX)
            ch->stock[ch->n_stock++] = a->stock[i];
        else
            (void)close(a->stock[i]);
    }
    /* An empty answer (the agent could make none) leaves the next ask a retry interval away. */
    if (a->n_stock > 0)
        ch->next_ask_ms = 0;
}

/*
 * Closes a channel, out of the epoll first (close() alone would leave it
 * there, pointing at the freed channel, while a forked child still holds
 * the socket). Nothing may wait on it.
 */
static void channel_close(struct connector *c, struct channel *ch)
{
    struct channel **slot = channel_slot(c, ch->backend);

    *slot = ch->hnext;
    c->nchannels--;
    stock_drop(ch);
    (void)epoll_ctl(c->epfd, EPOLL_CTL_DEL, ch->fd, NULL);
    (void)close(ch->fd);
    c->r->ops->release(ch->backend);
    free(ch);
}

/*
 * The channel broke or ended (the container exited): every request
 * waiting on it is answered with ECONNRESET, which sends it to another
 * backend, and the channel closes (the next request opens a new one).
 */
static void channel_fail(struct connector *c, struct channel *ch)
{
    struct proxy_req *failed = ch->queue_head, *req, *next;

    /* The queued ones first (never sent), then those asked. */
    for (req = failed; req; req = req->queue_next) {
        req->pending_next = req->queue_next;
        req->channel = NULL;
        ch->waiting--;
    }
    ch->queue_head = ch->queue_tail = NULL;

    for (size_t i = 0; i <= c->pmask && ch->waiting > 0; i++) {
        struct proxy_req **p = &c->pending[i];
        while (*p) {
            req = *p;
            if (req->channel != ch) {
                p = &req->pending_next;
                continue;
            }
            *p = req->pending_next;
            c->npending--;
            ch->waiting--;
            req->channel = NULL;
            req->connect_id = 0;
            req->pending_next = failed;
            failed = req;
        }
    }
    channel_close(c, ch);
    for (req = failed; req; req = next) {
        next = req->pending_next;
        req->pending_next = NULL;
        req->queue_next = NULL;
        upstream_connected(req->loop, req, -1, ECONNRESET);
    }
}

/* Arms the channel for EPOLLOUT too while requests wait to be sent on it. */
static void channel_watch(struct connector *c, struct channel *ch)
{
    struct epoll_event ev = { .events = EPOLLIN | (ch->queue_head ? EPOLLOUT : 0), .data.ptr = ch };

    (void)epoll_ctl(c->epfd, EPOLL_CTL_MOD, ch->fd, &ev);
}

/*
 * Sends what waits in the channel's queue, as far as the channel takes it,
 * on EPOLLOUT. Returns false when it broke. An empty queue stops the
 * watch for room (also when nothing was queued any more: an EPOLLOUT
 * armed for nothing would fire at every turn of the loop).
 */
static bool channel_flush(struct connector *c, struct channel *ch)
{
    while (ch->queue_head) {
        struct proxy_req *req = ch->queue_head;
        uint64_t id = c->next_id + 1;
        int rc = c->r->ops->request(ch->fd, id);

        if (rc == -EAGAIN)
            break;
        if (rc < 0)
            return false;
        c->next_id = id;
        ch->queue_head = req->queue_next;
        if (!ch->queue_head)
            ch->queue_tail = NULL;
        req->queue_next = NULL;
        req->connect_id = id;
        pending_add(c, req);
    }
    if (!ch->queue_head)
        channel_watch(c, ch);
    return true;
}

void connect_on_channel(struct connector *c, struct channel *ch, uint32_t events)
{
    if ((events & EPOLLOUT) && !channel_flush(c, ch)) {
        channel_fail(c, ch);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    for (;;) {
        struct router_answer a;
        int rc = c->r->ops->answer(ch->fd, &a);
        struct proxy_req *req;

        if (rc == -EAGAIN)
            return;
        if (rc <= 0) {
            channel_fail(c, ch);
            return;
        }
        if (a.is_stock) {
            stock_take(ch, &a);
            continue;
        }
        req = pending_take(c, a.id);
        if (!req) {
            /* Nobody waits for it any more: the request timed out or its client left. */
            if (a.sock >= 0)
                (void)close(a.sock);
            continue;
        }
        upstream_connected(req->loop, req, a.sock, a.error);
    }
}

void connect_sweep(struct connector *c, const struct route_table *current)
{
    for (size_t i = 0; i <= c->cmask; i++) {
        struct channel *ch = c->channels[i], *next;
        for (; ch; ch = next) {
            next = ch->hnext;
            if (ch->waiting == 0 && !route_table_has_backend(current, ch->backend)) {
                channel_close(c, ch);
                continue;
            }
            if (!ch->stock_used)
                stock_drop(ch);
            ch->stock_used = false;
        }
    }
}

void connector_free(struct connector *c)
{
    if (!c)
        return;
    for (size_t i = 0; i <= c->cmask; i++) {
        struct channel *ch = c->channels[i], *next;
        for (; ch; ch = next) {
            next = ch->hnext;
            stock_drop(ch);
            (void)close(ch->fd);
            c->r->ops->release(ch->backend);
            free(ch);
        }
    }
    free(c->channels);
    free(c->pending);
    free(c);
}

/* ---------------------------------------------------------------- choosing a backend */

static bool tried(const struct proxy_req *req, size_t i)
{
    return i < 128 && (req->tried[i / 64] >> (i % 64)) & 1;
}

static void mark_tried(struct proxy_req *req, size_t i)
{
    if (i < 128)
        req->tried[i / 64] |= 1ull << (i % 64);
}

/*
 * The backend of req's target not tried yet with the fewest outstanding
 * requests, out of quarantine if any such is left; -1 when every one has
 * been tried. Equal ones are drawn at random (reservoir sampling over the
 * ties, one draw per request), so idle backends share the load evenly.
 * The counts are read without a lock: two loops may pick the same backend
 * at the same instant, which the next requests even out.
 */
static ssize_t pick_backend(const struct proxy_req *req)
{
    const struct route_target *tg = req->target;
    size_t n = tg->n_backends;
    uint64_t draw, now;
    ssize_t best = -1;
    unsigned best_load = 0, ties = 0;
    bool best_quarantined = true;

    /* One backend (the common case): nothing to compare, quarantined or not. */
    if (n == 1)
        return tried(req, 0) ? -1 : 0;
    draw = router_random();
    now = now_ms();
    for (size_t i = 0; i < n; i++) {
        const struct upstream_pool *p = tg->backends[i].pool;
        unsigned load;
        bool q;

        if (tried(req, i))
            continue;
        load = atomic_load_explicit(&p->outstanding, memory_order_relaxed);
        q = pool_quarantined(p, now);
        if (best < 0 || (best_quarantined && !q) || (q == best_quarantined && load < best_load)) {
            best = (ssize_t)i;
            best_load = load;
            best_quarantined = q;
            ties = 1;
        } else if (q == best_quarantined && load == best_load) {
            /* The k-th of k equal ones replaces the pick with probability 1/k. */
            draw = draw * 6364136223846793005ull + 1442695040888963407ull;
            if ((draw >> 33) % ++ties == 0)
                best = (ssize_t)i;
        }
    }
    /* Every untried backend quarantined: the best of them is still better than no answer. */
    return best;
}

/* req counts as one outstanding request of p, until connect_leave(). */
static void enter(struct proxy_req *req, struct upstream_pool *p)
{
    atomic_fetch_add_explicit(&p->outstanding, 1, memory_order_relaxed);
    req->counted = p;
}

static void admit_release(struct proxy_req *req);
static void admit_shrink(struct proxy_req *req);

void connect_leave(struct proxy_req *req)
{
    admit_release(req);
    if (!req->counted)
        return;
    atomic_fetch_sub_explicit(&req->counted->outstanding, 1, memory_order_relaxed);
    req->counted = NULL;
}

/* An idle connection to req's chosen backend from its pool, on req's loop: the request is ready to go. */
static bool take_pooled(struct proxy_req *req)
{
    int fd = pool_take(req->backend->pool, req->loop_idx);

    if (fd < 0)
        return false;
    pthread_mutex_lock(&req->lock);
    req->fd = fd;
    req->in_epoll = true;   /* still registered with this loop's epoll (upstream.c maps it to req) */
    pthread_mutex_unlock(&req->lock);
    req->from_pool = true;
    req->service_start_ms = now_ms();
    return true;
}

/* Asks the agent on ch for a connection: req waits in UP_CONNECTING. False when the agent is gone. */
static bool ask_agent(struct connector *c, struct proxy_req *req, struct channel *ch)
{
    int rc;

    /* Behind others already queued, or on a full channel: wait in line for room (EPOLLOUT). */
    rc = ch->queue_head ? -EAGAIN : c->r->ops->request(ch->fd, c->next_id + 1);
    if (rc < 0 && rc != -EAGAIN)
        return false;   /* the agent is gone; its channel's end reaches connect_on_channel(), which closes it */
    req->channel = ch;
    ch->waiting++;
    if (rc == 0) {
        req->connect_id = ++c->next_id;
        pending_add(c, req);
    } else {
        req->connect_id = 0;
        req->queue_next = NULL;
        if (ch->queue_tail)
            ch->queue_tail->queue_next = req;
        else
            ch->queue_head = req;
        ch->queue_tail = req;
        if (ch->queue_head == req)
            channel_watch(c, ch);
    }
    return true;
}

/* ---------------------------------------------------------------- dialing */

static void dial_link(struct connector *c, struct proxy_req *req)
{
    req->dial_next = NULL;
    req->dial_prev = c->dial_tail;
    if (c->dial_tail)
        c->dial_tail->dial_next = req;
    else
        c->dial_head = req;
    c->dial_tail = req;
}

static void dial_unlink(struct connector *c, struct proxy_req *req)
{
    if (req->dial_prev)
        req->dial_prev->dial_next = req->dial_next;
    else
        c->dial_head = req->dial_next;
    if (req->dial_next)
        req->dial_next->dial_prev = req->dial_prev;
    else
        c->dial_tail = req->dial_prev;
    req->dial_prev = req->dial_next = NULL;
}

/* req stops dialing: off the list, and its socket closed (out of the epoll first when it is in it). */
static void dial_end(struct connector *c, struct proxy_req *req)
{
    connect_dial_done(c, req);
    upstream_close_socket(req->loop, req);
}

/*
 * Connects a socket of ch's stock for req: true when the connect is under
 * way (req->fd set, not yet registered; req on the dialing list; the
 * caller submits it, upstream_submit()), false when the stock is empty or
 * the connect failed at once (the caller asks the agent, whose answer says
 * why).
 */
static bool dial(struct connector *c, struct proxy_req *req, struct channel *ch, uint64_t now)
{
    int fd;

    if (ch->n_stock == 0)
        return false;
    fd = ch->stock[--ch->n_stock];
    upstream_rto_fresh(fd);
    if (connect(fd, (const struct sockaddr *)&ch->addr, sizeof(ch->addr)) < 0 && errno != EINPROGRESS) {
        (void)close(fd);
        return false;
    }
    pthread_mutex_lock(&req->lock);
    req->fd = fd;
    req->in_epoll = false;
    pthread_mutex_unlock(&req->lock);
    req->from_pool = false;
    req->dialing = true;
    req->dial_start_ms = now;
    dial_link(c, req);
    return true;
}

void connect_dial_done(struct connector *c, struct proxy_req *req)
{
    dial_unlink(c, req);
    req->dialing = false;
}

void connect_on_dial(struct connector *c, struct proxy_req *req, uint32_t events)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (!(events & (EPOLLERR | EPOLLHUP))) {
        connect_dial_done(c, req);
        upstream_dialled(req->loop, req);
        return;
    }
    if (getsockopt(req->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
        err = ECONNREFUSED;
    dial_end(c, req);
    upstream_connected(req->loop, req, -1, err);
}

/* CONNECT_DIAL_WAIT_MS, unless a test set another before starting its router (connect_dial_wait_for_test()). */
static int dial_wait_ms = CONNECT_DIAL_WAIT_MS;

void connect_dial_wait_for_test(int ms)
{
    dial_wait_ms = ms > 0 ? ms : CONNECT_DIAL_WAIT_MS;
}

void connect_expire_dials(struct connector *c, uint64_t now)
{
    while (c->dial_head && now >= c->dial_head->dial_start_ms + (uint64_t)dial_wait_ms) {
        struct proxy_req *req = c->dial_head;
        struct channel *ch;
        int err = 0;

        admit_shrink(req);
        dial_end(c, req);
        /* Still the same attempt: its connect timeout and time keep running from the dial. */
        ch = channel_get(c, req->backend->backend, &err);
        if (!ch || !ask_agent(c, req, ch))
            upstream_connected(req->loop, req, -1, ECONNRESET);
    }
}

int connect_dial_wait_ms(const struct connector *c, int cap)
{
    uint64_t due, now;

    if (!c->dial_head)
        return cap;
    due = c->dial_head->dial_start_ms + (uint64_t)dial_wait_ms;
    now = now_ms();
    if (now >= due)
        return 0;
    return due - now < (uint64_t)cap ? (int)(due - now) : cap;
}

/* ---------------------------------------------------------------- admission */

static struct pool_slot *slot_of(const struct proxy_req *req)
{
    struct upstream_pool *p = req->backend->pool;

    return &p->slots[req->loop_idx % p->nslots];
}

static void ready_push(struct connector *c, struct pool_slot *s)
{
    if (s->on_ready || !s->wait_head || (s->cap && s->open >= s->cap))
        return;
    s->on_ready = true;
    s->next_ready = c->ready;
    c->ready = s;
}

static void ready_remove(struct connector *c, struct pool_slot *s)
{
    struct pool_slot **p = &c->ready;

    if (!s->on_ready)
        return;
    while (*p && *p != s)
        p = &(*p)->next_ready;
    if (*p)
        *p = s->next_ready;
    s->on_ready = false;
    s->next_ready = NULL;
}

/* Whether req may open a new connection to its backend now; if so it counts in the slot's `open`. */
static bool admit(struct proxy_req *req)
{
    struct pool_slot *s = slot_of(req);

    /* Behind the waiters, if any: in order. */
    if (s->cap && (s->open >= s->cap || s->wait_head))
        return false;
    s->open++;
    req->admitted = s;
    return true;
}

static void admit_release(struct proxy_req *req)
{
    struct pool_slot *s = req->admitted;

    if (!s)
        return;
    req->admitted = NULL;
    s->open--;
    if (s->wait_head)
        ready_push(req->loop->connector, s);
}

static void wait_add(struct proxy_req *req)
{
    struct pool_slot *s = slot_of(req);

    req->wait_slot = s;
    req->wait_next = NULL;
    s->waiting++;
    if (s->wait_tail)
        s->wait_tail->wait_next = req;
    else
        s->wait_head = req;
    s->wait_tail = req;
}

static void wait_remove(struct connector *c, struct proxy_req *req)
{
    struct pool_slot *s = req->wait_slot;
    struct proxy_req **p = &s->wait_head, *prev = NULL;

    for (; *p; prev = *p, p = &(*p)->wait_next) {
        if (*p != req)
            continue;
        *p = req->wait_next;
        if (s->wait_tail == req)
            s->wait_tail = prev;
        s->waiting--;
        break;
    }
    req->wait_slot = NULL;
    req->wait_next = NULL;
    /* A slot nobody waits on leaves the list: its pool may go with the last request's table. */
    if (!s->wait_head)
        ready_remove(c, s);
}

unsigned connect_admit_grow_after(unsigned cap, unsigned ceiling)
{
    return cap + 1 >= ceiling ? cap * ADMIT_PROBE_SLOW : cap;
}

void connect_succeeded(struct proxy_req *req)
{
    struct pool_slot *s = req->admitted;

    /* Grow only while the cap binds: a cap nobody reaches says nothing. */
    if (!s || !s->cap || (s->open < s->cap && !s->wait_head))
        return;
    if (++s->grown < connect_admit_grow_after(s->cap, s->ceiling))
        return;
    s->grown = 0;
    if (++s->cap > ADMIT_CAP_MAX)
        s->cap = 0;
    ready_push(req->loop->connector, s);
}

/* A dial of req's lost its SYN: its slot's cap halves what is open, and that is the next ceiling. */
static void admit_shrink(struct proxy_req *req)
{
    struct pool_slot *s = req->admitted;

    if (!s)
        return;
    s->ceiling = s->open;
    s->cap = s->open / 2 ? s->open / 2 : 1;
    s->grown = 0;
}

/* Starts req's connection to its chosen backend: a dial from the stock, else the agent's. False when the agent is gone. */
static bool start_connect(struct connector *c, struct proxy_req *req)
{
    uint64_t now = now_ms();
    struct channel *ch;
    int err = 0;
    bool started;

    ch = channel_get(c, req->backend->backend, &err);
    if (!ch)
        return false;
    started = dial(c, req, ch, now) || ask_agent(c, req, ch);
    if (!started)
        return false;
    stock_refill(c, ch, now);
    req->ustate = UP_CONNECTING;
    req->connect_start_ms = now;
    req->deadline_ms = now + req->target->settings.connect_timeout_ms;
    return true;
}

void connect_admit_waiting(struct connector *c)
{
    while (c->ready) {
        struct pool_slot *s = c->ready;

        c->ready = s->next_ready;
        s->next_ready = NULL;
        s->on_ready = false;
        while (s->wait_head && (!s->cap || s->open < s->cap)) {
            struct proxy_req *req = s->wait_head;
            uint64_t started = req->connect_start_ms, deadline = req->deadline_ms;

            s->wait_head = req->wait_next;
            if (!s->wait_head)
                s->wait_tail = NULL;
            s->waiting--;
            req->wait_slot = NULL;
            req->wait_next = NULL;
            s->open++;
            req->admitted = s;
            if (!start_connect(c, req)) {
                upstream_connected(req->loop, req, -1, ECONNRESET);
                continue;
            }
            /* The wait counted against its connect timeout. */
            req->connect_start_ms = started;
            req->deadline_ms = deadline;
            if (req->dialing)
                upstream_submit(req->loop, req);
        }
    }
}

enum router_failure connect_begin(struct connector *c, struct proxy_req *req, bool allow_pool)
{
    const struct route_target *tg = req->target;

    /* A retry: the backend it leaves no longer has it outstanding. */
    connect_leave(req);
    if (tg->n_backends == 0)
        return FAIL_NO_WEB;
    while (req->attempts < ATTEMPTS_MAX) {
        ssize_t i = pick_backend(req);

        if (i < 0)
            break;
        req->backend = &tg->backends[i];
        /*
         * Reuse follows the choice: only an idle connection to the chosen
         * backend. It marks nothing tried, so a stale one (the app closed
         * it while idle) is retried on a fresh connection to any backend.
         */
        if (allow_pool && take_pooled(req)) {
            enter(req, req->backend->pool);
            return FAIL_NONE;
        }
        allow_pool = false;
        mark_tried(req, (size_t)i);
        req->attempts++;
        if (!admit(req)) {
            uint64_t now = now_ms();

            wait_add(req);
            req->ustate = UP_CONNECTING;
            req->connect_start_ms = now;
            req->deadline_ms = now + tg->settings.connect_timeout_ms;
            enter(req, req->backend->pool);
            return FAIL_NONE;
        }
        if (!start_connect(c, req)) {
            admit_release(req);
            req->last_failure = FAIL_CRASHED;
            continue;
        }
        enter(req, req->backend->pool);
        return FAIL_NONE;
    }
    return req->last_failure != FAIL_NONE ? req->last_failure : FAIL_NO_WEB;
}
