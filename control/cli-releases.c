/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-releases: `berth releases APP [--json]` and `berth rollback
 * APP [vN]`, as Heroku's CLI shows them, over /apps/<app>/releases
 * (api-releases.c); `berth events [APP] [--json]`, the audit log; `berth
 * gc [--json]`, slug garbage collection; `berth checks[:enable|:disable|:skip] APP`;
 * `berth ps:grace APP [SECONDS]`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"

int cli_releases(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int as_json = cli_json_flag(argc, argv, "releases APP [--json]");
    const json_t *releases;
    size_t i, width = 0;
    json_t *r;

    if (as_json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], "/releases", NULL, &doc) < 0)
        return 1;
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    releases = json_object_get(doc, "releases");
    if (json_array_size(releases) == 0) {
        printf("=== %s has no releases yet (push to deploy)\n", argv[0]);
        return 0;
    }
    printf("=== %s Releases - Current: v%lld\n", argv[0],
           (long long)json_integer_value(json_object_get(doc, "current")));
    json_array_foreach(releases, i, r) {
        const char *d = json_get_str(r, "description");
        if (d && strlen(d) > width)
            width = strlen(d);
    }
    json_array_foreach(releases, i, r) {
        const char *d = json_get_str(r, "description"), *user = json_get_str(r, "user");
        const char *when = json_get_str(r, "created_at");

        printf("v%-4lld %-*s  %-12s %s\n", (long long)json_integer_value(json_object_get(r, "version")),
               (int)width, d ? d : "", user ? user : "-", when ? when : "");
    }
    return 0;
}

int cli_rollback(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    long target = 0;

    if (argc > 1) {
        const char *v = argv[1][0] == 'v' ? argv[1] + 1 : argv[1];
        char *end;

        errno = 0;
        target = strtol(v, &end, 10);
        if (!*v || *end || errno || target <= 0) {
            fprintf(stderr, "berth: '%s' is not a release (v3, or 3)\nusage: berth rollback APP [vN]\n",
                    argv[1]);
            return 2;
        }
    }
    json_object_set_new(body, "rollback", target ? json_integer(target) : json_null());
    printf("Rolling back %s... ", argv[0]);
    fflush(stdout);
    if (cli_app_request("POST", argv[0], "/releases", body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("done, v%lld\nRollback to v%lld\n", (long long)json_integer_value(json_object_get(doc, "release")),
           (long long)json_integer_value(json_object_get(doc, "rollback_to")));
    return 0;
}

/* `berth events [APP] [--json]`: the audit log, oldest first, as the API gives its last 1000. */
int cli_events(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *path = NULL;
    const char *app = NULL;
    bool as_json = false;
    long status = 0;
    size_t i;
    json_t *ev;

    for (int k = 0; k < argc; k++) {
        if (strcmp(argv[k], "--json") == 0)
            as_json = true;
        else if (!app && argv[k][0] != '-')
            app = argv[k];
        else {
            fprintf(stderr, "usage: berth events [APP] [--json]\n");
            return 2;
        }
    }
    /* App names are DNS labels: nothing in one needs escaping in a query. */
    path = app ? xasprintf("/events?app=%s", app) : xstrdup("/events");
    if (cli_api("GET", path, NULL, &status, &doc) < 0)
        return 1;
    if (status != 200)
        return cli_fail(status, doc);
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    json_array_foreach(json_object_get(doc, "events"), i, ev) {
        const char *a = json_get_str(ev, "app");

        printf("%s  %-10s %-16s %-9s %s\n", json_get_str(ev, "time") ? json_get_str(ev, "time") : "",
               json_get_str(ev, "user") ? json_get_str(ev, "user") : "-", a ? a : "-",
               json_get_str(ev, "action") ? json_get_str(ev, "action") : "",
               json_get_str(ev, "description") ? json_get_str(ev, "description") : "");
    }
    return 0;
}

/* `berth gc [--dry-run] [--keep N]`: what slug garbage collection frees (operator only). */
int cli_gc(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    bool dry = false, as_json = false;
    long status = 0, keep = 0;
    size_t i;
    json_t *item;

    for (int k = 0; k < argc; k++) {
        char *end = NULL;

        if (strcmp(argv[k], "--dry-run") == 0 || strcmp(argv[k], "--json") == 0) {
            dry |= argv[k][2] == 'd';
            as_json |= argv[k][2] == 'j';
            continue;
        }
        if (strcmp(argv[k], "--keep") == 0 && k + 1 < argc) {
            errno = 0;
            keep = strtol(argv[++k], &end, 10);
            if (!*end && !errno && keep >= 1 && keep <= 1000)
                continue;
        }
        fprintf(stderr, "usage: berth gc [--dry-run] [--keep N] [--json]   (N: releases kept per app, 1 to 1000)\n");
        return 2;
    }
    json_object_set_new(body, "dry_run", json_boolean(dry));
    if (keep)
        json_object_set_new(body, "keep", json_integer(keep));
    if (cli_api("POST", "/gc", body, &status, &doc) < 0)
        return 1;
    if (status != 200)
        return cli_fail(status, doc);
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    json_array_foreach(json_object_get(doc, "removed"), i, item)
        printf("%s %s/%s  %lld KiB\n", dry ? "would remove" : "removed", json_get_str(item, "tenant"),
               json_get_str(item, "slug"), (long long)json_integer_value(json_object_get(item, "bytes")) / 1024);
    printf("%s %zu slugs, %lld KiB (keeping the slugs of each app's last %lld releases)\n",
           dry ? "Would free" : "Freed", json_array_size(json_object_get(doc, "removed")),
           (long long)json_integer_value(json_object_get(doc, "bytes")) / 1024,
           (long long)json_integer_value(json_object_get(doc, "keep")));
    return 0;
}

/* `berth checks APP`: whether deploys run the app's startup health checks. */
int cli_checks(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = cli_app_show(argc, argv, "checks APP [--json]", "/checks", &doc);

    if (r || !doc)
        return r;
    printf("%s\n", json_get_str(doc, "checks") ? json_get_str(doc, "checks") : "enabled");
    return 0;
}

static int checks_set(const char *app, const char *mode, const char *verb)
{
    _cleanup_json_ json_t *body = json_pack("{s:s}", "checks", mode);
    _cleanup_free_ char *doing = xasprintf("%s health checks for %s", verb, app);

    return cli_app_switch(app, "/checks", body, doing);
}

int cli_checks_enable(int argc, char **argv)
{
    (void)argc;
    return checks_set(argv[0], "enabled", "Enabling");
}

int cli_checks_disable(int argc, char **argv)
{
    (void)argc;
    return checks_set(argv[0], "disabled", "Disabling");
}

int cli_checks_skip(int argc, char **argv)
{
    (void)argc;
    return checks_set(argv[0], "skipped", "Skipping");
}

/* `berth ps:grace APP [SECONDS|default]`: the grace period from SIGTERM to SIGKILL when an instance retires. */
int cli_ps_grace(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL, *body = NULL;
    _cleanup_free_ char *doing = NULL;
    long secs = 0;
    char *end;

    if (argc == 1 || strcmp(argv[1], "--json") == 0) {
        if (cli_app_request("GET", argv[0], "/ps", NULL, &doc) < 0)
            return 1;
        if (argc == 2) {
            cli_print_json(doc);
            return 0;
        }
        printf("%llds%s\n", (long long)json_integer_value(json_object_get(doc, "grace")),
               json_is_true(json_object_get(doc, "default")) ? " (default)" : "");
        return 0;
    }
    if (strcmp(argv[1], "default") != 0) {
        errno = 0;
        secs = strtol(argv[1], &end, 10);
        if (*end || errno || secs < 1 || secs > 3600) {
            fprintf(stderr, "berth: '%s' is not a number of seconds from 1 to 3600\n"
                    "usage: berth ps:grace APP [SECONDS|default|--json]\n", argv[1]);
            return 2;
        }
    }
    body = json_pack("{s:o}", "grace", secs ? json_integer(secs) : json_null());
    doing = secs ? xasprintf("Setting the grace period of %s to %lds", argv[0], secs)
                 : xasprintf("Setting the grace period of %s back to 30s", argv[0]);
    return cli_app_switch(argv[0], "/ps", body, doing);
}
