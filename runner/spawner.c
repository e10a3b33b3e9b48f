/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The spawner process (spawner.h). The daemon is multi-threaded, and only a
 * single-threaded process may enter a new user namespace, so
 * runner_spawner_start() forks this one process before any thread exists.
 * It compiles the seccomp profile once, then serves requests one at a time
 * on a SOCK_SEQPACKET socketpair (proto.h): create a container, reap one and
 * remove its cgroup, remove a tree in a user namespace. It is the parent of
 * every container init, reaps them (SIGCHLD through a signalfd) and removes
 * their cgroups.
 *
 * Lifetime: the spawner has PDEATHSIG on the daemon and each init has it on
 * the spawner, so if the daemon dies every container dies with it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/proto.h"
#include "runner/remove.h"
#include "runner/spawner.h"
#include "common/banned.h"

struct tracked {
    pid_t pid;
    char *cgroup;   /* NULL: none */
};

struct spawner {
    int sock;
    struct seccomp_program prog;
    struct cgroup_layout *layout;
    struct tracked *children;
    size_t n_children, alloc_children;
};

static void untrack(struct spawner *s, pid_t pid)
{
    for (size_t i = 0; i < s->n_children; i++) {
        struct tracked *t = &s->children[i];

        if (t->pid != pid)
            continue;
        /*
         * The init is gone, and with it the whole pid namespace, so the
         * cgroup holds nothing more of this container; kill_all is for
         * anything that still escaped into it.
         */
        if (t->cgroup && s->layout) {
            struct berth_error *e = NULL;

            (void)cgroup_kill_all(s->layout, t->cgroup, &e);
            berth_error_release(&e);
            (void)cgroup_remove(s->layout, t->cgroup, &e);
            berth_error_release(&e);
        }
        free(t->cgroup);
        s->children[i] = s->children[--s->n_children];
        return;
    }
}

static void reap_all(struct spawner *s)
{
    pid_t pid;

    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        untrack(s, pid);
}

static int reply(struct spawner *s, int code, const char *msg, pid_t pid, const int *fds, size_t n)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    proto_put_u64(&sb, (uint64_t)code);
    proto_put_str(&sb, msg);
    proto_put_u64(&sb, (uint64_t)pid);
    return proto_send(s->sock, sb.buf, sb.len, fds, n);
}

static void handle_spawn(struct spawner *s, struct proto_reader *rd, int *fds, size_t n_fds)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct container_handles h;
    struct runner_spec spec;
    int r;

    r = proto_get_spec(rd, &spec);
    if (r < 0 || n_fds != 2) {
        if (r == 0)
            proto_spec_release(&spec);
        (void)reply(s, EBADMSG, "malformed spawn request", 0, NULL, 0);
        return;
    }
    spec.stdout_fd = fds[0];
    spec.stderr_fd = fds[1];
    r = container_create(&spec, &s->prog, &s->layout, &h, &err);
    if (r < 0) {
        (void)reply(s, -r, berth_error_msg(&err), 0, NULL, 0);
    } else {
        int out[3] = { h.agent_fd, h.status_fd, h.pidfd };

        if (s->n_children == s->alloc_children) {
            s->alloc_children = s->alloc_children ? 2 * s->alloc_children : 16;
            s->children = xrealloc(s->children, s->alloc_children * sizeof(*s->children));
        }
        s->children[s->n_children++] = (struct tracked){
            .pid = h.pid, .cgroup = spec.cgroup ? xstrdup(spec.cgroup) : NULL,
        };
        if (reply(s, 0, NULL, h.pid, out, 3) < 0)
            (void)kill(h.pid, SIGKILL);
        for (size_t i = 0; i < 3; i++)
            (void)close(out[i]);
    }
    proto_spec_release(&spec);
}

static void handle_reap(struct spawner *s, struct proto_reader *rd)
{
    pid_t pid = (pid_t)proto_get_u64(rd);
    bool known = false;

    for (size_t i = 0; i < s->n_children; i++)
        known |= s->children[i].pid == pid;
    /* The daemon asks only once the init's pidfd said it exited. */
    if (!rd->bad && known) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        untrack(s, pid);
    }
    (void)reply(s, rd->bad ? EBADMSG : 0, NULL, 0, NULL, 0);
}

static void handle_remove(struct spawner *s, struct proto_reader *rd)
{
    _cleanup_error_ struct berth_error *err = NULL;
    const char *path = proto_get_str(rd);
    unsigned long ub = proto_get_u64(rd), gb = proto_get_u64(rd), n = proto_get_u64(rd);
    int r;

    if (rd->bad || !path) {
        (void)reply(s, EBADMSG, "malformed remove request", 0, NULL, 0);
        return;
    }
    r = remove_tree_userns(path, ub, gb, n, &err);
    (void)reply(s, r < 0 ? -r : 0, r < 0 ? berth_error_msg(&err) : NULL, 0, NULL, 0);
}

/* On the daemon's hang-up: take every container down and clean up after it. */
static void shutdown_children(struct spawner *s)
{
    for (size_t i = 0; i < s->n_children; i++)
        (void)kill(s->children[i].pid, SIGKILL);
    while (s->n_children) {
        pid_t pid = waitpid(-1, NULL, 0);

        if (pid < 0 && errno != EINTR)
            break;
        if (pid > 0)
            untrack(s, pid);
    }
}

void spawner_main(int sock, pid_t parent)
{
    struct spawner s = { .sock = sock };
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *buf = xmalloc(PROTO_MAX_MSG);
    sigset_t chld;
    int sfd;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(1);
    (void)prctl(PR_SET_NAME, "berth-spawner", 0, 0, 0);
    /* The daemon's fds (listening sockets, logs) must not live on in here. */
    proto_close_all_except(&sock, 1);
    (void)signal(SIGPIPE, SIG_IGN);
    /*
     * A terminal's ^C or hangup, or a service manager signalling the whole
     * cgroup, is for the daemon: it stops its containers through us first
     * and then lets us go by closing the socket (and PDEATHSIG covers its
     * death). Each container child resets these dispositions.
     */
    (void)signal(SIGINT, SIG_IGN);
    (void)signal(SIGTERM, SIG_IGN);
    (void)signal(SIGHUP, SIG_IGN);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0 || (sfd = signalfd(-1, &chld, SFD_CLOEXEC)) < 0) {
        proto_report_error(sock, errno, "signalfd in the spawner");
        _exit(1);
    }
    if (seccomp_program_build(&s.prog, &err) < 0) {
        proto_report_error(sock, berth_error_code(&err), berth_error_msg(&err));
        _exit(1);
    }
    proto_report_ok(sock);

    for (;;) {
        struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
        struct proto_reader rd;
        int fds[PROTO_MAX_FDS];
        size_t n_fds = 0;
        uint64_t type;
        ssize_t n;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;

            if (read(sfd, &si, sizeof(si)) < 0 && errno != EAGAIN && errno != EINTR)
                break;
            reap_all(&s);
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = proto_recv(sock, buf, PROTO_MAX_MSG, fds, PROTO_MAX_FDS, &n_fds);
        if (n == 0 || (n < 0 && n != -EMSGSIZE))
            break;
        if (n < 0) {
            (void)reply(&s, EMSGSIZE, "request too large", 0, NULL, 0);
            continue;
        }
        rd = (struct proto_reader){ .p = buf, .left = (size_t)n };
        type = proto_get_u64(&rd);
        if (type == REQ_SPAWN)
            handle_spawn(&s, &rd, fds, n_fds);
        else if (type == REQ_REAP && n_fds == 0)
            handle_reap(&s, &rd);
        else if (type == REQ_REMOVE && n_fds == 0)
            handle_remove(&s, &rd);
        else
            (void)reply(&s, EBADMSG, "unknown request", 0, NULL, 0);
        for (size_t i = 0; i < n_fds; i++)
            (void)close(fds[i]);
        reap_all(&s);
    }
    shutdown_children(&s);
    _exit(0);
}
