/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: the phases of one build, in the order build.c runs
 * them. plan: which buildpacks, fetching the git ones. prepare: one
 * container copies the source (and the buildpacks, so each gets a
 * writable BP_DIR for its `export` file), applies `.slugignore` and runs
 * bin/detect. compile: one container per buildpack, with the exports of the
 * ones before it sourced, the last one also running bin/release. process
 * types: the Procfile, else the last bin/release's defaults.
 */
#ifndef BERTH_BUILDPACKS_PHASES_H
#define BERTH_BUILDPACKS_PHASES_H

#include <jansson.h>
#include <stdbool.h>

#include "buildpacks/step.h"
#include "common/error.h"

struct build_pack {
    char *dir;         /* its directory under /buildpacks (and <work_dir>/buildpacks) */
    char *source;      /* the host directory it is copied from */
    char *spec;        /* how the user named it, or the built-in's name */
    char *url;         /* git buildpacks: the URL fetched, and the commit it was at */
    char *commit;
    char *framework;   /* the name its bin/detect printed */
    bool app_offline;  /* its BUILD_OFFLINE_HOOK said this app's compile downloads nothing */
};

struct build_plan {
    struct build_pack *v;
    size_t n;
    /*
     * No list was given: v holds every built-in, prepare runs each
     * bin/detect and keeps the first that passes.
     */
    bool autodetect;
};

int phase_plan(struct build_ctx *ctx, struct build_plan *plan, struct berth_error **err);
int phase_prepare(struct build_ctx *ctx, struct build_plan *plan, struct berth_error **err);
/* Compiles with every buildpack of the plan; *ret_release is the last one's parsed bin/release. */
int phase_compile(struct build_ctx *ctx, const struct build_plan *plan, json_t **ret_release,
                  struct berth_error **err);
/* The Procfile wins over bin/release's defaults, as a whole (herokuish). */
int phase_process_types(struct build_ctx *ctx, const json_t *release, json_t **ret,
                        struct berth_error **err);
void build_plan_release(struct build_plan *plan);

/* `-----> ...` lines of berth's own (never parsed out of the tenant's output). */
void build_say(struct build_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ` !     message` for each line of a (possibly multi-line) message, its host paths hidden. */
void build_say_error(struct build_ctx *ctx, const char *msg);
/*
 * msg with the build's host directories named as the build sees them
 * (shown.h): /app, /berth/slug, /cache..., <build> for the rest of the work
 * dir, <home> for anything else under the directory holding the work,
 * cache and slug dirs. malloc'ed.
 */
char *build_hide_paths(const struct build_ctx *ctx, const char *msg);

#endif
