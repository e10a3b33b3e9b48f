/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/instance: one running process of a release (a "dyno"): its
 * container, its log pump and its lifecycle, in the words of Heroku's dyno
 * manager (reference/HEROKU.md §3.6): start, wait until the web process
 * binds $PORT (boot timeout), serve, stop with SIGTERM then SIGKILL after
 * the grace period.
 */
#ifndef BERTH_CONTROL_INSTANCE_H
#define BERTH_CONTROL_INSTANCE_H

#include <jansson.h>
#include <stdatomic.h>

#include "common/error.h"
#include "control/server.h"

struct instance_spec {
    const char *app;
    const char *tenant;
    unsigned release;
    const char *process_type;     /* "web", "worker", "release", "run" */
    unsigned number;              /* web.<number>; 0 is taken as 1 */
    const char *command;          /* from the release's process types */
    const char *slug_dir;
    const json_t *config;         /* config vars */
    const json_t *defaults;       /* the buildpack's config_vars (bin/release): config wins */
    bool network;                 /* outbound network (`berth net:set APP outbound=on`) */
    unsigned grace_ms;            /* SIGTERM to SIGKILL when it retires (`berth ps:grace`); 0: 30 s */
    /* instance_run_once(): once this turns true (berth stopping), the process is stopped. NULL: never. */
    const atomic_bool *cancel;
    /*
     * A one-off run attached to a client (`berth run`): host fds that
     * become the process's stdin, stdout and stderr, instead of /dev/null
     * and the app's log. NULL for the rest.
     */
    const struct instance_stdio *stdio;
    /* Its cgroup's, within the tenant's (quota_instance_limits()); no memory and no pids limit: QUOTA_INSTANCE_*. */
    struct runner_limits limits;
};

struct instance_stdio {
    int in, out, err;
};

/* The port every web process gets as $PORT, inside its own network namespace. */
#define INSTANCE_PORT 5000
/* Heroku's R10: a web process must bind $PORT within 60 s. */
#define INSTANCE_BOOT_TIMEOUT_MS 60000
/* Heroku's dyno shutdown grace: 30 s after SIGTERM, then SIGKILL. */
#define INSTANCE_STOP_GRACE_MS 30000
/* Heroku's release phase timeout. */
#define INSTANCE_RELEASE_TIMEOUT_MS (60 * 60 * 1000)

/*
 * Starts the instance; a web process must then accept connections on its
 * port (it is waited for, up to the boot timeout), any other type is up
 * once started.
 * `progress` (may be NULL) receives one line per step for the push output.
 */
int instance_start(struct server *s, const struct instance_spec *spec, struct instance **ret,
                   void (*progress)(void *cls, const char *line), void *cls, struct berth_error **err);
/*
 * Runs one process of the release to its end, as a one-off dyno
 * (`release.1`): no port, the same container, environment and limits as an
 * instance. Every output line goes to the app's log and to `output` (may
 * be NULL). *ret_status is its wait(2) status; past timeout_ms it is
 * stopped and the call fails with -ETIMEDOUT; when spec->cancel turns
 * true (checked at least every 100 ms: berth stopping, the app destroyed) it is stopped and the call fails with
 * -ECANCELED.
 */
int instance_run_once(struct server *s, const struct instance_spec *spec, int timeout_ms,
                      void (*output)(void *cls, const char *line), void *cls, int *ret_status,
                      struct berth_error **err);
/*
 * The two halves of instance_run_once(), for one-off runs that something
 * else waits for (`berth run`): starts the process with no port and no
 * boot wait; *ret is stopped and freed with instance_stop_and_free().
 */
int instance_run_start(struct server *s, const struct instance_spec *spec, struct instance **ret,
                       struct berth_error **err);
/* Waits up to timeout_ms (-1: forever) for it to exit: its wait(2) status; -ETIMEDOUT while it runs. */
int instance_wait(struct instance *in, int timeout_ms, int *ret_status, struct berth_error **err);
/*
 * A reference the router holds while a route table or a channel names the
 * instance (instance_backend_ops); instance_stop_and_free() frees it only
 * after the last unhold.
 */
void instance_hold(struct instance *in);
void instance_unhold(struct instance *in);
/*
 * How the router reaches instances (router.h): channels to the container's
 * port agent, opened under the instance's lock and refused once it stops.
 */
extern const struct router_backend_ops instance_backend_ops;
/* Its name in Heroku's words: "web.1". */
const char *instance_dyno(const struct instance *in);
/*
 * An fd that becomes readable (EPOLLIN) once the instance's process has
 * exited, for the supervisor's epoll; owned by the instance, valid until
 * it is stopped. -1 when it has no container.
 */
int instance_exit_fd(const struct instance *in);
/*
 * Once its exit_fd became readable: "Process exited with status N" in the
 * app's log (once; the stop does not say it again) and N, the exit status
 * or 128 + the signal. -EAGAIN while it runs.
 */
int instance_report_exit(struct server *s, struct instance *in);
/* The memory its processes use now (its cgroup's); 0 when unknown (no cgroup). */
uint64_t instance_memory(const struct instance *in);
/* Its grace period from SIGTERM to SIGKILL, in ms. */
int instance_grace_ms(const struct instance *in);
/* A number no other instance of this daemon's life has (the router keys connection pools by it). */
uint64_t instance_serial(const struct instance *in);
/*
 * A blocking socket connected to the instance's $PORT, as the router's
 * connects are made (the container's port agent): for health checks. The
 * caller owns `in` (it is not retiring or stopping meanwhile).
 */
int instance_connect(struct instance *in, int *ret_fd, struct berth_error **err);
/*
 * How long a retired instance waits for the router to let go of it (no
 * route table, request or channel names it) before it gets SIGTERM: its
 * grace period too.
 */
/* Stops (grace_ms before SIGKILL), removes its files and frees it. */
void instance_stop_and_free(struct server *s, struct instance *in, int grace_ms);
/*
 * In a background thread, so that a deploy does not wait for it: waits
 * until the router holds the instance no more (its requests in flight
 * have finished; at most its grace period), then stops it with the grace
 * period (SIGTERM, then SIGKILL) and frees it. server.retiring counts these threads; the
 * server's shutdown waits until it is 0.
 */
void instance_retire(struct server *s, struct instance *in);

#endif
