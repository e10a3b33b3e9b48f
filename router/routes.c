/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The route table and the upstream connection pools. A table is built once
 * from router_set_routes()'s normalised copy, published by pointer swap and
 * never changed afterwards; every request holds a reference to the table it
 * was routed with, so a swap never pulls memory from under a request in
 * flight, and the backends a table names stay held (ops->hold) until the
 * last request routed with it is done.
 *
 * Hosts map to targets: one per (app, generation), shared by the app's
 * default name and its domains. A lookup is one hash probe sequence over
 * the normalised host, then, for a name with no route of its own, one per
 * dot for the longest wildcard that covers it ("*.example.com" is stored as
 * ".example.com" and covers "www.example.com" and "a.b.example.com", not
 * "example.com"; "*.b.example.com" wins over it for "a.b.example.com"), as
 * DNS wildcards do (RFC 4592). Certificates follow the stricter RFC 6125
 * rule, one label only (tls.c).
 *
 * Pools belong to one backend of a target's (app, generation) and are
 * carried over from the previous table while the table still routes the
 * pair to that backend; a pool the new table no longer uses (a new release,
 * an instance scaled away or replaced) is marked dead, so its idle
 * connections close at once and busy ones close when their response ends.
 * A pool also counts its backend's outstanding requests, for the balancer
 * (connect.c), and remembers whether the backend refused or timed out
 * lately (quarantine), for every loop to skip.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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

static uint32_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* ---------------------------------------------------------------- pools */

static struct upstream_pool *pool_new(unsigned nslots)
{
    struct upstream_pool *p;

    /* Aligned as its counters' own cache line asks (internal.h). */
    if (posix_memalign((void **)&p, _Alignof(struct upstream_pool), sizeof(*p)) != 0)
        abort();
    memset(p, 0, sizeof(*p));
    p->nslots = nslots ? nslots : 1;
    p->slots = xcalloc(p->nslots, sizeof(*p->slots));
    for (unsigned s = 0; s < p->nslots; s++) {
        pthread_mutex_init(&p->slots[s].lock, NULL);
        p->slots[s].epfd = -1;
    }
    atomic_init(&p->outstanding, 0);
    atomic_init(&p->quarantine_until, 0);
    atomic_init(&p->refs, 1);
    atomic_init(&p->dead, false);
    return p;
}

/*
 * Closes an idle socket, from any thread: out of its loop's epoll first (a
 * copy held by a process forked meanwhile would keep the registration, and
 * its events would name an fd number that may be another socket's by then).
 * No request is mapped to it; an event of it already in the loop's batch
 * finds none, or, if the number went to a new upstream socket meanwhile,
 * that socket's request, which takes it as edge-triggered news (upstream.c,
 * finish()).
 */
static void idle_close(const struct pool_slot *s, int fd)
{
    (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
    (void)close(fd);
}

void pool_unref(struct upstream_pool *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (unsigned s = 0; s < p->nslots; s++) {
        for (int i = 0; i < p->slots[s].n; i++)
            idle_close(&p->slots[s], p->slots[s].fds[i]);
        pthread_mutex_destroy(&p->slots[s].lock);
    }
    free(p->slots);
    free(p);
}

/*
 * Whether an idle connection can carry a request: nothing may be waiting
 * on it. A byte the app sent unasked (a second response to a request that
 * smuggled one, say) would be read as the answer to the next client's
 * request; an end of stream means the app closed it. One non-blocking
 * peek per reuse is the price of never misattributing a response.
 */
static bool idle_socket_clean(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int pool_take(struct upstream_pool *p, unsigned slot)
{
    struct pool_slot *s = &p->slots[slot % p->nslots];
    uint64_t now = now_ms();
    int fd = -1;

    pthread_mutex_lock(&s->lock);
    /* A dead pool's slots are emptied after `dead` is set; one may still be on its way (pool_kill()). */
    if (atomic_load_explicit(&p->dead, memory_order_relaxed)) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    /* Newest first: the most recently used connection is the least likely to be stale. */
    while (s->n > 0) {
        s->n--;
        if (now - s->since[s->n] < POOL_IDLE_MS && idle_socket_clean(s->fds[s->n])) {
            fd = s->fds[s->n];
            break;
        }
        idle_close(s, s->fds[s->n]);
    }
    pthread_mutex_unlock(&s->lock);
    return fd;
}

void pool_put(struct upstream_pool *p, unsigned slot, int fd, int epfd)
{
    struct pool_slot *s = &p->slots[slot % p->nslots];

    pthread_mutex_lock(&s->lock);
    s->epfd = epfd;
    if (!atomic_load_explicit(&p->dead, memory_order_relaxed) && s->n < POOL_IDLE_MAX) {
        s->fds[s->n] = fd;
        s->since[s->n] = now_ms();
        s->n++;
        fd = -1;
    }
    pthread_mutex_unlock(&s->lock);
    if (fd >= 0)
        idle_close(s, fd);
}

/*
 * `dead` is set before each slot is emptied under its lock, so a
 * pool_put() after that slot's pass sees it and closes its fd.
 */
static void pool_kill(struct upstream_pool *p)
{
    atomic_store(&p->dead, true);
    for (unsigned s = 0; s < p->nslots; s++) {
        pthread_mutex_lock(&p->slots[s].lock);
        for (int i = 0; i < p->slots[s].n; i++)
            idle_close(&p->slots[s], p->slots[s].fds[i]);
        p->slots[s].n = 0;
        pthread_mutex_unlock(&p->slots[s].lock);
    }
}

void pool_quarantine(struct upstream_pool *p, uint64_t until)
{
    atomic_store_explicit(&p->quarantine_until, until, memory_order_relaxed);
}

bool pool_quarantined(const struct upstream_pool *p, uint64_t now)
{
    return atomic_load_explicit(&p->quarantine_until, memory_order_relaxed) > now;
}

/* ---------------------------------------------------------------- building */

/* Targets of a table by (app, generation), while a table is built (the old one's, and its own): index + 1, 0 = empty. */
struct target_index {
    size_t mask;
    uint32_t *slots;
};

static uint32_t *target_index_slot(struct target_index *ix, const struct route_table *t, const char *app,
                                   uint64_t generation)
{
    size_t s = hash_str(app, generation) & ix->mask;

    while (ix->slots[s]) {
        const struct route_target *tg = &t->targets[ix->slots[s] - 1];
        if (tg->generation == generation && strcmp(tg->app, app) == 0)
            break;
        s = (s + 1) & ix->mask;
    }
    return &ix->slots[s];
}

/* The index of old's targets, to take their pools over; empty without an old table. */
static void old_targets_init(struct target_index *ix, const struct route_table *old)
{
    size_t size = 16;

    while (old && size < old->n_targets * 2)
        size *= 2;
    ix->mask = size - 1;
    ix->slots = xcalloc(size, sizeof(*ix->slots));
    for (size_t i = 0; old && i < old->n_targets; i++)
        *target_index_slot(ix, old, old->targets[i].app, old->targets[i].generation) = (uint32_t)(i + 1);
}

/*
 * The pool of `backend` in the old table's target for the same (app,
 * generation), taken over with one more reference, else a new one: so a
 * backend keeps its outstanding count, quarantine and idle connections
 * across tables of one generation. A scan of the old target's backends:
 * an app has few instances, and this runs once per table, not per request.
 */
static struct upstream_pool *pool_for(const struct route_target *old_tg, const void *backend, unsigned nloops)
{
    for (size_t k = 0; old_tg && k < old_tg->n_backends; k++) {
        if (old_tg->backends[k].backend == backend) {
            atomic_fetch_add(&old_tg->backends[k].pool->refs, 1);
            return old_tg->backends[k].pool;
        }
    }
    return pool_new(nloops);
}

static void target_init(struct route_table *t, struct route_target *tg, const struct router_route *route,
                        const struct router_app_settings *defaults)
{
    tg->app = xstrdup(route->app);
    tg->generation = route->generation;
    tg->blank = route->blank;
    if (route->settings)
        tg->settings = *route->settings;
    if (!tg->settings.connect_timeout_ms)
        tg->settings.connect_timeout_ms = defaults->connect_timeout_ms;
    if (!tg->settings.head_timeout_ms)
        tg->settings.head_timeout_ms = defaults->head_timeout_ms;
    if (!tg->settings.idle_timeout_ms)
        tg->settings.idle_timeout_ms = defaults->idle_timeout_ms;
    tg->n_backends = route->n_backends;
    tg->backends = xcalloc(route->n_backends ? route->n_backends : 1, sizeof(*tg->backends));
    for (size_t i = 0; i < route->n_backends; i++) {
        t->ops->hold(route->backends[i]);
        tg->backends[i].backend = route->backends[i];
        tg->backends[i].name = t->ops->name(route->backends[i]);
    }
}

/*
 * The target for (app, generation) in t, made from `route` on its first
 * appearance (later routes of the pair share it, backends and settings
 * included), with a pool for each of its backends.
 */
static struct route_target *target_for(struct route_table *t, struct target_index *tix,
                                       const struct route_table *old, struct target_index *old_ix,
                                       const struct router_route *route,
                                       const struct router_app_settings *defaults, unsigned mark,
                                       unsigned nloops)
{
    uint32_t *ts = target_index_slot(tix, t, route->app, route->generation);
    const struct route_target *old_tg = NULL;
    struct route_target *tg;

    if (*ts)
        return &t->targets[*ts - 1];
    tg = &t->targets[t->n_targets++];
    *ts = (uint32_t)t->n_targets;
    target_init(t, tg, route, defaults);

    if (old) {
        uint32_t os = *target_index_slot(old_ix, old, route->app, route->generation);
        old_tg = os ? &old->targets[os - 1] : NULL;
    }
    for (size_t i = 0; i < tg->n_backends; i++) {
        /* The target holds one reference to each of its backends' pools. */
        tg->backends[i].pool = pool_for(old_tg, tg->backends[i].backend, nloops);
        /* Only set_lock holders write marks: it tells retire_pools which pools stay. */
        tg->backends[i].pool->mark = mark;
    }
    return tg;
}

/* The set of backends the table names, for route_table_has_backend(). */
static void index_backends(struct route_table *t)
{
    size_t total = 0, size = 16;

    for (size_t i = 0; i < t->n_targets; i++)
        total += t->targets[i].n_backends;
    while (size < total * 2)
        size *= 2;
    t->bmask = size - 1;
    t->bset = xcalloc(size, sizeof(*t->bset));
    for (size_t i = 0; i < t->n_targets; i++) {
        for (size_t j = 0; j < t->targets[i].n_backends; j++) {
            void *b = t->targets[i].backends[j].backend;
            size_t s = hash_ptr(b) & t->bmask;
            while (t->bset[s] && t->bset[s] != b)
                s = (s + 1) & t->bmask;
            t->bset[s] = b;
        }
    }
}

static struct route_table *table_alloc(size_t n, const struct router_backend_ops *ops)
{
    struct route_table *t = xcalloc(1, sizeof(*t));
    size_t size = 16;

    while (size < n * 2)
        size *= 2;
    atomic_init(&t->refs, 1);
    t->ops = ops;
    t->entries = xcalloc(n ? n : 1, sizeof(*t->entries));
    t->targets = xcalloc(n ? n : 1, sizeof(*t->targets));
    t->mask = size - 1;
    t->slots = xcalloc(size, sizeof(*t->slots));
    return t;
}

int route_table_build(const struct router_route *routes, size_t n, const struct route_table *old,
                      unsigned mark, unsigned nloops, const struct router_backend_ops *ops,
                      const struct router_app_settings *defaults, struct route_table **ret,
                      struct berth_error **err)
{
    struct route_table *t = table_alloc(n, ops);
    struct target_index old_ix;
    struct target_index tix = { .mask = t->mask, .slots = xcalloc(t->mask + 1, sizeof(uint32_t)) };

    old_targets_init(&old_ix, old);
    for (size_t i = 0; i < n; i++) {
        const char *host = routes[i].host;
        bool wildcard = host[0] == '*';
        const char *key = wildcard ? host + 1 : host;
        size_t hs = hash_str(key, 0) & t->mask;
        struct route_entry *e;
        size_t app_len = strlen(routes[i].app);
        int rc = 0;

        while (t->slots[hs] && strcmp(t->entries[t->slots[hs] - 1].host, key) != 0)
            hs = (hs + 1) & t->mask;
        if (t->slots[hs])
            rc = berth_error_plain(err, EEXIST, "host '%s' is routed twice ('%s' and '%s')", host,
                                   t->entries[t->slots[hs] - 1].target->app, routes[i].app);
        else if (app_len > ROUTER_APP_NAME_MAX)
            rc = berth_error_plain(err, EINVAL, "app name '%.40s...' of host '%s' is %zu bytes long (at most %d)",
                                   routes[i].app, host, app_len, ROUTER_APP_NAME_MAX);
        if (rc < 0) {
            free(old_ix.slots);
            free(tix.slots);
            route_table_unref(t);
            return rc;
        }
        e = &t->entries[t->n];
        e->host = xstrdup(key);
        e->wildcard = wildcard;
        e->target = target_for(t, &tix, old, &old_ix, &routes[i], defaults, mark, nloops);
        t->has_wildcards |= wildcard;
        t->slots[hs] = (uint32_t)(t->n + 1);
        t->n++;
    }
    free(old_ix.slots);
    free(tix.slots);
    index_backends(t);
    *ret = t;
    return 0;
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
    for (size_t i = 0; i < t->n; i++)
        free(t->entries[i].host);
    for (size_t i = 0; i < t->n_targets; i++) {
        struct route_target *tg = &t->targets[i];
        for (size_t j = 0; j < tg->n_backends; j++) {
            t->ops->release(tg->backends[j].backend);
            pool_unref(tg->backends[j].pool);
        }
        free(tg->backends);
        free(tg->app);
    }
    free(t->targets);
    free(t->entries);
    free(t->slots);
    free(t->bset);
    free(t);
}

static const struct route_entry *lookup_key(const struct route_table *t, const char *key)
{
    size_t s = hash_str(key, 0) & t->mask;

    while (t->slots[s]) {
        const struct route_entry *e = &t->entries[t->slots[s] - 1];
        if (strcmp(e->host, key) == 0)
            return e;
        s = (s + 1) & t->mask;
    }
    return NULL;
}

const struct route_target *route_table_lookup(const struct route_table *t, const char *host)
{
    const struct route_entry *e = host[0] != '.' ? lookup_key(t, host) : NULL;
    const char *dot;

    if (e && !e->wildcard)
        return e->target;
    if (!t->has_wildcards || host[0] == '[')
        return NULL;
    /* The longest wildcard first: the suffix from the leftmost dot. */
    for (dot = strchr(host + 1, '.'); dot; dot = strchr(dot + 1, '.')) {
        e = lookup_key(t, dot);
        if (e && e->wildcard)
            return e->target;
    }
    return NULL;
}

bool route_table_has_backend(const struct route_table *t, const void *backend)
{
    size_t s = hash_ptr(backend) & t->bmask;

    while (t->bset[s]) {
        if (t->bset[s] == backend)
            return true;
        s = (s + 1) & t->bmask;
    }
    return false;
}

void route_table_retire_pools(const struct route_table *old, unsigned mark)
{
    if (!old)
        return;
    for (size_t i = 0; i < old->n_targets; i++) {
        const struct route_target *tg = &old->targets[i];
        for (size_t j = 0; j < tg->n_backends; j++)
            if (tg->backends[j].pool->mark != mark)
                pool_kill(tg->backends[j].pool);
    }
}

ssize_t route_outstanding_for_test(struct router *r, const char *host, unsigned *counts, size_t max)
{
    struct route_table *t = router_current_table(r);
    const struct route_target *tg = route_table_lookup(t, host);
    ssize_t n = tg ? (ssize_t)tg->n_backends : -1;

    for (size_t i = 0; tg && i < tg->n_backends && i < max; i++)
        counts[i] = atomic_load(&tg->backends[i].pool->outstanding);
    route_table_unref(t);
    return n;
}

int route_admission_for_test(struct router *r, const char *host, unsigned out[4])
{
    struct route_table *t = router_current_table(r);
    const struct route_target *tg = route_table_lookup(t, host);
    int ret = -1;

    if (tg && tg->n_backends > 0) {
        const struct pool_slot *s = &tg->backends[0].pool->slots[0];
        out[0] = s->open;
        out[1] = s->cap;
        out[2] = s->waiting;
        out[3] = s->ceiling;
        ret = 0;
    }
    route_table_unref(t);
    return ret;
}
