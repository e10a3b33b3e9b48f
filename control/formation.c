/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/formation: the app's processes (see formation.h). A slot (struct
 * dyno) is one process the formation wants, `worker.2`: the instance that
 * runs it now, if any, and its state. converge() is the one place that
 * makes the slots match what the app wants (its current release, its
 * scale, stopped or not); every operation changes the record and calls it,
 * under the app's formation_lock. The supervisor (supervisor.c) only marks
 * a slot crashed and asks for a converge once its back-off has passed.
 */
#include "control/formation.h"
#include "control/formation-internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/applog.h"
#include "control/instance.h"
#include "control/quota.h"

/* Generations of releases going live: unique in this daemon's life, so a router pool never outlives its release. */
static atomic_uint_fast64_t next_generation = 1;

uint64_t formation_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A generation for a release going live: unique in this daemon's life. */
static uint64_t formation_next_generation(void)
{
    return atomic_fetch_add(&next_generation, 1);
}

const char *formation_state_name(enum dyno_state st)
{
    switch (st) {
    case DYNO_STARTING:
        return "starting";
    case DYNO_UP:
        return "up";
    case DYNO_CRASHED:
        return "crashed";
    case DYNO_DOWN:
        break;
    }
    return "down";
}

void formation_set_state(struct server *s, const char *app, struct dyno *d, enum dyno_state st)
{
    if (d->state != st)
        formation_platform_line(s, app, d, "State changed from %s to %s", formation_state_name(d->state),
                                formation_state_name(st));
    d->state = st;
    d->since = time(NULL);
}

void formation_platform_line(struct server *s, const char *app, const struct dyno *d, const char *fmt, ...)
{
    _cleanup_free_ char *source = xasprintf("heroku[%s.%u]", d->type, d->number);
    va_list ap;

    va_start(ap, fmt);
    applog_vemit(s->applog, app, source, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- records */

bool formation_type_valid(const char *type)
{
    size_t n = strlen(type);

    if (n == 0 || n > 30 || strcmp(type, "release") == 0)
        return false;
    return strspn(type, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

unsigned formation_wanted(const json_t *record, const char *type)
{
    const json_t *v = json_object_get(json_object_get(record, "formation"), type);

    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= FORMATION_SCALE_MAX)
        return (unsigned)json_integer_value(v);
    return strcmp(type, "web") == 0 ? 1 : 0;
}

static bool app_stopped(const json_t *record)
{
    return json_is_true(json_object_get(record, "stopped"));
}

static bool app_outbound(const json_t *record)
{
    return json_is_true(json_object_get(json_object_get(record, "net"), "outbound"));
}

unsigned formation_app_grace_ms(const json_t *record)
{
    json_int_t secs = json_integer_value(json_object_get(json_object_get(record, "ps"), "grace"));

    return secs >= 1 && secs <= FORMATION_GRACE_MAX_S ? (unsigned)secs * 1000 : 0;
}

int formation_spec_init(struct server *s, const char *app, const char *tenant, const json_t *record,
                        const json_t *release, const char *type, unsigned number, struct formation_spec *ret,
                        struct berth_error **err)
{
    const char *slug = json_get_str(release, "slug");
    const char *command = json_get_str(json_object_get(release, "process_types"), type);
    unsigned version = (unsigned)json_integer_value(json_object_get(release, "version"));

    memset(ret, 0, sizeof(*ret));
    if (!slug)
        return berth_error_plain(err, EINVAL, "release v%u of '%s' has no slug", version, app);
    if (!command && strcmp(type, "web") == 0)
        return berth_error_plain(err, EINVAL, "no web process type: add a Procfile with a 'web:' line");
    if (!command)
        return berth_error_plain(err, ENOENT, "release v%u of '%s' has no '%s' process type", version, app, type);
    ret->slug_dir = server_slug_dir(s, tenant, slug);
    ret->spec = (struct instance_spec){
        .app = app, .tenant = tenant, .release = version, .process_type = type, .number = number,
        .command = command, .slug_dir = ret->slug_dir, .config = json_object_get(release, "config"),
        .defaults = json_object_get(release, "buildpack_config"), .network = app_outbound(record),
        .grace_ms = formation_app_grace_ms(record),
    };
    /* The type's resources (berth resource:limit), within the tenant's quota. */
    return quota_instance_limits(s, tenant, record, type, &ret->spec.limits, err);
}

void formation_spec_release(struct formation_spec *fs)
{
    free(fs->slug_dir);
    fs->slug_dir = NULL;
}

/* ---------------------------------------------------------------- slots */

struct dyno *formation_find(struct app_runtime *rt, const char *type, unsigned number)
{
    for (struct dyno *d = rt->dynos; d; d = d->next)
        if (d->number == number && strcmp(d->type, type) == 0)
            return d;
    return NULL;
}

/* Finds or adds the slot, under server.lock; a new one is down until something starts it. */
static struct dyno *slot(struct app_runtime *rt, const char *type, unsigned number)
{
    struct dyno *d = formation_find(rt, type, number), **pp;

    if (d)
        return d;
    d = xcalloc(1, sizeof(*d));
    d->type = xstrdup(type);
    d->number = number;
    d->state = DYNO_DOWN;
    d->since = time(NULL);
    /* Sorted by type, then number: `ps` lists them so. */
    for (pp = &rt->dynos; *pp; pp = &(*pp)->next) {
        int c = strcmp((*pp)->type, type);
        if (c > 0 || (c == 0 && (*pp)->number > number))
            break;
    }
    d->next = *pp;
    *pp = d;
    return d;
}

static void dyno_free(struct dyno *d)
{
    free(d->type);
    free(d);
}

/*
 * The instances being let go: published away first, then retired (they
 * finish their requests). Past the array's room one is retired at once;
 * still safe, as a retire waits until the router holds it no more.
 */
struct letgo {
    struct instance *v[16];
    size_t n;
    bool web;
};

static void letgo_add(struct server *s, struct letgo *lg, struct instance *in, bool web)
{
    if (!in)
        return;
    formation_unwatch(s, in);
    if (lg->n == sizeof(lg->v) / sizeof(*lg->v)) {
        instance_retire(s, in);
        return;
    }
    lg->v[lg->n++] = in;
    lg->web |= web;
}

/* Publishes when a web instance left, then retires them all. */
static void letgo_finish(struct server *s, const char *app, struct letgo *lg)
{
    _cleanup_error_ struct berth_error *err = NULL;

    if (lg->web && server_publish_routes(s, &err) < 0)
        log_error("publishing routes of '%s': %s", app, berth_error_msg(&err));
    for (size_t i = 0; i < lg->n; i++)
        instance_retire(s, lg->v[i]);
    lg->n = 0;
    lg->web = false;
}

/* Removes the slot and lets its instance go. Under server.lock. */
static void remove_slot(struct server *s, struct app_runtime *rt, struct dyno *d, struct letgo *lg)
{
    for (struct dyno **pp = &rt->dynos; *pp; pp = &(*pp)->next) {
        if (*pp != d)
            continue;
        *pp = d->next;
        break;
    }
    formation_set_state(s, rt->name, d, DYNO_DOWN);
    letgo_add(s, lg, TAKE_PTR(d->in), strcmp(d->type, "web") == 0);
    dyno_free(d);
}

/* The back-off before the next start of a slot whose process just ended (crashed or failed to boot). */
void formation_schedule_restart(struct dyno *d, uint64_t now)
{
    uint64_t delay;

    if (d->up_at_ms && now - d->up_at_ms >= FORMATION_BACKOFF_RESET_MS)
        delay = FORMATION_BACKOFF_FIRST_MS;
    else if (!d->backoff_ms)
        delay = FORMATION_BACKOFF_FIRST_MS;
    else
        delay = d->backoff_ms * 2 > FORMATION_BACKOFF_MAX_MS ? FORMATION_BACKOFF_MAX_MS : d->backoff_ms * 2;
    d->backoff_ms = delay;
    d->restart_at_ms = now + delay;
    d->up_at_ms = 0;
}

/*
 * Starts (or replaces) the process of slot type.number with release
 * `version`. A web replacement serves before the old instance goes; any
 * other type's old process stops first (two copies of a clock process
 * must not overlap). Under the app's formation_lock, not server.lock.
 */
static int start_slot(struct server *s, struct app_runtime *rt, const char *tenant, const json_t *record,
                      const json_t *release, const char *type, unsigned number, struct berth_error **err)
{
    unsigned version = (unsigned)json_integer_value(json_object_get(release, "version"));
    bool web = strcmp(type, "web") == 0;
    struct formation_spec fs;
    struct letgo lg = { .n = 0 };
    struct instance *in = NULL, *old;
    struct dyno *d;
    int r;

    if ((r = formation_spec_init(s, rt->name, tenant, record, release, type, number, &fs, err)) < 0)
        return r;
    pthread_mutex_lock(&s->lock);
    d = slot(rt, type, number);
    old = web ? NULL : TAKE_PTR(d->in);
    if (old)
        formation_unwatch(s, old);
    if (d->in || old)
        formation_platform_line(s, rt->name, d, "Restarting");
    /* A web process being replaced stays up (and routed) until its successor is. */
    if (!d->in)
        formation_set_state(s, rt->name, d, DYNO_STARTING);
    d->starting = true;
    pthread_mutex_unlock(&s->lock);
    /* Stopped before its successor starts: never two copies of one worker or clock. */
    if (old)
        instance_stop_and_free(s, old, instance_grace_ms(old));

    r = instance_start(s, &fs.spec, &in, NULL, NULL, err);
    formation_spec_release(&fs);

    pthread_mutex_lock(&s->lock);
    d = formation_find(rt, type, number);   /* the same slot: only formation_lock holders remove slots */
    d->starting = false;
    if (r < 0) {
        formation_platform_line(s, rt->name, d, "Error: %s", berth_error_msg(err));
        if (!d->in) {
            d->restarts++;
            formation_schedule_restart(d, formation_now_ms());
            formation_set_state(s, rt->name, d, DYNO_CRASHED);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
    }
    if (d->release != version) {
        /* A new release starts over: no back-off, no crashes yet. */
        d->backoff_ms = 0;
        d->restarts = 0;
        d->has_status = false;
    }
    letgo_add(s, &lg, TAKE_PTR(d->in), web);
    d->in = in;
    d->release = version;
    d->up_at_ms = formation_now_ms();
    d->restart_at_ms = 0;
    formation_set_state(s, rt->name, d, DYNO_UP);
    lg.web |= web;
    formation_watch(s, in);
    pthread_mutex_unlock(&s->lock);
    letgo_finish(s, rt->name, &lg);
    return 0;
}

/* ---------------------------------------------------------------- converging */

/* Whether slot d must be (re)started now to match release `version`. Under server.lock. */
static bool needs_start(const struct dyno *d, unsigned version, uint64_t now, bool force)
{
    if (!d || force)
        return true;
    if (d->starting)
        return false;
    if (d->in)
        return d->release != version;
    if (d->state == DYNO_CRASHED && d->release == version)
        return d->restart_at_ms <= now;
    return true;
}

/*
 * Makes the app's slots match its record and current release: slots of
 * types the release lacks, or past their type's scale, go; the missing
 * ones start; those of an older release are replaced; crashed ones whose
 * back-off passed start again. `force_type` ("*" for all) replaces those
 * processes even when current. Under the app's formation_lock. The first
 * failure is returned; the others are still attempted.
 */
int formation_converge(struct server *s, struct app_runtime *rt, const char *force_type, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *release = NULL;
    struct letgo lg = { .n = 0 };
    const json_t *types;
    const char *tenant, *type;
    unsigned version = 0;
    json_t *cmd;
    int r, first = 0;

    if ((r = model_app_load(&s->model, rt->name, &record, err)) < 0 ||
        (r = model_release_current(&s->model, rt->name, &version, &release, err)) < 0)
        return r;
    types = json_object_get(release, "process_types");
    tenant = json_get_str(record, "tenant");
    if (!tenant)
        return berth_error_plain(err, EINVAL, "app.json of '%s' names no tenant", rt->name);

    pthread_mutex_lock(&s->lock);
    for (struct dyno *d = rt->dynos, *next; d; d = next) {
        next = d->next;
        if (!release || app_stopped(record) || !json_get_str(types, d->type) ||
            d->number > formation_wanted(record, d->type))
            remove_slot(s, rt, d, &lg);
    }
    pthread_mutex_unlock(&s->lock);
    letgo_finish(s, rt->name, &lg);
    if (!release || app_stopped(record))
        return 0;

    json_object_foreach((json_t *)types, type, cmd) {
        bool force = force_type && (strcmp(force_type, "*") == 0 || strcmp(force_type, type) == 0);
        unsigned want = formation_type_valid(type) ? formation_wanted(record, type) : 0;

        for (unsigned n = 1; n <= want; n++) {
            _cleanup_error_ struct berth_error *e = NULL;
            bool start;

            pthread_mutex_lock(&s->lock);
            start = needs_start(formation_find(rt, type, n), version, formation_now_ms(), force);
            pthread_mutex_unlock(&s->lock);
            if (!start)
                continue;
            if ((r = start_slot(s, rt, tenant, record, release, type, n, &e)) < 0) {
                log_warn("starting %s.%u of '%s': %s", type, n, rt->name, berth_error_msg(&e));
                if (!first)
                    first = berth_error_plain(err, -r, "%s.%u: %s", type, n, berth_error_msg(&e));
            }
        }
    }
    return first;
}

/* Loads, changes and saves app.json under the records lock. */
static int change_record(struct server *s, const char *app, int (*change)(json_t *record, const void *cls,
                                                                         struct berth_error **err),
                         const void *cls, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = model_app_load(&s->model, app, &record, err);
    if (r == 0)
        r = change(record, cls, err);
    if (r == 0)
        r = model_app_save(&s->model, app, record, err);
    pthread_mutex_unlock(&s->records_lock);
    return r;
}

/* ---------------------------------------------------------------- operations */

struct scale_change {
    struct server *s;
    const char *app;
    const json_t *counts;
    const json_t *types;          /* the current release's process types */
    struct quota_claim **claim;   /* the new formation's slots, until converged */
};

static int apply_scale(json_t *record, const void *cls, struct berth_error **err)
{
    const struct scale_change *c = cls;
    json_t *formation = json_object_get(record, "formation"), *v;
    const char *type;

    json_object_foreach((json_t *)c->counts, type, v) {
        if (!formation_type_valid(type))
            return berth_error_plain(err, EINVAL, "'%s' is not a process type name", type);
        if (!json_get_str(c->types, type))
            return berth_error_plain(err, ENOENT, "no '%s' process type in the current release's Procfile", type);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > FORMATION_SCALE_MAX)
            return berth_error_plain(err, ERANGE, "%s: the scale must be a number from 0 to %d", type,
                                     FORMATION_SCALE_MAX);
    }
    if (!json_is_object(formation)) {
        formation = json_object();
        json_object_set_new(record, "formation", formation);
    }
    json_object_foreach((json_t *)c->counts, type, v)
        json_object_set(formation, type, v);
    /* The slots it adds must fit in the tenant's instance quota (quota.h); refused, the record is not saved. */
    return quota_claim_formation(c->s, json_get_str(record, "tenant"), c->app, record, c->types, true, c->claim,
                                 err);
}

int formation_scale(struct server *s, const char *app, const json_t *counts, struct berth_error **err)
{
    _cleanup_json_ json_t *release = NULL;
    struct app_runtime *rt = server_app(s, app);
    struct quota_claim *claim = NULL;
    struct scale_change change = { .s = s, .app = app, .counts = counts, .claim = &claim };
    unsigned version = 0;
    int r;

    if (!json_is_object(counts) || json_object_size(counts) == 0)
        return berth_error_plain(err, EINVAL, "give at least one TYPE=COUNT");
    if ((r = model_release_current(&s->model, app, &version, &release, err)) < 0)
        return r;
    if (!release)
        return berth_error_plain(err, EINVAL, "'%s' has no release yet: push first", app);
    change.types = json_object_get(release, "process_types");
    pthread_mutex_lock(&rt->formation_lock);
    r = change_record(s, app, apply_scale, &change, err);
    if (r == 0)
        r = formation_converge(s, rt, NULL, err);
    pthread_mutex_unlock(&rt->formation_lock);
    quota_claim_drop(claim);
    return r;
}

void formation_switch(struct server *s, const char *app, unsigned version, struct instance **web, size_t n_web)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct app_runtime *rt = server_app(s, app);
    struct letgo lg = { .n = 0 };
    uint64_t now = formation_now_ms();

    pthread_mutex_lock(&rt->formation_lock);
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < n_web; i++) {
        struct dyno *d = slot(rt, "web", (unsigned)i + 1);

        if (d->in)
            formation_platform_line(s, app, d, "Restarting");
        letgo_add(s, &lg, TAKE_PTR(d->in), true);
        /* Heroku's words for a dyno of a new release: from whatever it was, starting, then up. */
        formation_set_state(s, app, d, DYNO_STARTING);
        d->in = web[i];
        d->release = version;
        d->up_at_ms = now;
        d->restart_at_ms = d->backoff_ms = 0;
        d->restarts = 0;
        d->has_status = false;
        formation_set_state(s, app, d, DYNO_UP);
        formation_watch(s, web[i]);
    }
    for (struct dyno *d = rt->dynos, *next; d; d = next) {
        next = d->next;
        if (strcmp(d->type, "web") == 0 && d->number > n_web)
            remove_slot(s, rt, d, &lg);
    }
    rt->generation = formation_next_generation();
    lg.web = true;
    pthread_mutex_unlock(&s->lock);
    letgo_finish(s, app, &lg);
    /* Workers and clocks follow the new release; a scale changed meanwhile is honoured. */
    if (formation_converge(s, rt, NULL, &err) < 0)
        log_warn("'%s' v%u: %s", app, version, berth_error_msg(&err));
    pthread_mutex_unlock(&rt->formation_lock);
}

/*
 * Claims the slots the app's converge would run now (quota.h): a restart
 * replaces the processes of the slots the app holds, and must not start
 * others past the tenant's instances. Under the app's formation_lock.
 */
static int claim_current(struct server *s, const char *app, struct quota_claim **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *release = NULL;
    unsigned version = 0;
    int r;

    if ((r = model_app_load(&s->model, app, &record, err)) < 0 ||
        (r = model_release_current(&s->model, app, &version, &release, err)) < 0)
        return r;
    return quota_claim_formation(s, json_get_str(record, "tenant"), app, record,
                                 json_object_get(release, "process_types"), true, ret, err);
}

int formation_restart(struct server *s, const char *app, const char *type, struct berth_error **err)
{
    struct app_runtime *rt = server_app(s, app);
    struct quota_claim *claim = NULL;
    bool any = false;
    int r;

    pthread_mutex_lock(&rt->formation_lock);
    pthread_mutex_lock(&s->lock);
    for (struct dyno *d = rt->dynos; d; d = d->next)
        any |= !type || strcmp(d->type, type) == 0;
    pthread_mutex_unlock(&s->lock);
    if (!any)
        r = type ? berth_error_plain(err, ENOENT, "'%s' runs no '%s' process", app, type)
                 : berth_error_plain(err, ENOENT, "'%s' runs no process", app);
    else if ((r = claim_current(s, app, &claim, err)) == 0)
        r = formation_converge(s, rt, type ? type : "*", err);
    pthread_mutex_unlock(&rt->formation_lock);
    quota_claim_drop(claim);
    return r;
}

struct stop_change {
    struct server *s;
    const char *app;
    bool stopped;
    const json_t *types;          /* the current release's process types; NULL: none yet */
    struct quota_claim **claim;   /* a started app's slots, until converged */
};

static int apply_stopped(json_t *record, const void *cls, struct berth_error **err)
{
    const struct stop_change *c = cls;

    if (c->stopped) {
        json_object_set_new(record, "stopped", json_true());
        return 0;
    }
    /* A stopped app holds no slot: its formation must fit in the tenant's quota again (quota.h). */
    json_object_del(record, "stopped");
    return quota_claim_formation(c->s, json_get_str(record, "tenant"), c->app, record, c->types, true, c->claim,
                                 err);
}

static int set_stopped(struct server *s, const char *app, bool stopped, struct berth_error **err)
{
    _cleanup_json_ json_t *release = NULL;
    struct app_runtime *rt = server_app(s, app);
    struct quota_claim *claim = NULL;
    struct stop_change change = { .s = s, .app = app, .stopped = stopped, .claim = &claim };
    unsigned version = 0;
    int r;

    if (!stopped && (r = model_release_current(&s->model, app, &version, &release, err)) < 0)
        return r;
    change.types = json_object_get(release, "process_types");
    pthread_mutex_lock(&rt->formation_lock);
    r = change_record(s, app, apply_stopped, &change, err);
    if (r == 0)
        r = formation_converge(s, rt, NULL, err);
    pthread_mutex_unlock(&rt->formation_lock);
    quota_claim_drop(claim);
    return r;
}

int formation_stop(struct server *s, const char *app, struct berth_error **err)
{
    return set_stopped(s, app, true, err);
}

int formation_start(struct server *s, const char *app, struct berth_error **err)
{
    return set_stopped(s, app, false, err);
}

void formation_remove_app(struct server *s, const char *app)
{
    struct app_runtime *rt = server_app(s, app);
    struct letgo lg = { .n = 0 };

    pthread_mutex_lock(&rt->formation_lock);
    pthread_mutex_lock(&s->lock);
    while (rt->dynos)
        remove_slot(s, rt, rt->dynos, &lg);
    pthread_mutex_unlock(&s->lock);
    letgo_finish(s, app, &lg);
    pthread_mutex_unlock(&rt->formation_lock);
}

void formation_stop_everything(struct server *s)
{
    for (struct app_runtime *rt = s->apps; rt; rt = rt->next) {
        pthread_mutex_lock(&s->lock);
        while (rt->dynos) {
            struct dyno *d = rt->dynos;
            struct instance *in = TAKE_PTR(d->in);

            rt->dynos = d->next;
            dyno_free(d);
            pthread_mutex_unlock(&s->lock);
            if (in)
                instance_stop_and_free(s, in, 10000);
            pthread_mutex_lock(&s->lock);
        }
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---------------------------------------------------------------- reading */

size_t formation_web_backends(struct server *s, const char *app, void **ret, size_t max, uint64_t *ret_generation)
{
    size_t n = 0;

    *ret_generation = 0;
    for (struct app_runtime *rt = s->apps; rt; rt = rt->next) {
        if (strcmp(rt->name, app) != 0)
            continue;
        for (struct dyno *d = rt->dynos; d && n < max; d = d->next)
            if (d->in && d->state == DYNO_UP && strcmp(d->type, "web") == 0)
                ret[n++] = d->in;
        *ret_generation = rt->generation;
        break;
    }
    return n;
}

static json_t *dyno_json(const struct dyno *d, uint64_t now)
{
    char since[MODEL_TIME_LEN + 1];
    json_t *o;

    model_time_format(d->since, since);
    o = json_pack("{s:s, s:i, s:s, s:s, s:I, s:i, s:i}", "type", d->type,
                  "number", (int)d->number, "state", formation_state_name(d->state), "since", since,
                  "uptime", (json_int_t)(d->state == DYNO_UP && d->up_at_ms ? (now - d->up_at_ms) / 1000 : 0),
                  "restarts", (int)d->restarts, "release", (int)d->release);
    json_object_set_new(o, "name", json_sprintf("%s.%u", d->type, d->number));
    if (d->has_status)
        json_object_set_new(o, "exit_status", json_integer(d->exit_code));
    if (d->state == DYNO_CRASHED && d->restart_at_ms > now)
        json_object_set_new(o, "restart_in", json_integer((json_int_t)((d->restart_at_ms - now + 999) / 1000)));
    return o;
}

json_t *formation_ps(struct server *s, const char *app)
{
    struct app_runtime *rt = server_app(s, app);
    json_t *list = json_array();
    struct instance **held = NULL;
    size_t n = 0, cap = 0;
    uint64_t now = formation_now_ms();

    pthread_mutex_lock(&s->lock);
    for (struct dyno *d = rt->dynos; d; d = d->next) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            held = xrealloc(held, cap * sizeof(*held));
        }
        held[n] = d->in;
        if (d->in)
            instance_hold(d->in);   /* alive while its memory is read below, outside the lock */
        n++;
        json_array_append_new(list, dyno_json(d, now));
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        if (!held[i])
            continue;
        json_object_set_new(json_array_get(list, i), "memory", json_integer((json_int_t)instance_memory(held[i])));
        instance_unhold(held[i]);
    }
    for (size_t i = 0; i < json_array_size(list); i++)
        if (!json_object_get(json_array_get(list, i), "memory"))
            json_object_set_new(json_array_get(list, i), "memory", json_integer(0));
    free(held);
    return list;
}
