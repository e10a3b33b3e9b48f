/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-releases: `berth releases APP [--json]` and `berth rollback
 * APP [vN]`, as Heroku's CLI shows them, over /apps/<app>/releases
 * (api-releases.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
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
