/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/pipelines: environments (docs/ARCHITECTURE.md, Pipelines). A
 * pipeline is a tenant's ordered set of apps, one stage each
 * (development, review, staging, production); one build moves through it
 * by promotion: the source app's slug and process types become a new
 * release of the next stage's app, with that app's own config and no
 * build. A pipeline with previews on gives every branch pushed to its
 * staging app an app of its own, `<app>-<branch-label>`, in the review
 * stage, built from that branch with the staging config and the preview
 * overrides (app.json "preview_config" of the staging app, which
 * api-pipelines.c changes; a preview's own app.json says what it is in
 * "preview": {"of", "branch"}); deleting the
 * branch destroys it, and one idle longer than the pipeline's idle time
 * is stopped.
 *
 * Records: <home>/pipelines/<tenant>/<name>.json (model.h), written
 * atomically, each change read-modify-written under one lock of this
 * module. An app belongs to at most one pipeline, and every app of a
 * pipeline to the pipeline's tenant.
 */
#ifndef BERTH_CONTROL_PIPELINES_H
#define BERTH_CONTROL_PIPELINES_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "control/server.h"
#include "receiver/receiver.h"

/* How long a preview may go without a request before it is stopped, by default (1 h). */
#define PIPELINES_IDLE_DEFAULT_S 3600
#define PIPELINES_IDLE_MAX_S (30 * 86400)

/* "development", "review", "staging", "production": their order is the promotion's. */
bool pipelines_stage_valid(const char *stage);

/* Creates an empty pipeline of `tenant`. -EEXIST, -EINVAL for a bad name. */
int pipelines_create(struct server *s, const char *tenant, const char *name, struct berth_error **err);
/* The tenant's pipeline names, sorted (a JSON array). */
int pipelines_list(struct server *s, const char *tenant, json_t **ret, struct berth_error **err);
/*
 * The pipeline as the API shows it: {"name", "created_at", "previews":
 * {"enabled", "idle"}, "apps": [{"app", "stage", "release", "commit",
 * "description", "preview_of"?, "branch"?}]} in stage order. -ENOENT.
 */
int pipelines_show(struct server *s, const char *tenant, const char *name, json_t **ret,
                   struct berth_error **err);
/*
 * Adds app (of `tenant`: anything else is -ENOENT, "does not exist") at
 * `stage`. -EEXIST when the app is in a pipeline already.
 */
int pipelines_add(struct server *s, const char *tenant, const char *name, const char *app, const char *stage,
                  struct berth_error **err);
/* Takes app out of the pipeline (the app stays). -ENOENT. */
int pipelines_remove(struct server *s, const char *tenant, const char *name, const char *app,
                     struct berth_error **err);
/* Removes the pipeline; its preview apps are destroyed, its other apps stay. -ENOENT. */
int pipelines_destroy(struct server *s, const char *tenant, const char *name, json_t **ret_destroyed,
                      struct berth_error **err);
/* Turns previews on or off; idle_s 0 keeps the current idle time. Off destroys no preview. */
int pipelines_set_previews(struct server *s, const char *tenant, const char *name, bool on, unsigned idle_s,
                           struct berth_error **err);

/*
 * The pipeline and stage of `app` (malloc'ed; both NULL, and 0 returned,
 * when it is in none).
 */
int pipelines_of_app(struct server *s, const char *tenant, const char *app, char **ret_pipeline,
                     char **ret_stage, struct berth_error **err);

/*
 * Promotes `app`'s current release to each app of `to` (a JSON array of
 * names; NULL or empty: every app of the next stage that has apps), one
 * after the other, each a new release through deploy_promote(). -ENOENT
 * for an app missing or of another tenant, -EINVAL for one outside the
 * pipeline or a source with no release (nothing changed then). *ret is
 * [{"app", "stage", "release"}] for those promoted; a failure stops at
 * the target that failed, the ones before it stay promoted, the message
 * names it.
 */
int pipelines_promote(struct server *s, const char *tenant, const char *app, const json_t *to, json_t **ret,
                      struct berth_error **err);
/*
 * The apps a promotion of `app` goes to by default: those of the first
 * stage after its own that has any, previews left out (an empty array
 * when none, or when the app is in no pipeline).
 */
int pipelines_next_stage(struct server *s, const char *tenant, const char *app, json_t **ret,
                         struct berth_error **err);
/*
 * The commits between `app`'s release and that of the app after it in
 * the pipeline (or `other`): {"from": {app, stage, commit}, "to": {...},
 * "commits": [{"id", "summary", "author"}], "ahead", "behind"}, walked in
 * the source app's repository; "related": false when it lacks one of them.
 */
int pipelines_diff(struct server *s, const char *tenant, const char *app, const char *other, json_t **ret,
                   struct berth_error **err);

/*
 * config:copy: sets on `to` the config vars `keys` (NULL or empty: all)
 * of `from`, a new release as config:set makes. Both apps are the tenant's
 * (-ENOENT otherwise); -EINVAL for a key `from` does not have.
 */
int pipelines_config_copy(struct server *s, const char *tenant, const char *from, const char *to,
                          const json_t *keys, unsigned *ret_version, json_t **ret_copied, struct berth_error **err);

/*
 * A line for the push's output naming the app's stage ("shop-staging is
 * the staging stage of pipeline 'shop'"), malloc'ed, or NULL.
 */
char *pipelines_stage_line(struct server *s, const char *tenant, const char *app);

/* ------------------------------------------------------------ previews, from the push */

struct pipelines_preview;

/* Whether `app` is the staging app of a pipeline with previews on (its branches get previews). */
bool pipelines_has_previews(struct server *s, const char *tenant, const char *app);

/*
 * A branch other than the deploy branch was pushed to `app`, before the
 * refs move: if `app` is the staging app of a pipeline with previews on,
 * its preview app is created (or found) and the branch's commit is built
 * and started there (deploy.h's two halves), and *ret is the pending
 * preview for pipelines_preview_settled(). 0 with *ret NULL when `app`
 * has no previews (the push is stored, not deployed). < 0 rejects the
 * push: `reason` says why (a branch that makes no DNS label, a name
 * taken by another branch or app, the tenant's app quota), nothing was
 * created. Called with no deploy lock held.
 */
int pipelines_branch_pushed(struct server *s, const char *app, const char *tenant, struct receiver_push *push,
                            const struct receiver_update *u, struct pipelines_preview **ret, struct strbuf *reason);
/* The push settled (ok: the ref moved): the preview goes live or stops; its URL is said last. Frees p. */
void pipelines_preview_settled(struct pipelines_preview *p, struct receiver_push *push, bool ok);
/*
 * A branch of `app` was deleted (after the ref moved): its preview app,
 * if any, is destroyed. Takes deploy locks: call with none held.
 */
void pipelines_branch_deleted(struct server *s, const char *app, const char *tenant, const char *refname,
                              struct receiver_push *push);
/* Stops the previews that served no request for their pipeline's idle time (the scheduler's minute). */
void pipelines_stop_idle(struct server *s);

#endif
