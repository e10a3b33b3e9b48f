/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/run: one-off dynos (see run.h). The container and its
 * environment come from instance.c (instance_run_start()); this file adds
 * the one-off's name, the registry of runs in progress, the detached run's
 * waiting thread, the shutdown that ends them all, and ps:stop's end of
 * one.
 */
#include "control/run.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/applog.h"
#include "control/formation.h"
#include "control/instance.h"
#include "control/quota.h"

/* run.1000 to run.9999, as Heroku's. */
#define RUN_NUMBER_MIN 1000
#define RUN_NUMBER_SPAN 9000
/* How often a detached run's thread looks whether the daemon is stopping. */
#define RUN_DETACHED_POLL_MS 500

/*
 * The reason run_stop_one() gives, the only one that stops a run with the
 * app's grace period (run_end()); compared by address.
 */
static const char why_ps_stop[] = "ps:stop";

struct run {
    struct run_registry *reg;
    char *app;
    char *command;
    char *dyno;                   /* "run.4821" */
    unsigned number;
    time_t since;
    bool attached;
    struct instance *in;          /* NULL until started */
    int wake[2];                  /* a byte in it once the run is to end (run_stop_all(), run_stop_app()) */
    const char *why;              /* why, set before the byte (under reg->lock): a static string */
    struct run *next;             /* under reg->lock */
};

struct run_registry {
    pthread_mutex_t lock;
    pthread_cond_t ended;         /* a run left the list */
    bool stopping;                /* run_stop_all(): no new runs */
    struct run *runs;
};

struct run_registry *run_registry_new(void)
{
    struct run_registry *reg = xcalloc(1, sizeof(*reg));

    pthread_mutex_init(&reg->lock, NULL);
    pthread_cond_init(&reg->ended, NULL);
    return reg;
}

void run_registry_free(struct run_registry *reg)
{
    if (!reg)
        return;
    pthread_mutex_destroy(&reg->lock);
    pthread_cond_destroy(&reg->ended);
    free(reg);
}

static bool number_taken(const struct run_registry *reg, const char *app, unsigned n)
{
    for (const struct run *r = reg->runs; r; r = r->next)
        if (r->number == n && strcmp(r->app, app) == 0)
            return true;
    return false;
}

/* Puts `r` on the list with a number no other run of its app has. Under reg->lock. */
static int enlist(struct run_registry *reg, struct run *r, struct berth_error **err)
{
    unsigned count = 0;
    uint32_t pick;

    if (reg->stopping)
        return berth_error_plain(err, ESHUTDOWN, "berth is stopping: no new one-off runs");
    for (const struct run *o = reg->runs; o; o = o->next)
        count += strcmp(o->app, r->app) == 0;
    if (count >= RUN_MAX_PER_APP)
        return berth_error_plain(err, EAGAIN, "'%s' has %u one-off runs in progress, the most it may have",
                                 r->app, count);
    if (getrandom(&pick, sizeof(pick), 0) != sizeof(pick))
        pick = (uint32_t)time(NULL);
    /* At most RUN_MAX_PER_APP taken out of RUN_NUMBER_SPAN: the walk ends soon. */
    r->number = RUN_NUMBER_MIN + pick % RUN_NUMBER_SPAN;
    while (number_taken(reg, r->app, r->number))
        r->number = RUN_NUMBER_MIN + (r->number - RUN_NUMBER_MIN + 1) % RUN_NUMBER_SPAN;
    r->dyno = xasprintf("run.%u", r->number);
    r->next = reg->runs;
    reg->runs = r;
    return 0;
}

static void delist(struct run_registry *reg, struct run *r)
{
    pthread_mutex_lock(&reg->lock);
    for (struct run **p = &reg->runs; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    pthread_cond_broadcast(&reg->ended);
    pthread_mutex_unlock(&reg->lock);
}

static void run_free(struct run *r)
{
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    free(r->app);
    free(r->command);
    free(r->dyno);
    free(r);
}

/* The tenant that owns the app: its ids, its cgroup. */
static char *app_tenant(const json_t *record)
{
    const char *tenant = json_get_str(record, "tenant");

    return xstrdup(tenant ? tenant : MODEL_ADMIN_TENANT);
}

/* Starts r's container from the app's current release. */
static int start_container(struct server *s, struct run *r, const struct instance_stdio *stdio,
                           struct berth_error **err)
{
    _cleanup_json_ json_t *record = NULL, *release = NULL;
    _cleanup_free_ char *tenant = NULL, *slug_dir = NULL;
    unsigned version = 0;
    const char *slug;
    int rc;

    if ((rc = model_app_load(&s->model, r->app, &record, err)) < 0)
        return rc;
    if ((rc = model_release_current(&s->model, r->app, &version, &release, err)) < 0)
        return rc;
    if (version == 0)
        return berth_error_plain(err, ENODATA, "'%s' has no release yet: push it first (git push)", r->app);
    slug = json_get_str(release, "slug");
    if (!slug)
        return berth_error_plain(err, EINVAL, "release v%u of '%s' has no slug", version, r->app);
    tenant = app_tenant(record);
    slug_dir = server_slug_dir(s, tenant, slug);
    {
        struct runner_limits limits;
        /* The limits of the app's web processes (berth resource:limit), within the tenant's. */
        if ((rc = quota_instance_limits(s, tenant, record, "web", &limits, err)) < 0)
            return rc;
        const struct instance_spec spec = {
            .app = r->app, .tenant = tenant, .release = version, .process_type = "run",
            .number = r->number, .command = r->command, .slug_dir = slug_dir,
            .config = json_object_get(release, "config"),
            .defaults = json_object_get(release, "buildpack_config"),
            .network = json_is_true(json_object_get(json_object_get(record, "net"), "outbound")),
            .stdio = stdio, .limits = limits, .grace_ms = formation_app_grace_ms(record),
        };

        return instance_run_start(s, &spec, &r->in, err);
    }
}

int run_start(struct server *s, const char *app, const char *command, const struct instance_stdio *stdio,
              struct run **ret, struct berth_error **err)
{
    struct run_registry *reg = s->runs;
    struct run *r = xcalloc(1, sizeof(*r));
    int rc;

    r->reg = reg;
    r->app = xstrdup(app);
    r->command = xstrdup(command);
    r->attached = stdio != NULL;
    r->since = time(NULL);
    r->wake[0] = r->wake[1] = -1;
    if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        rc = berth_error_make(err, errno, "pipe");
        run_free(r);
        return rc;
    }
    pthread_mutex_lock(&reg->lock);
    rc = enlist(reg, r, err);
    pthread_mutex_unlock(&reg->lock);
    if (rc < 0) {
        run_free(r);
        return rc;
    }
    rc = start_container(s, r, stdio, err);
    if (rc < 0) {
        delist(reg, r);
        run_free(r);
        return rc;
    }
    /* Not its command: a command line may carry a secret (the app's log has it, for its owner). */
    log_info("%s of '%s' started", r->dyno, app);
    *ret = r;
    return 0;
}

const char *run_dyno(const struct run *r)
{
    return r->dyno;
}

int run_wake_fd(const struct run *r)
{
    return r->wake[0];
}

const char *run_stop_reason(const struct run *r)
{
    return r->why ? r->why : "berth is stopping";
}

int run_wait(struct run *r, int timeout_ms, int *ret_status, struct berth_error **err)
{
    return instance_wait(r->in, timeout_ms, ret_status, err);
}

void run_end(struct server *s, struct run *r, const char *why)
{
    if (!r)
        return;
    if (why) {
        _cleanup_free_ char *source = xasprintf("heroku[%s]", r->dyno);

        applog_emit(s->applog, r->app, source, "Stopping process: %s", why);
    }
    /*
     * ps:stop (only run_stop_reason() hands out why_ps_stop): SIGTERM, and
     * SIGKILL after the app's grace period, as its other processes stop.
     * Any other end at once: the client is gone, berth is stopping, or the
     * app is being destroyed.
     */
    instance_stop_and_free(s, r->in, why == why_ps_stop ? instance_grace_ms(r->in) : 0);
    delist(r->reg, r);
    run_free(r);
}

/* ---------------------------------------------------------------- detached */

struct detached {
    struct server *server;
    struct run *run;
};

static bool stop_requested(const struct run *r)
{
    char byte;

    return read(r->wake[0], &byte, 1) == 1;
}

static void *detached_thread(void *arg)
{
    struct detached *d = arg;
    struct run *r = d->run;
    int status = 0, rc;

    do {
        rc = run_wait(r, RUN_DETACHED_POLL_MS, &status, NULL);
    } while (rc == -ETIMEDOUT && !stop_requested(r));
    /* Its exit status goes to the log as its instance stops. */
    run_end(d->server, r, rc == 0 ? NULL : run_stop_reason(r));
    free(d);
    return NULL;
}

int run_detached(struct server *s, const char *app, const char *command, char **ret_dyno,
                 struct berth_error **err)
{
    struct detached *d;
    struct run *r = NULL;
    pthread_t t;
    int rc;

    rc = run_start(s, app, command, NULL, &r, err);
    if (rc < 0)
        return rc;
    *ret_dyno = xstrdup(r->dyno);
    d = xcalloc(1, sizeof(*d));
    d->server = s;
    d->run = r;
    if (pthread_create(&t, NULL, detached_thread, d) != 0) {
        free(d);
        run_end(s, r, "no thread to wait for it");
        free(*ret_dyno);
        *ret_dyno = NULL;
        return berth_error_plain(err, EAGAIN, "no thread to wait for a detached run");
    }
    pthread_detach(t);
    return 0;
}

/* ---------------------------------------------------------------- all of them */

/*
 * Wakes the runs of `app` (NULL: every run) with `why` and waits until
 * they have ended, waking as well those that join meanwhile. Under reg->lock.
 */
/* Tells r to end, for `why`, unless it was told already. Under reg->lock. */
static void wake_locked(struct run *r, const char *why)
{
    if (r->why)
        return;
    /* Written before the byte: whoever sees the byte sees the reason. */
    r->why = why;
    (void)write_all(r->wake[1], "x", 1);
}

static void end_runs_locked(struct run_registry *reg, const char *app, const char *why)
{
    for (;;) {
        bool left = false;

        for (struct run *r = reg->runs; r; r = r->next) {
            if (app && strcmp(r->app, app) != 0)
                continue;
            left = true;
            wake_locked(r, why);
        }
        if (!left)
            return;
        pthread_cond_wait(&reg->ended, &reg->lock);
    }
}

void run_stop_all(struct server *s)
{
    struct run_registry *reg = s->runs;

    if (!reg)
        return;
    pthread_mutex_lock(&reg->lock);
    reg->stopping = true;
    end_runs_locked(reg, NULL, "berth is stopping");
    pthread_mutex_unlock(&reg->lock);
}

int run_stop_one(struct server *s, const char *app, const char *dyno, struct berth_error **err)
{
    struct run_registry *reg = s->runs;
    struct run *r;

    pthread_mutex_lock(&reg->lock);
    for (r = reg->runs; r; r = r->next)
        if (strcmp(r->app, app) == 0 && strcmp(r->dyno, dyno) == 0)
            break;
    /* One already told to end (berth stopping, the app destroyed, an earlier ps:stop) ends that way. */
    if (r)
        wake_locked(r, why_ps_stop);
    pthread_mutex_unlock(&reg->lock);
    return r ? 0 : berth_error_plain(err, ENOENT, "'%s' has no one-off run '%s' in progress", app, dyno);
}

void run_stop_app(struct server *s, const char *app)
{
    struct run_registry *reg = s->runs;

    pthread_mutex_lock(&reg->lock);
    end_runs_locked(reg, app, "the app is being destroyed");
    pthread_mutex_unlock(&reg->lock);
}

static int by_number(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "number"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "number"));

    return (x > y) - (x < y);
}

json_t *run_list(struct server *s, const char *app)
{
    struct run_registry *reg = s->runs;
    json_t *items[RUN_MAX_PER_APP], *list = json_array();
    size_t n = 0;

    pthread_mutex_lock(&reg->lock);
    for (const struct run *r = reg->runs; r && n < RUN_MAX_PER_APP; r = r->next) {
        char since[MODEL_TIME_LEN + 1];

        if (strcmp(r->app, app) != 0)
            continue;
        model_time_format(r->since, since);
        items[n++] = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:b}", "name", r->dyno, "type", "run",
                               "number", (int)r->number, "command", r->command,
                               "state", r->why ? "stopping" : "up",
                               "since", since, "attached", r->attached);
    }
    pthread_mutex_unlock(&reg->lock);
    qsort(items, n, sizeof(*items), by_number);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, items[i]);
    return list;
}
