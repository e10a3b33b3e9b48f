/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router tests' shared pieces (harness.h): the upstream server, socket
 * and curl clients, and the access-log capture.
 */
#include "router/tests/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "router/parse.h"

#define MAX_CONNS 1024
#define LISTENERS_MAX 4
#define SEEN_MAX (1u << 20)

char tmpdir[] = "/tmp/test-router-XXXXXX";
uint16_t router_port_num;

bool must_work(void)
{
    const char *v = getenv("BERTH_MUST_WORK");

    return v && v[0] && strcmp(v, "0") != 0;
}

bool harness_begin(int *ret_exit)
{
    char *out;
    bool have_curl;

    signal(SIGPIPE, SIG_IGN);
    out = run("command -v curl");
    have_curl = out && out[0];
    free(out);
    if (!have_curl) {
        if (must_work()) {
            printf("not ok 1 - curl is required when BERTH_MUST_WORK is set\n1..1\n");
            *ret_exit = 1;
        } else {
            printf("1..0 # SKIP curl not installed\n");
            *ret_exit = 0;
        }
        return false;
    }
    if (!mkdtemp(tmpdir)) {
        printf("not ok 1 - mkdtemp\n1..1\n");
        *ret_exit = 1;
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- the upstream server */

static struct {
    int fd;
    pthread_t thread;
} listeners[LISTENERS_MAX];
static int nlisteners;
static pthread_mutex_t up_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t up_threads[MAX_CONNS];
static int up_fds[MAX_CONNS];
static int up_nconns;
static atomic_bool up_stopping;
static atomic_uint up_heads, up_short, up_resets, up_fins;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strbuf seen = STRBUF_INIT;   /* every request line read, one a line (up to SEEN_MAX) */

unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 7 + (i >> 11)) % 251);
}

bool body_is_pattern(const char *body, size_t len, size_t want)
{
    if (len != want)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)body[i] != pattern(i))
            return false;
    return true;
}

int send_all(int fd, const void *buf, size_t len)
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

int send_str(int fd, const char *s)
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

/*
 * Reads a chunked body that follows the head in `in`, and leaves it
 * de-chunked there: head, then *ret_len body bytes (then whatever came after).
 */
static int read_chunked(int fd, struct strbuf *in, size_t head_len, size_t *ret_len)
{
    struct chunked_decoder dec;
    struct strbuf body = STRBUF_INIT, rest = STRBUF_INIT;
    size_t off = head_len;
    char buf[65536];

    chunked_init(&dec);
    for (;;) {
        ssize_t used = chunked_feed(&dec, in->buf + off, in->len - off, &body);
        ssize_t n;

        if (used < 0)
            break;
        off += (size_t)used;
        if (dec.done) {
            strbuf_add(&rest, in->buf + off, in->len - off);
            strbuf_setlen(in, head_len);
            strbuf_add(in, body.buf, body.len);
            strbuf_add(in, rest.buf, rest.len);
            *ret_len = body.len;
            strbuf_release(&body);
            strbuf_release(&rest);
            return 0;
        }
        n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        strbuf_add(in, buf, (size_t)n);
    }
    strbuf_release(&body);
    strbuf_release(&rest);
    return -1;
}

/*
 * /verify-slowly: takes the body after the head in `in` (Content-Length
 * `clen`, or chunked) in 16 KiB sips, checking every byte against the
 * pattern without keeping it; leaves in `in` what followed the body. The
 * answer's text in msg, or -1 when the body was cut short.
 */
static int verify_slowly(int fd, struct strbuf *in, size_t head_len, size_t clen, bool chunked, char *msg,
                         size_t msg_size)
{
    struct chunked_decoder dec;
    struct strbuf out = STRBUF_INIT;
    size_t off = head_len, got = 0;
    bool good = true;
    char buf[16384];

    chunked_init(&dec);
    for (;;) {
        const char *data = in->buf + off;
        size_t n = in->len - off;
        ssize_t r;

        if (chunked) {
            ssize_t used = chunked_feed(&dec, data, n, &out);
            if (used < 0)
                break;
            data = out.buf;
            n = out.len;
            off += (size_t)used;
        } else {
            if (n > clen - got)
                n = clen - got;
            off += n;
        }
        for (size_t i = 0; i < n; i++)
            good &= (unsigned char)data[i] == pattern(got + i);
        got += n;
        strbuf_reset(&out);
        if (chunked ? dec.done : got == clen) {
            strbuf_remove_prefix(in, off);
            strbuf_release(&out);
            (void)snprintf(msg, msg_size, "%zu %s", got, good ? "ok" : "bad");
            return 0;
        }
        strbuf_reset(in);
        off = 0;
        r = recv(fd, buf, sizeof(buf), 0);
        if (r <= 0)
            break;
        strbuf_add(in, buf, (size_t)r);
        usleep(1000);
    }
    strbuf_release(&out);
    atomic_fetch_add(&up_short, 1);
    return -1;
}

static void record_request_line(const char *head)
{
    size_t n = strcspn(head, "\r\n");

    atomic_fetch_add(&up_heads, 1);
    pthread_mutex_lock(&seen_lock);
    if (seen.len + n + 1 < SEEN_MAX) {
        strbuf_add(&seen, head, n);
        strbuf_addch(&seen, '\n');
    }
    pthread_mutex_unlock(&seen_lock);
}

static uint16_t local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    return getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 ? ntohs(sa.sin_port) : 0;
}

#define SMUGGLED "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

/*
 * The answers that need no body from the client; true when `path` is one of
 * them (*close_after set when the connection must end after it).
 */
static bool answer_simple(int fd, const char *method, const char *path, struct strbuf *resp, bool *close_after)
{
    if (strcmp(path, "/hello") == 0) {
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
        if (strcmp(method, "HEAD") != 0)
            strbuf_addstr(resp, "hello");
    } else if (strncmp(path, "/token/", 7) == 0) {
        strbuf_addf(resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(path + 7), path + 7);
    } else if (strcmp(path, "/port") == 0) {
        char msg[16];
        (void)snprintf(msg, sizeof(msg), "%u", (unsigned)local_port(fd));
        strbuf_addf(resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(msg), msg);
    } else if (strcmp(path, "/close") == 0) {
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nclose");
        *close_after = true;
    } else if (strcmp(path, "/smuggle") == 0) {
        /* The answer, then bytes nobody asked for while the router keeps the connection idle. */
        if (send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") == 0) {
            usleep(100000);
            (void)send_str(fd, SMUGGLED);
        }
    } else if (strcmp(path, "/smuggle-now") == 0) {
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" SMUGGLED);
    } else if (strcmp(path, "/via") == 0) {
        /* Two proxies of the app's own, in two header lines. */
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nVia: 1.0 cache-a\r\nContent-Length: 2\r\nVia: 1.1 cache-b\r\n\r\nok");
    } else if (strcmp(path, "/conn-named") == 0) {
        /* Headers of this hop only, named by the app's own Connection lines (before and after them). */
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nX-Internal: secret\r\nConnection: keep-alive, X-Internal\r\n"
                            "X-Public: yes\r\nConnection: x-other\r\nX-Other: secret too\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/noreason") == 0) {
        strbuf_addstr(resp, "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/bigcookie") == 0) {
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nSet-Cookie: big=");
        for (int i = 0; i < 9000; i++)
            strbuf_addch(resp, 'c');
        strbuf_addstr(resp, "\r\nContent-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/bighead") == 0) {
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\n");
        for (int h = 0; h < 10; h++) {
            strbuf_addf(resp, "X-Big-%d: ", h);
            for (int i = 0; i < 7000; i++)
                strbuf_addch(resp, 'h');
            strbuf_addstr(resp, "\r\n");
        }
        strbuf_addstr(resp, "Content-Length: 2\r\n\r\nok");
    } else if (strcmp(path, "/big") == 0) {
        strbuf_addf(resp, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_SIZE);
        if (send_all(fd, resp->buf, resp->len) < 0 || send_pattern(fd, BIG_SIZE, 65536, false) < 0)
            *close_after = true;
        strbuf_reset(resp);
    } else if (strcmp(path, "/bigchunked") == 0) {
        if (send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") < 0 ||
            send_pattern(fd, BIGCHUNKED_SIZE, 10000, true) < 0)
            *close_after = true;
    } else if (strcmp(path, "/chunked") == 0) {
        if (send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
                         "6\r\nhello \r\n") == 0) {
            usleep(50000);
            (void)send_str(fd, "8;ext=1\r\nchunked \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n");
        }
    } else if (strcmp(path, "/bighttp10") == 0) {
        /* A close-delimited body larger than the router buffers: its end comes while the router has paused. */
        if (send_str(fd, "HTTP/1.0 200 OK\r\n\r\n") == 0)
            (void)send_pattern(fd, BIG_SIZE, 65536, false);
        *close_after = true;
    } else if (strcmp(path, "/http10-fin") == 0) {
        /* The same, its end in the body's own segment: MSG_MORE holds the bytes until the FIN joins them. */
        static const char answer[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited body";
        (void)!send(fd, answer, sizeof(answer) - 1, MSG_MORE | MSG_NOSIGNAL);
        *close_after = true;
    } else if (strcmp(path, "/http10") == 0) {
        /* Python http.server style: HTTP/1.0, no Content-Length, the close ends the body. */
        (void)send_str(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited body");
        *close_after = true;
    } else if (strcmp(path, "/malformed") == 0) {
        (void)send_str(fd, "HTTP/1.1 abc\r\n\r\n");
        *close_after = true;
    } else if (strcmp(path, "/nothing") == 0) {
        *close_after = true;   /* H13: accept, then close without a byte */
    } else if (strcmp(path, "/bye") == 0) {
        /* Keep-alive by the headers, yet closed: the router's pooled socket goes stale. */
        (void)send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye");
        *close_after = true;
    } else if (strcmp(path, "/slow") == 0) {
        sleep(1);
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
    } else if (strcmp(path, "/veryslow") == 0) {
        sleep(3);
        strbuf_addstr(resp, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate");
    } else {
        return false;
    }
    return true;
}

/*
 * The /watch- endpoints: an answer as an app that closes gives it
 * ("close": Connection: close; "http10": HTTP/1.0, the close ends the
 * body) and the app's FIN, or no answer at all ("silent"), then how the
 * router ended the connection: a reset or a FIN (upstream_ends()).
 */
static void watch_end(int fd, const char *how)
{
    struct timeval tv = { .tv_sec = 5 };
    char c;
    ssize_t n;

    if (strcmp(how, "silent") != 0) {
        if (strcmp(how, "http10") == 0)
            (void)send_str(fd, "HTTP/1.0 200 OK\r\n\r\nwatched");
        else
            (void)send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 7\r\n\r\nwatched");
        (void)shutdown(fd, SHUT_WR);
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while ((n = recv(fd, &c, 1, 0)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        atomic_fetch_add(&up_fins, 1);
    else if (n < 0 && errno == ECONNRESET)
        atomic_fetch_add(&up_resets, 1);
}

/* Serves one connection until the client closes it; returns when done. */
static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    struct strbuf in = STRBUF_INIT;
    char buf[65536];
    bool drop_next = false;   /* after /then-drop: the next request on this connection gets no answer */

    for (;;) {
        char *end, method[16] = "", path[1024] = "";
        size_t head_len, clen = 0;
        const char *cl, *te;
        struct strbuf resp = STRBUF_INIT;
        bool close_after = false, chunked;

        while ((end = strstr(in.buf, "\r\n\r\n")) == NULL) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                goto out;
            strbuf_add(&in, buf, (size_t)n);
        }
        head_len = (size_t)(end - in.buf) + 4;
        record_request_line(in.buf);
        (void)sscanf(in.buf, "%15s %1023s", method, path);
        cl = strcasestr(in.buf, "\r\nContent-Length:");
        if (cl && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        te = strcasestr(in.buf, "\r\nTransfer-Encoding: chunked");
        chunked = te && te < end;
        if (drop_next)
            goto out;   /* read, not answered: the app died, or acted and died, before a byte */
        if (strcmp(path, "/then-drop") == 0) {
            (void)send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndrop");
            drop_next = true;
            strbuf_remove_prefix(&in, head_len);
            continue;
        }
        if (strncmp(path, "/watch-", 7) == 0) {
            watch_end(fd, path + 7);
            goto out;
        }
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
        if (strcmp(path, "/verify-slowly") == 0) {
            char msg[64];

            if (verify_slowly(fd, &in, head_len, clen, chunked, msg, sizeof(msg)) < 0)
                goto out;
            strbuf_addf(&resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(msg), msg);
            (void)send_all(fd, resp.buf, resp.len);
            strbuf_release(&resp);
            continue;
        }
        /* A chunked upload (the router streams it as the client sent it): de-chunk it in place. */
        if (chunked && read_chunked(fd, &in, head_len, &clen) < 0)
            goto out;
        while (in.len < head_len + clen) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                goto out;
            strbuf_add(&in, buf, (size_t)n);
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
        } else if (strcmp(path, "/count") == 0) {
            char msg[64];
            (void)snprintf(msg, sizeof(msg), "%zu", clen);
            strbuf_addf(&resp, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(msg), msg);
        } else if (strncmp(path, "/echo", 5) == 0) {
            strbuf_addf(&resp, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                        head_len + clen);
            strbuf_add(&resp, in.buf, head_len + clen);
        } else if (!answer_simple(fd, method, path, &resp, &close_after)) {
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
    int lfd = (int)(intptr_t)arg;

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
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

int listen_local(uint16_t *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int refusing_local(uint16_t *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    /* No SO_REUSEADDR: no other socket may share the port while this one holds it. */
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int upstream_start(uint16_t *ret_port)
{
    int fd;

    if (nlisteners == LISTENERS_MAX || (fd = listen_local(ret_port)) < 0)
        return -1;
    if (pthread_create(&listeners[nlisteners].thread, NULL, accept_main, (void *)(intptr_t)fd) != 0) {
        close(fd);
        return -1;
    }
    listeners[nlisteners++].fd = fd;
    return 0;
}

void upstream_stop(void)
{
    atomic_store(&up_stopping, true);
    for (int i = 0; i < nlisteners; i++) {
        shutdown(listeners[i].fd, SHUT_RDWR);
        pthread_join(listeners[i].thread, NULL);
        close(listeners[i].fd);
    }
    nlisteners = 0;
    pthread_mutex_lock(&up_lock);
    for (int i = 0; i < up_nconns; i++)
        shutdown(up_fds[i], SHUT_RDWR);
    for (int i = 0; i < up_nconns; i++) {
        pthread_join(up_threads[i], NULL);
        close(up_fds[i]);
    }
    up_nconns = 0;
    pthread_mutex_unlock(&up_lock);
    pthread_mutex_lock(&seen_lock);
    strbuf_release(&seen);
    pthread_mutex_unlock(&seen_lock);
}

unsigned upstream_requests(void)
{
    return atomic_load(&up_heads);
}

unsigned upstream_seen(const char *needle)
{
    unsigned n = 0;

    pthread_mutex_lock(&seen_lock);
    for (const char *p = seen.buf; (p = strstr(p, needle)) != NULL; p++)
        n++;
    pthread_mutex_unlock(&seen_lock);
    return n;
}

unsigned upstream_short_bodies(void)
{
    return atomic_load(&up_short);
}

void upstream_ends(unsigned *ret_resets, unsigned *ret_fins)
{
    *ret_resets = atomic_load(&up_resets);
    *ret_fins = atomic_load(&up_fins);
}

/* ---------------------------------------------------------------- sockets */

int dial_port_from(const char *from, uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in src = { .sin_family = AF_INET };
    struct timeval tv = { .tv_sec = 5 };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if ((from && (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
                  bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)) ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

int dial_port(uint16_t port)
{
    return dial_port_from(NULL, port);
}

bool read_until(int fd, struct strbuf *sb, const char *want)
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

bool read_to_close(int fd, struct strbuf *sb)
{
    char buf[16384];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
        strbuf_add(sb, buf, (size_t)n);
    }
}

/* ---------------------------------------------------------------- curl */

char *run(const char *fmt, ...)
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

int request_to(uint16_t port, const char *host, const char *path, const char *extra, char **body,
               size_t *body_len)
{
    static atomic_uint seq;
    char file[256], *code;
    int status;
    struct strbuf sb = STRBUF_INIT;
    FILE *f;

    (void)snprintf(file, sizeof(file), "%s/body-%u", tmpdir, atomic_fetch_add(&seq, 1));
    code = run("curl -s --max-time 20 -o '%s' -w '%%{http_code}' -H 'Host: %s' %s 'http://127.0.0.1:%u%s'",
               file, host, extra ? extra : "", (unsigned)port, path);
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

int request(const char *host, const char *path, const char *extra, char **body, size_t *body_len)
{
    return request_to(router_port_num, host, path, extra, body, body_len);
}

int answered_fresh(const char *host, int n)
{
    int answered = 0;

    for (int i = 0; i < n; i++) {
        char *body = NULL;
        int st = request(host, "/close", NULL, &body, NULL);
        answered += st == 200 && body && strcmp(body, "close") == 0;
        free(body);
    }
    return answered;
}

unsigned count_ci(const char *s, const char *needle)
{
    unsigned n = 0;

    for (const char *p = s; p && (p = strcasestr(p, needle)) != NULL; p++)
        n++;
    return n;
}

double elapsed(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---------------------------------------------------------------- the access log */

static int saved_stderr = -1;

int log_capture_begin(const char *path)
{
    int fd;

    fflush(stderr);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
    return 0;
}

void log_capture_end(void)
{
    if (saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
}

/* ---------------------------------------------------------------- the apps' access-log lines */

static pthread_mutex_t access_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strbuf access_lines = STRBUF_INIT;

void access_lines_capture(void *cls, const char *lines, size_t len)
{
    (void)cls;
    pthread_mutex_lock(&access_lock);
    strbuf_add(&access_lines, lines, len);
    pthread_mutex_unlock(&access_lock);
}

bool access_lines_have(const char *a, const char *b)
{
    for (int i = 0; i < 30; i++) {
        bool found = false;
        pthread_mutex_lock(&access_lock);
        for (char *line = access_lines.buf, *eol; line && *line; line = eol + 1) {
            eol = strchr(line, '\n');
            if (!eol)
                break;
            *eol = '\0';
            found = found || (strstr(line, a) && strstr(line, b));
            *eol = '\n';
        }
        pthread_mutex_unlock(&access_lock);
        if (found)
            return true;
        usleep(100000);
    }
    return false;
}

void access_lines_release(void)
{
    pthread_mutex_lock(&access_lock);
    strbuf_release(&access_lines);
    pthread_mutex_unlock(&access_lock);
}
