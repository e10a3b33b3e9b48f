/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api: the control daemon's HTTP endpoint (libmicrohttpd,
 * thread-per-connection, since git pushes block on builds): the JSON API
 * under /apps and the git smart-HTTP endpoint under /<app>.git/, both
 * authenticated by a tenant's token (Bearer, or Basic with the token as the
 * password, which is what git sends) and authorized by api_allows()
 * (api-internal.h): a tenant reaches only its own apps, the admin every
 * app, a scoped token its role's share of one app or all of its tenant's.
 *
 *   /apps and below (api-apps.c: apps, their settings and config; docs/API.md)
 *   /tenants, /tokens (api-tenants.c)
 *   GET  /<app>.git/info/refs?service=git-receive-pack, POST /<app>.git/git-receive-pack
 *
 * Errors are JSON {"error": "..."} for the API and text/plain for git (git
 * shows a text/plain error body to the user as `remote: ...`).
 */
#ifndef BERTH_CONTROL_API_H
#define BERTH_CONTROL_API_H

#include "common/error.h"
#include "control/server.h"

int api_start(struct server *s, struct berth_error **err);
void api_stop(struct server *s);

#endif
