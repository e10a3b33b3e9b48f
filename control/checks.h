/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/checks: the startup health checks a new release's web instance
 * must pass before it goes live, read from the slug as Dokku reads them:
 * app.json's "healthchecks": {"web": [{"type": "startup", "name", "path",
 * "content", "attempts", "wait", "timeout", "initialDelay"}]}, else a
 * CHECKS file (lines "/path [expected content]", settings "WAIT=",
 * "TIMEOUT=", "ATTEMPTS="). Each check is a GET of its path with the
 * app's own Host sent to the router's HTTP listener, which carries it to
 * the new instance alone through a probe (router_probe_add()): the
 * instance serves no client yet, but the check takes the router's whole
 * request path. It passes on a 2xx or 3xx status whose body holds the
 * expected content; a router error (503 H21 when nothing listens, H12 on
 * no answer in time) fails it like an app error would. The deploy (deploy.c) runs them
 * between "the instance binds $PORT" and "the route switches".
 */
#ifndef BERTH_CONTROL_CHECKS_H
#define BERTH_CONTROL_CHECKS_H

#include <stddef.h>

#include "common/error.h"
#include "control/instance.h"
#include "router/router.h"

struct check {
    char *name;
    char *path;                  /* starts with '/' */
    char *content;               /* expected in the body, or NULL */
    unsigned attempts;           /* 1..100, default 5 */
    unsigned wait_s;             /* between attempts, default 5 */
    unsigned timeout_s;          /* per attempt, default 5 */
    unsigned initial_delay_s;    /* before the first, default 0 */
};

struct check_list {
    struct check *v;
    size_t n;
    const char *source;          /* "app.json" or "CHECKS" (static) */
};

/*
 * Reads the web process's startup checks from app_dir (the slug's /app).
 * No file, or none for web: an empty list. A malformed file: -EINVAL with
 * what is wrong and where.
 */
int checks_load(const char *app_dir, struct check_list *ret, struct berth_error **err);
void checks_release(struct check_list *l);

/*
 * Runs every check against `in` (app `app`'s) through `router`, `host` as
 * the Host header, one line per attempt to `out` (may be NULL). The probe
 * that reaches `in` lives for the call. 0 when all pass; else -EIO with
 * the failed check and its last answer in the message.
 */
int checks_run(const struct check_list *l, struct router *router, const char *app, struct instance *in,
               const char *host, void (*out)(void *cls, const char *line), void *cls,
               struct berth_error **err);

#endif
