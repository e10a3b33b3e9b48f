/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: cgroups for tenants, apps and instances
 * (ARCHITECTURE.md, Tenants and isolation; reference/ISOLATION.md §3,
 * LIBRARIES.md §6). `berth setup` (root, once) creates a `berth-<user>` cgroup
 * below the cgroup it runs in for each controller and hands it to that user
 * (runner_cgroup_delegate() in runner.h); afterwards the berth user creates
 * <tenant>/<app>/<instance> below it and writes their limits. Both cgroup v2
 * (delegated subtree) and v1 (hybrid hosts: memory, pids, cpu) are handled.
 * At the end of a container's life its usage is read before the cgroup goes.
 * Limits are enforced or the call fails; never silently dropped.
 */
#ifndef BERTH_RUNNER_CGROUP_H
#define BERTH_RUNNER_CGROUP_H

#include <sys/types.h>

#include "common/error.h"
#include "runner/runner.h"

struct cgroup_layout;

/* Finds berth's delegated cgroups for this process; fails with a message naming `berth setup` if missing or not writable. */
int cgroup_layout_detect(struct cgroup_layout **ret, struct berth_error **err);
/*
 * The same for the delegated cgroups of `uid` (its effective uid in the
 * initial user namespace), for a caller in a user namespace that does not
 * map it, where geteuid() reads the overflow id (runner_run_once).
 */
int cgroup_layout_detect_uid(uid_t uid, struct cgroup_layout **ret, struct berth_error **err);
void cgroup_layout_free(struct cgroup_layout *l);
/* Creates <berth>/<relpath> (and missing parents) in every controller and writes `limits` on the leaf. */
int cgroup_create(const struct cgroup_layout *l, const char *relpath, const struct runner_limits *limits,
                  struct berth_error **err);
/*
 * Moves `pid` into <berth>/<relpath> in every controller. On v1 the writer's
 * euid must match the task's uid, so call it while the child still runs as
 * berth's uid (right after clone, before it switches ids).
 */
int cgroup_enter(const struct cgroup_layout *l, const char *relpath, pid_t pid, struct berth_error **err);
/*
 * The other way in, for a process that moves itself: opens, for every
 * controller of <berth>/<relpath>, the file a process writes "0" to in
 * order to enter (O_WRONLY, O_CLOEXEC; at most CGROUP_MAX_ENTER, *ret_n of
 * them in fds). On v1 that is `tasks`: a single-threaded process moving
 * itself there takes no global lock, while a write to cgroup.procs
 * (cgroup_enter) takes the cgroup threadgroup lock for writing, which
 * waits for an RCU grace period: ~0.3 ms on an idle host, 5-20 ms on a
 * busy one, per container start. On v2, cgroup.procs.
 */
#define CGROUP_MAX_ENTER 3
int cgroup_open_enter(const struct cgroup_layout *l, const char *relpath, int *fds, size_t *ret_n,
                      struct berth_error **err);
/*
 * In the process that moves: writes "0" to each fd of cgroup_open_enter().
 * Allocates nothing (safe after clone). 0 or -errno.
 */
int cgroup_enter_self(const int *fds, size_t n);
/* SIGKILLs every process left in <berth>/<relpath> (v2: cgroup.kill when present). */
int cgroup_kill_all(const struct cgroup_layout *l, const char *relpath, struct berth_error **err);
/*
 * What the processes of <berth>/<relpath> used: the memory high-water mark
 * and the OOM kills. All zero when there is no memory hierarchy.
 */
int cgroup_usage(const struct cgroup_layout *l, const char *relpath, struct runner_usage *ret,
                 struct berth_error **err);
/* Removes the leaf <berth>/<relpath>; parents are left. Missing is fine. */
int cgroup_remove(const struct cgroup_layout *l, const char *relpath, struct berth_error **err);

#endif
