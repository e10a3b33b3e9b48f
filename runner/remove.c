/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Removing a tree that containers wrote into: the job of runner_remove_tree()'s
 * worker (tree.h says where it runs and why that lets it delete what berth's
 * uid alone may not). It walks depth first, opening up berth's own
 * directories the overlay left mode 0 on its way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/tree.h"
#include "common/banned.h"

static int rm_at(int parent, const char *name, const char *top, int depth, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *e;
    int fd, r;

    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return berth_error_make(err, errno, "unlink '%s' below '%s'", name, top);
    if (depth >= TREE_MAX_DEPTH)
        return berth_error_plain(err, ELOOP, "'%s' is nested deeper than %d levels", top, TREE_MAX_DEPTH);
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* e.g. the overlay's work/work, mode 0: ours, so we may chmod it. */
        if (fchmodat(parent, name, 0700, 0) < 0)
            return berth_error_make(err, errno, "chmod '%s' below '%s'", name, top);
        fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return berth_error_make(err, errno, "open '%s' below '%s'", name, top);
    /* Write permission on the directory itself, for unlinking its entries. */
    (void)fchmod(fd, 0700);
    d = fdopendir(fd);
    if (!d) {
        r = -errno;
        (void)close(fd);
        return berth_error_make(err, -r, "opendir '%s' below '%s'", name, top);
    }
    while ((errno = 0, e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if ((r = rm_at(dirfd(d), e->d_name, top, depth + 1, err)) < 0)
            return r;
    }
    if (errno)
        return berth_error_make(err, errno, "readdir '%s' below '%s'", name, top);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "rmdir '%s' below '%s'", name, top);
    return 0;
}

int tree_remove(const char *path, struct berth_error **err)
{
    _cleanup_free_ char *parent = xstrdup(path);
    _cleanup_close_ int pfd = -1;
    char *slash = strrchr(parent, '/');
    const char *name = slash + 1;
    struct stat st;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : berth_error_make(err, errno, "stat '%s'", path);
    *slash = '\0';
    pfd = open(parent[0] ? parent : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return berth_error_make(err, errno, "open '%s'", parent[0] ? parent : "/");
    return rm_at(pfd, name, path, 0, err);
}
