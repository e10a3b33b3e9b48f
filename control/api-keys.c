/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-keys: tenants' SSH keys in the control API (docs/API.md),
 * over keys.h:
 *
 *   GET    /keys                          the caller's tenant's keys (admin: every tenant's, or ?tenant=)
 *   POST   /keys {"key", "tenant"?}       add a public key; only the admin may name another tenant
 *   DELETE /keys?fingerprint=SHA256:...   remove one (a tenant: its own; the admin: anyone's)
 *
 * Keys are the tenant's own token's business (role owner), as tokens are.
 * The fingerprint is a query argument: its base64 may hold '/'.
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/events.h"
#include "control/keys.h"

static bool is_admin(const struct api_call *call)
{
    return strcmp(call->who->tenant, MODEL_ADMIN_TENANT) == 0;
}

static unsigned error_status(int r)
{
    switch (-r) {
    case EINVAL: return 400;
    case ENOENT: return 404;
    case EEXIST: return 409;
    default: return 500;
    }
}

static enum MHD_Result add_key(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL, *tenant_rec = NULL;
    enum MHD_Result answer;
    const char *key, *tenant;
    json_t *added = NULL;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    key = json_get_str(body, "key");
    tenant = json_get_str(body, "tenant");
    if (!key)
        return api_respond_error(call->conn, 400, "expected a JSON body {\"key\": \"ssh-ed25519 AAAA... comment\"}");
    if (!tenant)
        tenant = call->who->tenant;
    if (strcmp(tenant, call->who->tenant) != 0 && !is_admin(call))
        return api_respond_error(call->conn, 403, "a tenant adds keys for itself only");
    if (strcmp(tenant, MODEL_ADMIN_TENANT) != 0 &&
        tenants_load(&call->server->model, tenant, &tenant_rec, &err) < 0)
        return api_respond_error(call->conn, 404, berth_error_msg(&err));
    r = keys_add(call->server, tenant, key, &added, &err);
    if (r < 0)
        return api_respond_error(call->conn, error_status(r), berth_error_msg(&err));
    log_info("tenant '%s' added ssh key %s for '%s'", call->who->tenant, json_get_str(added, "fingerprint"), tenant);
    events_record(call->server, call->who->tenant, NULL, "keys", "Added ssh key %s for %s",
                  json_get_str(added, "fingerprint"), tenant);
    return api_respond_json(call->conn, 201, added);
}

static enum MHD_Result list_keys(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    const char *tenant = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "tenant");
    json_t *keys = NULL;
    int r;

    if (!is_admin(call))
        tenant = call->who->tenant;
    r = keys_list(call->server, tenant, &keys, &err);
    if (r < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    return api_respond_json(call->conn, 200, json_pack("{s:o}", "keys", keys));
}

static enum MHD_Result remove_key(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    const char *fp = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "fingerprint");
    int r;

    if (!fp || !*fp)
        return api_respond_error(call->conn, 400, "expected ?fingerprint=SHA256:... (berth keys shows them)");
    r = keys_remove(call->server, is_admin(call) ? NULL : call->who->tenant, fp, &err);
    if (r < 0)
        return api_respond_error(call->conn, error_status(r), berth_error_msg(&err));
    events_record(call->server, call->who->tenant, NULL, "keys", "Removed ssh key %s", fp);
    return api_respond_json(call->conn, 200, json_pack("{s:s}", "fingerprint", fp));
}

enum MHD_Result api_keys_handle(const struct api_call *call)
{
    if (call->who->role != TENANTS_ROLE_OWNER)
        return api_respond_error(call->conn, 403, "only the tenant's own token manages ssh keys");
    if (strcmp(call->method, "GET") == 0)
        return list_keys(call);
    if (strcmp(call->method, "POST") == 0)
        return add_key(call);
    if (strcmp(call->method, "DELETE") == 0)
        return remove_key(call);
    return api_respond_error(call->conn, 405, "use GET, POST or DELETE on /keys");
}
