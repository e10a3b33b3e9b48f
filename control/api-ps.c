/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-ps: the app's processes over the API (docs/API.md):
 * GET /apps/<app>/dynos lists them (`berth ps`), GET and PATCH
 * /apps/<app>/formation read and set each type's scale (`ps:scale`), and
 * POST /apps/<app>/actions/{restart,stop,start} are `ps:restart`,
 * `ps:stop` and `ps:start`, and POST /apps/<app>/dynos/run.N/actions/stop
 * is `ps:stop APP run.N` (Heroku's route for stopping one dyno; here one
 * one-off run). The work is formation.h's and run.h's; this file turns
 * requests into their calls and their errors into statuses.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/events.h"
#include "control/formation.h"
#include "control/run.h"

static unsigned status_of(int r)
{
    switch (-r) {
    case ENOENT:
        return 404;
    case EINVAL:
    case ERANGE:
        return 400;
    case EDQUOT:
    case EBUSY:
        return 409;
    default:
        return 500;
    }
}

/* {"web": 2, "worker": 0}: every type of the current release with its scale. */
static json_t *scale_of(struct server *s, const char *app, const json_t *release)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *out = json_object(), *cmd;
    const char *type;

    if (model_app_load(&s->model, app, &record, NULL) < 0)
        return out;
    json_object_foreach(json_object_get(release, "process_types"), type, cmd)
        if (formation_type_valid(type))
            json_object_set_new(out, type, json_integer(formation_wanted(record, type)));
    return out;
}

static enum MHD_Result list_dynos(const struct api_call *call, const char *app)
{
    _cleanup_json_ json_t *release = NULL, *record = NULL;
    _cleanup_error_ struct berth_error *err = NULL;
    unsigned version = 0;

    if (model_release_current(&call->server->model, app, &version, &release, &err) < 0 ||
        model_app_load(&call->server->model, app, &record, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    json_t *procs = formation_ps(call->server, app), *runs = run_list(call->server, app);

    /* The one-off runs in progress too, as Heroku's ps lists run.N beside the formation. */
    json_array_extend(procs, runs);
    json_decref(runs);
    return api_respond_json(call->conn, 200,
                            json_pack("{s:s, s:i, s:b, s:o, s:o}", "app", app, "release", (int)version, "stopped",
                                      json_is_true(json_object_get(record, "stopped")), "formation",
                                      scale_of(call->server, app, release), "processes", procs));
}

static enum MHD_Result scale(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    _cleanup_strbuf_ struct strbuf words = STRBUF_INIT;
    enum MHD_Result answer;
    const char *type;
    json_t *v;
    int r;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    r = formation_scale(call->server, app, body, &err);
    if (r < 0)
        return api_respond_error(call->conn, status_of(r), berth_error_msg(&err));
    json_object_foreach(body, type, v)
        strbuf_addf(&words, "%s%s=%lld", words.len ? " " : "", type, (long long)json_integer_value(v));
    events_record(call->server, call->tenant, app, "scale", "Scaled to %s", words.buf);
    return list_dynos(call, app);
}

static enum MHD_Result action(const struct api_call *call, const char *app, const char *what)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL;
    const char *type = NULL;
    int r;

    if (call->body->len) {
        enum MHD_Result answer;

        if (!(body = api_body_object(call, &answer)))
            return answer;
        type = json_get_str(body, "type");
        if (json_object_get(body, "type") && !json_is_null(json_object_get(body, "type")) &&
            (!type || !formation_type_valid(type)))
            return api_respond_error(call->conn, 400, "\"type\" must be a process type name");
    }
    if (strcmp(what, "restart") == 0)
        r = formation_restart(call->server, app, type, &err);
    else if (type)
        return api_respond_error(call->conn, 400, "ps:stop and ps:start act on every process type");
    else if (strcmp(what, "stop") == 0)
        r = formation_stop(call->server, app, &err);
    else
        r = formation_start(call->server, app, &err);
    if (r < 0)
        return api_respond_error(call->conn, status_of(r), berth_error_msg(&err));
    events_record(call->server, call->tenant, app, what, "ps:%s%s%s", what, type ? " " : "", type ? type : "");
    return list_dynos(call, app);
}

/* "run.4821": what enlist() in run.c names a one-off. */
static bool run_name_valid(const char *dyno)
{
    size_t n = strspn(dyno + 4, "0123456789");

    return strncmp(dyno, "run.", 4) == 0 && n >= 1 && n <= 9 && dyno[4 + n] == '\0';
}

/* POST /apps/<app>/dynos/<dyno>/actions/stop: `rest` is "<dyno>/actions/stop". */
static enum MHD_Result stop_dyno(const struct api_call *call, const char *app, const char *rest)
{
    _cleanup_error_ struct berth_error *err = NULL;
    const char *slash = strchr(rest, '/');
    _cleanup_free_ char *dyno = slash ? xstrndup(rest, (size_t)(slash - rest)) : NULL;
    int r;

    if (!dyno || strcmp(slash, "/actions/stop") != 0)
        return api_respond_error(call->conn, 404, "no such endpoint");
    if (!run_name_valid(dyno))
        return api_respond_error(call->conn, 400, "only a one-off run (run.N) stops on its own: 'berth ps:stop "
                                 "APP' stops every process of the app, 'berth ps:restart APP TYPE' restarts a type");
    r = run_stop_one(call->server, app, dyno, &err);
    if (r < 0)
        return api_respond_error(call->conn, status_of(r), berth_error_msg(&err));
    events_record(call->server, call->tenant, app, "stop", "ps:stop %s", dyno);
    return api_respond_json(call->conn, 202, json_pack("{s:s, s:s}", "name", dyno, "state", "stopping"));
}

enum MHD_Result api_ps_handle(const struct api_call *call, const char *app, const char *sub)
{
    const char *method = call->method;

    if (strncmp(sub, "/dynos/", 7) == 0 && strcmp(method, "POST") == 0)
        return stop_dyno(call, app, sub + 7);
    if (strcmp(sub, "/dynos") == 0 && strcmp(method, "GET") == 0)
        return list_dynos(call, app);
    if (strcmp(sub, "/formation") == 0 && strcmp(method, "GET") == 0)
        return list_dynos(call, app);
    if (strcmp(sub, "/formation") == 0 && strcmp(method, "PATCH") == 0)
        return scale(call, app);
    if (strncmp(sub, "/actions/", 9) == 0 && strcmp(method, "POST") == 0 &&
        (!strcmp(sub + 9, "restart") || !strcmp(sub + 9, "stop") || !strcmp(sub + 9, "start")))
        return action(call, app, sub + 9);
    return api_respond_error(call->conn, 404, "no such endpoint");
}
