/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/build-cache: emptying an app's build cache (build-cache.h). The
 * directory itself is berth's, made with the app (model_app_create()); its
 * contents are the tenant's. It is removed whole and made again empty, as
 * the app's creation made it; the next build opens it up for its
 * containers as it does every time.
 */
#include "control/build-cache.h"

#include <errno.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "control/model.h"
#include "runner/runner.h"
#include "common/banned.h"

int build_cache_purge(struct server *s, const char *app, const char *tenant, uint64_t *ret_bytes,
                      struct berth_error **err)
{
    _cleanup_free_ char *cache = model_path(&s->model, "apps/%s/cache", app);
    _cleanup_json_ json_t *record = NULL;
    struct app_runtime *rt = server_app(s, app);
    unsigned long uid_base, gid_base;
    const char *paths[] = { cache, NULL };
    int r;

    *ret_bytes = 0;
    pthread_mutex_lock(&rt->deploy_lock);
    r = model_app_load(&s->model, app, &record, err);
    if (r == 0)
        r = server_tenant_ids(s, tenant, &uid_base, &gid_base, err);
    /*
     * Measured and removed by one worker. Too deep to measure (-ELOOP) is no
     * reason not to remove it: that is what a purge is for. On a failure it
     * is unknown which of the two failed, so the removal is tried again
     * alone (missing is fine), and its failure is the one told.
     */
    if (r == 0 && runner_tree_usage(s->runner, paths, paths, uid_base, gid_base, TENANT_ID_SLICE,
                                    ret_bytes, NULL) < 0) {
        *ret_bytes = 0;
        r = runner_remove_tree(s->runner, cache, uid_base, gid_base, TENANT_ID_SLICE, err);
    }
    if (r == 0 && mkdir(cache, 0700) < 0 && errno != EEXIST)
        r = berth_error_make(err, errno, "create '%s'", cache);
    pthread_mutex_unlock(&rt->deploy_lock);
    return r;
}
