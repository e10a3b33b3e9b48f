/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for control/domains.c: normalising and checking domain names,
 * wildcard coverage for routing and for certificates, the rule for names
 * under berth's own domain, the one-app-per-name scan across tenants (on a
 * temporary home), and the per-app router settings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "control/domains.h"
#include "control/model.h"

/* Whether `in` normalises to `want` (NULL: is refused, with a message holding `why`). */
static bool norm_is(const char *in, const char *want, const char *why)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *out = NULL;
    int r = domain_normalise(in, &out, &err);

    if (want)
        return r == 0 && strcmp(out, want) == 0;
    return r == -EINVAL && !out && (!why || strstr(berth_error_msg(&err), why));
}

static void test_normalise(void)
{
    char long_label[70], long_name[300];

    ok(norm_is("www.example.com", "www.example.com", NULL), "a plain name");
    ok(norm_is("WWW.Example.COM", "www.example.com", NULL), "lower-cased");
    ok(norm_is("www.example.com.", "www.example.com", NULL), "the trailing dot dropped");
    ok(norm_is("www.example.com:8443", "www.example.com", NULL), "the port dropped");
    ok(norm_is("Www.Example.com.:443", "www.example.com", NULL), "all three at once");
    ok(norm_is("xn--bcher-kva.example", "xn--bcher-kva.example", NULL), "punycode");
    ok(norm_is("a-b.c-d.example.org", "a-b.c-d.example.org", NULL), "dashes inside labels");
    ok(norm_is("example.com", "example.com", NULL), "an apex name");
    ok(norm_is("*.example.org", "*.example.org", NULL), "a wildcard");
    ok(norm_is("*.EXAMPLE.org.", "*.example.org", NULL), "a wildcard, normalised");
    ok(norm_is("", NULL, "empty"), "empty refused");
    ok(norm_is("localhost", NULL, "two labels"), "a single label refused");
    ok(norm_is("*.com", NULL, "base of at least two labels"), "a wildcard over a single label refused");
    ok(norm_is("*", NULL, NULL) && norm_is("*.", NULL, NULL), "a bare '*' refused");
    ok(norm_is("www.*.example.com", NULL, "whole first label"), "a wildcard inside refused");
    ok(norm_is("*foo.example.com", NULL, "whole first label"), "a partial wildcard refused");
    ok(norm_is("**.example.com", NULL, NULL), "'**' refused");
    ok(norm_is("-www.example.com", NULL, "start or end with '-'") &&
       norm_is("www-.example.com", NULL, "start or end with '-'"), "a label starting or ending with '-' refused");
    ok(norm_is("www..example.com", NULL, "empty label") && norm_is(".example.com", NULL, "empty label"),
       "empty labels refused");
    ok(norm_is("www_1.example.com", NULL, "letters, digits") && norm_is("wéb.example.com", NULL, "punycode") &&
       norm_is("a b.example.com", NULL, NULL) && norm_is("a/b.example.com", NULL, NULL),
       "other characters refused");
    ok(norm_is("1.2.3.4", NULL, "IP address") && norm_is("10.0.0.1:80", NULL, "IP address"),
       "IPv4 addresses refused");
    ok(norm_is("[::1]:80", NULL, NULL) && norm_is("example.com:", NULL, "port") &&
       norm_is("example.com:0", NULL, "port") && norm_is("example.com:99999", NULL, "port") &&
       norm_is("example.com:http", NULL, "port"), "bad ports and IPv6 literals refused");
    memset(long_label, 'a', 64);
    memcpy(long_label + 64, ".com", 5);
    ok(norm_is(long_label, NULL, "longer than 63"), "a 64-character label refused");
    long_label[1] = '.';
    ok(strlen(long_label + 2) == 66 && norm_is(long_label + 2, long_label + 2, NULL), "a 62-character label is fine");
    /* 4 x 63 + 3 dots = 255 > 253 */
    for (int i = 0; i < 4; i++) {
        memset(long_name + i * 64, 'b', 63);
        long_name[i * 64 + 63] = '.';
    }
    long_name[255] = '\0';
    ok(norm_is(long_name, NULL, "longer than 253"), "a 255-character name refused");
    long_name[251] = '\0';          /* 4 labels, the last of 59: 251 characters */
    ok(norm_is(long_name, long_name, NULL), "a 251-character name is fine");
}

static void test_covers(void)
{
    ok(domain_route_covers("www.example.com", "www.example.com"), "route: the same name");
    ok(domain_route_covers("*.example.com", "www.example.com"), "route: one label below a wildcard");
    ok(domain_route_covers("*.example.com", "a.b.example.com"), "route: any depth below a wildcard");
    ok(domain_route_covers("*.example.com", "*.b.example.com"), "route: a wildcard below a wildcard");
    ok(!domain_route_covers("*.example.com", "example.com"), "route: not the apex");
    ok(!domain_route_covers("*.example.com", "wwwexample.com"), "route: only below a dot");
    ok(!domain_route_covers("*.b.example.com", "*.example.com"), "route: not a wider wildcard");
    ok(!domain_route_covers("www.example.com", "*.example.com"), "route: an exact name covers no wildcard");
    ok(domain_cert_covers("*.example.com", "www.example.com"), "cert: one label below");
    ok(!domain_cert_covers("*.example.com", "a.b.example.com"), "cert: not two labels below (RFC 6125)");
    ok(!domain_cert_covers("*.example.com", "example.com"), "cert: not the apex");
    ok(domain_cert_covers("*.example.com", "*.example.com"), "cert: the same wildcard");
    ok(!domain_cert_covers("*.example.com", "*.b.example.com"), "cert: not a narrower wildcard");
    ok(!domain_cert_covers("www.example.com", "*.example.com"), "cert: an exact name covers no wildcard");
    ok(domain_is_wildcard("*.a.b") && !domain_is_wildcard("a.b"), "domain_is_wildcard");
}

static bool berth_rule(const char *name, const char *app, bool allowed, const char *why)
{
    _cleanup_error_ struct berth_error *err = NULL;
    int r = domain_check_berth_domain(name, app, "Apps.Example.NET", &err);

    if (allowed)
        return r == 0;
    return r == -EINVAL && (!why || strstr(berth_error_msg(&err), why));
}

static void test_berth_domain(void)
{
    _cleanup_free_ char *def = domain_default_name("hello", "Apps.Example.NET.");

    ok(strcmp(def, "hello.apps.example.net") == 0, "the default name, normalised");
    ok(berth_rule("www.example.com", "hello", true, NULL), "a name outside berth's domain is fine");
    ok(berth_rule("api.hello.apps.example.net", "hello", true, NULL), "a name below the app's own is fine");
    ok(berth_rule("*.hello.apps.example.net", "hello", true, NULL), "a wildcard below the app's own is fine");
    ok(berth_rule("a.b.hello.apps.example.net", "hello", true, NULL), "deeper below the app's own is fine");
    ok(berth_rule("hello.apps.example.net", "hello", false, "already the default name"),
       "the default name itself is refused");
    ok(berth_rule("other.apps.example.net", "hello", false, "may only add names below 'hello.apps.example.net'"),
       "another app's default name is refused");
    ok(berth_rule("api.other.apps.example.net", "hello", false, NULL), "a name below another app's is refused");
    ok(berth_rule("*.apps.example.net", "hello", false, NULL), "a wildcard over every app is refused");
    ok(berth_rule("apps.example.net", "hello", false, "berth's own domain"), "berth's domain is refused");
    ok(berth_rule("xhello.apps.example.net", "hello", false, NULL), "a look-alike is refused");
    ok(berth_rule("apps.example.net.evil.com", "hello", true, NULL), "a name that only contains it is fine");
}

static void set_domains(const struct model *m, const char *app, const char *tenant, const char *const *names)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *list = json_array();

    (void)model_app_create(m, app, tenant, NULL);
    (void)model_app_load(m, app, &record, NULL);
    for (; *names; names++)
        json_array_append_new(list, json_string(*names));
    json_object_set_new(record, "domains", list);
    (void)model_app_save(m, app, record, NULL);
}

static int claim(const struct model *m, const char *app, const char *tenant, const char *name, char **ret_msg)
{
    _cleanup_error_ struct berth_error *err = NULL;
    int r = domain_check_claim(m, app, tenant, name, &err);

    if (ret_msg)
        *ret_msg = xstrdup(berth_error_msg(&err));
    return r;
}

static void test_claims(void)
{
    char dir[] = "/tmp/berth-test-domains-XXXXXX";
    struct model m;
    _cleanup_free_ char *msg = NULL, *msg2 = NULL;

    if (!mkdtemp(dir) || model_open(&m, dir, NULL) < 0 || model_init_home(&m, NULL, NULL) < 0) {
        ok(false, "temporary home");
        return;
    }
    set_domains(&m, "alpha", "admin", (const char *const[]){ "www.example.com", "*.wild.org", NULL });
    set_domains(&m, "beta", "other", (const char *const[]){ "*.beta.net", NULL });
    set_domains(&m, "gamma", "admin", (const char *const[]){ NULL });
    ok(claim(&m, "gamma", "admin", "api.example.com", NULL) == 0, "a free name can be claimed");
    ok(claim(&m, "gamma", "admin", "www.example.com", &msg) == -EEXIST &&
       strcmp(msg, "domain 'www.example.com' is already used by another app") == 0,
       "a name of another app of the same tenant is taken");
    ok(claim(&m, "beta", "other", "www.example.com", &msg2) == -EEXIST && !strstr(msg2, "alpha"),
       "... and of another tenant's, without naming the app");
    ok(claim(&m, "alpha", "admin", "www.example.com", NULL) == 0, "the app's own name does not conflict");
    ok(claim(&m, "gamma", "admin", "*.wild.org", NULL) == -EEXIST, "the same wildcard is taken");
    ok(claim(&m, "gamma", "admin", "x.wild.org", NULL) == 0,
       "the same tenant may put a name below its own wildcard on another app");
    ok(claim(&m, "alpha", "admin", "x.beta.net", NULL) == -EEXIST,
       "another tenant may not take a name its neighbour's wildcard routes");
    ok(claim(&m, "alpha", "admin", "*.sub.beta.net", NULL) == -EEXIST, "... nor a narrower wildcard");
    ok(claim(&m, "beta", "other", "*.example.com", NULL) == 0,
       "a wildcard over another tenant's exact name is fine (the exact name wins)");
    ok(claim(&m, "alpha", "admin", "beta.net", NULL) == 0, "the wildcard's apex is not covered");
    ok(rm_rf(dir, NULL) == 0, "cleanup");
    model_close(&m);
}

static bool apply(json_t *router, const char *json, const char *why)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_json_ json_t *changes = json_loads(json, 0, NULL);
    int r = domain_router_apply(router, changes, &err);

    if (!why)
        return r == 0;
    return r == -EINVAL && strstr(berth_error_msg(&err), why);
}

static void test_router_settings(void)
{
    _cleanup_json_ json_t *router = json_object(), *record = NULL;
    struct domain_router_settings rs;

    ok(apply(router, "{\"timeout\": 120, \"connect_timeout\": \"10\", \"idle_timeout\": \"5m\", "
           "\"https_only\": \"on\"}", NULL), "numbers, strings, durations and on");
    ok(json_integer_value(json_object_get(router, "timeout")) == 120 &&
       json_integer_value(json_object_get(router, "connect_timeout")) == 10 &&
       json_integer_value(json_object_get(router, "idle_timeout")) == 300 &&
       json_is_true(json_object_get(router, "https_only")), "stored as seconds and a boolean");
    record = json_pack("{s:O}", "router", router);
    domain_router_settings(record, &rs);
    ok(rs.timeout == 120 && rs.connect_timeout == 10 && rs.idle_timeout == 300 && rs.https_only,
       "read back for the router");
    ok(apply(router, "{\"timeout\": 3600, \"connect_timeout\": 60, \"idle_timeout\": 1}", NULL),
       "the bounds themselves are fine");
    ok(apply(router, "{\"timeout\": 3601}", "from 1 to 3600") && apply(router, "{\"timeout\": 0}", "from 1") &&
       apply(router, "{\"connect_timeout\": 61}", "from 1 to 60") &&
       apply(router, "{\"idle_timeout\": \"2h\"}", "from 1 to 3600") &&
       apply(router, "{\"timeout\": -5}", "from 1") && apply(router, "{\"timeout\": \"soon\"}", "from 1") &&
       apply(router, "{\"timeout\": 1.5}", "from 1"), "out of bounds or not a number: refused");
    ok(apply(router, "{\"https_only\": \"maybe\"}", "on or off") && apply(router, "{\"https_only\": 1}", "on or off"),
       "https_only must be on or off");
    ok(apply(router, "{\"retries\": 3}", "unknown router setting 'retries'"), "an unknown key is refused");
    ok(apply(router, "{\"timeout\": null, \"https_only\": \"\"}", NULL) && !json_object_get(router, "timeout") &&
       !json_object_get(router, "https_only") && json_object_get(router, "idle_timeout"),
       "null and \"\" reset a key, the others stay");
    json_object_set_new(record, "router", json_pack("{s:i, s:s}", "timeout", 99999, "idle_timeout", "x"));
    domain_router_settings(record, &rs);
    ok(rs.timeout == 0 && rs.idle_timeout == 0 && !rs.https_only, "malformed stored values are the defaults");
}

int main(void)
{
    test_normalise();
    test_covers();
    test_berth_domain();
    test_claims();
    test_router_settings();
    return tap_done();
}
