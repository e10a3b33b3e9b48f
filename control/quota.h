/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/quota: what a tenant may use, and what each process type of an
 * app gets (ARCHITECTURE.md, Tenants and isolation; docs/OPERATIONS.md,
 * Quotas). Two kinds of limit:
 *
 *  - enforced by the kernel: the tenant's cgroup "<tenant>" below berth's
 *    delegated subtree holds every build and instance of the tenant, and
 *    carries its memory, process and cpu limits (runner_cgroup_set_limits());
 *    each instance's own cgroup below it carries its process type's
 *    limits (`berth resource:limit`), never above the tenant's;
 *  - counted by berth: how many apps and instances a tenant may have:
 *    apps checked before one is created (quota_app_create()), instances
 *    before anything starts a process in a slot its app does not hold:
 *    `ps:scale` up, `ps:start` of a stopped app, `ps:restart`, and every
 *    release going live (a push, its first one included, a rollback, a
 *    config change, a promotion, a restart), each through
 *    quota_claim_formation(). What is
 *    counted is slots, not processes: web.1 of an app is one instance while
 *    its old and new process overlap in a rolling deploy, so a tenant at its
 *    limit can still deploy or restart an app whose formation is unchanged;
 *    a crashed process waiting for its restart still holds its slot. A
 *    stopped app holds none (a push to it starts nothing). Only berth
 *    serve's start brings its apps back unchecked (a limit lowered below
 *    what runs stops nothing), though they are counted.
 *
 * The tenant's limits live in <home>/tenants/<name>.json as "limits" (only
 * what the operator set; the rest is QUOTA_DEFAULT_*); a process type's in
 * app.json as "resources": {"<type>": {"memory", "cpus", "pids"}}.
 * Over-quota answers -EDQUOT, with a message that names the limit.
 */
#ifndef BERTH_CONTROL_QUOTA_H
#define BERTH_CONTROL_QUOTA_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "control/server.h"
#include "runner/runner.h"

/* A tenant without limits of its own (the operator's admin tenant has none by default). */
#define QUOTA_DEFAULT_MEMORY (2ULL << 30)
#define QUOTA_DEFAULT_CPU_MILLIS 1000
#define QUOTA_DEFAULT_PIDS 2000
#define QUOTA_DEFAULT_APPS 20
#define QUOTA_DEFAULT_INSTANCES 50
/* A process type without resources of its own: 512M, 512 processes, no cpu quota of its own. */
#define QUOTA_INSTANCE_MEMORY (512ULL << 20)
#define QUOTA_INSTANCE_PIDS 512

/* What a tenant may use; 0 in a field: no limit. */
struct quota_tenant {
    uint64_t memory_bytes;
    uint64_t cpu_millis;      /* thousandths of a CPU */
    uint64_t pids;
    uint64_t apps;
    uint64_t instances;
};

/*
 * The tenant's limits: its record's "limits" over the defaults (the admin
 * tenant's defaults are "none"). -ENOENT for a tenant that does not exist.
 * Caller holds server.records_lock or accepts a limit changed meanwhile.
 */
int quota_tenant_limits(struct server *s, const char *tenant, struct quota_tenant *ret,
                        struct berth_error **err);
/*
 * Makes the tenant's cgroup carry its limits (creating it): before each of
 * its builds and instances starts, and at berth's start for every tenant.
 * Takes server.records_lock. 0 without doing anything on a host running
 * without cgroups (--allow-no-limits).
 */
int quota_apply_tenant(struct server *s, const char *tenant, struct berth_error **err);
/* quota_apply_tenant() for every tenant in <home>/tenants (berth serve's start). */
int quota_apply_all(struct server *s, struct berth_error **err);
/*
 * The counterpart at berth serve's stop, once no instance runs: each of
 * its apps' cgroups, then each tenant's, is removed when empty (the next
 * start makes the tenants' again with their limits). One still in use (a
 * build not yet ended, another berth of the same user under the same
 * name) is left; failures are logged, never fatal.
 */
void quota_release_all(struct server *s);
/*
 * The limits of the app's `type` containers (instances, one-off runs):
 * app.json's "resources"[type] over QUOTA_INSTANCE_*, with the cpu quota
 * held to the tenant's (cgroup v1 refuses a child's quota above its
 * parent's).
 */
int quota_instance_limits(struct server *s, const char *tenant, const json_t *app_record, const char *type,
                          struct runner_limits *ret, struct berth_error **err);
/* -EDQUOT when the tenant has as many apps as its limit allows. */
int quota_check_apps(struct server *s, const char *tenant, struct berth_error **err);
/*
 * Creates the app `name` of `tenant` (model_app_create(); with name NULL a
 * random one, model_app_create_random(), its name in *ret_picked) unless
 * quota_check_apps() refuses. The check and the creation hold one lock,
 * so that creations at once cannot all pass the check.
 */
int quota_app_create(struct server *s, const char *tenant, const char *name, char **ret_picked,
                     struct berth_error **err);
/*
 * The slots of an app's formation an operation is about to start, counted
 * as the tenant's from its check until quota_claim_drop(): a release's
 * web processes run, unrouted, before they take their slots, and two
 * operations at once must not both see the room left.
 */
struct quota_claim;
/*
 * Claims the slots `app` (of `tenant`) runs with the formation of `record`
 * (its "formation" scale, nothing when "stopped") over `types` (a
 * release's "process_types"; "release" and invalid names are no slots):
 * type.1 to type.N of each. With `enforce`, -EDQUOT ("2 more instances
 * would exceed tenant 'acme' limit of 5 instances (4 run now)") when the
 * slots it adds to those the tenant holds (its apps' slots, starting, up
 * or crashed, and their claims) take it past its limit; slots the app
 * holds already add nothing. The check and the claim hold one lock, so
 * that operations at once cannot all pass the check. With ret NULL it only
 * checks. *ret is set on success, to be passed to quota_claim_drop() once
 * the slots are the app's (or were given up). -EINVAL for a NULL tenant
 * (an app.json without one), -ENOENT with `enforce` for a tenant that does
 * not exist.
 */
int quota_claim_formation(struct server *s, const char *tenant, const char *app, const json_t *record,
                          const json_t *types, bool enforce, struct quota_claim **ret, struct berth_error **err);
/* Ends the claim (NULL is fine): its slots count only as far as the app holds them. */
void quota_claim_drop(struct quota_claim *claim);
/* How many apps the tenant has, and how many instances it holds (slots and claims, as above). */
void quota_usage(struct server *s, const char *tenant, unsigned *ret_apps, unsigned *ret_instances);

/*
 * `berth tenants:limits`: applies {"memory", "cpus", "pids", "apps",
 * "instances"} (a value as typed, "2G", "0.5", or a JSON number; null: back
 * to the default) to the tenant's record and, at once, its cgroup; takes
 * server.records_lock. Nothing changes on failure: -EINVAL (malformed,
 * out of bounds, unknown key), -ENOENT (no such tenant), -ENOTSUP (cpus on
 * a host without cpu quotas), the kernel's -EBUSY/-EINVAL when the cgroup
 * refuses (memory below what the tenant uses, cpus below a running
 * container's).
 */
int quota_set_tenant_limits(struct server *s, const char *tenant, const json_t *body, struct berth_error **err);
/*
 * GET /tenants/<name>/limits: {"tenant", "limits": {"memory": bytes, "cpus":
 * number, "pids", "apps", "instances"} (null: none), "defaults": [the keys
 * not set], "usage": {"apps", "instances"}, "enforced": bool}.
 */
int quota_tenant_doc(struct server *s, const char *tenant, json_t **ret, struct berth_error **err);
/*
 * `berth resource:limit`, as a change of app.json (the caller holds
 * server.records_lock): {"type": "web" (the default), "memory", "cpus",
 * "pids"} (null: back to the default). -EINVAL, -ENOTSUP as above, and
 * -EDQUOT ("memory 4G exceeds tenant 'acme' limit of 2G") for a value
 * above the app's tenant's.
 */
int quota_change_resources(struct server *s, json_t *record, const json_t *body, struct berth_error **err);
/*
 * GET /apps/<app>/resources: {"resources": {"<type>": {"memory", "cpus",
 * "pids", "defaults": [...]}}} for web, the current release's types and
 * every type with resources set.
 */
json_t *quota_resources_doc(struct server *s, const json_t *record);

#endif
