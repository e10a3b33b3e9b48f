/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-tenants: `berth tenants:create|list|destroy`, `berth tokens`,
 * `tokens:create|revoke|rotate` and `berth apps:destroy`, over /tenants,
 * /tokens and DELETE /apps/<app> (api-tenants.c). A new token is printed
 * once, alone on its last line, so that a script can take it with `tail
 * -1`; berth keeps only its hash. Destroying needs `--confirm NAME`
 * repeating the name, as Heroku's CLI asks: without it the command is a
 * usage error (2), with another name an error (1), and nothing is removed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"

/*
 * A listing with one optional argument, "--json": GET `path` into *ret_doc
 * and, with --json, print it as it is. -1 when the caller prints the
 * listing itself; otherwise the exit code (0 printed, 1 failed, 2 usage).
 */
static int get_listing(int argc, char **argv, const char *usage, const char *path, json_t **ret_doc)
{
    bool as_json = argc == 1 && strcmp(argv[0], "--json") == 0;

    if (argc > 0 && !as_json) {
        fprintf(stderr, "usage: berth %s\n", usage);
        return 2;
    }
    if (cli_request("GET", path, NULL, ret_doc) < 0)
        return 1;
    if (!as_json)
        return -1;
    cli_print_json(*ret_doc);
    return 0;
}

/* "Doing... " then "done" or "failed" (the API's error on stderr); *ret_doc on success. */
static int say_request(const char *doing, const char *method, const char *path, const json_t *body, json_t **ret_doc)
{
    printf("%s... ", doing);
    fflush(stdout);
    if (cli_request(method, path, body, ret_doc) < 0) {
        printf("failed\n");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- destroying */

/*
 * `NAME --confirm NAME`, then DELETE /<collection>/NAME?confirm=NAME said
 * as "Destroying <what> NAME (<details>)... ". 0 with *ret_doc when it was
 * destroyed; otherwise the exit code: 2 (usage) without --confirm, 1 when
 * it names something else or the API fails (said).
 */
static int confirmed_destroy(int argc, char **argv, const char *what, const char *usage, const char *collection,
                             const char *details, json_t **ret_doc)
{
    _cleanup_free_ char *path = NULL, *doing = NULL;

    if (argc != 3 || strcmp(argv[1], "--confirm") != 0) {
        /* The usage starts with the command's name: "apps:destroy APP --confirm APP". */
        fprintf(stderr, " !    This destroys %s '%s' and everything in it, for good.\n"
                " !    To proceed, repeat its name: berth %.*s %s --confirm %s\nusage: berth %s\n", what, argv[0],
                (int)strcspn(usage, " "), usage, argv[0], argv[0], usage);
        return 2;
    }
    if (strcmp(argv[2], argv[0]) != 0) {
        fprintf(stderr, "berth: --confirm '%s' does not match %s '%s'; nothing was removed\n", argv[2], what,
                argv[0]);
        return 1;
    }
    /* App and tenant names are DNS labels: nothing in one needs escaping in a URL. */
    path = xasprintf("/%s/%s?confirm=%s", collection, argv[0], argv[0]);
    doing = xasprintf("Destroying %s %s (%s)", what, argv[0], details);
    return say_request(doing, "DELETE", path, NULL, ret_doc) < 0 ? 1 : 0;
}

int cli_apps_destroy(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = confirmed_destroy(argc, argv, "app", "apps:destroy APP --confirm APP", "apps",
                              "its processes, repository, releases, config, logs and slugs", &doc);

    if (r == 0)
        printf("done\n");
    return r;
}

/* ---------------------------------------------------------------- tenants */

int cli_tenants_create(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_pack("{s:s}", "name", argv[0]), *doc = NULL;
    _cleanup_free_ char *doing = xasprintf("Creating tenant %s", argv[0]);

    (void)argc;
    if (say_request(doing, "POST", "/tenants", body, &doc) < 0)
        return 1;
    printf("done, id slice %lld\n", (long long)json_integer_value(json_object_get(doc, "slice")));
    printf("Its API token, shown this once (berth keeps only its hash; use it as BERTH_TOKEN, or as the git "
           "password):\n%s\n", json_get_str(doc, "token"));
    return 0;
}

int cli_tenants_list(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = get_listing(argc, argv, "tenants:list [--json]", "/tenants", &doc);
    json_t *t;
    size_t i;

    if (r >= 0)
        return r;
    printf("=== Tenants\n");
    json_array_foreach(json_object_get(doc, "tenants"), i, t) {
        const char *created = json_get_str(t, "created_at");

        printf("%-30s slice %-4lld %3zu apps  %s\n", json_get_str(t, "name"),
               (long long)json_integer_value(json_object_get(t, "slice")), json_array_size(json_object_get(t, "apps")),
               created ? created : "");
    }
    return 0;
}

int cli_tenants_destroy(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = confirmed_destroy(argc, argv, "tenant", "tenants:destroy NAME --confirm NAME", "tenants",
                              "its apps, tokens and slugs", &doc);

    if (r == 0)
        printf("done, %zu apps destroyed\n", json_array_size(json_object_get(doc, "apps")));
    return r;
}

/* ---------------------------------------------------------------- tokens */

int cli_tokens(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = get_listing(argc, argv, "tokens [--json]", "/tokens", &doc);
    json_t *t;
    size_t i;

    if (r >= 0)
        return r;
    printf("=== Tokens\n");
    if (json_array_size(json_object_get(doc, "tokens")) == 0)
        printf("(no scoped tokens: 'berth tokens:create --role deploy|read [--app APP]')\n");
    json_array_foreach(json_object_get(doc, "tokens"), i, t) {
        const char *app = json_get_str(t, "app"), *created = json_get_str(t, "created_at");

        printf("%-14s %-7s %-30s %s\n", json_get_str(t, "id"), json_get_str(t, "role"), app ? app : "(every app)",
               created ? created : "");
    }
    return 0;
}

static const char tokens_create_usage[] = "tokens:create [--app APP] --role deploy|read";

int cli_tokens_create(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    _cleanup_free_ char *doing = NULL;
    const char *app = NULL, *role = NULL;

    bool bad = false;

    for (int i = 0; i < argc && !bad; i++) {
        if (strcmp(argv[i], "--app") == 0 && i + 1 < argc && !app)
            app = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc && !role)
            role = argv[++i];
        else
            bad = true;
    }
    if (bad || !role || (strcmp(role, "deploy") != 0 && strcmp(role, "read") != 0)) {
        fprintf(stderr, "usage: berth %s\n", tokens_create_usage);
        return 2;
    }
    json_object_set_new(body, "role", json_string(role));
    json_object_set_new(body, "app", app ? json_string(app) : json_null());
    doing = app ? xasprintf("Creating a %s token for %s", role, app) : xasprintf("Creating a %s token", role);
    if (say_request(doing, "POST", "/tokens", body, &doc) < 0)
        return 1;
    printf("done, id %s\nThe token, shown this once (revoke it with 'berth tokens:revoke %s'):\n%s\n",
           json_get_str(doc, "id"), json_get_str(doc, "id"), json_get_str(doc, "token"));
    return 0;
}

int cli_tokens_revoke(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *path = NULL, *doing = xasprintf("Revoking token %s", argv[0]);

    (void)argc;
    /* An id is hex; anything else cannot name a token, and must not reach the URL as it is. */
    if (!*argv[0] || strspn(argv[0], "0123456789abcdef") != strlen(argv[0]) || strlen(argv[0]) > 64) {
        fprintf(stderr, "berth: '%s' is not a token id (see 'berth tokens')\n", argv[0]);
        return 1;
    }
    path = xasprintf("/tokens/%s", argv[0]);
    if (say_request(doing, "DELETE", path, NULL, &doc) < 0)
        return 1;
    printf("done\n");
    return 0;
}

int cli_tokens_rotate(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;

    (void)argc;
    (void)argv;
    if (say_request("Rotating the tenant's token", "POST", "/tokens/rotate", NULL, &doc) < 0)
        return 1;
    printf("done\nThe new token of tenant %s, shown this once (the old one no longer works):\n%s\n",
           json_get_str(doc, "tenant"), json_get_str(doc, "token"));
    return 0;
}
