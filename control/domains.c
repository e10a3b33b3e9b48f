/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/domains: checking and normalising custom domain names, the rules
 * that keep a name with one app across every tenant, and the per-app router
 * settings (see domains.h). Pure functions on strings and JSON, apart from
 * domain_check_claim(), which reads every app's record.
 */
#include "control/domains.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/dnsname.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/units.h"
#include "common/banned.h"

bool domain_is_wildcard(const char *name)
{
    return name[0] == '*' && name[1] == '.';
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Drops ":port" (digits only, 1-65535) in place; false when what follows the colon is no port. */
static bool strip_port(char *s)
{
    char *colon = strrchr(s, ':');
    unsigned long port = 0;

    if (!colon)
        return true;
    if (!colon[1] || strlen(colon + 1) > 5)
        return false;
    for (const char *p = colon + 1; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return false;
    *colon = '\0';
    return true;
}

/* The labels of `base` (no wildcard left in it); NULL when fine, else what is wrong. */
static const char *check_labels(const char *base, size_t *ret_labels)
{
    const char *p = base, *why;
    size_t labels = 0;
    bool digits_only = true;

    for (;;) {
        size_t len = strcspn(p, ".");

        if (memchr(p, '*', len))
            return "a wildcard is only allowed as the whole first label, as in '*.example.com'";
        if ((why = dnsname_label_problem(p, len)))
            return why;
        digits_only = strspn(p, "0123456789") >= len;
        labels++;
        if (!p[len])
            break;
        p += len + 1;
    }
    if (digits_only)
        return "an IP address is not a domain name";
    *ret_labels = labels;
    return NULL;
}

int domain_normalise(const char *name, char **ret, struct berth_error **err)
{
    _cleanup_free_ char *s = NULL;
    const char *why = NULL, *base;
    size_t len, labels = 0;

    if (!name || !*name)
        return berth_error_plain(err, EINVAL, "a domain name may not be empty");
    /* Room for a trailing dot and a port; anything longer is refused before copying. */
    if (strlen(name) > DOMAIN_NAME_MAX + 7)
        return berth_error_plain(err, EINVAL, "invalid domain '%.80s...': longer than %d characters", name,
                                 DOMAIN_NAME_MAX);
    s = xstrdup(name);
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!strip_port(s))
        return berth_error_plain(err, EINVAL, "invalid domain '%s': what follows ':' is not a port", name);
    len = strlen(s);
    if (len > 1 && s[len - 1] == '.')
        s[--len] = '\0';
    if (len > DOMAIN_NAME_MAX)
        return berth_error_plain(err, EINVAL, "invalid domain '%.80s...': longer than %d characters", name,
                                 DOMAIN_NAME_MAX);
    base = domain_is_wildcard(s) ? s + 2 : s;
    why = check_labels(base, &labels);
    if (!why && labels < 2)
        why = base == s ? "it needs at least two labels, as in 'example.com'"
                        : "a wildcard needs a base of at least two labels, as in '*.example.com'";
    if (why)
        return berth_error_plain(err, EINVAL, "invalid domain '%s': %s", name, why);
    *ret = TAKE_PTR(s);
    return 0;
}

bool domain_route_covers(const char *pattern, const char *name)
{
    const char *target;

    if (strcmp(pattern, name) == 0)
        return true;
    if (!domain_is_wildcard(pattern))
        return false;
    /* A wildcard name stands for the names below its base. */
    target = domain_is_wildcard(name) ? name + 2 : name;
    return strlen(target) > strlen(pattern + 1) && ends_with(target, pattern + 1);
}

bool domain_cert_covers(const char *pattern, const char *name)
{
    size_t n, k;

    if (strcmp(pattern, name) == 0)
        return true;
    if (!domain_is_wildcard(pattern) || domain_is_wildcard(name) || !ends_with(name, pattern + 1))
        return false;
    n = strlen(name);
    k = strlen(pattern + 1);
    /* Exactly one label before ".example.com". */
    return n > k && !memchr(name, '.', n - k);
}

/* berth's domain as names are compared: lower case, no trailing dot (malloc'ed). */
static char *berth_domain_norm(const char *berth_domain)
{
    char *d = xstrdup(berth_domain);
    size_t len = strlen(d);

    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (len > 1 && d[len - 1] == '.')
        d[len - 1] = '\0';
    return d;
}

char *domain_default_name(const char *app, const char *berth_domain)
{
    _cleanup_free_ char *d = berth_domain_norm(berth_domain);

    return xasprintf("%s.%s", app, d);
}

json_t *domain_app_names(const json_t *app_record, const char *app, const char *berth_domain)
{
    _cleanup_free_ char *def = domain_default_name(app, berth_domain);
    json_t *names = json_array(), *d;
    size_t i;

    json_array_foreach(json_object_get(app_record, "domains"), i, d)
        if (json_is_string(d))
            json_array_append(names, d);
    json_array_append_new(names, json_string(def));
    return names;
}

int domain_check_berth_domain(const char *name, const char *app, const char *berth_domain,
                              struct berth_error **err)
{
    _cleanup_free_ char *d = berth_domain_norm(berth_domain);
    _cleanup_free_ char *own = xasprintf("%s.%s", app, d);
    _cleanup_free_ char *dot_d = xasprintf(".%s", d);
    _cleanup_free_ char *dot_own = xasprintf(".%s", own);
    bool wildcard = domain_is_wildcard(name);
    const char *target = wildcard ? name + 2 : name;

    if (strcmp(target, d) != 0 && !ends_with(target, dot_d))
        return 0;
    if (strcmp(name, d) == 0)
        return berth_error_plain(err, EINVAL, "'%s' is berth's own domain", name);
    if (strcmp(name, own) == 0)
        return berth_error_plain(err, EINVAL, "'%s' is already the default name of '%s'", name, app);
    if ((wildcard && strcmp(target, own) == 0) || ends_with(target, dot_own))
        return 0;
    return berth_error_plain(err, EINVAL, "domain '%s' is under berth's domain '%s', whose names belong "
                             "to the apps of those names: '%s' may only add names below '%s'",
                             name, d, app, own);
}

/* Whether one domain another app holds keeps `name` from `tenant`'s app. */
static bool blocks_claim(const char *held, const char *held_tenant, const char *name, const char *tenant)
{
    if (strcmp(held, name) == 0)
        return true;
    /* Another tenant's wildcard already routes the name: claiming it would take its traffic. */
    return domain_is_wildcard(held) && (!held_tenant || strcmp(held_tenant, tenant) != 0) &&
           domain_route_covers(held, name);
}

int domain_check_claim(const struct model *m, const char *app, const char *tenant, const char *name,
                       struct berth_error **err)
{
    _cleanup_json_ json_t *apps = NULL;
    json_t *other;
    size_t i;
    int r;

    r = model_app_list(m, &apps, err);
    if (r < 0)
        return r;
    json_array_foreach(apps, i, other) {
        _cleanup_json_ json_t *record = NULL;
        const char *held_tenant;
        json_t *d;
        size_t k;

        if (strcmp(json_string_value(other), app) == 0)
            continue;
        if (model_app_load(m, json_string_value(other), &record, NULL) < 0)
            continue;
        held_tenant = json_get_str(record, "tenant");
        json_array_foreach(json_object_get(record, "domains"), k, d) {
            const char *held = json_string_value(d);

            if (!held || !blocks_claim(held, held_tenant, name, tenant))
                continue;
            if (strcmp(held, name) == 0)
                return berth_error_plain(err, EEXIST, "domain '%s' is already used by another app", name);
            return berth_error_plain(err, EEXIST, "domain '%s' is already used by another app (through "
                                     "'%s')", name, held);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- router settings */

static const struct {
    const char *key;
    unsigned max;
} router_timeouts[] = {
    { "timeout", ROUTER_TIMEOUT_MAX },
    { "connect_timeout", ROUTER_CONNECT_TIMEOUT_MAX },
    { "idle_timeout", ROUTER_IDLE_TIMEOUT_MAX },
};

static unsigned stored_seconds(const json_t *router, const char *key, unsigned max)
{
    const json_t *v = json_object_get(router, key);
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;

    return n >= 1 && n <= (json_int_t)max ? (unsigned)n : 0;
}

void domain_router_settings(const json_t *app_record, struct domain_router_settings *ret)
{
    const json_t *router = json_object_get(app_record, "router");

    ret->timeout = stored_seconds(router, "timeout", ROUTER_TIMEOUT_MAX);
    ret->connect_timeout = stored_seconds(router, "connect_timeout", ROUTER_CONNECT_TIMEOUT_MAX);
    ret->idle_timeout = stored_seconds(router, "idle_timeout", ROUTER_IDLE_TIMEOUT_MAX);
    ret->https_only = json_is_true(json_object_get(router, "https_only"));
    ret->maintenance = json_is_true(json_object_get(router, "maintenance"));
}

/* A switch setting (https_only, maintenance): a boolean, or on/off, true/false, yes/no, 1/0. */
static int apply_switch(json_t *router, const char *key, const json_t *v, struct berth_error **err)
{
    static const char *const on[] = { "on", "true", "yes", "1" }, *const off[] = { "off", "false", "no", "0" };

    if (json_is_boolean(v)) {
        json_object_set(router, key, (json_t *)v);
        return 0;
    }
    for (size_t i = 0; json_is_string(v) && i < sizeof(on) / sizeof(*on); i++) {
        if (strcasecmp(json_string_value(v), on[i]) == 0 || strcasecmp(json_string_value(v), off[i]) == 0) {
            json_object_set_new(router, key, json_boolean(strcasecmp(json_string_value(v), on[i]) == 0));
            return 0;
        }
    }
    return berth_error_plain(err, EINVAL, "%s must be on or off", key);
}

static bool is_switch(const char *key)
{
    return strcmp(key, "https_only") == 0 || strcmp(key, "maintenance") == 0;
}

static int apply_timeout(json_t *router, const char *key, unsigned max, const json_t *v,
                         struct berth_error **err)
{
    unsigned secs = 0;

    if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= (json_int_t)max)
        secs = (unsigned)json_integer_value(v);
    else if (json_is_string(v) && units_parse_duration(json_string_value(v), &secs) && secs > max)
        secs = 0;
    if (secs == 0)
        return berth_error_plain(err, EINVAL, "%s must be a number of seconds from 1 to %u", key, max);
    json_object_set_new(router, key, json_integer(secs));
    return 0;
}

int domain_router_apply(json_t *router, const json_t *changes, struct berth_error **err)
{
    const char *key;
    json_t *v;
    int r;

    json_object_foreach((json_t *)changes, key, v) {
        size_t i = 0;

        while (i < sizeof(router_timeouts) / sizeof(*router_timeouts) && strcmp(key, router_timeouts[i].key))
            i++;
        if (i == sizeof(router_timeouts) / sizeof(*router_timeouts) && !is_switch(key))
            return berth_error_plain(err, EINVAL, "unknown router setting '%.40s' (timeout, connect_timeout, "
                                     "idle_timeout, https_only, maintenance)", key);
        if (json_is_null(v) || (json_is_string(v) && !*json_string_value(v))) {
            json_object_del(router, key);
            continue;
        }
        if (is_switch(key))
            r = apply_switch(router, key, v, err);
        else
            r = apply_timeout(router, key, router_timeouts[i].max, v, err);
        if (r < 0)
            return r;
    }
    return 0;
}
