/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-cron: an app's scheduled jobs in the control API (docs/API.md).
 *
 *   GET /apps/<app>/cron    the current release's app.json cron jobs, each
 *                           with its last and next run: `berth cron`
 *
 * The jobs come from the release record (deploy.c reads them at push) and
 * their runs from the scheduler (scheduler.c); nothing here changes them.
 */
#include <string.h>
#include <time.h>

#include "control/api-internal.h"
#include "control/scheduler.h"

enum MHD_Result api_cron_handle(const struct api_call *call, const char *app)
{
    if (strcmp(call->method, "GET") != 0)
        return api_respond_error(call->conn, 405, "use GET");
    return api_respond_json(call->conn, 200, scheduler_list(call->server, app, time(NULL)));
}
