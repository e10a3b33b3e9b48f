/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-domains: what the router needs to know of an app besides its
 * instances (docs/API.md):
 *
 *   GET    /apps/<app>/domains          {"domains", "default"[, "without_cert"]}
 *   POST   /apps/<app>/domains          {"name"}: `berth domains:add`, 201
 *   DELETE /apps/<app>/domains/<name>   `berth domains:remove`
 *   GET    /apps/<app>/certs            {"certs": [...]}, never a key
 *   POST   /apps/<app>/certs            {"cert": PEM chain, "key": PEM}: `berth certs:add`, 201
 *   DELETE /apps/<app>/certs/<id>       `berth certs:remove`
 *   GET    /apps/<app>/router           PATCH {"timeout", ...}: `berth router:set`
 *
 * The checks are in domains.c and certs.c; here they run under the records
 * lock (api_change_record()), so that a domain is claimed by one app only:
 * the scan of every app and the write happen with no other change between.
 * Every change is published to the router at once (server_publish_routes(),
 * called after the lock is released).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/certs.h"
#include "control/domains.h"

/* Hands the change to the router; a failure is said in the answer (the change itself is stored). */
static enum MHD_Result publish_then(const struct api_call *call, unsigned status, json_t *doc)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *msg = NULL;

    if (server_publish_routes(call->server, &err) == 0)
        return api_respond_json(call->conn, status, doc);
    json_decref(doc);
    log_error("publishing routes: %s", berth_error_msg(&err));
    msg = xasprintf("the change is saved, but the router did not take it: %s", berth_error_msg(&err));
    return api_respond_error(call->conn, 500, msg);
}

static const char *record_app(const json_t *record)
{
    const char *name = json_get_str(record, "name");

    return name ? name : "";
}

/* ---------------------------------------------------------------- domains */

/* The names of the app that no certificate of it serves (its default name aside). */
static json_t *without_cert(const json_t *record, const json_t *app_names)
{
    _cleanup_json_ json_t *served = json_array();
    json_t *list = json_array(), *c, *d;
    size_t i, k;

    json_array_foreach(json_object_get(record, "certs"), i, c)
        certs_match(json_object_get(c, "names"), app_names, served, NULL);
    json_array_foreach(json_object_get(record, "domains"), i, d) {
        bool found = false;

        json_array_foreach(served, k, c)
            found |= json_equal(c, d);
        if (!found)
            json_array_append(list, d);
    }
    return list;
}

static json_t *domains_doc(const struct server *s, const char *app, const json_t *record)
{
    _cleanup_free_ char *def = domain_default_name(app, s->opt.domain);
    _cleanup_json_ json_t *names = domain_app_names(record, app, s->opt.domain);
    const json_t *list = json_object_get(record, "domains");
    json_t *doc = json_pack("{s:O, s:s}", "domains", list ? list : json_array(), "default", def);

    /* Only an HTTPS listener makes a missing certificate matter. */
    if (s->opt.https_addr)
        json_object_set_new(doc, "without_cert", without_cert(record, names));
    return doc;
}

static int change_domain_add(const struct api_call *call, json_t *record, void *cls, struct berth_error **err)
{
    const char *name = cls, *app = record_app(record);
    json_t *domains = json_object_get(record, "domains"), *d;
    size_t i;
    int r;

    if ((r = domain_check_berth_domain(name, app, call->server->opt.domain, err)) < 0)
        return r;
    json_array_foreach(domains, i, d)
        if (strcmp(json_string_value(d), name) == 0)
            return berth_error_plain(err, EEXIST, "domain '%s' is already a domain of '%s'", name, app);
    if (json_array_size(domains) >= DOMAINS_PER_APP_MAX)
        return berth_error_plain(err, E2BIG, "'%s' has %d domains, the most an app may have", app,
                                 DOMAINS_PER_APP_MAX);
    if ((r = domain_check_claim(&call->server->model, app, call->tenant, name, err)) < 0)
        return r;
    if (!json_is_array(domains))
        json_object_set_new(record, "domains", (domains = json_array()));
    json_array_append_new(domains, json_string(name));
    return 0;
}

static int change_domain_remove(const struct api_call *call, json_t *record, void *cls,
                                struct berth_error **err)
{
    const char *name = cls;
    json_t *domains = json_object_get(record, "domains"), *d;
    size_t i;

    (void)call;
    json_array_foreach(domains, i, d) {
        if (strcmp(json_string_value(d), name) == 0) {
            json_array_remove(domains, i);
            if (json_array_size(domains) == 0)
                json_object_del(record, "domains");
            return 0;
        }
    }
    return berth_error_plain(err, ENOENT, "domain '%s' is not a domain of '%s'", name, record_app(record));
}

static enum MHD_Result domain_add(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL, *record = NULL;
    _cleanup_free_ char *name = NULL;
    enum MHD_Result answer;
    json_t *doc;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    if (!json_get_str(body, "name"))
        return api_respond_error(call->conn, 400, "expected a JSON body {\"name\": \"www.example.com\"}");
    if (domain_normalise(json_get_str(body, "name"), &name, &err) < 0)
        return api_respond_error(call->conn, 400, berth_error_msg(&err));
    if ((answer = api_change_record(call, app, change_domain_add, name, &record), !record))
        return answer;
    log_info("tenant '%s' added domain '%s' to '%s'", call->tenant, name, app);
    doc = domains_doc(call->server, app, record);
    json_object_set_new(doc, "name", json_string(name));
    return publish_then(call, 201, doc);
}

enum MHD_Result api_domains_handle(const struct api_call *call, const char *app, const char *rest)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL;
    _cleanup_free_ char *name = NULL;
    enum MHD_Result answer;

    if (!*rest && strcmp(call->method, "GET") == 0) {
        if (model_app_load(&call->server->model, app, &record, &err) < 0)
            return api_respond_error(call->conn, 500, berth_error_msg(&err));
        return api_respond_json(call->conn, 200, domains_doc(call->server, app, record));
    }
    if (!*rest && strcmp(call->method, "POST") == 0)
        return domain_add(call, app);
    if (!*rest || strcmp(call->method, "DELETE") != 0 || !rest[1] || strchr(rest + 1, '/'))
        return api_respond_error(call->conn, 405, "use GET or POST on /domains, DELETE on /domains/<name>");
    if (domain_normalise(rest + 1, &name, NULL) < 0) {
        _cleanup_free_ char *msg = xasprintf("domain '%.100s' is not a domain of '%s'", rest + 1, app);

        return api_respond_error(call->conn, 404, msg);
    }
    if ((answer = api_change_record(call, app, change_domain_remove, name, &record), !record))
        return answer;
    log_info("tenant '%s' removed domain '%s' from '%s'", call->tenant, name, app);
    return publish_then(call, 200, domains_doc(call->server, app, record));
}

/* ---------------------------------------------------------------- certificates */

/* A stored record as the API shows it: with the names it serves now, those it does not, and whether it expired. */
static json_t *cert_view(const struct server *s, const char *app, const json_t *record, const json_t *cert)
{
    _cleanup_json_ json_t *names = domain_app_names(record, app, s->opt.domain);
    json_t *view = json_deep_copy(cert), *served = json_array(), *unused = json_array();
    const char *not_after = json_get_str(cert, "not_after");
    char now[MODEL_TIME_LEN + 1];

    model_time_format(time(NULL), now);
    certs_match(json_object_get(cert, "names"), names, served, unused);
    json_object_set_new(view, "domains", served);
    json_object_set_new(view, "unused", unused);
    /* ISO 8601 in UTC compares as text. */
    json_object_set_new(view, "expired", json_boolean(not_after && strcmp(not_after, now) < 0));
    return view;
}

static json_t *certs_doc(const struct server *s, const char *app, const json_t *record)
{
    json_t *list = json_array(), *c;
    size_t i;

    json_array_foreach(json_object_get(record, "certs"), i, c)
        json_array_append_new(list, cert_view(s, app, record, c));
    return json_pack("{s:o}", "certs", list);
}

static int change_cert_add(const struct api_call *call, json_t *record, void *cls, struct berth_error **err)
{
    const struct cert_info *ci = cls;
    const char *app = record_app(record);
    _cleanup_json_ json_t *names = domain_app_names(record, app, call->server->opt.domain);
    _cleanup_json_ json_t *served = json_array();
    _cleanup_free_ char *list = json_dumps(ci->names, JSON_COMPACT);
    json_t *certs = json_object_get(record, "certs"), *c;
    size_t i;
    int r;

    json_array_foreach(certs, i, c)
        if (strcmp(json_get_str(c, "id") ? json_get_str(c, "id") : "", ci->id) == 0)
            return berth_error_plain(err, EEXIST, "certificate '%s' is already on '%s'", ci->id, app);
    if (json_array_size(certs) >= CERTS_PER_APP_MAX)
        return berth_error_plain(err, E2BIG, "'%s' has %d certificates, the most an app may have", app,
                                 CERTS_PER_APP_MAX);
    certs_match(ci->names, names, served, NULL);
    if (json_array_size(served) == 0)
        return berth_error_plain(err, EINVAL, "the certificate is for %.300s, none of which is a name of '%s': "
                                 "add one first with 'berth domains:add %s NAME'", list, app, app);
    if ((r = certs_store(&call->server->model, app, ci, err)) < 0)
        return r;
    if (!json_is_array(certs))
        json_object_set_new(record, "certs", (certs = json_array()));
    json_array_append_new(certs, cert_info_record(ci));
    return 0;
}

/* Takes the record out of app.json, then its files, under the records lock. */
static int remove_cert(struct server *s, const char *app, const char *id, json_t **ret_record,
                       struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *certs, *c;
    size_t i;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = model_app_load(&s->model, app, &record, err);
    certs = json_object_get(record, "certs");
    json_array_foreach(certs, i, c)
        if (r == 0 && strcmp(json_get_str(c, "id") ? json_get_str(c, "id") : "", id) == 0)
            break;
    if (r == 0 && i == json_array_size(certs))
        r = berth_error_plain(err, ENOENT, "certificate '%.40s' is not on '%s'", id, app);
    if (r == 0) {
        json_array_remove(certs, i);
        if (json_array_size(certs) == 0)
            json_object_del(record, "certs");
        r = model_app_save(&s->model, app, record, err);
    }
    if (r == 0)
        r = certs_remove_files(&s->model, app, id, err);
    pthread_mutex_unlock(&s->records_lock);
    if (r == 0)
        *ret_record = TAKE_PTR(record);
    return r;
}

/*
 * The router parses the certificate again when it is published; if it
 * refuses it, the certificate goes again, so that one bad certificate
 * never keeps every other change from the router.
 */
static enum MHD_Result publish_cert(const struct api_call *call, const char *app, const char *id, json_t *doc)
{
    _cleanup_error_ struct berth_error *err = NULL, *err2 = NULL;
    _cleanup_json_ json_t *record = NULL;
    _cleanup_free_ char *msg = NULL;

    if (server_publish_routes(call->server, &err) == 0)
        return api_respond_json(call->conn, 201, doc);
    json_decref(doc);
    log_error("publishing certificate '%s' of '%s': %s", id, app, berth_error_msg(&err));
    if (remove_cert(call->server, app, id, &record, &err2) < 0 || server_publish_routes(call->server, &err2) < 0)
        log_error("taking certificate '%s' of '%s' back: %s", id, app, berth_error_msg(&err2));
    msg = xasprintf("the router refused the certificate: %s", berth_error_msg(&err));
    return api_respond_error(call->conn, 400, msg);
}

static enum MHD_Result cert_add(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *body = NULL, *record = NULL;
    _cleanup_(cert_info_release) struct cert_info ci = { 0 };
    const char *cert = NULL, *key = NULL;
    enum MHD_Result answer;
    json_t *c, *view = NULL;
    size_t i;

    if (!(body = api_body_object(call, &answer)))
        return answer;
    if (!(cert = json_get_str(body, "cert")) || !(key = json_get_str(body, "key")))
        return api_respond_error(call->conn, 400, "expected a JSON body {\"cert\": \"<PEM chain>\", "
                                 "\"key\": \"<PEM key>\"}");
    /* GnuTLS's checks need no lock: only what is stored does. */
    if (certs_parse(cert, key, &ci, &err) < 0)
        return api_respond_error(call->conn, 400, berth_error_msg(&err));
    if ((answer = api_change_record(call, app, change_cert_add, &ci, &record), !record))
        return answer;
    log_info("tenant '%s' added certificate '%s' to '%s'", call->tenant, ci.id, app);
    json_array_foreach(json_object_get(record, "certs"), i, c)
        if (strcmp(json_get_str(c, "id") ? json_get_str(c, "id") : "", ci.id) == 0)
            view = cert_view(call->server, app, record, c);
    return publish_cert(call, app, ci.id, json_pack("{s:o}", "cert", view ? view : json_object()));
}

enum MHD_Result api_certs_handle(const struct api_call *call, const char *app, const char *rest)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL;
    int r;

    if (!*rest && strcmp(call->method, "GET") == 0) {
        if (model_app_load(&call->server->model, app, &record, &err) < 0)
            return api_respond_error(call->conn, 500, berth_error_msg(&err));
        return api_respond_json(call->conn, 200, certs_doc(call->server, app, record));
    }
    if (!*rest && strcmp(call->method, "POST") == 0)
        return cert_add(call, app);
    if (!*rest || strcmp(call->method, "DELETE") != 0 || !rest[1] || strchr(rest + 1, '/'))
        return api_respond_error(call->conn, 405, "use GET or POST on /certs, DELETE on /certs/<id>");
    if ((r = remove_cert(call->server, app, rest + 1, &record, &err)) < 0)
        return api_respond_error(call->conn, r == -ENOENT ? 404 : 500, berth_error_msg(&err));
    log_info("tenant '%s' removed certificate '%s' from '%s'", call->tenant, rest + 1, app);
    return publish_then(call, 200, certs_doc(call->server, app, record));
}

/* ---------------------------------------------------------------- router settings */

static json_t *router_doc(const struct server *s, const json_t *record)
{
    const json_t *router = json_object_get(record, "router");

    return json_pack("{s:O, s:{s:i, s:i, s:i, s:b, s:b}, s:b}", "router", router ? router : json_object(),
                     "defaults", "timeout", ROUTER_DEFAULT_TIMEOUT, "connect_timeout",
                     ROUTER_DEFAULT_CONNECT_TIMEOUT, "idle_timeout", ROUTER_DEFAULT_IDLE_TIMEOUT,
                     "https_only", 0, "maintenance", 0, "https", s->opt.https_addr != NULL);
}

static int change_router(const struct api_call *call, json_t *record, void *cls, struct berth_error **err)
{
    const json_t *body = cls;
    _cleanup_json_ json_t *router = json_deep_copy(json_object_get(record, "router"));
    int r;

    if (!router)
        router = json_object();
    if ((r = domain_router_apply(router, body, err)) < 0)
        return r;
    if (json_is_true(json_object_get(body, "https_only")) || json_is_string(json_object_get(body, "https_only")))
        if (json_is_true(json_object_get(router, "https_only")) && !call->server->opt.https_addr)
            return berth_error_plain(err, ENOTSUP, "this server has no HTTPS listener, so https_only would "
                                     "send every request nowhere (start it with 'berth serve --https ADDR')");
    if (json_object_size(router) == 0)
        json_object_del(record, "router");
    else
        json_object_set(record, "router", router);
    return 0;
}

enum MHD_Result api_router_handle(const struct api_call *call, const char *app)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL, *body = NULL;
    enum MHD_Result answer;

    if (strcmp(call->method, "GET") == 0) {
        if (model_app_load(&call->server->model, app, &record, &err) < 0)
            return api_respond_error(call->conn, 500, berth_error_msg(&err));
        return api_respond_json(call->conn, 200, router_doc(call->server, record));
    }
    if (strcmp(call->method, "PATCH") != 0)
        return api_respond_error(call->conn, 405, "use GET or PATCH");
    if (!(body = api_body_object(call, &answer)))
        return answer;
    if ((answer = api_change_record(call, app, change_router, body, &record), !record))
        return answer;
    return publish_then(call, 200, router_doc(call->server, record));
}
