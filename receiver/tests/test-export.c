/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for receiver_push_export(): file modes, symlinks (created as
 * links, never followed; a target past PATH_MAX refused unread),
 * subdirectories, submodule entries, refusal of hand-crafted trees
 * whose entry names would escape the target directory, and the caps: a
 * commit or tree over its size cap refused from its header, unread, and a
 * tree naming a billion files through four small trees, or nested trees
 * adding up past the cap on one path, refused at once, before anything is
 * written.
 * Builds a throw-away bare repository with libgit2 in a mktemp directory.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "receiver/push.h"

static git_oid blob(git_repository *repo, const char *content)
{
    git_oid id;

    if (git_blob_create_from_buffer(&id, repo, content, strlen(content)) < 0)
        abort();
    return id;
}

/* Writes a raw tree object (bypassing libgit2's name validation) with one blob entry. */
static git_oid raw_tree(git_repository *repo, const char *mode, const char *name, const git_oid *target)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    git_odb *odb = NULL;
    git_oid id;

    strbuf_addf(&sb, "%s %s", mode, name);
    strbuf_addch(&sb, '\0');
    strbuf_add(&sb, target->id, GIT_OID_RAWSZ);
    if (git_repository_odb(&odb, repo) < 0 || git_odb_write(&id, odb, sb.buf, sb.len, GIT_OBJECT_TREE) < 0)
        abort();
    git_odb_free(odb);
    return id;
}

static char *commit_of(git_repository *repo, const git_oid *tree_id)
{
    git_signature *sig = NULL;
    git_tree *tree = NULL;
    git_oid id;
    char hex[GIT_OID_HEXSZ + 1];
    int k;

    if (git_signature_now(&sig, "t", "t@example.com") < 0)
        abort();
    k = git_tree_lookup(&tree, repo, tree_id);
    if (k == 0)
        k = git_commit_create(&id, repo, NULL, sig, sig, NULL, "m", tree, 0, NULL);
    git_tree_free(tree);
    git_signature_free(sig);
    if (k < 0)
        return NULL;
    git_oid_tostr(hex, sizeof(hex), &id);
    return xstrdup(hex);
}

static bool file_is(const char *path, const char *content, mode_t mode)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    struct stat st;

    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != mode)
        return false;
    return read_file(path, &sb, 0, NULL) == 0 && !strcmp(sb.buf, content);
}

/* A blob of `size` zero bytes, written in pieces so that the test itself never holds it. */
/* An object of `type` holding `size` zero bytes, written as a stream (never whole in memory). */
static git_oid zero_object(git_repository *repo, size_t size, git_object_t type)
{
    static const char zeros[1 << 16];
    git_odb *odb = NULL;
    git_odb_stream *ws = NULL;
    git_oid id;

    if (git_repository_odb(&odb, repo) < 0 || git_odb_open_wstream(&ws, odb, size, type) < 0)
        abort();
    for (size_t done = 0; done < size; done += sizeof(zeros))
        if (git_odb_stream_write(ws, zeros, sizeof(zeros) < size - done ? sizeof(zeros) : size - done) < 0)
            abort();
    if (git_odb_stream_finalize_write(&id, ws) < 0)
        abort();
    git_odb_stream_free(ws);
    git_odb_free(odb);
    return id;
}

/* The process's peak resident size (VmHWM) in KiB, 0 when unknown. */
static unsigned long peak_rss_kib(void)
{
    _cleanup_strbuf_ struct strbuf status = STRBUF_INIT;
    const char *line;

    if (read_file("/proc/self/status", &status, 1 << 16, NULL) < 0 || !(line = strstr(status.buf, "VmHWM:")))
        return 0;
    return strtoul(line + 6, NULL, 10);
}

/* A symlink whose target blob is 64 MiB: refused from its header, never read (peak RSS stays put). */
static void big_symlink_refused(struct receiver_push *push, const char *tmp)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *dest = xasprintf("%s/biglink", tmp);
    _cleanup_free_ char *c = NULL;
    git_treebuilder *tb = NULL;
    git_oid id = zero_object(push->repo, (size_t)64 << 20, GIT_OBJECT_BLOB), tree_id;
    unsigned long before;

    (void)git_treebuilder_new(&tb, push->repo, NULL);
    (void)git_treebuilder_insert(NULL, tb, "link", &id, GIT_FILEMODE_LINK);
    (void)git_treebuilder_write(&tree_id, tb);
    git_treebuilder_free(tb);
    c = commit_of(push->repo, &tree_id);
    before = peak_rss_kib();
    ok(c && receiver_push_export(push, c, dest, &err) == -ENAMETOOLONG,
       "a symlink entry with a 64 MiB target is refused: %s", berth_error_msg(&err));
    ok(before && peak_rss_kib() < before + 16 * 1024, "... without reading it (peak RSS %lu -> %lu KiB)", before,
       peak_rss_kib());
}

/* Appends a raw tree entry: mode, name, id. */
static void entry(struct strbuf *sb, const char *mode, const char *name, const git_oid *id)
{
    strbuf_addf(sb, "%s %s", mode, name);
    strbuf_addch(sb, '\0');
    strbuf_add(sb, id->id, GIT_OID_RAWSZ);
}

static git_oid write_tree_object(git_repository *repo, const struct strbuf *sb)
{
    git_odb *odb = NULL;
    git_oid out;

    if (git_repository_odb(&odb, repo) < 0 || git_odb_write(&out, odb, sb->buf, sb->len, GIT_OBJECT_TREE) < 0)
        abort();
    git_odb_free(odb);
    return out;
}

/* A new tree of `n` entries d000... all naming `id` (a tree, or a file). */
static git_oid fan_out(git_repository *repo, const git_oid *id, bool is_tree, int n)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    char name[16];

    for (int i = 0; i < n; i++) {
        (void)snprintf(name, sizeof(name), "d%03d", i);
        entry(&sb, is_tree ? "40000" : "100644", name, id);
    }
    return write_tree_object(repo, &sb);
}

/* A commit whose tree names one 1-byte file a billion times through four small trees: refused unwritten. */
static void tree_bomb_refused(struct receiver_push *push, const char *tmp)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *dest = xasprintf("%s/bomb", tmp);
    _cleanup_free_ char *c = NULL;
    git_oid id = blob(push->repo, "x");
    time_t start = time(NULL);
    struct stat st;

    id = fan_out(push->repo, &id, false, 1000);
    for (int level = 0; level < 2; level++)
        id = fan_out(push->repo, &id, true, 1000);
    c = commit_of(push->repo, &id);
    ok(c && receiver_push_export(push, c, dest, &err) == -EFBIG, "a tree of a billion files is refused: %s",
       berth_error_msg(&err));
    ok(time(NULL) - start < 10, "... at once (%ld s)", (long)(time(NULL) - start));
    ok(stat(dest, &st) == 0 && st.st_nlink == 2, "... before anything is written");
}

/* A valid tree of about `size` bytes: files f0000000... (200-byte names) all `file`, and `sub` as "sub" (unless NULL). */
static git_oid tree_of_size(git_repository *repo, const git_oid *file, const git_oid *sub, size_t size)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    char name[256];

    for (int i = 0; sb.len < size; i++) {
        (void)snprintf(name, sizeof(name), "f%07d%0192d", i, 0);     /* 228 bytes an entry: few entries */
        entry(&sb, "100644", name, file);
    }
    if (sub)
        entry(&sb, "40000", "sub", sub);
    return write_tree_object(repo, &sb);
}

/* Three nested trees of 12 MiB each (each under the 16 MiB cap): 36 MiB held at once, refused unwritten. */
static void nested_big_trees_refused(struct receiver_push *push, const char *tmp)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *dest = xasprintf("%s/nested", tmp);
    _cleanup_free_ char *c = NULL;
    git_oid file = blob(push->repo, "n"), t = tree_of_size(push->repo, &file, NULL, (size_t)12 << 20);
    struct stat st;

    for (int i = 0; i < 2; i++)
        t = tree_of_size(push->repo, &file, &t, (size_t)12 << 20);
    c = commit_of(push->repo, &t);
    ok(c && receiver_push_export(push, c, dest, &err) == -EFBIG && strstr(berth_error_msg(&err), "on one path"),
       "three nested trees of 12 MiB are refused: %s", berth_error_msg(&err));
    ok(stat(dest, &st) == 0 && st.st_nlink == 2, "... before anything is written");
}

/*
 * A commit, and a subtree, each of 64 MiB (zeros: the header is all that
 * is read): refused from the header, never read whole.
 */
static void big_commit_and_tree_refused(struct receiver_push *push, const char *tmp)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *dest = xasprintf("%s/bigobj", tmp);
    _cleanup_free_ char *c = NULL;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid big_commit = zero_object(push->repo, (size_t)64 << 20, GIT_OBJECT_COMMIT);
    git_oid big_tree = zero_object(push->repo, (size_t)64 << 20, GIT_OBJECT_TREE);
    git_oid top = fan_out(push->repo, &big_tree, true, 1);
    unsigned long before = peak_rss_kib();

    git_oid_tostr(hex, sizeof(hex), &big_commit);
    ok(receiver_push_export(push, hex, dest, &err) == -EFBIG, "a 64 MiB commit is refused: %s",
       berth_error_msg(&err));
    berth_error_release(&err);
    c = commit_of(push->repo, &top);
    ok(c && receiver_push_export(push, c, dest, &err) == -EFBIG, "a 64 MiB subtree is refused: %s",
       berth_error_msg(&err));
    ok(before && peak_rss_kib() < before + 16 * 1024, "... neither read (peak RSS %lu -> %lu KiB)", before,
       peak_rss_kib());
}

int main(void)
{
    _cleanup_error_ struct berth_error *err = NULL;
    char tmp[] = "/tmp/receiver-export-test-XXXXXX";
    struct receiver_options opts = { 0 };
    struct receiver_push push;
    git_treebuilder *tb = NULL, *sub = NULL;
    git_oid id, sub_id, tree_id, evil;
    _cleanup_free_ char *repo_path = NULL;
    _cleanup_free_ char *out = NULL;
    _cleanup_free_ char *commit = NULL;
    char link[256];
    ssize_t n;

    if (receiver_global_init(&err) < 0 || !mkdtemp(tmp)) {
        printf("Bail out! setup failed\n");
        return 1;
    }
    umask(022);
    repo_path = xasprintf("%s/repo.git", tmp);
    out = xasprintf("%s/out", tmp);
    ok(receiver_repo_init(repo_path, &err) == 0, "receiver_repo_init creates a bare repository");
    ok(receiver_repo_init(repo_path, &err) == 0, "receiver_repo_init accepts an existing repository");
    opts.repo_path = repo_path;
    push_init(&push, &opts);
    if (git_repository_open(&push.repo, repo_path) < 0) {
        printf("Bail out! cannot open the repository\n");
        return 1;
    }
    {
        git_reference *head = NULL;

        ok(git_reference_lookup(&head, push.repo, "HEAD") == 0
           && !strcmp(git_reference_symbolic_target(head), "refs/heads/main"), "HEAD points to refs/heads/main");
        git_reference_free(head);
    }

    /* a tree with a file, an executable, a symlink, a subdirectory and a submodule */
    (void)git_treebuilder_new(&sub, push.repo, NULL);
    id = blob(push.repo, "nested\n");
    (void)git_treebuilder_insert(NULL, sub, "n.txt", &id, GIT_FILEMODE_BLOB);
    (void)git_treebuilder_write(&sub_id, sub);
    git_treebuilder_free(sub);
    (void)git_treebuilder_new(&tb, push.repo, NULL);
    id = blob(push.repo, "hello\n");
    (void)git_treebuilder_insert(NULL, tb, "README", &id, GIT_FILEMODE_BLOB);
    id = blob(push.repo, "#!/bin/sh\n");
    (void)git_treebuilder_insert(NULL, tb, "run.sh", &id, GIT_FILEMODE_BLOB_EXECUTABLE);
    id = blob(push.repo, "/etc/passwd");
    (void)git_treebuilder_insert(NULL, tb, "link", &id, GIT_FILEMODE_LINK);
    (void)git_treebuilder_insert(NULL, tb, "dir", &sub_id, GIT_FILEMODE_TREE);
    (void)git_treebuilder_insert(NULL, tb, "mod", &id, GIT_FILEMODE_COMMIT);
    ok(git_treebuilder_write(&tree_id, tb) == 0, "test tree written");
    git_treebuilder_free(tb);
    commit = commit_of(push.repo, &tree_id);

    ok(commit && receiver_push_export(&push, commit, out, &err) == 0, "export succeeds: %s",
       berth_error_msg(&err));
    {
        _cleanup_free_ char *p1 = xasprintf("%s/README", out);
        _cleanup_free_ char *p2 = xasprintf("%s/run.sh", out);
        _cleanup_free_ char *p3 = xasprintf("%s/link", out);
        _cleanup_free_ char *p4 = xasprintf("%s/dir/n.txt", out);
        _cleanup_free_ char *p5 = xasprintf("%s/mod", out);
        _cleanup_free_ char *p6 = xasprintf("%s/.git", out);
        struct stat st;

        ok(file_is(p1, "hello\n", 0644), "regular file with mode 0644");
        ok(file_is(p2, "#!/bin/sh\n", 0755), "executable with mode 0755");
        n = readlink(p3, link, sizeof(link) - 1);
        ok(n == 11 && !memcmp(link, "/etc/passwd", 11), "symlink created as a symlink");
        ok(file_is(p4, "nested\n", 0644), "file in a subdirectory");
        ok(lstat(p5, &st) == 0 && S_ISDIR(st.st_mode), "submodule becomes an empty directory");
        ok(lstat(p6, &st) < 0 && errno == ENOENT, "no .git in the export");

        /* Exporting again over the first export replaces, and never writes through the symlink. */
        ok(receiver_push_export(&push, commit, out, &err) == 0, "export into a non-empty directory");
        ok(file_is(p1, "hello\n", 0644), "content unchanged after re-export");
    }

    /* hostile trees written raw: names that would escape or create .git */
    id = blob(push.repo, "pwned\n");
    {
        static const char *const bad[] = { "..", ".git", ".GIT", "." };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            _cleanup_free_ char *c = NULL;
            _cleanup_free_ char *dest = xasprintf("%s/evil%zu", tmp, i);

            evil = raw_tree(push.repo, "100644", bad[i], &id);
            c = commit_of(push.repo, &evil);
            berth_error_release(&err);
            if (!c) {
                ok(true, "libgit2 refuses to parse a tree entry named '%s'", bad[i]);
                continue;
            }
            ok(receiver_push_export(&push, c, dest, &err) == -EINVAL, "entry '%s' refused: %s", bad[i],
               berth_error_msg(&err));
        }
    }
    {
        _cleanup_free_ char *escaped = xasprintf("%s/pwned", tmp);
        struct stat st;

        ok(lstat(escaped, &st) < 0, "nothing was written outside the export directory");
    }
    berth_error_release(&err);
    ok(receiver_push_export(&push, "123", out, &err) == -EINVAL, "bad commit id refused");
    berth_error_release(&err);
    ok(receiver_push_export(&push, "1111111111111111111111111111111111111111", out, &err) < 0,
       "missing commit is an error: %s", berth_error_msg(&err));

    big_symlink_refused(&push, tmp);
    tree_bomb_refused(&push, tmp);
    big_commit_and_tree_refused(&push, tmp);
    nested_big_trees_refused(&push, tmp);

    push_release(&push);
    (void)rm_rf(tmp, NULL);
    return tap_done();
}
