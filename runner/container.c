/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating one container, in the spawner (see container.h). The order is
 * the one every runtime follows (reference/ISOLATION.md §0.1): clone the
 * namespaces (a network namespace made ahead is joined instead, when the
 * caller has one: container_opts.join_net; a kept user namespace is
 * joined instead of made when the caller has one, through an
 * intermediate: clone_joined()); the parent writes the id maps (unless
 * the namespace was made before), makes the cgroup and, for a
 * networked container, starts pasta on the child's namespaces (network.h),
 * and releases the child with the fds through which it moves itself into
 * its cgroup (v1's `tasks`, which spares the RCU grace period a move by
 * the parent waits for: cgroup.h). A child in a kept user namespace
 * without network is not held: it builds the first half of its root while
 * the parent makes the cgroup. Then the child makes /
 * private, builds its root and pivots, brings up lo, blocks the host's
 * addresses, sets hostname, session and rlimits, and becomes the init, which
 * drops everything for the app and loads seccomp as the last step before
 * execve. Every failure in the child travels back on the sync socket as a
 * message, so runner_spawn() returns it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/init.h"
#include "runner/mounts.h"
#include "runner/network.h"
#include "runner/proto.h"
#include "common/banned.h"

#define NS_FLAGS (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | \
                  CLONE_NEWIPC)

/* The spawner's soft RLIMIT_NOFILE before container_raise_fd_limit(); 0: not raised. */
static rlim_t nofile_before;

void container_raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t before;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    before = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max > SPAWNER_MAX_FDS ? SPAWNER_MAX_FDS : rl.rlim_max;
    if (rl.rlim_cur > before && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile_before = before;
}

pid_t container_clone(unsigned long flags, int *ret_pidfd)
{
    int pidfd = -1;
    long pid;

    /*
     * The raw syscall with a NULL stack has fork semantics: the child
     * continues here on a copy of our stack, with no separate stack to size
     * for the init's whole life. The spawner is single-threaded, so there
     * are no locks held by other threads to worry about in the child.
     */
    pid = syscall(SYS_clone, flags | CLONE_PIDFD | SIGCHLD, NULL, &pidfd, NULL, 0);
    if (pid > 0)
        *ret_pidfd = pidfd;
    if (pid == 0 && nofile_before) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = nofile_before;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    return (pid_t)pid;
}

void container_kill(int pidfd)
{
    if (pidfd >= 0)
        (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
}

int container_reap(int pidfd, bool block)
{
    siginfo_t si;

    for (;;) {
        si.si_pid = 0;
        if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | (block ? 0 : WNOHANG)) == 0)
            return si.si_pid != 0;
        /* ECHILD: reaped already; nothing else can fail on our own child's pidfd. */
        if (errno != EINTR)
            return 1;
    }
}

/*
 * One newuidmap or newgidmap run, started by idmap_start() and reaped by
 * idmap_finish(). It is forked and waited for by pid, which is safe in the
 * spawner only because nothing in it ever waits for any child
 * (container_clone() says why): nothing else can reap it first.
 */
struct idmap_run {
    const char *tool;
    char pid_s[24], base_s[24], count_s[24];
    pid_t child;
    int rd;                        /* its stdout and stderr */
};

static int idmap_start(struct idmap_run *m, const char *tool, pid_t pid, unsigned long base,
                       unsigned long count, struct berth_error **err)
{
    static const char *const dirs[] = { "/usr/bin", "/bin", "/usr/sbin" };
    _cleanup_free_ char *path = NULL;
    int fds[2];

    m->tool = tool;
    m->rd = -1;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs) && !path; i++) {
        char *p = xasprintf("%s/%s", dirs[i], tool);

        if (access(p, X_OK) == 0)
            path = p;
        else
            free(p);
    }
    if (!path)
        return berth_error_plain(err, ENOENT, "'%s' not found (install the uidmap package)", tool);
    (void)snprintf(m->pid_s, sizeof(m->pid_s), "%d", (int)pid);
    (void)snprintf(m->base_s, sizeof(m->base_s), "%lu", base);
    (void)snprintf(m->count_s, sizeof(m->count_s), "%lu", count);
    char *const argv[] = { (char *)tool, m->pid_s, (char *)"0", m->base_s, m->count_s, NULL };
    char *const envp[] = { NULL };

    if (pipe2(fds, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe for '%s'", tool);
    /*
     * fork, not posix_spawn: its vfork holds the caller until the setuid
     * exec is done (about half a millisecond), which would run the two
     * helpers one after the other instead of side by side.
     */
    m->child = fork();
    if (m->child == 0) {
        if (dup2(fds[1], STDOUT_FILENO) >= 0 && dup2(fds[1], STDERR_FILENO) >= 0)
            execve(path, argv, envp);
        dprintf(fds[1], "run '%s': %s", path, strerror(errno));
        _exit(127);
    }
    (void)close(fds[1]);
    if (m->child < 0) {
        int e = errno;

        (void)close(fds[0]);
        return berth_error_make(err, e, "fork for '%s'", path);
    }
    m->rd = fds[0];
    return 0;
}

static int idmap_finish(struct idmap_run *m, struct berth_error **err)
{
    char out[1024];
    ssize_t n, len = 0;
    int status;

    while (len < (ssize_t)sizeof(out) - 1 &&
           ((n = read(m->rd, out + len, sizeof(out) - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        len += n > 0 ? n : 0;
    (void)close(m->rd);
    m->rd = -1;
    out[len] = '\0';
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
    while (waitpid(m->child, &status, 0) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "wait for '%s'", m->tool);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return berth_error_plain(err, EPERM, "%s %s 0 %s %s failed (status %d)%s%s", m->tool,
                                 m->pid_s, m->base_s, m->count_s, status, len ? ": " : "", out);
    }
    return 0;
}

int container_map_ids(pid_t pid, unsigned long uid_base, unsigned long gid_base,
                      unsigned long count, struct berth_error **err)
{
    struct idmap_run gid, uid;
    int r, r2;

    /*
     * Both maps at once: each helper is a setuid exec of about a
     * millisecond, and the kernel takes gid_map and uid_map independently
     * (newgidmap leaves setgroups allowed either way).
     */
    if ((r = idmap_start(&gid, "newgidmap", pid, gid_base, count, err)) < 0)
        return r;
    if ((r = idmap_start(&uid, "newuidmap", pid, uid_base, count, err)) < 0) {
        (void)idmap_finish(&gid, NULL);
        return r;
    }
    r = idmap_finish(&gid, err);
    r2 = idmap_finish(&uid, r < 0 ? NULL : err);
    return r < 0 ? r : r2;
}

/*
 * The parent's release: the go, once it has written the id maps and, for
 * a networked container, started pasta, with the fds of the files through
 * which the child moves itself into its cgroup (cgroup_open_enter; none
 * without a cgroup). False when the parent is gone.
 */
struct release {
    int fds[CGROUP_MAX_ENTER];
    size_t n;
};

static bool wait_release(int sync_fd, struct release *rel)
{
    char go;
    ssize_t n;

    rel->n = 0;
    do {
        n = proto_recv(sync_fd, &go, 1, rel->fds, CGROUP_MAX_ENTER, &rel->n);
    } while (n == -EINTR);
    return n == 1;
}

/*
 * Into our cgroup: single-threaded, through v1's `tasks`, which takes no
 * global lock (cgroup.h); v1 lets a task move itself while its saved uid
 * is still berth's, the writer's. Unsharing the cgroup namespace only then
 * makes that cgroup the namespace's root, so /proc/self/cgroup inside
 * reads "/" (LIBRARIES.md §5).
 */
static int enter_cgroup(const struct runner_spec *spec, struct release *rel, struct cgroup_view *view,
                        struct berth_error **err)
{
    int r = cgroup_enter_self(rel->fds, rel->n);

    for (size_t i = 0; i < rel->n; i++)
        (void)close(rel->fds[i]);
    rel->n = 0;
    if (r < 0)
        return berth_error_make(err, -r, "move into cgroup '%s'", spec->cgroup);
    if ((r = mounts_cgroup_view(spec->cgroup, view, err)) < 0)
        return r;
    if (unshare(CLONE_NEWCGROUP) < 0)
        return berth_error_make(err, errno, "unshare the cgroup namespace");
    return 0;
}

/* After the root: lo, the host's addresses blocked, hostname, session, no core dumps. */
static int child_finish(const struct runner_spec *spec, const struct net_host *net,
                        struct berth_error **err)
{
    const char *hostname = spec->hostname ? spec->hostname : spec->name ? spec->name : "berth";
    struct rlimit no_core = { 0, 0 };
    int r;

    if ((r = network_loopback_up(err)) < 0)
        return r;
    /* pasta has configured eth0 by now (the spawner waited for it before releasing us). */
    if (spec->network && (r = network_block_host(net, err)) < 0)
        return r;
    if (sethostname(hostname, strlen(hostname)) < 0)
        return berth_error_make(err, errno, "sethostname '%s'", hostname);
    /* A new session: no controlling terminal to inject keystrokes into. */
    if (setsid() < 0)
        return berth_error_make(err, errno, "setsid");
    /* A host core_pattern pipe handler would run in the host's namespaces. */
    if (setrlimit(RLIMIT_CORE, &no_core) < 0)
        return berth_error_make(err, errno, "setrlimit RLIMIT_CORE");
    return 0;
}

/*
 * `early_cpus` non-NULL: the child was not held for the release (nothing
 * of the parent's comes before its setup: a kept user namespace, no
 * network), so the first half of its root is built while the parent makes
 * its cgroup, and the release is awaited only where the cgroup is needed;
 * else it came before this. `early_cpus` is the affinity it had before
 * spread_child() (empty: leave it as it is).
 */
static int child_setup(const struct runner_spec *spec, const struct net_host *net, int sync_fd,
                       const cpu_set_t *early_cpus, struct release *rel, struct berth_error **err)
{
    struct mount_fds fds;
    struct cgroup_view view;
    struct pollfd pfd = { .fd = sync_fd, .events = POLLIN };
    bool own_sys;
    int r;

    /* The daemon's umask must not make the container's / unreadable for its users. */
    umask(022);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return berth_error_make(err, errno, "make '/' rprivate");
    /* Still berth's uid: the only moment berth's own directories open. */
    if ((r = mounts_open(spec, &fds, err)) < 0)
        return r;
    /* Container root, but with berth's uid kept as the saved one, for enter_cgroup(). */
    if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, (uid_t)-1) < 0) {
        r = berth_error_make(err, errno, "switch to container root");
        goto out;
    }
    if ((r = mounts_build_root(spec, &fds, &own_sys, err)) < 0)
        goto out;
    if (early_cpus && !wait_release(sync_fd, rel)) {
        r = berth_error_plain(err, ESRCH, "the spawner died");
        goto out;
    }
    /* Kept off the spawner's CPU until now (spread_child()): init and app get the caller's affinity. */
    if (early_cpus && CPU_COUNT(early_cpus) > 0)
        (void)sched_setaffinity(0, sizeof(*early_cpus), early_cpus);
    if ((r = enter_cgroup(spec, rel, &view, err)) < 0)
        goto out;
    fds.cgroups = view;
    if (setresuid(0, 0, 0) < 0) {
        r = berth_error_make(err, errno, "switch to container root");
        goto out;
    }
    /*
     * Set after the id change, which clears it. If the spawner died before
     * this, the signal will not come: its end of the sync socket hangs up.
     */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || prctl(PR_SET_DUMPABLE, 0) < 0) {
        r = berth_error_make(err, errno, "prctl for the container init");
        goto out;
    }
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR))) {
        r = berth_error_plain(err, ESRCH, "the spawner died");
        goto out;
    }
    if ((r = mounts_finish_root(spec, &fds, own_sys, err)) < 0)
        goto out;
    r = child_finish(spec, net, err);
out:
    for (size_t i = 0; i < rel->n; i++)
        (void)close(rel->fds[i]);
    mounts_fds_release(&fds);
    return r;
}

/*
 * The child's ends of the sync, agent and status channels, the network
 * namespace to join (-1: the clone made one); `early`: see child_setup().
 */
struct child_fds {
    int sync, agent, status, net;
    bool early;
    const cpu_set_t *cpus;       /* early: the affinity to take back at the release (empty: none) */
};

/*
 * Every signal back to its default action. Ignored signals survive execve:
 * the spawner's SIG_IGN for SIGPIPE and SIGINT must not reach the app, nor
 * anything its own caller ignored. glibc's signal() refuses the two signals
 * glibc keeps for its threads (32 and 33), which a caller may still have
 * ignored (CI's had 32), so this asks the kernel directly.
 */
static void reset_signals(void)
{
    /* All zero, whatever the architecture's layout: SIG_DFL, no flags, an empty mask. */
    unsigned long dfl[8] = { 0 };

    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)syscall(SYS_rt_sigaction, sig, dfl, NULL, (size_t)(NSIG - 1) / 8);
}

__attribute__((noreturn))
static void child_main(const struct runner_spec *spec, const struct seccomp_program *prog,
                       const struct net_host *net, const struct child_fds *cf)
{
    int sync_fd = cf->sync, agent_fd = cf->agent, status_fd = cf->status;
    int keep[] = { sync_fd, agent_fd, status_fd, spec->stdout_fd, spec->stderr_fd, spec->stdin_fd };
    struct berth_error *err = NULL;
    struct init_ctx ctx = {
        .spec = spec, .prog = prog, .sync_fd = sync_fd, .agent_fd = agent_fd,
        .status_fd = status_fd,
    };
    struct release rel = { .n = 0 };
    sigset_t none;

    /* Before anything that needs the network namespace: lo, sysfs (owned by its user namespace). */
    if (cf->net >= 0 && setns(cf->net, CLONE_NEWNET) < 0) {
        proto_report_error(sync_fd, errno, "join the network namespace made for the container");
        _exit(1);
    }
    /* The spawner's other fds (its daemon socket, other requests) are not ours; nor is that one. */
    proto_close_all_except(keep, sizeof(keep) / sizeof(*keep));
    reset_signals();
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    /* Unless early, wait until the spawner has written the id maps and started pasta. */
    if (!cf->early && !wait_release(sync_fd, &rel))
        _exit(1);
    if (child_setup(spec, net, sync_fd, cf->early ? cf->cpus : NULL, &rel, &err) < 0) {
        proto_report_error(sync_fd, berth_error_code(&err), berth_error_msg(&err));
        _exit(1);
    }
    init_run(&ctx);
}

static int validate(const struct runner_spec *spec, struct berth_error **err)
{
    if (!spec->argv || !spec->argv[0] || !spec->envp || !spec->lower_dirs)
        return berth_error_plain(err, EINVAL, "spec without argv, envp or lower_dirs");
    if (!spec->state_dir || spec->state_dir[0] != '/' || !spec->stack_dir || spec->stack_dir[0] != '/')
        return berth_error_plain(err, EINVAL, "state_dir and stack_dir must be absolute paths");
    for (size_t i = 0; spec->lower_dirs[i]; i++)
        if (spec->lower_dirs[i][0] != '/')
            return berth_error_plain(err, EINVAL, "lower dir '%s' is not absolute", spec->lower_dirs[i]);
    if (spec->id_count == 0 || spec->uid >= spec->id_count || spec->gid >= spec->id_count)
        return berth_error_plain(err, EINVAL, "uid %u / gid %u outside the %lu mapped ids",
                                 spec->uid, spec->gid, spec->id_count);
    if (spec->stdout_fd < 0 || spec->stderr_fd < 0)
        return berth_error_plain(err, EBADF, "spec without stdout_fd or stderr_fd");
    if (spec->cwd && spec->cwd[0] != '/')
        return berth_error_plain(err, EINVAL, "cwd '%s' is not absolute", spec->cwd);
    if (spec->hostname && strlen(spec->hostname) > 64)
        return berth_error_plain(err, EINVAL, "hostname '%s' is too long", spec->hostname);
    return 0;
}

/* What container_create() holds while it works; create_release() undoes what is left. */
struct create {
    const struct runner_spec *spec;
    struct cgroup_layout **layout;
    char *what;                  /* "container 'name'" for messages */
    bool in_cgroup;
    bool chmodded;               /* state_dir is 0777 until the child reports */
    mode_t state_mode;
    int sync_p, agent_p, status_r, pidfd, pasta_fd;
    bool in_userns;              /* the caller's user namespace is the container's */
    int join_userns;             /* container_opts.userns_fd when the child joins it, else -1 */
    uid_t uid;                   /* container_opts.uid */
    int net_fd;                  /* container_opts.net_fd when joined, else -1 (not ours) */
    int userns;                  /* -1, or the child's user namespace when asked for */
    int child_fds[3];            /* the child's ends: sync, agent, status */
    int enter_fds[CGROUP_MAX_ENTER];   /* cgroup_open_enter()'s, for the child */
    size_t n_enter;
    pid_t pid;
    struct net_host net;
    cpu_set_t cpus;              /* early only: the CPUs the child gets back at release */
    void (*on_clone)(void *arg, int pidfd);   /* container_opts' */
    void *on_clone_arg;
};

/* Before the clone: network checks and resolv.conf, the cgroup, state_dir's mode, the sockets. */
static int create_prepare(struct create *c, struct berth_error **err)
{
    const struct runner_spec *spec = c->spec;
    _cleanup_free_ char *upper = xasprintf("%s/upper", spec->state_dir);
    int sv[2], r;
    struct stat st;

    if (spec->network && (r = network_prepare(spec->state_dir, &c->net, err)) < 0)
        return berth_error_wrap(err, "network for %s", c->what);
    /*
     * The overlay's upper and work dirs must belong to the container's root
     * (see mounts.c), and only a process with that uid can create them, so
     * state_dir is writable for it until the child reports back. Not for an
     * upper in memory: they are made in the container's own tmpfs, mounted
     * over state_dir while the child still has berth's uid.
     */
    if (stat(spec->state_dir, &st) < 0)
        return berth_error_make(err, errno, "stat state dir '%s'", spec->state_dir);
    c->state_mode = st.st_mode & 07777;
    if (!spec->upper_in_memory && access(upper, F_OK) < 0) {
        if (chmod(spec->state_dir, 0777) < 0)
            return berth_error_make(err, errno, "chmod state dir '%s'", spec->state_dir);
        c->chmodded = true;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    c->sync_p = sv[0];
    c->child_fds[0] = sv[1];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return berth_error_make(err, errno, "socketpair");
    c->agent_p = sv[0];
    c->child_fds[1] = sv[1];
    if (pipe2(sv, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe");
    c->status_r = sv[0];
    c->child_fds[2] = sv[1];
    return 0;
}

/*
 * An early child (child_setup()) builds its root while the parent makes its
 * cgroup, but a new task is woken on its parent's CPU, where it waits until
 * the parent sleeps, while another CPU idles: measured on a 2-CPU VM, the
 * child first ran 0.05-0.72 ms after the clone, and the two halves of the
 * start ran one after the other. So until the release the child may run
 * anywhere but here; child_setup() gives it `cpus` back after the release,
 * which comes after this, so the two cannot cross. Nothing is changed with
 * one CPU allowed, or when the affinity cannot be read.
 */
static void spread_child(pid_t pid, const cpu_set_t *cpus)
{
    cpu_set_t others = *cpus;
    int cpu = sched_getcpu();

    if (cpu < 0 || CPU_COUNT(&others) < 2 || !CPU_ISSET(cpu, &others))
        return;
    CPU_CLR(cpu, &others);
    (void)sched_setaffinity(pid, sizeof(others), &others);
}

/* The user namespace is one made before: the caller's, or a kept one the child joins. */
static bool userns_made_before(const struct create *c)
{
    return c->in_userns || c->join_userns >= 0;
}

/* The namespaces the clone makes: not the user namespace joined, nor the network one to join. */
static unsigned long ns_flags(const struct create *c)
{
    unsigned long flags = NS_FLAGS;

    if (userns_made_before(c))
        flags &= ~(unsigned long)CLONE_NEWUSER;
    if (c->net_fd >= 0)
        flags &= ~(unsigned long)CLONE_NEWNET;
    return flags;
}

/*
 * The clone into a kept user namespace (container_opts.join_userns): an
 * intermediate, forked, joins it and clones the child with `flags` and
 * CLONE_PARENT, so the child's namespaces belong to the kept one and the
 * child itself is ours, its exit signal ours too, as container_clone()'s
 * are. The intermediate sends the child's pid (or -errno) through a pipe
 * and exits, and is reaped here; the child's pidfd is opened by pid, which
 * names it for sure: it is our child and unreaped (container_clone() says
 * why nothing else reaps it). Returns as container_clone() does, 0 in the
 * child.
 */
static pid_t clone_joined(int userns, unsigned long flags, int *ret_pidfd)
{
    _cleanup_close_ int mid_pidfd = -1;
    long child = -EPROTO;
    ssize_t n;
    int fds[2], pidfd, e;
    pid_t mid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    mid = container_clone(0, &mid_pidfd);
    if (mid == 0) {
        (void)close(fds[0]);
        child = setns(userns, CLONE_NEWUSER) < 0
                    ? -1 : syscall(SYS_clone, flags | CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
        if (child == 0) {
            (void)close(fds[1]);
            return 0;
        }
        if (child < 0)
            child = -errno;
        n = write(fds[1], &child, sizeof(child));
        _exit(n == sizeof(child) ? 0 : 1);
    }
    e = errno;
    (void)close(fds[1]);
    if (mid < 0) {
        (void)close(fds[0]);
        errno = e;
        return -1;
    }
    do {
        n = read(fds[0], &child, sizeof(child));
    } while (n < 0 && errno == EINTR);
    (void)close(fds[0]);
    (void)container_reap(mid_pidfd, true);
    if (n != sizeof(child) || child <= 0) {
        errno = n == sizeof(child) && child < 0 ? (int)-child : EPROTO;
        return -1;
    }
    pidfd = (int)syscall(SYS_pidfd_open, (pid_t)child, 0);
    if (pidfd < 0) {
        e = errno;
        (void)kill((pid_t)child, SIGKILL);
        (void)waitpid((pid_t)child, NULL, 0);
        errno = e;
        return -1;
    }
    *ret_pidfd = pidfd;
    return (pid_t)child;
}

/* Sends the child its go ('g', with the cgroup fds) and reads its setup report. */
static int release_child(struct create *c, struct berth_error **err)
{
    int r = proto_send(c->sync_p, "g", 1, c->enter_fds, c->n_enter);

    while (c->n_enter > 0)
        closep(&c->enter_fds[--c->n_enter]);
    /*
     * An early child that failed before its release has queued its report
     * and exited, so the send finds the socket closed: its report, still
     * readable, says why, where "Broken pipe" would not.
     */
    if (r == -EPIPE || r == -ECONNRESET) {
        int rr = proto_report_read(c->sync_p, c->what, err);

        if (rr < 0)
            return rr;
    }
    if (r < 0)
        return berth_error_make(err, -r, "release %s", c->what);
    return proto_report_read(c->sync_p, c->what, err);
}

/* The clone, and what the parent does before releasing the child. */
static int create_start(struct create *c, const struct seccomp_program *prog, bool want_userns,
                        struct berth_error **err)
{
    const struct runner_spec *spec = c->spec;
    bool early = userns_made_before(c) && !spec->network;
    int r;

    CPU_ZERO(&c->cpus);
    if (early && sched_getaffinity(0, sizeof(c->cpus), &c->cpus) < 0)
        CPU_ZERO(&c->cpus);
    if (c->join_userns >= 0)
        c->pid = clone_joined(c->join_userns, ns_flags(c), &c->pidfd);
    else
        c->pid = container_clone(ns_flags(c), &c->pidfd);
    if (c->pid == 0) {
        struct child_fds cf = {
            .sync = c->child_fds[0], .agent = c->child_fds[1], .status = c->child_fds[2],
            .net = c->net_fd, .early = early, .cpus = &c->cpus,
        };

        child_main(spec, prog, &c->net, &cf);
    }
    r = c->pid < 0 ? -errno : 0;
    if (c->pid > 0 && CPU_COUNT(&c->cpus) > 0)
        spread_child(c->pid, &c->cpus);
    /*
     * -1 after each close (closep() leaves the number behind): create_release()
     * closes what is left, and these numbers go to the pidfds opened next.
     */
    for (size_t i = 0; i < 3; i++) {
        closep(&c->child_fds[i]);
        c->child_fds[i] = -1;
    }
    if (r < 0) {
        c->pid = 0;
        return berth_error_make(err, -r, "clone the namespaces of %s", c->what);
    }
    /*
     * Until we reap it (only on failure, below) the child, even dead, keeps
     * its pid: here the pid still names it, for the tools that take one.
     */
    if (want_userns) {
        _cleanup_free_ char *ns = xasprintf("/proc/%d/ns/user", (int)c->pid);

        c->userns = open(ns, O_RDONLY | O_CLOEXEC);
        if (c->userns < 0)
            return berth_error_make(err, errno, "open the user namespace of %s", c->what);
    }
    if (!userns_made_before(c) &&
        (r = container_map_ids(c->pid, spec->uid_base, spec->gid_base, spec->id_count, err)) < 0)
        return r;
    /*
     * The cgroup, made while an early child builds its root. Set first: a
     * limit refused after the mkdirs still leaves a leaf to remove.
     */
    if (spec->cgroup) {
        if (!*c->layout && (r = cgroup_layout_detect_uid(c->uid, c->layout, err)) < 0)
            return r;
        c->in_cgroup = true;
        if ((r = cgroup_create(*c->layout, spec->cgroup, &spec->limits, err)) < 0 ||
            (r = cgroup_open_enter(*c->layout, spec->cgroup, c->enter_fds, &c->n_enter, err)) < 0)
            return r;
    }
    /*
     * pasta attaches to the namespaces while the child waits, still berth's
     * uid and dumpable, so pasta (same uid) may open its /proc/<pid>/ns.
     */
    if (spec->network &&
        (r = network_pasta_start(&c->net, c->pid, spec->state_dir, *c->layout, spec->cgroup,
                                 c->what, &c->pasta_fd, err)) < 0)
        return r;
    if (c->on_clone)
        c->on_clone(c->on_clone_arg, c->pidfd);
    return release_child(c, err);
}

static void create_release(struct create *c, bool failed)
{
    if (failed && c->pasta_fd >= 0)
        network_pasta_stop(c->pasta_fd);
    if (failed && c->pid > 0) {
        container_kill(c->pidfd);
        (void)container_reap(c->pidfd, true);
    }
    if (c->chmodded)
        (void)chmod(c->spec->state_dir, c->state_mode);
    if (failed && c->in_cgroup) {
        struct berth_error *e2 = NULL;

        (void)cgroup_remove(*c->layout, c->spec->cgroup, &e2);
        berth_error_release(&e2);
    }
    closep(&c->sync_p);
    closep(&c->agent_p);
    closep(&c->status_r);
    closep(&c->pidfd);
    closep(&c->pasta_fd);
    closep(&c->userns);
    for (size_t i = 0; i < 3; i++)
        closep(&c->child_fds[i]);
    while (c->n_enter > 0)
        closep(&c->enter_fds[--c->n_enter]);
    network_host_release(&c->net);
    free(c->what);
}

int container_create(const struct runner_spec *spec, const struct seccomp_program *prog,
                     struct cgroup_layout **layout, const struct container_opts *opts,
                     struct container_handles *ret, struct berth_error **err)
{
    int *ret_userns = opts->ret_userns;
    struct create c = {
        .spec = spec, .layout = layout, .in_userns = opts->in_userns, .uid = opts->uid,
        .what = xasprintf("container '%s'", spec->name ? spec->name : "?"),
        .sync_p = -1, .agent_p = -1, .status_r = -1, .pidfd = -1, .pasta_fd = -1, .userns = -1,
        .child_fds = { -1, -1, -1 },
        .net_fd = opts->join_net && opts->in_userns && !spec->network ? opts->net_fd : -1,
        .join_userns = opts->join_userns && !opts->in_userns && !spec->network ? opts->userns_fd : -1,
        .on_clone = opts->on_clone, .on_clone_arg = opts->on_clone_arg,
    };
    int r;

    if ((r = validate(spec, err)) < 0 || (r = create_prepare(&c, err)) < 0 ||
        (r = create_start(&c, prog, ret_userns != NULL, err)) < 0) {
        if (ret_userns)
            *ret_userns = TAKE_FD(c.userns);
        create_release(&c, true);
        return r;
    }
    *ret = (struct container_handles){
        .pid = c.pid, .pidfd = TAKE_FD(c.pidfd), .agent_fd = TAKE_FD(c.agent_p),
        .status_fd = TAKE_FD(c.status_r), .pasta_fd = TAKE_FD(c.pasta_fd),
    };
    if (ret_userns)
        *ret_userns = TAKE_FD(c.userns);
    create_release(&c, false);
    return 0;
}
