/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's own front for plain HTTP/1.1 (front.c) and its hand-over
 * to libmicrohttpd: what a client sees must not depend on which of the
 * two served it. Raw sockets, so each case controls how bytes arrive.
 * Checked: a head in pieces; keep-alive over many requests; Connection:
 * close answered and honoured; HEAD keeps the app's Content-Length and
 * sends no body; 204 carries no Content-Length; a chunked answer is passed
 * on chunked; a long head, a body, HTTP/1.0, bare LF line ends and
 * pipelining go to MHD, on a connection's first request or a later one,
 * and are answered in order;
 * an error page keeps the connection open; a client that goes away while
 * its request waits is logged as 499 and the app's backend balances; the
 * app's access log has the front's requests; a loop gives its malloc
 * arena back only after a quiet second, never between the requests of a
 * busy keep-alive client.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/tests/tap.h"
#include "router/router.h"
#include "router/tests/fake-backend.h"
#include "router/tests/harness.h"

static struct router *router;
static uint16_t app_port;
static struct fake_backend app_web = { .name = "web.1", .mode = FAKE_DIAL };

static int dial(void)
{
    struct timeval tv = { .tv_sec = 3 };
    int fd = dial_port(router_port_num);

    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Sends s, then reads until `want` is in what came back (3 s at most). */
static bool ask(int fd, const char *s, struct strbuf *sb, const char *want)
{
    strbuf_reset(sb);
    return send_str(fd, s) == 0 && read_until(fd, sb, want);
}

/* Whether the peer has closed: a read gives 0 within 3 s. */
static bool peer_closed(int fd)
{
    char c;

    return recv(fd, &c, 1, 0) == 0;
}

#define H "Host: front.localhost\r\n"

/* GET /token/TAG on fd, answered with TAG as its body (3 s at most). */
static bool ask_token(int fd, const char *tag, struct strbuf *sb)
{
    char req[128], want[64];

    (void)snprintf(req, sizeof(req), "GET /token/%s HTTP/1.1\r\n" H "\r\n", tag);
    (void)snprintf(want, sizeof(want), "\r\n\r\n%s", tag);
    return ask(fd, req, sb, want);
}

/*
 * The router loops' malloc_trim() calls (loop.c), counted and passed on
 * to glibc's: this definition in the test program is the one the router
 * library, linked in statically, calls.
 */
static atomic_int trims;

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int malloc_trim(size_t pad)
{
    static int (*real)(size_t);

    atomic_fetch_add(&trims, 1);
    if (!real)
        real = (int (*)(size_t))dlsym(RTLD_NEXT, "malloc_trim");
    return real ? real(pad) : 0;
}

static void test_head_in_pieces(void)
{
    static const char *const pieces[] = { "GET /tok", "en/pieces HTTP/1.1\r\nHo", "st: front.loc",
                                          "alhost\r\nConnection: close\r\n", "\r\n" };
    struct strbuf sb = STRBUF_INIT;
    int fd = dial();
    bool sent = fd >= 0;

    for (size_t i = 0; sent && i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        sent = send_str(fd, pieces[i]) == 0;
        usleep(30000);
    }
    ok(sent && read_to_close(fd, &sb) && strncmp(sb.buf, "HTTP/1.1 200", 12) == 0 && strstr(sb.buf, "\r\n\r\npieces"),
       "a head sent in five pieces is answered: %.12s", sb.buf ? sb.buf : "");
    if (fd >= 0)
        close(fd);
    strbuf_release(&sb);
}

static void test_keep_alive(void)
{
    struct strbuf sb = STRBUF_INIT;
    char tag[32];
    int fd = dial(), served = 0;

    for (int i = 0; fd >= 0 && i < 50; i++) {
        (void)snprintf(tag, sizeof(tag), "ka-%d", i);
        if (!ask_token(fd, tag, &sb) || strstr(sb.buf, "Connection: close"))
            break;
        served++;
    }
    ok(served == 50, "50 requests one after another on one connection, each answered on it (%d)", served);
    ok(fd >= 0 && ask(fd, "GET /token/last HTTP/1.1\r\n" H "Connection: close\r\n\r\n", &sb, "\r\n\r\nlast") &&
           strstr(sb.buf, "\r\nConnection: close\r\n") && peer_closed(fd),
       "Connection: close is answered with Connection: close, and the router closes");
    if (fd >= 0)
        close(fd);
    strbuf_release(&sb);
}

static void test_framing(void)
{
    struct strbuf sb = STRBUF_INIT;
    int fd = dial();
    char *body;

    ok(fd >= 0 && ask(fd, "HEAD /token/headtest HTTP/1.1\r\n" H "\r\n", &sb, "\r\n\r\n") &&
           strncmp(sb.buf, "HTTP/1.1 200", 12) == 0 && strcasestr(sb.buf, "\r\nContent-Length: 8\r\n") &&
           strcmp(strstr(sb.buf, "\r\n\r\n"), "\r\n\r\n") == 0,
       "HEAD keeps the app's Content-Length and sends no body");
    /* The same connection goes on after a HEAD: no body was owed. */
    ok(fd >= 0 && ask_token(fd, "after-head", &sb),
       "... and the connection serves the next request");
    ok(fd >= 0 && ask(fd, "GET /chunked HTTP/1.1\r\n" H "\r\n", &sb, "\r\n0\r\n\r\n") &&
           strcasestr(sb.buf, "Transfer-Encoding: chunked") && !strcasestr(sb.buf, "Content-Length"),
       "an answer of unknown length goes on chunked");
    ok(fd >= 0 && ask(fd, "GET /hello HTTP/1.1\r\n" H "\r\n", &sb, "hello") &&
           strcasestr(sb.buf, "\r\nVia: 1.1 berth\r\n") && strcasestr(sb.buf, "\r\nDate: ") &&
           strcasestr(sb.buf, "\r\nContent-Length: 5\r\n"),
       "a whole answer carries Via, Date and its Content-Length");
    if (fd >= 0)
        close(fd);
    body = NULL;
    {
        size_t n = 0;
        int st = request("front.localhost", "/big", NULL, &body, &n);
        ok(st == 200 && body_is_pattern(body, n, BIG_SIZE), "a 5 MB answer streams through whole (%d, %zu bytes)",
           st, n);
    }
    free(body);
    strbuf_release(&sb);
}

static void test_handover(void)
{
    struct strbuf sb = STRBUF_INIT, big = STRBUF_INIT;
    int fd = dial();

    /* One connection: the front, then MHD for a body, and MHD keeps it from then on. */
    ok(fd >= 0 && ask_token(fd, "m1", &sb) &&
           ask(fd, "POST /count HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello", &sb, "\r\n\r\n5") &&
           ask(fd, "GET /token/m3 HTTP/1.1\r\n" H "Connection: close\r\n\r\n", &sb, "\r\n\r\nm3") &&
           peer_closed(fd),
       "a GET, a POST with a body, a GET: all answered on one connection, then closed as asked");
    if (fd >= 0)
        close(fd);

    /* Three header lines of 7000 bytes: each within Heroku's 8192, the head past the front's 16 KiB. */
    strbuf_addstr(&big, "GET /token/long HTTP/1.1\r\n" H);
    for (int i = 0; i < 3; i++) {
        strbuf_addf(&big, "X-Pad-%d: ", i);
        for (int k = 0; k < 7000; k++)
            strbuf_addch(&big, (char)('a' + k % 26));
        strbuf_addstr(&big, "\r\n");
    }
    strbuf_addstr(&big, "Connection: close\r\n\r\n");
    strbuf_reset(&sb);
    fd = dial();
    {
        bool sent = fd >= 0 && send_all(fd, big.buf, big.len) == 0, closed = sent && read_to_close(fd, &sb);
        ok(closed && strncmp(sb.buf, "HTTP/1.1 200", 12) == 0 && strstr(sb.buf, "\r\n\r\nlong"),
           "a 21 KiB head (longer than the front takes) is answered, then the connection closes as asked "
           "(sent %d, closed %d: %.12s)", sent, closed, sb.buf ? sb.buf : "");
        if (sb.buf && !strstr(sb.buf, "\r\n\r\nlong") && strstr(sb.buf, "\r\n\r\n"))
            printf("# the long head's answer ends: %.60s\n", strstr(sb.buf, "\r\n\r\n") + 4);
    }
    if (fd >= 0)
        close(fd);

    fd = dial();
    strbuf_reset(&sb);
    ok(fd >= 0 && send_str(fd, "GET /token/old HTTP/1.0\r\n" H "\r\n") == 0 && read_to_close(fd, &sb) &&
           strstr(sb.buf, "\r\n\r\nold"),
       "HTTP/1.0 is answered, and the connection closes");
    if (fd >= 0)
        close(fd);

    /* Bare LF line ends pass the guard; the front leaves such a head to MHD rather than wait for a CRLF. */
    fd = dial();
    strbuf_reset(&sb);
    ok(fd >= 0 && send_str(fd, "GET /token/lf HTTP/1.1\nHost: front.localhost\nConnection: close\n\n") == 0 &&
           read_to_close(fd, &sb) && strncmp(sb.buf, "HTTP/1.1 200", 12) == 0 && strstr(sb.buf, "\r\n\r\nlf"),
       "a head with bare LF line ends is answered at once: %.12s", sb.buf ? sb.buf : "");
    if (fd >= 0)
        close(fd);

    fd = dial();
    ok(fd >= 0 && ask_token(fd, "p0", &sb) &&
           ask(fd, "GET /token/p1 HTTP/1.1\r\n" H "\r\nGET /token/p2 HTTP/1.1\r\n" H "Connection: close\r\n\r\n",
               &sb, "\r\n\r\np2") &&
           strstr(sb.buf, "\r\n\r\np1") && strstr(sb.buf, "\r\n\r\np1") < strstr(sb.buf, "\r\n\r\np2"),
       "two requests pipelined after a first one are answered in order");
    if (fd >= 0)
        close(fd);
    strbuf_release(&big);
    strbuf_release(&sb);
}

static void test_errors_and_log(void)
{
    struct strbuf sb = STRBUF_INIT;
    int fd = dial();

    ok(fd >= 0 && ask(fd, "GET /x HTTP/1.1\r\nHost: nobody.localhost\r\n\r\n", &sb, "</html>\n") &&
           strncmp(sb.buf, "HTTP/1.1 404", 12) == 0 && !strstr(sb.buf, "Connection: close") &&
           ask_token(fd, "after-404", &sb),
       "an unknown host gets its 404 page, and the connection goes on");
    ok(fd >= 0 && ask(fd, "HEAD /x HTTP/1.1\r\nHost: nobody.localhost\r\n\r\n", &sb, "\r\n\r\n") &&
           strcmp(strstr(sb.buf, "\r\n\r\n"), "\r\n\r\n") == 0 &&
           ask_token(fd, "after-head-404", &sb),
       "... a HEAD's error page has no body");
    if (fd >= 0)
        close(fd);
    ok(access_lines_have("path=\"/token/after-404\"", "status=200"), "the access log has the front's requests");

    /* A client that gives up on a slow answer. */
    fd = dial();
    if (fd >= 0) {
        (void)send_str(fd, "GET /slow HTTP/1.1\r\n" H "\r\n");
        usleep(200000);
        close(fd);
    }
    ok(access_lines_have("path=\"/slow\"", "status=499"), "a client gone before its answer is logged as 499");
    strbuf_release(&sb);
}

/*
 * Between two requests of a keep-alive client a loop has nothing active,
 * and once trimmed there (an madvise, a TLB shootdown, page faults to
 * refill the arena, every request). It trims only after a second with no
 * event at all.
 */
static void test_trim_waits_for_quiet(void)
{
    struct strbuf sb = STRBUF_INIT;
    char tag[32];
    int fd = dial(), served = 0, during, after;
    uint64_t until;

    usleep(1600 * 1000);   /* what the tests before left to trim is trimmed */
    during = atomic_load(&trims);
    until = mono_ms() + 1500;
    for (int i = 0; fd >= 0 && mono_ms() < until; i++) {
        (void)snprintf(tag, sizeof(tag), "busy-%d", i);
        if (!ask_token(fd, tag, &sb))
            break;
        served++;
        usleep(2000);
    }
    during = atomic_load(&trims) - during;
    ok(served > 50 && during == 0, "no malloc_trim() during 1.5 s of keep-alive requests (%d trims, %d requests)",
       during, served);
    after = atomic_load(&trims);
    usleep(2200 * 1000);
    after = atomic_load(&trims) - after;
    ok(after >= 1, "a quiet second after them, the loop trims its arena (%d trims)", after);
    if (fd >= 0)
        close(fd);
    strbuf_release(&sb);
}

int main(void)
{
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 2, .backend_ops = &fake_backend_ops,
                                 .access_log = access_lines_capture };
    void *backends[] = { &app_web };
    struct router_route route = { .host = "front.localhost", .app = "front-app", .generation = 1,
                                  .backends = backends, .n_backends = 1 };
    struct berth_error *err = NULL;
    int rc;

    if (!harness_begin(&rc))
        return rc;
    log_setup("test-router-front", LOG_LEVEL_INFO);
    ok(upstream_start(&app_port) == 0, "upstream listening on %u", (unsigned)app_port);
    app_web.port = app_port;
    if (router_start(&cfg, &router, &err) < 0 || router_set_routes(router, &route, 1, &err) < 0) {
        ok(0, "router: %s", berth_error_msg(&err));
        berth_error_release(&err);
        return tap_done();
    }
    router_port_num = router_port(router);

    test_head_in_pieces();
    test_keep_alive();
    test_framing();
    test_handover();
    test_errors_and_log();
    test_trim_waits_for_quiet();

    router_stop(router);
    fake_backend_join_all();
    upstream_stop();
    ok(atomic_load(&app_web.refs) == 0, "the app's backend is released at stop");
    access_lines_release();
    rmdir(tmpdir);
    return tap_done();
}
