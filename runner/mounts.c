/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The container's root filesystem, built inside the cloned child (see
 * mounts.h for the two steps and why): the overlay of the lower layers and
 * the host stack with a per-container upper, host /usr and a few /etc
 * entries bound read-only, the resolv.conf of a container with network, the
 * spec's bind mounts (hidden ones as overlays of their own), a fresh /proc with the
 * OCI masked and read-only paths, /sys read-only, a small /dev, tmpfs /tmp
 * and /run, then pivot_root into it (reference/ISOLATION.md §1.2-§1.7).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "runner/mounts.h"
#include "common/banned.h"

/*
 * Host /etc entries bound into the container, never /etc as a whole; each
 * has its empty mount point in the stack (stack.c). etc/php: Debian's PHP
 * finds its php.ini and the conf.d that loads its extensions there
 * (/etc/php/<version>/<sapi>/), for mod_php under Apache as for the CLI.
 */
static const char *const etc_entries[MOUNTS_N_ETC] = {
    "etc/alternatives", "etc/ssl", "etc/ld.so.cache", "etc/mime.types", "etc/php",
};

/* OCI's masked paths plus Docker's additions (ISOLATION.md §1.5). */
static const char *const masked_paths[] = {
    "proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats",
    "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
    "proc/interrupts", "sys/firmware", "sys/devices/virtual/powercap",
};

static const char *const readonly_paths[] = {
    "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
};

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };

struct fdpath {
    char s[40];
};

static struct fdpath fdpath(int fd)
{
    struct fdpath p;

    (void)snprintf(p.s, sizeof(p.s), "/proc/self/fd/%d", fd);
    return p;
}

static int open_path(const char *path, bool dir, int *ret, struct berth_error **err)
{
    int fd = open(path, O_PATH | O_CLOEXEC | (dir ? O_DIRECTORY : 0));

    if (fd < 0)
        return berth_error_make(err, errno, "open '%s'", path);
    *ret = fd;
    return 0;
}

/*
 * A bind source is opened without following any symbolic link on the way
 * (openat2's RESOLVE_NO_SYMLINKS, Linux 5.6; mount_setattr below needs
 * 5.12 anyway): below berth's own directories a source may pass through
 * directories the tenant writes (a build's <work>/slug, where bin/detect
 * runs, holds the app/ that bin/compile gets at /app), and a link planted
 * there would otherwise hand the container whatever host path it names,
 * read-write, opened with berth's rights. Callers give paths with no link
 * in them (runner.h): berth's own part resolved with realpath(), which is
 * the operator's choice and not the tenant's.
 */
static int open_source(const char *path, int *ret, struct berth_error **err)
{
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

    if (fd < 0 && errno == ELOOP)
        return berth_error_plain(err, ELOOP, "mount source '%s' is or passes through a symbolic link",
                                 path);
    if (fd < 0)
        return berth_error_make(err, errno, "open '%s'", path);
    *ret = fd;
    return 0;
}

int mounts_open(const struct runner_spec *spec, struct mount_fds *ret, struct berth_error **err)
{
    struct mount_fds f = { .state = -1, .stack = -1, .usr = -1, .resolv = -1 };
    size_t n_lower = 0;
    int r;

    for (size_t i = 0; i < MOUNTS_N_ETC; i++)
        f.etc[i] = -1;
    while (spec->lower_dirs[n_lower])
        n_lower++;
    if (n_lower > MOUNTS_MAX_LOWER) {
        return berth_error_plain(err, E2BIG, "%zu lower layers, at most %d are supported",
                                 n_lower, MOUNTS_MAX_LOWER);
    }
    f.lower = xcalloc(n_lower + 1, sizeof(int));
    f.n_lower = n_lower;
    for (size_t i = 0; i < n_lower; i++)
        f.lower[i] = -1;
    f.binds = xcalloc(spec->n_mounts + 1, sizeof(int));
    f.bind_is_dir = xcalloc(spec->n_mounts + 1, sizeof(bool));
    f.n_binds = spec->n_mounts;
    for (size_t i = 0; i < spec->n_mounts; i++)
        f.binds[i] = -1;

    if (spec->network) {
        _cleanup_free_ char *p = xasprintf("%s/resolv.conf", spec->state_dir);

        if ((r = open_path(p, false, &f.resolv, err)) < 0)
            goto fail;
    }
    /*
     * The upper in memory: a tmpfs over state_dir in our (private) mount
     * namespace, its root the container root's, opened through the path so
     * that f.state is the tmpfs, not the directory it covers (whose
     * resolv.conf, written by the spawner, is open already).
     */
    if (spec->upper_in_memory &&
        mount("tmpfs", spec->state_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,uid=0,gid=0") < 0) {
        r = berth_error_make(err, errno, "mount a tmpfs on '%s'", spec->state_dir);
        goto fail;
    }
    if ((r = open_path(spec->state_dir, true, &f.state, err)) < 0 ||
        (r = open_path(spec->stack_dir, true, &f.stack, err)) < 0 ||
        (r = open_path("/usr", true, &f.usr, err)) < 0)
        goto fail;
    for (size_t i = 0; i < n_lower; i++)
        if ((r = open_path(spec->lower_dirs[i], true, &f.lower[i], err)) < 0)
            goto fail;
    for (size_t i = 0; i < MOUNTS_N_ETC; i++) {
        _cleanup_free_ char *p = xasprintf("/%s", etc_entries[i]);

        f.etc[i] = open(p, O_PATH | O_CLOEXEC);
        if (f.etc[i] < 0 && errno != ENOENT) {
            r = berth_error_make(err, errno, "open '%s'", p);
            goto fail;
        }
    }
    for (size_t i = 0; i < spec->n_mounts; i++) {
        struct stat st;

        if ((r = open_source(spec->mounts[i].source, &f.binds[i], err)) < 0)
            goto fail;
        if (fstat(f.binds[i], &st) < 0) {
            r = berth_error_make(err, errno, "stat '%s'", spec->mounts[i].source);
            goto fail;
        }
        f.bind_is_dir[i] = S_ISDIR(st.st_mode);
    }
    *ret = f;
    return 0;
fail:
    mounts_fds_release(&f);
    return r;
}

size_t mounts_fd_list(const struct mount_fds *f, int *out, size_t cap)
{
    size_t n = 0;

#define ADD(fd) do { if ((fd) >= 0 && n < cap) out[n++] = (fd); } while (0)
    ADD(f->state);
    ADD(f->stack);
    ADD(f->usr);
    for (size_t i = 0; i < MOUNTS_N_ETC; i++)
        ADD(f->etc[i]);
    ADD(f->resolv);
    for (size_t i = 0; i < f->n_lower; i++)
        ADD(f->lower[i]);
    for (size_t i = 0; i < f->n_binds; i++)
        ADD(f->binds[i]);
#undef ADD
    return n;
}

void mounts_fds_release(struct mount_fds *f)
{
    closep(&f->state);
    closep(&f->stack);
    closep(&f->usr);
    for (size_t i = 0; i < MOUNTS_N_ETC; i++)
        closep(&f->etc[i]);
    closep(&f->resolv);
    for (size_t i = 0; f->lower && i < f->n_lower; i++)
        closep(&f->lower[i]);
    for (size_t i = 0; f->binds && i < f->n_binds; i++)
        closep(&f->binds[i]);
    free(f->lower);
    free(f->binds);
    free(f->bind_is_dir);
    f->lower = f->binds = NULL;
    f->bind_is_dir = NULL;
}

/*
 * Read-only all the way down: the bind is recursive (a user namespace may
 * not bind a mount without its locked submounts), so the mounts below the
 * source's own come along, and a remount (MS_REMOUNT|MS_BIND|MS_RDONLY)
 * would change the top one alone, leaving /data/sub writable under a
 * read-only /data. mount_setattr with AT_RECURSIVE sets the flag on every
 * mount of the tree in one call, and touches no other flag, so the ones
 * the kernel locked on the source (nosuid, nodev, ...) need no repeating.
 */
static int set_readonly(const char *target, struct berth_error **err)
{
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };

    if (syscall(SYS_mount_setattr, AT_FDCWD, target, AT_RECURSIVE, &attr, sizeof(attr)) < 0)
        return berth_error_make(err, errno, "make '/%s' read-only", target);
    return 0;
}

/*
 * what_src names the source in messages (fd paths say nothing); what_dst is
 * the target relative to the container root (the cwd), used to make the
 * bind read-only: a /proc/self/fd path would resolve to the mount point
 * underneath the new bind, not the bind itself.
 */
static int bind(const char *source, const char *target, const char *what_src,
                const char *what_dst, bool ro, struct berth_error **err)
{
    int r;

    if (mount(source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        return berth_error_make(err, errno, "bind '%s' onto '/%s'", what_src, what_dst);
    if (ro && (r = set_readonly(what_dst, err)) < 0)
        return berth_error_wrap(err, "bind '%s' onto '/%s'", what_src, what_dst);
    return 0;
}

static int mount_fs(const char *type, const char *target, unsigned long flags, const char *data,
                    struct berth_error **err)
{
    if (mount(type, target, type, flags, data) < 0)
        return berth_error_make(err, errno, "mount %s on '/%s'", type, target);
    return 0;
}

/*
 * Creates a mount target below the container root (the cwd) component by
 * component, refusing symlinks, so that a layer cannot point a target at a
 * host path. Returns an O_PATH fd of the target.
 */
static int make_target(const char *target, bool dir, int *ret, struct berth_error **err)
{
    _cleanup_free_ char *copy = xstrdup(target);
    _cleanup_close_ int cur = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    char *save = NULL, *comp, *next;

    if (cur < 0)
        return berth_error_make(err, errno, "open the container root");
    comp = strtok_r(copy, "/", &save);
    if (!comp)
        return berth_error_plain(err, EINVAL, "mount target '%s' is the root", target);
    for (; comp; comp = next) {
        bool last;
        int fd;

        next = strtok_r(NULL, "/", &save);
        last = next == NULL;
        if (!strcmp(comp, "..") || !strcmp(comp, "."))
            return berth_error_plain(err, EINVAL, "mount target '%s' has '%s'", target, comp);
        if (!last || dir) {
            if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
                return berth_error_make(err, errno, "create mount target '%s'", target);
            fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            struct stat st;

            /* Not O_WRONLY on an existing file: that would copy it up for nothing. */
            fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 && errno == ENOENT) {
                fd = openat(cur, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            } else if (fd >= 0 && (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode))) {
                (void)close(fd);
                return berth_error_plain(err, ELOOP, "mount target '%s' is a symlink", target);
            }
        }
        if (fd < 0)
            return berth_error_make(err, errno, "open mount target '%s'", target);
        closep(&cur);
        cur = fd;
    }
    *ret = TAKE_FD(cur);
    return 0;
}

/* The most of a resolv.conf copied, which the tmpfs below (size=64k) holds. */
#define RESOLV_COPY_MAX 65536

/*
 * With network, the resolv.conf the spawner wrote (network.c) is copied
 * into a tmpfs of the container's own (mounted on state_dir/resolv in our
 * private namespace, detached once its file is bound) and bound read-only
 * from there: a bind of the spawner's file itself would name its path in
 * berth's home in the container's mount table. make_target also covers a
 * stack prepared before the mount point existed, and refuses a layer's
 * symlink in its place.
 */
static int bind_resolv_conf(const struct mount_fds *f, struct berth_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/resolv", fdpath(f->state).s);
    _cleanup_free_ char *file = xasprintf("%s/resolv.conf", dir);
    _cleanup_strbuf_ struct strbuf conf = STRBUF_INIT;
    _cleanup_close_ int target = -1, dst = -1;
    int r;

    if ((r = make_target("/etc/resolv.conf", false, &target, err)) < 0)
        return r;
    if (mkdirat(f->state, "resolv", 0700) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create the directory for resolv.conf");
    if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=4,mode=0755") < 0)
        return berth_error_make(err, errno, "mount a tmpfs for resolv.conf");
    dst = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (dst < 0)
        r = berth_error_make(err, errno, "create resolv.conf");
    else if ((r = read_file(fdpath(f->resolv).s, &conf, RESOLV_COPY_MAX, err)) < 0)
        r = berth_error_wrap(err, "copy the container's resolv.conf");
    else if ((r = write_all(dst, conf.buf, conf.len)) < 0)
        r = berth_error_make(err, -r, "write the container's resolv.conf");
    else
        r = bind(file, fdpath(target).s, "resolv.conf", "etc/resolv.conf", true, err);
    if (umount2(dir, MNT_DETACH) < 0 && r == 0)
        r = berth_error_make(err, errno, "detach the tmpfs of resolv.conf");
    return r;
}

static int mount_overlay(const struct runner_spec *spec, const struct mount_fds *f,
                         struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf opts = STRBUF_INIT;
    struct fdpath st = fdpath(f->state);
    _cleanup_free_ char *target = xasprintf("%s/rootfs", st.s);

    /*
     * Created here, as container root, so that the upper's root (the
     * container's "/") and everything copied up belong to mapped ids; the
     * spawner opened state_dir for us to write into for this moment.
     */
    if (mkdirat(f->state, "upper", 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create '%s/upper'", spec->state_dir);
    if (mkdirat(f->state, "work", 0700) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create '%s/work'", spec->state_dir);
    if (mkdirat(f->state, "rootfs", 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create '%s/rootfs'", spec->state_dir);

    /*
     * /proc/self/fd paths keep the host paths out of the options (and out of
     * the container's mountinfo), and have no ':' or ',' to escape.
     * userxattr: without it the mount works in a user namespace but the
     * overlay silently loses redirect_dir and the origin xattrs.
     */
    strbuf_addstr(&opts, "lowerdir=");
    for (size_t i = 0; i < f->n_lower; i++)
        strbuf_addf(&opts, "%s:", fdpath(f->lower[i]).s);
    strbuf_addf(&opts, "%s,upperdir=%s/upper,workdir=%s/work,userxattr",
                fdpath(f->stack).s, st.s, st.s);
    if (mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, opts.buf) < 0)
        return berth_error_make(err, errno, "mount overlay on '%s/rootfs'", spec->state_dir);
    return 0;
}

/*
 * A hidden mount (runner.h): an overlay whose line in the mount table names
 * /proc/self/fd paths only, where a bind would name the source's own path.
 * Its empty lower layer, state_dir/empty, and a writable one's work
 * directory, state_dir/bindwork/<i>, are made here as container root, like
 * the root's upper. nosuid and nodev as for the root. Returns 0, or -errno
 * with no message: the caller binds instead.
 */
static int mount_hidden(const struct mount_fds *f, size_t i, bool writable, const char *target)
{
    _cleanup_strbuf_ struct strbuf opts = STRBUF_INIT;
    struct fdpath st = fdpath(f->state), src = fdpath(f->binds[i]);
    unsigned long flags = MS_NOSUID | MS_NODEV;
    char work[48];

    if (mkdirat(f->state, "empty", 0555) < 0 && errno != EEXIST)
        return -errno;
    if (writable) {
        (void)snprintf(work, sizeof(work), "bindwork/%zu", i);
        if ((mkdirat(f->state, "bindwork", 0700) < 0 && errno != EEXIST) ||
            (mkdirat(f->state, work, 0700) < 0 && errno != EEXIST))
            return -errno;
        strbuf_addf(&opts, "lowerdir=%s/empty,upperdir=%s,workdir=%s/%s,userxattr", st.s, src.s, st.s, work);
    } else {
        /* Without an upper, overlayfs wants two lower layers. */
        strbuf_addf(&opts, "lowerdir=%s:%s/empty,userxattr", src.s, st.s);
        flags |= MS_RDONLY;
    }
    if (mount("overlay", target, "overlay", flags, opts.buf) < 0)
        return -errno;
    return 0;
}

static int mount_proc(struct berth_error **err)
{
    int r;

    r = mount_fs("proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof(readonly_paths) / sizeof(*readonly_paths); i++) {
        const char *p = readonly_paths[i];

        /* Tried, not looked up first: a kernel without one (no /proc/bus) has nothing there. */
        if ((r = bind(p, p, p, p, true, err)) == -ENOENT)
            berth_error_release(err);
        else if (r < 0)
            return r;
    }
    return 0;
}

/* Sets *fresh when the sysfs is the container's own, not the host's bound read-only. */
static int mount_sys(bool *fresh, struct berth_error **err)
{
    unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV;

    /*
     * A fresh sysfs is allowed because this user namespace owns the network
     * namespace; where a parent namespace has overmounted parts of /sys the
     * kernel refuses it as "too revealing", and the host's /sys bound
     * read-only is the fallback (what crun does).
     */
    const char *force_bind = getenv("BERTH_TEST_SYS_BIND");

    *fresh = false;
    /*
     * A test-only knob (tests/isolation.sh): BERTH_TEST_SYS_BIND=1 takes the
     * fallback as on a host that refuses a fresh sysfs, so that the tests
     * see what a container shows there.
     */
    if (force_bind && strcmp(force_bind, "1") == 0) {
        errno = EPERM;
    } else if (mount("sysfs", "sys", "sysfs", flags, NULL) == 0) {
        *fresh = true;
        return 0;
    }
    if (errno != EPERM)
        return berth_error_make(err, errno, "mount sysfs on '/sys'");
    /*
     * The bind must be recursive (a user namespace may not bind a mount
     * without its locked submounts), so read-only must be recursive too, or
     * /sys/fs/cgroup and friends would stay writable: mount_setattr does it
     * in one call.
     */
    if (mount("/sys", "sys", NULL, MS_BIND | MS_REC, NULL) < 0)
        return berth_error_make(err, errno, "bind '/sys' onto '/sys'");
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                           MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
    if (syscall(SYS_mount_setattr, AT_FDCWD, "sys", AT_RECURSIVE, &attr, sizeof(attr)) < 0)
        return berth_error_make(err, errno, "make '/sys' read-only");
    return 0;
}

/*
 * Masked directories get an empty read-only tmpfs: one, bound onto the
 * others (a superblock made and torn down per directory cost more than a
 * bind; a bind of a read-only mount is read-only too).
 */
static int mask_paths(struct berth_error **err)
{
    const char *first_dir = NULL;

    for (size_t i = 0; i < sizeof(masked_paths) / sizeof(*masked_paths); i++) {
        const char *p = masked_paths[i];
        struct stat st;

        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && first_dir) {
            if (mount(first_dir, p, NULL, MS_BIND, NULL) < 0)
                return berth_error_make(err, errno, "mask '/%s'", p);
        } else if (S_ISDIR(st.st_mode)) {
            if (mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "size=4k,nr_inodes=1,mode=0555") < 0)
                return berth_error_make(err, errno, "mask '/%s'", p);
            first_dir = p;
        } else if (mount("/dev/null", p, NULL, MS_BIND, NULL) < 0) {
            return berth_error_make(err, errno, "mask '/%s'", p);
        }
    }
    return 0;
}

static int mount_dev(unsigned long id_count, struct berth_error **err)
{
    static const char *const links[][2] = {
        { "dev/ptmx", "pts/ptmx" }, { "dev/fd", "/proc/self/fd" },
        { "dev/stdin", "/proc/self/fd/0" }, { "dev/stdout", "/proc/self/fd/1" },
        { "dev/stderr", "/proc/self/fd/2" },
    };
    int r;

    r = mount_fs("tmpfs", "dev", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", err);
    if (r < 0)
        return r;
    /* mknod is impossible in a user namespace: bind the host's nodes. */
    for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(*dev_nodes); i++) {
        _cleanup_free_ char *host = xasprintf("/dev/%s", dev_nodes[i]);
        _cleanup_free_ char *target = xasprintf("dev/%s", dev_nodes[i]);
        int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

        if (fd < 0)
            return berth_error_make(err, errno, "create '/%s'", target);
        (void)close(fd);
        if (mount(host, target, NULL, MS_BIND, NULL) < 0)
            return berth_error_make(err, errno, "bind '%s' onto '/%s'", host, target);
    }
    if (mkdir("dev/pts", 0755) < 0 || mkdir("dev/shm", 01777) < 0)
        return berth_error_make(err, errno, "create '/dev/pts' and '/dev/shm'");
    /* gid 5 (tty) may only be named when the map covers it. */
    r = mount_fs("devpts", "dev/pts", MS_NOSUID | MS_NOEXEC,
                 id_count > 5 ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
                              : "newinstance,ptmxmode=0666,mode=0620", err);
    if (r < 0)
        return r;
    r = mount_fs("tmpfs", "dev/shm", MS_NOSUID | MS_NOEXEC | MS_NODEV,
                 "mode=1777,size=65536k", err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof(links) / sizeof(*links); i++)
        if (symlink(links[i][1], links[i][0]) < 0)
            return berth_error_make(err, errno, "symlink '/%s'", links[i][0]);
    return 0;
}

static int pivot(struct berth_error **err)
{
    /*
     * pivot_root(".", ".") stacks the old root on top of the new one at the
     * same place; detaching "." then removes the old root without needing a
     * directory for it inside the container (what crun and runc do).
     */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return berth_error_make(err, errno, "pivot_root into the container root");
    if (umount2(".", MNT_DETACH) < 0)
        return berth_error_make(err, errno, "detach the old root");
    if (chdir("/") < 0)
        return berth_error_make(err, errno, "chdir '/'");
    return 0;
}

int mounts_build_root(const struct runner_spec *spec, const struct mount_fds *f, bool *own_sys,
                      struct berth_error **err)
{
    _cleanup_close_ int root = -1;
    _cleanup_free_ char *root_path = NULL;
    int r;

    if ((r = mount_overlay(spec, f, err)) < 0)
        return r;
    root_path = xasprintf("%s/rootfs", fdpath(f->state).s);
    root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 || fchdir(root) < 0)
        return berth_error_make(err, errno, "enter the overlay root");

    if ((r = bind(fdpath(f->usr).s, "usr", "/usr", "usr", true, err)) < 0)
        return r;
    for (size_t i = 0; i < MOUNTS_N_ETC; i++) {
        if (f->etc[i] < 0)
            continue;
        /* The source is an open fd: ENOENT is the target (an overlay lookup saved by not asking first). */
        r = bind(fdpath(f->etc[i]).s, etc_entries[i], etc_entries[i], etc_entries[i], true, err);
        if (r == -ENOENT) {
            berth_error_release(err);
            return berth_error_make(err, ENOENT, "mount target '/%s' is missing from the stack "
                                    "(runner_stack_prepare makes it)", etc_entries[i]);
        }
        if (r < 0)
            return r;
    }
    if (f->resolv >= 0 && (r = bind_resolv_conf(f, err)) < 0)
        return r;
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const struct runner_mount *m = &spec->mounts[i];
        _cleanup_close_ int target = -1;

        if (m->target[0] != '/')
            return berth_error_plain(err, EINVAL, "mount target '%s' is not absolute", m->target);
        if ((r = make_target(m->target, f->bind_is_dir[i], &target, err)) < 0)
            return r;
        if (m->hidden && f->bind_is_dir[i] && mount_hidden(f, i, m->writable, fdpath(target).s) == 0)
            continue;
        r = bind(fdpath(f->binds[i]).s, fdpath(target).s, m->source, m->target + 1, !m->writable, err);
        if (r < 0)
            return r;
    }
    if ((r = mount_proc(err)) < 0)
        return r;
    return mount_sys(own_sys, err);
}

int mounts_finish_root(const struct runner_spec *spec, const struct mount_fds *f, bool own_sys,
                       struct berth_error **err)
{
    int r;

    /* On the host's /sys, bound read-only, the view covers the host's /sys/fs/cgroup. */
    if ((r = mounts_cgroup_mount(&f->cgroups, !own_sys, err)) < 0 ||
        (r = mask_paths(err)) < 0 ||
        (r = mount_dev(spec->id_count, err)) < 0 ||
        (r = mount_fs("tmpfs", "tmp", MS_NOSUID | MS_NODEV, "mode=1777", err)) < 0 ||
        (r = mount_fs("tmpfs", "run", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755", err)) < 0)
        return r;
    return pivot(err);
}
