/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-pipelines: `berth pipelines*`, `config:copy` and the preview
 * overrides of `config:set --preview` (api-pipelines.c has the routes).
 * Every command takes --json anywhere among its arguments and then prints
 * the API's answer as it is.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"
#include "control/units.h"

/* Takes "--json" out of argv (wherever it is); true if it was there. */
static bool take_json(int *argc, char **argv)
{
    bool found = false;
    int n = 0;

    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            found = true;
        else
            argv[n++] = argv[i];
    }
    *argc = n;
    return found;
}

static int usage(const char *line)
{
    fprintf(stderr, "usage: berth %s\n", line);
    return 2;
}

/* One request said as "<doing>... done" (or failed, the error on stderr); *ret_doc on success. */
static int said(const char *doing, bool as_json, const char *method, const char *path, const json_t *body,
                json_t **ret_doc)
{
    if (!as_json) {
        printf("%s... ", doing);
        fflush(stdout);
    }
    if (cli_request(method, path, body, ret_doc) < 0) {
        if (!as_json)
            printf("failed\n");
        return 1;
    }
    if (as_json)
        cli_print_json(*ret_doc);
    else
        printf("done\n");
    return 0;
}

static void print_pipeline(const json_t *doc)
{
    const json_t *previews = json_object_get(doc, "previews");
    json_t *app;
    size_t i;

    printf("=== %s\n", json_get_str(doc, "name"));
    if (json_is_true(json_object_get(previews, "enabled")))
        printf("Previews: on (stopped after %llds without a request)\n",
               (long long)json_integer_value(json_object_get(previews, "idle")));
    else
        printf("Previews: off\n");
    if (json_array_size(json_object_get(doc, "apps")) == 0)
        printf("(no apps: berth pipelines:add %s APP --stage STAGE)\n", json_get_str(doc, "name"));
    json_array_foreach(json_object_get(doc, "apps"), i, app) {
        const char *commit = json_get_str(app, "commit"), *desc = json_get_str(app, "description");
        json_int_t release = json_integer_value(json_object_get(app, "release"));

        printf("%-12s %-30s ", json_get_str(app, "stage"), json_get_str(app, "app"));
        if (release)
            printf("v%-4lld %.7s  %s", (long long)release, commit ? commit : "-", desc ? desc : "");
        else
            printf("(no release)");
        if (json_get_str(app, "branch"))
            printf("  [branch %s]", json_get_str(app, "branch"));
        printf("\n");
    }
}

/* `pipelines [NAME] [--json]` */
int cli_pipelines(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *path = NULL;
    bool as_json = take_json(&argc, argv);
    json_t *p;
    size_t i;

    if (argc > 1)
        return usage("pipelines [NAME] [--json]");
    path = argc ? xasprintf("/pipelines/%s", argv[0]) : xstrdup("/pipelines");
    if (cli_request("GET", path, NULL, &doc) < 0)
        return 1;
    if (as_json)
        cli_print_json(doc);
    else if (argc)
        print_pipeline(doc);
    else {
        printf("=== Pipelines\n");
        json_array_foreach(json_object_get(doc, "pipelines"), i, p)
            printf("%-30s %zu apps\n", json_get_str(p, "name"), json_array_size(json_object_get(p, "apps")));
    }
    return 0;
}

int cli_pipelines_create(int argc, char **argv)
{
    _cleanup_json_ json_t *body = NULL, *doc = NULL;
    _cleanup_free_ char *doing = NULL;
    bool as_json = take_json(&argc, argv);

    if (argc != 1)
        return usage("pipelines:create NAME [--json]");
    body = json_pack("{s:s}", "name", argv[0]);
    doing = xasprintf("Creating pipeline %s", argv[0]);
    return said(doing, as_json, "POST", "/pipelines", body, &doc);
}

int cli_pipelines_add(int argc, char **argv)
{
    _cleanup_json_ json_t *body = NULL, *doc = NULL;
    _cleanup_free_ char *doing = NULL, *path = NULL;
    bool as_json = take_json(&argc, argv);

    if (argc != 4 || strcmp(argv[2], "--stage") != 0)
        return usage("pipelines:add NAME APP --stage development|review|staging|production [--json]");
    body = json_pack("{s:s, s:s}", "app", argv[1], "stage", argv[3]);
    doing = xasprintf("Adding %s to pipeline %s as %s", argv[1], argv[0], argv[3]);
    path = xasprintf("/pipelines/%s/apps", argv[0]);
    return said(doing, as_json, "POST", path, body, &doc);
}

int cli_pipelines_remove(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *doing = NULL, *path = NULL;
    bool as_json = take_json(&argc, argv);

    if (argc != 2)
        return usage("pipelines:remove NAME APP [--json]");
    doing = xasprintf("Removing %s from pipeline %s", argv[1], argv[0]);
    path = xasprintf("/pipelines/%s/apps/%s", argv[0], argv[1]);
    return said(doing, as_json, "DELETE", path, NULL, &doc);
}

int cli_pipelines_destroy(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *doing = NULL, *path = NULL;
    bool as_json = take_json(&argc, argv);
    json_t *v;
    size_t i;
    int r;

    if (argc != 3 || strcmp(argv[1], "--confirm") != 0)
        return usage("pipelines:destroy NAME --confirm NAME [--json]");
    doing = xasprintf("Destroying pipeline %s", argv[0]);
    path = xasprintf("/pipelines/%s?confirm=%s", argv[0], argv[2]);
    if ((r = said(doing, as_json, "DELETE", path, NULL, &doc)) || as_json)
        return r;
    json_array_foreach(json_object_get(doc, "previews_destroyed"), i, v)
        printf("Destroyed preview %s\n", json_string_value(v));
    return 0;
}

/* `pipelines:promote APP [--to APP...] [--json]` */
int cli_pipelines_promote(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    _cleanup_free_ char *doing = NULL, *path = NULL;
    bool as_json = take_json(&argc, argv);
    json_t *to = json_array(), *v;
    size_t i;
    int r;

    json_object_set_new(body, "to", to);
    if (argc < 1 || (argc > 1 && (strcmp(argv[1], "--to") != 0 || argc < 3)))
        return usage("pipelines:promote APP [--to APP...] [--json]");
    for (int k = 2; k < argc; k++)
        json_array_append_new(to, json_string(argv[k]));
    doing = xasprintf("Promoting %s", argv[0]);
    path = xasprintf("/apps/%s/pipeline/promote", argv[0]);
    if ((r = said(doing, as_json, "POST", path, body, &doc)) || as_json)
        return r;
    json_array_foreach(json_object_get(doc, "promoted"), i, v)
        printf("%s (%s) v%lld from %s v%lld (%.7s)\n", json_get_str(v, "app"), json_get_str(v, "stage"),
               (long long)json_integer_value(json_object_get(v, "release")), json_get_str(doc, "stage"),
               (long long)json_integer_value(json_object_get(doc, "release")),
               json_get_str(doc, "commit") ? json_get_str(doc, "commit") : "-");
    return 0;
}

/* `pipelines:diff APP [--to APP] [--json]` */
int cli_pipelines_diff(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *path = NULL;
    bool as_json = take_json(&argc, argv);
    const json_t *from, *to;
    json_t *c;
    size_t i;

    if (argc != 1 && (argc != 3 || strcmp(argv[1], "--to") != 0))
        return usage("pipelines:diff APP [--to APP] [--json]");
    path = argc == 3 ? xasprintf("/apps/%s/pipeline/diff?to=%s", argv[0], argv[2])
                     : xasprintf("/apps/%s/pipeline/diff", argv[0]);
    if (cli_request("GET", path, NULL, &doc) < 0)
        return 1;
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    from = json_object_get(doc, "from");
    to = json_object_get(doc, "to");
    printf("=== %s (%s, %.7s) against %s (%s, %.7s)\n", json_get_str(from, "app"), json_get_str(from, "stage"),
           json_get_str(from, "commit") ? json_get_str(from, "commit") : "none", json_get_str(to, "app"),
           json_get_str(to, "stage"), json_get_str(to, "commit") ? json_get_str(to, "commit") : "none");
    if (!json_get_str(to, "commit"))
        printf("%s has no release yet: promote to it\n", json_get_str(to, "app"));
    else if (!json_is_true(json_object_get(doc, "related")))
        printf("The two releases' commits share no history berth holds: they differ\n");
    else if (json_array_size(json_object_get(doc, "commits")) == 0 &&
             json_integer_value(json_object_get(doc, "behind")) == 0)
        printf("Up to date: both run the same commit\n");
    else {
        printf("%lld commits ahead, %lld behind\n", (long long)json_integer_value(json_object_get(doc, "ahead")),
               (long long)json_integer_value(json_object_get(doc, "behind")));
        json_array_foreach(json_object_get(doc, "commits"), i, c)
            printf("%.7s  %s  (%s)\n", json_get_str(c, "id"), json_get_str(c, "summary"), json_get_str(c, "author"));
    }
    return 0;
}

/* `pipelines:previews NAME on|off [--idle DURATION] [--json]` */
int cli_pipelines_previews(int argc, char **argv)
{
    _cleanup_json_ json_t *body = NULL, *doc = NULL;
    _cleanup_free_ char *doing = NULL, *path = NULL;
    bool as_json = take_json(&argc, argv), on;
    unsigned idle = 0;

    if ((argc != 2 && argc != 4) || (strcmp(argv[1], "on") && strcmp(argv[1], "off")) ||
        (argc == 4 && (strcmp(argv[2], "--idle") != 0 || !units_parse_duration(argv[3], &idle) || idle < 60)))
        return usage("pipelines:previews NAME on|off [--idle DURATION (1m or more: 30m, 1h, 2d)] [--json]");
    on = strcmp(argv[1], "on") == 0;
    body = json_pack("{s:b}", "enabled", on);
    if (idle)
        json_object_set_new(body, "idle", json_integer(idle));
    doing = xasprintf("Turning previews %s for pipeline %s", argv[1], argv[0]);
    path = xasprintf("/pipelines/%s/previews", argv[0]);
    return said(doing, as_json, "PATCH", path, body, &doc);
}

/* `config:copy FROM TO [NAME...] [--json]` */
int cli_config_copy(int argc, char **argv)
{
    _cleanup_json_ json_t *body = NULL, *doc = NULL;
    _cleanup_free_ char *doing = NULL, *path = NULL;
    bool as_json = take_json(&argc, argv);
    json_t *keys = json_array(), *v;
    size_t i;
    int r;

    body = json_pack("{s:s, s:o}", "from", argc ? argv[0] : "", "keys", keys);
    if (argc < 2)
        return usage("config:copy FROM TO [NAME...] [--json]");
    for (int k = 2; k < argc; k++)
        json_array_append_new(keys, json_string(argv[k]));
    doing = xasprintf("Copying config vars from %s to %s", argv[0], argv[1]);
    path = xasprintf("/apps/%s/config/copy", argv[1]);
    if ((r = said(doing, as_json, "POST", path, body, &doc)) || as_json)
        return r;
    printf("Copied ");
    json_array_foreach(json_object_get(doc, "copied"), i, v)
        printf("%s%s", i ? ", " : "", json_string_value(v));
    printf(": %s%s%s%s v%lld\n", argv[1], json_get_str(doc, "stage") ? " (" : "",
           json_get_str(doc, "stage") ? json_get_str(doc, "stage") : "", json_get_str(doc, "stage") ? ")" : "",
           (long long)json_integer_value(json_object_get(doc, "release")));
    return 0;
}

/* `config:set --preview APP NAME=VALUE...` / `config:unset --preview APP NAME...` (set false). */
int cli_config_preview(int argc, char **argv, bool set)
{
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    _cleanup_free_ char *doing = NULL;
    const char *key;
    json_t *v;

    if (argc < 2)
        return usage(set ? "config:set --preview APP NAME=VALUE..." : "config:unset --preview APP NAME...");
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');

        if (set && (!eq || eq == argv[i])) {
            fprintf(stderr, "berth: '%s' is not NAME=VALUE\n", argv[i]);
            return usage("config:set --preview APP NAME=VALUE...");
        }
        if (set) {
            _cleanup_free_ char *k = xstrndup(argv[i], (size_t)(eq - argv[i]));

            json_object_set_new(body, k, json_string(eq + 1));
        } else {
            json_object_set_new(body, argv[i], json_null());
        }
    }
    doing = xasprintf("%s the preview config of %s (its previews take it at their next push)",
                      set ? "Setting" : "Unsetting", argv[0]);
    if (cli_app_switch(argv[0], "/preview-config", body, doing))
        return 1;
    if (cli_app_request("GET", argv[0], "/preview-config", NULL, &doc) < 0)
        return 1;
    json_object_foreach(json_object_get(doc, "preview_config"), key, v)
        printf("%s: %s\n", key, json_string_value(v));
    return 0;
}
