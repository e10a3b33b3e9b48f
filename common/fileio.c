/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File helpers (see fileio.h).
 */
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fsync_parent_dir(const char *path, struct berth_error **err)
{
    _cleanup_free_ char *copy = xstrdup(path);
    _cleanup_close_ int fd = -1;
    const char *dir = dirname(copy);

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open directory '%s'", dir);
    if (fsync(fd) < 0)
        return berth_error_make(err, errno, "fsync directory '%s'", dir);
    return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                      struct berth_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    _cleanup_close_ int fd = -1;
    int r;

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "create temporary file for '%s'", path);
    if (fchmod(fd, mode) < 0) {
        r = berth_error_make(err, errno, "chmod '%s'", tmp);
        goto fail;
    }
    r = write_all(fd, data, len);
    if (r < 0) {
        berth_error_make(err, -r, "write '%s'", tmp);
        goto fail;
    }
    if (fsync(fd) < 0) {
        r = berth_error_make(err, errno, "fsync '%s'", tmp);
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        r = berth_error_make(err, errno, "rename '%s' to '%s'", tmp, path);
        goto fail;
    }
    return fsync_parent_dir(path, err);
fail:
    (void)unlink(tmp);
    return r;
}

int read_file(const char *path, struct strbuf *out, size_t max, struct berth_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t start = out->len;

    if (fd < 0)
        return berth_error_make(err, errno, "open '%s'", path);
    for (;;) {
        ssize_t n;

        strbuf_grow(out, 8192);
        n = read(fd, out->buf + out->len, out->alloc - out->len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_make(err, errno, "read '%s'", path);
        }
        if (n == 0)
            break;
        strbuf_setlen(out, out->len + (size_t)n);
        if (max && out->len - start > max)
            return berth_error_plain(err, EFBIG, "'%s' is larger than %zu bytes", path, max);
    }
    return 0;
}

int mkdir_p(const char *path, mode_t mode, struct berth_error **err)
{
    _cleanup_free_ char *copy = NULL;

    /* Usually all of it exists already, or only its last part is missing: one mkdir() then. */
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    if (errno != ENOENT)
        return berth_error_make(err, errno, "mkdir '%s'", path);
    copy = xstrdup(path);
    for (char *p = copy + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;

            *p = '\0';
            if (mkdir(copy, mode) < 0 && errno != EEXIST)
                return berth_error_make(err, errno, "mkdir '%s'", copy);
            *p = saved;
            if (!saved)
                break;
        }
    }
    return 0;
}

static int rm_one(const char *fpath, const struct stat *sb, int typeflag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (typeflag == FTW_DP)
        return rmdir(fpath) < 0 && errno != ENOENT ? -1 : 0;
    return unlink(fpath) < 0 && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path, struct berth_error **err)
{
    if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "remove '%s'", path);
    return 0;
}

bool program_beside_self(const char *name, char *buf, size_t size)
{
    size_t len = strlen(name);
    ssize_t n = readlink("/proc/self/exe", buf, size);
    char *slash;

    if (n <= 0 || (size_t)n >= size)
        return false;
    buf[n] = '\0';
    slash = strrchr(buf, '/');
    if (!slash || (size_t)(slash + 1 - buf) + len + 1 > size)
        return false;
    memcpy(slash + 1, name, len + 1);
    return access(buf, X_OK) == 0;
}
