/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Deciding which refs move (see update.h). Checks follow git receive-pack:
 * only valid names under refs/heads/, the new object must exist and be a
 * commit, and the old value the client saw must
 * still be the ref's value. The deploy callback then sees the updates that
 * passed; only when it accepts is the pack published and are the refs moved,
 * each with its old value compared under the ref lock (libgit2's
 * git_reference_create_matching), or all together in a git_transaction for
 * an atomic push. A name that would clash with another ref as file and
 * directory (git's rule) is refused before anything is written, so that
 * libgit2's transaction, which writes its refs one after another, cannot
 * stop halfway on it; should it stop halfway for another reason, the
 * report says which refs moved.
 *
 * One push at a time per repository: the checks, the deploy and the ref
 * updates run under the repository's push lock (repo_lock() in repo.c,
 * which git gc also takes after a push). Without it a second push could
 * pass its old-value check while the first one deploys, deploy after it,
 * and then fail its ref update as stale with its release already serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "receiver/update.h"
#include "common/banned.h"

static void fail(struct push_command *c, const char *reason)
{
    if (!c->error)
        c->error = xstrdup(reason);
}

static void fail_git(struct push_command *c, const char *what)
{
    _cleanup_free_ char *msg = git_error_copy();

    if (!c->error)
        c->error = xasprintf("%s: %s", what, msg);
}

/*
 * git's own connectivity check (its connected.c): every object the new
 * tips reach and the repository did not have must be in the pack. git
 * rev-list reads commits and trees and only looks blobs up, so its memory
 * does not grow with a push's files. A failure fails every update with
 * "missing necessary objects", as git receive-pack says it.
 */
static void check_connected(struct receiver_push *p)
{
    extern char **environ;
    _cleanup_free_ char *git_dir = xasprintf("--git-dir=%s", git_repository_path(p->repo));
    _cleanup_free_ char *alt = p->quarantine ? xasprintf("GIT_ALTERNATE_OBJECT_DIRECTORIES=%s", p->quarantine)
                                             : NULL;
    _cleanup_free_ char **argv = xcalloc(p->n_cmds + 10, sizeof(*argv));
    _cleanup_free_ char **env = NULL;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_close_ int null_fd = -1;
    size_t n = 0, tips = 0, envc = 0;

    argv[n++] = (char *)"git";
    argv[n++] = git_dir;
    argv[n++] = (char *)"rev-list";
    argv[n++] = (char *)"--objects";
    argv[n++] = (char *)"--quiet";
    for (size_t i = 0; i < p->n_cmds; i++)
        if (!p->cmds[i].error && !git_oid_is_zero(&p->cmds[i].new_oid)) {
            argv[n++] = p->cmds[i].new_hex;
            tips++;
        }
    if (tips == 0)
        return;
    argv[n++] = (char *)"--not";
    argv[n++] = (char *)"--all";
    while (environ[envc])
        envc++;
    env = xcalloc(envc + 2, sizeof(*env));
    memcpy(env, environ, envc * sizeof(*env));
    env[envc] = alt;
    null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0 || repo_run_git(argv, env, null_fd, &err) < 0)
        for (size_t i = 0; i < p->n_cmds; i++)
            if (!git_oid_is_zero(&p->cmds[i].new_oid))
                fail(&p->cmds[i], "missing necessary objects");
}

/* Why a new tip cannot be taken (NULL: it is a commit), from the object's header alone. */
static const char *tip_type_error(struct receiver_push *p, const git_oid *id)
{
    git_object_t type = GIT_OBJECT_INVALID;
    size_t size = 0;

    if (repo_object_header(p->repo, id, &size, &type) < 0)
        return "missing necessary objects";
    return type == GIT_OBJECT_COMMIT ? NULL : "not a commit";
}

static void check_command(struct receiver_push *p, struct push_command *c)
{
    git_oid current;
    bool exists, is_delete = git_oid_is_zero(&c->new_oid);
    const char *why;
    int valid = 0, k;

    if (strncmp(c->refname, "refs/heads/", 11) || git_reference_name_is_valid(&valid, c->refname) < 0
        || !valid) {
        fail(c, "funny refname");
        return;
    }
    k = git_reference_name_to_id(&current, p->repo, c->refname);
    if (k < 0 && k != GIT_ENOTFOUND) {
        fail_git(c, "failed to read ref");
        return;
    }
    exists = k == 0;

    if (!is_delete && (why = tip_type_error(p, &c->new_oid))) {
        fail(c, why);
        return;
    }

    /* The old value the client saw must still hold (git: "stale info"). */
    if (git_oid_is_zero(&c->old_oid)) {
        if (exists) {
            fail(c, "already exists");
            return;
        }
        return;
    }
    if (!exists || !git_oid_equal(&current, &c->old_oid)) {
        fail(c, "stale info");
        return;
    }
    /*
     * A non-fast-forward (git push --force) is allowed, as on Heroku and
     * with git's own default (receive.denyNonFastForwards false): the
     * old-value check above is what keeps two pushers from overwriting
     * each other unseen.
     */
}

/* Whether `name` lies below `dir` (`dir` + "/" + more): `dir` would be a directory of `name`. */
static bool is_below(const char *name, const char *dir)
{
    size_t n = strlen(dir);

    return strncmp(name, dir, n) == 0 && name[n] == '/';
}

/*
 * The existing ref `c`'s name clashes with as a file or directory (a
 * malloc'ed name), or NULL: a ref one of whose leading directories is a
 * ref (refs/heads/q for refs/heads/q/r), or a ref below it (refs/heads/q/r
 * for refs/heads/q). A ref the same push deletes still counts: libgit2
 * writes a transaction's refs in no fixed order.
 */
static char *existing_conflict(struct receiver_push *p, const struct push_command *c)
{
    _cleanup_free_ char *glob = xasprintf("%s/*", c->refname);
    _cleanup_free_ char *dir = xstrdup(c->refname);
    git_reference_iterator *it = NULL;
    const char *below = NULL;
    char *found = NULL;
    git_oid id;

    for (char *slash = dir + strlen("refs/heads/"); (slash = strchr(slash, '/')); *slash++ = '/') {
        *slash = '\0';
        if (git_reference_name_to_id(&id, p->repo, dir) == 0)
            return xstrdup(dir);
    }
    if (git_reference_iterator_glob_new(&it, p->repo, glob) == 0 && git_reference_next_name(&below, it) == 0)
        found = xstrdup(below);
    git_reference_iterator_free(it);
    return found;
}

/*
 * git's rule for names (refs_verify_refname_available): a ref cannot be
 * created where it would be a directory of another ref or have one as its
 * directory, in the repository or among the same push's updates. Checked
 * for every update before anything is written, so that the ref writes
 * (one after another, also in a transaction) cannot fail halfway on it.
 */
static void check_names(struct receiver_push *p)
{
    for (size_t i = 0; i < p->n_cmds; i++) {
        struct push_command *c = &p->cmds[i];
        _cleanup_free_ char *clash = NULL;

        if (c->error || git_oid_is_zero(&c->new_oid))
            continue;
        for (size_t j = 0; j < p->n_cmds; j++) {
            const char *other = p->cmds[j].refname;

            if (j != i && !git_oid_is_zero(&p->cmds[j].new_oid)
                && (!strcmp(c->refname, other) || is_below(c->refname, other) || is_below(other, c->refname))) {
                _cleanup_free_ char *why = xasprintf("cannot update '%s' and '%s' in one push", c->refname, other);

                fail(c, why);
                break;
            }
        }
        if (!c->error && (clash = existing_conflict(p, c))) {
            _cleanup_free_ char *why = xasprintf("'%s' exists; cannot create '%s'", clash, c->refname);

            fail(c, why);
        }
    }
}

/* Every command still ok gets `reason`. */
static void fail_all(struct receiver_push *p, const char *reason)
{
    for (size_t i = 0; i < p->n_cmds; i++)
        fail(&p->cmds[i], reason);
}

static size_t count_ok(const struct receiver_push *p)
{
    size_t n = 0;

    for (size_t i = 0; i < p->n_cmds; i++)
        n += !p->cmds[i].error;
    return n;
}

static int run_deploy(struct receiver_push *p)
{
    _cleanup_strbuf_ struct strbuf reason = STRBUF_INIT;
    _cleanup_free_ struct receiver_update *ups = NULL;
    size_t n = 0;
    int k;

    if (!p->opts->deploy)
        return 0;
    ups = xcalloc(p->n_cmds, sizeof(*ups));
    for (size_t i = 0; i < p->n_cmds; i++) {
        struct push_command *c = &p->cmds[i];

        if (c->error)
            continue;
        ups[n].refname = c->refname;
        memcpy(ups[n].old_hex, c->old_hex, sizeof(c->old_hex));
        memcpy(ups[n].new_hex, c->new_hex, sizeof(c->new_hex));
        n++;
    }
    k = p->opts->deploy(p->opts->deploy_cls, p, ups, n, &reason);
    if (k >= 0)
        return 0;
    /* The reason becomes one `ng` line: keep it one line and printable. */
    for (size_t i = 0; i < reason.len; i++)
        if ((unsigned char)reason.buf[i] < 0x20)
            reason.buf[i] = ' ';
    strbuf_rtrim(&reason);
    fail_all(p, reason.len ? reason.buf : "deploy failed");
    return -1;
}

static void update_one(struct receiver_push *p, struct push_command *c)
{
    git_reference *ref = NULL;
    int k;

    if (git_oid_is_zero(&c->new_oid)) {
        k = git_reference_lookup(&ref, p->repo, c->refname);
        if (k < 0) {
            fail(c, k == GIT_ENOTFOUND ? "stale info" : "failed to delete");
            return;
        }
        if (!git_oid_equal(git_reference_target(ref), &c->old_oid)) {
            git_reference_free(ref);
            fail(c, "stale info");
            return;
        }
        /* libgit2 re-checks the value it looked up under the ref lock. */
        k = git_reference_delete(ref);
        git_reference_free(ref);
        if (k == GIT_EMODIFIED)
            fail(c, "stale info");
        else if (k < 0)
            fail_git(c, "failed to delete");
        return;
    }
    /*
     * force must be 1 for an update: with force 0 libgit2 refuses any
     * existing ref with GIT_EEXISTS before it looks at the old value. The
     * compare-and-swap against old_oid is what protects the update.
     */
    if (git_oid_is_zero(&c->old_oid))
        k = git_reference_create_matching(&ref, p->repo, c->refname, &c->new_oid, 0, NULL, "push");
    else
        k = git_reference_create_matching(&ref, p->repo, c->refname, &c->new_oid, 1, &c->old_oid,
                                          "push");
    git_reference_free(ref);
    if (k == GIT_EMODIFIED)
        fail(c, "stale info");
    else if (k == GIT_EEXISTS)
        fail(c, "already exists");
    else if (k < 0)
        fail_git(c, "failed to update ref");
}

/*
 * After a failed git_transaction_commit(): libgit2 1.5 writes the refs one
 * after another and stops at the first failure, keeping those already
 * written. An update whose ref now holds its new value moved and stays ok;
 * the others fail, so the report says exactly which refs moved.
 */
static void fail_unmoved(struct receiver_push *p, const char *msg)
{
    _cleanup_free_ char *why = xasprintf("atomic transaction failed midway: %s", msg);

    for (size_t i = 0; i < p->n_cmds; i++) {
        struct push_command *c = &p->cmds[i];
        git_oid current;
        int k;

        if (c->error)
            continue;
        k = git_reference_name_to_id(&current, p->repo, c->refname);
        if (git_oid_is_zero(&c->new_oid) ? k != GIT_ENOTFOUND : (k < 0 || !git_oid_equal(&current, &c->new_oid)))
            fail(c, why);
    }
}

static void update_atomic(struct receiver_push *p)
{
    git_transaction *tx = NULL;
    const char *bad = NULL;
    int k;

    k = git_transaction_new(&tx, p->repo);
    if (k < 0) {
        _cleanup_free_ char *msg = git_error_copy();
        _cleanup_free_ char *why = xasprintf("atomic transaction failed: %s", msg);

        fail_all(p, why);
        return;
    }
    for (size_t i = 0; i < p->n_cmds && !bad; i++) {
        struct push_command *c = &p->cmds[i];
        git_oid current;
        bool exists;

        if (git_transaction_lock_ref(tx, c->refname) < 0) {
            fail_git(c, "failed to lock");
            bad = "atomic push failure";
            break;
        }
        /* Read under the lock, so the comparison cannot race another push. */
        k = git_reference_name_to_id(&current, p->repo, c->refname);
        exists = k == 0;
        if (git_oid_is_zero(&c->old_oid) ? exists : (!exists || !git_oid_equal(&current, &c->old_oid))) {
            fail(c, exists && git_oid_is_zero(&c->old_oid) ? "already exists" : "stale info");
            bad = "atomic push failure";
            break;
        }
        if (git_oid_is_zero(&c->new_oid))
            k = git_transaction_remove(tx, c->refname);
        else
            k = git_transaction_set_target(tx, c->refname, &c->new_oid, NULL, "push");
        if (k < 0) {
            fail_git(c, "failed to update ref");
            bad = "atomic push failure";
        }
    }
    if (!bad && (k = git_transaction_commit(tx)) < 0) {
        _cleanup_free_ char *msg = git_error_copy();

        fail_unmoved(p, msg);
    }
    git_transaction_free(tx);   /* unlocks whatever is still locked */
    if (bad)
        fail_all(p, bad);
}

static void say_waiting(void *cls)
{
    receiver_progress(cls, "Waiting for another push to this app to finish...");
}

void update_run(struct receiver_push *p)
{
    _cleanup_error_ struct berth_error *err = NULL;
    /* Tells the client when it has to wait. */
    _cleanup_close_ int lock_fd = repo_lock(git_repository_path(p->repo), say_waiting, p);
    size_t accepted;

    if (lock_fd < 0) {
        fail_all(p, "cannot lock the repository");
        return;
    }
    for (size_t i = 0; i < p->n_cmds; i++)
        check_command(p, &p->cmds[i]);
    check_names(p);
    check_connected(p);
    /* An atomic push is all or nothing, decided before the deploy runs. */
    if (p->atomic && count_ok(p) != p->n_cmds)
        fail_all(p, "atomic push failure");
    if (count_ok(p) == 0)
        return;
    accepted = count_ok(p);
    if (run_deploy(p) < 0)
        return;
    for (size_t i = 0; i < p->n_cmds; i++)
        p->cmds[i].accepted = !p->cmds[i].error;
    if (push_publish_pack(p, &err) < 0) {
        _cleanup_free_ char *why = xasprintf("failed to store pack: %s", berth_error_msg(&err));

        fail_all(p, why);
    } else if (p->atomic) {
        update_atomic(p);
    } else {
        for (size_t i = 0; i < p->n_cmds; i++)
            if (!p->cmds[i].error)
                update_one(p, &p->cmds[i]);
    }
    /* The deploy accepted every update still without an error before the pack went in. */
    if (p->opts->deploy && p->opts->settled)
        p->opts->settled(p->opts->deploy_cls, p, count_ok(p) == accepted);
}

int receiver_push_ref_landed(const struct receiver_push *push, const char *refname)
{
    for (size_t i = 0; i < push->n_cmds; i++)
        if (push->cmds[i].accepted && !strcmp(push->cmds[i].refname, refname))
            return !push->cmds[i].error;
    return -ENOENT;
}
