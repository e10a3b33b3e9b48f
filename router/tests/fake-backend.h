/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A stand-in for control's instances and the runner's port agent, for the
 * router's tests: router_backend_ops over socketpair channels whose far
 * end a thread serves, the way a container's agent does (runner.h): it
 * reads connect requests tagged with ids and answers each with a socket
 * connected to 127.0.0.1:<port>, or with the connect's errno, or not at
 * all; with `stock`, it also hands out unconnected sockets for the router
 * to connect itself. Every backend counts its channels, dials, stock and
 * references, so tests
 * can check that the router asks, retries, skips and lets go as it should.
 */
#ifndef BERTH_ROUTER_TESTS_FAKE_BACKEND_H
#define BERTH_ROUTER_TESTS_FAKE_BACKEND_H

#include <stdatomic.h>
#include <stdint.h>

#include "router/router.h"

enum fake_mode {
    FAKE_DIAL,        /* connect to `port` and answer with the socket (or the errno) */
    FAKE_SILENT,      /* read requests, never answer: the router's connect timeout must fire */
    FAKE_GONE,        /* opening a channel fails: the container has exited */
    FAKE_HANGUP,      /* the channel closes after the first request: the agent died */
};

struct fake_backend {
    const char *name;             /* "web.1" */
    enum fake_mode mode;
    uint16_t port;
    unsigned delay_ms;            /* before each answer */
    int sndbuf;                   /* > 0: the router's end of each channel gets this SO_SNDBUF (a channel that fills) */
    atomic_int channels;          /* opened */
    bool stock;                   /* answers stock requests with unconnected sockets (else ignores them) */
    atomic_int asked;             /* connect requests received */
    atomic_int dials;             /* connect requests answered */
    atomic_int stocked;           /* stock sockets handed out */
    atomic_int refs;              /* holds minus releases */
};

extern const struct router_backend_ops fake_backend_ops;

/* Waits for every channel thread to end (their channels closed); call after router_stop(). */
void fake_backend_join_all(void);

#endif
