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
 * symlink's blob is read whole, so its size is checked first (under PATH_MAX).
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

struct export {
    git_repository *repo;
    const char *alternate;      /* the push's quarantine, or NULL */
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

static int write_tree(const struct export *x, const git_tree *tree, int dfd, const char *prefix,
                      int depth, struct berth_error **err)
{
    git_repository *repo = x->repo;

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
            git_tree *t = NULL;

            if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
                return berth_error_make(err, errno, "creating '%s'", path);
            sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                return berth_error_make(err, errno, "opening '%s'", path);
            k = git_tree_lookup(&t, repo, git_tree_entry_id(e));
            if (k < 0)
                return git_to_berth_error(err, k, "reading tree '%s'", path);
            k = write_tree(x, t, sub, subprefix, depth + 1, err);
            git_tree_free(t);
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

static int export_with(const struct export *x, const git_oid *oid, const char *dest_dir,
                       struct berth_error **err)
{
    git_repository *repo = x->repo;
    _cleanup_close_ int dfd = -1;
    char hex[GIT_OID_HEXSZ + 1];
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    int k;

    git_oid_tostr(hex, sizeof(hex), oid);
    k = mkdir_p(dest_dir, 0755, err);
    if (k < 0)
        return k;
    dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "opening '%s'", dest_dir);
    k = git_commit_lookup(&commit, repo, oid);
    if (k < 0)
        return git_to_berth_error(err, k, "looking up commit '%s'", hex);
    k = git_commit_tree(&tree, commit);
    git_commit_free(commit);
    if (k < 0)
        return git_to_berth_error(err, k, "reading the tree of '%s'", hex);
    k = write_tree(x, tree, dfd, "", 0, err);
    git_tree_free(tree);
    return k;
}

int export_commit(git_repository *repo, const git_oid *oid, const char *dest_dir,
                  struct berth_error **err)
{
    const struct export x = { .repo = repo };

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
        const struct export x = { .repo = push->repo, .alternate = push->quarantine };

        return export_with(&x, &oid, dest_dir, err);
    }
}
