/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Client connections, before and beside libmicrohttpd: accepting them
 * under the router's limits, the guard on every byte they send, and the
 * deadline for a request head.
 *
 * Limits: the router takes at most `connection_limit` client connections
 * (derived from the file-descriptor limit, which router_start() raises to
 * what the host allows) and at most `per_address_max` from one address
 * (an IPv6 client counts by its /64). A connection over either gets a 503
 * page and is closed at once, with an H22 log line: one address's flood
 * costs others nothing.
 *
 * The guard (guard.h) must see exactly the bytes libmicrohttpd parses, in
 * order, before MHD does. MHD 0.9.75 offers no hook for that, so the
 * router takes the reads themselves: intercept.c defines recv() and
 * gnutls_record_recv() in the executable, which the dynamic linker binds
 * MHD's (and GnuTLS's) calls to, and hands every read on a loop thread to
 * clients_filter(). A registry indexed by file descriptor tells a client
 * connection's reads (plain or TLS) from everything else, which passes
 * through untouched. When the guard refuses, the read fails with
 * ECONNRESET, so MHD closes the connection without ever parsing the bytes;
 * first the router writes the guard's status page itself, unless a
 * response is already under way on the connection (then it only closes).
 *
 * A plain connection then goes to the loop's front (front.c), which reads
 * it itself and feeds clients_filter() directly; when the front hands it
 * to MHD (clients_handover()), the bytes it read wait in the connection's
 * stash and the interposed recv() returns them first (clients_unstash()),
 * unfiltered, since the guard has seen them. TLS connections go to MHD at
 * once.
 *
 * The head deadline: from a connection's accept, and from the first byte of
 * each later request, its head must be in within client_head_timeout_ms
 * (10 s). Past it the connection gets a 408 and is shut down (H28), so a
 * slowloris client holds a connection seconds, not minutes. Idle keep-alive
 * connections between requests are MHD's, or the front's, to time out
 * (CLIENT_IDLE_S).
 *
 * Threads: a connection is accepted, read, scanned and closed on its
 * loop's thread; the registry's slots are atomics, the per-address counts
 * are under one mutex (taken once per connection, not per request).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

struct client_conn {
    int fd;
    bool tls;
    bool busy;                    /* a response is being sent: no status page over it */
    bool refused;                 /* the guard or a deadline ended it: every later read fails */
    bool passthrough;             /* switched protocols: its bytes are no longer HTTP */
    bool in_accept, closed;       /* see clients_accept() */
    struct guard guard;
    uint64_t head_start;          /* when the current head began (0: not inside one) */
    uint64_t requests_seen;
    uint8_t addr[16];             /* the address as counted: IPv4-mapped, or the IPv6 /64 */
    struct sockaddr_storage ss;   /* the peer, for MHD_add_connection() */
    socklen_t sslen;
    char *stash;                  /* what the front read before handing over, for MHD's first reads */
    size_t stash_len, stash_off;
    char fwd[INET6_ADDRSTRLEN];
    struct router *router;
    struct MHD_Connection *conn;
    struct cert_set *certs;       /* the certificates its TLS handshake used (held) */
    unsigned loop;
    struct client_conn *prev, *next;   /* the loop's list (loop thread only) */
};

struct addr_count {
    uint8_t addr[16];
    unsigned count;
    struct addr_count *next;
};

#define ADDR_BUCKETS 4096

struct client_registry {
    pthread_mutex_t lock;         /* counts and addrs */
    unsigned total;
    struct addr_count *addrs[ADDR_BUCKETS];
    struct client_conn **loops;   /* each loop's list head (its thread only) */
};

/* By file descriptor: the interposed reads have nothing else to go by. */
static _Atomic(struct client_conn *) *fd_table;
static size_t fd_table_size;
static pthread_mutex_t fd_table_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned fd_table_users;

/* ---------------------------------------------------------------- pages */

struct refusal {
    unsigned status;
    const char *reason;
    const char *title;
    const char *text;
};

static const struct refusal refusals[] = {
    { 400, "Bad Request", "Bad request", "The request could not be understood." },
    { 405, "Method Not Allowed", "Method not allowed", "This router does not serve CONNECT." },
    { 408, "Request Timeout", "Request timeout", "The request did not arrive in time." },
    { 414, "URI Too Long", "URI too long", "The request line is longer than this router accepts." },
    { 431, "Request Header Fields Too Large", "Request header fields too large",
      "The request headers are larger than this router accepts." },
    { 503, "Service Unavailable", "Too many connections",
      "Too many connections are open from your address, or to this router." },
    { 505, "HTTP Version Not Supported", "HTTP version not supported",
      "This router speaks HTTP/1.0 and HTTP/1.1." },
};

/* The whole answer, head and page, built into buf; its length. */
static size_t refusal_answer(unsigned status, char *buf, size_t size)
{
    const struct refusal *rf = &refusals[0];
    char body[512];
    int blen, len;

    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
        if (refusals[i].status == status)
            rf = &refusals[i];
    blen = snprintf(body, sizeof(body),
                    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n"
                    "<body><h1>%s</h1><p>%s</p></body></html>\n",
                    rf->title, rf->title, rf->text);
    len = snprintf(buf, size,
                   "HTTP/1.1 %u %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                   "Cache-Control: no-cache, no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
                   rf->status, rf->reason, blen, body);
    return len > 0 && (size_t)len < size ? (size_t)len : 0;
}

/* ---------------------------------------------------------------- the fd registry */

static struct client_conn *registry_get(int fd)
{
    if (fd < 0 || (size_t)fd >= fd_table_size)
        return NULL;
    return atomic_load_explicit(&fd_table[fd], memory_order_acquire);
}

static void registry_clear(struct client_conn *c)
{
    struct client_conn *expected = c;

    /* Only its own entry: the fd may already be another connection's. */
    (void)atomic_compare_exchange_strong(&fd_table[c->fd], &expected, NULL);
}

int clients_global_init(struct router *r, unsigned nloops, struct berth_error **err)
{
    struct rlimit rl;

    pthread_mutex_lock(&fd_table_lock);
    if (fd_table_users++ == 0) {
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
            fd_table_users--;
            pthread_mutex_unlock(&fd_table_lock);
            return berth_error_make(err, errno, "getrlimit");
        }
        fd_table_size = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 22) ? (1u << 22)
                                                                                 : (size_t)rl.rlim_cur;
        fd_table = xcalloc(fd_table_size, sizeof(*fd_table));
    }
    pthread_mutex_unlock(&fd_table_lock);
    r->clients = xcalloc(1, sizeof(*r->clients));
    pthread_mutex_init(&r->clients->lock, NULL);
    r->clients->loops = xcalloc(nloops, sizeof(*r->clients->loops));
    return 0;
}

void clients_global_free(struct router *r)
{
    struct client_registry *reg = r->clients;

    if (!reg)
        return;
    for (size_t i = 0; i < ADDR_BUCKETS; i++) {
        struct addr_count *a = reg->addrs[i], *next;
        for (; a; a = next) {
            next = a->next;
            free(a);
        }
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg->loops);
    free(reg);
    r->clients = NULL;
    pthread_mutex_lock(&fd_table_lock);
    if (--fd_table_users == 0) {
        free(fd_table);
        fd_table = NULL;
        fd_table_size = 0;
    }
    pthread_mutex_unlock(&fd_table_lock);
}

/* ---------------------------------------------------------------- per-address counts */

static void address_key(const struct sockaddr_storage *ss, uint8_t key[16], char *fwd, size_t fwd_size)
{
    memset(key, 0, 16);
    fwd[0] = '\0';
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &in->sin_addr, 4);
        (void)inet_ntop(AF_INET, &in->sin_addr, fwd, (socklen_t)fwd_size);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        bool mapped = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
        /* One host holds a whole /64; an IPv4-mapped address counts as its IPv4 one. */
        memcpy(key, &in6->sin6_addr, mapped ? 16 : 8);
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, fwd, (socklen_t)fwd_size);
    }
}

static size_t addr_bucket(const uint8_t key[16])
{
    uint32_t h = 2166136261u;

    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % ADDR_BUCKETS;
}

/* Counts one more connection from key; false (nothing counted) when a limit says no. */
static bool count_take(struct router *r, const uint8_t key[16], const char **ret_why)
{
    struct client_registry *reg = r->clients;
    struct addr_count **p, *a;
    bool ok = false;

    pthread_mutex_lock(&reg->lock);
    for (p = &reg->addrs[addr_bucket(key)]; *p && memcmp((*p)->addr, key, 16) != 0; p = &(*p)->next)
        ;
    a = *p;
    if (reg->total >= r->connection_limit) {
        *ret_why = "the router's connection limit";
    } else if (a && a->count >= r->per_address_max) {
        *ret_why = "the connection limit of the client's address";
    } else {
        if (!a) {
            a = xcalloc(1, sizeof(*a));
            memcpy(a->addr, key, 16);
            *p = a;
        }
        a->count++;
        reg->total++;
        ok = true;
    }
    pthread_mutex_unlock(&reg->lock);
    return ok;
}

static void count_give(struct router *r, const uint8_t key[16])
{
    struct client_registry *reg = r->clients;
    struct addr_count **p, *a;

    pthread_mutex_lock(&reg->lock);
    for (p = &reg->addrs[addr_bucket(key)]; *p && memcmp((*p)->addr, key, 16) != 0; p = &(*p)->next)
        ;
    a = *p;
    if (a && --a->count == 0) {
        *p = a->next;
        free(a);
    }
    reg->total--;
    pthread_mutex_unlock(&reg->lock);
}

/* ---------------------------------------------------------------- accepting */

static void refuse_at_accept(int fd, const char *fwd, const char *why)
{
    char answer[1024];
    size_t len = refusal_answer(503, answer, sizeof(answer));

    /* Best effort on a fresh socket: the page fits its send buffer. */
    (void)!send(fd, answer, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)close(fd);
    access_log_refusal(fwd, "H22", "Connection limit reached", why, 503);
}

static void list_add(struct client_registry *reg, struct client_conn *c)
{
    c->prev = NULL;
    c->next = reg->loops[c->loop];
    if (c->next)
        c->next->prev = c;
    reg->loops[c->loop] = c;
}

static void list_remove(struct client_registry *reg, struct client_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (reg->loops[c->loop] == c)
        reg->loops[c->loop] = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Undoes what accepting did (counts, registry, list); the fd is MHD's or already closed. */
static void conn_forget(struct client_conn *c)
{
    list_remove(c->router->clients, c);
    registry_clear(c);
    count_give(c->router, c->addr);
    if (c->certs)
        tls_cert_set_unref(c->certs);
    c->certs = NULL;
    free(c->stash);
    c->stash = NULL;
}

/*
 * Gives the counted, registered connection c to `daemon`. Returns whether
 * the daemon got it; when not, c is freed and the socket closed.
 */
static bool give_to_mhd(struct client_conn *c, struct MHD_Daemon *daemon)
{
    enum MHD_Result rc;

    /* MHD calls clients_notify(STARTED), and on some failures CLOSED, from inside. */
    c->in_accept = true;
    rc = MHD_add_connection(daemon, c->fd, (const struct sockaddr *)&c->ss, c->sslen);
    c->in_accept = false;
    if (rc != MHD_YES) {
        /* MHD has closed the socket. */
        if (!c->closed)
            conn_forget(c);
        free(c);
        return false;
    }
    if (c->closed) {
        free(c);
        return false;
    }
    return true;
}

bool clients_accept(struct upstream_loop *l, int listen_fd, struct MHD_Daemon *daemon, bool tls)
{
    struct router *r = l->r;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct client_conn *c;
    const char *why = NULL;
    int fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_warn("router: accept: %s", strerror(errno));
        return false;
    }
    c = xcalloc(1, sizeof(*c));
    c->fd = fd;
    c->tls = tls;
    c->router = r;
    c->loop = l->idx;
    address_key(&ss, c->addr, c->fwd, sizeof(c->fwd));
    if ((size_t)fd >= fd_table_size) {
        /* Past the limit the registry was sized for (raised behind our back): unguarded, so refused. */
        (void)close(fd);
        log_warn("router: client socket %d is past the file-descriptor limit the router started with", fd);
        free(c);
        return false;
    }
    if (!count_take(r, c->addr, &why)) {
        refuse_at_accept(fd, c->fwd, why);
        free(c);
        return false;
    }
    guard_init(&c->guard);
    c->head_start = now_ms();
    memcpy(&c->ss, &ss, len);
    c->sslen = len;
    atomic_store_explicit(&fd_table[fd], c, memory_order_release);
    list_add(r->clients, c);
    if (tls)
        return give_to_mhd(c, daemon);
    /* Plain HTTP starts in the front (front.c), which hands it to MHD when it must. */
    if (front_adopt(l, fd, c->fwd))
        return false;
    conn_forget(c);
    (void)close(fd);
    free(c);
    return false;
}

bool clients_handover(struct upstream_loop *l, int fd, const char *bytes, size_t n)
{
    struct client_conn *c = registry_get(fd);

    if (!c) {
        (void)close(fd);
        return false;
    }
    if (n > 0) {
        c->stash = xmalloc(n);
        memcpy(c->stash, bytes, n);
        c->stash_len = n;
        c->stash_off = 0;
    }
    return give_to_mhd(c, l->daemons[0]);
}

ssize_t clients_unstash(int fd, void *buf, size_t len)
{
    struct client_conn *c = registry_get(fd);
    size_t n;

    if (!c || !c->stash)
        return -1;
    n = c->stash_len - c->stash_off;
    if (n > len)
        n = len;
    memcpy(buf, c->stash + c->stash_off, n);
    c->stash_off += n;
    if (c->stash_off == c->stash_len) {
        free(c->stash);
        c->stash = NULL;
    }
    return (ssize_t)n;
}

void clients_release(int fd)
{
    struct client_conn *c = registry_get(fd);

    if (!c)
        return;
    conn_forget(c);
    free(c);
}

void clients_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe)
{
    const union MHD_ConnectionInfo *ci;
    struct client_conn *c;

    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = ci ? registry_get(ci->connect_fd) : NULL;
        if (c) {
            c->conn = conn;
            *socket_context = c;
        }
        return;
    }
    c = *socket_context;
    if (!c)
        return;
    *socket_context = NULL;
    /* The orderly end MHD_USE_TURBO leaves out (router.c): the last answer is followed by a FIN. */
    if (!c->tls && !c->passthrough)
        (void)shutdown(c->fd, SHUT_WR);
    conn_forget(c);
    c->closed = true;
    if (!c->in_accept)
        free(c);
}

static struct client_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}

void clients_set_busy(struct MHD_Connection *conn, bool busy)
{
    struct client_conn *c = conn_of(conn);

    if (c)
        c->busy = busy;
}

void clients_passthrough(struct MHD_Connection *conn)
{
    struct client_conn *c = conn_of(conn);

    if (c) {
        c->passthrough = true;
        guard_passthrough(&c->guard);
    }
}

const char *clients_address(struct MHD_Connection *conn)
{
    struct client_conn *c = conn_of(conn);

    return c ? c->fwd : "";
}

void clients_abort(struct MHD_Connection *conn, enum router_failure f)
{
    struct client_conn *c = conn_of(conn);

    if (!c || c->refused)
        return;
    c->refused = true;
    if (!c->tls && !c->busy) {
        struct strbuf answer = STRBUF_INIT;
        failure_answer(f, &answer);
        (void)!send(c->fd, answer.buf, answer.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        strbuf_release(&answer);
    }
    (void)shutdown(c->fd, SHUT_RDWR);
}

bool clients_hold_certs(int fd, struct cert_set *set)
{
    struct client_conn *c = registry_get(fd);

    if (!c || !c->tls)
        return false;
    if (c->certs)
        tls_cert_set_unref(c->certs);
    c->certs = set;
    return true;
}

/* ---------------------------------------------------------------- the guard */

/*
 * Ends a connection the router refuses: its status page goes out first
 * unless a response is under way (`write_page` sends it the way the
 * connection's bytes go: plain or TLS), then every read fails.
 */
static void refuse(struct client_conn *c, unsigned status, const char *code, const char *desc,
                   const char *why, ssize_t (*write_page)(void *ctx, const char *buf, size_t len),
                   void *ctx)
{
    char answer[1024];
    size_t len;

    c->refused = true;
    if (!c->busy && (len = refusal_answer(status, answer, sizeof(answer))) > 0)
        (void)write_page(ctx, answer, len);
    access_log_refusal(c->fwd, code, desc, why, c->busy ? 0 : status);
}

static ssize_t write_plain(void *ctx, const char *buf, size_t len)
{
    return send(*(int *)ctx, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Notes when a head starts and ends, for the deadline. */
static void follow_heads(struct client_conn *c)
{
    if (c->guard.requests != c->requests_seen) {
        c->requests_seen = c->guard.requests;
        c->head_start = guard_in_head(&c->guard) ? now_ms() : 0;
    } else if (!c->head_start && guard_in_head(&c->guard)) {
        c->head_start = now_ms();
    }
}

ssize_t clients_filter(int fd, bool tls, char *buf, ssize_t n,
                       ssize_t (*write_page)(void *ctx, const char *buf, size_t len), void *ctx)
{
    struct client_conn *c;
    int status;

    if (n <= 0 || !upstream_loop_self() || !(c = registry_get(fd)) || c->tls != tls || c->passthrough)
        return n;
    if (c->refused) {
        errno = ECONNRESET;
        return -1;
    }
    status = guard_feed(&c->guard, buf, (size_t)n);
    if (status == 0) {
        follow_heads(c);
        return n;
    }
    if (!write_page) {
        write_page = write_plain;
        ctx = &c->fd;
    }
    refuse(c, (unsigned)status, "H26", "Request Error", c->guard.why, write_page, ctx);
    errno = ECONNRESET;
    return -1;
}

void clients_scan(struct upstream_loop *l, uint64_t now)
{
    struct router *r = l->r;

    for (struct client_conn *c = r->clients->loops[l->idx]; c; c = c->next) {
        if (c->refused || c->passthrough || !c->head_start || now - c->head_start < r->client_head_timeout_ms)
            continue;
        /*
         * A TLS connection gets no page (it may still be in its handshake);
         * either way the shutdown makes MHD's next read see the end.
         */
        c->refused = true;
        if (!c->tls && !c->busy) {
            char answer[1024];
            size_t len = refusal_answer(408, answer, sizeof(answer));
            (void)!send(c->fd, answer, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        (void)shutdown(c->fd, SHUT_RDWR);
        access_log_refusal(c->fwd, "H28", "Client Connection Idle", "request head not received in time",
                           c->busy || c->tls ? 0 : 408);
    }
}
