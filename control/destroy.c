/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/destroy: removing an app or a tenant for good (see destroy.h).
 * Order matters: first nothing can reach the thing any more (the app's
 * directory renamed away, the tenant's tokens revoked), then what runs
 * stops, then the files go. The files containers wrote (build cache,
 * slugs) belong to the tenant's subordinate ids, so they are removed
 * through the runner with the tenant's mapping.
 */
#include "control/destroy.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/applog.h"
#include "control/events.h"
#include "control/gc.h"
#include "control/tenants.h"

#define GRAVE_PREFIX ".destroyed-"

/* Removes a tree that the tenant's containers may have written into. */
static void remove_tenant_tree(struct server *s, const char *tenant, const char *path)
{
    _cleanup_error_ struct berth_error *err = NULL;
    unsigned long uid_base, gid_base;

    if (server_tenant_ids(s, tenant, &uid_base, &gid_base, &err) < 0 ||
        runner_remove_tree(s->runner, path, uid_base, gid_base, TENANT_ID_SLICE, &err) < 0)
        log_warn("removing '%s': %s", path, berth_error_msg(&err));
}

static void sweep_cgroups(struct server *s, const char *relpath)
{
    _cleanup_error_ struct berth_error *err = NULL;
    unsigned removed = 0;

    if (s->cgroups && runner_cgroup_sweep(relpath, &removed, &err) < 0)
        log_warn("removing the cgroups of '%s': %s", relpath, berth_error_msg(&err));
}

/*
 * The app stops existing: apps/<app> becomes apps/.destroyed-<app>-<hex>
 * (*ret_grave), and the tokens limited to it are revoked, under the
 * records lock. The caller holds the app's deploy lock.
 */
static int bury(struct server *s, const char *app, const char *tenant, char **ret_grave, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(&s->model, "apps/%s", app), *grave = NULL;
    char suffix[9];
    int r;

    if ((r = random_hex(suffix, 4, err)) < 0)
        return r;
    grave = model_path(&s->model, "apps/" GRAVE_PREFIX "%s-%s", app, suffix);
    pthread_mutex_lock(&s->records_lock);
    if (rename(dir, grave) < 0)
        r = berth_error_make(err, errno, "rename '%s'", dir);
    else if ((r = fsync_parent_dir(dir, err)) == 0 && (r = tenants_token_drop_app(&s->model, tenant, app, err)) == 0 &&
             strcmp(tenant, MODEL_ADMIN_TENANT) != 0)
        /* The admin's tokens limited to the app too: the next app of that name may be another tenant's. */
        r = tenants_token_drop_app(&s->model, MODEL_ADMIN_TENANT, app, err);
    pthread_mutex_unlock(&s->records_lock);
    if (r == 0)
        *ret_grave = TAKE_PTR(grave);
    return r;
}

int destroy_app(struct server *s, const char *app, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    _cleanup_free_ char *grave = NULL, *certs = NULL, *tenant = NULL, *cgroup = NULL;
    _cleanup_error_ struct berth_error *pub_err = NULL;
    struct app_runtime *rt = server_app(s, app);
    int r;

    /* A deploy of the app in progress finishes first; one that waits for the lock finds no app. */
    pthread_mutex_lock(&rt->deploy_lock);
    if ((r = model_app_load(&s->model, app, &record, err)) < 0) {
        pthread_mutex_unlock(&rt->deploy_lock);
        return r;
    }
    tenant = xstrdup(json_get_str(record, "tenant") ? json_get_str(record, "tenant") : "");
    if ((r = bury(s, app, tenant, &grave, err)) < 0) {
        pthread_mutex_unlock(&rt->deploy_lock);
        return r;
    }
    certs = model_path(&s->model, "certs/%s", app);
    if (rm_rf(certs, &pub_err) < 0) {
        log_warn("removing '%s': %s", certs, berth_error_msg(&pub_err));
        berth_error_release(&pub_err);
    }
    /* The route goes before the processes: the router sends nothing more to them. */
    if (server_publish_routes(s, &pub_err) < 0)
        log_warn("routes after destroying '%s': %s", app, berth_error_msg(&pub_err));
    server_app_stop_all(s, app);
    /* Its log's fd points into the renamed tree; a line after this finds no app directory and is dropped. */
    applog_forget(s->applog, app);
    remove_tenant_tree(s, tenant, grave);
    cgroup = model_app_cgroup_of(&s->model, tenant, app);
    sweep_cgroups(s, cgroup);
    pthread_mutex_unlock(&rt->deploy_lock);
    /* Its releases are gone: the slugs only they named go too, those of the tenant's other apps stay. */
    if (gc_tenant_slugs(s, tenant, &pub_err) < 0)
        log_warn("removing the slugs of '%s': %s", app, berth_error_msg(&pub_err));
    log_info("destroyed app '%s' of tenant '%s'", app, tenant);
    return 0;
}

int destroy_tenant(struct server *s, const char *tenant, json_t **ret_apps, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *apps = NULL;
    _cleanup_free_ char *layers = NULL, *tenant_cg = NULL;
    json_t *name;
    size_t i;
    int r;

    if (strcmp(tenant, MODEL_ADMIN_TENANT) == 0)
        return berth_error_plain(err, EPERM, "the admin tenant cannot be destroyed");
    /* Its tokens first: nothing the tenant sends from now on is let in. */
    pthread_mutex_lock(&s->records_lock);
    r = tenants_load(&s->model, tenant, &record, err);
    if (r == 0)
        r = tenants_token_drop_all(&s->model, tenant, err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0 || (r = model_app_list_of(&s->model, tenant, &apps, err)) < 0)
        return r;
    json_array_foreach(apps, i, name) {
        _cleanup_error_ struct berth_error *app_err = NULL;

        if (destroy_app(s, json_string_value(name), &app_err) < 0 && berth_error_code(&app_err) != ENOENT)
            return berth_error_plain(err, berth_error_code(&app_err), "destroying app '%s': %s",
                                     json_string_value(name), berth_error_msg(&app_err));
    }
    layers = xasprintf("%s/%s", s->layers_dir, tenant);
    remove_tenant_tree(s, tenant, layers);
    tenant_cg = model_tenant_cgroup(&s->model, tenant);
    sweep_cgroups(s, tenant_cg);
    /* Last, once nothing of it is left on disk: its id slice may be handed out again. */
    pthread_mutex_lock(&s->records_lock);
    r = tenants_remove(&s->model, tenant, err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0)
        return r;
    log_info("destroyed tenant '%s' and its %zu apps", tenant, json_array_size(apps));
    *ret_apps = TAKE_PTR(apps);
    return 0;
}

void destroy_sweep_leftovers(struct server *s)
{
    _cleanup_free_ char *dir = model_path(&s->model, "apps");
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;

    while (d && (de = readdir(d))) {
        _cleanup_free_ char *grave = NULL, *app_json = NULL;
        _cleanup_json_ json_t *record = NULL;
        const char *tenant;

        if (strncmp(de->d_name, GRAVE_PREFIX, strlen(GRAVE_PREFIX)) != 0)
            continue;
        grave = xasprintf("%s/%s", dir, de->d_name);
        app_json = xasprintf("%s/app.json", grave);
        if (json_store_load(app_json, &record, NULL) < 0 || !(tenant = json_get_str(record, "tenant"))) {
            log_warn("left by an interrupted apps:destroy, and not removed: '%s' (no app.json)", grave);
            continue;
        }
        remove_tenant_tree(s, tenant, grave);
        log_info("removed '%s', left by an interrupted apps:destroy", grave);
    }
}
