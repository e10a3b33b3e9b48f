/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner_run_once() (runner.h): one container straight from the calling
 * process, for `berth container run`, which starts one container and exits.
 * The daemon forks a spawner because it has threads, and a spawner's
 * requests, replies and tree workers are what a long-lived, multi-threaded
 * caller needs; a one-shot command needs none of it. Here the caller is the
 * spawner: it clones the container itself (container_create, as the spawner
 * does), waits for the app on the status pipe while passing the signals it
 * gets on to the init, reaps the init, and removes the cgroup and the state
 * directory. With RUNNER_ONCE_DETACH_CLEANUP and nothing but the cgroup to
 * remove, it returns as soon as the app's status is in, and a child forked
 * at the start removes the cgroup once the init is gone (the sweeper).
 *
 * With RUNNER_ONCE_KEEP_USERNS the caller joins the user namespace of a
 * keeper (keeper.h) for good and clones the container's other namespaces
 * in it: no newuidmap/newgidmap per start. A container with network gets
 * its own user namespace still, since pasta must join it from outside.
 *
 * With the upper in memory and no network, the state directory is only
 * the place the container's tmpfs is mounted over, in its own mount
 * namespace: nothing is written to it, so it is left in place and one
 * directory serves every such run at once (runner.h). Otherwise it holds
 * what the container's ids own (the overlay's
 * upper and work dirs), which berth's uid alone may not delete: the spawner
 * clones a tree worker into a fresh user namespace for it, which costs two
 * more setuid newuidmap/newgidmap runs. Here the removal runs in the
 * container's user namespace instead, where berth, as its owner, holds every
 * capability over the ids it maps: in the caller when it has joined the
 * kept one, else in a forked child that joins the container's own (an fd
 * of it, kept from the clone, outlives the container).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/strbuf.h"
#include "runner/cgroup.h"
#include "runner/container.h"
#include "runner/keeper.h"
#include "runner/network.h"
#include "runner/proto.h"
#include "runner/runner.h"
#include "runner/seccomp.h"
#include "runner/tree.h"
#include "common/banned.h"

/* The signals that stop the container (runner_run_once). */
static const int stopping[] = { SIGINT, SIGTERM, SIGHUP };

/* Reaps the init; *ret_status is its wait status. */
static void reap_init(int pidfd, int *ret_status)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
    if (si.si_code == CLD_EXITED)
        *ret_status = (si.si_status & 0xff) << 8;
    else
        *ret_status = si.si_status & 0x7f;
}

static void send_init(const struct container_handles *h, int sig)
{
    (void)syscall(SYS_pidfd_send_signal, h->pidfd, sig, NULL, 0);
}

/*
 * Until the app's status arrives on status_fd, or the init is gone without
 * one. The first signal of `stopping` sends SIGTERM to the init (which
 * sends it on to every process of the container), and SIGKILL follows
 * grace_ms later. *ret_app is true when the app's wait status came, in
 * *ret_status; false when the init ended without sending one. The init is
 * not reaped here.
 */
static int wait_app(const struct container_handles *h, int sfd, int grace_ms, int *ret_status,
                    bool *ret_app, struct berth_error **err)
{
    struct pollfd p[2] = { { .fd = h->status_fd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
    int status, timeout = -1;
    ssize_t n;

    for (;;) {
        int k = poll(p, 2, timeout);

        if (k < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_make(err, errno, "wait for the container");
        }
        if (k == 0) {
            send_init(h, SIGKILL);
            timeout = -1;
            continue;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;

            if (read(sfd, &si, sizeof(si)) == sizeof(si) && timeout < 0) {
                send_init(h, SIGTERM);
                timeout = grace_ms > 0 ? grace_ms : 0;
            }
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = read(h->status_fd, &status, sizeof(status));
        if (n < 0 && errno == EINTR)
            continue;
        *ret_app = n == sizeof(status);
        if (*ret_app)
            *ret_status = status;
        return 0;
    }
}

/*
 * Whether spec's state_dir is a bare mount point (see above): the upper's
 * tmpfs covers it from the start, and without network nothing (resolv.conf,
 * pasta's pid file) is written there first. Another run may be mounted
 * over it in its own namespace right now, so it is never removed:
 * removing a directory detaches whatever other namespaces mounted on it.
 */
static bool state_dir_shared(const struct runner_spec *spec)
{
    return spec->upper_in_memory && !spec->network;
}

/* Removes state_dir from inside the container's user namespace (see above). */
static int remove_state(const char *state_dir, int userns, struct berth_error **err)
{
    _cleanup_close_ int pidfd = -1, rd = -1;
    int sv[2], r;
    pid_t pid;

    /*
     * Empty when the start failed before anything was made in it; else it
     * holds the overlay's dirs (an upper on disk) or, with network,
     * resolv.conf and pasta's pid file (an upper in memory without network
     * never comes here: state_dir_shared()).
     */
    if (rmdir(state_dir) == 0 || errno == ENOENT)
        return 0;
    if (userns < 0)
        return tree_remove(state_dir, err);

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    pid = container_clone(0, &pidfd);
    if (pid == 0) {
        struct berth_error *e = NULL;

        (void)close(sv[0]);
        if (setns(userns, CLONE_NEWUSER) < 0) {
            proto_report_error(sv[1], errno, "join the container's user namespace");
            _exit(1);
        }
        if (tree_remove(state_dir, &e) < 0) {
            proto_report_error(sv[1], berth_error_code(&e), berth_error_msg(&e));
            _exit(1);
        }
        proto_report_ok(sv[1]);
        _exit(0);
    }
    r = pid < 0 ? -errno : 0;
    (void)close(sv[1]);
    rd = sv[0];
    if (r < 0)
        return berth_error_make(err, -r, "fork to remove '%s'", state_dir);
    r = proto_report_read(rd, "the state directory's removal", err);
    (void)container_reap(pidfd, true);
    return r;
}

/*
 * The container's cgroup, once its init is gone. With the init reaped, its
 * pid namespace, and so every process of the container, is gone, and
 * pasta was stopped before: the cgroup is empty and is removed at once;
 * should it still hold a process, it is killed first.
 */
static int remove_cgroup(const struct cgroup_layout *layout, const char *cgroup,
                         struct berth_error **err)
{
    int r;

    if (!cgroup || !layout || cgroup_remove(layout, cgroup, NULL) == 0)
        return 0;
    if ((r = cgroup_kill_all(layout, cgroup, err)) < 0)
        return r;
    return cgroup_remove(layout, cgroup, err);
}

/*
 * RUNNER_ONCE_DETACH_CLEANUP (runner.h): once the app's status is in, its
 * init is ending (it sent SIGKILL to every other process of the container
 * before the status), and the cgroup's removal is all that is left. A
 * child of ours, the sweeper, does it once the init is gone, and the
 * caller goes on at once: the init's own end (its mount namespace's
 * teardown waits for two RCU grace periods) is then off the command's
 * path, as bwrap's pid 1's is off bwrap's.
 *
 * The sweeper is forked as soon as the container exists (container_create's
 * on_clone), before the child's release, while an early child (in the kept
 * user namespace) builds its root on another CPU and the caller would only
 * wait. A fork after the status (copying the page tables, ~80 us
 * here) was on the command's path, and so, now and then, was one after the
 * child's report: that comes once the app has exec'd, and a short command
 * may be done by then. It waits on a socket for the caller's word: 's', the
 * caller removes the cgroup itself and the sweeper exits; 'd', or the
 * socket's end without a word (the caller died, and its container's init
 * with it), the removal is the sweeper's, and so is closing the run's
 * connection to the keeper, if it took a spare network namespace
 * (keeper.h): the keeper makes the next spare then, once the run is over. It leaves the session,
 * so a ^C meant for the next command in the terminal cannot stop it
 * half-way; it keeps only the init's pidfd, its end of the socket, that
 * connection and stderr (where a removal that fails says so), so a
 * caller reading the command's stdout sees its end with the command's.
 */
struct sweeper {
    int word_fd;                /* the caller's end of the socket; -1: no sweeper */
};

__attribute__((noreturn))
static void sweeper_main(int init_pidfd, int word_fd, int run_fd,
                         const struct cgroup_layout *layout, const char *cgroup)
{
    int keep[] = { init_pidfd, word_fd, run_fd };
    struct pollfd p = { .fd = init_pidfd, .events = POLLIN };
    struct berth_error *e = NULL;
    char word = 0;
    ssize_t n;

    (void)setsid();
    for (int fd = STDIN_FILENO; fd < STDERR_FILENO; fd++)
        if (fd != init_pidfd && fd != word_fd && fd != run_fd)
            (void)close(fd);
    proto_close_all_except(keep, sizeof(keep) / sizeof(*keep));
    do {
        n = read(word_fd, &word, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && word == 's')
        _exit(0);
    /* A pidfd polls readable once its process has exited, child of ours or not. */
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
    if (remove_cgroup(layout, cgroup, &e) < 0)
        dprintf(STDERR_FILENO, "berth container run: after the command's exit: %s\n", berth_error_msg(&e));
    /* The run is over: the keeper may make the next spare network namespace (keeper.h). */
    if (run_fd >= 0)
        (void)close(run_fd);
    _exit(0);
}

/* Forks the sweeper; without one (the fork or the socketpair failed) s->word_fd is -1. */
static void sweeper_start(struct sweeper *s, int init_pidfd, int run_fd,
                          const struct cgroup_layout *layout, const char *cgroup)
{
    int pair[2];
    pid_t pid;

    s->word_fd = -1;
    /* A socket, not a pipe: a word sent to a sweeper that died raises no SIGPIPE (MSG_NOSIGNAL). */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        return;
    pid = fork();
    if (pid == 0) {
        (void)close(pair[1]);
        sweeper_main(init_pidfd, pair[0], run_fd, layout, cgroup);
    }
    (void)close(pair[0]);
    if (pid < 0) {
        (void)close(pair[1]);
        return;
    }
    s->word_fd = pair[1];
}

/* What sweeper_on_clone() forks the sweeper with. */
struct sweeper_start_arg {
    struct sweeper *sweeper;
    int run_fd;
    struct cgroup_layout *const *layout;   /* the caller's, detected by then */
    const char *cgroup;
};

/* container_opts.on_clone: the container exists, its init builds the root. */
static void sweeper_on_clone(void *arg, int init_pidfd)
{
    const struct sweeper_start_arg *a = arg;

    sweeper_start(a->sweeper, init_pidfd, a->run_fd, *a->layout, a->cgroup);
}

/*
 * Gives the sweeper its word and lets it go: 'd' (the removal is its own)
 * or 's' (the caller's). True when the sweeper took the removal.
 */
static bool sweeper_finish(struct sweeper *s, char word)
{
    bool taken;

    if (s->word_fd < 0)
        return false;
    taken = send(s->word_fd, &word, 1, MSG_NOSIGNAL) == 1 && word == 'd';
    closep(&s->word_fd);
    return taken;
}

/*
 * Joins the kept user namespace of spec's ids; false when there is none to
 * join (no private directory for the keeper, or it could not start): the
 * container then gets a new one, which reports what is wrong if anything is.
 * *ret_spare is then the keeper's spare network namespace, now ours, or
 * -1s (none ready, or the caller had joined before).
 */
static bool join_kept_userns(const struct runner_spec *spec, struct keeper_spare *ret_spare)
{
    _cleanup_close_ int fd = -1;
    struct keeper_ref keeper = { 0 };
    bool joined;

    *ret_spare = (struct keeper_spare){ .net_fd = -1, .run_fd = -1 };
    if (keeper_in_userns(spec->uid_base, spec->gid_base, spec->id_count))
        return true;
    if (keeper_userns(spec->uid_base, spec->gid_base, spec->id_count, &fd, &keeper, NULL) < 0)
        return false;
    joined = setns(fd, CLONE_NEWUSER) == 0;
    if (joined)
        (void)keeper_claim_netns(&keeper, ret_spare);
    keeper_ref_release(&keeper);
    return joined;
}

static int run_copy(const struct runner_spec *spec, unsigned flags, int grace_ms, int *ret_status,
                    struct berth_error **err)
{
    bool kept = (flags & RUNNER_ONCE_KEEP_USERNS) && !spec->network;
    struct cgroup_layout *layout = NULL;
    struct seccomp_program prog;
    struct container_handles h;
    _cleanup_close_ int sfd = -1, userns = -1;
    struct keeper_spare spare = { .net_fd = -1, .run_fd = -1 };
    sigset_t set, old;
    struct sweeper sweeper = { .word_fd = -1 };
    struct sweeper_start_arg sweep;
    bool app = false, detached = false, detach;
    uid_t uid;
    int r, r2, init_status;

    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(stopping) / sizeof(*stopping); i++)
        sigaddset(&set, stopping[i]);
    /* Blocked before the clone: a ^C during the setup waits for the init, not lost. */
    if (sigprocmask(SIG_BLOCK, &set, &old) < 0 || (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
        r = berth_error_make(err, errno, "signalfd");
        (void)sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
    }
    seccomp_program_builtin(&prog);
    /* Taken before joining the kept namespace, which does not map it: whose cgroups. */
    uid = geteuid();
    kept = kept && join_kept_userns(spec, &spare);
    sweep = (struct sweeper_start_arg){ .sweeper = &sweeper, .run_fd = spare.run_fd,
                                        .layout = &layout, .cgroup = spec->cgroup };
    detach = (flags & RUNNER_ONCE_DETACH_CLEANUP) && state_dir_shared(spec);
    r = container_create(spec, &prog, &layout,
                         &(struct container_opts){ .in_userns = kept, .uid = uid,
                                                   .ret_userns = kept ? NULL : &userns,
                                                   .join_net = spare.net_fd >= 0,
                                                   .net_fd = spare.net_fd,
                                                   .on_clone = detach ? sweeper_on_clone : NULL,
                                                   .on_clone_arg = &sweep },
                         &h, err);
    closep(&spare.net_fd);
    /* A container that failed after its clone was removed by container_create. */
    if (r < 0)
        (void)sweeper_finish(&sweeper, 's');
    if (r == 0) {
        r = wait_app(&h, sfd, grace_ms, ret_status, &app, err);
        if (r < 0) {
            (void)sweeper_finish(&sweeper, 's');
            container_kill(h.pidfd);
            (void)container_reap(h.pidfd, true);
        } else if (sweeper_finish(&sweeper, app ? 'd' : 's')) {
            detached = true;
            closep(&spare.run_fd);    /* the sweeper's to close, once the run is over */
        } else {
            reap_init(h.pidfd, app ? &init_status : ret_status);
        }
        if (h.pasta_fd >= 0)
            network_pasta_stop(h.pasta_fd);
        closep(&h.pidfd);
        closep(&h.agent_fd);
        closep(&h.status_fd);
        closep(&h.pasta_fd);
        if (!detached) {
            r2 = remove_cgroup(layout, spec->cgroup, r < 0 ? NULL : err);
            r = r < 0 ? r : r2;
        }
    }
    /* Unless the sweeper has it: the run is over, the keeper may make the next spare. */
    keeper_spare_done(&spare);
    /* A failed start (a command not found, say) may have made the overlay's dirs already. */
    if (!state_dir_shared(spec)) {
        r2 = remove_state(spec->state_dir, userns, r < 0 ? NULL : err);
        r = r < 0 ? r : r2;
    }
    seccomp_program_release(&prog);
    cgroup_layout_free(layout);
    (void)sigprocmask(SIG_SETMASK, &old, NULL);
    return r;
}

int runner_run_once(const struct runner_spec *spec, unsigned flags, int grace_ms, int *ret_status,
                    struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf enc = STRBUF_INIT;
    struct runner_spec copy;
    struct proto_reader rd;
    int r;

    /*
     * The init overwrites its argument and environment areas (init.c), a
     * copy of ours, where the caller's spec may well point (a command's own
     * argv): the container gets a copy of the spec in the heap, the one the
     * spawner would have received.
     */
    proto_put_spec(&enc, spec);
    rd = (struct proto_reader){ .p = enc.buf, .left = enc.len };
    if (proto_get_spec(&rd, &copy) < 0)
        return berth_error_plain(err, EBADMSG, "spec of '%s' does not encode", spec->name ? spec->name : "?");
    copy.stdout_fd = spec->stdout_fd;
    copy.stderr_fd = spec->stderr_fd;
    copy.stdin_fd = spec->stdin_fd;
    copy.upper_in_memory = (flags & RUNNER_ONCE_UPPER_IN_MEMORY) != 0;
    r = run_copy(&copy, flags, grace_ms, ret_status, err);
    proto_spec_release(&copy);
    return r;
}
