/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/model: berth's records on disk (ARCHITECTURE.md, State on disk).
 * Everything lives under one home directory as small JSON files written
 * atomically, plus the bare repositories, layers, caches and logs:
 *
 *   <home>/berth.json               server settings (first-start marker)
 *   <home>/admin.token              the admin token, mode 0600 (plain, for the CLI)
 *   <home>/tenants/<tenant>.json    tenant: id slice, token hashes, scoped tokens (tenants.h),
 *                                   limits (quota.h)
 *   <home>/apps/<app>/app.json      app: tenant, created_at, settings (buildpacks, build, net),
 *                                   domains, router settings (domains.h), certificate records (certs.h),
 *                                   process types' resources (quota.h)
 *   <home>/apps/<app>/config.json   config vars
 *   <home>/apps/<app>/releases/N.json
 *   <home>/apps/<app>/repo.git      bare repository
 *   <home>/apps/<app>/cache/        buildpack cache
 *   <home>/apps/<app>/logs/         app and platform log
 *   <home>/layers/<tenant>/<sha256>/ the tenant's slugs (owned by its ids)
 *   <home>/layers/stacks/host/      the host stack's skeleton layer
 *   <home>/cache/buildpacks/        git buildpacks, one bare repository per URL
 *   <home>/run/                     serve.json, instance and build dirs
 *   <home>/pipelines/<tenant>/<name>.json  a pipeline: its apps and their stages, previews (pipelines.h)
 *   <home>/certs/<app>/<id>.pem/.key the app's TLS certificates; certs/default.pem/.key (certs.h)
 *
 * The functions here only read and write records; the deploy pipeline and
 * the API decide when.
 */
#ifndef BERTH_CONTROL_MODEL_H
#define BERTH_CONTROL_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "common/error.h"

/* Each tenant's slice of berth's subordinate ids (one container's full range). */
#define TENANT_ID_SLICE 65536UL
#define APP_NAME_MAX 30

#define MODEL_HOME_KEY_LEN 8

struct model {
    char *home;
    /* The home's key in its tenants' cgroup names (model_tenant_cgroup()), from model_open(). */
    char home_key[MODEL_HOME_KEY_LEN + 1];
};

/* $BERTH_HOME, else ~/.local/share/berth (malloc'ed). */
char *model_default_home(void);
int model_open(struct model *m, const char *home, struct berth_error **err);
void model_close(struct model *m);
/* The records' time format, UTC: "2026-12-01T02:08:00Z" (MODEL_TIME_LEN characters and a NUL). */
#define MODEL_TIME_LEN 20
void model_time_format(time_t t, char buf[MODEL_TIME_LEN + 1]);
/* A malloc'ed path below home: model_path(m, "apps/%s/app.json", name). */
char *model_path(const struct model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * First start: creates the layout, the admin tenant and <home>/admin.token.
 * *ret_created_token is set (malloc'ed) only when a token was created now.
 */
int model_init_home(struct model *m, char **ret_created_token, struct berth_error **err);

/* The operator's own tenant, created at first start. */
#define MODEL_ADMIN_TENANT "admin"
/* Not a tenant name: layers/<tenant>/ sits beside layers/stacks/. */
#define MODEL_RESERVED_TENANT "stacks"

/* The tenant's index (its id slice number). */
int model_tenant_slice(const struct model *m, const char *tenant, unsigned long *ret_slice,
                       struct berth_error **err);

/* ^[a-z][a-z0-9-]{0,29}$, not ending in '-'. */
bool model_app_name_valid(const char *name);
/* Creates the app's records (not its repository). -EEXIST if it exists. */
int model_app_create(const struct model *m, const char *name, const char *tenant, struct berth_error **err);
/*
 * Creates an app with a free random name in Heroku's style,
 * "<adjective>-<noun>-<4 digits>" (*ret_name malloc'ed), trying again on a
 * name that is taken.
 */
int model_app_create_random(const struct model *m, const char *tenant, char **ret_name, struct berth_error **err);
/* Loads app.json; -ENOENT with "app 'x' does not exist". */
int model_app_load(const struct model *m, const char *name, json_t **ret, struct berth_error **err);
/*
 * "<tenant>@<key>": the tenant's cgroup below berth's delegated subtree
 * (malloc'ed), where the key is the first MODEL_HOME_KEY_LEN hex digits
 * of the SHA-256 of the home's real path when model_open() ran (the path
 * as given, should it not exist yet). The subtree is the user's
 * (berth-<user>), and one user may serve several homes (a staging and a
 * production berth; every test suite): with the key the same tenant name
 * in two homes has two cgroups, each holding its own home's limits, and
 * neither home's start, stop or sweep touches the other's.
 */
char *model_tenant_cgroup(const struct model *m, const char *tenant);
/* "<tenant>@<key>/<app>": the cgroup of `tenant`'s app `app` (malloc'ed). */
char *model_app_cgroup_of(const struct model *m, const char *tenant, const char *app);
/*
 * The same from the app's record (malloc'ed), or NULL when its record
 * cannot be read or names no tenant.
 */
char *model_app_cgroup(const struct model *m, const char *name);
/* Names of every app (sorted), as a JSON array of strings. */
int model_app_list(const struct model *m, json_t **ret, struct berth_error **err);
/* Names of the apps of `tenant` (sorted), as a JSON array of strings. */
int model_app_list_of(const struct model *m, const char *tenant, json_t **ret, struct berth_error **err);
/* Replaces app.json (the caller read it, changed its settings, and serialises writers). */
int model_app_save(const struct model *m, const char *name, const json_t *app, struct berth_error **err);
int model_app_config(const struct model *m, const char *name, json_t **ret, struct berth_error **err);
int model_app_config_save(const struct model *m, const char *name, const json_t *config,
                          struct berth_error **err);
/* berth.json, the server's settings. */
int model_settings_load(const struct model *m, json_t **ret, struct berth_error **err);

/* The highest release number (0 when none) and, if ret is non-NULL, that release. */
int model_release_current(const struct model *m, const char *app, unsigned *ret_version, json_t **ret,
                          struct berth_error **err);
/* Loads releases/<version>.json; -ENOENT with "release vN of 'x' does not exist". */
int model_release_load(const struct model *m, const char *app, unsigned version, json_t **ret,
                       struct berth_error **err);
/* Writes releases/<version>.json (the version must be new). */
int model_release_save(const struct model *m, const char *app, unsigned version, const json_t *release,
                       struct berth_error **err);

#endif
