/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tree workers (tree.h): the spawner's side of runner_remove_tree(),
 * runner_seal_tree() and runner_tree_usage(). tree_worker_start() clones a
 * child into the kept user namespace of the request's id mapping, or,
 * when there is none yet, into a new one whose maps it writes with the
 * setuid helpers (container_map_ids), and releases it; that takes a few
 * milliseconds and is all the spawner waits for. The worker runs its job
 * and sends the result, one proto_reply, on the socket the daemon passed
 * with the request, then exits; the spawner reaps it through its pidfd. A
 * request may name trees to remove after its job (then_remove), and a seal
 * trees to measure after it, so that a build's seal, last measure and
 * removals cost one worker. If the worker dies without a result (killed at
 * the spawner's shutdown, or by PDEATHSIG when the spawner dies), its end
 * of that socket closes and the daemon sees end of file instead.
 *
 * The setuid helpers were most of a worker's cost (~15 of 18 ms on a slow
 * host; a static app's deploy ran nine workers). So the spawner keeps the
 * first user namespace it maps for an id mapping, a worker's or a
 * container's (userns-kept.h), and later workers for the mapping are
 * plain clones that join it with setns().
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runner/container.h"
#include "runner/tree.h"
#include "runner/userns-kept.h"
#include "common/banned.h"

static const char *job_name(enum proto_request type)
{
    return type == REQ_REMOVE ? "remove" : type == REQ_SEAL ? "seal" : "measure";
}

/*
 * "/" and "x/" have no parent-plus-name split, and "/" is never a tenant's
 * tree. *ret_n (if ret_n) is how many there are.
 */
static int check_paths(enum proto_request type, const char *const *paths, size_t *ret_n,
                       struct berth_error **err)
{
    size_t n = 0;

    for (; paths[n]; n++) {
        const char *p = paths[n];

        if (p[0] != '/' || !strcmp(p, "/") || p[strlen(p) - 1] == '/')
            return berth_error_plain(err, EINVAL, "refusing to %s '%s'", job_name(type), p);
    }
    if (ret_n)
        *ret_n = n;
    return 0;
}

static int check_request(enum proto_request type, const struct proto_tree_req *req,
                         struct berth_error **err)
{
    size_t n = 0;
    int r;

    if (type != REQ_REMOVE && type != REQ_SEAL && type != REQ_USAGE)
        return berth_error_plain(err, EBADMSG, "unknown tree request %d", (int)type);
    if ((r = check_paths(type, req->paths, &n, err)) < 0 ||
        (r = check_paths(REQ_REMOVE, req->then_remove, NULL, err)) < 0)
        return r;
    if (type == REQ_REMOVE && n != 1)
        return berth_error_plain(err, EINVAL, "a %s request names exactly one tree",
                                 job_name(type));
    if (type == REQ_SEAL && n < 1)
        return berth_error_plain(err, EINVAL, "a %s request names its tree", job_name(type));
    if (req->id_count == 0)
        return berth_error_plain(err, EINVAL, "a %s request with no ids to map", job_name(type));
    return 0;
}

/* ------------------------------------------------------------------------
 * the worker
 */

/*
 * The worker: in a new user namespace once the spawner has written the
 * maps, or first joining the kept one `userns` (when not -1).
 */
__attribute__((noreturn))
static void worker_main(enum proto_request type, const struct proto_tree_req *req, int userns,
                        int sync_fd, int reply_fd, pid_t spawner)
{
    int keep[] = { sync_fd, reply_fd };
    struct berth_error *e = NULL;
    uint64_t bytes = 0;
    sigset_t none;
    char go;
    int r;

    if (userns >= 0 && setns(userns, CLONE_NEWUSER) < 0) {
        (void)proto_send_reply(reply_fd, errno, "join the tenant's user namespace", 0, 0);
        _exit(1);
    }
    proto_close_all_except(keep, 2);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != spawner)
        _exit(1);
    (void)prctl(PR_SET_NAME, "berth-tree", 0, 0, 0);
    /* No signal the spawner might block is blocked here; its SIG_IGN for SIGPIPE is fine. */
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    if (read(sync_fd, &go, 1) != 1)
        _exit(1);
    if (type == REQ_REMOVE)
        r = tree_remove(req->paths[0], &e);
    else if (type == REQ_SEAL)
        r = tree_seal(req->paths[0], &e);
    else
        r = tree_usage(req->paths, &bytes, &e);
    /* A seal that names more trees measures them all, the sealed one too, once it is done. */
    if (r == 0 && type == REQ_SEAL && req->paths[1])
        r = tree_usage(req->paths, &bytes, &e);
    /* The removals run whatever the job found; the job's failure is the one told. */
    for (size_t i = 0; req->then_remove[i]; i++) {
        struct berth_error *re = NULL;
        int rr = tree_remove(req->then_remove[i], &re);

        if (rr < 0 && r == 0) {
            r = rr;
            e = re;
        } else {
            berth_error_release(&re);
        }
    }
    (void)proto_send_reply(reply_fd, r < 0 ? -r : 0, r < 0 ? berth_error_msg(&e) : NULL, bytes, 0);
    _exit(r < 0 ? 1 : 0);
}

int tree_worker_start(enum proto_request type, const struct proto_tree_req *req, int reply_fd,
                      int *ret_pidfd, struct berth_error **err)
{
    _cleanup_close_ int sync_p = -1, pidfd = -1;
    pid_t spawner = getpid(), pid;
    int sv[2], userns, r;

    if ((r = check_request(type, req, err)) < 0)
        return r;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    sync_p = sv[0];
    userns = userns_kept_find(req->uid_base, req->gid_base, req->id_count);
    pid = container_clone(userns < 0 ? CLONE_NEWUSER : 0, &pidfd);
    if (pid == 0)
        worker_main(type, req, userns, sv[1], reply_fd, spawner);
    r = pid < 0 ? -errno : 0;
    (void)close(sv[1]);
    if (r < 0)
        return berth_error_make(err, -r, "clone a user namespace to %s '%s'", job_name(type),
                                req->paths[0] ? req->paths[0] : "");
    if (userns < 0) {
        r = container_map_ids(pid, req->uid_base, req->gid_base, req->id_count, err);
        if (r == 0)
            userns_kept_add_pid(req->uid_base, req->gid_base, req->id_count, pid, pidfd);
    }
    if (r == 0 && send(sync_p, "g", 1, MSG_NOSIGNAL) != 1)
        r = berth_error_make(err, errno, "release the worker to %s '%s'", job_name(type),
                             req->paths[0] ? req->paths[0] : "");
    if (r < 0) {
        container_kill(pidfd);
        (void)container_reap(pidfd, true);
        return r;
    }
    *ret_pidfd = TAKE_FD(pidfd);
    return 0;
}
