/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner: rootless containers (ARCHITECTURE.md, Processes and Tenants).
 *
 * The daemon is multi-threaded, and only a single-threaded process can enter
 * a new user namespace, so main() calls runner_spawner_start() before any
 * thread exists. That forks the spawner, which creates every container on
 * the daemon's behalf (requests travel over a unix socket, with fds passed by
 * SCM_RIGHTS). Each container gets its own user (mapped through newuidmap/
 * newgidmap to the tenant's slice of berth's subordinate ids; berth's own uid
 * is never mapped), mount, pid, ipc, uts, cgroup and network namespaces, an
 * overlay root (the lower layers read-only, a per-container upper), fresh
 * /proc, a small /dev, and berth's own init as PID 1. The init reaps zombies,
 * forwards signals to the app's process group, reports the app's exit status,
 * and serves the port agent: on request it connects a TCP socket to
 * 127.0.0.1:<port> inside the container's network namespace and hands it to
 * the daemon, or hands it a stock of unconnected sockets made there for the
 * daemon to connect itself, so the router talks to the app over in-kernel
 * loopback with no proxy hop. A container whose spec asks for network also gets a way out,
 * through pasta, that leads anywhere but to the host itself.
 *
 * All functions return 0 (or a count) on success and -errno on failure,
 * filling *err. Unless noted, functions are safe to call from any thread.
 */
#ifndef BERTH_RUNNER_H
#define BERTH_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

struct runner;
struct runner_container;

/*
 * Forks the spawner. Must be called while the process is still
 * single-threaded, and after any privilege drop. *ret owns the spawner;
 * runner_free() stops it.
 */
int runner_spawner_start(struct runner **ret, struct berth_error **err);
void runner_free(struct runner *r);

struct runner_mount {
    /*
     * Host path, with no symbolic link in any component: the runner opens
     * it with berth's rights and refuses a link anywhere on the way (a
     * tenant may have planted one below berth's directories), with
     * "mount source '...' is or passes through a symbolic link" (ELOOP).
     * Resolve berth's own part, and an operator's path, with realpath().
     */
    const char *source;
    const char *target;   /* absolute path inside the container */
    bool writable;        /* false: bind read-only */
    /*
     * A directory mounted as an overlay of its own (an empty lower layer
     * under it as the upper, or as a lower one when read-only) instead of
     * bound, so that the container's mount table does not name it: a bind
     * shows its source's path within its filesystem, which for berth's own
     * directories is the layout of berth's home. Only for a directory that
     * nothing changes beside the container while it runs (overlayfs leaves
     * such changes undefined) and that has no mounts below it (they are not
     * carried over). A writable one needs state_dir on the same mount (its
     * overlay's work directory is made there). Where the overlay cannot be
     * mounted (another mount, a filesystem overlayfs cannot use as its
     * upper layer), the directory is bound as without it, and shows its path.
     */
    bool hidden;
};

struct runner_limits {
    uint64_t memory_bytes;  /* 0: no per-container limit (the tenant's still applies) */
    uint64_t pids_max;      /* 0: none */
    /*
     * CPU share against the other cgroups beside it, in cgroup v2's
     * cpu.weight units (1..10000, default 100); on v1 written as cpu.shares
     * = weight * 1024 / 100. 0: leave the kernel's default. Like the two
     * above it applies to a container with a cgroup; there, a host without
     * a cpu controller fails the spawn, as does a weight out of range.
     */
    uint64_t cpu_weight;
    /*
     * RLIMIT_FSIZE of the app and everything it starts: no file may grow
     * past this many bytes (the writer gets SIGXFSZ, or EFBIG when it
     * ignores that signal). 0: unlimited.
     */
    uint64_t file_size_max;
    /*
     * CPU time the cgroup's processes may use together, in thousandths of
     * a CPU (500: half a CPU, 2000: two CPUs, RUNNER_CPU_QUOTA_MIN..
     * RUNNER_CPU_QUOTA_MAX): v2's cpu.max, v1's cpu.cfs_quota_us over a
     * cpu.cfs_period_us of RUNNER_CPU_PERIOD_US. A cgroup over its quota
     * waits for the next period. 0: no quota of its own (its parents'
     * still apply). Like cpu_weight, it fails the spawn on a host without
     * the cpu controller or without CFS bandwidth control.
     */
    uint64_t cpu_quota_millis;
};

#define RUNNER_CPU_PERIOD_US 100000
#define RUNNER_CPU_QUOTA_MIN 10          /* 1 ms of every 100 ms period: the kernel's least */
#define RUNNER_CPU_QUOTA_MAX 1024000     /* 1024 CPUs */

struct runner_spec {
    const char *name;            /* for logs, e.g. "hello.web.1" or "hello.build.3" */
    const char *hostname;        /* inside the uts namespace */
    /*
     * Container ids 0..id_count-1 map to host uids uid_base.. and gids
     * gid_base..; the range must lie within berth's /etc/subuid and
     * /etc/subgid entries (newuidmap checks).
     */
    unsigned long uid_base, gid_base, id_count;
    /*
     * Root filesystem: an overlay of lower_dirs (NULL-terminated, topmost
     * first, each a directory laid out as a root tree: a slug holds app/)
     * over the host stack made by runner_stack_prepare(), with the host's
     * /usr (and the few /etc entries programs need) bind-mounted read-only.
     */
    const char *const *lower_dirs;
    const char *stack_dir;
    /*
     * A directory owned by berth, empty, unique to this container: the
     * runner keeps the overlay upper and work dirs and the mount point in it.
     * runner_remove_tree() removes it after the container stopped.
     */
    const char *state_dir;
    const struct runner_mount *mounts;   /* bind mounts over the overlay */
    size_t n_mounts;
    const char *const *argv;     /* executed with envp, no PATH search beyond envp's PATH */
    const char *const *envp;
    const char *cwd;             /* inside the container */
    unsigned uid, gid;           /* the process's ids inside the container (not 0 for apps) */
    int stdout_fd, stderr_fd;    /* host fds that become the process's 1 and 2 */
    /*
     * A host fd that becomes the process's 0 (a one-off run's stdin). -1:
     * /dev/null. 0 counts as -1 too, so that a spec that never names it
     * (zero-initialised) never hands the daemon's own stdin to a container.
     */
    int stdin_fd;
    uint16_t port;               /* port-agent target, 127.0.0.1:port inside; 0: none */
    /*
     * cgroup path relative to berth's delegated subtree ("<tenant>/<app>/<instance>");
     * NULL: no cgroup. If cgroups are asked for and cannot be set up, spawning fails.
     */
    const char *cgroup;
    struct runner_limits limits;
    /*
     * Outbound network: pasta (Debian's passt) is attached to the
     * container's network namespace, which then holds a tap interface with
     * the host's addresses and routes besides lo, and a resolv.conf. The
     * host itself stays out of reach: its loopback is the container's own,
     * the gateway is not mapped to the host (--no-map-gw), and every address
     * of the host's interfaces is a prohibit route and rule inside. pasta
     * runs in the container's cgroup and is killed when the container's init
     * is reaped. Without pasta or a usable /dev/net/tun the spawn fails,
     * saying what to install or run. false: lo only, and an empty resolv.conf.
     */
    bool network;
    /*
     * runner_run_once() only (RUNNER_ONCE_UPPER_IN_MEMORY; it does not
     * travel to the spawner): the overlay's upper and work dirs live in a
     * tmpfs of the container's own, mounted over state_dir in its mount
     * namespace, instead of on state_dir's disk. What the container writes
     * is in memory (charged to its memory cgroup) and goes with it: nothing
     * of it reaches the host's filesystem, and there is nothing to remove.
     * Without network, state_dir is then only a mount point, which
     * runner_run_once() leaves in place: one directory can serve any
     * number of such runs at once, each mounted over it in its own mount
     * namespace (with network it still gets resolv.conf and pasta's pid
     * file first, and is removed like any state_dir).
     */
    bool upper_in_memory;
};

/* Creates the container and starts argv in it. */
int runner_spawn(struct runner *r, const struct runner_spec *spec,
                 struct runner_container **ret, struct berth_error **err);
/*
 * One container from the calling process, with no spawner, for a command
 * that runs one and exits (`berth container run`): creates it as
 * runner_spawn() does, waits for its app to exit, and removes its cgroup
 * and spec->state_dir with everything in it (but for a bare mount point:
 * upper_in_memory above). *ret_status is the app's wait
 * status (the init's, should the init die first). Meanwhile SIGINT,
 * SIGTERM and SIGHUP are blocked in the caller (and its mask is restored
 * at the end); the first that comes, or was pending, sends SIGTERM to every
 * process in the container, and SIGKILL follows grace_ms later, as with
 * runner_stop(). runner_spawner_start()'s rule holds:
 * the caller must be single-threaded; and it must not wait for "any child"
 * meanwhile (no signal handler that reaps). spec->port is ignored.
 *
 * RUNNER_ONCE_KEEP_USERNS: the container's user namespace is one kept by a
 * small "berth-userns" process of the caller's uid, started on first use
 * and gone after 30 s without one, shared with the other containers of the
 * same ids started this way; that saves the newuidmap and newgidmap runs,
 * about 2 ms of a start. The caller joins that namespace for good: it keeps
 * its uid and its rights on its files, but getuid() reads 65534 from then
 * on, so this is for a command's last step. Not for a spec with network
 * (which gets its own namespace as without the flag). The keeper's spare
 * network namespace, when it has one, is taken too (keeper.h).
 */
#define RUNNER_ONCE_KEEP_USERNS 1u
/* The spec's upper_in_memory, for this run. */
#define RUNNER_ONCE_UPPER_IN_MEMORY 2u
/*
 * Return as soon as the app's status is in, when all that is left to do
 * is the cgroup's removal (an upper in memory, no network): a child of the
 * caller's, forked once the container exists, in a session of its own and
 * with no fd open but the init's pidfd, a socket to the caller and stderr,
 * waits for the init's end (the teardown of its namespaces) and removes
 * the cgroup, and says on stderr if that fails. It does so too when the
 * caller dies before the status (its container dies with it). Should the
 * fork fail, the caller waits and removes the cgroup itself, as without
 * the flag; so it does when no status came (the child then just exits).
 * Every other process of the container has been sent SIGKILL by then;
 * the init is left unreaped, to whoever inherits it: for a caller that
 * exits right after (`berth container run`).
 */
#define RUNNER_ONCE_DETACH_CLEANUP 4u
int runner_run_once(const struct runner_spec *spec, unsigned flags, int grace_ms, int *ret_status,
                    struct berth_error **err);
/*
 * Asks the container's init for a TCP socket connected to 127.0.0.1:port in
 * the container's network namespace. *ret_fd is a connected, O_CLOEXEC,
 * blocking socket owned by the caller. ECONNREFUSED when nothing listens yet,
 * ETIMEDOUT when the app did not take the connection within
 * RUNNER_AGENT_CONNECT_TIMEOUT_MS (or the init did not answer within a
 * second more; its late answer is never mistaken for a later call's).
 * Blocks; concurrent calls for one container take turns. Built on the
 * calls below, over a channel of its own; for boot waits and tests.
 */
int runner_connect(struct runner_container *c, int *ret_fd, struct berth_error **err);
/*
 * The port agent without waiting, for event loops (the router): a loop
 * opens a private channel to the container's agent once, puts it in its
 * epoll, sends connect requests tagged with ids of its own, and reads the
 * replies as they come, in whatever order the connects complete; every
 * request gets exactly one reply while the channel lasts. The agent connects many at once
 * (non-blocking, each bounded by RUNNER_AGENT_CONNECT_TIMEOUT_MS), so one
 * slow connect never holds up another, nor another container's, nor the
 * loop. The agent of one container serves at most
 * RUNNER_AGENT_MAX_CHANNELS channels at once (one more reads end of file at
 * once: close one and open again) and holds at most
 * RUNNER_AGENT_MAX_REQUESTS requests at once over all of them, connecting
 * or answered but not yet read (one more is answered EAGAIN). A loop that
 * connects often asks for a stock of sockets instead (runner_agent_ask_stock())
 * and dials them itself, one agent round trip for many connections.
 *
 * runner_agent_open(): *ret_fd is a new SOCK_SEQPACKET channel, O_CLOEXEC
 * and O_NONBLOCK, owned by the caller (close it when done: that also ends
 * its connects in progress). It never waits for the container: -EAGAIN when
 * the agent has not yet taken the channels opened before (try later),
 * -ECONNREFUSED once the container has exited.
 */
#define RUNNER_AGENT_CONNECT_TIMEOUT_MS 5000
#define RUNNER_AGENT_MAX_CHANNELS 256
#define RUNNER_AGENT_MAX_REQUESTS 1024
int runner_agent_open(struct runner_container *c, int *ret_fd, struct berth_error **err);
/*
 * Sends a connect request tagged `id` (any value; the agent only echoes
 * it) on a channel. 0, -EAGAIN when the channel is full (the agent has not
 * read the requests before it, or the caller not the replies: try again
 * once the channel is writable), -EPIPE/-ECONNRESET when the container is
 * gone.
 */
int runner_agent_request(int channel_fd, uint64_t id);
/*
 * Reads one connect reply from a channel: its id, and either a connected socket
 * (*ret_sock, O_CLOEXEC, O_NONBLOCK and TCP_NODELAY, ready for an event
 * loop, owned by the caller; *ret_errno 0) or
 * *ret_errno and *ret_sock -1: ECONNREFUSED (nothing listens), ETIMEDOUT
 * (no connection within RUNNER_AGENT_CONNECT_TIMEOUT_MS), EAGAIN (the agent
 * holds RUNNER_AGENT_MAX_REQUESTS already), ENOTCONN (the container has no
 * port), EMFILE (the socket did not fit in this process's fd table), or
 * what socket(2) or connect(2) failed with. Returns 1 for a
 * reply, 0 at the channel's end (the container exited, or the agent had no
 * room for the channel; requests not answered by then never will be),
 * -EAGAIN when no reply is waiting, other -errno for a broken channel. A
 * stock (runner_agent_ask_stock()) it meets on the way is skipped, its
 * sockets closed: a channel that asks for stocks is read with
 * runner_agent_answer().
 *
 * runner_agent_request() and runner_agent_reply() take no lock and touch
 * only the channel: any thread may call them, the caller decides who does;
 * so do runner_agent_ask_stock() and runner_agent_answer().
 */
int runner_agent_reply(int channel_fd, uint64_t *ret_id, int *ret_sock, int *ret_errno);
/*
 * A stock: sockets the caller connects itself, with no round trip to the
 * agent per connection. A socket connects in the network namespace it was
 * made in, whoever calls connect(), so a socket the agent made connects to
 * 127.0.0.1:port inside the container from the caller's loop.
 */
#define RUNNER_AGENT_STOCK_MAX 32
/*
 * Asks, on a channel, for n (1..RUNNER_AGENT_STOCK_MAX) TCP sockets made in
 * the container's network namespace and not connected. The agent answers
 * at once (runner_agent_answer()), after every reply it sent before on the
 * channel, with as many as it could make (up to n; none when the container
 * has no port). A stock holds none of RUNNER_AGENT_MAX_REQUESTS, but may go
 * unanswered: the agent drops a stock it cannot send at once (the channel
 * is full, or too many of its fds are in flight), so a caller that has no
 * answer after a while asks again. Returns as runner_agent_request(): 0,
 * -EAGAIN (channel full), -EPIPE/-ECONNRESET (container gone); -EINVAL
 * for n out of range (nothing sent).
 */
int runner_agent_ask_stock(int channel_fd, unsigned n);

/* One answer read from a channel: a connect reply, or a stock. */
struct runner_agent_answer {
    bool is_stock;
    uint64_t id;        /* a connect reply: the id it answers */
    int sock;           /* ... its connected socket (as runner_agent_reply), or -1 */
    int error;          /* ... or why none (the errnos runner_agent_reply documents) */
    unsigned n_stock;   /* a stock: how many sockets (0 when the agent could make none) */
    /*
     * ... TCP sockets of the container's network namespace, not connected:
     * O_CLOEXEC, O_NONBLOCK, TCP_NODELAY; owned by the caller. Fewer than
     * asked when the agent could make no more, or when the rest did not
     * fit in this process's fd table.
     */
    int stock[RUNNER_AGENT_STOCK_MAX];
    uint16_t port;      /* ... connect them to 127.0.0.1:port (0: the container has no port; n_stock 0) */
};
/*
 * Reads one answer without waiting: 1 with *ret filled, 0 at the channel's
 * end, -EAGAIN when none waits, other -errno for a broken channel (as
 * runner_agent_reply; -EBADMSG, its fds closed, for a malformed one).
 */
int runner_agent_answer(int channel_fd, struct runner_agent_answer *ret);

/*
 * Waits up to timeout_ms (-1: forever) for the container's process to exit;
 * *ret_status is a wait(2) status. -ETIMEDOUT when still running.
 */
int runner_wait(struct runner_container *c, int timeout_ms, int *ret_status, struct berth_error **err);
/*
 * Host pid of the container's init (PID 1 inside), for messages and tests.
 * Once the init has exited the spawner reaps it and the number may name
 * another process: never signal or wait on it (runner_stop() does that
 * through the init's pidfd).
 */
pid_t runner_container_pid(const struct runner_container *c);
/*
 * For event loops that watch many containers at once (one epoll, no thread
 * per container): an fd that becomes readable (POLLIN, EPOLLIN;
 * level-triggered, it stays readable) once the container's init has exited,
 * and with it every process of the container (the kernel kills and reaps
 * the rest of a pid namespace before its init counts as exited); never
 * before. From then on runner_wait(c, 0, ...) returns the status without
 * blocking and runner_stop() does not wait; runner_stop(),
 * runner_release() or runner_container_free() still has to follow, to have
 * the spawner release the container's cgroup and report its usage.
 *
 * It is the init's pidfd. The handle owns it: valid until
 * runner_container_free(), which closes it, so take it out of any epoll set
 * before that; never read, close or signal through it. Never fails.
 */
int runner_container_exit_fd(const struct runner_container *c);
/*
 * SIGTERM to every process in the container, SIGKILL after grace_ms, then
 * waits until the container is gone. Safe on an exited container.
 */
int runner_stop(struct runner_container *c, int grace_ms, struct berth_error **err);
/*
 * For a container whose exit status runner_wait() has returned: its app
 * has exited and every other process of it has a SIGKILL pending, but its
 * init may still be exiting while the kernel tears its namespaces down
 * (4-17 ms on the hosts measured, which runner_stop() waits out). This
 * reads the container's usage now and leaves the rest to the spawner: it
 * reaps the init and removes the cgroup once the init is gone, and a spawn
 * into the same cgroup meanwhile waits for that. Then
 * runner_container_usage() answers and runner_container_free() does not
 * wait. -EBUSY, with nothing done, before the status was heard.
 */
int runner_release(struct runner_container *c, struct berth_error **err);
/*
 * Frees the handle; the container must have exited (runner_stop/runner_wait)
 * or been released (runner_release).
 */
void runner_container_free(struct runner_container *c);

/*
 * What a container used, read from its cgroup when the spawner reaped its
 * init (by then every process of it is gone, pasta aside, which is killed
 * then), before the cgroup is removed; or, for a container released, when
 * runner_release() asked.
 */
struct runner_usage {
    uint64_t memory_peak_bytes;   /* high-water mark of its memory use; 0 when unknown */
    uint64_t oom_kills;           /* processes the kernel's OOM killer took in it */
};
/*
 * The usage of a container that runner_stop() has reaped or
 * runner_release() released (it is all zero for a container spawned
 * without a cgroup). -EAGAIN before either.
 */
int runner_container_usage(const struct runner_container *c, struct runner_usage *ret,
                           struct berth_error **err);

/*
 * Removes a tree that containers wrote into (files owned by the tenant's
 * subordinate ids, which berth's own uid cannot delete) by running the
 * removal inside a user namespace with the same id mapping, however deep
 * the tree is nested. Missing is fine.
 *
 * This and the two calls below run in a worker process of their own and
 * may take seconds on a big tree; the calling thread waits for the result,
 * but other threads' runner calls (spawns included) are not held up.
 */
int runner_remove_tree(struct runner *r, const char *path, unsigned long uid_base,
                       unsigned long gid_base, unsigned long id_count, struct berth_error **err);

/*
 * Seals a built slug in place, in a user namespace with the tenant's
 * mapping: every entry at and below `path` (symlinks are never followed)
 * loses all its extended attributes (ACLs, user.* including overlayfs'
 * user.overlay.*, file capabilities, and whatever else the namespace may
 * remove; LSM labels such as security.selinux stay), its setuid and setgid
 * bits, and becomes readable by all (directories and executables
 * traversable: a+rX). Fails, naming the entry, on one whose owner is not in
 * the mapping (berth's own uid, the owner of the slug's top directory, is
 * accepted: the walk runs with it and may change its entries), and on a
 * device node. A failed seal may have sealed part of the tree.
 *
 * measure (NULL-terminated, or NULL): when given, the same worker then
 * measures `path` and these trees together, as runner_tree_usage() would,
 * into *ret_bytes (set only when the seal, the measure and the removals
 * all succeeded): a build's last measure of its disk comes with its seal.
 *
 * then_remove (NULL-terminated, or NULL) names trees that the same worker
 * removes as runner_remove_tree() would once the seal (and the measure)
 * are done, whatever their outcome: one worker where there would be two or
 * three (each is a clone and a round trip, milliseconds on a deploy's
 * path). The seal's failure is the one returned, then the measure's; else
 * the first removal's. Such a failure leaves unknown which of them were
 * removed.
 */
int runner_seal_tree(struct runner *r, const char *path, const char *const *measure,
                     const char *const *then_remove, unsigned long uid_base, unsigned long gid_base,
                     unsigned long id_count, uint64_t *ret_bytes, struct berth_error **err);
/*
 * How deep the seal and the usage walk go: a tree nested deeper fails them
 * with -ELOOP, naming it. runner_remove_tree() removes a tree of any depth.
 */
#define RUNNER_TREE_MAX_DEPTH 256
/*
 * Disk space (st_blocks, each inode counted once, however many hard links
 * and listed trees name it) taken by the trees at paths (NULL-terminated;
 * missing ones count 0), measured in a user namespace with the tenant's
 * mapping so that no mode the tenant set can hide a directory. -ELOOP for
 * a tree deeper than RUNNER_TREE_MAX_DEPTH. then_remove as for
 * runner_seal_tree(): removed after the measure; *ret_bytes is set only
 * when both succeeded.
 */
int runner_tree_usage(struct runner *r, const char *const *paths, const char *const *then_remove,
                      unsigned long uid_base, unsigned long gid_base, unsigned long id_count,
                      uint64_t *ret_bytes, struct berth_error **err);

/*
 * Creates (idempotently) the host stack's skeleton layer in dir, repairing
 * what is missing, then stamps it (runner_stack_made()).
 */
int runner_stack_prepare(const char *dir, struct berth_error **err);

/*
 * Whether the stack in dir carries the stamp of a full prepare by this
 * berth, and its root and etc/ have not changed since (their entries,
 * modes and owners: their ctimes); a few system calls
 * where runner_stack_prepare() takes ~45. False means: prepare it.
 */
bool runner_stack_made(const char *dir);

/*
 * Host preparation, run as root by `berth setup`: creates a `berth-<user>`
 * cgroup (the user of uid) below the cgroup this process is in, for each
 * controller berth limits (v1: memory, pids, cpu; v2: the unified tree),
 * and hands it to uid/gid, with every cgroup already below it (a cgroup
 * another owner left there is handed over too: re-running repairs). One
 * subtree per operator, so two installations on one host never share
 * cgroups. Never moves a process. Idempotent.
 */
int runner_cgroup_delegate(uid_t uid, gid_t gid, struct berth_error **err);
/*
 * Checks, as the berth user, that the delegated cgroups exist and are
 * writable; 0 if containers can be limited, -errno with a message otherwise.
 */
int runner_cgroup_check(struct berth_error **err);
/*
 * Checks, as the berth user, that every cgroup of its delegated subtrees
 * (and the files it must write in the subtree's root) belongs to it;
 * -EACCES with a message naming `berth setup --user <user>` otherwise.
 */
int runner_cgroup_check_owner(struct berth_error **err);
/*
 * As the berth user, before any thread, where its own cgroup was delegated
 * to it (systemd's Delegate=yes): makes `berth-<user>` below it itself (v2:
 * after moving this process into a leaf beside it, since a cgroup holding
 * processes cannot pass controllers down). A no-op where the cgroup is not
 * the user's to write (root's `berth setup` delegates it there).
 */
int runner_cgroup_self_delegate(struct berth_error **err);
/*
 * As root (`berth setup --remove`): removes the `berth-<user>` subtrees of
 * uid, deepest cgroup first. Fails with EBUSY, naming the cgroup, while a
 * process still runs in one. Missing subtrees are fine.
 */
int runner_cgroup_undelegate(uid_t uid, struct berth_error **err);
/*
 * As the berth user: creates the cgroup `relpath` below the delegated
 * subtree (a tenant's "<tenant>", or deeper; missing parents too) if it is
 * not there, and sets every limit of `limits` that a cgroup holds: each
 * field that is 0 is set back to no limit (the kernel's default weight),
 * so the cgroup ends up with exactly these limits, whatever it had before.
 * file_size_max is not a cgroup's and is ignored. The limits of cgroups
 * below it keep applying within it. Fails with the kernel's answer when
 * one cannot be set (v1 refuses a memory limit below what the cgroup uses
 * now with EBUSY, and a cpu quota below one of its children's with
 * EINVAL); the limits written before that one stay. For tenants' limits,
 * which must hold before the tenant's first container starts.
 */
int runner_cgroup_set_limits(const char *relpath, const struct runner_limits *limits,
                             struct berth_error **err);
/*
 * Checks, as the berth user, that cpu quotas can be enforced: the cpu
 * controller is delegated and the kernel has CFS bandwidth control.
 */
int runner_cgroup_check_cpu_quota(struct berth_error **err);
/*
 * As the berth user: removes the cgroup `relpath` (below the delegated
 * subtree, "<tenant>/<app>") and every cgroup below it that no process is
 * in, deepest first, in each controller; the kernel keeps the populated
 * ones (and their parents). For what a crashed daemon left: the caller
 * makes sure none of its own containers is being set up below relpath.
 * *ret_removed counts the rmdirs over all controllers.
 */
int runner_cgroup_sweep(const char *relpath, unsigned *ret_removed, struct berth_error **err);
/*
 * As the berth user: removes the cgroup `relpath` in each controller when
 * it is empty (no child cgroup, no process), and nothing below it. One in
 * use, or gone already, is left without an error: another berth of the
 * same user (a second home) may have its own cgroups there.
 */
int runner_cgroup_release(const char *relpath, struct berth_error **err);
/*
 * As the berth user: the memory the processes of cgroup `relpath` (below the
 * delegated subtree) use now (v2 memory.current, v1 memory.usage_in_bytes);
 * 0 on a host without a memory controller.
 */
int runner_cgroup_memory_current(const char *relpath, uint64_t *ret_bytes, struct berth_error **err);
/*
 * Host preparation for outbound networking, as root (`berth setup`): makes
 * /dev/net/tun usable by unprivileged users (mode 0666, as most
 * distributions ship it; on hosts with udev a rule keeps it across reboots).
 * Creates the node when /dev/net exists without it; fails, saying to load
 * the tun module, when /dev/net is missing too. Idempotent.
 */
int runner_network_prepare(struct berth_error **err);
/*
 * Checks, as the berth user, that containers can get outbound network:
 * pasta is installed and /dev/net/tun opens. -errno and a message that says
 * what to install or run otherwise.
 */
int runner_network_check(struct berth_error **err);

#endif
