/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/quota: tenants' limits and process types' resources (quota.h):
 * reading them from the records, checking new values against each other,
 * writing them to the tenant's cgroup, counting apps and instances (the
 * slots of the tenant's apps, and the claims of the operations about to
 * start more).
 */
#include "control/quota.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/formation-internal.h"
#include "control/model.h"
#include "control/tenants.h"
#include "control/units.h"
#include "common/banned.h"

/* ---------------------------------------------------------------- values */

/* A positive integer from JSON (an integer, or a string of digits for the CLI); 0 if it is neither. */
static uint64_t json_count(const json_t *v)
{
    uint64_t n = 0;

    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    if (!json_is_string(v) || !*json_string_value(v))
        return 0;
    for (const char *p = json_string_value(v); *p; p++) {
        if (*p < '0' || *p > '9' || n > UINT32_MAX)
            return 0;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    return n;
}

/* The stored "cpus" (a JSON number of CPUs) in thousandths. */
static uint64_t json_cpu_millis(const json_t *v)
{
    double d = json_number_value(v);

    return d > 0 && d < (double)RUNNER_CPU_QUOTA_MAX / 1000 + 1 ? (uint64_t)(d * 1000 + 0.5) : 0;
}

/* One limit a request may set: its name in records and bodies, its bounds, how it reads. */
enum quota_kind { KIND_SIZE, KIND_CPUS, KIND_COUNT };
struct quota_key {
    const char *name;
    enum quota_kind kind;
    uint64_t min, max;
    const char *example;
};

static const struct quota_key tenant_keys[] = {
    { "memory", KIND_SIZE, 16ULL << 20, 1ULL << 40, "a size from 16M to 1T, such as 2G" },
    { "cpus", KIND_CPUS, RUNNER_CPU_QUOTA_MIN, RUNNER_CPU_QUOTA_MAX, "a number of CPUs from 0.01 to 1024, such as 1.5" },
    { "pids", KIND_COUNT, 8, 4194304, "a whole number of processes from 8 to 4194304" },
    { "apps", KIND_COUNT, 1, 10000, "a whole number from 1 to 10000" },
    { "instances", KIND_COUNT, 1, 10000, "a whole number from 1 to 10000" },
};
/* A process type's resources are the first three. */
#define N_TENANT_KEYS (sizeof(tenant_keys) / sizeof(*tenant_keys))
#define N_RESOURCE_KEYS 3

/*
 * Parses a request's value for `k` into what the record stores (bytes, a
 * JSON number of CPUs, a count): a string as typed ("2G", "0.5", "200") or
 * a JSON number. NULL with *err set when it is malformed or out of bounds.
 */
static json_t *parse_value(const struct quota_key *k, const json_t *v, struct berth_error **err)
{
    uint64_t n = 0;
    bool good;

    if (k->kind == KIND_SIZE)
        good = json_is_string(v) ? units_parse_size(json_string_value(v), &n) : (n = json_count(v)) > 0;
    else if (k->kind == KIND_CPUS)
        good = json_is_string(v) ? units_parse_cpus(json_string_value(v), &n)
                                 : json_is_number(v) && (n = json_cpu_millis(v)) > 0;
    else
        good = (n = json_count(v)) > 0;
    if (!good || n < k->min || n > k->max) {
        _cleanup_free_ char *text = json_is_string(v) ? xstrdup(json_string_value(v))
                                                      : json_dumps(v, JSON_ENCODE_ANY);
        berth_error_plain(err, EINVAL, "%s must be %s (got '%.40s')", k->name, k->example, text ? text : "?");
        return NULL;
    }
    return k->kind == KIND_CPUS ? json_real((double)n / 1000) : json_integer((json_int_t)n);
}

/* "2G", "0.5 CPUs", "2000": a limit as people read it. */
static void format_value(enum quota_kind kind, uint64_t v, char buf[32])
{
    if (kind == KIND_SIZE)
        units_format_size(v, buf);
    else if (kind == KIND_CPUS)
        units_format_cpus(v, buf);
    else
        (void)snprintf(buf, 32, "%" PRIu64, v);
}

/* ---------------------------------------------------------------- tenants' limits */

static int tenant_load(struct server *s, const char *tenant, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *path = NULL;
    int r;

    if (!model_app_name_valid(tenant))
        return berth_error_plain(err, ENOENT, "tenant '%.40s' does not exist", tenant);
    path = model_path(&s->model, "tenants/%s.json", tenant);
    r = json_store_load(path, ret, err);
    if (r == -ENOENT) {
        berth_error_release(err);
        return berth_error_plain(err, ENOENT, "tenant '%s' does not exist", tenant);
    }
    return r;
}

/* The effective limits from a tenant record's "limits" (NULL: none set). */
static void limits_from(const char *tenant, const json_t *limits, struct quota_tenant *ret)
{
    bool admin = strcmp(tenant, MODEL_ADMIN_TENANT) == 0;
    const json_t *v;

    *ret = admin ? (struct quota_tenant){ 0 }
                 : (struct quota_tenant){ QUOTA_DEFAULT_MEMORY, QUOTA_DEFAULT_CPU_MILLIS, QUOTA_DEFAULT_PIDS,
                                          QUOTA_DEFAULT_APPS, QUOTA_DEFAULT_INSTANCES };
    if ((v = json_object_get(limits, "memory")))
        ret->memory_bytes = json_count(v);
    if ((v = json_object_get(limits, "cpus")))
        ret->cpu_millis = json_cpu_millis(v);
    if ((v = json_object_get(limits, "pids")))
        ret->pids = json_count(v);
    if ((v = json_object_get(limits, "apps")))
        ret->apps = json_count(v);
    if ((v = json_object_get(limits, "instances")))
        ret->instances = json_count(v);
}

int quota_tenant_limits(struct server *s, const char *tenant, struct quota_tenant *ret,
                        struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    int r = tenant_load(s, tenant, &record, err);

    if (r < 0)
        return r;
    limits_from(tenant, json_object_get(record, "limits"), ret);
    return 0;
}

/* Writes `q` to the tenant's cgroup; the cpu quota only where the host can hold one. */
static int write_cgroup(struct server *s, const char *tenant, const struct quota_tenant *q,
                        struct berth_error **err)
{
    struct runner_limits rl = {
        .memory_bytes = q->memory_bytes,
        .pids_max = q->pids,
        .cpu_quota_millis = s->cpu_quota ? q->cpu_millis : 0,
    };

    _cleanup_free_ char *rel = NULL;

    if (!s->cgroups)
        return 0;
    rel = model_tenant_cgroup(&s->model, tenant);
    return runner_cgroup_set_limits(rel, &rl, err);
}

int quota_apply_tenant(struct server *s, const char *tenant, struct berth_error **err)
{
    struct quota_tenant q;
    int r;

    if (!s->cgroups)
        return 0;
    /* Under the lock: a tenants:limits in flight never has its new limits overwritten by older ones. */
    pthread_mutex_lock(&s->records_lock);
    r = quota_tenant_limits(s, tenant, &q, err);
    if (r == 0)
        r = write_cgroup(s, tenant, &q, err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0)
        return berth_error_wrap(err, "applying the limits of tenant '%s'", tenant);
    return 0;
}

int quota_apply_all(struct server *s, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(&s->model, "tenants");
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    int r;

    if (!d)
        return berth_error_make(err, errno, "opendir '%s'", dir);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        _cleanup_free_ char *name = NULL;

        if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        name = xstrndup(de->d_name, len - 5);
        if (!model_app_name_valid(name))
            continue;
        if ((r = quota_apply_tenant(s, name, err)) < 0)
            return r;
    }
    return 0;
}

/* runner_cgroup_release() of `rel`, logged when it fails. */
static void release_cgroup(const char *rel)
{
    _cleanup_error_ struct berth_error *err = NULL;

    if (runner_cgroup_release(rel, &err) < 0)
        log_warn("removing the cgroup '%s': %s", rel, berth_error_msg(&err));
}

/*
 * Left in place, the cgroups of every home a test suite ran (each with its
 * tenants and apps) added up to hundreds of memory cgroups here, and each
 * container start then spent about three times the system time (13 ms
 * against 3.5). Only this home's apps' and tenants' own directories go
 * (their names carry the home's key: model_tenant_cgroup()), one rmdir
 * each, never a sweep below.
 */
void quota_release_all(struct server *s)
{
    _cleanup_json_ json_t *apps = NULL, *tenants = NULL;
    size_t i;
    json_t *name;

    if (!s->cgroups)
        return;
    if (model_app_list(&s->model, &apps, NULL) == 0)
        json_array_foreach(apps, i, name) {
            _cleanup_free_ char *rel = model_app_cgroup(&s->model, json_string_value(name));

            if (rel)
                release_cgroup(rel);
        }
    if (tenants_list(&s->model, &tenants, NULL) == 0)
        json_array_foreach(tenants, i, name) {
            _cleanup_free_ char *rel = model_tenant_cgroup(&s->model, json_string_value(name));

            release_cgroup(rel);
        }
}

/* ---------------------------------------------------------------- counting */

struct quota_claim {
    char *app;
    json_t *formation;            /* {"<type>": N}: the slots type.1 to type.N */
    struct quota_claim *next;
};

static pthread_mutex_t claims_lock = PTHREAD_MUTEX_INITIALIZER;
static struct quota_claim *claims;     /* under claims_lock, taken inside server.lock when both are */

/* Whether claim c holds slot type.number of `app`. */
static bool claim_holds(const struct quota_claim *c, const char *app, const char *type, unsigned number)
{
    return strcmp(c->app, app) == 0 && number <= json_count(json_object_get(c->formation, type));
}

/*
 * The slots claim c adds to its app's: those neither the app's (rt's) nor
 * held by a claim of the list before `stop` (NULL: the whole list). Under
 * server.lock and claims_lock.
 */
static unsigned claim_adds(struct app_runtime *rt, const struct quota_claim *c, const struct quota_claim *stop)
{
    const char *type;
    json_t *v;
    unsigned n = 0;

    json_object_foreach(c->formation, type, v)
        for (unsigned number = 1; number <= json_count(v); number++) {
            bool held = formation_find(rt, type, number) != NULL;

            for (const struct quota_claim *o = claims; o != stop && !held; o = o->next)
                held = claim_holds(o, c->app, type, number);
            n += !held;
        }
    return n;
}

/* What each app holds: its slots (starting, up or crashed) and what its claims add, without and with `extra`. */
struct holding {
    char *app;
    unsigned now, with;
};

/* Every app's holding, read at once under server.lock and claims_lock; *ret ends with a NULL app. */
static void read_holdings(struct server *s, const struct quota_claim *extra, struct holding **ret)
{
    struct holding *h;
    size_t n = 0;

    pthread_mutex_lock(&s->lock);
    pthread_mutex_lock(&claims_lock);
    for (struct app_runtime *rt = s->apps; rt; rt = rt->next)
        n++;
    h = *ret = xcalloc(n + 1, sizeof(**ret));
    for (struct app_runtime *rt = s->apps; rt; rt = rt->next, h++) {
        for (struct dyno *d = rt->dynos; d; d = d->next)
            h->now++;
        for (const struct quota_claim *c = claims; c; c = c->next)
            if (strcmp(c->app, rt->name) == 0)
                h->now += claim_adds(rt, c, c);
        h->with = h->now + (extra && strcmp(extra->app, rt->name) == 0 ? claim_adds(rt, extra, NULL) : 0);
        h->app = xstrdup(rt->name);
    }
    pthread_mutex_unlock(&claims_lock);
    pthread_mutex_unlock(&s->lock);
}

/* The tenant's instances, without and with the claim `extra` (NULL: none); its apps' owners read after the locks. */
static void tenant_instances(struct server *s, const char *tenant, const struct quota_claim *extra,
                             unsigned *ret_now, unsigned *ret_with)
{
    _cleanup_free_ struct holding *all = NULL;

    *ret_now = *ret_with = 0;
    read_holdings(s, extra, &all);
    for (struct holding *h = all; h->app; h++) {
        if (h->with && server_app_owned_by(s, h->app, tenant)) {
            *ret_now += h->now;
            *ret_with += h->with;
        }
        free(h->app);
    }
}

void quota_usage(struct server *s, const char *tenant, unsigned *ret_apps, unsigned *ret_instances)
{
    _cleanup_json_ json_t *names = NULL;
    unsigned with;
    size_t i;
    json_t *name;

    *ret_apps = 0;
    if (model_app_list(&s->model, &names, NULL) == 0)
        json_array_foreach(names, i, name)
            *ret_apps += server_app_owned_by(s, json_string_value(name), tenant);
    tenant_instances(s, tenant, NULL, ret_instances, &with);
}

/* The tenant's limits and what it uses of them. */
static int limits_and_usage(struct server *s, const char *tenant, struct quota_tenant *q, unsigned *apps,
                            unsigned *instances, struct berth_error **err)
{
    int r = quota_tenant_limits(s, tenant, q, err);

    if (r == 0)
        quota_usage(s, tenant, apps, instances);
    return r;
}

int quota_check_apps(struct server *s, const char *tenant, struct berth_error **err)
{
    struct quota_tenant q;
    unsigned apps, instances;
    int r = limits_and_usage(s, tenant, &q, &apps, &instances, err);

    if (r < 0)
        return r;
    if (q.apps && apps >= q.apps)
        return berth_error_plain(err, EDQUOT, "tenant '%s' has %u apps, its limit of %" PRIu64 " apps "
                                 "(berth tenants:limits %s --apps N)", tenant, apps, q.apps, tenant);
    return 0;
}

int quota_app_create(struct server *s, const char *tenant, const char *name, char **ret_picked,
                     struct berth_error **err)
{
    static pthread_mutex_t creating = PTHREAD_MUTEX_INITIALIZER;
    int r;

    pthread_mutex_lock(&creating);
    r = quota_check_apps(s, tenant, err);
    if (r == 0)
        r = name ? model_app_create(&s->model, name, tenant, err)
                 : model_app_create_random(&s->model, tenant, ret_picked, err);
    pthread_mutex_unlock(&creating);
    return r;
}

/* The slots of `record`'s formation over `types` (quota_claim_formation()), as a claim of `app` not yet made. */
static struct quota_claim *claim_new(const char *app, const json_t *record, const json_t *types)
{
    struct quota_claim *c = xcalloc(1, sizeof(*c));
    const char *type;
    json_t *v;

    c->app = xstrdup(app);
    c->formation = json_object();
    if (json_is_true(json_object_get(record, "stopped")))
        return c;
    json_object_foreach((json_t *)types, type, v)
        if (formation_type_valid(type) && formation_wanted(record, type))
            json_object_set_new(c->formation, type, json_integer((json_int_t)formation_wanted(record, type)));
    return c;
}

static void claim_free(struct quota_claim *c)
{
    if (!c)
        return;
    free(c->app);
    json_decref(c->formation);
    free(c);
}

int quota_claim_formation(struct server *s, const char *tenant, const char *app, const json_t *record,
                          const json_t *types, bool enforce, struct quota_claim **ret, struct berth_error **err)
{
    static pthread_mutex_t claiming = PTHREAD_MUTEX_INITIALIZER;
    struct quota_claim *c = claim_new(app, record, types);
    struct quota_tenant q = { 0 };
    unsigned now, with;
    int r = 0;

    if (!tenant) {
        claim_free(c);
        return berth_error_plain(err, EINVAL, "app.json of '%s' names no tenant", app);
    }
    (void)server_app(s, app);       /* the runtime the claim is counted with */
    pthread_mutex_lock(&claiming);
    if (enforce)
        r = quota_tenant_limits(s, tenant, &q, err);
    if (r == 0) {
        tenant_instances(s, tenant, c, &now, &with);
        if (with > now && q.instances && with > q.instances)
            r = berth_error_plain(err, EDQUOT, "%u more instances would exceed tenant '%s' limit of %" PRIu64
                                  " instances (%u run now)", with - now, tenant, q.instances, now);
    }
    if (r == 0 && ret) {
        pthread_mutex_lock(&claims_lock);
        c->next = claims;
        claims = c;
        pthread_mutex_unlock(&claims_lock);
        *ret = TAKE_PTR(c);
    }
    pthread_mutex_unlock(&claiming);
    claim_free(c);
    return r;
}

void quota_claim_drop(struct quota_claim *claim)
{
    if (!claim)
        return;
    pthread_mutex_lock(&claims_lock);
    for (struct quota_claim **pp = &claims; *pp; pp = &(*pp)->next)
        if (*pp == claim) {
            *pp = claim->next;
            break;
        }
    pthread_mutex_unlock(&claims_lock);
    claim_free(claim);
}

/* ---------------------------------------------------------------- process types */

int quota_instance_limits(struct server *s, const char *tenant, const json_t *app_record, const char *type,
                          struct runner_limits *ret, struct berth_error **err)
{
    const json_t *res = json_object_get(json_object_get(app_record, "resources"), type), *v;
    struct quota_tenant q;
    int r = quota_tenant_limits(s, tenant, &q, err);

    if (r < 0)
        return r;
    *ret = (struct runner_limits){ .memory_bytes = QUOTA_INSTANCE_MEMORY, .pids_max = QUOTA_INSTANCE_PIDS };
    if ((v = json_object_get(res, "memory")))
        ret->memory_bytes = json_count(v);
    if ((v = json_object_get(res, "pids")))
        ret->pids_max = json_count(v);
    if ((v = json_object_get(res, "cpus")) && s->cpu_quota)
        ret->cpu_quota_millis = json_cpu_millis(v);
    if (q.cpu_millis && ret->cpu_quota_millis > q.cpu_millis && s->cpu_quota)
        ret->cpu_quota_millis = q.cpu_millis;
    return 0;
}

/* ---------------------------------------------------------------- changes */

static const struct quota_key *find_key(const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tenant_keys[i].name, name) == 0)
            return &tenant_keys[i];
    return NULL;
}

/*
 * Applies a request's {"<key>": value or null, ...} to `stored` (the
 * record's object of set values), keys among the first n of tenant_keys;
 * `skip` is a body key that is not a limit (NULL: none).
 */
static int apply_body(json_t *stored, const json_t *body, size_t n, const char *skip, struct berth_error **err)
{
    const char *key;
    json_t *v;
    size_t seen = 0;

    json_object_foreach((json_t *)body, key, v) {
        const struct quota_key *k = find_key(key, n);
        json_t *parsed;

        if (skip && strcmp(key, skip) == 0)
            continue;
        if (!k)
            return berth_error_plain(err, EINVAL, "unknown limit '%.40s' (%s)", key,
                                     n == N_TENANT_KEYS ? "memory, cpus, pids, apps, instances" : "memory, cpus, pids");
        seen++;
        if (json_is_null(v)) {
            json_object_del(stored, key);
            continue;
        }
        if (!(parsed = parse_value(k, v, err)))
            return -EINVAL;
        json_object_set_new(stored, key, parsed);
    }
    if (!seen)
        return berth_error_plain(err, EINVAL, "expected at least one of %s",
                                 n == N_TENANT_KEYS ? "memory, cpus, pids, apps, instances" : "memory, cpus, pids");
    return 0;
}

/* Whether next's cpu limit is below old's (no limit is the highest). */
static bool cpu_lowered(const struct quota_tenant *old, const struct quota_tenant *next)
{
    return next->cpu_millis && (!old->cpu_millis || next->cpu_millis < old->cpu_millis);
}

/*
 * Writes the new limits to the cgroup; when the kernel refuses one, the old
 * ones go back. v1 says EINVAL to a cpu quota below one of a cgroup under
 * it (a running container's): that is named only where the cpu limit went
 * down; any other failure is reported with its own message.
 */
static int rewrite_cgroup(struct server *s, const char *tenant, const struct quota_tenant *old,
                          const struct quota_tenant *next, struct berth_error **err)
{
    int r = write_cgroup(s, tenant, next, err);

    if (r == 0)
        return 0;
    (void)write_cgroup(s, tenant, old, NULL);
    if (r == -EBUSY)
        return berth_error_wrap(err, "tenant '%s' uses more memory than that now", tenant);
    if (r == -EINVAL && cpu_lowered(old, next))
        return berth_error_wrap(err, "a running container of tenant '%s' has a higher cpu limit: lower its "
                                "app's (berth resource:limit) first", tenant);
    return berth_error_wrap(err, "setting the limits of tenant '%s'", tenant);
}

int quota_set_tenant_limits(struct server *s, const char *tenant, const json_t *body, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *stored = NULL;
    _cleanup_free_ char *path = NULL;
    struct quota_tenant old, next;
    int r;

    pthread_mutex_lock(&s->records_lock);
    if ((r = tenant_load(s, tenant, &record, err)) < 0)
        goto out;
    stored = json_deep_copy(json_object_get(record, "limits"));
    if (!json_is_object(stored)) {
        json_decref(stored);
        stored = json_object();
    }
    if ((r = apply_body(stored, body, N_TENANT_KEYS, NULL, err)) < 0)
        goto out;
    if (!s->cpu_quota && json_object_get(stored, "cpus") && json_object_get(body, "cpus")) {
        r = berth_error_plain(err, ENOTSUP, "this host cannot enforce cpu quotas (berth serve runs with "
                              "--allow-no-limits)");
        goto out;
    }
    limits_from(tenant, json_object_get(record, "limits"), &old);
    limits_from(tenant, stored, &next);
    if ((r = rewrite_cgroup(s, tenant, &old, &next, err)) < 0)
        goto out;
    if (json_object_size(stored))
        json_object_set(record, "limits", stored);
    else
        json_object_del(record, "limits");
    path = model_path(&s->model, "tenants/%s.json", tenant);
    if ((r = json_store_save(path, record, 0600, err)) < 0)
        (void)write_cgroup(s, tenant, &old, NULL);
out:
    pthread_mutex_unlock(&s->records_lock);
    return r;
}

/* The value as the API shows it: bytes, a number of CPUs, a count; null for no limit. */
static json_t *value_doc(enum quota_kind kind, uint64_t v)
{
    if (!v)
        return json_null();
    return kind == KIND_CPUS ? json_real((double)v / 1000) : json_integer((json_int_t)v);
}

int quota_tenant_doc(struct server *s, const char *tenant, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    const json_t *set;
    struct quota_tenant q;
    unsigned apps, instances;
    json_t *limits, *defaults;
    int r = tenant_load(s, tenant, &record, err);

    if (r < 0)
        return r;
    set = json_object_get(record, "limits");
    limits_from(tenant, set, &q);
    quota_usage(s, tenant, &apps, &instances);
    const uint64_t values[N_TENANT_KEYS] = { q.memory_bytes, q.cpu_millis, q.pids, q.apps, q.instances };
    limits = json_object();
    defaults = json_array();
    for (size_t i = 0; i < N_TENANT_KEYS; i++) {
        json_object_set_new(limits, tenant_keys[i].name, value_doc(tenant_keys[i].kind, values[i]));
        if (!json_object_get(set, tenant_keys[i].name))
            json_array_append_new(defaults, json_string(tenant_keys[i].name));
    }
    *ret = json_pack("{s:s, s:o, s:o, s:{s:i, s:i}, s:b}", "tenant", tenant, "limits", limits, "defaults",
                     defaults, "usage", "apps", (int)apps, "instances", (int)instances,
                     "enforced", s->cgroups);
    return 0;
}

/* "memory 4G exceeds tenant 'acme' limit of 2G" when a type's value is above the tenant's. */
static int check_under_tenant(const char *tenant, const struct quota_tenant *q, const json_t *res,
                              struct berth_error **err)
{
    const uint64_t caps[N_RESOURCE_KEYS] = { q->memory_bytes, q->cpu_millis, q->pids };

    for (size_t i = 0; i < N_RESOURCE_KEYS; i++) {
        const json_t *v = json_object_get(res, tenant_keys[i].name);
        uint64_t n = tenant_keys[i].kind == KIND_CPUS ? json_cpu_millis(v) : json_count(v);
        char have[32], cap[32];

        if (!v || !caps[i] || n <= caps[i])
            continue;
        format_value(tenant_keys[i].kind, n, have);
        format_value(tenant_keys[i].kind, caps[i], cap);
        return berth_error_plain(err, EDQUOT, "%s %s exceeds tenant '%s' limit of %s", tenant_keys[i].name, have,
                                 tenant, cap);
    }
    return 0;
}

/* Heroku's process type names: letters, digits, '_' and '-', at most 30. */
static bool type_valid(const char *type)
{
    size_t len = strlen(type);

    if (!len || len > 30)
        return false;
    for (const char *p = type; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

int quota_change_resources(struct server *s, json_t *record, const json_t *body, struct berth_error **err)
{
    const char *tenant = json_get_str(record, "tenant"), *type = json_get_str(body, "type");
    const json_t *tv = json_object_get(body, "type");
    _cleanup_json_ json_t *res = NULL;
    json_t *all;
    struct quota_tenant q;
    int r;

    if (tv && !type)
        return berth_error_plain(err, EINVAL, "type must be a process type name such as web");
    if (!type)
        type = "web";
    if (!type_valid(type))
        return berth_error_plain(err, EINVAL, "'%.40s' is not a process type name (letters, digits, '_' and "
                                 "'-', at most 30)", type);
    if (!tenant || (r = quota_tenant_limits(s, tenant, &q, err)) < 0)
        return tenant ? r : berth_error_plain(err, EINVAL, "the app has no tenant");
    res = json_deep_copy(json_object_get(json_object_get(record, "resources"), type));
    if (!json_is_object(res)) {
        json_decref(res);
        res = json_object();
    }
    if ((r = apply_body(res, body, N_RESOURCE_KEYS, "type", err)) < 0)
        return r;
    if (!s->cpu_quota && json_object_get(body, "cpus") && !json_is_null(json_object_get(body, "cpus")))
        return berth_error_plain(err, ENOTSUP, "this host cannot enforce cpu quotas (berth serve runs with "
                                 "--allow-no-limits)");
    if ((r = check_under_tenant(tenant, &q, res, err)) < 0)
        return r;
    all = json_object_get(record, "resources");
    if (!json_is_object(all)) {
        all = json_object();
        json_object_set_new(record, "resources", all);
    }
    if (json_object_size(res))
        json_object_set(all, type, res);
    else
        json_object_del(all, type);
    if (!json_object_size(all))
        json_object_del(record, "resources");
    return 0;
}

/* One type's effective resources, with the names of those left at the default. */
static json_t *type_doc(struct server *s, const char *tenant, const json_t *record, const char *type)
{
    const json_t *set = json_object_get(json_object_get(record, "resources"), type);
    struct runner_limits l = { 0 };
    json_t *defaults = json_array();

    (void)quota_instance_limits(s, tenant, record, type, &l, NULL);
    for (size_t i = 0; i < N_RESOURCE_KEYS; i++)
        if (!json_object_get(set, tenant_keys[i].name))
            json_array_append_new(defaults, json_string(tenant_keys[i].name));
    return json_pack("{s:o, s:o, s:o, s:o}", "memory", value_doc(KIND_SIZE, l.memory_bytes), "cpus",
                     value_doc(KIND_CPUS, l.cpu_quota_millis), "pids", value_doc(KIND_COUNT, l.pids_max),
                     "defaults", defaults);
}

json_t *quota_resources_doc(struct server *s, const json_t *record)
{
    const char *tenant = json_get_str(record, "tenant"), *app = json_get_str(record, "name"), *type;
    _cleanup_json_ json_t *release = NULL;
    json_t *types = json_object(), *v;
    unsigned version;

    json_object_set_new(types, "web", json_null());
    if (app && model_release_current(&s->model, app, &version, &release, NULL) == 0)
        json_object_foreach(json_object_get(release, "process_types"), type, v)
            json_object_set_new(types, type, json_null());
    json_object_foreach(json_object_get(record, "resources"), type, v)
        json_object_set_new(types, type, json_null());
    json_object_foreach(types, type, v)
        json_object_set_new(types, type, type_doc(s, tenant ? tenant : "", record, type));
    return json_pack("{s:o}", "resources", types);
}
