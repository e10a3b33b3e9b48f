/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/pipelines-promote: moving a build through a pipeline (see
 * pipelines.h). A promotion checks every target first (in the pipeline,
 * the tenant's, not the source) and only then makes a release on each,
 * one after the other, through deploy_promote(): the same slug, so the
 * same content hash, no build. The diff walks the commits of the two
 * stages' releases with libgit2 in the repository that holds both (the
 * source's, where a promoted commit was pushed); config:copy is a
 * config change of the target made of the source's values.
 */
#include "control/pipelines.h"
#include "control/pipelines-internal.h"

#include <errno.h>
#include <git2.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/deploy.h"

/* Commits a diff lists at most. */
#define DIFF_MAX_COMMITS 100

/* The apps of the first stage after `rank` that has any (previews are never a target by default). */
static json_t *next_stage_apps(const json_t *record, int rank)
{
    json_t *out = json_array(), *entry;
    int best = -1;
    size_t i;

    json_array_foreach(json_object_get(record, "apps"), i, entry) {
        int r = pipelines_stage_rank(json_get_str(entry, "stage"));

        if (r > rank && !json_get_str(entry, "preview_of") && (best < 0 || r < best))
            best = r;
    }
    json_array_foreach(json_object_get(record, "apps"), i, entry)
        if (best >= 0 && pipelines_stage_rank(json_get_str(entry, "stage")) == best &&
            !json_get_str(entry, "preview_of"))
            json_array_append_new(out, json_string(json_get_str(entry, "app")));
    return out;
}

int pipelines_next_stage(struct server *s, const char *tenant, const char *app, json_t **ret,
                         struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *entry = NULL;
    int r;

    if ((r = pipelines_find_app(s, tenant, app, &record, &entry, err)) < 0)
        return r;
    *ret = record ? next_stage_apps(record, pipelines_stage_rank(json_get_str(entry, "stage"))) : json_array();
    return 0;
}

/* Every target in `to` is an app of the tenant, in the pipeline, not the source itself. */
static int check_targets(struct server *s, const char *tenant, const json_t *record, const char *app,
                         const json_t *to, struct berth_error **err)
{
    json_t *v;
    size_t i;

    json_array_foreach(to, i, v) {
        const char *name = json_string_value(v);

        if (!name)
            return berth_error_plain(err, EINVAL, "a promotion target is an app name");
        if (!server_app_owned_by(s, name, tenant))
            return berth_error_plain(err, ENOENT, "app '%.64s' does not exist", name);
        if (strcmp(name, app) == 0)
            return berth_error_plain(err, EINVAL, "'%s' cannot be promoted to itself", app);
        if (!pipelines_entry(record, name))
            return berth_error_plain(err, EINVAL, "app '%s' is not in pipeline '%s' (berth pipelines:add %s %s "
                                     "--stage STAGE)", name, json_get_str(record, "name"),
                                     json_get_str(record, "name"), name);
    }
    return 0;
}

/* The pipeline of `app` (*ret), its stage's rank, and its current release (*ret_release). */
static int promotion_source(struct server *s, const char *tenant, const char *app, json_t **ret, int *ret_rank,
                            json_t **ret_release, unsigned *ret_version, struct berth_error **err)
{
    json_t *entry = NULL;
    int r;

    if ((r = pipelines_find_app(s, tenant, app, ret, &entry, err)) < 0)
        return r;
    if (!*ret)
        return berth_error_plain(err, EINVAL, "app '%s' is in no pipeline (berth pipelines:add PIPELINE %s "
                                 "--stage STAGE)", app, app);
    *ret_rank = pipelines_stage_rank(json_get_str(entry, "stage"));
    if ((r = model_release_current(&s->model, app, ret_version, ret_release, err)) < 0)
        return r;
    if (!*ret_release)
        return berth_error_plain(err, EINVAL, "'%s' has no release to promote: push to it first", app);
    return 0;
}

int pipelines_promote(struct server *s, const char *tenant, const char *app, const json_t *to, json_t **ret,
                      struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *release = NULL, *targets = NULL, *source = NULL, *done = NULL;
    _cleanup_free_ char *desc = NULL;
    const char *stage, *commit;
    unsigned version = 0;
    json_t *v;
    size_t i;
    int rank = -1, r;

    if ((r = promotion_source(s, tenant, app, &record, &rank, &release, &version, err)) < 0)
        return r;
    stage = json_get_str(pipelines_entry(record, app), "stage");
    targets = json_array_size(to) ? json_deep_copy(to) : next_stage_apps(record, rank);
    if (json_array_size(targets) == 0)
        return berth_error_plain(err, EINVAL, "no stage after %s in pipeline '%s' has an app to promote to",
                                 stage, json_get_str(record, "name"));
    if ((r = check_targets(s, tenant, record, app, targets, err)) < 0)
        return r;
    commit = json_get_str(release, "commit");
    desc = xasprintf("Promote %s v%u (%.7s)", stage, version, commit ? commit : "-------");
    source = json_deep_copy(release);
    json_object_set_new(source, "promoted_from", json_pack("{s:s, s:s, s:i}", "app", app, "stage", stage,
                                                            "version", (int)version));
    done = json_array();
    json_array_foreach(targets, i, v) {
        const char *target = json_string_value(v);
        unsigned made = 0;

        if ((r = deploy_promote(s, target, tenant, source, desc, &made, err)) < 0)
            return berth_error_wrap(err, "promoting to '%s'%s", target, i ? " (the apps before it are promoted)" : "");
        json_array_append_new(done, json_pack("{s:s, s:s, s:i}", "app", target, "stage",
                                              json_get_str(pipelines_entry(record, target), "stage"), "release", (int)made));
    }
    *ret = json_pack("{s:s, s:s, s:i, s:s?, s:O}", "app", app, "stage", stage, "release", (int)version, "commit",
                     commit, "promoted", done);
    return 0;
}

/* ---------------------------------------------------------------- diff */

static int git_fail(struct berth_error **err, int code, const char *what)
{
    const git_error *e = git_error_last();

    return berth_error_plain(err, code, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

/* How many commits reach `from` and not `hide`; the first DIFF_MAX_COMMITS into `list` when non-NULL. */
static int walk(git_repository *repo, const git_oid *from, const git_oid *hide, json_t *list, unsigned *ret_n,
                struct berth_error **err)
{
    git_revwalk *w = NULL;
    git_oid oid;
    unsigned n = 0;
    int r;

    if (git_revwalk_new(&w, repo) < 0 || git_revwalk_push(w, from) < 0 || git_revwalk_hide(w, hide) < 0) {
        git_revwalk_free(w);
        return git_fail(err, EIO, "walking the commits");
    }
    git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
    while ((r = git_revwalk_next(&oid, w)) == 0) {
        git_commit *c = NULL;
        char hex[GIT_OID_HEXSZ + 1];

        if (list && n < DIFF_MAX_COMMITS && git_commit_lookup(&c, repo, &oid) == 0) {
            const git_signature *a = git_commit_author(c);

            git_oid_tostr(hex, sizeof(hex), &oid);
            json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "id", hex, "summary",
                                                  git_commit_summary(c) ? git_commit_summary(c) : "", "author",
                                                  a && a->name ? a->name : ""));
            git_commit_free(c);
        }
        n++;
    }
    git_revwalk_free(w);
    *ret_n = n;
    return r == GIT_ITEROVER ? 0 : git_fail(err, EIO, "walking the commits");
}

/* Fills doc's "commits", "ahead" and "behind" from the first repository holding both commits. */
static int diff_commits(struct server *s, const char *const apps[2], const char *a, const char *b, json_t *doc,
                        struct berth_error **err)
{
    git_oid oa, ob;

    if (git_oid_fromstr(&oa, a) < 0 || git_oid_fromstr(&ob, b) < 0)
        return berth_error_plain(err, EINVAL, "a release names a malformed commit");
    for (int i = 0; i < 2; i++) {
        _cleanup_free_ char *path = model_path(&s->model, "apps/%s/repo.git", apps[i]);
        git_repository *repo = NULL;
        git_commit *ca = NULL, *cb = NULL;
        bool both;
        unsigned ahead = 0, behind = 0;
        json_t *list = json_array();
        int r = 0;

        if (git_repository_open_bare(&repo, path) < 0) {
            json_decref(list);
            continue;
        }
        both = git_commit_lookup(&ca, repo, &oa) == 0 && git_commit_lookup(&cb, repo, &ob) == 0;
        git_commit_free(ca);
        git_commit_free(cb);
        if (both && (r = walk(repo, &oa, &ob, list, &ahead, err)) == 0)
            r = walk(repo, &ob, &oa, NULL, &behind, err);
        git_repository_free(repo);
        if (both && r == 0) {
            json_object_set_new(doc, "commits", list);
            json_object_set_new(doc, "ahead", json_integer(ahead));
            json_object_set_new(doc, "behind", json_integer(behind));
            json_object_set_new(doc, "related", json_true());
            return 0;
        }
        json_decref(list);
        if (r < 0)
            return r;
    }
    json_object_set_new(doc, "related", json_false());
    return 0;
}

static json_t *side(struct server *s, const json_t *record, const char *app)
{
    _cleanup_json_ json_t *release = NULL;
    unsigned version = 0;

    (void)model_release_current(&s->model, app, &version, &release, NULL);
    return json_pack("{s:s, s:s, s:i, s:s?}", "app", app, "stage", json_get_str(pipelines_entry(record, app), "stage"),
                     "release", (int)version, "commit", release ? json_get_str(release, "commit") : NULL);
}

int pipelines_diff(struct server *s, const char *tenant, const char *app, const char *other, json_t **ret,
                   struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *release = NULL, *targets = NULL, *doc = NULL;
    const char *target, *a, *b;
    unsigned version;
    int rank = -1, r;

    if ((r = promotion_source(s, tenant, app, &record, &rank, &release, &version, err)) < 0)
        return r;
    targets = other ? json_pack("[s]", other) : next_stage_apps(record, rank);
    if (json_array_size(targets) == 0)
        return berth_error_plain(err, EINVAL, "no stage after '%s' in pipeline '%s' has an app to compare with", app,
                                 json_get_str(record, "name"));
    if ((r = check_targets(s, tenant, record, app, targets, err)) < 0)
        return r;
    target = json_string_value(json_array_get(targets, 0));
    doc = json_pack("{s:s, s:o, s:o}", "pipeline", json_get_str(record, "name"), "from", side(s, record, app), "to",
                    side(s, record, target));
    a = json_get_str(json_object_get(doc, "from"), "commit");
    b = json_get_str(json_object_get(doc, "to"), "commit");
    if (!a || !b) {
        /* Nothing released downstream yet: everything upstream is ahead, and nothing to walk against. */
        json_object_set_new(doc, "related", json_boolean(a && !b));
        json_object_set_new(doc, "commits", json_array());
    } else if (strcmp(a, b) == 0) {
        json_object_set_new(doc, "related", json_true());
        json_object_set_new(doc, "commits", json_array());
        json_object_set_new(doc, "ahead", json_integer(0));
        json_object_set_new(doc, "behind", json_integer(0));
    } else {
        const char *apps[2] = { app, target };

        if ((r = diff_commits(s, apps, a, b, doc, err)) < 0)
            return r;
    }
    *ret = TAKE_PTR(doc);
    return 0;
}

/* ---------------------------------------------------------------- config:copy */

int pipelines_config_copy(struct server *s, const char *tenant, const char *from, const char *to,
                          const json_t *keys, unsigned *ret_version, json_t **ret_copied, struct berth_error **err)
{
    _cleanup_json_ json_t *src = NULL, *changes = json_object(), *copied = json_array();
    _cleanup_strbuf_ struct strbuf names = STRBUF_INIT;
    _cleanup_free_ char *desc = NULL;
    const char *key;
    json_t *v;
    size_t i;
    int r;

    if (!server_app_owned_by(s, from, tenant))
        return berth_error_plain(err, ENOENT, "app '%.64s' does not exist", from);
    if (strcmp(from, to) == 0)
        return berth_error_plain(err, EINVAL, "copying '%s' config to itself changes nothing", from);
    if ((r = model_app_config(&s->model, from, &src, err)) < 0)
        return r;
    if (json_array_size(keys) == 0) {
        json_object_foreach(src, key, v)
            json_array_append_new(copied, json_string(key));
    } else {
        json_array_foreach(keys, i, v) {
            if (!json_is_string(v))
                return berth_error_plain(err, EINVAL, "expected config var names as strings");
            if (!json_object_get(src, json_string_value(v)))
                return berth_error_plain(err, EINVAL, "'%.80s' is not set on '%s'; nothing copied",
                                         json_string_value(v), from);
            json_array_append(copied, v);
        }
    }
    if (json_array_size(copied) == 0)
        return berth_error_plain(err, EINVAL, "'%s' has no config vars to copy", from);
    json_array_foreach(copied, i, v) {
        json_object_set(changes, json_string_value(v), json_object_get(src, json_string_value(v)));
        strbuf_addf(&names, "%s%s", i ? ", " : "", json_string_value(v));
    }
    desc = xasprintf("Set %s config vars (copied from %s)", names.buf, from);
    if ((r = deploy_config(s, to, tenant, changes, desc, true, ret_version, NULL, err)) < 0)
        return r;
    *ret_copied = TAKE_PTR(copied);
    return 0;
}
