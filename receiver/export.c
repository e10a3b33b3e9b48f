/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing a commit's tree into a directory: receiver_push_export() for the
 * build of a push (reading through the push's repository handle so
 * quarantined objects are visible) and export_commit() for fetched
 * buildpacks (fetch.c). The tree is walked by hand instead of using
 * git_checkout_tree: no index is touched, no attribute filters rewrite
 * content, and every path is created relative to a directory fd with
 * O_NOFOLLOW, so a hostile tree (entries named "..", ".git", or a symlink a
 * later entry tries to write through) cannot write outside `dest_dir`.
 *
 * Memory stays bounded whatever a push holds: a blob over EXPORT_STREAM_MIN
 * is not loaded (libgit2 reads a whole object into memory) but streamed into
 * its file by `git cat-file blob`, which git streams from the pack; the
 * push's quarantine reaches it as GIT_ALTERNATE_OBJECT_DIRECTORIES. A
 * symlink's blob is read whole, so its size is checked first (under PATH_MAX),
 * and so are a commit's and every tree's, from the object's header, against
 * the push's caps (push.h) before libgit2 reads them.
 *
 * What an export writes is bounded too, and counted before anything is
 * written: a tree may name one subtree a thousand times, and four such
 * levels in a pack of a few KB would export a trillion files. The count
 * walks each distinct tree once (a table of the trees already counted), so
 * such a tree costs no more to refuse than its few objects. It also sums
 * the sizes of the trees on each path, which the walk holds at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "receiver/push.h"
#include "common/banned.h"

/* git itself has no depth limit; 256 levels keeps recursion (and fds) bounded. */
#define EXPORT_MAX_DEPTH 256
/* Blobs larger than this are streamed by git instead of read whole. */
#define EXPORT_STREAM_MIN ((git_object_size_t)4 << 20)
/*
 * Caps on one export: files, directories and links together, and the sum
 * of the files' sizes. A checkout of Chromium holds about 450,000 files;
 * a pack at the push cap (512 MiB) of one snapshot of source inflates to
 * 2 GiB or so (zlib takes text to about a quarter), well under 4 GiB.
 */
#define EXPORT_MAX_ENTRIES 1000000u
#define EXPORT_MAX_BYTES ((uint64_t)4 << 30)
/*
 * The walk holds every tree from the root down to the directory it is in:
 * without a cap on their sum, 256 nested trees of 16 MiB each (a pack of a
 * few MB) would hold 4 GiB. Real paths hold a few MB at most.
 */
#define EXPORT_MAX_PATH_TREE_BYTES ((uint64_t)32 << 20)

/*
 * What a tree exports, entries and bytes, all its subtrees included, and
 * the most bytes of trees the walk holds at once below it (itself and the
 * largest chain of subtrees under it).
 */
struct tree_count {
    git_oid id;
    uint64_t entries, bytes, path_bytes;
    bool used;
};

struct export {
    git_repository *repo;
    const char *alternate;      /* the push's quarantine, or NULL */
    struct tree_count *counted; /* open addressing on the tree id; NULL until the first */
    size_t n_counted, cap_counted;
};

/* `git cat-file blob <id>` into fd: git streams a large blob from its pack. */
static int stream_blob(const struct export *x, const git_oid *id, int fd, const char *path,
                       struct berth_error **err)
{
    extern char **environ;
    _cleanup_free_ char *git_dir = xasprintf("--git-dir=%s", git_repository_path(x->repo));
    _cleanup_free_ char *alt = x->alternate ? xasprintf("GIT_ALTERNATE_OBJECT_DIRECTORIES=%s", x->alternate) : NULL;
    char hex[GIT_OID_HEXSZ + 1];
    char *argv[] = { (char *)"git", git_dir, (char *)"cat-file", (char *)"blob", hex, NULL };
    _cleanup_free_ char **env = NULL;
    size_t n = 0;

    git_oid_tostr(hex, sizeof(hex), id);
    while (environ[n])
        n++;
    env = xcalloc(n + 2, sizeof(*env));
    memcpy(env, environ, n * sizeof(*env));
    env[n] = alt;
    if (repo_run_git(argv, env, fd, err) < 0)
        return berth_error_wrap(err, "writing '%s'", path);
    return 0;
}

/* The blob's size without reading it (-errno with *err when it cannot be found). */
static int blob_size(const struct export *x, const git_oid *id, git_object_size_t *ret, const char *path,
                     struct berth_error **err)
{
    git_object_t type;
    size_t size = 0;
    int k = repo_object_header(x->repo, id, &size, &type);

    if (k < 0)
        return git_to_berth_error(err, k, "reading '%s'", path);
    *ret = size;
    return 0;
}

static bool safe_name(const char *name)
{
    return *name && strcmp(name, ".") && strcmp(name, "..") && strcasecmp(name, ".git")
           && !strchr(name, '/');
}

/* A regular file, its content streamed by git. */
static int write_big_file(const struct export *x, int dfd, const git_tree_entry *e, const char *path,
                          struct berth_error **err)
{
    const char *name = git_tree_entry_name(e);
    mode_t m = git_tree_entry_filemode(e) == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
    _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, m);
    int k;

    /* An existing symlink at this name is replaced, never followed. */
    if (fd < 0 && errno == ELOOP && unlinkat(dfd, name, 0) == 0)
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, m);
    if (fd < 0)
        return berth_error_make(err, errno, "creating '%s'", path);
    if ((k = stream_blob(x, git_tree_entry_id(e), fd, path, err)) < 0)
        return k;
    if (fchmod(fd, m) < 0)
        return berth_error_make(err, errno, "chmod '%s'", path);
    return 0;
}

static int write_blob(const struct export *x, int dfd, const git_tree_entry *e, const char *path,
                      struct berth_error **err)
{
    git_repository *repo = x->repo;
    git_blob *blob = NULL;
    const char *name = git_tree_entry_name(e);
    git_filemode_t mode = git_tree_entry_filemode(e);
    git_object_size_t size = 0;
    int k;

    /* The size first, from the object's header: a symlink's blob is read whole. */
    if ((k = blob_size(x, git_tree_entry_id(e), &size, path, err)) < 0)
        return k;
    if (mode == GIT_FILEMODE_LINK && size >= PATH_MAX)
        return berth_error_plain(err, ENAMETOOLONG, "symlink target of '%s' is longer than %d bytes", path,
                                 PATH_MAX - 1);
    if (mode != GIT_FILEMODE_LINK && size > EXPORT_STREAM_MIN)
        return write_big_file(x, dfd, e, path, err);
    k = git_blob_lookup(&blob, repo, git_tree_entry_id(e));
    if (k < 0)
        return git_to_berth_error(err, k, "reading '%s'", path);
    if (mode == GIT_FILEMODE_LINK) {
        size_t len = (size_t)git_blob_rawsize(blob);
        _cleanup_free_ char *target = xstrndup(git_blob_rawcontent(blob), len);

        git_blob_free(blob);
        if (strlen(target) != len || len == 0)
            return berth_error_plain(err, EINVAL, "bad symlink target for '%s'", path);
        (void)unlinkat(dfd, name, 0);
        if (symlinkat(target, dfd, name) < 0)
            return berth_error_make(err, errno, "creating symlink '%s'", path);
        return 0;
    }
    {
        _cleanup_close_ int fd = -1;
        mode_t m = mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;

        /* An existing symlink at this name is replaced, never followed. */
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, m);
        if (fd < 0 && errno == ELOOP && unlinkat(dfd, name, 0) == 0)
            fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, m);
        if (fd < 0) {
            git_blob_free(blob);
            return berth_error_make(err, errno, "creating '%s'", path);
        }
        k = write_all(fd, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
        git_blob_free(blob);
        if (k < 0)
            return berth_error_make(err, -k, "writing '%s'", path);
        if (fchmod(fd, m) < 0)
            return berth_error_make(err, errno, "chmod '%s'", path);
    }
    return 0;
}

/*
 * Looks up a commit or tree (`type`) after its header said it is one and
 * within its cap: libgit2 reads and parses the whole object.
 */
static int lookup_checked(const struct export *x, const git_oid *id, git_object_t type, const char *what,
                          git_object **ret, size_t *ret_size, struct berth_error **err)
{
    uint64_t cap = type == GIT_OBJECT_COMMIT ? PUSH_MAX_COMMIT_BYTES : PUSH_MAX_TREE_BYTES;
    git_object_t actual = GIT_OBJECT_INVALID;
    size_t size = 0;
    int k = repo_object_header(x->repo, id, &size, &actual);

    if (k < 0)
        return git_to_berth_error(err, k, "reading %s", what);
    if (actual != type)
        return berth_error_plain(err, EINVAL, "%s is a %s, not a %s", what, git_object_type2string(actual),
                                 git_object_type2string(type));
    if (size > cap)
        return berth_error_plain(err, EFBIG, "%s is %zu bytes, over the limit of %llu bytes for a %s", what,
                                 size, (unsigned long long)cap, git_object_type2string(type));
    k = git_object_lookup(ret, x->repo, id, type);
    if (k < 0)
        return git_to_berth_error(err, k, "reading %s", what);
    if (ret_size)
        *ret_size = size;
    return 0;
}

/* The slot of tree `id` in the table of counted trees: its own, or the empty one it would take. */
static struct tree_count *counted_slot(const struct export *x, const git_oid *id)
{
    size_t mask = x->cap_counted - 1, i;

    memcpy(&i, id->id, sizeof(i));
    for (i &= mask; x->counted[i].used && !git_oid_equal(&x->counted[i].id, id); i = (i + 1) & mask)
        ;
    return &x->counted[i];
}

static void remember_count(struct export *x, const struct tree_count *c)
{
    if (2 * (x->n_counted + 1) > x->cap_counted) {
        struct tree_count *old = x->counted;
        size_t old_cap = x->cap_counted;

        x->cap_counted = old_cap ? 2 * old_cap : 256;
        x->counted = xcalloc(x->cap_counted, sizeof(*x->counted));
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].used)
                *counted_slot(x, &old[i].id) = old[i];
        free(old);
    }
    *counted_slot(x, &c->id) = *c;
    x->n_counted++;
}

static int over_caps(const struct tree_count *c, const char *prefix, struct berth_error **err)
{
    if (c->entries > EXPORT_MAX_ENTRIES)
        return berth_error_plain(err, EFBIG, "the tree holds more than %u files and directories (at '%s')",
                                 EXPORT_MAX_ENTRIES, *prefix ? prefix : "/");
    if (c->bytes > EXPORT_MAX_BYTES)
        return berth_error_plain(err, EFBIG, "the tree's files add up to more than %llu MiB (at '%s')",
                                 (unsigned long long)(EXPORT_MAX_BYTES >> 20), *prefix ? prefix : "/");
    if (c->path_bytes > EXPORT_MAX_PATH_TREE_BYTES)
        return berth_error_plain(err, EFBIG, "the trees from '%s' down add up to more than %llu MiB on one path",
                                 *prefix ? prefix : "/", (unsigned long long)(EXPORT_MAX_PATH_TREE_BYTES >> 20));
    return 0;
}

/*
 * Counts what tree `id` exports into *ret (each distinct tree once), and
 * refuses it as soon as it goes over a cap: the sums never pass twice a
 * cap, so they cannot overflow.
 */
static int count_tree(struct export *x, const git_oid *id, const char *prefix, int depth,
                      struct tree_count *ret, struct berth_error **err)
{
    struct tree_count c = { .id = *id, .used = true };
    git_object *tree = NULL;
    uint64_t below = 0;         /* the largest path_bytes of a subtree */
    size_t tree_size = 0;
    int k = 0;

    if (x->counted && counted_slot(x, id)->used) {
        *ret = *counted_slot(x, id);
        return 0;
    }
    if (depth > EXPORT_MAX_DEPTH)
        return berth_error_plain(err, ELOOP, "tree deeper than %d levels at '%s'", EXPORT_MAX_DEPTH, prefix);
    {
        _cleanup_free_ char *what = xasprintf("tree '%s'", *prefix ? prefix : "/");

        if ((k = lookup_checked(x, id, GIT_OBJECT_TREE, what, &tree, &tree_size, err)) < 0)
            return k;
    }
    c.path_bytes = tree_size;
    for (size_t i = 0; k == 0 && i < git_tree_entrycount((git_tree *)tree); i++) {
        const git_tree_entry *e = git_tree_entry_byindex((git_tree *)tree, i);
        _cleanup_free_ char *path = xasprintf("%s%s", prefix, git_tree_entry_name(e));
        struct tree_count sub = { 0 };
        git_object_t type;
        size_t size = 0;

        c.entries++;
        if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
            _cleanup_free_ char *subprefix = xasprintf("%s/", path);

            if ((k = count_tree(x, git_tree_entry_id(e), subprefix, depth + 1, &sub, err)) < 0)
                break;
            if (sub.path_bytes > below)
                below = sub.path_bytes;
            c.path_bytes = tree_size + below;
        } else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB) {
            if ((k = repo_object_header(x->repo, git_tree_entry_id(e), &size, &type)) < 0) {
                k = git_to_berth_error(err, k, "reading '%s'", path);
                break;
            }
            sub.bytes = size;
        }
        c.entries += sub.entries;
        c.bytes += sub.bytes;
        k = over_caps(&c, prefix, err);
    }
    git_object_free(tree);
    if (k < 0)
        return k;
    remember_count(x, &c);
    *ret = c;
    return 0;
}

static int write_tree(const struct export *x, const git_tree *tree, int dfd, const char *prefix,
                      int depth, struct berth_error **err)
{
    if (depth > EXPORT_MAX_DEPTH)
        return berth_error_plain(err, ELOOP, "tree deeper than %d levels at '%s'", EXPORT_MAX_DEPTH,
                                 prefix);
    for (size_t i = 0; i < git_tree_entrycount(tree); i++) {
        const git_tree_entry *e = git_tree_entry_byindex(tree, i);
        const char *name = git_tree_entry_name(e);
        _cleanup_free_ char *path = xasprintf("%s%s", prefix, name);
        int k;

        if (!safe_name(name))
            return berth_error_plain(err, EINVAL, "refusing unsafe path '%s'", path);
        switch (git_tree_entry_type(e)) {
        case GIT_OBJECT_TREE: {
            _cleanup_close_ int sub = -1;
            _cleanup_free_ char *subprefix = xasprintf("%s/", path);
            _cleanup_free_ char *what = xasprintf("tree '%s'", path);
            git_object *t = NULL;

            if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
                return berth_error_make(err, errno, "creating '%s'", path);
            sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                return berth_error_make(err, errno, "opening '%s'", path);
            if ((k = lookup_checked(x, git_tree_entry_id(e), GIT_OBJECT_TREE, what, &t, NULL, err)) < 0)
                return k;
            k = write_tree(x, (git_tree *)t, sub, subprefix, depth + 1, err);
            git_object_free(t);
            if (k < 0)
                return k;
            break;
        }
        case GIT_OBJECT_BLOB:
            k = write_blob(x, dfd, e, path, err);
            if (k < 0)
                return k;
            break;
        case GIT_OBJECT_COMMIT:
            /* A submodule: its content is not in this repository; leave an empty dir as git does. */
            if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
                return berth_error_make(err, errno, "creating '%s'", path);
            break;
        case GIT_OBJECT_ANY:
        case GIT_OBJECT_INVALID:
        case GIT_OBJECT_TAG:
        case GIT_OBJECT_OFS_DELTA:
        case GIT_OBJECT_REF_DELTA:
        default:
            return berth_error_plain(err, EINVAL, "unexpected tree entry '%s'", path);
        }
    }
    return 0;
}

/* The commit's tree, counted (within the caps) and then written. */
static int export_tree(struct export *x, const git_oid *tree_id, int dfd, struct berth_error **err)
{
    struct tree_count total;
    git_object *tree = NULL;
    int k = count_tree(x, tree_id, "", 0, &total, err);

    free(x->counted);
    x->counted = NULL;
    x->n_counted = x->cap_counted = 0;
    if (k < 0)
        return k;
    if ((k = lookup_checked(x, tree_id, GIT_OBJECT_TREE, "the root tree", &tree, NULL, err)) < 0)
        return k;
    k = write_tree(x, (git_tree *)tree, dfd, "", 0, err);
    git_object_free(tree);
    return k;
}

static int export_with(struct export *x, const git_oid *oid, const char *dest_dir, struct berth_error **err)
{
    _cleanup_close_ int dfd = -1;
    _cleanup_free_ char *what = NULL;
    char hex[GIT_OID_HEXSZ + 1];
    git_object *commit = NULL;
    git_oid tree_id;
    int k;

    git_oid_tostr(hex, sizeof(hex), oid);
    k = mkdir_p(dest_dir, 0755, err);
    if (k < 0)
        return k;
    dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "opening '%s'", dest_dir);
    what = xasprintf("commit '%s'", hex);
    if ((k = lookup_checked(x, oid, GIT_OBJECT_COMMIT, what, &commit, NULL, err)) < 0)
        return k;
    git_oid_cpy(&tree_id, git_commit_tree_id((git_commit *)commit));
    git_object_free(commit);
    k = export_tree(x, &tree_id, dfd, err);
    if (k < 0)
        return berth_error_wrap(err, "exporting %s", what);
    return 0;
}

int export_commit(git_repository *repo, const git_oid *oid, const char *dest_dir,
                  struct berth_error **err)
{
    struct export x = { .repo = repo };

    return export_with(&x, oid, dest_dir, err);
}

int receiver_push_export(struct receiver_push *push, const char *commit_hex, const char *dest_dir,
                         struct berth_error **err)
{
    git_oid oid;

    if (!push->repo)
        return berth_error_plain(err, EINVAL, "push has no repository");
    if (strlen(commit_hex) != GIT_OID_HEXSZ || git_oid_fromstr(&oid, commit_hex) < 0)
        return berth_error_plain(err, EINVAL, "bad commit id '%s'", commit_hex);
    {
        struct export x = { .repo = push->repo, .alternate = push->quarantine };

        return export_with(&x, &oid, dest_dir, err);
    }
}
