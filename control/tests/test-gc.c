/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the slug collection's locking (control/gc.c) on a
 * temporary home with real tenant and app records. A push to a pipeline's
 * staging app that also builds a preview holds the preview's deploy lock
 * and then takes the staging app's (control/deploy.c), while a pass of the
 * collection takes every app of the tenant: the pass must never hold one
 * lock while it waits for another, or the two wait for each other forever.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "control/gc.h"
#include "control/server.h"
#include "control/tenants.h"

static struct server server;

static void *collect(void *unused)
{
    json_t *removed = NULL;
    struct berth_error *err = NULL;
    (void)unused;

    if (gc_run(&server, true, 10, &removed, &err) == 0)
        json_decref(removed);
    berth_error_release(&err);
    return NULL;
}

static struct timespec in_seconds(int s)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += s;
    return t;
}

/* The push's order against a pass in flight: both finish. */
static void push_beside_a_pass(void)
{
    struct app_runtime *staging = server_app(&server, "shop"), *preview = server_app(&server, "shop-feature");
    struct timespec deadline;
    pthread_t pass;
    bool took;

    pthread_mutex_lock(&preview->deploy_lock);
    ok(pthread_create(&pass, NULL, collect, NULL) == 0, "a pass starts while a push holds the preview's lock");
    usleep(200 * 1000);
    deadline = in_seconds(5);
    took = pthread_mutex_timedlock(&staging->deploy_lock, &deadline) == 0;
    ok(took, "the push then takes the staging app's lock: the waiting pass holds none");
    if (took)
        pthread_mutex_unlock(&staging->deploy_lock);
    pthread_mutex_unlock(&preview->deploy_lock);
    deadline = in_seconds(5);
    ok(pthread_timedjoin_np(pass, NULL, &deadline) == 0, "... and the pass ends once the push lets go");
}

/* A pass that finds the first, then the last, of a tenant's locks busy, and then none. */
static void pass_waits_its_turn(void)
{
    const char *names[] = { "shop", "shop-feature", "blog" };

    for (size_t i = 0; i < 3; i++) {
        struct app_runtime *rt = server_app(&server, names[i]);
        struct timespec deadline;
        pthread_t pass;

        pthread_mutex_lock(&rt->deploy_lock);
        ok(pthread_create(&pass, NULL, collect, NULL) == 0, "a pass while '%s' is deploying", names[i]);
        usleep(50 * 1000);
        deadline = in_seconds(0);
        ok(pthread_timedjoin_np(pass, NULL, &deadline) == ETIMEDOUT, "... waits for it");
        pthread_mutex_unlock(&rt->deploy_lock);
        deadline = in_seconds(5);
        ok(pthread_timedjoin_np(pass, NULL, &deadline) == 0, "... and ends when it is done");
    }
    for (size_t i = 0; i < 3; i++) {
        struct app_runtime *rt = server_app(&server, names[i]);

        ok(pthread_mutex_trylock(&rt->deploy_lock) == 0, "'%s' is left unlocked", names[i]);
        pthread_mutex_unlock(&rt->deploy_lock);
    }
}

int main(void)
{
    char dir[] = "/tmp/berth-test-gc-XXXXXX";
    struct berth_error *err = NULL;
    _cleanup_free_ char *admin_token = NULL, *acme_token = NULL, *cmd = NULL;
    unsigned long slice;

    ok(mkdtemp(dir) != NULL && model_open(&server.model, dir, &err) == 0 &&
       model_init_home(&server.model, &admin_token, &err) == 0, "a temporary home");
    server.layers_dir = xasprintf("%s/layers", dir);
    ok(tenants_create(&server.model, "acme", 4, &acme_token, &slice, &err) == 0, "tenant acme");
    ok(model_app_create(&server.model, "shop", "acme", &err) == 0 &&
       model_app_create(&server.model, "shop-feature", "acme", &err) == 0 &&
       model_app_create(&server.model, "blog", "acme", &err) == 0, "acme's shop, its preview and blog");
    push_beside_a_pass();
    pass_waits_its_turn();
    cmd = xasprintf("rm -rf '%s'", dir);
    ok(system(cmd) == 0, "clean up");
    free(server.layers_dir);
    model_close(&server.model);
    return tap_done();
}
