/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What runner/cgroup-layout.c (finding the hierarchies, root's delegation,
 * the berth user's check) and runner/cgroup.c (one container's cgroup:
 * create, enter, kill, remove) share: the layout and small file helpers;
 * mounts-cgroup.c also reads /proc/self/cgroup with them. Not for use
 * outside the runner; runner/cgroup.h is the interface.
 */
#ifndef BERTH_RUNNER_CGROUP_INTERNAL_H
#define BERTH_RUNNER_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"
/* berth's delegated cgroup is "berth-<user>": one subtree per operator (uid). */
#define BERTH_CGROUP_PREFIX "berth-"
/* v2: the leaf a daemon started in a delegated cgroup moves itself into, beside its subtree. */
#define BERTH_SUPERVISOR_CGROUP "berth-supervisor"
/* Caps on what we accept from callers and read from the kernel. */
#define MAX_RELPATH 1024
#define MAX_DEPTH 16
#define MAX_PROCFILE (4u << 20)
#define MAX_CTRL 3

/*
 * berth_error_wrap() answers -EIO when the caller passed no error object;
 * keep the real code in that case.
 */
#define WRAP(r, err, ...) ((err) ? berth_error_wrap((err), __VA_ARGS__) : (r))

struct cgroup_ctrl {
    char *name;   /* "memory", "pids", "cpu" (co-mounted: "memory,pids"); "unified" on v2 */
    char *root;   /* absolute path of berth's delegated cgroup in this hierarchy */
};

struct cgroup_layout {
    bool v2;
    size_t n;
    struct cgroup_ctrl ctrl[MAX_CTRL];
};

/*
 * The name of the subtree delegated to `uid`: "berth-<user name>", or
 * "berth-<uid>" for a uid without a passwd entry (malloc'ed).
 */
char *cgroup_subtree_name(uid_t uid);
/* Writes `value` in one write(), as cgroup files need. */
int cgroup_write_str(const char *path, const char *value, struct berth_error **err);
/* Reads a small kernel file into `out`, trailing whitespace trimmed. */
int cgroup_read_str(const char *path, struct strbuf *out, struct berth_error **err);
bool cgroup_file_exists(const char *dir, const char *name);
/*
 * Splits one /proc/self/cgroup line, "id:controllers:path" (the path may
 * itself hold ':'), in place. v2's line has empty controllers. Returns
 * false for a malformed line.
 */
bool cgroup_split_proc_line(char *line, char **ret_controllers, char **ret_path);
/* Whether `word` is one of the `sep`-separated words of `list`. */
bool cgroup_has_word(const char *list, const char *word, char sep);
/* The hierarchy that carries controller `name` (v2: the one tree), or NULL. */
const struct cgroup_ctrl *cgroup_find_ctrl(const struct cgroup_layout *l, const char *name);
/* v2: switches berth's controllers on in `dir`'s cgroup.subtree_control. */
int cgroup_enable_controllers(const char *dir, struct berth_error **err);
/*
 * Root's delegation over a given layout (runner_cgroup_delegate() finds
 * it): makes each root, hands it and its delegated files to uid:gid, and
 * every cgroup below it whole (repairing what another owner left). v2:
 * switches the controllers on in the parent and in the root. Idempotent.
 */
int cgroup_delegate_layout(const struct cgroup_layout *l, uid_t uid, gid_t gid, struct berth_error **err);
/*
 * The berth user's own delegation, where its cgroup was handed to it
 * (systemd's Delegate=yes): for each root whose parent the user may write,
 * makes the root; v2 moves this process into the leaf
 * BERTH_SUPERVISOR_CGROUP beside it first and switches the controllers on
 * in the parent and the root. Roots whose parent is not the user's are
 * left to root's `berth setup`. Idempotent.
 */
int cgroup_self_delegate_layout(const struct cgroup_layout *l, struct berth_error **err);
/*
 * Fails (EACCES, naming `berth setup --user`) when any cgroup of the
 * layout's subtrees, or a delegated file of one, does not belong to uid.
 */
int cgroup_check_owner_layout(const struct cgroup_layout *l, uid_t uid, struct berth_error **err);

#endif
