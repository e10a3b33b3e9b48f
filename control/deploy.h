/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/deploy: the deploy pipeline (ARCHITECTURE.md, The path of one
 * push). The receiver calls deploy_on_push() after the pack is verified and
 * before any ref moves: export the commit, build it into a slug, start the
 * new release's web instance, wait until it serves, switch the route, retire
 * the old instance. Any failure rejects the push and leaves the previous
 * release serving untouched.
 */
#ifndef BERTH_CONTROL_DEPLOY_H
#define BERTH_CONTROL_DEPLOY_H

#include "control/server.h"
#include "receiver/receiver.h"

struct deploy_ctx {
    struct server *server;
    const char *app;
    const char *tenant;
};

/* A receiver_deploy_fn; cls is a struct deploy_ctx. */
int deploy_on_push(void *cls, struct receiver_push *push, const struct receiver_update *updates,
                   size_t n_updates, struct strbuf *reason);
/* At start: brings every app's current release back up. Failures are logged, not fatal. */
void deploy_restore_all(struct server *s);

#endif
