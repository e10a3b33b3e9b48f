/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cgroups for tenants, apps and instances (runner/cgroup.h). berth never
 * creates a cgroup outside its own: `berth setup` (root) makes `berth` below
 * the cgroup the process runs in, once per controller, and hands it to the
 * berth user; the berth user then creates <tenant>/<app>/<instance> below
 * that and writes their limits (ARCHITECTURE.md, Tenants and isolation).
 *
 * Two layouts are handled:
 *  - cgroup v2 (/sys/fs/cgroup is cgroup2): one tree, `<own>/berth`;
 *    controllers are switched on in cgroup.subtree_control on the way down.
 *  - cgroup v1 and hybrid hosts (/sys/fs/cgroup is a tmpfs): the memory, pids
 *    and cpu hierarchies, each with its own `<own>/berth`, where <own> comes
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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "runner/cgroup.h"
#include "common/banned.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"
#define BERTH_CGROUP "berth"
/* Caps on what we accept from callers and read from the kernel. */
#define MAX_RELPATH 1024
#define MAX_DEPTH 16
#define MAX_PROCFILE (4u << 20)
#define MAX_CTRL 3

/*
 * berth_error_wrap() answers -EIO when the caller passed no error object;
 * keep the real code in that case.
 */
#define WRAP(r, err, ...) ((err) ? berth_error_wrap((err), __VA_ARGS__) : (r))

struct cgroup_ctrl {
    char *name;   /* "memory", "pids", "cpu" (co-mounted: "memory,pids"); "unified" on v2 */
    char *root;   /* absolute path of berth's delegated cgroup in this hierarchy */
};

struct cgroup_layout {
    bool v2;
    size_t n;
    struct cgroup_ctrl ctrl[MAX_CTRL];
};

/*
 * The controllers berth uses (v1: one hierarchy each; v2: switched on in
 * subtree_control). memory and pids carry the limits berth sets and must be
 * there; cpu is used when present (no cpu limit is written yet, so a host
 * without it loses nothing that was asked for).
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

static int write_str(const char *path, const char *value, struct berth_error **err)
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

static int read_str(const char *path, struct strbuf *out, struct berth_error **err)
{
    strbuf_setlen(out, 0);
    int r = read_file(path, out, MAX_PROCFILE, err);
    if (r < 0)
        return r;
    strbuf_rtrim(out);
    return 0;
}

static bool file_exists(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Whether `word` is one of the `sep`-separated words of `list`. */
static bool has_word(const char *list, const char *word, char sep)
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
 * Finds the mount of the v1 hierarchy holding `controller` (or the cgroup2
 * mount when controller is NULL): *ret_mnt is the mount point, *ret_root the
 * cgroup the mount shows at its top (not "/" inside a cgroup namespace).
 */
static int find_mount(const char *controller, char **ret_mnt, char **ret_root,
                      struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf mi = STRBUF_INIT;
    _cleanup_free_ char *mnt = NULL, *mroot = NULL;
    int r = read_file("/proc/self/mountinfo", &mi, MAX_PROCFILE, err);
    if (r < 0)
        return r;

    for (char *line = mi.buf, *next; line && *line; line = next) {
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
        bool match = controller ? strcmp(fstype, "cgroup") == 0 && has_word(superopts, controller, ',')
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

/* This process's cgroup in the v1 hierarchy of `controller` (NULL: the v2 "0::" entry). */
static int own_cgroup(const char *controller, char **ret, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf cg = STRBUF_INIT;
    int r = read_file("/proc/self/cgroup", &cg, MAX_PROCFILE, err);
    if (r < 0)
        return r;

    for (char *line = cg.buf, *next; line && *line; line = next) {
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        /* "id:controller,list:/path"; the path may itself contain ':' */
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        bool match = controller ? has_word(c1 + 1, controller, ',')
                                : strncmp(line, "0:", 2) == 0 && c1[1] == '\0';
        if (match) {
            *ret = xstrdup(c2 + 1);
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

/* Computes where berth's cgroups are, without checking they exist. */
static int layout_find(struct cgroup_layout **ret, struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = xcalloc(1, sizeof(*l));
    struct statfs sfs;
    int r;

    if (statfs(CGROUP_MOUNT, &sfs) < 0)
        return berth_error_make(err, errno, "statfs '%s'", CGROUP_MOUNT);

    if (sfs.f_type == CGROUP2_SUPER_MAGIC) {
        _cleanup_free_ char *mnt = NULL, *mroot = NULL, *own = NULL;
        if ((r = find_mount(NULL, &mnt, &mroot, err)) < 0 || (r = own_cgroup(NULL, &own, err)) < 0)
            return r;
        _cleanup_free_ char *dir = hierarchy_dir(mnt, mroot, own);
        l->v2 = true;
        l->ctrl[0].name = xstrdup("unified");
        l->ctrl[0].root = xasprintf("%s/%s", dir, BERTH_CGROUP);
        l->n = 1;
    } else if (sfs.f_type == TMPFS_MAGIC) {
        for (size_t i = 0; i < N_CONTROLLERS; i++) {
            const char *name = controllers[i].name;
            _cleanup_free_ char *mnt = NULL, *mroot = NULL, *own = NULL;
            _cleanup_error_ struct berth_error *e = NULL;

            r = find_mount(name, &mnt, &mroot, &e);
            if (r == 0)
                r = own_cgroup(name, &own, &e);
            if (r < 0) {
                if (!controllers[i].required)
                    continue;
                if (!err)
                    return r;
                *err = TAKE_PTR(e);
                return WRAP(r, err, "cgroup v1 controller '%s'", name);
            }
            _cleanup_free_ char *dir = hierarchy_dir(mnt, mroot, own);
            _cleanup_free_ char *root = xasprintf("%s/%s", dir, BERTH_CGROUP);
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

static const struct cgroup_ctrl *find_ctrl(const struct cgroup_layout *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v2 || has_word(l->ctrl[i].name, name, ','))
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
static int enable_controllers(const char *dir, struct berth_error **err)
{
    _cleanup_free_ char *cpath = xasprintf("%s/cgroup.controllers", dir);
    _cleanup_free_ char *spath = xasprintf("%s/cgroup.subtree_control", dir);
    _cleanup_strbuf_ struct strbuf avail = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf on = STRBUF_INIT;
    int r;

    if ((r = read_str(cpath, &avail, err)) < 0 || (r = read_str(spath, &on, err)) < 0)
        return r;
    for (size_t i = 0; i < N_CONTROLLERS; i++) {
        const char *c = controllers[i].name;
        if (has_word(on.buf, c, ' '))
            continue;
        if (!has_word(avail.buf, c, ' ')) {
            if (!controllers[i].required)
                continue;
            return berth_error_plain(err, EOPNOTSUPP, "controller '%s' is not available in '%s'; "
                                     "delegate it to this cgroup (systemd Delegate=yes), then "
                                     "run 'berth setup'", c, dir);
        }
        _cleanup_free_ char *v = xasprintf("+%s", c);
        r = write_str(spath, v, err);
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
    if (chown(path, uid, gid) < 0)
        return berth_error_make(err, errno, "chown '%s' to %u:%u", path, (unsigned)uid,
                                (unsigned)gid);
    return 0;
}

int runner_cgroup_delegate(uid_t uid, gid_t gid, struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    /*
     * Only the directory and the files a delegatee needs to create children
     * and place processes (the kernel's own list in /sys/kernel/cgroup/delegate
     * for v2). The knobs of `berth` itself stay root's: they are the
     * operator's limit on berth as a whole.
     */
    static const char *const v1_files[] = { "cgroup.procs", "tasks" };
    static const char *const v2_files[] = { "cgroup.procs", "cgroup.subtree_control", "cgroup.threads" };
    int r;

    if ((r = layout_find(&l, err)) < 0)
        return WRAP(r, err, "finding this process's cgroups");

    for (size_t i = 0; i < l->n; i++) {
        const char *root = l->ctrl[i].root;
        if (l->v2) {
            _cleanup_free_ char *parent = xstrndup(root, (size_t)(strrchr(root, '/') - root));
            if ((r = enable_controllers(parent, err)) < 0)
                return r;
        }
        if (mkdir(root, 0755) < 0 && errno != EEXIST)
            return berth_error_make(err, errno, "mkdir '%s'", root);
        struct stat st;
        if (lstat(root, &st) < 0)
            return berth_error_make(err, errno, "stat '%s'", root);
        if (!S_ISDIR(st.st_mode))
            return berth_error_plain(err, ENOTDIR, "'%s' exists and is not a cgroup", root);
        if ((r = chown_path(root, uid, gid, err)) < 0)
            return r;
        const char *const *files = l->v2 ? v2_files : v1_files;
        size_t nf = l->v2 ? sizeof(v2_files) / sizeof(v2_files[0]) : sizeof(v1_files) / sizeof(v1_files[0]);
        for (size_t j = 0; j < nf; j++) {
            _cleanup_free_ char *p = xasprintf("%s/%s", root, files[j]);
            if ((r = chown_path(p, uid, gid, err)) < 0)
                return r;
        }
        if (l->v2 && (r = enable_controllers(root, err)) < 0)
            return r;
    }
    return 0;
}

/* Fails with a message naming `berth setup` unless `root` exists and is ours to write. */
static int check_delegated(const char *root, struct berth_error **err)
{
    _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", root);
    struct stat st;

    if (stat(root, &st) < 0) {
        if (errno == ENOENT)
            return berth_error_plain(err, ENOENT, "cgroup '%s' does not exist; run "
                                     "'berth setup' as root to delegate it", root);
        return berth_error_make(err, errno, "stat '%s'", root);
    }
    /* AT_EACCESS: the effective ids are what the kernel checks on mkdir and write. */
    if (faccessat(AT_FDCWD, root, W_OK, AT_EACCESS) < 0 ||
        faccessat(AT_FDCWD, procs, W_OK, AT_EACCESS) < 0)
        return berth_error_make(err, errno, "cgroup '%s' is not writable by uid %u; run "
                                "'berth setup' as root to delegate it", root,
                                (unsigned)geteuid());
    return 0;
}

int cgroup_layout_detect(struct cgroup_layout **ret, struct berth_error **err)
{
    _cleanup_(cgroup_layout_freep) struct cgroup_layout *l = NULL;
    int r;

    if ((r = layout_find(&l, err)) < 0)
        return WRAP(r, err, "finding berth's cgroups");
    for (size_t i = 0; i < l->n; i++)
        if ((r = check_delegated(l->ctrl[i].root, err)) < 0)
            return r;
    *ret = TAKE_PTR(l);
    return 0;
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
                                    "'berth setup' as root to delegate it", l->ctrl[i].root);
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
        if ((r = read_str(ctl, &on, err)) < 0)
            return r;
        for (size_t i = 0; i < N_CONTROLLERS; i++)
            if (controllers[i].required && !has_word(on.buf, controllers[i].name, ' '))
                return berth_error_plain(err, EOPNOTSUPP, "controller '%s' is not enabled in "
                                         "'%s'; run 'berth setup'", controllers[i].name, ctl);
    }
    return 0;
}

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
    if ((r = read_str(p, &v, err)) < 0)
        return r;
    if (strcmp(v.buf, "1") == 0)
        return 0;
    return write_str(p, "1", err);
}

static int write_limit(const char *dir, const char *file, uint64_t value, struct berth_error **err)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
    char buf[32];
    (void)snprintf(buf, sizeof(buf), "%" PRIu64, value);
    return write_str(p, buf, err);
}

/*
 * v1 keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at all
 * times and refuses (EINVAL) a write that would break it, so lowering goes
 * memory first, raising goes memsw first. memsw exists only with swap
 * accounting; without it there is no swap limit to set.
 */
static int set_memory_v1(const char *dir, uint64_t bytes, struct berth_error **err)
{
    bool memsw = file_exists(dir, "memory.memsw.limit_in_bytes");
    _cleanup_error_ struct berth_error *first = NULL;
    int r;

    r = write_limit(dir, "memory.limit_in_bytes", bytes, &first);
    if (r == -EINVAL && memsw) {
        if ((r = write_limit(dir, "memory.memsw.limit_in_bytes", bytes, err)) < 0)
            return r;
        r = write_limit(dir, "memory.limit_in_bytes", bytes, err);
    } else if (r < 0 && err) {
        *err = TAKE_PTR(first);
    }
    if (r < 0)
        return r;
    return memsw ? write_limit(dir, "memory.memsw.limit_in_bytes", bytes, err) : 0;
}

static int set_limits(const struct cgroup_layout *l, const char *relpath,
                      const struct runner_limits *limits, struct berth_error **err)
{
    const struct cgroup_ctrl *mem = find_ctrl(l, "memory");
    const struct cgroup_ctrl *pids = find_ctrl(l, "pids");
    int r;

    if (l->v2) {
        _cleanup_free_ char *dir = xasprintf("%s/%s", mem->root, relpath);
        if (limits && limits->memory_bytes) {
            if ((r = write_limit(dir, "memory.max", limits->memory_bytes, err)) < 0)
                return r;
            /* no swapping past the limit; the file exists only with swap accounting */
            if (file_exists(dir, "memory.swap.max") &&
                (r = write_limit(dir, "memory.swap.max", 0, err)) < 0)
                return r;
        }
        /* an OOM kills the whole container, not one random process in it */
        if (file_exists(dir, "memory.oom.group")) {
            _cleanup_free_ char *p = xasprintf("%s/memory.oom.group", dir);
            if ((r = write_str(p, "1", err)) < 0)
                return r;
        }
        if (limits && limits->pids_max && (r = write_limit(dir, "pids.max", limits->pids_max, err)) < 0)
            return r;
        return 0;
    }

    if (limits && limits->memory_bytes) {
        if (!mem)
            return berth_error_plain(err, EOPNOTSUPP, "no memory cgroup to enforce a memory limit");
        _cleanup_free_ char *dir = xasprintf("%s/%s", mem->root, relpath);
        if ((r = set_memory_v1(dir, limits->memory_bytes, err)) < 0)
            return r;
    }
    if (limits && limits->pids_max) {
        if (!pids)
            return berth_error_plain(err, EOPNOTSUPP, "no pids cgroup to enforce a process limit");
        _cleanup_free_ char *dir = xasprintf("%s/%s", pids->root, relpath);
        if ((r = write_limit(dir, "pids.max", limits->pids_max, err)) < 0)
            return r;
    }
    return 0;
}

int cgroup_create(const struct cgroup_layout *l, const char *relpath, const struct runner_limits *limits,
                  struct berth_error **err)
{
    int r;

    if ((r = validate_relpath(relpath, err)) < 0)
        return r;

    for (size_t i = 0; i < l->n; i++) {
        const char *root = l->ctrl[i].root;
        bool memory = !l->v2 && has_word(l->ctrl[i].name, "memory", ',');
        _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;

        strbuf_addstr(&path, root);
        for (const char *p = relpath;;) {
            /* v2: the parent of every cgroup we make must hand its controllers down */
            if (l->v2 && (r = enable_controllers(path.buf, err)) < 0)
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
                break;
            p = e + 1;
        }
    }
    if ((r = set_limits(l, relpath, limits, err)) < 0)
        return WRAP(r, err, "setting limits of cgroup '%s'", relpath);
    return 0;
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
        if ((r = write_str(p, buf, err)) < 0)
            return WRAP(r, err, "moving pid %ld into cgroup '%s'", (long)pid, relpath);
    }
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

/* SIGKILLs the processes of `dir` and of every cgroup below it; *count says how many were listed. */
static int kill_tree(const char *dir, int depth, size_t *count, struct berth_error **err)
{
    _cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", dir);
    _cleanup_strbuf_ struct strbuf buf = STRBUF_INIT;
    _cleanup_error_ struct berth_error *e = NULL;
    int r = read_file(procs, &buf, MAX_PROCFILE, &e);

    if (r == -ENOENT)
        return 0;   /* removed under us */
    if (r < 0) {
        if (err)
            *err = TAKE_PTR(e);
        return r;
    }
    for (char *p = buf.buf, *end; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 0 && pid <= INT_MAX) {
            (*count)++;
            if (kill((pid_t)pid, SIGKILL) < 0 && errno != ESRCH)
                return berth_error_make(err, errno, "kill %ld in '%s'", pid, dir);
        }
    }

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
        if (access(p, F_OK) == 0 && (r = write_str(p, "1", err)) < 0)
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

/* Removes `dir` and the cgroups below it, deepest first. */
static int remove_tree(const char *dir, int depth, struct berth_error **err)
{
    int r;

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
