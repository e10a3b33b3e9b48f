/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-pipelines: pipelines in the control API (docs/API.md).
 *
 *   GET    /pipelines                         the tenant's pipelines, each shown
 *   POST   /pipelines {"name"}                `berth pipelines:create`
 *   GET    /pipelines/<name>                  stages, apps, release and commit of each
 *   DELETE /pipelines/<name>?confirm=<name>   `berth pipelines:destroy` (previews destroyed)
 *   POST   /pipelines/<name>/apps {"app", "stage"}   `berth pipelines:add`
 *   DELETE /pipelines/<name>/apps/<app>       `berth pipelines:remove`
 *   PATCH  /pipelines/<name>/previews {"enabled", "idle"}   `berth pipelines:previews`
 *   GET    /apps/<app>/pipeline               the app's pipeline and stage
 *   POST   /apps/<app>/pipeline/promote {"to": [APP...]}    `berth pipelines:promote`
 *   GET    /apps/<app>/pipeline/diff[?to=APP] `berth pipelines:diff`
 *   POST   /apps/<app>/config/copy {"from", "keys": [K...]} `berth config:copy FROM APP`, naming its stage
 *   GET    /apps/<app>/preview-config         PATCH {"K": "v", "K2": null}: `config:set --preview`
 *
 * /pipelines acts for the caller's own tenant: reading takes any token not
 * limited to one app, a change the tenant's own (manage) token. The
 * /apps/<app>/ routes come through api_allows() like every app route;
 * the other apps a request names (targets, a copy's source) are checked
 * here the same way, so another tenant's app answers 404 as a missing one.
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/pipelines.h"

/* What a failure of the pipelines module answers. */
static unsigned status_of(int r, unsigned for_einval)
{
    switch (-r) {
    case ENOENT: return 404;
    case EEXIST: case EDQUOT: return 409;
    case EINVAL: return for_einval;
    default: return 500;
    }
}

static enum MHD_Result fail(const struct api_call *call, int r, unsigned for_einval, struct berth_error **err)
{
    return api_respond_error(call->conn, status_of(r, for_einval), berth_error_msg(err));
}

static enum MHD_Result show(const struct api_call *call, const char *name, unsigned status)
{
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *doc = NULL;
    int r = pipelines_show(call->server, call->tenant, name, &doc, &err);

    return r < 0 ? fail(call, r, 400, &err) : api_respond_json(call->conn, status, doc);
}

static enum MHD_Result list(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *names = NULL;
    json_t *out = json_array(), *name;
    size_t i;

    if (pipelines_list(call->server, call->tenant, &names, &err) < 0) {
        json_decref(out);
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    }
    json_array_foreach(names, i, name) {
        json_t *doc = NULL;

        if (pipelines_show(call->server, call->tenant, json_string_value(name), &doc, NULL) == 0)
            json_array_append_new(out, doc);
    }
    return api_respond_json(call->conn, 200, json_pack("{s:o}", "pipelines", out));
}

static enum MHD_Result create(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    enum MHD_Result answer;
    const char *name;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    if (!(name = json_get_str(body, "name")))
        return api_respond_error(call->conn, 400, "expected {\"name\": \"<pipeline>\"}");
    if ((r = pipelines_create(call->server, call->tenant, name, &err)) < 0)
        return fail(call, r, 400, &err);
    return show(call, name, 201);
}

static enum MHD_Result destroy(const struct api_call *call, const char *name)
{
    const char *confirm = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "confirm");
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *gone = NULL;
    int r;

    if (!confirm || strcmp(confirm, name) != 0)
        return api_respond_error(call->conn, 400, "confirm with ?confirm=<pipeline> (berth pipelines:destroy NAME "
                                 "--confirm NAME)");
    if ((r = pipelines_destroy(call->server, call->tenant, name, &gone, &err)) < 0)
        return fail(call, r, 400, &err);
    return api_respond_json(call->conn, 200, json_pack("{s:s, s:o}", "destroyed", name, "previews_destroyed", gone));
}

static enum MHD_Result add(const struct api_call *call, const char *name)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    enum MHD_Result answer;
    const char *app, *stage;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    app = json_get_str(body, "app");
    stage = json_get_str(body, "stage");
    if (!app || !stage)
        return api_respond_error(call->conn, 400, "expected {\"app\": \"<app>\", \"stage\": \"development|review|"
                                 "staging|production\"}");
    if ((r = pipelines_add(call->server, call->tenant, name, app, stage, &err)) < 0)
        return fail(call, r, 400, &err);
    return show(call, name, 200);
}

static enum MHD_Result previews(const struct api_call *call, const char *name)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    enum MHD_Result answer;
    const json_t *on, *idle;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    on = json_object_get(body, "enabled");
    idle = json_object_get(body, "idle");
    if (!json_is_boolean(on) || (idle && (!json_is_integer(idle) || json_integer_value(idle) < 60 ||
                                          json_integer_value(idle) > PIPELINES_IDLE_MAX_S)))
        return api_respond_error(call->conn, 400, "expected {\"enabled\": true|false, \"idle\": seconds from 60 to "
                                 "30 days}");
    if ((r = pipelines_set_previews(call->server, call->tenant, name, json_is_true(on),
                                    idle ? (unsigned)json_integer_value(idle) : 0, &err)) < 0)
        return fail(call, r, 400, &err);
    return show(call, name, 200);
}

enum MHD_Result api_pipelines_handle(const struct api_call *call)
{
    const char *rest = call->url + strlen("/pipelines"), *method = call->method, *slash;
    _cleanup_free_ char *name = NULL;
    bool reading = strcmp(method, "GET") == 0;

    if (call->who->app)
        return api_respond_error(call->conn, 403, "a token limited to one app has no pipelines");
    if (api_allows(call->server, call->who, NULL, reading ? API_READ : API_MANAGE, NULL) != 0)
        return api_respond_error(call->conn, 403, "only the tenant's own token may change pipelines");
    if (*rest == '\0')
        return reading ? list(call) : strcmp(method, "POST") == 0 ? create(call)
                                                                  : api_respond_error(call->conn, 405, "use GET or POST");
    if (*rest != '/' || rest[1] == '\0')
        return api_respond_error(call->conn, 404, "no such endpoint");
    slash = strchr(rest + 1, '/');
    name = slash ? xstrndup(rest + 1, (size_t)(slash - rest - 1)) : xstrdup(rest + 1);
    if (!slash && reading)
        return show(call, name, 200);
    if (!slash && strcmp(method, "DELETE") == 0)
        return destroy(call, name);
    if (slash && strcmp(slash, "/apps") == 0 && strcmp(method, "POST") == 0)
        return add(call, name);
    if (slash && strncmp(slash, "/apps/", 6) == 0 && slash[6] && strcmp(method, "DELETE") == 0) {
        _cleanup_error_ struct berth_error *err = NULL;
        int r = pipelines_remove(call->server, call->tenant, name, slash + 6, &err);

        return r < 0 ? fail(call, r, 400, &err) : show(call, name, 200);
    }
    if (slash && strcmp(slash, "/previews") == 0 && strcmp(method, "PATCH") == 0)
        return previews(call, name);
    return api_respond_error(call->conn, 404, "no such endpoint");
}

/* ---------------------------------------------------------------- /apps/<app>/... */

/* Another app a request names: the caller must be able to `action` it, or it does not exist for them. */
static enum MHD_Result check_other(const struct api_call *call, const char *app, enum api_action action, bool *ret_ok)
{
    unsigned status = api_allows(call->server, call->who, app, action, NULL);
    _cleanup_free_ char *msg = NULL;

    *ret_ok = status == 0;
    if (status == 0)
        return MHD_YES;
    msg = status == 404 ? xasprintf("app '%.64s' does not exist", app)
                        : xstrdup("this token may only read (its role is read)");
    return api_respond_error(call->conn, status, msg);
}

/*
 * The targets of a promotion or diff: `to`, or the next stage's apps, each
 * one the caller may `action` (a token limited to the source app reaches no
 * other). NULL with the answer queued in *ret_answer otherwise.
 */
static json_t *targets_allowed(const struct api_call *call, const char *app, const json_t *to, enum api_action action,
                               enum MHD_Result *ret_answer)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *targets = NULL;
    json_t *v;
    size_t i;
    bool ok;

    if (json_array_size(to))
        targets = json_deep_copy(to);
    else if (pipelines_next_stage(call->server, call->tenant, app, &targets, &err) < 0) {
        *ret_answer = api_respond_error(call->conn, 500, berth_error_msg(&err));
        return NULL;
    }
    json_array_foreach(targets, i, v) {
        if (!json_is_string(v)) {
            *ret_answer = api_respond_error(call->conn, 400, "expected {\"to\": [\"<app>\", ...]}");
            return NULL;
        }
        if ((*ret_answer = check_other(call, json_string_value(v), action, &ok)), !ok)
            return NULL;
    }
    return TAKE_PTR(targets);
}

static enum MHD_Result promote(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL, *targets = NULL;
    enum MHD_Result answer;
    json_t *to, *done = NULL;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    to = json_object_get(body, "to");
    if (to && !json_is_array(to) && !json_is_null(to))
        return api_respond_error(call->conn, 400, "expected {\"to\": [\"<app>\", ...]} (or none: the next stage)");
    if (!(targets = targets_allowed(call, app, to, API_DEPLOY, &answer)))
        return answer;
    if ((r = pipelines_promote(call->server, call->tenant, app, targets, &done, &err)) < 0)
        return fail(call, r, 409, &err);
    return api_respond_json(call->conn, 200, done);
}

static enum MHD_Result diff(const struct api_call *call, const char *app)
{
    const char *to = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "to");
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *named = to ? json_pack("[s]", to) : NULL, *targets = NULL;
    enum MHD_Result answer;
    json_t *doc = NULL;
    int r;

    if (!(targets = targets_allowed(call, app, named, API_READ, &answer)))
        return answer;
    if ((r = pipelines_diff(call->server, call->tenant, app, json_string_value(json_array_get(targets, 0)), &doc,
                            &err)) < 0)
        return fail(call, r, 409, &err);
    return api_respond_json(call->conn, 200, doc);
}

static enum MHD_Result config_copy(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    _cleanup_free_ char *pipeline = NULL, *stage = NULL;
    enum MHD_Result answer;
    const char *from;
    json_t *keys, *copied = NULL;
    unsigned version = 0;
    bool ok;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    from = json_get_str(body, "from");
    keys = json_object_get(body, "keys");
    if (!from || (keys && !json_is_array(keys)))
        return api_respond_error(call->conn, 400, "expected {\"from\": \"<app>\", \"keys\": [\"NAME\", ...]}");
    /* Copying reads the values: more than a read token may. */
    if ((answer = check_other(call, from, API_DEPLOY, &ok)), !ok)
        return answer;
    if ((r = pipelines_config_copy(call->server, call->tenant, from, app, keys, &version, &copied, &err)) < 0)
        return fail(call, r, 400, &err);
    (void)pipelines_of_app(call->server, call->tenant, app, &pipeline, &stage, NULL);
    return api_respond_json(call->conn, 200, json_pack("{s:s, s:s, s:s?, s:o, s:i}", "from", from, "to", app, "stage",
                                                       stage, "copied", copied, "release", (int)version));
}

/* {"K": "v", "K2": null} into app.json's "preview_config", under the records lock (api_change_record()). */
static int change_preview_config(const struct api_call *call, json_t *record, void *cls, struct berth_error **err)
{
    const json_t *body = cls;
    json_t *pc = json_object_get(record, "preview_config"), *v;
    const char *key;

    (void)call;
    if (json_object_size(body) == 0)
        return berth_error_plain(err, EINVAL, "expected {\"NAME\": \"value\" or null, ...}");
    if (!json_is_object(pc))
        json_object_set_new(record, "preview_config", pc = json_object());
    json_object_foreach((json_t *)body, key, v) {
        if (!*key || strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(key) ||
            (key[0] >= '0' && key[0] <= '9') || strlen(key) > 255)
            return berth_error_plain(err, EINVAL, "'%.80s' is not a valid config var name", key);
        if (json_is_null(v))
            json_object_del(pc, key);
        else if (json_is_string(v) && json_string_length(v) <= 64 * 1024)
            json_object_set(pc, key, v);
        else
            return berth_error_plain(err, EINVAL, "the value of '%s' must be a string of 64 KiB at most", key);
    }
    return 0;
}

static enum MHD_Result preview_config(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL, *body = NULL;
    enum MHD_Result answer;
    json_t *pc;

    if (strcmp(call->method, "PATCH") == 0) {
        if (!(body = api_body_object(call, &answer)))
            return answer;
        if ((answer = api_change_record(call, app, change_preview_config, body, &record)), !record)
            return answer;
    } else if (strcmp(call->method, "GET") != 0) {
        return api_respond_error(call->conn, 405, "use GET or PATCH");
    } else if (call->who->role == TENANTS_ROLE_READ) {
        return api_respond_error(call->conn, 403, "a read token does not see config values");
    } else if (model_app_load(&call->server->model, app, &record, &err) < 0) {
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    }
    pc = json_object_get(record, "preview_config");
    return api_respond_json(call->conn, 200, json_pack("{s:O}", "preview_config", pc ? pc : json_object()));
}

static enum MHD_Result app_pipeline(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *pipeline = NULL, *stage = NULL;

    if (pipelines_of_app(call->server, call->tenant, app, &pipeline, &stage, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    return api_respond_json(call->conn, 200, json_pack("{s:s, s:s?, s:s?}", "app", app, "pipeline", pipeline,
                                                       "stage", stage));
}

enum MHD_Result api_pipelines_app_handle(const struct api_call *call, const char *app, const char *sub)
{
    const char *method = call->method;

    if (strcmp(sub, "/pipeline") == 0 && strcmp(method, "GET") == 0)
        return app_pipeline(call, app);
    if (strcmp(sub, "/pipeline/promote") == 0 && strcmp(method, "POST") == 0)
        return promote(call, app);
    if (strcmp(sub, "/pipeline/diff") == 0 && strcmp(method, "GET") == 0)
        return diff(call, app);
    if (strcmp(sub, "/config/copy") == 0 && strcmp(method, "POST") == 0)
        return config_copy(call, app);
    if (strcmp(sub, "/preview-config") == 0)
        return preview_config(call, app);
    return api_respond_error(call->conn, 404, "no such endpoint");
}
