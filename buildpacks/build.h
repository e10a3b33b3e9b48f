/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks: the build driver. Turns a checked-out source tree into a
 * read-only, content-addressed slug with Heroku's classic buildpack API
 * (reference/HEROKU.md §1): choose the buildpacks (the app's list, else the
 * BUILDPACK_URL config var, else the app's `.buildpacks` file, else the
 * first built-in whose bin/detect passes, in a fixed order), then run each
 * one's bin/compile BUILD_DIR CACHE_DIR ENV_DIR with the `export` files of
 * the ones before it sourced, and the last one's bin/release, all inside
 * rootless build containers (runner) with /app the build directory so paths
 * stay the same at run time. Compile steps get outbound network (but for a
 * buildpack that says it downloads nothing: BUILD_OFFLINE_MARKER, or
 * nothing for this app: BUILD_OFFLINE_HOOK); every step
 * runs under the build's budget (memory, cpu weight, disk allowance, wall
 * clock). The output is streamed line by line to the caller (the deploy
 * shows it as `remote: -----> ...`). The sealed slug lands in
 * <layers_dir>/<sha256>/app, owned by the tenant's ids and shared by every
 * release of that tenant with the same content.
 *
 * The built-in buildpacks live in buildpacks/<name>/bin/{detect,compile,release}.
 */
#ifndef BERTH_BUILD_H
#define BERTH_BUILD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "runner/runner.h"

typedef void (*build_output_fn)(void *cls, const char *line);

/*
 * Fetches a buildpack given as a git URL: writes the tree of `ref` (a
 * branch, tag or commit; NULL for the remote's HEAD) into dest_dir, which
 * exists and is empty, and returns the commit's hex id in *ret_commit
 * (malloc'ed). control provides it (the git client lives with the receiver).
 * `trusted` is the spec's trusted_sources: untrusted, the fetch must reach
 * no address of this host, whatever the URL's name resolves to.
 */
typedef int (*build_fetch_fn)(void *cls, const char *url, const char *ref, bool trusted, const char *dest_dir,
                              char **ret_commit, struct berth_error **err);

/* What one build may use; a zero field takes the default below. */
struct build_budget {
    uint64_t memory_bytes;   /* each build container's memory limit */
    uint64_t disk_bytes;     /* written to /app, /cache and the containers' own scratch space */
    uint64_t cpu_weight;     /* cgroup cpu.weight (apps have the default 100) */
    uint64_t pids_max;
    unsigned timeout_s;      /* wall clock for the whole build */
};

#define BUILD_DEFAULT_MEMORY_BYTES (1ULL << 30)
#define BUILD_DEFAULT_DISK_BYTES (2ULL << 30)
#define BUILD_DEFAULT_CPU_WEIGHT 20
#define BUILD_DEFAULT_PIDS_MAX 1024
#define BUILD_DEFAULT_TIMEOUT_S (15 * 60)   /* Heroku's slug compilation limit */
/*
 * A buildpack that downloads nothing carries a regular file of this name at
 * its root: its compile step gets no outbound network (phases.c).
 */
#define BUILD_OFFLINE_MARKER "berth-offline"
/*
 * A buildpack that downloads nothing for some apps (a Python app with no
 * requirements) carries this program: run after its bin/detect passed,
 * with the app's dir as BUILD_DIR, exit status 0 means this app's compile
 * gets no outbound network either; of a list, the first buildpack's alone
 * is run and heeded (phases.c).
 */
#define BUILD_OFFLINE_HOOK "bin/berth-offline"
/*
 * The second line of a built-in's bash bin/detect that may be sourced by
 * the prepare step's own shell, no process at all: the file defines one
 * function and runs it, changing nothing else of the shell (phases.c).
 */
#define BUILD_SOURCED_MARK "# berth: may be sourced"

struct build_spec {
    const char *app;              /* app name */
    const char *source_dir;       /* the pushed tree, readable by berth */
    const char *subdir;           /* build only this directory of the tree (monorepos), or NULL */
    const char *cache_dir;        /* CACHE_DIR, kept between builds of the app */
    const char *work_dir;         /* empty dir for this build, owned by berth */
    const char *buildpacks_dir;   /* built-in buildpacks: <dir>/<name>/bin/... */
    const char *stack_dir;        /* runner_stack_prepare()'d stack */
    const char *layers_dir;       /* the tenant's slugs: <layers_dir>/<sha256>/ */
    const json_t *config;         /* config vars, an object of strings (ENV_DIR) */
    const char *commit;           /* SOURCE_VERSION */
    /*
     * The app's own buildpack list (`berth buildpacks:set`): URLs, built-in
     * names, each optionally with #ref; NULL-terminated; NULL or empty for
     * none. It wins over BUILDPACK_URL and `.buildpacks`.
     */
    const char *const *buildpacks;
    build_fetch_fn fetch;         /* for git buildpacks; NULL: they are refused */
    void *fetch_cls;
    /*
     * May name buildpacks on this host: file:// URLs and hosts that are
     * loopback. Only the operator's own tenant is trusted so.
     */
    bool trusted_sources;
    unsigned long uid_base, gid_base, id_count;   /* the tenant's id range */
    const char *cgroup;           /* cgroup for the build containers, or NULL */
    bool network;                 /* compile steps get outbound network (the host can give it),
                                     but for a buildpack with BUILD_OFFLINE_MARKER, or the
                                     first one when its BUILD_OFFLINE_HOOK says so */
    bool need_web;                /* fail, before a slug is kept, unless there is a `web` type */
    struct build_budget budget;
    build_output_fn on_output;    /* one call per output line, without newline */
    void *cls;
};

struct build_result {
    char *buildpack;        /* the name the (last) bin/detect printed, e.g. "Node.js" */
    json_t *buildpacks;     /* [{"name", "url", "commit"?}] of every buildpack used, in order */
    char *slug_id;          /* sha256 hex of the slug's content */
    char *slug_dir;         /* <layers_dir>/<slug_id>, holding app/ */
    uint64_t slug_bytes;    /* size of the files in the slug */
    json_t *process_types;  /* {"web": "command", ...}: Procfile, else bin/release defaults */
    json_t *config_vars;    /* bin/release's config_vars: defaults under the app's config */
    uint64_t memory_peak_bytes;   /* highest peak of any build container */
};

/*
 * Runs the whole build. On failure the message says what went wrong in the
 * user's terms ("Unable to select a buildpack", "compile failed with exit
 * status 1", "the build went over its memory limit of 1024 MiB"); the
 * build output has already been streamed. Like every line of that output,
 * the message names the host's directories as the build sees them (/app,
 * /cache, <build>...: phases.h), never by their host paths: it goes to the
 * pusher. Nothing of a failed build stays on disk but the (empty) work dir.
 */
int build_run(struct runner *r, const struct build_spec *spec, struct build_result *ret,
              struct berth_error **err);
void build_result_release(struct build_result *res);

/* The built-in buildpacks in detection order, NULL-terminated. */
extern const char *const build_builtin_order[];

/*
 * Parses a Procfile: `type: command` lines, type ^[A-Za-z0-9_-]{1,63}$,
 * `#` comments and blank lines ignored, duplicates and malformed lines are
 * errors that name the line. *ret is an object of strings.
 */
int procfile_parse(const char *text, size_t len, json_t **ret, struct berth_error **err);

/*
 * Checks one buildpack reference as a user gives it (`berth
 * buildpacks:set`, `.buildpacks`, BUILDPACK_URL): a built-in name, an alias
 * of one (heroku/nodejs, the official Heroku buildpack URLs), or a git URL
 * (https, http, git, ssh; file:// only when trusted), with an optional
 * #ref. 0, or -EINVAL with a message that names the problem.
 */
int build_buildpack_check(const char *ref, bool trusted, struct berth_error **err);

#endif
