/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The container's own view of its cgroups (ARCHITECTURE.md: "read-only
 * cgroupfs inside, own cgroup namespace"), part of building its root (see
 * mounts.h). Apps read their limits there: the JVM and Node size their
 * heaps from memory.max (v2) or memory.limit_in_bytes (v1).
 *
 * Two steps, as with the rest of the root. Before the cgroup namespace is
 * unshared, mounts_cgroup_view() reads /proc/self/cgroup and keeps the
 * hierarchies whose path ends in the container's own cgroup (the spawner
 * moved it there); a hierarchy where it still sits in berth's or the host's
 * cgroup is left out, since mounting it would show the cgroups of other
 * containers. After the unshare, mounts_cgroup_mount() mounts those
 * hierarchies read-only at /sys/fs/cgroup: their root is then the
 * container's cgroup. cgroup v2 is one cgroup2 mount; v1 is a tmpfs with one
 * cgroup mount per hierarchy and a symlink per co-mounted controller
 * (cpu -> cpu,cpuacct), as on the host. A v1 mount in a user namespace may
 * only reuse a hierarchy the host already has, which these are. Where the
 * container's /sys is the host's sysfs bound read-only (a fresh one was
 * refused), these mounts go over the host's /sys/fs/cgroup, and a container
 * without a cgroup gets an empty tmpfs there: either way it never sees the
 * host's tree or other containers' cgroups.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "runner/cgroup-internal.h"
#include "runner/mounts.h"
#include "common/banned.h"

#define CGROUP_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

/* Whether `path` is `relpath` below some prefix: ".../" + relpath. */
static bool ends_in(const char *path, const char *relpath)
{
    size_t pl = strlen(path), rl = strlen(relpath);

    return pl > rl && path[pl - rl - 1] == '/' && strcmp(path + pl - rl, relpath) == 0;
}

int mounts_cgroup_view(const char *relpath, struct cgroup_view *ret, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    struct statfs fs;
    char *line, *save = NULL;
    int r;

    memset(ret, 0, sizeof(*ret));
    if (!relpath)
        return 0;
    if (statfs(CGROUP_MOUNT, &fs) < 0)
        return 0;   /* no cgroupfs on the host: nothing to show */
    ret->v2 = fs.f_type == CGROUP2_SUPER_MAGIC;
    if ((r = read_file("/proc/self/cgroup", &sb, MAX_PROCFILE, err)) < 0)
        return r;
    for (line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        /* "4:memory:/a/berth/t/app/web.1-v1-x", or "0::/..." for cgroup v2 */
        char *ctrl, *path;

        if (!cgroup_split_proc_line(line, &ctrl, &path) || !ends_in(path, relpath))
            continue;
        if (ret->v2 != (ctrl[0] == '\0') || strncmp(ctrl, "name=", 5) == 0)
            continue;
        if (ret->n == MOUNTS_MAX_CGROUP || strlen(ctrl) >= sizeof(ret->controllers[0]))
            return berth_error_plain(err, E2BIG, "too many cgroup hierarchies to show inside");
        memcpy(ret->controllers[ret->n++], ctrl, strlen(ctrl) + 1);
    }
    return 0;
}

int mounts_cgroup_mount(const struct cgroup_view *view, bool cover, struct berth_error **err)
{
    if (view->n == 0 && !cover)
        return 0;
    if (view->n > 0 && view->v2) {
        if (mount("cgroup2", "sys/fs/cgroup", "cgroup2", CGROUP_FLAGS, NULL) < 0)
            return berth_error_make(err, errno, "mount cgroup2 on '/sys/fs/cgroup'");
        return 0;
    }
    if (mount("tmpfs", "sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=755,size=4k,nr_inodes=64") < 0)
        return berth_error_make(err, errno, "mount tmpfs on '/sys/fs/cgroup'");
    for (size_t i = 0; i < view->n; i++) {
        const char *ctrl = view->controllers[i];
        _cleanup_free_ char *dir = xasprintf("sys/fs/cgroup/%s", ctrl);

        if (mkdir(dir, 0555) < 0)
            return berth_error_make(err, errno, "mkdir '/%s'", dir);
        if (mount("cgroup", dir, "cgroup", CGROUP_FLAGS, ctrl) < 0)
            return berth_error_make(err, errno, "mount the '%s' cgroup hierarchy on '/%s'", ctrl, dir);
        if (strchr(ctrl, ',')) {
            _cleanup_free_ char *copy = xstrdup(ctrl);
            char *one, *save = NULL;

            for (one = strtok_r(copy, ",", &save); one; one = strtok_r(NULL, ",", &save)) {
                _cleanup_free_ char *link = xasprintf("sys/fs/cgroup/%s", one);

                if (symlink(ctrl, link) < 0)
                    return berth_error_make(err, errno, "symlink '/%s'", link);
            }
        }
    }
    if (mount(NULL, "sys/fs/cgroup", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) < 0)
        return berth_error_make(err, errno, "make '/sys/fs/cgroup' read-only");
    return 0;
}
