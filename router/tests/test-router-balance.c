/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How the router balances an app's requests over its backends (connect.c):
 * the backend with the fewest outstanding requests wins, ties drawn at
 * random. Checked from outside with a router of two loops (so the counts
 * are shared between threads), fake port agents (fake-backend.h) dialling
 * the upstream server of harness.h on three listeners (its /port tells
 * which one answered), and two servers of this file's own: a "holder" that
 * keeps every request until told to answer (a slow instance), and a
 * "cutter" that closes every response halfway.
 *
 *   1. with one backend holding a request, new requests go to the others;
 *   2. concurrent clients over equal backends: each gets a fair share;
 *   3. a backend the table drops (same generation) gets no new request and
 *      its pooled connections are neither reused nor kept;
 *   4. after successes, refusals, cut responses, timeouts, retries, client
 *      disconnects and a websocket, every outstanding count is back at 0
 *      (read through route_outstanding_for_test(), internal.h).
 *
 * Bounds are wide on purpose (a busy 2-CPU machine), yet an "always the
 * first backend" or a random choice fails them. Every wait is bounded.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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
static uint16_t up_port[4], dead_port;
static int dead_fd = -1;

/* ---------------------------------------------------------------- the holder and the cutter */

enum mini_mode {
    MINI_HOLD,   /* every request waits for mini_release(), then gets "held" (Connection: close) */
    MINI_CUT,    /* every response announces 100 bytes, sends 5 and closes */
};

struct mini_server {
    enum mini_mode mode;
    int lfd;
    uint16_t port;
    pthread_t thread;
    atomic_int arrivals;          /* request heads read */
};

#define MINI_CONNS_MAX 256

static pthread_mutex_t mini_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mini_cond = PTHREAD_COND_INITIALIZER;
static bool mini_released;        /* under mini_lock */
static pthread_t mini_threads[MINI_CONNS_MAX];
static int mini_fds[MINI_CONNS_MAX];
static int mini_nconns;           /* under mini_lock */

static struct mini_server holder = { .mode = MINI_HOLD };
static struct mini_server cutter = { .mode = MINI_CUT };

struct mini_conn {
    struct mini_server *s;
    int fd;
};

static void *mini_conn_main(void *arg)
{
    struct mini_conn *c = arg;
    struct strbuf in = STRBUF_INIT;
    char buf[4096];

    while (!strstr(in.buf, "\r\n\r\n")) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            goto out;
        strbuf_add(&in, buf, (size_t)n);
    }
    atomic_fetch_add(&c->s->arrivals, 1);
    if (c->s->mode == MINI_HOLD) {
        pthread_mutex_lock(&mini_lock);
        while (!mini_released)
            pthread_cond_wait(&mini_cond, &mini_lock);
        pthread_mutex_unlock(&mini_lock);
        (void)send_str(c->fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nheld");
    } else {
        (void)send_str(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    }
out:
    shutdown(c->fd, SHUT_RDWR);
    strbuf_release(&in);
    free(c);
    return NULL;
}

static void *mini_accept_main(void *arg)
{
    struct mini_server *s = arg;
    struct timeval tv = { .tv_sec = 10 };

    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        struct mini_conn *c;

        if (fd < 0)
            return NULL;   /* mini_stop() shut the listener down */
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        c = xmalloc(sizeof(*c));
        c->s = s;
        c->fd = fd;
        pthread_mutex_lock(&mini_lock);
        if (mini_nconns == MINI_CONNS_MAX ||
            pthread_create(&mini_threads[mini_nconns], NULL, mini_conn_main, c) != 0) {
            pthread_mutex_unlock(&mini_lock);
            close(fd);
            free(c);
            continue;
        }
        mini_fds[mini_nconns++] = fd;
        pthread_mutex_unlock(&mini_lock);
    }
}

static bool mini_start(struct mini_server *s)
{
    s->lfd = listen_local(&s->port);
    return s->lfd >= 0 && pthread_create(&s->thread, NULL, mini_accept_main, s) == 0;
}

/* The holder answers everything it holds, and everything after. */
static void mini_release(void)
{
    pthread_mutex_lock(&mini_lock);
    mini_released = true;
    pthread_cond_broadcast(&mini_cond);
    pthread_mutex_unlock(&mini_lock);
}

static void mini_stop(void)
{
    struct mini_server *servers[] = { &holder, &cutter };
    int n;

    mini_release();
    for (size_t i = 0; i < 2; i++) {
        shutdown(servers[i]->lfd, SHUT_RDWR);
        pthread_join(servers[i]->thread, NULL);
        close(servers[i]->lfd);
    }
    /* No new connection once the accept threads are gone; the held ones need mini_lock to wake. */
    pthread_mutex_lock(&mini_lock);
    n = mini_nconns;
    mini_nconns = 0;
    pthread_mutex_unlock(&mini_lock);
    for (int i = 0; i < n; i++)
        shutdown(mini_fds[i], SHUT_RDWR);
    for (int i = 0; i < n; i++) {
        pthread_join(mini_threads[i], NULL);
        close(mini_fds[i]);
    }
}

/* ---------------------------------------------------------------- backends and routes */

static struct fake_backend fast[3] = {
    { .name = "web.1", .mode = FAKE_DIAL },
    { .name = "web.2", .mode = FAKE_DIAL },
    { .name = "web.3", .mode = FAKE_DIAL },
};
static struct fake_backend drop_web = { .name = "web.4", .mode = FAKE_DIAL };      /* a listener of its own */
static struct fake_backend slow_web = { .name = "web.9", .mode = FAKE_DIAL };      /* the holder */
static struct fake_backend cut_web = { .name = "web.8", .mode = FAKE_DIAL };       /* the cutter */
static struct fake_backend refusing_web = { .name = "web.7", .mode = FAKE_DIAL };  /* a refusing port */
static struct fake_backend silent_web = { .name = "web.6", .mode = FAKE_SILENT };

static const struct router_app_settings quick = { .connect_timeout_ms = 300, .head_timeout_ms = 600 };

static const char *const all_hosts[] = {
    "slow.localhost", "fair.localhost", "drop.localhost", "mix.localhost", "stall.localhost",
    "silent.localhost", "one.localhost",
};
#define N_HOSTS (sizeof(all_hosts) / sizeof(all_hosts[0]))

/* Every route; drop.localhost names its three backends, or only the first two with `dropped`. */
static bool set_routes(bool dropped)
{
    void *slow[] = { &slow_web, &fast[1], &fast[2] }, *fair[] = { &fast[0], &fast[1], &fast[2] },
         *drop[] = { &fast[0], &fast[1], &drop_web },
         *mix[] = { &fast[0], &refusing_web, &cut_web }, *stall[] = { &slow_web },
         *silent[] = { &silent_web, &fast[0] }, *one[] = { &fast[0] };
    const struct router_route routes[] = {
        { .host = "slow.localhost", .app = "slow", .generation = 1, .backends = slow, .n_backends = 3 },
        { .host = "fair.localhost", .app = "fair", .generation = 1, .backends = fair, .n_backends = 3 },
        /* The same generation either way: only the set of backends changes. */
        { .host = "drop.localhost", .app = "drop", .generation = 1, .backends = drop,
          .n_backends = dropped ? 2 : 3 },
        { .host = "mix.localhost", .app = "mix", .generation = 1, .backends = mix, .n_backends = 3,
          .settings = &quick },
        { .host = "stall.localhost", .app = "stall", .generation = 1, .backends = stall, .n_backends = 1,
          .settings = &quick },
        { .host = "silent.localhost", .app = "silent", .generation = 1, .backends = silent, .n_backends = 2,
          .settings = &quick },
        { .host = "one.localhost", .app = "one", .generation = 1, .backends = one, .n_backends = 1 },
    };
    struct berth_error *err = NULL;

    if (router_set_routes(router, routes, sizeof(routes) / sizeof(routes[0]), &err) < 0) {
        printf("# set_routes: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- helpers */

struct bg_request {
    const char *host, *path, *extra;
    pthread_t thread;
    atomic_bool done;
    int status;
    char *body;
};

static void *bg_main(void *arg)
{
    struct bg_request *b = arg;

    b->status = request(b->host, b->path, b->extra, &b->body, NULL);
    atomic_store(&b->done, true);
    return NULL;
}

static void bg_start(struct bg_request *b, const char *host, const char *path, const char *extra)
{
    b->host = host;
    b->path = path;
    b->extra = extra;
    b->body = NULL;
    b->status = 0;
    atomic_init(&b->done, false);
    pthread_create(&b->thread, NULL, bg_main, b);
}

static void bg_join(struct bg_request *b)
{
    pthread_join(b->thread, NULL);
}

/* Which of the four upstream listeners a /port body names: 0-3, or -1. */
static int listener_of(const char *body)
{
    unsigned port = body ? (unsigned)strtoul(body, NULL, 10) : 0;

    for (int i = 0; i < 4; i++)
        if (port && port == up_port[i])
            return i;
    return -1;
}

/* The outstanding counts of host's backends into counts[]; their number, or -1 (printed as a diagnostic). */
static ssize_t outstanding(const char *host, unsigned counts[8])
{
    ssize_t n = route_outstanding_for_test(router, host, counts, 8);

    if (n > 0) {
        printf("# outstanding at %s:", host);
        for (ssize_t i = 0; i < n && i < 8; i++)
            printf(" %u", counts[i]);
        printf("\n");
    }
    return n;
}

/* Sum of host's outstanding counts; -1 without a route. */
static long outstanding_sum(const char *host)
{
    unsigned counts[8] = { 0 };
    ssize_t n = route_outstanding_for_test(router, host, counts, 8);
    long sum = 0;

    for (ssize_t i = 0; i < n && i < 8; i++)
        sum += counts[i];
    return n < 0 ? -1 : sum;
}

/*
 * A request to slow.localhost in the background, then a bounded wait for
 * it to be answered (false: joined, *ret_listener says by whom, -1 when it
 * failed) or taken in by the holder (true: left running in b).
 */
static bool held_or_answered(struct bg_request *b, int *ret_listener)
{
    int before = atomic_load(&holder.arrivals);

    bg_start(b, "slow.localhost", "/port", NULL);
    for (int i = 0; i < 500; i++) {
        if (atomic_load(&b->done)) {
            bg_join(b);
            *ret_listener = b->status == 200 ? listener_of(b->body) : -1;
            free(b->body);
            b->body = NULL;
            return false;
        }
        if (atomic_load(&holder.arrivals) > before)
            return true;
        usleep(10000);
    }
    /* Neither in 5 s: a failure; joined once curl gives up. */
    bg_join(b);
    free(b->body);
    b->body = NULL;
    *ret_listener = -1;
    return false;
}

/* ---------------------------------------------------------------- 1. a slow backend */

#define SLOW_FIRST_MAX 40
#define SLOW_AFTER 30

static void test_slow_backend(void)
{
    static struct bg_request reqs[SLOW_FIRST_MAX + SLOW_AFTER];
    struct bg_request *held[SLOW_AFTER + 1];
    unsigned counts[8] = { 0 };
    int nheld = 0, to_slow = 0, per[4] = { 0 }, failed = 0, listener, tries, next = 0;

    /* Until one request sits in the holder (each has a 1 in 3 chance while every count is 0). */
    for (tries = 0; tries < SLOW_FIRST_MAX && nheld == 0; tries++) {
        struct bg_request *b = &reqs[next++];
        if (held_or_answered(b, &listener))
            held[nheld++] = b;
        else if (listener < 0)
            failed++;
    }
    ok(nheld == 1 && failed == 0, "a request reaches the slow backend and stays there (after %d requests)", tries);
    ok(outstanding("slow.localhost", counts) == 3 && counts[0] == 1 && counts[1] == 0 && counts[2] == 0,
       "the held request counts as outstanding on the slow backend, nothing elsewhere (%u %u %u)", counts[0],
       counts[1], counts[2]);

    /* Now the slow one has 1 outstanding and the others 0: none of the new requests goes to it. */
    for (int i = 0; i < SLOW_AFTER; i++) {
        struct bg_request *b = &reqs[next++];
        if (held_or_answered(b, &listener)) {
            to_slow++;
            held[nheld++] = b;
        } else if (listener == 1 || listener == 2) {
            per[listener]++;
        } else {
            failed++;
        }
    }
    ok(to_slow == 0 && failed == 0 && per[1] + per[2] == SLOW_AFTER,
       "with the slow backend holding a request, %d new ones go to the other two (slow %d, web.2 %d, web.3 %d, "
       "failed %d)", SLOW_AFTER, to_slow, per[1], per[2], failed);
    ok(per[1] >= 4 && per[2] >= 4, "... which share them (%d and %d of %d)", per[1], per[2], SLOW_AFTER);

    mini_release();
    for (int i = 0; i < nheld; i++) {
        bg_join(held[i]);
        ok(held[i]->status == 200 && held[i]->body && strcmp(held[i]->body, "held") == 0,
           "a held request is answered once the slow backend answers (%d)", held[i]->status);
        free(held[i]->body);
    }
    for (int i = 0; i < 100 && outstanding_sum("slow.localhost") != 0; i++)
        usleep(20000);
    ok(outstanding_sum("slow.localhost") == 0, "slow.localhost: no request outstanding afterwards");
    /* The holder holds again for the tests below. */
    pthread_mutex_lock(&mini_lock);
    mini_released = false;
    pthread_mutex_unlock(&mini_lock);
}

/* ---------------------------------------------------------------- 2. equal backends */

static void test_fair_share(void)
{
    const int total = 240;
    int per[3] = { 0 }, other = 0;
    char *out, *p, *line;

    /* Six clients at once, each request on a connection of its own; echo writes each answer as one line. */
    out = run("seq %d | xargs -P6 -I{} sh -c 'echo \"$(curl -s -m 20 -H \"Host: fair.localhost\" "
              "http://127.0.0.1:%u/port)\"'", total, (unsigned)router_port_num);
    for (p = out; p && (line = strsep(&p, "\n"));) {
        int l;
        if (!*line)
            continue;
        l = listener_of(line);
        if (l >= 0)
            per[l]++;
        else
            other++;
    }
    free(out);
    /* 80 each on average; 48..128 is far outside chance, and "always the first" gives 240/0/0. */
    ok(other == 0 && per[0] + per[1] + per[2] == total,
       "%d concurrent requests over three equal backends: all answered (%d, %d, %d; %d other)", total, per[0],
       per[1], per[2], other);
    ok(per[0] >= 48 && per[0] <= 128 && per[1] >= 48 && per[1] <= 128 && per[2] >= 48 && per[2] <= 128,
       "... each backend gets a fair share: 48..128 of %d (%d, %d, %d)", total, per[0], per[1], per[2]);
    for (int i = 0; i < 100 && outstanding_sum("fair.localhost") != 0; i++)
        usleep(20000);
    ok(outstanding_sum("fair.localhost") == 0, "fair.localhost: no request outstanding afterwards");
}

/* ---------------------------------------------------------------- 3. a backend dropped from the table */

/* Upstream connections web.4's listener has established (its side), by ss(8); -1 when ss is missing. */
static int established_to_dropped(void)
{
    char *out = run("command -v ss >/dev/null && ss -Htn state established '( sport = :%u )' | wc -l",
                    (unsigned)up_port[3]);
    int n = out && out[0] ? atoi(out) : -1;

    free(out);
    return n;
}

/* n requests to drop.localhost: how many each listener answered into per[], failures into *failed. */
static void drop_requests(int n, int per[4], int *failed)
{
    for (int i = 0; i < n; i++) {
        char *body = NULL;
        int st = request("drop.localhost", "/port", NULL, &body, NULL), l = st == 200 ? listener_of(body) : -1;
        if (l >= 0)
            per[l]++;
        else
            (*failed)++;
        free(body);
    }
}

static void test_dropped_backend(void)
{
    int per[4] = { 0 }, after[4] = { 0 }, failed = 0, dials, conns_before, conns_after = -1;

    drop_requests(30, per, &failed);
    dials = atomic_load(&fast[0].dials) + atomic_load(&fast[1].dials) + atomic_load(&drop_web.dials);
    conns_before = established_to_dropped();
    ok(failed == 0 && per[0] && per[1] && per[3],
       "drop.localhost: 30 requests, all three backends used (%d, %d, %d)", per[0], per[1], per[3]);
    printf("# upstream connections dialled to its backends so far: %d; idle ones to web.4: %d\n", dials,
           conns_before);

    dials = atomic_load(&drop_web.dials);
    ok(set_routes(true), "the table drops web.4 from drop.localhost, same generation");
    for (int i = 0; i < 50 && conns_before > 0 && (conns_after = established_to_dropped()) > 0; i++)
        usleep(20000);
    drop_requests(30, after, &failed);
    ok(failed == 0 && after[3] == 0 && after[0] + after[1] == 30 && atomic_load(&drop_web.dials) == dials,
       "after the drop no request reaches web.4, over a pooled connection or a new one (%d, %d, %d; %d new "
       "dials to it)", after[0], after[1], after[3], atomic_load(&drop_web.dials) - dials);
    if (conns_before < 0)
        skip("ss(8) is not installed: cannot count the dropped backend's idle connections");
    else
        ok(conns_before > 0 && conns_after == 0,
           "the dropped backend's idle pooled connections are closed at once (%d before, %d after)",
           conns_before, conns_after);
    ok(set_routes(false), "web.4 back in drop.localhost");
}

/* ---------------------------------------------------------------- 4. the counts return to 0 */

/* A websocket through one.localhost: once the 101 is in, the request no longer counts. */
static void websocket_round(void)
{
    struct strbuf sb = STRBUF_INIT;
    int fd = dial_port(router_port_num);
    bool up;
    long during = -2;

    if (fd >= 0)
        (void)send_str(fd, "GET /ws HTTP/1.1\r\nHost: one.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    up = fd >= 0 && read_until(fd, &sb, "hello-from-app");
    if (up) {
        for (int i = 0; i < 50 && (during = outstanding_sum("one.localhost")) != 0; i++)
            usleep(20000);
    }
    ok(up && during == 0, "an open websocket tunnel does not count as an outstanding request (%ld)", during);
    if (fd >= 0)
        close(fd);
    strbuf_release(&sb);
}

static void test_counts_balance(void)
{
    struct bg_request stalls[2], gone[2];
    char upload[256], extra[512], *body;
    unsigned counts[8] = { 0 }, statuses[600] = { 0 };
    int silent_ok = 0;
    bool zero = true;
    FILE *f;

    (void)snprintf(upload, sizeof(upload), "%s/upload", tmpdir);
    f = fopen(upload, "w");
    for (size_t i = 0; f && i < 3u * 1024 * 1024; i++)
        fputc((int)pattern(i), f);
    if (f)
        fclose(f);

    /* Head timeouts (H12 after 600 ms) while the holder keeps them, and clients that leave first. */
    bg_start(&stalls[0], "stall.localhost", "/a", NULL);
    bg_start(&stalls[1], "stall.localhost", "/b", NULL);
    bg_start(&gone[0], "stall.localhost", "/c", "-m 0.25");
    bg_start(&gone[1], "one.localhost", "/big", "--limit-rate 200k -m 0.5");

    /* Successes, refusals (retried elsewhere), responses cut short, closes without a byte, a POST. */
    for (int i = 0; i < 12; i++) {
        int st = request("mix.localhost", "/hello", NULL, &body, NULL);
        statuses[st > 0 && st < 600 ? st : 0]++;
        free(body);
    }
    for (int i = 0; i < 3; i++) {
        int st = request("mix.localhost", i ? "/nothing" : "/close", NULL, &body, NULL);
        statuses[st > 0 && st < 600 ? st : 0]++;
        free(body);
    }
    (void)request("mix.localhost", "/echo", "--data-binary 'a small body'", &body, NULL);
    free(body);
    /* A streamed upload whose client gives up halfway; and connect timeouts, retried on the other backend. */
    (void)snprintf(extra, sizeof(extra), "--data-binary '@%s' --limit-rate 1M -m 0.5", upload);
    (void)request("mix.localhost", "/count", extra, &body, NULL);
    free(body);
    for (int i = 0; i < 3; i++) {
        silent_ok += request("silent.localhost", "/hello", NULL, &body, NULL) == 200;
        free(body);
    }
    websocket_round();
    printf("# mix.localhost answered: %u x 200, %u x 502, %u x 503, %u failed in curl\n", statuses[200],
           statuses[502], statuses[503], statuses[0]);

    for (int i = 0; i < 2; i++) {
        bg_join(&stalls[i]);
        bg_join(&gone[i]);
        free(stalls[i].body);
        free(gone[i].body);
    }
    ok(stalls[0].status == 503 && stalls[1].status == 503, "held past the head timeout: 503 H12 (%d, %d)",
       stalls[0].status, stalls[1].status);
    ok(silent_ok == 3, "an agent that never answers: its requests go to the other backend after 300 ms (%d/3)",
       silent_ok);
    ok(atomic_load(&refusing_web.dials) >= 1 &&
       atomic_load(&cut_web.dials) >= 1 && atomic_load(&holder.arrivals) >= 3,
       "the mix reached the refusing, cutting and holding backends (%d refusals, %d cut, %d held)",
       atomic_load(&refusing_web.dials), atomic_load(&cut_web.dials), atomic_load(&holder.arrivals));

    /* The loops take a cancellation or a timeout within their half-second scan. */
    for (int i = 0; i < 100; i++) {
        bool all = true;
        for (size_t h = 0; h < N_HOSTS; h++)
            all = all && outstanding_sum(all_hosts[h]) == 0;
        if (all)
            break;
        usleep(20000);
    }
    for (size_t h = 0; h < N_HOSTS; h++) {
        ssize_t n = outstanding(all_hosts[h], counts);
        for (ssize_t i = 0; i < n && i < 8; i++)
            zero = zero && counts[i] == 0;
        zero = zero && n > 0;
    }
    ok(zero, "after successes, errors, timeouts, retries, disconnects and a websocket, every count is 0");
}

int main(void)
{
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 2, .backend_ops = &fake_backend_ops,
                                 .no_access_log = true };
    struct berth_error *err = NULL;
    struct timespec t0;
    int rc;

    if (!harness_begin(&rc))
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    log_setup("test-router-balance", LOG_LEVEL_INFO);

    ok(upstream_start(&up_port[0]) == 0 && upstream_start(&up_port[1]) == 0 && upstream_start(&up_port[2]) == 0 &&
       upstream_start(&up_port[3]) == 0 && mini_start(&holder) && mini_start(&cutter),
       "upstream listeners, the holder and the cutter are up");
    dead_fd = refusing_local(&dead_port);
    for (int i = 0; i < 3; i++)
        fast[i].port = up_port[i];
    drop_web.port = up_port[3];
    slow_web.port = holder.port;
    cut_web.port = cutter.port;
    refusing_web.port = dead_port;
    silent_web.port = up_port[0];

    if (router_start(&cfg, &router, &err) < 0) {
        ok(0, "router_start: %s", berth_error_msg(&err));
        berth_error_release(&err);
        return tap_done();
    }
    router_port_num = router_port(router);
    ok(set_routes(false), "routes set");

    test_slow_backend();
    printf("# slow backend done at %.1fs\n", elapsed(&t0));
    test_fair_share();
    printf("# fair share done at %.1fs\n", elapsed(&t0));
    test_dropped_backend();
    printf("# dropped backend done at %.1fs\n", elapsed(&t0));
    test_counts_balance();
    printf("# counts done at %.1fs\n", elapsed(&t0));

    router_stop(router);
    mini_stop();
    upstream_stop();
    fake_backend_join_all();
    if (dead_fd >= 0)
        close(dead_fd);
    if (!tap_failed)
        free(run("rm -rf '%s'", tmpdir));
    printf("# total %.1fs\n", elapsed(&t0));
    return tap_done();
}
