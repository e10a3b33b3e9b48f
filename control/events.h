/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/events: the audit log, `<home>/events.log`, one JSON object per
 * line, appended and never rewritten: when, who (the tenant), which app,
 * what ("deploy", "config", "rollback", "create", "settings", "run",
 * "destroy", "tenant", "token") and a
 * description that never holds a config value (names only). Read by
 * `berth events [APP] [--json]` through GET /events.
 */
#ifndef BERTH_CONTROL_EVENTS_H
#define BERTH_CONTROL_EVENTS_H

#include <jansson.h>

#include "common/error.h"
#include "control/server.h"

/* Appends one event; a failure to write is logged, never fatal to the change it records. */
void events_record(struct server *s, const char *user, const char *app, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/*
 * The last `max` events (oldest first) that `app` (NULL: any) names and
 * `tenant` may see (the admin tenant sees every app's), as a new array.
 */
int events_read(struct server *s, const char *tenant, const char *app, size_t max, json_t **ret,
                struct berth_error **err);

#endif
