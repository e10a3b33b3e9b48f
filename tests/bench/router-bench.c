/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Benchmark helper: berth's router in front of an arbitrary upstream, so
 * tests/bench/run.sh can measure it side by side with nginx proxying to the
 * same upstream. Usage: router-bench LISTEN_PORT UPSTREAM_PORT HOST.
 * The connect callback opens a plain TCP connection to the upstream on
 * 127.0.0.1 (in production it is a socket the container's init connected);
 * the router pools those connections exactly as it pools container ones.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "router/router.h"

static uint16_t upstream_port;

static int connect_upstream(void *cls, const char *app, uint64_t generation, int *ret_fd,
                            char ret_dyno[ROUTER_DYNO_MAX])
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(upstream_port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    (void)cls;
    (void)app;
    (void)generation;
    (void)ret_dyno;

    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    *ret_fd = fd;
    return 0;
}

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
    upstream_port = (uint16_t)atoi(argv[2]);
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
    setenv("BERTH_ROUTER_ACCESS_LOG", "0", 1);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    {
        struct router_config cfg = { .listen_addr = listen, .connect = connect_upstream };
        struct router_route route = { .host = argv[3], .app = "bench", .generation = 1 };

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
