/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * receiver: berth's git module: the smart-protocol server (receive-pack,
 * protocol v0) on libgit2, and the one client fetch berth needs (git
 * buildpacks). git's own receive-pack is not run: the receiver parses the
 * pkt-line command list, ingests the pack with git_indexer (connectivity
 * checked afterwards by git rev-list, update.c) into
 * a quarantine directory, asks the deploy callback whether the push may
 * land, and only then moves the pack into the repository and updates the
 * refs with an old-value check. Objects libgit2 or git would read whole
 * (commits, trees, anything a delta builds) are held to caps (push.h),
 * checked from their headers as the pack streams in, and an export counts
 * what it would write before it writes. Everything the deploy prints
 * reaches the git client as `remote: ...` lines on side-band 2; the
 * report-status goes out on side-band 1.
 *
 * It serves clone and fetch back too (upload-pack, protocol v0, packs
 * from libgit2's pack builder).
 *
 * Two transports, one core each for push and fetch: smart HTTP (stateless
 * RPC), a set of handlers that control's libmicrohttpd daemon
 * (thread-per-connection) calls for URLs under /<app>.git/; and a stream
 * session on two file descriptors (git over SSH, receiver_session()).
 * Authentication and app lookup are the caller's job.
 */
#ifndef BERTH_RECEIVER_H
#define BERTH_RECEIVER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"

struct receiver_push;

struct receiver_update {
    const char *refname;    /* "refs/heads/main" */
    char old_hex[41];       /* 40 zeros when the ref is created */
    char new_hex[41];       /* 40 zeros when the ref is deleted */
};

/*
 * Called once per push after the pack is indexed and verified, before any
 * ref moves, with the updates that passed the receiver's own checks
 * (fast-forward, old value). The new objects are readable through
 * receiver_push_export(). Return 0 to let the refs update; < 0 to reject
 * every update, with `reason` (one line) shown to the user as the ref's
 * `ng` reason. Runs on the request's thread and may take minutes (a build).
 */
typedef int (*receiver_deploy_fn)(void *cls, struct receiver_push *push,
                                  const struct receiver_update *updates, size_t n_updates,
                                  struct strbuf *reason);

/*
 * Called once after a deploy that returned 0, when the pack is published
 * and the refs have moved, or failed to: `ok` is whether every update the
 * deploy accepted is now in place. A push that is not atomic can land some
 * of them and not others (main moves, another ref fails): a deploy that
 * depends on one ref asks receiver_push_ref_landed() for that ref's own
 * outcome rather than reading !ok as "my ref did not move". Runs before
 * the report goes out, so its receiver_progress() lines still reach the
 * client; a deploy that holds something until its push is settled (a
 * lock, a started release) lets go of it here. Never called when the
 * deploy rejected the push.
 */
typedef void (*receiver_settled_fn)(void *cls, struct receiver_push *push, bool ok);

struct receiver_options {
    const char *repo_path;          /* bare repository */
    receiver_deploy_fn deploy;      /* NULL: accept every update */
    receiver_settled_fn settled;    /* NULL: nothing to settle */
    void *deploy_cls;               /* for both; must outlive the request (the options are copied) */
    size_t max_request_bytes;       /* cap on a push (a POST body, a pack over ssh); 0: the default 512 MiB */
    size_t max_objects;             /* cap on a pack's object count; 0: the default 1,000,000 */
};

/*
 * Sends one progress line to the client's `remote:` output (side-band 2),
 * adding the newline. Safe to call from any thread while deploy runs.
 */
void receiver_progress(struct receiver_push *push, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * The push options the client sent (`git push -o KEY[=VALUE]`), in order.
 * receiver_push_option() is the value of the last "KEY=VALUE" for `key`
 * ("" for a bare "KEY"), NULL when none names it.
 */
size_t receiver_push_option_count(const struct receiver_push *push);
const char *receiver_push_option_at(const struct receiver_push *push, size_t i);
const char *receiver_push_option(const struct receiver_push *push, const char *key);
/*
 * The outcome of the push's update of `refname` ("refs/heads/main"), for
 * the settled callback: 1 the ref now holds the update's new value, 0 the
 * update was accepted by the deploy but failed to land, -ENOENT the push
 * had no update of it that reached the ref writes.
 */
int receiver_push_ref_landed(const struct receiver_push *push, const char *refname);
/* Writes the tree of `commit_hex` (incl. quarantined objects) into dest_dir. */
int receiver_push_export(struct receiver_push *push, const char *commit_hex, const char *dest_dir,
                         struct berth_error **err);

/*
 * The git client side, for buildpacks given as git URLs: fetches `url` into
 * the bare cache repository `cache_dir` (created on first use; one fetch at
 * a time per cache), resolves `ref` (a branch, tag or commit id; NULL: the
 * remote's HEAD) and writes that commit's tree into dest_dir with the same
 * safe export as pushes. *ret_commit (malloc'ed) is the commit's hex id.
 * A fetch is capped at 256 MiB and 5 minutes: every name lookup,
 * connect, read and write waits no later than the deadline, over ssh://
 * too (fetch.c). Unless `trusted` (the operator's own tenant), it connects
 * to no address of this host (common/hostaddr.h), whatever name led there.
 */
int receiver_fetch_tree(const char *url, const char *ref, bool trusted, const char *cache_dir,
                        const char *dest_dir, char **ret_commit, struct berth_error **err);

/* Creates a bare repository at path (HEAD -> refs/heads/main); existing is fine. */
int receiver_repo_init(const char *path, struct berth_error **err);

/*
 * Housekeeping after a push that moved refs, as git's own receive-pack does
 * (receive.autogc): runs `git gc --auto --quiet` on the bare repository
 * under its push lock, so every push's pack is folded into one once there
 * are more than gc.autoPackLimit (50) of them. Blocks until git is done;
 * the receiver calls it after the client has its report.
 */
int receiver_repo_maintain(const char *path, struct berth_error **err);

/*
 * The smart-HTTP handler. `subpath` is what follows "/<app>.git/":
 * "info/refs" (GET, ?service=git-receive-pack) or "git-receive-pack"
 * (POST). Anything else (including upload-pack, which berth does not serve)
 * gets a clear error response. Call it for every access-handler call of the
 * request, passing a pointer to a per-request slot that starts NULL; call
 * receiver_http_completed() on that slot from MHD_OPTION_NOTIFY_COMPLETED.
 */
enum MHD_Result receiver_http_handle(struct MHD_Connection *conn, const char *subpath,
                                     const char *method, const char *upload_data,
                                     size_t *upload_data_size, void **slot,
                                     const struct receiver_options *opts);
void receiver_http_completed(void **slot);

/*
 * One git session over a byte stream, as git's receive-pack or upload-pack
 * (`service`) speaks it on stdin/stdout over SSH: the advertisement, then
 * the push (with opts' deploy) or the fetch. Blocks until the session is
 * over. *ret_moved: the push moved a ref (the caller then runs
 * receiver_repo_maintain(), after the client has gone). Returns 0, or
 * -errno with *err saying why (a refused push included: -EIO), for the
 * session's exit status and stderr.
 */
int receiver_session(const char *service, int in_fd, int out_fd, const struct receiver_options *opts,
                     bool *ret_moved, struct berth_error **err);

/* Process-wide libgit2 setup (git_libgit2_init and limits); call once from main(). */
int receiver_global_init(struct berth_error **err);

#endif
