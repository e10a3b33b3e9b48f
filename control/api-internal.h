/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control-internal: what the control API's daemon (api.c: connections,
 * authentication, the git endpoint) shares with its resource handlers
 * (api-apps.c: /apps and everything below it): how an answer is sent.
 */
#ifndef BERTH_CONTROL_API_INTERNAL_H
#define BERTH_CONTROL_API_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "common/strbuf.h"
#include "control/server.h"

/* API request bodies are tiny; pushes go through the receiver's own cap. */
#define API_BODY_MAX (64u << 10)

/* One authenticated API request, body complete. */
struct api_call {
    struct server *server;
    struct MHD_Connection *conn;
    const char *tenant;
    const char *url;
    const char *method;
    const struct strbuf *body;
    bool body_too_large;
};

/* Sends doc (stolen) as a JSON answer. */
enum MHD_Result api_respond_json(struct MHD_Connection *c, unsigned status, json_t *doc);
/* {"error": msg} */
enum MHD_Result api_respond_error(struct MHD_Connection *c, unsigned status, const char *msg);

/* Whether `app` exists and belongs to `tenant` (another tenant's app answers like a missing one). */
bool api_app_owned_by(struct server *s, const char *app, const char *tenant);
/* The /apps resources; answers 404 for anything it does not know. */
enum MHD_Result api_apps_handle(const struct api_call *call);

#endif
