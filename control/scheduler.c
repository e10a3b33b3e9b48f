/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/scheduler: scheduled jobs (see scheduler.h). The ticking thread
 * sleeps on a condition variable until the next minute boundary of the
 * wall clock (so scheduler_stop() wakes it at once), then reads each app's
 * current release record and starts a run thread for every job due in
 * that minute. The run threads block in instance_run_once(); each run's
 * `cancel` flag makes it stop its container when berth shuts down or its
 * app is destroyed.
 */
#include "control/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/applog.h"
#include "control/cron.h"
#include "control/instance.h"
#include "control/pipelines.h"

/* Longer than this without a tick (a suspended host, a clock jump): the minutes in between are not run. */
#define CATCH_UP_MAX_S (5 * 60)

/* A job with a run in flight, keyed by app and job id. */
struct running {
    char *app;
    char *id;
    char *tenant;                  /* the app's, for the per-tenant cap */
    atomic_bool *cancel;           /* the run's own: set to stop its container (scheduler_stop_app()) */
    struct running *next;
};

struct scheduler {
    struct server *server;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;          /* guards everything below, and the cron-runs.json files */
    pthread_cond_t cond;           /* stopping set, or a run ended */
    bool stopping;
    unsigned n_running;
    struct running *running;
};

/* One run, handed to its thread (which frees it). */
struct run {
    struct scheduler *sc;
    char *app, *tenant, *id, *command;
    unsigned number;               /* its dyno: cron.<number>, the job's place in app.json from 1 */
    char *source;                  /* "heroku[cron.<number>]", for its platform lines */
    json_t *release;               /* a reference to the current release's record */
    bool network;
    atomic_bool cancel;            /* set by scheduler_stop() and scheduler_stop_app() */
};

/* ---------------------------------------------------------------- last runs */

/* The app's cron-runs.json, {} when there is none. The caller holds sc->lock. */
static json_t *runs_load(struct server *s, const char *app)
{
    _cleanup_free_ char *path = model_path(&s->model, "apps/%s/cron-runs.json", app);
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *runs = NULL;

    if (access(path, F_OK) == 0 && json_store_load(path, &runs, &err) < 0)
        log_warn("reading '%s': %s", path, berth_error_msg(&err));
    if (!json_is_object(runs)) {
        json_decref(runs);
        runs = json_object();
    }
    return runs;
}

/* Records the run's outcome; entries of jobs the release no longer has go. The caller holds sc->lock. */
static void runs_record(struct run *run, json_t *last)
{
    struct server *s = run->sc->server;
    _cleanup_free_ char *path = model_path(&s->model, "apps/%s/cron-runs.json", run->app);
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *runs = runs_load(s, run->app), *kept = json_object();
    const json_t *jobs = json_object_get(run->release, "cron"), *job;
    size_t i;

    json_object_set(runs, run->id, last);
    json_array_foreach(jobs, i, job) {
        json_t *v = json_object_get(runs, json_get_str(job, "id"));

        if (v)
            json_object_set(kept, json_get_str(job, "id"), v);
    }
    if (json_store_save(path, kept, 0600, &err) < 0)
        log_warn("recording the cron run of '%s': %s", run->app, berth_error_msg(&err));
}

/* ---------------------------------------------------------------- a run */

static bool is_running(const struct scheduler *sc, const char *app, const char *id)
{
    for (const struct running *r = sc->running; r; r = r->next)
        if (strcmp(r->app, app) == 0 && strcmp(r->id, id) == 0)
            return true;
    return false;
}

/* How many runs of the tenant's apps are in flight. The caller holds sc->lock. */
static unsigned tenant_running(const struct scheduler *sc, const char *tenant)
{
    unsigned n = 0;

    for (const struct running *r = sc->running; r; r = r->next)
        n += strcmp(r->tenant, tenant) == 0;
    return n;
}

/* The caller holds sc->lock. */
static void running_remove(struct scheduler *sc, const char *app, const char *id)
{
    for (struct running **p = &sc->running; *p; p = &(*p)->next) {
        struct running *r = *p;

        if (strcmp(r->app, app) == 0 && strcmp(r->id, id) == 0) {
            *p = r->next;
            free(r->app);
            free(r->id);
            free(r->tenant);
            free(r);
            return;
        }
    }
}

static void run_free(struct run *run)
{
    free(run->app);
    free(run->tenant);
    free(run->id);
    free(run->command);
    free(run->source);
    json_decref(run->release);
    free(run);
}

/* Starts the container and waits for it; the outcome as a last-run record. */
static json_t *run_container(struct run *run)
{
    struct server *s = run->sc->server;
    const json_t *release = run->release;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *slug_dir = server_slug_dir(s, run->tenant, json_get_str(release, "slug"));
    char started[MODEL_TIME_LEN + 1], finished[MODEL_TIME_LEN + 1];
    int status = 0, code, r;
    const struct instance_spec spec = {
        .app = run->app, .tenant = run->tenant,
        .release = (unsigned)json_integer_value(json_object_get(release, "version")),
        .process_type = "cron", .number = run->number, .command = run->command, .slug_dir = slug_dir,
        .config = json_object_get(release, "config"), .defaults = json_object_get(release, "buildpack_config"),
        .network = run->network, .cancel = &run->cancel,
    };

    model_time_format(time(NULL), started);
    applog_emit(s->applog, run->app, run->source, "Cron job %s is due", run->id);
    r = instance_run_once(s, &spec, SCHEDULER_RUN_TIMEOUT_MS, NULL, NULL, &status, &err);
    model_time_format(time(NULL), finished);
    if (r < 0) {
        applog_emit(s->applog, run->app, run->source, "Cron job %s did not complete: %s", run->id,
                    berth_error_msg(&err));
        return json_pack("{s:s, s:s, s:n, s:s}", "started_at", started, "finished_at", finished, "exit_status",
                         "error", berth_error_msg(&err));
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    applog_emit(s->applog, run->app, run->source, "Cron job %s exited with status %d", run->id, code);
    return json_pack("{s:s, s:s, s:i}", "started_at", started, "finished_at", finished, "exit_status", code);
}

static void *run_thread(void *arg)
{
    struct run *run = arg;
    struct scheduler *sc = run->sc;
    _cleanup_json_ json_t *last = run_container(run);

    pthread_mutex_lock(&sc->lock);
    runs_record(run, last);
    running_remove(sc, run->app, run->id);
    sc->n_running--;
    pthread_cond_broadcast(&sc->cond);
    /* scheduler_stop() may free sc as soon as this unlocks. */
    pthread_mutex_unlock(&sc->lock);
    run_free(run);
    return NULL;
}

/* Starts `run` on its own thread unless its job is still running or too many are; takes it. */
static void run_start(struct scheduler *sc, struct run *run)
{
    struct running *entry;
    pthread_attr_t attr;
    pthread_t thread;
    const char *why = NULL;

    pthread_mutex_lock(&sc->lock);
    if (sc->stopping) {
        pthread_mutex_unlock(&sc->lock);
        run_free(run);
        return;
    }
    if (is_running(sc, run->app, run->id))
        why = "its previous run is still going";
    else if (sc->n_running >= SCHEDULER_RUNS_MAX)
        why = "too many scheduled jobs are running on this server";
    else if (tenant_running(sc, run->tenant) >= SCHEDULER_RUNS_PER_TENANT_MAX)
        why = "too many of this tenant's scheduled jobs are running";
    if (!why) {
        entry = xcalloc(1, sizeof(*entry));
        entry->app = xstrdup(run->app);
        entry->id = xstrdup(run->id);
        entry->tenant = xstrdup(run->tenant);
        entry->cancel = &run->cancel;
        entry->next = sc->running;
        sc->running = entry;
        sc->n_running++;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attr, run_thread, run) != 0) {
            running_remove(sc, run->app, run->id);
            sc->n_running--;
            why = "no thread could be started for it";
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&sc->lock);
    if (why) {
        applog_emit(sc->server->applog, run->app, run->source, "Skipping cron job %s (`%s`) this time: %s",
                    run->id, run->command, why);
        run_free(run);
    }
}

/* ---------------------------------------------------------------- the tick */

/* A command that names a Procfile type runs that type's command (as Dokku's `run APP worker`). */
static const char *resolve_command(const json_t *release, const char *command)
{
    const char *typed = json_get_str(json_object_get(release, "process_types"), command);

    return typed && *typed ? typed : command;
}

/* Starts the app's jobs due in the minute starting at `minute`. */
static void tick_app(struct scheduler *sc, const char *app, time_t minute)
{
    struct server *s = sc->server;
    _cleanup_json_ json_t *record = NULL, *release = NULL;
    const json_t *jobs, *job;
    unsigned version;
    size_t i;

    if (model_app_load(&s->model, app, &record, NULL) < 0 ||
        model_release_current(&s->model, app, &version, &release, NULL) < 0 || !release)
        return;
    jobs = json_object_get(release, "cron");
    json_array_foreach(jobs, i, job) {
        struct cron_schedule c;
        struct run *run;

        if (json_is_true(json_object_get(job, "maintenance")) ||
            cron_parse(json_get_str(job, "schedule"), &c, NULL) < 0 || !cron_matches(&c, minute))
            continue;
        run = xcalloc(1, sizeof(*run));
        atomic_init(&run->cancel, false);
        run->sc = sc;
        run->app = xstrdup(app);
        run->tenant = xstrdup(json_get_str(record, "tenant"));
        run->id = xstrdup(json_get_str(job, "id"));
        run->number = (unsigned)i + 1;
        run->source = xasprintf("heroku[cron.%u]", run->number);
        run->command = xstrdup(resolve_command(release, json_get_str(job, "command")));
        run->release = json_incref(release);
        run->network = json_is_true(json_object_get(json_object_get(record, "net"), "outbound"));
        run_start(sc, run);
    }
}

static void tick(struct scheduler *sc, time_t minute)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *apps = NULL;
    json_t *app;
    size_t i;

    if (model_app_list(&sc->server->model, &apps, &err) < 0) {
        log_warn("scheduler: listing the apps: %s", berth_error_msg(&err));
        return;
    }
    json_array_foreach(apps, i, app)
        tick_app(sc, json_string_value(app), minute);
}

static void *scheduler_main(void *arg)
{
    struct scheduler *sc = arg;
    /* The minute the daemon started in is not run: it began before berth was up. */
    time_t done = time(NULL) / 60 * 60;

    pthread_mutex_lock(&sc->lock);
    while (!sc->stopping) {
        time_t now = time(NULL), minute = now / 60 * 60;
        struct timespec wake = { .tv_sec = done + 60 };

        if (minute <= done) {
            /* The clock went back: wait for the next boundary after it. */
            if (minute < done)
                done = minute;
            pthread_cond_timedwait(&sc->cond, &sc->lock, &wake);
            continue;
        }
        if (minute - done > CATCH_UP_MAX_S)
            done = minute - 60;
        pthread_mutex_unlock(&sc->lock);
        for (time_t m = done + 60; m <= minute; m += 60)
            tick(sc, m);
        /* Once a minute too: previews idle past their pipeline's idle time stop. */
        pipelines_stop_idle(sc->server);
        pthread_mutex_lock(&sc->lock);
        done = minute;
    }
    pthread_mutex_unlock(&sc->lock);
    return NULL;
}

int scheduler_start(struct server *s, struct berth_error **err)
{
    struct scheduler *sc = xcalloc(1, sizeof(*sc));

    sc->server = s;
    pthread_mutex_init(&sc->lock, NULL);
    pthread_cond_init(&sc->cond, NULL);
    if (pthread_create(&sc->thread, NULL, scheduler_main, sc) != 0) {
        free(sc);
        return berth_error_plain(err, EAGAIN, "starting the scheduler's thread");
    }
    sc->thread_started = true;
    s->scheduler = sc;
    return 0;
}

void scheduler_stop(struct server *s)
{
    struct scheduler *sc = s->scheduler;

    if (!sc)
        return;
    pthread_mutex_lock(&sc->lock);
    sc->stopping = true;
    for (struct running *r = sc->running; r; r = r->next)
        atomic_store(r->cancel, true);
    pthread_cond_broadcast(&sc->cond);
    pthread_mutex_unlock(&sc->lock);
    if (sc->thread_started)
        pthread_join(sc->thread, NULL);
    pthread_mutex_lock(&sc->lock);
    while (sc->n_running)
        pthread_cond_wait(&sc->cond, &sc->lock);
    pthread_mutex_unlock(&sc->lock);
    pthread_mutex_destroy(&sc->lock);
    pthread_cond_destroy(&sc->cond);
    free(sc);
    s->scheduler = NULL;
}

void scheduler_stop_app(struct server *s, const char *app)
{
    struct scheduler *sc = s->scheduler;
    bool running = true;

    if (!sc)
        return;
    pthread_mutex_lock(&sc->lock);
    while (running) {
        running = false;
        for (struct running *r = sc->running; r; r = r->next) {
            if (strcmp(r->app, app) == 0) {
                atomic_store(r->cancel, true);
                running = true;
            }
        }
        if (running)
            pthread_cond_wait(&sc->cond, &sc->lock);
    }
    pthread_mutex_unlock(&sc->lock);
}

/* ---------------------------------------------------------------- listing */

json_t *scheduler_list(struct server *s, const char *app, time_t now)
{
    struct scheduler *sc = s->scheduler;
    _cleanup_json_ json_t *release = NULL, *runs = NULL;
    json_t *list = json_array();
    const json_t *job;
    unsigned version;
    size_t i;

    if (model_release_current(&s->model, app, &version, &release, NULL) < 0 || !release)
        return json_pack("{s:o}", "jobs", list);
    if (sc)
        pthread_mutex_lock(&sc->lock);
    runs = runs_load(s, app);
    json_array_foreach(json_object_get(release, "cron"), i, job) {
        const char *id = json_get_str(job, "id");
        bool maintenance = json_is_true(json_object_get(job, "maintenance"));
        json_t *last = json_object_get(runs, id);
        struct cron_schedule c;
        char next[MODEL_TIME_LEN + 1], dyno[32];
        time_t t;

        snprintf(dyno, sizeof(dyno), "cron.%zu", i + 1);
        if (maintenance || cron_parse(json_get_str(job, "schedule"), &c, NULL) < 0 || cron_next(&c, now, &t) < 0)
            next[0] = '\0';
        else
            model_time_format(t, next);
        json_array_append_new(list, json_pack("{s:s, s:s, s:O, s:O, s:b, s:b, s:O, s:s?}", "id", id, "dyno", dyno,
                                              "schedule",
                                              json_object_get(job, "schedule"), "command",
                                              json_object_get(job, "command"), "maintenance", maintenance,
                                              "running", sc && is_running(sc, app, id), "last_run",
                                              last ? last : json_null(), "next_run", next[0] ? next : NULL));
    }
    if (sc)
        pthread_mutex_unlock(&sc->lock);
    return json_pack("{s:o}", "jobs", list);
}
