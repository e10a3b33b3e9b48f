/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/formation: which processes of which release run for each app
 * (Heroku's "formation" and dyno manager, reference/HEROKU.md §3.6). It
 * owns the app's running instances: `web.1`, `web.2`, `worker.1`, ... one
 * per slot of each Procfile type up to the type's scale (app.json
 * "formation": {"web": 2, "worker": 1}; without it web=1 and other types
 * 0, as on Heroku), every one of the current release.
 *
 * A deploy starts and checks its new web instances on its own (deploy.c),
 * then hands them over with formation_switch(), which replaces the web
 * slots at once (the router's table swaps in one publish) and brings every
 * other type to the new release. Everything else converges the same way:
 * scaling, restarts, ps:stop/ps:start, and the supervisor, which watches
 * every instance's exit on one epoll thread and starts a crashed process
 * again after a back-off (1 s doubling to 5 min; back to 1 s after 10 min
 * up or on a new release), in Heroku's states: starting, up, crashed.
 *
 * Locks, outermost first: the app's deploy_lock (deploys; formation
 * functions called by deploy.c run under it), the app's formation_lock
 * (every change to the app's slots, held across instance starts), and
 * server.lock (the slot list and each slot's instance and state, as the
 * router's publish and `ps` read them; never held across a wait).
 */
#ifndef BERTH_CONTROL_FORMATION_H
#define BERTH_CONTROL_FORMATION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "control/server.h"

struct instance;

/* `berth ps:grace APP SECONDS`: 1 to this many seconds (app.json "ps": {"grace": N}). */
#define FORMATION_GRACE_MAX_S 3600
/* At most this many processes of one type (`ps:scale web=N`). */
#define FORMATION_SCALE_MAX 100
/* The supervisor's back-off before restarting a crashed process: 1 s, doubling, at most 5 min. */
#define FORMATION_BACKOFF_FIRST_MS 1000
#define FORMATION_BACKOFF_MAX_MS (5 * 60 * 1000)
/* A process up this long before it crashed starts over at the first back-off. */
#define FORMATION_BACKOFF_RESET_MS (10 * 60 * 1000)

struct instance_spec;

/* How many processes of `type` the app wants: its "formation" setting, else web=1 and others 0. */
unsigned formation_wanted(const json_t *record, const char *type);
/* The app's grace period (`berth ps:grace`: "ps": {"grace": seconds}) in ms; 0: the default (30 s). */
unsigned formation_app_grace_ms(const json_t *record);
/*
 * Valid process type names, as Procfile types: ^[A-Za-z0-9_-]{1,30}$ and
 * not "release" (the release phase is not a process that stays up).
 */
bool formation_type_valid(const char *type);

/*
 * Sets the scale of the given types ({"web": 2, "worker": 0}) and converges
 * to it. Every type must be in the current release's Procfile (-ENOENT
 * naming it), counts 0..FORMATION_SCALE_MAX (-ERANGE); -EINVAL before the
 * first release; -EDQUOT when the slots it adds would take the tenant past
 * its instances (quota_claim_formation()). Nothing changes unless all are
 * valid. Scaled up, the new web processes serve once they bound $PORT.
 */
int formation_scale(struct server *s, const char *app, const json_t *counts, struct berth_error **err);
/*
 * The deploy's hand-over: `web` (n_web instances of release `version`,
 * started and checked, numbered 1..n_web) becomes the app's web slots in
 * one publish; the old web instances retire once the router let go of
 * them; then every other type is restarted with the new release and the
 * scale converged. Takes the instances. Under the app's deploy lock.
 */
void formation_switch(struct server *s, const char *app, unsigned version, struct instance **web, size_t n_web);
/*
 * Restarts the app's processes of `type` (NULL: all) with the current
 * release: web processes one at a time, each replacement serving before
 * the old one retires. -ENOENT for a type with no process running;
 * -EDQUOT when the app's formation holds slots it has lost and these would
 * not fit in the tenant's instances.
 */
int formation_restart(struct server *s, const char *app, const char *type, struct berth_error **err);
/*
 * Dokku's ps:stop / ps:start: stops every process of the app (kept across
 * restarts of berth: app.json "stopped") / brings the formation back
 * (-EDQUOT, and still stopped, when it does not fit in the tenant's
 * instances).
 */
int formation_stop(struct server *s, const char *app, struct berth_error **err);
int formation_start(struct server *s, const char *app, struct berth_error **err);
/*
 * `ps`: the app's processes, each {"name": "web.1", "type", "number",
 * "state": "starting"|"up"|"crashed"|"down", "since" (UTC), "uptime"
 * (seconds up, 0 unless up), "restarts", "memory" (bytes, 0 when unknown),
 * "release", "exit_status" (the last crash's, when there was one)}, sorted.
 */
json_t *formation_ps(struct server *s, const char *app);

/*
 * The app's serving web instances into ret (at most max) and their
 * generation: for the router's table. The generation changes with each
 * release that goes live (the router drops the old release's idle
 * connections then); within one, instances come and go (scaling,
 * restarts) and the router keeps the pools of those that stay. The
 * caller holds server.lock.
 */
size_t formation_web_backends(struct server *s, const char *app, void **ret, size_t max,
                              uint64_t *ret_generation);

/* Stops every process of the app and forgets its slots (apps:destroy). */
void formation_remove_app(struct server *s, const char *app);

/* The supervisor thread: started once the router is up, stopped before the instances are. */
int formation_supervisor_start(struct server *s, struct berth_error **err);
void formation_supervisor_stop(struct server *s);
/* At shutdown, after the router stopped: every process of every app, stopped. */
void formation_stop_everything(struct server *s);

#endif
