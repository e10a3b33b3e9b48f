/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `host` stack's skeleton layer (ARCHITECTURE.md, Images): the lowest
 * overlay layer of every container. It holds no programs, only the shape of
 * a root: the usr-merge symlinks into /usr (which the container gets by a
 * read-only bind of the host's /usr), empty mount points, and a minimal /etc
 * of berth's own, so that the host's and other tenants' users are never
 * listed inside. The few host /etc entries programs need are bound over the
 * empty files and directories made here (mounts.c).
 *
 * `berth serve` prepares the stack in full when it starts; `berth container
 * run` only checks a stamp beside it (`<dir>.made`, not in it: the stack is
 * every container's lowest layer), which a full prepare writes last: a
 * fingerprint of the tables below and the identity and change times
 * (ctime) of the stack's root and etc/. A berth whose skeleton differs, an
 * entry added to or removed from either directory, or a chmod or chown of
 * either makes the check fail and the run prepare the stack in full; ~45
 * system calls a start fewer otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
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

/* FNV-1a, 64 bits, over `s` and its terminating NUL (so "ab","c" differs from "a","bc"). */
static uint64_t fingerprint_add(uint64_t h, const char *s)
{
    do {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    } while (*s++);
    return h;
}

/* What the stack holds, as berth builds it: its tables, and the modes ensure_mode() sets. */
static uint64_t skeleton_fingerprint(void)
{
    uint64_t h = fingerprint_add(0xcbf29ce484222325ULL, "dirs 0755, tmp and var/tmp 01777");

    for (size_t i = 0; i < sizeof(skeleton_dirs) / sizeof(*skeleton_dirs); i++)
        h = fingerprint_add(h, skeleton_dirs[i]);
    for (size_t i = 0; i < sizeof(skeleton_links) / sizeof(*skeleton_links); i++)
        h = fingerprint_add(fingerprint_add(h, skeleton_links[i][0]), skeleton_links[i][1]);
    for (size_t i = 0; i < sizeof(skeleton_mountpoints) / sizeof(*skeleton_mountpoints); i++)
        h = fingerprint_add(h, skeleton_mountpoints[i]);
    for (size_t i = 0; i < sizeof(skeleton_files) / sizeof(*skeleton_files); i++)
        h = fingerprint_add(fingerprint_add(h, skeleton_files[i].path), skeleton_files[i].content);
    return h;
}

/* The stamp's text for the stack as it is now; NULL when its root or etc/ cannot be read. */
static char *stamp_text(int dfd)
{
    struct stat root, etc;

    if (fstatat(dfd, "", &root, AT_EMPTY_PATH) < 0 ||
        fstatat(dfd, "etc", &etc, AT_SYMLINK_NOFOLLOW) < 0)
        return NULL;
    return xasprintf("%016" PRIx64 " %ju:%ju %jd.%09ld %jd.%09ld\n", skeleton_fingerprint(),
                     (uintmax_t)root.st_dev, (uintmax_t)root.st_ino, (intmax_t)root.st_ctim.tv_sec,
                     root.st_ctim.tv_nsec, (intmax_t)etc.st_ctim.tv_sec, etc.st_ctim.tv_nsec);
}

/* Whether the stamp file holds exactly `want`. */
static bool stamp_matches(const char *stamp, const char *want)
{
    _cleanup_close_ int fd = open(stamp, O_RDONLY | O_CLOEXEC);
    char got[128];
    ssize_t n;

    if (fd < 0 || (n = read(fd, got, sizeof(got) - 1)) < 0)
        return false;
    got[n] = '\0';
    return strcmp(got, want) == 0;
}

bool runner_stack_made(const char *dir)
{
    _cleanup_free_ char *stamp = xasprintf("%s.made", dir);
    _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    _cleanup_free_ char *want = dfd >= 0 ? stamp_text(dfd) : NULL;

    return want && stamp_matches(stamp, want);
}

/* Writes the stamp runner_stack_made() checks, once everything else is in place. */
static int write_stamp(int dfd, const char *dir, struct berth_error **err)
{
    _cleanup_free_ char *stamp = xasprintf("%s.made", dir);
    _cleanup_free_ char *text = stamp_text(dfd);

    if (!text)
        return berth_error_make(err, errno, "stat stack '%s'", dir);
    if (stamp_matches(stamp, text))
        return 0;
    return write_file_atomic(stamp, text, strlen(text), 0644, err);
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
    return write_stamp(dfd, dir, err);
}
