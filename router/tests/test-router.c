/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Integration test of the router against a real HTTP client: the in-process
 * upstream server of harness.h (keep-alive, chunked, HTTP/1.0
 * close-delimited, echo, 5 MB body, slow endpoints) on 127.0.0.1:0, the
 * router on port 0 with fake backends (fake-backend.h) that dial it for app
 * "alpha-app" and a closed port for "gamma-app" ("beta-app" has none), and
 * the `curl` binary (and `wrk` when installed) as clients.
 * test-router-hardening.c checks the router's defences.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/tests/tap.h"
#include "router/router.h"
#include "router/tests/fake-backend.h"
#include "router/tests/harness.h"

static uint16_t up_port, dead_port;
static int dead_fd = -1;

/*
 * The backends: alpha's instance dials the upstream server, gamma's dials a
 * closed port (refused: H21), beta has none (H14).
 */
static struct fake_backend alpha_web = { .name = "web.7", .mode = FAKE_DIAL };
static struct fake_backend gamma_web = { .name = "web.1", .mode = FAKE_DIAL };

/* ---------------------------------------------------------------- tests */

static struct router *router;
static atomic_int swap_ok, swap_total;
static atomic_bool swapping;

static void *swap_client(void *arg)
{
    (void)arg;
    while (atomic_load(&swapping)) {
        char *body = NULL;
        int st = request("a.localhost", "/hello", NULL, &body, NULL);
        atomic_fetch_add(&swap_total, 1);
        if (st == 200 && body && strcmp(body, "hello") == 0)
            atomic_fetch_add(&swap_ok, 1);
        free(body);
    }
    return NULL;
}

static int slow_status;
static char *slow_body;

static void *slow_client(void *arg)
{
    (void)arg;
    slow_status = request("a.localhost", "/slow", NULL, &slow_body, NULL);
    return NULL;
}

static void set_routes(uint64_t gen)
{
    void *alpha[] = { &alpha_web }, *gamma[] = { &gamma_web };
    struct router_route routes[] = {
        { .host = "a.localhost", .app = "alpha-app", .generation = gen, .backends = alpha, .n_backends = 1 },
        { .host = "b.localhost", .app = "beta-app", .generation = 1 },
        { .host = "c.localhost", .app = "gamma-app", .generation = 1, .backends = gamma, .n_backends = 1 },
    };
    struct berth_error *err = NULL;
    int ret = router_set_routes(router, routes, 3, &err);

    if (ret < 0) {
        printf("# set_routes: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }
}

static void test_basic(void)
{
    char *body = NULL, *out;
    size_t len;
    int st;

    st = request("a.localhost", "/hello", NULL, &body, NULL);
    ok(st == 200 && body && strcmp(body, "hello") == 0, "GET a.localhost/hello -> 200 hello (%d)", st);
    free(body);

    st = request("A.LocalHost:8080", "/hello", NULL, &body, NULL);
    ok(st == 200 && body && strcmp(body, "hello") == 0, "Host with port suffix and capitals routes (%d)", st);
    free(body);

    st = request("a.localhost", "/echo/path?x=1&y=two%20three", "-H 'X-Forwarded-For: 10.1.2.3' -H 'Keep-Alive: 5'",
                 &body, NULL);
    ok(st == 200 && body && strstr(body, "GET /echo/path?x=1&y=two%20three HTTP/1.1\r\n"),
       "raw URI with query string reaches upstream");
    ok(body && strstr(body, "\r\nX-Forwarded-For: 10.1.2.3, 127.0.0.1\r\n"), "X-Forwarded-For appended");
    ok(body && strstr(body, "\r\nX-Forwarded-Proto: http\r\n"), "X-Forwarded-Proto: http");
    {
        char want[64];
        (void)snprintf(want, sizeof(want), "\r\nX-Forwarded-Port: %u\r\n", (unsigned)router_port_num);
        ok(body && strstr(body, want), "X-Forwarded-Port is the listener port");
    }
    ok(body && strstr(body, "\r\nX-Request-Start: 1"), "X-Request-Start in ms");
    ok(body && strstr(body, "\r\nVia: 1.1 berth\r\n"), "Via added");
    free(body);
    body = NULL;
    /* The app's own Via lines, in order, then ours: the front's path (no body) and MHD's (a body). */
    for (int i = 0; i < 2; i++) {
        char *head = NULL;

        st = request("a.localhost", "/via", i ? "-i -d x" : "-i", &head, NULL);
        ok(st == 200 && head && strcasestr(head, "\r\nVia: 1.0 cache-a, 1.1 cache-b, 1.1 berth\r\n") &&
               count_ci(head, "\nVia:") == 1,
           "%s: an app's two Via lines reach the client as one, in order, with the router's last",
           i ? "a request with a body" : "a request without one");
        free(head);
    }
    st = request("a.localhost", "/echo/path?x=1&y=two%20three", "-H 'X-Forwarded-For: 10.1.2.3' -H 'Keep-Alive: 5'",
                 &body, NULL);
    ok(body && !strcasestr(body, "\r\nKeep-Alive:"), "hop-by-hop Keep-Alive not forwarded");
    {
        const char *rid = body ? strstr(body, "\r\nX-Request-Id: ") : NULL;
        ok(rid && rid[16 + 36] == '\r' && rid[16 + 14] == '4', "X-Request-Id generated as a UUID v4");
    }
    ok(body && strstr(body, "\r\nHost: a.localhost\r\n"), "Host header forwarded unchanged");
    free(body);

    st = request("a.localhost", "/echo", "-H 'X-Request-Id: client-supplied-id-0123456789'", &body, NULL);
    ok(st == 200 && body && strstr(body, "\r\nX-Request-Id: client-supplied-id-0123456789\r\n"),
       "valid client X-Request-Id kept");
    free(body);
    st = request("a.localhost", "/echo", "-H 'X-Request-Id: short'", &body, NULL);
    ok(st == 200 && body && !strstr(body, "X-Request-Id: short") && strstr(body, "\r\nX-Request-Id: "),
       "invalid client X-Request-Id replaced");
    free(body);

    out = run("curl -s -I -H 'Host: a.localhost' 'http://127.0.0.1:%u/hello'", (unsigned)router_port_num);
    ok(out && strstr(out, " 200") && strcasestr(out, "Content-Length: 5"), "HEAD keeps Content-Length");
    free(out);

    st = request("a.localhost", "/chunked", NULL, &body, NULL);
    ok(st == 200 && body && strcmp(body, "hello chunked world") == 0, "chunked upstream response decoded");
    free(body);

    st = request("a.localhost", "/http10", NULL, &body, NULL);
    ok(st == 200 && body && strcmp(body, "close-delimited body") == 0, "HTTP/1.0 close-delimited response");
    free(body);
    {
        int whole = 0;

        /* Ended by the app's close, not by curl giving up (its body would be all there either way). */
        for (int i = 0; i < 20; i++) {
            struct timespec t0;

            clock_gettime(CLOCK_MONOTONIC, &t0);
            st = request("a.localhost", "/http10-fin", "--max-time 2", &body, NULL);
            whole += st == 200 && body && strcmp(body, "close-delimited body") == 0 && elapsed(&t0) < 1.5;
            free(body);
        }
        ok(whole == 20, "HTTP/1.0 close-delimited response, its end in the body's segment, ends (%d of 20)",
           whole);
    }

    st = request("a.localhost", "/big", NULL, &body, &len);
    ok(st == 200 && body && body_is_pattern(body, len, BIG_SIZE), "5 MB body intact (%zu bytes)", len);
    free(body);

    st = request("a.localhost", "/bigchunked", NULL, &body, &len);
    ok(st == 200 && body && body_is_pattern(body, len, BIGCHUNKED_SIZE), "3 MB chunked body intact (%zu bytes)", len);
    free(body);

    /* A slow client: curl's rate limit makes the router pause reading upstream. */
    st = request("a.localhost", "/big", "--limit-rate 8M", &body, &len);
    ok(st == 200 && body && body_is_pattern(body, len, BIG_SIZE), "5 MB body to a rate-limited client intact");
    free(body);

    /* The app's end is in while the router has stopped reading: a resumed read must still find it. */
    st = request("a.localhost", "/bighttp10", "--limit-rate 8M", &body, &len);
    ok(st == 200 && body && body_is_pattern(body, len, BIG_SIZE),
       "5 MB close-delimited body to a rate-limited client intact (%zu bytes)", len);
    free(body);
}

static void test_bodies(void)
{
    char path[256], *body = NULL, extra[512];
    FILE *f;
    size_t len = 300000;
    char *data = malloc(len);
    int st;

    for (size_t i = 0; i < len; i++)
        data[i] = (char)pattern(i * 3);
    (void)snprintf(path, sizeof(path), "%s/upload", tmpdir);
    f = fopen(path, "w");
    fwrite(data, 1, len, f);
    fclose(f);

    (void)snprintf(extra, sizeof(extra), "--data-binary '@%s'", path);
    st = request("a.localhost", "/echo", extra, &body, NULL);
    {
        const char *p = body ? strstr(body, "\r\n\r\n") : NULL;
        ok(st == 200 && p && strstr(body, "POST /echo HTTP/1.1\r\n") && strstr(body, "\r\nContent-Length: 300000\r\n") &&
           memcmp(p + 4, data, len) == 0, "POST body arrives intact (%d)", st);
        if (!(st == 200 && p && memcmp(p + 4, data, len) == 0))
            printf("# %.*s\n", p ? (int)(p - body) : 200, body ? body : "");
    }
    free(body);
    {
        /* Above STREAM_BODY_MIN the body is streamed, not collected: same bytes, same length. */
        size_t big = 3u * 1024 * 1024 + 7;
        char *bdata = malloc(big), bpath[256], bextra[512], want[64];
        FILE *bf;

        for (size_t i = 0; i < big; i++)
            bdata[i] = (char)pattern(i * 7 + 1);
        (void)snprintf(bpath, sizeof(bpath), "%s/upload-big", tmpdir);
        bf = fopen(bpath, "w");
        fwrite(bdata, 1, big, bf);
        fclose(bf);
        (void)snprintf(bextra, sizeof(bextra), "--data-binary '@%s'", bpath);
        (void)snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", big);
        st = request("a.localhost", "/echo", bextra, &body, NULL);
        {
            const char *p = body ? strstr(body, "\r\n\r\n") : NULL;
            ok(st == 200 && p && strstr(body, want) && memcmp(p + 4, bdata, big) == 0,
               "a 3 MiB POST body is streamed intact (%d)", st);
        }
        free(body);
        free(bdata);
        unlink(bpath);
    }

    (void)snprintf(extra, sizeof(extra), "-H 'Transfer-Encoding: chunked' --data-binary '@%s'", path);
    st = request("a.localhost", "/echo", extra, &body, NULL);
    {
        const char *p = body ? strstr(body, "\r\n\r\n") : NULL;
        ok(st == 200 && p && strstr(body, "\r\nTransfer-Encoding: chunked\r\n") && !strstr(body, "Content-Length") &&
           memcmp(p + 4, data, len) == 0, "a chunked upload goes to the app chunked, and intact (%d)", st);
    }
    free(body);
    free(data);
    unlink(path);
}

/*
 * Heroku's limits (HEROKU.md): request line and each header line up to 8192
 * bytes. Those must pass whole; a head far beyond what the per-connection
 * memory holds gets a 4xx, not a hang or a crash.
 */
static void test_header_limits(void)
{
    char *body = NULL, *extra, *path, *out;
    char big[8001], huge[40001];
    int st;

    memset(big, 'c', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(huge, 'h', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    path = xasprintf("/echo?q=%.7900s", big);
    extra = xasprintf("-H 'Cookie: k=%s'", big);
    st = request("a.localhost", path, extra, &body, NULL);
    ok(st == 200 && body && strstr(body, path) && strstr(body, big),
       "an 8 KB request line and an 8 KB header line pass whole (%d)", st);
    free(body);
    free(extra);
    free(path);
    out = run("curl -s -o /dev/null -w '%%{http_code}' -H 'Host: a.localhost' -H 'X-Huge: %s' "
              "'http://127.0.0.1:%u/hello'", huge, (unsigned)router_port_num);
    ok(out && (strcmp(out, "431") == 0 || strcmp(out, "413") == 0 || strcmp(out, "414") == 0),
       "a 40 KB header gets a 4xx (%s)", out ? out : "");
    free(out);
}

static void test_errors(void)
{
    char *body = NULL;
    int st;

    st = request("nope.localhost", "/", NULL, &body, NULL);
    ok(st == 404 && body && !strstr(body, "nope") && !strstr(body, "a.localhost") && !strstr(body, "-app"),
       "unknown host -> 404 naming no app (%d)", st);
    free(body);
    st = request("<script>alert(1)</script>", "/", NULL, &body, NULL);
    ok(st == 400 && body && !strstr(body, "<script>"), "hostile Host refused (400 H26), not echoed (%d)", st);
    free(body);
    {
        char *out = run("curl -s -o /dev/null -w '%%{http_code}' -H 'Host:' 'http://127.0.0.1:%u/'",
                        (unsigned)router_port_num);
        ok(out && (strcmp(out, "404") == 0 || strcmp(out, "400") == 0), "missing Host -> 4xx (%s)", out ? out : "");
        free(out);
    }
    st = request("a.localhost", "/hello", "-H 'Expect: something-else'", &body, NULL);
    ok(st == 417 && body && strstr(body, "100-continue"), "Expect other than 100-continue -> 417 H26 (%d)", st);
    free(body);
    st = request("a.localhost", "/echo", "-H 'Expect: 100-continue' --data-binary 'payload'", &body, NULL);
    ok(st == 200 && body && strstr(body, "\r\n\r\npayload") && !strstr(body, "Expect:"),
       "Expect: 100-continue is met by the router and not forwarded (%d)", st);
    free(body);
    st = request("a.localhost", "/malformed", NULL, &body, NULL);
    ok(st == 502 && body && strstr(body, "malformed"), "malformed upstream response -> 502 H17 (%d)", st);
    free(body);
    st = request("a.localhost", "/nothing", NULL, &body, NULL);
    ok(st == 503, "upstream closes without a response -> 503 H13 (%d)", st);
    free(body);
    {
        int good = 0;
        for (int i = 0; i < 6; i++) {
            st = request("a.localhost", i % 2 ? "/hello" : "/bye", NULL, &body, NULL);
            good += st == 200;
            free(body);
        }
        ok(good == 6, "stale pooled connections are retried on a fresh one (%d/6)", good);
    }
    {
        /*
         * A pooled connection the app takes a request on, then drops without
         * a byte. Each pair goes over one client connection (curl --next), so
         * one loop serves both and takes the connection /then-drop left.
         */
        static const char pair[] = "curl -s -o /dev/null -w '%%{http_code} ' -H 'Host: a.localhost' "
                                   "'http://127.0.0.1:%u/then-drop' --next -s -o /dev/null -w '%%{http_code}' "
                                   "-H 'Host: a.localhost' %s 'http://127.0.0.1:%u/%s'";
        char *get = run(pair, (unsigned)router_port_num, "", (unsigned)router_port_num, "hello");
        char *post = run(pair, (unsigned)router_port_num, "--data-binary once", (unsigned)router_port_num, "echo");

        ok(get && strcmp(get, "200 200") == 0,
           "a GET whose pooled connection dies before a byte is tried again, fresh (%s)", get ? get : "");
        ok(post && strcmp(post, "200 503") == 0,
           "a POST is not: it gets 503 H13, since the app may have acted on it (%s)", post ? post : "");
        free(get);
        free(post);
    }
    {
        char path[256], extra[512];
        FILE *f;
        (void)snprintf(path, sizeof(path), "%s/huge", tmpdir);
        f = fopen(path, "w");
        if (f) {
            if (ftruncate(fileno(f), 17 * 1024 * 1024) < 0)
                printf("# ftruncate failed\n");
            fclose(f);
        }
        (void)snprintf(extra, sizeof(extra), "--data-binary '@%s'", path);
        st = request("a.localhost", "/count-slowly", extra, &body, NULL);
        ok(st == 200 && body && strcmp(body, "17825792") == 0,
           "17 MiB upload with a Content-Length streams to an app that reads slowly (%d, %s)", st,
           body ? body : "");
        free(body);
        st = request("a.localhost", "/early", extra, &body, NULL);
        ok(st == 413 && body && strcmp(body, "early") == 0,
           "an app that answers before reading the upload is heard (%d)", st);
        free(body);
        (void)snprintf(extra, sizeof(extra), "-H 'Transfer-Encoding: chunked' --data-binary '@%s'", path);
        st = request("a.localhost", "/count", extra, &body, NULL);
        ok(st == 200 && body && strcmp(body, "17825792") == 0,
           "17 MiB chunked upload streams to the app, chunked (%d, %s)", st, body ? body : "");
        free(body);
        unlink(path);
    }

    st = request("b.localhost", "/", NULL, &body, NULL);
    ok(st == 503 && body && strstr(body, "No web processes"), "no web processes -> 503 H14 (%d)", st);
    free(body);
    st = request("c.localhost", "/", NULL, &body, NULL);
    ok(st == 503 && body && strstr(body, "Application error"), "connect refused -> 503 H10 (%d)", st);
    free(body);
}

static void test_keepalive_and_pool(void)
{
    struct strbuf log = STRBUF_INIT;
    char *out, *path;
    int before, named = 0;

    out = run("curl -s -o /dev/null -o /dev/null -w '%%{num_connects}\\n' -H 'Host: a.localhost' "
              "'http://127.0.0.1:%u/hello' 'http://127.0.0.1:%u/echo'",
              (unsigned)router_port_num, (unsigned)router_port_num);
    ok(out && strcmp(out, "1\n0\n") == 0, "client keep-alive: second URL reuses the connection");
    free(out);

    /* The access log goes to stderr: catch it in a file for these requests. */
    path = xasprintf("%s/access.log", tmpdir);
    (void)log_capture_begin(path);
    before = atomic_load(&alpha_web.dials);
    for (int i = 0; i < 10; i++) {
        char *body = NULL, tok[32];
        (void)snprintf(tok, sizeof(tok), "/token/pool-%d", i);
        (void)request("a.localhost", tok, NULL, &body, NULL);
        free(body);
    }
    /* The loops write their lines in batches (every 100 ms at most, on a turn): wait for all ten. */
    for (int tries = 0; tries < 100 && named < 10; tries++) {
        usleep(20000);
        named = 0;
        strbuf_reset(&log);
        (void)read_file(path, &log, 1 << 20, NULL);
        for (const char *p = log.buf; (p = strstr(p, " path=\"/token/pool-")) != NULL; p++) {
            const char *eol = strchr(p, '\n'), *dyno = strstr(p, " dyno=web.7 ");
            named += dyno && (!eol || dyno < eol);
        }
    }
    log_capture_end();
    ok(atomic_load(&alpha_web.dials) - before <= 1, "upstream connections pooled (%d new for 10 requests)",
       atomic_load(&alpha_web.dials) - before);
    ok(named == 10, "access log names the instance (dyno=web.7) for fresh and pooled connections (%d/10)",
       named);
    strbuf_release(&log);
    unlink(path);
    free(path);
}

static void test_swap_and_slow(void)
{
    pthread_t th[2], slow;
    struct timespec t0;
    char *body = NULL;
    int st, before;

    atomic_store(&swapping, true);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, swap_client, NULL);
    for (uint64_t gen = 2; gen < 80; gen++) {
        set_routes(gen);
        usleep(10000);
    }
    atomic_store(&swapping, false);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ok(atomic_load(&swap_total) > 0 && atomic_load(&swap_ok) == atomic_load(&swap_total),
       "route swaps while requests run: %d/%d ok", atomic_load(&swap_ok), atomic_load(&swap_total));

    /* After a generation change, the old pool's connections are not reused. */
    set_routes(100);
    before = atomic_load(&alpha_web.dials);
    st = request("a.localhost", "/hello", NULL, &body, NULL);
    ok(st == 200 && atomic_load(&alpha_web.dials) == before + 1, "new generation dials a fresh connection");
    free(body);

    pthread_create(&slow, NULL, slow_client, NULL);
    usleep(100000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = request("a.localhost", "/hello", NULL, &body, NULL);
    ok(st == 200 && elapsed(&t0) < 0.8, "a fast request is not held up by a slow one (%.3fs)", elapsed(&t0));
    free(body);
    pthread_join(slow, NULL);
    ok(slow_status == 200 && slow_body && strcmp(slow_body, "slow") == 0, "slow endpoint answers");
    free(slow_body);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    st = request("a.localhost", "/veryslow", NULL, &body, NULL);
    ok(st == 503 && body && strstr(body, "did not respond in time") && elapsed(&t0) < 2.8,
       "no response head in time -> 503 H12 (%d after %.2fs)", st, elapsed(&t0));
    free(body);
}

static void test_websocket(void)
{
    struct strbuf sb = STRBUF_INIT;
    int fd = dial_port(router_port_num);
    bool head, greet, echo;

    if (fd < 0) {
        ok(0, "websocket: connect to router");
        return;
    }
    (void)send_str(fd, "GET /ws HTTP/1.1\r\nHost: a.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    head = read_until(fd, &sb, "\r\n\r\n");
    ok(head && strncmp(sb.buf, "HTTP/1.1 101", 12) == 0 && strcasestr(sb.buf, "\r\nUpgrade: websocket\r\n") &&
       strstr(sb.buf, "\r\nSec-WebSocket-Accept: test-accept\r\n"), "websocket upgrade answered 101 with the app's headers");
    greet = read_until(fd, &sb, "hello-from-app");
    ok(greet, "bytes the app sent right after 101 reach the client");
    strbuf_reset(&sb);
    (void)send_str(fd, "ping-through-tunnel");
    echo = read_until(fd, &sb, "ping-through-tunnel");
    ok(echo, "client bytes reach the app and its echo comes back");
    strbuf_reset(&sb);
    (void)send_str(fd, "second-message");
    ok(read_until(fd, &sb, "second-message"), "tunnel carries a second exchange");
    close(fd);
    strbuf_release(&sb);
}

/* router_stop() with a request waiting on the app and an open tunnel: returns promptly, both get closed. */
static void test_stop_in_flight(void)
{
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .backend_ops = &fake_backend_ops };
    void *alpha[] = { &alpha_web };
    struct router_route route = { .host = "a.localhost", .app = "alpha-app", .generation = 1,
                                  .backends = alpha, .n_backends = 1 };
    struct berth_error *err = NULL;
    struct router *r2 = NULL;
    struct strbuf sb = STRBUF_INIT;
    struct timespec t0;
    int slow, ws;
    char buf[4096];
    ssize_t n;

    if (router_start(&cfg, &r2, &err) < 0 || router_set_routes(r2, &route, 1, &err) < 0) {
        ok(0, "second router: %s", berth_error_msg(&err));
        berth_error_release(&err);
        router_stop(r2);
        return;
    }
    slow = dial_port(router_port(r2));
    ws = dial_port(router_port(r2));
    (void)send_str(slow, "GET /slow HTTP/1.1\r\nHost: a.localhost\r\n\r\n");
    (void)send_str(ws, "GET /ws HTTP/1.1\r\nHost: a.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    ok(read_until(ws, &sb, "hello-from-app"), "second router: tunnel open");
    usleep(100000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    router_stop(r2);
    ok(elapsed(&t0) < 2.0, "router_stop with a request in flight and an open tunnel returns (%.2fs)", elapsed(&t0));
    strbuf_reset(&sb);
    while ((n = recv(slow, buf, sizeof(buf), 0)) > 0)
        strbuf_add(&sb, buf, (size_t)n);
    ok(n == 0 && (sb.len == 0 || strncmp(sb.buf, "HTTP/1.1 503", 12) == 0),
       "the waiting request got a 503 or a close (%.12s)", sb.buf);
    while ((n = recv(ws, buf, sizeof(buf), 0)) > 0)
        ;
    ok(n == 0, "the tunnel was closed");
    close(slow);
    close(ws);
    strbuf_release(&sb);
}

static void test_wrk(void)
{
    char *out;
    const char *rps;

    out = run("command -v wrk");
    if (!out || !out[0]) {
        free(out);
        if (must_work())
            ok(0, "wrk is required when BERTH_MUST_WORK is set");
        else
            skip("wrk not installed");
        return;
    }
    free(out);
    log_setup("test-router", LOG_LEVEL_WARN);
    out = run("wrk -t2 -c32 -d3s -H 'Host: a.localhost' 'http://127.0.0.1:%u/hello' 2>&1", (unsigned)router_port_num);
    log_setup("test-router", LOG_LEVEL_INFO);
    rps = out ? strstr(out, "Requests/sec:") : NULL;
    if (rps) {
        printf("# wrk -t2 -c32 -d3s /hello: %.*s\n", (int)strcspn(rps, "\n"), rps);
    }
    ok(rps && !strstr(out, "Socket errors") && !strstr(out, "Non-2xx"),
       "wrk: no socket errors, no non-2xx");
    if (out && (!rps || strstr(out, "Socket errors") || strstr(out, "Non-2xx")))
        printf("# %s\n", out);
    free(out);
}

int main(void)
{
    /* A short H12 window so the timeout case runs in seconds; /slow (1 s) stays inside it. */
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 2, .backend_ops = &fake_backend_ops,
                                 .defaults = { .head_timeout_ms = 1800 } };
    struct berth_error *err = NULL;
    int rc;

    if (!harness_begin(&rc))
        return rc;
    log_setup("test-router", LOG_LEVEL_INFO);

    ok(upstream_start(&up_port) == 0, "upstream listening on 127.0.0.1:%u", (unsigned)up_port);
    /* Kept open to the end: nobody else can take the port meanwhile. */
    dead_fd = refusing_local(&dead_port);
    alpha_web.port = up_port;
    gamma_web.port = dead_port;

    if (router_start(&cfg, &router, &err) < 0) {
        ok(0, "router_start: %s", berth_error_msg(&err));
        berth_error_release(&err);
        return tap_done();
    }
    router_port_num = router_port(router);
    ok(router_port_num != 0, "router listening on port %u", (unsigned)router_port_num);
    set_routes(1);

    test_basic();
    test_bodies();
    test_errors();
    test_header_limits();
    test_keepalive_and_pool();
    test_swap_and_slow();
    test_websocket();
    test_stop_in_flight();
    test_wrk();

    {
        char *body = NULL;
        int st;
        upstream_stop();
        st = request("a.localhost", "/hello", NULL, &body, NULL);
        ok(st == 503, "upstream down -> 503 (%d)", st);
        free(body);
    }

    router_stop(router);
    rmdir(tmpdir);
    return tap_done();
}
