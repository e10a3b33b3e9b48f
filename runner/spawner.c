/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The spawner process (spawner.h). The daemon is multi-threaded, and only a
 * single-threaded process may enter a new user namespace, so
 * runner_spawner_start() forks this one process before any thread exists;
 * the child execs berth-spawner (spawner-exe.c), a small static program,
 * so that its own forks copy little (client.c says why).
 * It takes the seccomp profile compiled at build time, then serves requests one at a time
 * on a SOCK_SEQPACKET socketpair (proto.h): create a container, collect a
 * reaped one's usage, start a tree worker (remove, seal, usage; tree.h).
 * Every request is answered in milliseconds: the tree walks, which can take
 * seconds, run in their workers, which answer the daemon themselves.
 *
 * It is the parent of every container init, of their pastas and of the
 * tree workers, and reaps them all, each through its pidfd, which sits in
 * an epoll set that the loop polls beside the daemon's socket. When an init
 * is reaped it reads the cgroup's usage, which waits in the table for the
 * daemon's REQ_REAP, and kills that container's pasta; once pasta is
 * reaped too, it removes the cgroup.
 *
 * Children are named by pidfd, never by pid, and the spawner never waits
 * for "any child" (no waitpid(-1)). It used to: on SIGCHLD it reaped every
 * child that had exited and looked the pid that waitpid() returned up in
 * its table, and it sent kills, and REQ_REAP's blocking waitpid(), to the
 * pids in the table. A pid names a process only until it is reaped: a
 * crashed instance's init, reaped early by that sweep, freed its number
 * for the next clone, so the scheme held only as long as every path
 * cleared its copy of the pid at exactly the right reap, and any that kept
 * one (a late or repeated REQ_REAP, a kill of "its" pasta) reached a newer
 * container with the same pid. And REQ_REAP trusted the daemon to ask only
 * after the exit: one that came early made the single-threaded spawner
 * wait in waitpid() for as long as that container ran, every spawn with
 * it. A pidfd names one process for as long as it is open: a signal
 * through it after the exit fails with ESRCH, a wait returns at once, and
 * no other child can answer for it. REQ_REAP never blocks: it reaps the
 * init only if it has exited, and says EBUSY otherwise. REQ_RELEASE lets
 * the daemon go on once it heard a container's status, without waiting
 * for the init's exit (handle_release says what that wait is).
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
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/proto.h"
#include "runner/spawner.h"
#include "runner/tree.h"
#include "runner/userns-kept.h"
#include "common/banned.h"

/*
 * A child the spawner must reap. Containers are named by an id of the
 * spawner's own, not by pid (see above). An entry goes once nothing of it
 * is left to reap, clean up or report.
 */
struct tracked {
    bool worker;                  /* a tree worker (tree.h); else a container */
    int pidfd;                    /* of the init or the worker; -1 once reaped */
    int pasta_fd;                 /* pidfd of pasta; -1: no network, or pasta reaped */
    uint64_t id;                  /* containers: the daemon's name for it */
    char *cgroup;                 /* NULL: none, or already removed */
    bool collected;               /* the daemon had the REQ_REAP or REQ_RELEASE answer */
    struct runner_usage usage;    /* read when the init was reaped */
};

struct spawner {
    int sock;
    int epfd;                     /* the pidfds of every child not reaped yet */
    struct seccomp_program prog;
    struct cgroup_layout *layout;
    struct tracked *children;
    size_t n_children, alloc_children;
    uint64_t next_id;
};

/* Puts a child's pidfd in the epoll set, so that its exit wakes the loop. */
static int watch(struct spawner *s, int pidfd)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = pidfd };

    return pidfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, pidfd, &ev) == 0 ? 0 : -errno;
}

/*
 * A reaped child's pidfd leaves the set and closes. Out of the set first: a
 * container's pidfd has a copy in the daemon, which keeps it in the set
 * after our close, readable for good.
 */
static void forget(struct spawner *s, int *pidfd)
{
    if (*pidfd < 0)
        return;
    (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, *pidfd, NULL);
    (void)close(*pidfd);
    *pidfd = -1;
}

/*
 * Takes a new child (whose pidfds t now owns) into the table. If its
 * pidfds cannot be watched, it is killed and reaped at once instead:
 * -errno, and nothing is left of it but its cgroup, which the caller
 * removes.
 */
static int track(struct spawner *s, struct tracked t, struct tracked **ret)
{
    int r;

    if ((r = watch(s, t.pidfd)) < 0 || (r = watch(s, t.pasta_fd)) < 0) {
        container_kill(t.pidfd);
        container_kill(t.pasta_fd);
        (void)container_reap(t.pidfd, true);
        (void)container_reap(t.pasta_fd, true);
        forget(s, &t.pidfd);
        forget(s, &t.pasta_fd);
        return r;
    }
    if (s->n_children == s->alloc_children) {
        s->alloc_children = s->alloc_children ? 2 * s->alloc_children : 16;
        s->children = xrealloc(s->children, s->alloc_children * sizeof(*s->children));
    }
    s->children[s->n_children] = t;
    *ret = &s->children[s->n_children++];
    return 0;
}

/* Drops `t` (moving the last entry into its place) when it is done with. */
static void maybe_untrack(struct spawner *s, struct tracked *t)
{
    if (t->pidfd >= 0 || t->pasta_fd >= 0 || (!t->worker && !t->collected))
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
 * and does not notice. pasta gets SIGKILL now and is reaped when its pidfd
 * says it exited: its exit takes 20-40 ms, the kernel tearing down its tap
 * device, too long to stall every other request for. The usage is final
 * already and read now; the cgroup goes once pasta, which runs in it, is
 * gone too.
 */
static void init_gone(struct spawner *s, struct tracked *t)
{
    struct berth_error *e = NULL;

    forget(s, &t->pidfd);
    container_kill(t->pasta_fd);
    if (t->cgroup && s->layout && cgroup_usage(s->layout, t->cgroup, &t->usage, &e) < 0)
        t->usage = (struct runner_usage){ 0 };
    berth_error_release(&e);
    if (t->pasta_fd < 0)
        cgroup_done(s, t);
}

/* pasta is reaped; its container's cgroup goes if the init is gone too. */
static void pasta_gone(struct spawner *s, struct tracked *t)
{
    forget(s, &t->pasta_fd);
    if (t->pidfd < 0)
        cgroup_done(s, t);
}

/*
 * The epoll set said the child of `pidfd` exited: an init, a worker, or a
 * pasta (before its init: pasta died of itself, and the container runs on
 * without network). An fd that no entry holds any more is an event of a
 * child handled already; a child not exited yet (never, for a pidfd that
 * polled readable) stays.
 */
static void child_exited(struct spawner *s, int pidfd)
{
    for (size_t i = 0; i < s->n_children; i++) {
        struct tracked *t = &s->children[i];

        if (t->pidfd != pidfd && t->pasta_fd != pidfd)
            continue;
        if (!container_reap(pidfd, false))
            return;
        if (t->pasta_fd == pidfd)
            pasta_gone(s, t);
        else if (t->worker)
            forget(s, &t->pidfd);
        else
            init_gone(s, t);
        maybe_untrack(s, t);
        return;
    }
}

static void reap_exited(struct spawner *s)
{
    struct epoll_event evs[64];
    int n;

    while ((n = epoll_wait(s->epfd, evs, 64, 0)) > 0) {
        for (int i = 0; i < n; i++)
            child_exited(s, evs[i].data.fd);
        if (n < 64)
            return;
    }
}

/*
 * Before a spawn into `cgroup`: a gone container whose pasta is still
 * dying, or one the daemon released whose init is still exiting, may hold
 * the same cgroup, which its cleanup would otherwise remove from under the
 * new one. Rare (instance names differ, and so do a build's steps'), so
 * waiting is fine: the wait is for an init whose app has exited and a
 * pasta SIGKILLed when its init was reaped. Backwards, so that an entry
 * untracked (the last moved into its place) is one looked at already.
 */
static void settle_cgroup(struct spawner *s, const char *cgroup)
{
    for (size_t i = s->n_children; cgroup && i-- > 0;) {
        struct tracked *t = &s->children[i];

        if (t->worker || !t->cgroup || strcmp(t->cgroup, cgroup) || (t->pidfd >= 0 && !t->collected))
            continue;
        if (t->pidfd >= 0) {
            (void)container_reap(t->pidfd, true);
            init_gone(s, t);
        }
        if (t->pasta_fd >= 0) {
            (void)container_reap(t->pasta_fd, true);
            pasta_gone(s, t);
        }
        maybe_untrack(s, t);
    }
}

static int reply(struct spawner *s, int code, const char *msg, uint64_t v0, uint64_t v1,
                 const int *fds, size_t n)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    proto_put_reply(&sb, code, msg, v0, v1);
    return proto_send(s->sock, sb.buf, sb.len, fds, n);
}

/*
 * A created container goes into the table, and the daemon gets its agent
 * and status fds and a copy of the init's pidfd (ours stays in the table).
 */
static void spawned(struct spawner *s, const struct runner_spec *spec, struct container_handles *h)
{
    int out[3] = { h->agent_fd, h->status_fd, h->pidfd };
    struct tracked *t;
    int r;

    r = track(s, (struct tracked){
        .pidfd = h->pidfd, .pasta_fd = h->pasta_fd, .id = ++s->next_id,
        .cgroup = spec->cgroup ? xstrdup(spec->cgroup) : NULL,
    }, &t);
    if (r < 0) {
        if (spec->cgroup && s->layout) {
            struct tracked gone = { .cgroup = xstrdup(spec->cgroup) };

            cgroup_done(s, &gone);
        }
        (void)reply(s, -r, "watch the new container's pidfd", 0, 0, NULL, 0);
    } else if (reply(s, 0, NULL, (uint64_t)h->pid, t->id, out, 3) < 0) {
        /*
         * Unheard, the container would run unknown to the daemon: end it.
         * No REQ_REAP will come for it, so its entry goes when it is reaped.
         */
        container_kill(t->pidfd);
        t->collected = true;
    }
    (void)close(h->agent_fd);
    (void)close(h->status_fd);
}

/*
 * A container without network joins the kept user namespace of its id
 * mapping, or, if there is none yet, has its own kept for the next ones
 * (userns-kept.h): no newuidmap and newgidmap on a start after the first.
 */
static int create_in_kept_userns(struct spawner *s, const struct runner_spec *spec,
                                 struct container_handles *h, struct berth_error **err)
{
    int kept = spec->network ? -1 : userns_kept_find(spec->uid_base, spec->gid_base, spec->id_count);
    int own = -1, r;

    r = container_create(spec, &s->prog, &s->layout,
                         &(struct container_opts){
                             .uid = geteuid(), .join_userns = kept >= 0, .userns_fd = kept,
                             .ret_userns = spec->network || kept >= 0 ? NULL : &own,
                         }, h, err);
    if (r == 0 && own >= 0)
        userns_kept_add_fd(spec->uid_base, spec->gid_base, spec->id_count, own);
    else if (own >= 0)
        (void)close(own);
    return r;
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
    r = create_in_kept_userns(s, &spec, &h, &err);
    if (r == 0)
        spawned(s, &spec, &h);
    else
        (void)reply(s, -r, berth_error_msg(&err), 0, 0, NULL, 0);
    proto_spec_release(&spec);
}

/* The container a REQ_REAP or REQ_RELEASE names; NULL, answered already, if none. */
static struct tracked *requested_container(struct spawner *s, struct proto_reader *rd)
{
    uint64_t id = proto_get_u64(rd);

    for (size_t i = 0; !rd->bad && !rd->left && i < s->n_children; i++)
        if (!s->children[i].worker && !s->children[i].collected && s->children[i].id == id)
            return &s->children[i];
    (void)reply(s, rd->bad || rd->left ? EBADMSG : ESRCH,
                rd->bad || rd->left ? "malformed request" : "no such container", 0, 0, NULL, 0);
    return NULL;
}

/* The daemon has the container's usage and asks no more about it. */
static void collected(struct spawner *s, struct tracked *t)
{
    struct runner_usage u = t->usage;

    t->collected = true;
    maybe_untrack(s, t);
    (void)reply(s, 0, NULL, u.memory_peak_bytes, u.oom_kills, NULL, 0);
}

static void handle_reap(struct spawner *s, struct proto_reader *rd)
{
    struct tracked *t = requested_container(s, rd);

    if (!t)
        return;
    /*
     * The daemon asks only once the init's pidfd said it exited, when the
     * init is a zombie at least; never wait on one that runs.
     */
    if (t->pidfd >= 0) {
        if (!container_reap(t->pidfd, false)) {
            (void)reply(s, EBUSY, "the container is still running", 0, 0, NULL, 0);
            return;
        }
        init_gone(s, t);
    }
    collected(s, t);
}

/*
 * The daemon heard the container's status, so its app has exited and every
 * other process of it has a SIGKILL pending (init.c sends it before the
 * status); the init may still be exiting, for as long as the kernel takes
 * to tear its namespaces down (4-17 ms a build step here). The usage is
 * read now: no process of the container returns to user space any more,
 * so only a dying one's last system call could still add to its peak. The
 * init is reaped, and its cgroup removed, when its pidfd says it exited, as
 * for any container the daemon no longer asks about; a spawn into the same
 * cgroup before then waits for it (settle_cgroup). The daemon's word that
 * it heard the status is not checked: a release of a container that runs
 * would only read its usage too early, and the container would run on
 * until it exits or the daemon goes.
 */
static void handle_release(struct spawner *s, struct proto_reader *rd)
{
    struct tracked *t = requested_container(s, rd);
    struct berth_error *e = NULL;

    if (!t)
        return;
    if (t->pidfd >= 0 && container_reap(t->pidfd, false)) {
        init_gone(s, t);
    } else if (t->pidfd >= 0 && t->cgroup && s->layout &&
               cgroup_usage(s->layout, t->cgroup, &t->usage, &e) < 0) {
        t->usage = (struct runner_usage){ 0 };
        berth_error_release(&e);
    }
    collected(s, t);
}

/* REQ_REMOVE, REQ_SEAL, REQ_USAGE: start the worker; it answers on fds[0] itself. */
static void handle_tree(struct spawner *s, enum proto_request type, struct proto_reader *rd,
                        const int *fds, size_t n_fds)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct proto_tree_req req;
    struct tracked *t;
    int pidfd, r;

    if (n_fds != 1 || proto_get_tree_req(rd, &req) < 0) {
        (void)reply(s, EBADMSG, "malformed tree request", 0, 0, NULL, 0);
        return;
    }
    r = tree_worker_start(type, &req, fds[0], &pidfd, &err);
    proto_tree_req_release(&req);
    if (r < 0) {
        (void)reply(s, -r, berth_error_msg(&err), 0, 0, NULL, 0);
        return;
    }
    r = track(s, (struct tracked){ .worker = true, .pidfd = pidfd, .pasta_fd = -1 }, &t);
    if (r < 0)
        (void)reply(s, -r, "watch the tree worker's pidfd", 0, 0, NULL, 0);
    else
        (void)reply(s, 0, NULL, 0, 0, NULL, 0);
}

/*
 * On the daemon's hang-up: take every container, pasta and worker down,
 * and clean up. Each wait is for one child killed just before.
 */
static void shutdown_children(struct spawner *s)
{
    for (size_t i = 0; i < s->n_children; i++) {
        container_kill(s->children[i].pidfd);
        container_kill(s->children[i].pasta_fd);
    }
    while (s->n_children) {
        struct tracked *t = &s->children[s->n_children - 1];

        if (t->pidfd >= 0) {
            (void)container_reap(t->pidfd, true);
            if (t->worker)
                forget(s, &t->pidfd);
            else
                init_gone(s, t);
        }
        if (t->pasta_fd >= 0) {
            (void)container_reap(t->pasta_fd, true);
            pasta_gone(s, t);
        }
        t->collected = true;
        maybe_untrack(s, t);
    }
}

void spawner_main(int sock, pid_t parent)
{
    struct spawner s = { .sock = sock };
    _cleanup_free_ char *buf = xmalloc(PROTO_MAX_MSG);

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
    container_raise_fd_limit();
    if ((s.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        proto_report_error(sock, errno, "epoll for the spawner's children");
        _exit(1);
    }
    seccomp_program_builtin(&s.prog);
    proto_report_ok(sock);

    for (;;) {
        struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = s.epfd, .events = POLLIN } };
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
        if (p[1].revents & POLLIN)
            reap_exited(&s);
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
        else if (type == REQ_RELEASE && n_fds == 0)
            handle_release(&s, &rd);
        else if (type == REQ_REMOVE || type == REQ_SEAL || type == REQ_USAGE)
            handle_tree(&s, (enum proto_request)type, &rd, fds, n_fds);
        else
            (void)reply(&s, EBADMSG, "unknown request", 0, 0, NULL, 0);
        for (size_t i = 0; i < n_fds; i++)
            (void)close(fds[i]);
    }
    shutdown_children(&s);
    _exit(0);
}
