/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The seal and usage walks (tree.h), run in a tree worker's user namespace
 * with the tenant's mapping. Neither ever follows a symlink: entries are
 * reached from their parent directory's fd with O_NOFOLLOW or
 * AT_SYMLINK_NOFOLLOW, and changed through an O_PATH fd of the entry itself
 * (/proc/self/fd/N names exactly that inode), so a symlink swapped in for a
 * file cannot redirect a chmod to the host.
 *
 * Seal (runner_seal_tree): per entry, a chmod to the sealed mode (no
 * setuid/setgid, a+r, a+x for directories and for files with any x bit),
 * which doubles as the ownership check, then every extended attribute the
 * namespace may remove is removed. Usage (runner_tree_usage): st_blocks of
 * every entry, hard-linked inodes once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/tree.h"
#include "common/banned.h"

/* Cap on the xattr name list of one entry (the kernel's own limit is 64 KiB). */
#define XATTR_LIST_MAX_BYTES (64 * 1024)

/* "/proc/self/fd/<fd>" or "/proc/self/fd/<fd>/<name>", name up to NAME_MAX. */
struct fdpath {
    char s[32 + NAME_MAX + 1];
};

static struct fdpath fd_path(int fd, const char *name)
{
    struct fdpath p;

    (void)snprintf(p.s, sizeof(p.s), "/proc/self/fd/%d%s%s", fd, name ? "/" : "", name ? name : "");
    return p;
}

/* The parent directory of `path` (O_PATH) and a pointer to its last component. */
static int open_parent(const char *path, char **ret_copy, const char **ret_name, int *ret_fd,
                       struct berth_error **err)
{
    char *copy = xstrdup(path), *slash = strrchr(copy, '/');
    int fd;

    *slash = '\0';
    fd = open(copy[0] ? copy : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int r = berth_error_make(err, errno, "open '%s'", copy[0] ? copy : "/");

        free(copy);
        return r;
    }
    *ret_copy = copy;
    *ret_name = path + (slash - copy) + 1;
    *ret_fd = fd;
    return 0;
}

/* Calls fn(parent, name) for each entry of the directory `fd` (which it takes over). */
static int each_entry(int fd, const char *what, const char *top,
                      int (*fn)(int parent, const char *name, void *arg), void *arg,
                      struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = fdopendir(fd);
    struct dirent *e;
    int r;

    if (!d) {
        r = -errno;
        (void)close(fd);
        return berth_error_make(err, -r, "opendir '%s' below '%s'", what, top);
    }
    while ((errno = 0, e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if ((r = fn(dirfd(d), e->d_name, arg)) < 0)
            return r;
    }
    if (errno)
        return berth_error_make(err, errno, "readdir '%s' below '%s'", what, top);
    return 0;
}

/* ------------------------------------------------------------------------
 * seal
 */

struct seal {
    const char *top;
    int depth;
    struct berth_error **err;
};

/*
 * Which attributes a failed removal may leave: those the namespace may not
 * remove (LSM labels such as security.selinux; only the initial namespace's
 * admin changes them), and on a symlink anything, since the kernel allows
 * user.* only on files and directories and some filesystems still list them.
 * ACLs, user.* (overlayfs' user.overlay.* included) and file capabilities
 * must go.
 */
static bool may_stay(const char *name, bool symlink)
{
    if (symlink)
        return true;
    return !strncmp(name, "security.", 9) && strcmp(name, "security.capability") != 0;
}

/*
 * `path` is /proc/self/fd/<parent>/<name> for a symlink, so the l-calls act
 * on the link itself, and /proc/self/fd/<O_PATH fd> for anything else, so
 * the following calls act on what the magic link names.
 */
static ssize_t list_xattrs(const char *path, bool symlink, char *buf, size_t size)
{
    return symlink ? llistxattr(path, buf, size) : listxattr(path, buf, size);
}

static int strip_xattrs(const char *path, bool symlink, const char *what, const char *top,
                        struct berth_error **err)
{
    _cleanup_free_ char *names = NULL;
    ssize_t len = list_xattrs(path, symlink, NULL, 0);

    if (len < 0 && (errno == EOPNOTSUPP || errno == ENOTSUP))
        return 0;   /* a filesystem without xattrs has nothing to remove */
    if (len > XATTR_LIST_MAX_BYTES)
        return berth_error_plain(err, E2BIG, "'%s' below '%s' has too many attributes", what, top);
    if (len > 0) {
        names = xmalloc((size_t)len);
        len = list_xattrs(path, symlink, names, (size_t)len);
    }
    if (len < 0)
        return berth_error_make(err, errno, "list the attributes of '%s' below '%s'", what, top);
    for (ssize_t off = 0; off < len; off += (ssize_t)strlen(names + off) + 1) {
        const char *name = names + off;

        if ((symlink ? lremovexattr(path, name) : removexattr(path, name)) == 0 || errno == ENODATA)
            continue;
        if ((errno == EPERM || errno == EACCES || errno == EOPNOTSUPP) && may_stay(name, symlink))
            continue;
        return berth_error_make(err, errno, "remove attribute '%s' of '%s' below '%s'", name,
                                what, top);
    }
    return 0;
}

static mode_t sealed_mode(mode_t mode)
{
    mode_t m = (mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID)) | 0444;

    if (S_ISDIR(mode) || (m & 0111))
        m |= 0111;
    return m;
}

/*
 * The chmod runs even when the mode is already right: it needs the owner's
 * uid or CAP_FOWNER over the inode, which the namespace grants only for
 * mapped owners, so its EPERM is the "owner outside the mapping" check.
 * Symlinks have no mode; setting their times to what they are asks the same
 * question of the kernel.
 */
static int seal_one(int parent, const char *name, const struct stat *st, const char *top,
                    struct berth_error **err)
{
    _cleanup_close_ int fd = -1;
    int r;

    if (S_ISLNK(st->st_mode)) {
        struct timespec ts[2] = { st->st_atim, st->st_mtim };

        if (utimensat(parent, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
            goto denied;
        return strip_xattrs(fd_path(parent, name).s, true, name, top, err);
    }
    fd = openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open '%s' below '%s'", name, top);
    if (chmod(fd_path(fd, NULL).s, sealed_mode(st->st_mode)) < 0)
        goto denied;
    if ((r = strip_xattrs(fd_path(fd, NULL).s, false, name, top, err)) < 0)
        return r;
    return 0;
denied:
    if (errno == EPERM)
        return berth_error_plain(err, EPERM, "'%s' below '%s' belongs to an id outside the "
                                 "tenant's mapping (uid %u inside)", name, top,
                                 (unsigned)st->st_uid);
    return berth_error_make(err, errno, "seal '%s' below '%s'", name, top);
}

static int seal_at(int parent, const char *name, void *arg)
{
    struct seal *s = arg;
    struct stat st;
    int fd, r;

    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return berth_error_make(s->err, errno, "stat '%s' below '%s'", name, s->top);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        return berth_error_plain(s->err, EPERM, "'%s' below '%s' is a device node", name, s->top);
    if ((r = seal_one(parent, name, &st, s->top, s->err)) < 0 || !S_ISDIR(st.st_mode))
        return r;
    if (s->depth >= TREE_MAX_DEPTH)
        return berth_error_plain(s->err, ELOOP, "'%s' is nested deeper than %d levels", s->top,
                                 TREE_MAX_DEPTH);
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(s->err, errno, "open '%s' below '%s'", name, s->top);
    s->depth++;
    r = each_entry(fd, name, s->top, seal_at, s, s->err);
    s->depth--;
    return r;
}

int tree_seal(const char *path, struct berth_error **err)
{
    _cleanup_free_ char *copy = NULL;
    _cleanup_close_ int pfd = -1;
    struct seal s = { .top = path, .err = err };
    const char *name;
    int r;

    if ((r = open_parent(path, &copy, &name, &pfd, err)) < 0)
        return r;
    return seal_at(pfd, name, &s);
}

/* ------------------------------------------------------------------------
 * usage
 */

/* An open-addressing set of (dev, ino): the inodes with more than one link already counted. */
struct inoset {
    struct ino_key {
        dev_t dev;
        ino_t ino;   /* 0: free slot (no inode has number 0) */
    } *slots;
    size_t n, cap;   /* cap is a power of two, kept at least twice n */
};

static size_t ino_hash(dev_t dev, ino_t ino, size_t cap)
{
    uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)dev * 0xc2b2ae3d27d4eb4fULL);

    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* Adds the inode; false when it was there already. */
static bool inoset_add(struct inoset *s, dev_t dev, ino_t ino)
{
    size_t i;

    if (2 * (s->n + 1) > s->cap) {
        struct inoset bigger = { .cap = s->cap ? 2 * s->cap : 64 };

        bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
        for (size_t j = 0; j < s->cap; j++)
            if (s->slots[j].ino)
                (void)inoset_add(&bigger, s->slots[j].dev, s->slots[j].ino);
        free(s->slots);
        *s = bigger;
    }
    for (i = ino_hash(dev, ino, s->cap); s->slots[i].ino; i = (i + 1) & (s->cap - 1))
        if (s->slots[i].ino == ino && s->slots[i].dev == dev)
            return false;
    s->slots[i] = (struct ino_key){ .dev = dev, .ino = ino };
    s->n++;
    return true;
}

struct usage {
    const char *top;
    int depth;
    uint64_t bytes;
    struct inoset seen;
    struct berth_error **err;
};

static int usage_at(int parent, const char *name, void *arg)
{
    struct usage *u = arg;
    struct stat st;
    int fd, r;

    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;   /* missing top, or removed while we walked: takes no space */
        return berth_error_make(u->err, errno, "stat '%s' below '%s'", name, u->top);
    }
    /* A directory's links are its subdirectories' "..", not other names for it. */
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && !inoset_add(&u->seen, st.st_dev, st.st_ino))
        return 0;
    u->bytes += (uint64_t)st.st_blocks * 512;
    if (!S_ISDIR(st.st_mode))
        return 0;
    if (u->depth >= TREE_MAX_DEPTH)
        return berth_error_plain(u->err, ELOOP, "'%s' is nested deeper than %d levels", u->top,
                                 TREE_MAX_DEPTH);
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(u->err, errno, "open '%s' below '%s'", name, u->top);
    u->depth++;
    r = each_entry(fd, name, u->top, usage_at, u, u->err);
    u->depth--;
    return r;
}

int tree_usage(const char *const *paths, uint64_t *ret_bytes, struct berth_error **err)
{
    struct usage u = { .err = err };
    int r = 0;

    for (size_t i = 0; paths[i] && r >= 0; i++) {
        _cleanup_free_ char *copy = NULL;
        _cleanup_close_ int pfd = -1;
        const char *name;

        struct berth_error *e = NULL;

        u.top = paths[i];
        r = open_parent(paths[i], &copy, &name, &pfd, &e);
        if (r == 0)
            r = usage_at(pfd, name, &u);
        else if (r == -ENOENT)
            r = 0;   /* the parent is missing too */
        else if (err)
            *err = TAKE_PTR(e);
        berth_error_release(&e);
    }
    free(u.seen.slots);
    if (r < 0)
        return r;
    *ret_bytes = u.bytes;
    return 0;
}
