/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/gc: slug garbage collection that never breaks a rollback. A
 * slug (`<home>/layers/<tenant>/<sha256>`) is kept while one of the last
 * `keep` releases of one of its tenant's apps names it (the current one
 * always among them); every other slug of the tenant is removed through
 * the runner (its files belong to the tenant's subordinate ids). While a
 * tenant's slugs are looked at, every app of that tenant (and of no other)
 * is held at its deploy lock, so a build's new slug is never taken for
 * garbage before its release names it. `berth gc [--dry-run] [--keep N]`
 * (admin), and a pass every day (berth.json "gc": {"every": "24h",
 * "keep": 10}; "every": "off" turns it off).
 */
#ifndef BERTH_CONTROL_GC_H
#define BERTH_CONTROL_GC_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "control/server.h"

/* Releases whose slugs are kept, per app, when the caller names no other number. */
#define GC_KEEP_RELEASES 10
/* How often the scheduled pass runs, unless berth.json says otherwise. */
#define GC_EVERY_S (24 * 3600)

/*
 * Collects (or, with dry_run, only lists) every tenant's unreferenced
 * slugs. *ret: {"dry_run", "keep", "removed": [{"tenant", "slug",
 * "bytes"}], "bytes"}. A slug that cannot be removed is logged and left
 * (not listed); only reading the records fails the call.
 */
int gc_run(struct server *s, bool dry_run, unsigned keep, json_t **ret, struct berth_error **err);
/*
 * Removes the tenant's slugs that no release of any of its apps names (the
 * tenant may have no app left), holding each of its apps' deploy locks as
 * gc_run() does; for apps:destroy, once the app's records are gone. The
 * caller holds no deploy lock. A slug that cannot be removed is logged.
 */
int gc_tenant_slugs(struct server *s, const char *tenant, struct berth_error **err);
/*
 * At start, before any app is restored: removes what a crash left behind,
 * build directories (run/builds), instance directories (run/instances:
 * no instance runs yet), the receiver's quarantine directories of
 * pushes that never finished (apps/<app>/repo.git/objects/incoming-*) and
 * the empty cgroups below each app's (runner_cgroup_sweep()).
 * Each removal is logged; a failure is logged and left.
 */
void gc_sweep_leftovers(struct server *s);
/*
 * The scheduled pass: a thread that collects every gc.every (berth.json;
 * "off": no thread), keeping gc.keep releases. A malformed setting fails
 * the start. gc_schedule_stop() ends it (waiting for a pass under way).
 */
int gc_schedule_start(struct server *s, struct berth_error **err);
void gc_schedule_stop(struct server *s);

#endif
