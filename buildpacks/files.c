/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Safe reads of tenant-shaped files and paths (files.h): every step is
 * taken relative to an open directory with O_NOFOLLOW, and opens are
 * non-blocking so that a FIFO where a file should be cannot hang berth.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildpacks/files.h"
#include "common/cleanup.h"
#include "common/xalloc.h"
#include "common/banned.h"

int build_read_file_at(const char *dir, const char *name, const char *what, size_t max,
                       struct strbuf *out, struct berth_error **err)
{
    _cleanup_close_ int dfd = -1;
    _cleanup_close_ int fd = -1;
    struct stat st;
    char buf[8192];

    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "opening '%s'", dir);
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return -ENOENT;
    if (fd < 0 && errno == ELOOP)
        return berth_error_plain(err, EINVAL, "%s is a symlink: it must be a regular file", what);
    if (fd < 0)
        return berth_error_make(err, errno, "cannot read %s", what);
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "cannot read %s", what);
    if (!S_ISREG(st.st_mode))
        return berth_error_plain(err, EINVAL, "%s must be a regular file", what);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "cannot read %s", what);
        if (n == 0)
            return 0;
        if (out->len + (size_t)n > max)
            return berth_error_plain(err, EFBIG, "%s is larger than %zu KiB", what, max / 1024);
        strbuf_add(out, buf, (size_t)n);
    }
}

int build_resolve_subdir(const char *top, const char *subdir, char **ret, struct berth_error **err)
{
    _cleanup_free_ char *copy = xstrdup(subdir);
    _cleanup_close_ int cur = open(top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct strbuf path = STRBUF_INIT;
    char *save = NULL;

    if (cur < 0)
        return berth_error_make(err, errno, "opening '%s'", top);
    strbuf_addstr(&path, top);
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int fd;

        if (!strcmp(c, ".") || !strcmp(c, "..")) {
            strbuf_release(&path);
            return berth_error_plain(err, EINVAL, "the app directory '%s' may not contain '%s'",
                                     subdir, c);
        }
        fd = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;

            strbuf_release(&path);
            if (e == ENOENT)
                return berth_error_plain(err, ENOENT, "the app directory '%s' is not in the pushed "
                                         "tree", subdir);
            return berth_error_plain(err, ENOTDIR, "the app directory '%s' is not a directory of "
                                     "the pushed tree (a file or a symlink is in the way)", subdir);
        }
        closep(&cur);
        cur = fd;
        strbuf_addf(&path, "/%s", c);
    }
    *ret = strbuf_detach(&path, NULL);
    return 0;
}
