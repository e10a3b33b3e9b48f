/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/deploy: the deploy pipeline (ARCHITECTURE.md, The path of one
 * push). The receiver calls deploy_on_push() after the pack is verified and
 * before any ref moves: export the commit, build it into a slug, run the
 * release phase, start the new release's web instance, wait until it
 * serves and passes its health checks, switch the route, retire the old
 * instance once its requests are done. Any failure rejects
 * the push and leaves the previous release serving untouched. The same
 * "go live" step serves releases that need no build (a config change) and
 * restarts with the current release (a settings change).
 */
#ifndef BERTH_CONTROL_DEPLOY_H
#define BERTH_CONTROL_DEPLOY_H

#include <jansson.h>
#include <signal.h>

#include "control/server.h"
#include "receiver/receiver.h"

struct pipelines_preview;

struct deploy_ctx {
    struct server *server;
    const char *app;
    const char *tenant;
    /*
     * Between deploy_on_push() and deploy_settled(): the started release's
     * web instances (NULL when no deploy started), and the app's deploy lock held.
     */
    struct started *pending;
    json_t *pending_release;
    /* The ref the started release builds (main or master, or a preview's branch): its own landing decides. */
    char *ref;
    /* The same for a branch's preview app (pipelines.h), and the branches deleted (refnames). */
    struct pipelines_preview *preview;
    json_t *deleted_branches;
};

/*
 * A receiver_deploy_fn; cls is a struct deploy_ctx. The push is deployed
 * in two phases around the receiver's ref update: here the slug is built
 * and the new release's instance started and checked (serving nothing),
 * and 0 lets the refs move; deploy_settled() then writes the release
 * record and switches the route, or stops the instance if the refs did
 * not move. So a crash anywhere leaves the old release serving or the new
 * one complete, and never a release whose commit the repository lacks.
 */
int deploy_on_push(void *cls, struct receiver_push *push, const struct receiver_update *updates,
                   size_t n_updates, struct strbuf *reason);
/* A receiver_settled_fn; cls is the same struct deploy_ctx. Releases the app's deploy lock. */
void deploy_settled(void *cls, struct receiver_push *push, bool ok);
/*
 * deploy_settled() for `ctx`, saying whether its release went live: when
 * its own ref landed, which in a push that is not atomic can happen while
 * another ref fails (`ok` false), or fail while the others land.
 */
bool deploy_settle(struct deploy_ctx *ctx, struct receiver_push *push, bool ok);
/*
 * The deploy of one update `u` (its new commit) to ctx->app, from a push
 * that may be to another app (a preview is built from its staging app's
 * push): takes ctx->app's deploy lock, builds and starts; 0 with the lock
 * still held and the release pending for deploy_settled(ctx, ...), or < 0
 * (said to the client, `reason` set) with the lock released.
 */
int deploy_push_start(struct deploy_ctx *ctx, struct receiver_push *push, const struct receiver_update *u,
                      struct strbuf *reason);
/*
 * Promotion: a new release of `app` from `source` (another app's release
 * of the same tenant): its slug, process types, commit and scheduled jobs,
 * with `app`'s own config, no build, live with zero downtime after the
 * health checks, described `description`. -ENOENT (nothing changed) when
 * the slug is gone.
 */
int deploy_promote(struct server *s, const char *app, const char *tenant, const json_t *source,
                   const char *description, unsigned *ret_version, struct berth_error **err);
/* The most config vars an app may have. */
#define DEPLOY_CONFIG_MAX_VARS 1000
/*
 * Applies `changes` ({"NAME": "value" to set, or null to unset}, checked
 * by the caller) to the app's config as it is under the app's deploy lock,
 * so that two changes at once both land, and saves it. Then a new release
 * from the current one with that config, described `description` ("Set
 * GREETING config vars"), live with zero downtime when the app has a
 * release and `restart`; otherwise (no release yet, or Dokku's
 * --no-restart) only the config is saved, for the next release. The config
 * is saved before the release, and put back if the release fails: a crash
 * between the two leaves the change saved for the next release, never a
 * release whose config the app's config no longer has. -E2BIG, nothing
 * changed, past DEPLOY_CONFIG_MAX_VARS. *ret_version is the new release,
 * or 0; *ret_config (when asked for) the config saved.
 */
int deploy_config(struct server *s, const char *app, const char *tenant, const json_t *changes,
                  const char *description, bool restart, unsigned *ret_version, json_t **ret_config,
                  struct berth_error **err);
/*
 * Starts the current release again (new instance first, then the switch,
 * then the old one retires), e.g. after the app's network setting changed.
 * Nothing to do for an app with no release.
 */
int deploy_restart(struct server *s, const char *app, const char *tenant, struct berth_error **err);
/*
 * A new release from release `target` (0: the one before the current
 * one): its slug, process types and config, no rebuild, described
 * "Rollback to vN", live with zero downtime; the app's config vars become
 * that release's. -ENOENT (nothing changed) when the release does not
 * exist or its slug is gone, -EINVAL when there is no earlier release.
 */
int deploy_rollback(struct server *s, const char *app, const char *tenant, unsigned target,
                    unsigned *ret_version, struct berth_error **err);
/*
 * At start: brings every app's current release back up, a few apps at
 * once, each under its deploy lock and routed as soon as it serves.
 * Failures are logged, not fatal; once *stop is set no further app starts.
 */
void deploy_restore_all(struct server *s, const volatile sig_atomic_t *stop);

#endif
