/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-tenants: tenants and tokens in the control API (docs/API.md),
 * and the destruction of an app.
 *
 *   GET    /tenants                   the tenants (admin)
 *   POST   /tenants {"name"}          create one; its token is in the answer, once (admin)
 *   DELETE /tenants/<t>?confirm=<t>   destroy it and all its apps (admin; not the admin tenant)
 *   GET    /tokens                    the caller's tenant's scoped tokens (never a token or hash)
 *   POST   /tokens {"role", "app"}    a scoped token, in the answer once
 *   DELETE /tokens/<id>               revoke one
 *   POST   /tokens/rotate             a new token for the tenant itself; the old one stops at once
 *   DELETE /apps/<app>?confirm=<app>  destroy an app (its tenant's own token, or the admin's)
 *
 * Everything here needs the tenant's own token (role owner): a scoped
 * token manages nothing. Tenant records are rewritten under the server's
 * records lock.
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/destroy.h"
#include "control/events.h"
#include "control/keys.h"

/* What a failed tenant or token operation answers. */
static unsigned error_status(int r)
{
    switch (-r) {
    case EINVAL: case E2BIG: return 400;
    case EPERM: return 403;
    case ENOENT: return 404;
    case EEXIST: case ENOSPC: return 409;
    default: return 500;
    }
}

static enum MHD_Result respond_failure(const struct api_call *call, int r, struct berth_error **err)
{
    return api_respond_error(call->conn, error_status(r), berth_error_msg(err));
}

/* ?confirm=<name> must repeat the name of what is destroyed. */
static bool confirmed(const struct api_call *call, const char *name)
{
    const char *c = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "confirm");

    return c && strcmp(c, name) == 0;
}

static enum MHD_Result respond_unconfirmed(const struct api_call *call, const char *what, const char *name)
{
    _cleanup_free_ char *msg = xasprintf("destroying %s '%s' needs ?confirm=%s (berth: --confirm %s); nothing "
                                         "was removed", what, name, name, name);

    return api_respond_error(call->conn, 400, msg);
}

/* ---------------------------------------------------------------- /tenants (admin) */

static json_t *tenant_summary(struct server *s, const char *name)
{
    _cleanup_json_ json_t *t = NULL;
    json_t *doc = json_pack("{s:s}", "name", name), *apps = NULL;

    if (tenants_load(&s->model, name, &t, NULL) == 0) {
        json_object_set(doc, "slice", json_object_get(t, "slice"));
        json_object_set(doc, "created_at", json_object_get(t, "created_at"));
    }
    json_object_set_new(doc, "apps", model_app_list_of(&s->model, name, &apps, NULL) == 0 ? apps : json_array());
    return doc;
}

static enum MHD_Result list_tenants(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *names = NULL;
    json_t *out, *name;
    size_t i;
    int r;

    if ((r = tenants_list(&call->server->model, &names, &err)) < 0)
        return respond_failure(call, r, &err);
    out = json_array();
    json_array_foreach(names, i, name)
        json_array_append_new(out, tenant_summary(call->server, json_string_value(name)));
    return api_respond_json(call->conn, 200, json_pack("{s:o}", "tenants", out));
}

static enum MHD_Result create_tenant(const struct api_call *call)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    _cleanup_free_ char *token = NULL;
    enum MHD_Result answer;
    unsigned long slice = 0;
    const char *name;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    if (!(name = json_get_str(body, "name")))
        return api_respond_error(call->conn, 400, "expected a JSON body {\"name\": \"<tenant>\"}");
    pthread_mutex_lock(&s->records_lock);
    r = tenants_create(&s->model, name, server_tenant_slices(s), &token, &slice, &err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0)
        return respond_failure(call, r, &err);
    log_info("tenant '%s' created tenant '%s' (id slice %lu)", call->who->tenant, name, slice);
    events_record(s, call->who->tenant, NULL, "tenant", "Created tenant %s", name);
    return api_respond_json(call->conn, 201, json_pack("{s:s, s:I, s:s}", "name", name, "slice", (json_int_t)slice,
                                                       "token", token));
}

static enum MHD_Result delete_tenant(const struct api_call *call, const char *name)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL, *apps = NULL;
    int r;

    if ((r = tenants_load(&call->server->model, name, &record, &err)) < 0)
        return respond_failure(call, r, &err);
    if (strcmp(name, MODEL_ADMIN_TENANT) == 0)
        return api_respond_error(call->conn, 403, "the admin tenant cannot be destroyed");
    if (!confirmed(call, name))
        return respond_unconfirmed(call, "tenant", name);
    if ((r = destroy_tenant(call->server, name, &apps, &err)) < 0)
        return respond_failure(call, r, &err);
    if (keys_drop_tenant(call->server, name, &err) < 0)
        log_warn("removing the ssh keys of tenant '%s': %s", name, berth_error_msg(&err));
    events_record(call->server, call->who->tenant, NULL, "tenant", "Destroyed tenant %s and its %zu apps", name,
                  json_array_size(apps));
    return api_respond_json(call->conn, 200, json_pack("{s:s, s:O}", "name", name, "apps", apps));
}

static enum MHD_Result tenants_route(const struct api_call *call)
{
    const char *url = call->url, *method = call->method;

    if (strcmp(call->who->tenant, MODEL_ADMIN_TENANT) != 0 || call->who->role != TENANTS_ROLE_OWNER)
        return api_respond_error(call->conn, 403, "only the operator (the admin tenant's own token) manages tenants");
    if (strcmp(url, "/tenants") == 0 && strcmp(method, "GET") == 0)
        return list_tenants(call);
    if (strcmp(url, "/tenants") == 0 && strcmp(method, "POST") == 0)
        return create_tenant(call);
    if (strncmp(url, "/tenants/", 9) == 0 && !strchr(url + 9, '/') && strcmp(method, "DELETE") == 0)
        return delete_tenant(call, url + 9);
    return api_respond_error(call->conn, 404, "no such endpoint");
}

/* ---------------------------------------------------------------- /tokens (the tenant's own token) */

static enum MHD_Result create_token(const struct api_call *call)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    _cleanup_free_ char *id = NULL, *token = NULL;
    enum MHD_Result answer;
    enum tenants_role role;
    const char *app;
    json_t *doc;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    app = json_get_str(body, "app");
    if (!tenants_role_parse(json_get_str(body, "role"), &role) ||
        (json_object_get(body, "app") && !app && !json_is_null(json_object_get(body, "app"))))
        return api_respond_error(call->conn, 400, "expected {\"role\": \"deploy\" or \"read\", \"app\": \"<app>\" "
                                 "or null}");
    if (app && api_allows(s, call->who, app, API_MANAGE, NULL) != 0) {
        _cleanup_free_ char *msg = xasprintf("app '%s' does not exist", app);

        return api_respond_error(call->conn, 404, msg);
    }
    pthread_mutex_lock(&s->records_lock);
    r = tenants_token_create(&s->model, call->who->tenant, role, app, &id, &token, &err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0)
        return respond_failure(call, r, &err);
    events_record(s, call->who->tenant, app, "token", "Created %s token %s", tenants_role_name(role), id);
    doc = json_pack("{s:s, s:s, s:s}", "id", id, "token", token, "role", tenants_role_name(role));
    json_object_set_new(doc, "app", app ? json_string(app) : json_null());
    return api_respond_json(call->conn, 201, doc);
}

static enum MHD_Result revoke_token(const struct api_call *call, const char *id)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = tenants_token_revoke(&s->model, call->who->tenant, id, &err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0)
        return respond_failure(call, r, &err);
    events_record(s, call->who->tenant, NULL, "token", "Revoked token %s", id);
    return api_respond_json(call->conn, 200, json_pack("{s:s}", "id", id));
}

/* The admin's token is also in <home>/admin.token, for the CLI on the server's host: it follows. */
static int save_admin_token(struct server *s, const char *token, struct berth_error **err)
{
    _cleanup_free_ char *path = model_path(&s->model, "admin.token");
    _cleanup_free_ char *line = xasprintf("%s\n", token);

    return write_file_atomic(path, line, strlen(line), 0600, err);
}

static enum MHD_Result rotate_token(const struct api_call *call)
{
    struct server *s = call->server;
    const char *tenant = call->who->tenant;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *token = NULL;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = tenants_token_rotate(&s->model, tenant, &token, &err);
    if (r == 0 && strcmp(tenant, MODEL_ADMIN_TENANT) == 0)
        r = save_admin_token(s, token, &err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0)
        return respond_failure(call, r, &err);
    events_record(s, tenant, NULL, "token", "Rotated the tenant's token");
    return api_respond_json(call->conn, 200, json_pack("{s:s, s:s}", "tenant", tenant, "token", token));
}

static enum MHD_Result tokens_route(const struct api_call *call)
{
    const char *url = call->url, *method = call->method;
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *list = NULL;
    int r;

    if (api_allows(call->server, call->who, NULL, API_MANAGE, NULL) != 0)
        return api_respond_error(call->conn, 403, "only the tenant's own token manages tokens");
    if (strcmp(url, "/tokens") == 0 && strcmp(method, "GET") == 0) {
        if ((r = tenants_token_list(&call->server->model, call->who->tenant, &list, &err)) < 0)
            return respond_failure(call, r, &err);
        return api_respond_json(call->conn, 200, json_pack("{s:o}", "tokens", list));
    }
    if (strcmp(url, "/tokens") == 0 && strcmp(method, "POST") == 0)
        return create_token(call);
    if (strcmp(url, "/tokens/rotate") == 0 && strcmp(method, "POST") == 0)
        return rotate_token(call);
    if (strncmp(url, "/tokens/", 8) == 0 && !strchr(url + 8, '/') && strcmp(method, "DELETE") == 0)
        return revoke_token(call, url + 8);
    return api_respond_error(call->conn, 404, "no such endpoint");
}

/* ---------------------------------------------------------------- entry points */

enum MHD_Result api_tenants_handle(const struct api_call *call)
{
    if (strcmp(call->url, "/tenants") == 0 || strncmp(call->url, "/tenants/", 9) == 0)
        return tenants_route(call);
    return tokens_route(call);
}

enum MHD_Result api_app_destroy(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    int r;

    if (!confirmed(call, app))
        return respond_unconfirmed(call, "app", app);
    if ((r = destroy_app(call->server, app, &err)) < 0)
        return respond_failure(call, r, &err);
    events_record(call->server, call->who->tenant, app, "destroy", "Destroyed %s", app);
    return api_respond_json(call->conn, 200, json_pack("{s:s}", "name", app));
}
