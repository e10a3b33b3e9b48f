/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for api_allows() (control/api.c), the one authorization
 * decision of the API and the git endpoint, on a temporary home with real
 * tenant and app records: every role against its own tenant's app, another
 * tenant's, a missing one, and no app, for each action.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/tenants.h"

static struct server server;

static unsigned allows(const struct tenants_principal *who, const char *app, enum api_action action)
{
    return api_allows(&server, who, app, action, NULL);
}

/* For each action (read, deploy, manage) on `app`, the status api_allows() gives. */
static bool answers(const struct tenants_principal *who, const char *app, unsigned read, unsigned deploy,
                    unsigned manage)
{
    return allows(who, app, API_READ) == read && allows(who, app, API_DEPLOY) == deploy &&
           allows(who, app, API_MANAGE) == manage;
}

int main(void)
{
    char dir[] = "/tmp/berth-test-authz-XXXXXX";
    struct berth_error *err = NULL;
    _cleanup_free_ char *admin_token = NULL, *acme_token = NULL, *beta_token = NULL, *cmd = NULL;
    unsigned long slice;
    struct tenants_principal admin = { .tenant = (char *)"admin", .role = TENANTS_ROLE_OWNER };
    struct tenants_principal acme = { .tenant = (char *)"acme", .role = TENANTS_ROLE_OWNER };
    struct tenants_principal acme_deploy_shop = { .tenant = (char *)"acme", .role = TENANTS_ROLE_DEPLOY,
                                                  .app = (char *)"shop" };
    struct tenants_principal acme_read = { .tenant = (char *)"acme", .role = TENANTS_ROLE_READ };
    struct tenants_principal beta = { .tenant = (char *)"beta", .role = TENANTS_ROLE_OWNER };

    ok(mkdtemp(dir) != NULL && model_open(&server.model, dir, &err) == 0 &&
       model_init_home(&server.model, &admin_token, &err) == 0, "a temporary home");
    ok(tenants_create(&server.model, "acme", 4, &acme_token, &slice, &err) == 0 &&
       tenants_create(&server.model, "beta", 4, &beta_token, &slice, &err) == 0, "tenants acme and beta");
    ok(model_app_create(&server.model, "shop", "acme", &err) == 0 &&
       model_app_create(&server.model, "blog", "acme", &err) == 0 &&
       model_app_create(&server.model, "bapp", "beta", &err) == 0, "acme's shop and blog, beta's bapp");

    ok(answers(&acme, "shop", 0, 0, 0), "the owner does everything on its app");
    ok(answers(&acme, "bapp", 404, 404, 404), "... and nothing on another tenant's: 404, as missing");
    ok(answers(&acme, "nosuch", 404, 404, 404) && answers(&acme, "../etc", 404, 404, 404),
       "a missing app or a path: 404");
    ok(answers(&acme, NULL, 0, 0, 0), "... and may manage (create apps, tokens)");
    ok(answers(&admin, "bapp", 0, 0, 0) && answers(&admin, "shop", 0, 0, 0), "the admin reaches every app");
    ok(answers(&acme_deploy_shop, "shop", 0, 0, 403), "a deploy token reads and deploys, manages nothing: 403");
    ok(answers(&acme_deploy_shop, "blog", 404, 404, 404), "... limited to shop, its tenant's blog is 404");
    ok(answers(&acme_deploy_shop, "bapp", 404, 404, 404), "... and another tenant's app too");
    ok(answers(&acme_deploy_shop, NULL, 0, 0, 403), "... it creates no apps or tokens");
    ok(answers(&acme_read, "shop", 0, 403, 403) && answers(&acme_read, "blog", 0, 403, 403),
       "a tenant-wide read token reads every app of its tenant, nothing else: 403");
    ok(answers(&acme_read, "bapp", 404, 404, 404), "... and another tenant's app is 404, not 403");
    ok(answers(&beta, "shop", 404, 404, 404) && answers(&beta, "bapp", 0, 0, 0), "beta: its own only");
    {
        _cleanup_free_ char *owner = NULL;

        ok(api_allows(&server, &admin, "shop", API_DEPLOY, &owner) == 0 && owner && strcmp(owner, "acme") == 0,
           "the owner handed back is the app's tenant (the admin deploys with acme's ids)");
    }
    {
        char *owner = (char *)"untouched";

        ok(api_allows(&server, &beta, "shop", API_READ, &owner) == 404 && owner == NULL,
           "no owner on a refusal");
    }
    cmd = xasprintf("rm -rf '%s'", dir);
    ok(system(cmd) == 0, "clean up");
    model_close(&server.model);
    return tap_done();
}
