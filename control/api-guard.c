/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-guard: keeps slow or idle clients from locking the control
 * listener (API and git over HTTP), which runs a thread per connection up
 * to a fixed number of connections. Tried from outside before this: 260
 * connections that sent nothing held every slot for an hour, and an
 * authenticated `GET /apps` timed out.
 *
 * Every connection is watched from the moment it is accepted
 * (MHD_OPTION_NOTIFY_CONNECTION) until its first request authenticates
 * (api_guard_authenticated()). Until then it is anonymous, and
 *   - it has API_GUARD_HEAD_S seconds from its accept to send a request
 *     head with valid credentials, however it trickles its bytes; a
 *     watchdog thread shuts down the socket of one that has not (the
 *     connection's thread then sees the end and closes it);
 *   - at most API_GUARD_PER_ADDR anonymous connections per client address
 *     are kept: one more makes the guard shut down the oldest of them, so
 *     a client that just connected (and authenticates in milliseconds)
 *     always gets its turn, while one that holds connections open without
 *     a request loses them.
 * An authenticated connection (a push that builds for minutes, a log
 * stream) is never counted or cut by the guard; libmicrohttpd's idle
 * timeout still applies to it.
 *
 * The list is guarded by one mutex; a connection's entry is removed in the
 * CLOSED notification, before libmicrohttpd closes its socket, so the
 * watchdog never shuts down an fd that was closed and reused.
 */
#include "control/api-internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"

struct watched {
    struct watched *next, *prev;
    int fd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct timespec accepted;
    bool authenticated, cut;
};

static struct {
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t wake;
    struct watched *head;
    bool running, stopping;
    pthread_t thread;
} guard = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static bool same_addr(const struct watched *a, const struct watched *b)
{
    return a->addr_len == b->addr_len && memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

/* Anonymous connections from w's address, w included, and the oldest of them. Lock held. */
static unsigned anonymous_from(const struct watched *w, struct watched **ret_oldest)
{
    unsigned n = 0;

    *ret_oldest = NULL;
    /* Newest first: the last match is the oldest. */
    for (struct watched *o = guard.head; o; o = o->next)
        if (!o->authenticated && !o->cut && o->fd >= 0 && same_addr(o, w)) {
            n++;
            *ret_oldest = o;
        }
    return n;
}

static void cut(struct watched *w, const char *why)
{
    w->cut = true;
    (void)shutdown(w->fd, SHUT_RDWR);
    log_debug("control: closed an anonymous connection (%s)", why);
}

void api_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe)
{
    struct watched *w = *socket_context;
    (void)cls;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

        w = xcalloc(1, sizeof(*w));
        w->fd = fd ? fd->connect_fd : -1;
        if (addr && addr->client_addr) {
            w->addr_len = addr->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                   : sizeof(struct sockaddr_in);
            memcpy(&w->addr, addr->client_addr, w->addr_len);
            /* Only the host counts, not the client's port. */
            if (addr->client_addr->sa_family == AF_INET)
                ((struct sockaddr_in *)&w->addr)->sin_port = 0;
            else if (addr->client_addr->sa_family == AF_INET6)
                ((struct sockaddr_in6 *)&w->addr)->sin6_port = 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &w->accepted);
        *socket_context = w;
        pthread_mutex_lock(&guard.lock);
        w->next = guard.head;
        if (guard.head)
            guard.head->prev = w;
        guard.head = w;
        {
            struct watched *oldest;

            if (w->fd >= 0 && anonymous_from(w, &oldest) > API_GUARD_PER_ADDR && oldest && oldest != w)
                cut(oldest, "too many anonymous connections from one address");
        }
        pthread_mutex_unlock(&guard.lock);
        return;
    }
    if (!w)
        return;
    pthread_mutex_lock(&guard.lock);
    if (w->prev)
        w->prev->next = w->next;
    else
        guard.head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&guard.lock);
    *socket_context = NULL;
    free(w);
}

void api_guard_authenticated(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watched *w = ci ? ci->socket_context : NULL;

    if (!w)
        return;
    pthread_mutex_lock(&guard.lock);
    w->authenticated = true;
    pthread_mutex_unlock(&guard.lock);
}

static void *watchdog(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&guard.lock);
    while (!guard.stopping) {
        struct timespec now, until;

        clock_gettime(CLOCK_MONOTONIC, &now);
        for (struct watched *w = guard.head; w; w = w->next)
            if (!w->authenticated && !w->cut && w->fd >= 0 && now.tv_sec - w->accepted.tv_sec >= API_GUARD_HEAD_S)
                cut(w, "no authenticated request in time");
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        (void)pthread_cond_timedwait(&guard.wake, &guard.lock, &until);
    }
    pthread_mutex_unlock(&guard.lock);
    return NULL;
}

int api_guard_start(struct berth_error **err)
{
    struct rlimit rl;

    /* Each connection is an fd (and a thread): let the daemon use what the host allows. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    guard.stopping = false;
    if (pthread_create(&guard.thread, NULL, watchdog, NULL) != 0)
        return berth_error_plain(err, EAGAIN, "cannot start the control listener's watchdog");
    guard.running = true;
    return 0;
}

void api_guard_stop(void)
{
    if (!guard.running)
        return;
    pthread_mutex_lock(&guard.lock);
    guard.stopping = true;
    pthread_cond_broadcast(&guard.wake);
    pthread_mutex_unlock(&guard.lock);
    (void)pthread_join(guard.thread, NULL);
    guard.running = false;
}
