/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/serve: what `berth serve` and `berth setup` do to the host before
 * the daemon runs: the one-time root step (the berth user, its subordinate
 * ids, the delegated cgroups), the privilege drop when started as root, and
 * installing the built-in buildpacks into the home.
 */
#ifndef BERTH_CONTROL_SERVE_H
#define BERTH_CONTROL_SERVE_H

#include <stdbool.h>
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
/*
 * Refuses a home that is not a directory (a symlink included) or that its
 * group or everyone may write; a missing home is fine (0).
 */
int setup_check_home(const char *home, struct berth_error **err);
/*
 * As root, for an explicit --home: makes it (parents too) mode 0700 owned
 * by uid:gid when missing; hands over an existing one only when root owns
 * it, and refuses another user's or a writable one. Never looks inside.
 */
int setup_root_home(const char *home, uid_t uid, gid_t gid, struct berth_error **err);
/*
 * As root: copies the buildpacks from src into <fresh dir in /tmp>/buildpacks
 * and hands the whole copy to uid:gid, so the berth user installs them into
 * its home itself after the drop (and removes the copy). *ret_dir is the
 * fresh dir (malloc'ed).
 */
int setup_stage_buildpacks(const char *src, uid_t uid, gid_t gid, char **ret_dir, struct berth_error **err);
/*
 * As root, after setup_host() (setup-ssh.c): what Debian's sshd needs to
 * let `user` in with the keys berth writes (keys.h): a shell that can run
 * the forced command (sshd runs it with `$SHELL -c`), an account that is
 * not locked (sshd without PAM refuses a '!' password), and ~/.ssh (0700)
 * with authorized_keys (0600), the user's own. Idempotent.
 */
int setup_ssh(const char *user, struct berth_error **err);
/*
 * As root: undoes `berth setup` for user: removes its cgroup subtrees
 * (refused while processes run in them) and the subordinate id ranges of
 * setup's size; with purge, deletes the user, its group and its home too.
 */
int setup_remove(const char *user, bool purge, struct berth_error **err);
/* The text of berth.service running `<berth> serve` as user (malloc'ed). */
char *setup_unit_text(const char *user, const char *berth);
/* Writes berth.service for user into unit_dir (/etc/systemd/system). */
int setup_systemd(const char *user, const char *unit_dir, struct berth_error **err);
/*
 * For a serve started as its user: clears its ambient capability set, so a
 * capability it was handed to bind ports under 1024 (berth.service's
 * AmbientCapabilities=CAP_NET_BIND_SERVICE) stays its own and passes to no
 * program it runs. Its effective set is left as it is.
 */
int setup_serve_clear_ambient_caps(struct berth_error **err);
/* Drops to uid/gid for good (supplementary groups cleared), dumpable again, and sets HOME/USER. */
int setup_drop_privileges(uid_t uid, gid_t gid, const char *user, const char *home, struct berth_error **err);
/* Copies the built-in buildpacks from src into dst (replacing what was there). */
int serve_install_buildpacks(const char *src, const char *dst, struct berth_error **err);
/*
 * `berth serve` started as root: prepares the host for user (setup_host),
 * makes an explicit home (NULL: the default, made later by the user),
 * stages the buildpacks from buildpacks_src and drops to user for good.
 * *ret_staging is the staged copy for setup_serve_home() (malloc'ed).
 */
int setup_serve_as_root(const char *user, const char *home, const char *buildpacks_src, char **ret_staging,
                        struct berth_error **err);
/*
 * As the berth user: makes the home (mode 0700) unless it exists, refuses
 * it when group- or world-writable, and with a staged copy (NULL: none)
 * installs its buildpacks into the home and removes the copy.
 */
int setup_serve_home(const char *home, const char *staging, struct berth_error **err);
/* The `berth serve` command: the daemon until SIGINT/SIGTERM. */
int server_run(const struct server_options *opt, struct berth_error **err);

#endif
