/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the container's root filesystem (reference/ISOLATION.md
 * §1.2-§1.7). Setup runs in the cloned child in two steps because of who it
 * is at each moment. First, still berth's host uid (unmapped in the new user
 * namespace, but the owner of berth's directories), mounts_open() opens
 * every host path the container needs as an O_PATH fd. Then, as container
 * root (the tenant's first subordinate id, full capabilities in the new
 * namespace), mounts_build_root() and mounts_finish_root() build the tree,
 * using /proc/self/fd/N paths for those fds: the mounts are made by a uid the overlay's copy-up
 * can chown for, and paths below directories only berth may traverse still
 * resolve. It ends with pivot_root, so the host tree is gone afterwards.
 */
#ifndef BERTH_RUNNER_MOUNTS_H
#define BERTH_RUNNER_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "runner/runner.h"

/* The host /etc entries programs need (CA certificates, alternatives, PHP's ini, ...). */
#define MOUNTS_N_ETC 5
/* Cap on lower layers (overlayfs itself allows 500; berth uses a few). */
#define MOUNTS_MAX_LOWER 64

/*
 * The cgroup hierarchies the container was moved into (mounts-cgroup.c):
 * empty when it has no cgroup of its own.
 */
#define MOUNTS_MAX_CGROUP 8
struct cgroup_view {
    bool v2;
    size_t n;
    char controllers[MOUNTS_MAX_CGROUP][64];   /* v1: "memory", "cpu,cpuacct"; v2: "" */
};

struct mount_fds {
    int state;                 /* state_dir */
    int stack;                 /* stack_dir */
    int usr;                   /* host /usr */
    int etc[MOUNTS_N_ETC];     /* -1 where the host has no such entry */
    int resolv;                /* spec->network: state_dir/resolv.conf (network.h); else -1 */
    int *lower;                /* spec->lower_dirs, n_lower of them */
    size_t n_lower;
    int *binds;                /* spec->mounts sources, n_binds of them */
    size_t n_binds;
    bool *bind_is_dir;
    struct cgroup_view cgroups;   /* filled by the caller, before it unshares the cgroup namespace */
};

/*
 * As berth's uid: opens the host paths; every fd is O_PATH|O_CLOEXEC. A bind
 * source with a symbolic link in its path fails with -ELOOP (runner.h).
 */
int mounts_open(const struct runner_spec *spec, struct mount_fds *ret, struct berth_error **err);
/* The fds mounts_open() opened, for the caller's close-all-but list. */
size_t mounts_fd_list(const struct mount_fds *fds, int *out, size_t cap);
void mounts_fds_release(struct mount_fds *fds);
/*
 * As container root, in two halves, so that the cgroup, which the second
 * needs, can be set up meanwhile (container.c). mounts_build_root(): the
 * overlay root (then the cwd), binds, /proc and /sys (*own_sys: a sysfs of
 * the container's own, not the host's bound read-only).
 * mounts_finish_root(), once fds->cgroups is filled: the cgroup view,
 * masked and read-only paths, /dev, /tmp, /run, pivot_root. On return the
 * cwd and root are the container's.
 */
int mounts_build_root(const struct runner_spec *spec, const struct mount_fds *fds, bool *own_sys,
                      struct berth_error **err);
int mounts_finish_root(const struct runner_spec *spec, const struct mount_fds *fds, bool own_sys,
                       struct berth_error **err);

/* Before unsharing the cgroup namespace: which hierarchies hold the container's `relpath` (may be NULL). */
int mounts_cgroup_view(const char *relpath, struct cgroup_view *ret, struct berth_error **err);
/*
 * After it, below the new root (the cwd): mounts the view read-only at
 * sys/fs/cgroup. `cover`: sys is the host's sysfs bound read-only, whose
 * sys/fs/cgroup shows the host's whole tree; an empty view then still
 * mounts an empty read-only tmpfs over it, so nothing of the host shows.
 */
int mounts_cgroup_mount(const struct cgroup_view *view, bool cover, struct berth_error **err);

#endif
