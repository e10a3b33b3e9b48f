/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/domains: an app's custom domains and router settings, as they are
 * stored in app.json and checked before they are (`berth domains:add`,
 * `berth router:set`, docs/API.md):
 *
 *   "domains": ["www.example.com", "*.example.org"]
 *   "router":  {"timeout": 120, "connect_timeout": 10, "idle_timeout": 300, "https_only": true}
 *
 * A domain name is stored normalised the way the router matches a Host:
 * lower case, no trailing dot, no port. A wildcard is only ever the whole
 * first label ("*.example.org"); for routing it covers every name below its
 * base, at any depth (the router picks the exact name, else the longest
 * wildcard), while a wildcard *certificate* covers one label only (RFC 6125),
 * hence the two coverage functions below.
 *
 * A name belongs to one app across every tenant. Names under berth's own
 * domain are the apps' default names: an app may only add names below its
 * own default name ("api.hello.<domain>", "*.hello.<domain>"). A tenant may
 * not add a name that another tenant's wildcard routes already (that would
 * take traffic away from a live app); a wildcard over names another tenant
 * already holds is fine, since an exact name always wins.
 */
#ifndef BERTH_CONTROL_DOMAINS_H
#define BERTH_CONTROL_DOMAINS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "control/model.h"

/* RFC 1035's limit on a whole name (a label's: common/dnsname.h). */
#define DOMAIN_NAME_MAX 253
/* Domains one app may hold (systemd: a cap on every user-controlled resource). */
#define DOMAINS_PER_APP_MAX 100

/* Bounds of the per-app router settings, in seconds (docs/API.md). */
#define ROUTER_TIMEOUT_MAX 3600
#define ROUTER_CONNECT_TIMEOUT_MAX 60
#define ROUTER_IDLE_TIMEOUT_MAX 3600
/* The router's defaults (Heroku's): shown when an app does not override them. */
#define ROUTER_DEFAULT_TIMEOUT 30
#define ROUTER_DEFAULT_CONNECT_TIMEOUT 5
#define ROUTER_DEFAULT_IDLE_TIMEOUT 55

/*
 * Normalises and checks a domain name: lower case, a trailing dot and a
 * ":port" dropped, then labels of 1-63 of a-z 0-9 '-' (not starting or
 * ending with '-'), at most 253 characters, at least two labels, the last
 * one not all digits (that is an IPv4 address); a leading "*." is a
 * wildcard over a base of at least two labels. *ret is malloc'ed.
 * -EINVAL with a message that says what is wrong.
 */
int domain_normalise(const char *name, char **ret, struct berth_error **err);
/* Whether a normalised name is a wildcard ("*.example.com"). */
bool domain_is_wildcard(const char *name);
/*
 * Whether the router sends requests for `name` (normalised; a wildcard
 * stands for every name below its base) to an app holding `pattern`: the
 * same name, or pattern "*.B" and name below B at any depth.
 */
bool domain_route_covers(const char *pattern, const char *name);
/*
 * Whether a certificate for `pattern` is valid for `name` (RFC 6125): the
 * same name, or pattern "*.B" and name "L.B" with one label L. A wildcard
 * name is only covered by the same wildcard.
 */
bool domain_cert_covers(const char *pattern, const char *name);

/* The app's default name, "<app>.<berth domain>" (malloc'ed). */
char *domain_default_name(const char *app, const char *berth_domain);
/* Every name the app answers to: its domains (app.json), then its default name (new reference). */
json_t *domain_app_names(const json_t *app_record, const char *app, const char *berth_domain);
/*
 * The rule for names under berth's own domain: -EINVAL unless `name` is
 * outside it or strictly below the app's default name. `name` is
 * normalised; `berth_domain` is compared case-insensitively.
 */
int domain_check_berth_domain(const char *name, const char *app, const char *berth_domain,
                              struct berth_error **err);
/*
 * Whether `app` of `tenant` may claim `name`, scanning every app's record:
 * -EEXIST with "domain 'x' is already used by another app" when another app
 * (of any tenant) holds it, or when another tenant's wildcard routes it
 * already; the message never names the other app. The caller holds the
 * records lock across this check and the write that follows.
 */
int domain_check_claim(const struct model *m, const char *app, const char *tenant, const char *name,
                       struct berth_error **err);

/* An app's router settings (seconds; 0 keeps the router's default). */
struct domain_router_settings {
    unsigned timeout;           /* to the first byte of the answer (Heroku's 30 s, H12) */
    unsigned connect_timeout;   /* to connect to the app (5 s) */
    unsigned idle_timeout;      /* rolling window once the answer has started (55 s) */
    bool https_only;            /* plain HTTP gets a redirect to https:// */
    bool maintenance;           /* the router answers 503 H80 (`berth maintenance:on`) */
};

/* Reads app.json's "router" (missing or malformed keys are the defaults). */
void domain_router_settings(const json_t *app_record, struct domain_router_settings *ret);
/*
 * Applies a PATCH body {"timeout": 120 or "2m", "https_only": true or "on",
 * "idle_timeout": null, ...} to the "router" object (null or "" resets a key).
 * -EINVAL for an unknown key or a value out of bounds.
 */
int domain_router_apply(json_t *router, const json_t *changes, struct berth_error **err);

#endif
