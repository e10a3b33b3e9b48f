/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/server: the daemon's state, `berth serve`. One process hosts the
 * router, the control API with the git endpoint, the instances of every app
 * and the deploy pipeline that ties them together (ARCHITECTURE.md,
 * Processes). This struct is the one documented place where that state
 * lives (like redis's `server`); everything else receives a pointer to it.
 */
#ifndef BERTH_CONTROL_SERVER_H
#define BERTH_CONTROL_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "buildpacks/build.h"
#include "common/error.h"
#include "control/model.h"
#include "router/router.h"
#include "runner/runner.h"

struct applog;
struct instance;
struct scheduler;
struct dyno;
struct supervisor;
struct gc_schedule;
struct run_registry;

/* What berth runs for one app: its processes (control/formation.h owns them). */
struct app_runtime {
    char *name;
    pthread_mutex_t deploy_lock;      /* one deploy at a time per app */
    pthread_mutex_t formation_lock;   /* one change to the app's processes at a time (formation.h) */
    /* Guarded by server.lock: */
    struct dyno *dynos;               /* web.1, web.2, worker.1, ... */
    uint64_t generation;              /* changes with each release going live (the router's pools) */
    bool restart_queued;              /* the supervisor has a restart of a crashed process on its way */
    struct app_runtime *next;
};

struct server_options {
    const char *home;
    const char *http_addr;            /* router listen address */
    const char *https_addr;           /* router HTTPS listen address, or NULL for none */
    const char *control_addr;         /* API and git endpoint */
    const char *domain;               /* apps answer at <app>.<domain> */
    const char *buildpacks_src;       /* built-in buildpacks, copied into the home at start */
    bool allow_no_limits;             /* run even when cgroup limits cannot be enforced */
};

struct server {
    struct server_options opt;
    struct model model;
    struct runner *runner;
    struct router *router;
    struct applog *applog;            /* every app's log and the thread that writes it (applog.h) */
    void *api;                        /* struct MHD_Daemon of the control API */
    char *stack_dir;                  /* <home>/layers/stacks/host */
    char *layers_dir;                 /* <home>/layers: <tenant>/<sha256> below */
    char *buildpacks_dir;             /* <home>/buildpacks */
    char *fetch_cache_dir;            /* <home>/cache/buildpacks: git buildpacks */
    struct build_budget build_budget; /* berth.json "builds": defaults for every build */
    bool network;                     /* containers can get outbound network (pasta) */
    char *control_url;                /* http://127.0.0.1:8081 as bound */
    uint16_t http_port, https_port, control_port;
    bool cgroups;                     /* limits enforced through cgroups */
    bool cpu_quota;                   /* cpu quotas too (the cpu controller, CFS bandwidth) */
    char *user;                       /* berth's user name, for /etc/subuid and /etc/subgid */
    pthread_mutex_t lock;             /* guards apps and each app_runtime's dynos/generation */
    /* Serialises read-modify-write of app.json and config.json (API settings changes). */
    pthread_mutex_t records_lock;
    /* Serialises server_publish_routes(): tables reach the router in the order they were made. */
    pthread_mutex_t publish_lock;
    /* Instances retiring in the background (instance_retire()): the shutdown waits for them. */
    pthread_mutex_t retire_lock;
    pthread_cond_t retire_cond;
    unsigned retiring;
    struct supervisor *supervisor;    /* watches every process's exit (formation.h) */
    struct gc_schedule *gc;           /* the scheduled slug collection (gc.h); NULL when off */
    struct run_registry *runs;        /* one-off runs in progress (run.h) */
    struct app_runtime *apps;
    struct scheduler *scheduler;      /* scheduled jobs (scheduler.c); NULL before start and after stop */
};

/* Finds or adds the runtime entry for app `name` (never freed while serving). */
struct app_runtime *server_app(struct server *s, const char *name);
/*
 * Stops everything app `name` runs (formation_remove_app(): every process
 * retires, SIGTERM then SIGKILL after its grace period; its one-off runs
 * and scheduled jobs in progress end) and waits until no
 * instance is retiring any more (retiring ones are not kept per app, so
 * every app's are waited for; at most 65 s); returns once they are gone.
 * For apps:destroy, after the app's routes are unpublished; the caller
 * holds its deploy lock.
 */
void server_app_stop_all(struct server *s, const char *name);
/*
 * Publishes every app's routes (names, settings, running instances) and,
 * with an HTTPS listener, the certificates (control/publish.c).
 */
int server_publish_routes(struct server *s, struct berth_error **err);
/* Parses "127.0.0.1:8080" (IPv4 address and port; port 0 picks a free one). */
int server_parse_addr(const char *addr, struct sockaddr_in *ret, struct berth_error **err);
/*
 * Where the slug `slug` of the tenant's release lives:
 * <home>/layers/<tenant>/<slug>, or, for releases made before slugs were
 * kept per tenant, <home>/layers/<slug>. Malloc'ed.
 */
/* Whether `app` exists and belongs to `tenant` (another tenant's app answers like a missing one). */
bool server_app_owned_by(struct server *s, const char *app, const char *tenant);
char *server_slug_dir(const struct server *s, const char *tenant, const char *slug);
/* How many tenant id slices berth's /etc/subuid and /etc/subgid ranges hold (the smaller count). */
unsigned long server_tenant_slices(const struct server *s);
/* The tenant's id ranges for containers. */
int server_tenant_ids(struct server *s, const char *tenant, unsigned long *ret_uid_base,
                      unsigned long *ret_gid_base, struct berth_error **err);

#endif
