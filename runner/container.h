/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: creating one container, run by the spawner (a
 * single-threaded process, see spawner.c) or by runner_run_once().
 * container_create() clones the child into new user, mount, pid, net, uts
 * and ipc namespaces (or joins a kept user namespace, userns-kept.h),
 * maps its ids with newuidmap/newgidmap unless it joined, makes its
 * cgroup (the child moves itself in), starts pasta for it when
 * it has network (network.h), releases it, and waits for its setup report;
 * the child builds its root (mounts.h) and becomes the container's init
 * (init.h).
 */
#ifndef BERTH_RUNNER_CONTAINER_H
#define BERTH_RUNNER_CONTAINER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "runner/cgroup.h"
#include "runner/runner.h"
#include "runner/seccomp.h"

/* The container uid berth's stack names "app" (etc/passwd of the host stack). */
#define RUNNER_APP_UID 1000

struct container_handles {
    pid_t pid;        /* the init, a child of the spawner: for messages only */
    int pidfd;        /* the init's; the spawner reaps it through this */
    int agent_fd;     /* the daemon's end of the port-agent socket */
    int status_fd;    /* read end: the app's wait status, 4 bytes, then EOF */
    int pasta_fd;     /* spec->network: pidfd of pasta, also a child of the spawner, which
                       * must kill and reap it once the init is gone; else -1 */
};

/* How container_create() runs (the spawner: in_userns false, uid its own). */
struct container_opts {
    /*
     * The caller has joined the user namespace the container is to use
     * (runner_run_once's kept one, keeper.h), which maps spec's ids: no new
     * one, no id maps to write. Else a new one is made and mapped.
     */
    bool in_userns;
    /*
     * Without in_userns, and for a container without network only:
     * join_userns set, userns_fd is a kept user namespace that maps spec's
     * ids (userns-kept.h), which the child joins instead of making and
     * mapping one. setns() into a user namespace needs a process that can
     * go on in it, so a short-lived intermediate joins and clones the
     * child with CLONE_PARENT: the child is the caller's, as without it.
     * The caller keeps userns_fd.
     */
    bool join_userns;
    int userns_fd;
    /*
     * The caller's effective uid in the initial user namespace: whose
     * delegated cgroups *layout are (in a kept namespace geteuid() reads
     * the overflow id).
     */
    uid_t uid;
    /*
     * Without in_userns: NULL, or where an fd of the new user namespace
     * goes (O_CLOEXEC, the caller's), opened while the child was still
     * berth's: once the init is container root and non-dumpable, /proc no
     * longer hands it out. It keeps the namespace, and the caller's
     * capabilities over the ids it maps, after the container is gone
     * (runner_run_once's cleanup); it is handed out on failure too (-1 if
     * the clone did not happen), for the same cleanup.
     */
    int *ret_userns;
    /*
     * With in_userns and no network only: join_net set, net_fd is a fresh
     * network namespace owned by that user namespace (a keeper's spare,
     * keeper.h), which the child joins instead of making one: making a
     * network namespace is the dearest part of the clone (~0.45 ms here).
     * The caller keeps net_fd and closes it after.
     */
    bool join_net;
    int net_fd;
    /*
     * NULL, or called once the child exists (its pidfd open; its cgroup,
     * if spec has one, made and *layout detected), before it is released: what the caller
     * does there overlaps the child's own setup, which an early child
     * (a joined user namespace, no network) is already doing. Not called
     * when a step before it fails (the clone, the cgroup, pasta);
     * container_create() may still fail after it, which the caller must
     * then undo.
     */
    void (*on_clone)(void *arg, int pidfd);
    void *on_clone_arg;
};

/*
 * *layout is detected on first use of a cgroup (after the clone, while the
 * child works) and kept by the caller. prog may be NULL only in builds
 * without the seccomp profile.
 */
int container_create(const struct runner_spec *spec, const struct seccomp_program *prog,
                     struct cgroup_layout **layout, const struct container_opts *opts,
                     struct container_handles *ret, struct berth_error **err);

/*
 * Writes the id maps of `pid` (container 0..count-1 -> base..) with the
 * setuid newgidmap and newuidmap, which check berth's /etc/subuid and
 * /etc/subgid entries.
 */
int container_map_ids(pid_t pid, unsigned long uid_base, unsigned long gid_base,
                      unsigned long count, struct berth_error **err);

/*
 * Clones a child with fork semantics (0 in the child), into the namespaces
 * of `flags`; *ret_pidfd is its pidfd.
 *
 * The spawner names every child it must reap by its pidfd, never by pid: it
 * reaps with waitid(P_PIDFD) and signals with pidfd_send_signal(), and never
 * waits for "any child". A pid names a process only until it is reaped,
 * after which a new child can get the same number, so a wait or a kill by
 * pid could reach the wrong process (and a blocking wait could block on a
 * container that has nothing to do with the request); a pidfd names one
 * process for as long as it is open, and once that process is gone a
 * signal through it fails with ESRCH and a wait returns at once.
 */
pid_t container_clone(unsigned long flags, int *ret_pidfd);
/*
 * The spawner keeps a pidfd of every child it has not reaped, one or two
 * per container (init, pasta): more than the usual soft limit of 1024 fds
 * allows on a dense host. It raises its soft limit to the hard one (at
 * most SPAWNER_MAX_FDS) once at start; container_clone() puts the old one
 * back in every child, so inits, apps, pastas and workers see the daemon's.
 */
#define SPAWNER_MAX_FDS (1u << 20)
void container_raise_fd_limit(void);
/* SIGKILL to the child of pidfd; nothing once it has exited. */
void container_kill(int pidfd);
/*
 * Reaps the child of pidfd: 1 when it is reaped (now, or was before), 0
 * while it runs (only with `block` false; with true, waits for its exit).
 */
int container_reap(int pidfd, bool block);

#endif
