/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running one build step in its own container (step.h). The output has to
 * reach the git client while the buildpack works (an npm install can take
 * minutes), so the step's stdout and stderr are pipes read in a poll loop
 * that also watches the container's exit, the deadline and, every few
 * seconds, the disk space the build has written. When both streams go to
 * on_output they share one pipe: the kernel then keeps the order in which
 * the buildpack wrote them.
 *
 * The exit is what ends the loop, not EOF: a buildpack may leave a
 * background process holding the pipe, and the container's end (its init
 * exits, the pid namespace dies) is what closes every write end for good.
 *
 * The budget is enforced by the kernel where it can be: the memory limit
 * of the step's cgroup (an OOM kill, which the container's usage reports
 * afterwards), RLIMIT_FSIZE (no single file past the disk allowance). What
 * the kernel cannot bound without root, the total a build writes across
 * files, is measured here while a step runs and when it ends (the prepare
 * step, where bin/detect runs, and every compile), or, when the step ended
 * well, with the build's next measure (build_step.measure_later): the
 * seal measures the build's disk last (build.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buildpacks/step.h"
#include "common/cleanup.h"
#include "common/xalloc.h"
#include "common/banned.h"

#define STOP_GRACE_MS 2000
#define POLL_MS 100
/* How often a compile's disk use is measured (a walk of the build's trees). */
#define DISK_WATCH_MS 2000
/* Output read in one go before the pump looks at the clock again. */
#define DRAIN_MAX_BYTES (256 * 1024)

struct stream {
    int fd;                  /* read end, -1 once at EOF */
};

struct pump {
    struct build_ctx *ctx;
    struct stream s;
};

/* Why the loop stopped a step early. */
enum stop_reason { STOP_NONE, STOP_STEP_TIMEOUT, STOP_DEADLINE, STOP_DISK, STOP_TOO_DEEP };

void build_describe_status(struct strbuf *out, int status)
{
    if (WIFEXITED(status))
        strbuf_addf(out, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        strbuf_addf(out, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        strbuf_addf(out, "wait status 0x%x", (unsigned)status);
}

static long long now_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads what is there now (the fd is non-blocking), at most `max` bytes:
 * a step that writes faster than its lines go out would otherwise keep the
 * pump here for ever, past the deadline and the disk checks. Closes the
 * stream at EOF.
 */
static int drain(struct pump *p, size_t max)
{
    char buf[16384];
    size_t got = 0;

    while (p->s.fd >= 0 && got < max) {
        ssize_t n = read(p->s.fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            closep(&p->s.fd);
            p->s.fd = -1;
            return -e;
        }
        build_lines_feed(&p->ctx->lines, buf, (size_t)n);
        got += (size_t)n;
    }
    return 0;
}

/*
 * The write ends for the container: one pipe shared by the streamed
 * streams (so their order holds), /dev/null for a discarded one.
 */
static int open_sinks(struct pump *p, const struct build_step *step, int *out_w, int *err_w,
                      struct berth_error **err)
{
    _cleanup_close_ int null_fd = -1;
    _cleanup_close_ int pipe_w = -1;
    int fds[2];

    if (step->out == SINK_DISCARD || step->errs == SINK_DISCARD) {
        null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null_fd < 0)
            return berth_error_make(err, errno, "opening '/dev/null'");
    }
    if (step->out == SINK_STREAM || step->errs == SINK_STREAM) {
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
            return berth_error_make(err, errno, "creating a pipe");
        p->s.fd = fds[0];
        pipe_w = fds[1];
        /* Only our read end is non-blocking; the buildpack's writes may block as usual. */
        if (fcntl(pipe_w, F_SETFL, 0) < 0)
            return berth_error_make(err, errno, "fcntl");
    }
    *out_w = fcntl(step->out == SINK_STREAM ? pipe_w : null_fd, F_DUPFD_CLOEXEC, 3);
    *err_w = fcntl(step->errs == SINK_STREAM ? pipe_w : null_fd, F_DUPFD_CLOEXEC, 3);
    if (*out_w < 0 || *err_w < 0)
        return berth_error_make(err, errno, "dup");
    return 0;
}

static int spawn_step(struct build_ctx *ctx, const struct build_step *step, const char *state_dir,
                      int out_w, int err_w, struct runner_container **ret, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    const char *const lower[] = { NULL };
    _cleanup_free_ char *name = xasprintf("%s.build.%u", spec->app, ctx->n_containers);
    /*
     * A cgroup per step, named after its state dir (c<N>): the step before
     * may still be exiting in its own (runner_release), and a spawn into
     * that one would wait for it.
     */
    _cleanup_free_ char *cgroup = spec->cgroup ? xasprintf("%s-c%u", spec->cgroup, ctx->n_containers)
                                               : NULL;

    struct runner_spec rs = {
        .name = name,
        .hostname = "build",
        .uid_base = spec->uid_base,
        .gid_base = spec->gid_base,
        .id_count = spec->id_count,
        .lower_dirs = lower,
        .stack_dir = spec->stack_dir,
        .state_dir = state_dir,
        .mounts = step->mounts,
        .n_mounts = step->n_mounts,
        .argv = step->argv,
        .envp = (const char *const *)ctx->envp,
        .cwd = step->cwd ? step->cwd : "/app",
        .uid = BUILD_UID,
        .gid = BUILD_GID,
        .stdout_fd = out_w,
        .stderr_fd = err_w,
        .port = 0,
        .cgroup = cgroup,
        .limits = {
            .memory_bytes = ctx->budget.memory_bytes,
            .pids_max = ctx->budget.pids_max,
            .cpu_weight = ctx->budget.cpu_weight,
            .file_size_max = ctx->budget.disk_bytes,
        },
        .network = step->network,
    };
    return runner_spawn(ctx->r, &rs, ret, err);
}

size_t build_measured_trees(const struct build_ctx *ctx, const char **v)
{
    size_t n = 0;

    v[n++] = ctx->spec->cache_dir;
    v[n++] = ctx->bp_dir;
    v[n++] = ctx->out_dir;
    for (size_t i = 0; i < ctx->n_pending; i++)
        v[n++] = ctx->pending_states[i];
    v[n] = NULL;
    return n;
}

void build_pending_clear(struct build_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_pending; i++)
        free(ctx->pending_states[i]);
    free(ctx->pending_states);
    ctx->pending_states = NULL;
    ctx->n_pending = 0;
}

/*
 * The disk space the build has written so far: every tree a container may
 * write (the slug with /app, /cache, the buildpacks' copies, /berth/out),
 * the state dirs of earlier steps still pending, and this step's scratch
 * space, which the same worker then removes with the pending ones if
 * then_remove_state (the step is over): one worker, not two.
 */
static int disk_used(struct build_ctx *ctx, const char *state_dir, bool then_remove_state,
                     uint64_t *ret, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    _cleanup_free_ const char **paths = xcalloc(ctx->n_pending + 7, sizeof(*paths));
    _cleanup_free_ const char **gone = xcalloc(ctx->n_pending + 2, sizeof(*gone));
    size_t n = 0, k = 0;
    int r;

    paths[n++] = ctx->slug_dir;
    n += build_measured_trees(ctx, paths + n);
    paths[n++] = state_dir;
    gone[k++] = state_dir;
    for (size_t i = 0; i < ctx->n_pending; i++)
        gone[k++] = ctx->pending_states[i];
    r = runner_tree_usage(ctx->r, paths, then_remove_state ? gone : NULL, spec->uid_base,
                          spec->gid_base, spec->id_count, ret, err);
    if (r == 0 && then_remove_state)
        build_pending_clear(ctx);
    return r;
}

/* Pumps output until the container exits or the budget stops it; *ret_stop says which. */
static int pump_until_exit(struct pump *p, struct runner_container *c, const struct build_step *step,
                           const char *state_dir, int *ret_status, enum stop_reason *ret_stop,
                           struct berth_error **err)
{
    struct build_ctx *ctx = p->ctx;
    long long start = now_ms();
    long long step_deadline = start + step->timeout_ms;
    long long deadline = step_deadline < ctx->deadline_ms ? step_deadline : ctx->deadline_ms;
    long long next_disk_check = start + DISK_WATCH_MS;
    int r;

    for (;;) {
        long long now = now_ms(), left = deadline - now;
        int wait_ms = left < POLL_MS ? (int)(left > 0 ? left : 0) : POLL_MS;

        if (left <= 0) {
            *ret_stop = deadline == ctx->deadline_ms ? STOP_DEADLINE : STOP_STEP_TIMEOUT;
            return 0;
        }
        if (step->watch_disk && now >= next_disk_check) {
            uint64_t used = 0;

            next_disk_check = now + DISK_WATCH_MS;
            r = disk_used(ctx, state_dir, false, &used, NULL);
            if (r == -ELOOP || (r == 0 && used > ctx->budget.disk_bytes)) {
                *ret_stop = r == -ELOOP ? STOP_TOO_DEEP : STOP_DISK;
                return 0;
            }
        }
        if (p->s.fd >= 0) {
            struct pollfd pfd = { .fd = p->s.fd, .events = POLLIN };

            if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
                return berth_error_make(err, errno, "poll");
            if ((r = drain(p, DRAIN_MAX_BYTES)) < 0)
                return berth_error_make(err, -r, "reading the output of %s", step->what);
            r = runner_wait(c, 0, ret_status, err);
        } else {
            /* The stream is at EOF: nothing to pump, just wait for the exit. */
            r = runner_wait(c, wait_ms, ret_status, err);
        }
        if (r == -ETIMEDOUT) {
            berth_error_release(err);
            continue;
        }
        if (r < 0)
            return r;
        /* Exited: whatever is still in the pipe was written before the end, and nothing more comes. */
        if ((r = drain(p, SIZE_MAX)) < 0)
            return berth_error_make(err, -r, "reading the output of %s", step->what);
        *ret_stop = STOP_NONE;
        return 0;
    }
}

static void format_duration(struct strbuf *out, unsigned seconds)
{
    if (seconds % 60 == 0 && seconds >= 60)
        strbuf_addf(out, "%u minute%s", seconds / 60, seconds == 60 ? "" : "s");
    else
        strbuf_addf(out, "%u second%s", seconds, seconds == 1 ? "" : "s");
}

/*
 * A tree nested deeper than the walks go (TREE_MAX_DEPTH) cannot be
 * measured, so its size is unknown: the build stops rather than write on
 * unwatched (the seal would refuse the slug anyway).
 */
int build_too_deep(struct berth_error **err)
{
    return berth_error_plain(err, ELOOP, "the build nested directories deeper than the %d levels berth "
                             "measures and keeps", RUNNER_TREE_MAX_DEPTH);
}

int build_over_disk(const struct build_ctx *ctx, struct berth_error **err)
{
    return berth_error_plain(err, EDQUOT, "the build went over its disk allowance of %llu MiB",
                             (unsigned long long)(ctx->budget.disk_bytes >> 20));
}

static int stopped_error(struct build_ctx *ctx, const struct build_step *step, enum stop_reason why,
                         struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf d = STRBUF_INIT;

    switch (why) {
    case STOP_DEADLINE:
        format_duration(&d, ctx->budget.timeout_s);
        return berth_error_plain(err, ETIMEDOUT, "the build went over its time limit of %s", d.buf);
    case STOP_STEP_TIMEOUT:
        format_duration(&d, (unsigned)(step->timeout_ms / 1000));
        return berth_error_plain(err, ETIMEDOUT, "%s timed out after %s", step->what, d.buf);
    case STOP_DISK:
        return build_over_disk(ctx, err);
    case STOP_TOO_DEEP:
        return build_too_deep(err);
    case STOP_NONE:
    default:
        return 0;
    }
}

/*
 * The budget may have been what ended the step, and then the limit is the
 * message, not the exit status. An OOM kill fails the step even when the
 * buildpack went on regardless: one of its processes died half-way, so
 * what it left in /app cannot be trusted. A full disk allowance shows as a
 * failed step (one file at RLIMIT_FSIZE gets SIGXFSZ, which a script may
 * turn into any exit status), measured when it is nearly used; a step that
 * watches the disk is measured at its end too, since one that wrote fast
 * and exited between two measures of the watch must not keep what it wrote
 * past the allowance: at once, or, for a step that ends well and may
 * measure later, with the build's next measure, which is never skipped
 * (the seal's is the last), its state dir pending until then
 * (*ret_state_pending). The measure at the end removes the step's scratch
 * space and the pending ones too (*ret_state_removed says it did).
 */
static int budget_failure(struct build_ctx *ctx, struct runner_container *c,
                          const struct build_step *step, const char *state_dir, int status,
                          bool *ret_state_removed, bool *ret_state_pending, struct berth_error **err)
{
    struct runner_usage u = { 0 };
    uint64_t used = 0;
    uint64_t limit = ctx->budget.disk_bytes;
    int r;

    if (runner_container_usage(c, &u, NULL) == 0) {
        if (u.memory_peak_bytes > ctx->memory_peak)
            ctx->memory_peak = u.memory_peak_bytes;
        if (u.oom_kills > 0)
            return berth_error_plain(err, ENOMEM, "the build went over its memory limit of %llu MiB "
                                     "and was killed", (unsigned long long)(ctx->budget.memory_bytes >> 20));
    }
    if (status == 0 && !step->watch_disk)
        return 0;
    if (status == 0 && step->measure_later) {
        *ret_state_pending = true;
        return 0;
    }
    r = disk_used(ctx, state_dir, true, &used, NULL);
    /* A failure leaves unknown whether the scratch space went: build_step_run() tries again. */
    *ret_state_removed = r == 0;
    if (r == -ELOOP)
        return build_too_deep(err);
    if (r == 0 && (used > limit || (status != 0 && used >= limit - limit / 100)))
        return build_over_disk(ctx, err);
    return 0;
}

static int run_container(struct build_ctx *ctx, const struct build_step *step, const char *state_dir,
                         int *ret_status, bool *ret_state_removed, bool *ret_state_pending,
                         struct berth_error **err)
{
    struct pump p = { .ctx = ctx, .s = { .fd = -1 } };
    struct runner_container *c = NULL;
    _cleanup_close_ int out_w = -1;
    _cleanup_close_ int err_w = -1;
    enum stop_reason stop = STOP_NONE;
    int status = 0, r;

    r = open_sinks(&p, step, &out_w, &err_w, err);
    if (r >= 0)
        r = spawn_step(ctx, step, state_dir, out_w, err_w, &c, err);
    /* The container holds its own copies now; ours would keep the pipe from reaching EOF. */
    closep(&out_w);
    out_w = -1;
    closep(&err_w);
    err_w = -1;
    if (r >= 0) {
        _cleanup_error_ struct berth_error *stop_err = NULL;

        r = pump_until_exit(&p, c, step, state_dir, &status, &stop, err);
        /*
         * A step that exited is released: its usage read, its teardown left
         * to the spawner, off the build's path. One stopped early is
         * stopped, with the grace period, and reaped.
         */
        if (r < 0 || stop != STOP_NONE || runner_release(c, NULL) < 0)
            (void)runner_stop(c, r < 0 || stop != STOP_NONE ? STOP_GRACE_MS : 0, &stop_err);
        if (r >= 0 && stop != STOP_NONE)
            r = stopped_error(ctx, step, stop, err);
        if (r >= 0)
            r = budget_failure(ctx, c, step, state_dir, status, ret_state_removed, ret_state_pending,
                               err);
        runner_container_free(c);
    }
    closep(&p.s.fd);
    build_lines_flush(&ctx->lines);
    *ret_status = status;
    return r;
}

int build_step_run(struct build_ctx *ctx, const struct build_step *step, int *ret_status,
                   struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    _cleanup_free_ char *state_dir = NULL;
    bool state_removed = false, state_pending = false;
    int status = 0;
    int r, rr = 0;

    state_dir = xasprintf("%s/c%u", spec->work_dir, ++ctx->n_containers);
    if (mkdir(state_dir, 0700) < 0)
        return berth_error_make(err, errno, "creating '%s'", state_dir);
    r = run_container(ctx, step, state_dir, &status, &state_removed, &state_pending, err);
    if (r >= 0 && state_pending) {
        ctx->pending_states = xrealloc(ctx->pending_states, (ctx->n_pending + 1) * sizeof(char *));
        ctx->pending_states[ctx->n_pending++] = TAKE_PTR(state_dir);
        *ret_status = status;
        return 0;
    }

    /* The upper dir holds files owned by the tenant's ids: only the runner can remove them. */
    if (!state_removed)
        rr = runner_remove_tree(ctx->r, state_dir, spec->uid_base, spec->gid_base, spec->id_count,
                                r < 0 ? NULL : err);
    if (r >= 0 && rr < 0)
        r = err ? berth_error_wrap(err, "removing the build container") : rr;
    if (r < 0)
        return r;
    *ret_status = status;
    return 0;
}
