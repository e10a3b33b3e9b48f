/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/pipelines-preview: an app for every branch pushed to a
 * pipeline's staging app (see pipelines.h). The push's deploy hands a
 * branch here before any ref moves; the preview app `<app>-<label>` is
 * found or created (the tenant's app quota counts it), given the staging
 * config with the preview overrides, and the branch's commit is built and
 * started there through deploy_push_start(), from the staging push's own
 * objects. A preview made by a push that then fails is destroyed again, so
 * nothing is left half-created. Deleting the branch destroys the preview;
 * the scheduler's minute stops the ones no request reached for the
 * pipeline's idle time (the app's log, where the router writes a line per
 * request, is the clock).
 */
#include "control/pipelines.h"
#include "control/pipelines-internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/deploy.h"
#include "control/destroy.h"
#include "control/events.h"
#include "control/formation.h"
#include "control/quota.h"

struct pipelines_preview {
    struct deploy_ctx ctx;
    char *app;
    bool created;         /* by this push: destroyed again if the push fails */
};

bool pipelines_has_previews(struct server *s, const char *tenant, const char *app)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *entry = NULL;

    if (pipelines_find_app(s, tenant, app, &record, &entry, NULL) < 0 || !record)
        return false;
    return strcmp(json_get_str(entry, "stage"), "staging") == 0 && !json_get_str(entry, "preview_of") &&
           json_is_true(json_object_get(json_object_get(record, "previews"), "enabled"));
}

static const char *branch_of(const char *refname)
{
    return strncmp(refname, "refs/heads/", 11) == 0 ? refname + 11 : refname;
}

/*
 * `<app>-<label>`: the branch lowercased, every run of other characters
 * one '-', none at either end. -EINVAL with the reason when nothing is
 * left or the name would pass APP_NAME_MAX.
 */
static int preview_name(const char *app, const char *branch, char **ret, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf label = STRBUF_INIT;

    for (const char *p = branch; *p; p++) {
        unsigned char c = (unsigned char)tolower((unsigned char)*p);

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            strbuf_addch(&label, (char)c);
        else if (label.len && label.buf[label.len - 1] != '-')
            strbuf_addch(&label, '-');
    }
    if (label.len && label.buf[label.len - 1] == '-')
        strbuf_setlen(&label, label.len - 1);
    if (label.len == 0)
        return berth_error_plain(err, EINVAL, "branch '%.64s' has no letter or digit to make a DNS label of; "
                                 "no preview (use a branch name with letters or digits)", branch);
    if (strlen(app) + 1 + label.len > APP_NAME_MAX)
        return berth_error_plain(err, EINVAL, "the preview of branch '%.64s' would be named '%s-%s', longer than "
                                 "the %d characters an app name may have; use a shorter branch name", branch, app,
                                 label.buf, APP_NAME_MAX);
    *ret = xasprintf("%s-%s", app, label.buf);
    return 0;
}

static bool app_exists(struct server *s, const char *name)
{
    _cleanup_free_ char *dir = model_path(&s->model, "apps/%s", name);

    return access(dir, F_OK) == 0;
}

/* The staging app's config with its preview overrides over it: every push of a branch takes it anew. */
static int preview_config(struct server *s, const char *staging, const char *name, struct berth_error **err)
{
    _cleanup_json_ json_t *config = NULL, *record = NULL;
    int r;

    if ((r = model_app_config(&s->model, staging, &config, err)) < 0 ||
        (r = model_app_load(&s->model, staging, &record, err)) < 0)
        return r;
    if (json_is_object(json_object_get(record, "preview_config")))
        json_object_update(config, json_object_get(record, "preview_config"));
    return model_app_config_save(&s->model, name, config, err);
}

/* The preview's entry in the pipeline (the review stage, its staging app and branch), saved. */
static int add_entry(struct server *s, const char *tenant, json_t *pipeline, const char *staging, const char *branch,
                     const char *name, const json_t *app_record, struct berth_error **err)
{
    json_array_append_new(json_object_get(pipeline, "apps"),
                          json_pack("{s:s, s:s, s:s, s:s, s:s?}", "app", name, "stage", "review", "preview_of", staging,
                                    "branch", branch, "app_created_at", json_get_str(app_record, "created_at")));
    return pipelines_record_save(s, tenant, pipeline, err);
}

/* A new app for the preview: the staging app's build and network settings, a repository, the pipeline entry. */
static int preview_create(struct server *s, const char *tenant, json_t *pipeline, const char *staging,
                          const char *branch, const char *name, bool *ret_created, struct berth_error **err)
{
    static const char *const keys[] = { "buildpacks", "build", "net", "checks" };
    _cleanup_json_ json_t *from = NULL, *record = NULL;
    _cleanup_free_ char *repo = NULL;
    int r;

    if ((r = quota_app_create(s, tenant, name, NULL, err)) < 0)
        return berth_error_code(err) == EDQUOT ? berth_error_wrap(err, "no preview for branch '%s'", branch) : r;
    *ret_created = true;
    repo = model_path(&s->model, "apps/%s/repo.git", name);
    if ((r = receiver_repo_init(repo, err)) < 0 || (r = model_app_load(&s->model, staging, &from, err)) < 0)
        return r;
    /* app.json changes under the records lock, as the API's settings changes do. */
    pthread_mutex_lock(&s->records_lock);
    if ((r = model_app_load(&s->model, name, &record, err)) == 0) {
        for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
            if (json_object_get(from, keys[i]))
                json_object_set(record, keys[i], json_object_get(from, keys[i]));
        json_object_set_new(record, "preview", json_pack("{s:s, s:s}", "of", staging, "branch", branch));
        r = model_app_save(&s->model, name, record, err);
    }
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0 || (r = add_entry(s, tenant, pipeline, staging, branch, name, record, err)) < 0)
        return r;
    events_record(s, tenant, name, "create", "Created %s, the preview of branch %s of %s", name, branch, staging);
    return 0;
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/*
 * An app of the preview's name and no entry: a crash between the app's
 * record and the pipeline's left this branch's preview unlisted, and its
 * app.json says so ("preview"); it is taken back. Any other app keeps the
 * name, and the branch gets no preview.
 */
static int adopt(struct server *s, const char *tenant, json_t *pipeline, const char *staging, const char *branch,
                 const char *name, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    const json_t *preview;

    if (model_app_load(&s->model, name, &record, NULL) < 0 || !(preview = json_object_get(record, "preview")) ||
        !same(json_get_str(record, "tenant"), tenant) || !same(json_get_str(preview, "of"), staging) ||
        !same(json_get_str(preview, "branch"), branch))
        return berth_error_plain(err, EEXIST, "an app named '%s' exists and is no preview: no preview for branch "
                                 "'%s' (rename the branch)", name, branch);
    return add_entry(s, tenant, pipeline, staging, branch, name, record, err);
}

/* An idle-stopped preview serves again with the new release. */
static void preview_unstop(struct server *s, const char *name)
{
    _cleanup_json_ json_t *record = NULL;

    pthread_mutex_lock(&s->records_lock);
    if (model_app_load(&s->model, name, &record, NULL) == 0 && json_object_get(record, "stopped")) {
        json_object_del(record, "stopped");
        (void)model_app_save(&s->model, name, record, NULL);
    }
    pthread_mutex_unlock(&s->records_lock);
}

/*
 * Finds or makes the preview app of `branch`; the caller holds the
 * pipelines lock. *ret_created when the app was made now (also on a
 * failure after that: the caller destroys it, without the lock).
 */
static int preview_prepare(struct server *s, const char *app, const char *tenant, const char *branch,
                           const char *name, bool *ret_created, struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *entry;
    int r;

    *ret_created = false;
    if ((r = pipelines_find_app(s, tenant, app, &record, &entry, err)) < 0)
        return r;
    if (!record)
        return berth_error_plain(err, ENOENT, "'%s' left its pipeline", app);
    entry = pipelines_entry(record, name);
    if (entry && !pipelines_entry_live(s, tenant, entry)) {
        /* Its app was destroyed (and perhaps made again) by hand: the entry goes. */
        pipelines_entry_drop(record, entry);
        entry = NULL;
    }
    if (entry && !json_get_str(entry, "preview_of"))
        return berth_error_plain(err, EEXIST, "an app named '%s' is in the pipeline and is no preview: no preview "
                                 "for branch '%s' (rename the branch)", name, branch);
    if (entry && (!same(json_get_str(entry, "preview_of"), app) || !same(json_get_str(entry, "branch"), branch)))
        return berth_error_plain(err, EEXIST, "branch '%s' makes the preview name '%s', which branch '%s' of '%s' "
                                 "has already; rename one of the branches", branch, name,
                                 json_get_str(entry, "branch"), json_get_str(entry, "preview_of"));
    if (entry)
        return 0;
    if (app_exists(s, name))
        return adopt(s, tenant, record, app, branch, name, err);
    return preview_create(s, tenant, record, app, branch, name, ret_created, err);
}

static void preview_free(struct pipelines_preview *p)
{
    free(p->app);
    free(p);
}

/* A preview this push made and could not deploy goes again: nothing half-created. */
static void preview_undo(struct server *s, struct pipelines_preview *p)
{
    _cleanup_error_ struct berth_error *err = NULL;

    if (p->created && destroy_app(s, p->app, &err) < 0)
        log_warn("removing the failed preview '%s': %s", p->app, berth_error_msg(&err));
}

int pipelines_branch_pushed(struct server *s, const char *app, const char *tenant, struct receiver_push *push,
                            const struct receiver_update *u, struct pipelines_preview **ret, struct strbuf *reason)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *name = NULL;
    const char *branch = branch_of(u->refname);
    struct pipelines_preview *p;
    bool created = false;
    int r;

    *ret = NULL;
    pthread_mutex_lock(&pipelines_lock);
    r = preview_name(app, branch, &name, &err);
    if (r == 0)
        r = preview_prepare(s, app, tenant, branch, name, &created, &err);
    pthread_mutex_unlock(&pipelines_lock);
    if (r == 0)
        r = preview_config(s, app, name, &err);
    if (r < 0) {
        receiver_progress(push, " !     %s", berth_error_msg(&err));
        strbuf_addstr(reason, berth_error_msg(&err));
        if (created)
            preview_undo(s, &(struct pipelines_preview){ .app = name, .created = true });
        return r;
    }
    preview_unstop(s, name);
    p = xcalloc(1, sizeof(*p));
    p->app = TAKE_PTR(name);
    p->created = created;
    p->ctx.server = s;
    p->ctx.app = p->app;
    p->ctx.tenant = tenant;
    receiver_progress(push, "-----> %s preview %s of branch '%s'", created ? "Creating" : "Updating", p->app, branch);
    if ((r = deploy_push_start(&p->ctx, push, u, reason)) < 0) {
        preview_undo(s, p);
        preview_free(p);
        return r;
    }
    *ret = p;
    return 0;
}

void pipelines_preview_settled(struct pipelines_preview *p, struct receiver_push *push, bool ok)
{
    struct server *s = p->ctx.server;

    /* The branch's own outcome: in a push that is not atomic, main may fail while the branch lands. */
    if (!deploy_settle(&p->ctx, push, ok))
        preview_undo(s, p);
    preview_free(p);
}

void pipelines_branch_deleted(struct server *s, const char *app, const char *tenant, const char *refname,
                              struct receiver_push *push)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *record = NULL;
    _cleanup_free_ char *name = NULL;
    const char *branch = branch_of(refname);
    json_t *entry;
    size_t i;
    int r = 0;

    pthread_mutex_lock(&pipelines_lock);
    if (pipelines_find_app(s, tenant, app, &record, &entry, &err) == 0 && record) {
        json_array_foreach(json_object_get(record, "apps"), i, entry) {
            const char *of = json_get_str(entry, "preview_of"), *b = json_get_str(entry, "branch");

            if (of && b && strcmp(of, app) == 0 && strcmp(b, branch) == 0) {
                /* An app of that name made after the preview was destroyed by hand is not the preview. */
                if (pipelines_entry_live(s, tenant, entry))
                    name = xstrdup(json_get_str(entry, "app"));
                json_array_remove(json_object_get(record, "apps"), i);
                r = pipelines_record_save(s, tenant, record, &err);
                break;
            }
        }
    }
    pthread_mutex_unlock(&pipelines_lock);
    if (!name)
        return;
    if (r == 0)
        r = destroy_app(s, name, &err);
    if (r < 0) {
        log_warn("destroying preview '%s': %s", name, berth_error_msg(&err));
        receiver_progress(push, " !     The preview %s of branch '%s' could not be destroyed: %s", name, branch,
                          berth_error_msg(&err));
        return;
    }
    events_record(s, tenant, name, "destroy", "Destroyed %s: branch %s of %s was deleted", name, branch, app);
    receiver_progress(push, "-----> Destroyed preview %s: branch '%s' was deleted", name, branch);
}

/* ---------------------------------------------------------------- idle previews */

/* When the preview last did anything: its log's last line (a request, a deploy), else its creation. */
static time_t last_active(struct server *s, const char *name)
{
    _cleanup_free_ char *log = model_path(&s->model, "apps/%s/logs/app.log", name);
    _cleanup_free_ char *dir = model_path(&s->model, "apps/%s", name);
    struct stat st;

    if (stat(log, &st) == 0)
        return st.st_mtime;
    return stat(dir, &st) == 0 ? st.st_mtime : time(NULL);
}

static void stop_idle_of(struct server *s, const char *tenant, const json_t *record, time_t now)
{
    json_int_t idle = json_integer_value(json_object_get(json_object_get(record, "previews"), "idle"));
    json_t *entry;
    size_t i;

    if (idle <= 0)
        idle = PIPELINES_IDLE_DEFAULT_S;
    json_array_foreach(json_object_get(record, "apps"), i, entry) {
        _cleanup_json_ json_t *app = NULL;
        _cleanup_error_ struct berth_error *err = NULL;
        const char *name = json_get_str(entry, "app");

        if (!json_get_str(entry, "preview_of") || !pipelines_entry_live(s, tenant, entry) ||
            model_app_load(&s->model, name, &app, NULL) < 0 || json_is_true(json_object_get(app, "stopped")) ||
            now - last_active(s, name) < idle)
            continue;
        if (formation_stop(s, name, &err) < 0) {
            log_warn("stopping idle preview '%s': %s", name, berth_error_msg(&err));
            continue;
        }
        log_info("stopped preview '%s': idle for %lld s", name, (long long)idle);
        events_record(s, tenant, name, "stop", "Stopped %s: no request for %lld s (a push starts it again)", name,
                      (long long)idle);
    }
}

void pipelines_stop_idle(struct server *s)
{
    _cleanup_free_ char *dir = model_path(&s->model, "pipelines");
    _cleanup_closedir_ DIR *d = opendir(dir);
    time_t now = time(NULL);
    struct dirent *e;

    while (d && (e = readdir(d))) {
        _cleanup_json_ json_t *names = NULL;
        json_t *name;
        size_t i;

        if (e->d_name[0] == '.' || pipelines_list(s, e->d_name, &names, NULL) < 0)
            continue;
        json_array_foreach(names, i, name) {
            _cleanup_json_ json_t *record = NULL;

            if (pipelines_record_load(s, e->d_name, json_string_value(name), &record, NULL) == 0)
                stop_idle_of(s, e->d_name, record, now);
        }
    }
}
