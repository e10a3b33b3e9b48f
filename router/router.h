/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router: the HTTP front for every app (ARCHITECTURE.md). One epoll loop
 * per CPU accepts client connections on the HTTP (and, when configured,
 * HTTPS) listener and drives its own libmicrohttpd daemon, which parses the
 * client side after the router's guard has checked every byte (guard.h:
 * nothing ambiguous ever reaches an app). The request's Host (its port
 * ignored) picks a route: an app's default name or one of its domains,
 * wildcards included. The route names the app's backends (its running
 * instances); the loop gets a socket into one of them through the
 * backend's port agent without ever waiting on it (runner.h), and proxies
 * the request over it, with Heroku's headers, timeouts and error codes
 * (reference/HEROKU.md §3). Route tables and certificates are immutable
 * once published and swapped atomically, so a deploy never blocks requests
 * in flight. Unknown hosts get a 404 page that names no app.
 */
#ifndef BERTH_ROUTER_H
#define BERTH_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "common/error.h"

struct router;

/* Room for an instance's name in the access log's dyno= field ("web.1"). */
#define ROUTER_DYNO_MAX 32

/* The most sockets one stock answer brings (router_backend_ops.ask_stock). */
#define ROUTER_STOCK_MAX 32

/* One answer of a backend's port agent, on a channel. */
struct router_answer {
    bool is_stock;
    uint64_t id;        /* a connect: the id it answers */
    int sock;           /* ... a connected socket (non-blocking, TCP_NODELAY: ready for the loop; the router's), or -1 */
    int error;          /* ... or why none */
    unsigned n_stock;   /* a stock: how many sockets came (0: the agent could make none) */
    int stock[ROUTER_STOCK_MAX];   /* ... not connected, non-blocking, TCP_NODELAY; the router's */
    uint16_t port;      /* ... to be connected to 127.0.0.1:port */
};

/*
 * How the router reaches a backend (an app's instance), which it knows
 * only as an opaque pointer that control hands it with the routes. Every
 * function may be called from any router thread.
 */
struct router_backend_ops {
    /*
     * A new private channel to the backend's port agent for one router
     * loop (runner_agent_open()): *ret_fd is non-blocking and the
     * router's to close. -errno when the backend is gone.
     */
    int (*open_channel)(void *backend, int *ret_fd);
    /*
     * Asks, on a channel, for a socket connected to the backend, tagged
     * `id`: 0, -EAGAIN (the channel is full: try later), other -errno when
     * the channel is broken (runner_agent_request()).
     */
    int (*request)(int channel_fd, uint64_t id);
    /*
     * Asks, on a channel, for n (1..ROUTER_STOCK_MAX) sockets made in the
     * backend's network namespace and not connected, which the router then
     * connects itself, without a round trip to the agent per connection
     * (runner_agent_ask_stock()). Returns as `request`. NULL: the backend
     * offers no stock, and every connection is asked for.
     */
    int (*ask_stock)(int channel_fd, unsigned n);
    /*
     * Reads one answer from a channel: 1 with *ret filled in, 0 at the
     * channel's end, -EAGAIN when none is waiting (runner_agent_answer()).
     */
    int (*answer)(int channel_fd, struct router_answer *ret);
    /* The backend's name for the access log's dyno= ("web.1"); lives as long as the backend. */
    const char *(*name)(void *backend);
    /* A reference the router holds while a published route table names the backend. */
    void (*hold)(void *backend);
    void (*release)(void *backend);
};

/* Per-app overrides of Heroku's defaults; 0 (or false) keeps the default. */
struct router_app_settings {
    unsigned connect_timeout_ms;  /* 5 s: H19 past it (H21 when refused) */
    unsigned head_timeout_ms;     /* 30 s to the first response byte: H12 */
    unsigned idle_timeout_ms;     /* then a rolling 55 s window: H15 */
    bool https_only;              /* plain-HTTP requests get a redirect to https:// */
    bool maintenance;             /* every request gets 503 H80 and a plain page; the app sees none */
};

/* The longest app name a route or probe may carry (its access-log prefix is built in a fixed buffer). */
#define ROUTER_APP_NAME_MAX 128

struct router_route {
    const char *host;             /* "hello.localhost", "www.example.com" or "*.example.com" */
    const char *app;              /* at most ROUTER_APP_NAME_MAX bytes */
    uint64_t generation;          /* changes on each release; pooled connections of older ones are dropped */
    /*
     * The app's web instances (the table holds each); may be empty: 503
     * H14. Each request goes to the one with the fewest requests
     * outstanding. The set may change within a generation (scaling): an
     * instance a new table drops has its pooled connections closed.
     */
    void *const *backends;
    size_t n_backends;
    const struct router_app_settings *settings;   /* NULL: the defaults */
    bool blank;                   /* nothing deployed yet: 503 H81 */
};

/*
 * A certificate for the HTTPS listener, chosen by SNI: `name` is the host
 * it serves ("www.example.com", "*.example.com"), or "" for the default
 * certificate a name without its own gets. PEM text; the chain starts with
 * the leaf.
 */
struct router_cert {
    const char *name;
    const char *cert_pem;
    const char *key_pem;
};

/* 0 (or false) in any field keeps the default named beside it. */
struct router_config {
    const char *listen_addr;      /* "127.0.0.1:8080" */
    const char *https_addr;       /* "127.0.0.1:8443", or NULL for no HTTPS listener */
    unsigned threads;             /* the number of CPUs */
    const struct router_backend_ops *backend_ops;
    bool no_access_log;           /* one line per request on stderr (and to access_log), unless set */
    /*
     * Each request's line for the app it was routed to, in Heroku's words
     * (reference/HEROKU.md §3.7), for control to write to the app's log:
     * `lines` holds `len` bytes of whole lines
     *   APP 2026-11-30T17:00:00.123456+00:00 heroku[router]: at=info method=GET path="/" ...\n
     * A loop hands them over in batches (every 100 ms or 16 KiB, from its
     * own thread), never one call per request; other threads at once. It
     * must not block. NULL: stderr only. Requests that reach no app
     * (unknown host, refusals) go to stderr only.
     */
    void (*access_log)(void *cls, const char *lines, size_t len);
    void *access_log_cls;
    struct router_app_settings defaults;   /* Heroku's: connect 5 s, first byte 30 s, idle 55 s */
    unsigned client_head_timeout_ms;       /* 10 s for a request head to arrive whole */
    unsigned per_address_max;     /* 1000 client connections from one address (an IPv6 /64) */
    uint64_t budget_bytes;        /* 256 MiB buffered for requests and responses, router-wide */
};

int router_start(const struct router_config *cfg, struct router **ret, struct berth_error **err);
/*
 * Publishes a new route table (copied; the backends are held). Requests
 * already routed keep their target. Hosts are normalised (lower case, no
 * port, no trailing dot); a host named twice (EEXIST) or an app name
 * longer than ROUTER_APP_NAME_MAX (EINVAL) is an error.
 */
int router_set_routes(struct router *r, const struct router_route *routes, size_t n,
                      struct berth_error **err);
/*
 * Publishes the certificates (copied and parsed; a certificate or key that
 * GnuTLS refuses fails the whole call and leaves the old set). Without an
 * HTTPS listener it only checks them.
 */
int router_set_certs(struct router *r, const struct router_cert *certs, size_t n,
                     struct berth_error **err);
/*
 * Probes: a backend that is in no route table yet (a new release's
 * instance before its health checks pass) reached through the router's
 * own request path. router_probe_add() holds `backend` and returns a
 * fresh random secret (32 hex digits); a request on the HTTP or HTTPS
 * listener whose ROUTER_PROBE_HEADER carries it goes to that backend
 * alone, whatever its Host, with `app`'s settings (timeouts; never
 * maintenance or https_only) and everything else as for any request
 * (headers, pool of its own, access log line for `app`). `host` is the
 * app's host (the route the probe stands for). The header never reaches
 * an app: it is dropped from every request, and one with a secret that
 * is not registered is routed by its Host as if it were absent. An `app`
 * longer than ROUTER_APP_NAME_MAX is refused (EINVAL). router_probe_remove() unregisters the secret (unknown ones are
 * ignored); requests already routed by it finish, and the backend is
 * released once the last of them is done.
 */
#define ROUTER_PROBE_HEADER "X-Berth-Probe"
#define ROUTER_PROBE_SECRET_LEN 32
int router_probe_add(struct router *r, const char *app, const char *host, void *backend,
                     char secret_out[ROUTER_PROBE_SECRET_LEN + 1], struct berth_error **err);
void router_probe_remove(struct router *r, const char *secret);
/*
 * Where a client on this machine reaches the HTTP listener: its bound
 * address, loopback for a listener on every address. 0, or -errno.
 */
int router_local_address(const struct router *r, struct sockaddr_storage *ret, socklen_t *ret_len);
/* The bound ports (useful when an address asked for port 0); 0 when there is no such listener. */
uint16_t router_port(const struct router *r);
uint16_t router_https_port(const struct router *r);
void router_stop(struct router *r);

#endif
