/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/setup: the one-time root step (ARCHITECTURE.md, Tenants and
 * isolation), its undoing (`--remove`), the systemd unit (`--systemd`) and
 * the privilege drop of a `berth serve` started as root, which never walks
 * or writes inside the berth user's home as root.
 * useradd/usermod from Debian's passwd package do the user and id-range
 * work, so /etc/passwd, /etc/subuid and /etc/subgid are edited by the tools
 * that own them, with their locking.
 */
#include "control/serve.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "control/model.h"
#include "control/subid.h"
#include "runner/runner.h"

/* Runs argv (a program from the host), waits, and fails unless it exits 0. */
static int run_tool(const char *const *argv, struct berth_error **err)
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return berth_error_make(err, errno, "fork");
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return berth_error_plain(err, EIO, "'%s' failed (status %d)", argv[0],
                                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}

static int ensure_subids(const char *user, uid_t uid, struct berth_error **err)
{
    unsigned long have_u = subid_count_slices(SUBUID_FILE, user, uid, TENANT_ID_SLICE);
    unsigned long have_g = subid_count_slices(SUBGID_FILE, user, uid, TENANT_ID_SLICE);
    unsigned long need, start, end;
    _cleanup_free_ char *range = NULL;

    if (have_u >= SETUP_MIN_SLICES && have_g >= SETUP_MIN_SLICES)
        return 0;
    need = SETUP_MIN_SLICES * TENANT_ID_SLICE;
    /* One fresh range above everything either file hands out, the same for uids and gids. */
    start = subid_first_free(SUBUID_FILE, 100000);
    if (subid_first_free(SUBGID_FILE, 100000) > start)
        start = subid_first_free(SUBGID_FILE, 100000);
    end = start + need - 1;
    if (end > 0xfffffffeUL)
        return berth_error_plain(err, ERANGE, "no room for %lu subordinate ids", need);
    range = xasprintf("%lu-%lu", start, end);
    {
        const char *argv[] = { "usermod", "--add-subuids", range, "--add-subgids", range, user, NULL };

        return run_tool(argv, err);
    }
}

int setup_host(const char *user, uid_t *ret_uid, gid_t *ret_gid, char **ret_home, struct berth_error **err)
{
    struct passwd *pw;
    struct stat st;
    int r;

    if (geteuid() != 0)
        return berth_error_plain(err, EPERM, "berth setup must run as root (it creates the user, "
                                 "its subordinate ids and cgroups once)");
    pw = getpwnam(user);
    if (!pw) {
        const char *argv[] = { "useradd", "--create-home", "--user-group", "--shell", "/bin/bash",
                               "--comment", "berth PaaS", user, NULL };

        r = run_tool(argv, err);
        if (r < 0)
            return berth_error_wrap(err, "creating user '%s'", user);
        pw = getpwnam(user);
        if (!pw)
            return berth_error_plain(err, ENOENT, "user '%s' missing after useradd", user);
    }
    if (pw->pw_uid == 0)
        return berth_error_plain(err, EINVAL, "berth must not run as root: choose another --user");
    r = ensure_subids(user, pw->pw_uid, err);
    if (r < 0)
        return berth_error_wrap(err, "giving '%s' subordinate ids", user);
    if (stat("/usr/bin/newuidmap", &st) < 0 || !(st.st_mode & S_ISUID))
        return berth_error_plain(err, ENOENT, "'/usr/bin/newuidmap' is missing or not setuid: "
                                 "apt-get install uidmap");
    /* Builds and apps with outbound network need /dev/net/tun for pasta. */
    r = runner_network_prepare(err);
    if (r < 0)
        return berth_error_wrap(err, "preparing outbound networking");
    /* Last: under systemd on cgroup v2 the service delegates itself, and this may fail there. */
    r = runner_cgroup_delegate(pw->pw_uid, pw->pw_gid, err);
    if (r < 0)
        return berth_error_wrap(err, "delegating cgroups to '%s'", user);
    if (ret_uid)
        *ret_uid = pw->pw_uid;
    if (ret_gid)
        *ret_gid = pw->pw_gid;
    if (ret_home)
        *ret_home = xstrdup(pw->pw_dir);
    return 0;
}

int setup_drop_privileges(uid_t uid, gid_t gid, const char *user, const char *home, struct berth_error **err)
{
    if (setgroups(0, NULL) < 0)
        return berth_error_make(err, errno, "setgroups");
    if (setresgid(gid, gid, gid) < 0)
        return berth_error_make(err, errno, "setresgid %u", (unsigned)gid);
    if (setresuid(uid, uid, uid) < 0)
        return berth_error_make(err, errno, "setresuid %u", (unsigned)uid);
    /* The drop is for good: regaining root must be impossible. */
    if (setuid(0) == 0)
        return berth_error_plain(err, EPERM, "privileges could be regained after dropping them");
    /*
     * The id change left this process not dumpable, and with it every
     * child it forks that has not exec'd yet: their /proc files became
     * root's, and pasta, run as the user, could not join a container's
     * namespaces through /proc/PID/ns (every build and app with network
     * failed under a `berth serve` started as root). Holding nothing of
     * root's now, the process is the user's like any other of its own.
     */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        return berth_error_make(err, errno, "prctl(PR_SET_DUMPABLE)");
    setenv("HOME", home, 1);
    setenv("USER", user, 1);
    setenv("LOGNAME", user, 1);
    return 0;
}

int setup_serve_clear_ambient_caps(struct berth_error **err)
{
    /*
     * Ambient capabilities pass through execve: without this, git, pasta
     * and every other program the server runs would bind ports under 1024
     * too. The server's own effective set, which binds its listeners, is
     * untouched. Linux before 4.3 has no ambient set (EINVAL).
     */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return berth_error_make(err, errno, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
    return 0;
}

/* Copies one tree: directories, regular files (keeping the exec bits) and symlinks. */
static int copy_tree(const char *src, const char *dst, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = opendir(src);
    struct dirent *de;
    int r;

    if (!d)
        return berth_error_make(err, errno, "open '%s'", src);
    if (mkdir(dst, 0755) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "mkdir '%s'", dst);
    while ((de = readdir(d))) {
        _cleanup_free_ char *from = NULL, *to = NULL;
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        from = xasprintf("%s/%s", src, de->d_name);
        to = xasprintf("%s/%s", dst, de->d_name);
        if (lstat(from, &st) < 0)
            return berth_error_make(err, errno, "stat '%s'", from);
        if (S_ISDIR(st.st_mode)) {
            r = copy_tree(from, to, err);
            if (r < 0)
                return r;
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlink(from, target, sizeof(target) - 1);

            if (n < 0)
                return berth_error_make(err, errno, "readlink '%s'", from);
            target[n] = '\0';
            if (symlink(target, to) < 0)
                return berth_error_make(err, errno, "symlink '%s'", to);
        } else if (S_ISREG(st.st_mode)) {
            _cleanup_strbuf_ struct strbuf data = STRBUF_INIT;

            r = read_file(from, &data, 64u << 20, err);
            if (r < 0)
                return r;
            r = write_file_atomic(to, data.buf, data.len, (st.st_mode & 0111) ? 0755 : 0644, err);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int serve_install_buildpacks(const char *src, const char *dst, struct berth_error **err)
{
    _cleanup_free_ char *tmp = xasprintf("%s.new", dst);
    _cleanup_free_ char *old = xasprintf("%s.old", dst);
    int r;

    _cleanup_closedir_ DIR *d = opendir(src);
    struct dirent *de;
    unsigned found = 0;

    if (!d)
        return berth_error_make(err, errno, "open buildpacks '%s'", src);
    (void)rm_rf(tmp, NULL);
    (void)rm_rf(old, NULL);
    if (mkdir(tmp, 0755) < 0)
        return berth_error_make(err, errno, "mkdir '%s'", tmp);
    /* A buildpack is a directory with bin/detect; the driver's C sources stay behind. */
    while ((de = readdir(d))) {
        _cleanup_free_ char *detect = xasprintf("%s/%s/bin/detect", src, de->d_name);
        _cleanup_free_ char *from = NULL, *to = NULL;

        if (de->d_name[0] == '.' || access(detect, X_OK) < 0)
            continue;
        from = xasprintf("%s/%s", src, de->d_name);
        to = xasprintf("%s/%s", tmp, de->d_name);
        r = copy_tree(from, to, err);
        if (r < 0)
            return berth_error_wrap(err, "installing the buildpacks from '%s'", src);
        found++;
    }
    if (!found)
        return berth_error_plain(err, ENOENT, "no buildpacks (directories with bin/detect) in '%s'", src);
    /* Swap in the new copy whole, so a build never sees half of one. */
    if (rename(dst, old) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "rename '%s'", dst);
    if (rename(tmp, dst) < 0)
        return berth_error_make(err, errno, "rename '%s'", tmp);
    (void)rm_rf(old, NULL);
    return 0;
}

/* ------------------------------------------------------------------------
 * the home of a `berth serve` started as root (ARCHITECTURE.md, root-run
 * safety): root never walks or writes inside a directory the berth user
 * owns. It makes an explicit --home that is missing, stages the buildpacks
 * in a directory of its own, and the rest happens after the drop.
 */

int setup_check_home(const char *home, struct berth_error **err)
{
    struct stat st;

    if (lstat(home, &st) < 0)
        return errno == ENOENT ? 0 : berth_error_make(err, errno, "stat '%s'", home);
    if (!S_ISDIR(st.st_mode))
        return berth_error_plain(err, ENOTDIR, "the home '%s' is not a directory%s", home,
                                 S_ISLNK(st.st_mode) ? " (a symlink)" : "");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return berth_error_plain(err, EPERM, "the home '%s' is writable by %s (mode %03o): another user "
                                 "could replace berth's records and keys; run 'chmod go-w %s' or "
                                 "choose another --home", home, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
                                 (unsigned)(st.st_mode & 0777), home);
    return 0;
}

/*
 * Refuses to let root make or hand over `path`, an entry of the directory
 * dfd, unless dfd is root's or the berth user's: another user could swap
 * the entry for one of its own choosing.
 */
static int check_root_may_act(int dfd, const char *path, uid_t uid, struct berth_error **err)
{
    struct stat st;

    if (fstat(dfd, &st) < 0)
        return berth_error_make(err, errno, "stat the directory of '%s'", path);
    if (st.st_uid != 0 && st.st_uid != uid)
        return berth_error_plain(err, EPERM, "'%s' is in a directory of uid %u, neither root's nor the berth "
                                 "user's (uid %u): root makes and hands over nothing there", path,
                                 (unsigned)st.st_uid, (unsigned)uid);
    return 0;
}

/* Whether path has a ".." component. */
static bool has_dotdot(const char *path)
{
    for (const char *c = path; (c = strstr(c, "..")); c += 2)
        if ((c == path || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
            return true;
    return false;
}

/*
 * The one kind of symlink root follows on the way to --home: root's own,
 * in a directory of root's that no one else may write (Debian's /var/run
 * -> /run), which no other user can have planted or swapped. Sets *ret to
 * its target (malloc'ed), or to NULL for any other link, which the caller
 * refuses. A target through ".." is refused: it is walked from the link's
 * directory like the rest, and where ".." leads is not the link's to say.
 */
static int root_link_target(int dfd, const char *name, const char *path, char **ret, struct berth_error **err)
{
    struct stat dir, link;
    char target[PATH_MAX];
    ssize_t n;

    *ret = NULL;
    if (fstat(dfd, &dir) < 0 || fstatat(dfd, name, &link, AT_SYMLINK_NOFOLLOW) < 0)
        return berth_error_make(err, errno, "stat '%s'", path);
    if (!S_ISLNK(link.st_mode) || link.st_uid != 0 || dir.st_uid != 0 || (dir.st_mode & (S_IWGRP | S_IWOTH)))
        return 0;
    n = readlinkat(dfd, name, target, sizeof(target));
    if (n < 0)
        return berth_error_make(err, errno, "read the symlink '%s'", path);
    if ((size_t)n >= sizeof(target))
        return berth_error_plain(err, ENAMETOOLONG, "the symlink '%s' is too long", path);
    target[n] = '\0';
    if (has_dotdot(target))
        return berth_error_plain(err, EINVAL, "the symlink '%s' leads through '..' ('%s'): give the path it "
                                 "leads to", path, target);
    *ret = xstrdup(target);
    return 0;
}

/*
 * Opens the directory `name` in dfd (path: up to and with it, for the
 * messages) without following a symlink; when it is missing, makes it with
 * `mode` first (after check_root_may_act()). *ret_made says which. A
 * symlink root may follow (root_link_target()) is not opened: -ELOOP with
 * its target in *ret_link and no error set; any other is refused.
 */
static int open_or_make_dir(int dfd, const char *name, const char *path, mode_t mode, uid_t uid, bool *ret_made,
                            char **ret_link, struct berth_error **err)
{
    int fd, r;
    struct stat st;

    *ret_made = false;
    *ret_link = NULL;
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if ((r = check_root_may_act(dfd, path, uid, err)) < 0)
            return r;
        if (mkdirat(dfd, name, mode) == 0)
            *ret_made = true;
        else if (errno != EEXIST)
            return berth_error_make(err, errno, "mkdir '%s'", path);
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd >= 0)
        return fd;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
        return berth_error_make(err, errno, "open '%s'", path);
    if ((r = root_link_target(dfd, name, path, ret_link, err)) < 0)
        return r;
    if (*ret_link)
        return -ELOOP;
    return berth_error_plain(err, ELOOP, "'%s' is a symlink: root follows none on the way to --home but "
                             "root's own in root's directories (give the path it leads to, if it is yours)",
                             path);
}

/* The walk of walk_home(), as it goes: what is left, where it is, and how it got there. */
struct home_walk {
    char *todo;             /* what is left to walk (malloc'ed): the rest of the path, link targets spliced in */
    struct strbuf done;     /* the directories walked so far, links resolved: the messages name it */
    int dfd, pfd;           /* the last directory opened, and its parent (-1: none yet) */
    unsigned links;
};

#define HOME_WALK_MAX_LINKS 40

/* Splices a followed link's target into the walk, in place of the link (done's last component). */
static int walk_follow(struct home_walk *w, char *target, const char *rest, struct berth_error **err)
{
    char *slash, *todo;

    if (++w->links > HOME_WALK_MAX_LINKS)
        return berth_error_plain(err, ELOOP, "more than %d symlinks on the way", HOME_WALK_MAX_LINKS);
    todo = xasprintf("%s/%s", target, rest);
    free(w->todo);
    w->todo = todo;
    if (target[0] == '/') {
        closep(&w->dfd);
        closep(&w->pfd);
        if ((w->dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
            return berth_error_make(err, errno, "open '/'");
        strbuf_setlen(&w->done, 0);
    } else {
        slash = strrchr(w->done.buf, '/');
        strbuf_setlen(&w->done, slash ? (size_t)(slash - w->done.buf) : 0);
    }
    return 0;
}

/*
 * The walk of setup_root_home(): opens each component of path from / (or
 * the working directory) without following a symlink other than root's own
 * in root's directories, making the missing ones (0755, the last 0700).
 * Sets *ret_fd to the last one, *ret_parent to its parent and *ret_made
 * when it was made here.
 */
static int walk_home(const char *path, uid_t uid, int *ret_fd, int *ret_parent, bool *ret_made,
                     struct berth_error **err)
{
    struct home_walk w = { .todo = xstrdup(path), .done = STRBUF_INIT, .dfd = -1, .pfd = -1 };
    bool absolute = path[0] == '/';
    char *p = w.todo;
    int r = 0;

    /* Before anything is made. */
    if (has_dotdot(path))
        r = berth_error_plain(err, EINVAL, "a '..' in it: give the path without");
    else if ((w.dfd = open(absolute ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        r = berth_error_make(err, errno, "open '%s'", absolute ? "/" : ".");
    while (r == 0) {
        _cleanup_free_ char *target = NULL;
        char *name;
        int fd;

        p += strspn(p, "/");
        if (!*p)
            break;
        name = p;
        p += strcspn(p, "/");
        if (*p)
            *p++ = '\0';
        if (!strcmp(name, "."))
            continue;
        if (w.done.len || absolute)
            strbuf_addch(&w.done, '/');
        strbuf_addstr(&w.done, name);
        fd = open_or_make_dir(w.dfd, name, w.done.buf, p[strspn(p, "/")] ? 0755 : 0700, uid, ret_made, &target,
                              err);
        if (fd == -ELOOP && target) {
            absolute = absolute || target[0] == '/';
            if ((r = walk_follow(&w, target, p, err)) == 0)
                p = w.todo;
        } else if (fd < 0) {
            r = fd;
        } else {
            closep(&w.pfd);
            w.pfd = w.dfd;
            w.dfd = fd;
        }
    }
    if (r == 0 && w.pfd < 0)
        r = berth_error_plain(err, EINVAL, "it names no directory to make");
    if (r == 0) {
        *ret_fd = TAKE_FD(w.dfd);
        *ret_parent = TAKE_FD(w.pfd);
    }
    closep(&w.dfd);
    closep(&w.pfd);
    free(w.todo);
    strbuf_release(&w.done);
    return r;
}

int setup_root_home(const char *home, uid_t uid, gid_t gid, struct berth_error **err)
{
    _cleanup_free_ char *path = xstrdup(home);
    _cleanup_close_ int fd = -1, parent = -1;
    size_t len = strlen(path);
    bool made = false;
    struct stat st;
    int r;

    if ((r = setup_check_home(home, err)) < 0)
        return r;
    while (len > 1 && (path[len - 1] == '/' || (len > 2 && path[len - 1] == '.' && path[len - 2] == '/')))
        path[--len] = '\0';
    /*
     * Never by path: a symlink the berth user swapped in for a directory
     * of its own on the way (to /etc, say) would lead root's mkdir and
     * chown there. The walk refuses it instead.
     */
    if ((r = walk_home(path, uid, &fd, &parent, &made, err)) < 0)
        return berth_error_wrap(err, "refusing the home '%s'", home);
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "stat '%s'", home);
    if (st.st_uid == uid)
        return 0;
    /* Only a directory root made (here, or an operator's mkdir) is handed over; never another user's. */
    if (st.st_uid != 0)
        return berth_error_plain(err, EPERM, "the home '%s' belongs to uid %u, not to the berth user "
                                 "(uid %u)", home, (unsigned)st.st_uid, (unsigned)uid);
    if (!made && (r = check_root_may_act(parent, home, uid, err)) < 0)
        return berth_error_wrap(err, "refusing the home '%s'", home);
    if (fchown(fd, uid, gid) < 0)
        return berth_error_make(err, errno, "chown '%s'", home);
    return 0;
}

static uid_t stage_uid;
static gid_t stage_gid;

static int chown_staged(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return lchown(path, stage_uid, stage_gid) < 0 ? -1 : 0;
}

int setup_stage_buildpacks(const char *src, uid_t uid, gid_t gid, char **ret_dir, struct berth_error **err)
{
    _cleanup_free_ char *dir = xstrdup("/tmp/berth-buildpacks-XXXXXX");
    _cleanup_free_ char *dst = NULL;
    int r;

    if (!mkdtemp(dir))
        return berth_error_make(err, errno, "mkdtemp '%s'", dir);
    dst = xasprintf("%s/buildpacks", dir);
    if ((r = serve_install_buildpacks(src, dst, err)) < 0) {
        (void)rm_rf(dir, NULL);
        return r;
    }
    /*
     * Depth first: a directory changes hands only after everything in it,
     * so the user can never rename an entry the walk is still to reach.
     */
    stage_uid = uid;
    stage_gid = gid;
    if (nftw(dir, chown_staged, 16, FTW_PHYS | FTW_DEPTH) < 0) {
        r = berth_error_make(err, errno, "chown '%s'", dir);
        (void)rm_rf(dir, NULL);
        return r;
    }
    *ret_dir = TAKE_PTR(dir);
    return 0;
}

/* ------------------------------------------------------------------------
 * `berth setup --remove`: undoing the above for one user
 */

/* usermod --del-sub{u,g}ids for each range of setup's size the user has in file. */
static int remove_ranges(const char *file, const char *flag, const char *user, uid_t uid,
                         struct berth_error **err)
{
    unsigned long need = SETUP_MIN_SLICES * TENANT_ID_SLICE;
    _cleanup_free_ unsigned long *starts = NULL;
    size_t n = subid_ranges_sized(file, user, uid, need, &starts);

    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *range = xasprintf("%lu-%lu", starts[i], starts[i] + need - 1);
        const char *argv[] = { "usermod", flag, range, user, NULL };
        int r = run_tool(argv, err);

        if (r < 0)
            return berth_error_wrap(err, "removing the subordinate ids %s of '%s'", range, user);
    }
    return 0;
}

int setup_remove(const char *user, bool purge, struct berth_error **err)
{
    struct passwd *pw;
    uid_t uid;
    int r;

    if (geteuid() != 0)
        return berth_error_plain(err, EPERM, "berth setup --remove must run as root");
    pw = getpwnam(user);
    if (!pw)
        return berth_error_plain(err, ENOENT, "no user '%s'", user);
    if (pw->pw_uid == 0)
        return berth_error_plain(err, EINVAL, "refusing to remove root");
    uid = pw->pw_uid;
    r = runner_cgroup_undelegate(uid, err);
    if (r < 0)
        return berth_error_wrap(err, "removing the cgroups of '%s'", user);
    if ((r = remove_ranges(SUBUID_FILE, "--del-subuids", user, uid, err)) < 0 ||
        (r = remove_ranges(SUBGID_FILE, "--del-subgids", user, uid, err)) < 0)
        return r;
    if (purge) {
        /* userdel takes the user's remaining id ranges, its group and its home with it. */
        const char *argv[] = { "userdel", "--remove", user, NULL };

        if ((r = run_tool(argv, err)) < 0)
            return berth_error_wrap(err, "deleting user '%s'", user);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * `berth setup --systemd`: the unit
 */

char *setup_unit_text(const char *user, const char *berth)
{
    return xasprintf(
        "# Written by `berth setup --systemd --user %s`.\n"
        "[Unit]\n"
        "Description=berth PaaS (git push to deploy, as user %s)\n"
        "Documentation=man:systemd.service(5)\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        "User=%s\n"
        "# berth serve flags (--http, --control, --domain, ...), optional\n"
        "EnvironmentFile=-/etc/default/berth\n"
        "# As root (+) at each start: subordinate ids, /dev/net/tun, and on cgroup v1\n"
        "# berth's cgroups. On v2 berth serve makes them itself in the cgroup that\n"
        "# Delegate= hands it, and this step's cgroup part may fail there (-).\n"
        "ExecStartPre=-+%s setup --user %s\n"
        "ExecStart=%s serve $BERTH_SERVE_ARGS\n"
        "# Ports under 1024 (--http 0.0.0.0:80): berth serve keeps this for its\n"
        "# listeners and clears it from the ambient set, so no program it starts gets it.\n"
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\n"
        "Delegate=yes\n"
        "Restart=on-failure\n"
        "RestartSec=2s\n"
        "KillMode=mixed\n"
        "TimeoutStopSec=30s\n"
        "StandardOutput=journal\n"
        "StandardError=journal\n"
        "SyslogIdentifier=berth\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n",
        user, user, user, berth, user, berth);
}

int setup_systemd(const char *user, const char *unit_dir, struct berth_error **err)
{
    _cleanup_free_ char *berth = realpath("/proc/self/exe", NULL);
    _cleanup_free_ char *unit = NULL, *path = NULL;

    if (!berth)
        return berth_error_make(err, errno, "find berth's own path");
    path = xasprintf("%s/berth.service", unit_dir);
    unit = setup_unit_text(user, berth);
    return write_file_atomic(path, unit, strlen(unit), 0644, err);
}

/* ------------------------------------------------------------------------
 * `berth serve` started as root
 */

int setup_serve_as_root(const char *user, const char *home, const char *buildpacks_src, char **ret_staging,
                        struct berth_error **err)
{
    _cleanup_free_ char *user_home = NULL, *staging = NULL;
    uid_t uid;
    gid_t gid;
    int r;

    if ((r = setup_host(user, &uid, &gid, &user_home, err)) < 0)
        return r;
    /* The default home is inside the user's own: the user makes it, after the drop. */
    if (home && (r = setup_root_home(home, uid, gid, err)) < 0)
        return r;
    /* The source tree may not be readable by the berth user: root copies it out first. */
    if ((r = setup_stage_buildpacks(buildpacks_src, uid, gid, &staging, err)) < 0)
        return r;
    if ((r = setup_drop_privileges(uid, gid, user, user_home, err)) < 0) {
        (void)rm_rf(staging, NULL);
        return r;
    }
    *ret_staging = TAKE_PTR(staging);
    return 0;
}

int setup_serve_home(const char *home, const char *staging, struct berth_error **err)
{
    _cleanup_free_ char *from = NULL, *to = NULL;
    int r;

    if ((r = setup_check_home(home, err)) < 0 || (r = mkdir_p(home, 0700, err)) < 0 ||
        (r = setup_check_home(home, err)) < 0)
        goto out;
    if (staging) {
        from = xasprintf("%s/buildpacks", staging);
        to = xasprintf("%s/buildpacks", home);
        r = serve_install_buildpacks(from, to, err);
    }
out:
    /* The staged copy is the user's now, in /tmp: it goes whatever happened. */
    if (staging)
        (void)rm_rf(staging, NULL);
    return r;
}
