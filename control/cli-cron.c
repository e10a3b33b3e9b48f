/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-cron: `berth cron APP [--json]`, an app's scheduled jobs (its
 * app.json "cron" entries) with their last and next runs, over GET
 * /apps/<app>/cron (api-cron.c). Times are UTC, as the schedules are.
 */
#include <stdbool.h>
#include <stdio.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "control/cli-internal.h"

/* "2026-12-01T03:00:00Z exit 0", "2026-12-01T03:00:00Z error: why", or "-". */
static void print_last(const json_t *last, bool running)
{
    const json_t *status = json_object_get(last, "exit_status");

    if (running)
        printf("running");
    else if (!json_is_object(last))
        printf("-");
    else if (json_is_integer(status))
        printf("%s exit %lld", json_get_str(last, "started_at"), (long long)json_integer_value(status));
    else
        printf("%s error: %s", json_get_str(last, "started_at"), json_get_str(last, "error"));
}

int cli_cron(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int as_json = cli_json_flag(argc, argv, "cron APP [--json]");
    const json_t *jobs;
    json_t *job;
    size_t i;

    if (as_json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], "/cron", NULL, &doc) < 0)
        return 1;
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    jobs = json_object_get(doc, "jobs");
    if (json_array_size(jobs) == 0) {
        printf("=== %s has no scheduled jobs (app.json \"cron\")\n", argv[0]);
        return 0;
    }
    printf("=== %s Scheduled jobs (UTC)\n", argv[0]);
    json_array_foreach(jobs, i, job) {
        const char *next = json_get_str(job, "next_run");

        printf("%s  %-15s  %s\n    last: ", json_get_str(job, "id"), json_get_str(job, "schedule"),
               json_get_str(job, "command"));
        print_last(json_object_get(job, "last_run"), json_is_true(json_object_get(job, "running")));
        printf("  next: %s\n", json_is_true(json_object_get(job, "maintenance")) ? "(maintenance)" :
               next ? next : "-");
    }
    return 0;
}
