/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cgroup-v1-view: runs a command where the host's cgroup v2 mount is out of
 * sight, for start.sh's crun figure. crun (1.8, Debian 12) refuses a hybrid
 * host whose v2 hierarchy holds any controller ("cgroups in hybrid mode not
 * supported, drop all controllers from cgroupv2"), even with
 * --cgroup-manager=disabled; the development VM's v2 mount holds hugetlb.
 * crun decides that from statfs() of /sys/fs/cgroup/unified, so here that
 * directory is covered with an empty tmpfs, in a user and mount namespace
 * of our own that map only the caller's uid and gid to themselves: crun
 * then still runs rootless, as the caller, and sees a host with cgroup v1
 * alone. One more thing differs for it: newuidmap and newgidmap, which it
 * tries first, are setuid binaries that a user namespace other than the
 * host's does not honour, so they fail and crun writes its one-id maps
 * itself, as it falls back to doing; it still executes both.
 *
 *   cgroup-v1-view CMD [ARG...]
 *
 * What this costs (the namespaces, the mount, one more exec) is not crun's:
 * start.sh times `cgroup-v1-view /bin/true` beside /bin/true and takes the
 * difference off crun's figure.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

/* Writes `text` to the /proc file `path`: 1, or 0 with a message. */
static int write_proc(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));

    if (n != (ssize_t)strlen(text)) {
        fprintf(stderr, "cgroup-v1-view: write %s: %s\n", path, n < 0 ? strerror(errno) : "short write");
        if (fd >= 0)
            (void)close(fd);
        return 0;
    }
    (void)close(fd);
    return 1;
}

int main(int argc, char **argv)
{
    char map[64];
    unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();

    if (argc < 2) {
        fprintf(stderr, "usage: cgroup-v1-view CMD [ARG...]\n");
        return 2;
    }
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
        fprintf(stderr, "cgroup-v1-view: unshare: %s\n", strerror(errno));
        return 1;
    }
    snprintf(map, sizeof(map), "%u %u 1", uid, uid);
    if (!write_proc("/proc/self/uid_map", map) || !write_proc("/proc/self/setgroups", "deny"))
        return 1;
    snprintf(map, sizeof(map), "%u %u 1", gid, gid);
    if (!write_proc("/proc/self/gid_map", map))
        return 1;
    /*
     * Over the v2 mount, in our namespace only: copied into a less privileged
     * namespace, the host's shared mounts became slaves, so nothing goes back.
     */
    if (mount("none", "/sys/fs/cgroup/unified", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "size=4k") < 0) {
        fprintf(stderr, "cgroup-v1-view: cover /sys/fs/cgroup/unified: %s\n", strerror(errno));
        return 1;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "cgroup-v1-view: exec %s: %s\n", argv[1], strerror(errno));
    return 127;
}
