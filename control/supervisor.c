/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/supervisor: Heroku's dyno manager restarting crashed dynos
 * (formation.h). One thread and one epoll watch the exit of every process
 * the formation runs (each instance's exit fd, keyed by the instance's
 * serial, so a late event for an instance let go meanwhile finds nothing
 * and is ignored). A process that exits on its own is a crash: its slot
 * turns `crashed` with the exit status in the app's log, leaves the
 * router's table, and gets a back-off; once that has passed, a short-lived
 * thread converges the app (under its formation_lock, as every change
 * does), which starts the process again. The supervisor itself never
 * waits on an app: it only reads exit statuses that are already there.
 */
#include "control/formation-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/xalloc.h"

/* The epoll key of the wake-up eventfd; instance serials start at 1. */
#define WAKE_KEY 0
/* The loop looks at due restarts at least this often. */
#define TICK_MS 1000

struct supervisor {
    int epfd;
    int wake_fd;
    pthread_t thread;
    atomic_bool stop;
    /* Restart threads in flight: the supervisor's stop waits until none is. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned workers;
};

void formation_watch(struct server *s, struct instance *in)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = instance_serial(in) };
    int fd = instance_exit_fd(in);

    if (!s->supervisor || fd < 0)
        return;
    if (epoll_ctl(s->supervisor->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        log_error("supervisor: watching %s: %s", instance_dyno(in), strerror(errno));
}

void formation_unwatch(struct server *s, struct instance *in)
{
    int fd = instance_exit_fd(in);

    if (s->supervisor && fd >= 0)
        (void)epoll_ctl(s->supervisor->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* The process of instance `serial` ended: its slot is crashed and waits for its back-off. */
static void on_exit_of(struct server *s, uint64_t serial)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *app = NULL;
    struct instance *in = NULL;
    bool web = false;
    int code;

    pthread_mutex_lock(&s->lock);
    for (struct app_runtime *rt = s->apps; rt && !in; rt = rt->next) {
        for (struct dyno *d = rt->dynos; d; d = d->next) {
            if (!d->in || instance_serial(d->in) != serial)
                continue;
            in = TAKE_PTR(d->in);
            formation_unwatch(s, in);
            code = instance_report_exit(s, in);
            d->has_status = true;
            d->exit_code = code < 0 ? 128 + SIGKILL : code;
            d->restarts++;
            formation_schedule_restart(d, formation_now_ms());
            formation_set_state(s, rt->name, d, DYNO_CRASHED);
            web = strcmp(d->type, "web") == 0;
            app = xstrdup(rt->name);
            log_warn("%s.%u of '%s' crashed (exit status %d); restarting in %llu ms", d->type, d->number,
                     rt->name, d->exit_code, (unsigned long long)d->backoff_ms);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (!in)
        return;
    if (web && server_publish_routes(s, &err) < 0)
        log_error("publishing routes of '%s': %s", app, berth_error_msg(&err));
    instance_retire(s, in);
}

struct restart_job {
    struct server *s;
    struct app_runtime *rt;
};

static void *restart_thread(void *arg)
{
    struct restart_job *job = arg;
    struct supervisor *sv = job->s->supervisor;
    _cleanup_error_ struct berth_error *err = NULL;

    pthread_mutex_lock(&job->rt->formation_lock);
    pthread_mutex_lock(&job->s->lock);
    job->rt->restart_queued = false;
    pthread_mutex_unlock(&job->s->lock);
    if (!atomic_load(&sv->stop) && formation_converge(job->s, job->rt, NULL, &err) < 0)
        log_warn("restarting processes of '%s': %s", job->rt->name, berth_error_msg(&err));
    pthread_mutex_unlock(&job->rt->formation_lock);
    pthread_mutex_lock(&sv->lock);
    if (--sv->workers == 0)
        pthread_cond_broadcast(&sv->cond);
    pthread_mutex_unlock(&sv->lock);
    free(job);
    return NULL;
}

static void queue_restart(struct server *s, struct app_runtime *rt)
{
    struct supervisor *sv = s->supervisor;
    struct restart_job *job = xcalloc(1, sizeof(*job));
    pthread_t t;

    job->s = s;
    job->rt = rt;
    pthread_mutex_lock(&sv->lock);
    sv->workers++;
    pthread_mutex_unlock(&sv->lock);
    if (pthread_create(&t, NULL, restart_thread, job) != 0) {
        restart_thread(job);
        return;
    }
    pthread_detach(t);
}

/* Queues a restart for each app with a crashed process due; how long until the next one is due. */
static int restarts_due(struct server *s)
{
    struct app_runtime *due[16];
    size_t n = 0;
    uint64_t now = formation_now_ms(), next = now + TICK_MS;

    pthread_mutex_lock(&s->lock);
    for (struct app_runtime *rt = s->apps; rt; rt = rt->next) {
        for (struct dyno *d = rt->dynos; d; d = d->next) {
            if (d->state != DYNO_CRASHED || d->in || d->starting)
                continue;
            if (d->restart_at_ms > now) {
                next = d->restart_at_ms < next ? d->restart_at_ms : next;
                continue;
            }
            if (!rt->restart_queued && n < sizeof(due) / sizeof(*due)) {
                rt->restart_queued = true;
                due[n++] = rt;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++)
        queue_restart(s, due[i]);
    return (int)(next - now);
}

static void *supervisor_loop(void *arg)
{
    struct server *s = arg;
    struct supervisor *sv = s->supervisor;
    struct epoll_event evs[64];
    int timeout = TICK_MS;

    while (!atomic_load(&sv->stop)) {
        int n = epoll_wait(sv->epfd, evs, 64, timeout);

        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == WAKE_KEY) {
                uint64_t v;

                if (read(sv->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    log_warn("supervisor: reading its wake-up: %s", strerror(errno));
                continue;
            }
            on_exit_of(s, evs[i].data.u64);
        }
        if (!atomic_load(&sv->stop))
            timeout = restarts_due(s);
    }
    return NULL;
}

int formation_supervisor_start(struct server *s, struct berth_error **err)
{
    struct supervisor *sv = xcalloc(1, sizeof(*sv));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = WAKE_KEY };

    pthread_mutex_init(&sv->lock, NULL);
    pthread_cond_init(&sv->cond, NULL);
    sv->epfd = epoll_create1(EPOLL_CLOEXEC);
    sv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sv->epfd < 0 || sv->wake_fd < 0 || epoll_ctl(sv->epfd, EPOLL_CTL_ADD, sv->wake_fd, &ev) < 0) {
        int e = errno;

        if (sv->epfd >= 0)
            close(sv->epfd);
        if (sv->wake_fd >= 0)
            close(sv->wake_fd);
        free(sv);
        return berth_error_make(err, e, "supervisor: epoll");
    }
    s->supervisor = sv;
    if (pthread_create(&sv->thread, NULL, supervisor_loop, s) != 0) {
        s->supervisor = NULL;
        close(sv->epfd);
        close(sv->wake_fd);
        free(sv);
        return berth_error_plain(err, EAGAIN, "supervisor: cannot start its thread");
    }
    return 0;
}

void formation_supervisor_stop(struct server *s)
{
    struct supervisor *sv = s->supervisor;
    uint64_t one = 1;

    if (!sv)
        return;
    atomic_store(&sv->stop, true);
    if (write(sv->wake_fd, &one, sizeof(one)) < 0)
        log_warn("supervisor: waking it: %s", strerror(errno));
    pthread_join(sv->thread, NULL);
    pthread_mutex_lock(&sv->lock);
    while (sv->workers)
        pthread_cond_wait(&sv->cond, &sv->lock);
    pthread_mutex_unlock(&sv->lock);
    /* The epoll stays open: formation_watch() may still be called until every instance is stopped. */
}
