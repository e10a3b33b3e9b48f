/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: creating one container, run by the spawner (a
 * single-threaded process, see spawner.c). container_create() clones the
 * child into new user, mount, pid, net, uts and ipc namespaces, maps its ids
 * with newuidmap/newgidmap, puts it in its cgroup, starts pasta for it when
 * it has network (network.h), releases it, and waits for its setup report;
 * the child builds its root (mounts.h) and becomes the container's init
 * (init.h).
 */
#ifndef BERTH_RUNNER_CONTAINER_H
#define BERTH_RUNNER_CONTAINER_H

#include <sys/types.h>

#include "common/error.h"
#include "runner/cgroup.h"
#include "runner/runner.h"
#include "runner/seccomp.h"

/* The container uid berth's stack names "app" (etc/passwd of the host stack). */
#define RUNNER_APP_UID 1000

struct container_handles {
    pid_t pid;        /* the init, a child of the spawner */
    int pidfd;
    int agent_fd;     /* the daemon's end of the port-agent socket */
    int status_fd;    /* read end: the app's wait status, 4 bytes, then EOF */
    pid_t pasta;      /* spec->network: pasta, also a child of the spawner, which must
                       * kill and reap it once the init is gone; else 0 */
};

/*
 * *layout is detected on first use of a cgroup and kept by the caller.
 * prog may be NULL only in builds without the seccomp profile.
 */
int container_create(const struct runner_spec *spec, const struct seccomp_program *prog,
                     struct cgroup_layout **layout, struct container_handles *ret,
                     struct berth_error **err);

/*
 * Writes the id maps of `pid` (container 0..count-1 -> base..) with the
 * setuid newgidmap and newuidmap, which check berth's /etc/subuid and
 * /etc/subgid entries.
 */
int container_map_ids(pid_t pid, unsigned long uid_base, unsigned long gid_base,
                      unsigned long count, struct berth_error **err);

/* Clones a child into a new user namespace with fork semantics (0 in the child). */
pid_t container_clone(unsigned long flags, int *ret_pidfd);

#endif
