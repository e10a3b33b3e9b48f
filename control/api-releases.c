/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-releases: an app's releases in the control API (docs/API.md).
 *
 *   GET  /apps/<app>/releases                  every release, newest first: `berth releases`
 *   POST /apps/<app>/releases {"rollback": N}  a new release from vN (N absent or 0: the one
 *                                              before the current), `berth rollback`
 *
 * Releases are immutable records (model.h: apps/<app>/releases/N.json);
 * the list leaves their config vars out (names and values alike: `config`
 * is where the owner reads them). A rollback goes through the deploy
 * pipeline (deploy_rollback()), under the app's deploy lock.
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/deploy.h"

/* What a listing shows of one release. */
static json_t *release_summary(const json_t *release, unsigned current)
{
    json_t *out = json_object();
    static const char *const keys[] = { "version", "description", "user", "created_at", "commit", "slug",
                                        "buildpack", "process_types" };

    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        json_t *v = json_object_get(release, keys[i]);

        if (v)
            json_object_set(out, keys[i], v);
    }
    json_object_set_new(out, "current",
                        json_boolean(json_integer_value(json_object_get(release, "version")) == current));
    return out;
}

static enum MHD_Result list_releases(const struct api_call *call, const char *app)
{
    struct server *s = call->server;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *list = json_array();
    unsigned current;

    if (model_release_current(&s->model, app, &current, NULL, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    for (unsigned v = current; v > 0; v--) {
        _cleanup_json_ json_t *release = NULL;

        /* A record that cannot be read is skipped, not fatal to the listing. */
        if (model_release_load(&s->model, app, v, &release, &err) < 0) {
            berth_error_release(&err);
            continue;
        }
        json_array_append_new(list, release_summary(release, current));
    }
    return api_respond_json(call->conn, 200, json_pack("{s:O, s:i}", "releases", list, "current", (int)current));
}

static enum MHD_Result rollback(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    enum MHD_Result answer;
    json_t *target;
    json_int_t n = 0;
    unsigned version;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    target = json_object_get(body, "rollback");
    if (!target || (!json_is_null(target) && !json_is_integer(target)))
        return api_respond_error(call->conn, 400, "expected {\"rollback\": VERSION} (or null: the release "
                                 "before the current one)");
    if (json_is_integer(target))
        n = json_integer_value(target);
    if (n < 0 || n > 1000000000)
        return api_respond_error(call->conn, 400, "a release number is a positive integer");
    r = deploy_rollback(call->server, app, call->tenant, (unsigned)n, &version, &err);
    if (r == -ENOENT)
        return api_respond_error(call->conn, 404, berth_error_msg(&err));
    if (r == -EINVAL)
        return api_respond_error(call->conn, 409, berth_error_msg(&err));
    if (r < 0)
        return api_respond_start_error(call->conn, 500, &err);
    return api_respond_json(call->conn, 200, json_pack("{s:i, s:i}", "release", (int)version, "rollback_to",
                                                       (int)(n ? n : version - 2)));
}

enum MHD_Result api_releases_handle(const struct api_call *call, const char *app)
{
    if (strcmp(call->method, "GET") == 0)
        return list_releases(call, app);
    if (strcmp(call->method, "POST") == 0)
        return rollback(call, app);
    return api_respond_error(call->conn, 405, "use GET or POST");
}
