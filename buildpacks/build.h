/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks: the build driver. Turns a checked-out source tree into a
 * read-only, content-addressed slug with Heroku's classic buildpack API
 * (reference/HEROKU.md §1): run each built-in buildpack's bin/detect in the
 * fixed order and take the first that passes, then bin/compile BUILD_DIR
 * CACHE_DIR ENV_DIR and bin/release, all inside a rootless build container
 * (runner), with /app the build directory so paths stay the same at run
 * time. The output is streamed line by line to the caller (the deploy shows
 * it as `remote: -----> ...`). The slug lands in <layers_dir>/<sha256>/app,
 * shared by every instance of every release that has the same content.
 *
 * The built-in buildpacks live in buildpacks/<name>/bin/{detect,compile,release}.
 */
#ifndef BERTH_BUILD_H
#define BERTH_BUILD_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"
#include "runner/runner.h"

typedef void (*build_output_fn)(void *cls, const char *line);

struct build_spec {
    const char *app;              /* app name */
    const char *source_dir;       /* the pushed tree, readable by berth */
    const char *cache_dir;        /* CACHE_DIR, kept between builds of the app */
    const char *work_dir;         /* empty dir for this build, owned by berth */
    const char *buildpacks_dir;   /* built-in buildpacks: <dir>/<name>/bin/... */
    const char *stack_dir;        /* runner_stack_prepare()'d stack */
    const char *layers_dir;       /* slugs go to <layers_dir>/<sha256>/ */
    const json_t *config;         /* config vars, an object of strings (ENV_DIR) */
    const char *commit;           /* SOURCE_VERSION */
    unsigned long uid_base, gid_base, id_count;   /* the tenant's id range */
    const char *cgroup;           /* cgroup for the build container, or NULL */
    build_output_fn on_output;    /* one call per output line, without newline */
    void *cls;
};

struct build_result {
    char *buildpack;        /* the name bin/detect printed, e.g. "Static" */
    char *slug_id;          /* sha256 hex of the slug's content */
    char *slug_dir;         /* <layers_dir>/<slug_id>, holding app/ */
    json_t *process_types;  /* {"web": "command", ...}: Procfile, else bin/release defaults */
};

/*
 * Runs the whole build. On failure the message says what went wrong in the
 * user's terms ("Unable to select a buildpack", "compile failed with exit
 * status 1"); the build output has already been streamed.
 */
int build_run(struct runner *r, const struct build_spec *spec, struct build_result *ret,
              struct berth_error **err);
void build_result_release(struct build_result *res);

/*
 * Parses a Procfile: `type: command` lines, type ^[A-Za-z0-9_-]{1,63}$,
 * `#` comments and blank lines ignored, duplicates and malformed lines are
 * errors that name the line. *ret is an object of strings.
 */
int procfile_parse(const char *text, size_t len, json_t **ret, struct berth_error **err);

#endif
