/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The spawner process (spawner.h). The daemon is multi-threaded, and only a
 * single-threaded process may enter a new user namespace, so
 * runner_spawner_start() forks this one process before any thread exists.
 * It compiles the seccomp profile once, then serves requests one at a time
 * on a SOCK_SEQPACKET socketpair (proto.h): create a container, collect a
 * reaped one's usage, start a tree worker (remove, seal, usage; tree.h).
 * Every request is answered in milliseconds: the tree walks, which can take
 * seconds, run in their workers, which answer the daemon themselves.
 *
 * It is the parent of every container init, of their pastas and of the
 * tree workers, and reaps them all (SIGCHLD through a signalfd). When an
 * init is reaped it reads the cgroup's usage, which waits in the table for
 * the daemon's REQ_REAP, and kills that container's pasta; once pasta is
 * reaped too, it removes the cgroup.
 *
 * Lifetime: the spawner has PDEATHSIG on the daemon, and each init, pasta
 * and worker has it on the spawner, so if the daemon dies every container
 * dies with it.
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
#include "runner/spawner.h"
#include "runner/tree.h"
#include "common/banned.h"

/*
 * A child the spawner must reap. Containers are named by an id of the
 * spawner's own, not by pid: after the init is reaped its pid may be reused
 * by a new child before the daemon has collected the usage of the old one.
 * An entry goes once nothing of it is left to reap, clean up or report.
 */
struct tracked {
    bool worker;                  /* a tree worker (tree.h); else a container */
    pid_t pid;                    /* the init or the worker; 0 once reaped */
    pid_t pasta;                  /* 0: no network, or pasta reaped */
    uint64_t id;                  /* containers: the daemon's name for it */
    char *cgroup;                 /* NULL: none, or already removed */
    bool collected;               /* the daemon had the REQ_REAP answer */
    struct runner_usage usage;    /* read when the init was reaped */
};

struct spawner {
    int sock;
    struct seccomp_program prog;
    struct cgroup_layout *layout;
    struct tracked *children;
    size_t n_children, alloc_children;
    uint64_t next_id;
};

static struct tracked *track(struct spawner *s, struct tracked t)
{
    if (s->n_children == s->alloc_children) {
        s->alloc_children = s->alloc_children ? 2 * s->alloc_children : 16;
        s->children = xrealloc(s->children, s->alloc_children * sizeof(*s->children));
    }
    s->children[s->n_children] = t;
    return &s->children[s->n_children++];
}

/* Drops `t` (moving the last entry into its place) when it is done with. */
static void maybe_untrack(struct spawner *s, struct tracked *t)
{
    if (t->pid || t->pasta || (!t->worker && !t->collected))
        return;
    free(t->cgroup);
    *t = s->children[--s->n_children];
}

/* The container's cgroup, once no process of it is left: strays killed, then removed. */
static void cgroup_done(struct spawner *s, struct tracked *t)
{
    struct berth_error *e = NULL;

    if (!t->cgroup || !s->layout)
        return;
    (void)cgroup_kill_all(s->layout, t->cgroup, &e);
    berth_error_release(&e);
    (void)cgroup_remove(s->layout, t->cgroup, &e);
    berth_error_release(&e);
    free(t->cgroup);
    t->cgroup = NULL;
}

/*
 * The init is reaped, and with it its whole pid namespace is gone: nothing
 * of the container runs any more but pasta, which is outside that namespace
 * and does not notice. pasta gets SIGKILL now and is reaped on its own
 * SIGCHLD (only ever a pid not reaped yet, so never a reused one): its exit
 * takes 20-40 ms, the kernel tearing down its tap device, too long to stall
 * every other request for. The usage is final already and read now; the
 * cgroup goes once pasta, which runs in it, is gone too.
 */
static void init_gone(struct spawner *s, struct tracked *t)
{
    struct berth_error *e = NULL;

    t->pid = 0;
    if (t->pasta)
        (void)kill(t->pasta, SIGKILL);
    if (t->cgroup && s->layout && cgroup_usage(s->layout, t->cgroup, &t->usage, &e) < 0)
        t->usage = (struct runner_usage){ 0 };
    berth_error_release(&e);
    if (!t->pasta)
        cgroup_done(s, t);
}

/* A pid waitpid() returned: an init, a worker, or a pasta. */
static void reaped(struct spawner *s, pid_t pid)
{
    for (size_t i = 0; i < s->n_children; i++) {
        struct tracked *t = &s->children[i];

        if (t->pid == pid) {
            if (t->worker)
                t->pid = 0;
            else
                init_gone(s, t);
        } else if (t->pasta == pid) {
            /* Before its init, pasta died of itself: the container runs on without network. */
            t->pasta = 0;
            if (!t->pid)
                cgroup_done(s, t);
        } else {
            continue;
        }
        maybe_untrack(s, t);
        return;
    }
}

static void reap_all(struct spawner *s)
{
    pid_t pid;

    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        reaped(s, pid);
}

/*
 * Before a spawn into `cgroup`: a gone container whose pasta is still dying
 * may hold the same cgroup, which its cleanup would otherwise remove from
 * under the new one. Rare (instance names differ), so waiting is fine.
 */
static void settle_cgroup(struct spawner *s, const char *cgroup)
{
    for (size_t i = 0; cgroup && i < s->n_children; i++) {
        struct tracked *t = &s->children[i];

        if (t->worker || t->pid || !t->pasta || !t->cgroup || strcmp(t->cgroup, cgroup))
            continue;
        while (waitpid(t->pasta, NULL, 0) < 0 && errno == EINTR)
            ;
        t->pasta = 0;
        cgroup_done(s, t);
        maybe_untrack(s, t);
        return;
    }
}

static int reply(struct spawner *s, int code, const char *msg, uint64_t v0, uint64_t v1,
                 const int *fds, size_t n)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    proto_put_reply(&sb, code, msg, v0, v1);
    return proto_send(s->sock, sb.buf, sb.len, fds, n);
}

static void handle_spawn(struct spawner *s, struct proto_reader *rd, int *fds, size_t n_fds)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct container_handles h;
    struct runner_spec spec;
    int r;

    r = proto_get_spec(rd, &spec);
    if (r < 0 || (n_fds != 2 && n_fds != 3)) {
        if (r == 0)
            proto_spec_release(&spec);
        (void)reply(s, EBADMSG, "malformed spawn request", 0, 0, NULL, 0);
        return;
    }
    spec.stdout_fd = fds[0];
    spec.stderr_fd = fds[1];
    spec.stdin_fd = n_fds == 3 ? fds[2] : -1;
    settle_cgroup(s, spec.cgroup);
    r = container_create(&spec, &s->prog, &s->layout, &h, &err);
    if (r < 0) {
        (void)reply(s, -r, berth_error_msg(&err), 0, 0, NULL, 0);
    } else {
        int out[3] = { h.agent_fd, h.status_fd, h.pidfd };
        struct tracked *t = track(s, (struct tracked){
            .pid = h.pid, .id = ++s->next_id, .pasta = h.pasta,
            .cgroup = spec.cgroup ? xstrdup(spec.cgroup) : NULL,
        });

        /*
         * Unheard, the container would run unknown to the daemon: end it.
         * No REQ_REAP will come for it, so its entry goes when it is reaped.
         */
        if (reply(s, 0, NULL, (uint64_t)h.pid, t->id, out, 3) < 0) {
            (void)kill(h.pid, SIGKILL);
            t->collected = true;
        }
        for (size_t i = 0; i < 3; i++)
            (void)close(out[i]);
    }
    proto_spec_release(&spec);
}

static void handle_reap(struct spawner *s, struct proto_reader *rd)
{
    uint64_t id = proto_get_u64(rd);
    struct tracked *t = NULL;
    struct runner_usage u;

    for (size_t i = 0; !rd->bad && i < s->n_children && !t; i++)
        if (!s->children[i].worker && !s->children[i].collected && s->children[i].id == id)
            t = &s->children[i];
    if (rd->bad || rd->left || !t) {
        (void)reply(s, rd->bad || rd->left ? EBADMSG : ESRCH,
                    rd->bad || rd->left ? "malformed reap request" : "no such container", 0, 0,
                    NULL, 0);
        return;
    }
    /* The daemon asks only once the init's pidfd said it exited: this does not block. */
    if (t->pid) {
        while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        init_gone(s, t);
    }
    u = t->usage;
    t->collected = true;
    maybe_untrack(s, t);
    (void)reply(s, 0, NULL, u.memory_peak_bytes, u.oom_kills, NULL, 0);
}

/* REQ_REMOVE, REQ_SEAL, REQ_USAGE: start the worker; it answers on fds[0] itself. */
static void handle_tree(struct spawner *s, enum proto_request type, struct proto_reader *rd,
                        const int *fds, size_t n_fds)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct proto_tree_req req;
    pid_t pid;
    int r;

    if (n_fds != 1 || proto_get_tree_req(rd, &req) < 0) {
        (void)reply(s, EBADMSG, "malformed tree request", 0, 0, NULL, 0);
        return;
    }
    r = tree_worker_start(type, &req, fds[0], &pid, &err);
    proto_tree_req_release(&req);
    if (r < 0) {
        (void)reply(s, -r, berth_error_msg(&err), 0, 0, NULL, 0);
        return;
    }
    (void)track(s, (struct tracked){ .worker = true, .pid = pid });
    (void)reply(s, 0, NULL, 0, 0, NULL, 0);
}

/* On the daemon's hang-up: take every container, pasta and worker down, and clean up. */
static void shutdown_children(struct spawner *s)
{
    for (;;) {
        bool live = false;
        pid_t pid;

        for (size_t i = 0; i < s->n_children; i++) {
            struct tracked *t = &s->children[i];

            if (t->pid)
                (void)kill(t->pid, SIGKILL);
            if (t->pasta)
                (void)kill(t->pasta, SIGKILL);
            live |= t->pid || t->pasta;
        }
        if (!live)
            return;
        pid = waitpid(-1, NULL, 0);
        if (pid < 0 && errno != EINTR)
            return;
        if (pid > 0)
            reaped(s, pid);
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
            (void)reply(&s, EMSGSIZE, "request too large", 0, 0, NULL, 0);
            continue;
        }
        rd = (struct proto_reader){ .p = buf, .left = (size_t)n };
        type = proto_get_u64(&rd);
        if (type == REQ_SPAWN)
            handle_spawn(&s, &rd, fds, n_fds);
        else if (type == REQ_REAP && n_fds == 0)
            handle_reap(&s, &rd);
        else if (type == REQ_REMOVE || type == REQ_SEAL || type == REQ_USAGE)
            handle_tree(&s, (enum proto_request)type, &rd, fds, n_fds);
        else
            (void)reply(&s, EBADMSG, "unknown request", 0, 0, NULL, 0);
        for (size_t i = 0; i < n_fds; i++)
            (void)close(fds[i]);
        reap_all(&s);
    }
    shutdown_children(&s);
    _exit(0);
}
