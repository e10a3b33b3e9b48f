/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The connector's stock (connect.c): unconnected sockets a backend's agent
 * hands over, which the loop connects itself instead of asking the agent
 * for every connection. The fake backends of fake-backend.h make them in
 * this process's network namespace, as a container's agent makes them in
 * the container's. Checked: an app that closes every connection is served
 * from the stock (the agent asked once, not once a request), and a
 * chunked upload streams through a dialled socket; a stock
 * socket whose connect is refused quarantines its backend like a refusal
 * the agent reports, and with no other backend the client gets 503 H21; a
 * dial whose SYN a full accept queue drops gives its socket up within
 * milliseconds and asks the agent (which dials again), and the request
 * ends with the app's connect timeout (H19), not the kernel's second-long
 * SYN retry, and a request behind it waits in the router for room (the
 * admission cap the lost SYN set) instead of dialling, and the cap grows
 * at the plain rate below the `open` of that loss and 16 times slower from
 * one below it; a dial allowed to
 * wait past the SYN's retransmit connects through EPOLLOUT and sends its
 * request then; backends that offer no stock are served as before, and so is
 * every backend of a router whose descriptor limit is low; every backend's
 * holds and releases balance at the router's stop, and its stock sockets
 * are closed with it. A new connection, the agent's or a dialled one,
 * carries the short retransmission floor (FRESH_RTO_MIN_US) while its
 * request is under way, and a kept-alive one has the kernel's back once
 * pooled.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/tests/tap.h"
#include "router/internal.h"
#include "router/router.h"
#include "router/tests/fake-backend.h"
#include "router/tests/harness.h"

static struct router *router;
static struct fake_backend stocked = { .name = "stocked.1", .mode = FAKE_DIAL, .stock = true };
static struct fake_backend plain = { .name = "plain.1", .mode = FAKE_DIAL };
static struct fake_backend duo_refusing = { .name = "duo.1", .mode = FAKE_DIAL, .stock = true };
static struct fake_backend duo_good = { .name = "duo.2", .mode = FAKE_DIAL, .stock = true };
static struct fake_backend refusing = { .name = "refused.1", .mode = FAKE_DIAL, .stock = true };
static struct fake_backend stalled = { .name = "stalled.1", .mode = FAKE_DIAL, .stock = true };
static struct fake_backend floor_app = { .name = "floor.1", .mode = FAKE_DIAL, .stock = true };
static struct fake_backend *const all[] = { &stocked, &plain, &duo_refusing, &duo_good, &refusing, &stalled,
                                            &floor_app };
static const struct router_app_settings short_timeouts = { .connect_timeout_ms = 300, .head_timeout_ms = 300 };

static unsigned open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    unsigned n = 0;

    if (!d)
        return 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_served_from_stock(void)
{
    int answered = answered_fresh("stocked.localhost", 40);

    ok(answered == 40 && atomic_load(&stocked.stocked) >= 16 && atomic_load(&stocked.asked) <= 2,
       "40 requests to an app that closes every connection: all answered, %d stock sockets handed over, the "
       "agent asked for %d connection(s)", atomic_load(&stocked.stocked), atomic_load(&stocked.asked));
    answered = answered_fresh("plain.localhost", 10);
    ok(answered == 10 && atomic_load(&plain.asked) == 10 && atomic_load(&plain.stocked) == 0,
       "a backend with no stock to offer: every connection asked of its agent (%d/10, %d asked)", answered,
       atomic_load(&plain.asked));
}

static void test_refused(void)
{
    size_t before;
    int answered, st;
    char *body = NULL;

    answered = answered_fresh("duo.localhost", 40);
    ok(answered == 40, "one of two backends refuses, connected from the stock or not: 40/40 answered (%d "
       "stock sockets from the refusing one, %d asked of its agent)", atomic_load(&duo_refusing.stocked),
       atomic_load(&duo_refusing.asked));
    /* The first request asks the agent (and brings the stock), the later ones dial from it. */
    for (int i = 0; i < 3; i++) {
        before = (size_t)atomic_load(&refusing.asked);
        st = request("refused.localhost", "/hello", NULL, &body, NULL);
        ok(st == 503 && body && strstr(body, "refused the connection"),
           "request %d to a backend that refuses: 503 H21's page (%d; the agent asked %zu time(s) for it)", i + 1,
           st, (size_t)atomic_load(&refusing.asked) - before);
        free(body);
        body = NULL;
    }
    ok(atomic_load(&refusing.stocked) > 0, "... and the refusing backend's stock was in use (%d sockets)",
       atomic_load(&refusing.stocked));
}

/* A chunked upload of 2 MiB to `host`'s /verify-slowly (an app that reads slowly) streams through a dialled socket. */
static void test_streamed_upload(const char *host)
{
    const size_t size = 2u << 20;
    char *file = xasprintf("%s/upload", tmpdir), *body = NULL, extra[512], want[64];
    FILE *f = fopen(file, "w");
    int st;

    for (size_t i = 0; f && i < size; i++)
        (void)fputc(pattern(i), f);
    if (f)
        (void)fclose(f);
    (void)snprintf(extra, sizeof(extra), "-H 'Transfer-Encoding: chunked' --data-binary '@%s'", file);
    (void)snprintf(want, sizeof(want), "%zu ok", size);
    st = request(host, "/verify-slowly", extra, &body, NULL);
    ok(st == 200 && body && strcmp(body, want) == 0, "a chunked upload to %s arrives intact (%d, %s)", host, st,
       body ? body : "");
    free(body);
    unlink(file);
    free(file);
}

struct bg {
    pthread_t thread;
    const char *host;   /* NULL: stalled.localhost */
    const char *path;   /* NULL: /hello */
    int status;
    double secs;
    atomic_bool done;
};

static void *bg_main(void *arg)
{
    struct bg *b = arg;
    struct timespec t0;
    char *body = NULL;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    b->status = request(b->host ? b->host : "stalled.localhost", b->path ? b->path : "/hello", NULL, &body, NULL);
    b->secs = elapsed(&t0);
    free(body);
    atomic_store(&b->done, true);
    return NULL;
}

/*
 * This process's TCP sockets connected to 127.0.0.1:port (the router's
 * side of its connections to the app there), by retransmission floor:
 * short (under the kernel's) and the kernel's. -1 when the kernel has no
 * TCP_RTO_MIN_US (before 6.15).
 */
static int rto_floors(uint16_t port, unsigned *ret_short, unsigned *ret_kernel)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int rc = 0;

    *ret_short = *ret_kernel = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name), us = 0;
        struct sockaddr_in peer;
        socklen_t plen = sizeof(peer), len = sizeof(us);

        /* getpeername() fails on anything but a connected socket. */
        if (fd <= 2 || fd == dirfd(d) || getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 ||
            peer.sin_family != AF_INET ||
            ntohs(peer.sin_port) != port)
            continue;
        if (getsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &us, &len) < 0) {
            rc = -1;
            break;
        }
        if (us < KERNEL_RTO_MIN_US)
            (*ret_short)++;
        else if (us == KERNEL_RTO_MIN_US)
            (*ret_kernel)++;
    }
    closedir(d);
    return rc;
}

/*
 * The floors (short, the kernel's) of the connections to floor.localhost's
 * app before a request to /slow (answered after 1 s), 300 ms into it, and
 * after it.
 */
static void slow_request_floors(unsigned before[2], unsigned during[2], unsigned after[2], int *ret_status)
{
    struct bg b = { .host = "floor.localhost", .path = "/slow" };

    during[0] = during[1] = after[0] = after[1] = 0;
    *ret_status = -1;
    (void)rto_floors(floor_app.port, &before[0], &before[1]);
    if (pthread_create(&b.thread, NULL, bg_main, &b) != 0)
        return;
    usleep(300000);
    (void)rto_floors(floor_app.port, &during[0], &during[1]);
    pthread_join(b.thread, NULL);
    (void)rto_floors(floor_app.port, &after[0], &after[1]);
    *ret_status = b.status;
}

/*
 * A new connection's short retransmission floor (upstream.c): a request
 * lost behind a handshake the app's full queue dropped goes again after
 * ~10 ms, not 200. Checked on the agent's connection (the route's first)
 * and on a dialled one (after a request that closes its connection, with
 * the stock in): short while the answer is awaited, the kernel's once the
 * connection is pooled.
 */
static void test_rto_floor(void)
{
    unsigned before[2], during[2], after[2];
    int st, st2;
    char *body = NULL;

    if (rto_floors(floor_app.port, &before[0], &before[1]) < 0) {
        skip("this kernel has no TCP_RTO_MIN_US (Linux 6.15): connections keep the kernel's floor");
        return;
    }
    slow_request_floors(before, during, after, &st);
    ok(st == 200 && before[0] == 0 && during[0] == 1 && after[0] == 0 && after[1] == before[1] + 1,
       "the agent's connection: a short retransmission floor while its answer is awaited (%u short, %u at the "
       "kernel's), the kernel's once pooled (%u short, %u at the kernel's, %u before; %d)", during[0], during[1],
       after[0], after[1], before[1], st);
    st = request("floor.localhost", "/close", NULL, &body, NULL);
    free(body);
    for (int i = 0; i < 200 && atomic_load(&floor_app.stocked) == 0; i++)
        usleep(10000);
    st2 = -1;
    if (st == 200 && atomic_load(&floor_app.stocked) > 0)
        slow_request_floors(before, during, after, &st2);
    ok(st2 == 200 && during[0] == 1 && after[0] == 0 && after[1] == before[1] + 1,
       "a dialled connection: short while awaited (%u short, %u at the kernel's), the kernel's once pooled "
       "(%u short, %u at the kernel's, %u before; %d, %d stock sockets)", during[0], during[1], after[0], after[1],
       before[1], st2, atomic_load(&floor_app.stocked));
}

/* A non-blocking connect to 127.0.0.1:port, left as it is. */
static int fill_queue(uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd >= 0)
        (void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    return fd;
}

/* A listener with room for one handshake that nobody accepts: once full, it drops every SYN. */
static void test_dropped_syn(int *queue_fd)
{
    uint16_t port;
    int lfd = listen_local(&port), filler = -1, asked_before, asked_soon = 0;
    unsigned adm[4] = { 0 };
    bool admitted = false;
    struct bg b = { 0 }, b2 = { 0 };

    *queue_fd = lfd;
    if (lfd < 0 || listen(lfd, 0) < 0) {
        ok(0, "a listener with a backlog of 0: %s", strerror(errno));
        return;
    }
    stalled.port = port;
    /* The agent's connection fills the queue and is never answered: H12 after 300 ms; the stock comes meanwhile. */
    {
        char *body = NULL;
        int st = request("stalled.localhost", "/hello", NULL, &body, NULL);
        free(body);
        filler = fill_queue(port);   /* whatever room is left, taken (its SYN may wait: never block on it) */
        ok(st == 503 && atomic_load(&stalled.stocked) > 0,
           "a stalled app's first request: 503 after its head timeout (%d), and a stock came", st);
    }
    asked_before = atomic_load(&stalled.asked);
    if (pthread_create(&b.thread, NULL, bg_main, &b) != 0) {
        ok(0, "pthread_create");
        return;
    }
    for (int i = 0; i < 20 && !asked_soon; i++) {
        usleep(10000);
        asked_soon = atomic_load(&stalled.asked) > asked_before;
    }
    /* The lost SYN capped the app at half of what was open (one): the next request waits in the router. */
    if (pthread_create(&b2.thread, NULL, bg_main, &b2) == 0) {
        usleep(80000);
        admitted = route_admission_for_test(router, "stalled.localhost", adm) == 0;
        pthread_join(b2.thread, NULL);
    }
    pthread_join(b.thread, NULL);
    ok(asked_soon, "a dial whose SYN the full queue dropped asked the agent within 200 ms");
    ok(b.status == 503 && b.secs >= 0.25 && b.secs < 1.0,
       "... and the request ended with the app's 300 ms connect timeout, not the kernel's SYN retry "
       "(%d after %.2fs)", b.status, b.secs);
    ok(admitted && adm[0] == 1 && adm[1] == 1 && adm[2] == 1 && adm[3] == 1 && b2.status == 503,
       "a request behind it, while it was pending, waited in the router for room: the lost SYN capped the "
       "app at 1 open, and 1 is where the next loss is expected (open %u, cap %u, waiting %u, ceiling %u; "
       "then %d)", adm[0], adm[1], adm[2], adm[3], b2.status);
    admitted = route_admission_for_test(router, "stalled.localhost", adm) == 0;
    ok(admitted && adm[0] == 0 && adm[2] == 0, "once both ended, nothing is open or waiting (open %u, waiting %u)",
       adm[0], adm[2]);
    if (filler >= 0)
        close(filler);
}

/* The cap's growth: one per `cap` connections, and ADMIT_PROBE_SLOW (16) times slower near the last loss. */
static void test_cap_growth_rule(void)
{
    ok(connect_admit_grow_after(2, 10) == 2 && connect_admit_grow_after(8, 10) == 8,
       "far below the last loss's open (10) the cap grows by one per cap connections (2: %u, 8: %u)",
       connect_admit_grow_after(2, 10), connect_admit_grow_after(8, 10));
    ok(connect_admit_grow_after(9, 10) == 9 * 16 && connect_admit_grow_after(10, 10) == 160 &&
       connect_admit_grow_after(40, 10) == 640,
       "from one below it on, 16 times slower (9: %u, 10: %u, 40: %u)", connect_admit_grow_after(9, 10),
       connect_admit_grow_after(10, 10), connect_admit_grow_after(40, 10));
    ok(connect_admit_grow_after(1, 1) == 16, "a loss with one open: the cap of 1 grows after 16 (%u)",
       connect_admit_grow_after(1, 1));
}

/* An app on a listener with a backlog of 0 that stops accepting while `held`; it answers each request "ok" and closes. */
struct held_app {
    int lfd;
    uint16_t port;
    atomic_bool held, stop;
    pthread_t thread;
};

static void held_app_answer(int fd)
{
    struct timeval tv = { .tv_sec = 2 };
    struct strbuf head = STRBUF_INIT;

    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (read_until(fd, &head, "\r\n\r\n"))
        (void)send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    strbuf_release(&head);
    close(fd);
}

static void *held_app_main(void *arg)
{
    struct held_app *a = arg;

    while (!atomic_load(&a->stop)) {
        struct pollfd p = { .fd = a->lfd, .events = POLLIN };
        int fd;

        if (atomic_load(&a->held)) {
            usleep(5000);
            continue;
        }
        if (poll(&p, 1, 10) <= 0 || atomic_load(&a->held))
            continue;
        fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            held_app_answer(fd);
    }
    return NULL;
}

/*
 * A dial that outlives its dropped SYN completes through EPOLLOUT. Its
 * wait is raised past the kernel's one-second SYN retransmit (in
 * production it is 4 ms, and loopback handshakes are over when connect()
 * returns, so this path is otherwise never taken here): the app's queue is
 * full when the request dials, room comes 300 ms later, the retransmitted
 * SYN connects, and the request goes out on the socket's EPOLLOUT without
 * the agent being asked.
 */
static void test_dial_completes_late(void)
{
    static const struct router_app_settings patient = { .connect_timeout_ms = 5000, .head_timeout_ms = 5000 };
    struct fake_backend late = { .name = "late.1", .mode = FAKE_DIAL, .stock = true };
    void *b[] = { &late };
    struct router_route route = { .host = "late.localhost", .app = "late", .generation = 1, .backends = b,
                                  .n_backends = 1, .settings = &patient };
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 1, .backend_ops = &fake_backend_ops };
    struct held_app app = { .lfd = -1 };
    struct bg req = { .host = "late.localhost" };
    struct berth_error *err = NULL;
    struct router *r = NULL;
    int st, asked_before, filler;
    char *body = NULL;

    app.lfd = listen_local(&app.port);
    if (app.lfd < 0 || listen(app.lfd, 0) < 0 || pthread_create(&app.thread, NULL, held_app_main, &app) != 0) {
        ok(0, "an app listening with a backlog of 0: %s", strerror(errno));
        return;
    }
    late.port = app.port;
    connect_dial_wait_for_test(3000);
    if (router_start(&cfg, &r, &err) < 0 || router_set_routes(r, &route, 1, &err) < 0) {
        ok(0, "a router whose dials wait 3 s: %s", berth_error_msg(&err));
        berth_error_release(&err);
    } else {
        router_port_num = router_port(r);
        /* The first request is the agent's, and brings the stock. */
        st = request("late.localhost", "/hello", NULL, &body, NULL);
        for (int i = 0; i < 200 && atomic_load(&late.stocked) == 0; i++)
            usleep(10000);
        ok(st == 200 && body && strcmp(body, "ok") == 0 && atomic_load(&late.stocked) > 0,
           "the app answers and a stock came (%d, %d sockets)", st, atomic_load(&late.stocked));
        asked_before = atomic_load(&late.asked);
        atomic_store(&app.held, true);
        usleep(30000);   /* the app's thread is past any accept it was in */
        filler = fill_queue(app.port);
        usleep(20000);
        if (pthread_create(&req.thread, NULL, bg_main, &req) == 0) {
            usleep(300000);
            if (filler >= 0)
                close(filler);
            atomic_store(&app.held, false);
            pthread_join(req.thread, NULL);
        }
        ok(req.status == 200 && req.secs >= 0.5 && req.secs < 4.5 && atomic_load(&late.asked) == asked_before,
           "a dial whose SYN a full queue dropped, and that waits past the SYN's retransmit, connects through "
           "EPOLLOUT: %d after %.2fs, the agent asked %d more time(s)", req.status, req.secs,
           atomic_load(&late.asked) - asked_before);
    }
    free(body);
    router_stop(r);
    fake_backend_join_all();
    connect_dial_wait_for_test(0);
    atomic_store(&app.stop, true);
    pthread_join(app.thread, NULL);
    close(app.lfd);
}

/* A router whose descriptor limit is under STOCK_FD_MIN asks every connection of the agent. Lowers this process's limit for good: last. */
static void test_low_fd_limit(uint16_t up)
{
    struct fake_backend lean = { .name = "lean.1", .mode = FAKE_DIAL, .stock = true, .port = up };
    void *b[] = { &lean };
    struct router_route route = { .host = "lean.localhost", .app = "lean", .generation = 1, .backends = b,
                                  .n_backends = 1 };
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 1, .backend_ops = &fake_backend_ops };
    struct rlimit low;
    struct berth_error *err = NULL;
    struct router *r = NULL;
    int answered;

    if (getrlimit(RLIMIT_NOFILE, &low) == 0 && (low.rlim_max == RLIM_INFINITY || low.rlim_max > 4096))
        low.rlim_max = 4096;
    low.rlim_cur = low.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &low) < 0 || router_start(&cfg, &r, &err) < 0 ||
        router_set_routes(r, &route, 1, &err) < 0) {
        ok(0, "a router under a limit of 4096 descriptors: %s", err ? berth_error_msg(&err) : strerror(errno));
        berth_error_release(&err);
        router_stop(r);
        return;
    }
    router_port_num = router_port(r);
    answered = answered_fresh("lean.localhost", 10);
    router_stop(r);
    fake_backend_join_all();
    ok(answered == 10 && atomic_load(&lean.stocked) == 0 && atomic_load(&lean.asked) == 10,
       "under a limit of 4096 descriptors no stock is kept: %d/10 answered, each asked of the agent (%d)",
       answered, atomic_load(&lean.asked));
}

int main(void)
{
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 1, .backend_ops = &fake_backend_ops };
    void *st[] = { &stocked }, *pl[] = { &plain }, *duo[] = { &duo_refusing, &duo_good }, *ref[] = { &refusing },
         *sta[] = { &stalled }, *flo[] = { &floor_app };
    const struct router_route routes[] = {
        { .host = "stocked.localhost", .app = "stocked", .generation = 1, .backends = st, .n_backends = 1 },
        { .host = "plain.localhost", .app = "plain", .generation = 1, .backends = pl, .n_backends = 1 },
        { .host = "duo.localhost", .app = "duo", .generation = 1, .backends = duo, .n_backends = 2 },
        { .host = "refused.localhost", .app = "refused", .generation = 1, .backends = ref, .n_backends = 1 },
        { .host = "stalled.localhost", .app = "stalled", .generation = 1, .backends = sta, .n_backends = 1,
          .settings = &short_timeouts },
        { .host = "floor.localhost", .app = "floor", .generation = 1, .backends = flo, .n_backends = 1 },
    };
    struct berth_error *err = NULL;
    uint16_t up, dead;
    int rc, dead_fd, queue_fd = -1;
    unsigned fds_before;
    bool balanced = true;

    if (!harness_begin(&rc))
        return rc;
    log_setup("test-router-stock", LOG_LEVEL_WARN);
    {
        struct rlimit rl;
        ok(getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= STOCK_FD_MIN),
           "the descriptor limit may rise to %d, which the router needs to keep stocks (hard limit %llu)",
           STOCK_FD_MIN, (unsigned long long)rl.rlim_max);
    }
    fds_before = open_fds();
    ok(upstream_start(&up) == 0, "upstream listening on %u", (unsigned)up);
    dead_fd = refusing_local(&dead);   /* held to the end: nobody else takes the port */
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        all[i]->port = up;
    duo_refusing.port = refusing.port = dead;
    if (router_start(&cfg, &router, &err) < 0 ||
        router_set_routes(router, routes, sizeof(routes) / sizeof(routes[0]), &err) < 0) {
        ok(0, "router: %s", berth_error_msg(&err));
        berth_error_release(&err);
        return tap_done();
    }
    router_port_num = router_port(router);

    test_served_from_stock();
    test_streamed_upload("stocked.localhost");
    test_refused();
    test_streamed_upload("duo.localhost");
    test_dropped_syn(&queue_fd);
    test_cap_growth_rule();
    test_rto_floor();

    router_stop(router);
    fake_backend_join_all();
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        balanced = balanced && atomic_load(&all[i]->refs) == 0;
    ok(balanced, "every backend's holds and releases balance at stop");
    if (queue_fd >= 0)
        close(queue_fd);
    if (dead_fd >= 0)
        close(dead_fd);
    test_dial_completes_late();
    test_low_fd_limit(up);
    upstream_stop();
    ok(open_fds() == fds_before, "no descriptor left open once the routers stopped (%u, %u before)", open_fds(),
       fds_before);
    rmdir(tmpdir);
    return tap_done();
}
