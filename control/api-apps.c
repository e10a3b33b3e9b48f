/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-apps: the /apps resources of the control API (docs/API.md).
 *
 *   GET    /apps                      the apps the caller may see (api_allows())
 *   POST   /apps {"name"}             create one (no name: a random free one)
 *   GET    /apps/<app>                one, with its settings
 *   GET    /apps/<app>/buildpacks     PUT {"buildpacks": [...]}: `berth buildpacks:set`
 *   PATCH  /apps/<app>/build          {"dir", "memory", "disk", "timeout"}: `berth builds:set`
 *   DELETE /apps/<app>/build/cache    empty the app's build cache: `berth builds:cache:purge`
 *   PATCH  /apps/<app>/net            {"outbound": bool}: `berth net:set`, restarts the app
 *   GET    /apps/<app>/checks         PATCH {"checks": "enabled|skipped|disabled"}: `berth checks:*`
 *   GET    /apps/<app>/ps             PATCH {"grace": seconds|null}: `berth ps:grace`
 *   GET    /apps/<app>/config         PATCH {"K": "v", "K2": null}: `berth config:set/unset`
 *   /apps/<app>/domains, /certs, /router: custom domains, certificates and router
 *                                     settings, in api-domains.c
 *   /apps/<app>/releases              releases and rollback, in api-releases.c
 *   GET    /apps/<app>/cron           scheduled jobs and their runs, in api-cron.c
 *   POST   /apps/<app>/dynos          a one-off run (`berth run`), in api-run.c
 *   GET    /apps/<app>/dynos, /formation, POST /actions/..., /dynos/run.N/actions/stop
 *                                     the app's processes (`berth ps`, ps:*), in api-ps.c
 *   DELETE /apps/<app>?confirm=<app>  destroy it, in api-tenants.c (destroy.h)
 *   /apps/<app>/resources, /tenants/<name>/limits
 *                                     process types' resources and tenants' limits, in api-quota.c
 *   /pipelines, /apps/<app>/pipeline..., /config/copy, /preview-config
 *                                     pipelines, promotion and previews, in api-pipelines.c
 *   GET    /events[?app=<app>]        the audit log (events.h): `berth events`
 *   POST   /gc {"dry_run", "keep"}    slug garbage collection (gc.h): `berth gc`
 *
 * Settings live in app.json and are checked here, before they are stored,
 * with the same rules the build applies, so a bad value is refused when it
 * is set rather than at the next push. app.json is rewritten under the
 * server's records lock; config changes go through the deploy pipeline,
 * which makes them a release.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "buildpacks/build.h"
#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/build-cache.h"
#include "control/deploy.h"
#include "control/formation.h"
#include "control/events.h"
#include "control/gc.h"
#include "control/quota.h"
#include "control/units.h"
#include "receiver/receiver.h"

#define APP_BUILD_DIR_MAX 255
#define CONFIG_MAX_VALUE (64 * 1024)

static bool is_admin(const char *tenant)
{
    return strcmp(tenant, MODEL_ADMIN_TENANT) == 0;
}

/* The caller is the operator: a token of the admin tenant. */
static bool caller_is_admin(const struct api_call *call)
{
    return is_admin(call->who->tenant);
}

json_t *api_body_object(const struct api_call *call, enum MHD_Result *ret_answer)
{
    json_t *doc;

    if (call->body_too_large) {
        *ret_answer = api_respond_error(call->conn, 413, "request body too large");
        return NULL;
    }
    doc = json_loadb(call->body->buf, call->body->len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        *ret_answer = api_respond_error(call->conn, 400, "expected a JSON object as the body");
        return NULL;
    }
    return doc;
}

static json_t *app_summary(struct server *s, const char *name)
{
    _cleanup_json_ json_t *record = NULL;
    _cleanup_free_ char *web = xasprintf("http://%s.%s:%u/", name, s->opt.domain, s->http_port);
    _cleanup_free_ char *git = xasprintf("%s/%s.git", s->control_url, name);
    unsigned version = 0;
    json_t *doc, *v;

    (void)model_release_current(&s->model, name, &version, NULL, NULL);
    doc = json_pack("{s:s, s:s, s:s, s:i}", "name", name, "web_url", web, "git_url", git,
                    "release", (int)version);
    if (model_app_load(&s->model, name, &record, NULL) == 0) {
        json_object_set_new(doc, "buildpacks", (v = json_object_get(record, "buildpacks"))
                                                   ? json_incref(v) : json_array());
        json_object_set_new(doc, "build", (v = json_object_get(record, "build"))
                                              ? json_incref(v) : json_object());
        json_object_set_new(doc, "net", json_pack("{s:b}", "outbound",
                                                  json_is_true(json_object_get(json_object_get(record, "net"),
                                                                               "outbound"))));
        json_object_set_new(doc, "domains", (v = json_object_get(record, "domains"))
                                                ? json_incref(v) : json_array());
        json_object_set_new(doc, "router", (v = json_object_get(record, "router"))
                                               ? json_incref(v) : json_object());
    }
    return doc;
}

static enum MHD_Result not_found(const struct api_call *call, const char *app)
{
    _cleanup_free_ char *msg = xasprintf("app '%s' does not exist", app);

    return api_respond_error(call->conn, 404, msg);
}

/* ---------------------------------------------------------------- /apps */

static enum MHD_Result list_apps(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *names = NULL;
    json_t *list, *name;
    size_t i;

    if (model_app_list(&call->server->model, &names, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    list = json_array();
    json_array_foreach(names, i, name) {
        if (api_allows(call->server, call->who, json_string_value(name), API_READ, NULL) == 0)
            json_array_append_new(list, app_summary(call->server, json_string_value(name)));
    }
    return api_respond_json(call->conn, 200, json_pack("{s:o}", "apps", list));
}

static enum MHD_Result create_app(const struct api_call *call)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *repo = NULL, *picked = NULL;
    enum MHD_Result answer;
    const char *name;

    if (api_allows(s, call->who, NULL, API_MANAGE, NULL) != 0)
        return api_respond_error(call->conn, 403, "this token may not create apps (its role is deploy or read)");
    if (!(doc = api_body_object(call, &answer)))
        return answer;
    name = json_get_str(doc, "name");
    if (!name && json_object_get(doc, "name") && !json_is_null(json_object_get(doc, "name")))
        return api_respond_error(call->conn, 400, "expected a JSON body {\"name\": \"<app>\"} (or no name)");
    if (quota_app_create(s, call->tenant, name, &picked, &err) < 0)
        return api_respond_error(call->conn, berth_error_code(&err) == EEXIST || berth_error_code(&err) == EDQUOT ?
                                 409 : berth_error_code(&err) == EINVAL ? 400 : 500, berth_error_msg(&err));
    if (!name)
        name = picked;
    repo = model_path(&s->model, "apps/%s/repo.git", name);
    if (receiver_repo_init(repo, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    log_info("tenant '%s' created app '%s'", call->tenant, name);
    events_record(s, call->tenant, name, "create", "Created %s", name);
    /* It answers at once: 503 H81 ("nothing deployed yet") until its first release. */
    if (server_publish_routes(s, &err) < 0)
        log_warn("routes after creating '%s': %s", name, berth_error_msg(&err));
    return api_respond_json(call->conn, 201, app_summary(s, name));
}

/* ---------------------------------------------------------------- settings in app.json */

typedef int (*settings_fn)(const struct api_call *call, json_t *record, const json_t *body,
                           struct berth_error **err);

/* What a failed check answers: 403 for EPERM, 409 for a conflict, 404, 400; 500 for the rest. */
static unsigned change_status(int r)
{
    switch (-r) {
    case EPERM: return 403;
    case ENOTSUP: case EEXIST: case EDQUOT: return 409;
    case ENOENT: return 404;
    case EINVAL: case E2BIG: case ERANGE: return 400;
    default: return 500;
    }
}

/*
 * Read app.json, let `change` check and apply what it was given, write
 * app.json: under the records lock, so two changes never lose one another.
 * A check that fails answers with change_status() and stores nothing.
 */
enum MHD_Result api_change_record(const struct api_call *call, const char *app, api_record_fn change, void *cls,
                                  json_t **ret_record)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = model_app_load(&s->model, app, &record, &err);
    if (r == 0 && (r = change(call, record, cls, &err)) < 0) {
        pthread_mutex_unlock(&s->records_lock);
        return api_respond_error(call->conn, change_status(r), berth_error_msg(&err));
    }
    if (r == 0)
        r = model_app_save(&s->model, app, record, &err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    /* Which setting, not its value: the path names it ("/apps/hello/router"). */
    events_record(s, call->tenant, app, "settings", "%s %s", call->method, call->url);
    *ret_record = TAKE_PTR(record);
    return MHD_YES;
}

struct settings_change {
    settings_fn fn;
    const json_t *body;
};

static int apply_settings(const struct api_call *call, json_t *record, void *cls, struct berth_error **err)
{
    const struct settings_change *ch = cls;

    return ch->fn(call, record, ch->body, err);
}

/* api_change_record() with the request's body handed to `change`. */
static enum MHD_Result update_settings(const struct api_call *call, const char *app, settings_fn change,
                                       json_t **ret_record)
{
    _cleanup_json_ json_t *body = NULL;
    struct settings_change ch = { .fn = change };
    enum MHD_Result answer;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    ch.body = body;
    return api_change_record(call, app, apply_settings, &ch, ret_record);
}

static int change_buildpacks(const struct api_call *call, json_t *record, const json_t *body,
                             struct berth_error **err)
{
    const json_t *list = json_object_get(body, "buildpacks");
    json_t *item;
    size_t i;
    int r;

    if (!json_is_array(list))
        return berth_error_plain(err, EINVAL, "expected {\"buildpacks\": [\"<url or name>\", ...]}");
    if (json_array_size(list) > 16)
        return berth_error_plain(err, EINVAL, "at most 16 buildpacks");
    json_array_foreach(list, i, item) {
        if (!json_is_string(item))
            return berth_error_plain(err, EINVAL, "every buildpack must be a string");
        if ((r = build_buildpack_check(json_string_value(item), is_admin(call->tenant), err)) < 0)
            return r;
    }
    if (json_array_size(list) == 0)
        json_object_del(record, "buildpacks");
    else
        json_object_set(record, "buildpacks", (json_t *)list);
    return 0;
}

/* "services/api" or "/services/api/" -> "services/api"; "" -> NULL (the root). */
static int check_build_dir(const char *dir, char **ret, struct berth_error **err)
{
    struct strbuf sb = STRBUF_INIT;

    if (strlen(dir) > APP_BUILD_DIR_MAX) {
        strbuf_release(&sb);
        return berth_error_plain(err, EINVAL, "dir is longer than %d bytes", APP_BUILD_DIR_MAX);
    }
    for (const char *p = dir; *p;) {
        size_t len = strcspn(p, "/");

        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            strbuf_release(&sb);
            return berth_error_plain(err, EINVAL, "dir '%s' may not contain '.' or '..'", dir);
        }
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
                strbuf_release(&sb);
                return berth_error_plain(err, EINVAL, "dir contains a control character");
            }
        }
        if (len) {
            if (sb.len)
                strbuf_addch(&sb, '/');
            strbuf_add(&sb, p, len);
        }
        p += len;
        while (*p == '/')
            p++;
    }
    *ret = sb.len ? strbuf_detach(&sb, NULL) : NULL;
    strbuf_release(&sb);
    return 0;
}

/* One budget key of builds:set: only the operator sets what a build may use. */
static int change_budget_key(const struct api_call *call, json_t *build, const json_t *body,
                             const char *key, struct berth_error **err)
{
    const json_t *v = json_object_get(body, key);
    uint64_t bytes;
    unsigned secs;

    if (!v)
        return 0;
    if (!caller_is_admin(call))
        return berth_error_plain(err, EPERM, "only the operator's tenant may change a build's %s", key);
    if (json_is_null(v) || (json_is_string(v) && !*json_string_value(v))) {
        json_object_del(build, key);
        return 0;
    }
    if (json_is_string(v) && strcmp(key, "timeout") == 0 && units_parse_duration(json_string_value(v), &secs)) {
        json_object_set_new(build, key, json_integer(secs));
        return 0;
    }
    if (json_is_string(v) && strcmp(key, "timeout") != 0 && units_parse_size(json_string_value(v), &bytes)) {
        json_object_set_new(build, key, json_integer((json_int_t)bytes));
        return 0;
    }
    return berth_error_plain(err, EINVAL, "%s must be %s", key,
                             strcmp(key, "timeout") == 0 ? "a duration such as 15m" : "a size such as 2G");
}

static int change_build(const struct api_call *call, json_t *record, const json_t *body,
                        struct berth_error **err)
{
    static const char *const budget_keys[] = { "memory", "disk", "timeout" };
    _cleanup_json_ json_t *build = json_deep_copy(json_object_get(record, "build"));
    const json_t *dir = json_object_get(body, "dir");
    const char *key;
    json_t *v;
    int r;

    json_object_foreach((json_t *)body, key, v) {
        bool known = strcmp(key, "dir") == 0;

        for (size_t i = 0; i < sizeof(budget_keys) / sizeof(*budget_keys); i++)
            known |= strcmp(key, budget_keys[i]) == 0;
        if (!known)
            return berth_error_plain(err, EINVAL, "unknown build setting '%.40s' (dir, memory, disk, "
                                     "timeout)", key);
    }
    if (!build)
        build = json_object();
    if (dir) {
        _cleanup_free_ char *clean = NULL;

        if (!json_is_null(dir) && !json_is_string(dir))
            return berth_error_plain(err, EINVAL, "dir must be a path in the repository");
        if (json_is_string(dir) && (r = check_build_dir(json_string_value(dir), &clean, err)) < 0)
            return r;
        if (clean)
            json_object_set_new(build, "dir", json_string(clean));
        else
            json_object_del(build, "dir");
    }
    for (size_t i = 0; i < sizeof(budget_keys) / sizeof(*budget_keys); i++)
        if ((r = change_budget_key(call, build, body, budget_keys[i], err)) < 0)
            return r;
    json_object_set(record, "build", build);
    return 0;
}

static int change_net(const struct api_call *call, json_t *record, const json_t *body,
                      struct berth_error **err)
{
    const json_t *outbound = json_object_get(body, "outbound");

    if (!json_is_boolean(outbound) || json_object_size(body) != 1)
        return berth_error_plain(err, EINVAL, "expected {\"outbound\": true|false}");
    if (json_is_true(outbound) && !call->server->network)
        return berth_error_plain(err, ENOTSUP, "this host cannot give apps outbound network (pasta "
                                 "and a usable /dev/net/tun are needed: see 'berth setup')");
    json_object_set_new(record, "net", json_pack("{s:O}", "outbound", outbound));
    return 0;
}

/* {"checks": "enabled"|"skipped"|"disabled"}: whether deploys run the startup health checks (checks.h). */
static int change_checks(const struct api_call *call, json_t *record, const json_t *body,
                         struct berth_error **err)
{
    const char *mode = json_get_str(body, "checks");

    (void)call;
    if (!mode || json_object_size(body) != 1 ||
        (strcmp(mode, "enabled") && strcmp(mode, "skipped") && strcmp(mode, "disabled")))
        return berth_error_plain(err, EINVAL, "expected {\"checks\": \"enabled\", \"skipped\" or \"disabled\"}");
    if (strcmp(mode, "enabled") == 0)
        json_object_del(record, "checks");
    else
        json_object_set_new(record, "checks", json_string(mode));
    return 0;
}

/* {"grace": seconds or null}: the app's shutdown grace period, for instances started from now on. */
static int change_ps(const struct api_call *call, json_t *record, const json_t *body, struct berth_error **err)
{
    const json_t *grace = json_object_get(body, "grace");

    (void)call;
    if (json_object_size(body) != 1 || !grace || (!json_is_null(grace) && (!json_is_integer(grace) ||
        json_integer_value(grace) < 1 || json_integer_value(grace) > FORMATION_GRACE_MAX_S)))
        return berth_error_plain(err, EINVAL, "expected {\"grace\": seconds from 1 to %d, or null for 30}",
                                 FORMATION_GRACE_MAX_S);
    if (json_is_null(grace))
        json_object_del(record, "ps");
    else
        json_object_set_new(record, "ps", json_pack("{s:O}", "grace", grace));
    return 0;
}

static enum MHD_Result settings(const struct api_call *call, const char *app, const char *what)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL;
    enum MHD_Result answer;
    json_t *v;

    if (strcmp(what, "buildpacks") == 0) {
        if (strcmp(call->method, "GET") != 0 &&
            (answer = update_settings(call, app, change_buildpacks, &record), !record))
            return answer;
        if (!record && model_app_load(&call->server->model, app, &record, &err) < 0)
            return api_respond_error(call->conn, 500, berth_error_msg(&err));
        v = json_object_get(record, "buildpacks");
        return api_respond_json(call->conn, 200, json_pack("{s:O}", "buildpacks", v ? v : json_array()));
    }
    if (strcmp(what, "checks") == 0) {
        const char *mode;

        if (strcmp(call->method, "GET") != 0 &&
            (answer = update_settings(call, app, change_checks, &record), !record))
            return answer;
        if (!record && model_app_load(&call->server->model, app, &record, &err) < 0)
            return api_respond_error(call->conn, 500, berth_error_msg(&err));
        mode = json_get_str(record, "checks");
        return api_respond_json(call->conn, 200, json_pack("{s:s}", "checks", mode ? mode : "enabled"));
    }
    if (strcmp(what, "ps") == 0) {
        json_int_t grace;

        if (strcmp(call->method, "GET") != 0 && (answer = update_settings(call, app, change_ps, &record), !record))
            return answer;
        if (!record && model_app_load(&call->server->model, app, &record, &err) < 0)
            return api_respond_error(call->conn, 500, berth_error_msg(&err));
        grace = json_integer_value(json_object_get(json_object_get(record, "ps"), "grace"));
        return api_respond_json(call->conn, 200, json_pack("{s:I, s:b}", "grace", grace ? grace : 30, "default",
                                                           grace == 0));
    }
    if (strcmp(what, "build") == 0) {
        if ((answer = update_settings(call, app, change_build, &record), !record))
            return answer;
        return api_respond_json(call->conn, 200, json_pack("{s:O}", "build", json_object_get(record, "build")));
    }
    if ((answer = update_settings(call, app, change_net, &record), !record))
        return answer;
    /* The running release picks the setting up at once, with no downtime. */
    if (deploy_restart(call->server, app, call->tenant, &err) < 0)
        return api_respond_start_error(call->conn, 500, &err);
    return api_respond_json(call->conn, 200, json_pack("{s:O}", "net", json_object_get(record, "net")));
}

/* ---------------------------------------------------------------- config */

static bool env_name_valid(const char *name)
{
    if (!*name || strlen(name) > 255 || isdigit((unsigned char)name[0]))
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* Applies {"K": "v", "K2": null} to config; the description names what changed. */
static int apply_config(json_t *config, const json_t *changes, struct strbuf *set, struct strbuf *unset,
                        struct berth_error **err)
{
    const char *key;
    json_t *v;

    if (json_object_size(changes) == 0)
        return berth_error_plain(err, EINVAL, "expected {\"NAME\": \"value\" or null, ...}");
    json_object_foreach((json_t *)changes, key, v) {
        if (!env_name_valid(key))
            return berth_error_plain(err, EINVAL, "'%.80s' is not a valid config var name (letters, "
                                     "digits and '_', not starting with a digit)", key);
        if (json_is_null(v)) {
            json_object_del(config, key);
            strbuf_addf(unset, "%s%s", unset->len ? ", " : "", key);
            continue;
        }
        if (!json_is_string(v))
            return berth_error_plain(err, EINVAL, "the value of '%s' must be a string", key);
        if (json_string_length(v) > CONFIG_MAX_VALUE || memchr(json_string_value(v), '\0', json_string_length(v)))
            return berth_error_plain(err, EINVAL, "the value of '%s' is longer than 64 KiB or holds a "
                                     "NUL byte", key);
        json_object_set(config, key, v);
        strbuf_addf(set, "%s%s", set->len ? ", " : "", key);
    }
    if (json_object_size(config) > DEPLOY_CONFIG_MAX_VARS)
        return berth_error_plain(err, E2BIG, "more than %d config vars", DEPLOY_CONFIG_MAX_VARS);
    return 0;
}

static enum MHD_Result config(const struct api_call *call, const char *app)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *current = NULL, *body = NULL, *next = NULL;
    _cleanup_strbuf_ struct strbuf set = STRBUF_INIT, unset = STRBUF_INIT, desc = STRBUF_INIT;
    enum MHD_Result answer;
    unsigned version = 0;
    const char *restart;

    if (model_app_config(&s->model, app, &current, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    if (strcmp(call->method, "GET") == 0 && call->who->role == TENANTS_ROLE_READ) {
        /* A read token sees which vars are set, never their values. */
        json_t *names = json_object();
        const char *key;
        json_t *v;

        json_object_foreach(current, key, v)
            json_object_set_new(names, key, json_null());
        return api_respond_json(call->conn, 200, json_pack("{s:o, s:b}", "config", names, "values_hidden", 1));
    }
    if (strcmp(call->method, "GET") == 0)
        return api_respond_json(call->conn, 200, json_pack("{s:O}", "config", current));
    if (strcmp(call->method, "PATCH") != 0)
        return api_respond_error(call->conn, 405, "use GET or PATCH");
    if (!(body = api_body_object(call, &answer)))
        return answer;
    /* Checked here on the config as it was; applied under the app's deploy lock to the config as it is then. */
    next = json_deep_copy(current);
    if (apply_config(next, body, &set, &unset, &err) < 0)
        return api_respond_error(call->conn, 400, berth_error_msg(&err));
    json_decref(TAKE_PTR(next));
    if (set.len)
        strbuf_addf(&desc, "Set %s config vars", set.buf);
    if (unset.len)
        strbuf_addf(&desc, "%sUnset %s config vars", desc.len ? "; " : "", unset.buf);
    restart = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "restart");
    if (deploy_config(s, app, call->tenant, body, desc.buf, !restart || strcmp(restart, "0") != 0, &version,
                      &next, &err) < 0)
        return api_respond_start_error(call->conn, berth_error_code(&err) == E2BIG ? 400 : 500, &err);
    return api_respond_json(call->conn, 200, json_pack("{s:O, s:i}", "config", next, "release", (int)version));
}

/* ---------------------------------------------------------------- events */

/* GET /events[?app=NAME]: the audit log's last 1000 events the tenant may see. */
static enum MHD_Result list_events(const struct api_call *call)
{
    const char *app = MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, "app");
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *events = NULL;

    /* An app-scoped token reads its app's only. */
    if (!app && call->who->app)
        app = call->who->app;
    /* A gone app's events are still in the unfiltered list. */
    if (app && api_allows(call->server, call->who, app, API_READ, NULL) != 0)
        return not_found(call, app);
    if (events_read(call->server, call->tenant, app, 1000, &events, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    return api_respond_json(call->conn, 200, json_pack("{s:O}", "events", events));
}

/* ---------------------------------------------------------------- gc */

/* POST /gc {"dry_run": bool, "keep": N}: the operator's (admin) only. */
static enum MHD_Result run_gc(const struct api_call *call)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL, *report = NULL;
    enum MHD_Result answer;
    const json_t *keep, *dry;

    if (!caller_is_admin(call) || api_allows(call->server, call->who, NULL, API_MANAGE, NULL) != 0)
        return api_respond_error(call->conn, 403, "only the operator (admin tenant) collects garbage");
    if (!(body = api_body_object(call, &answer)))
        return answer;
    keep = json_object_get(body, "keep");
    dry = json_object_get(body, "dry_run");
    if ((keep && (!json_is_integer(keep) || json_integer_value(keep) < 1 || json_integer_value(keep) > 1000)) ||
        (dry && !json_is_boolean(dry)))
        return api_respond_error(call->conn, 400, "expected {\"dry_run\": true|false, \"keep\": 1..1000}");
    if (gc_run(call->server, json_is_true(dry), keep ? (unsigned)json_integer_value(keep) : GC_KEEP_RELEASES,
               &report, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    if (!json_is_true(dry))
        events_record(call->server, call->tenant, NULL, "gc", "Removed %zu slugs (%lld bytes)",
                      json_array_size(json_object_get(report, "removed")),
                      (long long)json_integer_value(json_object_get(report, "bytes")));
    return api_respond_json(call->conn, 200, json_incref(report));
}

/* DELETE /apps/<app>/build/cache: {"purged": bytes} (build-cache.h). */
static enum MHD_Result purge_cache(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    uint64_t bytes = 0;

    if (build_cache_purge(call->server, app, call->tenant, &bytes, &err) < 0)
        return api_respond_error(call->conn, berth_error_code(&err) == ENOENT ? 404 : 500, berth_error_msg(&err));
    events_record(call->server, call->tenant, app, "cache", "Purged the build cache (%llu bytes)",
                  (unsigned long long)bytes);
    return api_respond_json(call->conn, 200, json_pack("{s:I}", "purged", (json_int_t)bytes));
}

/* ---------------------------------------------------------------- routing */

/*
 * Every /apps/<app>/... route, after api_allows() let the caller in: what
 * is added here (or in the files it hands to) is checked without more
 * code. `call->tenant` is the app's owner.
 */
static enum MHD_Result app_route(const struct api_call *call, const char *app, const char *sub)
{
    const char *method = call->method;

    if (!sub && strcmp(method, "GET") == 0)
        return api_respond_json(call->conn, 200, app_summary(call->server, app));
    if (!sub && strcmp(method, "DELETE") == 0)
        return api_app_destroy(call, app);
    if (sub && strcmp(sub, "/buildpacks") == 0 && (!strcmp(method, "GET") || !strcmp(method, "PUT")))
        return settings(call, app, "buildpacks");
    if (sub && (strcmp(sub, "/build") == 0 || strcmp(sub, "/net") == 0) && strcmp(method, "PATCH") == 0)
        return settings(call, app, sub + 1);
    if (sub && strcmp(sub, "/build/cache") == 0 && strcmp(method, "DELETE") == 0)
        return purge_cache(call, app);
    if (sub && strcmp(sub, "/checks") == 0 && (!strcmp(method, "GET") || !strcmp(method, "PATCH")))
        return settings(call, app, "checks");
    if (sub && strcmp(sub, "/ps") == 0 && (!strcmp(method, "GET") || !strcmp(method, "PATCH")))
        return settings(call, app, "ps");
    if (sub && strcmp(sub, "/config") == 0)
        return config(call, app);
    if (sub && strncmp(sub, "/domains", 8) == 0 && (sub[8] == '\0' || sub[8] == '/'))
        return api_domains_handle(call, app, sub + 8);
    if (sub && strncmp(sub, "/certs", 6) == 0 && (sub[6] == '\0' || sub[6] == '/'))
        return api_certs_handle(call, app, sub + 6);
    if (sub && strcmp(sub, "/router") == 0)
        return api_router_handle(call, app);
    if (sub && strcmp(sub, "/releases") == 0)
        return api_releases_handle(call, app);
    if (sub && strcmp(sub, "/cron") == 0)
        return api_cron_handle(call, app);
    if (sub && ((strcmp(sub, "/dynos") == 0 && strcmp(method, "GET") == 0) || strcmp(sub, "/formation") == 0 ||
                strncmp(sub, "/actions/", 9) == 0 || strncmp(sub, "/dynos/", 7) == 0))
        return api_ps_handle(call, app, sub);
    if (sub && strcmp(sub, "/dynos") == 0 && strcmp(method, "POST") == 0)
        return api_run_handle(call, app);
    if (sub && strcmp(sub, "/logs") == 0)
        return api_logs_handle(call, app);
    if (sub && strcmp(sub, "/resources") == 0)
        return api_quota_resources_handle(call, app);
    if (sub && (strncmp(sub, "/pipeline", 9) == 0 || strcmp(sub, "/config/copy") == 0 ||
                strcmp(sub, "/preview-config") == 0))
        return api_pipelines_app_handle(call, app, sub);
    return api_respond_error(call->conn, 404, "no such endpoint");
}

enum MHD_Result api_apps_handle(const struct api_call *call)
{
    const char *url = call->url, *method = call->method;
    _cleanup_free_ char *app = NULL, *owner = NULL;
    enum api_action action;
    const char *sub;
    unsigned status;

    if (strcmp(url, "/apps") == 0 && strcmp(method, "GET") == 0)
        return list_apps(call);
    if (strcmp(url, "/apps") == 0 && strcmp(method, "POST") == 0)
        return create_app(call);
    if (strcmp(url, "/events") == 0 && strcmp(method, "GET") == 0)
        return list_events(call);
    if (strcmp(url, "/gc") == 0 && strcmp(method, "POST") == 0)
        return run_gc(call);
    if (strncmp(url, "/tenants/", 9) == 0 && (sub = strchr(url + 9, '/')) && strcmp(sub, "/limits") == 0) {
        app = xstrndup(url + 9, (size_t)(sub - url - 9));
        return api_quota_tenant_handle(call, app);
    }
    if (strcmp(url, "/keys") == 0)
        return api_keys_handle(call);
    if (strcmp(url, "/tenants") == 0 || strncmp(url, "/tenants/", 9) == 0 || strcmp(url, "/tokens") == 0 ||
        strncmp(url, "/tokens/", 8) == 0)
        return api_tenants_handle(call);
    if (strcmp(url, "/pipelines") == 0 || strncmp(url, "/pipelines/", 11) == 0)
        return api_pipelines_handle(call);
    if (strncmp(url, "/apps/", 6) != 0)
        return api_respond_error(call->conn, 404, "no such endpoint");
    sub = strchr(url + 6, '/');
    app = sub ? xstrndup(url + 6, (size_t)(sub - url - 6)) : xstrdup(url + 6);
    /* Destroying an app is the tenant's own token's; any other write is a deploy token's too. */
    action = !sub && strcmp(method, "DELETE") == 0 ? API_MANAGE : api_method_action(method);
    status = api_allows(call->server, call->who, app, action, &owner);
    if (status == 404)
        return not_found(call, app);
    if (status)
        return api_respond_error(call->conn, status, action == API_MANAGE
                                 ? "only the tenant's own token may do this (this token's role is deploy or read)"
                                 : "this token may only read (its role is read)");
    {
        struct api_call for_owner = *call;

        for_owner.tenant = owner;
        return app_route(&for_owner, app, sub);
    }
}
