/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-quota: the client commands for quotas (docs/API.md, Quotas):
 * `berth tenants:limits NAME [--memory 2G] [--cpus 1] ...` (the operator
 * sets, any tenant reads its own), `berth resource APP` and
 * `berth resource:limit APP [--type web] --memory 256M --cpus 0.5 --pids 200`.
 * Malformed values are usage errors (exit 2); the API checks the rest
 * (bounds, the tenant's quota).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"
#include "control/formation.h"
#include "control/units.h"
#include "common/banned.h"

static int flag_error(const char *arg, const char *usage)
{
    fprintf(stderr, "berth: unexpected argument '%s'\nusage: berth %s\n", arg, usage);
    return -1;
}

/* Whether VALUE is well formed for flag `name` (its bounds are the API's to check). */
static bool value_ok(const char *name, const char *value)
{
    uint64_t n;

    if (strcmp(value, "default") == 0)
        return strcmp(name, "type") != 0;
    if (strcmp(name, "memory") == 0)
        return units_parse_size(value, &n);
    if (strcmp(name, "cpus") == 0)
        return units_parse_cpus(value, &n);
    if (strcmp(name, "type") == 0)
        return formation_type_valid(value);
    if (!*value || strlen(value) > 9)
        return false;
    for (const char *p = value; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return strtoul(value, NULL, 10) > 0;
}

/*
 * "--name VALUE" or "--name=VALUE" pairs after the first argument into
 * body[name] (VALUE "default": null), for the names in `allowed`; "--json"
 * sets *ret_json when ret_json is not NULL. -1 (usage said) for anything else.
 */
static int parse_flags(int argc, char **argv, const char *const *allowed, json_t *body, bool *ret_json,
                       const char *usage)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '='), *value;
        _cleanup_free_ char *name = NULL;
        bool known = false;

        if (ret_json && strcmp(arg, "--json") == 0) {
            *ret_json = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return flag_error(arg, usage);
        name = eq ? xstrndup(arg + 2, (size_t)(eq - arg - 2)) : xstrdup(arg + 2);
        for (const char *const *a = allowed; *a; a++)
            known |= strcmp(*a, name) == 0;
        if (!known || (!eq && i + 1 >= argc))
            return flag_error(arg, usage);
        value = eq ? eq + 1 : argv[++i];
        if (!value_ok(name, value)) {
            fprintf(stderr, "berth: --%s '%s' is not %s\nusage: berth %s\n", name, value,
                    strcmp(name, "memory") == 0 ? "a size such as 512M or 2G" :
                    strcmp(name, "cpus") == 0 ? "a number of CPUs such as 0.5 or 2" :
                    strcmp(name, "type") == 0 ? "a process type name such as web" : "a whole number above 0",
                    usage);
            return -1;
        }
        json_object_set_new(body, name, strcmp(value, "default") == 0 ? json_null() : json_string(value));
    }
    return 0;
}

/* "2G", "0.5", "2000"; "none" for no limit. */
static void print_value(const char *label, const json_t *v, bool size, bool set, const char *extra)
{
    char buf[32] = "none";

    if (json_is_integer(v) && size)
        units_format_size((uint64_t)json_integer_value(v), buf);
    else if (json_is_integer(v))
        (void)snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
    else if (json_is_number(v))
        units_format_cpus((uint64_t)(json_number_value(v) * 1000 + 0.5), buf);
    printf("%-11s %s%s%s\n", label, buf, set ? "" : " (default)", extra ? extra : "");
}

static bool is_default(const json_t *defaults, const char *key)
{
    json_t *v;
    size_t i;

    json_array_foreach(defaults, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), key) == 0)
            return true;
    return false;
}

static void print_tenant_limits(const json_t *doc)
{
    const json_t *limits = json_object_get(doc, "limits"), *defaults = json_object_get(doc, "defaults");
    const json_t *usage = json_object_get(doc, "usage");
    char apps[48], inst[48];   /* instances: slots held, as the limit counts them (not all running) */

    (void)snprintf(apps, sizeof(apps), " (%lld used)", (long long)json_integer_value(json_object_get(usage, "apps")));
    (void)snprintf(inst, sizeof(inst), " (%lld in use)",
                   (long long)json_integer_value(json_object_get(usage, "instances")));
    printf("=== %s limits%s\n", json_get_str(doc, "tenant"),
           json_is_false(json_object_get(doc, "enforced")) ? " (NOT enforced: berth serve --allow-no-limits)" : "");
    print_value("Memory:", json_object_get(limits, "memory"), true, !is_default(defaults, "memory"), NULL);
    print_value("CPUs:", json_object_get(limits, "cpus"), false, !is_default(defaults, "cpus"), NULL);
    print_value("Processes:", json_object_get(limits, "pids"), false, !is_default(defaults, "pids"), NULL);
    print_value("Apps:", json_object_get(limits, "apps"), false, !is_default(defaults, "apps"), apps);
    print_value("Instances:", json_object_get(limits, "instances"), false, !is_default(defaults, "instances"), inst);
}

int cli_tenants_limits(int argc, char **argv)
{
    static const char *const allowed[] = { "memory", "cpus", "pids", "apps", "instances", NULL };
    static const char usage[] = "tenants:limits NAME [--memory SIZE] [--cpus N] [--pids N] [--apps N] "
                                "[--instances N] [--json]";
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    _cleanup_free_ char *path = xasprintf("/tenants/%s/limits", argv[0]);
    bool json = false;
    long status = 0;

    if (parse_flags(argc, argv, allowed, body, &json, usage) < 0)
        return 2;
    if (cli_api(json_object_size(body) ? "PATCH" : "GET", path, json_object_size(body) ? body : NULL, &status,
                &doc) < 0)
        return 1;
    if (status != 200)
        return cli_fail(status, doc);
    if (json)
        cli_print_json(doc);
    else
        print_tenant_limits(doc);
    return 0;
}

static void print_resources(const char *app, const json_t *doc)
{
    const char *type;
    json_t *r;

    printf("=== %s resources\n%-16s %-8s %-6s %s\n", app, "Type", "Memory", "CPUs", "Processes");
    json_object_foreach(json_object_get(doc, "resources"), type, r) {
        char mem[32] = "none", cpus[32] = "none", pids[32] = "none";
        const json_t *v;

        if (json_is_integer(v = json_object_get(r, "memory")))
            units_format_size((uint64_t)json_integer_value(v), mem);
        if (json_is_number(v = json_object_get(r, "cpus")))
            units_format_cpus((uint64_t)(json_number_value(v) * 1000 + 0.5), cpus);
        if (json_is_integer(v = json_object_get(r, "pids")))
            (void)snprintf(pids, sizeof(pids), "%lld", (long long)json_integer_value(v));
        printf("%-16s %-8s %-6s %s\n", type, mem, cpus, pids);
    }
}

int cli_resource(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int json = cli_json_flag(argc, argv, "resource APP [--json]");

    if (json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], "/resources", NULL, &doc) < 0)
        return 1;
    if (json)
        cli_print_json(doc);
    else
        print_resources(argv[0], doc);
    return 0;
}

int cli_resource_limit(int argc, char **argv)
{
    static const char *const allowed[] = { "type", "memory", "cpus", "pids", NULL };
    static const char usage[] = "resource:limit APP [--type TYPE] [--memory SIZE] [--cpus N] [--pids N] [--json]";
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    const char *type;
    bool json = false;

    if (parse_flags(argc, argv, allowed, body, &json, usage) < 0)
        return 2;
    type = json_get_str(body, "type");
    if (json_object_size(body) == (type ? 1u : 0u)) {
        fprintf(stderr, "usage: berth %s\n", usage);
        return 2;
    }
    if (json) {
        if (cli_app_request("PATCH", argv[0], "/resources", body, &doc) < 0)
            return 1;
        cli_print_json(doc);
        return 0;
    }
    printf("Setting the %s resources of %s... ", type ? type : "web", argv[0]);
    fflush(stdout);
    if (cli_app_request("PATCH", argv[0], "/resources", body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("done\n");
    print_resources(argv[0], doc);
    return 0;
}
