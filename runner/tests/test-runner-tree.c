/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tree part of the runner integration test (see test-runner.c):
 * runner_seal_tree, runner_tree_usage and runner_remove_tree on trees a
 * container wrote, with owners berth's uid cannot act for. A container runs
 * this test program itself (`--tree-helper`, bound at /t/helper) to write a
 * tree with a user.* attribute, ACLs, setuid and setgid bits, a 0700
 * directory, a FIFO and a symlink to a host file; after the seal, berth's own
 * uid reads all of it and no attribute or set-id bit is left. A seal with
 * another tenant's mapping, and one of a tree holding a device node, fail
 * naming the entry. Usage counts a 5 MiB file with a second hard link, in a
 * 0700 directory, once. A job's then_remove trees go in the same worker,
 * whether the job failed or not. The spawner keeps one user namespace per
 * mapping for its workers, each serving its own mapping only. And a
 * removal of 100k names does not hold up a spawn.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/tests/harness.h"
#include "common/banned.h"

/* ------------------------------------------------------------------------
 * in the container
 */

/* A POSIX ACL in the kernel's xattr form: user::rwx user:1000:rwx group::r-x mask::rwx other::--- */
static size_t acl_blob(unsigned char *buf)
{
    static const struct { uint16_t tag, perm; uint32_t id; } entries[] = {
        { 0x01, 7, UINT32_MAX }, { 0x02, 7, 1000 }, { 0x04, 5, UINT32_MAX },
        { 0x10, 7, UINT32_MAX }, { 0x20, 0, UINT32_MAX },
    };
    uint32_t version = htole32(2);
    size_t n = sizeof(version);

    memcpy(buf, &version, sizeof(version));
    for (size_t i = 0; i < sizeof(entries) / sizeof(*entries); i++) {
        uint16_t tag = htole16(entries[i].tag), perm = htole16(entries[i].perm);
        uint32_t id = htole32(entries[i].id);

        memcpy(buf + n, &tag, 2);
        memcpy(buf + n + 2, &perm, 2);
        memcpy(buf + n + 4, &id, 4);
        n += 8;
    }
    return n;
}

static int write_mode(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd < 0 || write(fd, "data\n", 5) != 5 || fchmod(fd, mode) < 0)
        return -1;
    return close(fd);
}

#define STEP(call, what) do { \
        if ((call) < 0) { \
            fprintf(stderr, "tree-helper: %s: %s\n", (what), strerror(errno)); \
            return 1; \
        } \
    } while (0)

/* Runs as uid 1000 in a container, with `dir` a writable bind of a berth-made 0777 directory. */
int tree_helper(const char *dir)
{
    unsigned char acl[64];
    size_t acl_len = acl_blob(acl);

    if (chdir(dir) < 0)
        return 1;
    if (!strcmp(dir, "/dev-node"))
        /* a whiteout (char 0:0) is the one device node an unprivileged user may make */
        return mknod("whiteout", S_IFCHR | 0644, makedev(0, 0)) < 0 ? 2 : 0;
    STEP(mkdir("secret", 0700), "mkdir secret");
    STEP(write_mode("secret/file", 0600), "secret/file");
    STEP(write_mode("suid", 04755), "suid");
    STEP(write_mode("noexec", 0600), "noexec");
    STEP(write_mode("exec", 0700), "exec");
    STEP(mkdir("sgid", 0700), "mkdir sgid");
    STEP(chmod("sgid", 02700), "chmod sgid");
    STEP(write_mode("xattr", 0600), "xattr");
    STEP(setxattr("xattr", "user.test", "1", 1, 0), "user.test on a file");
    STEP(setxattr("secret", "user.overlay.origin", "x", 1, 0), "user.overlay.origin on a dir");
    STEP(write_mode("acl", 0600), "acl");
    STEP(setxattr("acl", "system.posix_acl_access", acl, acl_len, 0), "access ACL");
    STEP(setxattr("sgid", "system.posix_acl_default", acl, acl_len, 0), "default ACL");
    STEP(mkfifo("fifo", 0600), "mkfifo");
    /* On the host this names <tmpdir>/canary, berth's, which a followed link would chmod. */
    STEP(symlink("../canary", "link"), "symlink");
    {
        char longname[201];

        memset(longname, 'l', 200);
        longname[200] = '\0';
        STEP(symlink("link", longname), "a symlink with a 200-byte name");
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * berth's side
 */

/* A container, as uid 1000, running `argv` with host dir `dir` bound writable at `target`. */
static void run_with_dir(struct runner *rn, const char *name, const char *dir, const char *target,
                         const char *const *argv, struct run *r)
{
    _cleanup_free_ char *state = new_state(name);
    const char *lowers[] = { lower_dir, NULL };
    struct runner_mount m[2] = {
        { .source = dir, .target = target, .writable = true },
        { .source = self_exe, .target = "/t/helper" },
    };
    struct runner_spec spec = base_spec(state, argv, lowers);

    spec.mounts = m;
    spec.n_mounts = 2;
    run_sh_spec(rn, &spec, r);
}

/* A berth-owned mode 0777 directory, as the build makes /app. */
static char *open_dir(const char *name)
{
    char *p = xasprintf("%s/%s", tmpdir, name);

    if (mkdir(p, 0777) < 0 || chmod(p, 0777) < 0)
        fprintf(stderr, "# mkdir %s: %s\n", p, strerror(errno));
    return p;
}

/* After a seal: what berth's own uid finds wrong below `dir` (counts; 0 is good). */
struct seal_check {
    int unreadable, xattrs, setid, entries;
};

static void check_sealed(int dfd, const char *name, struct seal_check *c)
{
    _cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d/%s", dfd, name);
    struct stat st;
    int fd;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        c->unreadable++;
        return;
    }
    c->entries++;
    c->setid += (st.st_mode & (S_ISUID | S_ISGID)) != 0;
    c->xattrs += llistxattr(proc, NULL, 0) != 0;
    if (S_ISLNK(st.st_mode))
        return;
    fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "# berth cannot open '%s': %s\n", name, strerror(errno));
        c->unreadable++;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = fdopendir(fd);
        struct dirent *e;

        while (d && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                check_sealed(dirfd(d), e->d_name, c);
        if (d)
            (void)closedir(d);
        return;
    }
    (void)close(fd);
}

static mode_t mode_of(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
    struct stat st;

    return lstat(p, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static bool has_xattrs(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);

    return llistxattr(p, NULL, 0) > 0;
}

/* The nth (from 0) 65536-id range of berth's in `file` disjoint from [avoid, avoid + 65536). */
static bool other_range(const char *file, unsigned long avoid, int nth, unsigned long *ret)
{
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    char line[256];

    while (f && fgets(line, sizeof(line), f)) {
        unsigned long base, count;
        char user[64];

        if (sscanf(line, "%63[^:]:%lu:%lu", user, &base, &count) != 3 || strcmp(user, "berth"))
            continue;
        for (unsigned long b = base; b + 65536 <= base + count; b += 65536)
            if ((b + 65536 <= avoid || b >= avoid + 65536) && nth-- == 0) {
                *ret = b;
                return true;
            }
    }
    return false;
}

static void test_seal(struct runner *rn)
{
    _cleanup_free_ char *dir = open_dir("seal");
    _cleanup_free_ char *secret = xasprintf("%s/secret/file", dir);
    _cleanup_free_ char *canary = xasprintf("%s/canary", tmpdir);
    const char *argv[] = { "/t/helper", "--tree-helper", "/app", NULL };
    struct seal_check c = { 0 };
    struct berth_error *err = NULL;
    unsigned long other_u, other_g;
    struct run r;
    int fd, ret;

    (void)write_file_atomic(canary, "berth's\n", 8, 0600, NULL);
    run_with_dir(rn, "seal-write", dir, "/app", argv, &r);
    fd = open(secret, O_RDONLY | O_CLOEXEC);
    t_ok(exited_with(&r, 0) && fd < 0 && errno == EACCES && has_xattrs(dir, "xattr") &&
         has_xattrs(dir, "acl") && has_xattrs(dir, "sgid") && has_xattrs(dir, "secret") &&
         (mode_of(dir, "suid") & S_ISUID),
         "a container wrote the tree to seal (attributes, ACLs, set-id bits); berth cannot read "
         "into its 0700 directory");
    if (fd >= 0)
        (void)close(fd);
    run_release(&r);
    if (other_range("/etc/subuid", uid_base, 0, &other_u) && other_range("/etc/subgid", gid_base, 0, &other_g)) {
        ret = runner_seal_tree(rn, dir, NULL, NULL, other_u, other_g, 65536, NULL, &err);
        t_ok(ret == -EPERM && strstr(berth_error_msg(&err), "outside the tenant's mapping"),
             "sealing with another tenant's ids fails naming the entry: %s", berth_error_msg(&err));
        berth_error_release(&err);
    } else {
        t_skip("berth has no second range of 65536 subordinate ids");
    }
    ret = runner_seal_tree(rn, dir, NULL, NULL, uid_base, gid_base, 65536, NULL, &err);
    t_ok(ret == 0, "runner_seal_tree%s%s", ret ? ": " : "", berth_error_msg(&err));
    berth_error_release(&err);
    {
        _cleanup_close_ int top = open(tmpdir, O_PATH | O_DIRECTORY | O_CLOEXEC);

        check_sealed(top, "seal", &c);
    }
    t_ok(c.entries == 12 && c.unreadable == 0 && c.xattrs == 0 && c.setid == 0,
         "after the seal berth reads all %d entries, none keeps an attribute (ACLs, user.*) or a "
         "set-id bit (%d unreadable, %d with attributes, %d set-id)", c.entries, c.unreadable,
         c.xattrs, c.setid);
    t_ok(mode_of(dir, "noexec") == 0644 && mode_of(dir, "exec") == 0755 &&
         mode_of(dir, "suid") == 0755 && mode_of(dir, "secret") == 0755 &&
         mode_of(dir, "sgid") == 0755 && mode_of(dir, "fifo") == 0644 &&
         mode_of(dir, "secret/file") == 0644 && mode_of(tmpdir, "canary") == 0600,
         "modes become a+r, a+x for directories and executables; the symlink was not followed");
}

static void test_seal_device(struct runner *rn)
{
    _cleanup_free_ char *dir = open_dir("seal-dev");
    const char *argv[] = { "/t/helper", "--tree-helper", "/dev-node", NULL };
    struct berth_error *err = NULL;
    struct run r;
    int ret;

    run_with_dir(rn, "seal-dev", dir, "/dev-node", argv, &r);
    if (!exited_with(&r, 0)) {
        t_skip("the container could not make a whiteout device node here");
        run_release(&r);
        return;
    }
    run_release(&r);
    ret = runner_seal_tree(rn, dir, NULL, NULL, uid_base, gid_base, 65536, NULL, &err);
    t_ok(ret < 0 && strstr(berth_error_msg(&err), "'whiteout'") &&
         strstr(berth_error_msg(&err), "device node"),
         "a tree holding a device node is refused: %s", berth_error_msg(&err));
    berth_error_release(&err);
}

static void test_usage(struct runner *rn)
{
    _cleanup_free_ char *dir = open_dir("usage");
    _cleanup_free_ char *missing = xasprintf("%s/no/such/tree", tmpdir);
    const char *argv[] = { "/bin/busybox", "sh", "-c",
        "mkdir /data/secret && busybox dd if=/dev/zero of=/data/secret/big bs=1M count=5 "
        "2>/dev/null && ln /data/secret/big /data/secret/link && chmod 700 /data/secret", NULL };
    const char *const paths[] = { dir, missing, NULL };
    const char *const none[] = { missing, NULL };
    struct berth_error *err = NULL;
    uint64_t bytes = 0;
    struct run r;
    int ret;

    run_with_dir(rn, "usage-write", dir, "/data", argv, &r);
    t_ok(exited_with(&r, 0), "a container wrote 5 MiB and a hard link to it into a 0700 directory");
    run_release(&r);
    ret = runner_tree_usage(rn, paths, NULL, uid_base, gid_base, 65536, &bytes, &err);
    t_ok(ret == 0 && bytes >= (5u << 20) && bytes < (5u << 20) + (256u << 10),
         "runner_tree_usage counts the hard-linked 5 MiB once: %llu bytes%s%s",
         (unsigned long long)bytes, ret ? ": " : "", berth_error_msg(&err));
    berth_error_release(&err);
    bytes = 1;
    ret = runner_tree_usage(rn, none, NULL, uid_base, gid_base, 65536, &bytes, &err);
    t_ok(ret == 0 && bytes == 0, "a missing tree takes 0 bytes");
    berth_error_release(&err);
    ret = runner_remove_tree(rn, "relative/path", uid_base, gid_base, 65536, &err);
    t_ok(ret == -EINVAL && strstr(berth_error_msg(&err), "'relative/path'"),
         "a relative path is refused before any worker starts: %s", berth_error_msg(&err));
    berth_error_release(&err);
}

/* A container's tree of a 1 MiB file in a 0700 directory, in a fresh berth-made dir; NULL if it failed. */
static char *written_tree(struct runner *rn, const char *name)
{
    char *dir = open_dir(name);
    const char *argv[] = { "/bin/busybox", "sh", "-c",
        "mkdir /data/secret && busybox dd if=/dev/zero of=/data/secret/big bs=1M count=1 "
        "2>/dev/null && chmod 700 /data/secret", NULL };
    struct run r;
    bool ok;

    run_with_dir(rn, name, dir, "/data", argv, &r);
    ok = exited_with(&r, 0);
    run_release(&r);
    if (!ok)
        free(TAKE_PTR(dir));
    return dir;
}

/*
 * A seal that measures (a build's last measure comes with its seal): the
 * sealed tree and the others are counted after the seal and before the
 * removals, so a then_remove tree named in the measure counts too; only
 * the first tree is sealed.
 */
static void test_seal_measures(struct runner *rn)
{
    _cleanup_free_ char *sealed = written_tree(rn, "seal-sealed");
    _cleanup_free_ char *other = written_tree(rn, "seal-other");
    _cleanup_free_ char *spent = written_tree(rn, "seal-spent");
    const char *const measure[] = { other, spent, NULL };
    const char *const gone[] = { spent, NULL };
    struct berth_error *err = NULL;
    uint64_t bytes = 0, one = 0;
    int ret;

    if (!sealed || !other || !spent) {
        t_ok(false, "containers wrote the trees for a seal that measures");
        return;
    }
    /* One tree's size, for comparison; `one` stays 0 (and the check fails) if it cannot be had. */
    (void)runner_tree_usage(rn, (const char *const[]){ other, NULL }, NULL, uid_base, gid_base, 65536,
                            &one, &err);
    berth_error_release(&err);
    ret = runner_seal_tree(rn, sealed, measure, gone, uid_base, gid_base, 65536, &bytes, &err);
    t_ok(ret == 0 && one >= (1u << 20) && bytes >= 3 * one - one / 8 && mode_of(sealed, "secret") == 0755 &&
         mode_of(other, "secret") == 0700 && access(spent, F_OK) < 0 && errno == ENOENT,
         "a seal that measures seals its tree alone, counts it and the others, a then_remove one "
         "included (%llu bytes, one tree %llu), then removes that one%s%s", (unsigned long long)bytes,
         (unsigned long long)one, ret ? ": " : "", berth_error_msg(&err));
    berth_error_release(&err);
}

/* A job's then_remove: removed by the same worker after the job, whatever its outcome. */
static void test_then_remove(struct runner *rn)
{
    _cleanup_free_ char *kept = written_tree(rn, "then-kept");
    _cleanup_free_ char *spent = written_tree(rn, "then-spent");
    _cleanup_free_ char *spent2 = written_tree(rn, "then-spent2");
    _cleanup_free_ char *bad = written_tree(rn, "then-bad");
    const char *const measured[] = { kept, NULL };
    const char *const spent_list[] = { spent, NULL };
    const char *const refused[] = { spent2, "relative", NULL };
    const char *const both[] = { spent2, bad, NULL };
    struct berth_error *err = NULL;
    uint64_t bytes = 0;
    int ret;

    if (!kept || !spent || !spent2 || !bad) {
        t_ok(false, "containers wrote the trees for then_remove");
        return;
    }
    ret = runner_tree_usage(rn, measured, spent_list, uid_base, gid_base, 65536, &bytes, &err);
    t_ok(ret == 0 && bytes >= (1u << 20) && access(spent, F_OK) < 0 && errno == ENOENT &&
         access(kept, F_OK) == 0,
         "a measure with then_remove counts its tree (%llu bytes), then removes the other, owned by "
         "the tenant's ids, in the same worker%s%s", (unsigned long long)bytes, ret ? ": " : "",
         berth_error_msg(&err));
    berth_error_release(&err);
    ret = runner_seal_tree(rn, kept, NULL, refused, uid_base, gid_base, 65536, NULL, &err);
    t_ok(ret == -EINVAL && strstr(berth_error_msg(&err), "'relative'") && access(spent2, F_OK) == 0 &&
         mode_of(kept, "secret") == 0700,
         "a relative path in then_remove is refused before any worker starts, nothing sealed or "
         "removed: %s", berth_error_msg(&err));
    berth_error_release(&err);
    /* A whiteout in `bad` (a device node) makes its seal fail; the removals run regardless. */
    {
        const char *argv[] = { "/t/helper", "--tree-helper", "/dev-node", NULL };
        struct run r;

        run_with_dir(rn, "then-dev", bad, "/dev-node", argv, &r);
        run_release(&r);
    }
    ret = runner_seal_tree(rn, bad, NULL, both, uid_base, gid_base, 65536, NULL, &err);
    if (strstr(berth_error_msg(&err), "device node"))
        t_ok(ret < 0 && access(spent2, F_OK) < 0 && access(bad, F_OK) < 0,
             "a failed seal returns the seal's failure (%s), and its then_remove trees, the "
             "failed one's own included, are removed anyway", berth_error_msg(&err));
    else
        t_skip("the container could not make a whiteout device node here");
    berth_error_release(&err);
    ret = runner_seal_tree(rn, kept, NULL, spent_list, uid_base, gid_base, 65536, NULL, &err);
    t_ok(ret == 0 && mode_of(kept, "secret") == 0755,
         "a seal whose then_remove tree is already gone succeeds (missing is fine)%s%s",
         ret ? ": " : "", berth_error_msg(&err));
    berth_error_release(&err);
    test_seal_measures(rn);
}

/* How many user namespaces the spawner holds open (its kept ones: userns-kept.h). */
static int kept_namespaces(pid_t spawner)
{
    _cleanup_free_ char *fds = xasprintf("/proc/%ld/fd", (long)spawner);
    _cleanup_closedir_ DIR *d = opendir(fds);
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d))) {
        char link[64];
        ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);

        if (len > 0) {
            link[len] = '\0';
            n += !strncmp(link, "user:[", 6);
        }
    }
    return d ? n : -1;
}

/*
 * The spawner keeps one user namespace per id mapping for its tree workers
 * and containers (userns-kept.h): the first worker for a mapping without
 * one adds one (the tenant's has one already, from the container that
 * wrote the tree), later ones for it add none, and a kept namespace
 * serves its own mapping only: a tree in a 0700 directory of one tenant's
 * ids is measured with that tenant's mapping, and refused with another's,
 * before and after both are kept.
 */
static void test_kept_namespaces(struct runner *rn)
{
    _cleanup_free_ char *dir = open_dir("kept");
    const char *argv[] = { "/bin/busybox", "sh", "-c",
        "mkdir /data/own && echo x >/data/own/f && chmod 700 /data/own", NULL };
    const char *const paths[] = { dir, NULL };
    pid_t spawner = child_of(getpid(), "berth-spawner");
    unsigned long other_u, other_g;
    struct berth_error *err = NULL;
    int before, after_own, after_other, again;
    bool own_ok = true, other_refused = true;
    uint64_t bytes;
    struct run r;

    run_with_dir(rn, "kept-write", dir, "/data", argv, &r);
    t_ok(exited_with(&r, 0), "a container wrote a file into a 0700 directory of its tenant's ids");
    run_release(&r);
    /* The seal's test used the first other range: this one's namespace is new here. */
    if (!other_range("/etc/subuid", uid_base, 1, &other_u) || !other_range("/etc/subgid", gid_base, 1, &other_g)) {
        t_skip("berth has no third range of 65536 subordinate ids");
        return;
    }
    before = kept_namespaces(spawner);
    for (int i = 0; i < 3; i++)
        own_ok &= runner_tree_usage(rn, paths, NULL, uid_base, gid_base, 65536, &bytes, &err) == 0 && bytes > 0;
    after_own = kept_namespaces(spawner);
    for (int i = 0; i < 3; i++) {
        int ret = runner_tree_usage(rn, paths, NULL, other_u, other_g, 65536, &bytes, &err);

        other_refused &= ret == -EACCES;
        berth_error_release(&err);
    }
    after_other = kept_namespaces(spawner);
    own_ok &= runner_tree_usage(rn, paths, NULL, uid_base, gid_base, 65536, &bytes, &err) == 0;
    again = kept_namespaces(spawner);
    t_ok(spawner > 0 && before >= 1 && after_own == before && after_other == before + 1 && again == before + 1,
         "the spawner keeps one user namespace per mapping: %d before, %d after three measures with the "
         "tenant's (kept already), %d after three with another range, %d after one more with the tenant's",
         before, after_own, after_other, again);
    t_ok(own_ok && other_refused,
         "each kept namespace serves its own mapping: the tenant's measures its 0700 directory every time, "
         "another range's is refused (EACCES) every time, the second and third from its kept namespace%s%s",
         own_ok ? "" : ": ", berth_error_msg(&err));
    berth_error_release(&err);
}

/*
 * A container nests directories far deeper than a walk holds fds for
 * (TREE_MAX_DEPTH, 256): two chains of 700 and 400 levels, files and a mode
 * 0 directory at the bottom. The usage walk refuses the depth by name; the
 * removal moves the deep part up and removes all of it, so that nothing a
 * build left can stay on the host's disk.
 */
static void test_remove_deep(struct runner *rn)
{
    _cleanup_free_ char *dir = open_dir("deep");
    const char *argv[] = { "/bin/busybox", "sh", "-c",
        "set -e; cd /data; for n in 700 400; do mkdir c$n; cd c$n; i=0; "
        "while [ $i -lt $n ]; do mkdir d; cd d; i=$((i + 1)); done; "
        "echo bottom >f; mkdir closed; echo x >closed/g; chmod 0 closed; cd /data; done", NULL };
    const char *const paths[] = { dir, NULL };
    struct berth_error *err = NULL;
    uint64_t bytes = 0;
    struct run r;
    int ret;

    run_with_dir(rn, "deep-write", dir, "/data", argv, &r);
    t_ok(exited_with(&r, 0), "a container nested directories 700 and 400 levels deep");
    run_release(&r);
    ret = runner_tree_usage(rn, paths, NULL, uid_base, gid_base, 65536, &bytes, &err);
    t_ok(ret == -ELOOP && strstr(berth_error_msg(&err), "deeper than 256"),
         "the usage walk refuses the depth, saying so: %s", berth_error_msg(&err));
    berth_error_release(&err);
    ret = runner_remove_tree(rn, dir, uid_base, gid_base, 65536, &err);
    t_ok(ret == 0 && access(dir, F_OK) < 0, "runner_remove_tree removes all of it%s%s", ret ? ": " : "",
         berth_error_msg(&err));
    berth_error_release(&err);
}

/* ------------------------------------------------------------------------
 * a long removal next to a spawn
 */

struct removal {
    struct runner *rn;
    const char *path;
    int r;
    double ms;
    int done;   /* atomic: the thread has returned from runner_remove_tree */
};

static void *remove_thread(void *arg)
{
    struct removal *rm = arg;
    struct berth_error *err = NULL;
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rm->r = runner_remove_tree(rm->rn, rm->path, uid_base, gid_base, 65536, &err);
    rm->ms = ms_since(&t0);
    if (rm->r < 0)
        fprintf(stderr, "# removal: %s\n", berth_error_msg(&err));
    berth_error_release(&err);
    __atomic_store_n(&rm->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/*
 * 100 directories of 1000 names each: a removal of half a second or so.
 * The names of a directory are hard links to its first file, because
 * creating 100k inodes took 45 s on the ext4 of the reference host while
 * 100k links take half a second (and ext4 caps an inode at 65000 links);
 * removing is one unlinkat per name either way.
 */
static bool make_big_tree(const char *top)
{
    for (int d = 0; d < 100; d++) {
        _cleanup_free_ char *dir = xasprintf("%s/d%02d", top, d);
        _cleanup_close_ int dfd = -1, fd = -1;

        if (mkdir(dir, 0755) < 0 || (dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
            (fd = openat(dfd, "f0000", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
            return false;
        for (int f = 1; f < 1000; f++) {
            char name[16];

            (void)snprintf(name, sizeof(name), "f%04d", f);
            if (linkat(dfd, "f0000", dfd, name, 0) < 0)
                return false;
        }
    }
    return true;
}

static void test_removal_vs_spawn(struct runner *rn)
{
    _cleanup_free_ char *top = open_dir("big");
    _cleanup_free_ char *state = new_state("during-removal");
    const char *argv[] = { "/bin/busybox", "true", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct removal rm = { .rn = rn, .path = top };
    struct timespec t0;
    pthread_t t;
    bool removing;
    double spawn_ms;
    struct run r;

    if (!make_big_tree(top)) {
        t_ok(0, "create a tree of 100k names in '%s': %s", top, strerror(errno));
        return;
    }
    if (pthread_create(&t, NULL, remove_thread, &rm) != 0)
        abort();
    /* Let the removal get going: its request is answered within milliseconds. */
    usleep(50 * 1000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_sh_spec(rn, &spec, &r);
    spawn_ms = ms_since(&t0);
    removing = !__atomic_load_n(&rm.done, __ATOMIC_SEQ_CST);
    (void)pthread_join(t, NULL);
    printf("# removing 100k names took %.0f ms; a spawn -> exit -> stop of 'true' meanwhile "
           "%.1f ms\n", rm.ms, spawn_ms);
    t_ok(rm.r == 0 && access(top, F_OK) < 0, "runner_remove_tree removes a tree of 100k names");
    /* Held up, the spawn would have waited for the removal: nearly all of rm.ms. */
    t_ok(exited_with(&r, 0) && removing && spawn_ms * 2 < rm.ms,
         "a spawn during that removal is not held up by it (%.1f ms vs %.0f ms)", spawn_ms, rm.ms);
    run_release(&r);
}

void test_trees(struct runner *rn)
{
    test_seal(rn);
    test_seal_device(rn);
    test_usage(rn);
    test_then_remove(rn);
    test_kept_namespaces(rn);
    test_remove_deep(rn);
    test_removal_vs_spawn(rn);
}
