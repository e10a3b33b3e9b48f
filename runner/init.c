/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * berth's container init (see init.h). PID 1 of the container, still the
 * cloned child: it forks the app, which drops to the spec's ids with no
 * capabilities and no_new_privs, closes everything else, takes its file
 * size limit and loads seccomp just before execve; then the init waits in
 * one epoll loop on a signalfd and the port agent's sockets (agent.c). It
 * reaps every child; when the app's main process exits it writes the wait
 * status to the status pipe, kills what is left of the container and
 * exits. It is non-dumpable and runs as container root while the app runs
 * as another uid, so the app cannot ptrace it. The app runs under
 * SCHED_BATCH (app_take_batch_policy() says why); the init does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/agent.h"
#include "runner/init.h"
#include "runner/proto.h"
#include "common/banned.h"

/* Signals the init takes over; all but SIGCHLD are forwarded. */
static const int handled_signals[] = {
    SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM,
};

static int drop_privileges(const struct runner_spec *spec)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[2];

    /*
     * Bounding set first (needs CAP_SETPCAP, which container root still
     * has), so that nothing executed later can regain a capability. The
     * init dropped all of it but CAP_KILL before forking us
     * (init_drop_bounding()), so that one is all there is left to drop.
     */
    if (prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0) < 0)
        return -errno;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return -errno;
    if (setgroups(0, NULL) < 0 || setresgid(spec->gid, spec->gid, spec->gid) < 0 ||
        setresuid(spec->uid, spec->uid, spec->uid) < 0)
        return -errno;
    /* Also when uid is 0, where the id change above keeps every capability. */
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return -errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    return 0;
}

/*
 * RLIMIT_FSIZE for the app and all it starts, soft and hard alike so that
 * the app cannot raise it. Raising a hard limit takes CAP_SYS_RESOURCE in
 * the initial user namespace, which no container has: if the daemon's own
 * hard limit is lower than asked, that lower one stays, stricter than asked.
 */
static int limit_file_size(uint64_t bytes)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_FSIZE, &rl) < 0)
        return -errno;
    rl.rlim_cur = rl.rlim_max = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < bytes
                                    ? rl.rlim_max : (rlim_t)bytes;
    return setrlimit(RLIMIT_FSIZE, &rl) < 0 ? -errno : 0;
}

/* execve, searching envp's PATH when argv[0] has no slash. */
static int exec_app(const struct runner_spec *spec)
{
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    char *const *argv = (char *const *)spec->argv;
    char *const *envp = (char *const *)spec->envp;
    int saved = ENOENT;

    if (strchr(spec->argv[0], '/')) {
        execve(spec->argv[0], argv, envp);
        return -errno;
    }
    for (size_t i = 0; spec->envp[i]; i++)
        if (!strncmp(spec->envp[i], "PATH=", 5))
            path = spec->envp[i] + 5;
    while (*path) {
        size_t len = strcspn(path, ":");
        char *p = xasprintf("%.*s/%s", (int)len, path, spec->argv[0]);

        execve(p, argv, envp);
        free(p);
        if (errno != ENOENT && errno != ENOTDIR)
            saved = errno;
        path += len;
        if (*path == ':')
            path++;
    }
    return -saved;
}

/*
 * The app and all it forks run under SCHED_BATCH: the same CPU share (the
 * cgroups' weights and quotas decide that), but a wake-up of theirs does
 * not preempt the task running on that CPU, which then runs on to the end
 * of its slice or its next sleep. What it pays for: a keep-alive app woken
 * for each request the router forwards took the CPU from the router at
 * once, answered one request and slept again; under SCHED_BATCH it finds
 * several waiting. Measured 2026-12-03 (wrk -c64 through the router to
 * nginx in a container, the acceptance check's setup): the app slept 0.04
 * times a request instead of 0.35-0.40, spent 3.8-4.5 us a request instead
 * of 5.5-5.8, the whole machine 17.5-20 us instead of 20.4-21.5, and the
 * router read 1.04-1.16 of nginx's req/s instead of 0.94-0.99. A tenant's
 * p99 beside another tenant's CPU and memory hogs (tests/bench/neighbour.sh)
 * did not move, nor did one client's req/s, where the CPUs are mostly idle
 * and a wake-up finds one free. What it costs: beside a neighbour's busy
 * task, an app's wake-up waits for the next tick instead of preempting it
 * (a probe in a tenant's cgroup: p99 3.5 ms against 135 us), which the
 * router's own waits there hide for now (docs/ARCHITECTURE.md, The noisy
 * neighbour). The init stays SCHED_OTHER: its port agent
 * answers the router. An app that wants wake-up preemption back may ask
 * for SCHED_OTHER itself (no privilege needed). Only SCHED_OTHER is
 * changed: a berth started under another policy (SCHED_IDLE, say) passes
 * that on unchanged. From SCHED_OTHER, at the same nice, the call needs no
 * privilege; should a security module refuse it, the app runs on under
 * SCHED_OTHER, as it did before, so the result is not checked.
 */
static void app_take_batch_policy(void)
{
    struct sched_param param = { .sched_priority = 0 };

    if (sched_getscheduler(0) == SCHED_OTHER)
        (void)sched_setscheduler(0, SCHED_BATCH, &param);
}

__attribute__((noreturn))
static void app_main(const struct init_ctx *ctx, int report_fd)
{
    const struct runner_spec *spec = ctx->spec;
    const char *cwd = spec->cwd ? spec->cwd : "/";
    const char *step;
    sigset_t none;
    int in_fd, r;

    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)setpgid(0, 0);
    if (spec->stdin_fd > 0) {
        in_fd = spec->stdin_fd;
    } else {
        step = "open '/dev/null'";
        in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_fd < 0)
            goto fail;
    }
    step = "set up stdin, stdout and stderr";
    if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(spec->stdout_fd, STDOUT_FILENO) < 0 ||
        dup2(spec->stderr_fd, STDERR_FILENO) < 0)
        goto fail;
    /* Every other fd (agent, status, signalfd, the report socket) goes at execve. */
    step = "close_range";
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        goto fail;
    if ((r = drop_privileges(spec)) < 0) {
        errno = -r;
        step = "drop privileges";
        goto fail;
    }
    if (chdir(cwd) < 0) {
        _cleanup_free_ char *s = xasprintf("chdir '%s': %s", cwd, strerror(errno));

        proto_report_error(report_fd, errno, s);
        _exit(127);
    }
    /*
     * Wait until the init has dropped its own capabilities, so nothing the
     * app runs ever sees a privileged PID 1.
     */
    {
        char go;
        ssize_t n;

        do {
            n = read(report_fd, &go, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1)
            _exit(127);
    }
    app_take_batch_policy();
    if (spec->limits.file_size_max && (r = limit_file_size(spec->limits.file_size_max)) < 0) {
        errno = -r;
        step = "setrlimit RLIMIT_FSIZE";
        goto fail;
    }
    /* Last: the profile denies much of what the steps above needed. */
    if (ctx->prog && (r = seccomp_program_load(ctx->prog)) < 0) {
        errno = -r;
        step = "load the seccomp profile";
        goto fail;
    }
    r = exec_app(spec);
    {
        _cleanup_free_ char *s = xasprintf("execve '%s': %s", spec->argv[0], strerror(-r));

        proto_report_error(report_fd, -r, s);
    }
    _exit(127);
fail:
    {
        _cleanup_free_ char *s = xasprintf("%s: %s", step, strerror(errno));

        proto_report_error(report_fd, errno, s);
    }
    _exit(127);
}

/*
 * Once the app runs, the init needs one capability: CAP_KILL, to forward
 * signals to and tear down processes of other uids. Everything else goes,
 * bounding set included, so a bug in the init (or a confused deputy through
 * the agent) holds no more than that. The bounding set goes first, before
 * the app is forked (the loop ends at the first capability this kernel
 * does not know): the app inherits it, so its own drop is one prctl
 * instead of ~40, on the start's path, where the init and the app mostly
 * share a CPU (measured 2026-12-04: 23 starts of 30) and each prctl is a
 * syscall of 1-2 us. Only the bounding set: the app still needs its
 * effective CAP_SETUID and CAP_SETGID for its id change.
 */
static int init_drop_bounding(void)
{
    for (int cap = 0; cap < 64; cap++) {
        if (cap == CAP_KILL)
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break;
            return -errno;
        }
    }
    return 0;
}

/*
 * The rest of the init's drop, once the app is forked: effective and
 * permitted down to CAP_KILL, inheritable empty, and no_new_privs.
 */
static int init_drop_caps(void)
{
    struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof(data));
    data[0].effective = data[0].permitted = 1u << CAP_KILL;
    if (syscall(SYS_capset, &hdr, data) < 0)
        return -errno;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;
    return 0;
}

/*
 * One signal from the signalfd. SIGCHLD reaps; when the app's main process
 * is among the reaped, its status goes to the daemon and the init exits,
 * taking the rest of the container with it.
 */
static void handle_signal(const struct init_ctx *ctx, int sfd, pid_t app)
{
    struct signalfd_siginfo si;
    pid_t pid;
    int status;

    if (read(sfd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGCHLD) {
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            if (pid != app)
                continue;
            /*
             * From a namespace's init, -1 means everyone else in it; sent
             * before the status, so that whoever hears the status knows
             * every other process of the container has a SIGKILL pending
             * (one running on another CPU stops when that CPU is told).
             */
            (void)kill(-1, SIGKILL);
            (void)write_all(ctx->status_fd, &status, sizeof(status));
            _exit(0);
        }
    } else if (si.ssi_signo == SIGTERM) {
        /* runner_stop() promises SIGTERM to every process in the container. */
        (void)kill(-1, SIGTERM);
    } else {
        (void)kill(-app, (int)si.ssi_signo);
    }
}

/*
 * The init's loop, until the app exits: signals (the one fd whose event
 * carries a NULL data.ptr) and the port agent share one epoll set, and
 * nothing in either waits on anything but this epoll_wait.
 */
__attribute__((noreturn))
static void serve(const struct init_ctx *ctx, pid_t app, int sfd, int epfd, struct agent *agent)
{
    struct epoll_event evs[64];

    for (;;) {
        int n = epoll_wait(epfd, evs, sizeof(evs) / sizeof(*evs), agent_timeout_ms(agent));

        if (n < 0 && errno != EINTR)
            _exit(1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                handle_signal(ctx, sfd, app);
            else
                agent_handle(agent, &evs[i]);
        }
        agent_tick(agent);
    }
}

/* The epoll set of serve(), with the signalfd and the port agent in it. */
static int serve_prepare(const struct init_ctx *ctx, int sfd, int *ret_epfd,
                         struct agent **ret_agent)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    int epfd = epoll_create1(EPOLL_CLOEXEC), r;

    if (epfd < 0)
        return -errno;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0) {
        r = -errno;
        (void)close(epfd);
        return r;
    }
    if ((r = agent_new(epfd, ctx->agent_fd, ctx->spec->port, ret_agent)) < 0) {
        (void)close(epfd);
        return r;
    }
    *ret_epfd = epfd;
    return 0;
}

const char *init_stat_field(const char *stat, int field)
{
    /* After the comm's ")" come fields 3 on, one space before each. */
    const char *p = strrchr(stat, ')');

    for (int f = 2; p && f < field; f++)
        p = strchr(p + 1, ' ');
    return p ? p + 1 : NULL;
}

/*
 * The init is a clone of the spawner, itself a fork of the daemon or of
 * `berth container run`: its argument and environment areas still hold
 * theirs, with host paths, and /proc/1/cmdline is readable by everyone in
 * the container. Both are overwritten (init_neutral_cmdline("init")).
 */
void init_neutral_cmdline(const char *title)
{
    size_t tlen = strlen(title) + 1;
    char buf[2048];
    const char *p;
    unsigned long v[4];
    ssize_t n;
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return;
    n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* proc(5): arg_start is field 48, then arg_end, env_start, env_end. */
    p = init_stat_field(buf, 48);
    if (!p || sscanf(p, "%lu %lu %lu %lu", &v[0], &v[1], &v[2], &v[3]) != 4 ||
        v[1] <= v[0] || v[2] < v[1] || v[3] < v[2])
        return;
    memset((void *)v[0], 0, v[1] - v[0]);
    memcpy((void *)v[0], title, v[1] - v[0] > tlen ? tlen : v[1] - v[0]);
    memset((void *)v[2], 0, v[3] - v[2]);
}

/*
 * fds 0-2 of the init: the spawner's (the daemon's stdio, a terminal or a
 * log) unless they are the container's own fds; each becomes /dev/null,
 * and a free one too, so nothing the init opens later lands on them.
 */
static void null_stdio(const struct init_ctx *ctx, bool keep_spec_fds)
{
    const struct runner_spec *spec = ctx->spec;

    for (int fd = 0; fd <= 2; fd++) {
        int null;

        if (fd == ctx->sync_fd || fd == ctx->agent_fd || fd == ctx->status_fd ||
            (keep_spec_fds && (fd == spec->stdout_fd || fd == spec->stderr_fd ||
                               (spec->stdin_fd > 0 && fd == spec->stdin_fd))))
            continue;
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0)
            continue;
        if (null != fd) {
            (void)dup2(null, fd);
            (void)close(null);
        }
    }
}

void init_run(const struct init_ctx *ctx)
{
    const struct runner_spec *spec = ctx->spec;
    struct agent *agent = NULL;
    int report[2], sfd, r, epfd = -1;
    char buf[4096];
    sigset_t set;
    pid_t app;
    ssize_t n;

    /* What `cat /proc/1/comm` shows inside (and ps on the host). */
    (void)prctl(PR_SET_NAME, "berth-init", 0, 0, 0);
    init_neutral_cmdline("init");
    null_stdio(ctx, true);
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(handled_signals) / sizeof(*handled_signals); i++)
        sigaddset(&set, handled_signals[i]);
    /*
     * Blocked signals are queued even for a namespace's init (the kernel
     * drops only unblocked default-action signals to it), so the signalfd
     * sees what the daemon sends from outside.
     */
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
        (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, report) < 0) {
        proto_report_error(ctx->sync_fd, errno, "set up the container init");
        _exit(1);
    }
    if ((r = init_drop_bounding()) < 0) {
        proto_report_error(ctx->sync_fd, -r, "drop the bounding set");
        _exit(1);
    }
    app = fork();
    if (app < 0) {
        proto_report_error(ctx->sync_fd, errno, "fork the app");
        _exit(1);
    }
    if (app == 0)
        app_main(ctx, report[1]);
    (void)close(report[1]);
    (void)setpgid(app, app);
    /* A daemon that let go of the status pipe must not kill us by SIGPIPE. */
    (void)signal(SIGPIPE, SIG_IGN);
    if ((r = init_drop_caps()) < 0) {
        proto_report_error(ctx->sync_fd, -r, "drop the init's capabilities");
        _exit(1);
    }
    /*
     * The app may go on as soon as we hold no more than CAP_KILL; the port
     * agent is set up while it loads seccomp and execs (should that fail,
     * our exit takes the app with the rest of the pid namespace). Fails
     * only if the app already died; its report below says why.
     */
    (void)send(report[0], "g", 1, MSG_NOSIGNAL);
    if ((r = serve_prepare(ctx, sfd, &epfd, &agent)) < 0) {
        proto_report_error(ctx->sync_fd, -r, "set up the port agent");
        _exit(1);
    }
    /*
     * The app's end closes at its execve; a message on it is its setup error.
     * An app that failed with our "g" still unread in its queue resets the
     * pair when it exits: the first read then says ECONNRESET (once), and the
     * error message it sent before is still queued behind that.
     */
    do {
        n = read(report[0], buf, sizeof(buf));
    } while (n < 0 && (errno == EINTR || errno == ECONNRESET));
    if (n > 0) {
        (void)send(ctx->sync_fd, buf, (size_t)n, MSG_NOSIGNAL);
        _exit(1);
    }
    (void)close(report[0]);
    proto_report_ok(ctx->sync_fd);
    (void)close(ctx->sync_fd);
    (void)close(spec->stdout_fd);
    (void)close(spec->stderr_fd);
    if (spec->stdin_fd > 0)
        (void)close(spec->stdin_fd);
    null_stdio(ctx, false);

    serve(ctx, app, sfd, epfd, agent);
}
