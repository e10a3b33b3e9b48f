/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: whole-tree operations on trees that containers wrote
 * (runner_remove_tree, runner_seal_tree, runner_tree_usage). Such a tree
 * mixes owners: berth's uid (the directories berth made for containers to
 * write into) and the tenant's subordinate ids (everything the containers
 * created), which berth's uid alone may neither delete nor change, nor
 * always read. So each operation runs in a worker cloned into a fresh user
 * namespace with the tenant's id mapping (worker.c). The worker keeps its
 * uid: as the owner it may still act on berth's own entries, and its
 * capabilities in the namespace cover every inode whose owner and group the
 * mapping holds (the kernel grants CAP_DAC_OVERRIDE, CAP_FOWNER and friends
 * only over mapped owners). Inside, an owner outside the mapping shows as
 * the overflow id (65534).
 *
 * These walks can take seconds (a big node_modules), so the spawner never
 * waits for one: it starts the worker and answers at once, and the worker
 * sends the result straight to the daemon (proto.h, the tree requests).
 */
#ifndef BERTH_RUNNER_TREE_H
#define BERTH_RUNNER_TREE_H

#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "runner/proto.h"
#include "runner/runner.h"

/*
 * Each level of a walk holds a directory fd; the seal and the usage walk
 * refuse deeper trees rather than half-do them silently, and the removal
 * moves what lies deeper up (remove.c).
 */
#define TREE_MAX_DEPTH RUNNER_TREE_MAX_DEPTH

/*
 * In the spawner: checks the request, clones the worker, writes its id maps
 * and lets it go. The worker sends its result (a proto_reply: code,
 * message, and for REQ_USAGE the byte count in v[0]) on reply_fd and exits;
 * the spawner only has to reap it through *ret_pidfd, its pidfd, which the
 * spawner owns. On failure nothing is left running and nothing was sent on
 * reply_fd.
 */
int tree_worker_start(enum proto_request type, const struct proto_tree_req *req, int reply_fd,
                      int *ret_pidfd, struct berth_error **err);

/* The jobs, in the worker's user namespace. `path` is absolute and not "/". */

/* Removes `path` and everything below it; missing is fine (remove.c). */
int tree_remove(const char *path, struct berth_error **err);
/* runner_seal_tree() (walk.c). */
int tree_seal(const char *path, struct berth_error **err);
/* runner_tree_usage() (walk.c): st_blocks * 512 over the trees, each inode once. */
int tree_usage(const char *const *paths, uint64_t *ret_bytes, struct berth_error **err);

#endif
