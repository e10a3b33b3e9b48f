/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: outbound network for containers whose spec asks for it
 * (runner_spec.network; reference/ISOLATION.md §4). Rootless, there is no
 * veth; pasta (Debian's passt) attaches to the container's user and network
 * namespaces, creates a tap interface there with copies of the host's
 * address and default routes, and turns the container's frames into
 * ordinary sockets of its own on the host. That makes pasta, running as
 * berth's uid on the host, the container's way out, so three things keep
 * the host itself out of reach:
 *
 *   - the container's loopback is its own, and pasta runs with
 *     --no-map-gw (the gateway address is the real gateway, not the host)
 *     and with no port forwarding in either direction (-t/-u/-T/-U none);
 *   - network_block_host() adds, inside, a prohibit route and a prohibit
 *     rule for every address of every host interface, so a connect() to,
 *     say, docker0's address fails in the container's own routing instead
 *     of reaching pasta, which would connect to the host;
 *   - DNS: the container's resolv.conf lists the host's nameservers except
 *     those it cannot reach (loopback ones such as systemd-resolved's
 *     127.0.0.53, and addresses of the host, now prohibited), which become
 *     an address that pasta forwards to the host's first nameserver.
 *
 * Who does what: the spawner checks the host and writes the resolv.conf
 * (network_prepare) before the clone, starts pasta once the id maps are
 * written (pasta.c), and kills it when it reaps the container's init
 * (spawner.c); the cloned child adds the routes and rules as container root
 * (CAP_NET_ADMIN over its own network namespace) before anything of the
 * tenant runs.
 */
#ifndef BERTH_RUNNER_NETWORK_H
#define BERTH_RUNNER_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "runner/cgroup.h"

/*
 * The addresses the container's resolv.conf names in place of unreachable
 * nameservers; pasta is told to forward UDP port 53 sent to them (pasta's
 * --dns-forward covers UDP only, which is what resolvers use unless an
 * answer is truncated). 169.254.1.1 is what Podman uses with pasta; the IPv6
 * one is a random unique-local address. Neither may be a host address.
 */
#define NET_DNS_FORWARD4 "169.254.1.1"
#define NET_DNS_FORWARD6 "fd4b:e7c3:91a0::53"

struct net_addr {
    int family;                  /* AF_INET or AF_INET6 */
    unsigned char bytes[16];     /* 4 used for AF_INET */
};

/* What the spawner learnt about the host for one container, before the clone. */
struct net_host {
    char *pasta;                 /* the pasta binary */
    struct net_addr *addrs;      /* every host interface address but 127/8 and ::1 */
    size_t n_addrs;
    bool forward4, forward6;     /* resolv.conf names NET_DNS_FORWARD4 / 6 */
};

/*
 * In the spawner, before the clone: checks that pasta and /dev/net/tun are
 * usable, lists the host's addresses and writes <state_dir>/resolv.conf.
 */
int network_prepare(const char *state_dir, struct net_host *ret, struct berth_error **err);
void network_host_release(struct net_host *h);

/*
 * Brings up the loopback of the caller's network namespace, unless it is
 * up already: in the cloned child, as container root, for every container,
 * and in the keeper (keeper-netns.c), which brings up each spare's
 * when it makes it, so that a container joining one finds it up and skips
 * the interface's bring-up (its routes and ::1, 70-88 us here) on its start.
 */
int network_loopback_up(struct berth_error **err);

/*
 * In the cloned child, as container root, before the tenant's code runs:
 * a prohibit route (main table) and a prohibit rule for each of h->addrs.
 */
int network_block_host(const struct net_host *h, struct berth_error **err);

/*
 * pasta.c, in the spawner once the id maps of `target` are written: starts
 * pasta attached to target's user and network namespaces, in `cgroup` when
 * it is not NULL, and waits (at most 5 s) until it has configured them.
 * *ret_pidfd is the pidfd of pasta, the spawner's child, owned by the
 * caller; network_pasta_stop() kills and reaps it. `target` is the
 * container's init, not reaped yet. `what` names the container in messages.
 */
int network_pasta_start(const struct net_host *h, pid_t target, const char *state_dir,
                        const struct cgroup_layout *layout, const char *cgroup, const char *what,
                        int *ret_pidfd, struct berth_error **err);
/*
 * SIGKILL and reap, waiting (pasta's exit takes 20-40 ms): for a failed
 * spawn. Leaves the pidfd open, for the caller to close.
 */
void network_pasta_stop(int pidfd);

/* ---- the pieces above, with their paths as parameters for the tests ---- */

/*
 * Finds pasta in `dirs` (NULL-terminated) and opens `tun`; fails with a
 * message saying what to install or run. *ret_pasta (may be NULL) is
 * malloc'ed.
 */
int network_check_paths(const char *const *dirs, const char *tun, char **ret_pasta,
                        struct berth_error **err);
/* Makes `tun` mode 0666 and writes the udev rule into `rules_dir` when that exists. */
int network_prepare_paths(const char *tun, const char *rules_dir, struct berth_error **err);
/* The host's interface addresses, deduplicated, without 127/8 and ::1. */
int network_host_addrs(struct net_addr **ret, size_t *ret_n, struct berth_error **err);
/*
 * The container's resolv.conf from the host's text: nameservers that are
 * loopback or in `addrs` become the forward address of their family (once),
 * search, domain and options lines are kept, the rest is dropped.
 */
void network_resolv_conf(const char *host_conf, const struct net_addr *addrs, size_t n_addrs,
                         struct strbuf *out, bool *ret_forward4, bool *ret_forward6);

#endif
