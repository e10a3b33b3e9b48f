/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Probes (router.h): a backend that serves no client yet, reachable
 * through the router's own request path by a request that carries its
 * secret in ROUTER_PROBE_HEADER. Each probe is a route table of its own
 * with one target (the app, its settings as the current table has them,
 * minus maintenance and https_only) and one backend with a pool of its
 * own: a request routed by a probe holds that table like any other, so
 * the backend stays held (and its pooled connections open) until the
 * last such request is done, and the app's real pools never see a probe
 * connection. request.c takes the header out of every request and asks
 * here only while probes exist (r->n_probes), so routing without one
 * costs a relaxed load.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "common/crypto.h"
#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

struct router_probe {
    char secret[ROUTER_PROBE_SECRET_LEN + 1];
    struct route_table *table;    /* the probe's own: one target, one backend */
    struct router_probe *next;
};

/* 128 random bits as 32 hex digits, from the kernel (a secret, not just an id). */
static int probe_secret(char out[ROUTER_PROBE_SECRET_LEN + 1], struct berth_error **err)
{
    return random_hex(out, ROUTER_PROBE_SECRET_LEN / 2, err);
}

/* The app's settings in the current table (the defaults when it has none), fit for a probe. */
static struct router_app_settings probe_settings(struct router *r, const char *app)
{
    struct route_table *t = router_current_table(r);
    struct router_app_settings s = r->defaults;

    for (size_t i = 0; i < t->n_targets; i++)
        if (strcmp(t->targets[i].app, app) == 0) {
            s = t->targets[i].settings;
            break;
        }
    route_table_unref(t);
    /* A probe checks the backend itself: no maintenance page, no redirect to https. */
    s.maintenance = false;
    s.https_only = false;
    return s;
}

int router_probe_add(struct router *r, const char *app, const char *host, void *backend,
                     char secret_out[ROUTER_PROBE_SECRET_LEN + 1], struct berth_error **err)
{
    struct router_app_settings settings = probe_settings(r, app);
    char norm[HOST_MAX + 1];
    void *backends[1] = { backend };
    struct router_route route = { .host = norm, .app = app, .backends = backends, .n_backends = 1,
                                  .settings = &settings };
    struct router_probe *p;
    struct route_table *t;
    int rc;

    if (host_normalise(host, norm) < 0 || norm[0] == '*')
        return berth_error_plain(err, EINVAL, "'%.80s' is not a host name", host);
    if ((rc = probe_secret(secret_out, err)) < 0)
        return rc;
    /* No old table: the probe's pools are its own; mark 0, so that retiring with 1 kills them. */
    if ((rc = route_table_build(&route, 1, NULL, 0, r->nloops, r->ops, &r->defaults, &t, err)) < 0)
        return rc;
    p = xcalloc(1, sizeof(*p));
    memcpy(p->secret, secret_out, sizeof(p->secret));
    p->table = t;
    pthread_mutex_lock(&r->probe_lock);
    p->next = r->probes;
    r->probes = p;
    atomic_fetch_add(&r->n_probes, 1);
    pthread_mutex_unlock(&r->probe_lock);
    return 0;
}

/* Compares in time independent of where the first difference is. */
static bool secret_equal(const char *a, const char *b)
{
    unsigned char diff = 0;

    for (size_t i = 0; i < ROUTER_PROBE_SECRET_LEN; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static bool secret_shaped(const char *s)
{
    return strlen(s) == ROUTER_PROBE_SECRET_LEN &&
           strspn(s, "0123456789abcdef") == ROUTER_PROBE_SECRET_LEN;
}

void router_probe_remove(struct router *r, const char *secret)
{
    struct router_probe *p = NULL;

    if (!secret || !secret_shaped(secret))
        return;
    pthread_mutex_lock(&r->probe_lock);
    for (struct router_probe **pp = &r->probes; *pp; pp = &(*pp)->next)
        if (secret_equal((*pp)->secret, secret)) {
            p = *pp;
            *pp = p->next;
            atomic_fetch_sub(&r->n_probes, 1);
            break;
        }
    pthread_mutex_unlock(&r->probe_lock);
    if (!p)
        return;
    /* Idle connections close now; requests in flight hold the table, and so the backend, until they end. */
    route_table_retire_pools(p->table, 1);
    route_table_unref(p->table);
    free(p);
}

struct route_table *probe_lookup(struct router *r, const char *secret)
{
    struct route_table *t = NULL;

    if (!secret_shaped(secret))
        return NULL;
    pthread_mutex_lock(&r->probe_lock);
    for (struct router_probe *p = r->probes; p; p = p->next)
        if (secret_equal(p->secret, secret)) {
            t = route_table_ref(p->table);
            break;
        }
    pthread_mutex_unlock(&r->probe_lock);
    return t;
}

void probe_free_all(struct router *r)
{
    while (r->probes) {
        struct router_probe *p = r->probes;
        r->probes = p->next;
        route_table_retire_pools(p->table, 1);
        route_table_unref(p->table);
        free(p);
    }
    atomic_store(&r->n_probes, 0);
}

int router_local_address(const struct router *r, struct sockaddr_storage *ret, socklen_t *ret_len)
{
    *ret_len = sizeof(*ret);
    if (getsockname(r->listen_fd, (struct sockaddr *)ret, ret_len) < 0)
        return -errno;
    /* A listener on every address is reached on loopback. */
    if (ret->ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ret;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (ret->ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
            in6->sin6_addr = in6addr_loopback;
    }
    return 0;
}
