/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/setup-ssh: `berth setup --ssh` (serve.h), the root step that lets
 * Debian's sshd log the berth user in with the keys berth writes
 * (keys.h). Apart from setup.c so the ssh transport's one host change
 * stays in one place; usermod from Debian's passwd package edits
 * /etc/passwd and /etc/shadow, with its locking. What lies inside the
 * user's home (~/.ssh) is made by a child dropped to the user.
 */
#include "control/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <shadow.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"

/* Runs usermod with argv, and fails unless it exits 0. */
static int usermod(const char *const *argv, struct berth_error **err)
{
    extern char **environ;
    pid_t pid;
    int status, r = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);

    if (r != 0)
        return berth_error_make(err, r, "running %s", argv[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "waiting for %s", argv[0]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return berth_error_plain(err, EIO, "'%s' failed (status 0x%x)", argv[0], (unsigned)status);
    return 0;
}

/* Refuses `path` (fd) unless it is of `type` and the user's, and, a file, has one link. */
static int check_own(int fd, const char *path, mode_t type, const struct passwd *pw, struct berth_error **err)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "stat '%s'", path);
    if ((st.st_mode & S_IFMT) != type)
        return berth_error_plain(err, EPERM, "'%s' is not a %s: remove it", path,
                                 type == S_IFDIR ? "directory" : "regular file");
    if (st.st_uid != pw->pw_uid)
        return berth_error_plain(err, EPERM, "'%s' belongs to uid %u, not to '%s' (uid %u)", path,
                                 (unsigned)st.st_uid, pw->pw_name, (unsigned)pw->pw_uid);
    if (type == S_IFREG && st.st_nlink != 1)
        return berth_error_plain(err, EPERM, "'%s' has %lu hard links: remove it", path,
                                 (unsigned long)st.st_nlink);
    return 0;
}

/* openat() of `name` in dfd without following a symlink, which it names as such when refused. */
static int open_nofollow(int dfd, const char *name, int flags, const char *path, struct berth_error **err)
{
    int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct stat st;

    if (fd >= 0)
        return fd;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return berth_error_plain(err, ELOOP, "'%s' is a symlink: sshd wants the user's own directory and file; "
                                 "remove it", path);
    return berth_error_make(err, errno, "opening '%s'", path);
}

/*
 * ~/.ssh and authorized_keys, the user's own, with the modes sshd's
 * StrictModes wants. Runs as the user (ssh_dir_as_user()), never as root:
 * a symlink or hard link the user planted there can lead the chmod and the
 * open to nothing the user could not change itself. Symlinks and shared
 * files are refused all the same, so the message says what is wrong.
 */
static int ssh_dir(const struct passwd *pw, struct berth_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/.ssh", pw->pw_dir);
    _cleanup_free_ char *keys = xasprintf("%s/authorized_keys", dir);
    _cleanup_close_ int dfd = -1, fd = -1;
    int r;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "creating '%s'", dir);
    if ((dfd = open_nofollow(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, dir, err)) < 0)
        return dfd;
    if ((r = check_own(dfd, dir, S_IFDIR, pw, err)) < 0)
        return r;
    if (fchmod(dfd, 0700) < 0)
        return berth_error_make(err, errno, "chmod '%s'", dir);
    /* Read-only (the keys are written by keys.c) and non-blocking: a FIFO planted there fails the check. */
    if ((fd = open_nofollow(dfd, "authorized_keys", O_RDONLY | O_CREAT | O_NONBLOCK, keys, err)) < 0)
        return fd;
    if ((r = check_own(fd, keys, S_IFREG, pw, err)) < 0)
        return r;
    if (fchmod(fd, 0600) < 0)
        return berth_error_make(err, errno, "chmod '%s'", keys);
    return 0;
}

/*
 * ssh_dir() in a child that drops to the user for good first, as a serve
 * started as root does (setup_drop_privileges()); its message, if any,
 * comes back through a pipe.
 */
static int ssh_dir_as_user(const struct passwd *pw, struct berth_error **err)
{
    _cleanup_close_ int rfd = -1, wfd = -1;
    char msg[1024];
    size_t len = 0;
    ssize_t n;
    int pfd[2], status;
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe");
    rfd = pfd[0];
    wfd = pfd[1];
    if ((pid = fork()) < 0)
        return berth_error_make(err, errno, "fork");
    if (pid == 0) {
        _cleanup_error_ struct berth_error *cerr = NULL;
        int r = setup_drop_privileges(pw->pw_uid, pw->pw_gid, pw->pw_name, pw->pw_dir, &cerr);

        if (r >= 0)
            r = ssh_dir(pw, &cerr);
        if (r < 0)
            (void)write_all(wfd, berth_error_msg(&cerr), strlen(berth_error_msg(&cerr)));
        _exit(r < 0 ? 1 : 0);
    }
    close(TAKE_FD(wfd));
    while (len < sizeof(msg) - 1) {
        n = read(rfd, msg + len, sizeof(msg) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    msg[len] = '\0';
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "waiting for the child setting up '~%s/.ssh'", pw->pw_name);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return berth_error_plain(err, EPERM, "%s", len ? msg : "the child setting up ~/.ssh failed");
}

int setup_ssh(const char *user, struct berth_error **err)
{
    struct passwd *pw = getpwnam(user);
    struct spwd *sp;
    int r;

    if (!pw)
        return berth_error_plain(err, ENOENT, "no user '%s'", user);
    if (!pw->pw_shell || !*pw->pw_shell || strstr(pw->pw_shell, "nologin") || strstr(pw->pw_shell, "false")) {
        const char *argv[] = { "usermod", "--shell", "/bin/sh", user, NULL };

        if ((r = usermod(argv, err)) < 0)
            return berth_error_wrap(err, "giving '%s' a shell for sshd's forced command", user);
    }
    sp = getspnam(user);
    if (sp && sp->sp_pwdp && sp->sp_pwdp[0] == '!') {
        /* '*': no password can log in, but the account is not locked for key logins. */
        const char *argv[] = { "usermod", "--password", "*", user, NULL };

        if ((r = usermod(argv, err)) < 0)
            return berth_error_wrap(err, "unlocking '%s' for ssh key logins", user);
    }
    pw = getpwnam(user);
    if (!pw)
        return berth_error_plain(err, ENOENT, "no user '%s'", user);
    return ssh_dir_as_user(pw, err);
}
