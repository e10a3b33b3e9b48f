/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The port agent part of the runner integration test (see test-runner.c):
 * channels (runner_agent_open/request/reply) and runner_connect() on top of
 * them, against busybox httpd and against this program itself as the app
 * (`--listen-helper PORT serve|stall`, bound at /t/helper), which numbers
 * the connections it accepts, or first stalls with a full accept queue
 * until SIGUSR1. It checks that a reply's socket reaches the app, that ids
 * come back matched and in completion order, 200 requests in flight on 4
 * channels from 2 threads, a reader that falls behind, one with no room
 * for the socket, a quick ECONNREFUSED, the caps on channels and requests
 * (runner_connect() included, which connects again once there is room),
 * that a closed channel's connects are gone from the container's
 * network namespace, and the stall: requests to an app that never accepts
 * time out after RUNNER_AGENT_CONNECT_TIMEOUT_MS each, while another
 * container answers in milliseconds and the stalled container's init still
 * forwards signals; then runner_connect() across an init-side and a
 * daemon-side (SIGSTOPped init) timeout, and end of file once a container
 * is gone. Latencies are printed as TAP comments.
 *
 * Stocks (runner_agent_ask_stock/answer): the sockets are TCP, unconnected,
 * non-blocking, close-on-exec and TCP_NODELAY; one dialled by this process
 * reaches httpd in the container while a listener of its own on the host's
 * 127.0.0.1 and the same port sees nothing; stocks and connects mixed on a
 * channel are each answered once; runner_agent_reply() skips stocks
 * without leaking them; a stock request out of range ends its channel; a
 * container without a port gives an empty stock; stock sockets connect
 * nowhere once their container is gone; and malformed stock replies, over
 * a socketpair, end as EBADMSG with their fds closed, while a reader with
 * room for only some of a stock's sockets gets those.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/proto.h"
#include "runner/runner.h"
#include "runner/tests/harness.h"
#include "common/banned.h"

/* Every container has its own network namespace: they all use one port. */
#define PORT 8080

/* ------------------------------------------------------------------------
 * the app, inside a container
 */

int listen_helper(const char *port, const char *mode)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    bool stall = !strcmp(mode, "stall");
    unsigned long count = 0;
    sigset_t usr1;
    int fd, one = 1, sig;

    /* Blocked before listening: the test signals only once connects stall. */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    (void)sigprocmask(SIG_BLOCK, &usr1, NULL);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return 1;
    /*
     * Backlog 0 holds one connection: the next SYNs are dropped and their
     * connects wait for retransmits, as with any app that stops accepting.
     */
    if (listen(fd, stall ? 0 : 4096) < 0)
        return 1;
    if (stall && (sigwait(&usr1, &sig) != 0 || listen(fd, 4096) < 0))
        return 1;
    for (;;) {
        char line[32];
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return 1;
        }
        (void)snprintf(line, sizeof(line), "conn %lu\n", ++count);
        (void)write_all(c, line, strlen(line));
        (void)close(c);
    }
}

/* ------------------------------------------------------------------------
 * helpers
 */

static struct runner_container *spawn_app(struct runner *rn, const char *name,
                                          const char *const *argv)
{
    struct runner_mount m = { .source = self_exe, .target = "/t/helper" };

    return spawn_mounted(rn, name, argv, &m, PORT);
}

static struct runner_container *spawn_helper(struct runner *rn, const char *name, const char *mode)
{
    const char *argv[] = { "/t/helper", "--listen-helper", "8080", mode, NULL };

    return spawn_app(rn, name, argv);
}

static void stop_app(struct runner_container *c)
{
    struct berth_error *err = NULL;

    if (!c)
        return;
    if (runner_stop(c, 1000, &err) < 0) {
        fprintf(stderr, "# stop: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }
    runner_container_free(c);
}

static int open_channel(struct runner_container *c)
{
    struct berth_error *err = NULL;
    int fd = -1;

    for (int i = 0; i < 1000; i++) {
        int r = runner_agent_open(c, &fd, &err);

        if (r == 0)
            return fd;
        if (r != -EAGAIN) {
            fprintf(stderr, "# runner_agent_open: %s\n", berth_error_msg(&err));
            berth_error_release(&err);
            return -1;
        }
        berth_error_release(&err);
        usleep(1000);
    }
    return -1;
}

/* runner_agent_request, waiting for room while the channel is full. */
static int send_request(int ch, uint64_t id)
{
    struct pollfd p = { .fd = ch, .events = POLLOUT };

    for (int i = 0; i < 500; i++) {
        int r = runner_agent_request(ch, id);

        if (r != -EAGAIN)
            return r;
        (void)poll(&p, 1, 10);
    }
    return -EAGAIN;
}

/* Waits for ch to become readable, until timeout_ms after t0 at most: 0, or -ETIMEDOUT. */
static int wait_readable(int ch, const struct timespec *t0, int timeout_ms)
{
    struct pollfd p = { .fd = ch, .events = POLLIN };
    double left = timeout_ms - ms_since(t0);

    if (left <= 0)
        return -ETIMEDOUT;
    (void)poll(&p, 1, (int)left + 1);
    return 0;
}

/* One reply within timeout_ms: 1, 0 at the channel's end, -ETIMEDOUT, -errno. */
static int wait_reply(int ch, int timeout_ms, uint64_t *id, int *sock, int *e)
{
    struct timespec t0;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((r = runner_agent_reply(ch, id, sock, e)) == -EAGAIN)
        if (wait_readable(ch, &t0, timeout_ms) < 0)
            return -ETIMEDOUT;
    return r;
}

/* A request and its reply; *e is -1 when none came. Closes nothing. */
static int ask(int ch, uint64_t id, int timeout_ms, int *sock, int *e)
{
    uint64_t got = 0;
    int r;

    *sock = *e = -1;
    if ((r = send_request(ch, id)) < 0)
        return r;
    r = wait_reply(ch, timeout_ms, &got, sock, e);
    if (r == 1 && got != id) {
        fprintf(stderr, "# reply for id %llu, asked %llu\n", (unsigned long long)got,
                (unsigned long long)id);
        return -EBADMSG;
    }
    return r;
}

/* The number the helper gave the connection, or -1; closes sock. */
static long conn_number(int sock)
{
    struct timeval tv = { .tv_sec = 3 };
    char buf[64];
    ssize_t n, got = 0;
    long num = -1;

    if (sock < 0)
        return -1;
    (void)fcntl(sock, F_SETFL, 0);
    (void)setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (got < (ssize_t)sizeof(buf) - 1 && (n = read(sock, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
        got += n;
    buf[got] = '\0';
    (void)close(sock);
    if (sscanf(buf, "conn %ld", &num) != 1)
        return -1;
    return num;
}

/*
 * Waits (up to 5 s) until runner_connect() gets a connection to the app:
 * the number the app gave it when `numbered`, else 0 (the stalling app
 * never accepts it); -1 on failure.
 */
static long wait_listening(struct runner_container *c, bool numbered)
{
    struct berth_error *err = NULL;
    int fd;

    for (int i = 0; i < 100; i++) {
        if (runner_connect(c, &fd, &err) == 0) {
            if (numbered)
                return conn_number(fd);
            (void)close(fd);
            return 0;
        }
        berth_error_release(&err);
        usleep(50 * 1000);
    }
    return -1;
}

/* Waits (up to 1 s) until `pid` is stopped: state T in /proc/<pid>/stat. */
static bool wait_stopped(pid_t pid)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/stat", (int)pid);

    for (int i = 0; i < 100; i++) {
        _cleanup_fclose_ FILE *f = fopen(p, "re");
        char line[512], *paren;

        if (f && fgets(line, sizeof(line), f) && (paren = strrchr(line, ')')) && paren[1] == ' ' &&
            paren[2] == 'T')
            return true;
        usleep(10 * 1000);
    }
    return false;
}

/*
 * Sockets in SYN_SENT to the port in the network namespace of `app`
 * (host pid), from its /proc/net/tcp; -1 when that is unreadable.
 */
static int syn_sent(pid_t app)
{
    _cleanup_free_ char *p = xasprintf("/proc/%d/net/tcp", (int)app);
    _cleanup_fclose_ FILE *f = fopen(p, "re");
    char line[512], rem[64];
    unsigned st;
    int n = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned long port;

        if (sscanf(line, " %*s %*s %63s %x", rem, &st) != 2 || !strchr(rem, ':'))
            continue;
        port = strtoul(strchr(rem, ':') + 1, NULL, 16);
        n += st == 2 && port == PORT;
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median and max of n latencies (sorts them). */
static void stats(double *ms, int n, double *median, double *max)
{
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    *median = n ? ms[n / 2] : 0;
    *max = n ? ms[n - 1] : 0;
}

/* ------------------------------------------------------------------------
 * the tests
 */

/* GET /index.html over sock, made blocking; the response is added to resp. Closes nothing. */
static void http_get(int sock, struct strbuf *resp)
{
    const char *req = "GET /index.html HTTP/1.0\r\n\r\n";
    struct timeval tv = { .tv_sec = 3 };
    char buf[1024];
    ssize_t n;

    (void)fcntl(sock, F_SETFL, 0);
    (void)setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)write_all(sock, req, strlen(req));
    while ((n = read(sock, buf, sizeof(buf))) > 0)
        strbuf_add(resp, buf, (size_t)n);
}

/* busybox httpd on PORT, serving the test's index.html. */
static struct runner_container *spawn_httpd(struct runner *rn, const char *name)
{
    const char *argv[] = { "/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/app", NULL };

    return spawn_app(rn, name, argv);
}

/* A channel to busybox httpd: the reply's socket carries a GET. */
static void test_httpd(struct runner *rn)
{
    struct runner_container *c = spawn_httpd(rn, "agent-httpd");
    struct strbuf resp = STRBUF_INIT;
    int ch, sock = -1, e = -1, r = -1;

    if (!c)
        return;
    ch = open_channel(c);
    t_ok(ch >= 0, "runner_agent_open gives a channel");
    /* httpd may not listen yet: ECONNREFUSED until it does. */
    for (int i = 0; ch >= 0 && i < 100; i++) {
        r = ask(ch, 1000 + (uint64_t)i, 2000, &sock, &e);
        if (r != 1 || e != ECONNREFUSED)
            break;
        usleep(20 * 1000);
    }
    t_ok(r == 1 && e == 0 && sock >= 0, "a request is answered with a socket (errno %d)", e);
    if (sock >= 0) {
        int flags = fcntl(sock, F_GETFL);

        t_ok(flags >= 0 && (flags & O_NONBLOCK), "the socket comes non-blocking, ready for an event loop");
        http_get(sock, &resp);
        (void)close(sock);
    }
    t_ok(strstr(resp.buf, "200 OK") && strstr(resp.buf, "hello from the slug"),
         "GET /index.html over the reply's socket reaches httpd in the container");
    strbuf_release(&resp);
    if (ch >= 0)
        (void)close(ch);
    stop_app(c);
}

struct flight {
    struct runner_container *c;
    int thread;
    int answered, sockets, mismatched;
};

/* Two channels, 50 requests on each, then every reply. */
static void *fly(void *arg)
{
    struct flight *f = arg;
    bool seen[2][50] = { { false } };
    int ch[2] = { open_channel(f->c), open_channel(f->c) };
    struct timespec t0;

    for (int k = 0; k < 2; k++)
        for (uint64_t i = 0; ch[k] >= 0 && i < 50; i++)
            if (send_request(ch[k], ((uint64_t)f->thread << 32) | ((uint64_t)k << 16) | i) < 0)
                f->mismatched++;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (f->answered + f->mismatched < 100 && ms_since(&t0) < 10000) {
        struct pollfd p[2] = { { .fd = ch[0], .events = POLLIN }, { .fd = ch[1], .events = POLLIN } };

        (void)poll(p, 2, 100);
        for (int k = 0; k < 2; k++) {
            uint64_t id;
            int sock, e;

            while (runner_agent_reply(ch[k], &id, &sock, &e) == 1) {
                uint64_t i = id & 0xffff;

                if (id >> 32 != (uint64_t)f->thread || ((id >> 16) & 0xffff) != (uint64_t)k ||
                    i >= 50 || seen[k][i]) {
                    f->mismatched++;
                } else {
                    seen[k][i] = true;
                    f->answered++;
                }
                f->sockets += e == 0 && conn_number(sock) > 0;
            }
        }
    }
    for (int k = 0; k < 2; k++)
        if (ch[k] >= 0)
            (void)close(ch[k]);
    return NULL;
}

static void test_in_flight(struct runner_container *v)
{
    struct flight f[2] = { { .c = v, .thread = 1 }, { .c = v, .thread = 2 } };
    pthread_t t[2];

    for (int i = 0; i < 2; i++)
        (void)pthread_create(&t[i], NULL, fly, &f[i]);
    for (int i = 0; i < 2; i++)
        (void)pthread_join(t[i], NULL);
    t_ok(f[0].answered + f[1].answered == 200 && f[0].mismatched + f[1].mismatched == 0 &&
         f[0].sockets + f[1].sockets == 200,
         "200 requests in flight on 4 channels from 2 threads: %d answered once each with their "
         "own id, %d sockets reach the app, %d unexpected", f[0].answered + f[1].answered,
         f[0].sockets + f[1].sockets, f[0].mismatched + f[1].mismatched);
}

/* Sequential round trips on an idle container. */
static void test_idle_latency(struct runner_container *v)
{
    double ms[100], median, max;
    int ch = open_channel(v), good = 0;

    for (int i = 0; i < 100; i++) {
        struct timespec t0;
        int sock = -1, e;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (ch >= 0 && ask(ch, (uint64_t)i, 2000, &sock, &e) == 1 && e == 0)
            good++;
        ms[i] = ms_since(&t0);
        if (sock >= 0)
            (void)close(sock);
    }
    stats(ms, 100, &median, &max);
    printf("# idle container: request -> reply with a socket: median %.3f ms, max %.3f ms (100)\n",
           median, max);
    t_ok(good == 100 && max < 100, "100 sequential requests on an idle container all answered "
         "with sockets, each within 100 ms (median %.3f ms, max %.3f ms)", median, max);
    if (ch >= 0)
        (void)close(ch);
}

/*
 * A reader that does not read: its channel fills with replies, then with
 * requests (runner_agent_request says EAGAIN), while another channel to
 * the same container is served; once it reads, every request is answered.
 */
static void test_slow_reader(struct runner_container *v)
{
    int x = open_channel(v), y = open_channel(v), sent = 0, answered = 0, bad = 0, stuck = 0;
    unsigned char *seen = xcalloc(RUNNER_AGENT_MAX_REQUESTS, 1);
    int sock, e, r;
    struct timespec t0;
    uint64_t id;

    /* Full: EAGAIN, still after the agent had time to read (it would, if it did). */
    while (x >= 0 && sent < RUNNER_AGENT_MAX_REQUESTS) {
        r = runner_agent_request(x, (uint64_t)sent);
        if (r == 0) {
            sent++;
            stuck = 0;
            continue;
        }
        if (r != -EAGAIN || ++stuck > 3)
            break;
        usleep(100 * 1000);
    }
    r = y >= 0 ? ask(y, 1, 1000, &sock, &e) : -EBADF;
    t_ok(stuck > 3 && r == 1 && e == 0,
         "a channel whose reader does not read fills (EAGAIN after %d requests), while another "
         "channel to the container is served", sent);
    if (sock >= 0)
        (void)close(sock);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (x >= 0 && answered + bad < sent && ms_since(&t0) < 10000) {
        r = wait_reply(x, 1000, &id, &sock, &e);
        if (r == 1 && id < (uint64_t)sent && !seen[id] && e == 0)
            seen[id] = 1, answered++;
        else
            bad++;
        if (r == 1 && sock >= 0)
            (void)close(sock);
    }
    t_ok(sent > 0 && answered == sent && bad == 0,
         "once it reads, each of its %d requests is answered once, with a socket (%d bad)",
         answered, bad);
    free(seen);
    if (x >= 0)
        (void)close(x);
    if (y >= 0)
        (void)close(y);
}

/*
 * A reader with no room for the reply's socket (a child at its fd limit)
 * still gets the reply, with EMFILE, so the request is not left unanswered.
 */
static void test_no_room(struct runner_container *v)
{
    int ch = open_channel(v), status = -1;
    pid_t pid;

    if (ch < 0) {
        t_ok(false, "open a channel for the fd limit test");
        return;
    }
    pid = fork();
    if (pid == 0) {
        struct rlimit rl = { 64, 64 };
        int sock = -1, e = -1, r;

        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            _exit(2);
        while (dup(ch) >= 0)
            ;
        r = ask(ch, 77, 2000, &sock, &e);
        _exit(r == 1 && e == EMFILE && sock < 0 ? 0 : 1);
    }
    (void)waitpid(pid, &status, 0);
    t_ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "a reader at its fd limit gets the reply with EMFILE instead of the socket (status 0x%x)",
         (unsigned)status);
    (void)close(ch);
}

/* Past RUNNER_AGENT_MAX_CHANNELS a channel reads end of file; one closed, a new one works. */
static void test_channel_cap(struct runner_container *v)
{
    enum { N = RUNNER_AGENT_MAX_CHANNELS + 4 };
    int ch[N], answered = 0, ended = 0, sock, e, r;
    bool send_failed[N];
    uint64_t id;

    /* Let the init see the earlier tests' channels close. */
    usleep(50 * 1000);
    for (int i = 0; i < N; i++) {
        ch[i] = open_channel(v);
        /* A channel past the cap may already be closed by the agent: the send
         * fails (EPIPE) and the read below sees end of file. Count it once. */
        send_failed[i] = ch[i] >= 0 && send_request(ch[i], (uint64_t)i) < 0;
    }
    for (int i = 0; i < N; i++) {
        r = ch[i] >= 0 ? wait_reply(ch[i], 3000, &id, &sock, &e) : -EBADF;
        answered += r == 1 && id == (uint64_t)i && e == 0;
        ended += r == 0 || (send_failed[i] && r != 1);
        if (r != 0 && !(r == 1 && id == (uint64_t)i && e == 0))
            fprintf(stderr, "# channel %d: %d, errno %d\n", i, r, r == 1 ? e : 0);
        if (r == 1 && sock >= 0)
            (void)close(sock);
    }
    /* runner_connect()'s own channel (wait_listening) is the one more. */
    t_ok(answered == RUNNER_AGENT_MAX_CHANNELS - 1 && ended == 5,
         "%d channels open at once: %d served, %d end at once (the cap is %d, runner_connect's "
         "channel included)", N, answered, ended, RUNNER_AGENT_MAX_CHANNELS);
    for (int i = 0; i < N; i++)
        if (ch[i] >= 0)
            (void)close(ch[i]);
    {
        int c2 = open_channel(v);

        r = c2 >= 0 ? ask(c2, 7, 3000, &sock, &e) : -EBADF;
        t_ok(r == 1 && e == 0, "once channels are closed a new one is served again");
        if (sock >= 0)
            (void)close(sock);
        if (c2 >= 0)
            (void)close(c2);
    }
}

/*
 * runner_connect() on a container whose agent is at its channel cap: its
 * channel ends at once, twice, and it says the agent is gone; once the
 * other channels close, it opens a new channel and connects. (Its broken
 * channel's number used to stay behind, closed, and every later call
 * failed on it.)
 */
static void test_connect_after_cap(struct runner *rn)
{
    struct runner_container *w = spawn_helper(rn, "agent-cap-connect", "serve");
    int ch[RUNNER_AGENT_MAX_CHANNELS], served = 0, fd = -1, sock, e, r;
    struct berth_error *err = NULL;

    if (!w)
        return;
    for (int i = 0; i < RUNNER_AGENT_MAX_CHANNELS; i++) {
        ch[i] = open_channel(w);
        /* Any answer (ECONNREFUSED while the app starts) says the agent took the channel. */
        if (ch[i] >= 0 && ask(ch[i], (uint64_t)i, 3000, &sock, &e) == 1)
            served++;
        if (ch[i] >= 0 && sock >= 0)
            (void)close(sock);
    }
    r = runner_connect(w, &fd, &err);
    t_ok(served == RUNNER_AGENT_MAX_CHANNELS && r == -ECONNREFUSED,
         "with %d channels served, runner_connect() finds no room: %d (%s)", served, r,
         err ? berth_error_msg(&err) : "connected");
    berth_error_release(&err);
    if (r == 0)
        (void)close(fd);
    for (int i = 0; i < RUNNER_AGENT_MAX_CHANNELS; i++)
        if (ch[i] >= 0)
            (void)close(ch[i]);
    /* Let the init see them close. */
    usleep(50 * 1000);
    t_ok(wait_listening(w, true) > 0, "once they are closed, runner_connect() connects again");
    stop_app(w);
}

static void test_refused(struct runner *rn)
{
    const char *argv[] = { "/bin/busybox", "sleep", "60", NULL };
    struct runner_container *c = spawn_app(rn, "agent-refused", argv);
    struct timespec t0;
    int ch, sock = -1, e = -1, r = -1;
    double ms;

    if (!c)
        return;
    ch = open_channel(c);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ch >= 0)
        r = ask(ch, 42, 2000, &sock, &e);
    ms = ms_since(&t0);
    t_ok(r == 1 && e == ECONNREFUSED && sock < 0 && ms < 100,
         "where nothing listens the reply is ECONNREFUSED, in %.3f ms", ms);
    if (ch >= 0)
        (void)close(ch);
    stop_app(c);
}

/*
 * RUNNER_AGENT_MAX_REQUESTS requests to a stalled app are held, the rest get
 * EAGAIN at once; closing the channel ends all of its connects in the
 * container's network namespace.
 */
static void test_connect_cap(struct runner_container *s)
{
    pid_t app = child_of(runner_container_pid(s), NULL);
    int ch = open_channel(s), again = 0, other = 0, before, after = -1, sock, e;
    const int n = RUNNER_AGENT_MAX_REQUESTS + 6;
    struct timespec t0;
    uint64_t id;

    for (int i = 0; ch >= 0 && i < n; i++)
        if (send_request(ch, (uint64_t)i) < 0)
            other++;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (ms_since(&t0) < 500) {
        int r = wait_reply(ch, 50, &id, &sock, &e);

        if (r == 1 && e == EAGAIN && id >= RUNNER_AGENT_MAX_REQUESTS)
            again++;
        else if (r != -ETIMEDOUT)
            other++;
        if (r == 1 && sock >= 0)
            (void)close(sock);
    }
    /*
     * Waiting connects are dialled again on new sockets now and then, and a
     * read of /proc/net/tcp is not one snapshot (a socket closed and made
     * again meanwhile may be seen twice or not at all): the median of a few
     * looks, within a tenth of the cap.
     */
    {
        int looks[5];

        for (int i = 0; i < 5; i++) {
            looks[i] = syn_sent(app);
            usleep(20 * 1000);
        }
        for (int i = 1; i < 5; i++)
            for (int j = i; j > 0 && looks[j - 1] > looks[j]; j--) {
                int t = looks[j];
                looks[j] = looks[j - 1];
                looks[j - 1] = t;
            }
        before = looks[2];
    }
    t_ok(again == 6 && other == 0,
         "%d requests to a stalled app: the %d past the cap of %d get EAGAIN at once, the rest "
         "wait (%d unexpected)", n, again, RUNNER_AGENT_MAX_REQUESTS, other);
    if (ch >= 0)
        (void)close(ch);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (before >= 0 && ms_since(&t0) < 2000 && (after = syn_sent(app)) > 0)
        usleep(10 * 1000);
    if (before < 0)
        t_skip_or_fail("/proc/<app>/net/tcp is unreadable: cannot count the init's connects");
    else
        t_ok(before >= RUNNER_AGENT_MAX_REQUESTS * 9 / 10 && before <= RUNNER_AGENT_MAX_REQUESTS * 11 / 10 &&
             after == 0,
             "closing the channel ends its connects: about %d in SYN_SENT in the container, %d after "
             "(the init's own /proc/<pid>/fd is closed to berth: it is not dumpable)", before, after);
}

/* runner_connect() in a thread, timed. */
struct blocked {
    struct runner_container *c;
    pid_t stop;          /* SIGSTOP this first (the init), or 0 */
    int r;
    double ms;
};

static void *connect_blocked(void *arg)
{
    struct blocked *b = arg;
    struct berth_error *err = NULL;
    struct timespec t0;
    int fd;

    /* Stopped before the request goes, or the init could still answer it. */
    if (b->stop && (kill(b->stop, SIGSTOP) < 0 || !wait_stopped(b->stop))) {
        b->r = -ESRCH;
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    b->r = runner_connect(b->c, &fd, &err);
    b->ms = ms_since(&t0);
    if (b->r == 0)
        (void)close(fd);
    berth_error_release(&err);
    return NULL;
}

struct stall_run {
    int a, b, c;                 /* channels: two to the stalled app, one to the idle one */
    struct timespec t0;          /* when the 8 requests on a went */
    double a_ms[8], b_ms, c_ms[400];
    int a_n, a_timedout, b_e, c_n, c_good, other;
};

/* One reply on the stalled app's channels, sorted into st. */
static void stall_reply(struct stall_run *st, int ch, double b_sent)
{
    uint64_t id;
    int sock, e;

    while (runner_agent_reply(ch, &id, &sock, &e) == 1) {
        if (sock >= 0)
            (void)close(sock);
        if (ch == st->a && id < 8 && st->a_n < 8) {
            st->a_ms[st->a_n++] = ms_since(&st->t0);
            st->a_timedout += e == ETIMEDOUT;
        } else if (ch == st->b && id == 100) {
            st->b_ms = ms_since(&st->t0) - b_sent;
            st->b_e = e;
        } else {
            st->other++;
        }
    }
}

/*
 * For up to 8 s: 8 requests on a and, 1 s later, one on b, all to the
 * stalled app; meanwhile request after request to the idle app on c.
 */
static void stall_loop(struct stall_run *st)
{
    double b_sent = -1, next_c = 0;
    bool c_waiting = false;
    struct timespec c_t0;

    st->b_e = -1;
    clock_gettime(CLOCK_MONOTONIC, &st->t0);
    for (uint64_t i = 0; i < 8; i++)
        if (send_request(st->a, i) < 0)
            st->other++;
    while (ms_since(&st->t0) < 8000 && (st->a_n < 8 || st->b_e < 0)) {
        struct pollfd p[3] = {
            { .fd = st->a, .events = POLLIN }, { .fd = st->b, .events = POLLIN },
            { .fd = st->c, .events = POLLIN },
        };
        uint64_t id;
        int sock, e;

        if (b_sent < 0 && ms_since(&st->t0) >= 1000) {
            b_sent = ms_since(&st->t0);
            if (send_request(st->b, 100) < 0)
                st->other++;
        }
        if (!c_waiting && st->c_n < 400 && ms_since(&st->t0) >= next_c) {
            clock_gettime(CLOCK_MONOTONIC, &c_t0);
            c_waiting = send_request(st->c, (uint64_t)st->c_n) == 0;
        }
        (void)poll(p, 3, 5);
        stall_reply(st, st->a, b_sent);
        stall_reply(st, st->b, b_sent);
        if (c_waiting && runner_agent_reply(st->c, &id, &sock, &e) == 1) {
            st->c_ms[st->c_n] = ms_since(&c_t0);
            st->c_good += id == (uint64_t)st->c_n && e == 0 && conn_number(sock) > 0;
            st->c_n++;
            c_waiting = false;
            next_c = ms_since(&st->t0) + 20;
        }
    }
}

static void stall_report(struct stall_run *st)
{
    double min_a = 1e9, max_a = 0, median, max;

    for (int i = 0; i < st->a_n; i++) {
        min_a = st->a_ms[i] < min_a ? st->a_ms[i] : min_a;
        max_a = st->a_ms[i] > max_a ? st->a_ms[i] : max_a;
    }
    stats(st->c_ms, st->c_n, &median, &max);
    printf("# stalled app: ETIMEDOUT after %.0f..%.0f ms; its other channel after %.0f ms\n",
           min_a, max_a, st->b_ms);
    printf("# meanwhile, another container: median %.3f ms, max %.3f ms (%d requests)\n",
           median, max, st->c_n);
    t_ok(st->a_n == 8 && st->a_timedout == 8 && min_a >= RUNNER_AGENT_CONNECT_TIMEOUT_MS - 100 &&
         max_a < RUNNER_AGENT_CONNECT_TIMEOUT_MS + 1000 && st->other == 0,
         "8 requests to an app that never accepts: %d answered ETIMEDOUT after %.0f..%.0f ms",
         st->a_timedout, min_a, max_a);
    t_ok(st->b_e == ETIMEDOUT && st->b_ms >= RUNNER_AGENT_CONNECT_TIMEOUT_MS - 100 &&
         st->b_ms < RUNNER_AGENT_CONNECT_TIMEOUT_MS + 1000,
         "a request on another channel to the stalled app, sent 1 s later, times out on its own "
         "clock (%.0f ms after it was sent)", st->b_ms);
    t_ok(st->c_n >= 20 && st->c_good == st->c_n && max < 100,
         "meanwhile %d requests to another container are answered with sockets, each within "
         "100 ms (median %.3f ms, max %.3f ms)", st->c_n, median, max);
}

/*
 * After the timeouts, on the same channel: x stalls (the accept queue is
 * still full, so its SYN is dropped), SIGUSR1 reaches the app through the
 * init while x is in progress and the app starts accepting; x is answered
 * soon after, well before the kernel would send its SYN again (one second),
 * because the agent dials again on its own; y, sent after, follows.
 */
static void test_unstall(struct runner_container *s, int a)
{
    uint64_t first = 0, second = 0;
    int s1 = -1, s2 = -1, e1 = -1, e2 = -1, r1, r2 = -1;
    struct timespec t0;
    double x_ms = -1;
    long n1, n2;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    (void)send_request(a, 200);
    usleep(50 * 1000);
    (void)kill(runner_container_pid(s), SIGUSR1);
    r1 = wait_reply(a, 3000, &first, &s1, &e1);
    if (r1 == 1) {
        x_ms = ms_since(&t0);
        (void)send_request(a, 201);
        r2 = wait_reply(a, 3000, &second, &s2, &e2);
    }
    n1 = conn_number(s1);
    n2 = conn_number(s2);
    t_ok(r1 == 1 && r2 == 1 && first == 200 && second == 201 && e1 == 0 && e2 == 0 && n1 > 0 &&
         n2 > 0,
         "after its timeouts the channel still works: %llu then %llu (errno %d, %d)",
         (unsigned long long)first, (unsigned long long)second, e1, e2);
    t_ok(x_ms >= 0 && x_ms < 700,
         "a connect whose SYN the full accept queue dropped is answered %.0f ms after it was asked, "
         "%.0f ms after the app accepts again (the kernel's own retry comes after 1000 ms)", x_ms,
         x_ms - 50);
}

static void test_stall(struct runner *rn, struct runner_container *v)
{
    struct runner_container *s = spawn_helper(rn, "agent-stall", "stall");
    struct runner_container *f = spawn_helper(rn, "agent-frozen", "serve");
    struct stall_run st = { .a = -1, .b = -1, .c = -1 };
    struct blocked bs = { .c = s }, bf = { .c = f };
    struct berth_error *err = NULL;
    long before = -1, after = -1;
    pthread_t ts, tf;
    int fd;

    if (!s || !f)
        goto out;
    t_ok(wait_listening(s, false) == 0, "the stalling app listens; its accept queue is now full");
    before = wait_listening(f, true);
    test_connect_cap(s);
    st.a = open_channel(s);
    st.b = open_channel(s);
    st.c = open_channel(v);
    bf.stop = runner_container_pid(f);
    (void)pthread_create(&ts, NULL, connect_blocked, &bs);
    (void)pthread_create(&tf, NULL, connect_blocked, &bf);
    stall_loop(&st);
    stall_report(&st);
    (void)pthread_join(ts, NULL);
    (void)pthread_join(tf, NULL);
    t_ok(bs.r == -ETIMEDOUT && bs.ms >= RUNNER_AGENT_CONNECT_TIMEOUT_MS - 100,
         "runner_connect() to the stalled app fails ETIMEDOUT after %.0f ms", bs.ms);
    test_unstall(s, st.a);
    t_ok(runner_connect(s, &fd, &err) == 0 && conn_number(fd) > 0,
         "runner_connect() works right after its timed-out request, once the app accepts");
    berth_error_release(&err);
    (void)kill(runner_container_pid(f), SIGCONT);
    if (runner_connect(f, &fd, &err) == 0)
        after = conn_number(fd);
    berth_error_release(&err);
    t_ok(bf.r == -ETIMEDOUT && after == before + 2,
         "runner_connect() gives up on a stopped init after %.0f ms; once it runs again, the "
         "next call skips the late answer (connection %ld after %ld)", bf.ms, after, before);
out:
    for (int i = 0; i < 3; i++) {
        int *chp = i == 0 ? &st.a : i == 1 ? &st.b : &st.c;

        if (*chp >= 0)
            (void)close(*chp);
    }
    stop_app(s);
    stop_app(f);
}

/*
 * A channel whose container exited reads end of file, also with a request
 * the init never read (the init is stopped when it goes, then killed); no
 * new channel opens.
 */
static void test_exit(struct runner_container *v)
{
    struct berth_error *err = NULL;
    int ch = open_channel(v), ch2 = open_channel(v), fd = -1, sock = -1, e, r = -1, r1 = -1, r2, r3;
    pid_t init = runner_container_pid(v);
    uint64_t id;

    /* Both channels in the init before it stops. */
    if (ch2 >= 0)
        (void)ask(ch2, 1, 2000, &sock, &e);
    if (sock >= 0)
        (void)close(sock);
    if (kill(init, SIGSTOP) == 0 && wait_stopped(init) && ch2 >= 0)
        (void)send_request(ch2, 2);
    (void)runner_stop(v, 0, &err);
    berth_error_release(&err);
    if (ch >= 0)
        r = wait_reply(ch, 2000, &id, &sock, &e);
    if (ch2 >= 0)
        r1 = wait_reply(ch2, 2000, &id, &sock, &e);
    t_ok(r == 0 && r1 == 0, "a channel read after its container exited gives end of file, also "
         "one with an unread request (%d, %d)", r, r1);
    if (ch2 >= 0)
        (void)close(ch2);
    r2 = ch >= 0 ? runner_agent_request(ch, 1) : -EBADF;
    t_ok(r2 == -EPIPE || r2 == -ECONNRESET, "a request on it fails with EPIPE (%d)", r2);
    r3 = runner_agent_open(v, &fd, &err);
    t_ok(r3 == -ECONNREFUSED, "runner_agent_open on an exited container: ECONNREFUSED (%s)",
         berth_error_msg(&err));
    berth_error_release(&err);
    if (r3 == 0)
        (void)close(fd);
    if (ch >= 0)
        (void)close(ch);
}

void test_agent_channels(struct runner *rn)
{
    struct runner_container *v;

    test_httpd(rn);
    test_refused(rn);
    v = spawn_helper(rn, "agent-serve", "serve");
    if (!v)
        return;
    t_ok(wait_listening(v, true) > 0, "runner_connect reaches the helper app");
    test_idle_latency(v);
    test_in_flight(v);
    test_slow_reader(v);
    test_no_room(v);
    test_channel_cap(v);
    test_connect_after_cap(rn);
    test_stall(rn, v);
    test_exit(v);
    runner_container_free(v);
}

/* ------------------------------------------------------------------------
 * stocks: unconnected sockets of the container's network namespace
 */

/* The fds this process has open. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    if (!d)
        return -1;
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    (void)closedir(d);
    return n;
}

static void close_stock(const struct runner_agent_answer *a)
{
    for (unsigned i = 0; i < a->n_stock; i++)
        if (a->stock[i] >= 0)
            (void)close(a->stock[i]);
}

/* One answer within timeout_ms: 1, 0 at the channel's end, -ETIMEDOUT, -errno. */
static int wait_answer(int ch, int timeout_ms, struct runner_agent_answer *a)
{
    struct timespec t0;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((r = runner_agent_answer(ch, a)) == -EAGAIN)
        if (wait_readable(ch, &t0, timeout_ms) < 0)
            return -ETIMEDOUT;
    return r;
}

/* A stock of n and its answer: 1 with a stock in *a, else what went wrong (-EBADMSG: not a stock). */
static int ask_stock(int ch, unsigned n, struct runner_agent_answer *a)
{
    int r = runner_agent_ask_stock(ch, n);

    if (r < 0)
        return r;
    r = wait_answer(ch, 2000, a);
    if (r == 1 && !a->is_stock) {
        if (a->sock >= 0)
            (void)close(a->sock);
        return -EBADMSG;
    }
    return r;
}

/* fd is as runner.h promises a stock socket: TCP/IPv4, not connected, O_NONBLOCK, FD_CLOEXEC, TCP_NODELAY. */
static bool stock_socket_ok(int fd)
{
    struct sockaddr_in peer;
    socklen_t len = sizeof(int), plen = sizeof(peer);
    int domain = -1, type = -1, nodelay = -1;
    int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) < 0)
        return false;
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 || errno != ENOTCONN)
        return false;
    return domain == AF_INET && type == SOCK_STREAM && nodelay == 1 && fl >= 0 &&
           (fl & O_NONBLOCK) && fdfl >= 0 && (fdfl & FD_CLOEXEC);
}

/* Connects the non-blocking fd to 127.0.0.1:port within 2 s: 0, or the errno (ETIMEDOUT). */
static int dial(int fd, uint16_t port)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int error = 0;
    socklen_t len = sizeof(error);

    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return errno;
    if (poll(&p, 1, 2000) != 1)
        return ETIMEDOUT;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
        return errno;
    return error;
}

/* A listener of this process (the host's network namespace) on 127.0.0.1:port; -1 if the port is taken. */
static int host_listener(uint16_t port)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
        (void)close(fd);
        return -1;
    }
    return fd;
}

/*
 * A stock of 5: the sockets are as promised, and one of them, dialled
 * here, reaches httpd in the container, while a listener of this process
 * on the host's 127.0.0.1 and the same port sees nothing. *a keeps the
 * other four for test_stock_after_exit().
 */
static void test_stock_sockets(int ch, struct runner_agent_answer *a)
{
    struct strbuf resp = STRBUF_INIT;
    int r = ask_stock(ch, 5, a), good = 0, host = -1, e = -1, stray;

    if (r != 1)
        a->n_stock = 0;
    t_ok(r == 1 && a->is_stock && a->n_stock == 5 && a->port == PORT,
         "a stock of 5 is one answer with 5 sockets and the port (%d, %u sockets, port %u)", r,
         a->n_stock, a->port);
    for (unsigned i = 0; i < a->n_stock; i++)
        good += stock_socket_ok(a->stock[i]);
    t_ok(r == 1 && good == 5, "each is TCP/IPv4, not connected, O_NONBLOCK, FD_CLOEXEC, TCP_NODELAY "
         "(%d of %u)", good, a->n_stock);
    if (a->n_stock > 0) {
        host = host_listener(PORT);
        e = dial(a->stock[0], a->port);
        if (e == 0)
            http_get(a->stock[0], &resp);
        (void)close(a->stock[0]);
        a->stock[0] = -1;
    }
    t_ok(e == 0 && strstr(resp.buf, "200 OK") && strstr(resp.buf, "hello from the slug"),
         "dialled here, a stock socket reaches httpd in the container (errno %d)", e);
    stray = host >= 0 ? accept4(host, NULL, NULL, SOCK_CLOEXEC) : -1;
    if (host < 0)
        t_skip("127.0.0.1:%d is taken on the host: no host listener to prove the namespace", PORT);
    else
        t_ok(stray < 0 && errno == EAGAIN, "a listener on the host's 127.0.0.1:%d never saw it: "
             "the socket is of the container's network namespace", PORT);
    if (stray >= 0)
        (void)close(stray);
    if (host >= 0)
        (void)close(host);
    strbuf_release(&resp);
}

/* Connect and stock requests on one channel, one answer each. */
static void test_stock_interleaved(int ch)
{
    /* 0: connect id, else a stock of that many. */
    static const struct { uint64_t id; unsigned stock; } order[] = {
        { 1, 0 }, { 0, 3 }, { 2, 0 }, { 3, 0 }, { 0, 2 }, { 4, 0 },
    };
    int seen[5] = { 0 }, stocks[2] = { -1, -1 }, n_stocks = 0, bad = 0, got = 0;
    struct timespec t0;

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        bad += (order[i].stock ? runner_agent_ask_stock(ch, order[i].stock) :
                send_request(ch, order[i].id)) < 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (got < 6 && ms_since(&t0) < 3000) {
        struct runner_agent_answer a;
        int r = wait_answer(ch, 500, &a);

        if (r != 1)
            continue;
        got++;
        if (a.is_stock) {
            if (n_stocks < 2)
                stocks[n_stocks] = (int)a.n_stock;
            n_stocks++;
            close_stock(&a);
        } else {
            if (a.id >= 1 && a.id <= 4 && a.error == 0 && a.sock >= 0)
                seen[a.id]++;
            else
                bad++;
            if (a.sock >= 0)
                (void)close(a.sock);
        }
    }
    t_ok(seen[1] == 1 && seen[2] == 1 && seen[3] == 1 && seen[4] == 1 && n_stocks == 2 &&
         stocks[0] == 3 && stocks[1] == 2 && bad == 0,
         "4 connects and 2 stocks interleaved on one channel: each connect answered once with a "
         "socket, the stocks in order with 3 and 2 sockets (%d stocks, %d bad)", n_stocks, bad);
}

/* runner_agent_reply() skips a stock it meets, and closes its sockets. */
static void test_stock_skipped(int ch)
{
    struct pollfd p = { .fd = ch, .events = POLLIN };
    int before = count_fds(), after, r1 = 1, r2 = -1, sock = -1, e = -1;
    uint64_t id = 0;

    if (runner_agent_ask_stock(ch, 4) == 0 && poll(&p, 1, 2000) == 1)
        r1 = runner_agent_reply(ch, &id, &sock, &e);
    if (runner_agent_ask_stock(ch, 4) == 0 && poll(&p, 1, 2000) == 1 && send_request(ch, 9) == 0)
        r2 = wait_reply(ch, 2000, &id, &sock, &e);
    if (sock >= 0)
        (void)close(sock);
    after = count_fds();
    t_ok(r1 == -EAGAIN && r2 == 1 && id == 9 && e == 0 && before > 0 && after == before,
         "runner_agent_reply() skips stocks: none waits after one (%d), the connect reply after "
         "another comes (%d, id %llu), and no fd is left (%d before, %d after)", r1, r2,
         (unsigned long long)id, before, after);
}

/* A stock request for 0 or 33 sockets, sent raw, ends the channel; a new one is served. */
static void test_stock_out_of_range(struct runner_container *c)
{
    static const uint32_t bad[] = { 0, RUNNER_AGENT_STOCK_MAX + 1 };

    for (size_t i = 0; i < 2; i++) {
        struct runner_agent_answer a;
        int ch = open_channel(c), ch2, r = -1, r2 = -1;

        t_ok(ch >= 0 && runner_agent_ask_stock(ch, bad[i]) == -EINVAL,
             "runner_agent_ask_stock() refuses %u sockets: -EINVAL", bad[i]);
        if (ch >= 0 && send(ch, &bad[i], sizeof(bad[i]), MSG_NOSIGNAL) == sizeof(bad[i]))
            r = wait_answer(ch, 2000, &a);
        if (r == 1 && a.is_stock)
            close_stock(&a);
        else if (r == 1 && a.sock >= 0)
            (void)close(a.sock);
        ch2 = open_channel(c);
        if (ch2 >= 0)
            r2 = ask_stock(ch2, 1, &a);
        if (r2 == 1)
            close_stock(&a);
        t_ok(r == 0 && r2 == 1 && a.n_stock == 1,
             "a stock request for %u sent raw ends the channel (%d); a new channel gets a stock (%d)",
             bad[i], r, r2);
        if (ch >= 0)
            (void)close(ch);
        if (ch2 >= 0)
            (void)close(ch2);
    }
}

/* A container without a port: a stock of none, port 0. */
static void test_stock_no_port(struct runner *rn)
{
    const char *argv[] = { "/bin/busybox", "sleep", "60", NULL };
    struct runner_container *c = spawn_mounted(rn, "agent-stock-noport", argv, NULL, 0);
    struct runner_agent_answer a;
    int ch, r = -1;

    if (!c)
        return;
    ch = open_channel(c);
    if (ch >= 0)
        r = ask_stock(ch, 3, &a);
    t_ok(r == 1 && a.n_stock == 0 && a.port == 0,
         "a container without a port answers a stock with no sockets and port 0 (%d)", r);
    if (r == 1)
        close_stock(&a);
    if (ch >= 0)
        (void)close(ch);
    stop_app(c);
}

/* Stock sockets outlive their container, but connect nowhere; c is stopped and freed. */
static void test_stock_after_exit(struct runner_container *c, struct runner_agent_answer *a)
{
    struct timespec t0;
    int e = 0, tried = 0;

    stop_app(c);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < a->n_stock; i++) {
        if (a->stock[i] < 0)
            continue;
        if (tried++ == 0)
            e = dial(a->stock[i], a->port);
        (void)close(a->stock[i]);
        a->stock[i] = -1;
    }
    t_ok(tried > 0 && e != 0 && e != ETIMEDOUT && ms_since(&t0) < 3000,
         "after its container exited a stock socket connects nowhere: %s, at once",
         strerror(e));
}

/* Decoding stock replies, over a socketpair: malformed ones end as -EBADMSG and leak nothing. */
static void test_stock_decoding(void)
{
    int sv[2], fds[PROTO_AGENT_STOCK_MAX], before = count_fds(), status = -1, r;
    char buf[PROTO_AGENT_STOCK_LEN];
    /* {port, count} and the fds sent with it: count 2 with 1 fd; 40; port 0 with 1; 1 with 2. */
    static const uint16_t bad[][3] = { { PORT, 2, 1 }, { PORT, 40, 0 }, { 0, 1, 1 }, { PORT, 1, 2 } };
    struct runner_agent_answer a;
    uint16_t v[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
        t_ok(false, "socketpair: %s", strerror(errno));
        return;
    }
    for (int i = 0; i < PROTO_AGENT_STOCK_MAX; i++)
        fds[i] = sv[0];
    for (size_t i = 0; i < 4; i++) {
        v[0] = bad[i][0];
        v[1] = bad[i][1];
        memcpy(buf, v, sizeof(buf));
        r = proto_sendf(sv[0], 0, buf, sizeof(buf), fds, bad[i][2]);
        t_ok(r == 0 && runner_agent_answer(sv[1], &a) == -EBADMSG && count_fds() == before + 2,
             "a stock reply of port %u, count %u with %u fds is malformed, its fds closed", bad[i][0],
             bad[i][1], bad[i][2]);
    }
    r = proto_agent_send_stock(sv[0], PORT, fds, PROTO_AGENT_STOCK_MAX);
    t_ok(r == 0 && runner_agent_answer(sv[1], &a) == 1 && a.is_stock && a.n_stock == PROTO_AGENT_STOCK_MAX &&
         count_fds() == before + 2 + PROTO_AGENT_STOCK_MAX,
         "a stock of %d sockets comes whole", PROTO_AGENT_STOCK_MAX);
    if (r == 0)
        close_stock(&a);
    /* A reader with room for 2 of the 5 gets those 2, and no reply is left behind. */
    (void)proto_agent_send_stock(sv[0], PORT, fds, 5);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl = { 64, 64 };
        int last = -1, fd;

        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            _exit(2);
        while ((fd = dup(sv[1])) >= 0)
            last = fd;
        (void)close(last);
        (void)close(last - 1);
        r = runner_agent_answer(sv[1], &a);
        _exit(r == 1 && a.n_stock == 2 && runner_agent_answer(sv[1], &a) == -EAGAIN ? 0 : 1);
    }
    (void)waitpid(pid, &status, 0);
    t_ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "a reader with room for 2 of a stock's 5 sockets gets the stock with those 2 (status 0x%x)",
         (unsigned)status);
    (void)close(sv[0]);
    (void)close(sv[1]);
}

void test_agent_stock(struct runner *rn)
{
    struct runner_container *c;
    struct runner_agent_answer a = { .n_stock = 0 };
    int ch, sock = -1, e = -1, r = -1;

    test_stock_decoding();
    test_stock_no_port(rn);
    c = spawn_httpd(rn, "agent-stock");
    if (!c)
        return;
    ch = open_channel(c);
    /* httpd may not listen yet: ECONNREFUSED until it does. */
    for (int i = 0; ch >= 0 && i < 100; i++) {
        r = ask(ch, 1, 2000, &sock, &e);
        if (sock >= 0)
            (void)close(sock);
        if (r != 1 || e != ECONNREFUSED)
            break;
        usleep(20 * 1000);
    }
    t_ok(r == 1 && e == 0, "httpd listens in the stock test's container (errno %d)", e);
    if (ch >= 0) {
        test_stock_sockets(ch, &a);
        test_stock_interleaved(ch);
        test_stock_skipped(ch);
        (void)close(ch);
    }
    test_stock_out_of_range(c);
    test_stock_after_exit(c, &a);
}
