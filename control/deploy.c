/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/deploy: the deploy pipeline (see deploy.h). A push to main (or
 * master) becomes release N: the tree is exported, built into a slug by the
 * buildpacks driver in build containers, the release phase (a Procfile
 * `release:` process) runs with the new slug and config, the web process of
 * release N is started, must bind $PORT and pass the slug's startup health
 * checks (checks.h); then the receiver publishes the pack and moves the
 * ref, and only after that (deploy_settled()) is the release recorded, the
 * router's table swapped to it and the previous instance retired once the
 * router has let go of it. Every step prints to the git client; every failure
 * leaves the app exactly as it was.
 */
#include "control/deploy.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buildpacks/build.h"
#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/applog.h"
#include "control/build-slots.h"
#include "control/checks.h"
#include "control/cron.h"
#include "control/events.h"
#include "control/formation-internal.h"
#include "control/instance.h"
#include "control/pipelines.h"
#include "control/quota.h"

typedef void (*deploy_output_fn)(void *cls, const char *line);

static void push_line(void *cls, const char *line)
{
    receiver_progress(cls, "%s", line);
}

/* Release-phase output, indented under berth's own lines as buildpack details are. */
static void push_detail(void *cls, const char *line)
{
    receiver_progress(cls, "       %s", line);
}

static bool is_deploy_branch(const char *ref)
{
    return strcmp(ref, "refs/heads/main") == 0 || strcmp(ref, "refs/heads/master") == 0;
}

static bool is_zero_oid(const char *hex)
{
    return strspn(hex, "0") == strlen(hex);
}

static char *now_iso8601(void)
{
    char buf[MODEL_TIME_LEN + 1];

    model_time_format(time(NULL), buf);
    return xstrdup(buf);
}

/* ---------------------------------------------------------------- settings */

/* The build's fetch callback: one bare cache repository per URL, the receiver's git client. */
static int fetch_buildpack(void *cls, const char *url, const char *ref, bool trusted, const char *dest_dir,
                           char **ret_commit, struct berth_error **err)
{
    struct server *s = cls;
    char hash[SHA256_HEX_LEN + 1];
    _cleanup_free_ char *cache = NULL;

    sha256_hex(url, strlen(url), hash);
    cache = xasprintf("%s/%.32s", s->fetch_cache_dir, hash);
    return receiver_fetch_tree(url, ref, trusted, cache, dest_dir, ret_commit, err);
}

/* The server's budget with the app's own "build" settings over it. */
static struct build_budget app_budget(const struct server *s, const json_t *record)
{
    const json_t *build = json_object_get(record, "build");
    struct build_budget b = s->build_budget;
    json_int_t v;

    if ((v = json_integer_value(json_object_get(build, "memory"))) > 0)
        b.memory_bytes = (uint64_t)v;
    if ((v = json_integer_value(json_object_get(build, "disk"))) > 0)
        b.disk_bytes = (uint64_t)v;
    if ((v = json_integer_value(json_object_get(build, "timeout"))) > 0)
        b.timeout_s = (unsigned)v;
    return b;
}

/* The app's buildpack list as a NULL-terminated array borrowing record's strings. */
static const char **app_buildpacks(const json_t *record)
{
    const json_t *list = json_object_get(record, "buildpacks");
    const char **v = xcalloc(json_array_size(list) + 1, sizeof(*v));
    size_t i, n = 0;
    json_t *item;

    json_array_foreach(list, i, item)
        if (json_is_string(item))
            v[n++] = json_string_value(item);
    return v;
}

/* ---------------------------------------------------------------- going live */

/* The Procfile's `release:` process, with the new slug and config, before anything goes live. */
static int release_phase(struct server *s, const struct instance_spec *base, const char *command,
                         deploy_output_fn out, void *cls, struct berth_error **err)
{
    struct instance_spec spec = *base;
    _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
    int status = 0, r;

    spec.process_type = "release";
    spec.command = command;
    strbuf_emitf(out, cls, "-----> Running release command `%s`", command);
    r = instance_run_once(s, &spec, INSTANCE_RELEASE_TIMEOUT_MS, out ? push_detail : NULL, cls,
                          &status, err);
    if (r < 0)
        return berth_error_wrap(err, "release command");
    if (status == 0)
        return 0;
    if (WIFEXITED(status))
        strbuf_addf(&why, "exit status %d", WEXITSTATUS(status));
    else
        strbuf_addf(&why, "signal %d", WTERMSIG(status));
    return berth_error_plain(err, EIO, "the release command failed with %s", why.buf);
}

/*
 * A test-only knob for the crash tests: with BERTH_TEST_PAUSE=<window>
 * (built, started or settled), the deploy sleeps BERTH_TEST_PAUSE_MS
 * (default 3000) there, so that a test can kill -9 the daemon inside that
 * window. Unset in production: one getenv() per deploy step.
 */
static void test_pause(const char *window)
{
    const char *at = getenv("BERTH_TEST_PAUSE"), *ms = getenv("BERTH_TEST_PAUSE_MS");

    if (at && strcmp(at, window) == 0) {
        log_info("pausing the deploy at '%s' (BERTH_TEST_PAUSE)", window);
        usleep((useconds_t)(ms ? atoi(ms) : 3000) * 1000);
    }
}

/*
 * The new release's web instances: started, checked, serving no one yet;
 * and the claim on the slots of its formation (quota.h), held until they
 * are the app's.
 */
struct started {
    struct instance *web[FORMATION_SCALE_MAX];
    size_t n;
    struct quota_claim *claim;
};

/* Stops the instances not handed over, and gives their slots up. */
static void started_stop(struct server *s, struct started *st)
{
    while (st->n)
        instance_stop_and_free(s, st->web[--st->n], 0);
    quota_claim_drop(TAKE_PTR(st->claim));
}

/*
 * What a release going live is: a new one (its record saved once it is
 * live, its release phase run first), the current one restarted, or the
 * current one brought back at berth serve's start. The first two start
 * nothing past the tenant's instances; the last brings back what ran.
 */
enum go_live_kind { GO_LIVE_NEW, GO_LIVE_RESTART, GO_LIVE_RESTORE };

/* Starts web.n and runs the slug's health checks on it. */
static int start_web(struct server *s, const struct instance_spec *spec, const struct check_list *checks,
                     const char *host, deploy_output_fn out, void *cls, struct instance **ret,
                     struct berth_error **err)
{
    struct instance *in = NULL;
    int r;

    if ((r = instance_start(s, spec, &in, out, cls, err)) < 0)
        return r;
    if ((r = checks_run(checks, s->router, spec->app, in, host, out, cls, err)) < 0) {
        instance_stop_and_free(s, in, 0);
        return r;
    }
    *ret = in;
    return 0;
}

/*
 * The first half of going live: the slots of the formation claimed (the
 * ones the app does not hold yet must fit in the tenant's instances, or
 * -EDQUOT before anything runs), release phase, the web instances up (as
 * many as the app's web scale), health checks passed on each. They serve
 * no one yet; the old release serves on. The caller holds the app's deploy
 * lock. Only a GO_LIVE_NEW release runs the release phase.
 */
static int go_live_start(struct server *s, const char *app, const char *tenant, const json_t *release,
                         const json_t *record, enum go_live_kind kind, deploy_output_fn out, void *cls,
                         struct started *ret, struct berth_error **err)
{
    const char *release_cmd = json_get_str(json_object_get(release, "process_types"), "release");
    unsigned version = (unsigned)json_integer_value(json_object_get(release, "version"));
    unsigned want = json_is_true(json_object_get(record, "stopped")) ? 0 : formation_wanted(record, "web");
    _cleanup_free_ char *app_dir = NULL, *host = NULL;
    struct check_list checks = { 0 };
    struct formation_spec fs;
    int r;

    ret->n = 0;
    ret->claim = NULL;
    if ((r = formation_spec_init(s, app, tenant, record, release, "web", 1, &fs, err)) < 0)
        return r;
    app_dir = xasprintf("%s/app", fs.slug_dir);
    /* A malformed app.json or CHECKS rejects the release before anything starts. */
    if ((r = checks_load(app_dir, &checks, err)) < 0)
        goto out;
    /* Web here, the other types at formation_switch(): all of the slots they add, or none. */
    if ((r = quota_claim_formation(s, tenant, app, record, json_object_get(release, "process_types"),
                                   kind != GO_LIVE_RESTORE, &ret->claim, err)) < 0)
        goto out;
    if (release_cmd && kind == GO_LIVE_NEW) {
        struct instance_spec rspec = fs.spec;

        rspec.process_type = "release";
        rspec.command = release_cmd;
        if ((r = release_phase(s, &rspec, release_cmd, out, cls, err)) < 0)
            goto out;
    }
    if (want == 0)
        strbuf_emitf(out, cls, "-----> v%u: web is scaled to 0 (berth ps:scale %s web=1)", version, app);
    else
        strbuf_emitf(out, cls, "-----> Launching v%u", version);
    host = xasprintf("%s.%s", app, s->opt.domain);
    if (checks.n && json_get_str(record, "checks")) {
        strbuf_emitf(out, cls, "-----> Health checks %s for %s (berth checks:enable %s)",
                     json_get_str(record, "checks"), app, app);
        checks_release(&checks);
    }
    /* One at a time: each must boot and pass before the next starts, and none serves yet. */
    for (unsigned n = 1; n <= want && r == 0; n++) {
        fs.spec.number = n;
        r = start_web(s, &fs.spec, &checks, host, n == 1 ? out : NULL, cls, &ret->web[ret->n], err);
        if (r == 0)
            ret->n++;
    }
out:
    if (r < 0)
        started_stop(s, ret);
    checks_release(&checks);
    formation_spec_release(&fs);
    return r;
}

/* Heroku's `app[api]:` lines for a release just recorded: what made it, then its number. */
static void log_release(struct server *s, const char *app, const json_t *release, unsigned version)
{
    const char *user = json_get_str(release, "user"), *desc = json_get_str(release, "description");

    if (!user)
        user = "-";
    if (desc)
        applog_emit(s->applog, app, "app[api]", "%s by %s", desc, user);
    applog_emit(s->applog, app, "app[api]", "Release v%u created by %s", version, user);
}

/* The second half: the record written (when `save`), then the formation switched to the new instances. */
static int go_live_commit(struct server *s, const char *app, const json_t *release, struct started *st,
                          bool save, struct berth_error **err)
{
    unsigned version = (unsigned)json_integer_value(json_object_get(release, "version"));
    int r;

    if (save && (r = model_release_save(&s->model, app, version, release, err)) < 0) {
        started_stop(s, st);
        return r;
    }
    if (save)
        log_release(s, app, release, version);
    formation_switch(s, app, version, st->web, st->n);
    st->n = 0;
    /* The formation converged: its slots are the app's now, or crashed and still held. */
    quota_claim_drop(TAKE_PTR(st->claim));
    return 0;
}

/* Both halves at once: for the releases no push waits on (config, rollback, restart, restore). */
static int go_live(struct server *s, const char *app, const char *tenant, const json_t *release,
                   const json_t *record, enum go_live_kind kind, deploy_output_fn out, void *cls,
                   struct berth_error **err)
{
    struct started st = { .n = 0 };
    int r = go_live_start(s, app, tenant, release, record, kind, out, cls, &st, err);

    return r < 0 ? r : go_live_commit(s, app, release, &st, kind == GO_LIVE_NEW, err);
}

/* ---------------------------------------------------------------- a push */

static int build_slug(struct deploy_ctx *ctx, struct receiver_push *push, const json_t *record,
                      const json_t *config, const char *work, const char *commit, unsigned version,
                      const char *suffix, struct build_result *built, struct berth_error **err)
{
    struct server *s = ctx->server;
    _cleanup_free_ char *src = xasprintf("%s/src", work);
    _cleanup_free_ char *cache = model_path(&s->model, "apps/%s/cache", ctx->app);
    _cleanup_free_ char *layers = xasprintf("%s/%s", s->layers_dir, ctx->tenant);
    _cleanup_free_ char *cgroup = NULL;
    _cleanup_free_ const char **buildpacks = app_buildpacks(record);
    unsigned long uid_base, gid_base;
    int r;

    if ((r = server_tenant_ids(s, ctx->tenant, &uid_base, &gid_base, err)) < 0 ||
        (r = quota_apply_tenant(s, ctx->tenant, err)) < 0 ||
        (r = mkdir_p(layers, 0700, err)) < 0 ||
        (r = receiver_push_export(push, commit, src, err)) < 0)
        return r;
    if (s->cgroups) {
        _cleanup_free_ char *app_cg = model_app_cgroup_of(&s->model, ctx->tenant, ctx->app);

        cgroup = xasprintf("%s/build-v%u-%s", app_cg, version, suffix);
    }
    const struct build_spec spec = {
        .app = ctx->app,
        .source_dir = src,
        .subdir = json_get_str(json_object_get(record, "build"), "dir"),
        .cache_dir = cache,
        .work_dir = work,
        .buildpacks_dir = s->buildpacks_dir,
        .stack_dir = s->stack_dir,
        .layers_dir = layers,
        .config = config,
        .commit = commit,
        .buildpacks = buildpacks,
        .fetch = fetch_buildpack,
        .fetch_cls = s,
        .trusted_sources = strcmp(ctx->tenant, MODEL_ADMIN_TENANT) == 0,
        .uid_base = uid_base,
        .gid_base = gid_base,
        .id_count = TENANT_ID_SLICE,
        .cgroup = cgroup,
        .network = s->network,
        .need_web = true,
        .budget = app_budget(s, record),
        .on_output = push_line,
        .cls = push,
    };
    return build_run(s->runner, &spec, built, err);
}

static json_t *release_from_build(unsigned version, const char *commit, const struct build_result *b,
                                  const json_t *config, const char *user)
{
    _cleanup_free_ char *created = now_iso8601();
    _cleanup_free_ char *desc = xasprintf("Deploy %.7s", commit);

    return json_pack("{s:i, s:s, s:s, s:s, s:O, s:O, s:O, s:o, s:s, s:s, s:s}", "version", (int)version,
                     "slug", b->slug_id, "commit", commit, "buildpack", b->buildpack ? b->buildpack : "",
                     "buildpacks", b->buildpacks, "process_types", b->process_types, "config", config,
                     "buildpack_config", b->config_vars ? json_incref(b->config_vars) : json_object(),
                     "created_at", created, "description", desc, "user", user);
}

/* A release made from `base` without a build (config change, rollback): new number, time, author and words. */
static json_t *release_derived(const json_t *base, unsigned version, const char *user, const char *description)
{
    _cleanup_free_ char *created = now_iso8601();
    json_t *release = json_deep_copy(base);

    json_object_set_new(release, "version", json_integer((json_int_t)version));
    json_object_set_new(release, "created_at", json_string(created));
    json_object_set_new(release, "description", json_string(description));
    json_object_set_new(release, "user", json_string(user));
    return release;
}

/* app.json's "cron" entries, checked, into the release: a rollback to it brings its own schedule back. */
static int release_add_cron(struct deploy_ctx *ctx, struct receiver_push *push, json_t *release,
                            struct berth_error **err)
{
    _cleanup_free_ char *slug_dir = server_slug_dir(ctx->server, ctx->tenant, json_get_str(release, "slug"));
    _cleanup_free_ char *app_dir = xasprintf("%s/app", slug_dir);
    json_t *jobs = NULL;
    int r = cron_jobs_load(app_dir, &jobs, err);

    if (r < 0)
        return r;
    if (json_array_size(jobs))
        receiver_progress(push, "-----> Scheduled jobs: %zu (berth cron %s)", json_array_size(jobs), ctx->app);
    json_object_set_new(release, "cron", jobs);
    return 0;
}

/*
 * The push options (`git push -o KEY=VALUE`) a deploy knows: checks=skip
 * (or disabled) runs this deploy without the startup health checks, as
 * `berth checks:skip` would, without changing the app's setting. Any other
 * option is named as ignored; a bad checks value rejects the push.
 */
static int apply_push_options(struct receiver_push *push, json_t *record, struct berth_error **err)
{
    const char *checks = receiver_push_option(push, "checks");
    size_t n = receiver_push_option_count(push);

    for (size_t i = 0; i < n; i++) {
        const char *o = receiver_push_option_at(push, i);

        if (strncmp(o, "checks=", 7) != 0)
            receiver_progress(push, "       push option '%.100s' ignored (berth knows checks=skip)", o);
    }
    if (!checks)
        return 0;
    if (strcmp(checks, "skip") != 0 && strcmp(checks, "skipped") != 0 && strcmp(checks, "disabled") != 0 &&
        strcmp(checks, "enabled") != 0)
        return berth_error_plain(err, EINVAL, "push option checks=%.100s: use checks=skip or checks=enabled",
                                 checks);
    if (strcmp(checks, "enabled") == 0)
        json_object_del(record, "checks");
    else
        json_object_set_new(record, "checks", json_string("skipped (git push -o checks=skip)"));
    return 0;
}

/*
 * Before a push builds: whether the app's web processes, which every
 * release runs, fit in the tenant's instances (a first deploy's web.1), so
 * that a refusal costs no build. go_live_start() claims all it starts.
 */
static int check_web_room(struct deploy_ctx *ctx, const json_t *record, struct berth_error **err)
{
    _cleanup_json_ json_t *web = json_pack("{s:s}", "web", "");

    return quota_claim_formation(ctx->server, ctx->tenant, ctx->app, record, web, true, NULL, err);
}

static void say_build_wait(void *cls, unsigned ahead)
{
    receiver_progress(cls, "-----> Waiting for a build slot (%u ahead)", ahead);
}

/*
 * Builds and starts the new release (go_live_start()); the caller holds the
 * app's deploy lock. On success ctx->pending holds the started instance and
 * ctx->pending_release its record, for deploy_settled().
 */
static int deploy(struct deploy_ctx *ctx, struct receiver_push *push, const struct receiver_update *u,
                  bool *ret_reported, struct berth_error **err)
{
    struct server *s = ctx->server;
    _cleanup_free_ char *work = NULL;
    _cleanup_json_ json_t *config = NULL, *record = NULL, *release = NULL;
    struct build_result built = { 0 };
    unsigned long uid_base = 0, gid_base = 0;
    unsigned version;
    char suffix[17];
    int r;

    if ((r = model_app_load(&s->model, ctx->app, &record, err)) < 0 ||
        (r = model_app_config(&s->model, ctx->app, &config, err)) < 0 ||
        (r = model_release_current(&s->model, ctx->app, &version, NULL, err)) < 0 ||
        (r = server_tenant_ids(s, ctx->tenant, &uid_base, &gid_base, err)) < 0 ||
        (r = random_hex(suffix, 8, err)) < 0)
        return r;
    if ((r = apply_push_options(push, record, err)) < 0 || (r = check_web_room(ctx, record, err)) < 0)
        return r;
    version++;
    work = model_path(&s->model, "run/builds/%s-v%u-%s", ctx->app, version, suffix);
    if (mkdir(work, 0700) < 0)
        return berth_error_make(err, errno, "mkdir '%s'", work);
    receiver_progress(push, "-----> Building %s (commit %.7s) on the host stack", ctx->app, u->new_hex);
    {
        _cleanup_free_ char *stage = pipelines_stage_line(s, ctx->tenant, ctx->app);

        if (stage)
            receiver_progress(push, "-----> %s", stage);
    }
    build_slots_acquire(s, say_build_wait, push);
    r = build_slug(ctx, push, record, config, work, u->new_hex, version, suffix, &built, err);
    build_slots_release();
    if (r < 0) {
        /* The build driver has already told the user why, in its own lines. */
        *ret_reported = true;
        goto out;
    }
    release = release_from_build(version, u->new_hex, &built, config, ctx->tenant);
    if ((r = release_add_cron(ctx, push, release, err)) < 0)
        goto out;
    test_pause("built");
    ctx->pending = xcalloc(1, sizeof(*ctx->pending));
    r = go_live_start(s, ctx->app, ctx->tenant, release, record, GO_LIVE_NEW, push_line, push, ctx->pending,
                      err);
    if (r < 0) {
        free(TAKE_PTR(ctx->pending));
        goto out;
    }
    ctx->pending_release = TAKE_PTR(release);
    test_pause("started");
out:
    build_result_release(&built);
    {
        _cleanup_error_ struct berth_error *rm_err = NULL;

        /*
         * The build left only the exported source, berth's own files, unless
         * it failed half-way: only what the tenant's ids own needs a tree
         * worker (milliseconds, on the push's path), so a plain removal goes
         * first. No process of the build is left to race it.
         */
        if (rm_rf(work, NULL) < 0 &&
            runner_remove_tree(s->runner, work, uid_base, gid_base, TENANT_ID_SLICE, &rm_err) < 0)
            log_warn("removing build dir '%s': %s", work, berth_error_msg(&rm_err));
    }
    return r;
}

int deploy_push_start(struct deploy_ctx *ctx, struct receiver_push *push, const struct receiver_update *u,
                      struct strbuf *reason)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct app_runtime *rt = server_app(ctx->server, ctx->app);
    bool reported = false;
    int r;

    pthread_mutex_lock(&rt->deploy_lock);
    r = deploy(ctx, push, u, &reported, &err);
    /* Started: the lock stays held until the push is settled (deploy_settled()). */
    if (r == 0) {
        ctx->ref = xstrdup(u->refname);
        return 0;
    }
    pthread_mutex_unlock(&rt->deploy_lock);
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

/*
 * A ref other than the deploy branch is stored as any git server would.
 * With previews on for the app (pipelines.h), a pushed branch also builds
 * its preview (one branch per push); a deleted branch's preview, if any,
 * is destroyed once the push settled, previews on or off.
 */
static int branch_update(struct deploy_ctx *ctx, struct receiver_push *push, const struct receiver_update *u,
                         const struct receiver_update **ret_branch, struct strbuf *reason)
{
    const char *name = u->refname + strlen("refs/heads/");
    /* Tags are never previews. */
    bool previews = strncmp(u->refname, "refs/heads/", 11) == 0 &&
                    pipelines_has_previews(ctx->server, ctx->tenant, ctx->app);

    /* A deleted branch takes its preview along, even once previews are off (a no-op without one). */
    if (is_zero_oid(u->new_hex) && strncmp(u->refname, "refs/heads/", 11) == 0) {
        if (!ctx->deleted_branches)
            ctx->deleted_branches = json_array();
        json_array_append_new(ctx->deleted_branches, json_string(u->refname));
    }
    if (!previews) {
        /* Any git server stores other branches; only main or master deploys. */
        if (is_zero_oid(u->new_hex))
            receiver_progress(push, "-----> Deleting branch '%s' (not deployed)", name);
        else
            receiver_progress(push, "-----> Storing branch '%s' (commit %.7s) without a deploy: berth deploys "
                              "only 'main' or 'master' (previews are off)", name, u->new_hex);
        return 0;
    }
    if (is_zero_oid(u->new_hex))
        return 0;
    if (*ret_branch) {
        strbuf_addstr(reason, "push one branch at a time to get a preview of each");
        return -EINVAL;
    }
    *ret_branch = u;
    return 0;
}

int deploy_on_push(void *cls, struct receiver_push *push, const struct receiver_update *updates,
                   size_t n_updates, struct strbuf *reason)
{
    struct deploy_ctx *ctx = cls;
    const struct receiver_update *u = NULL, *branch = NULL;
    int r = 0;

    /*
     * The push was authorized when its request began; an app destroyed since,
     * and perhaps made again by another tenant, takes nothing of it.
     */
    if (!server_app_owned_by(ctx->server, ctx->app, ctx->tenant)) {
        receiver_progress(push, " !     '%s' was destroyed during the push; nothing was stored", ctx->app);
        strbuf_addstr(reason, "the app was destroyed during the push");
        return -ENOENT;
    }

    for (size_t i = 0; i < n_updates && r == 0; i++) {
        if (!is_deploy_branch(updates[i].refname))
            r = branch_update(ctx, push, &updates[i], &branch, reason);
        else if (is_zero_oid(updates[i].new_hex)) {
            receiver_progress(push, " !     '%s' is %s's deploy branch: it cannot be deleted",
                              updates[i].refname + strlen("refs/heads/"), ctx->app);
            r = -EPERM, strbuf_addstr(reason, "deleting the deploy branch is not allowed");
        }
        else if (u)
            r = -EINVAL, strbuf_addstr(reason, "push either main or master, not both");
        else
            u = &updates[i];
    }
    /* The preview first: one that cannot be made rejects the push before main builds. */
    if (r == 0 && branch)
        r = pipelines_branch_pushed(ctx->server, ctx->app, ctx->tenant, push, branch, &ctx->preview, reason);
    if (r == 0 && u && (r = deploy_push_start(ctx, push, u, reason)) < 0 && ctx->preview)
        pipelines_preview_settled(TAKE_PTR(ctx->preview), push, false);
    if (r < 0) {
        json_decref(TAKE_PTR(ctx->deleted_branches));
        if (!u)
            receiver_progress(push, " !     Push rejected to %s.", ctx->app);
    }
    return r;
}

/*
 * After the main deploy settled and its lock is gone: the preview goes live,
 * deleted branches lose theirs. Each by its own ref's outcome, not the
 * push's: in a push that is not atomic, main may fail to land while a
 * branch's deletion does (its preview would outlive the branch), or the
 * other way round (the branch, and so its preview, still there).
 */
static void settle_branches(struct deploy_ctx *ctx, struct receiver_push *push, bool ok)
{
    _cleanup_json_ json_t *deleted = TAKE_PTR(ctx->deleted_branches);
    json_t *ref;
    size_t i;

    if (ctx->preview)
        pipelines_preview_settled(TAKE_PTR(ctx->preview), push, ok);
    json_array_foreach(deleted, i, ref) {
        const char *refname = json_string_value(ref);

        if (ok || receiver_push_ref_landed(push, refname) == 1)
            pipelines_branch_deleted(ctx->server, ctx->app, ctx->tenant, refname, push);
    }
}

static void settle_main(struct deploy_ctx *ctx, struct receiver_push *push, bool ok)
{
    struct server *s = ctx->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *release = TAKE_PTR(ctx->pending_release);
    _cleanup_free_ struct started *st = TAKE_PTR(ctx->pending);
    struct app_runtime *rt = server_app(s, ctx->app);
    unsigned version = (unsigned)json_integer_value(json_object_get(release, "version"));

    /* A push that was not a deploy (nothing to main) started nothing and took no lock. */
    if (!st)
        return;
    if (!ok) {
        started_stop(s, st);
        receiver_progress(push, " !     The repository did not take the push: v%u was not released.", version);
        pthread_mutex_unlock(&rt->deploy_lock);
        return;
    }
    test_pause("settled");
    if (go_live_commit(s, ctx->app, release, st, true, &err) < 0) {
        log_error("deploy of '%s' v%u: %s", ctx->app, version, berth_error_msg(&err));
        receiver_progress(push, " !     v%u could not be recorded (%s); the previous release serves on.", version,
                          berth_error_msg(&err));
    } else {
        receiver_progress(push, "       Released v%u", version);
        events_record(s, ctx->tenant, ctx->app, "deploy", "Deploy %.7s: v%u",
                      json_get_str(release, "commit"), version);
        receiver_progress(push, "       http://%s.%s:%u/ deployed to berth", ctx->app, s->opt.domain,
                          s->http_port);
    }
    pthread_mutex_unlock(&rt->deploy_lock);
}

bool deploy_settle(struct deploy_ctx *ctx, struct receiver_push *push, bool ok)
{
    _cleanup_free_ char *ref = TAKE_PTR(ctx->ref);
    bool landed = ok || (ref && receiver_push_ref_landed(push, ref) == 1);

    settle_main(ctx, push, landed);
    settle_branches(ctx, push, ok);
    return landed;
}

void deploy_settled(void *cls, struct receiver_push *push, bool ok)
{
    (void)deploy_settle(cls, push, ok);
}

/* ---------------------------------------------------------------- without a push */

/* `config` with `changes` applied: set, or unset where null. */
static void config_apply(json_t *config, const json_t *changes)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)changes, key, v) {
        if (json_is_null(v))
            json_object_del(config, key);
        else
            json_object_set(config, key, v);
    }
}

/* A release of `app` going live (go_live()) with `config` saved first, and the old config back if it fails. */
static int go_live_with_config(struct server *s, const char *app, const char *tenant, json_t *release,
                               const json_t *record, const json_t *config, const json_t *before,
                               struct berth_error **err)
{
    int r;

    if ((r = model_app_config_save(&s->model, app, config, err)) < 0)
        return r;
    if ((r = go_live(s, app, tenant, release, record, GO_LIVE_NEW, NULL, NULL, err)) < 0) {
        _cleanup_error_ struct berth_error *back_err = NULL;

        if (model_app_config_save(&s->model, app, before, &back_err) < 0)
            log_warn("putting back the config of '%s' after a failed release: %s", app,
                     berth_error_msg(&back_err));
    }
    return r;
}

static int config_locked(struct server *s, const char *app, const char *tenant, const json_t *changes,
                         const char *description, bool restart, unsigned *ret_version, json_t **ret_config,
                         struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *current = NULL, *release = NULL, *before = NULL, *config = NULL;
    unsigned version;
    int r;

    if ((r = model_app_load(&s->model, app, &record, err)) < 0 ||
        (r = model_release_current(&s->model, app, &version, &current, err)) < 0 ||
        (r = model_app_config(&s->model, app, &before, err)) < 0)
        return r;
    config = json_deep_copy(before);
    config_apply(config, changes);
    if (json_object_size(config) > DEPLOY_CONFIG_MAX_VARS)
        return berth_error_plain(err, E2BIG, "more than %d config vars", DEPLOY_CONFIG_MAX_VARS);
    if (!current || !restart) {
        if ((r = model_app_config_save(&s->model, app, config, err)) < 0)
            return r;
        events_record(s, tenant, app, "config", "%s (%s)", description,
                      current ? "no restart: the next release takes it" : "no release yet");
    } else {
        release = release_derived(current, version + 1, tenant, description);
        json_object_set(release, "config", config);
        if ((r = go_live_with_config(s, app, tenant, release, record, config, before, err)) < 0)
            return r;
        *ret_version = version + 1;
        events_record(s, tenant, app, "config", "%s: v%u", description, version + 1);
    }
    if (ret_config)
        *ret_config = TAKE_PTR(config);
    return 0;
}

int deploy_config(struct server *s, const char *app, const char *tenant, const json_t *changes,
                  const char *description, bool restart, unsigned *ret_version, json_t **ret_config,
                  struct berth_error **err)
{
    struct app_runtime *rt = server_app(s, app);
    int r;

    *ret_version = 0;
    pthread_mutex_lock(&rt->deploy_lock);
    r = config_locked(s, app, tenant, changes, description, restart, ret_version, ret_config, err);
    pthread_mutex_unlock(&rt->deploy_lock);
    return r;
}

static int rollback_locked(struct server *s, const char *app, const char *tenant, unsigned target,
                           unsigned *ret_version, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *old = NULL, *release = NULL, *before = NULL;
    _cleanup_free_ char *slug_dir = NULL, *desc = NULL;
    const char *slug;
    unsigned current;
    int r;

    if ((r = model_app_load(&s->model, app, &record, err)) < 0 ||
        (r = model_release_current(&s->model, app, &current, NULL, err)) < 0)
        return r;
    if (current == 0)
        return berth_error_plain(err, EINVAL, "'%s' has no release yet: push first", app);
    if (target == 0) {
        if (current < 2)
            return berth_error_plain(err, EINVAL, "'%s' has no release before v%u to roll back to", app,
                                     current);
        target = current - 1;
    }
    if ((r = model_release_load(&s->model, app, target, &old, err)) < 0)
        return r;
    slug = json_get_str(old, "slug");
    slug_dir = slug ? server_slug_dir(s, tenant, slug) : NULL;
    if (!slug_dir || access(slug_dir, F_OK) < 0)
        return berth_error_plain(err, ENOENT, "the slug of v%u of '%s' is gone; nothing changed", target, app);
    desc = xasprintf("Rollback to v%u", target);
    release = release_derived(old, current + 1, tenant, desc);
    /* The release serves with v<target>'s config: that is the app's config now. */
    if ((r = model_app_config(&s->model, app, &before, err)) < 0 ||
        (r = go_live_with_config(s, app, tenant, release, record, json_object_get(release, "config"), before,
                                 err)) < 0)
        return r;
    *ret_version = current + 1;
    events_record(s, tenant, app, "rollback", "%s: v%u", desc, current + 1);
    return 0;
}

static int promote_locked(struct server *s, const char *app, const char *tenant, const json_t *source,
                          const char *description, unsigned *ret_version, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *config = NULL, *release = NULL;
    _cleanup_free_ char *slug_dir = NULL;
    const char *slug = json_get_str(source, "slug");
    unsigned current;
    int r;

    if ((r = model_app_load(&s->model, app, &record, err)) < 0 ||
        (r = model_app_config(&s->model, app, &config, err)) < 0 ||
        (r = model_release_current(&s->model, app, &current, NULL, err)) < 0)
        return r;
    slug_dir = slug ? server_slug_dir(s, tenant, slug) : NULL;
    if (!slug_dir || access(slug_dir, F_OK) < 0)
        return berth_error_plain(err, ENOENT, "the slug to promote to '%s' is gone; nothing changed", app);
    release = release_derived(source, current + 1, tenant, description);
    /* The target keeps its own config: only the build moves. */
    json_object_set(release, "config", config);
    if ((r = go_live(s, app, tenant, release, record, GO_LIVE_NEW, NULL, NULL, err)) < 0)
        return r;
    *ret_version = current + 1;
    events_record(s, tenant, app, "promote", "%s: v%u", description, current + 1);
    return 0;
}

int deploy_promote(struct server *s, const char *app, const char *tenant, const json_t *source,
                   const char *description, unsigned *ret_version, struct berth_error **err)
{
    struct app_runtime *rt = server_app(s, app);
    int r;

    *ret_version = 0;
    pthread_mutex_lock(&rt->deploy_lock);
    r = promote_locked(s, app, tenant, source, description, ret_version, err);
    pthread_mutex_unlock(&rt->deploy_lock);
    return r;
}

int deploy_rollback(struct server *s, const char *app, const char *tenant, unsigned target,
                    unsigned *ret_version, struct berth_error **err)
{
    struct app_runtime *rt = server_app(s, app);
    int r;

    *ret_version = 0;
    pthread_mutex_lock(&rt->deploy_lock);
    r = rollback_locked(s, app, tenant, target, ret_version, err);
    pthread_mutex_unlock(&rt->deploy_lock);
    return r;
}

int deploy_restart(struct server *s, const char *app, const char *tenant, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *release = NULL;
    struct app_runtime *rt = server_app(s, app);
    unsigned version;
    int r;

    pthread_mutex_lock(&rt->deploy_lock);
    r = model_app_load(&s->model, app, &record, err);
    if (r == 0)
        r = model_release_current(&s->model, app, &version, &release, err);
    if (r == 0 && release)
        r = go_live(s, app, tenant, release, record, GO_LIVE_RESTART, NULL, NULL, err);
    pthread_mutex_unlock(&rt->deploy_lock);
    return r;
}

/* Restores in parallel, this many apps at once: each boots on its own, and routes as soon as it serves. */
#define RESTORE_THREADS 4

struct restore_run {
    struct server *s;
    json_t *apps;
    atomic_size_t next;
    const volatile sig_atomic_t *stop;
};

static void restore_one(struct server *s, const char *app)
{
    _cleanup_json_ json_t *release = NULL, *record = NULL;
    _cleanup_error_ struct berth_error *err = NULL;
    struct app_runtime *rt;
    unsigned version;
    const char *tenant;
    int r;

    if (model_app_load(&s->model, app, &record, &err) < 0 ||
        model_release_current(&s->model, app, &version, &release, &err) < 0) {
        log_error("restoring '%s': %s", app, berth_error_msg(&err));
        return;
    }
    if (!release)
        return;
    tenant = json_get_str(record, "tenant");
    if (!tenant) {
        log_error("restoring '%s': app.json names no tenant", app);
        return;
    }
    rt = server_app(s, app);
    pthread_mutex_lock(&rt->deploy_lock);
    r = go_live(s, app, tenant, release, record, GO_LIVE_RESTORE, NULL, NULL, &err);
    pthread_mutex_unlock(&rt->deploy_lock);
    if (r < 0)
        log_error("restoring '%s' v%u: %s", app, version, berth_error_msg(&err));
    else
        log_info("restored '%s' v%u", app, version);
}

static void *restore_worker(void *arg)
{
    struct restore_run *run = arg;
    size_t i;

    while (!*run->stop && (i = atomic_fetch_add(&run->next, 1)) < json_array_size(run->apps))
        restore_one(run->s, json_string_value(json_array_get(run->apps, i)));
    return NULL;
}

void deploy_restore_all(struct server *s, const volatile sig_atomic_t *stop)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct restore_run run = { .s = s, .stop = stop };
    pthread_t threads[RESTORE_THREADS];
    size_t n = 0;

    if (model_app_list(&s->model, &run.apps, &err) < 0) {
        log_error("listing apps: %s", berth_error_msg(&err));
        return;
    }
    atomic_init(&run.next, 0);
    while (n < RESTORE_THREADS && n < json_array_size(run.apps) &&
           pthread_create(&threads[n], NULL, restore_worker, &run) == 0)
        n++;
    if (n == 0)
        restore_worker(&run);
    while (n)
        pthread_join(threads[--n], NULL);
    json_decref(run.apps);
}
