/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: one build step, one container. Every step (copy the
 * source, detect, each bin/compile) runs in a fresh rootless container over
 * the stack alone, as container uid/gid 1000, with the build's bind mounts
 * and the tenant's cgroup and id range, under the build's budget: the
 * memory, pids and cpu-weight limits of its cgroup, RLIMIT_FSIZE at the
 * disk allowance, the build's wall-clock deadline, and, for steps that ask
 * for it, a watch on the disk space the build has written. The step's
 * output is pumped while it runs: streamed line by line to
 * build_spec.on_output, or discarded, per stream. The container's state dir
 * is removed afterwards.
 */
#ifndef BERTH_BUILDPACKS_STEP_H
#define BERTH_BUILDPACKS_STEP_H

#include <stddef.h>

#include "buildpacks/build.h"
#include "buildpacks/lines.h"
#include "common/strbuf.h"
#include "runner/runner.h"

#define BUILD_UID 1000
#define BUILD_GID 1000
/* Bind mounts of one step: the build's own plus one per buildpack source. */
#define BUILD_MAX_MOUNTS (8 + 16)

struct build_ctx {
    struct runner *r;
    const struct build_spec *spec;   /* the caller's, its directories resolved (build.c) */
    const struct build_spec *given;  /* the caller's as given: for the paths messages may name */
    struct build_budget budget;  /* spec's, with the defaults filled in */
    long long deadline_ms;       /* CLOCK_MONOTONIC ms when the build's time is up */
    struct build_lines lines;    /* the tenant's output on its way to on_output */
    char **envp;                 /* the build containers' environment */
    /* <work_dir>/...: the slug (holding app/), its app/, ENV_DIR, buildpack copies, step results */
    char *slug_dir, *app_dir, *env_dir, *bp_dir, *out_dir;
    char *src_dir;               /* the source tree, or its subdir the app lives in */
    unsigned n_containers;       /* numbers the state dirs <work_dir>/c<N> */
    /*
     * The state dirs of steps that ended well and left their measure to the
     * build's next one (build_step.measure_later): a later step's end
     * measures and removes them, or the seal (build.c), or remove_work().
     */
    char **pending_states;
    size_t n_pending;
    uint64_t memory_peak;        /* the highest peak of any step's container */
};

enum step_sink {
    SINK_STREAM,    /* lines to on_output as they come */
    SINK_DISCARD,
};

struct build_step {
    const char *what;                 /* "bin/compile": for names and messages */
    const char *const *argv;
    const struct runner_mount *mounts;
    size_t n_mounts;
    const char *cwd;
    enum step_sink out, errs;         /* what happens to stdout and stderr */
    long long timeout_ms;             /* the step's own cap; the build's deadline may be sooner */
    bool network;                     /* outbound network (compile) */
    bool watch_disk;                  /* fail the step once the build's disk allowance is used */
    /*
     * With watch_disk: a step that ends well is not measured at its end;
     * its state dir joins ctx->pending_states, measured with the build's
     * next measure (the next step's watch and end, or the seal's), which
     * then removes it: one tree worker less a step. A step that fails is
     * measured at once, as without it.
     */
    bool measure_later;
};

/*
 * Runs the step to its end and returns its wait(2) status in *ret_status.
 * A step the budget stopped fails with a message naming the limit it went
 * over (time: -ETIMEDOUT, disk: -EDQUOT, memory: -ENOMEM); runner failures
 * fill *err too.
 */
int build_step_run(struct build_ctx *ctx, const struct build_step *step, int *ret_status,
                   struct berth_error **err);

/*
 * The trees a measure of the build's disk counts besides the slug: the
 * cache, the buildpacks' copies, /berth/out and the pending state dirs,
 * into v (NULL-terminated: v must hold 3 + ctx->n_pending + 1 entries).
 * Returns the number stored.
 */
size_t build_measured_trees(const struct build_ctx *ctx, const char **v);
/* Forgets the pending state dirs (they were removed). */
void build_pending_clear(struct build_ctx *ctx);
/* The error of a tree deeper than the walks go (-ELOOP, said in the build's terms). */
int build_too_deep(struct berth_error **err);
/* The error of a build over its disk allowance (-EDQUOT, the allowance named). */
int build_over_disk(const struct build_ctx *ctx, struct berth_error **err);

/* Says a wait status in the user's terms: "exit status 1", "signal 9 (Killed)". */
void build_describe_status(struct strbuf *out, int status);

#endif
