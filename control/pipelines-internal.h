/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control-internal: what the pipelines module's files share.
 * pipelines.c holds the records (<home>/pipelines/<tenant>/<name>.json)
 * and their lock; pipelines-promote.c promotion, diff and config:copy;
 * pipelines-preview.c the preview apps.
 *
 * A record: {"name", "tenant", "created_at", "previews": {"enabled",
 * "idle"}, "apps": [{"app", "stage", "app_created_at", "preview_of"?,
 * "branch"?}]}; app_created_at is the app record's created_at when the
 * entry was made (an entry whose app no longer matches it is stale).
 */
#ifndef BERTH_CONTROL_PIPELINES_INTERNAL_H
#define BERTH_CONTROL_PIPELINES_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "control/pipelines.h"

/*
 * Serialises every read-modify-write of a pipeline record (never held
 * across a deploy or destroy_app(); taken before server.records_lock when
 * both are held).
 */
extern pthread_mutex_t pipelines_lock;

/* Loads the tenant's pipeline `name`; -ENOENT "pipeline 'x' does not exist". */
int pipelines_record_load(struct server *s, const char *tenant, const char *name, json_t **ret,
                          struct berth_error **err);
/* Saves it atomically (the caller holds pipelines_lock). */
int pipelines_record_save(struct server *s, const char *tenant, const json_t *record, struct berth_error **err);
/*
 * The record of the tenant's pipeline holding `app` (*ret NULL when none)
 * and that app's entry in it (borrowed from *ret).
 */
int pipelines_find_app(struct server *s, const char *tenant, const char *app, json_t **ret, json_t **ret_entry,
                       struct berth_error **err);
/* The record's entry naming `app` (borrowed), or NULL. */
json_t *pipelines_entry(const json_t *record, const char *app);
/* Whether the entry still names the app it was made for: the tenant's, the same creation. */
bool pipelines_entry_live(struct server *s, const char *tenant, const json_t *entry);
/* Takes `entry` (borrowed from record) out of the record's apps. */
void pipelines_entry_drop(json_t *record, const json_t *entry);
/* The stage's rank in the promotion order, or -1. */
int pipelines_stage_rank(const char *stage);

#endif
