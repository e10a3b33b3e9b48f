/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/scheduler: an app's scheduled jobs, Dokku's app.json "cron"
 * entries ({"command": "...", "schedule": "0 3 * * *"}). A push reads
 * and checks them from the new slug (cron_jobs_load(), in the deploy,
 * next to the health checks) and the release record keeps them, so a
 * rollback brings its own schedule back. One thread in the daemon wakes at
 * each minute boundary (UTC) and starts every job of each app's current
 * release that is due then, as a one-off container of that release
 * (instance_run_once(), dyno `cron.N` for the Nth entry, the release's
 * config, at most SCHEDULER_RUN_TIMEOUT_MS). The run's output goes to the
 * app's log like any process's; its start and exit status go there as
 * platform lines.
 *
 * Runs never overlap: a job still running when it is due again is skipped,
 * with a log line; at most SCHEDULER_RUNS_MAX run at once over all apps
 * and SCHEDULER_RUNS_PER_TENANT_MAX of one tenant's (each on its own
 * thread, so a long one delays no other), and a job due while that many
 * run is skipped the same way. Minutes the daemon was down are not
 * replayed. Each job's last run is kept in
 * <home>/apps/<app>/cron-runs.json, so `berth cron` shows it after a
 * restart.
 */
#ifndef BERTH_CONTROL_SCHEDULER_H
#define BERTH_CONTROL_SCHEDULER_H

#include <jansson.h>
#include <time.h>

#include "common/error.h"
#include "control/server.h"

/* Runs at once, all apps together, and of one tenant's apps (so that no tenant takes every slot). */
#define SCHEDULER_RUNS_MAX 32
#define SCHEDULER_RUNS_PER_TENANT_MAX 8
/* A run still going after an hour is killed. */
#define SCHEDULER_RUN_TIMEOUT_MS (60 * 60 * 1000)

/* Starts the scheduler's thread (s->scheduler); after the apps are restored. */
int scheduler_start(struct server *s, struct berth_error **err);
/*
 * Stops it: no new runs, every running one killed (within 100 ms) and
 * waited for. Returns within a second or so of its runs' stop. Safe
 * when it never started. Call it before the instances and the runner go.
 */
void scheduler_stop(struct server *s);
/*
 * apps:destroy: stops the app's runs in progress (as scheduler_stop()
 * does) and waits until they are gone. The caller made sure no new one
 * starts (the app's record is gone first, so the next tick skips it).
 */
void scheduler_stop_app(struct server *s, const char *app);

/*
 * `berth cron APP`: {"jobs": [{"id", "dyno", "schedule", "command",
 * "maintenance", "running", "last_run": null | {"started_at",
 * "finished_at", "exit_status" (null when it did not exit: "error" says
 * why)}, "next_run": UTC time or null}]} for the app's current release,
 * the next runs as of `now`.
 */
json_t *scheduler_list(struct server *s, const char *app, time_t now);

#endif
