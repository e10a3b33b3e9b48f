/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * receiver_fetch_tree(): the one git *client* operation berth needs, a
 * fetch of a buildpack given as a git URL (HEROKU.md §1.5: `.buildpacks`
 * lines are git URLs with an optional #ref). It lives here because the
 * receiver is berth's git module: it owns libgit2 and the safe tree export
 * that pushes use too.
 *
 * Every URL gets a bare cache repository, so a rebuild fetches only what is
 * new; one fetch at a time per cache (flock on a lock file beside it). All
 * branches and tags are fetched, and the remote's HEAD as refs/berth/HEAD,
 * so that a #ref may name a branch, a tag or any commit reachable from them
 * (servers need not serve a bare commit id in a want). A fetch is bounded
 * in time and size through the transfer-progress callback, which libgit2
 * aborts on when it returns non-zero.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "receiver/push.h"
#include "receiver/receiver.h"
#include "common/banned.h"

#define FETCH_MAX_BYTES (256u << 20)
#define FETCH_MAX_SECONDS (5 * 60)

struct fetch_limits {
    time_t deadline;
    bool too_big, too_slow;
};

static int on_progress(const git_indexer_progress *stats, void *payload)
{
    struct fetch_limits *l = payload;

    if (stats->received_bytes > FETCH_MAX_BYTES) {
        l->too_big = true;
        return -1;
    }
    if (time(NULL) > l->deadline) {
        l->too_slow = true;
        return -1;
    }
    return 0;
}

static int lock_cache(const char *cache_dir, struct berth_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s.lock", cache_dir);
    _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0)
        return berth_error_make(err, errno, "opening '%s'", path);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "locking '%s'", path);
    return TAKE_FD(fd);
}

static int open_cache(const char *cache_dir, git_repository **ret, struct berth_error **err)
{
    int k = git_repository_open_bare(ret, cache_dir);

    if (k == 0)
        return 0;
    (void)rm_rf(cache_dir, NULL);
    k = git_repository_init(ret, cache_dir, 1);
    if (k < 0)
        return git_to_berth_error(err, k, "creating the buildpack cache '%s'", cache_dir);
    return 0;
}

static int fetch(git_repository *repo, const char *url, struct berth_error **err)
{
    static char *specs[] = {
        (char *)"+refs/heads/*:refs/remotes/origin/*",
        (char *)"+refs/tags/*:refs/tags/*",
        (char *)"+HEAD:refs/berth/HEAD",
    };
    const git_strarray refspecs = { specs, sizeof(specs) / sizeof(*specs) };
    git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
    struct fetch_limits limits = { .deadline = time(NULL) + FETCH_MAX_SECONDS };
    git_remote *remote = NULL;
    int k;

    k = git_remote_create_anonymous(&remote, repo, url);
    if (k < 0)
        return git_to_berth_error(err, k, "'%s' is not a URL git can fetch", url);
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    opts.prune = GIT_FETCH_PRUNE;
    opts.callbacks.transfer_progress = on_progress;
    opts.callbacks.payload = &limits;
    k = git_remote_fetch(remote, &refspecs, &opts, NULL);
    git_remote_free(remote);
    if (k < 0 && limits.too_big)
        return berth_error_plain(err, EFBIG, "cannot fetch '%s': it is larger than %u MiB", url,
                                 FETCH_MAX_BYTES >> 20);
    if (k < 0 && limits.too_slow)
        return berth_error_plain(err, ETIMEDOUT, "cannot fetch '%s': it took longer than %d "
                                 "seconds", url, FETCH_MAX_SECONDS);
    if (k < 0)
        return git_to_berth_error(err, k, "cannot fetch '%s'", url);
    return 0;
}

static bool is_hex(const char *s, size_t min)
{
    size_t n = strlen(s);

    if (n < min || n > GIT_OID_HEXSZ)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* The commit `ref` names: a branch, then a tag, then a (possibly abbreviated) commit id. */
static int resolve(git_repository *repo, const char *url, const char *ref, git_oid *ret,
                   struct berth_error **err)
{
    const char *prefixes[] = { "refs/remotes/origin/", "refs/tags/" };
    git_object *obj = NULL;
    int k;

    if (!ref) {
        k = git_revparse_single(&obj, repo, "refs/berth/HEAD^{commit}");
        if (k < 0)
            return git_to_berth_error(err, k, "'%s' has no default branch", url);
        git_oid_cpy(ret, git_object_id(obj));
        git_object_free(obj);
        return 0;
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
        _cleanup_free_ char *spec = xasprintf("%s%s^{commit}", prefixes[i], ref);

        if (git_revparse_single(&obj, repo, spec) == 0) {
            git_oid_cpy(ret, git_object_id(obj));
            git_object_free(obj);
            return 0;
        }
    }
    if (is_hex(ref, 7)) {
        _cleanup_free_ char *spec = xasprintf("%s^{commit}", ref);

        if (git_revparse_single(&obj, repo, spec) == 0) {
            git_oid_cpy(ret, git_object_id(obj));
            git_object_free(obj);
            return 0;
        }
    }
    return berth_error_plain(err, ENOENT, "'%s' is neither a branch, a tag nor a commit of '%s'",
                             ref, url);
}

int receiver_fetch_tree(const char *url, const char *ref, const char *cache_dir,
                        const char *dest_dir, char **ret_commit, struct berth_error **err)
{
    _cleanup_close_ int lock_fd = -1;
    git_repository *repo = NULL;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid oid;
    int r;

    if ((r = mkdir_p(cache_dir, 0700, err)) < 0)
        return r;
    lock_fd = lock_cache(cache_dir, err);
    if (lock_fd < 0)
        return lock_fd;
    if ((r = open_cache(cache_dir, &repo, err)) < 0)
        return r;
    r = fetch(repo, url, err);
    if (r == 0)
        r = resolve(repo, url, ref, &oid, err);
    if (r == 0)
        r = export_commit(repo, &oid, dest_dir, err);
    git_repository_free(repo);
    if (r < 0)
        return r;
    git_oid_tostr(hex, sizeof(hex), &oid);
    *ret_commit = xstrdup(hex);
    return 0;
}
