/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/setup-ssh: `berth setup --ssh` (serve.h), the root step that lets
 * Debian's sshd log the berth user in with the keys berth writes
 * (keys.h). Apart from setup.c so the ssh transport's one host change
 * stays in one place; usermod from Debian's passwd package edits
 * /etc/passwd and /etc/shadow, with its locking.
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

/* ~/.ssh and authorized_keys, the user's own, with the modes sshd's StrictModes wants. */
static int ssh_dir(const struct passwd *pw, struct berth_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/.ssh", pw->pw_dir);
    _cleanup_free_ char *keys = xasprintf("%s/authorized_keys", dir);
    _cleanup_close_ int fd = -1;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "creating '%s'", dir);
    if (lchown(dir, pw->pw_uid, pw->pw_gid) < 0 || chmod(dir, 0700) < 0)
        return berth_error_make(err, errno, "chown/chmod '%s'", dir);
    fd = open(keys, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return berth_error_make(err, errno, "creating '%s'", keys);
    if (fchown(fd, pw->pw_uid, pw->pw_gid) < 0 || fchmod(fd, 0600) < 0)
        return berth_error_make(err, errno, "chown/chmod '%s'", keys);
    return 0;
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
    return ssh_dir(pw, err);
}
