/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Benchmark helper: berth's router in front of an arbitrary upstream, so
 * tests/bench/run.sh can measure it side by side with nginx proxying to the
 * same upstream. Usage: router-bench LISTEN_PORT UPSTREAM_PORT HOST.
 * Its one backend's stand-in port agent dials the upstream on 127.0.0.1 (in
 * production the container's init connects inside the container); the
 * router pools those connections exactly as it pools container ones. Set
 * BERTH_ROUTER_ACCESS_LOG=0 to run without the access log, and
 * BERTH_ROUTER_THREADS=N for N loop threads instead of one per CPU.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "router/router.h"
#include "router/tests/fake-backend.h"

/* One backend whose "port agent" dials the upstream on 127.0.0.1 (router/tests/fake-backend.h). */
/* Offers a stock of unconnected sockets, as every container's port agent does. */
static struct fake_backend upstream = { .name = "web.1", .mode = FAKE_DIAL, .stock = true };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct router *r = NULL;
    char listen[64];

    if (argc != 4) {
        fprintf(stderr, "usage: router-bench LISTEN_PORT UPSTREAM_PORT HOST\n");
        return 2;
    }
    upstream.port = (uint16_t)atoi(argv[2]);
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    {
        const char *log = getenv("BERTH_ROUTER_ACCESS_LOG");
        const char *threads = getenv("BERTH_ROUTER_THREADS");
        struct router_config cfg = { .listen_addr = listen, .backend_ops = &fake_backend_ops,
                                     .no_access_log = log && strcmp(log, "0") == 0,
                                     .threads = threads ? (unsigned)atoi(threads) : 0 };
        void *backends[] = { &upstream };
        struct router_route route = { .host = argv[3], .app = "bench", .generation = 1,
                                      .backends = backends, .n_backends = 1 };

        if (router_start(&cfg, &r, &err) < 0 || router_set_routes(r, &route, 1, &err) < 0) {
            fprintf(stderr, "router-bench: %s\n", berth_error_msg(&err));
            return 1;
        }
    }
    printf("ready %u\n", router_port(r));
    fflush(stdout);
    while (!stop)
        pause();
    router_stop(r);
    return 0;
}
