/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The keeper's spare network namespaces (keeper.h). Making a network
 * namespace is the dearest part of a container's clone: ~0.45 ms of a
 * ~5 ms start here, where the mount, pid, ipc and uts namespaces together
 * take ~0.1 ms (bwrap pays it too). So the user-namespace keeper (keeper.c)
 * keeps KEEPER_SPARES made ahead, each in a child of its own,
 * "berth-netns", that made it with unshare(CLONE_NEWNET) at SCHED_IDLE (on
 * CPU time nothing else wants) and sleeps in it; a `berth container run`
 * without --net takes one for its container, and the keeper makes another.
 *
 * Each is offered in its slot's file beside the keeper's pid file,
 * "netns-<map>.<slot>.pid", holding the holder's pid and the namespace's
 * inode. A run claims one by renaming its file away, so two runs never
 * take the same one, then opens the holder's namespace and takes it only
 * if every check holds: the inode is the one written, the holder is the
 * keeper's child (a pid reused by a container's process never is), the
 * namespace belongs to the kept user namespace, and the holder still lives
 * once it is open (so the pid named it throughout).
 *
 * The holder brings up the namespace's loopback, which the container's
 * child would otherwise do on its start, and sleeps on in that namespace
 * (it keeps no socket, opens nothing more and only waits to be killed)
 * until the run is over: the run's sweeper, once the container's init is
 * gone, kills it (or keeper_spare_done()), and the keeper, woken by
 * SIGCHLD, makes the next spare then. Made at once, the next spare's
 * ~0.5 ms in the kernel, which nothing preempts on this kernel
 * (PREEMPT_NONE), landed in the middle of the claiming run's own start and
 * took back what the spare had saved. A run that finds none,
 * or one that fails a check, makes its namespace in the clone as before.
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "runner/init.h"
#include "runner/keeper.h"
#include "runner/network.h"
#include "common/banned.h"

/* The holder: make the namespace, offer it, sleep in it until killed (or the keeper dies). */
__attribute__((noreturn))
static void holder_main(const char *spare_file, pid_t keeper)
{
    struct sched_param idle = { 0 };
    _cleanup_free_ char *tmp = xasprintf("%s.%d", spare_file, (int)getpid()), *text = NULL;
    struct stat st;
    int fd;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != keeper)
        _exit(1);
    (void)prctl(PR_SET_NAME, "berth-netns", 0, 0, 0);
    init_neutral_cmdline("berth-netns");
    /* Off every other task's time: the next run needs it only later. */
    (void)sched_setscheduler(0, SCHED_IDLE, &idle);
    if (unshare(CLONE_NEWNET) < 0 || stat("/proc/self/ns/net", &st) < 0)
        _exit(1);
    /* Its loopback up now, off the claiming run's start (the child checks it). */
    (void)network_loopback_up(NULL);
    text = xasprintf("%d %llu\n", (int)getpid(), (unsigned long long)st.st_ino);
    /* Whole or not at all (a claimer reads it once renamed); no fsync: it lives as we do. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || close(fd) < 0 ||
        rename(tmp, spare_file) < 0) {
        (void)unlink(tmp);
        _exit(1);
    }
    for (;;)
        (void)pause();
}

pid_t keeper_spare_start(const char *spare_file)
{
    pid_t keeper = getpid(), pid = fork();

    if (pid == 0)
        holder_main(spare_file, keeper);
    return pid;
}

void keeper_spare_stop(pid_t holder, const char *spare_file)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    if (holder <= 0)
        return;
    (void)kill(holder, SIGKILL);
    /* Not a file that names another holder (a later keeper's). */
    if (read_file(spare_file, &sb, 64, NULL) == 0 && atoi(sb.buf) == holder)
        (void)unlink(spare_file);
}

/* The parent pid of `pid` (field 4 of /proc/<pid>/stat, after the comm's ")"); 0 if unknown. */
static pid_t parent_of(pid_t pid)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/stat", (int)pid);
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    const char *p;
    int ppid;

    if (read_file(path, &sb, 4096, NULL) < 0 || !(p = strrchr(sb.buf, ')')) ||
        sscanf(p + 1, " %*c %d", &ppid) != 1)
        return 0;
    return (pid_t)ppid;
}

/* Whether the network namespace `netfd` is owned by the caller's user namespace. */
static bool owned_by_ours(int netfd)
{
    _cleanup_close_ int owner = ioctl(netfd, NS_GET_USERNS), self = open("/proc/self/ns/user",
                                                                          O_RDONLY | O_CLOEXEC);

    return owner >= 0 && self >= 0 && keeper_same_ns(owner, self);
}

/* The claimed holder's namespace, if every check of the top of this file holds. */
static int open_spare(pid_t holder, unsigned long long ino, pid_t keeper, struct keeper_spare *ret)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/ns/net", (int)holder);
    _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, holder, 0), netfd = -1;
    struct stat st;

    if (pidfd < 0)
        return -1;
    netfd = open(path, O_RDONLY | O_CLOEXEC);
    if (netfd < 0 || fstat(netfd, &st) < 0 || (unsigned long long)st.st_ino != ino ||
        parent_of(holder) != keeper || !owned_by_ours(netfd) ||
        syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
        return -1;
    *ret = (struct keeper_spare){ .net_fd = TAKE_FD(netfd), .holder_pidfd = TAKE_FD(pidfd) };
    return 0;
}

void keeper_spare_done(struct keeper_spare *s)
{
    if (s->holder_pidfd >= 0)
        (void)syscall(SYS_pidfd_send_signal, s->holder_pidfd, SIGKILL, NULL, 0);
    closep(&s->holder_pidfd);
    closep(&s->net_fd);
}

/* Claims the spare of one slot: whoever renames its file first has it; the others find none. */
static int claim_slot(const char *base, int slot, pid_t keeper, struct keeper_spare *ret)
{
    _cleanup_free_ char *file = keeper_spare_slot(base, slot), *claimed = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    unsigned long long ino;
    int holder;

    claimed = xasprintf("%s.claimed.%d", file, (int)getpid());
    if (rename(file, claimed) < 0)
        return -1;
    if (read_file(claimed, &sb, 64, NULL) < 0 || sscanf(sb.buf, "%d %llu", &holder, &ino) != 2 ||
        holder <= 0) {
        (void)unlink(claimed);
        return -1;
    }
    (void)unlink(claimed);
    return open_spare((pid_t)holder, ino, keeper, ret);
}

int keeper_claim_netns(const struct keeper_ref *keeper, struct keeper_spare *ret)
{
    *ret = (struct keeper_spare){ .net_fd = -1, .holder_pidfd = -1 };
    if (keeper->pid <= 0 || !keeper->spare_base)
        return -1;
    for (int slot = 0; slot < KEEPER_SPARES; slot++)
        if (claim_slot(keeper->spare_base, slot, keeper->pid, ret) == 0)
            return 0;
    return -1;
}
