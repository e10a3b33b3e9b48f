/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The user-namespace keeper (keeper.h): a small process that holds a user
 * namespace with one id mapping, so that one-shot commands
 * (runner_run_once) join it instead of making a new namespace each time.
 * Writing a mapping of many ids takes the setuid newuidmap and newgidmap,
 * two execs of ~1.2 ms each, more than half of a whole container start;
 * rootless podman keeps its "pause process" for the same reason.
 *
 * The keeper is found through a pid file in a directory only the user can
 * write ($XDG_RUNTIME_DIR/berth, else /tmp/berth-<uid>, which must be the
 * user's own and mode 0700), named after the mapping. A namespace is taken
 * only if it is the user's own (owner uid), a child of the caller's, and
 * maps exactly the ids asked for: a stale or foreign pid file costs a new
 * keeper, never a wrong namespace. Every use touches the pid file; the
 * keeper exits once it has not been touched for KEEPER_IDLE_SECONDS, or as
 * soon as the file no longer names it. It runs as the user (not as any
 * mapped id), named "berth-userns", holds no fd of its caller, and
 * sleeps: a namespace shared by the containers of one id slice, which share
 * those ids anyway (each container still has its own mount, pid, network,
 * ipc, uts and cgroup namespaces). It also keeps spare network namespaces
 * for the next runs (keeper-netns.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/init.h"
#include "runner/keeper.h"
#include "runner/proto.h"
#include "common/banned.h"

/* `dir`, created 0700 if missing, when it is the user's own and closed to others. */
static bool private_dir(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return false;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == getuid() &&
           !(st.st_mode & 077);
}

/*
 * The user's own directory for the pid files: $XDG_RUNTIME_DIR/berth, else
 * (unset, or an environment inherited from another user, as `su` keeps it)
 * /tmp/berth-<uid>; NULL when neither is safe.
 */
static char *keeper_dir(void)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char *dir;

    if (xdg && xdg[0] == '/') {
        dir = xasprintf("%s/berth", xdg);
        if (private_dir(dir))
            return dir;
        free(dir);
    }
    dir = xasprintf("/tmp/berth-%u", (unsigned)getuid());
    if (private_dir(dir))
        return dir;
    free(dir);
    return NULL;
}

/* Whether /proc/<pid>/<file> is the one line "0 base count". */
static bool map_is(pid_t pid, const char *file, unsigned long base, unsigned long count)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/%s", (int)pid, file);
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    unsigned long in, out, n;
    int used = 0;

    if (read_file(path, &sb, 4096, NULL) < 0)
        return false;
    return sscanf(sb.buf, " %lu %lu %lu %n", &in, &out, &n, &used) == 3 &&
           sb.buf[used] == '\0' && in == 0 && out == base && n == count;
}

bool keeper_same_ns(int a, int b)
{
    struct stat sa, sb;

    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Whether `pid` lives (not a zombie: it has namespaces other than its credentials' one). */
static bool alive(pid_t pid)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/ns/net", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

    return fd >= 0;
}

/* An fd of the user namespace of `pid` if it is the one asked for (see above), else -1. */
static int open_checked(pid_t pid, unsigned long uid_base, unsigned long gid_base,
                        unsigned long count)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/ns/user", (int)pid);
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC), again = -1, parent = -1, self = -1;
    uid_t owner;

    if (fd < 0 || ioctl(fd, NS_GET_OWNER_UID, &owner) < 0 || owner != getuid())
        return -1;
    parent = ioctl(fd, NS_GET_PARENT);
    self = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    if (parent < 0 || self < 0 || !keeper_same_ns(parent, self))
        return -1;
    if (!map_is(pid, "uid_map", uid_base, count) || !map_is(pid, "gid_map", gid_base, count))
        return -1;
    /*
     * The maps read were that namespace's only if the pid still lives in it,
     * and lives: a killed keeper's zombie (whose reaper may take its time)
     * still has its credentials, so its ns/user opens, but no ns/net.
     */
    again = open(path, O_RDONLY | O_CLOEXEC);
    if (again < 0 || !keeper_same_ns(fd, again) || !alive(pid))
        return -1;
    return TAKE_FD(fd);
}

/* The base of the names of the keeper's socket and spares' files (keeper-netns.c adds the rest). */
static char *spare_base_in(const char *dir, unsigned long uid_base, unsigned long gid_base,
                           unsigned long count)
{
    return xasprintf("%s/netns-%lu-%lu-%lu", dir, uid_base, gid_base, count);
}

/* Whether the keeper's lease is over: its pid file stale, gone, or naming another. */
static bool lease_over(const char *pidfile)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    struct timespec now;
    struct stat st;

    if (stat(pidfile, &st) < 0 || read_file(pidfile, &sb, 64, NULL) < 0 || atoi(sb.buf) != getpid())
        return true;
    (void)clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec - st.st_mtim.tv_sec > KEEPER_IDLE_SECONDS;
}

/*
 * The keeper's life: wait until its pid file is stale or names another,
 * keeping spare network namespaces meanwhile (keeper-netns.c).
 */
__attribute__((noreturn))
static void keeper_main(const char *pidfile, const char *spare_base, int sync_fd)
{
    struct sched_param idle = { 0 };
    struct keeper_spares *spares;
    sigset_t none;
    char go;
    int nul;

    /* Not the caller's blocked signals (runner_run_once blocks a few): TERM must end it. */
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)setsid();
    (void)prctl(PR_SET_NAME, "berth-userns", 0, 0, 0);
    /* In ps, not the command that started it (nor its environment). */
    init_neutral_cmdline("berth-userns");
    if (chdir("/") < 0 || read(sync_fd, &go, 1) != 1)
        _exit(1);
    /* Nothing of the caller's: not its stdout (a `$(berth ...)` would wait on it), no other fd. */
    (void)syscall(SYS_close_range, 0, ~0U, 0);
    nul = open("/dev/null", O_RDWR);
    if (nul != 0 || dup2(0, 1) != 1 || dup2(0, 2) != 2)
        _exit(1);
    /* Its work (making spares) waits for idle CPUs; nothing waits on it. */
    (void)sched_setscheduler(0, SCHED_IDLE, &idle);
    spares = keeper_spares_open(spare_base);
    for (;;) {
        keeper_spares_serve(spares, KEEPER_CHECK_SECONDS * 1000);
        if (lease_over(pidfile)) {
            keeper_spares_close(spares);
            _exit(0);
        }
    }
}

/*
 * Starts a keeper, reparented to init at once (a child that forks it and
 * exits), maps its ids, records it in pidfile and lets it go; *ret_fd is
 * its user namespace.
 */
static int keeper_start(const char *pidfile, const char *spare_base, unsigned long uid_base,
                        unsigned long gid_base, unsigned long count, int *ret_fd, pid_t *ret_keeper,
                        struct berth_error **err)
{
    _cleanup_close_ int sync_p = -1, mid_fd = -1, ns = -1;
    _cleanup_free_ char *nspath = NULL, *pidtext = NULL;
    int sv[2], r, mid_pidfd = -1;
    pid_t mid, pid = 0;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    sync_p = sv[0];
    mid = container_clone(0, &mid_pidfd);
    if (mid == 0) {
        pid_t k;
        int k_pidfd;

        (void)signal(SIGCHLD, SIG_DFL);
        k = container_clone(CLONE_NEWUSER, &k_pidfd);
        if (k == 0)
            keeper_main(pidfile, spare_base, sv[1]);
        _exit(k > 0 && write(sv[1], &k, sizeof(k)) == sizeof(k) ? 0 : 1);
    }
    (void)close(sv[1]);
    if (mid < 0)
        return berth_error_make(err, errno, "fork the user-namespace keeper");
    mid_fd = mid_pidfd;
    if (read(sync_p, &pid, sizeof(pid)) != sizeof(pid) || pid <= 0)
        r = berth_error_plain(err, ECHILD, "the user-namespace keeper did not start");
    else
        r = container_map_ids(pid, uid_base, gid_base, count, err);
    (void)container_reap(mid_fd, true);
    if (r < 0) {
        if (pid > 0)
            (void)kill(pid, SIGKILL);
        return r;
    }
    nspath = xasprintf("/proc/%d/ns/user", (int)pid);
    ns = open(nspath, O_RDONLY | O_CLOEXEC);
    pidtext = xasprintf("%d\n", (int)pid);
    if (ns < 0) {
        r = berth_error_make(err, errno, "open '%s'", nspath);
    } else if ((r = write_file_atomic(pidfile, pidtext, strlen(pidtext), 0600, err)) == 0 &&
               send(sync_p, "g", 1, MSG_NOSIGNAL) != 1) {
        r = berth_error_make(err, errno, "release the user-namespace keeper");
    }
    if (r < 0) {
        (void)kill(pid, SIGKILL);
        return r;
    }
    *ret_fd = TAKE_FD(ns);
    *ret_keeper = pid;
    return 0;
}

bool keeper_in_userns(unsigned long uid_base, unsigned long gid_base, unsigned long count)
{
    pid_t self = getpid();

    return map_is(self, "uid_map", uid_base, count) && map_is(self, "gid_map", gid_base, count);
}

int keeper_userns(unsigned long uid_base, unsigned long gid_base, unsigned long count,
                  int *ret_fd, struct keeper_ref *ret_keeper, struct berth_error **err)
{
    _cleanup_free_ char *dir = keeper_dir(), *pidfile = NULL, *spare = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    pid_t pid;
    int fd, r;

    if (!dir)
        return berth_error_plain(err, EPERM, "no private directory for the user-namespace keeper");
    pidfile = xasprintf("%s/userns-%lu-%lu-%lu.pid", dir, uid_base, gid_base, count);
    spare = spare_base_in(dir, uid_base, gid_base, count);
    if (read_file(pidfile, &sb, 64, NULL) == 0 && (pid = (pid_t)atoi(sb.buf)) > 0 &&
        (fd = open_checked(pid, uid_base, gid_base, count)) >= 0) {
        /* The lease: the keeper lives on for KEEPER_IDLE_SECONDS after this. */
        (void)utimensat(AT_FDCWD, pidfile, NULL, 0);
        *ret_fd = fd;
    } else {
        r = keeper_start(pidfile, spare, uid_base, gid_base, count, ret_fd, &pid, err);
        if (r < 0)
            return r;
    }
    *ret_keeper = (struct keeper_ref){ .pid = pid, .spare_base = TAKE_PTR(spare) };
    return 0;
}

void keeper_ref_release(struct keeper_ref *k)
{
    free(k->spare_base);
    k->spare_base = NULL;
}
