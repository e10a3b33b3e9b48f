/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The build driver (build.h): one push's source tree in, one slug out.
 *
 * File ownership shapes the whole flow. berth's own uid is never mapped
 * into a container, so a build container cannot write a berth-owned file,
 * and berth cannot change what a container created (it belongs to the
 * tenant's subordinate ids). Hence:
 *
 *   - berth creates the directories containers write into (<work>/slug,
 *     the buildpack copies, the step results) with mode 0777 inside its
 *     own 0700 home; the first container creates <work>/slug/app and
 *     copies the read-only source into it, so the whole app tree belongs to
 *     the build user (uid 1000 of the tenant): at run time the overlay can
 *     then copy any of it up for an app that writes under /app (an owner
 *     outside the mapping makes copy-up fail with EOVERFLOW);
 *   - every step is its own container over the stack alone (step.c), and
 *     /app is the same path at build and run time (reference/HEROKU.md §1.6);
 *   - the tree is sealed by the runner (no extended attributes, no setuid,
 *     readable by all), so that berth can read the Procfile and hash it and
 *     no overlayfs xattr the tenant planted is ever read from a lower layer;
 *   - <work>/slug, berth's own directory, is renamed, not copied, into
 *     <layers_dir>/<sha256>: berth could not copy tenant-owned files with
 *     their owners, and may not move a directory it cannot write (app/).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buildpacks/build.h"
#include "buildpacks/files.h"
#include "buildpacks/lines.h"
#include "buildpacks/phases.h"
#include "buildpacks/release.h"
#include "buildpacks/slug.h"
#include "buildpacks/step.h"
#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/banned.h"

/* ---------------------------------------------------------------- setup */

static int check_spec(const struct build_spec *spec, struct berth_error **err)
{
    const char *paths[] = { spec->source_dir, spec->cache_dir, spec->work_dir, spec->buildpacks_dir,
                            spec->stack_dir, spec->layers_dir };

    if (!spec->app || !*spec->app || strlen(spec->app) > 63 || strchr(spec->app, '/'))
        return berth_error_plain(err, EINVAL, "build: invalid app name");
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (!paths[i] || paths[i][0] != '/')
            return berth_error_plain(err, EINVAL, "build: every directory must be an absolute path");
    }
    if (spec->id_count <= BUILD_UID || spec->id_count <= BUILD_GID)
        return berth_error_plain(err, EINVAL, "build: the id range must hold uid %d", BUILD_UID);
    return 0;
}

static struct build_budget budget_with_defaults(const struct build_budget *b)
{
    struct build_budget d = *b;

    if (!d.memory_bytes)
        d.memory_bytes = BUILD_DEFAULT_MEMORY_BYTES;
    if (!d.disk_bytes)
        d.disk_bytes = BUILD_DEFAULT_DISK_BYTES;
    if (!d.cpu_weight)
        d.cpu_weight = BUILD_DEFAULT_CPU_WEIGHT;
    if (!d.pids_max)
        d.pids_max = BUILD_DEFAULT_PIDS_MAX;
    if (!d.timeout_s)
        d.timeout_s = BUILD_DEFAULT_TIMEOUT_S;
    return d;
}

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The cache is written by the build user, not by berth: open it up when it
 * is still berth's fresh directory. What protects it from other host users
 * is the mode of berth's state directory above it.
 */
static int open_for_containers(const char *dir, bool create, struct berth_error **err)
{
    struct stat st;

    if (create && mkdir(dir, 0777) < 0)
        return berth_error_make(err, errno, "creating '%s'", dir);
    if (lstat(dir, &st) < 0)
        return berth_error_make(err, errno, "stat '%s'", dir);
    if (!S_ISDIR(st.st_mode))
        return berth_error_plain(err, ENOTDIR, "'%s' is not a directory", dir);
    /* Explicitly, since the umask took bits: the build user must write here. */
    if (st.st_uid == geteuid() && (st.st_mode & 07777) != 0777 && chmod(dir, 0777) < 0)
        return berth_error_make(err, errno, "chmod '%s'", dir);
    return 0;
}

static void strv_push(char ***v, size_t *n, char *s)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(**v));
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

static void make_env(struct build_ctx *ctx)
{
    size_t n = 0;

    strv_push(&ctx->envp, &n, xstrdup("HOME=/app"));
    strv_push(&ctx->envp, &n, xstrdup("PATH=/usr/local/bin:/usr/bin:/bin"));
    strv_push(&ctx->envp, &n, xstrdup("STACK=berth-host"));
    strv_push(&ctx->envp, &n, xstrdup("LANG=C.UTF-8"));
    if (ctx->spec->commit)
        strv_push(&ctx->envp, &n, xasprintf("SOURCE_VERSION=%s", ctx->spec->commit));
}

/* The work dir's layout (build_ctx's paths) and the directories containers write into. */
static int prepare_dirs(struct build_ctx *ctx, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    int r;

    ctx->slug_dir = xasprintf("%s/slug", spec->work_dir);
    ctx->app_dir = xasprintf("%s/app", ctx->slug_dir);
    ctx->env_dir = xasprintf("%s/env", spec->work_dir);
    ctx->bp_dir = xasprintf("%s/buildpacks", spec->work_dir);
    ctx->out_dir = xasprintf("%s/out", spec->work_dir);
    if (spec->subdir && *spec->subdir) {
        if ((r = build_resolve_subdir(spec->source_dir, spec->subdir, &ctx->src_dir, err)) < 0)
            return r;
    } else {
        ctx->src_dir = xstrdup(spec->source_dir);
    }
    if ((r = open_for_containers(spec->cache_dir, false, err)) < 0 ||
        (r = open_for_containers(ctx->slug_dir, true, err)) < 0 ||
        (r = open_for_containers(ctx->bp_dir, true, err)) < 0 ||
        (r = open_for_containers(ctx->out_dir, true, err)) < 0)
        return r;
    return build_env_dir_write(ctx->env_dir, spec->config, spec->app, spec->commit, err);
}

/* Everything but the (empty) work dir goes, whatever the outcome. */
static void remove_work(struct build_ctx *ctx)
{
    const struct build_spec *spec = ctx->spec;
    const char *tenant_trees[] = { ctx->slug_dir, ctx->bp_dir, ctx->out_dir };
    _cleanup_free_ char *bpsrc = xasprintf("%s/bpsrc", spec->work_dir);
    struct stat st;

    /* The state dirs of steps that measure later, when no measure came after them. */
    for (size_t i = 0; i < ctx->n_pending; i++)
        (void)runner_remove_tree(ctx->r, ctx->pending_states[i], spec->uid_base, spec->gid_base,
                                 spec->id_count, NULL);
    build_pending_clear(ctx);

    /* ENV_DIR holds the config's secrets: it does not outlive the build. */
    if (ctx->env_dir)
        (void)rm_rf(ctx->env_dir, NULL);
    (void)rm_rf(bpsrc, NULL);
    for (size_t i = 0; i < sizeof(tenant_trees) / sizeof(*tenant_trees); i++) {
        _cleanup_error_ struct berth_error *e = NULL;

        if (tenant_trees[i] && lstat(tenant_trees[i], &st) == 0)
            (void)runner_remove_tree(ctx->r, tenant_trees[i], spec->uid_base, spec->gid_base,
                                     spec->id_count, &e);
    }
}

static void ctx_release(struct build_ctx *ctx)
{
    build_lines_release(&ctx->lines);
    strv_freep(&ctx->envp);
    free(ctx->slug_dir);
    free(ctx->app_dir);
    free(ctx->env_dir);
    free(ctx->bp_dir);
    free(ctx->out_dir);
    free(ctx->src_dir);
    build_pending_clear(ctx);
}

/* ---------------------------------------------------------------- the slug */

/*
 * Moves the sealed slug to <layers_dir>/<sha>. Same content built before
 * (or by a concurrent build) keeps the existing slug: RENAME_NOREPLACE
 * decides atomically which one stays, and the loser's tree is removed.
 */
static int install_slug(struct build_ctx *ctx, const char *sha, char **ret_dir, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    _cleanup_free_ char *target = xasprintf("%s/%s", spec->layers_dir, sha);
    _cleanup_close_ int fd = -1;

    /* The containers that run it reach app/ through here as "other". */
    if (chmod(ctx->slug_dir, 0755) < 0)
        return berth_error_make(err, errno, "chmod '%s'", ctx->slug_dir);
    /*
     * A slug is immutable and shared by releases from now on: get its data
     * to disk before its name says it is complete.
     */
    fd = open(ctx->slug_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0)
        return berth_error_make(err, errno, "syncing '%s'", ctx->slug_dir);
    if (renameat2(AT_FDCWD, ctx->slug_dir, AT_FDCWD, target, RENAME_NOREPLACE) < 0) {
        if (errno == EXDEV)
            return berth_error_plain(err, EXDEV, "the work dir '%s' and the layers dir '%s' must be "
                                     "on the same filesystem", spec->work_dir, spec->layers_dir);
        if (errno != EEXIST && errno != ENOTEMPTY)
            return berth_error_make(err, errno, "moving the slug to '%s'", target);
        /* Already there: remove_work() removes this copy. */
    } else if (fsync_parent_dir(target, err) < 0) {
        return -EIO;
    }
    *ret_dir = TAKE_PTR(target);
    return 0;
}

/*
 * The slug must hold app/ alone, a directory: /berth/slug was writable to
 * the prepare step (where bin/detect runs), and whatever else it left there
 * would be neither sealed nor hashed, yet be the app's lower layer,
 * covering the stack's own entries (/etc/ssl, /usr, /proc: mount targets)
 * with the tenant's files or links.
 */
static int check_slug_top(const struct build_ctx *ctx, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = opendir(ctx->slug_dir);
    struct dirent *e;
    struct stat st;

    if (!d)
        return berth_error_make(err, errno, "opening '%s'", ctx->slug_dir);
    while ((errno = 0, e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "app"))
            return berth_error_plain(err, EPERM, "the build left '%s' beside the app in the slug: "
                                     "only /app is the app's", e->d_name);
    }
    if (errno)
        return berth_error_make(err, errno, "reading '%s'", ctx->slug_dir);
    if (lstat(ctx->app_dir, &st) < 0)
        return berth_error_make(err, errno, "stat '%s'", ctx->app_dir);
    if (!S_ISDIR(st.st_mode))
        return berth_error_plain(err, ENOTDIR, "the app in the slug is not a directory");
    return 0;
}

/*
 * Before berth reads anything of /app (the Procfile, the files it hashes):
 * what the build user left there may be unreadable to berth until sealed.
 * The seal's worker also takes the build's last measure of its disk (the
 * steps that ended well left theirs to it: step.h, measure_later), and
 * then removes what has served: the buildpacks' copies, /berth/out
 * (release.yml was read after the last compile) and the pending state
 * dirs. One worker where there were three on a deploy's path;
 * remove_work() removes what it did not.
 */
static int seal_slug(struct build_ctx *ctx, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    _cleanup_free_ const char **measured = xcalloc(ctx->n_pending + 5, sizeof(*measured));
    _cleanup_free_ const char **spent = xcalloc(ctx->n_pending + 3, sizeof(*spent));
    uint64_t used = 0;
    size_t n = 0;
    int r;

    (void)build_measured_trees(ctx, measured);
    /* All that was measured but the cache, which stays for the next build. */
    for (size_t i = 1; measured[i]; i++)
        spent[n++] = measured[i];
    if ((r = check_slug_top(ctx, err)) == 0)
        r = runner_seal_tree(ctx->r, ctx->app_dir, measured, spent, spec->uid_base, spec->gid_base,
                             spec->id_count, &used, err);
    if (r == 0)
        build_pending_clear(ctx);
    if (r == -ELOOP) {
        berth_error_release(err);
        r = build_too_deep(err);
    }
    if (r == 0 && used > ctx->budget.disk_bytes)
        r = build_over_disk(ctx, err);
    if (r < 0)
        build_say_error(ctx, berth_error_msg(err));
    return r;
}

static int hash_and_install(struct build_ctx *ctx, struct build_result *res, struct berth_error **err)
{
    char sha[SHA256_HEX_LEN + 1];
    int r;

    r = build_slug_hash(ctx->app_dir, sha, &res->slug_bytes, err);
    if (r == 0 && res->slug_bytes > ctx->budget.disk_bytes)
        r = berth_error_plain(err, EDQUOT, "the slug (%llu MiB) is larger than the build's disk "
                              "allowance of %llu MiB", (unsigned long long)(res->slug_bytes >> 20),
                              (unsigned long long)(ctx->budget.disk_bytes >> 20));
    if (r == 0)
        r = install_slug(ctx, sha, &res->slug_dir, err);
    if (r < 0) {
        build_say_error(ctx, berth_error_msg(err));
        return r;
    }
    res->slug_id = xstrdup(sha);
    return 0;
}

/* ---------------------------------------------------------------- the build */

static json_t *describe_buildpacks(const struct build_plan *plan)
{
    json_t *list = json_array();

    for (size_t i = 0; i < plan->n; i++) {
        const struct build_pack *p = &plan->v[i];
        json_t *bp = json_pack("{s:s, s:s}", "name", p->framework ? p->framework : p->dir, "buildpack",
                               p->spec);

        if (p->url)
            json_object_set_new(bp, "url", json_string(p->url));
        if (p->commit)
            json_object_set_new(bp, "commit", json_string(p->commit));
        json_array_append_new(list, bp);
    }
    return list;
}

static void say_summary(struct build_ctx *ctx, const struct build_result *res, long long started)
{
    if (res->slug_bytes < (1 << 20))
        build_say(ctx, "-----> Slug: %.1f KiB, sealed as %.12s", (double)res->slug_bytes / 1024,
                  res->slug_id);
    else
        build_say(ctx, "-----> Slug: %.1f MiB, sealed as %.12s", (double)res->slug_bytes / (1 << 20),
                  res->slug_id);
    if (ctx->memory_peak)
        build_say(ctx, "       Build took %.1f s, peak memory %llu MiB of %llu MiB",
                  (double)(now_ms() - started) / 1000,
                  (unsigned long long)((ctx->memory_peak + (1 << 20) - 1) >> 20),
                  (unsigned long long)(ctx->budget.memory_bytes >> 20));
    else
        build_say(ctx, "       Build took %.1f s", (double)(now_ms() - started) / 1000);
}

static int run_build(struct build_ctx *ctx, struct build_result *res, struct berth_error **err)
{
    struct build_plan plan = { 0 };
    _cleanup_json_ json_t *release = NULL;
    long long started = now_ms();
    int r;

    if ((r = phase_plan(ctx, &plan, err)) < 0 ||
        (r = phase_prepare(ctx, &plan, err)) < 0 ||
        (r = phase_compile(ctx, &plan, &release, err)) < 0 ||
        (r = seal_slug(ctx, err)) < 0 ||
        (r = phase_process_types(ctx, release, &res->process_types, err)) < 0 ||
        (r = hash_and_install(ctx, res, err)) < 0)
        goto out;
    res->buildpack = xstrdup(plan.v[plan.n - 1].framework);
    res->buildpacks = describe_buildpacks(&plan);
    res->config_vars = json_incref(json_object_get(release, "config_vars"));
    res->memory_peak_bytes = ctx->memory_peak;
    say_summary(ctx, res, started);
out:
    build_plan_release(&plan);
    return r;
}

/*
 * The directories the build mounts from, resolved: the runner refuses a
 * mount source that passes through a symbolic link (runner.h), so that a
 * link the tenant plants below them (bin/detect making <work>/slug/app one
 * to /) never redirects a mount; the links above them are the operator's
 * (a berth home reached through one), followed here. These directories are
 * berth's: no container writes where they are named. One that does not
 * resolve keeps its path, and fails where it is used.
 */
static void resolve_spec_dirs(const struct build_spec *spec, struct build_spec *ret, char *keep[4])
{
    const char **dirs[4] = { &ret->source_dir, &ret->cache_dir, &ret->work_dir, &ret->buildpacks_dir };

    *ret = *spec;
    for (size_t i = 0; i < 4; i++) {
        keep[i] = realpath(*dirs[i], NULL);
        if (keep[i])
            *dirs[i] = keep[i];
    }
}

/*
 * The error goes to the pusher too (git's `[remote rejected]` reason): it
 * names the host's directories as the build sees them, like every line the
 * build printed (phases.h).
 */
static void hide_paths_in_error(struct build_ctx *ctx, struct berth_error **err)
{
    _cleanup_free_ char *msg = NULL;
    int code;

    if (!err || !*err)
        return;
    code = berth_error_code(err);
    msg = build_hide_paths(ctx, berth_error_msg(err));
    berth_error_release(err);
    (void)berth_error_plain(err, code, "%s", msg);
}

int build_run(struct runner *r, const struct build_spec *given, struct build_result *ret,
              struct berth_error **err)
{
    struct build_spec resolved;
    const struct build_spec *spec = &resolved;
    struct build_ctx ctx = { .r = r, .spec = spec, .given = given };
    struct build_result res = { 0 };
    char *keep[4] = { NULL };
    int rc;

    if ((rc = check_spec(given, err)) < 0)
        return rc;
    resolve_spec_dirs(given, &resolved, keep);
    ctx.budget = budget_with_defaults(&spec->budget);
    ctx.deadline_ms = now_ms() + (long long)ctx.budget.timeout_s * 1000;
    build_lines_init(&ctx.lines, spec->on_output, spec->cls);
    make_env(&ctx);
    rc = prepare_dirs(&ctx, err);
    if (rc < 0 && berth_error_code(err) != 0)
        build_say_error(&ctx, berth_error_msg(err));
    if (rc >= 0)
        rc = run_build(&ctx, &res, err);
    remove_work(&ctx);
    if (rc < 0)
        hide_paths_in_error(&ctx, err);
    ctx_release(&ctx);
    for (size_t i = 0; i < 4; i++)
        free(keep[i]);
    if (rc < 0) {
        build_result_release(&res);
        return rc;
    }
    *ret = res;
    return 0;
}

void build_result_release(struct build_result *res)
{
    if (!res)
        return;
    free(res->buildpack);
    json_decref(res->buildpacks);
    free(res->slug_id);
    free(res->slug_dir);
    json_decref(res->process_types);
    json_decref(res->config_vars);
    *res = (struct build_result){ 0 };
}
