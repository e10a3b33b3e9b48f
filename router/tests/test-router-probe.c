/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Probes (router.h: router_probe_add()): a backend in no route table,
 * reached through the router's request path by the secret in
 * ROUTER_PROBE_HEADER. The upstream server of harness.h listens twice:
 * the app's routed backend dials one listener, the probe backend the
 * other, and /port tells which answered. Checked: the probe backend gets
 * a registered secret's requests with the router's headers set and the
 * probe header removed; no header, a wrong secret, or a removed one route
 * by Host and never reach the probe backend; the header never reaches an
 * app; the access log names the app and the probe's dyno; a request in
 * flight when the probe is removed finishes, and the probe backend's
 * holds and releases balance once it is done.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/tests/tap.h"
#include "router/router.h"
#include "router/tests/fake-backend.h"
#include "router/tests/harness.h"

static struct router *router;
static uint16_t app_port, probe_port;
static struct fake_backend app_web = { .name = "web.1", .mode = FAKE_DIAL };
static struct fake_backend probe_web = { .name = "web.9", .mode = FAKE_DIAL };

/* The port of the listener that answered GET /port, or -1. */
static int answered_by(const char *host, const char *secret)
{
    char extra[128], *body = NULL;
    int st, port = -1;

    (void)snprintf(extra, sizeof(extra), "-H '%s: %s'", ROUTER_PROBE_HEADER, secret ? secret : "");
    st = request(host, "/port", secret ? extra : NULL, &body, NULL);
    if (st == 200 && body)
        port = atoi(body);
    free(body);
    return port;
}

static char *echo(const char *host, const char *secret)
{
    char extra[128], *body = NULL;

    (void)snprintf(extra, sizeof(extra), "-H '%s: %s'", ROUTER_PROBE_HEADER, secret);
    if (request(host, "/echo/check", extra, &body, NULL) != 200) {
        free(body);
        return NULL;
    }
    return body;
}

static int slow_status;
static char *slow_body;

static void *slow_probe(void *arg)
{
    char extra[128];

    (void)snprintf(extra, sizeof(extra), "-H '%s: %s'", ROUTER_PROBE_HEADER, (const char *)arg);
    slow_status = request("a.localhost", "/slow", extra, &slow_body, NULL);
    return NULL;
}

static bool wait_refs(atomic_int *refs, int want, unsigned ms)
{
    for (unsigned waited = 0; waited < ms; waited += 100) {
        if (atomic_load(refs) == want)
            return true;
        usleep(100000);
    }
    return atomic_load(refs) == want;
}

static void test_without_probes(void)
{
    char *body;

    ok(answered_by("a.localhost", NULL) == app_port, "no header: the app's backend answers");
    ok(answered_by("a.localhost", "0123456789abcdef0123456789abcdef") == app_port,
       "a secret while no probe exists: the app's backend answers");
    body = echo("a.localhost", "0123456789abcdef0123456789abcdef");
    ok(body && !strcasestr(body, ROUTER_PROBE_HEADER), "the header never reaches the app");
    free(body);
}

static void test_probe(char secret[ROUTER_PROBE_SECRET_LEN + 1])
{
    char wrong[ROUTER_PROBE_SECRET_LEN + 1], *body;
    struct berth_error *err = NULL;
    int r = router_probe_add(router, "alpha-app", "A.Localhost", &probe_web, secret, &err);

    ok(r == 0 && strlen(secret) == ROUTER_PROBE_SECRET_LEN &&
       strspn(secret, "0123456789abcdef") == ROUTER_PROBE_SECRET_LEN,
       "router_probe_add: a 32-hex-digit secret (%s)", r < 0 ? berth_error_msg(&err) : secret);
    berth_error_release(&err);
    ok(atomic_load(&probe_web.refs) == 1, "the probe holds its backend (%d)", atomic_load(&probe_web.refs));

    ok(answered_by("a.localhost", secret) == probe_port, "the secret: the probe's backend answers");
    ok(answered_by("a.localhost", NULL) == app_port, "no header: still the app's backend");
    memcpy(wrong, secret, sizeof(wrong));
    wrong[0] = wrong[0] == '0' ? '1' : '0';
    ok(answered_by("a.localhost", wrong) == app_port, "a wrong secret: the app's backend");
    ok(answered_by("a.localhost", "not-a-secret") == app_port, "a malformed secret: the app's backend");
    ok(answered_by("nowhere.localhost", wrong) == -1, "a wrong secret on an unknown host: 404, not the probe");
    ok(access_lines_have("path=\"/port\"", "dyno=web.9"), "the access log names the probe's dyno");
    ok(access_lines_have("alpha-app ", "dyno=web.9"), "... under the app's name");

    body = echo("a.localhost", secret);
    ok(body && strstr(body, "GET /echo/check HTTP/1.1\r\n"), "the probe's backend gets the request");
    ok(body && !strcasestr(body, ROUTER_PROBE_HEADER), "... without the probe header");
    ok(body && strstr(body, "\r\nHost: a.localhost\r\n"), "... with the app's Host");
    ok(body && strstr(body, "\r\nX-Forwarded-For: 127.0.0.1\r\n") &&
       strstr(body, "\r\nX-Forwarded-Proto: http\r\n") && strstr(body, "\r\nX-Request-Id: ") &&
       strstr(body, "\r\nVia: 1.1 berth\r\n"), "... with the router's X-Forwarded-*, X-Request-Id and Via");
    free(body);
    body = echo("a.localhost", wrong);
    ok(body && !strcasestr(body, ROUTER_PROBE_HEADER), "a wrong secret is not passed on either");
    free(body);
}

static void test_remove_in_flight(const char *secret)
{
    pthread_t t;
    int dials = atomic_load(&probe_web.dials);

    pthread_create(&t, NULL, slow_probe, (void *)secret);
    for (int i = 0; i < 50 && atomic_load(&probe_web.dials) == dials; i++)
        usleep(20000);
    router_probe_remove(router, secret);
    ok(atomic_load(&probe_web.refs) >= 1, "removed with a request in flight: the backend is still held");
    pthread_join(t, NULL);
    ok(slow_status == 200, "the request in flight finishes (%d)", slow_status);
    free(slow_body);
    ok(answered_by("a.localhost", secret) == app_port, "after removal the secret routes by Host");
    router_probe_remove(router, secret);
    router_probe_remove(router, "0123456789abcdef0123456789abcdef");
    ok(1, "removing an unknown secret is harmless");
    /* The loop's channel to the backend closes at its next sweep (every 5 s). */
    ok(wait_refs(&probe_web.refs, 0, 12000), "the probe backend's holds and releases balance (%d)",
       atomic_load(&probe_web.refs));
}

int main(void)
{
    struct router_config cfg = { .listen_addr = "127.0.0.1:0", .threads = 2, .backend_ops = &fake_backend_ops,
                                 .access_log = access_lines_capture };
    void *backends[] = { &app_web };
    struct router_route route = { .host = "a.localhost", .app = "alpha-app", .generation = 1,
                                  .backends = backends, .n_backends = 1 };
    char secret[ROUTER_PROBE_SECRET_LEN + 1];
    struct berth_error *err = NULL;
    int rc;

    if (!harness_begin(&rc))
        return rc;
    log_setup("test-router-probe", LOG_LEVEL_INFO);
    ok(upstream_start(&app_port) == 0 && upstream_start(&probe_port) == 0, "upstream listening on %u and %u",
       (unsigned)app_port, (unsigned)probe_port);
    app_web.port = app_port;
    probe_web.port = probe_port;
    if (router_start(&cfg, &router, &err) < 0 || router_set_routes(router, &route, 1, &err) < 0) {
        ok(0, "router: %s", berth_error_msg(&err));
        berth_error_release(&err);
        return tap_done();
    }
    router_port_num = router_port(router);
    {
        char bad[ROUTER_PROBE_SECRET_LEN + 1];
        ok(router_probe_add(router, "alpha-app", "*.localhost", &probe_web, bad, &err) == -EINVAL &&
           atomic_load(&probe_web.refs) == 0, "a wildcard host is refused, nothing held");
        berth_error_release(&err);
    }

    test_without_probes();
    test_probe(secret);
    test_remove_in_flight(secret);

    router_stop(router);
    fake_backend_join_all();
    upstream_stop();
    ok(atomic_load(&app_web.refs) == 0, "the app's backend is released at stop");
    access_lines_release();
    rmdir(tmpdir);
    return tap_done();
}
