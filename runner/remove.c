/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Removing a tree that containers wrote into (the spawner's side of
 * runner_remove_tree()). Such a tree mixes owners: berth's uid (state_dir,
 * the overlay's mount point, the work/work dir the overlay made with the
 * mounter's credentials) and the tenant's subordinate ids (everything the
 * container created). Berth's uid alone may not delete the latter; so a
 * child is cloned into a fresh user namespace with the same id mapping and
 * does the removal there without changing its uid: as the owner it may
 * delete in berth's own directories, and its capabilities in the namespace
 * cover every inode whose owner the mapping holds (the kernel grants
 * CAP_DAC_OVERRIDE and CAP_FOWNER only over mapped owners).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/proto.h"
#include "runner/remove.h"
#include "common/banned.h"

/* Each level holds a directory fd; deeper trees are refused, not half-removed silently. */
#define MAX_DEPTH 256

static int rm_at(int parent, const char *name, const char *top, int depth, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *e;
    int fd, r;

    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return berth_error_make(err, errno, "unlink '%s' below '%s'", name, top);
    if (depth >= MAX_DEPTH)
        return berth_error_plain(err, ELOOP, "'%s' is nested deeper than %d levels", top, MAX_DEPTH);
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

static int remove_path(const char *path, struct berth_error **err)
{
    _cleanup_free_ char *parent = xstrdup(path);
    _cleanup_close_ int pfd = -1;
    char *slash = strrchr(parent, '/');
    const char *name = slash + 1;

    *slash = '\0';
    pfd = open(parent[0] ? parent : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return berth_error_make(err, errno, "open '%s'", parent[0] ? parent : "/");
    return rm_at(pfd, name, path, 0, err);
}

int remove_tree_userns(const char *path, unsigned long uid_base, unsigned long gid_base,
                       unsigned long id_count, struct berth_error **err)
{
    _cleanup_close_ int sync_p = -1, pidfd = -1;
    struct stat st;
    int sv[2], r, status;
    pid_t pid;

    if (path[0] != '/' || !strcmp(path, "/") || path[strlen(path) - 1] == '/')
        return berth_error_plain(err, EINVAL, "refusing to remove '%s'", path);
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : berth_error_make(err, errno, "stat '%s'", path);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    sync_p = sv[0];
    pid = container_clone(CLONE_NEWUSER, &pidfd);
    if (pid == 0) {
        struct berth_error *e = NULL;
        sigset_t none;
        char go;

        proto_close_all_except(&sv[1], 1);
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        if (read(sv[1], &go, 1) != 1)
            _exit(1);
        if (remove_path(path, &e) < 0) {
            proto_report_error(sv[1], berth_error_code(&e), berth_error_msg(&e));
            _exit(1);
        }
        proto_report_ok(sv[1]);
        _exit(0);
    }
    r = pid < 0 ? -errno : 0;
    (void)close(sv[1]);
    if (r < 0)
        return berth_error_make(err, -r, "clone a user namespace to remove '%s'", path);
    if ((r = container_map_ids(pid, uid_base, gid_base, id_count, err)) < 0) {
        (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    } else if (send(sync_p, "g", 1, MSG_NOSIGNAL) != 1) {
        r = berth_error_make(err, errno, "release the removal of '%s'", path);
        (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    } else {
        r = proto_report_read(sync_p, "removal", err);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return r;
}
