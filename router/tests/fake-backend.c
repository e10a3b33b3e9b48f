/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fake port agent of fake-backend.h. Its wire format is its own (an
 * 8-byte id or a 4-byte stock size in; an id, an errno and maybe a
 * descriptor, or a stock of descriptors, out): the router only ever speaks
 * through router_backend_ops, so the runner's real format is the runner's
 * tests' business.
 */
#include "router/tests/fake-backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct answer {
    uint64_t id;
    int32_t err;
    uint16_t port;                /* a stock: where its sockets connect */
    uint8_t is_stock;
    uint8_t n;                    /* a stock: how many descriptors came with it */
};

struct channel_thread {
    pthread_t thread;
    struct channel_thread *next;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct channel_thread *threads;

struct channel_arg {
    struct fake_backend *b;
    int fd;
};

static int dial(uint16_t port, int *ret_fd)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    /* A listener whose accept queue is full drops the SYN; the kernel would retry for two minutes. */
    struct timeval limit = { .tv_sec = 1 };

    if (fd < 0)
        return errno;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return e;
    }
    /* As the port agent hands them over (router.h). */
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        int e = errno;
        close(fd);
        return e;
    }
    *ret_fd = fd;
    return 0;
}

/* Sends answer a with its n descriptors. */
static int send_answer(int chan, const struct answer *a, const int *fds, size_t n)
{
    struct iovec iov = { .iov_base = (void *)a, .iov_len = sizeof(*a) };
    union {
        char buf[CMSG_SPACE(sizeof(int) * ROUTER_STOCK_MAX)];
        struct cmsghdr align;
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (n > 0) {
        struct cmsghdr *c;
        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    return sendmsg(chan, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* A stock of n unconnected sockets, as the agent makes them (router.h); none unless the backend offers one. */
static void send_stock(struct fake_backend *b, int chan, uint32_t n)
{
    struct answer a = { .is_stock = 1, .port = b->port };
    int fds[ROUTER_STOCK_MAX], one = 1;

    if (!b->stock || n == 0 || n > ROUTER_STOCK_MAX)
        return;
    for (; a.n < n; a.n++) {
        fds[a.n] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[a.n] < 0)
            break;
        (void)setsockopt(fds[a.n], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (send_answer(chan, &a, fds, a.n) == 0)
        atomic_fetch_add(&b->stocked, a.n);
    for (unsigned i = 0; i < a.n; i++)
        close(fds[i]);
}

static void *channel_main(void *arg)
{
    struct channel_arg *ca = arg;
    struct fake_backend *b = ca->b;
    int chan = ca->fd;

    free(ca);
    for (;;) {
        union {
            uint64_t id;
            uint32_t stock;
        } req;
        struct answer a = { 0 };
        ssize_t n = recv(chan, &req, sizeof(req), 0);
        int fd = -1;

        if (n < 0 && errno == EINTR)
            continue;
        if (n == (ssize_t)sizeof(req.stock)) {
            send_stock(b, chan, req.stock);
            continue;
        }
        if (n != (ssize_t)sizeof(req.id))
            break;
        atomic_fetch_add(&b->asked, 1);
        if (b->mode == FAKE_SILENT)
            continue;
        if (b->mode == FAKE_HANGUP)
            break;
        if (b->delay_ms)
            usleep(b->delay_ms * 1000);
        a.id = req.id;
        a.err = dial(b->port, &fd);
        atomic_fetch_add(&b->dials, 1);
        (void)send_answer(chan, &a, &fd, fd >= 0 ? 1 : 0);
        if (fd >= 0)
            close(fd);
    }
    close(chan);
    return NULL;
}

static int fake_open_channel(void *backend, int *ret_fd)
{
    struct fake_backend *b = backend;
    struct channel_thread *t;
    struct channel_arg *ca;
    int sv[2];

    if (b->mode == FAKE_GONE)
        return -ECONNREFUSED;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    (void)fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    if (b->sndbuf > 0)
        (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &b->sndbuf, sizeof(b->sndbuf));
    ca = calloc(1, sizeof(*ca));
    t = calloc(1, sizeof(*t));
    ca->b = b;
    ca->fd = sv[1];
    if (pthread_create(&t->thread, NULL, channel_main, ca) != 0) {
        close(sv[0]);
        close(sv[1]);
        free(ca);
        free(t);
        return -EAGAIN;
    }
    pthread_mutex_lock(&threads_lock);
    t->next = threads;
    threads = t;
    pthread_mutex_unlock(&threads_lock);
    atomic_fetch_add(&b->channels, 1);
    *ret_fd = sv[0];
    return 0;
}

static int fake_request(int channel_fd, uint64_t id)
{
    ssize_t n = send(channel_fd, &id, sizeof(id), MSG_NOSIGNAL | MSG_DONTWAIT);

    if (n == (ssize_t)sizeof(id))
        return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static int fake_ask_stock(int channel_fd, unsigned n)
{
    uint32_t v = n;
    ssize_t r = send(channel_fd, &v, sizeof(v), MSG_NOSIGNAL | MSG_DONTWAIT);

    if (r == (ssize_t)sizeof(v))
        return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static int fake_answer(int channel_fd, struct router_answer *ret)
{
    struct answer a;
    struct iovec iov = { .iov_base = &a, .iov_len = sizeof(a) };
    union {
        char buf[CMSG_SPACE(sizeof(int) * ROUTER_STOCK_MAX)];
        struct cmsghdr align;
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                          .msg_controllen = sizeof(u.buf) };
    ssize_t n = recvmsg(channel_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    struct cmsghdr *c;
    int fds[ROUTER_STOCK_MAX];
    size_t nfds = 0;

    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n == 0)
        return 0;
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
        }
    if (n != (ssize_t)sizeof(a) || (a.is_stock ? nfds != a.n : nfds > 1)) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return -EPROTO;
    }
    memset(ret, 0, sizeof(*ret));
    ret->is_stock = a.is_stock;
    ret->id = a.id;
    ret->error = a.err;
    ret->sock = !a.is_stock && nfds ? fds[0] : -1;
    ret->n_stock = a.is_stock ? a.n : 0;
    memcpy(ret->stock, fds, ret->n_stock * sizeof(int));
    ret->port = a.port;
    return 1;
}

static const char *fake_name(void *backend)
{
    return ((struct fake_backend *)backend)->name;
}

static void fake_hold(void *backend)
{
    atomic_fetch_add(&((struct fake_backend *)backend)->refs, 1);
}

static void fake_release(void *backend)
{
    atomic_fetch_sub(&((struct fake_backend *)backend)->refs, 1);
}

const struct router_backend_ops fake_backend_ops = {
    .open_channel = fake_open_channel,
    .request = fake_request,
    .ask_stock = fake_ask_stock,
    .answer = fake_answer,
    .name = fake_name,
    .hold = fake_hold,
    .release = fake_release,
};

void fake_backend_join_all(void)
{
    struct channel_thread *t, *next;

    pthread_mutex_lock(&threads_lock);
    t = threads;
    threads = NULL;
    pthread_mutex_unlock(&threads_lock);
    for (; t; t = next) {
        next = t->next;
        pthread_join(t->thread, NULL);
        free(t);
    }
}
