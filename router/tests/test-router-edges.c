/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Edges of the router found in review, checked from outside on 127.0.0.1
 * against the upstream server of harness.h and fake port agents:
 *
 *   - app names: one longer than ROUTER_APP_NAME_MAX is refused by
 *     router_set_routes() and router_probe_add() (the access log's prefix
 *     is built in a fixed buffer, which a 240-byte name once overran), and
 *     one of the longest allowed length gets whole access-log lines;
 *   - headers a client's Connection names, however long the name and
 *     however many Connection lines, never reach the app; headers the app's
 *     Connection names never reach the client; both on the router's own
 *     front and on libmicrohttpd's side (a request with a body goes there);
 *   - a websocket client that goes before the app's 101 reached it leaves
 *     no tunnel half set up (the app's socket is closed);
 *   - a full agent channel whose queued requests all time out stops
 *     watching for room: the loop sleeps once the agent drained it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/uio.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "router/router.h"
#include "router/tests/fake-backend.h"
#include "router/tests/harness.h"

static struct router *router;
static uint16_t up_port;
static struct fake_backend web = { .name = "web.1", .mode = FAKE_DIAL };
static char max_name[ROUTER_APP_NAME_MAX + 1];
/* The websocket app listens on a port of its own: its connections can be told from the others'. */
static uint16_t ws_port;
static struct fake_backend ws_web = { .name = "ws.1", .mode = FAKE_DIAL };

/* Sends `req` on a new connection and reads until the router closes it (3 s at most); whether it did. */
static bool exchange(const char *req, struct strbuf *sb)
{
    struct timeval tv = { .tv_sec = 3 };
    int fd = dial_port(router_port_num);
    bool closed;

    strbuf_reset(sb);
    if (fd < 0)
        return false;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)send_str(fd, req);
    closed = read_to_close(fd, sb);
    close(fd);
    return closed;
}

static int set_main_routes(struct berth_error **err)
{
    void *b[] = { &web }, *ws[] = { &ws_web };
    struct router_route routes[] = {
        { .host = "edges.localhost", .app = "edges", .generation = 1, .backends = b, .n_backends = 1 },
        { .host = "max.localhost", .app = max_name, .generation = 1, .backends = b, .n_backends = 1 },
        { .host = "ws.localhost", .app = "ws", .generation = 1, .backends = ws, .n_backends = 1 },
    };

    return router_set_routes(router, routes, sizeof(routes) / sizeof(routes[0]), err);
}

/* ---------------------------------------------------------------- app names */

static void test_app_names(void)
{
    char long_name[241], secret[ROUTER_PROBE_SECRET_LEN + 1], needle[ROUTER_APP_NAME_MAX + 8];
    void *b[] = { &web };
    struct router_route route = { .host = "long.localhost", .app = long_name, .generation = 1, .backends = b,
                                  .n_backends = 1 };
    struct berth_error *err = NULL;
    struct strbuf sb = STRBUF_INIT;
    int rc;

    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    rc = router_set_routes(router, &route, 1, &err);
    ok(rc == -EINVAL && strstr(berth_error_msg(&err), "240 bytes long"),
       "router_set_routes() refuses a 240-byte app name: %d '%s'", rc, berth_error_msg(&err));
    berth_error_release(&err);
    if (rc == 0 && set_main_routes(&err) < 0)
        berth_error_release(&err);   /* published after all: the rest needs the main routes back */
    rc = router_probe_add(router, long_name, "long.localhost", &web, secret, &err);
    ok(rc == -EINVAL && strstr(berth_error_msg(&err), "240 bytes long"),
       "router_probe_add() refuses a 240-byte app name: %d '%s'", rc, berth_error_msg(&err));
    berth_error_release(&err);
    if (rc == 0)
        router_probe_remove(router, secret);
    /* The refused table was not published: the routes set before still serve. */
    (void)exchange("GET /hello HTTP/1.1\r\nHost: max.localhost\r\nConnection: close\r\n\r\n", &sb);
    ok(strncmp(sb.buf, "HTTP/1.1 200", 12) == 0, "the routes published before still serve");
    (void)snprintf(needle, sizeof(needle), "%s 20", max_name);
    ok(access_lines_have(needle, " heroku[router]: at=info method=GET path=\"/hello\" host=max.localhost "),
       "an app named with %d bytes gets whole access-log lines (its name, the time, heroku[router], the fields)",
       ROUTER_APP_NAME_MAX);
    strbuf_release(&sb);
}

/* ---------------------------------------------------------------- Connection-named headers */

/* The request head /echo sent back: its body after the response head. */
static const char *echoed(const struct strbuf *sb)
{
    const char *body = strstr(sb->buf, "\r\n\r\n");

    return strncmp(sb->buf, "HTTP/1.1 200", 12) == 0 && body ? body + 4 : NULL;
}

static void test_request_connection_names(void)
{
    struct strbuf sb = STRBUF_INIT, req = STRBUF_INIT, name = STRBUF_INIT;
    const char *got;

    strbuf_addstr(&name, "X-");
    for (int i = 0; i < 128; i++)
        strbuf_addch(&name, 'n');
    for (int mhd = 0; mhd < 2; mhd++) {
        const char *side = mhd ? "libmicrohttpd's side" : "the front";
        /* A body sends the request to libmicrohttpd; a GET without one stays on the front. */
        const char *line = mhd ? "POST /echo HTTP/1.1\r\n" : "GET /echo HTTP/1.1\r\n", *body = mhd ? "hi" : "";

        strbuf_reset(&req);
        strbuf_addf(&req, "%sHost: edges.localhost\r\nConnection: close, %s\r\n%s: v\r\nX-Kept: 1\r\n"
                    "Content-Length: %zu\r\n\r\n%s", line, name.buf, name.buf, strlen(body), body);
        (void)exchange(req.buf, &sb);
        got = echoed(&sb);
        ok(got && strstr(got, "X-Kept: 1") && !strstr(got, name.buf),
           "%s: a header whose 130-byte name Connection lists never reaches the app", side);

        strbuf_reset(&req);
        strbuf_addf(&req, "%sHost: edges.localhost\r\nConnection: X-Hop-One\r\nX-Hop-One: 1\r\nX-Hop-Two: 2\r\n"
                    "Connection: close, X-Hop-Two\r\nX-Kept: 1\r\nContent-Length: %zu\r\n\r\n%s",
                    line, strlen(body), body);
        (void)exchange(req.buf, &sb);
        got = echoed(&sb);
        ok(got && strstr(got, "X-Kept: 1") && !strstr(got, "X-Hop-"),
           "%s: the names of two Connection lines are all dropped", side);
    }
    strbuf_release(&sb);
    strbuf_release(&req);
    strbuf_release(&name);
}

static void test_response_connection_names(void)
{
    struct strbuf sb = STRBUF_INIT;
    const char *reqs[] = {
        "GET /conn-named HTTP/1.1\r\nHost: edges.localhost\r\nConnection: close\r\n\r\n",
        "POST /conn-named HTTP/1.1\r\nHost: edges.localhost\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
    };

    for (int mhd = 0; mhd < 2; mhd++) {
        (void)exchange(reqs[mhd], &sb);
        ok(strncmp(sb.buf, "HTTP/1.1 200", 12) == 0 && strstr(sb.buf, "\r\nX-Public: yes\r\n") &&
           !strstr(sb.buf, "X-Internal") && !strstr(sb.buf, "X-Other") && !strstr(sb.buf, "secret"),
           "%s: headers the app's Connection lines name never reach the client",
           mhd ? "libmicrohttpd's side" : "the front");
    }
    strbuf_release(&sb);
}

/* ---------------------------------------------------------------- a websocket whose client went */

/* Established TCP connections from this machine to 127.0.0.1:port (the router's ends of them). */
static int established_to(uint16_t port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[256];
    int n = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned remote_port, state;
        if (sscanf(line, " %*d: %*x:%*x %*x:%x %x", &remote_port, &state) == 2 && remote_port == port &&
            state == 1)
            n++;
    }
    fclose(f);
    return n;
}

/*
 * The window is short in real life (the client goes after the router
 * resumed the request and before MHD wrote the 101), so this executable
 * defines send() and sendmsg() (exported, so libmicrohttpd's calls bind to
 * them): while fail_101 is set, a 101 head written to a client connection
 * of the router fails as if the client had reset it.
 */
static atomic_bool fail_101;
static atomic_int failed_101;

static bool fails_as_reset(int fd, const void *buf, size_t len)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    if (!atomic_load(&fail_101) || len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) < 0 || sin.sin_family != AF_INET ||
        ntohs(sin.sin_port) != router_port_num)
        return false;
    atomic_fetch_add(&failed_101, 1);
    errno = ECONNRESET;
    return true;
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    static ssize_t (*real)(int, const void *, size_t, int);

    if (!real)
        real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    return fails_as_reset(fd, buf, len) ? -1 : real(fd, buf, len, flags);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static ssize_t (*real)(int, const struct msghdr *, int);
    const struct iovec *iov = msg->msg_iovlen ? &msg->msg_iov[0] : NULL;

    if (!real)
        real = (ssize_t (*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
    return iov && fails_as_reset(fd, iov->iov_base, iov->iov_len) ? -1 : real(fd, msg, flags);
}

/*
 * A client gone before the app's 101 went out: MHD never runs the upgrade
 * handler, and the session waiting for it (with the app's socket) is
 * freed when the request ends, which closes the connection to the app.
 */
static void test_ws_client_gone(void)
{
    struct strbuf sb = STRBUF_INIT;
    int left = -1;

    atomic_store(&fail_101, true);
    for (int i = 0; i < 3; i++)
        (void)exchange("GET /ws HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                       &sb);
    atomic_store(&fail_101, false);
    for (int i = 0; i < 30 && (left = established_to(ws_port)) != 0; i++)
        usleep(100000);
    ok(atomic_load(&failed_101) == 3 && left == 0,
       "clients gone before their 101 went out (%d) leave no connection to the app open (%d left)",
       atomic_load(&failed_101), left);
    strbuf_release(&sb);
}

/* ---------------------------------------------------------------- a full agent channel */

/* This process's CPU time (every thread's), in seconds. */
static double cpu_seconds(void)
{
    struct rusage ru;

    (void)getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* An agent slow to read, on a channel that holds a few requests: most wait in its queue. */
static struct fake_backend narrow = { .name = "narrow.1", .mode = FAKE_DIAL, .delay_ms = 400, .sndbuf = 1 };

static void test_channel_quiet(void)
{
    struct router_app_settings st = { .connect_timeout_ms = 300 };
    void *b[] = { &narrow };
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 1, .backend_ops = &fake_backend_ops };
    struct router_route route = { .host = "narrow.localhost", .app = "narrow", .generation = 1, .backends = b,
                                  .n_backends = 1, .settings = &st };
    struct berth_error *err = NULL;
    struct router *r = NULL;
    int fds[20];
    double cpu;

    narrow.port = up_port;
    if (router_start(&cfg, &r, &err) < 0 || router_set_routes(r, &route, 1, &err) < 0) {
        ok(0, "starting a router for the narrow channel: %s", berth_error_msg(&err));
        berth_error_release(&err);
        router_stop(r);
        return;
    }
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        fds[i] = dial_port(router_port(r));
        (void)send_str(fds[i], "GET /hello HTTP/1.1\r\nHost: narrow.localhost\r\n\r\n");
    }
    /* The queued requests time out after 300 ms; the agent drains the channel within 2 s. */
    sleep(2);
    cpu = cpu_seconds();
    sleep(1);
    cpu = cpu_seconds() - cpu;
    ok(cpu < 0.3, "once the queued requests timed out and the agent drained its channel, the loop sleeps: "
       "%.2f s of CPU in a quiet second (asked %d)", cpu, atomic_load(&narrow.asked));
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    router_stop(r);
}

int main(void)
{
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 1, .backend_ops = &fake_backend_ops,
                                 .access_log = access_lines_capture };
    struct berth_error *err = NULL;

    signal(SIGPIPE, SIG_IGN);
    log_setup("test-router-edges", LOG_LEVEL_WARN);
    memset(max_name, 'b', ROUTER_APP_NAME_MAX);
    ok(upstream_start(&up_port) == 0 && upstream_start(&ws_port) == 0, "upstream listening on 127.0.0.1:%u and :%u",
       (unsigned)up_port, (unsigned)ws_port);
    web.port = up_port;
    ws_web.port = ws_port;
    if (router_start(&cfg, &router, &err) < 0 || set_main_routes(&err) < 0) {
        ok(0, "starting the router: %s", berth_error_msg(&err));
        berth_error_release(&err);
        router_stop(router);
        upstream_stop();
        return tap_done();
    }
    router_port_num = router_port(router);

    test_app_names();
    test_request_connection_names();
    test_response_connection_names();
    test_ws_client_gone();
    router_stop(router);
    test_channel_quiet();

    fake_backend_join_all();
    upstream_stop();
    access_lines_release();
    return tap_done();
}
