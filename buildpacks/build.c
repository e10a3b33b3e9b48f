/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The build driver (build.h): one push's source tree in, one slug out.
 *
 * File ownership shapes the whole flow. berth's own uid is never mapped
 * into a container, so a build container cannot write a berth-owned file,
 * and berth cannot change what a container created (it belongs to the
 * tenant's subordinate ids). Hence:
 *
 *   - berth creates <work_dir>/app itself, mode 0777, and binds it at /app
 *     in every build container; the first container copies the read-only
 *     /src into it, so the files belong to the build user (uid 1000);
 *   - every step (copy, each bin/detect, bin/compile, bin/release) is its
 *     own container over the stack alone (step.c), and /app is the same
 *     path at build and run time (reference/HEROKU.md §1.6);
 *   - the compile container ends by making the tree world-readable, so that
 *     berth can read the Procfile and hash the slug afterwards;
 *   - the slug is renamed, not copied, into <layers_dir>/<sha256>/app,
 *     because berth could not copy tenant-owned files with their owners.
 *
 * berth's status lines (`-----> Static app detected`) are printed here,
 * never parsed out of the container's output, so a tenant cannot spoof them
 * by writing look-alike lines: the tenant's lines only ever pass through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buildpacks/build.h"
#include "buildpacks/lines.h"
#include "buildpacks/release.h"
#include "buildpacks/slug.h"
#include "buildpacks/step.h"
#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/banned.h"

/*
 * Auto-detection order, herokuish's BUILDPACK_ORDER (reference/HEROKU.md
 * §1.5) restricted to the buildpacks berth ships: the first whose
 * bin/detect passes is used.
 */
static const char *const buildpack_order[] = {
    "static",
};

#define COPY_TIMEOUT_MS (5 * 60 * 1000)
#define DETECT_TIMEOUT_MS (60 * 1000)
#define COMPILE_TIMEOUT_MS (15 * 60 * 1000)   /* Heroku's slug compilation limit */
#define RELEASE_TIMEOUT_MS (60 * 1000)
#define DETECT_OUTPUT_MAX 4096
#define FRAMEWORK_NAME_MAX 64
#define PROCFILE_READ_MAX (64 * 1024)

/* ---------------------------------------------------------------- output */

static void say(struct build_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct build_ctx *ctx, const char *fmt, ...)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    va_list ap;

    if (!ctx->spec->on_output)
        return;
    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    ctx->spec->on_output(ctx->spec->cls, sb.buf);
}

/* ` !     message` for each line of a (possibly multi-line) error message. */
static void say_error(struct build_ctx *ctx, const char *msg)
{
    while (*msg) {
        size_t len = strcspn(msg, "\n");
        say(ctx, " !     %.*s", (int)len, msg);
        msg += len + (msg[len] == '\n');
    }
}

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

/*
 * The cache is written by the build user, not by berth: open it up when it
 * is still berth's fresh directory. What protects it from other host users
 * is the mode of berth's state directory above it.
 */
static int prepare_cache(const char *dir, struct berth_error **err)
{
    struct stat st;

    if (lstat(dir, &st) < 0)
        return berth_error_make(err, errno, "build cache '%s'", dir);
    if (!S_ISDIR(st.st_mode))
        return berth_error_plain(err, ENOTDIR, "build cache '%s' is not a directory", dir);
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

/* ---------------------------------------------------------------- steps */

static int step_failed(const char *what, int status, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;

    build_describe_status(&why, status);
    return berth_error_plain(err, EIO, "%s failed with %s", what, why.buf);
}

static int copy_source(struct build_ctx *ctx, struct berth_error **err)
{
    /*
     * cp -a as uid 1000 cannot keep berth's ownership (it shows as the
     * overflow uid inside) and GNU cp does not complain about that when it
     * is not root: the copies simply belong to the build user. The entries
     * are copied one by one rather than as "/src/.", which would make cp
     * set the mode and times of /app itself, berth's directory, and fail.
     * .git is no part of a slug (herokuish tars with --exclude=.git);
     * GLOBIGNORE also turns on dotglob, so the other dot-files come along.
     */
    static const char *const argv[] = { "/bin/bash", "-c",
        "shopt -s nullglob; GLOBIGNORE=/src/.git; set -- /src/*; "
        "if [ $# -gt 0 ]; then exec cp -a -- \"$@\" /app/; fi", NULL };
    const struct runner_mount src = { .source = ctx->spec->source_dir, .target = "/src" };
    const struct build_step step = {
        .what = "copying the source", .argv = argv, .extra_mount = &src,
        .out = SINK_STREAM, .errs = SINK_STREAM, .timeout_ms = COPY_TIMEOUT_MS,
    };
    int status, r;

    r = build_step_run(ctx, &step, NULL, &status, err);
    if (r < 0)
        return r;
    if (status != 0)
        return step_failed("copying the source", status, err);
    return 0;
}

static bool has_program(const struct build_spec *spec, const char *bp, const char *prog)
{
    _cleanup_free_ char *path = xasprintf("%s/%s/bin/%s", spec->buildpacks_dir, bp, prog);
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* The first line detect printed, without control characters; the buildpack's name if none. */
static char *framework_name(const struct strbuf *out, const char *bp)
{
    struct strbuf name = STRBUF_INIT;

    for (size_t i = 0; i < out->len && out->buf[i] != '\n' && name.len < FRAMEWORK_NAME_MAX; i++) {
        unsigned char c = (unsigned char)out->buf[i];
        if (c >= 0x20 && c != 0x7f)
            strbuf_addch(&name, (char)c);
    }
    strbuf_rtrim(&name);
    if (name.len == 0)
        strbuf_addstr(&name, bp);
    return strbuf_detach(&name, NULL);
}

/* Runs every bin/detect in order; *ret_bp is the first that passed. */
static int detect(struct build_ctx *ctx, const char **ret_bp, char **ret_name, struct berth_error **err)
{
    const size_t n_order = sizeof(buildpack_order) / sizeof(buildpack_order[0]);
    _cleanup_strbuf_ struct strbuf passed = STRBUF_INIT;
    _cleanup_free_ char *first_name = NULL;
    const char *first = NULL;
    unsigned n_passed = 0;
    int r;

    for (size_t i = 0; i < n_order; i++) {
        const char *bp = buildpack_order[i];
        _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
        _cleanup_free_ char *prog = NULL;
        int status;

        if (!has_program(ctx->spec, bp, "detect"))
            continue;
        prog = xasprintf("/buildpacks/%s/bin/detect", bp);
        const char *const argv[] = { prog, "/app", NULL };
        const struct build_step step = {
            .what = "bin/detect", .argv = argv, .out = SINK_CAPTURE, .errs = SINK_DISCARD,
            .capture_max = DETECT_OUTPUT_MAX, .timeout_ms = DETECT_TIMEOUT_MS,
        };
        r = build_step_run(ctx, &step, &out, &status, err);
        if (r < 0)
            return berth_error_wrap(err, "buildpack '%s'", bp);
        if (status != 0)
            continue;
        n_passed++;
        strbuf_addf(&passed, " %s", bp);
        if (!first) {
            first = bp;
            first_name = framework_name(&out, bp);
        }
    }
    if (!first) {
        say(ctx, "-----> Unable to select a buildpack");
        return berth_error_plain(err, ENOENT, "Unable to select a buildpack");
    }
    if (n_passed > 1) {
        say(ctx, "       Warning: Multiple default buildpacks reported the ability to handle this "
                 "app. The first buildpack in the list below will be used.");
        say(ctx, "       Detected buildpacks:%s", passed.buf);
    }
    *ret_bp = first;
    *ret_name = TAKE_PTR(first_name);
    return 0;
}

static int compile(struct build_ctx *ctx, const char *bp, const char *name, struct berth_error **err)
{
    /*
     * berth reads the slug with its own uid after this container is gone,
     * so the same container, whatever compile's outcome, makes every entry
     * world-readable (directories traversable) before it exits. /app itself
     * is berth's and needs nothing, hence -mindepth 1; symlinks are skipped
     * because chmod would follow them.
     */
    static const char wrapper[] =
        "\"$@\"; rc=$?; find /app -mindepth 1 ! -type l -exec chmod a+rX -- {} +; exit $rc";
    _cleanup_free_ char *prog = xasprintf("/buildpacks/%s/bin/compile", bp);
    const char *const argv[] = { "/bin/bash", "-c", wrapper, "compile", prog, "/app", "/cache",
                                 "/env", NULL };
    const struct build_step step = {
        .what = "bin/compile", .argv = argv, .out = SINK_STREAM, .errs = SINK_STREAM,
        .timeout_ms = COMPILE_TIMEOUT_MS,
    };
    int status, r;

    r = build_step_run(ctx, &step, NULL, &status, err);
    if (r == 0 && status != 0)
        r = step_failed("compile", status, err);
    if (r < 0) {
        say(ctx, " !     Push rejected, failed to compile %s app.", name);
        return r;
    }
    return 0;
}

/* bin/release, when the buildpack has one: its default process types. */
static int release(struct build_ctx *ctx, const char *bp, json_t **ret_defaults, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    _cleanup_free_ char *prog = NULL;
    _cleanup_json_ json_t *doc = NULL;
    int status, r;

    if (!has_program(ctx->spec, bp, "release")) {
        *ret_defaults = json_object();
        return 0;
    }
    prog = xasprintf("/buildpacks/%s/bin/release", bp);
    const char *const argv[] = { prog, "/app", NULL };
    const struct build_step step = {
        .what = "bin/release", .argv = argv, .out = SINK_CAPTURE, .errs = SINK_STREAM,
        .capture_max = BUILD_RELEASE_MAX_BYTES, .timeout_ms = RELEASE_TIMEOUT_MS,
    };
    r = build_step_run(ctx, &step, &out, &status, err);
    if (r == 0 && status != 0)
        r = step_failed("bin/release", status, err);
    if (r == 0)
        r = build_release_parse(out.buf, out.len, &doc, err);
    if (r < 0) {
        say_error(ctx, berth_error_msg(err));
        return r;
    }
    *ret_defaults = json_incref(json_object_get(doc, "default_process_types"));
    return 0;
}

/* ---------------------------------------------------------------- results */

/*
 * Reads <app>/Procfile: -ENOENT when there is none. It is the tenant's
 * file and berth reads it with its own uid: a symlink could name one of
 * berth's own files and have it echoed in an error, so only a regular file
 * directly in the app directory counts.
 */
static int read_procfile(const char *app_dir, struct strbuf *out, struct berth_error **err)
{
    _cleanup_close_ int dfd = -1;
    _cleanup_close_ int fd = -1;
    struct stat st;
    char buf[8192];

    dfd = open(app_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "opening '%s'", app_dir);
    fd = openat(dfd, "Procfile", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return -ENOENT;
    if (fd < 0 && errno == ELOOP)
        return berth_error_plain(err, EINVAL, "Procfile is a symlink: it must be a regular file");
    if (fd < 0)
        return berth_error_make(err, errno, "cannot read the Procfile");
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "cannot read the Procfile");
    if (!S_ISREG(st.st_mode))
        return berth_error_plain(err, EINVAL, "Procfile must be a regular file");
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "cannot read the Procfile");
        if (n == 0)
            return 0;
        if (out->len + (size_t)n > PROCFILE_READ_MAX)
            return berth_error_plain(err, EFBIG, "Procfile is larger than %d KiB",
                                     PROCFILE_READ_MAX / 1024);
        strbuf_add(out, buf, (size_t)n);
    }
}

static void say_types(struct build_ctx *ctx, const char *source, const json_t *types)
{
    _cleanup_strbuf_ struct strbuf list = STRBUF_INIT;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)types, key, v) {
        (void)v;
        strbuf_addf(&list, "%s%s", list.len ? ", " : "", key);
    }
    say(ctx, "       %s -> %s", source, list.len ? list.buf : "(none)");
}

/* The Procfile wins over bin/release's defaults, as a whole (herokuish). */
static int process_types(struct build_ctx *ctx, const char *app_dir, json_t *defaults, json_t **ret,
                         struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
    int r;

    say(ctx, "-----> Discovering process types");
    r = read_procfile(app_dir, &text, err);
    if (r == -ENOENT) {
        say_types(ctx, "Default types for buildpack", defaults);
        *ret = json_incref(defaults);
        return 0;
    }
    if (r == 0)
        r = procfile_parse(text.buf, text.len, ret, err);
    if (r < 0) {
        say_error(ctx, berth_error_msg(err));
        return r;
    }
    say_types(ctx, "Procfile declares types", *ret);
    return 0;
}

/*
 * Moves the built tree to <layers_dir>/<sha>/app. Same content built
 * before (or by a concurrent build) keeps the existing slug: RENAME_NOREPLACE
 * decides atomically which one stays, and the loser's tree is removed.
 */
static int install_slug(struct build_ctx *ctx, const char *app_dir, const char *sha, char **ret_dir,
                        struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    _cleanup_free_ char *slug_dir = xasprintf("%s/%s", spec->layers_dir, sha);
    _cleanup_free_ char *target = xasprintf("%s/app", slug_dir);
    _cleanup_close_ int fd = -1;

    if (mkdir(slug_dir, 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "creating '%s'", slug_dir);
    /* The umask may have removed the bits every container needs to reach app/. */
    if (chmod(slug_dir, 0755) < 0)
        return berth_error_make(err, errno, "chmod '%s'", slug_dir);
    /*
     * A slug is immutable and shared by releases from now on: get its data
     * to disk before its name says it is complete.
     */
    fd = open(app_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0)
        return berth_error_make(err, errno, "syncing '%s'", app_dir);
    if (renameat2(AT_FDCWD, app_dir, AT_FDCWD, target, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) {
            int r = runner_remove_tree(ctx->r, app_dir, spec->uid_base, spec->gid_base,
                                       spec->id_count, err);
            if (r < 0)
                return berth_error_wrap(err, "removing the duplicate slug");
        } else if (errno == EXDEV) {
            return berth_error_plain(err, EXDEV, "the work dir '%s' and the layers dir '%s' must be "
                                     "on the same filesystem", spec->work_dir, spec->layers_dir);
        } else {
            return berth_error_make(err, errno, "moving the slug to '%s'", target);
        }
    } else if (fsync_parent_dir(target, err) < 0) {
        return -EIO;
    }
    *ret_dir = TAKE_PTR(slug_dir);
    return 0;
}

/* ---------------------------------------------------------------- the build */

static int run_build(struct build_ctx *ctx, const char *app_dir, struct build_result *res,
                     struct berth_error **err)
{
    _cleanup_json_ json_t *defaults = NULL;
    _cleanup_free_ char *name = NULL;
    char sha[SHA256_HEX_LEN + 1];
    const char *bp = NULL;
    int r;

    if ((r = copy_source(ctx, err)) < 0)
        return r;
    if ((r = detect(ctx, &bp, &name, err)) < 0)
        return r;
    say(ctx, "-----> %s app detected", name);
    if ((r = compile(ctx, bp, name, err)) < 0)
        return r;
    if ((r = release(ctx, bp, &defaults, err)) < 0)
        return r;
    if ((r = process_types(ctx, app_dir, defaults, &res->process_types, err)) < 0)
        return r;
    if ((r = build_slug_hash(app_dir, sha, err)) < 0) {
        say_error(ctx, berth_error_msg(err));
        return r;
    }
    if ((r = install_slug(ctx, app_dir, sha, &res->slug_dir, err)) < 0)
        return r;
    res->slug_id = xstrdup(sha);
    res->buildpack = TAKE_PTR(name);
    return 0;
}

int build_run(struct runner *r, const struct build_spec *spec, struct build_result *ret,
              struct berth_error **err)
{
    struct build_ctx ctx = { .r = r, .spec = spec };
    struct build_result res = { 0 };
    _cleanup_free_ char *app_dir = NULL;
    _cleanup_free_ char *env_dir = NULL;
    _cleanup_error_ struct berth_error *cleanup_err = NULL;
    struct stat st;
    int rc;

    if ((rc = check_spec(spec, err)) < 0)
        return rc;
    app_dir = xasprintf("%s/app", spec->work_dir);
    env_dir = xasprintf("%s/env", spec->work_dir);
    if ((rc = prepare_cache(spec->cache_dir, err)) < 0)
        return rc;
    if (mkdir(app_dir, 0777) < 0)
        return berth_error_make(err, errno, "creating '%s'", app_dir);
    /* Explicitly, since the umask took bits: the build user must write here. */
    if (chmod(app_dir, 0777) < 0) {
        rc = berth_error_make(err, errno, "chmod '%s'", app_dir);
        (void)rmdir(app_dir);
        return rc;
    }
    rc = build_env_dir_write(env_dir, spec->config, spec->app, spec->commit, err);
    if (rc >= 0) {
        build_lines_init(&ctx.lines, spec->on_output, spec->cls);
        make_env(&ctx);
        ctx.mounts[ctx.n_mounts++] = (struct runner_mount){ app_dir, "/app", true };
        ctx.mounts[ctx.n_mounts++] = (struct runner_mount){ spec->cache_dir, "/cache", true };
        ctx.mounts[ctx.n_mounts++] = (struct runner_mount){ env_dir, "/env", false };
        ctx.mounts[ctx.n_mounts++] = (struct runner_mount){ spec->buildpacks_dir, "/buildpacks", false };
        rc = run_build(&ctx, app_dir, &res, err);
        build_lines_release(&ctx.lines);
        strv_freep(&ctx.envp);
    }

    /* ENV_DIR holds the config's secrets: it does not outlive the build. */
    (void)rm_rf(env_dir, &cleanup_err);
    berth_error_release(&cleanup_err);
    /* A failed build leaves no slug; a successful one moved app/ away. */
    if (lstat(app_dir, &st) == 0)
        (void)runner_remove_tree(r, app_dir, spec->uid_base, spec->gid_base, spec->id_count,
                                 &cleanup_err);
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
    free(res->slug_id);
    free(res->slug_dir);
    json_decref(res->process_types);
    *res = (struct build_result){ 0 };
}
