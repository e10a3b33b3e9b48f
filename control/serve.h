/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/serve: what `berth serve` and `berth setup` do to the host before
 * the daemon runs: the one-time root step (the berth user, its subordinate
 * ids, the delegated cgroups), the privilege drop when started as root, and
 * installing the built-in buildpacks into the home.
 */
#ifndef BERTH_CONTROL_SERVE_H
#define BERTH_CONTROL_SERVE_H

#include <sys/types.h>

#include "common/error.h"
#include "control/server.h"

/* Subordinate id slices `berth setup` guarantees the user (one per tenant). */
#define SETUP_MIN_SLICES 16

/*
 * As root: creates `user` if missing, gives it SETUP_MIN_SLICES slices of
 * subordinate uids and gids, delegates the cgroups and makes /dev/net/tun
 * usable for outbound networking. Idempotent.
 */
int setup_host(const char *user, uid_t *ret_uid, gid_t *ret_gid, char **ret_home, struct berth_error **err);
/* Creates dir (and parents) owned by uid:gid, mode 0700 for the last component. */
int setup_own_dir(const char *dir, uid_t uid, gid_t gid, struct berth_error **err);
/* Drops to uid/gid for good (supplementary groups cleared) and sets HOME/USER. */
int setup_drop_privileges(uid_t uid, gid_t gid, const char *user, const char *home, struct berth_error **err);
/* Copies the built-in buildpacks from src into dst (replacing what was there). */
int serve_install_buildpacks(const char *src, const char *dst, struct berth_error **err);
/* The `berth serve` command: the daemon until SIGINT/SIGTERM. */
int server_run(const struct server_options *opt, struct berth_error **err);

#endif
