/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/run: one-off dynos, Heroku's `heroku run` (`berth run`,
 * `berth run:detached`). A one-off is a command in a fresh container of
 * the app's current release (its slug, its config vars, the buildpack's
 * defaults), with the same environment, uid and limits as the app's
 * instances (instance.h), named `run.N` (N unique among the app's one-offs
 * in progress, four digits like Heroku's run.4821), with no port and no
 * route. An attached run's stdin, stdout and stderr are fds of the
 * caller's (the API streams them over the client's connection,
 * api-run.c); a detached run writes its output to the app's log and a
 * thread of its own waits for it. Either way its start, its state and
 * its exit status go to the app's log as `heroku[run.N]: ...` lines.
 *
 * Every run is listed in the server's registry (server.runs) until it
 * ends, so that the daemon's shutdown can end them all first
 * (run_stop_all()), `ps` can show them (run_list()) and `ps:stop APP
 * run.N` can stop one (run_stop_one()).
 */
#ifndef BERTH_CONTROL_RUN_H
#define BERTH_CONTROL_RUN_H

#include <jansson.h>

#include "common/error.h"
#include "control/server.h"

struct run;
struct run_registry;
struct instance_stdio;

/* A one-off's command: at most this many bytes. */
#define RUN_COMMAND_MAX (16u << 10)
/* One-offs of one app in progress at once; one more is refused (-EAGAIN). */
#define RUN_MAX_PER_APP 100

struct run_registry *run_registry_new(void);
/* Frees it; run_stop_all() must have emptied it. NULL is a no-op. */
void run_registry_free(struct run_registry *reg);

/*
 * Starts a one-off of `app`'s current release running `command` (through
 * bash, as a Procfile command). With `stdio` its fds become the process's
 * stdin, stdout and stderr (the caller keeps them; close your copies of
 * the container's ends once this returns); without, stdin is /dev/null
 * and the output goes to the app's log. -ENOENT: no such app; -ENODATA:
 * no release yet; -EAGAIN: RUN_MAX_PER_APP runs already; -ESHUTDOWN: the
 * daemon is stopping; or the container's start failed. *ret is the
 * caller's until run_end().
 */
int run_start(struct server *s, const char *app, const char *command, const struct instance_stdio *stdio,
              struct run **ret, struct berth_error **err);
/* "run.4821" */
const char *run_dyno(const struct run *r);
/*
 * An fd that becomes readable once the run is to end (run_stop_all(),
 * run_stop_app(), run_stop_one()): the caller's loop then ends it, with
 * run_stop_reason() ("berth is stopping", "ps:stop"...) as the why. Owned
 * by the run.
 */
int run_wake_fd(const struct run *r);
const char *run_stop_reason(const struct run *r);
/* Waits up to timeout_ms (-1: forever) for the command to exit: its wait(2) status; -ETIMEDOUT while it runs. */
int run_wait(struct run *r, int timeout_ms, int *ret_status, struct berth_error **err);
/*
 * Ends the run: stops its container if it still runs, removes its
 * files, takes it off the registry and frees it. `why` (NULL once the
 * command exited) is logged as `heroku[run.N]: Stopping process: <why>`
 * before its exit status. The stop is SIGKILL to every process of it at
 * once (its client is gone, berth is stopping, the app is being
 * destroyed), but for run_stop_one()'s reason: SIGTERM, and SIGKILL after
 * the app's grace period. NULL is a no-op.
 */
void run_end(struct server *s, struct run *r, const char *why);

/*
 * `run:detached`: starts the one-off with its output in the app's log
 * and returns at once; a thread waits for its end (its exit status is
 * logged as `heroku[run.N]: Process exited with status S`) and ends it.
 * *ret_dyno (malloc'ed) is its name. Errors as run_start().
 */
int run_detached(struct server *s, const char *app, const char *command, char **ret_dyno,
                 struct berth_error **err);

/*
 * At shutdown, before the API and the runner stop: refuses new runs, wakes
 * every run in progress (attached ones through their wake fd, detached
 * ones' threads) and waits until each has ended.
 */
void run_stop_all(struct server *s);
/*
 * `ps:stop APP run.N`, Heroku's way to stop one one-off: wakes the run,
 * whose thread (detached) or session (attached) then stops it as the
 * app's processes stop: SIGTERM to every process in its container, SIGKILL
 * after the app's grace period (`ps:grace`, 30 s by default), its exit
 * status in the log. An attached run's client gets no output sent after
 * the SIGTERM, then the ERROR frame "ps:stop: the run was ended". Returns
 * at once. -ENOENT: `app` has no run of that name in progress. A run
 * already told to end (by berth's stop, apps:destroy or an earlier
 * ps:stop) ends as it was told; that is not an error.
 */
int run_stop_one(struct server *s, const char *app, const char *dyno, struct berth_error **err);
/*
 * apps:destroy: ends every run of `app` in progress (as run_stop_all()
 * does, with "the app is being destroyed") and waits until they are gone.
 * The caller makes sure no new one starts (the app's record is gone
 * first, so run_start() fails with -ENOENT).
 */
void run_stop_app(struct server *s, const char *app);
/*
 * The app's one-offs in progress, for `ps`: an array of {"name": "run.4821",
 * "type": "run", "number", "command", "state": "up" (or "stopping" once
 * told to end), "since" (UTC), "attached": bool}, sorted by number.
 */
json_t *run_list(struct server *s, const char *app);

#endif
