/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/git-shell: git and berth commands over SSH. sshd runs
 * `berth git-shell --socket PATH TENANT` as the forced command of each
 * tenant's key (keys.h); it reads SSH_ORIGINAL_COMMAND and
 *
 *   git-receive-pack 'APP.git' | git-upload-pack 'APP.git'   ('/APP.git', 'APP' too)
 *       hands its stdin, stdout and stderr to the daemon over the unix
 *       socket PATH (SCM_RIGHTS) and waits for the session's exit status:
 *       the daemon speaks the protocol on them with the same receiver core
 *       as smart HTTP, and the deploy runs in the daemon;
 *   anything else, e.g. `apps:list` or `config:set APP K=V`
 *       is a berth CLI command run as TENANT: the daemon gives the session
 *       a token of its own, which works while the session lasts.
 *
 * No shell ever reads the command: it is split on spaces, single quotes
 * group a word, and any other shell metacharacter refuses it. The socket
 * is <home>/run/git-shell.sock, reachable by berth's user only (the one
 * sshd runs the forced command as); the daemon also checks the peer's uid.
 */
#ifndef BERTH_CONTROL_GIT_SHELL_H
#define BERTH_CONTROL_GIT_SHELL_H

#include <stdbool.h>

#include "common/error.h"
#include "control/server.h"
#include "control/tenants.h"
#include "receiver/receiver.h"

/* `berth git-shell --socket PATH TENANT` (the ssh side); returns the exit code. */
int gitshell_main(int argc, char **argv);

/* Starts the daemon's listener on <home>/run/git-shell.sock and writes authorized_keys. */
int gitshell_start(struct server *s, struct berth_error **err);
/* Stops it: commands over ssh lose their token at once; git sessions get up to 30 s to end. */
void gitshell_stop(struct server *s);
/*
 * berth.json's "git": {"max_push": "512M", "max_objects": 1000000}, the
 * limits of a push over either transport, into opts (unset or malformed:
 * the receiver's defaults, the latter logged).
 */
void gitshell_limits(struct server *s, struct receiver_options *opts);
/*
 * Whether `token` is a live SSH session's token; fills *ret (owner role of
 * the session's tenant). For the API's authentication.
 */
bool gitshell_authenticate(const char *token, struct tenants_principal *ret);

#endif
