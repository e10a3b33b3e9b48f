/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * common/hostaddr: the ranges that reach this host, and its interfaces'
 * addresses (hostaddr.h).
 */
#include "common/hostaddr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <stdint.h>
#include <string.h>

#include "common/banned.h"

bool hostaddr_ipv4_is_local(const struct in_addr *a)
{
    uint32_t v = ntohl(a->s_addr);

    return (v >> 24) == 127 || (v >> 24) == 0 || (v >> 16) == 0xa9fe;
}

bool hostaddr_ipv6_is_local(const struct in6_addr *a)
{
    struct in_addr a4;

    if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a))
        return true;
    if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
        memcpy(&a4.s_addr, &a->s6_addr[12], 4);
        return hostaddr_ipv4_is_local(&a4);
    }
    return false;
}

/* Whether sa and an interface's address ifa are the same address (IPv4-mapped forms included). */
static bool same_addr(const struct sockaddr *sa, const struct sockaddr *ifa)
{
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa, *i4 = (const struct sockaddr_in *)ifa;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa, *i6 = (const struct sockaddr_in6 *)ifa;

    if (sa->sa_family == AF_INET && ifa->sa_family == AF_INET)
        return s4->sin_addr.s_addr == i4->sin_addr.s_addr;
    if (sa->sa_family == AF_INET6 && ifa->sa_family == AF_INET6)
        return memcmp(&s6->sin6_addr, &i6->sin6_addr, sizeof(s6->sin6_addr)) == 0;
    if (sa->sa_family == AF_INET6 && ifa->sa_family == AF_INET && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return memcmp(&s6->sin6_addr.s6_addr[12], &i4->sin_addr.s_addr, 4) == 0;
    return false;
}

bool hostaddr_is_this_host(const struct sockaddr *sa)
{
    struct ifaddrs *all = NULL;
    bool found = false;

    if (sa->sa_family == AF_INET && hostaddr_ipv4_is_local(&((const struct sockaddr_in *)sa)->sin_addr))
        return true;
    if (sa->sa_family == AF_INET6 && hostaddr_ipv6_is_local(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        return true;
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return false;
    if (getifaddrs(&all) < 0)
        return false;
    for (const struct ifaddrs *i = all; i && !found; i = i->ifa_next)
        found = i->ifa_addr && same_addr(sa, i->ifa_addr);
    freeifaddrs(all);
    return found;
}
