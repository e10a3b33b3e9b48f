/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Outbound network for containers (network.h), all but the pasta process
 * itself (pasta.c): the host checks behind runner_network_check() and the
 * root preparation behind runner_network_prepare(), what the spawner learns
 * about the host before each networked clone (its addresses, its
 * nameservers, written into the container's resolv.conf), and the prohibit
 * routes and rules the cloned child adds inside over netlink.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/network.h"
#include "runner/runner.h"
#include "common/banned.h"

#define TUN_PATH "/dev/net/tun"
#define UDEV_RULES_DIR "/etc/udev/rules.d"
#define UDEV_RULE_NAME "60-berth-tun.rules"
/* The misc device numbers of /dev/net/tun (Documentation/admin-guide/devices.txt). */
#define TUN_MAJOR 10
#define TUN_MINOR 200
/* Cap on the host's resolv.conf we read. */
#define RESOLV_CONF_MAX (64 * 1024)
/*
 * The prohibit rules go after the local table's rule (priority 0), so the
 * container's own addresses (pasta gives it the host's, and its lo has
 * 127.0.0.1) stay its own, and before the main table's (32766).
 */
#define RULE_PRIORITY 100

static const char *const pasta_dirs[] = { "/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin", NULL };

static const char udev_rule[] =
    "# Written by `berth setup`: containers reach the network through pasta,\n"
    "# which opens /dev/net/tun as the unprivileged berth user.\n"
    "KERNEL==\"tun\", MODE=\"0666\"\n";

/* ------------------------------------------------------------------------
 * host checks (berth user) and preparation (root)
 */

int network_check_paths(const char *const *dirs, const char *tun, char **ret_pasta,
                        struct berth_error **err)
{
    _cleanup_free_ char *pasta = NULL;
    int fd;

    for (size_t i = 0; dirs[i] && !pasta; i++) {
        char *p = xasprintf("%s/pasta", dirs[i]);

        if (access(p, X_OK) == 0)
            pasta = p;
        else
            free(p);
    }
    if (!pasta)
        return berth_error_plain(err, ENOENT, "'pasta' is not installed; containers with network "
                                 "need it: apt-get install passt");
    /* Opening it is all pasta needs; no interface exists until TUNSETIFF. */
    fd = open(tun, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM))
        return berth_error_plain(err, errno, "'%s' is not usable by uid %u; run 'berth setup' as "
                                 "root (it makes the device mode 0666)", tun, (unsigned)geteuid());
    if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO))
        return berth_error_plain(err, errno, "'%s' is missing; load the tun module (modprobe tun) "
                                 "and run 'berth setup' as root", tun);
    if (fd < 0)
        return berth_error_make(err, errno, "open '%s'", tun);
    (void)close(fd);
    if (ret_pasta)
        *ret_pasta = TAKE_PTR(pasta);
    return 0;
}

int runner_network_check(struct berth_error **err)
{
    return network_check_paths(pasta_dirs, TUN_PATH, NULL, err);
}

/*
 * A missing node is created only where its directory exists: then the tun
 * driver registered it (devtmpfs makes /dev/net for it) and a static /dev
 * merely lacks the node; without /dev/net there is no driver to talk to.
 */
static int tun_node(const char *tun, struct stat *st, struct berth_error **err)
{
    _cleanup_free_ char *dir = xstrdup(tun);
    char *slash = strrchr(dir, '/');
    struct stat dst;

    if (lstat(tun, st) == 0)
        return 0;
    if (errno != ENOENT)
        return berth_error_make(err, errno, "stat '%s'", tun);
    if (slash)
        *slash = '\0';
    if (!slash || stat(dir, &dst) < 0 || !S_ISDIR(dst.st_mode))
        return berth_error_plain(err, ENOENT, "'%s' does not exist; load the tun module "
                                 "(modprobe tun), then run 'berth setup' again", tun);
    if (mknod(tun, S_IFCHR | 0666, makedev(TUN_MAJOR, TUN_MINOR)) < 0 && errno != EEXIST)
        return berth_error_make(err, errno, "create '%s'", tun);
    if (lstat(tun, st) < 0)
        return berth_error_make(err, errno, "stat '%s'", tun);
    return 0;
}

int network_prepare_paths(const char *tun, const char *rules_dir, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf cur = STRBUF_INIT;
    _cleanup_free_ char *rule = NULL;
    struct stat st;
    int r;

    if ((r = tun_node(tun, &st, err)) < 0)
        return r;
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != TUN_MAJOR || minor(st.st_rdev) != TUN_MINOR)
        return berth_error_plain(err, EINVAL, "'%s' is not the tun device (character device "
                                 "%d:%d)", tun, TUN_MAJOR, TUN_MINOR);
    /* Most distributions ship it 0666; the tun driver checks who may attach to what. */
    if ((st.st_mode & 0666) != 0666 && chmod(tun, (st.st_mode & 07777) | 0666) < 0)
        return berth_error_make(err, errno, "chmod '%s' 0666", tun);
    /* udev recreates the node at boot with its own idea of the mode. */
    if (stat(rules_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    rule = xasprintf("%s/%s", rules_dir, UDEV_RULE_NAME);
    if (read_file(rule, &cur, sizeof(udev_rule) * 2, NULL) == 0 && !strcmp(cur.buf, udev_rule))
        return 0;
    return write_file_atomic(rule, udev_rule, strlen(udev_rule), 0644, err);
}

int runner_network_prepare(struct berth_error **err)
{
    return network_prepare_paths(TUN_PATH, UDEV_RULES_DIR, err);
}

/* ------------------------------------------------------------------------
 * the host's addresses and nameservers
 */

static bool addr_in(const struct net_addr *a, const struct net_addr *list, size_t n)
{
    size_t len = a->family == AF_INET ? 4 : 16;

    for (size_t i = 0; i < n; i++)
        if (list[i].family == a->family && !memcmp(list[i].bytes, a->bytes, len))
            return true;
    return false;
}

static bool addr_is_loopback(const struct net_addr *a)
{
    return a->family == AF_INET ? a->bytes[0] == 127
                                : IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)a->bytes);
}

/*
 * Every address, of every interface, up or down: an address on the host's
 * lo that is not 127/8 (an anycast service address, say) is as reachable
 * through pasta as one on eth0. 127/8 and ::1 themselves never leave the
 * container: its own lo holds them. A snapshot: an address the host gains
 * later is not blocked in containers already running.
 */
int network_host_addrs(struct net_addr **ret, size_t *ret_n, struct berth_error **err)
{
    struct ifaddrs *list, *i;
    struct net_addr *v = NULL;
    size_t n = 0;

    if (getifaddrs(&list) < 0)
        return berth_error_make(err, errno, "list the host's network addresses");
    for (i = list; i; i = i->ifa_next) {
        struct net_addr a = { 0 };

        if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        a.family = i->ifa_addr->sa_family;
        if (a.family == AF_INET)
            memcpy(a.bytes, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
        else
            memcpy(a.bytes, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
        if (addr_is_loopback(&a) || addr_in(&a, v, n))
            continue;
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = a;
    }
    freeifaddrs(list);
    *ret = v;
    *ret_n = n;
    return 0;
}

/* Parses a nameserver token ("10.0.0.1", "fe80::1%eth0"); false if it is neither family. */
static bool parse_nameserver(const char *tok, size_t len, struct net_addr *ret)
{
    char buf[INET6_ADDRSTRLEN + 1];
    size_t l = strcspn(tok, "%");

    if (l > len)
        l = len;
    if (l >= sizeof(buf))
        return false;
    memcpy(buf, tok, l);
    buf[l] = '\0';
    memset(ret, 0, sizeof(*ret));
    ret->family = AF_INET;
    if (inet_pton(AF_INET, buf, ret->bytes) == 1)
        return true;
    ret->family = AF_INET6;
    return inet_pton(AF_INET6, buf, ret->bytes) == 1;
}

static bool starts_with_word(const char *line, const char *word)
{
    size_t l = strlen(word);

    return !strncmp(line, word, l) && (line[l] == ' ' || line[l] == '\t');
}

/*
 * pasta forwards a forward address to the *first* nameserver of that family
 * in the host's resolv.conf, reachable or not; so with "10.0.0.2" listed
 * before "127.0.0.53" the forward address leads to 10.0.0.2 too. Harmless:
 * the loopback one was unreachable inside anyway.
 */
void network_resolv_conf(const char *host_conf, const struct net_addr *addrs, size_t n_addrs,
                         struct strbuf *out, bool *ret_forward4, bool *ret_forward6)
{
    bool fwd4 = false, fwd6 = false;

    strbuf_addstr(out, "# berth: the host's nameservers, as reachable from this container\n");
    for (const char *line = host_conf; *line;) {
        size_t len = strcspn(line, "\n");
        const char *p = line + strspn(line, " \t");
        struct net_addr a;

        if (starts_with_word(p, "nameserver")) {
            const char *tok = p + 10 + strspn(p + 10, " \t");
            size_t tl = strcspn(tok, " \t\n");

            if (!parse_nameserver(tok, tl, &a)) {
                /* not an address: the resolver would ignore it too */
            } else if (!addr_is_loopback(&a) && !addr_in(&a, addrs, n_addrs)) {
                strbuf_addf(out, "nameserver %.*s\n", (int)tl, tok);
            } else if (a.family == AF_INET ? !fwd4 : !fwd6) {
                strbuf_addf(out, "nameserver %s\n", a.family == AF_INET ? NET_DNS_FORWARD4
                                                                        : NET_DNS_FORWARD6);
                *(a.family == AF_INET ? &fwd4 : &fwd6) = true;
            }
        } else if (starts_with_word(p, "search") || starts_with_word(p, "domain") ||
                   starts_with_word(p, "options")) {
            strbuf_addf(out, "%.*s\n", (int)(len - (size_t)(p - line)), p);
        }
        line += len;
        if (*line == '\n')
            line++;
    }
    *ret_forward4 = fwd4;
    *ret_forward6 = fwd6;
}

/*
 * Not write_file_atomic(): nothing needs this file to survive a crash, and
 * an fsync per spawn would cost more than the rest of it. The mode is set
 * explicitly because the daemon's umask could hide it from the container,
 * to whom the file's owner (berth) is nobody.
 */
static int write_resolv_conf(const char *state_dir, const struct net_host *h, struct net_host *set,
                             struct berth_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/resolv.conf", state_dir);
    _cleanup_strbuf_ struct strbuf host = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    _cleanup_error_ struct berth_error *e = NULL;
    _cleanup_close_ int fd = -1;
    int r = read_file("/etc/resolv.conf", &host, RESOLV_CONF_MAX, &e);

    if (r < 0 && r != -ENOENT) {
        if (err)
            *err = TAKE_PTR(e);
        return r;
    }
    network_resolv_conf(host.buf, h->addrs, h->n_addrs, &out, &set->forward4, &set->forward6);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 || fchmod(fd, 0644) < 0 || write_all(fd, out.buf, out.len) < 0)
        return berth_error_make(err, errno, "write '%s'", path);
    return 0;
}

int network_prepare(const char *state_dir, struct net_host *ret, struct berth_error **err)
{
    struct net_host h = { 0 };
    int r;

    if ((r = network_check_paths(pasta_dirs, TUN_PATH, &h.pasta, err)) < 0 ||
        (r = network_host_addrs(&h.addrs, &h.n_addrs, err)) < 0 ||
        (r = write_resolv_conf(state_dir, &h, &h, err)) < 0) {
        network_host_release(&h);
        return r;
    }
    *ret = h;
    return 0;
}

void network_host_release(struct net_host *h)
{
    free(h->pasta);
    free(h->addrs);
    h->pasta = NULL;
    h->addrs = NULL;
    h->n_addrs = 0;
}

/* ------------------------------------------------------------------------
 * inside: prohibit routes and rules over rtnetlink
 */

struct nl_msg {
    struct nlmsghdr h;
    union {
        struct rtmsg rt;
        struct fib_rule_hdr rule;
    } u;
    char attrs[64];
};

static void nl_attr(struct nl_msg *m, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((char *)m + NLMSG_ALIGN(m->h.nlmsg_len));

    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    m->h.nlmsg_len = NLMSG_ALIGN(m->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends one request and reads its acknowledgement; returns the kernel's -errno. */
static int nl_talk(int fd, struct nl_msg *m)
{
    union {
        char buf[1024];
        struct nlmsghdr align;
    } reply;
    const struct nlmsghdr *h = &reply.align;
    ssize_t n;

    if (send(fd, m, m->h.nlmsg_len, 0) < 0)
        return -errno;
    do {
        n = recv(fd, reply.buf, sizeof(reply.buf), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != NLMSG_ERROR ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
        return -EBADMSG;
    return ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
}

static void nl_prohibit_route(struct nl_msg *m, const struct net_addr *a, uint32_t seq)
{
    memset(m, 0, sizeof(*m));
    m->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    m->h.nlmsg_type = RTM_NEWROUTE;
    /* REPLACE: a same-prefix route pasta made (a /32 host setup) gives way. */
    m->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    m->h.nlmsg_seq = seq;
    m->u.rt.rtm_family = (unsigned char)a->family;
    m->u.rt.rtm_dst_len = a->family == AF_INET ? 32 : 128;
    m->u.rt.rtm_table = RT_TABLE_MAIN;
    m->u.rt.rtm_protocol = RTPROT_STATIC;
    m->u.rt.rtm_scope = RT_SCOPE_UNIVERSE;
    m->u.rt.rtm_type = RTN_PROHIBIT;
    nl_attr(m, RTA_DST, a->bytes, a->family == AF_INET ? 4 : 16);
}

static void nl_prohibit_rule(struct nl_msg *m, const struct net_addr *a, uint32_t seq)
{
    uint32_t prio = RULE_PRIORITY;

    memset(m, 0, sizeof(*m));
    m->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct fib_rule_hdr));
    m->h.nlmsg_type = RTM_NEWRULE;
    m->h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    m->h.nlmsg_seq = seq;
    m->u.rule.family = (unsigned char)a->family;
    m->u.rule.dst_len = a->family == AF_INET ? 32 : 128;
    m->u.rule.action = FR_ACT_PROHIBIT;
    nl_attr(m, FRA_DST, a->bytes, a->family == AF_INET ? 4 : 16);
    nl_attr(m, FRA_PRIORITY, &prio, sizeof(prio));
}

int network_loopback_up(struct berth_error **err)
{
    _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;

    if (s < 0)
        return berth_error_make(err, errno, "socket for bringing up 'lo'");
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return berth_error_make(err, errno, "get flags of 'lo'");
    if (ifr.ifr_flags & IFF_UP)
        return 0;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return berth_error_make(err, errno, "bring up 'lo'");
    return 0;
}

/*
 * Why a rule as well as a route: an IPv6 lookup bound to an interface (a
 * link-local destination with its %eth0 scope, or a socket with
 * SO_BINDTODEVICE, which an unprivileged app may set once) skips routes on
 * other devices, and a prohibit route lives on lo; so such a connect() to
 * the host's fe80:: address went past the route to pasta, and pasta
 * connected to the host (seen on kernel 6.18). Rules are consulted before
 * any table, whatever the interface. The route is what `ip route` shows and
 * covers every other lookup; a kernel without policy routing refuses the
 * rule, and the spawn fails rather than leave the bound case open.
 */
int network_block_host(const struct net_host *h, struct berth_error **err)
{
    _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct nl_msg m;
    uint32_t seq = 0;
    int r;

    if (fd < 0)
        return berth_error_make(err, errno, "open a netlink socket");
    for (size_t i = 0; i < h->n_addrs; i++) {
        const struct net_addr *a = &h->addrs[i];
        char s[INET6_ADDRSTRLEN] = "?";

        (void)inet_ntop(a->family, a->bytes, s, sizeof(s));
        nl_prohibit_route(&m, a, ++seq);
        if ((r = nl_talk(fd, &m)) < 0)
            return berth_error_make(err, -r, "add a prohibit route to host address '%s'", s);
        nl_prohibit_rule(&m, a, ++seq);
        if ((r = nl_talk(fd, &m)) < 0 && r != -EEXIST)
            return berth_error_make(err, -r, "add a prohibit rule for host address '%s'", s);
    }
    return 0;
}
