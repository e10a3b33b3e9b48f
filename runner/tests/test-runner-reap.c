/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The reaping part of the runner integration test (see test-runner.c): the
 * spawner names its children by pidfd (spawner.c says why) and never waits
 * on a container for a request. Against a spawner of its own, spoken to in
 * the wire protocol (proto.h), a REQ_REAP for a container that still runs
 * is answered at once with EBUSY, where the spawner used to block in
 * waitpid() for as long as the container ran, holding up every spawn; the
 * REQ_REAP once the pidfd said the container exited reaps it, and a second
 * one finds nothing. Then, through runner.h, threads spawn at once
 * containers whose init exits at once and containers they stop while they
 * run: every status is the container's own, nothing hangs (the test has an
 * alarm), and afterwards the spawner has no child left, not even a zombie.
 * Last, the spawner, which holds a pidfd per child, runs with a raised fd
 * limit, and its children with the daemon's.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/container.h"
#include "runner/proto.h"
#include "runner/runner.h"
#include "runner/spawner.h"
#include "runner/tests/harness.h"
#include "common/banned.h"

/* How long an answer of the spawner may take before the test calls it blocked. */
#define ANSWER_MS 3000

/*
 * One request to a spawner of our own: its reply in *rep (msg points into
 * buf), the fds it carried in rfds. -ETIMEDOUT when no answer came within
 * ANSWER_MS.
 */
static int raw_request(int sock, const struct strbuf *req, const int *fds, size_t n_fds,
                       struct proto_reply *rep, char *buf, size_t cap, int *rfds,
                       size_t *n_rfds)
{
    struct pollfd p = { .fd = sock, .events = POLLIN };
    ssize_t n;
    int r;

    *n_rfds = 0;
    if ((r = proto_send(sock, req->buf, req->len, fds, n_fds)) < 0)
        return r;
    r = poll(&p, 1, ANSWER_MS);
    if (r <= 0)
        return r == 0 ? -ETIMEDOUT : -errno;
    n = proto_recv(sock, buf, cap, rfds, PROTO_MAX_FDS, n_rfds);
    if (n <= 0)
        return n == 0 ? -EPIPE : (int)n;
    return proto_get_reply(buf, (size_t)n, rep) < 0 ? -EBADMSG : 0;
}

/* REQ_REAP of container `id`: the reply's code (0 or an errno), or -errno without a reply. */
static int raw_reap(int sock, uint64_t id, double *ret_ms)
{
    _cleanup_strbuf_ struct strbuf req = STRBUF_INIT;
    struct proto_reply rep;
    struct timespec t0;
    char buf[4096];
    int rfds[PROTO_MAX_FDS];
    size_t n_rfds;
    int r;

    proto_put_u64(&req, REQ_REAP);
    proto_put_u64(&req, id);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = raw_request(sock, &req, NULL, 0, &rep, buf, sizeof(buf), rfds, &n_rfds);
    *ret_ms = ms_since(&t0);
    for (size_t i = 0; i < n_rfds; i++)
        (void)close(rfds[i]);
    return r < 0 ? r : rep.code;
}

/* Spawns `busybox sleep 30` through the raw protocol: 0 with its id and pidfd. */
static int raw_spawn_sleeper(int sock, uint64_t *ret_id, int *ret_pidfd)
{
    _cleanup_free_ char *state = new_state("reap-busy");
    _cleanup_strbuf_ struct strbuf req = STRBUF_INIT;
    const char *argv[] = { "/bin/busybox", "sleep", "30", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    const int fds[2] = { STDERR_FILENO, STDERR_FILENO };
    _cleanup_free_ char *buf = xmalloc(PROTO_MAX_MSG);
    struct proto_reply rep;
    int rfds[PROTO_MAX_FDS];
    size_t n_rfds;
    int r;

    spec.name = "reap-busy";
    proto_put_u64(&req, REQ_SPAWN);
    proto_put_spec(&req, &spec);
    r = raw_request(sock, &req, fds, 2, &rep, buf, PROTO_MAX_MSG, rfds, &n_rfds);
    if (r == 0 && (rep.code || n_rfds != 3)) {
        fprintf(stderr, "# spawn: %s\n", rep.msg ? rep.msg : "no fds");
        r = -(rep.code ? rep.code : EBADMSG);
    }
    if (r == 0) {
        *ret_id = rep.v[1];
        *ret_pidfd = rfds[2];
        (void)close(rfds[0]);
        (void)close(rfds[1]);
    } else {
        for (size_t i = 0; i < n_rfds; i++)
            (void)close(rfds[i]);
    }
    return r;
}

/* The REQ_REAP checks on a container of a spawner of our own, on `sock`. */
static void check_reaps(int sock)
{
    uint64_t id = 0;
    int pidfd = -1, r;
    struct pollfd p;
    double ms;

    r = raw_spawn_sleeper(sock, &id, &pidfd);
    t_ok(r == 0, "a spawner of the test's own spawns a container that sleeps (%d)", r);
    if (r < 0)
        return;
    r = raw_reap(sock, id, &ms);
    t_ok(r == EBUSY, "a REQ_REAP while it runs is answered EBUSY at once, not waited on "
         "(%d, %.1f ms)", r, ms);
    (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
    t_ok(poll(&p, 1, 10000) == 1, "its pidfd says it exited once killed");
    r = raw_reap(sock, id, &ms);
    t_ok(r == 0, "then REQ_REAP reaps it (%d, %.1f ms)", r, ms);
    r = raw_reap(sock, id, &ms);
    t_ok(r == ESRCH, "a second REQ_REAP finds no such container (%d)", r);
    (void)close(pidfd);
}

static void test_reap_requests(void)
{
    struct berth_error *err = NULL;
    pid_t parent = getpid(), pid;
    int sv[2], status = 0;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        t_ok(false, "socketpair: %s", strerror(errno));
        return;
    }
    pid = fork();
    if (pid == 0) {
        (void)close(sv[0]);
        spawner_main(sv[1], parent);
    }
    (void)close(sv[1]);
    if (pid < 0 || proto_report_read(sv[0], "the test's spawner", &err) < 0) {
        t_ok(false, "start a spawner of the test's own: %s", pid < 0 ? strerror(errno) :
             berth_error_msg(&err));
        berth_error_release(&err);
        (void)close(sv[0]);
        if (pid > 0)
            (void)waitpid(pid, NULL, 0);
        return;
    }
    check_reaps(sv[0]);
    /* A spawner stuck in a wait would never see the hang-up: kill it then. */
    (void)close(sv[0]);
    for (int i = 0; i < ANSWER_MS / 10 && waitpid(pid, &status, WNOHANG) == 0; i++)
        (void)nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    if (kill(pid, 0) == 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
    }
    t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "the spawner exits when its socket closes (status 0x%x)", status);
}

/* ------------------------------------------------------------------------
 * many short-lived containers, from several threads at once
 */

#define CHURN_THREADS 4
#define CHURN_EACH 12

struct churn {
    struct runner *rn;
    int thread;
    int good, bad;
};

/*
 * Container k of a thread: even ones exit at once with a status of their
 * own (their init is reaped while other threads spawn); odd ones sleep
 * and are stopped while they run.
 */
static bool churn_one(struct churn *ch, int k)
{
    _cleanup_free_ char *name = xasprintf("churn-%d-%d", ch->thread, k);
    _cleanup_free_ char *script = xasprintf("exit %d", 1 + ch->thread * CHURN_EACH + k);
    const char *quick[] = { "/bin/busybox", "sh", "-c", script, NULL };
    const char *sleeper[] = { "/bin/busybox", "sleep", "30", NULL };
    struct runner_container *c = spawn_mounted(ch->rn, name, k % 2 ? sleeper : quick, NULL, 0);
    struct berth_error *err = NULL;
    int status = -1, r;
    bool good;

    if (!c)
        return false;
    if (k % 2) {
        r = runner_stop(c, 0, &err);
        good = r == 0 && runner_wait(c, 0, &status, &err) == 0 && WIFSIGNALED(status);
    } else {
        struct pollfd p = { .fd = runner_container_exit_fd(c), .events = POLLIN };

        good = poll(&p, 1, 10000) == 1 && runner_wait(c, 0, &status, &err) == 0 &&
               WIFEXITED(status) && WEXITSTATUS(status) == 1 + ch->thread * CHURN_EACH + k;
        good = runner_stop(c, 0, &err) == 0 && good;
    }
    if (!good)
        fprintf(stderr, "# %s: status 0x%x%s%s\n", name, status, err ? ": " : "",
                err ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    runner_container_free(c);
    return good;
}

static void *churn_thread(void *arg)
{
    struct churn *ch = arg;

    for (int k = 0; k < CHURN_EACH; k++) {
        if (churn_one(ch, k))
            ch->good++;
        else
            ch->bad++;
    }
    return NULL;
}

static void test_churn(struct runner *rn)
{
    struct churn ch[CHURN_THREADS];
    pthread_t th[CHURN_THREADS];
    int good = 0, bad = 0;
    pid_t spawner = child_of(getpid(), "berth-spawner");
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Bounded: a spawner that blocks makes the test fail, never hang. */
    (void)alarm(120);
    for (int i = 0; i < CHURN_THREADS; i++) {
        ch[i] = (struct churn){ .rn = rn, .thread = i };
        if (pthread_create(&th[i], NULL, churn_thread, &ch[i]) != 0)
            abort();
    }
    for (int i = 0; i < CHURN_THREADS; i++) {
        (void)pthread_join(th[i], NULL);
        good += ch[i].good;
        bad += ch[i].bad;
    }
    (void)alarm(0);
    t_ok(bad == 0 && good == CHURN_THREADS * CHURN_EACH,
         "%d threads spawn %d containers at once, half exiting at once and half stopped while "
         "they run: each has its own status (%d good, %d bad, %.0f ms)", CHURN_THREADS,
         CHURN_THREADS * CHURN_EACH, good, bad, ms_since(&t0));
    t_ok(spawner > 0 && child_of(spawner, NULL) < 0,
         "then the spawner has no child left, not even a zombie (spawner %d, child %d)",
         (int)spawner, spawner > 0 ? (int)child_of(spawner, NULL) : -1);
}

/*
 * The spawner holds a pidfd per child, so it raises its soft fd limit; its
 * children, the app included, keep ours (the daemon's).
 */
static void test_fd_limits(struct runner *rn)
{
    pid_t spawner = child_of(getpid(), "berth-spawner");
    _cleanup_free_ char *limits = xasprintf("/proc/%d/limits", (int)spawner);
    _cleanup_fclose_ FILE *f = fopen(limits, "re");
    _cleanup_free_ char *want = NULL;
    unsigned long long soft = 0, hard = 0, expect;
    char line[256];
    struct rlimit rl;

    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Max open files %llu %llu", &soft, &hard) == 2)
            break;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        abort();
    expect = rl.rlim_max > SPAWNER_MAX_FDS ? SPAWNER_MAX_FDS : rl.rlim_max;
    t_ok(soft == expect, "the spawner's soft fd limit is raised to %llu (ours %llu, hard %llu)",
         soft, (unsigned long long)rl.rlim_cur, hard);
    want = xasprintf("%llu\n", (unsigned long long)rl.rlim_cur);
    check_output(rn, "nofile", 1000, "ulimit -n", want,
                 "an app keeps the daemon's soft fd limit, not the spawner's");
}

void test_reaping(struct runner *rn)
{
    test_reap_requests();
    test_churn(rn);
    test_fd_limits(rn);
}
