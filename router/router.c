/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's daemons and life cycle (router.h): the listening socket, one
 * libmicrohttpd daemon per loop (external epoll, suspend/resume, responses
 * queued after the first handler call; the loops of upstream.c drive them),
 * route-table publication and an orderly stop.
 *
 * Two knobs come from the environment, read once in router_start() because
 * router.h's config struct is a shared contract that must not change:
 * BERTH_ROUTER_ACCESS_LOG=0 turns the per-request log line off (benchmarks,
 * or a front that logs itself), and BERTH_ROUTER_HEAD_TIMEOUT_MS overrides
 * the 30 s H12 window (tests use it to exercise the timeout quickly).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
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

/* Leaves room for one upstream socket per client connection, plus slack. */
#define CONNECTION_LIMIT_MAX 10000u

struct route_table *router_current_table(struct router *r)
{
    struct route_table *t;

    pthread_mutex_lock(&r->table_lock);
    t = route_table_ref(r->table);
    pthread_mutex_unlock(&r->table_lock);
    return t;
}

/*
 * MHD's own diagnostics go through berth's log rather than straight to
 * stderr. Once the daemon serves, what MHD reports is about single client
 * connections (a peer that reset, a malformed request) and would flood the
 * log under load, so those lines go to debug level.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct router *r = cls;
    char buf[512];
    size_t len;

    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    log_msg(atomic_load(&r->serving) ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN, "router: libmicrohttpd: %s", buf);
}

static int listen_on(const char *addr, uint16_t *ret_port, struct berth_error **err)
{
    char host[256];
    const char *colon = strrchr(addr, ':'), *port;
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd, one = 1, ret;
    size_t hl;

    if (!colon || colon == addr)
        return berth_error_plain(err, EINVAL, "listen address '%s' is not host:port", addr);
    port = colon + 1;
    hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return berth_error_plain(err, EINVAL, "listen address '%s' is too long", addr);
    memcpy(host, addr, hl);
    host[hl] = '\0';
    ret = getaddrinfo(host, port, &hints, &ai);
    if (ret != 0)
        return berth_error_plain(err, EINVAL, "listen address '%s:%s': %s", host, port, gai_strerror(ret));

    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return berth_error_make(err, errno, "socket");
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        ret = berth_error_make(err, errno, "listening on '%s:%s'", host, port);
        freeaddrinfo(ai);
        (void)close(fd);
        return ret;
    }
    freeaddrinfo(ai);
    if (ss.ss_family == AF_INET6)
        *ret_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        *ret_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static unsigned connection_limit(void)
{
    struct rlimit rl;
    rlim_t limit = CONNECTION_LIMIT_MAX;

    /* Each client connection may hold an upstream socket too. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < limit + 64)
        limit = rl.rlim_cur / 2 > 128 ? rl.rlim_cur / 2 - 64 : 64;
    return (unsigned)limit;
}

static void router_free(struct router *r)
{
    for (unsigned i = 0; i < r->nloops; i++)
        upstream_loop_stop(r->loops[i]);
    free(r->loops);
    if (r->listen_fd >= 0)
        (void)close(r->listen_fd);
    error_pages_destroy(r->pages);
    route_table_unref(r->table);
    pthread_mutex_destroy(&r->table_lock);
    pthread_mutex_destroy(&r->set_lock);
    for (unsigned i = 0; i < REQ_SHARDS; i++)
        pthread_mutex_destroy(&r->shards[i].lock);
    pthread_mutex_destroy(&r->ws_lock);
    pthread_cond_destroy(&r->ws_cond);
    free(r);
}

/* One loop's daemon: no thread of its own, driven by MHD_run() from its loop. */
static struct MHD_Daemon *start_daemon(struct router *r, unsigned nloops)
{
    return MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, proxy_access, r,
        /* First, so that even option parsing complaints reach our log. */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, r,
        /*
         * Holds the request head: 32 KiB fits Heroku's 8 KB request line plus
         * an 8 KB header line with room to spare (as nginx's 4 x 8k). Not
         * more: MHD clears the whole pool between keep-alive requests, and at
         * 64 KiB that memset was 11% of the router's CPU under wrk.
         */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
        MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit() / nloops,
        MHD_OPTION_URI_LOG_CALLBACK, proxy_uri_log, r,
        MHD_OPTION_NOTIFY_COMPLETED, proxy_completed, r,
        MHD_OPTION_END);
}

int router_start(const struct router_config *cfg, struct router **ret, struct berth_error **err)
{
    struct router *r;
    const char *env;
    unsigned threads;
    long nprocs;
    int fd, rc;

    if (!cfg || !cfg->listen_addr || !cfg->connect)
        return berth_error_plain(err, EINVAL, "router config needs a listen address and a connect callback");

    r = xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->listen_fd = -1;
    pthread_mutex_init(&r->table_lock, NULL);
    pthread_mutex_init(&r->set_lock, NULL);
    for (unsigned i = 0; i < REQ_SHARDS; i++)
        pthread_mutex_init(&r->shards[i].lock, NULL);
    pthread_mutex_init(&r->ws_lock, NULL);
    pthread_cond_init(&r->ws_cond, NULL);
    atomic_init(&r->stopping, false);
    atomic_init(&r->serving, false);
    r->table = route_table_build(NULL, 0, NULL, 0, 1);
    env = getenv("BERTH_ROUTER_ACCESS_LOG");
    r->access_log = !(env && strcmp(env, "0") == 0);
    r->head_timeout_ms = HEAD_TIMEOUT_MS;
    env = getenv("BERTH_ROUTER_HEAD_TIMEOUT_MS");
    if (env) {
        unsigned long v = strtoul(env, NULL, 10);
        if (v >= 10 && v <= 3600000)
            r->head_timeout_ms = (unsigned)v;
    }

    nprocs = sysconf(_SC_NPROCESSORS_ONLN);
    threads = cfg->threads ? cfg->threads : (nprocs > 0 ? (unsigned)nprocs : 2);
    if (threads > 64)
        threads = 64;

    rc = error_pages_create(r->pages);
    if (rc < 0) {
        router_free(r);
        return berth_error_make(err, -rc, "creating error pages");
    }
    fd = listen_on(cfg->listen_addr, &r->port, err);
    if (fd < 0) {
        router_free(r);
        return fd;
    }
    (void)snprintf(r->port_str, sizeof(r->port_str), "%u", (unsigned)r->port);

    /*
     * The loops accept from the one listening socket themselves and give
     * each connection to their own daemon (see upstream.c), so the daemons
     * have no listening socket of their own.
     */
    r->listen_fd = fd;
    r->loops = xcalloc(threads, sizeof(*r->loops));
    for (unsigned i = 0; i < threads; i++) {
        struct MHD_Daemon *d = start_daemon(r, threads);

        if (!d) {
            router_free(r);
            return berth_error_plain(err, EIO, "starting the HTTP daemon on '%s' failed", cfg->listen_addr);
        }
        r->loops[i] = upstream_loop_start(r, i, d, err);
        if (!r->loops[i]) {
            MHD_stop_daemon(d);
            router_free(r);
            return berth_error_wrap(err, "starting the router");
        }
        r->nloops++;
    }
    atomic_store(&r->serving, true);
    *ret = r;
    return 0;
}

int router_set_routes(struct router *r, const struct router_route *routes, size_t n,
                      struct berth_error **err)
{
    struct router_route *norm;
    char (*hosts)[HOST_MAX + 1];
    struct route_table *t, *old;

    if (n > ROUTES_MAX)
        return berth_error_plain(err, E2BIG, "%zu routes are more than the %u allowed", n, ROUTES_MAX);
    norm = xcalloc(n ? n : 1, sizeof(*norm));
    hosts = xcalloc(n ? n : 1, sizeof(*hosts));
    for (size_t i = 0; i < n; i++) {
        if (!routes[i].host || !routes[i].app || !routes[i].app[0] ||
            host_normalise(routes[i].host, hosts[i]) < 0) {
            int ret = berth_error_plain(err, EINVAL, "invalid route '%s' -> '%s'",
                                        routes[i].host ? routes[i].host : "(null)",
                                        routes[i].app ? routes[i].app : "(null)");
            free(norm);
            free(hosts);
            return ret;
        }
        norm[i].host = hosts[i];
        norm[i].app = routes[i].app;
        norm[i].generation = routes[i].generation;
    }

    pthread_mutex_lock(&r->set_lock);
    r->mark++;
    t = route_table_build(norm, n, r->table, r->mark, r->nloops);
    pthread_mutex_lock(&r->table_lock);
    old = r->table;
    r->table = t;
    pthread_mutex_unlock(&r->table_lock);
    route_table_retire_pools(old, r->mark);
    pthread_mutex_unlock(&r->set_lock);

    route_table_unref(old);
    free(norm);
    free(hosts);
    return 0;
}

uint16_t router_port(const struct router *r)
{
    return r->port;
}

void router_stop(struct router *r)
{
    struct MHD_Connection **wake = NULL;
    size_t nwake = 0;

    if (!r)
        return;
    atomic_store(&r->stopping, true);

    /*
     * Suspended connections neither time out nor are closed by
     * MHD_stop_daemon(): wake every one, marked aborted, so it answers or
     * closes. A request suspends only under its lock after checking
     * `stopping`, so none can slip into suspension after this pass.
     *
     * The connections are resumed after the shard locks are dropped, because
     * MHD may hold its own locks when it calls proxy_completed(), which takes
     * a shard lock. A connection whose flag we cleared stays suspended (and
     * so alive) until we resume it.
     */
    for (unsigned s = 0; s < REQ_SHARDS; s++) {
        struct MHD_Connection **more;
        size_t n = 0;

        pthread_mutex_lock(&r->shards[s].lock);
        for (struct proxy_req *req = r->shards[s].head; req; req = req->next)
            n++;
        more = xrealloc(wake, (nwake + n + 1) * sizeof(*wake));
        wake = more;
        for (struct proxy_req *req = r->shards[s].head; req; req = req->next) {
            pthread_mutex_lock(&req->lock);
            req->aborted = true;
            if (proxy_req_wake_locked(req))
                wake[nwake++] = req->conn;
            pthread_mutex_unlock(&req->lock);
        }
        pthread_mutex_unlock(&r->shards[s].lock);
    }
    for (size_t i = 0; i < nwake; i++)
        MHD_resume_connection(wake[i]);
    free(wake);

    ws_stop_all(r);
    router_free(r);   /* each loop stops its daemon */
}
