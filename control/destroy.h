/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/destroy: `berth apps:destroy` and `berth tenants:destroy`. An app
 * stops existing at one rename (apps/<app> -> apps/.destroyed-<app>-<hex>,
 * under its deploy lock and the records lock), so a push or request that
 * comes after finds no app; then its processes stop, its routes and
 * certificates go, the renamed tree, its cgroups and the slugs no other
 * release of its tenant names are removed. A crash in between leaves a
 * renamed tree that the next start removes (destroy_sweep_leftovers()).
 */
#ifndef BERTH_CONTROL_DESTROY_H
#define BERTH_CONTROL_DESTROY_H

#include <jansson.h>

#include "common/error.h"
#include "control/server.h"

/*
 * Destroys app `app` (the caller checked who may). -ENOENT if it does not
 * exist. Waits for a deploy of the app in progress to end first.
 */
int destroy_app(struct server *s, const char *app, struct berth_error **err);
/*
 * Destroys tenant `tenant`: its tokens stop working at once, then each of
 * its apps is destroyed, then its slugs, cgroups and record go (its id
 * slice is free again). *ret_apps: the names of the apps destroyed.
 * -EPERM for the admin tenant, -ENOENT if there is no such tenant.
 */
int destroy_tenant(struct server *s, const char *tenant, json_t **ret_apps, struct berth_error **err);
/* At start: removes the trees of destroys a crash interrupted (apps/.destroyed-*). */
void destroy_sweep_leftovers(struct server *s);

#endif
