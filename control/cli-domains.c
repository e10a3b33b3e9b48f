/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-domains: the client commands for what the router knows of an
 * app, worded as Heroku's CLI words them: custom domains (`berth
 * domains:add hello www.example.com`), TLS certificates (`berth certs:add
 * hello server.crt server.key`, read here and sent as PEM text in JSON) and
 * router settings (`berth router:set hello timeout=120`). The listing
 * commands take --json for the API's answer as it is. Every check happens
 * in the API.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"

/* A PEM file worth sending: the API takes 64 KiB of JSON at most. */
#define CLI_PEM_MAX (48u << 10)

/* A path segment with everything but [A-Za-z0-9._~*-] percent-encoded (malloc'ed). */
static char *escape_segment(const char *s)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("._~*-", *p))
            strbuf_addch(&sb, *p);
        else
            strbuf_addf(&sb, "%%%02X", *p);
    }
    return strbuf_detach(&sb, NULL);
}

/*
 * A change, after "Adding x to app... " was printed: on success *ret_doc
 * (the caller prints "done"); on failure "failed", then the API's error.
 */
static int change_request(const char *method, const char *app, const char *sub, const json_t *body,
                          json_t **ret_doc)
{
    _cleanup_free_ char *path = xasprintf("/apps/%s%s", app, sub);
    json_t *doc = NULL;
    long status = 0;

    fflush(stdout);
    if (cli_api(method, path, body, &status, &doc) < 0) {
        printf("failed\n");
        return -1;
    }
    if (status < 200 || status > 299) {
        printf("failed\n");
        fflush(stdout);
        cli_fail(status, doc);
        json_decref(doc);
        return -1;
    }
    *ret_doc = doc;
    return 0;
}

/* "a, b, c" of a list of strings (malloc'ed). */
static char *join(const json_t *list)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    json_t *v;
    size_t i;

    json_array_foreach(list, i, v)
        strbuf_addf(&sb, "%s%s", i ? ", " : "", json_string_value(v));
    return strbuf_detach(&sb, NULL);
}

/* ---------------------------------------------------------------- domains */

int cli_domains(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *missing = NULL;
    const json_t *uncovered;
    int as_json = cli_json_flag(argc, argv, "domains APP [--json]");
    json_t *v;
    size_t i;

    if (as_json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], "/domains", NULL, &doc) < 0)
        return 1;
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    printf("=== %s Domains\n%s (default)\n", argv[0], json_get_str(doc, "default"));
    json_array_foreach(json_object_get(doc, "domains"), i, v)
        printf("%s\n", json_string_value(v));
    uncovered = json_object_get(doc, "without_cert");
    if (json_array_size(uncovered) > 0) {
        missing = join(uncovered);
        fflush(stdout);
        fprintf(stderr, "Warning: no certificate of %s serves %s: HTTPS answers %s with berth's "
                "self-signed default (add one with 'berth certs:add %s CERT_FILE KEY_FILE')\n", argv[0],
                missing, json_array_size(uncovered) > 1 ? "them" : "it", argv[0]);
    }
    return 0;
}

int cli_domains_add(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_pack("{s:s}", "name", argv[1]), *doc = NULL;
    const char *stored;

    (void)argc;
    printf("Adding %s to %s... ", argv[1], argv[0]);
    if (change_request("POST", argv[0], "/domains", body, &doc) < 0)
        return 1;
    stored = json_get_str(doc, "name");
    if (stored && strcmp(stored, argv[1]) != 0)
        printf("done (as %s)\n", stored);
    else
        printf("done\n");
    return 0;
}

/* DELETE /apps/<app>/<collection>/<item>, said as "Removing <label><item> from <app>... done". */
static int remove_item(const char *app, const char *collection, const char *label, const char *item)
{
    _cleanup_free_ char *escaped = escape_segment(item);
    _cleanup_free_ char *sub = xasprintf("/%s/%s", collection, escaped);
    _cleanup_json_ json_t *doc = NULL;

    printf("Removing %s%s from %s... ", label, item, app);
    if (change_request("DELETE", app, sub, NULL, &doc) < 0)
        return 1;
    printf("done\n");
    return 0;
}

int cli_domains_remove(int argc, char **argv)
{
    (void)argc;
    return remove_item(argv[0], "domains", "", argv[1]);
}

/* ---------------------------------------------------------------- certificates */

/* "2027-01-01T00:00:00Z" -> "2027-01-01 00:00 UTC" (malloc'ed). */
static char *show_date(const char *iso)
{
    if (!iso || strlen(iso) < 16)
        return xstrdup(iso ? iso : "?");
    return xasprintf("%.10s %.5s UTC", iso, iso + 11);
}

static void print_cert_details(const char *app, const json_t *cert)
{
    _cleanup_free_ char *names = join(json_object_get(cert, "names"));
    _cleanup_free_ char *serves = join(json_object_get(cert, "domains"));
    _cleanup_free_ char *expires = show_date(json_get_str(cert, "not_after"));
    _cleanup_free_ char *starts = show_date(json_get_str(cert, "not_before"));
    bool self_signed = json_is_true(json_object_get(cert, "self_signed"));
    json_t *v;
    size_t i;

    printf("Certificate details:\n");
    printf("Id:             %s\n", json_get_str(cert, "id"));
    printf("Common Name(s): %s\n", names);
    printf("Starts At:      %s\n", starts);
    printf("Expires At:     %s\n", expires);
    printf("Issuer:         %s\n", json_get_str(cert, "issuer") ? json_get_str(cert, "issuer") : "");
    printf("Trusted:        %s\n", json_is_true(json_object_get(cert, "trusted")) ? "true"
                                   : self_signed ? "false (self-signed)" : "false");
    printf("Serves:         %s\n", serves);
    fflush(stdout);
    json_array_foreach(json_object_get(cert, "unused"), i, v)
        fprintf(stderr, "Warning: %s is not a domain of %s: add it with 'berth domains:add %s %s' to serve "
                "it with this certificate\n", json_string_value(v), app, app, json_string_value(v));
}

/* The certificates as a table: id, names, expiry, trust, the domains each serves. */
static void print_cert_table(const json_t *certs)
{
    static const char *const head[] = { "Id", "Common Name(s)", "Expires", "Trusted", "Domains" };
    size_t n = json_array_size(certs), width[5];
    char ***cells = xcalloc(n, sizeof(*cells));
    json_t *c;
    size_t i;

    for (int k = 0; k < 5; k++)
        width[k] = strlen(head[k]);
    json_array_foreach(certs, i, c) {
        _cleanup_free_ char *date = show_date(json_get_str(c, "not_after"));

        cells[i] = xcalloc(5, sizeof(char *));
        cells[i][0] = xstrdup(json_get_str(c, "id") ? json_get_str(c, "id") : "?");
        cells[i][1] = join(json_object_get(c, "names"));
        cells[i][2] = xasprintf("%s%s", date, json_is_true(json_object_get(c, "expired")) ? " (expired)" : "");
        cells[i][3] = xstrdup(json_is_true(json_object_get(c, "trusted")) ? "true" : "false");
        cells[i][4] = json_array_size(json_object_get(c, "domains")) ? join(json_object_get(c, "domains"))
                                                                       : xstrdup("(none)");
        for (int k = 0; k < 5; k++)
            if (strlen(cells[i][k]) > width[k])
                width[k] = strlen(cells[i][k]);
    }
    for (int k = 0; k < 5; k++)
        printf("%-*s%s", k < 4 ? (int)width[k] : 0, head[k], k < 4 ? "  " : "\n");
    for (int k = 0; k < 5; k++) {
        for (size_t d = 0; d < width[k]; d++)
            putchar('-');
        printf("%s", k < 4 ? "  " : "\n");
    }
    for (i = 0; i < n; i++) {
        for (int k = 0; k < 5; k++) {
            printf("%-*s%s", k < 4 ? (int)width[k] : 0, cells[i][k], k < 4 ? "  " : "\n");
            free(cells[i][k]);
        }
        free(cells[i]);
    }
    free(cells);
}

int cli_certs(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    const json_t *certs;
    int as_json = cli_json_flag(argc, argv, "certs APP [--json]");

    if (as_json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], "/certs", NULL, &doc) < 0)
        return 1;
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    certs = json_object_get(doc, "certs");
    if (json_array_size(certs) == 0) {
        printf("%s has no SSL certificates.\nUse berth certs:add %s CERT_FILE KEY_FILE to add one.\n", argv[0],
               argv[0]);
        return 0;
    }
    printf("=== %s Certificates\n", argv[0]);
    print_cert_table(certs);
    return 0;
}

static int read_pem(const char *path, struct strbuf *out)
{
    _cleanup_error_ struct berth_error *err = NULL;

    if (read_file(path, out, CLI_PEM_MAX, &err) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg(&err));
        return -1;
    }
    return 0;
}

int cli_certs_add(int argc, char **argv)
{
    _cleanup_strbuf_ struct strbuf cert = STRBUF_INIT, key = STRBUF_INIT;
    _cleanup_json_ json_t *body = NULL, *doc = NULL;

    (void)argc;
    if (read_pem(argv[1], &cert) < 0 || read_pem(argv[2], &key) < 0)
        return 1;
    body = json_pack("{s:s%, s:s%}", "cert", cert.buf, cert.len, "key", key.buf, key.len);
    explicit_bzero(key.buf, key.len);
    if (!body) {
        fprintf(stderr, "berth: '%s' or '%s' is not text (PEM files are)\n", argv[1], argv[2]);
        return 1;
    }
    printf("Adding SSL certificate to %s... ", argv[0]);
    if (change_request("POST", argv[0], "/certs", body, &doc) < 0)
        return 1;
    printf("done\n");
    print_cert_details(argv[0], json_object_get(doc, "cert"));
    return 0;
}

int cli_certs_remove(int argc, char **argv)
{
    (void)argc;
    return remove_item(argv[0], "certs", "SSL certificate ", argv[1]);
}

/* ---------------------------------------------------------------- router settings */

static void print_router(const char *app, const json_t *doc)
{
    static const char *const keys[] = { "timeout", "connect_timeout", "idle_timeout" };
    const json_t *router = json_object_get(doc, "router"), *defaults = json_object_get(doc, "defaults");

    printf("=== %s Router settings\n", app);
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        const json_t *v = json_object_get(router, keys[i]);
        int pad = (int)(strlen("connect_timeout") - strlen(keys[i]));

        if (json_is_integer(v))
            printf("%s:%*s %llds\n", keys[i], pad, "", (long long)json_integer_value(v));
        else
            printf("%s:%*s %llds (default)\n", keys[i], pad, "",
                   (long long)json_integer_value(json_object_get(defaults, keys[i])));
    }
    printf("https_only:      %s\n", json_is_true(json_object_get(router, "https_only")) ? "on" : "off");
    printf("maintenance:     %s\n", json_is_true(json_object_get(router, "maintenance")) ? "on" : "off");
    if (!json_is_true(json_object_get(doc, "https")))
        printf("(this server has no HTTPS listener)\n");
}

int cli_router(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int as_json = cli_json_flag(argc, argv, "router APP [--json]");

    if (as_json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], "/router", NULL, &doc) < 0)
        return 1;
    if (as_json)
        cli_print_json(doc);
    else
        print_router(argv[0], doc);
    return 0;
}

/* `berth maintenance APP`: "on" or "off", as Heroku's CLI says it. */
int cli_maintenance(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int r = cli_app_show(argc, argv, "maintenance APP [--json]", "/router", &doc);

    if (r || !doc)
        return r;
    printf("%s\n", json_is_true(json_object_get(json_object_get(doc, "router"), "maintenance")) ? "on" : "off");
    return 0;
}

static int maintenance_switch(const char *app, bool on)
{
    _cleanup_json_ json_t *body = json_pack("{s:b}", "maintenance", on);
    _cleanup_free_ char *doing = xasprintf("%s maintenance mode for %s", on ? "Enabling" : "Disabling", app);

    return cli_app_switch(app, "/router", body, doing);
}

int cli_maintenance_on(int argc, char **argv)
{
    (void)argc;
    return maintenance_switch(argv[0], true);
}

int cli_maintenance_off(int argc, char **argv)
{
    (void)argc;
    return maintenance_switch(argv[0], false);
}

int cli_router_set(int argc, char **argv)
{
    static const char *const usage =
        "router:set APP timeout=SECONDS|connect_timeout=SECONDS|idle_timeout=SECONDS|https_only=on|off|"
        "maintenance=on|off...";
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    _cleanup_strbuf_ struct strbuf keys = STRBUF_INIT;
    const char *key;
    json_t *v;

    if (cli_add_pairs(body, argc - 1, argv + 1, usage) < 0)
        return 2;
    json_object_foreach(body, key, v)
        strbuf_addf(&keys, "%s%s", keys.len ? ", " : "", key);
    printf("Setting %s on %s... ", keys.buf, argv[0]);
    if (change_request("PATCH", argv[0], "/router", body, &doc) < 0)
        return 1;
    printf("done\n");
    print_router(argv[0], doc);
    return 0;
}
