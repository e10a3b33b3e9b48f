/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router: the HTTP front for every app (ARCHITECTURE.md). libmicrohttpd
 * daemons (one per epoll loop thread) map the request's Host header to an app and
 * proxies the request to one of the app's instances over a socket obtained
 * from the connect callback (control backs it with the runner's port agent,
 * so the socket is already connected inside the container). The route table
 * is immutable once published and swapped atomically, so a deploy never
 * blocks requests in flight. Unknown hosts get a 404 page that names no app.
 */
#ifndef BERTH_ROUTER_H
#define BERTH_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct router;

/* Room for an instance's name in the access log's dyno= field ("web.1"). */
#define ROUTER_DYNO_MAX 32

/*
 * Returns a connected stream socket to an instance of `app` serving
 * `generation` (or newer), owned by the caller, or -errno: -ENOENT when the
 * app has no running web instance (the router answers 503 H14 "No web
 * processes running"), anything else is a connection error (503 H10/H21).
 * On success it names the instance in `ret_dyno` (NUL-terminated, may be
 * empty), which the access log prints as dyno=.
 * Called from router threads; must be thread-safe.
 */
typedef int (*router_connect_fn)(void *cls, const char *app, uint64_t generation, int *ret_fd,
                                 char ret_dyno[ROUTER_DYNO_MAX]);

struct router_config {
    const char *listen_addr;      /* "127.0.0.1:8080" */
    unsigned threads;             /* 0: number of CPUs */
    router_connect_fn connect;
    void *connect_cls;
};

struct router_route {
    const char *host;             /* lowercase, without port: "hello.localhost" */
    const char *app;
    uint64_t generation;          /* changes on each release; pooled upstream connections of older generations are dropped */
};

int router_start(const struct router_config *cfg, struct router **ret, struct berth_error **err);
/* Publishes a new route table (copied); requests already routed keep their target. */
int router_set_routes(struct router *r, const struct router_route *routes, size_t n,
                      struct berth_error **err);
/* The bound port (useful when listen_addr asked for port 0). */
uint16_t router_port(const struct router *r);
void router_stop(struct router *r);

#endif
