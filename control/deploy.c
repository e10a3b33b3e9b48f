/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/deploy: the deploy pipeline (see deploy.h). A push to main (or
 * master) becomes release N: the tree is exported, built into a slug by the
 * buildpacks driver in a build container, the web process of release N is
 * started and must bind $PORT, then the router's table is swapped to it and
 * the previous instance retired. Only then may the receiver move the ref.
 * Every step prints to the git client; every failure leaves the app exactly
 * as it was.
 */
#include "control/deploy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buildpacks/build.h"
#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/instance.h"

static void push_line(void *cls, const char *line)
{
    receiver_progress(cls, "%s", line);
}

static bool is_deploy_branch(const char *ref)
{
    return strcmp(ref, "refs/heads/main") == 0 || strcmp(ref, "refs/heads/master") == 0;
}

static bool is_zero_oid(const char *hex)
{
    return strspn(hex, "0") == strlen(hex);
}

/* Builds and launches; fills *ret_version on success. The caller holds the app's deploy lock. */
static int deploy(struct deploy_ctx *ctx, struct receiver_push *push, const struct receiver_update *u,
                  bool *ret_reported, struct berth_error **err)
{
    struct server *s = ctx->server;
    _cleanup_free_ char *work = NULL, *src = NULL, *cache = NULL, *cgroup = NULL;
    _cleanup_json_ json_t *config = NULL, *release = NULL;
    struct build_result built = { 0 };
    struct instance *in = NULL, *old;
    struct app_runtime *rt = server_app(s, ctx->app);
    unsigned long uid_base, gid_base;
    unsigned version;
    char suffix[17], created[32];
    const char *web;
    time_t now = time(NULL);
    struct tm tm;
    int r;

    r = server_tenant_ids(s, ctx->tenant, &uid_base, &gid_base, err);
    if (r < 0)
        return r;
    r = model_app_config(&s->model, ctx->app, &config, err);
    if (r < 0)
        return r;
    r = model_release_current(&s->model, ctx->app, &version, NULL, err);
    if (r < 0)
        return r;
    version++;

    r = random_hex(suffix, 8, err);
    if (r < 0)
        return r;
    work = model_path(&s->model, "run/builds/%s-v%u-%s", ctx->app, version, suffix);
    src = xasprintf("%s/src", work);
    cache = model_path(&s->model, "apps/%s/cache", ctx->app);
    if (mkdir(work, 0700) < 0)
        return berth_error_make(err, errno, "mkdir '%s'", work);

    receiver_progress(push, "-----> Building %s (commit %.7s) on the host stack", ctx->app, u->new_hex);
    r = receiver_push_export(push, u->new_hex, src, err);
    if (r < 0)
        goto out;
    if (s->cgroups)
        cgroup = xasprintf("%s/%s/build-v%u-%s", ctx->tenant, ctx->app, version, suffix);
    {
        struct build_spec spec = {
            .app = ctx->app,
            .source_dir = src,
            .cache_dir = cache,
            .work_dir = work,
            .buildpacks_dir = s->buildpacks_dir,
            .stack_dir = s->stack_dir,
            .layers_dir = s->layers_dir,
            .config = config,
            .commit = u->new_hex,
            .uid_base = uid_base,
            .gid_base = gid_base,
            .id_count = TENANT_ID_SLICE,
            .cgroup = cgroup,
            .on_output = push_line,
            .cls = push,
        };

        r = build_run(s->runner, &spec, &built, err);
        if (r < 0) {
            /* The build driver has already told the user why, in its own lines. */
            *ret_reported = true;
            goto out;
        }
    }
    web = json_get_str(built.process_types, "web");
    if (!web) {
        r = berth_error_plain(err, EINVAL, "no web process type: add a Procfile with a 'web:' line");
        goto out;
    }

    receiver_progress(push, "-----> Launching v%u", version);
    {
        struct instance_spec ispec = {
            .app = ctx->app,
            .tenant = ctx->tenant,
            .release = version,
            .process_type = "web",
            .command = web,
            .slug_dir = built.slug_dir,
            .config = config,
        };

        r = instance_start(s, &ispec, &in, push_line, push, err);
        if (r < 0)
            goto out;
    }

    gmtime_r(&now, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    release = json_pack("{s:i, s:s, s:s, s:s, s:O, s:O, s:s}", "version", (int)version, "slug", built.slug_id,
                        "commit", u->new_hex, "buildpack", built.buildpack ? built.buildpack : "",
                        "process_types", built.process_types, "config", config, "created_at", created);
    r = model_release_save(&s->model, ctx->app, version, release, err);
    if (r < 0) {
        instance_stop_and_free(s, in, 0);
        goto out;
    }

    /* The switch: from here on the new release serves every new request. */
    pthread_mutex_lock(&s->lock);
    old = rt->web;
    rt->web = in;
    rt->generation = version;
    pthread_mutex_unlock(&s->lock);
    r = server_publish_routes(s, err);
    if (r < 0)
        log_error("publishing routes after deploying '%s' v%u: %s", ctx->app, version, berth_error_msg(err));
    berth_error_release(err);
    r = 0;
    if (old)
        instance_retire(s, old);

    receiver_progress(push, "       Released v%u", version);
    receiver_progress(push, "       http://%s.%s:%u/ deployed to berth", ctx->app, s->opt.domain, s->http_port);
out:
    build_result_release(&built);
    {
        _cleanup_error_ struct berth_error *rm_err = NULL;

        if (runner_remove_tree(s->runner, work, uid_base, gid_base, TENANT_ID_SLICE, &rm_err) < 0)
            log_warn("removing build dir '%s': %s", work, berth_error_msg(&rm_err));
    }
    return r;
}

int deploy_on_push(void *cls, struct receiver_push *push, const struct receiver_update *updates,
                   size_t n_updates, struct strbuf *reason)
{
    struct deploy_ctx *ctx = cls;
    _cleanup_error_ struct berth_error *err = NULL;
    const struct receiver_update *u = NULL;
    struct app_runtime *rt;
    bool reported = false;
    int r;

    for (size_t i = 0; i < n_updates; i++) {
        if (!is_deploy_branch(updates[i].refname)) {
            receiver_progress(push, " !     berth deploys only 'main' or 'master'; '%s' was pushed",
                              updates[i].refname);
            strbuf_addstr(reason, "pushed to a branch other than main or master");
            return -EINVAL;
        }
        if (is_zero_oid(updates[i].new_hex)) {
            strbuf_addstr(reason, "deleting the deploy branch is not allowed");
            return -EPERM;
        }
        if (u) {
            strbuf_addstr(reason, "push either main or master, not both");
            return -EINVAL;
        }
        u = &updates[i];
    }
    if (!u)
        return 0;

    rt = server_app(ctx->server, ctx->app);
    pthread_mutex_lock(&rt->deploy_lock);
    r = deploy(ctx, push, u, &reported, &err);
    pthread_mutex_unlock(&rt->deploy_lock);
    if (r < 0) {
        log_warn("deploy of '%s' failed: %s", ctx->app, berth_error_msg(&err));
        if (!reported)
            receiver_progress(push, " !     %s", berth_error_msg(&err));
        receiver_progress(push, " !     Push rejected to %s.", ctx->app);
        strbuf_addstr(reason, berth_error_msg(&err));
        /* One line for the ng report. */
        for (size_t i = 0; i < reason->len; i++)
            if (reason->buf[i] == '\n')
                reason->buf[i] = ' ';
        return r;
    }
    return 0;
}

void deploy_restore_all(struct server *s)
{
    _cleanup_json_ json_t *apps = NULL;
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *name;
    size_t i;

    if (model_app_list(&s->model, &apps, &err) < 0) {
        log_error("listing apps: %s", berth_error_msg(&err));
        return;
    }
    json_array_foreach(apps, i, name) {
        const char *app = json_string_value(name);
        _cleanup_json_ json_t *release = NULL, *record = NULL;
        _cleanup_free_ char *slug_dir = NULL;
        struct instance *in = NULL;
        struct app_runtime *rt;
        unsigned version;
        const char *web, *slug, *tenant;

        berth_error_release(&err);
        if (model_app_load(&s->model, app, &record, &err) < 0 ||
            model_release_current(&s->model, app, &version, &release, &err) < 0) {
            log_error("restoring '%s': %s", app, berth_error_msg(&err));
            continue;
        }
        if (!release)
            continue;
        tenant = json_get_str(record, "tenant");
        web = json_get_str(json_object_get(release, "process_types"), "web");
        slug = json_get_str(release, "slug");
        if (!tenant || !web || !slug) {
            log_error("restoring '%s': release v%u is incomplete", app, version);
            continue;
        }
        slug_dir = xasprintf("%s/%s", s->layers_dir, slug);
        {
            struct instance_spec ispec = {
                .app = app, .tenant = tenant, .release = version, .process_type = "web",
                .command = web, .slug_dir = slug_dir, .config = json_object_get(release, "config"),
            };

            if (instance_start(s, &ispec, &in, NULL, NULL, &err) < 0) {
                log_error("restoring '%s' v%u: %s", app, version, berth_error_msg(&err));
                continue;
            }
        }
        rt = server_app(s, app);
        pthread_mutex_lock(&s->lock);
        rt->web = in;
        rt->generation = version;
        pthread_mutex_unlock(&s->lock);
        log_info("restored '%s' v%u", app, version);
    }
    if (server_publish_routes(s, &err) < 0)
        log_error("publishing routes: %s", berth_error_msg(&err));
}
