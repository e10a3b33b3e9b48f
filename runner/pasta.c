/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pasta process of a networked container (network.h), started and
 * stopped by the spawner. pasta runs in the foreground as the spawner's own
 * child, with berth's uid: it joins the container's user namespace (berth
 * owns it, so it has the capabilities there that configuring the network
 * namespace takes) and keeps serving the container's traffic until it is
 * killed, because it does not exit when the namespace's processes die (it
 * holds the namespace open itself). The spawner SIGKILLs it when it reaps
 * the container's init, or when it shuts down, and reaps it through its
 * pidfd (spawner.c); PDEATHSIG covers the spawner's own death. It moves itself
 * into the container's cgroup before exec, so all its memory and CPU count
 * against the tenant and a cgroup kill takes it down too. (On CPUs with
 * AVX2 it re-executes itself as passt.avx2, the name ps shows; argv[0]
 * stays "pasta".)
 *
 * Readiness: pasta writes its pid file (-P) once it has configured the
 * namespace (interface, addresses, routes), about 20 ms after exec; the
 * spawner polls for that file while watching that pasta has not exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/network.h"
#include "common/banned.h"

#define PASTA_READY_TIMEOUT_MS 5000
/* What we keep of pasta's output for an error message. */
#define PASTA_OUTPUT_MAX 4096

struct pasta_argv {
    char target[24];
    char *pidfile;
    const char *argv[32];
};

/*
 * The options, each for a reason:
 *   --config-net        configure the tap interface, addresses and routes
 *   -f                  stay our child (no daemonizing), so we can reap it
 *   -q -e               only errors, and on stderr (our pipe) as well as syslog
 *   --no-map-gw         the gateway address is the real gateway, not the host
 *   -t/-u/-T/-U none    no port forwarding either way; the default "auto"
 *                       would bind the container's ports on the host and
 *                       forward its loopback ports to the host's
 *   -I eth0             the same interface name on every host
 *   --dns-forward       see network_resolv_conf()
 */
static void pasta_argv(struct pasta_argv *a, const struct net_host *h, pid_t target,
                       const char *state_dir)
{
    static const char *const no_forwards[] = { "-t", "-u", "-T", "-U" };
    size_t n = 0;

    (void)snprintf(a->target, sizeof(a->target), "%d", (int)target);
    a->pidfile = xasprintf("%s/pasta.pid", state_dir);
    a->argv[n++] = "pasta";
    a->argv[n++] = "--config-net";
    a->argv[n++] = "--foreground";
    a->argv[n++] = "--quiet";
    a->argv[n++] = "--stderr";
    a->argv[n++] = "--no-map-gw";
    a->argv[n++] = "--ns-ifname";
    a->argv[n++] = "eth0";
    for (size_t i = 0; i < sizeof(no_forwards) / sizeof(*no_forwards); i++) {
        a->argv[n++] = no_forwards[i];
        a->argv[n++] = "none";
    }
    if (h->forward4) {
        a->argv[n++] = "--dns-forward";
        a->argv[n++] = NET_DNS_FORWARD4;
    }
    if (h->forward6) {
        a->argv[n++] = "--dns-forward";
        a->argv[n++] = NET_DNS_FORWARD6;
    }
    a->argv[n++] = "--pid";
    a->argv[n++] = a->pidfile;
    a->argv[n++] = a->target;
    a->argv[n] = NULL;
}

/* The forked child: into the cgroup, tied to the spawner's life, then exec. */
__attribute__((noreturn))
static void pasta_child(const char *pasta, const struct pasta_argv *a, pid_t spawner, int out,
                        const struct cgroup_layout *layout, const char *cgroup)
{
    char *const envp[] = { NULL };
    struct berth_error *e = NULL;
    sigset_t none;
    int null_fd;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != spawner)
        _exit(127);
    /* Above stdio, or the dup2s below would clobber it (a daemon started without stdin). */
    if (out < 3 && (out = fcntl(out, F_DUPFD_CLOEXEC, 3)) < 0)
        _exit(127);
    if (cgroup && cgroup_enter(layout, cgroup, getpid(), &e) < 0) {
        dprintf(out, "%s\n", berth_error_msg(&e));
        _exit(126);
    }
    /* The spawner ignores SIGPIPE, SIGINT, ...; exec keeps that, and any blocked signal. */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)signal(sig, SIG_DFL);
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(out, STDERR_FILENO) < 0) {
        dprintf(out, "set up pasta's stdio: %s\n", strerror(errno));
        _exit(127);
    }
    (void)syscall(SYS_close_range, 3, ~0U, 0);
    execve(pasta, (char *const *)a->argv, envp);
    dprintf(STDERR_FILENO, "execve '%s': %s\n", pasta, strerror(errno));
    _exit(127);
}

static void drain(int fd, struct strbuf *sb)
{
    char buf[1024];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (sb->len < PASTA_OUTPUT_MAX)
            strbuf_add(sb, buf, (size_t)n);
}

/*
 * pasta's output as one line, without the "Failed to send N bytes to
 * syslog" lines it prints where there is no syslog socket.
 */
static void describe(const struct strbuf *out, struct strbuf *ret)
{
    for (const char *line = out->buf; *line;) {
        size_t len = strcspn(line, "\n");

        if (len && strncmp(line, "Failed to send ", 15) != 0)
            strbuf_addf(ret, "%s%.*s", ret->len ? "; " : "", (int)len, line);
        line += len;
        if (*line)
            line++;
    }
}

static long elapsed_ms(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* 0 once the pid file is written; otherwise pasta is dead (killed here if need be) and reaped. */
static int pasta_wait(int pidfd, int out, const char *pidfile, const char *what,
                      struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf output = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf why = STRBUF_INIT;
    struct timespec start;
    bool timed_out = false;
    siginfo_t si = { 0 };
    int r;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd p[2] = { { .fd = out, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        struct stat st;

        if (stat(pidfile, &st) == 0 && st.st_size > 0)
            return 0;
        if (elapsed_ms(&start) >= PASTA_READY_TIMEOUT_MS) {
            timed_out = true;
            container_kill(pidfd);
            break;
        }
        /* 1 ms: readiness is a file, not an event; pasta takes about 20 ms. */
        if (poll(p, 2, 1) < 0 && errno != EINTR) {
            r = berth_error_make(err, errno, "wait for pasta of %s", what);
            network_pasta_stop(pidfd);
            return r;
        }
        drain(out, &output);
        if (p[1].revents & POLLIN)
            break;
    }
    while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED) < 0 && errno == EINTR)
        ;
    drain(out, &output);
    describe(&output, &why);
    if (timed_out)
        return berth_error_plain(err, ETIMEDOUT, "pasta did not set up the network of %s within "
                                 "%d s%s%s", what, PASTA_READY_TIMEOUT_MS / 1000,
                                 why.len ? ": " : "", why.buf);
    if (why.len)
        return berth_error_plain(err, EIO, "pasta failed for %s: %s", what, why.buf);
    return berth_error_plain(err, EIO, "pasta %s %d before it set up the network of %s",
                             si.si_code == CLD_EXITED ? "exited with status" : "was killed by signal",
                             si.si_status, what);
}

int network_pasta_start(const struct net_host *h, pid_t target, const char *state_dir,
                        const struct cgroup_layout *layout, const char *cgroup, const char *what,
                        int *ret_pidfd, struct berth_error **err)
{
    struct pasta_argv a;
    _cleanup_close_ int out_r = -1, pidfd = -1;
    pid_t spawner = getpid(), pid;
    int out[2], r;

    pasta_argv(&a, h, target, state_dir);
    (void)unlink(a.pidfile);
    /*
     * The read end only is non-blocking. It is closed once pasta runs; pasta
     * ignores SIGPIPE, so what it logs later is lost (to us; syslog has it)
     * instead of killing it.
     */
    if (pipe2(out, O_CLOEXEC) < 0) {
        r = berth_error_make(err, errno, "pipe for pasta");
        goto out;
    }
    out_r = out[0];
    (void)fcntl(out_r, F_SETFL, O_NONBLOCK);
    /* clone with fork semantics, for the pidfd that tells us pasta exited */
    pid = container_clone(0, &pidfd);
    if (pid == 0)
        pasta_child(h->pasta, &a, spawner, out[1], layout, cgroup);
    r = pid < 0 ? -errno : 0;
    (void)close(out[1]);
    if (r < 0) {
        r = berth_error_make(err, -r, "fork pasta for %s", what);
        goto out;
    }
    if ((r = pasta_wait(pidfd, out_r, a.pidfile, what, err)) == 0)
        *ret_pidfd = TAKE_FD(pidfd);
out:
    free(a.pidfile);
    return r;
}

void network_pasta_stop(int pidfd)
{
    if (pidfd < 0)
        return;
    container_kill(pidfd);
    (void)container_reap(pidfd, true);
}
