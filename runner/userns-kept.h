/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the spawner's kept user namespaces, one per id mapping.
 * Writing a mapping takes the setuid newuidmap and newgidmap, ~2.5 ms on an
 * idle host and ~12 ms on a busy one, for every new user namespace. A user
 * namespace needs no process, only a reference: the spawner keeps an fd of
 * one it made for a mapping (a tree worker's, or a container's without
 * network) once its maps are written, and later tree workers and
 * containers without network for the same mapping join it with setns()
 * (worker.c; spawner.c decides for containers, container.c joins). A
 * process that joins gets the full capability set in it that a new
 * namespace's first process has, under the same uid:
 * the same powers, without the helpers. A namespace is defined by its
 * mapping alone, so one kept for a tenant's range serves every later
 * request naming that range. At most USERNS_KEPT_MAX are kept, the oldest
 * dropped beyond that. A mapping the host's /etc/subuid no longer grants
 * keeps working for the kept ones until berth serve restarts (the helpers
 * are asked only for new ones).
 *
 * What joining shares, and why that is the tenant's own: every container
 * of a tenant maps the same ids, so its files were already one owner's;
 * each container still has its own mount, pid, network, ipc, uts and
 * cgroup namespaces; its app holds no capability (the init drops them all
 * for it and keeps CAP_KILL alone for itself), and seccomp refuses setns,
 * unshare and the keyring calls, whose per-user keyrings a namespace
 * would share. A networked container's namespace is never kept nor
 * joined: pasta runs in it with capabilities, handling the container's
 * traffic.
 *
 * The spawner serves one request at a time, in one thread: no lock.
 */
#ifndef BERTH_RUNNER_USERNS_KEPT_H
#define BERTH_RUNNER_USERNS_KEPT_H

#include <sys/types.h>

#define USERNS_KEPT_MAX 64

/* The kept namespace of this mapping (an fd the table keeps owning), or -1. */
int userns_kept_find(unsigned long uid_base, unsigned long gid_base, unsigned long count);

/*
 * Keeps `fd`, an open user namespace whose maps are exactly this mapping
 * (the table owns it from now on, and closes it when it is dropped).
 */
void userns_kept_add_fd(unsigned long uid_base, unsigned long gid_base, unsigned long count, int fd);

/*
 * Keeps the user namespace of `pid`, a child of the caller whose maps were
 * just written and that has not been reaped (the spawner reaps its children
 * only through their pidfds, so the pid is still its own while the pidfd
 * says it lives); a namespace that cannot be had is simply not kept.
 */
void userns_kept_add_pid(unsigned long uid_base, unsigned long gid_base, unsigned long count,
                         pid_t pid, int pidfd);

#endif
