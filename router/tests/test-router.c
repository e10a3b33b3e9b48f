/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Integration test of the router against a real HTTP client: an in-process
 * upstream server (keep-alive, chunked, HTTP/1.0 close-delimited, echo,
 * 5 MB body, slow endpoints) on 127.0.0.1:0, the router on port 0 with a
 * connect callback that dials it for app "alpha-app", answers -ENOENT for
 * "beta-app" and dials a closed port for "gamma-app", and the `curl` binary
 * (and `wrk` when installed) as clients.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/tests/tap.h"
#include "router/router.h"

#define BIG_SIZE (5 * 1024 * 1024)
#define BIGCHUNKED_SIZE (3 * 1024 * 1024)
#define MAX_CONNS 1024

/* ---------------------------------------------------------------- upstream server */

static int up_listen = -1;
static uint16_t up_port, dead_port, router_port_num;
static pthread_t up_accept_thread;
static pthread_mutex_t up_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t up_threads[MAX_CONNS];
static int up_fds[MAX_CONNS];
static int up_nconns;
static atomic_int connects;
static atomic_bool up_stopping;

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 7 + (i >> 11)) % 251);
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_str(int fd, const char *s)
{
    return send_all(fd, s, strlen(s));
}

static int send_pattern(int fd, size_t total, size_t piece, bool chunked)
{
    static __thread char buf[65536];
    char line[32];

    for (size_t off = 0; off < total; off += piece) {
        size_t n = total - off < piece ? total - off : piece;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)pattern(off + i);
        if (chunked) {
            (void)snprintf(line, sizeof(line), "%zx\r\n", n);
            if (send_str(fd, line) < 0)
                return -1;
        }
        if (send_all(fd, buf, n) < 0 || (chunked && send_str(fd, "\r\n") < 0))
            return -1;
    }
    return chunked ? send_str(fd, "0\r\n\r\n") : 0;
}

/* Serves one connection until the client closes it; returns when done. */
static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct strbuf in = STRBUF_INIT;
    char buf[65536];

    for (;;) {
        char *end, method[16] = "", path[1024] = "";
        size_t head_len, clen = 0;
        const char *cl;
        struct strbuf resp = STRBUF_INIT;
        bool close_after = false;

        while ((end = strstr(in.buf, "\r\n\r\n")) == NULL) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                goto out;
            strbuf_add(&in, buf, (size_t)n);
        }
        head_len = (size_t)(end - in.buf) + 4;
        (void)sscanf(in.buf, "%15s %1023s", method, path);
        cl = strcasestr(in.buf, "\r\nContent-Length:");
        if (cl && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        if (strcmp(path, "/early") == 0) {
            /* Answers before reading the body, as an app refusing an upload does, then closes. */
            (void)send_str(fd, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly");
            goto out;
        }
        if (strcmp(path, "/count-slowly") == 0) {
            /* Reads the body in small sips, so the router must hold the client back. */
            size_t got = in.len - head_len;
            char msg[64];

            while (got < clen) {
                ssize_t n = recv(fd, buf, 16384, 0);
                if (n <= 0)
                    goto out;
                got += (size_t)n;
                usleep(2000);
            }
            (void)snprintf(msg, sizeof(msg), "%zu", got);
            strbuf_addf(&resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(msg), msg);
            (void)send_all(fd, resp.buf, resp.len);
            strbuf_release(&resp);
            strbuf_reset(&in);
            continue;
        }
        while (in.len < head_len + clen) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                goto out;
            strbuf_add(&in, buf, (size_t)n);
        }

        {
            const char *te = strcasestr(in.buf, "\r\nTransfer-Encoding:");
            if (te && te < end) {
                /* The router must forward bodies de-chunked. */
                (void)send_str(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                goto out;
            }
        }

        if (strcmp(path, "/ws") == 0 && strcasestr(in.buf, "\r\nUpgrade: websocket\r\n")) {
            /* Switch protocols, then echo raw bytes until the client closes. */
            if (send_str(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: test-accept\r\n\r\nhello-from-app") == 0) {
                ssize_t n;
                while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
                    if (send_all(fd, buf, (size_t)n) < 0)
                        break;
            }
            break;
        } else if (strcmp(path, "/hello") == 0) {
            strbuf_addstr(&resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
            if (strcmp(method, "HEAD") != 0)
                strbuf_addstr(&resp, "hello");
        } else if (strncmp(path, "/echo", 5) == 0) {
            strbuf_addf(&resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                        head_len + clen);
            strbuf_add(&resp, in.buf, head_len + clen);
        } else if (strcmp(path, "/big") == 0) {
            strbuf_addf(&resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_SIZE);
            if (send_all(fd, resp.buf, resp.len) < 0 || send_pattern(fd, BIG_SIZE, 65536, false) < 0)
                close_after = true;
            strbuf_reset(&resp);
        } else if (strcmp(path, "/bigchunked") == 0) {
            if (send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") < 0 ||
                send_pattern(fd, BIGCHUNKED_SIZE, 10000, true) < 0)
                close_after = true;
        } else if (strcmp(path, "/chunked") == 0) {
            if (send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
                             "6\r\nhello \r\n") == 0) {
                usleep(50000);
                (void)send_str(fd, "8;ext=1\r\nchunked \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n");
            }
        } else if (strcmp(path, "/http10") == 0) {
            /* Python http.server style: HTTP/1.0, no Content-Length, the close ends the body. */
            (void)send_str(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited body");
            close_after = true;
        } else if (strcmp(path, "/malformed") == 0) {
            (void)send_str(fd, "HTTP/1.1 abc\r\n\r\n");
            close_after = true;
        } else if (strcmp(path, "/nothing") == 0) {
            close_after = true;   /* H13: accept, then close without a byte */
        } else if (strcmp(path, "/bye") == 0) {
            /* Keep-alive by the headers, yet closed: the router's pooled socket goes stale. */
            (void)send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye");
            close_after = true;
        } else if (strcmp(path, "/slow") == 0) {
            sleep(1);
            strbuf_addstr(&resp, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
        } else if (strcmp(path, "/veryslow") == 0) {
            sleep(3);
            strbuf_addstr(&resp, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate");
        } else {
            strbuf_addstr(&resp, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
        if (resp.len && send_all(fd, resp.buf, resp.len) < 0)
            close_after = true;
        strbuf_release(&resp);
        strbuf_remove_prefix(&in, head_len + clen);
        if (close_after)
            break;
    }
out:
    strbuf_release(&in);
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept4(up_listen, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (atomic_load(&up_stopping))
                return NULL;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        pthread_mutex_lock(&up_lock);
        if (up_nconns == MAX_CONNS || atomic_load(&up_stopping)) {
            pthread_mutex_unlock(&up_lock);
            close(fd);
            continue;
        }
        up_fds[up_nconns] = fd;
        if (pthread_create(&up_threads[up_nconns], NULL, serve_conn, (void *)(intptr_t)fd) != 0) {
            pthread_mutex_unlock(&up_lock);
            close(fd);
            continue;
        }
        up_nconns++;
        pthread_mutex_unlock(&up_lock);
    }
}

static int listen_local(uint16_t *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

static void upstream_stop(void)
{
    atomic_store(&up_stopping, true);
    shutdown(up_listen, SHUT_RDWR);
    pthread_join(up_accept_thread, NULL);
    close(up_listen);
    up_listen = -1;
    pthread_mutex_lock(&up_lock);
    for (int i = 0; i < up_nconns; i++)
        shutdown(up_fds[i], SHUT_RDWR);
    for (int i = 0; i < up_nconns; i++) {
        pthread_join(up_threads[i], NULL);
        close(up_fds[i]);
    }
    up_nconns = 0;
    pthread_mutex_unlock(&up_lock);
}

/* ---------------------------------------------------------------- connect callback */

static int dial(uint16_t port, int *ret_fd)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *ret_fd = fd;
    return 0;
}

static int test_connect(void *cls, const char *app, uint64_t generation, int *ret_fd,
                        char ret_dyno[ROUTER_DYNO_MAX])
{
    (void)cls;
    (void)generation;
    if (strcmp(app, "alpha-app") == 0) {
        atomic_fetch_add(&connects, 1);
        memcpy(ret_dyno, "web.7", sizeof("web.7"));
        return dial(up_port, ret_fd);
    }
    if (strcmp(app, "gamma-app") == 0)
        return dial(dead_port, ret_fd);
    return -ENOENT;
}

/* ---------------------------------------------------------------- curl */

static char tmpdir[] = "/tmp/test-router-XXXXXX";

/* Runs a shell command and returns its stdout (caller frees) or NULL. */
static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run(const char *fmt, ...)
{
    struct strbuf cmd = STRBUF_INIT, out = STRBUF_INIT;
    char buf[4096];
    size_t n;
    va_list ap;
    FILE *p;

    va_start(ap, fmt);
    strbuf_vaddf(&cmd, fmt, ap);
    va_end(ap);
    p = popen(cmd.buf, "r");
    strbuf_release(&cmd);
    if (!p)
        return NULL;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        strbuf_add(&out, buf, n);
    (void)pclose(p);
    return strbuf_detach(&out, NULL);
}

/* GET (or more, via extra curl args) with a Host header; returns the status, body in *body. */
static int request(const char *host, const char *path, const char *extra, char **body, size_t *body_len)
{
    char file[256], *code;
    int status;
    struct strbuf sb = STRBUF_INIT;
    FILE *f;

    (void)snprintf(file, sizeof(file), "%s/body-%lx", tmpdir, (unsigned long)pthread_self());
    code = run("curl -s --max-time 20 -o '%s' -w '%%{http_code}' -H 'Host: %s' %s 'http://127.0.0.1:%u%s'",
               file, host, extra ? extra : "", (unsigned)router_port_num, path);
    status = code ? atoi(code) : -1;
    free(code);
    f = fopen(file, "r");
    if (f) {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            strbuf_add(&sb, buf, n);
        fclose(f);
        unlink(file);
    }
    if (body_len)
        *body_len = sb.len;
    if (body)
        *body = strbuf_detach(&sb, NULL);
    strbuf_release(&sb);
    return status;
}

static bool body_is_pattern(const char *body, size_t len, size_t want)
{
    if (len != want)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)body[i] != pattern(i))
            return false;
    return true;
}

static double elapsed(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

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
    struct router_route routes[] = {
        { .host = "a.localhost", .app = "alpha-app", .generation = gen },
        { .host = "b.localhost", .app = "beta-app", .generation = 1 },
        { .host = "c.localhost", .app = "gamma-app", .generation = 1 },
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
           memcmp(p + 4, data, len) == 0, "POST body arrives intact");
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
        ok(st == 200 && p && strstr(body, "\r\nContent-Length: 300000\r\n") && memcmp(p + 4, data, len) == 0,
           "chunked upload arrives de-chunked and intact (%d)", st);
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
    ok(st == 404 && body && !strstr(body, "<script>"), "hostile Host not echoed (%d)", st);
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
        st = request("a.localhost", "/echo", extra, &body, NULL);
        ok(st == 413, "17 MiB chunked upload (buffered, to send a length) -> 413 (%d)", st);
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
    int before, saved_stderr, log_fd, named = 0;

    out = run("curl -s -o /dev/null -o /dev/null -w '%%{num_connects}\\n' -H 'Host: a.localhost' "
              "'http://127.0.0.1:%u/hello' 'http://127.0.0.1:%u/echo'",
              (unsigned)router_port_num, (unsigned)router_port_num);
    ok(out && strcmp(out, "1\n0\n") == 0, "client keep-alive: second URL reuses the connection");
    free(out);

    /* The access log goes to stderr: catch it in a file for these requests. */
    path = xasprintf("%s/access.log", tmpdir);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd >= 0)
        dup2(log_fd, STDERR_FILENO);
    before = atomic_load(&connects);
    for (int i = 0; i < 10; i++) {
        char *body = NULL;
        (void)request("a.localhost", "/hello", NULL, &body, NULL);
        free(body);
    }
    usleep(100000);   /* the last line is written after the response */
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    if (log_fd >= 0)
        close(log_fd);
    ok(atomic_load(&connects) - before <= 1, "upstream connections pooled (%d new for 10 requests)",
       atomic_load(&connects) - before);
    (void)read_file(path, &log, 1 << 20, NULL);
    for (const char *p = log.buf; p && (p = strstr(p, "dyno=web.7 ")); p++)
        named++;
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
    before = atomic_load(&connects);
    st = request("a.localhost", "/hello", NULL, &body, NULL);
    ok(st == 200 && atomic_load(&connects) == before + 1, "new generation dials a fresh connection");
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

static int dial_router_port(uint16_t port)
{
    int fd = -1;
    struct timeval tv = { .tv_sec = 5 };

    if (dial(port, &fd) < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until `want` shows up in *sb (or timeout/EOF). */
static int dial_router(void)
{
    return dial_router_port(router_port_num);
}

static bool read_until(int fd, struct strbuf *sb, const char *want)
{
    char buf[4096];

    while (!strstr(sb->buf, want)) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return false;
        strbuf_add(sb, buf, (size_t)n);
    }
    return true;
}

static void test_websocket(void)
{
    struct strbuf sb = STRBUF_INIT;
    int fd = dial_router();
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
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .connect = test_connect };
    struct router_route route = { .host = "a.localhost", .app = "alpha-app", .generation = 1 };
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
    slow = dial_router_port(router_port(r2));
    ws = dial_router_port(router_port(r2));
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
        if (getenv("BERTH_MUST_WORK"))
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
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 2, .connect = test_connect };
    struct berth_error *err = NULL;
    char *out;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    out = run("command -v curl");
    if (!out || !out[0]) {
        free(out);
        if (getenv("BERTH_MUST_WORK")) {
            printf("not ok 1 - curl is required\n1..1\n");
            return 1;
        }
        printf("1..0 # SKIP curl not installed\n");
        return 0;
    }
    free(out);
    if (!mkdtemp(tmpdir)) {
        printf("not ok 1 - mkdtemp\n1..1\n");
        return 1;
    }
    log_setup("test-router", LOG_LEVEL_INFO);

    up_listen = listen_local(&up_port);
    fd = listen_local(&dead_port);
    close(fd);   /* nothing listens there any more: connections are refused */
    ok(up_listen >= 0, "upstream listening on 127.0.0.1:%u", (unsigned)up_port);
    pthread_create(&up_accept_thread, NULL, accept_main, NULL);

    /* Short H12 window so the timeout case runs in seconds; /slow (1 s) stays inside it. */
    setenv("BERTH_ROUTER_HEAD_TIMEOUT_MS", "1800", 1);
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
