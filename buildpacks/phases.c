/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The phases of one build (phases.h). The containers run small bash
 * programs of berth's own around the buildpacks' programs; whatever they
 * leave for berth (detect's name and status, bin/release's YAML) goes to
 * <work_dir>/out, a directory no other step sees, and is read back with
 * files.h's guarded reads, since the tenant's processes could have written
 * there too. berth's status lines are printed here, never parsed out of the
 * tenant's output, so a buildpack cannot spoof them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buildpacks/files.h"
#include "buildpacks/phases.h"
#include "buildpacks/release.h"
#include "buildpacks/select.h"
#include "buildpacks/shown.h"
#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/banned.h"

#define PREPARE_TIMEOUT_MS (5 * 60 * 1000)
#define DETECT_OUTPUT_MAX 4096
#define FRAMEWORK_NAME_MAX 64
#define PROCFILE_READ_MAX (64 * 1024)
#define BUILDPACKS_FILE_MAX (16 * 1024)

/*
 * The prepare container: the arguments are the buildpack dirs. cp -a as
 * uid 1000 cannot keep berth's ownership and GNU cp does not complain about
 * that when it is not root: the copies belong to the build user, which is
 * what lets the buildpacks change them. The source is copied whole, /app
 * made by the copy itself (-T: /src's mode, which the seal makes a+rX in
 * the end anyway), and the buildpacks with one more cp: each exec counts
 * in a deploy's time (~4.6 ms on a slow host), and a mkdir, an xargs and a
 * command line per entry were three more. A list's buildpacks are copied
 * before their detects (each compiles, and its detect runs from its
 * copy); in autodetection none is: the detects run from the read-only
 * sources, and the one built-in kept compiles from its source mounted
 * read-only (compile_one(); copying all six was ~10 ms of a deploy, and
 * their removal more). .git is no part of a slug
 * (herokuish tars with --exclude=.git): a pushed tree cannot hold one, a
 * source dir given to build_run() may, and it goes after the copy.
 *
 * .slugignore (Heroku: paths removed before compile, .gitignore's syntax
 * without negation): a pattern with a leading or inner '/' is anchored at
 * the app root, one without matches at any depth (globstar's **\/), a
 * trailing '/' matches directories only; '*' and '?' stay within one path
 * component. IFS is empty while a pattern expands, so it is only globbed,
 * never split.
 *
 * bin/detect gets the app dir as BUILD_DIR (Heroku passes a temporary
 * path too); its first line and status go to /berth/out. $1 says whose
 * detects run: "in-order" (a list the app names: each its own program
 * under `timeout`, its output cut by `head`, one after the other, as
 * Heroku's multi-buildpack runs them, where one may see what the one
 * before it left), or "builtin" (autodetection over berth's own
 * buildpacks, whose detects only test for files: a bash detect is read by
 * this shell rather than run, with the shell options a fresh bash has,
 * which spares three processes per detect, `timeout`, `head` and the
 * exec, ~20 ms each detect on a slow host and six detects in all; one
 * marked BUILD_SOURCED_MARK (all of berth's) by this very shell, others by
 * a subshell, whose fork was another ~5 ms each; one in another language
 * still runs as a program). After a detect passes, the buildpack's
 * BUILD_OFFLINE_HOOK, if it has one, runs the same way (berth's in a
 * subshell: no hook is marked) and its status goes to /berth/out too: for
 * every built-in that passed (which one is kept, C decides after this
 * step), for the first of a list only (compile_one() heeds no other: a
 * later one sees what the compiles before it added). The buildpack dirs
 * follow.
 */
static const char prepare_script[] =
    "order=$1; shift\n"
    "shopt -s nullglob dotglob\n"
    "[ ! -e /berth/slug/app ] && [ ! -L /berth/slug/app ] && cp -a -T /src /berth/slug/app || exit 1\n"
    "if [ -e /berth/slug/app/.git ] || [ -L /berth/slug/app/.git ]; then rm -rf /berth/slug/app/.git; fi\n"
    "if [ \"$order\" != builtin ] && [ $# -gt 0 ]; then\n"
    "    cd /berth/bpsrc && cp -a -t /buildpacks/ -- \"$@\" || exit 1\n"
    "fi\n"
    "cd /berth/slug/app || exit 1\n"
    "if [ -f .slugignore ] && [ ! -L .slugignore ]; then\n"
    "    shopt -s globstar\n"
    "    removed=0\n"
    "    while IFS= read -r line || [ -n \"$line\" ]; do\n"
    "        line=${line%$'\\r'}\n"
    "        line=${line#\"${line%%[![:space:]]*}\"}\n"
    "        line=${line%\"${line##*[![:space:]]}\"}\n"
    "        case $line in ''|'#'*) continue ;; esac\n"
    "        case $line in '!'*) echo \"       .slugignore: '$line': negation is not supported, "
    "ignored\"; continue ;; esac\n"
    "        case /$line/ in */../*) echo \"       .slugignore: '$line' leaves the app directory, "
    "ignored\"; continue ;; esac\n"
    "        dironly=0\n"
    "        case $line in */) dironly=1; line=${line%/} ;; esac\n"
    "        case $line in /*) pat=${line#/} ;; */*) pat=$line ;; *) pat=\"**/$line\" ;; esac\n"
    "        IFS=\n"
    "        for f in $pat; do\n"
    "            [ -e \"$f\" ] || [ -L \"$f\" ] || continue\n"
    "            if [ $dironly = 1 ] && { [ ! -d \"$f\" ] || [ -L \"$f\" ]; }; then continue; fi\n"
    "            rm -rf -- \"$f\" && removed=$((removed + 1))\n"
    "        done\n"
    "        unset IFS\n"
    "    done < .slugignore\n"
    "    echo \"       .slugignore: removed $removed paths\"\n"
    "fi\n"
    "run() {\n"
    "    local first= second=\n"
    "    if [ \"$order\" = builtin ] && { IFS= read -r first; IFS= read -r second || :; } <\"$1\" &&\n"
    "        [ \"$first\" = '#!/bin/bash' ]; then\n"
    "        if [ \"$second\" = '" BUILD_SOURCED_MARK "' ]; then\n"
    "            shopt -u nullglob dotglob globstar\n"
    "            { . \"$1\" /berth/slug/app; } </dev/null 2>/dev/null >\"$2\"\n"
    "            status=$?\n"
    "            shopt -s nullglob dotglob\n"
    "        else\n"
    "            (shopt -u nullglob dotglob globstar; . \"$1\" /berth/slug/app) </dev/null 2>/dev/null >\"$2\"\n"
    "            status=$?\n"
    "        fi\n"
    "    else\n"
    "        timeout 60 \"$1\" /berth/slug/app </dev/null 2>/dev/null | head -c 4096 >\"$2\"\n"
    "        status=${PIPESTATUS[0]}\n"
    "    fi\n"
    "}\n"
    "detect() {\n"
    "    local dir=/buildpacks/$1 status\n"
    "    [ \"$order\" = builtin ] && dir=/berth/bpsrc/$1\n"
    "    local det=$dir/bin/detect hook=$dir/" BUILD_OFFLINE_HOOK "\n"
    "    [ -f \"$det\" ] && [ -x \"$det\" ] || return 0\n"
    "    run \"$det\" \"/berth/out/detect-$1\"\n"
    "    echo $status >\"/berth/out/detect-$1.status\"\n"
    "    [ $status = 0 ] && [ \"$2\" = 1 ] && [ -f \"$hook\" ] && [ -x \"$hook\" ] || return 0\n"
    "    run \"$hook\" /dev/null\n"
    "    echo $status >\"/berth/out/offline-$1.status\"\n"
    "}\n"
    "ask=1\n"
    "for d in \"$@\"; do\n"
    "    detect \"$d\" $ask\n"
    "    [ \"$order\" = builtin ] || ask=0\n"
    "done\n"
    "exit 0\n";

/*
 * One buildpack's compile: $1 its dir, $2 1 when it is the last, $3 whose
 * buildpacks these are (as prepare_script's $1), then the dirs of the
 * buildpacks before it, whose `export` files are sourced first
 * (heroku-buildpack-multi's order). The last one's bin/release runs in the
 * same container right after a successful compile: a built-in's bash
 * release (it only prints) read by a subshell, as prepare reads the
 * built-ins' detects, which spares `timeout` and an exec; any other as a
 * program under `timeout`.
 */
static const char compile_script[] =
    "d=$1; last=$2; order=$3; shift 3\n"
    "for prev in \"$@\"; do\n"
    "    if [ -f \"/buildpacks/$prev/export\" ]; then . \"/buildpacks/$prev/export\"; fi\n"
    "done\n"
    "\"/buildpacks/$d/bin/compile\" /app /cache /env || exit $?\n"
    "rel=/buildpacks/$d/bin/release\n"
    "if [ \"$last\" = 1 ] && [ -f \"$rel\" ]; then\n"
    "    if [ \"$order\" = builtin ] && IFS= read -r first <\"$rel\" && [ \"$first\" = '#!/bin/bash' ]; "
    "then\n"
    "        (. \"$rel\" /app) </dev/null >/berth/out/release.yml\n"
    "    else\n"
    "        timeout 60 \"$rel\" /app </dev/null >/berth/out/release.yml\n"
    "    fi\n"
    "    echo $? >/berth/out/release.status\n"
    "fi\n"
    "exit 0\n";

/* ---------------------------------------------------------------- output */

void build_say(struct build_ctx *ctx, const char *fmt, ...)
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

char *build_hide_paths(const struct build_ctx *ctx, const char *msg)
{
    const struct build_spec *s = ctx->spec, *g = ctx->given ? ctx->given : ctx->spec;
    const char *const state[] = { s->work_dir, s->cache_dir, s->layers_dir };
    _cleanup_free_ char *home = build_paths_common_dir(state, sizeof(state) / sizeof(*state));
    _cleanup_free_ char *given_home = NULL;
    const char *const given_state[] = { g->work_dir, g->cache_dir, g->layers_dir };

    given_home = build_paths_common_dir(given_state, sizeof(given_state) / sizeof(*given_state));
    /* The longest match wins, so the order here does not matter. */
    const struct build_shown_path v[] = {
        { ctx->app_dir, "/app" },
        { ctx->slug_dir, "/berth/slug" },
        { ctx->bp_dir, "/buildpacks" },
        { ctx->out_dir, "/berth/out" },
        { ctx->env_dir, "/env" },
        { ctx->src_dir, "/src" },
        { s->cache_dir, "/cache" }, { g->cache_dir, "/cache" },
        { s->work_dir, "<build>" }, { g->work_dir, "<build>" },
        { s->source_dir, "<source>" }, { g->source_dir, "<source>" },
        { s->layers_dir, "<slugs>" }, { g->layers_dir, "<slugs>" },
        { s->buildpacks_dir, "<built-in buildpacks>" }, { g->buildpacks_dir, "<built-in buildpacks>" },
        { s->stack_dir, "<stack>" }, { g->stack_dir, "<stack>" },
        { home, "<home>" }, { given_home, "<home>" },
    };

    return build_paths_scrub(v, sizeof(v) / sizeof(*v), msg);
}

void build_say_error(struct build_ctx *ctx, const char *text)
{
    _cleanup_free_ char *hidden = build_hide_paths(ctx, text);
    const char *msg = hidden;

    while (*msg) {
        size_t len = strcspn(msg, "\n");
        build_say(ctx, " !     %.*s", (int)len, msg);
        msg += len + (msg[len] == '\n');
    }
}

static int step_failed(const char *what, int status, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;

    build_describe_status(&why, status);
    return berth_error_plain(err, EIO, "%s failed with %s", what, why.buf);
}

/* ---------------------------------------------------------------- plan */

static void pack_release(struct build_pack *p)
{
    free(p->dir);
    free(p->source);
    free(p->spec);
    free(p->url);
    free(p->commit);
    free(p->framework);
    *p = (struct build_pack){ 0 };
}

void build_plan_release(struct build_plan *plan)
{
    for (size_t i = 0; i < plan->n; i++)
        pack_release(&plan->v[i]);
    free(plan->v);
    *plan = (struct build_plan){ 0 };
}

static struct build_pack *plan_add(struct build_plan *plan)
{
    plan->v = xrealloc(plan->v, (plan->n + 1) * sizeof(*plan->v));
    plan->v[plan->n] = (struct build_pack){ 0 };
    return &plan->v[plan->n++];
}

static bool builtin_installed(const struct build_spec *spec, const char *name)
{
    _cleanup_free_ char *path = xasprintf("%s/%s/bin/detect", spec->buildpacks_dir, name);

    return access(path, X_OK) == 0;
}

/* The app's list, else BUILDPACK_URL, else .buildpacks; none (n == 0) means auto-detect. */
static int choose_list(struct build_ctx *ctx, struct bp_list *ret, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    const char *url = json_get_str(spec->config, "BUILDPACK_URL");
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
    int r;

    if (spec->buildpacks && spec->buildpacks[0]) {
        ret->origin = "the app's buildpacks";
        for (size_t i = 0; spec->buildpacks[i]; i++)
            if ((r = bp_list_add(ret, spec->buildpacks[i], spec->trusted_sources, err)) < 0)
                return r;
        return 0;
    }
    if (url && *url)
        return bp_list_parse("BUILDPACK_URL", url, strlen(url), spec->trusted_sources, ret, err);
    r = build_read_file_at(ctx->src_dir, ".buildpacks", "the .buildpacks file", BUILDPACKS_FILE_MAX,
                           &text, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    return bp_list_parse(".buildpacks", text.buf, text.len, spec->trusted_sources, ret, err);
}

/* "https://example.com/me/my-buildpack.git" -> "my-buildpack", for a readable BP_DIR. */
static char *short_name(const struct bp_ref *ref)
{
    const char *s = ref->builtin ? ref->builtin : ref->url;
    const char *slash = strrchr(s, '/');
    struct strbuf sb = STRBUF_INIT;

    if (slash && slash[1])
        s = slash + 1;
    for (; *s && sb.len < 40; s++) {
        char c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_')
            strbuf_addch(&sb, c);
        else if (c == '.')
            break;
    }
    if (!sb.len)
        strbuf_addstr(&sb, "buildpack");
    return strbuf_detach(&sb, NULL);
}

/*
 * The fetch's error, with the URL as shown: git's messages name the URL
 * they failed on, and a private buildpack's may carry a token.
 */
static int fetch_failed(const struct bp_ref *ref, const char *shown, struct berth_error **err)
{
    _cleanup_free_ char *shown_url = bp_ref_shown(ref->url);
    _cleanup_strbuf_ struct strbuf msg = STRBUF_INIT;
    const char *m = berth_error_msg(err);
    size_t n = strlen(ref->url);
    int code = berth_error_code(err);

    for (const char *hit; (hit = strstr(m, ref->url)); m = hit + n) {
        strbuf_add(&msg, m, (size_t)(hit - m));
        strbuf_addstr(&msg, shown_url);
    }
    strbuf_addstr(&msg, m);
    berth_error_release(err);
    return berth_error_plain(err, code, "unable to fetch buildpack '%s': %s", shown, msg.buf);
}

static int fetch_pack(struct build_ctx *ctx, const struct bp_ref *ref, struct build_pack *p,
                      struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    _cleanup_free_ char *shown = bp_ref_shown(ref->spec);
    int r;

    if (!spec->fetch)
        return berth_error_plain(err, EOPNOTSUPP, "git buildpacks cannot be fetched here");
    build_say(ctx, "-----> Fetching buildpack %s", shown);
    if ((r = mkdir_p(p->source, 0755, err)) < 0)
        return r;
    r = spec->fetch(spec->fetch_cls, ref->url, ref->ref, spec->trusted_sources, p->source, &p->commit, err);
    if (r < 0) {
        r = fetch_failed(ref, shown, err);
        build_say_error(ctx, berth_error_msg(err));
        return r;
    }
    build_say(ctx, "       at commit %.7s", p->commit);
    return 0;
}

static int plan_from_list(struct build_ctx *ctx, const struct bp_list *list, struct build_plan *plan,
                          struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    int r;

    build_say(ctx, "-----> Using buildpacks (from %s):", list->origin);
    for (size_t i = 0; i < list->n; i++) {
        _cleanup_free_ char *shown = bp_ref_shown(list->v[i].spec);

        build_say(ctx, "       %zu. %s", i + 1, shown);
    }
    for (size_t i = 0; i < list->n; i++) {
        const struct bp_ref *ref = &list->v[i];
        _cleanup_free_ char *name = short_name(ref);
        struct build_pack *p = plan_add(plan);

        p->dir = xasprintf("%zu-%s", i + 1, name);
        p->spec = xstrdup(ref->spec);
        if (ref->builtin) {
            if (!builtin_installed(spec, ref->builtin))
                return berth_error_plain(err, ENOENT, "the built-in buildpack '%s' is not installed",
                                         ref->builtin);
            p->source = xasprintf("%s/%s", spec->buildpacks_dir, ref->builtin);
            continue;
        }
        p->url = xstrdup(ref->url);
        p->source = xasprintf("%s/bpsrc/%s", spec->work_dir, p->dir);
        if ((r = fetch_pack(ctx, ref, p, err)) < 0)
            return r;
    }
    return 0;
}

int phase_plan(struct build_ctx *ctx, struct build_plan *plan, struct berth_error **err)
{
    struct bp_list list = { 0 };
    int r;

    r = choose_list(ctx, &list, err);
    if (r < 0) {
        build_say_error(ctx, berth_error_msg(err));
        bp_list_release(&list);
        return r;
    }
    if (list.n > 0) {
        r = plan_from_list(ctx, &list, plan, err);
        bp_list_release(&list);
        return r;
    }
    plan->autodetect = true;
    for (size_t i = 0; build_builtin_order[i]; i++) {
        const char *name = build_builtin_order[i];
        struct build_pack *p;

        if (!builtin_installed(ctx->spec, name))
            continue;
        p = plan_add(plan);
        p->dir = xstrdup(name);
        p->spec = xstrdup(name);
        p->source = xasprintf("%s/%s", ctx->spec->buildpacks_dir, name);
    }
    return 0;
}

/* ---------------------------------------------------------------- prepare */

/* The first line detect printed, without control characters; the buildpack's dir if none. */
static char *framework_name(const struct strbuf *out, const char *fallback)
{
    struct strbuf name = STRBUF_INIT;

    for (size_t i = 0; i < out->len && out->buf[i] != '\n' && name.len < FRAMEWORK_NAME_MAX; i++) {
        unsigned char c = (unsigned char)out->buf[i];
        if (c >= 0x20 && c != 0x7f)
            strbuf_addch(&name, (char)c);
    }
    strbuf_rtrim(&name);
    if (name.len == 0)
        strbuf_addstr(&name, fallback);
    return strbuf_detach(&name, NULL);
}

/*
 * An exit status the step's script left in /berth/out as `name`, its
 * trailing blanks dropped, into *status: -ENOENT when there is none (the
 * program did not run).
 */
static int read_out_status(struct build_ctx *ctx, const char *name, const char *what,
                           struct strbuf *status, struct berth_error **err)
{
    int r = build_read_file_at(ctx->out_dir, name, what, 64, status, err);

    if (r == 0)
        strbuf_rtrim(status);
    return r;
}

/* What the pack's BUILD_OFFLINE_HOOK said of this app, when it has one and it ran. */
static int read_offline_status(struct build_ctx *ctx, struct build_pack *p, struct berth_error **err)
{
    _cleanup_free_ char *name = xasprintf("offline-%s.status", p->dir);
    _cleanup_strbuf_ struct strbuf status = STRBUF_INIT;
    int r = read_out_status(ctx, name, "the offline hook's status", &status, err);

    p->app_offline = r == 0 && strcmp(status.buf, "0") == 0;
    return r == -ENOENT ? 0 : r;
}

static int read_detect_files(struct build_ctx *ctx, struct build_pack *p, bool *ret_passed,
                             struct berth_error **err)
{
    _cleanup_free_ char *status_name = xasprintf("detect-%s.status", p->dir);
    _cleanup_free_ char *out_name = xasprintf("detect-%s", p->dir);
    _cleanup_strbuf_ struct strbuf status = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    int r;

    *ret_passed = false;
    r = read_out_status(ctx, status_name, "bin/detect's status", &status, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (strcmp(status.buf, "0") != 0)
        return 0;
    r = build_read_file_at(ctx->out_dir, out_name, "bin/detect's output", DETECT_OUTPUT_MAX, &out, err);
    if (r < 0 && r != -ENOENT)
        return r;
    free(p->framework);
    p->framework = framework_name(&out, p->dir);
    *ret_passed = true;
    return read_offline_status(ctx, p, err);
}

/*
 * Whether the pack's bin/detect passed; its name in p->framework. Missing
 * status: no detect. What bin/detect left there instead of a file is an
 * error, said in the output too.
 */
static int read_detect(struct build_ctx *ctx, struct build_pack *p, bool *ret_passed,
                       struct berth_error **err)
{
    int r = read_detect_files(ctx, p, ret_passed, err);

    if (r < 0) {
        _cleanup_free_ char *shown = bp_ref_shown(p->spec);

        r = berth_error_wrap(err, "buildpack '%s'", shown);
        build_say_error(ctx, berth_error_msg(err));
    }
    return r;
}

/* Keeps only the first built-in that detected; warns when others did too (null is the fallback). */
static int pick_detected(struct build_ctx *ctx, struct build_plan *plan, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf others = STRBUF_INIT;
    ssize_t first = -1;
    unsigned n_others = 0;
    int r;

    for (size_t i = 0; i < plan->n; i++) {
        bool passed;

        if ((r = read_detect(ctx, &plan->v[i], &passed, err)) < 0)
            return r;
        if (!passed)
            continue;
        if (first < 0)
            first = (ssize_t)i;
        if (strcmp(plan->v[i].dir, "null") != 0) {
            strbuf_addf(&others, " %s", plan->v[i].dir);
            n_others++;
        }
    }
    if (first < 0) {
        build_say(ctx, "-----> Unable to select a buildpack");
        return berth_error_plain(err, ENOENT, "Unable to select a buildpack");
    }
    if (n_others > 1) {
        build_say(ctx, "       Warning: Multiple default buildpacks reported the ability to handle "
                       "this app. The first buildpack in the list below will be used.");
        build_say(ctx, "       Detected buildpacks:%s", others.buf);
    }
    for (size_t i = 0; i < plan->n; i++)
        if ((ssize_t)i != first)
            pack_release(&plan->v[i]);
    plan->v[0] = plan->v[first];
    plan->n = 1;
    return 0;
}

/* An explicit list: every buildpack must accept the app (Heroku: "App not compatible with buildpack"). */
static int check_detected(struct build_ctx *ctx, struct build_plan *plan, struct berth_error **err)
{
    for (size_t i = 0; i < plan->n; i++) {
        _cleanup_free_ char *detect = xasprintf("%s/%s/bin/detect", ctx->bp_dir, plan->v[i].dir);
        bool passed;
        int r;

        if (access(detect, X_OK) < 0) {
            build_say(ctx, " !     Buildpack %s has no bin/detect", plan->v[i].spec);
            return berth_error_plain(err, ENOENT, "buildpack '%s' has no executable bin/detect",
                                     plan->v[i].spec);
        }
        if ((r = read_detect(ctx, &plan->v[i], &passed, err)) < 0)
            return r;
        if (!passed) {
            build_say(ctx, "-----> App not compatible with buildpack: %s", plan->v[i].spec);
            return berth_error_plain(err, ENOENT, "app not compatible with buildpack '%s' (its "
                                     "bin/detect failed)", plan->v[i].spec);
        }
    }
    return 0;
}

int phase_prepare(struct build_ctx *ctx, struct build_plan *plan, struct berth_error **err)
{
    struct runner_mount mounts[BUILD_MAX_MOUNTS];
    _cleanup_free_ const char **argv = xcalloc(plan->n + 7, sizeof(*argv));
    _cleanup_strv_ char **targets = xcalloc(plan->n + 1, sizeof(*targets));
    size_t n = 0, a = 0;
    int status, r;

    /*
     * Every mount of a build is hidden (runner.h): its container's mount
     * table must not name berth's home. Nothing changes these directories
     * beside the step (the app's deploy lock holds its cache).
     */
    if (plan->n + 4 > BUILD_MAX_MOUNTS)
        return berth_error_plain(err, E2BIG, "too many buildpacks");
    mounts[n++] = (struct runner_mount){ ctx->src_dir, "/src", false, true };
    mounts[n++] = (struct runner_mount){ ctx->slug_dir, "/berth/slug", true, true };
    if (!plan->autodetect)
        mounts[n++] = (struct runner_mount){ ctx->bp_dir, "/buildpacks", true, true };
    mounts[n++] = (struct runner_mount){ ctx->out_dir, "/berth/out", true, true };
    argv[a++] = "/bin/bash";
    argv[a++] = "-c";
    argv[a++] = prepare_script;
    argv[a++] = "prepare";
    argv[a++] = plan->autodetect ? "builtin" : "in-order";
    for (size_t i = 0; i < plan->n; i++) {
        targets[i] = xasprintf("/berth/bpsrc/%s", plan->v[i].dir);
        mounts[n++] = (struct runner_mount){ plan->v[i].source, targets[i], false, true };
        argv[a++] = plan->v[i].dir;
    }
    const struct build_step step = {
        .what = "copying the source", .argv = argv, .mounts = mounts, .n_mounts = n, .cwd = "/",
        .out = SINK_STREAM, .errs = SINK_STREAM, .timeout_ms = PREPARE_TIMEOUT_MS, .watch_disk = true,
        .measure_later = true,
    };

    r = build_step_run(ctx, &step, &status, err);
    if (r == 0 && status != 0)
        r = step_failed("copying the source", status, err);
    if (r < 0) {
        build_say_error(ctx, berth_error_msg(err));
        return r;
    }
    return plan->autodetect ? pick_detected(ctx, plan, err) : check_detected(ctx, plan, err);
}

/* ---------------------------------------------------------------- compile */

/*
 * A buildpack that downloads nothing says so with a regular file named
 * BUILD_OFFLINE_MARKER at its root (the built-in static and Procfile ones
 * do), and its compile gets no outbound network: least privilege, and a
 * deploy without the network's start (pasta's, ~0.1 s on a slow host). A
 * marker can only take network away, so a tenant's own buildpack may carry
 * one too. Read from the buildpack's source, which the build never writes.
 * One that downloads nothing for some apps says so per app with its
 * BUILD_OFFLINE_HOOK (prepare ran it), which counts for the first
 * buildpack only: a later one compiles what the ones before it left.
 */
static bool pack_offline(const struct build_pack *p)
{
    _cleanup_close_ int dfd = open(p->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;

    return dfd >= 0 && fstatat(dfd, BUILD_OFFLINE_MARKER, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(st.st_mode);
}

static int compile_one(struct build_ctx *ctx, const struct build_plan *plan, size_t k,
                       struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    const struct build_pack *p = &plan->v[k];
    _cleanup_free_ const char **argv = xcalloc(plan->n + 9, sizeof(*argv));
    _cleanup_free_ char *own = xasprintf("/buildpacks/%s", p->dir);
    /*
     * A list's buildpacks compile from their copies (each may leave an
     * `export` for the next); the one built-in autodetection kept, alone,
     * from its source, read-only (its compile skips the export then).
     */
    const struct runner_mount mounts[] = {
        { ctx->app_dir, "/app", true, true },
        { spec->cache_dir, "/cache", true, true },
        { ctx->env_dir, "/env", false, true },
        { ctx->out_dir, "/berth/out", true, true },
        plan->autodetect ? (struct runner_mount){ p->source, own, false, true }
                         : (struct runner_mount){ ctx->bp_dir, "/buildpacks", true, true },
    };
    bool marked = pack_offline(p), app_offline = !marked && k == 0 && p->app_offline;
    bool network = spec->network && !marked && !app_offline;
    size_t a = 0;
    int status, r;

    argv[a++] = "/bin/bash";
    argv[a++] = "-c";
    argv[a++] = compile_script;
    argv[a++] = "compile";
    argv[a++] = p->dir;
    argv[a++] = k + 1 == plan->n ? "1" : "0";
    argv[a++] = plan->autodetect ? "builtin" : "in-order";
    for (size_t i = 0; i < k; i++)
        argv[a++] = plan->v[i].dir;
    const struct build_step step = {
        .what = "bin/compile", .argv = argv, .mounts = mounts,
        .n_mounts = sizeof(mounts) / sizeof(*mounts), .cwd = "/app",
        .out = SINK_STREAM, .errs = SINK_STREAM, .timeout_ms = (long long)ctx->budget.timeout_s * 1000,
        .network = network, .watch_disk = true, .measure_later = true,
    };

    build_say(ctx, "-----> %s app detected", p->framework);
    if (!spec->network && k == 0)
        build_say(ctx, " !     This host gives builds no outbound network: nothing can be downloaded");
    else if (spec->network && app_offline)
        build_say(ctx, "       Nothing to download for this app: compiling without network");
    r = build_step_run(ctx, &step, &status, err);
    if (r == 0 && status != 0)
        r = step_failed("compile", status, err);
    if (r < 0) {
        if (berth_error_code(err) != EIO)
            build_say_error(ctx, berth_error_msg(err));
        build_say(ctx, " !     Push rejected, failed to compile %s app.", p->framework);
        return r;
    }
    return 0;
}

/* bin/release's YAML, when the last buildpack has one; else the empty defaults. */
static int read_release(struct build_ctx *ctx, json_t **ret, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf status = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf yaml = STRBUF_INIT;
    int r;

    r = read_out_status(ctx, "release.status", "bin/release's status", &status, err);
    if (r == -ENOENT)
        return build_release_parse("", 0, ret, err);
    if (r < 0)
        return r;
    if (strcmp(status.buf, "0") != 0)
        return berth_error_plain(err, EIO, "bin/release failed with exit status %.8s", status.buf);
    r = build_read_file_at(ctx->out_dir, "release.yml", "bin/release's output",
                           BUILD_RELEASE_MAX_BYTES, &yaml, err);
    if (r < 0 && r != -ENOENT)
        return r;
    return build_release_parse(yaml.buf, yaml.len, ret, err);
}

int phase_compile(struct build_ctx *ctx, const struct build_plan *plan, json_t **ret_release,
                  struct berth_error **err)
{
    int r;

    for (size_t k = 0; k < plan->n; k++)
        if ((r = compile_one(ctx, plan, k, err)) < 0)
            return r;
    r = read_release(ctx, ret_release, err);
    if (r < 0)
        build_say_error(ctx, berth_error_msg(err));
    return r;
}

/* ---------------------------------------------------------------- process types */

static void say_types(struct build_ctx *ctx, const char *source, const json_t *types)
{
    _cleanup_strbuf_ struct strbuf list = STRBUF_INIT;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)types, key, v) {
        (void)v;
        strbuf_addf(&list, "%s%s", list.len ? ", " : "", key);
    }
    build_say(ctx, "       %s -> %s", source, list.len ? list.buf : "(none)");
}

int phase_process_types(struct build_ctx *ctx, const json_t *release, json_t **ret,
                        struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
    json_t *defaults = json_object_get(release, "default_process_types");
    int r;

    build_say(ctx, "-----> Discovering process types");
    r = build_read_file_at(ctx->app_dir, "Procfile", "the Procfile", PROCFILE_READ_MAX, &text, err);
    if (r == -ENOENT) {
        say_types(ctx, "Default types for buildpack", defaults);
        *ret = defaults ? json_incref(defaults) : json_object();
    } else {
        if (r == 0)
            r = procfile_parse(text.buf, text.len, ret, err);
        if (r < 0) {
            build_say_error(ctx, berth_error_msg(err));
            return r;
        }
        say_types(ctx, "Procfile declares types", *ret);
    }
    if (ctx->spec->need_web && !json_object_get(*ret, "web")) {
        json_decref(*ret);
        *ret = NULL;
        r = berth_error_plain(err, EINVAL, "no web process type: add a Procfile with a 'web:' line");
        build_say_error(ctx, berth_error_msg(err));
        return r;
    }
    return 0;
}
