/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api: the control daemon's HTTP endpoint (see api.h). One
 * libmicrohttpd daemon, thread per connection: a git push holds its
 * connection for the whole build, and the receiver streams the build's
 * output from a blocking content reader, which only that mode allows.
 */
#include "control/api.h"
#include "control/api-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/deploy.h"
#include "control/git-shell.h"
#include "receiver/receiver.h"

enum request_kind { REQUEST_API, REQUEST_GIT };

struct api_request {
    enum request_kind kind;
    struct tenants_principal who;   /* the authenticated caller; who.tenant NULL until then */
    char *owner;                /* git requests: the app's tenant */
    struct strbuf body;
    bool body_too_large;
    /* git requests */
    char *app;
    char *repo_path;
    struct deploy_ctx deploy;
    struct receiver_options ropts;
    void *git_slot;
    /*
     * An upgrade answer queued for this request (api_respond_upgrade()):
     * the handler takes upgrade_cls when libmicrohttpd hands it the
     * connection; the request's completion, which always comes after (the
     * handler is given this request's state, and in thread-per-connection
     * mode runs on the thread that completes it), frees it if it is still
     * here: the connection ended before the 101 went out.
     */
    api_upgrade_fn upgrade_fn;
    void *upgrade_cls;
    void (*upgrade_free)(void *cls);
};

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, const char *body)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                                MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result api_respond_json(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    json_decref(doc);
    strbuf_addstr(&sb, text ? text : "{}");
    strbuf_addch(&sb, '\n');
    return respond(c, status, "application/json", sb.buf);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, enum request_kind kind, unsigned status,
                                     const char *msg)
{
    if (kind == REQUEST_GIT) {
        /* git prints a text/plain error body as `remote: <line>`. */
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        strbuf_addf(&sb, "%s\n", msg);
        return respond(c, status, "text/plain; charset=utf-8", sb.buf);
    }
    return api_respond_json(c, status, json_pack("{s:s}", "error", msg));
}

enum MHD_Result api_respond_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return respond_error(c, REQUEST_API, status, msg);
}

enum MHD_Result api_respond_start_error(struct MHD_Connection *c, unsigned status, struct berth_error **err)
{
    return respond_error(c, REQUEST_API, berth_error_code(err) == EDQUOT ? 409 : status, berth_error_msg(err));
}

static enum MHD_Result respond_unauthorized(struct MHD_Connection *c, enum request_kind kind)
{
    const char *msg = "invalid or missing credentials: use the API token (git: as the password)";
    struct MHD_Response *resp;
    enum MHD_Result ret;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    if (kind == REQUEST_GIT)
        strbuf_addf(&sb, "%s\n", msg);
    else
        strbuf_addf(&sb, "{\"error\":\"%s\"}\n", msg);
    resp = MHD_create_response_from_buffer(sb.len, sb.buf, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            kind == REQUEST_GIT ? "text/plain; charset=utf-8" : "application/json");
    ret = MHD_queue_basic_auth_fail_response(c, "berth", resp);
    MHD_destroy_response(resp);
    return ret;
}

static void upgraded(void *cls, struct MHD_Connection *c, void *req_cls, const char *extra_in, size_t extra_in_size,
                     MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct api_request *req = req_cls;
    (void)cls;
    (void)c;

    req->upgrade_fn(TAKE_PTR(req->upgrade_cls), extra_in, extra_in_size, sock, urh);
}

enum MHD_Result api_respond_upgrade(const struct api_call *call, const char *protocol, api_upgrade_fn fn, void *cls,
                                    void (*free_cls)(void *cls))
{
    struct api_request *req = call->request;
    struct MHD_Response *resp = MHD_create_response_for_upgrade(upgraded, NULL);
    enum MHD_Result ret;

    /* Even when nothing is queued: the request's completion frees it. */
    req->upgrade_fn = fn;
    req->upgrade_cls = cls;
    req->upgrade_free = free_cls;
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, protocol);
    ret = MHD_queue_response(call->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Bearer <token>, or Basic with any user name and the token as the password. */
static char *request_token(struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    char *user = NULL, *pass = NULL;

    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return xstrdup(auth + 7);
    user = MHD_basic_auth_get_username_password(c, &pass);
    MHD_free(user);
    if (pass) {
        char *token = xstrdup(pass);

        MHD_free(pass);
        return token;
    }
    return NULL;
}

enum api_action api_method_action(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ? API_READ : API_DEPLOY;
}

static bool role_allows(enum tenants_role role, enum api_action action)
{
    switch (action) {
    case API_READ: return true;
    case API_DEPLOY: return role == TENANTS_ROLE_OWNER || role == TENANTS_ROLE_DEPLOY;
    case API_MANAGE: return role == TENANTS_ROLE_OWNER;
    default: return false;
    }
}

unsigned api_allows(struct server *s, const struct tenants_principal *who, const char *app, enum api_action action,
                    char **ret_owner)
{
    _cleanup_json_ json_t *record = NULL;
    const char *owner = NULL;

    if (ret_owner)
        *ret_owner = NULL;
    if (app) {
        /* Missing, another tenant's, or outside the token's scope: all answer alike. */
        if (model_app_load(&s->model, app, &record, NULL) < 0 || !(owner = json_get_str(record, "tenant")) ||
            (strcmp(owner, who->tenant) != 0 && strcmp(who->tenant, MODEL_ADMIN_TENANT) != 0) ||
            (who->app && strcmp(who->app, app) != 0))
            return 404;
    }
    if (!role_allows(who->role, action))
        return 403;
    if (app && ret_owner)
        *ret_owner = xstrdup(owner);
    return 0;
}

/* What a git request does: a push deploys, anything else (a fetch) reads. */
static enum api_action git_action(struct MHD_Connection *c, const char *rest)
{
    const char *service = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service");

    if (strcmp(rest, "git-receive-pack") == 0 ||
        (strcmp(rest, "info/refs") == 0 && service && strcmp(service, "git-receive-pack") == 0))
        return API_DEPLOY;
    return API_READ;
}

/* "/<app>.git/<rest>" -> app and rest; false when the URL is not a git URL. */
static bool split_git_url(const char *url, char **ret_app, const char **ret_rest)
{
    const char *dot = strstr(url, ".git/");

    if (url[0] != '/' || !dot || dot == url + 1 || memchr(url + 1, '/', (size_t)(dot - url - 1)))
        return false;
    *ret_app = xstrndup(url + 1, (size_t)(dot - url - 1));
    *ret_rest = dot + 5;
    return true;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *c, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **req_cls)
{
    struct server *s = cls;
    struct api_request *req = *req_cls;
    const char *rest = NULL;
    (void)version;

    if (!req) {
        _cleanup_free_ char *token = NULL;
        _cleanup_error_ struct berth_error *err = NULL;
        char *app = NULL;

        req = xcalloc(1, sizeof(*req));
        strbuf_init(&req->body, 0);
        *req_cls = req;
        req->kind = split_git_url(url, &app, &rest) ? REQUEST_GIT : REQUEST_API;
        req->app = app;
        token = request_token(c);
        /* An ssh session's token (git-shell.h) is the other way in. */
        if (!token || (tenants_authenticate(&s->model, token, &req->who, &err) < 0 &&
                       !gitshell_authenticate(token, &req->who)))
            return respond_unauthorized(c, req->kind);
        api_guard_authenticated(c);
        if (req->kind == REQUEST_GIT) {
            unsigned status = api_allows(s, &req->who, req->app, git_action(c, rest), &req->owner);

            if (status == 404) {
                _cleanup_free_ char *msg = xasprintf("app '%s' does not exist", req->app);

                return respond_error(c, REQUEST_GIT, 404, msg);
            }
            if (status)
                return respond_error(c, REQUEST_GIT, status, "this token may not push (its role is read)");
            req->repo_path = model_path(&s->model, "apps/%s/repo.git", req->app);
            req->deploy.server = s;
            req->deploy.app = req->app;
            req->deploy.tenant = req->owner;
            req->ropts.repo_path = req->repo_path;
            req->ropts.deploy = deploy_on_push;
            req->ropts.settled = deploy_settled;
            req->ropts.deploy_cls = &req->deploy;
            gitshell_limits(s, &req->ropts);
        } else {
            /* Answer on a later call, once the body is in (queueing now would close the connection). */
            return MHD_YES;
        }
    }
    if (req->kind == REQUEST_GIT) {
        if (!rest) {
            char *ignored = NULL;

            split_git_url(url, &ignored, &rest);
            free(ignored);
        }
        return receiver_http_handle(c, rest, method, upload_data, upload_data_size, &req->git_slot, &req->ropts);
    }
    if (*upload_data_size) {
        if (req->body.len + *upload_data_size > API_BODY_MAX)
            req->body_too_large = true;
        else
            strbuf_add(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    {
        const struct api_call call = {
            .server = s, .conn = c, .tenant = req->who.tenant, .who = &req->who, .url = url, .method = method,
            .body = &req->body, .body_too_large = req->body_too_large, .request = req,
        };

        return api_apps_handle(&call);
    }
}

static void request_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct api_request *req = *req_cls;
    (void)cls;
    (void)c;
    (void)toe;

    if (!req)
        return;
    if (req->git_slot)
        receiver_http_completed(&req->git_slot);
    if (req->upgrade_cls)
        req->upgrade_free(req->upgrade_cls);
    strbuf_release(&req->body);
    tenants_principal_release(&req->who);
    free(req->owner);
    free(req->app);
    free(req->repo_path);
    free(req);
    *req_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    (void)cls;

    strbuf_vaddf(&sb, fmt, ap);
    strbuf_rtrim(&sb);
    log_warn("control http: %s", sb.buf);
}

int api_start(struct server *s, struct berth_error **err)
{
    struct sockaddr_in sin;
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;
    int r;

    r = server_parse_addr(s->opt.control_addr, &sin, err);
    if (r < 0)
        return r;
    if ((r = api_guard_start(err)) < 0)
        return r;
    /* poll, not select: connections past fd 1024 must work. Idle clients are the guard's (api-guard.c). */
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                             MHD_ALLOW_UPGRADE | MHD_USE_POLL,
                         0, NULL, NULL, access_handler, s,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                         MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
                         MHD_OPTION_NOTIFY_CONNECTION, api_guard_notify, NULL,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)3600,
                         MHD_OPTION_END);
    if (!d) {
        api_guard_stop();
        return berth_error_plain(err, EADDRINUSE, "cannot listen on '%s' (control API)", s->opt.control_addr);
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    s->control_port = info ? info->port : ntohs(sin.sin_port);
    s->control_url = xasprintf("http://%s:%u", inet_ntoa(sin.sin_addr), s->control_port);
    s->api = d;
    return 0;
}

void api_stop(struct server *s)
{
    if (s->api)
        MHD_stop_daemon(s->api);
    s->api = NULL;
    api_guard_stop();
}
