/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The keeper's spare network namespaces (keeper.h). Making a network
 * namespace is the dearest part of a container's clone: ~0.45 ms of a
 * ~5 ms start here, where the mount, pid, ipc and uts namespaces together
 * take ~0.1 ms (bwrap pays it too). So the user-namespace keeper (keeper.c)
 * keeps KEEPER_SPARES made ahead, at SCHED_IDLE (on CPU time nothing else
 * wants); a `berth container run` without --net takes one for its
 * container, and the keeper makes another once that run is over.
 *
 * The keeper makes each itself, with no process of its own: unshare(2)
 * into a new network namespace, an fd of it kept, its loopback brought up
 * (which the container's child would otherwise do on its start), and
 * setns(2) back to the keeper's "home" namespace, made when it starts (the
 * host's namespace is not the kept user namespace's, so the keeper could
 * not go back there). Until 2026-12-06 each spare had a process of its
 * own that made it and slept in it; on a host where a fork and its exit
 * cost milliseconds of CPU (docs/BENCHMARKS.md), that process cost more
 * than the namespace it held.
 *
 * Each is offered in its slot's file beside the keeper's pid file,
 * "netns-<map>.<slot>.pid": "<keeper pid> <its start time> <fd> <inode>".
 * A run claims one by renaming its file away, so two runs never take the
 * same one, opens /proc/<keeper>/fd/<fd>, and takes it only if every check
 * holds: the file names the keeper the run joined (its pid, and its start
 * time, so not a file left by an earlier keeper whose pid came back), the
 * fd is a network namespace with the inode written, owned by the kept user
 * namespace, and the keeper still lives once it is open (so the pid named
 * it throughout). The claim ends with the inode taken, sent on the
 * keeper's socket ("netns-<map>.sock", connected before the rename: a run
 * that cannot tell the keeper claims nothing). Only then does the keeper
 * close its fd, never before: the namespace would end, and its inode and
 * fd number could come back with the next spare, which a second file would
 * offer again. The run keeps that connection until it is over (its
 * sweeper, once the container's init is gone, or keeper_spare_done()); the
 * connection's end is the keeper's sign to make the next spare. Made at
 * once, the next spare's ~0.5 ms in the kernel, which nothing preempts on
 * this kernel (PREEMPT_NONE), landed in the middle of the claiming run's
 * own start and took back what the spare had saved. A run that finds none,
 * or one that fails a check, makes its namespace in the clone as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "runner/init.h"
#include "runner/keeper.h"
#include "runner/network.h"
#include "common/banned.h"

/*
 * At most this many runs' connections at once. One past it is closed
 * unread: that run's spare, if it had taken the offer, stays with the
 * keeper (its slot idle) until the keeper exits.
 */
#define KEEPER_RUNS_MAX 256

/* What the keeper knows of a slot. */
enum slot_state {
    SLOT_EMPTY,                 /* to make */
    SLOT_OFFERED,               /* fd is the spare, its file offers it */
    SLOT_TAKEN,                 /* a run has it; made again when that run's connection ends */
    SLOT_SHUT,                  /* refused (by the host, or its offer unwritten): not tried again */
};

struct spare_slot {
    enum slot_state state;
    int fd;                     /* SLOT_OFFERED: the namespace */
    unsigned long long ino;     /* SLOT_OFFERED: its inode */
    char *file;                 /* its offer's file */
};

/* A run's connection: the slot it took (-1 until it says). */
struct spare_run {
    int fd;
    int slot;
};

struct keeper_spares {
    int home_fd;                /* the keeper's own network namespace */
    int listen_fd;
    unsigned long long start;   /* the keeper's start time (/proc/<pid>/stat) */
    struct spare_slot slot[KEEPER_SPARES];
    struct spare_run run[KEEPER_RUNS_MAX];
    int n_runs;
};

/* The file of a slot's offer (malloc'ed). */
static char *slot_file(const char *base, int slot)
{
    return xasprintf("%s.%d.pid", base, slot);
}

/* The start time of `pid` (field 22 of /proc/<pid>/stat); 0 if unknown. */
static unsigned long long start_time_of(pid_t pid)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/stat", (int)pid);
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    unsigned long long start;
    const char *p;

    if (read_file(path, &sb, 4096, NULL) < 0 || !(p = init_stat_field(sb.buf, 22)) ||
        sscanf(p, "%llu", &start) != 1)
        return 0;
    return start;
}

/* The keeper's socket's address; false when the path does not fit. */
static bool socket_address(const char *base, struct sockaddr_un *ret)
{
    *ret = (struct sockaddr_un){ .sun_family = AF_UNIX };
    return (size_t)snprintf(ret->sun_path, sizeof(ret->sun_path), "%s.sock", base) <
           sizeof(ret->sun_path);
}

/* ---- the keeper's side ---- */

/* Offers the slot's spare in its file: whole or not at all (a claimer reads it once renamed). */
static int offer(const struct keeper_spares *s, const struct spare_slot *slot)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp", slot->file), *text = NULL;
    int fd;

    text = xasprintf("%d %llu %d %llu\n", (int)getpid(), s->start, slot->fd, slot->ino);
    /* No fsync: the offer lives as the keeper does. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write_all(fd, text, strlen(text)) < 0 || close(fd) < 0 ||
        rename(tmp, slot->file) < 0) {
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

/*
 * Makes a slot's spare and offers it. A host that refuses a network
 * namespace shuts the slot; a keeper that cannot go back home exits (it
 * must not live in a namespace a container will have).
 */
static void make_spare(struct keeper_spares *s, struct spare_slot *slot)
{
    struct stat st;
    int fd;

    if (unshare(CLONE_NEWNET) < 0) {
        slot->state = SLOT_SHUT;
        return;
    }
    fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        (void)network_loopback_up(NULL);
    if (setns(s->home_fd, CLONE_NEWNET) < 0)
        _exit(1);
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            (void)close(fd);
        slot->state = SLOT_SHUT;
        return;
    }
    *slot = (struct spare_slot){ .state = SLOT_OFFERED, .fd = fd,
                                 .ino = (unsigned long long)st.st_ino, .file = slot->file };
    if (offer(s, slot) < 0) {
        (void)close(fd);
        slot->state = SLOT_SHUT;
    }
}

struct keeper_spares *keeper_spares_open(const char *base)
{
    struct keeper_spares *s = xcalloc(1, sizeof(*s));
    struct sockaddr_un addr;

    s->home_fd = s->listen_fd = -1;
    for (int i = 0; i < KEEPER_SPARES; i++)
        s->slot[i] = (struct spare_slot){ .state = SLOT_EMPTY, .fd = -1,
                                          .file = slot_file(base, i) };
    s->start = start_time_of(getpid());
    /* Home first: where the keeper goes back after each spare (not the host's: not its own). */
    if (s->start == 0 || !socket_address(base, &addr) || unshare(CLONE_NEWNET) < 0 ||
        (s->home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
        goto none;
    s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* A socket left by an earlier keeper is replaced; that keeper, if it lives, is going. */
    (void)unlink(addr.sun_path);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(s->listen_fd, 64) < 0)
        goto none;
    return s;
none:
    for (int i = 0; i < KEEPER_SPARES; i++)
        s->slot[i].state = SLOT_SHUT;
    return s;
}

/* Every empty slot gets its spare. */
static void fill(struct keeper_spares *s)
{
    for (int i = 0; i < KEEPER_SPARES; i++)
        if (s->slot[i].state == SLOT_EMPTY)
            make_spare(s, &s->slot[i]);
}

/* A run says which spare it took (its inode): the keeper lets go of it. */
static void taken(struct keeper_spares *s, struct spare_run *run, unsigned long long ino)
{
    for (int i = 0; i < KEEPER_SPARES; i++) {
        struct spare_slot *slot = &s->slot[i];

        if (run->slot < 0 && slot->state == SLOT_OFFERED && slot->ino == ino) {
            closep(&slot->fd);
            slot->state = SLOT_TAKEN;
            run->slot = i;
        }
    }
}

/* Reads what a run sent; false once its connection has ended (its slot is then to make). */
static bool run_readable(struct keeper_spares *s, struct spare_run *run)
{
    unsigned long long ino;
    ssize_t n;

    for (;;) {
        n = recv(run->fd, &ino, sizeof(ino), MSG_DONTWAIT);
        if (n == (ssize_t)sizeof(ino))
            taken(s, run, ino);
        else if (n < 0 && errno == EAGAIN)
            return true;
        else if (n == 0 || (n < 0 && errno != EINTR))
            break;
        /* else a message of another size (not a claim), or EINTR: read on */
    }
    if (run->slot >= 0 && s->slot[run->slot].state == SLOT_TAKEN)
        s->slot[run->slot].state = SLOT_EMPTY;
    closep(&run->fd);
    return false;
}

/* New runs' connections. */
static void accept_runs(struct keeper_spares *s)
{
    int fd;

    while ((fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        if (s->n_runs == KEEPER_RUNS_MAX) {
            (void)close(fd);
            continue;
        }
        s->run[s->n_runs++] = (struct spare_run){ .fd = fd, .slot = -1 };
    }
}

void keeper_spares_serve(struct keeper_spares *s, int timeout_ms)
{
    struct pollfd p[1 + KEEPER_RUNS_MAX];
    int n = 0, kept = 0;

    fill(s);
    if (s->listen_fd >= 0)
        p[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
    for (int i = 0; i < s->n_runs; i++)
        p[n++] = (struct pollfd){ .fd = s->run[i].fd, .events = POLLIN };
    if (poll(p, (nfds_t)n, timeout_ms) <= 0)
        return;
    for (int i = 0; i < s->n_runs; i++) {
        struct pollfd *q = &p[1 + i];

        if (!q->revents || run_readable(s, &s->run[i]))
            s->run[kept++] = s->run[i];
    }
    s->n_runs = kept;
    if (p[0].revents)
        accept_runs(s);
}

void keeper_spares_close(struct keeper_spares *s)
{
    for (int i = 0; i < KEEPER_SPARES; i++) {
        struct spare_slot *slot = &s->slot[i];
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        /* Not a file that offers another keeper's spare (a later keeper's). */
        if (slot->state == SLOT_OFFERED && read_file(slot->file, &sb, 128, NULL) == 0 &&
            atoi(sb.buf) == (int)getpid())
            (void)unlink(slot->file);
        closep(&slot->fd);
        free(slot->file);
    }
    for (int i = 0; i < s->n_runs; i++)
        closep(&s->run[i].fd);
    closep(&s->listen_fd);
    closep(&s->home_fd);
    free(s);
}

/* ---- a run's side ---- */

/* Whether the network namespace `netfd` is owned by the caller's user namespace. */
static bool owned_by_ours(int netfd)
{
    _cleanup_close_ int owner = ioctl(netfd, NS_GET_USERNS), self = open("/proc/self/ns/user",
                                                                          O_RDONLY | O_CLOEXEC);

    return owner >= 0 && self >= 0 && keeper_same_ns(owner, self);
}

/* The keeper's namespace of that fd, if every check of the top of this file holds; else -1. */
static int open_spare(pid_t keeper, unsigned long long start, int fd, unsigned long long ino)
{
    _cleanup_free_ char *path = xasprintf("/proc/%d/fd/%d", (int)keeper, fd);
    _cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, keeper, 0), netfd = -1;
    struct stat st;

    if (pidfd < 0 || start != start_time_of(keeper))
        return -1;
    netfd = open(path, O_RDONLY | O_CLOEXEC);
    if (netfd < 0 || fstat(netfd, &st) < 0 || (unsigned long long)st.st_ino != ino ||
        ioctl(netfd, NS_GET_NSTYPE) != CLONE_NEWNET || !owned_by_ours(netfd) ||
        syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
        return -1;
    return TAKE_FD(netfd);
}

/* Claims the spare of one slot: whoever renames its file first has it; the others find none. */
static int claim_slot(const char *base, int slot, pid_t keeper, unsigned long long *ret_ino)
{
    _cleanup_free_ char *file = slot_file(base, slot), *claimed = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    unsigned long long start, ino;
    int pid, fd;

    claimed = xasprintf("%s.claimed.%d", file, (int)getpid());
    if (rename(file, claimed) < 0)
        return -1;
    if (read_file(claimed, &sb, 128, NULL) < 0 ||
        sscanf(sb.buf, "%d %llu %d %llu", &pid, &start, &fd, &ino) != 4 || pid != keeper ||
        fd < 0) {
        (void)unlink(claimed);
        return -1;
    }
    (void)unlink(claimed);
    *ret_ino = ino;
    return open_spare(keeper, start, fd, ino);
}

/* A connection to the keeper's socket, if it is the keeper's (-1 if not, or none). */
static int connect_keeper(const struct keeper_ref *keeper)
{
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr;
    struct ucred peer;
    socklen_t len = sizeof(peer);

    if (fd < 0 || !socket_address(keeper->spare_base, &addr) ||
        connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 || peer.pid != keeper->pid)
        return -1;
    return TAKE_FD(fd);
}

int keeper_claim_netns(const struct keeper_ref *keeper, struct keeper_spare *ret)
{
    _cleanup_close_ int run = -1;
    unsigned long long ino;

    *ret = (struct keeper_spare){ .net_fd = -1, .run_fd = -1 };
    if (keeper->pid <= 0 || !keeper->spare_base || (run = connect_keeper(keeper)) < 0)
        return -1;
    for (int slot = 0; slot < KEEPER_SPARES; slot++) {
        int netfd = claim_slot(keeper->spare_base, slot, keeper->pid, &ino);

        if (netfd < 0)
            continue;
        /* Untold, the keeper keeps it (its slot idle) until it exits: the run does not take it. */
        if (send(run, &ino, sizeof(ino), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(ino)) {
            (void)close(netfd);
            return -1;
        }
        *ret = (struct keeper_spare){ .net_fd = netfd, .run_fd = TAKE_FD(run) };
        return 0;
    }
    return -1;
}

void keeper_spare_done(struct keeper_spare *s)
{
    closep(&s->run_fd);
    closep(&s->net_fd);
}
