/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: one build step, one container. Every step (copy the
 * source, each bin/detect, bin/compile, bin/release) runs in a fresh
 * rootless container over the stack alone, as container uid/gid 1000, with
 * the build's bind mounts (/app read-write, /cache, /env, /buildpacks) and
 * the tenant's cgroup and id range. The step's output is pumped while it
 * runs: streamed line by line to build_spec.on_output, captured (capped), or
 * discarded, per stream. The container's state dir is removed afterwards.
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

struct build_ctx {
    struct runner *r;
    const struct build_spec *spec;
    struct build_lines lines;    /* the tenant's output on its way to on_output */
    char **envp;                 /* the build containers' environment */
    struct runner_mount mounts[5];
    size_t n_mounts;             /* without /src, which only the copy step gets */
    unsigned n_containers;       /* numbers the state dirs <work_dir>/c<N> */
};

enum step_sink {
    SINK_STREAM,    /* lines to on_output as they come */
    SINK_CAPTURE,   /* into the caller's strbuf, at most capture_max bytes */
    SINK_DISCARD,
};

struct build_step {
    const char *what;                 /* "detect", "compile": for names and messages */
    const char *const *argv;
    const struct runner_mount *extra_mount;   /* one more bind mount, or NULL */
    enum step_sink out, errs;         /* what happens to stdout and stderr */
    size_t capture_max;               /* SINK_CAPTURE: more fails the step with EFBIG */
    int timeout_ms;
};

/*
 * Runs the step to its end and returns its wait(2) status in *ret_status.
 * -ETIMEDOUT (the container was stopped), -EFBIG (too much output to
 * capture) and runner failures fill *err. `captured` receives the
 * SINK_CAPTURE stream (may be NULL when no stream is captured).
 */
int build_step_run(struct build_ctx *ctx, const struct build_step *step, struct strbuf *captured,
                   int *ret_status, struct berth_error **err);

/* Says a wait status in the user's terms: "exit status 1", "signal 9 (Killed)". */
void build_describe_status(struct strbuf *out, int status);

#endif
