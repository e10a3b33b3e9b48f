/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * common/hostaddr: whether an address reaches this host. A tenant's
 * buildpack URL is fetched by the daemon, on the host, with berth's uid:
 * pointed at this host (its loopback, its own interfaces, the link-local
 * range where clouds answer metadata requests), that fetch would probe
 * services no tenant should reach. buildpacks/select.c refuses such a URL
 * by its literal host when it is set; receiver/fetch.c refuses the
 * addresses a name resolves to when it connects, which no DNS trick gets
 * round.
 */
#ifndef BERTH_COMMON_HOSTADDR_H
#define BERTH_COMMON_HOSTADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

/*
 * 127.0.0.0/8, 0.0.0.0/8 (which reaches the host too), 169.254.0.0/16
 * (link-local: cloud metadata at 169.254.169.254).
 */
bool hostaddr_ipv4_is_local(const struct in_addr *a);
/* ::1, ::, fe80::/10, and the IPv4-mapped or compatible forms of the above. */
bool hostaddr_ipv6_is_local(const struct in6_addr *a);
/*
 * Whether sa (AF_INET or AF_INET6; any other family: false) is in the
 * ranges above, or is an address of one of this host's interfaces
 * (getifaddrs(); when that fails, only the ranges count).
 */
bool hostaddr_is_this_host(const struct sockaddr *sa);

#endif
