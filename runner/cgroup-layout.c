/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cgroups for tenants, apps and instances (runner/cgroup.h), part one: where
 * the hierarchies are, root's one-time delegation and the berth user's check
 * of it; runner/cgroup.c creates, enters, kills and removes the cgroups. berth never
 * creates a cgroup outside its own: `berth setup` (root) makes
 * `berth-<user>` below the cgroup the process runs in, once per controller,
 * and hands it to that user; the user then creates <tenant>/<app>/<instance>
 * below it and writes their limits (ARCHITECTURE.md, Tenants and isolation).
 * One subtree per operator: several installations on one host (a `berth
 * setup --user alice` beside `berth setup --user berth`) never share a
 * cgroup, so one never finds the other's cgroups in its way.
 *
 * Two layouts are handled:
 *  - cgroup v2 (/sys/fs/cgroup is cgroup2): one tree, `<own>/berth-<user>`;
 *    controllers are switched on in cgroup.subtree_control on the way down.
 *  - cgroup v1 and hybrid hosts (/sys/fs/cgroup is a tmpfs): the memory, pids
 *    and cpu hierarchies, each with its own `<own>/berth-<user>`, where <own> comes
 *    from /proc/self/cgroup per controller (on the reference host the memory
 *    controller is nested at /process_api/<id>, pids and cpu sit at /).
 *    Unlike crun, a hybrid host whose unified mount carries controllers
 *    (hugetlb here) is not refused: berth only uses the v1 hierarchies.
 *
 * Every limit asked for is written or the call fails (reference/ISOLATION.md
 * §0.2: rootless runtimes on v1 silently drop limits; berth must not).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/user.h"
#include "common/xalloc.h"
#include "runner/cgroup.h"
#include "runner/cgroup-internal.h"
#include "common/banned.h"

/*
 * The controllers berth uses (v1: one hierarchy each; v2: switched on in
 * subtree_control). memory and pids carry the limits every container gets
 * and must be there; cpu is used when present: only a container that asks
 * for a cpu weight needs it, and its spawn fails on a host without it
 * (cgroup.c), so nothing asked for is silently dropped.
 */
static const struct {
    const char *name;
    bool required;
} controllers[] = {
    { "memory", true },
    { "pids", true },
    { "cpu", false },
};
#define N_CONTROLLERS (sizeof(controllers) / sizeof(controllers[0]))

void cgroup_layout_free(struct cgroup_layout *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->ctrl[i].name);
        free(l->ctrl[i].root);
    }
    free(l);
}

static void cgroup_layout_freep(struct cgroup_layout **l)
{
    cgroup_layout_free(*l);
}

/* ------------------------------------------------------------------------
 * small file helpers
 */

int cgroup_write_str(const char *path, const char *value, struct berth_error **err)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "open '%s'", path);
    /* cgroup files take the whole value in one write(); a short write is an error. */
    ssize_t n = write(fd, value, strlen(value));
    if (n < 0)
        return berth_error_make(err, errno, "writing '%s' to '%s'", value, path);
    if ((size_t)n != strlen(value))
        return berth_error_plain(err, EIO, "short write of '%s' to '%s'", value, path);
    return 0;
}

int cgroup_read_str(const char *path, struct strbuf *out, struct berth_error **err)
{
    strbuf_setlen(out, 0);
    int r = read_file(path, out, MAX_PROCFILE, err);
    if (r < 0)
        return r;
    strbuf_rtrim(out);
    return 0;
}

bool cgroup_file_exists(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Whether `word` is one of the `sep`-separated words of `list`. */
bool cgroup_has_word(const char *list, const char *word, char sep)
{
    size_t wl = strlen(word);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == wl && memcmp(p, word, wl) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* ------------------------------------------------------------------------
 * finding the hierarchies
 */

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_mountinfo(char *s)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

/*
 * What a layout is found from: /proc/self/mountinfo and /proc/self/cgroup,
 * read once per layout and searched for each hierarchy (mountinfo alone
 * costs ~24 us a read here, and every container start finds a layout).
 */
struct proc_views {
    struct strbuf mountinfo;
    struct strbuf cgroup;
};

static int proc_views_read(struct proc_views *v, struct berth_error **err)
{
    int r = read_file("/proc/self/mountinfo", &v->mountinfo, MAX_PROCFILE, err);

    return r < 0 ? r : read_file("/proc/self/cgroup", &v->cgroup, MAX_PROCFILE, err);
}

static void proc_views_release(struct proc_views *v)
{
    strbuf_release(&v->mountinfo);
    strbuf_release(&v->cgroup);
}

/*
 * Finds, in mountinfo's text, the mount of the v1 hierarchy holding
 * `controller` (or the cgroup2 mount when controller is NULL): *ret_mnt is
 * the mount point, *ret_root the cgroup the mount shows at its top (not "/"
 * inside a cgroup namespace).
 */
static int find_mount(const char *mountinfo, const char *controller, char **ret_mnt, char **ret_root,
                      struct berth_error **err)
{
    _cleanup_free_ char *mi = xstrdup(mountinfo), *mnt = NULL, *mroot = NULL;

    for (char *line = mi, *next; line && *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';

        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *f[5] = { NULL };
        char *save = NULL;
        char *tok = strtok_r(line, " ", &save);
        for (int i = 0; i < 5 && tok; i++, tok = strtok_r(NULL, " ", &save))
            f[i] = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " ", &save);
        if (!tok || !f[4])
            continue;
        char *fstype = strtok_r(NULL, " ", &save);
        (void)strtok_r(NULL, " ", &save);   /* source */
        char *superopts = strtok_r(NULL, " ", &save);
        if (!fstype || !superopts)
            continue;

        unescape_mountinfo(f[3]);
        unescape_mountinfo(f[4]);
        /* v2 was chosen because CGROUP_MOUNT itself is cgroup2: use that mount */
        bool match = controller ? strcmp(fstype, "cgroup") == 0 && cgroup_has_word(superopts, controller, ',')
                                : strcmp(fstype, "cgroup2") == 0 && strcmp(f[4], CGROUP_MOUNT) == 0;
        if (!match)
            continue;
        /* the last match wins: a later mount on the same point hides the earlier one */
        free(mroot);
        free(mnt);
        mroot = xstrdup(f[3]);
        mnt = xstrdup(f[4]);
    }
    if (mnt) {
        *ret_mnt = TAKE_PTR(mnt);
        *ret_root = TAKE_PTR(mroot);
        return 0;
    }
    return berth_error_plain(err, ENOENT, "no cgroup%s hierarchy%s%s%s is mounted",
                             controller ? "" : "2", controller ? " for '" : "",
                             controller ? controller : "", controller ? "'" : "");
}

bool cgroup_split_proc_line(char *line, char **ret_controllers, char **ret_path)
{
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

    if (!c2)
        return false;
    *c2 = '\0';
    *ret_controllers = c1 + 1;
    *ret_path = c2 + 1;
    return true;
}

/*
 * This process's cgroup in the v1 hierarchy of `controller` (NULL: the v2
 * "0::" entry), from /proc/self/cgroup's text.
 */
static int own_cgroup(const char *proc_cgroup, const char *controller, char **ret, struct berth_error **err)
{
    _cleanup_free_ char *cg = xstrdup(proc_cgroup);

    for (char *line = cg, *next; line && *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        char *ctrls, *path;
        if (!cgroup_split_proc_line(line, &ctrls, &path))
            continue;
        bool match = controller ? cgroup_has_word(ctrls, controller, ',')
                                : strncmp(line, "0:", 2) == 0 && ctrls[0] == '\0';
        if (match) {
            *ret = xstrdup(path);
            return 0;
        }
    }
    return berth_error_plain(err, ENOENT, "this process is in no cgroup%s%s%s (/proc/self/cgroup)",
                             controller ? " of '" : " v2", controller ? controller : "",
                             controller ? "'" : "");
}

/* Mount point plus own cgroup, relative to what the mount shows as its root. */
static char *hierarchy_dir(const char *mnt, const char *mroot, const char *own)
{
    const char *rel = own;
    size_t rl = strlen(mroot);
    if (strcmp(mroot, "/") != 0 && strncmp(own, mroot, rl) == 0 && (own[rl] == '/' || own[rl] == '\0'))
        rel = own + rl;
    while (*rel == '/')
        rel++;
    return *rel ? xasprintf("%s/%s", mnt, rel) : xstrdup(mnt);
}

char *cgroup_subtree_name(uid_t uid)
{
    _cleanup_free_ char *name = user_name_of(uid);

    if (name && name[0] && !strchr(name, '/') && name[0] != '.')
        return xasprintf("%s%s", BERTH_CGROUP_PREFIX, name);
    return xasprintf("%s%u", BERTH_CGROUP_PREFIX, (unsigned)uid);
}

/* Computes where the cgroups delegated to `uid` are, without checking they exist. */
static int layout_find(uid_t uid, struct cgroup_layout **ret, struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = xcalloc(1, sizeof(*l));
    _cleanup_free_ char *subtree = cgroup_subtree_name(uid);
    _cleanup_(proc_views_release) struct proc_views views = { STRBUF_INIT, STRBUF_INIT };
    struct statfs sfs;
    int r;

    if (statfs(CGROUP_MOUNT, &sfs) < 0)
        return berth_error_make(err, errno, "statfs '%s'", CGROUP_MOUNT);
    if ((r = proc_views_read(&views, err)) < 0)
        return r;

    if (sfs.f_type == CGROUP2_SUPER_MAGIC) {
        _cleanup_free_ char *mnt = NULL, *mroot = NULL, *own = NULL;
        if ((r = find_mount(views.mountinfo.buf, NULL, &mnt, &mroot, err)) < 0 ||
            (r = own_cgroup(views.cgroup.buf, NULL, &own, err)) < 0)
            return r;
        _cleanup_free_ char *dir = hierarchy_dir(mnt, mroot, own);
        /* A daemon that moved itself into its leaf (cgroup_self_delegate_layout) keeps its subtree beside it. */
        char *slash = strrchr(dir, '/');
        if (slash && strcmp(slash + 1, BERTH_SUPERVISOR_CGROUP) == 0)
            *slash = '\0';
        l->v2 = true;
        l->ctrl[0].name = xstrdup("unified");
        l->ctrl[0].root = xasprintf("%s/%s", dir, subtree);
        l->n = 1;
    } else if (sfs.f_type == TMPFS_MAGIC) {
        for (size_t i = 0; i < N_CONTROLLERS; i++) {
            const char *name = controllers[i].name;
            _cleanup_free_ char *mnt = NULL, *mroot = NULL, *own = NULL;
            _cleanup_error_ struct berth_error *e = NULL;

            r = find_mount(views.mountinfo.buf, name, &mnt, &mroot, &e);
            if (r == 0)
                r = own_cgroup(views.cgroup.buf, name, &own, &e);
            if (r < 0) {
                if (!controllers[i].required)
                    continue;
                if (!err)
                    return r;
                *err = TAKE_PTR(e);
                return WRAP(r, err, "cgroup v1 controller '%s'", name);
            }
            _cleanup_free_ char *dir = hierarchy_dir(mnt, mroot, own);
            _cleanup_free_ char *root = xasprintf("%s/%s", dir, subtree);
            /* co-mounted controllers (e.g. "memory,pids") share one directory and entry */
            size_t j = 0;
            while (j < l->n && strcmp(l->ctrl[j].root, root) != 0)
                j++;
            if (j < l->n) {
                char *names = xasprintf("%s,%s", l->ctrl[j].name, name);
                free(l->ctrl[j].name);
                l->ctrl[j].name = names;
                continue;
            }
            l->ctrl[l->n].name = xstrdup(name);
            l->ctrl[l->n].root = TAKE_PTR(root);
            l->n++;
        }
    } else {
        return berth_error_plain(err, EOPNOTSUPP, "'%s' is neither cgroup2 nor a tmpfs of v1 "
                                 "hierarchies (filesystem magic 0x%lx)", CGROUP_MOUNT,
                                 (unsigned long)sfs.f_type);
    }
    *ret = TAKE_PTR(l);
    return 0;
}

const struct cgroup_ctrl *cgroup_find_ctrl(const struct cgroup_layout *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v2 || cgroup_has_word(l->ctrl[i].name, name, ','))
            return &l->ctrl[i];
    return NULL;
}

/* ------------------------------------------------------------------------
 * v2 controller switching
 */

/*
 * Makes the controllers berth uses available to the children of `dir` by
 * writing "+name" to its cgroup.subtree_control. The kernel refuses (EBUSY)
 * while `dir` holds processes ("no internal processes"): only leaves may
 * hold processes once controllers are on. berth's own subtree never puts
 * processes in an inner node, so EBUSY here means the cgroup berth was
 * started in is not a delegated, process-free parent.
 */
int cgroup_enable_controllers(const char *dir, struct berth_error **err)
{
    _cleanup_free_ char *cpath = xasprintf("%s/cgroup.controllers", dir);
    _cleanup_free_ char *spath = xasprintf("%s/cgroup.subtree_control", dir);
    _cleanup_strbuf_ struct strbuf avail = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf on = STRBUF_INIT;
    int r;

    if ((r = cgroup_read_str(cpath, &avail, err)) < 0 || (r = cgroup_read_str(spath, &on, err)) < 0)
        return r;
    for (size_t i = 0; i < N_CONTROLLERS; i++) {
        const char *c = controllers[i].name;
        if (cgroup_has_word(on.buf, c, ' '))
            continue;
        if (!cgroup_has_word(avail.buf, c, ' ')) {
            if (!controllers[i].required)
                continue;
            return berth_error_plain(err, EOPNOTSUPP, "controller '%s' is not available in '%s'; "
                                     "delegate it to this cgroup (systemd Delegate=yes), then "
                                     "run 'berth setup'", c, dir);
        }
        _cleanup_free_ char *v = xasprintf("+%s", c);
        r = cgroup_write_str(spath, v, err);
        if (r == -EBUSY)
            return WRAP(r, err, "'%s' holds processes, so it cannot pass controllers "
                                    "to children; start berth in a leaf cgroup", dir);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * setup (root) and check (berth user)
 */

static int chown_path(const char *path, uid_t uid, gid_t gid, struct berth_error **err)
{
    if (lchown(path, uid, gid) < 0)
        return berth_error_make(err, errno, "chown '%s' to %u:%u", path, (unsigned)uid,
                                (unsigned)gid);
    return 0;
}

/*
 * Hands `dir`, a cgroup below a delegated root, and everything in it (its
 * files and the cgroups below) to uid:gid. A cgroup made by another user
 * (an earlier owner of the name, or root by hand) would otherwise stop the
 * delegatee at its first mkdir below it. cgroupfs has no symlinks; lchown
 * all the same.
 */
static int chown_tree(const char *dir, int depth, uid_t uid, gid_t gid, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    int r;

    if (!d)
        return berth_error_make(err, errno, "opendir '%s'", dir);
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR && depth + 1 >= MAX_DEPTH)
            return berth_error_plain(err, ELOOP, "cgroups nested deeper than %d below '%s'", MAX_DEPTH, p);
        r = de->d_type == DT_DIR ? chown_tree(p, depth + 1, uid, gid, err) : chown_path(p, uid, gid, err);
        if (r < 0)
            return r;
    }
    return chown_path(dir, uid, gid, err);
}

/*
 * Only the directory and the files a delegatee needs to create children
 * and place processes (the kernel's own list in /sys/kernel/cgroup/delegate
 * for v2). The knobs of `berth-<user>` itself stay root's: they are the
 * operator's limit on berth as a whole.
 */
static const char *const v1_files[] = { "cgroup.procs", "tasks" };
static const char *const v2_files[] = { "cgroup.procs", "cgroup.subtree_control", "cgroup.threads" };

static size_t delegated_files(const struct cgroup_layout *l, const char *const **ret)
{
    *ret = l->v2 ? v2_files : v1_files;
    return l->v2 ? sizeof(v2_files) / sizeof(v2_files[0]) : sizeof(v1_files) / sizeof(v1_files[0]);
}

/* mkdir of a delegated root (kept when it exists), which must be a directory. */
static int make_root(const char *root, struct berth_error **err)
{
    struct stat st;

    if (mkdir(root, 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "mkdir '%s'", root);
    if (lstat(root, &st) < 0)
        return berth_error_make(err, errno, "stat '%s'", root);
    if (!S_ISDIR(st.st_mode))
        return berth_error_plain(err, ENOTDIR, "'%s' exists and is not a cgroup", root);
    return 0;
}

/* The root's delegated files, then every cgroup below it, whole. */
static int chown_delegated(const struct cgroup_layout *l, const char *root, uid_t uid, gid_t gid,
                           struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = NULL;
    const char *const *files;
    size_t nf = delegated_files(l, &files);
    struct dirent *de;
    int r;

    if ((r = chown_path(root, uid, gid, err)) < 0)
        return r;
    for (size_t j = 0; j < nf; j++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", root, files[j]);
        if ((r = chown_path(p, uid, gid, err)) < 0)
            return r;
    }
    if (!(d = opendir(root)))
        return berth_error_make(err, errno, "opendir '%s'", root);
    while ((de = readdir(d))) {
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *sub = xasprintf("%s/%s", root, de->d_name);
        if ((r = chown_tree(sub, 1, uid, gid, err)) < 0)
            return r;
    }
    return 0;
}

/*
 * berth's apps, together, against the daemon's threads. On v1 each thread
 * of the parent cgroup is a scheduling entity of weight 1024 beside the
 * whole subtree, and the subtree's weight is spread over the CPUs its
 * tasks run on: at the default, all of berth's apps on a CPU weigh as much
 * as one router loop thread there. (Where the kernel's autogroup is on, as
 * on Debian and this host, the daemon's session is one entity of 1024,
 * spread over the CPUs like the subtree: the apps then weighed the whole
 * router.) A router that wins every wake-up then
 * runs the moment one of its sockets is ready, handles that one event and
 * sleeps again, and the switches cost more CPU than the requests (a 2-CPU
 * host, busybox behind the router, wrk -c8: 1.5 sleeps of the loop per
 * request and 0.75x the app's direct throughput; nginx in the router's
 * place, with that busybox in a cpu cgroup of the same weight, fell to the
 * same figures, and back when the cgroup weighed more). The router's share
 * of a proxied request's CPU is about a fifth (55 of ~260 us there), so
 * the subtree gets 4096 per CPU: on each CPU the apps weigh four loop
 * threads, and a busy router keeps about a fifth of a CPU the apps want
 * (under autogroup, where its whole session weighs 1024, about a ninth on
 * two CPUs: 512 a CPU against 4096)
 * (wrk -c8 with one router loop: 6,600 req/s at 1024 per CPU, 7,270 at
 * 2048, 7,490 at 4096, 7,630 at 8192; tests/bench's sweep over 1-256
 * clients: 0.68-0.72x direct at 1024, 0.79-0.95x at 4096 in two runs). A
 * v1 root at the kernel's default, or at the 1024 per CPU that berth
 * setup gave it before 2026-12-03, gets that; any other value was an
 * operator's and is kept. That the apps' wake-ups, at this weight, do not
 * take the CPU from the router each time is SCHED_BATCH's doing (the init
 * gives it to every app: runner/init.c).
 * On v2 the daemon's threads share the weight of a cgroup of their own
 * (BERTH_SUPERVISOR_CGROUP beside the subtree, under systemd's
 * Delegate=yes), both spread over the CPUs: the same four to one is a
 * subtree at cpu.weight 400 against the default 100, given where it is
 * still at that default. (This host offers no v2 controllers: the
 * prepared tree of test-cgroup-v2 checks the writes, not the effect.)
 */
#define SHARES_DEFAULT 1024     /* the kernel's, for a new cgroup */
#define SHARES_PER_CPU 4096
#define SHARES_OLD_PER_CPU 1024 /* what berth setup wrote before 2026-12-03 */
#define SHARES_MAX (1 << 18)    /* the kernel's ceiling for cpu.shares (MAX_SHARES) */
#define WEIGHT_V2 "400"         /* v2's cpu.weight for the subtree, against the daemon's cgroup at 100 */

static long shares_for(int cpus, long per_cpu)
{
    return (long)cpus <= SHARES_MAX / per_cpu ? per_cpu * cpus : SHARES_MAX;
}

/* v2: cpu.weight exists where the parent passes cpu down; 100 is the kernel's default. */
static int weigh_root_v2(const char *root, struct berth_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/cpu.weight", root);
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    int r;

    if (!cgroup_file_exists(root, "cpu.weight"))
        return 0;
    if ((r = cgroup_read_str(path, &v, err)) < 0)
        return r;
    return strcmp(v.buf, "100") == 0 ? cgroup_write_str(path, WEIGHT_V2, err) : 0;
}

static int weigh_root(const struct cgroup_layout *l, const char *root, const char *ctrl, struct berth_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/cpu.shares", root);
    _cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
    cpu_set_t cpus;
    char shares[24];
    long now;
    int n = 1, r;

    if (l->v2)
        return weigh_root_v2(root, err);
    if (!cgroup_has_word(ctrl, "cpu", ',') || !cgroup_file_exists(root, "cpu.shares"))
        return 0;
    if ((r = cgroup_read_str(path, &v, err)) < 0)
        return r;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) > 1)
        n = CPU_COUNT(&cpus);
    now = strtol(v.buf, NULL, 10);
    if (now != SHARES_DEFAULT && now != shares_for(n, SHARES_OLD_PER_CPU))
        return 0;
    snprintf(shares, sizeof(shares), "%ld", shares_for(n, SHARES_PER_CPU));
    return cgroup_write_str(path, shares, err);
}

int cgroup_delegate_layout(const struct cgroup_layout *l, uid_t uid, gid_t gid, struct berth_error **err)
{
    int r;

    for (size_t i = 0; i < l->n; i++) {
        const char *root = l->ctrl[i].root;
        if (l->v2) {
            _cleanup_free_ char *parent = xstrndup(root, (size_t)(strrchr(root, '/') - root));
            if ((r = cgroup_enable_controllers(parent, err)) < 0)
                return r;
        }
        if ((r = make_root(root, err)) < 0 || (r = chown_delegated(l, root, uid, gid, err)) < 0 ||
            (r = weigh_root(l, root, l->ctrl[i].name, err)) < 0)
            return r;
        if (l->v2 && (r = cgroup_enable_controllers(root, err)) < 0)
            return r;
    }
    return 0;
}

int runner_cgroup_delegate(uid_t uid, gid_t gid, struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    int r;

    if ((r = layout_find(uid, &l, err)) < 0)
        return WRAP(r, err, "finding this process's cgroups");
    return cgroup_delegate_layout(l, uid, gid, err);
}

int cgroup_self_delegate_layout(const struct cgroup_layout *l, struct berth_error **err)
{
    int r;

    for (size_t i = 0; i < l->n; i++) {
        const char *root = l->ctrl[i].root;
        _cleanup_free_ char *parent = xstrndup(root, (size_t)(strrchr(root, '/') - root));
        _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", parent);

        /* Not handed to us (no Delegate=): root's `berth setup` is the way, and the checks say so. */
        if (faccessat(AT_FDCWD, parent, W_OK, AT_EACCESS) < 0 || faccessat(AT_FDCWD, procs, W_OK, AT_EACCESS) < 0)
            continue;
        if (l->v2) {
            /*
             * No internal processes: a cgroup holding this process cannot
             * pass controllers down, so the daemon moves into a leaf of its
             * own first (writing 0 moves the writer).
             */
            _cleanup_free_ char *leaf = xasprintf("%s/%s", parent, BERTH_SUPERVISOR_CGROUP);
            _cleanup_free_ char *leaf_procs = xasprintf("%s/cgroup.procs", leaf);

            if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
                return berth_error_make(err, errno, "mkdir '%s'", leaf);
            if ((r = cgroup_write_str(leaf_procs, "0", err)) < 0 || (r = cgroup_enable_controllers(parent, err)) < 0)
                return r;
        }
        if ((r = make_root(root, err)) < 0)
            return r;
        /* Best effort: a root that root's setup made (and left at the default) is not the daemon's to weigh. */
        (void)weigh_root(l, root, l->ctrl[i].name, NULL);
        if (l->v2 && (r = cgroup_enable_controllers(root, err)) < 0)
            return r;
    }
    return 0;
}

int runner_cgroup_self_delegate(struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    int r;

    if ((r = layout_find(geteuid(), &l, err)) < 0)
        return WRAP(r, err, "finding berth's cgroups");
    return cgroup_self_delegate_layout(l, err);
}

/* rmdir of `dir` and the cgroups below it, deepest first; a populated one stops it (EBUSY). */
static int remove_subtree(const char *dir, int depth, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *de;
    int r;

    if (!d)
        return errno == ENOENT ? 0 : berth_error_make(err, errno, "opendir '%s'", dir);
    while ((de = readdir(d))) {
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
        if (depth + 1 >= MAX_DEPTH)
            return berth_error_plain(err, ELOOP, "cgroups nested deeper than %d below '%s'", MAX_DEPTH, sub);
        if ((r = remove_subtree(sub, depth + 1, err)) < 0)
            return r;
    }
    if (rmdir(dir) < 0 && errno != ENOENT) {
        if (errno == EBUSY)
            return berth_error_plain(err, EBUSY, "processes still run in cgroup '%s'; stop that "
                                     "user's berth serve (and its containers) first", dir);
        return berth_error_make(err, errno, "rmdir '%s'", dir);
    }
    return 0;
}

int runner_cgroup_undelegate(uid_t uid, struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    int r;

    if ((r = layout_find(uid, &l, err)) < 0)
        return WRAP(r, err, "finding this process's cgroups");
    for (size_t i = 0; i < l->n; i++)
        if ((r = remove_subtree(l->ctrl[i].root, 0, err)) < 0)
            return r;
    return 0;
}

/* The first path at or below `dir` (a cgroup or one of `files`) that uid does not own, or NULL. */
static char *find_foreign(const char *dir, int depth, const char *const *files, size_t nf, uid_t uid,
                          uid_t *ret_owner)
{
    _cleanup_closedir_ DIR *d = NULL;
    struct dirent *de;
    struct stat st;

    if (lstat(dir, &st) == 0 && st.st_uid != uid) {
        *ret_owner = st.st_uid;
        return xstrdup(dir);
    }
    for (size_t j = 0; j < nf; j++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", dir, files[j]);
        if (lstat(p, &st) == 0 && st.st_uid != uid) {
            *ret_owner = st.st_uid;
            return TAKE_PTR(p);
        }
    }
    if (depth + 1 >= MAX_DEPTH || !(d = opendir(dir)))
        return NULL;
    while ((de = readdir(d))) {
        if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        _cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
        char *bad = find_foreign(sub, depth + 1, files, nf, uid, ret_owner);
        if (bad)
            return bad;
    }
    return NULL;
}

int cgroup_check_owner_layout(const struct cgroup_layout *l, uid_t uid, struct berth_error **err)
{
    const char *const *files;
    size_t nf = delegated_files(l, &files);

    for (size_t i = 0; i < l->n; i++) {
        uid_t owner = 0;
        _cleanup_free_ char *bad = find_foreign(l->ctrl[i].root, 0, files, nf, uid, &owner);
        struct passwd *pw;
        _cleanup_free_ char *name = NULL;

        if (!bad)
            continue;
        pw = getpwuid(uid);
        name = pw ? xstrdup(pw->pw_name) : xasprintf("%u", (unsigned)uid);
        pw = getpwuid(owner);
        return berth_error_plain(err, EACCES, "'%s' belongs to %s%s (uid %u), not to '%s'; run "
                                 "'berth setup --user %s' as root to repair the ownership of the subtree",
                                 bad, pw ? "user " : "another user", pw ? pw->pw_name : "",
                                 (unsigned)owner, name, name);
    }
    return 0;
}

int runner_cgroup_check_owner(struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    int r;

    if ((r = layout_find(geteuid(), &l, err)) < 0)
        return WRAP(r, err, "finding berth's cgroups");
    return cgroup_check_owner_layout(l, geteuid(), err);
}

/* The user a delegated root `.../berth-<user>` is for, as named in it. */
static const char *root_user(const char *root)
{
    const char *base = strrchr(root, '/');

    base = base ? base + 1 : root;
    return strncmp(base, BERTH_CGROUP_PREFIX, strlen(BERTH_CGROUP_PREFIX)) == 0
               ? base + strlen(BERTH_CGROUP_PREFIX) : base;
}

/* Fails with a message naming `berth setup` unless `root` exists and is ours to write. */
static int check_delegated(const char *root, uid_t uid, struct berth_error **err)
{
    _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", root);
    struct stat st;

    if (stat(root, &st) < 0) {
        if (errno == ENOENT)
            return berth_error_plain(err, ENOENT, "cgroup '%s' does not exist: cgroups are not delegated; "
                                     "run 'berth setup --user %s' as root to delegate them", root,
                                     root_user(root));
        return berth_error_make(err, errno, "stat '%s'", root);
    }
    /* AT_EACCESS: the effective ids are what the kernel checks on mkdir and write. */
    if (faccessat(AT_FDCWD, root, W_OK, AT_EACCESS) < 0 ||
        faccessat(AT_FDCWD, procs, W_OK, AT_EACCESS) < 0)
        return berth_error_make(err, errno, "cgroup '%s' is not writable by uid %u; run "
                                "'berth setup --user %s' as root to delegate it", root,
                                (unsigned)uid, root_user(root));
    return 0;
}

int cgroup_layout_detect_uid(uid_t uid, struct cgroup_layout **ret, struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    int r;

    if ((r = layout_find(uid, &l, err)) < 0)
        return WRAP(r, err, "finding berth's cgroups");
    for (size_t i = 0; i < l->n; i++)
        if ((r = check_delegated(l->ctrl[i].root, uid, err)) < 0)
            return r;
    *ret = TAKE_PTR(l);
    return 0;
}

int cgroup_layout_detect(struct cgroup_layout **ret, struct berth_error **err)
{
    return cgroup_layout_detect_uid(geteuid(), ret, err);
}

int runner_cgroup_check(struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    int r;

    if ((r = cgroup_layout_detect(&l, err)) < 0)
        return r;
    /* Access bits can lie (ACLs, read-only mounts, LSMs); a real mkdir cannot. */
    for (size_t i = 0; i < l->n; i++) {
        _cleanup_free_ char *probe = xasprintf("%s/.check-%ld", l->ctrl[i].root, (long)getpid());
        if (mkdir(probe, 0755) < 0 && errno != EEXIST)
            return berth_error_make(err, errno, "cannot create cgroups below '%s'; run "
                                    "'berth setup --user %s' as root to delegate it", l->ctrl[i].root,
                                    root_user(l->ctrl[i].root));
        if (rmdir(probe) < 0)
            return berth_error_make(err, errno, "removing probe cgroup '%s'", probe);
    }
    if (l->v2) {
        /*
         * v2 moves a process only if the writer may write cgroup.procs of
         * the common ancestor of source and target: here the cgroup berth
         * runs in. Without that, every cgroup_enter would fail later.
         */
        const char *root = l->ctrl[0].root;
        _cleanup_free_ char *parent = xstrndup(root, (size_t)(strrchr(root, '/') - root));
        _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", parent);
        if (faccessat(AT_FDCWD, procs, W_OK, AT_EACCESS) < 0)
            return berth_error_make(err, errno, "'%s' is not writable, so processes cannot be "
                                    "moved into '%s'; run berth in a delegated cgroup "
                                    "(systemd Delegate=yes) and run 'berth setup'", procs, root);
        _cleanup_free_ char *ctl = xasprintf("%s/cgroup.subtree_control", root);
        _cleanup_strbuf_ struct strbuf on = STRBUF_INIT;
        if ((r = cgroup_read_str(ctl, &on, err)) < 0)
            return r;
        for (size_t i = 0; i < N_CONTROLLERS; i++)
            if (controllers[i].required && !cgroup_has_word(on.buf, controllers[i].name, ' '))
                return berth_error_plain(err, EOPNOTSUPP, "controller '%s' is not enabled in "
                                         "'%s'; run 'berth setup'", controllers[i].name, ctl);
    }
    return 0;
}

int runner_cgroup_check_cpu_quota(struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    const struct cgroup_ctrl *cpu;
    int r;

    if ((r = cgroup_layout_detect(&l, err)) < 0)
        return r;
    if (!(cpu = cgroup_find_ctrl(l, "cpu")))
        return berth_error_plain(err, EOPNOTSUPP, "no cgroup v1 'cpu' hierarchy is mounted for this "
                                 "process, so cpu quotas cannot be enforced");
    if (l->v2) {
        _cleanup_free_ char *ctl = xasprintf("%s/cgroup.subtree_control", cpu->root);
        _cleanup_strbuf_ struct strbuf on = STRBUF_INIT;

        if ((r = cgroup_read_str(ctl, &on, err)) < 0)
            return r;
        if (!cgroup_has_word(on.buf, "cpu", ' '))
            return berth_error_plain(err, EOPNOTSUPP, "the cpu controller is not enabled in '%s', so "
                                     "cpu quotas cannot be enforced; delegate it (systemd "
                                     "Delegate=yes) and run 'berth setup'", ctl);
        return 0;
    }
    if (!cgroup_file_exists(cpu->root, "cpu.cfs_quota_us"))
        return berth_error_plain(err, EOPNOTSUPP, "'%s' has no cpu.cfs_quota_us (the kernel lacks CFS "
                                 "bandwidth control), so cpu quotas cannot be enforced", cpu->root);
    return 0;
}
