/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cgroups for tenants, apps and instances (runner/cgroup.h), part two: the
 * life of one container's cgroup, <tenant>/<app>/<instance> below berth's
 * delegated cgroup in every hierarchy of the layout that
 * runner/cgroup-layout.c found: create it with its limits (every limit
 * asked for is written or the call fails), move the container's first
 * process in, kill everything in it, read what it used, remove it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "runner/cgroup.h"
#include "runner/cgroup-internal.h"
#include "common/banned.h"

/* ------------------------------------------------------------------------
 * per-container cgroups
 */

/* "<tenant>/<app>/<instance>": relative, no empty components, none starting with '.'. */
static int validate_relpath(const char *relpath, struct berth_error **err)
{
    if (!relpath || !*relpath)
        return berth_error_plain(err, EINVAL, "empty cgroup path");
    size_t len = strlen(relpath);
    if (len > MAX_RELPATH)
        return berth_error_plain(err, EINVAL, "cgroup path longer than %d bytes", MAX_RELPATH);
    if (relpath[0] == '/')
        return berth_error_plain(err, EINVAL, "cgroup path '%s' is absolute", relpath);

    int depth = 0;
    for (const char *p = relpath;;) {
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if (cl == 0)
            return berth_error_plain(err, EINVAL, "cgroup path '%s' has an empty component", relpath);
        if (cl > NAME_MAX)
            return berth_error_plain(err, EINVAL, "cgroup path '%s' has a component longer "
                                     "than %d bytes", relpath, NAME_MAX);
        /* also keeps ".", ".." and runner_cgroup_check's ".check-<pid>" probes apart */
        if (p[0] == '.')
            return berth_error_plain(err, EINVAL, "cgroup path '%s' has a component starting "
                                     "with '.'", relpath);
        for (size_t i = 0; i < cl; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return berth_error_plain(err, EINVAL, "cgroup path '%s' has a control character",
                                         relpath);
        if (++depth > MAX_DEPTH)
            return berth_error_plain(err, EINVAL, "cgroup path '%s' is deeper than %d", relpath,
                                     MAX_DEPTH);
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/*
 * v1 memory cgroups only enforce on descendants when use_hierarchy is 1. It
 * is inherited at mkdir and is always 1 on recent kernels, but a host with
 * it off would let a tenant's children escape the tenant's limit.
 */
static int ensure_use_hierarchy(const char *dir, struct berth_error **err)
{
    _cleanup_free_ char *p = xasprintf("%s/memory.use_hierarchy", dir);
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    int r;

    if (access(p, F_OK) < 0)
        return 0;   /* gone from the kernel: hierarchy is always on */
    if ((r = cgroup_read_str(p, &v, err)) < 0)
        return r;
    if (strcmp(v.buf, "1") == 0)
        return 0;
    return cgroup_write_str(p, "1", err);
}

/*
 * What set_limits() does with a limit of 0: leave the cgroup's as it is (a
 * new cgroup has none), or set it back to none (runner_cgroup_set_limits(),
 * which makes the cgroup's limits exactly the ones given).
 */
enum unset_mode { UNSET_LEAVE, UNSET_CLEAR };

static int write_value(const char *dir, const char *file, const char *value, struct berth_error **err)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
    return cgroup_write_str(p, value, err);
}

static int write_limit(const char *dir, const char *file, uint64_t value, struct berth_error **err)
{
    char buf[32];
    (void)snprintf(buf, sizeof(buf), "%" PRIu64, value);
    return write_value(dir, file, buf, err);
}

/*
 * v1 keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at all
 * times and refuses (EINVAL) a write that would break it, so lowering goes
 * memory first, raising goes memsw first. memsw exists only with swap
 * accounting; without it there is no swap limit to set. `value` is a byte
 * count, or "-1" for no limit.
 */
static int set_memory_v1(const char *dir, const char *value, struct berth_error **err)
{
    bool memsw = cgroup_file_exists(dir, "memory.memsw.limit_in_bytes");
    _cleanup_error_ struct berth_error *first = NULL;
    int r;

    r = write_value(dir, "memory.limit_in_bytes", value, &first);
    if (r == -EINVAL && memsw) {
        if ((r = write_value(dir, "memory.memsw.limit_in_bytes", value, err)) < 0)
            return r;
        r = write_value(dir, "memory.limit_in_bytes", value, err);
    } else if (r < 0 && err) {
        *err = TAKE_PTR(first);
    }
    if (r < 0)
        return r;
    return memsw ? write_value(dir, "memory.memsw.limit_in_bytes", value, err) : 0;
}

/*
 * The directory of <berth>/<relpath> in the cpu hierarchy, checked to hold
 * `file` (v2: present only when the parent passed the cpu controller down;
 * v1: cpu.cfs_quota_us only with CFS bandwidth control). NULL with *ret 0
 * when there is none and `need` is false (nothing to set back).
 */
static char *cpu_dir(const struct cgroup_layout *l, const char *relpath, const char *file, bool need,
                     const char *what, int *ret, struct berth_error **err)
{
    const struct cgroup_ctrl *cpu = cgroup_find_ctrl(l, "cpu");
    _cleanup_free_ char *dir = cpu ? xasprintf("%s/%s", cpu->root, relpath) : NULL;

    *ret = 0;
    if (dir && cgroup_file_exists(dir, file))
        return TAKE_PTR(dir);
    if (need && !cpu)
        *ret = berth_error_plain(err, EOPNOTSUPP, "no cpu cgroup to enforce a %s", what);
    else if (need)
        *ret = berth_error_plain(err, EOPNOTSUPP, "'%s' has no %s, so a %s cannot be enforced; %s", dir,
                                 file, what, l->v2 ? "delegate the cpu controller and run 'berth setup'"
                                                   : "the kernel lacks CFS bandwidth control");
    return NULL;
}

/*
 * cpu.weight is v2's unit (1..10000, default 100); v1's cpu.shares has a
 * default of 1024 and a range of [2, 262144], so the weight is scaled by
 * 1024/100 and clamped (the kernel would clamp silently too, berth says so).
 * 0: back to the default.
 */
static int set_cpu_weight(const struct cgroup_layout *l, const char *relpath, uint64_t weight,
                          struct berth_error **err)
{
    _cleanup_free_ char *dir = NULL;
    uint64_t shares;
    int r;

    if (weight > 10000)
        return berth_error_plain(err, EINVAL, "cpu weight %" PRIu64 " is outside 1..10000", weight);
    dir = cpu_dir(l, relpath, l->v2 ? "cpu.weight" : "cpu.shares", weight != 0, "cpu weight", &r, err);
    if (!dir)
        return r;
    if (l->v2)
        return write_limit(dir, "cpu.weight", weight ? weight : 100, err);
    shares = weight ? weight * 1024 / 100 : 1024;
    shares = shares < 2 ? 2 : shares > 262144 ? 262144 : shares;
    return write_limit(dir, "cpu.shares", shares, err);
}

/* RUNNER_CPU_QUOTA_MIN..MAX thousandths of a CPU in every period of RUNNER_CPU_PERIOD_US; 0: none. */
static int set_cpu_quota(const struct cgroup_layout *l, const char *relpath, uint64_t millis,
                         struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf period = STRBUF_INIT;
    _cleanup_free_ char *dir = NULL;
    uint64_t quota_us = millis * (RUNNER_CPU_PERIOD_US / 1000);
    char buf[64];
    int r;

    if (millis && (millis < RUNNER_CPU_QUOTA_MIN || millis > RUNNER_CPU_QUOTA_MAX))
        return berth_error_plain(err, EINVAL, "cpu quota of %" PRIu64 " thousandths of a CPU is outside "
                                 "%d..%d", millis, RUNNER_CPU_QUOTA_MIN, RUNNER_CPU_QUOTA_MAX);
    dir = cpu_dir(l, relpath, l->v2 ? "cpu.max" : "cpu.cfs_quota_us", millis != 0, "cpu quota", &r, err);
    if (!dir)
        return r;
    if (l->v2) {
        if (millis)
            (void)snprintf(buf, sizeof(buf), "%" PRIu64 " %d", quota_us, RUNNER_CPU_PERIOD_US);
        else
            (void)snprintf(buf, sizeof(buf), "max %d", RUNNER_CPU_PERIOD_US);
        return write_value(dir, "cpu.max", buf, err);
    }
    /* The quota is per period: make the period berth's first if it is not (100 ms is the kernel's default). */
    {
        _cleanup_free_ char *p = xasprintf("%s/cpu.cfs_period_us", dir);

        if ((r = cgroup_read_str(p, &period, err)) < 0)
            return r;
        if (strtoull(period.buf, NULL, 10) != RUNNER_CPU_PERIOD_US &&
            (r = write_limit(dir, "cpu.cfs_period_us", RUNNER_CPU_PERIOD_US, err)) < 0)
            return r;
    }
    return millis ? write_limit(dir, "cpu.cfs_quota_us", quota_us, err) : write_value(dir, "cpu.cfs_quota_us", "-1", err);
}

static int set_limits_v2(const struct cgroup_layout *l, const char *relpath,
                         const struct runner_limits *limits, enum unset_mode mode, struct berth_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/%s", l->ctrl[0].root, relpath);
    bool clear = mode == UNSET_CLEAR;
    int r;

    if (limits->memory_bytes) {
        if ((r = write_limit(dir, "memory.max", limits->memory_bytes, err)) < 0)
            return r;
        /* no swapping past the limit; the file exists only with swap accounting */
        if (cgroup_file_exists(dir, "memory.swap.max") &&
            (r = write_limit(dir, "memory.swap.max", 0, err)) < 0)
            return r;
    } else if (clear && (r = write_value(dir, "memory.max", "max", err)) < 0) {
        return r;
    }
    /* an OOM kills the whole container, not one random process in it */
    if (cgroup_file_exists(dir, "memory.oom.group") && (r = write_value(dir, "memory.oom.group", "1", err)) < 0)
        return r;
    if (limits->pids_max)
        return write_limit(dir, "pids.max", limits->pids_max, err);
    return clear ? write_value(dir, "pids.max", "max", err) : 0;
}

static int set_limits_v1(const struct cgroup_layout *l, const char *relpath,
                         const struct runner_limits *limits, enum unset_mode mode, struct berth_error **err)
{
    const struct cgroup_ctrl *mem = cgroup_find_ctrl(l, "memory");
    const struct cgroup_ctrl *pids = cgroup_find_ctrl(l, "pids");
    bool clear = mode == UNSET_CLEAR;
    char buf[32];
    int r;

    if (limits->memory_bytes || clear) {
        if (!mem)
            return berth_error_plain(err, EOPNOTSUPP, "no memory cgroup to enforce a memory limit");
        _cleanup_free_ char *dir = xasprintf("%s/%s", mem->root, relpath);
        (void)snprintf(buf, sizeof(buf), "%" PRIu64, limits->memory_bytes);
        if ((r = set_memory_v1(dir, limits->memory_bytes ? buf : "-1", err)) < 0)
            return r;
    }
    if (limits->pids_max || clear) {
        if (!pids)
            return berth_error_plain(err, EOPNOTSUPP, "no pids cgroup to enforce a process limit");
        _cleanup_free_ char *dir = xasprintf("%s/%s", pids->root, relpath);
        if (limits->pids_max)
            return write_limit(dir, "pids.max", limits->pids_max, err);
        return write_value(dir, "pids.max", "max", err);
    }
    return 0;
}

static int set_limits(const struct cgroup_layout *l, const char *relpath,
                      const struct runner_limits *limits, enum unset_mode mode, struct berth_error **err)
{
    static const struct runner_limits none = { 0 };
    bool clear = mode == UNSET_CLEAR;
    int r;

    if (!limits)
        limits = &none;
    r = l->v2 ? set_limits_v2(l, relpath, limits, mode, err) : set_limits_v1(l, relpath, limits, mode, err);
    if (r < 0)
        return r;
    if ((limits->cpu_weight || clear) && (r = set_cpu_weight(l, relpath, limits->cpu_weight, err)) < 0)
        return r;
    if ((limits->cpu_quota_millis || clear) && (r = set_cpu_quota(l, relpath, limits->cpu_quota_millis, err)) < 0)
        return r;
    return 0;
}

/* Creates root/<relpath> and its missing parents in one hierarchy. */
static int make_dirs_in(const struct cgroup_layout *l, const struct cgroup_ctrl *ctrl, const char *relpath,
                        struct berth_error **err)
{
    bool memory = !l->v2 && cgroup_has_word(ctrl->name, "memory", ',');
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    int r;

    strbuf_addstr(&path, ctrl->root);
    for (const char *p = relpath;;) {
        /* v2: the parent of every cgroup we make must hand its controllers down */
        if (l->v2 && (r = cgroup_enable_controllers(path.buf, err)) < 0)
            return WRAP(r, err, "creating cgroup '%s'", relpath);
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        strbuf_addch(&path, '/');
        strbuf_add(&path, p, cl);
        if (mkdir(path.buf, 0755) < 0 && errno != EEXIST)
            return berth_error_make(err, errno, "mkdir '%s'", path.buf);
        if (memory && (r = ensure_use_hierarchy(path.buf, err)) < 0)
            return WRAP(r, err, "creating cgroup '%s'", relpath);
        if (!e)
            return 0;
        p = e + 1;
    }
}

/*
 * Creates <berth>/<relpath> and its missing parents in every hierarchy. A
 * parent can vanish between its mkdir and its child's: another berth of
 * the same user (a second home) removes its tenants' empty cgroups when it
 * stops (quota_release_all()), and the same names may be ours. So an
 * ENOENT walks the path again, a few times.
 */
static int make_dirs(const struct cgroup_layout *l, const char *relpath, struct berth_error **err)
{
    int r;

    for (size_t i = 0; i < l->n; i++) {
        for (int attempt = 0;; attempt++) {
            r = make_dirs_in(l, &l->ctrl[i], relpath, err);
            if (r != -ENOENT || attempt == 3)
                break;
            berth_error_release(err);
        }
        if (r < 0)
            return r;
    }
    return 0;
}

int cgroup_create(const struct cgroup_layout *l, const char *relpath, const struct runner_limits *limits,
                  struct berth_error **err)
{
    int r;

    if ((r = validate_relpath(relpath, err)) < 0 || (r = make_dirs(l, relpath, err)) < 0)
        return r;
    if ((r = set_limits(l, relpath, limits, UNSET_LEAVE, err)) < 0)
        return WRAP(r, err, "setting limits of cgroup '%s'", relpath);
    return 0;
}

int runner_cgroup_set_limits(const char *relpath, const struct runner_limits *limits,
                             struct berth_error **err)
{
    struct cgroup_layout *l = NULL;
    int r;

    if ((r = validate_relpath(relpath, err)) < 0 || (r = cgroup_layout_detect(&l, err)) < 0)
        return r;
    r = make_dirs(l, relpath, err);
    if (r == 0 && (r = set_limits(l, relpath, limits, UNSET_CLEAR, err)) < 0)
        r = WRAP(r, err, "setting limits of cgroup '%s'", relpath);
    cgroup_layout_free(l);
    return r;
}

int cgroup_enter(const struct cgroup_layout *l, const char *relpath, pid_t pid, struct berth_error **err)
{
    char buf[32];
    int r;

    if ((r = validate_relpath(relpath, err)) < 0)
        return r;
    if (pid <= 0)
        return berth_error_plain(err, EINVAL, "bad pid %ld", (long)pid);
    (void)snprintf(buf, sizeof(buf), "%ld", (long)pid);
    for (size_t i = 0; i < l->n; i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s/cgroup.procs", l->ctrl[i].root, relpath);
        if ((r = cgroup_write_str(p, buf, err)) < 0)
            return WRAP(r, err, "moving pid %ld into cgroup '%s'", (long)pid, relpath);
    }
    return 0;
}

int cgroup_open_enter(const struct cgroup_layout *l, const char *relpath, int *fds, size_t *ret_n,
                      struct berth_error **err)
{
    size_t n = 0;
    int r;

    _Static_assert(CGROUP_MAX_ENTER >= MAX_CTRL, "room for every controller");
    if ((r = validate_relpath(relpath, err)) < 0)
        return r;
    for (size_t i = 0; i < l->n; i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s/%s", l->ctrl[i].root, relpath,
                                           l->v2 ? "cgroup.procs" : "tasks");
        int fd = open(p, O_WRONLY | O_CLOEXEC);

        if (fd < 0) {
            r = berth_error_make(err, errno, "open '%s'", p);
            while (n > 0)
                (void)close(fds[--n]);
            return r;
        }
        fds[n++] = fd;
    }
    *ret_n = n;
    return 0;
}

int cgroup_enter_self(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ssize_t w;

        do {
            w = write(fds[i], "0", 1);
        } while (w < 0 && errno == EINTR);
        if (w != 1)
            return w < 0 ? -errno : -EIO;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * what a container used
 */

/* The value of the "key value" line of a flat-keyed cgroup file; 0 when absent. */
static uint64_t keyed_value(const char *text, const char *key)
{
    size_t kl = strlen(key);

    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');

        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return strtoull(p + kl + 1, NULL, 10);
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

int cgroup_usage(const struct cgroup_layout *l, const char *relpath, struct runner_usage *ret,
                 struct berth_error **err)
{
    const struct cgroup_ctrl *mem = cgroup_find_ctrl(l, "memory");
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    _cleanup_free_ char *dir = NULL, *peak = NULL, *events = NULL;
    struct runner_usage u = { 0 };
    int r;

    if ((r = validate_relpath(relpath, err)) < 0)
        return r;
    if (!mem) {
        *ret = u;
        return 0;
    }
    dir = xasprintf("%s/%s", mem->root, relpath);
    /*
     * v1 keeps the high-water mark in max_usage_in_bytes and counts OOM
     * kills in memory.oom_control (4.13+); v2 has memory.peak (5.19+) and
     * the oom_kill line of memory.events. A kernel without the peak file
     * reports 0, "unknown".
     */
    peak = xasprintf("%s/%s", dir, l->v2 ? "memory.peak" : "memory.max_usage_in_bytes");
    events = xasprintf("%s/%s", dir, l->v2 ? "memory.events" : "memory.oom_control");
    if (access(peak, F_OK) == 0) {
        if ((r = cgroup_read_str(peak, &v, err)) < 0)
            return r;
        u.memory_peak_bytes = strtoull(v.buf, NULL, 10);
    }
    if ((r = cgroup_read_str(events, &v, err)) < 0)
        return r;
    u.oom_kills = keyed_value(v.buf, "oom_kill");
    *ret = u;
    return 0;
}

/* ------------------------------------------------------------------------
 * kill and remove
 */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

    return x < y ? -1 : x > y;
}

/* The pids a cgroup.procs file lists, sorted; none once the cgroup is gone. */
static int read_pids(const char *procs, pid_t **ret, size_t *ret_n, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf buf = STRBUF_INIT;
    _cleanup_error_ struct berth_error *e = NULL;
    pid_t *pids = NULL;
    size_t n = 0, alloc = 0;
    int r = read_file(procs, &buf, MAX_PROCFILE, &e);

    if (r < 0 && r != -ENOENT) {   /* ENOENT: removed under us */
        if (err)
            *err = TAKE_PTR(e);
        return r;
    }
    for (char *p = buf.buf, *end; r >= 0 && *p; p = end) {
        long pid = strtol(p, &end, 10);

        if (end == p)
            break;
        if (pid <= 0 || pid > INT_MAX)
            continue;
        if (n == alloc) {
            alloc = alloc ? 2 * alloc : 64;
            pids = xrealloc(pids, alloc * sizeof(*pids));
        }
        pids[n++] = (pid_t)pid;
    }
    if (n)
        qsort(pids, n, sizeof(*pids), cmp_pid);
    *ret = pids;
    *ret_n = n;
    return 0;
}

#define KILL_BATCH 64

/*
 * SIGKILL, through the pidfds of `fds`, to those of the `n` processes of
 * `pids` that `procs` still lists.
 */
static int kill_still_listed(const char *procs, const pid_t *pids, const int *fds, size_t n,
                             struct berth_error **err)
{
    _cleanup_free_ pid_t *now = NULL;
    size_t n_now = 0;
    int r = read_pids(procs, &now, &n_now, err);

    for (size_t i = 0; r == 0 && i < n; i++) {
        /* n_now 0: every process left meanwhile, and `now` is NULL, which bsearch() must not get. */
        if (fds[i] < 0 || n_now == 0 || !bsearch(&pids[i], now, n_now, sizeof(*now), cmp_pid))
            continue;
        if (syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0) < 0 && errno != ESRCH)
            r = berth_error_make(err, errno, "kill %d in '%s'", (int)pids[i], procs);
    }
    return r;
}

/*
 * SIGKILLs the processes `dir` lists; *count says how many were listed.
 *
 * Never by pid: a listed process may exit, be reaped, and its pid go to a
 * process outside the cgroup (berth's own, say) before the kill. So the
 * kill goes through a pidfd, opened for each listed pid, and only to the
 * pids that the list, read again once the pidfds are open, still holds.
 * While the process behind a pidfd lives it keeps its pid, so a pid still
 * listed is that very process, still in the cgroup; if it died meanwhile
 * the signal reaches nobody (ESRCH), and a newcomer to the cgroup with its
 * number is found by the caller's next round.
 */
static int kill_listed(const char *dir, size_t *count, struct berth_error **err)
{
    _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", dir);
    _cleanup_free_ pid_t *pids = NULL;
    size_t n = 0;
    int r = read_pids(procs, &pids, &n, err);

    for (size_t i = 0; r == 0 && i < n; i += KILL_BATCH) {
        size_t m = n - i < KILL_BATCH ? n - i : KILL_BATCH;
        int fds[KILL_BATCH];

        for (size_t j = 0; j < m; j++)
            fds[j] = (int)syscall(SYS_pidfd_open, pids[i + j], 0);
        r = kill_still_listed(procs, pids + i, fds, m, err);
        for (size_t j = 0; j < m; j++)
            if (fds[j] >= 0)
                (void)close(fds[j]);
    }
    *count += n;
    return r;
}

/* SIGKILLs the processes of `dir` and of every cgroup below it; *count says how many were listed. */
static int kill_tree(const char *dir, int depth, size_t *count, struct berth_error **err)
{
    int r = kill_listed(dir, count, err);

    if (r < 0)
        return r;
    _cleanup_closedir_ DIR *d = depth < MAX_DEPTH ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
        if ((r = kill_tree(sub, depth + 1, count, err)) < 0)
            return r;
    }
    return 0;
}

int cgroup_kill_all(const struct cgroup_layout *l, const char *relpath, struct berth_error **err)
{
    int r;

    if ((r = validate_relpath(relpath, err)) < 0)
        return r;

    if (l->v2) {
        /* cgroup.kill (5.14+) kills the subtree atomically, forks in flight included. */
        _cleanup_free_ char *p = xasprintf("%s/%s/cgroup.kill", l->ctrl[0].root, relpath);
        if (access(p, F_OK) == 0 && (r = cgroup_write_str(p, "1", err)) < 0)
            return r;
    }

    /*
     * Without cgroup.kill (v1, old v2) processes are killed one by one from
     * cgroup.procs, which races with fork: a child forked between the read
     * and the kill is missed. So pass again until a pass finds nobody; a
     * process with SIGKILL pending cannot fork any more, and zombies are
     * not listed, so this ends as soon as the killed ones have exited.
     */
    for (int round = 0; round < 400; round++) {
        size_t count = 0;
        for (size_t i = 0; i < l->n; i++) {
            _cleanup_free_ char *dir = xasprintf("%s/%s", l->ctrl[i].root, relpath);
            if ((r = kill_tree(dir, 0, &count, err)) < 0)
                return r;
        }
        if (count == 0)
            return 0;
        sleep_ms(5);
    }
    return berth_error_plain(err, EBUSY, "processes still run in cgroup '%s' after SIGKILL", relpath);
}

/*
 * rmdir of a cgroup whose last process has just died can fail with EBUSY
 * for a moment: the kernel drops the task's cgroup reference a little after
 * the task stops being listed. So retry briefly before giving up.
 */
static int rmdir_retry(const char *path, struct berth_error **err)
{
    for (int i = 0;; i++) {
        if (rmdir(path) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY || i >= 100)
            return berth_error_make(err, errno, "rmdir '%s'", path);
        sleep_ms(10);
    }
}

/*
 * Removes `dir` and the cgroups below it, deepest first. A leaf with
 * nothing left in it, a container's at its end, goes with the first
 * rmdir: listing it first (open, stat, two getdents of a v1 memory
 * cgroup's thirty-odd files, close) cost five syscalls per hierarchy at
 * every container's removal, to find no child. Anything else says
 * EBUSY (children, or a task not quite gone; ENOTEMPTY where the tree is
 * a plain directory, as in test-cgroup-v2) and is walked.
 */
static int remove_tree(const char *dir, int depth, struct berth_error **err)
{
    int r;

    if (rmdir(dir) == 0 || errno == ENOENT)
        return 0;
    if (errno != EBUSY && errno != ENOTEMPTY)
        return berth_error_make(err, errno, "rmdir '%s'", dir);
    if (depth < MAX_DEPTH) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
            return errno == ENOENT ? 0 : berth_error_make(err, errno, "opendir '%s'", dir);
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            _cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
            if ((r = remove_tree(sub, depth + 1, err)) < 0)
                return r;
        }
    }
    return rmdir_retry(dir, err);
}

/* rmdir of `dir` and every cgroup below it that nothing runs in, deepest first (populated ones stay). */
static void sweep_tree(const char *dir, int depth, unsigned *removed)
{
    if (depth < MAX_DEPTH) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;

        while (d && (de = readdir(d))) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            _cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
            sweep_tree(sub, depth + 1, removed);
        }
    }
    /* The kernel refuses (EBUSY) a cgroup with processes or children: those stay. */
    if (rmdir(dir) == 0)
        (*removed)++;
}

/*
 * relpath in every hierarchy: swept whole (`below`: sweep_tree()), or its
 * one directory removed when empty. A cgroup in use (a child cgroup, a
 * process) or gone already is left without an error.
 */
static int remove_in_each(const char *relpath, bool below, unsigned *ret_removed, struct berth_error **err)
{
    struct cgroup_layout *l = NULL;
    int r;

    *ret_removed = 0;
    if ((r = validate_relpath(relpath, err)) < 0 || (r = cgroup_layout_detect(&l, err)) < 0)
        return r;
    for (size_t i = 0; i < l->n; i++) {
        _cleanup_free_ char *dir = xasprintf("%s/%s", l->ctrl[i].root, relpath);

        if (below)
            sweep_tree(dir, 0, ret_removed);
        else if (rmdir(dir) == 0)
            (*ret_removed)++;
        else if (errno != ENOENT && errno != EBUSY && errno != ENOTEMPTY) {
            r = berth_error_make(err, errno, "rmdir '%s'", dir);
            break;
        }
    }
    cgroup_layout_free(l);
    return r;
}

int runner_cgroup_sweep(const char *relpath, unsigned *ret_removed, struct berth_error **err)
{
    return remove_in_each(relpath, true, ret_removed, err);
}

int runner_cgroup_release(const char *relpath, struct berth_error **err)
{
    unsigned removed;

    return remove_in_each(relpath, false, &removed, err);
}

int runner_cgroup_memory_current(const char *relpath, uint64_t *ret_bytes, struct berth_error **err)
{
    struct cgroup_layout *l = NULL;
    const struct cgroup_ctrl *mem;
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    int r;

    *ret_bytes = 0;
    if ((r = validate_relpath(relpath, err)) < 0 || (r = cgroup_layout_detect(&l, err)) < 0)
        return r;
    mem = cgroup_find_ctrl(l, "memory");
    if (mem) {
        _cleanup_free_ char *file = xasprintf("%s/%s/%s", mem->root, relpath,
                                              l->v2 ? "memory.current" : "memory.usage_in_bytes");

        r = cgroup_read_str(file, &v, err);
        if (r == 0)
            *ret_bytes = strtoull(v.buf, NULL, 10);
    }
    cgroup_layout_free(l);
    return r;
}

int cgroup_remove(const struct cgroup_layout *l, const char *relpath, struct berth_error **err)
{
    int r;

    if ((r = validate_relpath(relpath, err)) < 0)
        return r;
    for (size_t i = 0; i < l->n; i++) {
        _cleanup_free_ char *dir = xasprintf("%s/%s", l->ctrl[i].root, relpath);
        if ((r = remove_tree(dir, 0, err)) < 0)
            return WRAP(r, err, "removing cgroup '%s'", relpath);
    }
    return 0;
}
