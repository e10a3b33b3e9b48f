/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's own front for plain HTTP/1.1: the hot path of every
 * request, written here rather than left to libmicrohttpd for speed.
 *
 * Measured side by side with nginx (tests/bench, acceptance 07), MHD's
 * model cost the router about a fifth of its throughput: a request there
 * suspends its connection while the app answers and resumes it after
 * (two epoll_ctl calls on MHD's own epoll), reads once more to find the
 * socket empty, and zeroes a 33 KiB memory pool; nginx does none of that.
 * So a plain connection starts here: its socket sits in the loop's epoll
 * (edge-triggered, registered once), its head is read and parsed here,
 * and the upstream side (upstream.c) wakes it directly when the answer
 * is in, which goes out with one send.
 *
 * What the front serves is the common case: HTTP/1.1 requests without a
 * body (no Content-Length but 0, no Transfer-Encoding), without Expect or
 * Upgrade, whose head arrives whole with nothing after it. Anything else,
 * on the first request of a connection or a later one, hands the
 * connection to libmicrohttpd for good (clients_handover()), with the
 * bytes already read given back through the interposed recv(): bodies,
 * websockets, pipelining, HTTP/1.0 and every odd case keep the one
 * well-tested path. Either way the guard (clients_filter()) sees every
 * byte once, before anything parses it: a refused request gets its page
 * and the connection closes, as before.
 *
 * Threads: a front connection lives on its loop's thread alone. The
 * upstream side marks it ready (front_wake()) from the same thread; the
 * loop serves the ready connections after each batch of events, when the
 * upstream side is done with the socket it read from (so a finished
 * request needs no cancellation).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define FRONT_HEAD_MAX (16 * 1024)   /* a longer head goes to MHD, which takes up to GUARD_HEAD_MAX */
#define FRONT_HEADERS_MAX 64         /* more headers: MHD */
#define FRONT_IDLE_MS (CLIENT_IDLE_S * 1000u)

enum front_state { FRONT_READING, FRONT_WAITING, FRONT_WRITING };

struct front_conn {
    uint8_t kind;                 /* EV_CLIENT: epoll data of its socket */
    int fd;
    struct upstream_loop *loop;
    char fwd[INET6_ADDRSTRLEN];
    enum front_state state;
    struct strbuf head;           /* a head that came in pieces, until it is whole */
    struct proxy_req *req;        /* the request in flight, held (the client side's reference) */
    struct strbuf out;            /* bytes for the client; `sent` of them are gone */
    size_t sent;
    bool can_read;                /* edge-triggered: the socket may hold bytes not read yet */
    bool head_sent, chunked, body_ended, close_after;
    uint64_t idle_since;
    struct front_conn *prev, *next;          /* the loop's connections */
    struct front_conn *rprev, *rnext;        /* the loop's ready list */
    bool ready;
};

/*
 * Each loop's lists and buffers (its thread only). The buffers are
 * allocated on a loop's first read: a _Thread_local array would be zeroed
 * for every thread the process starts (the control API starts one per
 * connection).
 */
struct front_lists {
    struct front_conn *all, *ready;
    char *read_buf;               /* FRONT_HEAD_MAX: where reads land */
    char *scratch;                /* FRONT_HEAD_MAX + 1: a head's copy for parsing */
};

static _Thread_local struct front_lists lists;

/* ---------------------------------------------------------------- lists */

static void ready_remove(struct front_conn *fc)
{
    if (!fc->ready)
        return;
    if (fc->rprev)
        fc->rprev->rnext = fc->rnext;
    else
        lists.ready = fc->rnext;
    if (fc->rnext)
        fc->rnext->rprev = fc->rprev;
    fc->rprev = fc->rnext = NULL;
    fc->ready = false;
}

void front_wake(struct front_conn *fc)
{
    if (fc->ready)
        return;
    fc->ready = true;
    fc->rprev = NULL;
    fc->rnext = lists.ready;
    if (lists.ready)
        lists.ready->rprev = fc;
    lists.ready = fc;
}

static void conn_unlink(struct front_conn *fc)
{
    ready_remove(fc);
    if (fc->prev)
        fc->prev->next = fc->next;
    else if (lists.all == fc)
        lists.all = fc->next;
    if (fc->next)
        fc->next->prev = fc->prev;
    fc->prev = fc->next = NULL;
}

/* ---------------------------------------------------------------- ending */

/* The client side lets go of its request: logged, and cancelled upstream if still busy there. */
static void request_end(struct front_conn *fc, bool completed)
{
    struct proxy_req *req = fc->req;

    if (!req)
        return;
    fc->req = NULL;
    pthread_mutex_lock(&req->lock);
    req->front = NULL;
    pthread_mutex_unlock(&req->lock);
    proxy_req_close(req, completed);
}

static void conn_free(struct front_conn *fc)
{
    strbuf_release(&fc->head);
    strbuf_release(&fc->out);
    free(fc);
}

/* Closes the connection (an unfinished request counts as the client's going). */
static void conn_close(struct front_conn *fc)
{
    request_end(fc, false);
    conn_unlink(fc);
    clients_release(fc->fd);
    /*
     * Out of the epoll first: close() alone leaves the registration (and
     * its pointer to fc) alive while a forked child still holds a copy of
     * the socket between its fork and exec.
     */
    (void)epoll_ctl(fc->loop->epfd, EPOLL_CTL_DEL, fc->fd, NULL);
    (void)close(fc->fd);
    conn_free(fc);
}

/* Gives the connection to libmicrohttpd with the bytes read so far; the front forgets it. */
static void conn_handover(struct front_conn *fc, const char *bytes, size_t n)
{
    struct upstream_loop *l = fc->loop;

    conn_unlink(fc);
    (void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fc->fd, NULL);
    if (clients_handover(l, fc->fd, bytes, n))
        l->mhd_resumed = true;   /* MHD reads the bytes back at its next run, before the loop sleeps */
    conn_free(fc);
}

/* ---------------------------------------------------------------- writing */

/* Sends what is buffered. Returns false when the client is gone (the connection is closed). */
static bool flush(struct front_conn *fc)
{
    while (fc->sent < fc->out.len) {
        ssize_t n = send(fc->fd, fc->out.buf + fc->sent, fc->out.len - fc->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;   /* EPOLLOUT says when to go on */
            conn_close(fc);
            return false;
        }
        fc->sent += (size_t)n;
        fc->idle_since = now_ms();   /* a client that reads is not stalled */
    }
    strbuf_reset(&fc->out);
    fc->sent = 0;
    return true;
}

static void add_date(struct strbuf *sb)
{
    static _Thread_local time_t cached_at;
    static _Thread_local char cached[64];
    time_t now = time(NULL);

    if (now != cached_at) {
        struct tm tm;
        cached_at = now;
        (void)gmtime_r(&now, &tm);
        (void)strftime(cached, sizeof(cached), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    }
    strbuf_addstr(sb, cached);
}

static bool status_has_body(int status)
{
    return status >= 200 && status != 204 && status != 304;
}

/* "HTTP/1.1 200 OK\r\n": once per response, so no printf. */
static void add_status_line(struct strbuf *sb, unsigned status)
{
    strbuf_add(sb, "HTTP/1.1 ", 9);
    router_add_decimal(sb, status);
    strbuf_addch(sb, ' ');
    strbuf_addstr(sb, MHD_get_reason_phrase_for(status));
    strbuf_add(sb, "\r\n", 2);
}

static void add_content_length(struct strbuf *sb, uint64_t n)
{
    strbuf_add(sb, "Content-Length: ", 16);
    router_add_decimal(sb, n);
    strbuf_add(sb, "\r\n", 2);
}

struct head_out {
    struct strbuf *sb;
    bool has_date;
};

static void add_header_line(void *ctx, const char *name, const char *value)
{
    struct head_out *o = ctx;

    if (strcasecmp(name, "Date") == 0)
        o->has_date = true;
    strbuf_addstr(o->sb, name);
    strbuf_add(o->sb, ": ", 2);
    strbuf_addstr(o->sb, value);
    strbuf_add(o->sb, "\r\n", 2);
}

/*
 * The response head as libmicrohttpd's side sends it: the app's headers as
 * proxy_response_headers() passes them, a Date when the app sent none, and
 * the framing the router chose: a Content-Length when the whole body is
 * here or announced, else chunked. `whole` is the body's length when all
 * of it is buffered, else -1.
 */
static void write_head(struct front_conn *fc, ssize_t whole)
{
    struct proxy_req *req = fc->req;
    const struct http_response_head *h = &req->head;
    struct strbuf *sb = &fc->out;
    struct head_out o = { .sb = sb };

    add_status_line(sb, (unsigned)h->status);
    proxy_response_headers(req, add_header_line, &o);
    if (!o.has_date)
        add_date(sb);
    fc->chunked = false;
    if (req->is_head || h->body == BODY_NONE) {
        /* A HEAD answer keeps the app's Content-Length; 204 and 304 carry none. */
        const char *clen = req->is_head ? http_response_header(h, "Content-Length") : NULL;

        /* No body follows (the parser says BODY_NONE for HEAD, 1xx, 204 and 304). */
        fc->body_ended = true;
        if (status_has_body(h->status))
            strbuf_addf(sb, "Content-Length: %s\r\n", clen ? clen : "0");
    } else if (whole >= 0) {
        add_content_length(sb, (uint64_t)whole);
    } else if (h->body == BODY_LENGTH) {
        add_content_length(sb, h->content_length);
    } else {
        fc->chunked = true;
        strbuf_addstr(sb, "Transfer-Encoding: chunked\r\n");
    }
    if (fc->close_after)
        strbuf_addstr(sb, "Connection: close\r\n");
    strbuf_add(sb, "\r\n", 2);
    req->status = h->status;
}

/* An error page instead of the app's answer. */
static void write_failure(struct front_conn *fc, enum router_failure f)
{
    struct proxy_req *req = fc->req;

    req->failure = f;
    req->status = (int)failure_status(f);
    req->bytes_sent = req->is_head ? 0 : req->router->page_len[f];
    failure_answer_keep(f, !req->is_head, fc->close_after, &fc->out);
    fc->head_sent = fc->body_ended = true;
}

static void write_redirect(struct front_conn *fc)
{
    struct proxy_req *req = fc->req;
    unsigned status = strcmp(req->method, "GET") == 0 || req->is_head ? 301 : 308;

    req->status = (int)status;
    add_status_line(&fc->out, status);
    strbuf_addstr(&fc->out, "Location: ");
    proxy_redirect_location(req, &fc->out);
    strbuf_addstr(&fc->out, "\r\nContent-Length: 0\r\n");
    add_date(&fc->out);
    if (fc->close_after)
        strbuf_addstr(&fc->out, "Connection: close\r\n");
    strbuf_add(&fc->out, "\r\n", 2);
    fc->head_sent = fc->body_ended = true;
}

/*
 * Moves what the upstream side buffered into the client's buffer: behind
 * the head, so both go out in one send, or once the last bytes went out.
 * So a slow client holds here at most RESPONSE_HEAD_MAX bytes (the head,
 * and body pieces that followed it before anything was sent) and one
 * upstream buffer's worth, besides what the upstream side buffers again
 * (paused at RESPONSE_BUFFER_MAX). Under req->lock. Returns whether the
 * body failed.
 */
static bool take_body_locked(struct front_conn *fc, struct proxy_req *req)
{
    size_t avail = req->body.len - req->body_off;

    if (avail > 0 && (fc->out.len == 0 || (fc->sent == 0 && fc->out.len <= RESPONSE_HEAD_MAX))) {
        if (fc->chunked) {
            http_add_chunk_size(&fc->out, avail);
            strbuf_add(&fc->out, "\r\n", 2);
        }
        strbuf_add(&fc->out, req->body.buf + req->body_off, avail);
        if (fc->chunked)
            strbuf_add(&fc->out, "\r\n", 2);
        req->bytes_sent += avail;
        strbuf_reset(&req->body);
        req->body_off = 0;
        if (req->paused)
            upstream_unpause_locked(req);
        avail = 0;
    }
    if (avail == 0 && req->body_done && !req->body_error && !fc->body_ended) {
        if (fc->chunked)
            strbuf_add(&fc->out, "0\r\n\r\n", 5);
        fc->body_ended = true;
    }
    return req->body_error;
}

/* After a response went out whole: the next request, or the end. */
static void response_done(struct front_conn *fc)
{
    request_end(fc, true);
    if (fc->close_after) {
        (void)shutdown(fc->fd, SHUT_WR);
        conn_close(fc);
        return;
    }
    fc->state = FRONT_READING;
    fc->head_sent = fc->chunked = fc->body_ended = false;
    /* An idle connection keeps a small buffer, not the last large answer's. */
    if (fc->out.alloc > 16 * 1024)
        strbuf_release(&fc->out);
    fc->idle_since = now_ms();
    if (fc->can_read)
        front_on_event(fc->loop, fc, EPOLLIN);
}

/* Serves a connection the upstream side (or a write event) made ready. */
static void serve(struct front_conn *fc)
{
    struct proxy_req *req = fc->req;
    enum router_failure f;
    bool ready, cut = false;

    if (!req)
        return;
    if (!fc->head_sent) {
        f = proxy_req_due(req, &ready);
        if (f != FAIL_NONE) {
            write_failure(fc, f);
        } else if (!ready) {
            return;
        } else {
            pthread_mutex_lock(&req->lock);
            bool whole = req->body_done && !req->body_error;
            ssize_t len = whole ? (ssize_t)(req->body.len - req->body_off) : -1;
            pthread_mutex_unlock(&req->lock);
            write_head(fc, len);
            fc->head_sent = true;
        }
        /*
         * No busy mark for clients.c (clients_set_busy()): the front feeds
         * the guard only while it reads a head, never while it answers, so
         * no refusal or head deadline can write a page over an answer.
         */
        fc->state = FRONT_WRITING;
    }
    for (;;) {
        if (!fc->body_ended) {
            pthread_mutex_lock(&req->lock);
            cut = take_body_locked(fc, req);
            pthread_mutex_unlock(&req->lock);
        }
        if (!flush(fc))
            return;
        if (fc->out.len > 0)
            return;   /* the rest on EPOLLOUT */
        if (cut) {
            /* The app cut its response short: so does the client's connection. */
            conn_close(fc);
            return;
        }
        if (fc->body_ended) {
            response_done(fc);
            return;
        }
        pthread_mutex_lock(&req->lock);
        bool more = req->body.len > req->body_off || req->body_done;
        pthread_mutex_unlock(&req->lock);
        if (!more)
            return;   /* front_wake() when the upstream has more */
    }
}

void front_run_ready(struct upstream_loop *l)
{
    (void)l;
    while (lists.ready) {
        struct front_conn *fc = lists.ready;
        ready_remove(fc);
        serve(fc);
    }
}

/* ---------------------------------------------------------------- requests */

struct parsed {
    char *method, *target;
    struct request_header headers[FRONT_HEADERS_MAX];
    size_t n;
    bool close;
};

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

/*
 * Parses a whole head (len bytes ending in the blank line) in place. The
 * guard has checked its syntax already; this decides whether the front
 * serves it: false hands the connection to MHD.
 */
static bool parse_head(char *buf, size_t len, struct parsed *p)
{
    char *end = buf + len - 2, *line = buf, *eol, *sp1, *sp2;
    bool host = false;

    /* The guard also takes bare LF line ends; such a head is MHD's. */
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0 || memchr(buf, '\0', len))
        return false;
    eol = strstr(line, "\r\n");
    if (!eol || (sp1 = memchr(line, ' ', (size_t)(eol - line))) == NULL ||
        (sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1))) == NULL)
        return false;
    if ((size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.1", 8) != 0)
        return false;
    *sp1 = *sp2 = '\0';
    p->method = line;
    p->target = sp1 + 1;
    p->n = 0;
    p->close = false;
    for (line = eol + 2; line < end; line = eol + 2) {
        char *colon, *name, *value;

        eol = strstr(line, "\r\n");
        if (!eol || memchr(line, '\n', (size_t)(eol - line)) || p->n == FRONT_HEADERS_MAX)
            return false;
        colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon || colon == line)
            return false;
        *colon = '\0';
        name = line;
        value = trim(colon + 1, eol);
        if (strcasecmp(name, "Content-Length") == 0) {
            if (strcmp(value, "0") != 0)
                return false;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0 || strcasecmp(name, "Expect") == 0 ||
                   strcasecmp(name, "Upgrade") == 0) {
            return false;
        } else if (strcasecmp(name, "Connection") == 0) {
            if (header_value_has_token(value, "upgrade"))
                return false;
            if (header_value_has_token(value, "close"))
                p->close = true;
        } else if (strcasecmp(name, "Host") == 0) {
            host = true;
        }
        p->headers[p->n].name = name;
        p->headers[p->n].value = value;
        p->n++;
    }
    return host;
}

/* Starts the request a whole head asked for. */
static void request_start(struct front_conn *fc, struct parsed *p)
{
    struct router *r = fc->loop->r;
    struct proxy_req *req = proxy_req_open(r, p->target);
    enum router_failure f;

    fc->req = req;
    fc->close_after = p->close;
    fc->state = FRONT_WAITING;
    pthread_mutex_lock(&req->lock);
    req->front = fc;
    pthread_mutex_unlock(&req->lock);
    proxy_req_begin(req, p->method, false, fc->fwd, p->headers, p->n);
    if (req->redirect) {
        fc->state = FRONT_WRITING;
        write_redirect(fc);
        front_wake(fc);
        return;
    }
    if (req->failure == FAIL_NONE && (f = proxy_req_start(req)) != FAIL_NONE)
        req->failure = f;
    if (req->failure != FAIL_NONE)
        front_wake(fc);
}

/* A whole head is in `buf` (len bytes, `extra` more after it): served here, or the connection goes to MHD. */
static void take_head(struct front_conn *fc, const char *buf, size_t len, size_t extra)
{
    /* Parsed in a copy: MHD must get the bytes as they came. */
    char *scratch = lists.scratch;
    struct parsed p;

    if (extra > 0 || len > FRONT_HEAD_MAX) {
        conn_handover(fc, buf, len + extra);
        return;
    }
    memcpy(scratch, buf, len);
    scratch[len] = '\0';
    if (!parse_head(scratch, len, &p)) {
        conn_handover(fc, buf, len);
        return;
    }
    request_start(fc, &p);
}

/*
 * Reads what the client sent, each byte through the guard once. A head
 * that arrives whole in one read (the usual case) is parsed where it was
 * read; one that comes in pieces is kept until whole.
 */
static void do_read(struct front_conn *fc)
{
    char *buf;

    if (!lists.read_buf) {
        lists.read_buf = xmalloc(FRONT_HEAD_MAX);
        lists.scratch = xmalloc(FRONT_HEAD_MAX + 1);
    }
    buf = lists.read_buf;
    while (fc->state == FRONT_READING) {
        size_t room = FRONT_HEAD_MAX - fc->head.len, hl;
        ssize_t n = recvfrom(fc->fd, buf, room, 0, NULL, NULL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                fc->can_read = false;
                return;
            }
            conn_close(fc);
            return;
        }
        if (n == 0) {
            conn_close(fc);
            return;
        }
        if (clients_filter(fc->fd, false, buf, n, NULL, NULL) < 0) {
            /* Refused: the guard wrote its page. */
            (void)shutdown(fc->fd, SHUT_WR);
            conn_close(fc);
            return;
        }
        /* A short read emptied the socket: epoll says when more comes. */
        fc->can_read = (size_t)n == room;
        if (fc->head.len == 0 && (hl = http_head_length(buf, (size_t)n)) > 0) {
            take_head(fc, buf, hl, (size_t)n - hl);
            return;
        }
        strbuf_add(&fc->head, buf, (size_t)n);
        if ((hl = http_head_length(fc->head.buf, fc->head.len)) > 0 || fc->head.len >= FRONT_HEAD_MAX) {
            struct strbuf head = fc->head;
            strbuf_init(&fc->head, 0);
            if (hl > 0)
                take_head(fc, head.buf, hl, head.len - hl);
            else
                conn_handover(fc, head.buf, head.len);   /* longer than the front takes */
            strbuf_release(&head);
            return;
        }
        if (!fc->can_read)
            return;
    }
}

void front_on_event(struct upstream_loop *l, struct front_conn *fc, uint32_t events)
{
    (void)l;
    if (events & (EPOLLERR | EPOLLHUP)) {
        /* Reset, or closed both ways: nothing more can go either way. */
        conn_close(fc);
        return;
    }
    if ((events & EPOLLRDHUP) && fc->state != FRONT_READING) {
        /*
         * The client closed its side while its request is under way: gone,
         * as nginx takes it (H27, logged 499); the upstream side is dropped.
         */
        conn_close(fc);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP))
        fc->can_read = true;
    if ((events & EPOLLOUT) && fc->state == FRONT_WRITING) {
        serve(fc);
        return;
    }
    if (fc->state == FRONT_READING && fc->can_read)
        do_read(fc);
}

bool front_adopt(struct upstream_loop *l, int fd, const char *fwd)
{
    struct front_conn *fc = xcalloc(1, sizeof(*fc));
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = fc };
    int one = 1;

    fc->kind = EV_CLIENT;
    fc->fd = fd;
    fc->loop = l;
    (void)snprintf(fc->fwd, sizeof(fc->fwd), "%s", fwd);
    strbuf_init(&fc->head, 0);
    strbuf_init(&fc->out, 0);
    fc->idle_since = now_ms();
    /* Answers go out in one send each; nothing is gained by waiting to fill a segment. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        conn_free(fc);
        return false;
    }
    fc->next = lists.all;
    if (lists.all)
        lists.all->prev = fc;
    lists.all = fc;
    return true;
}

void front_scan(struct upstream_loop *l, uint64_t now)
{
    struct front_conn *fc = lists.all, *next;

    (void)l;
    for (; fc; fc = next) {
        next = fc->next;
        /*
         * Idle keep-alive connections close after a minute, as Heroku's
         * router closes them; so does a client that stopped reading its
         * answer (libmicrohttpd's connection timeout did both).
         */
        if (now - fc->idle_since < FRONT_IDLE_MS)
            continue;
        if ((fc->state == FRONT_READING && fc->head.len == 0) || (fc->state == FRONT_WRITING && fc->out.len > 0))
            conn_close(fc);
    }
}

void front_close_all(struct upstream_loop *l)
{
    struct front_conn *fc;

    (void)l;
    while ((fc = lists.all)) {
        /* A request still waiting for its answer gets the router's H24 page, as MHD's got it. */
        if (fc->req && !fc->head_sent) {
            write_failure(fc, FAIL_STOPPING);
            if (!flush(fc))
                continue;   /* the client was gone: closed */
            if (fc->out.len == 0)
                request_end(fc, true);
        }
        conn_close(fc);
    }
    free(lists.read_buf);
    free(lists.scratch);
    lists.read_buf = lists.scratch = NULL;
}
