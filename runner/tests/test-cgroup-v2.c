/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of the cgroup v2 code of runner/cgroup-layout.c and
 * runner/cgroup.c against a prepared directory tree, since the hosts berth
 * is tested on offer no v2 controllers (cgroup v1 with an empty unified
 * hierarchy). The layout is built by hand with its root in a temporary
 * directory that plays the delegated cgroup: its interface files are plain
 * files the test writes first and reads back.
 *
 * Exercised: root's delegation (controllers switched on in the parent and
 * the root, the delegated files handed over, the daemon's own delegation
 * under systemd's Delegate=yes (the move into its leaf), a cgroup of another owner
 * repaired when run as root), the refusal when the kernel offers no
 * controllers, the ownership check, memory.max, memory.swap.max,
 * memory.oom.group, pids.max, cpu.weight and cpu.max on create, memory.peak
 * and memory.events' oom_kill as usage, cgroup.kill, and the fallback kill
 * through cgroup.procs; and on v1, the cpu root's weight (cpu.shares per
 * CPU) that root's delegation and the daemon's own set. Not exercisable on plain files: rmdir of a cgroup
 * (a plain directory with files is never empty), processes moving
 * (cgroup.procs is not the kernel's), and cgroup.freeze, which berth does
 * not use (a stopped container is killed through cgroup.kill, not frozen).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "runner/cgroup.h"
#include "runner/cgroup-internal.h"
#include "runner/runner.h"
#include "common/banned.h"

static char top[] = "/tmp/berth-cgv2-XXXXXX";

static void put(const char *dir, const char *name, const char *value)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);

    if (write_file_atomic(p, value, strlen(value), 0644, NULL) < 0) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(1);
    }
}

static char *get(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;

    if (cgroup_read_str(p, &v, NULL) < 0)
        return xstrdup("(missing)");
    return strbuf_detach(&v, NULL);
}

static bool is(const char *dir, const char *name, const char *want)
{
    _cleanup_free_ char *v = get(dir, name);
    bool same = strcmp(v, want) == 0;

    if (!same)
        printf("# %s/%s is '%s', expected '%s'\n", dir, name, v, want);
    return same;
}

/* A fake v2 cgroup: the directory and the files the kernel would make, controllers `avail`, `on` enabled. */
static char *fake_cgroup(const char *path, const char *avail, const char *on, bool leaf)
{
    char *dir = xasprintf("%s/%s", top, path);

    (void)mkdir_p(dir, 0755, NULL);
    put(dir, "cgroup.controllers", avail);
    put(dir, "cgroup.subtree_control", on);
    put(dir, "cgroup.procs", "");
    put(dir, "cgroup.threads", "");
    put(dir, "cgroup.kill", "");
    put(dir, "cgroup.freeze", "0");
    if (leaf) {
        /* Empty where berth writes: a plain file keeps the tail of a longer old value. */
        put(dir, "memory.max", "");
        put(dir, "memory.swap.max", "");
        put(dir, "memory.oom.group", "");
        put(dir, "memory.peak", "7340032");
        put(dir, "memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n");
        put(dir, "pids.max", "");
        put(dir, "cpu.weight", "");
        put(dir, "cpu.max", "");
    }
    return dir;
}

static struct cgroup_layout *fake_layout(const char *root)
{
    struct cgroup_layout *l = xcalloc(1, sizeof(*l));

    l->v2 = true;
    l->n = 1;
    l->ctrl[0].name = xstrdup("unified");
    l->ctrl[0].root = xasprintf("%s/%s", top, root);
    return l;
}

static void test_delegate(void)
{
    _cleanup_free_ char *parent = fake_cgroup("own", "cpuset cpu io memory pids", "", false);
    _cleanup_free_ char *root = fake_cgroup("own/berth-t", "cpu memory pids", "memory pids cpu", false);
    _cleanup_free_ char *stray = fake_cgroup("own/berth-t/stray/deeper", "", "", false);
    struct cgroup_layout *l = fake_layout("own/berth-t");
    _cleanup_error_ struct berth_error *err = NULL;
    struct stat st;
    uid_t uid = geteuid() == 0 ? 4242 : geteuid();

    put(root, "cpu.weight", "100");
    ok(cgroup_delegate_layout(l, uid, getegid(), &err) == 0, "delegation on v2 succeeds: %s",
       berth_error_msg(&err));
    ok(is(root, "cpu.weight", "400"), "the subtree at the default weight gets 400: four times the daemon's own cgroup");
    /*
     * Each +controller is its own write() at offset 0 of a plain file:
     * "+memory", then "+pids" and "+cpu" over its start.
     */
    ok(is(parent, "cgroup.subtree_control", "+cpusry"), "the parent passes memory, pids and cpu down, in that order");
    ok(is(root, "cgroup.subtree_control", "memory pids cpu"), "controllers already on in the root are not written again");
    ok(stat(root, &st) == 0 && st.st_uid == uid, "the root belongs to the user");
    {
        _cleanup_free_ char *p = xasprintf("%s/cgroup.procs", root);
        _cleanup_free_ char *q = xasprintf("%s/cgroup.kill", root);
        struct stat sq;

        ok(stat(p, &st) == 0 && st.st_uid == uid, "... and its cgroup.procs");
        ok(geteuid() != 0 || (stat(q, &sq) == 0 && sq.st_uid == 0), "... but not its own knobs (cgroup.kill stays root's)");
    }
    if (geteuid() == 0) {
        _cleanup_free_ char *p = xasprintf("%s/memory.max", stray);
        ok(stat(stray, &st) == 0 && st.st_uid == uid, "a cgroup below the root made by another owner is handed over");
        ok(stat(p, &st) == 0 || errno == ENOENT, "... with everything in it");
        ok(cgroup_check_owner_layout(l, uid, &err) == 0, "the ownership check passes after the delegation");
        ok(chown(stray, 1234, 1234) == 0 && cgroup_check_owner_layout(l, uid, &err) == -EACCES &&
           strstr(berth_error_msg(&err), "/stray/deeper' belongs to") &&
           strstr(berth_error_msg(&err), "berth setup --user"), "a cgroup of another owner fails the check, naming it and the fix: %s",
           berth_error_msg(&err));
        berth_error_release(&err);
        ok(cgroup_delegate_layout(l, uid, getegid(), &err) == 0 && cgroup_check_owner_layout(l, uid, &err) == 0,
           "delegating again repairs it");
    } else {
        skip("handing over another owner's cgroup needs root");
        skip("...");
        ok(cgroup_check_owner_layout(l, uid, &err) == 0, "the ownership check passes for the user's own tree");
        skip("a cgroup of another owner needs root");
        skip("...");
    }
    cgroup_layout_free(l);
}

static void test_no_controllers(void)
{
    _cleanup_free_ char *parent = fake_cgroup("bare", "", "", false);
    _cleanup_free_ char *root = fake_cgroup("bare/berth-t", "", "", false);
    struct cgroup_layout *l = fake_layout("bare/berth-t");
    _cleanup_error_ struct berth_error *err = NULL;
    int r = cgroup_delegate_layout(l, geteuid(), getegid(), &err);

    ok(r == -EOPNOTSUPP, "a parent that offers no v2 controllers is refused (%d)", r);
    ok(strstr(berth_error_msg(&err), "controller 'memory' is not available") &&
       strstr(berth_error_msg(&err), "Delegate=yes"), "... naming the controller and the fix: %s",
       berth_error_msg(&err));
    ok(is(parent, "cgroup.subtree_control", ""), "... and nothing is written");
    berth_error_release(&err);
    put(parent, "cgroup.controllers", "cpu pids");
    r = cgroup_delegate_layout(l, geteuid(), getegid(), &err);
    ok(r == -EOPNOTSUPP && strstr(berth_error_msg(&err), "'memory'"), "memory is required: without it, refused");
    berth_error_release(&err);
    put(parent, "cgroup.controllers", "memory pids");
    put(root, "cgroup.controllers", "memory pids");
    r = cgroup_delegate_layout(l, geteuid(), getegid(), &err);
    ok(r == 0, "cpu is optional: memory and pids are enough (%s)", berth_error_msg(&err));
    cgroup_layout_free(l);
}

static void test_create_and_usage(void)
{
    static const char *const avail = "cpu memory pids";
    struct cgroup_layout *l = fake_layout("own2/berth-t");
    _cleanup_free_ char *r0 = fake_cgroup("own2/berth-t", avail, "cpu memory pids", false);
    _cleanup_free_ char *t = fake_cgroup("own2/berth-t/t1", avail, "cpu memory pids", false);
    _cleanup_free_ char *a = fake_cgroup("own2/berth-t/t1/app", avail, "cpu memory pids", false);
    _cleanup_free_ char *leaf = fake_cgroup("own2/berth-t/t1/app/web.1", avail, "", true);
    _cleanup_error_ struct berth_error *err = NULL;
    struct runner_limits lim = { .memory_bytes = 64u << 20, .pids_max = 100, .cpu_weight = 200,
                                 .cpu_quota_millis = 500 };
    struct runner_usage u = { 0 };

    ok(cgroup_create(l, "t1/app/web.1", &lim, &err) == 0, "cgroup_create on v2 succeeds: %s", berth_error_msg(&err));
    ok(is(leaf, "memory.max", "67108864"), "memory.max holds the memory limit");
    ok(is(leaf, "memory.swap.max", "0"), "memory.swap.max is 0: no swapping past it");
    ok(is(leaf, "memory.oom.group", "1"), "memory.oom.group is 1: an OOM takes the whole container");
    ok(is(leaf, "pids.max", "100"), "pids.max holds the process limit");
    ok(is(leaf, "cpu.weight", "200"), "cpu.weight holds the weight");
    ok(is(leaf, "cpu.max", "50000 100000"), "cpu.max holds half a CPU per 100 ms period");
    ok(is(leaf, "cgroup.freeze", "0"), "cgroup.freeze is left alone");
    ok(cgroup_usage(l, "t1/app/web.1", &u, &err) == 0 && u.memory_peak_bytes == 7340032 && u.oom_kills == 2,
       "usage comes from memory.peak and memory.events' oom_kill (%llu, %llu)",
       (unsigned long long)u.memory_peak_bytes, (unsigned long long)u.oom_kills);
    put(leaf, "cpu.max", "");
    lim = (struct runner_limits){ .memory_bytes = 1 << 20 };
    ok(cgroup_create(l, "t1/app/web.1", &lim, &err) == 0 && is(leaf, "cpu.max", ""),
       "a later create without a cpu quota leaves cpu.max");
    lim = (struct runner_limits){ .cpu_quota_millis = 500 };
    {
        _cleanup_free_ char *p = xasprintf("%s/cpu.max", leaf);
        (void)unlink(p);
    }
    ok(cgroup_create(l, "t1/app/web.1", &lim, &err) == -EOPNOTSUPP &&
       strstr(berth_error_msg(&err), "delegate the cpu controller"),
       "a cpu quota where the cpu controller is not passed down fails: %s", berth_error_msg(&err));
    berth_error_release(&err);
    ok(cgroup_create(l, "../escape", NULL, &err) < 0, "a relpath leaving the subtree is refused");
    berth_error_release(&err);
    (void)r0;
    (void)t;
    (void)a;
    cgroup_layout_free(l);
}

static void test_kill(void)
{
    struct cgroup_layout *l = fake_layout("own3/berth-t");
    _cleanup_free_ char *r0 = fake_cgroup("own3/berth-t", "memory pids", "memory pids", false);
    _cleanup_free_ char *leaf = fake_cgroup("own3/berth-t/t1", "memory pids", "", true);
    _cleanup_error_ struct berth_error *err = NULL;
    char buf[32];
    int status = 0, r;
    pid_t child;

    ok(cgroup_kill_all(l, "t1", &err) == 0 && is(leaf, "cgroup.kill", "1"),
       "cgroup_kill_all writes 1 to cgroup.kill");
    /* Without cgroup.kill (older v2): the listed processes are killed through pidfds. */
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    {
        _cleanup_free_ char *k = xasprintf("%s/cgroup.kill", leaf);
        (void)unlink(k);
    }
    (void)snprintf(buf, sizeof(buf), "%d\n", (int)child);
    put(leaf, "cgroup.procs", buf);
    /* A plain file keeps listing the pid, so the kill ends in EBUSY after its rounds. */
    r = cgroup_kill_all(l, "t1", &err);
    (void)waitpid(child, &status, 0);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "without cgroup.kill, a process cgroup.procs lists is SIGKILLed");
    ok(r == -EBUSY, "... and one that stays listed is reported (%d)", r);
    (void)r0;
    cgroup_layout_free(l);
}

static void test_self_delegate(void)
{
    _cleanup_free_ char *parent = fake_cgroup("svc", "cpu memory pids", "", false);
    _cleanup_free_ char *leaf = fake_cgroup("svc/" BERTH_SUPERVISOR_CGROUP, "", "", false);
    _cleanup_free_ char *root = fake_cgroup("svc/berth-t", "cpu memory pids", "", false);
    struct cgroup_layout *l = fake_layout("svc/berth-t");
    _cleanup_error_ struct berth_error *err = NULL;

    put(root, "cpu.weight", "250");
    ok(cgroup_self_delegate_layout(l, &err) == 0, "a daemon whose cgroup was delegated to it makes its own subtree: %s",
       berth_error_msg(&err));
    ok(is(root, "cpu.weight", "250"), "... keeping a cpu.weight the operator wrote");
    ok(is(leaf, "cgroup.procs", "0"), "... after moving itself into the leaf " BERTH_SUPERVISOR_CGROUP);
    ok(is(parent, "cgroup.subtree_control", "+cpusry"), "... then passes the controllers down from its cgroup");
    ok(is(root, "cgroup.subtree_control", "+cpusry"), "... and from its subtree's root");
    cgroup_layout_free(l);
}

/*
 * The v1 subtree's weight: a root at the default, or at an earlier berth
 * setup's 1024 per CPU, gets 4096 per CPU; an operator's value stays;
 * other hierarchies are untouched (v2's weight: test_delegate).
 */
static void test_v1_weight(void)
{
    _cleanup_free_ char *cpu = xasprintf("%s/cpu/berth-t", top);
    _cleanup_free_ char *mem = xasprintf("%s/memory/berth-t", top);
    _cleanup_free_ char *want = NULL, *old = NULL;
    _cleanup_error_ struct berth_error *err = NULL;
    struct cgroup_layout *l = xcalloc(1, sizeof(*l));
    cpu_set_t cpus;
    int n = 1;

    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
        n = CPU_COUNT(&cpus);
    want = xasprintf("%d", 4096 * n);
    old = xasprintf("%d", 1024 * n);
    (void)mkdir_p(cpu, 0755, NULL);
    (void)mkdir_p(mem, 0755, NULL);
    put(cpu, "cpu.shares", "1024");
    put(mem, "memory.limit_in_bytes", "9223372036854771712");
    for (const char *const *d = (const char *const[]){ cpu, mem, NULL }; *d; d++) {
        put(*d, "cgroup.procs", "");
        put(*d, "tasks", "");
    }
    l->n = 2;
    l->ctrl[0].name = xstrdup("memory");
    l->ctrl[0].root = xstrdup(mem);
    l->ctrl[1].name = xstrdup("cpu,cpuacct");
    l->ctrl[1].root = xstrdup(cpu);
    ok(cgroup_delegate_layout(l, geteuid(), getegid(), &err) == 0, "delegation on v1 succeeds: %s", berth_error_msg(&err));
    ok(is(cpu, "cpu.shares", want), "the cpu root at the default weighs 4096 per CPU (%d CPUs): berth's apps on a CPU "
       "against four of the router's loops", n);
    ok(is(mem, "memory.limit_in_bytes", "9223372036854771712"), "... the memory root's files are left as they were");
    ok(cgroup_delegate_layout(l, geteuid(), getegid(), &err) == 0 && is(cpu, "cpu.shares", want),
       "delegating again keeps it");
    put(cpu, "cpu.shares", old);
    ok(cgroup_delegate_layout(l, geteuid(), getegid(), &err) == 0 && is(cpu, "cpu.shares", want),
       "the 1024 per CPU an earlier berth setup wrote (%s) is raised too", old);
    put(cpu, "cpu.shares", "512");
    ok(cgroup_delegate_layout(l, geteuid(), getegid(), &err) == 0 && is(cpu, "cpu.shares", "512"),
       "a weight the operator wrote is kept");
    ok(cgroup_self_delegate_layout(l, &err) == 0 && is(cpu, "cpu.shares", "512"), "... by the daemon's own delegation too");
    put(cpu, "cpu.shares", "1024");
    for (const char *const *d = (const char *const[]){ "cpu", "memory", NULL }; *d; d++) {
        _cleanup_free_ char *parent = xasprintf("%s/%s", top, *d);
        put(parent, "cgroup.procs", "");
    }
    ok(cgroup_self_delegate_layout(l, &err) == 0 && is(cpu, "cpu.shares", want),
       "a root the daemon makes for itself (its parent writable) is weighed the same: %s", berth_error_msg(&err));
    cgroup_layout_free(l);
}

int main(void)
{
    if (!mkdtemp(top)) {
        perror("mkdtemp");
        return 1;
    }
    test_delegate();
    test_no_controllers();
    test_create_and_usage();
    test_kill();
    test_self_delegate();
    test_v1_weight();
    (void)rm_rf(top, NULL);
    return tap_done();
}
