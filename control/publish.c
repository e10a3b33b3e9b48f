/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/publish: what the router is told (server_publish_routes()).
 * Every app gets a route for each name it answers to (its default name
 * "<app>.<domain>" and its custom domains, wildcards included: domains.h)
 * with its router settings (timeouts, https_only) and its running
 * instances as backends; an app with nothing deployed yet gets a blank
 * route (503 H81), an app whose instances are all gone an empty one (503
 * H14). With an HTTPS listener the certificates go out too (certs.h).
 *
 * Publishing is serialised (publish_lock): the table is gathered and set
 * under one lock, so two deploys finishing together can never leave the
 * older table published last. The instances are read under server.lock
 * and held by the router's table (instance_backend_ops) before the lock
 * is dropped, so none can be freed in between.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/certs.h"
#include "control/domains.h"
#include "control/formation.h"
#include "control/instance.h"
#include "control/server.h"

struct app_routes {
    char *app;
    json_t *names;                /* every name the app answers to */
    struct router_app_settings settings;
    bool blank;
};

/* Reads what the records say about one app: its names, settings and whether it ever released. */
static int read_app(struct server *s, const char *app, struct app_routes *ret, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    struct domain_router_settings ds;
    unsigned version = 0;
    int r = model_app_load(&s->model, app, &record, err);

    if (r < 0)
        return r;
    domain_router_settings(record, &ds);
    ret->app = xstrdup(app);
    ret->names = domain_app_names(record, app, s->opt.domain);
    ret->settings.connect_timeout_ms = ds.connect_timeout * 1000;
    ret->settings.head_timeout_ms = ds.timeout * 1000;
    ret->settings.idle_timeout_ms = ds.idle_timeout * 1000;
    ret->settings.https_only = ds.https_only;
    ret->settings.maintenance = ds.maintenance;
    if (model_release_current(&s->model, app, &version, NULL, err) < 0) {
        berth_error_release(err);
        version = 0;
    }
    ret->blank = version == 0;
    return 0;
}

static void app_routes_release(struct app_routes *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].app);
        json_decref(a[i].names);
    }
    free(a);
}

/* Every app's records; an app whose record cannot be read is left out (and said so). */
static struct app_routes *read_apps(struct server *s, size_t *ret_n, struct berth_error **err)
{
    _cleanup_json_ json_t *apps = NULL;
    struct app_routes *out;
    size_t n = 0, i;
    json_t *v;

    if (model_app_list(&s->model, &apps, err) < 0)
        return NULL;
    out = xcalloc(json_array_size(apps) + 1, sizeof(*out));
    json_array_foreach(apps, i, v) {
        _cleanup_error_ struct berth_error *e = NULL;

        if (read_app(s, json_string_value(v), &out[n], &e) < 0)
            log_warn("routes: %s", berth_error_msg(&e));
        else
            n++;
    }
    *ret_n = n;
    return out;
}

static bool name_taken(const struct router_route *routes, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(routes[i].host, host) == 0)
            return true;
    return false;
}

/* Builds the routes and sets them, with every instance read and held under s->lock. */
static int set_routes(struct server *s, struct app_routes *apps, size_t napps, struct berth_error **err)
{
    size_t total = 0, n = 0;
    struct router_route *routes;
    /* Each app's web instances, FORMATION_SCALE_MAX slots apart. */
    void **backends = xcalloc(napps * FORMATION_SCALE_MAX + 1, sizeof(*backends));
    int r;

    for (size_t i = 0; i < napps; i++)
        total += json_array_size(apps[i].names);
    routes = xcalloc(total + 1, sizeof(*routes));
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < napps; i++) {
        uint64_t generation;
        void **mine = &backends[i * FORMATION_SCALE_MAX];
        size_t nb = formation_web_backends(s, apps[i].app, mine, FORMATION_SCALE_MAX, &generation);
        size_t k;
        json_t *name;

        json_array_foreach(apps[i].names, k, name) {
            const char *host = json_string_value(name);
            if (name_taken(routes, n, host)) {
                log_warn("routes: '%s' is claimed twice; '%s' does not get it", host, apps[i].app);
                continue;
            }
            routes[n++] = (struct router_route){
                .host = host, .app = apps[i].app, .generation = generation,
                .backends = nb ? mine : NULL, .n_backends = nb,
                .settings = &apps[i].settings, .blank = apps[i].blank && nb == 0,
            };
        }
    }
    /* Under the lock: the table holds every instance before a retire can free one. */
    r = router_set_routes(s->router, routes, n, err);
    pthread_mutex_unlock(&s->lock);
    free(routes);
    free(backends);
    return r;
}

static int set_certs(struct server *s, struct berth_error **err)
{
    struct certs_list list = { 0 };
    struct router_cert *certs = NULL;
    size_t n = 0;
    int r = certs_load_all(&s->model, s->opt.domain, &list, err);

    if (r < 0)
        return r;
    certs_list_router(&list, &certs, &n);
    r = router_set_certs(s->router, certs, n, err);
    free(certs);
    certs_list_release(&list);
    return r;
}

int server_publish_routes(struct server *s, struct berth_error **err)
{
    struct app_routes *apps;
    size_t napps = 0;
    int r;

    if (!s->router)
        return 0;
    pthread_mutex_lock(&s->publish_lock);
    apps = read_apps(s, &napps, err);
    if (!apps) {
        pthread_mutex_unlock(&s->publish_lock);
        return berth_error_wrap(err, "publishing routes");
    }
    r = set_routes(s, apps, napps, err);
    if (r == 0 && s->opt.https_addr)
        r = set_certs(s, err);
    pthread_mutex_unlock(&s->publish_lock);
    app_routes_release(apps, napps);
    return r;
}
