/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The port agent in the container's init (see agent.h). Three kinds of fd
 * share the init's epoll set: the agent socket, which brings channels; the
 * channels, which bring requests and take replies; and one TCP socket per
 * request while its connect is in progress. A request becomes a `struct
 * connect`, which lives on its channel's list of connects in progress, then
 * (once it has an answer the channel has no room for) on the channel's
 * outbox, and is freed once its reply is sent or its channel goes. Every
 * send and receive is non-blocking. A channel with replies in its outbox is
 * not read until they are sent, so a reader that falls behind delays only
 * its own replies: its further requests wait in its own socket, where
 * runner_agent_request() says EAGAIN once it is full. (Its outbox does keep
 * the slots of AGENT_MAX_CONNECTS it holds until then.)
 *
 * A channel also brings stock requests: for each, the agent makes up to
 * PROTO_AGENT_STOCK_MAX unconnected TCP sockets here, in the container's
 * network namespace (a socket connects in the namespace it was made in,
 * whoever calls connect()), sends them at once with the port, and closes
 * its own copies; the caller dials the app itself. A stock keeps no state
 * and takes no slot of AGENT_MAX_CONNECTS. Since a channel is read only
 * once its outbox is empty, a stock goes after every reply owed before it;
 * one the channel has no room for (or that would put more of the init's
 * fds in flight than its fd limit allows, ETOOMANYREFS) is dropped,
 * sockets and all, and its caller asks again after a while.
 *
 * A connect still in progress after a few milliseconds is dialled again
 * on a fresh socket. On the container's loopback the handshake takes
 * microseconds, so a connect that waits has had its SYN dropped: the app's
 * accept queue was full (busybox httpd's holds 10). The kernel would send
 * it again only after its initial retransmission timeout of one second,
 * and again after three, which every request behind a small backlog would
 * then wait, losing each time to the fresh connects that find the slots
 * the app frees. While the app is accepting (a connect of this agent
 * completed within REDIAL_BUSY_MS), a waiting connect is dialled again
 * every REDIAL_FAST_MS, give or take half of it, so that the retries of one
 * burst do not come back as another burst, for its first REDIAL_FAST_TRIES
 * dials (about 100 ms); after those, or when the app has had nothing
 * complete for longer, the interval doubles up to REDIAL_MAX_MS. A
 * listener whose queue fills with handshakes it never accepts (a stalled
 * app) keeps "completing" connects, so the tries, not the app, bound the
 * fast phase: a stalled app costs a few dials a second per waiting
 * request, in its own container.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/agent.h"
#include "runner/proto.h"
#include "runner/runner.h"
#include "common/banned.h"

/*
 * Datagrams read from one socket per event, so that one busy channel
 * cannot starve the others (epoll is level-triggered: the rest comes back
 * on the next round).
 */
#define BATCH 64

/* Redials (see the top of the file). */
#define REDIAL_FAST_MS 4
#define REDIAL_BUSY_MS 100
#define REDIAL_FAST_TRIES 24
#define REDIAL_MAX_MS 640

/* A circular doubly-linked list; a link alone on itself is on no list. */
struct link {
    struct link *prev, *next;
};

#define LINK_ENTRY(l, type, member) ((type *)(void *)((char *)(l) - offsetof(type, member)))

static void link_init(struct link *l)
{
    l->prev = l->next = l;
}

static bool link_alone(const struct link *l)
{
    return l->next == l;
}

static void link_remove(struct link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

static void link_append(struct link *head, struct link *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

enum item_kind { ITEM_CONTROL = 1, ITEM_CHANNEL, ITEM_CONNECT };

/*
 * What an epoll event's data.ptr points at: the first member of a channel
 * and of a connect, so that freeing it frees the whole.
 */
struct item {
    enum item_kind kind;
    bool dead;                 /* dropped: later events of this batch are stale */
    struct item *next_dead;
};

struct channel {
    struct item item;
    int fd;
    uint32_t events;           /* EPOLLIN while it is read, EPOLLOUT while its outbox waits */
    struct link connects;      /* its connects in progress */
    struct link outbox;        /* answered connects the channel had no room for, oldest first */
};

struct connect {
    struct item item;
    struct channel *ch;
    uint64_t id;
    int fd;                    /* the TCP socket, -1 once closed */
    int32_t error;             /* the reply's errno, once answered */
    bool counted;              /* holds one of AGENT_MAX_CONNECTS */
    int64_t deadline_ms;
    int64_t redial_ms;         /* when it is dialled again if still in progress */
    unsigned dials;            /* how many times it was dialled */
    struct link by_channel;    /* on ch->connects, then on ch->outbox */
    struct link by_deadline;   /* on agent.deadlines while in progress */
    struct link by_redial;     /* on agent.redials while in progress */
};

struct agent {
    struct item control;
    int epfd, ctl_fd;
    uint16_t port;
    size_t n_channels, n_connects;
    /*
     * Connects in progress, earliest deadline first: each gets the same
     * timeout when it starts, so appending keeps the order.
     */
    struct link deadlines;
    /* The same connects by their next redial, earliest first (inserted in place). */
    struct link redials;
    int64_t last_connected_ms; /* when a connect last completed: the app is accepting */
    unsigned seed;             /* for the redial jitter */
    struct item *dead;         /* dropped during this batch, freed by agent_tick() */
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void bury(struct agent *a, struct item *it)
{
    it->dead = true;
    it->next_dead = a->dead;
    a->dead = it;
}

/* Ends the wait for a connect in progress (a no-op for one that is not). */
static void connect_unwatch(struct agent *a, struct connect *cn)
{
    if (!link_alone(&cn->by_deadline)) {
        link_remove(&cn->by_deadline);
        link_remove(&cn->by_redial);
        (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, cn->fd, NULL);
    }
}

static void connect_free(struct agent *a, struct connect *cn)
{
    connect_unwatch(a, cn);
    link_remove(&cn->by_channel);
    closep(&cn->fd);
    if (cn->counted)
        a->n_connects--;
    bury(a, &cn->item);
}

/* Closes the channel (its other end reads end of file) and frees its requests. */
static void channel_drop(struct agent *a, struct channel *ch)
{
    (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, ch->fd, NULL);
    closep(&ch->fd);
    while (!link_alone(&ch->connects))
        connect_free(a, LINK_ENTRY(ch->connects.next, struct connect, by_channel));
    while (!link_alone(&ch->outbox))
        connect_free(a, LINK_ENTRY(ch->outbox.next, struct connect, by_channel));
    a->n_channels--;
    bury(a, &ch->item);
}

static void channel_watch(struct agent *a, struct channel *ch, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = &ch->item };

    if (ch->events == events)
        return;
    if (epoll_ctl(a->epfd, EPOLL_CTL_MOD, ch->fd, &ev) < 0) {
        channel_drop(a, ch);
        return;
    }
    ch->events = events;
}

/*
 * Sends the outbox's replies in order until it is empty (then the channel
 * is read again) or the channel is full (then it is watched for room).
 */
static void channel_flush(struct agent *a, struct channel *ch)
{
    while (!link_alone(&ch->outbox)) {
        struct connect *cn = LINK_ENTRY(ch->outbox.next, struct connect, by_channel);
        char buf[PROTO_AGENT_REPLY_LEN];
        int r;

        proto_agent_put_reply(buf, cn->id, cn->error);
        r = proto_sendf(ch->fd, MSG_DONTWAIT, buf, sizeof(buf), &cn->fd, cn->error == 0 ? 1 : 0);
        if (r == -EAGAIN || r == -ENOBUFS) {
            channel_watch(a, ch, EPOLLOUT);
            return;
        }
        if (r < 0) {
            /* The reader is gone. */
            channel_drop(a, ch);
            return;
        }
        connect_free(a, cn);
    }
    channel_watch(a, ch, EPOLLIN);
}

/*
 * The connect has its answer, error or 0 with a connected socket: it goes
 * to its channel's outbox, which is sent at once if the channel has room.
 * That may find the channel's reader gone and drop the channel, cn with it.
 */
static void connect_answer(struct agent *a, struct connect *cn, int error)
{
    connect_unwatch(a, cn);
    /* -1 too (closep() leaves the number): connect_free() closes cn->fd again. */
    if (error) {
        closep(&cn->fd);
        cn->fd = -1;
    } else {
        a->last_connected_ms = now_ms();
    }
    cn->error = error;
    link_remove(&cn->by_channel);
    link_append(&cn->ch->outbox, &cn->by_channel);
    channel_flush(a, cn->ch);
}

/*
 * A TCP socket of the container's network namespace as the caller gets it
 * (runner.h), connected or not: O_CLOEXEC, non-blocking, TCP_NODELAY. The
 * fd or -errno.
 */
static int tcp_socket(void)
{
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        int r = -errno;

        (void)close(fd);
        return r;
    }
    return fd;
}

/* Opens cn->fd and dials: 1 in progress (and watched), 0 connected at once, -errno failed at once. */
static int connect_dial(struct agent *a, struct connect *cn)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(a->port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &cn->item };
    int r = tcp_socket();

    if (r < 0)
        return r;
    cn->fd = r;
    if (connect(cn->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -errno;
    /*
     * On loopback the handshake has usually completed by the time connect()
     * returns (the listener answered in the same softirq run): asking again
     * says so without a trip through epoll.
     */
    if (connect(cn->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EISCONN)
        return 0;
    if (errno != EALREADY)
        return -errno;
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, cn->fd, &ev) < 0)
        return -errno;
    return 1;
}

/* How long cn waits before its next dial (see the top of the file). */
static int64_t redial_delay_ms(struct agent *a, const struct connect *cn, int64_t now)
{
    int64_t slow = REDIAL_FAST_MS;
    unsigned n = cn->dials;

    if (n <= REDIAL_FAST_TRIES && now - a->last_connected_ms <= REDIAL_BUSY_MS)
        return REDIAL_FAST_MS / 2 + rand_r(&a->seed) % (REDIAL_FAST_MS + 1);
    if (n > REDIAL_FAST_TRIES)
        n -= REDIAL_FAST_TRIES;
    for (unsigned i = 1; i < n && slow < REDIAL_MAX_MS; i++)
        slow *= 2;
    return slow < REDIAL_MAX_MS ? slow : REDIAL_MAX_MS;
}

/* Puts cn on agent.redials in time order, searching from the latest (new times are mostly late). */
static void redial_schedule(struct agent *a, struct connect *cn, int64_t now)
{
    struct link *after = a->redials.prev;

    cn->redial_ms = now + redial_delay_ms(a, cn, now);
    while (after != &a->redials && LINK_ENTRY(after, struct connect, by_redial)->redial_ms > cn->redial_ms)
        after = after->prev;
    link_append(after->next, &cn->by_redial);
}

/* 1: in progress, 0: connected at once, -errno: failed at once. */
static int connect_start(struct agent *a, struct connect *cn)
{
    int64_t now;
    int r = connect_dial(a, cn);

    if (r <= 0)
        return r;
    now = now_ms();
    cn->deadline_ms = now + RUNNER_AGENT_CONNECT_TIMEOUT_MS;
    link_append(&a->deadlines, &cn->by_deadline);
    cn->dials = 1;
    redial_schedule(a, cn, now);
    link_append(&cn->ch->connects, &cn->by_channel);
    return 1;
}

/*
 * cn has waited its interval: unless its handshake has completed meanwhile
 * (a second connect() on the socket says so), it is dialled again on a new
 * socket and waits the next interval. Closing a socket in SYN_SENT sends
 * nothing to the app.
 */
static void connect_redial(struct agent *a, struct connect *cn, int64_t now)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(a->port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int r;

    link_remove(&cn->by_redial);
    if (connect(cn->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EISCONN) {
        connect_answer(a, cn, 0);
        return;
    }
    if (errno != EALREADY && errno != EINPROGRESS) {
        connect_answer(a, cn, errno);
        return;
    }
    (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, cn->fd, NULL);
    closep(&cn->fd);
    r = connect_dial(a, cn);
    cn->dials++;
    if (r == 1)
        redial_schedule(a, cn, now);
    else
        connect_answer(a, cn, -r);
}

static void channel_request(struct agent *a, struct channel *ch, uint64_t id)
{
    struct connect *cn = xcalloc(1, sizeof(*cn));
    int r;

    cn->item.kind = ITEM_CONNECT;
    cn->ch = ch;
    cn->id = id;
    cn->fd = -1;
    link_init(&cn->by_channel);
    link_init(&cn->by_deadline);
    link_init(&cn->by_redial);
    if (a->port == 0) {
        connect_answer(a, cn, ENOTCONN);
        return;
    }
    /*
     * A refusal takes no slot: one the channel has no room for stops the
     * channel's reading until it is sent, so at most one per channel waits.
     */
    if (a->n_connects >= AGENT_MAX_CONNECTS) {
        connect_answer(a, cn, EAGAIN);
        return;
    }
    cn->counted = true;
    a->n_connects++;
    r = connect_start(a, cn);
    if (r <= 0)
        connect_answer(a, cn, -r);
}

/*
 * A stock request for n sockets (1..PROTO_AGENT_STOCK_MAX): as many as can
 * be made, none without a port, sent at once or not at all (see the top of
 * the file). The channel's outbox is empty: channel_read() reads only then.
 */
static void channel_stock(struct agent *a, struct channel *ch, uint32_t n)
{
    int fds[PROTO_AGENT_STOCK_MAX];
    size_t made = 0;
    int r;

    while (a->port != 0 && made < n && (r = tcp_socket()) >= 0)
        fds[made++] = r;
    r = proto_agent_send_stock(ch->fd, a->port, fds, made);
    /* The sockets live on in the reader, if they went. */
    for (size_t i = 0; i < made; i++)
        (void)close(fds[i]);
    if (r < 0 && r != -EAGAIN && r != -ENOBUFS && r != -ETOOMANYREFS)
        /* The reader is gone. */
        channel_drop(a, ch);
}

static void channel_read(struct agent *a, struct channel *ch)
{
    for (int i = 0; i < BATCH && !ch->item.dead && ch->events == EPOLLIN; i++) {
        char buf[PROTO_AGENT_REQUEST_LEN + 1];
        uint64_t id;
        uint32_t want;
        ssize_t n;

        /* Without a control buffer, fds sent along are closed by the kernel. */
        n = recv(ch->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            return;
        if (n == PROTO_AGENT_REQUEST_LEN) {
            memcpy(&id, buf, sizeof(id));
            channel_request(a, ch, id);
            continue;
        }
        if (n == PROTO_AGENT_STOCK_REQUEST_LEN) {
            memcpy(&want, buf, sizeof(want));
            if (want >= 1 && want <= PROTO_AGENT_STOCK_MAX) {
                channel_stock(a, ch, want);
                continue;
            }
        }
        /* End of file, a broken channel, a request of the wrong size or a stock out of range. */
        channel_drop(a, ch);
        return;
    }
}

static void channel_add(struct agent *a, int fd)
{
    struct channel *ch;
    struct epoll_event ev = { .events = EPOLLIN };

    if (a->n_channels >= AGENT_MAX_CHANNELS) {
        (void)close(fd);
        return;
    }
    ch = xcalloc(1, sizeof(*ch));
    ch->item.kind = ITEM_CHANNEL;
    ch->fd = fd;
    ch->events = EPOLLIN;
    link_init(&ch->connects);
    link_init(&ch->outbox);
    ev.data.ptr = &ch->item;
    if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        (void)close(fd);
        free(ch);
        return;
    }
    a->n_channels++;
}

/*
 * The daemon let go of the agent socket: no new channels, while those
 * already open keep being served.
 */
static void control_close(struct agent *a)
{
    (void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->ctl_fd, NULL);
    closep(&a->ctl_fd);
    /* control_read() stops at -1; closep() leaves the number. */
    a->ctl_fd = -1;
}

static void control_read(struct agent *a)
{
    for (int i = 0; i < BATCH && a->ctl_fd >= 0; i++) {
        char buf[2];
        int fd = -1;
        size_t n_fds;
        ssize_t n;

        n = proto_recvf(a->ctl_fd, MSG_DONTWAIT, buf, sizeof(buf), &fd, 1, &n_fds);
        if (n == -EAGAIN || n == -ENOMEM || n == -ENOBUFS)
            return;
        /*
         * Too long, or carrying more fds than one, or one this process had
         * no room for (the kernel closed it, so its other end reads end of
         * file): proto_recvf() closed what did arrive.
         */
        if (n == -EMSGSIZE)
            continue;
        if (n <= 0) {
            control_close(a);
            return;
        }
        if (n == 1 && buf[0] == PROTO_AGENT_CHANNEL && n_fds == 1)
            channel_add(a, fd);
        else if (n_fds)
            (void)close(fd);
    }
}

static void connect_event(struct agent *a, struct connect *cn, uint32_t events)
{
    int error = 0;
    socklen_t len = sizeof(error);

    if (getsockopt(cn->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
        error = errno;
    else if (error == 0 && !(events & EPOLLOUT))
        error = ECONNRESET;
    connect_answer(a, cn, error);
}

void agent_handle(struct agent *a, const struct epoll_event *ev)
{
    struct item *it = ev->data.ptr;

    if (it->dead)
        return;
    switch (it->kind) {
    case ITEM_CONTROL:
        control_read(a);
        break;
    case ITEM_CHANNEL: {
        struct channel *ch = (struct channel *)it;

        /* Its reader closed it (or it broke): nobody is left to answer. */
        if (ev->events & (EPOLLHUP | EPOLLERR)) {
            channel_drop(a, ch);
            break;
        }
        if (ev->events & EPOLLOUT)
            channel_flush(a, ch);
        if (!it->dead && (ev->events & EPOLLIN))
            channel_read(a, ch);
        break;
    }
    case ITEM_CONNECT:
        connect_event(a, (struct connect *)it, ev->events);
        break;
    default:
        abort();
    }
}

int agent_timeout_ms(const struct agent *a)
{
    int64_t first, left;

    if (link_alone(&a->deadlines))
        return -1;
    first = LINK_ENTRY(a->deadlines.next, struct connect, by_deadline)->deadline_ms;
    if (!link_alone(&a->redials)) {
        int64_t at = LINK_ENTRY(a->redials.next, struct connect, by_redial)->redial_ms;

        first = at < first ? at : first;
    }
    left = first - now_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

void agent_tick(struct agent *a)
{
    int64_t now = now_ms();

    while (!link_alone(&a->deadlines)) {
        struct connect *cn = LINK_ENTRY(a->deadlines.next, struct connect, by_deadline);

        if (cn->deadline_ms > now)
            break;
        connect_answer(a, cn, ETIMEDOUT);
    }
    /* A redial puts the connect back at least a millisecond later: the loop ends. */
    while (!link_alone(&a->redials)) {
        struct connect *cn = LINK_ENTRY(a->redials.next, struct connect, by_redial);

        if (cn->redial_ms > now)
            break;
        connect_redial(a, cn, now);
    }
    while (a->dead) {
        struct item *it = a->dead;

        a->dead = it->next_dead;
        free(it);
    }
}

/*
 * Every channel and every connect holds an fd, and a stock as many as it
 * has sockets while it is sent; the daemon's soft limit is often 1024,
 * below what the caps above allow. Only the soft limit moves,
 * which needs no privilege, and only in the init: the app was forked
 * before and keeps the daemon's.
 */
static void raise_fd_limit(void)
{
    const rlim_t want = AGENT_MAX_CHANNELS + AGENT_MAX_CONNECTS + PROTO_AGENT_STOCK_MAX + 64;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

int agent_new(int epfd, int ctl_fd, uint16_t port, struct agent **ret)
{
    struct agent *a = xcalloc(1, sizeof(*a));
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &a->control };

    a->control.kind = ITEM_CONTROL;
    a->epfd = epfd;
    a->ctl_fd = ctl_fd;
    a->port = port;
    link_init(&a->deadlines);
    link_init(&a->redials);
    a->seed = (unsigned)getpid() ^ (unsigned)now_ms();
    a->last_connected_ms = INT64_MIN / 2;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, ctl_fd, &ev) < 0) {
        int r = -errno;

        free(a);
        return r;
    }
    raise_fd_limit();
    *ret = a;
    return 0;
}
