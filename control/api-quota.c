/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-quota: the quota resources of the control API (docs/API.md,
 * Quotas), over control/quota.c:
 *
 *   GET    /tenants/<name>/limits     the tenant's limits and usage (admin, or the tenant itself)
 *   PATCH  /tenants/<name>/limits     {"memory", "cpus", "pids", "apps", "instances"}: the admin
 *                                     tenant's own token only
 *   GET    /apps/<app>/resources      each process type's memory, cpus and pids
 *   PATCH  /apps/<app>/resources      {"type", "memory", "cpus", "pids"}: the app's owner;
 *                                     the running release restarts with them
 *
 * Over-quota and limits the kernel refuses answer 409, malformed values 400.
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/deploy.h"
#include "control/events.h"
#include "control/quota.h"
#include "control/tenants.h"
#include "common/banned.h"

static unsigned quota_status(int r)
{
    switch (-r) {
    case EINVAL: return 400;
    case EPERM: return 403;
    case ENOENT: return 404;
    case EDQUOT: case ENOTSUP: case EBUSY: return 409;
    default: return 500;
    }
}

enum MHD_Result api_quota_tenant_handle(const struct api_call *call, const char *tenant)
{
    struct server *s = call->server;
    bool admin = strcmp(call->tenant, MODEL_ADMIN_TENANT) == 0;
    bool owner_token = call->who->role == TENANTS_ROLE_OWNER;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL, *doc = NULL;
    enum MHD_Result answer;
    int r;

    /* Another tenant's limits answer like a missing tenant's. */
    if (!admin && strcmp(call->tenant, tenant) != 0) {
        _cleanup_free_ char *msg = xasprintf("tenant '%.40s' does not exist", tenant);

        return api_respond_error(call->conn, 404, msg);
    }
    if (strcmp(call->method, "PATCH") == 0) {
        if (!admin || !owner_token)
            return api_respond_error(call->conn, 403, "only the operator (the admin tenant's own token) sets "
                                     "tenants' limits");
        if (!(body = api_body_object(call, &answer)))
            return answer;
        if ((r = quota_set_tenant_limits(s, tenant, body, &err)) < 0)
            return api_respond_error(call->conn, quota_status(r), berth_error_msg(&err));
        log_info("tenant '%s' set the limits of tenant '%s'", call->tenant, tenant);
        events_record(s, call->tenant, NULL, "limits", "Set the limits of tenant %s", tenant);
    } else if (strcmp(call->method, "GET") != 0) {
        return api_respond_error(call->conn, 405, "use GET or PATCH");
    }
    if ((r = quota_tenant_doc(s, tenant, &doc, &err)) < 0)
        return api_respond_error(call->conn, quota_status(r), berth_error_msg(&err));
    return api_respond_json(call->conn, 200, json_incref(doc));
}

static int change_resources(const struct api_call *call, json_t *record, void *cls, struct berth_error **err)
{
    return quota_change_resources(call->server, record, cls, err);
}

enum MHD_Result api_quota_resources_handle(const struct api_call *call, const char *app)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL, *record = NULL;
    enum MHD_Result answer;

    if (strcmp(call->method, "PATCH") == 0) {
        if (!(body = api_body_object(call, &answer)))
            return answer;
        if ((answer = api_change_record(call, app, change_resources, body, &record), !record))
            return answer;
        /* The running release restarts with the new limits, with no downtime. */
        if (deploy_restart(s, app, json_get_str(record, "tenant"), &err) < 0)
            return api_respond_start_error(call->conn, 500, &err);
    } else if (strcmp(call->method, "GET") != 0) {
        return api_respond_error(call->conn, 405, "use GET or PATCH");
    } else if (model_app_load(&s->model, app, &record, &err) < 0) {
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    }
    return api_respond_json(call->conn, 200, quota_resources_doc(s, record));
}
