/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Removing a tree that containers wrote into: the job of runner_remove_tree()'s
 * worker (tree.h says where it runs and why that lets it delete what berth's
 * uid alone may not). It walks depth first, opening up berth's own
 * directories the overlay left mode 0 on its way.
 *
 * Any depth: a container may nest directories as deep as it likes, and a
 * tree left half-removed stays on the host's disk for good. The walk holds
 * a directory fd per level, so at TREE_MAX_DEPTH it does not descend:
 * it moves the directory up into the tree's root under a name of its own
 * (hoisting), and the root's scan goes round again until the root is
 * empty. Each round removes TREE_MAX_DEPTH more levels of the deepest
 * chains, with never more than TREE_MAX_DEPTH directory fds open (one per
 * level walked) besides the one of the root's parent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/tree.h"
#include "common/banned.h"

/* One removal: the tree's path (messages), its root's fd while the walk is inside it, what it hoisted. */
struct rm_walk {
    const char *top;
    int top_fd;
    unsigned long hoisted;
};

static int rm_at(int parent, const char *name, struct rm_walk *w, int depth, struct berth_error **err);

/* Moves the directory `name` of `parent` up into the tree's root, to be removed from there. */
static int hoist(int parent, const char *name, struct rm_walk *w, struct berth_error **err)
{
    char tmp[64];

    for (unsigned tries = 0; tries < 1000; tries++) {
        (void)snprintf(tmp, sizeof(tmp), ".berth-rm-%ld-%lu", (long)getpid(), w->hoisted + tries);
        if (renameat2(parent, name, w->top_fd, tmp, RENAME_NOREPLACE) == 0) {
            w->hoisted += tries + 1;
            return 0;
        }
        /* Moving a directory rewrites its "..": berth's own, left mode 0 by the overlay, is opened up first. */
        if (errno == EACCES && fchmodat(parent, name, 0700, 0) == 0)
            continue;
        if (errno != EEXIST)
            return berth_error_make(err, errno, "move '%s' up from %d levels below '%s'", name, TREE_MAX_DEPTH,
                                    w->top);
    }
    return berth_error_plain(err, EEXIST, "no free name to move '%s' up into '%s'", name, w->top);
}

/* Removes what the directory d holds; the root's (depth 0) scans again while hoisting added to it. */
static int rm_entries(DIR *d, const char *name, struct rm_walk *w, int depth, struct berth_error **err)
{
    unsigned long before;
    struct dirent *e;
    int r;

    do {
        before = w->hoisted;
        while ((errno = 0, e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if ((r = rm_at(dirfd(d), e->d_name, w, depth + 1, err)) < 0)
                return r;
        }
        if (errno)
            return berth_error_make(err, errno, "readdir '%s' below '%s'", name, w->top);
        if (depth == 0)
            rewinddir(d);
    } while (depth == 0 && w->hoisted != before);
    return 0;
}

static int rm_at(int parent, const char *name, struct rm_walk *w, int depth, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = NULL;
    int fd, r;

    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return berth_error_make(err, errno, "unlink '%s' below '%s'", name, w->top);
    if (depth >= TREE_MAX_DEPTH)
        return hoist(parent, name, w, err);
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* e.g. the overlay's work/work, mode 0: ours, so we may chmod it. */
        if (fchmodat(parent, name, 0700, 0) < 0)
            return berth_error_make(err, errno, "chmod '%s' below '%s'", name, w->top);
        fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return berth_error_make(err, errno, "open '%s' below '%s'", name, w->top);
    /* Write permission on the directory itself, for unlinking its entries. */
    (void)fchmod(fd, 0700);
    d = fdopendir(fd);
    if (!d) {
        r = -errno;
        (void)close(fd);
        return berth_error_make(err, -r, "opendir '%s' below '%s'", name, w->top);
    }
    if (depth == 0)
        w->top_fd = dirfd(d);
    r = rm_entries(d, name, w, depth, err);
    if (depth == 0)
        w->top_fd = -1;
    if (r < 0)
        return r;
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "rmdir '%s' below '%s'", name, w->top);
    return 0;
}

int tree_remove(const char *path, struct berth_error **err)
{
    _cleanup_free_ char *parent = xstrdup(path);
    _cleanup_close_ int pfd = -1;
    char *slash = strrchr(parent, '/');
    const char *name = slash + 1;
    struct rm_walk w = { .top = path, .top_fd = -1 };
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : berth_error_make(err, errno, "stat '%s'", path);
    *slash = '\0';
    pfd = open(parent[0] ? parent : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return berth_error_make(err, errno, "open '%s'", parent[0] ? parent : "/");
    return rm_at(pfd, name, &w, 0, err);
}
