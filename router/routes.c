/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The route table and the upstream connection pools. A table is built once
 * from router_set_routes()'s copy, published by pointer swap and never
 * changed afterwards; every request holds a reference to the table it was
 * routed with, so a swap never pulls memory from under a request in flight.
 * Lookups are one hash probe sequence over the normalised host.
 *
 * Pools belong to an (app, generation) pair and are carried over from the
 * previous table when the pair is still routed; a pair that disappears (a
 * new release bumped the generation) has its pool marked dead, so its idle
 * connections to the old instances close at once and busy ones close when
 * their response ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* FNV-1a: short keys, no adversarial pressure beyond our own configuration. */
static uint32_t hash_str(const char *s, uint64_t extra)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    for (int i = 0; i < 8; i++, extra >>= 8)
        h = (h ^ (uint8_t)extra) * 16777619u;
    return h;
}

static struct upstream_pool *pool_new(const char *app, uint64_t generation, unsigned nslots)
{
    struct upstream_pool *p = xcalloc(1, sizeof(*p));

    p->nslots = nslots ? nslots : 1;
    p->slots = xcalloc(p->nslots, sizeof(*p->slots));
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->lock, NULL);
    p->app = xstrdup(app);
    p->generation = generation;
    return p;
}

void pool_unref(struct upstream_pool *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (unsigned s = 0; s < p->nslots; s++)
        for (int i = 0; i < p->slots[s].n; i++)
            (void)close(p->slots[s].fds[i]);
    pthread_mutex_destroy(&p->lock);
    free(p->slots);
    free(p->app);
    free(p);
}

/*
 * Closing an idle socket from any thread is safe: it is disarmed in its
 * loop's epoll (EPOLLONESHOT fired and was not re-armed), so no event for
 * it can be pending, and close() drops the registration.
 */
int pool_take(struct upstream_pool *p, unsigned slot, char ret_dyno[ROUTER_DYNO_MAX])
{
    struct pool_slot *s = &p->slots[slot % p->nslots];
    uint64_t now = now_ms();
    int fd = -1;

    pthread_mutex_lock(&p->lock);
    /* Newest first: the most recently used connection is the least likely to be stale. */
    while (s->n > 0) {
        s->n--;
        if (now - s->since[s->n] < POOL_IDLE_MS) {
            fd = s->fds[s->n];
            memcpy(ret_dyno, s->dynos[s->n], ROUTER_DYNO_MAX);
            break;
        }
        (void)close(s->fds[s->n]);
    }
    pthread_mutex_unlock(&p->lock);
    return fd;
}

void pool_put(struct upstream_pool *p, unsigned slot, int fd, const char *dyno)
{
    struct pool_slot *s = &p->slots[slot % p->nslots];

    pthread_mutex_lock(&p->lock);
    if (!p->dead && s->n < POOL_IDLE_MAX) {
        s->fds[s->n] = fd;
        s->since[s->n] = now_ms();
        (void)snprintf(s->dynos[s->n], ROUTER_DYNO_MAX, "%s", dyno);
        s->n++;
        fd = -1;
    }
    pthread_mutex_unlock(&p->lock);
    if (fd >= 0)
        (void)close(fd);
}

static void pool_kill(struct upstream_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->dead = true;
    for (unsigned s = 0; s < p->nslots; s++) {
        for (int i = 0; i < p->slots[s].n; i++)
            (void)close(p->slots[s].fds[i]);
        p->slots[s].n = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

struct route_table *route_table_build(const struct router_route *routes, size_t n,
                                      const struct route_table *old, unsigned mark, unsigned nloops)
{
    struct route_table *t = xcalloc(1, sizeof(*t));
    size_t size = 16;
    /* A scratch index by (app, generation) over the old and new pools keeps building linear. */
    size_t psize = 16, pmask;
    struct upstream_pool **pidx;

    while (size < n * 2)
        size *= 2;
    while (psize < (n + (old ? old->n : 0)) * 2)
        psize *= 2;
    pmask = psize - 1;
    pidx = xcalloc(psize, sizeof(*pidx));
    if (old) {
        for (size_t i = 0; i < old->n; i++) {
            struct upstream_pool *p = old->entries[i].pool;
            size_t s = hash_str(p->app, p->generation) & pmask;
            while (pidx[s] && pidx[s] != p)
                s = (s + 1) & pmask;
            pidx[s] = p;
        }
    }

    atomic_init(&t->refs, 1);
    t->entries = xcalloc(n ? n : 1, sizeof(*t->entries));
    t->mask = size - 1;
    t->slots = xcalloc(size, sizeof(*t->slots));
    for (size_t i = 0; i < n; i++) {
        struct route_entry *e = &t->entries[t->n];
        size_t hs = hash_str(routes[i].host, 0) & t->mask, s;
        struct upstream_pool *p;

        /* A later duplicate host changes nothing: the first route wins. */
        while (t->slots[hs] && strcmp(t->entries[t->slots[hs] - 1].host, routes[i].host) != 0)
            hs = (hs + 1) & t->mask;
        if (t->slots[hs])
            continue;
        e->host = xstrdup(routes[i].host);
        e->app = xstrdup(routes[i].app);
        e->generation = routes[i].generation;

        /* Every entry holds one reference to its pool; pool_new's is the first. */
        s = hash_str(e->app, e->generation) & pmask;
        while ((p = pidx[s]) != NULL && (p->generation != e->generation || strcmp(p->app, e->app) != 0))
            s = (s + 1) & pmask;
        if (!p) {
            p = pool_new(e->app, e->generation, nloops);
            pidx[s] = p;
        } else {
            atomic_fetch_add(&p->refs, 1);
        }
        /* Only set_lock holders write marks: it tells retire_pools which pools stay. */
        p->mark = mark;
        e->pool = p;
        t->slots[hs] = (uint32_t)(t->n + 1);
        t->n++;
    }
    free(pidx);
    return t;
}

struct route_table *route_table_ref(struct route_table *t)
{
    atomic_fetch_add(&t->refs, 1);
    return t;
}

void route_table_unref(struct route_table *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->entries[i].host);
        free(t->entries[i].app);
        pool_unref(t->entries[i].pool);
    }
    free(t->entries);
    free(t->slots);
    free(t);
}

const struct route_entry *route_table_lookup(const struct route_table *t, const char *host)
{
    size_t s = hash_str(host, 0) & t->mask;

    while (t->slots[s]) {
        const struct route_entry *e = &t->entries[t->slots[s] - 1];
        if (strcmp(e->host, host) == 0)
            return e;
        s = (s + 1) & t->mask;
    }
    return NULL;
}

void route_table_retire_pools(const struct route_table *old, unsigned mark)
{
    if (!old)
        return;
    for (size_t i = 0; i < old->n; i++)
        if (old->entries[i].pool->mark != mark)
            pool_kill(old->entries[i].pool);
}
