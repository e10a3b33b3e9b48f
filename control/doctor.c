/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/doctor: the host checks behind `berth doctor` and the start of
 * `berth serve` (doctor.h). Each check is one function that answers 0 or
 * -errno with a message naming the fix; the cgroup and network checks are
 * the runner's own (runner_cgroup_check, runner_network_check), so doctor
 * and the daemon cannot disagree. The user namespace and overlay checks
 * are real: a forked child unshares, maps itself and mounts an overlay with
 * userxattr over a scratch directory, as the runner does for every
 * container. Run before any thread (it forks).
 */
#include "control/doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "control/model.h"
#include "control/subid.h"
#include "runner/runner.h"
#include "common/banned.h"

/* Longest message a probe child hands back. */
#define PROBE_MSG_MAX 1024

struct check {
    const char *name;
    enum doctor_kind kind;
    int (*run)(const char *scratch, struct berth_error **err);
};

/* ------------------------------------------------------------------------
 * probes in a forked child
 */

/*
 * Runs fn(arg) in a child; its error message comes back through a pipe.
 * The child never returns to the caller's code: it _exits.
 */
static int probe_in_child(int (*fn)(const char *arg, struct berth_error **err), const char *arg,
                          struct berth_error **err)
{
    char msg[PROBE_MSG_MAX];
    int fds[2], status;
    ssize_t n;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe");
    pid = fork();
    if (pid < 0) {
        (void)close(fds[0]);
        (void)close(fds[1]);
        return berth_error_make(err, errno, "fork");
    }
    if (pid == 0) {
        struct berth_error *e = NULL;
        int r = fn(arg, &e);

        if (r < 0) {
            const char *m = berth_error_msg(&e);
            (void)!write(fds[1], m, strlen(m));
        }
        _exit(r < 0 ? 1 : 0);
    }
    (void)close(fds[1]);
    n = read(fds[0], msg, sizeof(msg) - 1);
    (void)close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "waitpid");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    msg[n > 0 ? n : 0] = '\0';
    return berth_error_plain(err, EPERM, "%s", n > 0 ? msg : "the probe died");
}

static int write_proc(const char *file, const char *value, struct berth_error **err)
{
    _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC);

    if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
        return berth_error_make(err, errno, "write '%s'", file);
    return 0;
}

/* The kernel's switches that forbid unprivileged user namespaces, as a fix to name. */
static const char *userns_fix(void)
{
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;

    if (read_file("/proc/sys/kernel/unprivileged_userns_clone", &v, 64, NULL) == 0 && v.buf[0] == '0')
        return "sysctl -w kernel.unprivileged_userns_clone=1 (and set it in /etc/sysctl.d)";
    strbuf_setlen(&v, 0);
    if (read_file("/proc/sys/user/max_user_namespaces", &v, 64, NULL) == 0 && v.buf[0] == '0')
        return "sysctl -w user.max_user_namespaces=15000 (and set it in /etc/sysctl.d)";
    strbuf_setlen(&v, 0);
    if (read_file("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &v, 64, NULL) == 0 &&
        v.buf[0] == '1')
        return "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile "
               "allowing userns for berth";
    return "allow unprivileged user namespaces in the kernel (CONFIG_USER_NS) and its sysctls";
}

/* In the child: a user namespace mapping only this user to root in it. */
static int enter_userns(struct berth_error **err)
{
    char map[64];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int r;

    /*
     * A process that changed its ids is not dumpable, and then its
     * /proc/self files are root's and it could not write its own maps.
     * setup_drop_privileges() (root's doctor, a serve started as root)
     * already made the caller dumpable again; this child makes sure of it
     * whoever calls. It holds nothing secret.
     */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        return berth_error_make(err, errno, "prctl(PR_SET_DUMPABLE)");
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return berth_error_plain(err, errno, "unshare(CLONE_NEWUSER) as uid %u: %s; %s", (unsigned)uid,
                                 strerror(errno), userns_fix());
    (void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
    if ((r = write_proc("/proc/self/setgroups", "deny", err)) < 0 ||
        (r = write_proc("/proc/self/uid_map", map, err)) < 0)
        return r;
    (void)snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
    return write_proc("/proc/self/gid_map", map, err);
}

static int userns_probe(const char *unused, struct berth_error **err)
{
    (void)unused;
    return enter_userns(err);
}

/*
 * In the child: an overlay as the runner mounts it (userxattr, in a user
 * namespace) over <dir>/{lower,upper,work}, then a delete through it, which
 * needs a whiteout in the upper layer. The tree goes with the child's
 * namespace root, which may remove what the kernel made mode 000.
 */
static int overlay_probe(const char *dir, struct berth_error **err)
{
    _cleanup_free_ char *opts = xasprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work,userxattr",
                                          dir, dir, dir);
    _cleanup_free_ char *merged = xasprintf("%s/merged", dir);
    _cleanup_free_ char *victim = xasprintf("%s/merged/file", dir);
    int r;

    if ((r = enter_userns(err)) < 0)
        return r;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return berth_error_make(err, errno, "make the mounts private");
    if (mount("overlay", merged, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
        return berth_error_plain(err, errno, "mount overlay (userxattr) in a user namespace below '%s': "
                                 "%s; berth needs Linux 5.11 or later with overlayfs, on a filesystem "
                                 "with user xattrs (ext4, xfs, btrfs; tmpfs from 6.6)", dir, strerror(errno));
    if (unlink(victim) < 0)
        return berth_error_make(err, errno, "delete a lower file through the overlay in '%s'", dir);
    (void)umount2(merged, MNT_DETACH);
    return rm_rf(dir, err);
}

/* ------------------------------------------------------------------------
 * the checks
 */

static int check_userns(const char *scratch, struct berth_error **err)
{
    (void)scratch;
    return probe_in_child(userns_probe, NULL, err);
}

static int check_subids(const char *scratch, struct berth_error **err)
{
    struct passwd *pw = getpwuid(geteuid());
    const char *name = pw ? pw->pw_name : "?";
    unsigned long u, g;

    (void)scratch;
    u = subid_count_slices(SUBUID_FILE, name, geteuid(), TENANT_ID_SLICE);
    g = subid_count_slices(SUBGID_FILE, name, geteuid(), TENANT_ID_SLICE);
    if (u == 0 || g == 0)
        return berth_error_plain(err, ENOENT, "user '%s' has no range of %lu subordinate %s in %s; run "
                                 "'berth setup --user %s' as root", name, TENANT_ID_SLICE,
                                 u == 0 ? "uids" : "gids", u == 0 ? SUBUID_FILE : SUBGID_FILE, name);
    return 0;
}

static int check_one_idmap(const char *path, struct berth_error **err)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return berth_error_make(err, errno, "'%s' is missing; apt-get install uidmap", path);
    if (st.st_uid != 0 || !(st.st_mode & S_ISUID) || !(st.st_mode & S_IXOTH))
        return berth_error_plain(err, EPERM, "'%s' is not setuid root and executable by all; "
                                 "apt-get install --reinstall uidmap", path);
    return 0;
}

static int check_idmap_tools(const char *scratch, struct berth_error **err)
{
    int r;

    (void)scratch;
    if ((r = check_one_idmap("/usr/bin/newuidmap", err)) < 0)
        return r;
    return check_one_idmap("/usr/bin/newgidmap", err);
}

static int check_cgroups(const char *scratch, struct berth_error **err)
{
    (void)scratch;
    return runner_cgroup_check(err);
}

static int check_cgroup_owner(const char *scratch, struct berth_error **err)
{
    (void)scratch;
    return runner_cgroup_check_owner(err);
}

static int check_cpu_quota(const char *scratch, struct berth_error **err)
{
    (void)scratch;
    return runner_cgroup_check_cpu_quota(err);
}

static int check_overlay(const char *scratch, struct berth_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/.doctor-XXXXXX", scratch);
    const char *const sub[] = { "lower", "upper", "work", "merged" };
    _cleanup_free_ char *file = NULL;
    int r;

    if (!mkdtemp(dir))
        return berth_error_make(err, errno, "create a scratch directory in '%s'", scratch);
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, sub[i]);

        if (mkdir(p, 0755) < 0) {
            r = berth_error_make(err, errno, "mkdir '%s'", p);
            goto out;
        }
    }
    file = xasprintf("%s/lower/file", dir);
    if ((r = write_file_atomic(file, "x", 1, 0644, err)) < 0)
        goto out;
    r = probe_in_child(overlay_probe, dir, err);
out:
    (void)rm_rf(dir, NULL);
    return r;
}

static int check_network(const char *scratch, struct berth_error **err)
{
    (void)scratch;
    return runner_network_check(err);
}

static const struct check checks[] = {
    { "user namespaces", DOCTOR_REQUIRED, check_userns },
    { "subordinate ids", DOCTOR_REQUIRED, check_subids },
    { "newuidmap and newgidmap", DOCTOR_REQUIRED, check_idmap_tools },
    { "overlay with userxattr", DOCTOR_REQUIRED, check_overlay },
    { "cgroups delegated", DOCTOR_LIMITS, check_cgroups },
    { "cgroup subtree ownership", DOCTOR_LIMITS, check_cgroup_owner },
    { "cpu quotas", DOCTOR_LIMITS, check_cpu_quota },
    { "outbound network (pasta, /dev/net/tun)", DOCTOR_NETWORK, check_network },
};

unsigned doctor_run(FILE *out, unsigned fatal, const char *scratch, struct berth_error **err)
{
    unsigned failed = 0;

    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        _cleanup_error_ struct berth_error *e = NULL;

        if (checks[i].run(scratch, &e) == 0) {
            if (out)
                fprintf(out, "ok   %s\n", checks[i].name);
            continue;
        }
        if (out)
            fprintf(out, "FAIL %s: %s\n", checks[i].name, berth_error_msg(&e));
        if (!(checks[i].kind & fatal))
            continue;
        if (failed++ == 0)
            berth_error_plain(err, berth_error_code(&e), "%s: %s", checks[i].name, berth_error_msg(&e));
    }
    if (out)
        fflush(out);
    return failed;
}
