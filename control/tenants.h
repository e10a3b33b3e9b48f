/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/tenants: the tenant records (<home>/tenants/<tenant>.json), their
 * API tokens and authentication. A record:
 *
 *   {"name": "acme", "slice": 3, "created_at": "...",
 *    "token_sha256": ["<hex>"],                    the tenant's own (owner) token
 *    "tokens": [{"id": "<12 hex>", "sha256": "<hex>", "role": "deploy"|"read",
 *                "app": "<app>" (absent: every app of the tenant), "created_at": "..."}],
 *    ...}                                          keys of other modules ("limits"), kept as they are
 *
 * Tokens are 64 hex characters from getrandom(), stored only as their
 * SHA-256. A tenant holds slice `slice` of berth's subordinate ids
 * (subid.h); no two tenants hold the same one.
 *
 * Every function that rewrites a record loads it, changes what it knows and
 * saves the whole object (unknown keys stay); the caller serialises writers
 * (the daemon: server.records_lock).
 */
#ifndef BERTH_CONTROL_TENANTS_H
#define BERTH_CONTROL_TENANTS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "control/model.h"

/* What a token may do, widest first. */
enum tenants_role {
    TENANTS_ROLE_OWNER,         /* the tenant's own token: everything on its apps, its tokens */
    TENANTS_ROLE_DEPLOY,        /* read, push, config, processes, rollback */
    TENANTS_ROLE_READ,          /* GET only */
};

/* Who made a request: the tenant, the token's role, and the one app it is limited to (or NULL). */
struct tenants_principal {
    char *tenant;
    enum tenants_role role;
    char *app;
    char *token_id;             /* NULL for the owner token */
};

void tenants_principal_release(struct tenants_principal *p);
/* "owner", "deploy", "read"; parsing: false for anything else (owner is not a role to create). */
const char *tenants_role_name(enum tenants_role role);
bool tenants_role_parse(const char *name, enum tenants_role *ret);

/*
 * The principal whose token hashes to `token` (*ret filled, release with
 * tenants_principal_release()). -EACCES "invalid credentials" if none.
 */
int tenants_authenticate(const struct model *m, const char *token, struct tenants_principal *ret,
                         struct berth_error **err);

/* An app name (model_app_name_valid()) that is neither "admin" nor "stacks". */
bool tenants_name_valid(const char *name);
/* The record; -ENOENT "tenant 'x' does not exist". */
int tenants_load(const struct model *m, const char *name, json_t **ret, struct berth_error **err);
/* Names of every tenant (sorted), as a JSON array of strings. */
int tenants_list(const struct model *m, json_t **ret, struct berth_error **err);
/*
 * Creates tenant `name` in the lowest slice no tenant holds, below
 * `slices` (how many berth's /etc/subuid and /etc/subgid ranges hold), with
 * a new owner token: *ret_token (malloc'ed, 64 hex), *ret_slice.
 * -EINVAL (bad name), -EEXIST, -ENOSPC (no free slice: the message says how
 * to widen the range).
 */
int tenants_create(const struct model *m, const char *name, unsigned long slices, char **ret_token,
                   unsigned long *ret_slice, struct berth_error **err);
/* Removes the record (its slice is free again). */
int tenants_remove(const struct model *m, const char *name, struct berth_error **err);
/*
 * At start: every record names a slice, and no two the same one; the
 * error names both tenants. -EINVAL.
 */
int tenants_check_slices(const struct model *m, struct berth_error **err);

/* A new owner token for the tenant (*ret_token malloc'ed); every earlier one stops working. */
int tenants_token_rotate(const struct model *m, const char *tenant, char **ret_token, struct berth_error **err);
/* A new scoped token (role deploy or read, app may be NULL): *ret_id and *ret_token malloc'ed. */
int tenants_token_create(const struct model *m, const char *tenant, enum tenants_role role, const char *app,
                         char **ret_id, char **ret_token, struct berth_error **err);
/* The tenant's scoped tokens as [{"id", "role", "app", "created_at"}] (never a hash). */
int tenants_token_list(const struct model *m, const char *tenant, json_t **ret, struct berth_error **err);
/* Revokes token `id` of the tenant; -ENOENT "no token 'x'". */
int tenants_token_revoke(const struct model *m, const char *tenant, const char *id, struct berth_error **err);
/* Revokes every scoped token of the tenant limited to `app` (the app is being destroyed). */
int tenants_token_drop_app(const struct model *m, const char *tenant, const char *app, struct berth_error **err);
/* Revokes every token of the tenant, its own included (the tenant is being destroyed). */
int tenants_token_drop_all(const struct model *m, const char *tenant, struct berth_error **err);

#endif
