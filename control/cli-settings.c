/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-settings: the client commands for an app's settings and
 * config, worded as Heroku's and Dokku's CLIs word them
 * (`berth buildpacks:set hello heroku/nodejs`, `berth config:set hello
 * GREETING=hi`). Every check of a value happens in the API; these only
 * shape requests and print answers.
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

int cli_app_request(const char *method, const char *app, const char *sub, const json_t *body, json_t **ret_doc)
{
    _cleanup_free_ char *path = xasprintf("/apps/%s%s", app, sub);

    return cli_request(method, path, body, ret_doc);
}

int cli_request(const char *method, const char *path, const json_t *body, json_t **ret_doc)
{
    json_t *doc = NULL;
    long status = 0;

    if (cli_api(method, path, body, &status, &doc) < 0)
        return -1;
    if (status < 200 || status > 299) {
        cli_fail(status, doc);
        json_decref(doc);
        return -1;
    }
    *ret_doc = doc;
    return 0;
}

int cli_app_switch(const char *app, const char *sub, json_t *body, const char *doing)
{
    _cleanup_json_ json_t *doc = NULL;

    printf("%s... ", doing);
    fflush(stdout);
    if (cli_app_request("PATCH", app, sub, body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("done\n");
    return 0;
}

static void print_buildpacks(const char *app, const json_t *list)
{
    json_t *v;
    size_t i;

    if (json_array_size(list) == 0) {
        printf("%s has no buildpacks set: each push is detected among the built-ins "
               "(node, python, php, go, static, null)\n", app);
        return;
    }
    printf("=== %s Buildpack URLs\n", app);
    json_array_foreach(list, i, v)
        printf("%zu. %s\n", i + 1, json_string_value(v));
}

int cli_buildpacks(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = cli_app_show(argc, argv, "buildpacks APP [--json]", "/buildpacks", &doc);

    if (r || !doc)
        return r;
    print_buildpacks(argv[0], json_object_get(doc, "buildpacks"));
    return 0;
}

int cli_buildpacks_set(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_pack("{s:[]}", "buildpacks"), *doc = NULL;
    json_t *list = json_object_get(body, "buildpacks");

    for (int i = 1; i < argc; i++)
        json_array_append_new(list, json_string(argv[i]));
    if (cli_app_request("PUT", argv[0], "/buildpacks", body, &doc) < 0)
        return 1;
    printf("Buildpacks set. The next release of %s will use them.\n", argv[0]);
    print_buildpacks(argv[0], json_object_get(doc, "buildpacks"));
    return 0;
}

int cli_buildpacks_clear(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_pack("{s:[]}", "buildpacks"), *doc = NULL;

    (void)argc;
    if (cli_app_request("PUT", argv[0], "/buildpacks", body, &doc) < 0)
        return 1;
    printf("Buildpacks cleared. The next release of %s will detect its buildpack.\n", argv[0]);
    return 0;
}

int cli_json_flag(int argc, char **argv, const char *usage)
{
    if (argc < 2)
        return 0;
    if (strcmp(argv[1], "--json") == 0)
        return 1;
    fprintf(stderr, "usage: berth %s\n", usage);
    return -1;
}

int cli_app_show(int argc, char **argv, const char *usage, const char *sub, json_t **ret_doc)
{
    int as_json = cli_json_flag(argc, argv, usage);

    *ret_doc = NULL;
    if (as_json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], sub, NULL, ret_doc) < 0)
        return 1;
    if (as_json) {
        cli_print_json(*ret_doc);
        json_decref(*ret_doc);
        *ret_doc = NULL;
    }
    return 0;
}

void cli_print_json(const json_t *doc)
{
    _cleanup_free_ char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

    printf("%s\n", text ? text : "{}");
}

int cli_add_pairs(json_t *body, int argc, char **argv, const char *usage)
{
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        _cleanup_free_ char *key = NULL;

        if (!eq || eq == argv[i]) {
            fprintf(stderr, "berth: '%s' is not KEY=VALUE\nusage: berth %s\n", argv[i], usage);
            return -1;
        }
        key = xstrndup(argv[i], (size_t)(eq - argv[i]));
        json_object_set_new(body, key, eq[1] ? json_string(eq + 1) : json_null());
    }
    return 0;
}

int cli_builds_set(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    const char *key;
    json_t *v;

    if (cli_add_pairs(body, argc - 1, argv + 1, "builds:set APP dir=PATH|memory=SIZE|disk=SIZE|timeout=DURATION...") < 0)
        return 2;
    if (cli_app_request("PATCH", argv[0], "/build", body, &doc) < 0)
        return 1;
    printf("=== %s Build settings\n", argv[0]);
    if (json_object_size(json_object_get(doc, "build")) == 0)
        printf("(defaults: the repository's root, the server's budget)\n");
    json_object_foreach(json_object_get(doc, "build"), key, v) {
        if (json_is_string(v))
            printf("%s: %s\n", key, json_string_value(v));
        else
            printf("%s: %lld\n", key, (long long)json_integer_value(v));
    }
    return 0;
}

int cli_builds_cache_purge(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    json_int_t bytes;

    (void)argc;
    fprintf(stderr, "Purging the build cache of %s... ", argv[0]);
    if (cli_app_request("DELETE", argv[0], "/build/cache", NULL, &doc) < 0)
        return 1;
    bytes = json_integer_value(json_object_get(doc, "purged"));
    fprintf(stderr, "done (%.1f MB); the next build starts without it\n", (double)bytes / 1e6);
    return 0;
}

int cli_net(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = cli_app_show(argc, argv, "net APP [--json]", "", &doc);

    if (r || !doc)
        return r;
    printf("outbound=%s\n",
           json_is_true(json_object_get(json_object_get(doc, "net"), "outbound")) ? "on" : "off");
    return 0;
}

int cli_net_set(int argc, char **argv)
{
    _cleanup_json_ json_t *body = NULL, *doc = NULL;
    const char *arg = argv[1];

    (void)argc;
    if (strcmp(arg, "outbound=on") == 0)
        body = json_pack("{s:b}", "outbound", 1);
    else if (strcmp(arg, "outbound=off") == 0)
        body = json_pack("{s:b}", "outbound", 0);
    else {
        fprintf(stderr, "usage: berth net:set APP outbound=on|off\n");
        return 2;
    }
    printf("Setting outbound network of %s and restarting... ", argv[0]);
    fflush(stdout);
    if (cli_app_request("PATCH", argv[0], "/net", body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("done\n");
    return 0;
}

/* ---------------------------------------------------------------- config */

int cli_config(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    const json_t *config;
    size_t width = 0;
    const char *key;
    json_t *v;
    int r = cli_app_show(argc, argv, "config APP [--json]", "/config", &doc);

    if (r || !doc)
        return r;
    config = json_object_get(doc, "config");
    json_object_foreach((json_t *)config, key, v)
        if (strlen(key) > width)
            width = strlen(key);
    printf("=== %s Config Vars\n", argv[0]);
    /* A read token sees the names only (values_hidden). */
    json_object_foreach((json_t *)config, key, v)
        printf("%s:%*s %s\n", key, (int)(width - strlen(key)), "", json_is_string(v) ? json_string_value(v)
                                                                                   : "(hidden)");
    return 0;
}

int cli_config_get(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    const char *value;

    (void)argc;
    if (cli_app_request("GET", argv[0], "/config", NULL, &doc) < 0)
        return 1;
    value = json_get_str(json_object_get(doc, "config"), argv[1]);
    if (value)
        printf("%s\n", value);
    return 0;
}

static int config_change(const char *app, json_t *body, const char *verb, bool restart)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_strbuf_ struct strbuf names = STRBUF_INIT;
    const char *key;
    json_t *v;
    json_int_t release;

    json_object_foreach(body, key, v)
        strbuf_addf(&names, "%s%s", names.len ? ", " : "", key);
    if (restart)
        printf("%s %s and restarting %s... ", verb, names.buf, app);
    else
        printf("%s %s on %s (no restart)... ", verb, names.buf, app);
    fflush(stdout);
    if (cli_app_request("PATCH", app, restart ? "/config" : "/config?restart=0", body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    release = json_integer_value(json_object_get(doc, "release"));
    if (release)
        printf("done, v%lld\n", (long long)release);
    else
        printf("done (the next release uses them)\n");
    return 0;
}

/* Takes Dokku's --no-restart out of argv (wherever it stands after APP); whether it was there. */
static bool take_no_restart(int *argc, char **argv)
{
    bool found = false;
    int out = 1;

    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--no-restart") == 0)
            found = true;
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    return found;
}

int cli_config_set(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object();
    bool no_restart;

    if (strcmp(argv[0], "--preview") == 0)
        return cli_config_preview(argc - 1, argv + 1, true);
    no_restart = take_no_restart(&argc, argv);

    if (argc < 2) {
        fprintf(stderr, "usage: berth config:set APP [--no-restart] NAME=VALUE...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strchr(argv[i], '=') || argv[i][0] == '=') {
            fprintf(stderr, "berth: '%s' is not NAME=VALUE\nusage: berth config:set APP NAME=VALUE...\n",
                    argv[i]);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        _cleanup_free_ char *key = xstrndup(argv[i], (size_t)(eq - argv[i]));

        json_object_set_new(body, key, json_string(eq + 1));
    }
    return config_change(argv[0], body, "Setting", !no_restart);
}

int cli_config_unset(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object();
    bool no_restart;

    if (strcmp(argv[0], "--preview") == 0)
        return cli_config_preview(argc - 1, argv + 1, false);
    no_restart = take_no_restart(&argc, argv);

    if (argc < 2) {
        fprintf(stderr, "usage: berth config:unset APP [--no-restart] NAME...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++)
        json_object_set_new(body, argv[i], json_null());
    return config_change(argv[0], body, "Unsetting", !no_restart);
}
