/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `host` stack's skeleton layer (ARCHITECTURE.md, Images): the lowest
 * overlay layer of every container. It holds no programs, only the shape of
 * a root: the usr-merge symlinks into /usr (which the container gets by a
 * read-only bind of the host's /usr), empty mount points, and a minimal /etc
 * of berth's own, so that the host's and other tenants' users are never
 * listed inside. The few host /etc entries programs need are bound over the
 * empty files and directories made here (mounts.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/runner.h"
#include "common/banned.h"

static const char *const skeleton_dirs[] = {
    "usr", "etc", "proc", "dev", "sys", "tmp", "run", "app", "root", "home", "var", "var/tmp",
    "etc/alternatives", "etc/ssl", "etc/php",
};

static const char *const skeleton_links[][2] = {
    { "bin", "usr/bin" }, { "lib", "usr/lib" }, { "lib64", "usr/lib64" }, { "sbin", "usr/sbin" },
};

/*
 * Empty files: mount points for host files bound read-only, and for the
 * resolv.conf of a container with network (empty, so no nameserver, without).
 */
static const char *const skeleton_mountpoints[] = {
    "etc/ld.so.cache", "etc/mime.types", "etc/resolv.conf",
};

static const struct {
    const char *path;
    const char *content;
} skeleton_files[] = {
    { "etc/passwd",
      "root:x:0:0:root:/root:/bin/sh\n"
      "app:x:1000:1000:app:/app:/bin/sh\n"
      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" },
    { "etc/group", "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n" },
    { "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" },
    { "etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
                           "networks: files\nprotocols: files\nservices: files\n" },
};

/*
 * Gives `path` below the stack `dir` (open as dfd; "" for dir itself) the
 * mode, unless it has it already: a chmod writes the inode (its ctime)
 * through the journal even when the mode stays, and the stack is prepared
 * at every start.
 */
static int ensure_mode(int dfd, const char *dir, const char *path, mode_t mode)
{
    struct stat st;

    if (fstatat(dfd, path, &st, *path ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH) == 0 &&
        (st.st_mode & 07777) == mode)
        return 0;
    return *path ? fchmodat(dfd, path, mode, 0) : chmod(dir, mode);
}

int runner_stack_prepare(const char *dir, struct berth_error **err)
{
    _cleanup_close_ int dfd = -1;
    int r;

    if ((r = mkdir_p(dir, 0755, err)) < 0)
        return berth_error_wrap(err, "create stack '%s'", dir);
    dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "open stack '%s'", dir);
    /* The container's uids must be able to read it: they are "other" here. */
    if (ensure_mode(dfd, dir, "", 0755) < 0)
        return berth_error_make(err, errno, "chmod stack '%s'", dir);
    for (size_t i = 0; i < sizeof(skeleton_dirs) / sizeof(*skeleton_dirs); i++)
        if (mkdirat(dfd, skeleton_dirs[i], 0755) < 0 && errno != EEXIST)
            return berth_error_make(err, errno, "create '%s/%s'", dir, skeleton_dirs[i]);
    if (ensure_mode(dfd, dir, "tmp", 01777) < 0 || ensure_mode(dfd, dir, "var/tmp", 01777) < 0)
        return berth_error_make(err, errno, "chmod '%s/tmp'", dir);
    for (size_t i = 0; i < sizeof(skeleton_links) / sizeof(*skeleton_links); i++) {
        char buf[64];
        ssize_t n;

        if (symlinkat(skeleton_links[i][1], dfd, skeleton_links[i][0]) == 0)
            continue;
        if (errno != EEXIST)
            return berth_error_make(err, errno, "symlink '%s/%s'", dir, skeleton_links[i][0]);
        n = readlinkat(dfd, skeleton_links[i][0], buf, sizeof(buf) - 1);
        if (n < 0 || (size_t)n != strlen(skeleton_links[i][1]) ||
            memcmp(buf, skeleton_links[i][1], (size_t)n) != 0)
            return berth_error_plain(err, EEXIST, "'%s/%s' exists and is not a symlink to '%s'",
                                     dir, skeleton_links[i][0], skeleton_links[i][1]);
    }
    for (size_t i = 0; i < sizeof(skeleton_mountpoints) / sizeof(*skeleton_mountpoints); i++) {
        int fd = openat(dfd, skeleton_mountpoints[i], O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

        if (fd < 0)
            return berth_error_make(err, errno, "create '%s/%s'", dir, skeleton_mountpoints[i]);
        (void)close(fd);
    }
    for (size_t i = 0; i < sizeof(skeleton_files) / sizeof(*skeleton_files); i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, skeleton_files[i].path);
        _cleanup_strbuf_ struct strbuf cur = STRBUF_INIT;
        struct berth_error *ignored = NULL;

        /* Idempotent: rewrite only what differs, so a shared stack is not churned. */
        if (read_file(p, &cur, 65536, &ignored) == 0 && !strcmp(cur.buf, skeleton_files[i].content))
            continue;
        berth_error_release(&ignored);
        if ((r = write_file_atomic(p, skeleton_files[i].content, strlen(skeleton_files[i].content),
                                   0644, err)) < 0)
            return r;
    }
    return 0;
}
