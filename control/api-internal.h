/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control-internal: what the control API's daemon (api.c: connections,
 * authentication, the git endpoint) shares with its resource handlers
 * (api-apps.c: /apps and the app's settings; api-domains.c: its domains,
 * certificates and router settings; api-quota.c: tenants' limits and
 * process types' resources): how an answer is sent, and how a
 * change to an app's record is made under the records lock.
 */
#ifndef BERTH_CONTROL_API_INTERNAL_H
#define BERTH_CONTROL_API_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "common/strbuf.h"
#include "control/server.h"
#include "control/tenants.h"

/* API request bodies are tiny; pushes go through the receiver's own cap. */
#define API_BODY_MAX (64u << 10)

struct api_request;

/* One authenticated API request, body complete. */
struct api_call {
    struct server *server;
    struct MHD_Connection *conn;
    /*
     * The tenant acted for: on /apps/<app>/... the app's owner (the
     * caller's own tenant, or any tenant for the admin: deploys use the
     * owner's ids and slugs); elsewhere the caller's.
     */
    const char *tenant;
    const struct tenants_principal *who;    /* the caller: tenant, role, app scope */
    const char *url;
    const char *method;
    const struct strbuf *body;
    bool body_too_large;
    struct api_request *request;      /* api.c's own state of the request */
};

/* What a request does, for api_allows(). */
enum api_action {
    API_READ,       /* GET: any token */
    API_DEPLOY,     /* push, config, settings, processes, rollback: the owner's or a deploy token */
    API_MANAGE,     /* create or destroy apps, tokens, tenants: the tenant's own token */
};

/*
 * The one authorization decision, for every API route and the git
 * endpoint: may `who` do `action` on `app` (NULL: on no app in
 * particular)? 0 if so, with *ret_owner (may be NULL) the app's tenant
 * (malloc'ed; NULL without an app). 404 when the app is missing, another
 * tenant's (the admin tenant reaches every app) or outside an app-scoped
 * token; 403 when the token's role falls short.
 */
unsigned api_allows(struct server *s, const struct tenants_principal *who, const char *app, enum api_action action,
                    char **ret_owner);
/* The API action of an HTTP method on an app's resource: GET and HEAD read, anything else deploys. */
enum api_action api_method_action(const char *method);

/* Sends doc (stolen) as a JSON answer. */
enum MHD_Result api_respond_json(struct MHD_Connection *c, unsigned status, json_t *doc);
/* {"error": msg} */
enum MHD_Result api_respond_error(struct MHD_Connection *c, unsigned status, const char *msg);
/*
 * {"error": msg} for an operation that starts processes (a release going
 * live, a restart) and failed: 409 when they would take the tenant past its
 * instances (-EDQUOT, quota.h), as ps:scale answers, else `status`.
 */
enum MHD_Result api_respond_start_error(struct MHD_Connection *c, unsigned status, struct berth_error **err);

/*
 * After an upgrade answer, the connection is the handler's: `sock` to read
 * and write (after the `extra_in` bytes the client sent early), for as long
 * as it likes (the API runs a thread per connection), until it calls
 * MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE). It owns `cls`.
 */
typedef void (*api_upgrade_fn)(void *cls, const char *extra_in, size_t extra_in_size, int sock,
                               struct MHD_UpgradeResponseHandle *urh);
/*
 * Answers 101 Switching Protocols to `protocol`; once it is sent, `fn`
 * gets the connection and `cls`. If the connection ends before that,
 * free_cls(cls) is called instead. Either way, `cls` is no longer the
 * caller's.
 */
enum MHD_Result api_respond_upgrade(const struct api_call *call, const char *protocol, api_upgrade_fn fn, void *cls,
                                    void (*free_cls)(void *cls));

/* The body as a JSON object, or NULL with an answer (413, 400) already queued in *ret_answer. */
json_t *api_body_object(const struct api_call *call, enum MHD_Result *ret_answer);

/* Checks and applies a change to an app's record (app.json); `cls` is the change's own. */
typedef int (*api_record_fn)(const struct api_call *call, json_t *record, void *cls, struct berth_error **err);
/*
 * Loads app.json, runs `change` on it and saves it, all under the server's
 * records lock (so `change` may scan other apps' records and be sure what
 * it saw still holds when it writes). On success *ret_record is the saved
 * record and nothing is answered yet; on failure the answer is queued
 * (-EPERM 403, -ENOTSUP and -EEXIST 409, -ENOENT 404, -EINVAL, -E2BIG and
 * -ERANGE 400, anything else 500) and *ret_record stays NULL.
 */
enum MHD_Result api_change_record(const struct api_call *call, const char *app, api_record_fn change, void *cls,
                                  json_t **ret_record);

/* The /apps resources; answers 404 for anything it does not know. */
enum MHD_Result api_apps_handle(const struct api_call *call);

/*
 * api-guard.c: anonymous connections get API_GUARD_HEAD_S seconds from
 * their accept to authenticate a request, and at most API_GUARD_PER_ADDR of
 * them per client address are let in; authenticated ones are left alone.
 * api_guard_notify() is the daemon's MHD_OPTION_NOTIFY_CONNECTION callback;
 * api_guard_authenticated() marks the connection of a request whose
 * credentials were good.
 */
#define API_GUARD_HEAD_S 10
#define API_GUARD_PER_ADDR 64
int api_guard_start(struct berth_error **err);
void api_guard_stop(void);
void api_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe);
void api_guard_authenticated(struct MHD_Connection *c);
/* api-keys.c: /keys, tenants' SSH keys (keys.h). */
enum MHD_Result api_keys_handle(const struct api_call *call);
/* api-tenants.c: /tenants[/<t>] and /tokens[/<id>|/rotate]. */
enum MHD_Result api_tenants_handle(const struct api_call *call);
/* api-tenants.c: DELETE /apps/<app>?confirm=<app>, for an app the dispatch let the caller manage. */
enum MHD_Result api_app_destroy(const struct api_call *call, const char *app);

/* api-domains.c, for an app the caller checked the tenant owns: */
/* /apps/<app>/domains[/<name>]; `rest` is "" or "/<name>". */
enum MHD_Result api_domains_handle(const struct api_call *call, const char *app, const char *rest);
/* /apps/<app>/certs[/<id>]; `rest` is "" or "/<id>". */
enum MHD_Result api_certs_handle(const struct api_call *call, const char *app, const char *rest);
/* /apps/<app>/router */
enum MHD_Result api_router_handle(const struct api_call *call, const char *app);
/* api-releases.c: /apps/<app>/releases, for an app the caller checked the tenant owns. */
enum MHD_Result api_releases_handle(const struct api_call *call, const char *app);
/* api-cron.c: /apps/<app>/cron, for an app the caller checked the tenant owns. */
enum MHD_Result api_cron_handle(const struct api_call *call, const char *app);
/* api-run.c: POST /apps/<app>/dynos, a one-off run, for an app the caller checked the tenant owns. */
enum MHD_Result api_run_handle(const struct api_call *call, const char *app);

/* api-ps.c: /apps/<app>/dynos (GET), /formation, /actions/<what>, for an app the caller checked the tenant owns. */
enum MHD_Result api_ps_handle(const struct api_call *call, const char *app, const char *sub);
/* api-pipelines.c: /pipelines[/<name>[/apps[/<app>]|/previews]] for the caller's own tenant. */
enum MHD_Result api_pipelines_handle(const struct api_call *call);
/* /apps/<app>/pipeline[/promote|/diff], /config/copy, /preview-config, for an app the caller checked the tenant owns. */
enum MHD_Result api_pipelines_app_handle(const struct api_call *call, const char *app, const char *sub);
/* api-logs.c: GET /apps/<app>/logs (the app is the caller's). */
enum MHD_Result api_logs_handle(const struct api_call *call, const char *app);
/* api-quota.c: /tenants/<name>/limits (any tenant may ask; the handler decides) */
enum MHD_Result api_quota_tenant_handle(const struct api_call *call, const char *tenant);
/* /apps/<app>/resources, for an app the caller checked the tenant owns. */
enum MHD_Result api_quota_resources_handle(const struct api_call *call, const char *app);

#endif
