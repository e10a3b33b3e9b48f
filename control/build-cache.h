/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/build-cache: an app's build cache (<home>/apps/<app>/cache, the
 * /cache of its builds: node_modules, pip's wheels, Go's module cache...),
 * which buildpacks keep from one build for the next. Heroku's
 * builds:cache:purge and Dokku's repo:purge-cache empty it, for when it
 * went bad (a dependency cached broken, a tree too deep for the build's
 * disk watch to measure, which would otherwise stop every later build).
 */
#ifndef BERTH_CONTROL_BUILD_CACHE_H
#define BERTH_CONTROL_BUILD_CACHE_H

#include <stdint.h>

#include "common/error.h"
#include "control/server.h"

/*
 * Empties the app's build cache, under its deploy lock (a build of the app
 * runs under that lock, so none is using the cache meanwhile); the next
 * build starts from nothing. The files were written by the tenant's build
 * containers (its subordinate ids), so the runner removes them, in a tree
 * of any depth. *ret_bytes is what the cache took (0 where it could not be
 * measured: too deep, say). -ENOENT for an app that does not exist.
 */
int build_cache_purge(struct server *s, const char *app, const char *tenant, uint64_t *ret_bytes,
                      struct berth_error **err);

#endif
