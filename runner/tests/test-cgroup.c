/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Integration test for runner/cgroup-layout.c and runner/cgroup.c on the
 * real cgroup filesystem.
 *
 * As root it first plays `berth setup`: runner_cgroup_delegate() for the
 * `berth` user (this creates only `berth-berth` below this process's own cgroups),
 * then forks a child that drops to the berth user for the checks, exactly
 * the position of the berth daemon. Run as any other user, it runs the
 * checks directly when the delegation exists and skips otherwise (fails
 * instead when BERTH_MUST_WORK is set).
 *
 * The checks prove enforcement, not just file writes: a fork bomb hits
 * pids.max with EAGAIN, a memory hog is OOM-killed while a small job in the
 * same cgroup runs, cgroup_kill_all empties the cgroup. The test cgroups
 * (test-<pid>) are removed at the end; `berth-berth` itself is left in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/magic.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "runner/cgroup.h"
#include "runner/runner.h"
#include "common/banned.h"

#define MiB (1024UL * 1024UL)

static bool must_work(void)
{
    const char *v = getenv("BERTH_MUST_WORK");
    return v && *v && strcmp(v, "0") != 0;
}

/*
 * The test's own idea of where a controller's berth cgroup is: the mount
 * point /sys/fs/cgroup/<ctrl> (v1) or /sys/fs/cgroup (v2) plus this
 * process's path from /proc/self/cgroup. Deliberately independent of
 * cgroup-layout.c's mountinfo parsing, so the two can check each other; good
 * for the usual layout of a host without cgroup namespaces.
 */
static char *berth_dir(const char *ctrl)
{
    struct statfs sfs;
    bool v2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
    _cleanup_strbuf_ struct strbuf cg = STRBUF_INIT;

    if (read_file("/proc/self/cgroup", &cg, 1 << 20, NULL) < 0)
        return NULL;
    for (char *line = cg.buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            *c2 = '\0';
            bool match = false;
            if (v2) {
                match = c1[1] == '\0';
            } else {
                _cleanup_free_ char *list = xasprintf(",%s,", c1 + 1);
                _cleanup_free_ char *want = xasprintf(",%s,", ctrl);
                match = strstr(list, want) != NULL;
            }
            if (match) {
                const char *p = strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1;
                /* The subtree delegated to the user `berth` is berth-berth. */
                return v2 ? xasprintf("/sys/fs/cgroup%s/berth-berth", p)
                          : xasprintf("/sys/fs/cgroup/%s%s/berth-berth", ctrl, p);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

static bool is_v2(void)
{
    struct statfs sfs;
    return statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* Reads <berth dir of ctrl>/<rel>/<file> into out (trimmed); false if unreadable. */
static bool read_knob(const char *ctrl, const char *rel, const char *file, struct strbuf *out)
{
    _cleanup_free_ char *dir = berth_dir(ctrl);
    if (!dir)
        return false;
    _cleanup_free_ char *p = xasprintf("%s/%s/%s", dir, rel, file);
    strbuf_setlen(out, 0);
    if (read_file(p, out, 1 << 20, NULL) < 0)
        return false;
    strbuf_rtrim(out);
    return true;
}

static bool cgroup_exists(const char *ctrl, const char *rel)
{
    _cleanup_free_ char *dir = berth_dir(ctrl);
    if (!dir)
        return false;
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

/* Forks a child that blocks until told to go, then runs fn(arg) and exits with its result. */
struct gated {
    pid_t pid;
    int go_fd;       /* write a byte to release the child */
    int result_fd;   /* the child's report, if any */
};

static int start_gated(struct gated *g, int (*fn)(int out_fd))
{
    int go[2], res[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(res, O_CLOEXEC) < 0) {
        (void)close(go[0]);
        (void)close(go[1]);
        return -errno;
    }
    fflush(stdout);
    g->pid = fork();
    if (g->pid < 0)
        return -errno;
    if (g->pid == 0) {
        char c;
        (void)close(go[1]);
        (void)close(res[0]);
        if (read(go[0], &c, 1) != 1)
            _exit(100);
        _exit(fn(res[1]));
    }
    (void)close(go[0]);
    (void)close(res[1]);
    g->go_fd = go[1];
    g->result_fd = res[0];
    return 0;
}

static void release_gated(struct gated *g)
{
    (void)write_all(g->go_fd, "g", 1);
    (void)close(g->go_fd);
    g->go_fd = -1;
}

/* Forks until fork fails; reports "<children> <errno>" and then waits to be killed. */
static int fork_bomb(int out_fd)
{
    int n = 0, e = 0;
    for (; n < 200; n++) {
        pid_t p = fork();
        if (p < 0) {
            e = errno;
            break;
        }
        if (p == 0) {
            pause();
            _exit(0);
        }
    }
    char buf[64];
    int len = snprintf(buf, sizeof(buf), "%d %d\n", n, e);
    (void)write_all(out_fd, buf, (size_t)len);
    (void)close(out_fd);
    for (;;)
        pause();
}

/* Touches `mb` MiB in 1 MiB steps; mmap keeps the sanitizers' allocators out of it. */
static int touch_mb(int mb)
{
    for (int i = 0; i < mb; i++) {
        char *p = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 2;
        memset(p, 0x5a, MiB);
    }
    return 0;
}

static int hog(int out_fd)
{
    (void)out_fd;
    return touch_mb(512);
}

static int small_job(int out_fd)
{
    (void)out_fd;
    return touch_mb(16);
}

/* Runs fn in a gated child placed in cgroup rel; returns its wait status or -1. */
static int run_in_cgroup(const struct cgroup_layout *l, const char *rel, int (*fn)(int))
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct gated g;
    int status;

    if (start_gated(&g, fn) < 0)
        return -1;
    int r = cgroup_enter(l, rel, g.pid, &err);
    if (r < 0) {
        printf("# cgroup_enter: %s\n", berth_error_msg(&err));
        kill(g.pid, SIGKILL);
    }
    release_gated(&g);
    (void)close(g.result_fd);
    if (waitpid(g.pid, &status, 0) != g.pid)
        return -1;
    return r < 0 ? -1 : status;
}

static void check_bad_paths(const struct cgroup_layout *l)
{
    static const char *const bad[] = { "../x", "/x", "a//b", "", "a/", "a/../b", ".", "a/./b", "a/.x" };
    struct runner_limits lim = { 0, 0 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        _cleanup_error_ struct berth_error *err = NULL;
        int r = cgroup_create(l, bad[i], &lim, &err);
        ok(r == -EINVAL, "cgroup_create('%s') is rejected with EINVAL (%d)", bad[i], r);
    }
    ok(cgroup_enter(l, "../x", getpid(), NULL) == -EINVAL, "cgroup_enter('../x') is rejected");
    ok(cgroup_kill_all(l, "/x", NULL) == -EINVAL, "cgroup_kill_all('/x') is rejected");
    ok(cgroup_remove(l, "a//b", NULL) == -EINVAL, "cgroup_remove('a//b') is rejected");
}

/*
 * Lowering and raising the memory limit of an existing cgroup: on v1 with
 * swap accounting, memory.limit_in_bytes must stay <= memsw at every step,
 * so one of the two directions needs the writes in the other order.
 */
static void check_relimit(const struct cgroup_layout *l, const char *rel)
{
    static const uint64_t steps[] = { 32 * MiB, 128 * MiB };
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    const char *knob = is_v2() ? "memory.max" : "memory.limit_in_bytes";

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        _cleanup_error_ struct berth_error *err = NULL;
        struct runner_limits lim = { .memory_bytes = steps[i], .pids_max = 0 };
        int r = cgroup_create(l, rel, &lim, &err);
        bool same = read_knob("memory", rel, knob, &v) && strtoull(v.buf, NULL, 10) == steps[i];
        if (!is_v2() && read_knob("memory", rel, "memory.memsw.limit_in_bytes", &v))
            same = same && strtoull(v.buf, NULL, 10) == steps[i];
        ok(r == 0 && same, "the memory limit of an existing cgroup goes %s to %llu MiB (%s)",
           i == 0 ? "down" : "up", (unsigned long long)(steps[i] / MiB),
           r == 0 ? "ok" : berth_error_msg(&err));
    }
}

static void check_forkbomb(const struct cgroup_layout *l, const char *inst)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    struct gated g;
    char buf[64] = "";
    int n = -1, e = -1, status = 0;

    ok(read_knob("pids", inst, "pids.max", &v) && strcmp(v.buf, "20") == 0,
       "pids.max is 20 (%s)", v.buf);
    if (start_gated(&g, fork_bomb) < 0) {
        ok(0, "fork the fork bomb");
        return;
    }
    int r = cgroup_enter(l, inst, g.pid, &err);
    ok(r == 0, "cgroup_enter puts the child in '%s' (%s)", inst, r == 0 ? "ok" : berth_error_msg(&err));
    release_gated(&g);
    ssize_t got = r == 0 ? read(g.result_fd, buf, sizeof(buf) - 1) : -1;
    (void)close(g.result_fd);
    if (got > 0) {
        buf[got] = '\0';
        (void)sscanf(buf, "%d %d", &n, &e);
    }
    ok(e == EAGAIN && n > 0 && n < 25, "fork fails with EAGAIN after %d children (errno %d)", n, e);

    ok(read_knob("pids", inst, "cgroup.procs", &v) && v.len > 0, "the cgroup holds the bomb's processes");
    berth_error_release(&err);
    r = cgroup_kill_all(l, inst, &err);
    ok(r == 0, "cgroup_kill_all (%s)", r == 0 ? "ok" : berth_error_msg(&err));
    ok(waitpid(g.pid, &status, 0) == g.pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
       "the fork bomb was SIGKILLed (status 0x%x)", (unsigned)status);
    (void)close(g.go_fd);
    bool empty = true;
    const char *ctrls[] = { "pids", "memory" };
    for (size_t i = 0; i < (is_v2() ? 1u : 2u); i++) {
        bool rd = read_knob(ctrls[i], inst, "cgroup.procs", &v);
        empty = empty && rd && v.len == 0;
    }
    ok(empty, "cgroup.procs is empty after cgroup_kill_all");
}

static void check_memory(const struct cgroup_layout *l, const char *hogcg)
{
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    const char *knob = is_v2() ? "memory.max" : "memory.limit_in_bytes";

    ok(read_knob("memory", hogcg, knob, &v) && strcmp(v.buf, "67108864") == 0,
       "%s is 64 MiB (%s)", knob, v.buf);
    int status = run_in_cgroup(l, hogcg, small_job);
    ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "a 16 MiB job runs in the 64 MiB cgroup (status 0x%x)", (unsigned)status);
    status = run_in_cgroup(l, hogcg, hog);
    ok(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
       "a 512 MiB hog in the 64 MiB cgroup is SIGKILLed (status 0x%x)", (unsigned)status);
    ok(touch_mb(80) == 0, "the test process itself, outside the cgroup, survives and can use 80 MiB");
}

/* Spins for 600 ms of wall time; reports the CPU time it got, in ms. */
static int spinner(int out_fd)
{
    struct timespec start, now, cpu;
    char buf[32];

    clock_gettime(CLOCK_MONOTONIC, &start);
    do
        clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 600);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)(cpu.tv_sec * 1000 + cpu.tv_nsec / 1000000));
    (void)write_all(out_fd, buf, (size_t)len);
    return 0;
}

/* The knobs runner_cgroup_set_limits() wrote on `rel`, as the kernel shows them. */
static void check_tenant_knobs(const char *rel, bool limited)
{
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    const char *mem = is_v2() ? "memory.max" : "memory.limit_in_bytes";
    bool m = read_knob("memory", rel, mem, &v), same;

    same = limited ? m && strtoull(v.buf, NULL, 10) == 64 * MiB
                   : m && (strcmp(v.buf, "max") == 0 || strtoull(v.buf, NULL, 10) > (1ULL << 60));
    ok(same, "%s is %s (%s)", mem, limited ? "64 MiB" : "unlimited", v.buf);
    if (!is_v2() && read_knob("memory", rel, "memory.memsw.limit_in_bytes", &v))
        ok(limited ? strtoull(v.buf, NULL, 10) == 64 * MiB : strtoull(v.buf, NULL, 10) > (1ULL << 60),
           "memory.memsw.limit_in_bytes follows it (%s)", v.buf);
    ok(read_knob("pids", rel, "pids.max", &v) && strcmp(v.buf, limited ? "30" : "max") == 0,
       "pids.max is %s (%s)", limited ? "30" : "max", v.buf);
    if (is_v2()) {
        ok(read_knob("cpu", rel, "cpu.max", &v) && strcmp(v.buf, limited ? "20000 100000" : "max 100000") == 0,
           "cpu.max is %s (%s)", limited ? "20000 100000" : "max 100000", v.buf);
        return;
    }
    ok(read_knob("cpu", rel, "cpu.cfs_quota_us", &v) && strcmp(v.buf, limited ? "20000" : "-1") == 0,
       "cpu.cfs_quota_us is %s (%s)", limited ? "20000" : "-1", v.buf);
    ok(read_knob("cpu", rel, "cpu.cfs_period_us", &v) && strcmp(v.buf, "100000") == 0,
       "cpu.cfs_period_us is 100000 (%s)", v.buf);
}

/*
 * A tenant's cgroup: limits written by runner_cgroup_set_limits() bind every
 * cgroup below it, which have none of their own: a fork bomb stops at the
 * tenant's pids.max, a hog is killed at the tenant's memory, a spinner is
 * throttled to the tenant's cpu quota. Setting no limits takes them away.
 */
static void check_tenant(const struct cgroup_layout *l, const char *base)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *tenant = xasprintf("%s/tenant", base);
    _cleanup_free_ char *inst = xasprintf("%s/app/web.1", tenant), *hogcg = xasprintf("%s/app/web.2", tenant);
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    struct runner_limits lim = { .memory_bytes = 64 * MiB, .pids_max = 30, .cpu_quota_millis = 200 };
    struct runner_limits none = { 0 };
    char buf[64] = "";
    struct gated g;
    int r, n = -1, e = -1;

    r = runner_cgroup_check_cpu_quota(&err);
    ok(r == 0, "runner_cgroup_check_cpu_quota (%s)", r == 0 ? "ok" : berth_error_msg(&err));
    berth_error_release(&err);
    r = runner_cgroup_set_limits(tenant, &lim, &err);
    ok(r == 0, "runner_cgroup_set_limits('%s', 64 MiB, 30 pids, 0.2 cpu) (%s)", tenant,
       r == 0 ? "ok" : berth_error_msg(&err));
    check_tenant_knobs(tenant, true);
    berth_error_release(&err);
    r = cgroup_create(l, inst, &none, &err);
    ok(r == 0 && cgroup_create(l, hogcg, &none, NULL) == 0, "instance cgroups with no limits of their own below it");

    if (start_gated(&g, fork_bomb) == 0 && cgroup_enter(l, inst, g.pid, NULL) == 0) {
        release_gated(&g);
        ssize_t got = read(g.result_fd, buf, sizeof(buf) - 1);
        if (got > 0) {
            buf[got] = '\0';
            (void)sscanf(buf, "%d %d", &n, &e);
        }
        (void)close(g.result_fd);
        (void)cgroup_kill_all(l, inst, NULL);
        (void)waitpid(g.pid, NULL, 0);
        (void)close(g.go_fd);
    }
    ok(e == EAGAIN && n > 0 && n < 35, "a fork bomb below the tenant stops at its pids.max: EAGAIN after %d "
       "children (errno %d)", n, e);
    int status = run_in_cgroup(l, hogcg, hog);
    ok(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
       "a 512 MiB hog below the 64 MiB tenant is SIGKILLed (status 0x%x)", (unsigned)status);

    long cpu_ms = -1;
    if (start_gated(&g, spinner) == 0 && cgroup_enter(l, inst, g.pid, NULL) == 0) {
        release_gated(&g);
        ssize_t got = read(g.result_fd, buf, sizeof(buf) - 1);
        if (got > 0) {
            buf[got] = '\0';
            cpu_ms = strtol(buf, NULL, 10);
        }
        (void)close(g.result_fd);
        (void)waitpid(g.pid, NULL, 0);
    }
    ok(cpu_ms >= 0 && cpu_ms < 300, "a spinner below the 0.2-cpu tenant gets %ld ms of cpu in 600 ms", cpu_ms);
    const char *thr = read_knob("cpu", tenant, "cpu.stat", &v) ? strstr(v.buf, "nr_throttled ") : NULL;
    ok(thr && strtoull(thr + 13, NULL, 10) > 0, "the tenant's cpu.stat counts throttled periods (%.*s)",
       thr ? (int)strcspn(thr, "\n") : 4, thr ? thr : "none");

    berth_error_release(&err);
    r = runner_cgroup_set_limits(tenant, &none, &err);
    ok(r == 0, "runner_cgroup_set_limits with no limits (%s)", r == 0 ? "ok" : berth_error_msg(&err));
    check_tenant_knobs(tenant, false);
    struct runner_limits tiny = { .cpu_quota_millis = RUNNER_CPU_QUOTA_MIN - 1 };
    ok(runner_cgroup_set_limits(tenant, &tiny, NULL) == -EINVAL, "a cpu quota under the kernel's least is refused");
    ok(runner_cgroup_set_limits("../x", &lim, NULL) == -EINVAL, "runner_cgroup_set_limits('../x') is refused");
}

static void run_checks(void)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct cgroup_layout *l = NULL;
    char base[64], inst[96], hogcg[96];
    int r;

    r = runner_cgroup_check(&err);
    ok(r == 0, "runner_cgroup_check as uid %u (%s)", (unsigned)geteuid(), r == 0 ? "ok" : berth_error_msg(&err));
    berth_error_release(&err);
    r = cgroup_layout_detect(&l, &err);
    ok(r == 0, "cgroup_layout_detect (%s)", r == 0 ? "ok" : berth_error_msg(&err));
    if (r < 0)
        return;

    if (!is_v2() && geteuid() != 0) {
        /* the delegatee must not be able to raise berth's own limit */
        _cleanup_free_ char *dir = berth_dir("memory");
        _cleanup_free_ char *p = xasprintf("%s/memory.limit_in_bytes", dir);
        int fd = open(p, O_WRONLY | O_CLOEXEC);
        ok(fd < 0 && errno == EACCES, "berth's own memory.limit_in_bytes is not writable by the delegatee");
        if (fd >= 0)
            (void)close(fd);
    }

    check_bad_paths(l);

    snprintf(base, sizeof(base), "test-%ld", (long)getpid());
    snprintf(inst, sizeof(inst), "%s/app/inst", base);
    snprintf(hogcg, sizeof(hogcg), "%s/app/hog", base);
    struct runner_limits lim = { .memory_bytes = 64 * MiB, .pids_max = 20 };
    berth_error_release(&err);
    r = cgroup_create(l, inst, &lim, &err);
    ok(r == 0, "cgroup_create('%s', pids 20, memory 64 MiB) (%s)", inst, r == 0 ? "ok" : berth_error_msg(&err));
    struct runner_limits memlim = { .memory_bytes = 64 * MiB, .pids_max = 0 };
    berth_error_release(&err);
    r = cgroup_create(l, hogcg, &memlim, &err);
    ok(r == 0, "cgroup_create('%s', memory 64 MiB) (%s)", hogcg, r == 0 ? "ok" : berth_error_msg(&err));
    check_relimit(l, inst);
    berth_error_release(&err);
    r = cgroup_create(l, inst, &lim, &err);
    ok(r == 0, "cgroup_create on an existing cgroup rewrites its limits (%s)", r == 0 ? "ok" : berth_error_msg(&err));

    check_forkbomb(l, inst);
    check_memory(l, hogcg);
    check_tenant(l, base);

    berth_error_release(&err);
    r = cgroup_remove(l, inst, &err);
    ok(r == 0 && !cgroup_exists("pids", inst) && !cgroup_exists("memory", inst) &&
       cgroup_exists("pids", base), "cgroup_remove removes the leaf and leaves its parents (%s)",
       r == 0 ? "ok" : berth_error_msg(&err));
    ok(cgroup_remove(l, inst, NULL) == 0, "cgroup_remove of a missing cgroup is fine");
    berth_error_release(&err);
    r = cgroup_remove(l, base, &err);
    ok(r == 0 && !cgroup_exists("pids", base) && !cgroup_exists("memory", base),
       "cgroup_remove('%s') removes the test tree (%s)", base, r == 0 ? "ok" : berth_error_msg(&err));
    ok(cgroup_exists("pids", "") && cgroup_exists("memory", ""), "the berth cgroup itself stays");

    (void)cgroup_kill_all(l, base, NULL);
    (void)cgroup_remove(l, base, NULL);
    cgroup_layout_free(l);
}

/* Root: delegate to `berth`, then run the checks in a child with the berth user's ids. */
static int run_as_root(void)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct passwd *pw = getpwnam("berth");
    int r;

    if (!pw) {
        if (must_work()) {
            ok(0, "user 'berth' exists");
            return tap_done();
        }
        printf("1..0 # SKIP no user 'berth' to delegate to\n");
        return 0;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;

    r = runner_cgroup_delegate(uid, gid, &err);
    ok(r == 0, "runner_cgroup_delegate to berth (%s)", r == 0 ? "ok" : berth_error_msg(&err));
    berth_error_release(&err);
    r = runner_cgroup_delegate(uid, gid, &err);
    ok(r == 0, "runner_cgroup_delegate again is fine (%s)", r == 0 ? "ok" : berth_error_msg(&err));
    if (r < 0)
        return tap_done();

    const char *ctrls[] = { "memory", "pids" };
    for (size_t i = 0; i < (is_v2() ? 1u : 2u); i++) {
        _cleanup_free_ char *dir = berth_dir(ctrls[i]);
        _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", dir);
        _cleanup_free_ char *knob = xasprintf("%s/%s", dir, is_v2() ? "cgroup.type" :
                                              strcmp(ctrls[i], "memory") == 0 ? "memory.limit_in_bytes" : "pids.max");
        struct stat sd, sp, sk;
        ok(stat(dir, &sd) == 0 && stat(procs, &sp) == 0 && stat(knob, &sk) == 0 &&
           sd.st_uid == uid && sp.st_uid == uid && sk.st_uid == 0,
           "'%s' and its cgroup.procs belong to berth, its limits to root", dir);
    }

    int res[2];
    if (pipe2(res, O_CLOEXEC) < 0) {
        ok(0, "pipe");
        return tap_done();
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        (void)close(res[0]);
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
            ok(0, "drop to the berth user: %s", strerror(errno));
        } else {
            run_checks();
        }
        char buf[64];
        int len = snprintf(buf, sizeof(buf), "%d %d\n", tap_count, tap_failed);
        (void)write_all(res[1], buf, (size_t)len);
        fflush(stdout);
        _exit(0);
    }
    (void)close(res[1]);
    char buf[64] = "";
    ssize_t n = pid > 0 ? read(res[0], buf, sizeof(buf) - 1) : -1;
    (void)close(res[0]);
    int status = 0;
    if (pid > 0) {
        (void)waitpid(pid, &status, 0);
        /* whatever a crashed checks child left behind */
        struct cgroup_layout *l = NULL;
        char base[64];
        snprintf(base, sizeof(base), "test-%ld", (long)pid);
        if (cgroup_layout_detect(&l, NULL) == 0) {
            (void)cgroup_kill_all(l, base, NULL);
            (void)cgroup_remove(l, base, NULL);
            cgroup_layout_free(l);
        }
    }
    int count = 0, failed = 0;
    if (n > 0 && sscanf(buf, "%d %d", &count, &failed) == 2 && count >= tap_count) {
        tap_count = count;
        tap_failed = failed;
    } else {
        ok(0, "the checks child reported back (status 0x%x)", (unsigned)status);
    }
    return tap_done();
}

int main(void)
{
    if (geteuid() == 0)
        return run_as_root();

    _cleanup_error_ struct berth_error *err = NULL;
    struct cgroup_layout *l = NULL;
    int r = cgroup_layout_detect(&l, &err);
    if (r < 0 && !must_work()) {
        printf("1..0 # SKIP no delegated cgroups: %s\n", berth_error_msg(&err));
        return 0;
    }
    cgroup_layout_free(l);
    run_checks();
    return tap_done();
}
