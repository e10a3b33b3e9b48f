/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's daemons and life cycle (router.h): the listening sockets,
 * one or two libmicrohttpd daemons per loop (HTTP, and HTTPS with its
 * certificate chosen by SNI: tls.c), all in external-epoll mode with
 * suspend/resume and responses queued after the first handler call (the
 * loops of loop.c drive them), route-table and certificate publication,
 * and an orderly stop.
 *
 * Limits are set here once: the file-descriptor limit is raised to the
 * hard limit the host allows, and the router takes half of it for client
 * connections (each may hold an upstream socket too), at most
 * CONNECTION_LIMIT_MAX.
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

struct route_table *router_current_table(struct router *r)
{
    struct route_table *t;

    pthread_mutex_lock(&r->table_lock);
    t = route_table_ref(r->table);
    pthread_mutex_unlock(&r->table_lock);
    return t;
}

struct cert_set *router_current_certs(struct router *r)
{
    struct cert_set *s;

    pthread_mutex_lock(&r->table_lock);
    s = tls_cert_set_ref(r->certs);
    pthread_mutex_unlock(&r->table_lock);
    return s;
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

/* The port of an IPv4 or IPv6 address, in host order. */
static uint16_t sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
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
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        uint16_t asked = sockaddr_port(ai->ai_addr);
        bool low = errno == EACCES && asked > 0 && asked < 1024;

        ret = berth_error_make(err, errno, "listening on '%s:%s'%s", host, port,
                               low ? " (a port under 1024 needs CAP_NET_BIND_SERVICE: berth.service "
                                     "hands it; docs/OPERATIONS.md, As a service)" : "");
        freeaddrinfo(ai);
        (void)close(fd);
        return ret;
    }
    freeaddrinfo(ai);
    *ret_port = sockaddr_port((const struct sockaddr *)&ss);
    return fd;
}

/*
 * Raises the file-descriptor limit as far as the host allows; the connection
 * limit follows from it, and so does whether the connector keeps stocks of
 * unconnected sockets (up to ROUTER_STOCK_MAX descriptors per loop and
 * busy backend, connect.c), which only a limit of STOCK_FD_MIN or more leaves room for.
 */
static unsigned connection_limit(bool *ret_stock)
{
    struct rlimit rl;
    rlim_t half;

    *ret_stock = false;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 256;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max == RLIM_INFINITY ? 1u << 20 : rl.rlim_max;
        struct rlimit raised = { want, rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = want;
    }
    *ret_stock = rl.rlim_cur >= STOCK_FD_MIN;
    /* Each client connection may hold an upstream socket too; keep some for everything else. */
    half = rl.rlim_cur == RLIM_INFINITY ? CONNECTION_LIMIT_MAX : rl.rlim_cur / 2;
    if (half > CONNECTION_LIMIT_MAX + 64)
        return CONNECTION_LIMIT_MAX;
    return half > 128 ? (unsigned)(half - 64) : 64;
}

static void router_free(struct router *r)
{
    for (unsigned i = 0; i < r->nloops; i++)
        upstream_loop_stop(r->loops[i]);
    free(r->loops);
    if (r->listen_fd >= 0)
        (void)close(r->listen_fd);
    if (r->tls_listen_fd >= 0)
        (void)close(r->tls_listen_fd);
    error_pages_destroy(r->pages);
    probe_free_all(r);
    route_table_unref(r->table);
    tls_cert_set_unref(r->certs);
    clients_global_free(r);
    pthread_mutex_destroy(&r->table_lock);
    pthread_mutex_destroy(&r->set_lock);
    pthread_mutex_destroy(&r->probe_lock);
    for (unsigned i = 0; i < LOOPS_MAX; i++)
        pthread_mutex_destroy(&r->shards[i].lock);
    pthread_mutex_destroy(&r->ws_lock);
    pthread_cond_destroy(&r->ws_cond);
    free(r);
}

/*
 * One loop's daemon: no thread or listening socket of its own, driven by
 * MHD_run() from its loop, fed the connections the loop accepts.
 */
static struct MHD_Daemon *start_daemon(struct router *r, bool tls)
{
    /*
     * The HTTP daemon takes connections from the front (front.c) with bytes
     * already read, which it gets back through recv() (clients.c). With
     * MHD_USE_TURBO a connection MHD is given is read at its next run
     * rather than when epoll sees new bytes, which may never come; turbo
     * also skips the shutdown before close, which clients_notify() does.
     */
    unsigned flags = MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : MHD_USE_TURBO);

    return MHD_start_daemon(
        flags, 0, NULL, NULL, proxy_access, r,
        /* First, so that even option parsing complaints reach our log. */
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, r,
        /*
         * Holds the request head: 32 KiB fits the guard's 32 KiB head (an
         * 8 KB request line plus 8 KB header lines, as Heroku's router). Not
         * more: MHD clears the whole pool between keep-alive requests, and at
         * 64 KiB that memset was 11% of the router's CPU under wrk.
         */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(GUARD_HEAD_MAX + 1024),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CLIENT_IDLE_S,
        /* Ours counts first (clients.c): MHD's own only guards against a bug there. */
        MHD_OPTION_CONNECTION_LIMIT, r->connection_limit + 16,
        /* Host and request-line checks on top of the guard's; a second net costs nothing. */
        MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_URI_LOG_CALLBACK, proxy_uri_log, r,
        MHD_OPTION_NOTIFY_COMPLETED, proxy_completed, r,
        MHD_OPTION_NOTIFY_CONNECTION, clients_notify, r,
        tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, tls_cert_callback(),
        MHD_OPTION_END);
}

static void apply_config(struct router *r, const struct router_config *cfg)
{
    r->cfg = *cfg;
    r->ops = cfg->backend_ops;
    r->access_log = !cfg->no_access_log;
    r->defaults = cfg->defaults;
    if (!r->defaults.connect_timeout_ms)
        r->defaults.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (!r->defaults.head_timeout_ms)
        r->defaults.head_timeout_ms = DEFAULT_HEAD_TIMEOUT_MS;
    if (!r->defaults.idle_timeout_ms)
        r->defaults.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    r->client_head_timeout_ms = cfg->client_head_timeout_ms ? cfg->client_head_timeout_ms : CLIENT_HEAD_TIMEOUT_MS;
    r->per_address_max = cfg->per_address_max ? cfg->per_address_max : PER_ADDRESS_DEFAULT;
    r->budget_max = cfg->budget_bytes ? cfg->budget_bytes : BUDGET_DEFAULT;
    r->connection_limit = connection_limit(&r->stock);
}

static struct router *router_alloc(const struct router_config *cfg)
{
    struct router *r = xcalloc(1, sizeof(*r));
    struct berth_error *ignored = NULL;

    apply_config(r, cfg);
    r->listen_fd = -1;
    r->tls_listen_fd = -1;
    pthread_mutex_init(&r->table_lock, NULL);
    pthread_mutex_init(&r->set_lock, NULL);
    pthread_mutex_init(&r->probe_lock, NULL);
    atomic_init(&r->n_probes, 0);
    for (unsigned i = 0; i < LOOPS_MAX; i++)
        pthread_mutex_init(&r->shards[i].lock, NULL);
    pthread_mutex_init(&r->ws_lock, NULL);
    pthread_cond_init(&r->ws_cond, NULL);
    atomic_init(&r->stopping, false);
    atomic_init(&r->serving, false);
    atomic_init(&r->budget_used, 0);
    /* An empty table cannot fail to build. */
    (void)route_table_build(NULL, 0, NULL, 0, 1, r->ops, &r->defaults, &r->table, &ignored);
    return r;
}

static int open_listeners(struct router *r, const struct router_config *cfg, struct berth_error **err)
{
    int fd = listen_on(cfg->listen_addr, &r->port, err);

    if (fd < 0)
        return fd;
    r->listen_fd = fd;
    (void)snprintf(r->port_str, sizeof(r->port_str), "%u", (unsigned)r->port);
    if (!cfg->https_addr)
        return 0;
    fd = listen_on(cfg->https_addr, &r->tls_port, err);
    if (fd < 0)
        return fd;
    r->tls_listen_fd = fd;
    (void)snprintf(r->tls_port_str, sizeof(r->tls_port_str), "%u", (unsigned)r->tls_port);
    return 0;
}

static int start_loops(struct router *r, unsigned threads, struct berth_error **err)
{
    r->loops = xcalloc(threads, sizeof(*r->loops));
    for (unsigned i = 0; i < threads; i++) {
        struct MHD_Daemon *http = start_daemon(r, false);
        struct MHD_Daemon *https = r->tls_listen_fd >= 0 ? start_daemon(r, true) : NULL;

        if (!http || (r->tls_listen_fd >= 0 && !https)) {
            if (http)
                MHD_stop_daemon(http);
            if (https)
                MHD_stop_daemon(https);
            return berth_error_plain(err, EIO, "starting the %s daemon failed", http ? "HTTPS" : "HTTP");
        }
        r->loops[i] = upstream_loop_start(r, i, http, https, err);
        if (!r->loops[i]) {
            MHD_stop_daemon(http);
            if (https)
                MHD_stop_daemon(https);
            return berth_error_wrap(err, "starting the router");
        }
        r->nloops++;
    }
    return 0;
}

int router_start(const struct router_config *cfg, struct router **ret, struct berth_error **err)
{
    struct router *r;
    unsigned threads;
    long nprocs;
    int rc;

    if (!cfg || !cfg->listen_addr || !cfg->backend_ops)
        return berth_error_plain(err, EINVAL, "router config needs a listen address and backend operations");
    if (!intercept_active())
        return berth_error_plain(err, ENOSYS,
                                 "the router's guard is not linked in: the executable must export recv() and "
                                 "gnutls_record_recv() (router/meson.build's link_whole and --export-dynamic-symbol)");
    nprocs = sysconf(_SC_NPROCESSORS_ONLN);
    threads = cfg->threads ? cfg->threads : (nprocs > 0 ? (unsigned)nprocs : 2);
    if (threads > LOOPS_MAX)
        threads = LOOPS_MAX;

    r = router_alloc(cfg);
    rc = clients_global_init(r, threads, err);
    if (rc == 0) {
        rc = error_pages_create(r->pages, r->page_len);
        if (rc < 0)
            rc = berth_error_make(err, -rc, "creating error pages");
    }
    if (rc == 0)
        rc = open_listeners(r, cfg, err);
    if (rc == 0)
        rc = start_loops(r, threads, err);
    if (rc < 0) {
        router_free(r);
        return rc;
    }
    atomic_store(&r->serving, true);
    *ret = r;
    return 0;
}

/* Copies the routes with their hosts normalised ("*." kept in front of a wildcard's). */
static int normalise_routes(const struct router_route *routes, size_t n, struct router_route *norm,
                            char (*hosts)[HOST_MAX + 3], struct berth_error **err)
{
    for (size_t i = 0; i < n; i++) {
        const char *host = routes[i].host;
        bool wildcard = host && host[0] == '*' && host[1] == '.';

        if (!host || !routes[i].app || !routes[i].app[0] ||
            host_normalise(wildcard ? host + 2 : host, hosts[i] + (wildcard ? 2 : 0)) < 0 ||
            (routes[i].n_backends && !routes[i].backends))
            return berth_error_plain(err, EINVAL, "invalid route '%s' -> '%s'", host ? host : "(null)",
                                     routes[i].app ? routes[i].app : "(null)");
        if (wildcard)
            memcpy(hosts[i], "*.", 2);
        norm[i] = routes[i];
        norm[i].host = hosts[i];
    }
    return 0;
}

int router_set_routes(struct router *r, const struct router_route *routes, size_t n,
                      struct berth_error **err)
{
    struct router_route *norm;
    char (*hosts)[HOST_MAX + 3];
    struct route_table *t, *old;
    int rc;

    if (n > ROUTES_MAX)
        return berth_error_plain(err, E2BIG, "%zu routes are more than the %u allowed", n, ROUTES_MAX);
    norm = xcalloc(n ? n : 1, sizeof(*norm));
    hosts = xcalloc(n ? n : 1, sizeof(*hosts));
    rc = normalise_routes(routes, n, norm, hosts, err);
    if (rc == 0) {
        pthread_mutex_lock(&r->set_lock);
        r->mark++;
        rc = route_table_build(norm, n, r->table, r->mark, r->nloops, r->ops, &r->defaults, &t, err);
        if (rc == 0) {
            pthread_mutex_lock(&r->table_lock);
            old = r->table;
            r->table = t;
            pthread_mutex_unlock(&r->table_lock);
            route_table_retire_pools(old, r->mark);
            route_table_unref(old);
        }
        pthread_mutex_unlock(&r->set_lock);
    }
    free(norm);
    free(hosts);
    return rc;
}

int router_set_certs(struct router *r, const struct router_cert *certs, size_t n,
                     struct berth_error **err)
{
    struct cert_set *set, *old;
    int rc = tls_cert_set_build(certs, n, &set, err);

    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->table_lock);
    old = r->certs;
    r->certs = set;
    pthread_mutex_unlock(&r->table_lock);
    tls_cert_set_unref(old);
    return 0;
}

uint16_t router_port(const struct router *r)
{
    return r->port;
}

uint16_t router_https_port(const struct router *r)
{
    return r->tls_listen_fd >= 0 ? r->tls_port : 0;
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
     * The connections are resumed after the list locks are dropped, because
     * MHD may hold its own locks when it calls proxy_completed(), which takes
     * a list lock. A connection whose flag we cleared stays suspended (and
     * so alive) until we resume it.
     */
    for (unsigned s = 0; s < LOOPS_MAX; s++) {
        size_t n = 0;

        pthread_mutex_lock(&r->shards[s].lock);
        for (struct proxy_req *req = r->shards[s].head; req; req = req->next)
            n++;
        wake = xrealloc(wake, (nwake + n + 1) * sizeof(*wake));
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
    router_free(r);   /* each loop stops its daemons */
}
