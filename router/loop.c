/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's loops: one epoll thread each (one per CPU), driving both
 * sides of the requests it owns. Its epoll holds the listening sockets
 * (HTTP, and HTTPS when configured; every loop waits on them with
 * EPOLLEXCLUSIVE and accepts for itself), its libmicrohttpd daemons' epoll
 * fds (MHD_USE_EPOLL: MHD_run() is called when one is ready, and at least
 * every half second for MHD's timeouts), the upstream sockets of its
 * requests (upstream.c) and its channels to the backends' port agents
 * (connect.c). Earlier the client side ran in MHD's own worker pool and
 * every response crossed threads twice; measured side by side
 * (tests/bench), one thread per request was the larger part of closing the
 * gap to nginx.
 *
 * Everything a loop owns is touched on its thread alone, except through
 * two doors: cancellations (a client went away while its request was
 * still busy upstream, seen by MHD on this same thread but possibly from
 * inside a callback that must not free the request) and router_stop(),
 * both through a mutex-protected queue and an eventfd. The queue is run
 * after the fd events of one epoll batch, because a cancel may free a
 * request whose event is still in that batch; so are the scans (timeouts,
 * head deadlines, dials that waited too long, requests let in as room
 * frees, channel sweeps) and, last of a turn, the access log's one write.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define MAX_EVENTS 256
#define SCAN_MS 500
#define SWEEP_MS 5000

struct cmd {
    struct proxy_req *req;
    struct cmd *next;
};

static _Thread_local struct upstream_loop *self;

/* The data.ptr tags of the loop's own fds (the eventfd's is NULL). */
static const char mhd_tag[2], listen_tag[2];

struct upstream_loop *upstream_loop_self(void)
{
    return self;
}

unsigned upstream_loop_index(const struct upstream_loop *l)
{
    return l->idx;
}

struct router *upstream_loop_router(const struct upstream_loop *l)
{
    return l->r;
}

/*
 * MHD's resume raises no event in external-epoll mode (seen with 0.9.75: no
 * write to its inter-thread channel), so the loop that resumes a
 * connection also makes sure its daemons run before it sleeps again. Other
 * threads (router_stop()) rely on the half-second run.
 */
void upstream_resume(struct MHD_Connection *conn)
{
    MHD_resume_connection(conn);
    if (self)
        self->mhd_resumed = true;
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

static void run_commands(struct upstream_loop *l, struct cmd *c)
{
    while (c) {
        struct cmd *next = c->next;

        upstream_drop(l, c->req);
        proxy_req_unref(c->req);
        free(c);
        c = next;
    }
}

static void dispatch(struct upstream_loop *l, const struct epoll_event *ev, bool mhd_ready[2],
                     bool *commands)
{
    void *p = ev->data.ptr;

    if (ev->data.u64 & UPSTREAM_EV_TAG) {
        upstream_on_fd_event(l, (int)(uint32_t)ev->data.u64, ev->events);
    } else if (p == NULL) {
        *commands = true;
    } else if (p == &mhd_tag[0] || p == &mhd_tag[1]) {
        mhd_ready[p == &mhd_tag[1]] = true;
    } else if (p == &listen_tag[0]) {
        if (clients_accept(l, l->r->listen_fd, l->daemons[0], false))
            mhd_ready[0] = true;
    } else if (p == &listen_tag[1]) {
        if (clients_accept(l, l->r->tls_listen_fd, l->daemons[1], true))
            mhd_ready[1] = true;
    } else if (*(const uint8_t *)p == EV_CHANNEL) {
        connect_on_channel(l->connector, p, ev->events);
    } else if (*(const uint8_t *)p == EV_CLIENT) {
        front_on_event(l, p, ev->events);
    }
}

/*
 * Runs the daemons that have work. MHD's epoll is edge-triggered inside: a
 * connection it left with work to do (a send cut short at its own limit,
 * say) raises no new event, and MHD asks to be run again at once.
 */
static void run_daemons(struct upstream_loop *l, const bool ready[2], uint64_t now)
{
    bool periodic = now - l->last_mhd_run >= SCAN_MS, resumed = l->mhd_resumed;

    if (periodic)
        l->last_mhd_run = now;
    l->mhd_resumed = false;
    for (int i = 0; i < 2; i++) {
        MHD_UNSIGNED_LONG_LONG wait_ms;

        if (!l->daemons[i] || !(ready[i] || l->mhd_again[i] || resumed || periodic))
            continue;
        if (MHD_run(l->daemons[i]) != MHD_YES)
            log_warn("router: MHD_run failed in loop %u", l->idx);
        l->mhd_again[i] = MHD_get_timeout(l->daemons[i], &wait_ms) == MHD_YES && wait_ms == 0;
    }
}

/* The work of every turn that no single event asks for: deadlines, sweeps, memory, the log. */
static void housekeeping(struct upstream_loop *l, uint64_t now, bool had_events)
{
    connect_expire_dials(l->connector, now);
    connect_admit_waiting(l->connector);
    if (now - l->last_scan >= SCAN_MS) {
        l->last_scan = now;
        upstream_scan_timeouts(l, now);
        clients_scan(l, now);
        front_scan(l, now);
    }
    if (now - l->last_sweep >= SWEEP_MS) {
        struct route_table *t = router_current_table(l->r);
        l->last_sweep = now;
        connect_sweep(l->connector, t);
        route_table_unref(t);
    }
    /*
     * A burst leaves this thread's malloc arena holding the freed
     * connection buffers; once the loop has had neither an event nor a
     * request in flight for a second, hand them back to the system (an
     * idle router stays small). No request in flight is not enough on
     * its own: a loop between two requests of a busy keep-alive client
     * has nothing active either, and trimming there costs an madvise(),
     * the TLB shootdown it sends to every CPU running one of our
     * threads, and the page faults that refill the arena.
     */
    if (had_events || l->active) {
        l->busy_since_trim = true;
        l->last_event = now;
    }
    if (l->busy_since_trim && now - l->last_event >= 1000) {
        l->busy_since_trim = false;
        proxy_req_cache_trim();
        (void)malloc_trim(0);
    }
    access_log_flush();
}

static void *loop_main(void *arg)
{
    struct upstream_loop *l = arg;
    struct epoll_event evs[MAX_EVENTS];

    self = l;
    for (;;) {
        bool again = l->mhd_again[0] || l->mhd_again[1] || l->mhd_resumed;
        int n = epoll_wait(l->epfd, evs, MAX_EVENTS, again ? 0 : connect_dial_wait_ms(l->connector, SCAN_MS));
        bool commands = false, ready[2] = { false, false }, stop;
        struct cmd *c;
        uint64_t now;

        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++)
            dispatch(l, &evs[i], ready, &commands);
        /* The front's answers, now that the upstream side is done with this batch's sockets. */
        front_run_ready(l);
        /*
         * After the upstream events, so the connections they resumed are
         * served in this same turn; MHD's callbacks may hand requests to
         * this loop or cancel them (the queue, run below).
         */
        now = now_ms();
        run_daemons(l, ready, now);
        if (commands) {
            uint64_t v;
            (void)!read(l->evfd, &v, sizeof(v));
        }
        pthread_mutex_lock(&l->qlock);
        c = l->qhead;
        l->qhead = l->qtail = NULL;
        stop = l->stop;
        pthread_mutex_unlock(&l->qlock);
        run_commands(l, c);
        if (stop)
            break;
        housekeeping(l, now, n > 0);
        /* Timeouts the scan found answer now, not a turn later. */
        front_run_ready(l);
    }
    /*
     * The daemons are ours to stop, on this thread, since no other may
     * call into them; their connections close and their completion
     * callbacks queue cancellations, which upstream_loop_stop() runs after
     * the join.
     */
    for (int i = 0; i < 2; i++) {
        if (l->daemons[i])
            MHD_stop_daemon(l->daemons[i]);
        l->daemons[i] = NULL;
    }
    front_close_all(l);
    access_log_thread_end();
    proxy_req_cache_trim();
    return NULL;
}

static int watch(struct upstream_loop *l, int fd, uint32_t events, const void *tag, struct berth_error **err)
{
    struct epoll_event ev = { .events = events, .data.ptr = (void *)tag };

    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return berth_error_make(err, errno, "epoll_ctl");
    return 0;
}

static int watch_daemon(struct upstream_loop *l, int i, struct berth_error **err)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->daemons[i], MHD_DAEMON_INFO_EPOLL_FD);

    if (!info || info->epoll_fd < 0)
        return berth_error_plain(err, EINVAL, "the HTTP daemon has no epoll fd");
    return watch(l, info->epoll_fd, EPOLLIN, &mhd_tag[i], err);
}

static int loop_setup(struct upstream_loop *l, struct berth_error **err)
{
    struct router *r = l->r;

    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return berth_error_make(err, errno, "epoll_create1");
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->evfd < 0)
        return berth_error_make(err, errno, "eventfd");
    l->connector = connector_new(r, l->epfd);
    if (watch(l, l->evfd, EPOLLIN, NULL, err) < 0 || watch_daemon(l, 0, err) < 0 ||
        watch(l, r->listen_fd, EPOLLIN | EPOLLEXCLUSIVE, &listen_tag[0], err) < 0)
        return -1;
    if (l->daemons[1] && (watch_daemon(l, 1, err) < 0 ||
                          watch(l, r->tls_listen_fd, EPOLLIN | EPOLLEXCLUSIVE, &listen_tag[1], err) < 0))
        return -1;
    return 0;
}

static void loop_free(struct upstream_loop *l)
{
    connector_free(l->connector);
    upstream_map_free(l);
    if (l->epfd >= 0)
        (void)close(l->epfd);
    if (l->evfd >= 0)
        (void)close(l->evfd);
    pthread_mutex_destroy(&l->qlock);
    free(l);
}

struct upstream_loop *upstream_loop_start(struct router *r, unsigned idx, struct MHD_Daemon *http,
                                          struct MHD_Daemon *https, struct berth_error **err)
{
    struct upstream_loop *l = xcalloc(1, sizeof(*l));
    int ret;

    l->r = r;
    l->idx = idx;
    l->daemons[0] = http;
    l->daemons[1] = https;
    l->epfd = -1;
    l->evfd = -1;
    pthread_mutex_init(&l->qlock, NULL);
    if (loop_setup(l, err) < 0) {
        loop_free(l);
        return NULL;
    }
    ret = pthread_create(&l->thread, NULL, loop_main, l);
    if (ret != 0) {
        berth_error_make(err, ret, "starting a router loop");
        loop_free(l);
        return NULL;
    }
    return l;
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

    /* Anything queued after the last pass, then anything still active. */
    c = l->qhead;
    l->qhead = l->qtail = NULL;
    run_commands(l, c);
    while (l->active)
        upstream_fail(l, l->active, FAIL_STOPPING);
    loop_free(l);
}
