/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/pipelines: the pipeline records and their changes (see
 * pipelines.h). A record names its apps with the created_at of each app's
 * record when it was added, so an entry whose app was destroyed (and
 * perhaps created again under the same name) is recognised as stale and
 * ignored, and apps:destroy needs to know nothing of pipelines.
 */
#include "control/pipelines.h"
#include "control/pipelines-internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/destroy.h"
#include "control/events.h"
#include "control/tenants.h"

pthread_mutex_t pipelines_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const stages[] = { "development", "review", "staging", "production" };

int pipelines_stage_rank(const char *stage)
{
    for (size_t i = 0; stage && i < sizeof(stages) / sizeof(*stages); i++)
        if (strcmp(stage, stages[i]) == 0)
            return (int)i;
    return -1;
}

bool pipelines_stage_valid(const char *stage)
{
    return pipelines_stage_rank(stage) >= 0;
}

/* ---------------------------------------------------------------- records */

/*
 * A record older than its tenant was left by a tenant of the same name
 * since destroyed (destroy.c knows nothing of pipelines): it is not the
 * new tenant's, and counts as missing.
 */
static bool older_than_tenant(struct server *s, const char *tenant, const json_t *record)
{
    _cleanup_json_ json_t *t = NULL;
    const char *born, *made = json_get_str(record, "created_at");

    if (tenants_load(&s->model, tenant, &t, NULL) < 0)
        return true;
    born = json_get_str(t, "created_at");
    return born && made && strcmp(made, born) < 0;
}

int pipelines_record_load(struct server *s, const char *tenant, const char *name, json_t **ret,
                          struct berth_error **err)
{
    _cleanup_free_ char *path = NULL;
    int r;

    if (!model_app_name_valid(name))
        return berth_error_plain(err, ENOENT, "pipeline '%.64s' does not exist", name);
    path = model_path(&s->model, "pipelines/%s/%s.json", tenant, name);
    r = json_store_load(path, ret, NULL);
    if (r == 0 && older_than_tenant(s, tenant, *ret)) {
        json_decref(TAKE_PTR(*ret));
        r = -ENOENT;
    }
    if (r == -ENOENT)
        return berth_error_plain(err, ENOENT, "pipeline '%s' does not exist", name);
    if (r < 0)
        return berth_error_make(err, -r, "reading pipeline '%s'", name);
    return 0;
}

int pipelines_record_save(struct server *s, const char *tenant, const json_t *record, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(&s->model, "pipelines/%s", tenant);
    _cleanup_free_ char *path = model_path(&s->model, "pipelines/%s/%s.json", tenant, json_get_str(record, "name"));
    int r;

    if ((r = mkdir_p(dir, 0700, err)) < 0)
        return r;
    return json_store_save(path, record, 0600, err);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pipelines_list(struct server *s, const char *tenant, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(&s->model, "pipelines/%s", tenant);
    _cleanup_closedir_ DIR *d = opendir(dir);
    _cleanup_strv_ char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;

    if (!d && errno != ENOENT)
        return berth_error_make(err, errno, "opendir '%s'", dir);
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char *name;

        if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        name = xstrndup(e->d_name, len - 5);
        if (!model_app_name_valid(name)) {
            free(name);
            continue;
        }
        if (n + 2 > cap)
            v = xrealloc(v, (cap = cap * 2 + 8) * sizeof(*v));
        v[n++] = name;
        v[n] = NULL;
    }
    if (n)
        qsort(v, n, sizeof(*v), by_name);
    *ret = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(*ret, json_string(v[i]));
    return 0;
}

bool pipelines_entry_live(struct server *s, const char *tenant, const json_t *entry)
{
    _cleanup_json_ json_t *record = NULL;
    const char *owner, *created, *want = json_get_str(entry, "app_created_at");

    if (model_app_load(&s->model, json_get_str(entry, "app"), &record, NULL) < 0)
        return false;
    owner = json_get_str(record, "tenant");
    created = json_get_str(record, "created_at");
    return owner && strcmp(owner, tenant) == 0 && (!want || (created && strcmp(created, want) == 0));
}

/* Drops the entries whose app is gone; true if any was. */
static bool prune(struct server *s, const char *tenant, json_t *record)
{
    json_t *apps = json_object_get(record, "apps");
    bool changed = false;

    for (size_t i = json_array_size(apps); i-- > 0;) {
        if (!pipelines_entry_live(s, tenant, json_array_get(apps, i))) {
            json_array_remove(apps, i);
            changed = true;
        }
    }
    return changed;
}

int pipelines_find_app(struct server *s, const char *tenant, const char *app, json_t **ret, json_t **ret_entry,
                       struct berth_error **err)
{
    _cleanup_json_ json_t *names = NULL;
    json_t *name;
    size_t i;
    int r;

    *ret = NULL;
    *ret_entry = NULL;
    if ((r = pipelines_list(s, tenant, &names, err)) < 0)
        return r;
    json_array_foreach(names, i, name) {
        _cleanup_json_ json_t *record = NULL;
        json_t *entry;
        size_t j;

        if (pipelines_record_load(s, tenant, json_string_value(name), &record, NULL) < 0)
            continue;
        json_array_foreach(json_object_get(record, "apps"), j, entry) {
            if (strcmp(json_get_str(entry, "app") ? json_get_str(entry, "app") : "", app) == 0 &&
                pipelines_entry_live(s, tenant, entry)) {
                *ret_entry = entry;
                *ret = TAKE_PTR(record);
                return 0;
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- changes */

int pipelines_create(struct server *s, const char *tenant, const char *name, struct berth_error **err)
{
    _cleanup_free_ char *created = NULL;
    _cleanup_json_ json_t *record = NULL, *old = NULL;
    char now[MODEL_TIME_LEN + 1];
    int r;

    if (!model_app_name_valid(name))
        return berth_error_plain(err, EINVAL, "invalid pipeline name '%.64s': use 1-%d lowercase letters, digits "
                                 "and dashes, starting with a letter", name, APP_NAME_MAX);
    model_time_format(time(NULL), now);
    record = json_pack("{s:s, s:s, s:s, s:{s:b, s:i}, s:[]}", "name", name, "tenant", tenant, "created_at", now,
                       "previews", "enabled", 0, "idle", PIPELINES_IDLE_DEFAULT_S, "apps");
    pthread_mutex_lock(&pipelines_lock);
    if (pipelines_record_load(s, tenant, name, &old, NULL) == 0)
        r = berth_error_plain(err, EEXIST, "pipeline '%s' already exists", name);
    else
        r = pipelines_record_save(s, tenant, record, err);
    pthread_mutex_unlock(&pipelines_lock);
    if (r == 0)
        events_record(s, tenant, NULL, "pipeline", "Created pipeline %s", name);
    return r;
}

static int add_locked(struct server *s, const char *tenant, const char *name, const char *app, const char *stage,
                      struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *other = NULL, *app_record = NULL;
    json_t *entry = NULL;
    const char *owner;
    int r;

    if ((r = pipelines_record_load(s, tenant, name, &record, err)) < 0)
        return r;
    /* Another tenant's app answers as a missing one, as everywhere in the API. */
    if (model_app_load(&s->model, app, &app_record, NULL) < 0 || !(owner = json_get_str(app_record, "tenant")) ||
        strcmp(owner, tenant) != 0)
        return berth_error_plain(err, ENOENT, "app '%.64s' does not exist", app);
    if ((r = pipelines_find_app(s, tenant, app, &other, &entry, err)) < 0)
        return r;
    if (other)
        return berth_error_plain(err, EEXIST, "app '%s' is in pipeline '%s' already (%s); an app belongs to one "
                                 "pipeline at most (berth pipelines:remove %s %s)", app, json_get_str(other, "name"),
                                 json_get_str(entry, "stage"), json_get_str(other, "name"), app);
    prune(s, tenant, record);
    json_array_append_new(json_object_get(record, "apps"),
                          json_pack("{s:s, s:s, s:s}", "app", app, "stage", stage, "app_created_at",
                                    json_get_str(app_record, "created_at") ? json_get_str(app_record, "created_at")
                                                                           : ""));
    return pipelines_record_save(s, tenant, record, err);
}

int pipelines_add(struct server *s, const char *tenant, const char *name, const char *app, const char *stage,
                  struct berth_error **err)
{
    int r;

    if (!pipelines_stage_valid(stage))
        return berth_error_plain(err, EINVAL, "unknown stage '%.32s': development, review, staging or production",
                                 stage);
    pthread_mutex_lock(&pipelines_lock);
    r = add_locked(s, tenant, name, app, stage, err);
    pthread_mutex_unlock(&pipelines_lock);
    if (r == 0)
        events_record(s, tenant, app, "pipeline", "Added %s to pipeline %s (%s)", app, name, stage);
    return r;
}

json_t *pipelines_entry(const json_t *record, const char *app)
{
    json_t *entry;
    size_t i;

    json_array_foreach(json_object_get(record, "apps"), i, entry)
        if (json_get_str(entry, "app") && strcmp(json_get_str(entry, "app"), app) == 0)
            return entry;
    return NULL;
}

void pipelines_entry_drop(json_t *record, const json_t *entry)
{
    json_t *apps = json_object_get(record, "apps");

    for (size_t i = 0; i < json_array_size(apps); i++)
        if (json_array_get(apps, i) == entry) {
            json_array_remove(apps, i);
            return;
        }
}

/* The index of app's live entry in the record, or -1. */
static long entry_index(struct server *s, const char *tenant, const json_t *record, const char *app)
{
    json_t *entry;
    size_t i;

    json_array_foreach(json_object_get(record, "apps"), i, entry)
        if (json_get_str(entry, "app") && strcmp(json_get_str(entry, "app"), app) == 0 &&
            pipelines_entry_live(s, tenant, entry))
            return (long)i;
    return -1;
}

int pipelines_remove(struct server *s, const char *tenant, const char *name, const char *app,
                     struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    long i;
    int r;

    pthread_mutex_lock(&pipelines_lock);
    if ((r = pipelines_record_load(s, tenant, name, &record, err)) == 0) {
        if ((i = entry_index(s, tenant, record, app)) < 0)
            r = berth_error_plain(err, ENOENT, "app '%.64s' is not in pipeline '%s'", app, name);
        else {
            json_array_remove(json_object_get(record, "apps"), (size_t)i);
            r = pipelines_record_save(s, tenant, record, err);
        }
    }
    pthread_mutex_unlock(&pipelines_lock);
    if (r == 0)
        events_record(s, tenant, app, "pipeline", "Removed %s from pipeline %s", app, name);
    return r;
}

int pipelines_destroy(struct server *s, const char *tenant, const char *name, json_t **ret_destroyed,
                      struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    _cleanup_free_ char *path = model_path(&s->model, "pipelines/%s/%s.json", tenant, name);
    json_t *destroyed = json_array(), *entry;
    size_t i;
    int r;

    pthread_mutex_lock(&pipelines_lock);
    if ((r = pipelines_record_load(s, tenant, name, &record, err)) == 0 && unlink(path) < 0)
        r = berth_error_make(err, errno, "unlink '%s'", path);
    if (r == 0)
        r = fsync_parent_dir(path, err);
    pthread_mutex_unlock(&pipelines_lock);
    if (r < 0) {
        json_decref(destroyed);
        return r;
    }
    /* The record is gone first: a push that comes now makes no new preview. */
    json_array_foreach(json_object_get(record, "apps"), i, entry) {
        _cleanup_error_ struct berth_error *derr = NULL;
        const char *app = json_get_str(entry, "app");

        if (!json_get_str(entry, "preview_of") || !pipelines_entry_live(s, tenant, entry))
            continue;
        if (destroy_app(s, app, &derr) < 0)
            log_warn("destroying preview '%s' of pipeline '%s': %s", app, name, berth_error_msg(&derr));
        else
            json_array_append_new(destroyed, json_string(app));
    }
    events_record(s, tenant, NULL, "pipeline", "Destroyed pipeline %s", name);
    *ret_destroyed = destroyed;
    return 0;
}

int pipelines_set_previews(struct server *s, const char *tenant, const char *name, bool on, unsigned idle_s,
                           struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *previews;
    int r;

    if (idle_s > PIPELINES_IDLE_MAX_S)
        return berth_error_plain(err, EINVAL, "an idle time is at most 30 days");
    pthread_mutex_lock(&pipelines_lock);
    if ((r = pipelines_record_load(s, tenant, name, &record, err)) == 0) {
        previews = json_object_get(record, "previews");
        if (!json_is_object(previews))
            json_object_set_new(record, "previews", previews = json_pack("{s:i}", "idle", PIPELINES_IDLE_DEFAULT_S));
        json_object_set_new(previews, "enabled", json_boolean(on));
        if (idle_s)
            json_object_set_new(previews, "idle", json_integer(idle_s));
        r = pipelines_record_save(s, tenant, record, err);
    }
    pthread_mutex_unlock(&pipelines_lock);
    if (r == 0)
        events_record(s, tenant, NULL, "pipeline", "Previews %s for pipeline %s", on ? "on" : "off", name);
    return r;
}

/* ---------------------------------------------------------------- reading */

static int by_stage(const void *a, const void *b)
{
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    int d = pipelines_stage_rank(json_get_str(x, "stage")) - pipelines_stage_rank(json_get_str(y, "stage"));

    return d ? d : strcmp(json_get_str(x, "app"), json_get_str(y, "app"));
}

/* What `pipelines NAME` shows of one app: its stage and what it runs. */
static json_t *app_view(struct server *s, const json_t *entry)
{
    const char *app = json_get_str(entry, "app");
    _cleanup_json_ json_t *release = NULL;
    unsigned version = 0;
    json_t *out = json_pack("{s:s, s:s}", "app", app, "stage", json_get_str(entry, "stage"));
    const char *keys[] = { "preview_of", "branch" };

    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
        if (json_get_str(entry, keys[i]))
            json_object_set(out, keys[i], json_object_get(entry, keys[i]));
    (void)model_release_current(&s->model, app, &version, &release, NULL);
    json_object_set_new(out, "release", json_integer(version));
    json_object_set_new(out, "commit", release && json_get_str(release, "commit")
                                           ? json_string(json_get_str(release, "commit")) : json_null());
    json_object_set_new(out, "description", release && json_get_str(release, "description")
                                                ? json_string(json_get_str(release, "description")) : json_null());
    json_object_set_new(out, "web_url", json_sprintf("http://%s.%s:%u/", app, s->opt.domain, s->http_port));
    return out;
}

int pipelines_show(struct server *s, const char *tenant, const char *name, json_t **ret,
                   struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    _cleanup_free_ json_t **v = NULL;
    json_t *apps, *entry, *previews;
    size_t i, n = 0;
    int r;

    if ((r = pipelines_record_load(s, tenant, name, &record, err)) < 0)
        return r;
    prune(s, tenant, record);
    apps = json_object_get(record, "apps");
    v = xcalloc(json_array_size(apps) + 1, sizeof(*v));
    json_array_foreach(apps, i, entry)
        v[n++] = entry;
    qsort(v, n, sizeof(*v), by_stage);
    previews = json_object_get(record, "previews");
    *ret = json_pack("{s:s, s:s?, s:{s:b, s:I}, s:[]}", "name", name, "created_at",
                     json_get_str(record, "created_at"), "previews", "enabled",
                     json_is_true(json_object_get(previews, "enabled")), "idle",
                     json_integer_value(json_object_get(previews, "idle")), "apps");
    for (i = 0; i < n; i++)
        json_array_append_new(json_object_get(*ret, "apps"), app_view(s, v[i]));
    return 0;
}

int pipelines_of_app(struct server *s, const char *tenant, const char *app, char **ret_pipeline,
                     char **ret_stage, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *entry;
    int r = pipelines_find_app(s, tenant, app, &record, &entry, err);

    *ret_pipeline = NULL;
    *ret_stage = NULL;
    if (r < 0 || !record)
        return r;
    *ret_pipeline = xstrdup(json_get_str(record, "name"));
    *ret_stage = xstrdup(json_get_str(entry, "stage"));
    return 0;
}

char *pipelines_stage_line(struct server *s, const char *tenant, const char *app)
{
    _cleanup_free_ char *pipeline = NULL, *stage = NULL;

    if (pipelines_of_app(s, tenant, app, &pipeline, &stage, NULL) < 0 || !pipeline)
        return NULL;
    return xasprintf("%s is the %s stage of pipeline '%s'", app, stage, pipeline);
}
