/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Repository-level pieces of the receiver: process-wide libgit2 setup, bare
 * repository creation and housekeeping, the ref advertisement, and the
 * single adapter that turns libgit2 result codes and messages into berth
 * errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "receiver/push.h"
#include "common/banned.h"

/*
 * A pack header declares its object count; libgit2 sizes its index tables
 * from it before seeing a single object, so a hostile 4-byte count could ask
 * for gigabytes. Ten million objects is far above any app (linux.git has
 * about ten million) and still bounds that allocation.
 */
#define RECEIVER_PACK_MAX_OBJECTS (10u * 1000u * 1000u)

char *git_error_copy(void)
{
    const git_error *e = git_error_last();

    return xstrdup(e && e->message ? e->message : "unknown libgit2 error");
}

static int errno_of(int git_code)
{
    switch (git_code) {
    case GIT_ENOTFOUND:
        return ENOENT;
    case GIT_EEXISTS:
        return EEXIST;
    case GIT_EMODIFIED:
        return ESTALE;
    case GIT_ELOCKED:
        return EBUSY;
    case GIT_EINVALIDSPEC:
    case GIT_EINVALID:
        return EINVAL;
    case GIT_EBUFS:
        return ENOBUFS;
    case GIT_EUSER:
        return ECANCELED;
    default:
        return EIO;
    }
}

int git_to_berth_error(struct berth_error **err, int git_code, const char *fmt, ...)
{
    _cleanup_free_ char *gmsg = git_error_copy();
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    return berth_error_plain(err, errno_of(git_code), "%s: %s", sb.buf, gmsg);
}

int repo_object_header(git_repository *repo, const git_oid *id, size_t *ret_size, git_object_t *ret_type)
{
    git_odb *odb = NULL;
    int k = git_repository_odb(&odb, repo);

    if (k == 0)
        k = git_odb_read_header(ret_size, ret_type, odb, id);
    git_odb_free(odb);
    return k;
}

int receiver_global_init(struct berth_error **err)
{
    int r = git_libgit2_init();

    if (r < 0)
        return git_to_berth_error(err, r, "initialising libgit2");
    r = git_libgit2_opts(GIT_OPT_SET_PACK_MAX_OBJECTS, (size_t)RECEIVER_PACK_MAX_OBJECTS);
    if (r < 0)
        return git_to_berth_error(err, r, "setting the pack object limit");
    /* A push acknowledged to the client must survive a crash of the box. */
    r = git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
    if (r < 0)
        return git_to_berth_error(err, r, "enabling fsync");
    return 0;
}

int receiver_repo_init(const char *path, struct berth_error **err)
{
    git_repository *repo = NULL;
    git_repository_init_options o = GIT_REPOSITORY_INIT_OPTIONS_INIT;
    int r;

    /* An existing repository is left alone: re-initialising could move HEAD. */
    if (git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE,
                                NULL) == 0) {
        git_repository_free(repo);
        return 0;
    }
    o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
    o.initial_head = "main";
    r = git_repository_init_ext(&repo, path, &o);
    if (r < 0)
        return git_to_berth_error(err, r, "creating repository '%s'", path);
    git_repository_free(repo);
    return 0;
}

static void add_ref_line(struct strbuf *out, const char *hex, const char *name, bool first)
{
    /* Names come from our own refdb, so a line never nears the packet cap. */
    if (first)
        (void)pktline_addf(out, "%s %s%c%s\n", hex, name, '\0', RECEIVER_CAPS);
    else
        (void)pktline_addf(out, "%s %s\n", hex, name);
}

int advertise_refs(git_repository *repo, struct strbuf *out, struct berth_error **err)
{
    git_reference_iterator *it = NULL;
    git_reference *ref;
    bool first = true;
    int r;

    r = git_reference_iterator_new(&it, repo);
    if (r < 0)
        return git_to_berth_error(err, r, "listing refs");
    while ((r = git_reference_next(&ref, it)) == 0) {
        /* Symbolic refs (HEAD) are not advertised to a pusher; git does the same. */
        if (git_reference_type(ref) == GIT_REFERENCE_DIRECT) {
            char hex[GIT_OID_HEXSZ + 1];

            git_oid_tostr(hex, sizeof(hex), git_reference_target(ref));
            add_ref_line(out, hex, git_reference_name(ref), first);
            first = false;
        }
        git_reference_free(ref);
    }
    if (r != GIT_ITEROVER) {
        r = git_to_berth_error(err, r, "listing refs");
        git_reference_iterator_free(it);
        return r;
    }
    git_reference_iterator_free(it);
    /* An empty repository still has to carry the capabilities somewhere. */
    if (first)
        add_ref_line(out, "0000000000000000000000000000000000000000", "capabilities^{}", true);
    pktline_add_flush(out);
    return 0;
}

/*
 * libgit2 has no gc: it writes a new pack per push and never repacks, so
 * git itself does it, as Dokku and Piku rely on git receive-pack's autogc.
 * The push lock (update.c) keeps a push from publishing a pack while git
 * repacks; a push that arrives meanwhile says it is waiting.
 */
int repo_lock(const char *git_dir, void (*waiting)(void *cls), void *cls)
{
    _cleanup_free_ char *path = xasprintf("%s/berth-push.lock", git_dir);
    _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return TAKE_FD(fd);
    if (errno != EWOULDBLOCK)
        return -errno;
    if (waiting)
        waiting(cls);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return -errno;
    return TAKE_FD(fd);
}

int repo_run_git(char *const *argv, char *const *env, int out_fd, struct berth_error **err)
{
    posix_spawn_file_actions_t fa;
    extern char **environ;
    pid_t pid;
    int r, status;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    r = posix_spawnp(&pid, "git", &fa, NULL, argv, env ? env : environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0)
        return berth_error_make(err, r, "running git");
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "waiting for git");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return berth_error_plain(err, EIO, "git failed (status 0x%x)", (unsigned)status);
    return 0;
}

int receiver_repo_maintain(const char *path, struct berth_error **err)
{
    _cleanup_free_ char *git_dir = xasprintf("--git-dir=%s", path);
    /* Attached: a detached gc would run on after the push lock is let go. */
    char *argv[] = { (char *)"git", (char *)"-c", (char *)"gc.autoDetach=false", git_dir, (char *)"gc",
                     (char *)"--auto", (char *)"--quiet", NULL };
    _cleanup_close_ int lock_fd = repo_lock(path, NULL, NULL);

    if (lock_fd < 0)
        return berth_error_make(err, -lock_fd, "locking the repository '%s'", path);
    /* git's output, if any, goes to the server log; it reads nothing. */
    if (repo_run_git(argv, NULL, STDERR_FILENO, err) < 0)
        return berth_error_wrap(err, "'git gc --auto' in '%s'", path);
    return 0;
}
