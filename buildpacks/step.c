/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running one build step in its own container (step.h). The output has to
 * reach the git client while the buildpack works (an npm install can take
 * minutes), so the step's stdout and stderr are pipes read in a poll loop
 * that also watches the container's exit and the step's deadline. When
 * both streams go to on_output they share one pipe: the kernel then keeps
 * the order in which the buildpack wrote them.
 *
 * The exit is what ends the loop, not EOF: a buildpack may leave a
 * background process holding the pipe, and the container's end (its init
 * exits, the pid namespace dies) is what closes every write end for good.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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

/* Per-container limits for builds (the tenant's cgroup limits apply on top). */
#define BUILD_MEMORY_BYTES (1ULL << 30)
#define BUILD_PIDS_MAX 1024
#define STOP_GRACE_MS 2000
#define POLL_MS 100

struct stream {
    int fd;                  /* read end, -1 once at EOF */
    enum step_sink sink;
};

struct pump {
    struct build_ctx *ctx;
    struct strbuf *captured;
    size_t capture_max;
    bool overflow;
    struct stream s[2];
    size_t n;
};

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

static void deliver(struct pump *p, const struct stream *s, const char *buf, size_t n)
{
    switch (s->sink) {
    case SINK_STREAM:
        build_lines_feed(&p->ctx->lines, buf, n);
        break;
    case SINK_CAPTURE:
        if (p->captured->len + n > p->capture_max) {
            p->overflow = true;
            break;
        }
        strbuf_add(p->captured, buf, n);
        break;
    case SINK_DISCARD:
        break;
    }
}

/* Reads what is there now (the fds are non-blocking); closes a stream at EOF. */
static int drain(struct pump *p, struct stream *s)
{
    char buf[16384];

    while (s->fd >= 0) {
        ssize_t n = read(s->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            (void)close(s->fd);
            s->fd = -1;
            return -e;
        }
        deliver(p, s, buf, (size_t)n);
    }
    return 0;
}

static void close_streams(struct pump *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->s[i].fd >= 0)
            (void)close(p->s[i].fd);
        p->s[i].fd = -1;
    }
}

/*
 * The write ends for the container: a pipe per pumped stream (one shared
 * when both stream to on_output), /dev/null for a discarded one.
 */
static int open_sinks(struct pump *p, const struct build_step *step, int *out_w, int *err_w,
                      struct berth_error **err)
{
    enum step_sink sinks[2] = { step->out, step->errs };
    int *ends[2] = { out_w, err_w };

    for (int i = 0; i < 2; i++) {
        int fds[2];

        if (sinks[i] == SINK_DISCARD) {
            *ends[i] = open("/dev/null", O_WRONLY | O_CLOEXEC);
            if (*ends[i] < 0)
                return berth_error_make(err, errno, "opening '/dev/null'");
            continue;
        }
        if (i == 1 && sinks[0] == SINK_STREAM && sinks[1] == SINK_STREAM) {
            *ends[i] = fcntl(*out_w, F_DUPFD_CLOEXEC, 3);
            if (*ends[i] < 0)
                return berth_error_make(err, errno, "dup");
            continue;
        }
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
            return berth_error_make(err, errno, "creating a pipe");
        /* Only our read end is non-blocking; the buildpack's writes may block as usual. */
        if (fcntl(fds[1], F_SETFL, 0) < 0) {
            int e = errno;
            (void)close(fds[0]);
            (void)close(fds[1]);
            return berth_error_make(err, e, "fcntl");
        }
        p->s[p->n].fd = fds[0];
        p->s[p->n].sink = sinks[i];
        p->n++;
        *ends[i] = fds[1];
    }
    return 0;
}

static int spawn_step(struct build_ctx *ctx, const struct build_step *step, const char *state_dir,
                      int out_w, int err_w, struct runner_container **ret, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    const char *const lower[] = { NULL };
    struct runner_mount mounts[6];
    size_t n = ctx->n_mounts;
    _cleanup_free_ char *name = xasprintf("%s.build.%u", spec->app, ctx->n_containers);

    memcpy(mounts, ctx->mounts, n * sizeof(mounts[0]));
    if (step->extra_mount)
        mounts[n++] = *step->extra_mount;

    struct runner_spec rs = {
        .name = name,
        .hostname = "build",
        .uid_base = spec->uid_base,
        .gid_base = spec->gid_base,
        .id_count = spec->id_count,
        .lower_dirs = lower,
        .stack_dir = spec->stack_dir,
        .state_dir = state_dir,
        .mounts = mounts,
        .n_mounts = n,
        .argv = step->argv,
        .envp = (const char *const *)ctx->envp,
        .cwd = "/app",
        .uid = BUILD_UID,
        .gid = BUILD_GID,
        .stdout_fd = out_w,
        .stderr_fd = err_w,
        .port = 0,
        .cgroup = spec->cgroup,
        .limits = { .memory_bytes = BUILD_MEMORY_BYTES, .pids_max = BUILD_PIDS_MAX },
    };
    return runner_spawn(ctx->r, &rs, ret, err);
}

/* Pumps output until the container exits or the deadline passes. */
static int pump_until_exit(struct pump *p, struct runner_container *c, const struct build_step *step,
                           int *ret_status, struct berth_error **err)
{
    long long deadline = now_ms() + step->timeout_ms;
    int r;

    for (;;) {
        struct pollfd pfd[2];
        nfds_t n = 0;
        long long left = deadline - now_ms();

        if (left <= 0) {
            _cleanup_error_ struct berth_error *stop_err = NULL;
            (void)runner_stop(c, STOP_GRACE_MS, &stop_err);
            return berth_error_plain(err, ETIMEDOUT, "%s timed out after %d seconds", step->what,
                                     step->timeout_ms / 1000);
        }
        for (size_t i = 0; i < p->n; i++) {
            if (p->s[i].fd >= 0)
                pfd[n++] = (struct pollfd){ .fd = p->s[i].fd, .events = POLLIN };
        }
        if (n > 0) {
            if (poll(pfd, n, left < POLL_MS ? (int)left : POLL_MS) < 0 && errno != EINTR)
                return berth_error_make(err, errno, "poll");
            for (size_t i = 0; i < p->n; i++) {
                if ((r = drain(p, &p->s[i])) < 0)
                    return berth_error_make(err, -r, "reading the output of %s", step->what);
            }
            r = runner_wait(c, 0, ret_status, err);
        } else {
            /* Every stream is at EOF: nothing to pump, just wait for the exit. */
            r = runner_wait(c, left < POLL_MS ? (int)left : POLL_MS, ret_status, err);
        }
        if (r == -ETIMEDOUT) {
            berth_error_release(err);
            continue;
        }
        if (r < 0)
            return r;
        /* Exited: whatever is still in the pipes was written before the end. */
        for (size_t i = 0; i < p->n; i++) {
            if ((r = drain(p, &p->s[i])) < 0)
                return berth_error_make(err, -r, "reading the output of %s", step->what);
        }
        return 0;
    }
}

int build_step_run(struct build_ctx *ctx, const struct build_step *step, struct strbuf *captured,
                   int *ret_status, struct berth_error **err)
{
    const struct build_spec *spec = ctx->spec;
    struct pump p = { .ctx = ctx, .captured = captured, .capture_max = step->capture_max };
    struct runner_container *c = NULL;
    _cleanup_close_ int out_w = -1;
    _cleanup_close_ int err_w = -1;
    _cleanup_free_ char *state_dir = NULL;
    int status = 0;
    int r, rr;

    state_dir = xasprintf("%s/c%u", spec->work_dir, ++ctx->n_containers);
    if (mkdir(state_dir, 0700) < 0)
        return berth_error_make(err, errno, "creating '%s'", state_dir);

    r = open_sinks(&p, step, &out_w, &err_w, err);
    if (r >= 0)
        r = spawn_step(ctx, step, state_dir, out_w, err_w, &c, err);
    /* The container holds its own copies now; ours would keep the pipes from reaching EOF. */
    closep(&out_w);
    out_w = -1;
    closep(&err_w);
    err_w = -1;
    if (r >= 0) {
        r = pump_until_exit(&p, c, step, &status, err);
        if (r < 0) {
            _cleanup_error_ struct berth_error *stop_err = NULL;
            (void)runner_stop(c, STOP_GRACE_MS, &stop_err);
        }
        runner_container_free(c);
    }
    close_streams(&p);
    build_lines_flush(&ctx->lines);

    /* The upper dir holds files owned by the tenant's ids: only the runner can remove them. */
    rr = runner_remove_tree(ctx->r, state_dir, spec->uid_base, spec->gid_base, spec->id_count,
                            r < 0 ? NULL : err);
    if (r >= 0 && rr < 0)
        r = err ? berth_error_wrap(err, "removing the build container") : rr;
    if (r < 0)
        return r;
    if (p.overflow)
        return berth_error_plain(err, EFBIG, "the output of %s is larger than %zu bytes", step->what,
                                 step->capture_max);
    *ret_status = status;
    return 0;
}
