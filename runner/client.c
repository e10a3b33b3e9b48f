/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's side of the runner (runner.h): starting the spawner
 * (spawner.c) and talking to it, and the handles of running containers.
 *
 * Thread safety: one mutex serialises each request/response pair on the
 * spawner socket, and every such pair is short: a tree operation (remove,
 * seal, usage) holds it only until the spawner says its worker started, then
 * waits for the worker's result on a socket of its own, so a removal that
 * takes seconds never delays another thread's spawn. Each container has
 * three locks of its own: one held only while a channel is handed to its
 * port agent (a non-blocking send), one for runner_connect()'s private
 * channel, and one for its exit status; so a long runner_wait() never holds
 * up a runner_connect(), a slow runner_connect() never holds up
 * runner_agent_open(), and concurrent runner_connect() calls on one
 * container take turns, each bounded by the agent's connect timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/proto.h"
#include "runner/runner.h"
#include "runner/spawner.h"
#include "common/banned.h"

/*
 * How long runner_connect() waits for the init's answer. The init bounds
 * its connect by RUNNER_AGENT_CONNECT_TIMEOUT_MS and answers ETIMEDOUT
 * then; the margin is for an init that is slow to run (a loaded host, a
 * frozen cgroup), whose late answer the next call skips.
 */
#define AGENT_REPLY_TIMEOUT_MS (RUNNER_AGENT_CONNECT_TIMEOUT_MS + 1000)

struct runner {
    int sock;
    int pidfd;                    /* the spawner's, for runner_free()'s wait */
    pthread_mutex_t lock;
};

struct runner_container {
    struct runner *r;
    pid_t pid;
    uint64_t id;                  /* the spawner's name for it (REQ_REAP, REQ_RELEASE) */
    int pidfd;
    int agent_fd;                 /* the agent socket: channels go to the init over it */
    int status_fd;
    uint16_t port;
    pthread_mutex_t agent_lock;   /* held only for a send on agent_fd */
    /*
     * runner_connect()'s own channel, opened on first use and again after
     * it broke, and the id of its latest request; connect_lock covers both
     * and is held for one request and its reply.
     */
    pthread_mutex_t connect_lock;
    int connect_ch;
    uint64_t connect_seq;
    pthread_mutex_t status_lock;
    bool have_status;
    int status;
    bool collected;               /* reaped (runner_stop) or released (runner_release) */
    struct runner_usage usage;    /* valid once collected */
};

#if !defined(BERTH_SPAWNER_BUILT) || !defined(BERTH_SPAWNER_INSTALLED)
#error "runner/meson.build defines BERTH_SPAWNER_BUILT and BERTH_SPAWNER_INSTALLED"
#endif

/*
 * In the forked child: becomes berth-spawner (runner/spawner-exe.c), found
 * beside this program (berth-core, installed or built), else in the build
 * tree, else installed. A fork copies the whole address space, and the
 * daemon's holds some forty shared libraries (~220 mappings), which every
 * fork of the spawner's (a container's intermediate and init, a tree
 * worker) copied again: a fork, exit and wait took ~2 ms here against ~1
 * for a small static program. Returns only when there is no such program or
 * the exec failed (a test program linking runner/ alone, a copy of
 * berth-core without it): the child is then the spawner itself.
 */
static void spawner_exec(int sock, pid_t parent)
{
    char path[PATH_MAX], fd_arg[16], parent_arg[16];
    const char *prog = path;

    if (!program_beside_self("berth-spawner", path, sizeof(path)))
        prog = access(BERTH_SPAWNER_BUILT, X_OK) == 0 ? BERTH_SPAWNER_BUILT
                                                     : BERTH_SPAWNER_INSTALLED;
    (void)snprintf(fd_arg, sizeof(fd_arg), "%d", sock);
    (void)snprintf(parent_arg, sizeof(parent_arg), "%d", (int)parent);
    if (fcntl(sock, F_SETFD, 0) < 0)
        return;
    execv(prog, (char *const[]){ (char *)"berth-spawner", fd_arg, parent_arg, NULL });
    (void)fcntl(sock, F_SETFD, FD_CLOEXEC);
}

int runner_spawner_start(struct runner **ret, struct berth_error **err)
{
    pid_t parent = getpid(), pid;
    int sv[2], r, pidfd = -1;
    struct runner *rn;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair for the spawner");
    pid = fork();
    if (pid < 0) {
        r = -errno;
        (void)close(sv[0]);
        (void)close(sv[1]);
        return berth_error_make(err, -r, "fork the spawner");
    }
    if (pid == 0) {
        (void)close(sv[0]);
        spawner_exec(sv[1], parent);
        spawner_main(sv[1], parent);
    }
    (void)close(sv[1]);
    /*
     * Not reaped yet, so the pid still names our child here; later waits go
     * through the pidfd, which names it for good (container.h).
     */
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0)
        r = berth_error_make(err, errno, "pidfd_open the spawner");
    else
        r = proto_report_read(sv[0], "the spawner", err);
    if (r < 0) {
        (void)close(sv[0]);
        (void)kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        closep(&pidfd);
        return r;
    }
    rn = xcalloc(1, sizeof(*rn));
    rn->sock = sv[0];
    rn->pidfd = pidfd;
    pthread_mutex_init(&rn->lock, NULL);
    *ret = rn;
    return 0;
}

void runner_free(struct runner *r)
{
    if (!r)
        return;
    /* The spawner takes its containers down when the socket closes. */
    (void)close(r->sock);
    (void)container_reap(r->pidfd, true);
    (void)close(r->pidfd);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/*
 * One request and its reply. The reply's code/message become the return
 * value and *err; its two values land in ret_v (may be NULL), the fds it
 * carried in rfds.
 */
static int request(struct runner *r, const struct strbuf *req, const int *fds, size_t n_fds,
                   uint64_t ret_v[2], int *rfds, size_t max_rfds, size_t *n_rfds,
                   struct berth_error **err)
{
    char buf[8192];
    struct proto_reply rep;
    size_t got = 0;
    ssize_t n;
    int s;

    pthread_mutex_lock(&r->lock);
    s = proto_send(r->sock, req->buf, req->len, fds, n_fds);
    n = s < 0 ? s : proto_recv(r->sock, buf, sizeof(buf), rfds, max_rfds, &got);
    pthread_mutex_unlock(&r->lock);
    if (s < 0)
        return berth_error_make(err, -s, "send a request to the spawner");
    if (n < 0)
        return berth_error_make(err, (int)-n, "read the spawner's reply");
    if (n == 0)
        return berth_error_plain(err, EPIPE, "the spawner has exited");
    if (proto_get_reply(buf, (size_t)n, &rep) < 0) {
        for (size_t i = 0; i < got; i++)
            (void)close(rfds[i]);
        return berth_error_plain(err, EBADMSG, "malformed reply from the spawner");
    }
    if (rep.code) {
        for (size_t i = 0; i < got; i++)
            (void)close(rfds[i]);
        return berth_error_plain(err, rep.code, "%s", rep.msg[0] ? rep.msg : "spawner request failed");
    }
    if (ret_v) {
        ret_v[0] = rep.v[0];
        ret_v[1] = rep.v[1];
    }
    if (n_rfds)
        *n_rfds = got;
    return 0;
}

int runner_spawn(struct runner *r, const struct runner_spec *spec,
                 struct runner_container **ret, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf req = STRBUF_INIT;
    /* The spawner tells a stdin from the count of fds: 3 with one, 2 without. */
    int fds[3] = { spec->stdout_fd, spec->stderr_fd, spec->stdin_fd };
    size_t n_fds = spec->stdin_fd > 0 ? 3 : 2;
    int rfds[3];
    size_t n_rfds = 0;
    struct runner_container *c;
    uint64_t v[2];
    int ret_code;

    if (spec->stdout_fd < 0 || spec->stderr_fd < 0)
        return berth_error_plain(err, EBADF, "spawn '%s': stdout_fd and stderr_fd are required",
                                 spec->name ? spec->name : "?");
    proto_put_u64(&req, REQ_SPAWN);
    proto_put_spec(&req, spec);
    if (req.len > PROTO_MAX_MSG)
        return berth_error_plain(err, E2BIG, "spawn '%s': the spec takes %zu bytes, at most %d",
                                 spec->name ? spec->name : "?", req.len, PROTO_MAX_MSG);
    ret_code = request(r, &req, fds, n_fds, v, rfds, 3, &n_rfds, err);
    if (ret_code < 0)
        return ret_code;
    if (n_rfds != 3) {
        for (size_t i = 0; i < n_rfds; i++)
            (void)close(rfds[i]);
        return berth_error_plain(err, EBADMSG, "spawner reply without the container's fds");
    }
    c = xcalloc(1, sizeof(*c));
    c->r = r;
    c->pid = (pid_t)v[0];
    c->id = v[1];
    c->agent_fd = rfds[0];
    c->status_fd = rfds[1];
    c->pidfd = rfds[2];
    c->port = spec->port;
    c->connect_ch = -1;
    pthread_mutex_init(&c->agent_lock, NULL);
    pthread_mutex_init(&c->connect_lock, NULL);
    pthread_mutex_init(&c->status_lock, NULL);
    *ret = c;
    return 0;
}

pid_t runner_container_pid(const struct runner_container *c)
{
    return c->pid;
}

/*
 * The pidfd the spawner got from CLONE_PIDFD when it cloned the init. A
 * pidfd polls readable once its process has exited, whether or not the
 * poller is the parent (the daemon is not: the spawner is), and stays so
 * after the spawner reaped it. That implies the status is there to read:
 * the kernel closes an exiting task's files before it marks the task
 * exited (exit_files() before exit_notify() in do_exit()); the status
 * pipe's write end is the init's alone (the spawner closes its copy right
 * after the clone, and the init's children, which may hold it until they
 * exec, are in its pid namespace); and the namespace's other processes are
 * reaped before the init counts as exited. So by then status_fd holds the
 * status, or end of file.
 */
int runner_container_exit_fd(const struct runner_container *c)
{
    return c->pidfd;
}

static int poll_one(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    struct timespec start, now;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int left = timeout_ms;

        if (timeout_ms >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            left = el >= timeout_ms ? 0 : timeout_ms - (int)el;
        }
        r = poll(&p, 1, left);
        if (r >= 0 || errno != EINTR)
            return r < 0 ? -errno : r;
    }
}

/* ------------------------------------------------------------------------
 * the port agent
 */

int runner_agent_open(struct runner_container *c, int *ret_fd, struct berth_error **err)
{
    const char msg = PROTO_AGENT_CHANNEL;
    _cleanup_close_ int mine = -1, theirs = -1;
    int sv[2], r = -ECONNREFUSED;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair for a channel to container %d", c->pid);
    mine = sv[0];
    theirs = sv[1];
    pthread_mutex_lock(&c->agent_lock);
    if (c->agent_fd >= 0)
        r = proto_sendf(c->agent_fd, MSG_DONTWAIT, &msg, 1, &theirs, 1);
    pthread_mutex_unlock(&c->agent_lock);
    /*
     * theirs closes here: the init's end now stays open in the init only,
     * so the channel ends when the init drops it or exits.
     */
    if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN || r == -ECONNREFUSED)
        return berth_error_plain(err, ECONNREFUSED, "container %d has exited", c->pid);
    if (r == -EAGAIN)
        return berth_error_plain(err, EAGAIN, "the port agent of container %d is busy", c->pid);
    if (r < 0)
        return berth_error_make(err, -r, "hand a channel to the port agent of container %d", c->pid);
    *ret_fd = TAKE_FD(mine);
    return 0;
}

int runner_agent_request(int channel_fd, uint64_t id)
{
    return proto_sendf(channel_fd, MSG_DONTWAIT, &id, sizeof(id), NULL, 0);
}

int runner_agent_reply(int channel_fd, uint64_t *ret_id, int *ret_sock, int *ret_errno)
{
    struct runner_agent_answer a;
    int r;

    while ((r = proto_agent_recv_answer(channel_fd, &a)) == 1 && a.is_stock)
        for (unsigned i = 0; i < a.n_stock; i++)
            (void)close(a.stock[i]);
    if (r == 1) {
        *ret_id = a.id;
        *ret_sock = a.sock;
        *ret_errno = a.error;
    }
    return r;
}

int runner_agent_ask_stock(int channel_fd, unsigned n)
{
    uint32_t want = n;

    if (n == 0 || n > RUNNER_AGENT_STOCK_MAX)
        return -EINVAL;
    return proto_sendf(channel_fd, MSG_DONTWAIT, &want, sizeof(want), NULL, 0);
}

int runner_agent_answer(int channel_fd, struct runner_agent_answer *ret)
{
    return proto_agent_recv_answer(channel_fd, ret);
}

/*
 * Waits for the reply to request `id` on ch, closing the sockets of
 * replies to earlier requests (answers that came after their caller gave
 * up). 1 with *ret_sock or *ret_errno, 0 when the channel ended, -errno.
 */
static int await_reply(int ch, uint64_t id, int *ret_sock, int *ret_errno)
{
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct timespec now;
        uint64_t got;
        long el;
        int r;

        r = runner_agent_reply(ch, &got, ret_sock, ret_errno);
        if (r == 1 && got != id) {
            if (*ret_sock >= 0)
                (void)close(*ret_sock);
            continue;
        }
        if (r != -EAGAIN)
            return r;
        clock_gettime(CLOCK_MONOTONIC, &now);
        el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (el >= AGENT_REPLY_TIMEOUT_MS)
            return -ETIMEDOUT;
        r = poll_one(ch, AGENT_REPLY_TIMEOUT_MS - (int)el);
        if (r < 0)
            return r;
    }
}

/*
 * One request on runner_connect()'s channel, under connect_lock. A
 * channel that ended (the init refused it at its cap, or is exiting) or
 * broke is replaced once; a second end means the container is gone.
 */
static int connect_locked(struct runner_container *c, int *ret_fd, struct berth_error **err)
{
    int sock = -1, error = 0, r = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->connect_ch < 0 && (r = runner_agent_open(c, &c->connect_ch, err)) < 0)
            return r;
        r = runner_agent_request(c->connect_ch, ++c->connect_seq);
        if (r == 0)
            r = await_reply(c->connect_ch, c->connect_seq, &sock, &error);
        if (r == 1)
            break;
        /* A reply that comes after the wait timed out is skipped by the next call. */
        if (r == -ETIMEDOUT || r == -EAGAIN)
            break;
        /* -1 too (closep() leaves the number), or the next try would reuse it. */
        closep(&c->connect_ch);
        c->connect_ch = -1;
    }
    if (r == 1 && error == 0) {
        /* runner_connect()'s callers wait on the socket (runner.h); the agent's are non-blocking. */
        if (fcntl(sock, F_SETFL, 0) < 0) {
            r = -errno;
            (void)close(sock);
            return berth_error_make(err, -r, "connect to 127.0.0.1:%u in container %d", c->port, c->pid);
        }
        *ret_fd = sock;
        return 0;
    }
    /*
     * The channel ended (r == 0), or it was closed under the request (an
     * agent out of room closes a new channel at once; which the send or
     * the read sees first is a race): either way the agent is gone for us.
     */
    if (r == 0 || r == -EPIPE || r == -ECONNRESET)
        return berth_error_plain(err, ECONNREFUSED, "container %d: port agent gone", c->pid);
    return berth_error_make(err, r == 1 ? error : -r, "connect to 127.0.0.1:%u in container %d",
                            c->port, c->pid);
}

int runner_connect(struct runner_container *c, int *ret_fd, struct berth_error **err)
{
    int r;

    if (c->port == 0)
        return berth_error_plain(err, EINVAL, "container %d has no port to connect to", c->pid);
    pthread_mutex_lock(&c->connect_lock);
    r = connect_locked(c, ret_fd, err);
    pthread_mutex_unlock(&c->connect_lock);
    return r;
}

int runner_wait(struct runner_container *c, int timeout_ms, int *ret_status,
                struct berth_error **err)
{
    int r = 0, status;
    ssize_t n;

    pthread_mutex_lock(&c->status_lock);
    if (!c->have_status) {
        r = poll_one(c->status_fd, timeout_ms);
        if (r == 0) {
            r = -ETIMEDOUT;
        } else if (r > 0) {
            do {
                n = read(c->status_fd, &status, sizeof(status));
            } while (n < 0 && errno == EINTR);
            if (n == sizeof(status)) {
                c->status = status;
            } else {
                /*
                 * The init died without a report: it was SIGKILLed (stop,
                 * OOM, the spawner's death), and the kernel killed the
                 * whole pid namespace with it, the app included.
                 */
                c->status = SIGKILL;
            }
            c->have_status = true;
            r = 0;
        }
    }
    if (r == 0)
        *ret_status = c->status;
    pthread_mutex_unlock(&c->status_lock);
    if (r == -ETIMEDOUT)
        return -ETIMEDOUT;
    if (r < 0)
        return berth_error_make(err, -r, "wait for container %d", c->pid);
    return 0;
}

/*
 * REQ_REAP: reaped (and its pasta and cgroup gone) by the spawner, once the
 * pidfd says it exited. REQ_RELEASE: let go once its status was heard, to
 * be reaped by the spawner alone. The reply carries the usage read from the
 * cgroup.
 */
static int collect(struct runner_container *c, enum proto_request type, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf req = STRBUF_INIT;
    uint64_t v[2];
    int r;

    if (c->collected)
        return 0;
    proto_put_u64(&req, type);
    proto_put_u64(&req, c->id);
    r = request(c->r, &req, NULL, 0, v, NULL, 0, NULL, err);
    if (r == 0) {
        c->usage = (struct runner_usage){ .memory_peak_bytes = v[0], .oom_kills = v[1] };
        c->collected = true;
    }
    return r;
}

int runner_container_usage(const struct runner_container *c, struct runner_usage *ret,
                           struct berth_error **err)
{
    if (!c->collected)
        return berth_error_plain(err, EAGAIN, "container %d has not been reaped or released yet",
                                 c->pid);
    *ret = c->usage;
    return 0;
}

int runner_release(struct runner_container *c, struct berth_error **err)
{
    bool heard;

    pthread_mutex_lock(&c->status_lock);
    heard = c->have_status;
    pthread_mutex_unlock(&c->status_lock);
    if (!heard)
        return berth_error_plain(err, EBUSY, "container %d has not reported its exit", c->pid);
    return collect(c, REQ_RELEASE, err);
}

int runner_stop(struct runner_container *c, int grace_ms, struct berth_error **err)
{
    int r;

    if (poll_one(c->pidfd, 0) == 0) {
        if (syscall(SYS_pidfd_send_signal, c->pidfd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
            return berth_error_make(err, errno, "SIGTERM to container %d", c->pid);
        r = poll_one(c->pidfd, grace_ms < 0 ? 0 : grace_ms);
        if (r == 0) {
            if (syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
                return berth_error_make(err, errno, "SIGKILL to container %d", c->pid);
            r = poll_one(c->pidfd, -1);
        }
        if (r < 0)
            return berth_error_make(err, -r, "wait for container %d to stop", c->pid);
    }
    return collect(c, REQ_REAP, err);
}

void runner_container_free(struct runner_container *c)
{
    struct berth_error *e = NULL;

    if (!c)
        return;
    if (!c->collected) {
        /* Contract says it has exited; make it so rather than leak a container. */
        if (poll_one(c->pidfd, 0) == 0) {
            (void)syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
            (void)poll_one(c->pidfd, -1);
        }
        (void)collect(c, REQ_REAP, &e);
        berth_error_release(&e);
    }
    closep(&c->pidfd);
    closep(&c->agent_fd);
    closep(&c->connect_ch);
    closep(&c->status_fd);
    pthread_mutex_destroy(&c->agent_lock);
    pthread_mutex_destroy(&c->connect_lock);
    pthread_mutex_destroy(&c->status_lock);
    free(c);
}

/* ------------------------------------------------------------------------
 * tree operations
 */

/*
 * Sends a tree request with one end of a fresh socketpair; the spawner's
 * reply only says the worker started, and the worker's result arrives on
 * our end, which this thread waits on without the runner's lock. If the
 * worker dies without a result, its end closes: end of file.
 */
static int tree_request(struct runner *r, enum proto_request type, const char *const *paths,
                        const char *const *then_remove, unsigned long uid_base, unsigned long gid_base,
                        unsigned long id_count, uint64_t *ret_value, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf req = STRBUF_INIT;
    _cleanup_close_ int mine = -1;
    char buf[4096];
    struct proto_reply rep;
    size_t n_fds;
    ssize_t n;
    int sv[2], ret;

    proto_put_tree_req(&req, type, paths, then_remove, uid_base, gid_base, id_count);
    if (req.len > PROTO_MAX_MSG)
        return berth_error_plain(err, E2BIG, "tree request of %zu bytes, at most %d", req.len,
                                 PROTO_MAX_MSG);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair for a tree request");
    mine = sv[0];
    ret = request(r, &req, &sv[1], 1, NULL, NULL, 0, NULL, err);
    /* Now only the worker holds the other end. */
    (void)close(sv[1]);
    if (ret < 0)
        return ret;
    n = proto_recv(mine, buf, sizeof(buf), NULL, 0, &n_fds);
    if (n < 0)
        return berth_error_make(err, (int)-n, "read the tree worker's result");
    if (n == 0)
        return berth_error_plain(err, ECHILD, "the tree worker exited without a result");
    if (proto_get_reply(buf, (size_t)n, &rep) < 0)
        return berth_error_plain(err, EBADMSG, "malformed result from the tree worker");
    if (rep.code)
        return berth_error_plain(err, rep.code, "%s", rep.msg[0] ? rep.msg : "tree worker failed");
    if (ret_value)
        *ret_value = rep.v[0];
    return 0;
}

int runner_remove_tree(struct runner *r, const char *path, unsigned long uid_base,
                       unsigned long gid_base, unsigned long id_count, struct berth_error **err)
{
    const char *const paths[] = { path, NULL };

    return tree_request(r, REQ_REMOVE, paths, NULL, uid_base, gid_base, id_count, NULL, err);
}

int runner_seal_tree(struct runner *r, const char *path, const char *const *measure,
                     const char *const *then_remove, unsigned long uid_base, unsigned long gid_base,
                     unsigned long id_count, uint64_t *ret_bytes, struct berth_error **err)
{
    size_t n = 0;

    while (measure && measure[n])
        n++;
    _cleanup_free_ const char **paths = xcalloc(n + 2, sizeof(*paths));
    paths[0] = path;
    for (size_t i = 0; i < n; i++)
        paths[i + 1] = measure[i];
    /* One path: the seal alone; more: the measure of them all after it (worker.c). */
    return tree_request(r, REQ_SEAL, paths, then_remove, uid_base, gid_base, id_count,
                        n > 0 ? ret_bytes : NULL, err);
}

int runner_tree_usage(struct runner *r, const char *const *paths, const char *const *then_remove,
                      unsigned long uid_base, unsigned long gid_base, unsigned long id_count,
                      uint64_t *ret_bytes, struct berth_error **err)
{
    return tree_request(r, REQ_USAGE, paths, then_remove, uid_base, gid_base, id_count, ret_bytes,
                        err);
}
