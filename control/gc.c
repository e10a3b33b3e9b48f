/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/gc: slug garbage collection (see gc.h). One pass goes tenant by
 * tenant: the tenant's apps, all at their deploy locks at once (taken
 * without ever waiting while one is held: a push holds two, lock_all();
 * only one tenant's at a time); the slugs their last releases name; then the
 * tenant's layers directory, whose other sha256-named entries go. A
 * thread runs the pass on a schedule. And the sweep at start of what a
 * crash left in run/ and in the repositories' quarantine.
 */
#include "control/gc.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/units.h"

static bool is_slug_name(const char *name)
{
    return strlen(name) == 64 && strspn(name, "0123456789abcdef") == 64;
}

/* Adds to keep[tenant] the slugs of the app's last `n` releases. */
static void keep_app_slugs(struct server *s, const char *app, unsigned n, json_t *keep_of_tenant)
{
    unsigned current = 0;

    if (model_release_current(&s->model, app, &current, NULL, NULL) < 0)
        return;
    for (unsigned v = current; v > 0 && current - v < n; v--) {
        _cleanup_json_ json_t *release = NULL;
        const char *slug;

        if (model_release_load(&s->model, app, v, &release, NULL) < 0)
            continue;
        if ((slug = json_get_str(release, "slug")))
            json_object_set_new(keep_of_tenant, slug, json_true());
    }
}

static _Thread_local uint64_t tree_bytes;

static int add_bytes(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)type;
    (void)ftw;
    tree_bytes += (uint64_t)st->st_blocks * 512;
    return 0;
}

static uint64_t disk_usage(const char *dir)
{
    tree_bytes = 0;
    (void)nftw(dir, add_bytes, 16, FTW_PHYS);
    return tree_bytes;
}

/* Lists, and unless dry_run removes, the tenant's slugs that `keep` does not name. */
static void sweep_tenant(struct server *s, const char *tenant, const json_t *keep, bool dry_run, json_t *removed,
                         uint64_t *total)
{
    _cleanup_free_ char *dir = xasprintf("%s/%s", s->layers_dir, tenant);
    _cleanup_closedir_ DIR *d = opendir(dir);
    unsigned long uid_base = 0, gid_base = 0;
    struct dirent *de;

    if (!d)
        return;
    if (!dry_run) {
        _cleanup_error_ struct berth_error *err = NULL;

        if (server_tenant_ids(s, tenant, &uid_base, &gid_base, &err) < 0) {
            log_warn("gc: tenant '%s': %s", tenant, berth_error_msg(&err));
            return;
        }
    }
    while ((de = readdir(d))) {
        _cleanup_free_ char *path = NULL;
        _cleanup_error_ struct berth_error *err = NULL;
        uint64_t bytes;

        if (!is_slug_name(de->d_name) || json_object_get(keep, de->d_name))
            continue;
        path = xasprintf("%s/%s", dir, de->d_name);
        bytes = disk_usage(path);
        if (!dry_run && runner_remove_tree(s->runner, path, uid_base, gid_base, TENANT_ID_SLICE, &err) < 0) {
            log_warn("gc: removing '%s': %s", path, berth_error_msg(&err));
            continue;
        }
        json_array_append_new(removed, json_pack("{s:s, s:s, s:I}", "tenant", tenant, "slug", de->d_name,
                                                 "bytes", (json_int_t)bytes));
        *total += bytes;
    }
}

/* {"tenant": ["app", ...]}: every app with a readable record, by tenant, names sorted. */
static int apps_by_tenant(struct server *s, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *apps = NULL;
    json_t *by = json_object(), *name;
    size_t i;
    int r;

    if ((r = model_app_list(&s->model, &apps, err)) < 0) {
        json_decref(by);
        return r;
    }
    json_array_foreach(apps, i, name) {
        _cleanup_json_ json_t *record = NULL;
        const char *tenant;

        if (model_app_load(&s->model, json_string_value(name), &record, NULL) < 0 ||
            !(tenant = json_get_str(record, "tenant")))
            continue;
        if (!json_object_get(by, tenant))
            json_object_set_new(by, tenant, json_array());
        json_array_append(json_object_get(by, tenant), name);
    }
    *ret = by;
    return 0;
}

/*
 * Every lock of `rt` or none. A push holds two deploy locks at once (a
 * preview's, then its staging app's, pipelines.h), in an order no sort
 * here can match, so this never waits while it holds one: a busy lock
 * has everything taken so far released, is waited for alone, and the
 * round starts again from it.
 */
static void lock_all(struct app_runtime **rt, size_t n)
{
    size_t first = 0;

    if (n == 0)
        return;
    for (;;) {
        size_t i, busy = n;

        pthread_mutex_lock(&rt[first]->deploy_lock);
        for (i = 0; i < n && busy == n; i++)
            if (i != first && pthread_mutex_trylock(&rt[i]->deploy_lock) != 0)
                busy = i;
        if (busy == n)
            return;
        for (i = 0; i < busy; i++)
            if (i != first)
                pthread_mutex_unlock(&rt[i]->deploy_lock);
        pthread_mutex_unlock(&rt[first]->deploy_lock);
        first = busy;
    }
}

/* One tenant's pass, with every app of the tenant at its deploy lock (and no other tenant's). */
static void collect_tenant(struct server *s, const char *tenant, const json_t *apps, bool dry_run, unsigned keep,
                           json_t *removed, uint64_t *total)
{
    size_t n = json_array_size(apps), i;
    _cleanup_free_ struct app_runtime **rt = xcalloc(n + 1, sizeof(*rt));
    _cleanup_json_ json_t *keep_set = json_object();
    json_t *name;

    json_array_foreach(apps, i, name)
        rt[i] = server_app(s, json_string_value(name));
    lock_all(rt, n);
    json_array_foreach(apps, i, name)
        keep_app_slugs(s, json_string_value(name), keep, keep_set);
    sweep_tenant(s, tenant, keep_set, dry_run, removed, total);
    for (i = 0; i < n; i++)
        pthread_mutex_unlock(&rt[i]->deploy_lock);
}

int gc_run(struct server *s, bool dry_run, unsigned keep, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *by_tenant = NULL, *removed = json_array();
    uint64_t total = 0;
    const char *tenant;
    json_t *apps;
    int r;

    if ((r = apps_by_tenant(s, &by_tenant, err)) < 0)
        return r;
    json_object_foreach(by_tenant, tenant, apps)
        collect_tenant(s, tenant, apps, dry_run, keep, removed, &total);
    *ret = json_pack("{s:b, s:i, s:O, s:I}", "dry_run", dry_run, "keep", (int)keep, "removed", removed, "bytes",
                     (json_int_t)total);
    return 0;
}

int gc_tenant_slugs(struct server *s, const char *tenant, struct berth_error **err)
{
    _cleanup_json_ json_t *by_tenant = NULL, *removed = json_array(), *none = json_array();
    const json_t *apps;
    uint64_t total = 0;
    int r;

    if ((r = apps_by_tenant(s, &by_tenant, err)) < 0)
        return r;
    apps = json_object_get(by_tenant, tenant);
    /* Every release, not the last few: what apps:destroy removes is only what nothing can roll back to. */
    collect_tenant(s, tenant, apps ? apps : none, false, UINT_MAX, removed, &total);
    if (json_array_size(removed))
        log_info("removed %zu slugs of tenant '%s' that no release names (%llu bytes)", json_array_size(removed),
                 tenant, (unsigned long long)total);
    return 0;
}
/* ---------------------------------------------------------------- the scheduled pass */

struct gc_schedule {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    unsigned every_s;
    unsigned keep;
};

/* berth.json "gc": {"every": "24h" (or seconds, or "off"), "keep": 10}. */
static int schedule_settings(struct server *s, unsigned *ret_every, unsigned *ret_keep, struct berth_error **err)
{
    _cleanup_json_ json_t *settings = NULL;
    const json_t *gc, *every, *keep;
    int r = model_settings_load(&s->model, &settings, err);

    *ret_every = GC_EVERY_S;
    *ret_keep = GC_KEEP_RELEASES;
    if (r < 0)
        return r;
    gc = json_object_get(settings, "gc");
    every = json_object_get(gc, "every");
    keep = json_object_get(gc, "keep");
    if (json_is_string(every) && strcmp(json_string_value(every), "off") == 0)
        *ret_every = 0;
    else if (json_is_string(every) && units_parse_duration(json_string_value(every), ret_every) && *ret_every >= 1)
        ;
    else if (json_is_integer(every) && json_integer_value(every) >= 1 && json_integer_value(every) <= 366 * 86400)
        *ret_every = (unsigned)json_integer_value(every);
    else if (every)
        return berth_error_plain(err, EINVAL, "berth.json: gc.every must be a duration (\"24h\", or seconds), or \"off\"");
    if (json_is_integer(keep) && json_integer_value(keep) >= 1 && json_integer_value(keep) <= 1000)
        *ret_keep = (unsigned)json_integer_value(keep);
    else if (keep)
        return berth_error_plain(err, EINVAL, "berth.json: gc.keep must be 1 to 1000");
    return 0;
}

static void *schedule_thread(void *arg)
{
    struct server *s = arg;
    struct gc_schedule *g = s->gc;

    pthread_mutex_lock(&g->lock);
    for (;;) {
        struct timespec at;
        _cleanup_json_ json_t *report = NULL;
        _cleanup_error_ struct berth_error *err = NULL;

        clock_gettime(CLOCK_REALTIME, &at);
        at.tv_sec += g->every_s;
        while (!g->stop && pthread_cond_timedwait(&g->cond, &g->lock, &at) == 0)
            ;
        if (g->stop)
            break;
        pthread_mutex_unlock(&g->lock);
        if (gc_run(s, false, g->keep, &report, &err) < 0)
            log_warn("gc: %s", berth_error_msg(&err));
        else
            log_info("gc: removed %zu slugs (%lld bytes), keeping each app's last %u releases",
                     json_array_size(json_object_get(report, "removed")),
                     (long long)json_integer_value(json_object_get(report, "bytes")), g->keep);
        pthread_mutex_lock(&g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int gc_schedule_start(struct server *s, struct berth_error **err)
{
    struct gc_schedule *g;
    unsigned every, keep;
    int r = schedule_settings(s, &every, &keep, err);

    if (r < 0)
        return r;
    if (every == 0) {
        log_info("gc: no scheduled collection (berth.json gc.every is \"off\")");
        return 0;
    }
    g = xcalloc(1, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->every_s = every;
    g->keep = keep;
    s->gc = g;
    if (pthread_create(&g->thread, NULL, schedule_thread, s) != 0) {
        s->gc = NULL;
        free(g);
        return berth_error_plain(err, EAGAIN, "gc: cannot start its thread");
    }
    return 0;
}

void gc_schedule_stop(struct server *s)
{
    struct gc_schedule *g = s->gc;

    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
    s->gc = NULL;
}

/* The app whose name, followed by "-v", starts `entry` (the longest such), or NULL. */
static const char *entry_app(const json_t *apps, const char *entry)
{
    const char *best = NULL;
    size_t i;
    json_t *name;

    json_array_foreach(apps, i, name) {
        const char *app = json_string_value(name);
        size_t len = strlen(app);

        if (strncmp(entry, app, len) == 0 && strncmp(entry + len, "-v", 2) == 0 && (!best || len > strlen(best)))
            best = app;
    }
    return best;
}

/* Removes every entry of <home>/<sub> through the runner, with the ids of the app it names. */
static void sweep_app_dirs(struct server *s, const json_t *apps, const char *sub)
{
    _cleanup_free_ char *dir = model_path(&s->model, "%s", sub);
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;

    while (d && (de = readdir(d))) {
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *record = NULL;
        _cleanup_error_ struct berth_error *err = NULL;
        unsigned long uid_base, gid_base;
        const char *app, *tenant;

        if (de->d_name[0] == '.')
            continue;
        path = xasprintf("%s/%s", dir, de->d_name);
        app = entry_app(apps, de->d_name);
        if (!app || model_app_load(&s->model, app, &record, NULL) < 0 || !(tenant = json_get_str(record, "tenant")) ||
            server_tenant_ids(s, tenant, &uid_base, &gid_base, &err) < 0 ||
            runner_remove_tree(s->runner, path, uid_base, gid_base, TENANT_ID_SLICE, &err) < 0) {
            log_warn("left after a crash, and not removed: '%s'%s%s", path, err ? ": " : " (no app of that name)",
                     err ? berth_error_msg(&err) : "");
            continue;
        }
        log_info("removed '%s', left after a crash", path);
    }
}

/* The receiver's quarantine directories (objects/incoming-*) of pushes that never finished: berth's own files. */
static void sweep_quarantines(struct server *s, const json_t *apps)
{
    size_t i;
    json_t *name;

    json_array_foreach(apps, i, name) {
        _cleanup_free_ char *objects = model_path(&s->model, "apps/%s/repo.git/objects", json_string_value(name));
        _cleanup_closedir_ DIR *d = opendir(objects);
        struct dirent *de;

        while (d && (de = readdir(d))) {
            _cleanup_free_ char *path = NULL;
            _cleanup_error_ struct berth_error *err = NULL;

            if (strncmp(de->d_name, "incoming-", 9) != 0)
                continue;
            path = xasprintf("%s/%s", objects, de->d_name);
            if (rm_rf(path, &err) < 0)
                log_warn("removing '%s': %s", path, berth_error_msg(&err));
            else
                log_info("removed '%s', a push that never finished", path);
        }
    }
}

/* The cgroups of containers a crash killed: nothing of this home runs yet, so every empty one below an app goes. */
static void sweep_cgroups(struct server *s, const json_t *apps)
{
    size_t i;
    json_t *name;

    if (!s->cgroups)
        return;
    json_array_foreach(apps, i, name) {
        _cleanup_error_ struct berth_error *err = NULL;
        _cleanup_free_ char *rel = model_app_cgroup(&s->model, json_string_value(name));
        unsigned removed = 0;

        if (!rel)
            continue;
        if (runner_cgroup_sweep(rel, &removed, &err) < 0)
            log_warn("sweeping the cgroups of '%s': %s", rel, berth_error_msg(&err));
        else if (removed)
            log_info("removed %u empty cgroups below '%s', left after a crash", removed, rel);
    }
}

void gc_sweep_leftovers(struct server *s)
{
    _cleanup_json_ json_t *apps = NULL;
    _cleanup_error_ struct berth_error *err = NULL;

    if (model_app_list(&s->model, &apps, &err) < 0) {
        log_warn("sweeping what a crash left: %s", berth_error_msg(&err));
        return;
    }
    sweep_app_dirs(s, apps, "run/builds");
    sweep_app_dirs(s, apps, "run/instances");
    sweep_quarantines(s, apps);
    sweep_cgroups(s, apps);
}
