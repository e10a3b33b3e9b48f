/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fake port agent of fake-backend.h. Its wire format is its own (an
 * 8-byte id in, an id, an errno and maybe a descriptor out): the router
 * only ever speaks through router_backend_ops, so the runner's real
 * format is the runner's tests' business.
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
#include <unistd.h>

struct answer {
    uint64_t id;
    int32_t err;
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

    if (fd < 0)
        return errno;
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

static int send_answer(int chan, uint64_t id, int err, int fd)
{
    struct answer a = { .id = id, .err = err };
    struct iovec iov = { .iov_base = &a, .iov_len = sizeof(a) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (fd >= 0) {
        struct cmsghdr *c;
        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(chan, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void *channel_main(void *arg)
{
    struct channel_arg *ca = arg;
    struct fake_backend *b = ca->b;
    int chan = ca->fd;

    free(ca);
    for (;;) {
        uint64_t id;
        ssize_t n = recv(chan, &id, sizeof(id), 0);
        int fd = -1, err;

        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(id))
            break;
        if (b->mode == FAKE_SILENT)
            continue;
        if (b->mode == FAKE_HANGUP)
            break;
        if (b->delay_ms)
            usleep(b->delay_ms * 1000);
        err = dial(b->port, &fd);
        atomic_fetch_add(&b->dials, 1);
        (void)send_answer(chan, id, err, fd);
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

static int fake_reply(int channel_fd, uint64_t *ret_id, int *ret_sock, int *ret_errno)
{
    struct answer a;
    struct iovec iov = { .iov_base = &a, .iov_len = sizeof(a) };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                          .msg_controllen = sizeof(u.buf) };
    ssize_t n = recvmsg(channel_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    struct cmsghdr *c;

    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n == 0)
        return 0;
    if (n != (ssize_t)sizeof(a))
        return -EPROTO;
    *ret_id = a.id;
    *ret_sock = -1;
    *ret_errno = a.err;
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(ret_sock, CMSG_DATA(c), sizeof(int));
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
    .reply = fake_reply,
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
