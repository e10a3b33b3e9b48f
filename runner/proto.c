/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon <-> spawner wire (see proto.h): a tiny length-checked binary
 * encoding of runner_spec, of the tree requests and of every reply,
 * datagrams with SCM_RIGHTS, the port agent's replies and stocks, the
 * error reports a container's setup code sends back to the spawner, and fd
 * hygiene for the processes the spawner creates.
 */
#include <errno.h>
#include <limits.h>
#include <linux/close_range.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/proto.h"
#include "common/banned.h"

#define NULL_STR 0xffffffffu

/*
 * Room for the fds of one datagram: a port agent's stock is the most any
 * message carries (the others stop at PROTO_MAX_FDS).
 */
#define CONTROL_FDS PROTO_AGENT_STOCK_MAX
_Static_assert(CONTROL_FDS >= PROTO_MAX_FDS, "the control buffer holds every message's fds");

void proto_put_u64(struct strbuf *sb, uint64_t v)
{
    strbuf_add(sb, &v, sizeof(v));
}

void proto_put_str(struct strbuf *sb, const char *s)
{
    uint32_t len = NULL_STR;

    if (s) {
        size_t n = strlen(s) + 1;
        len = n > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)n;
    }
    strbuf_add(sb, &len, sizeof(len));
    if (s)
        strbuf_add(sb, s, len);
}

void proto_put_strv(struct strbuf *sb, const char *const *v)
{
    uint64_t n = 0;

    while (v && v[n])
        n++;
    proto_put_u64(sb, n);
    for (uint64_t i = 0; i < n; i++)
        proto_put_str(sb, v[i]);
}

uint64_t proto_get_u64(struct proto_reader *r)
{
    uint64_t v;

    if (r->bad || r->left < sizeof(v)) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->p, sizeof(v));
    r->p += sizeof(v);
    r->left -= sizeof(v);
    return v;
}

const char *proto_get_str(struct proto_reader *r)
{
    uint32_t len;
    const char *s;

    if (r->bad || r->left < sizeof(len)) {
        r->bad = true;
        return NULL;
    }
    memcpy(&len, r->p, sizeof(len));
    r->p += sizeof(len);
    r->left -= sizeof(len);
    if (len == NULL_STR)
        return NULL;
    /* The NUL must be the last byte and the only one. */
    if (len == 0 || len > r->left || r->p[len - 1] != '\0' || strlen(r->p) != len - 1) {
        r->bad = true;
        return NULL;
    }
    s = r->p;
    r->p += len;
    r->left -= len;
    return s;
}

const char **proto_get_strv(struct proto_reader *r)
{
    uint64_t n = proto_get_u64(r);
    const char **v;

    if (r->bad || n > PROTO_MAX_LIST) {
        r->bad = true;
        return NULL;
    }
    v = xcalloc(n + 1, sizeof(*v));
    for (uint64_t i = 0; i < n; i++) {
        v[i] = proto_get_str(r);
        if (!v[i]) {
            r->bad = true;
            free(v);
            return NULL;
        }
    }
    return v;
}

void proto_put_spec(struct strbuf *sb, const struct runner_spec *spec)
{
    proto_put_str(sb, spec->name);
    proto_put_str(sb, spec->hostname);
    proto_put_u64(sb, spec->uid_base);
    proto_put_u64(sb, spec->gid_base);
    proto_put_u64(sb, spec->id_count);
    proto_put_strv(sb, spec->lower_dirs);
    proto_put_str(sb, spec->stack_dir);
    proto_put_str(sb, spec->state_dir);
    proto_put_u64(sb, spec->n_mounts);
    for (size_t i = 0; i < spec->n_mounts; i++) {
        proto_put_str(sb, spec->mounts[i].source);
        proto_put_str(sb, spec->mounts[i].target);
        proto_put_u64(sb, spec->mounts[i].writable);
        proto_put_u64(sb, spec->mounts[i].hidden);
    }
    proto_put_strv(sb, spec->argv);
    proto_put_strv(sb, spec->envp);
    proto_put_str(sb, spec->cwd);
    proto_put_u64(sb, spec->uid);
    proto_put_u64(sb, spec->gid);
    proto_put_u64(sb, spec->port);
    proto_put_str(sb, spec->cgroup);
    proto_put_u64(sb, spec->limits.memory_bytes);
    proto_put_u64(sb, spec->limits.pids_max);
    proto_put_u64(sb, spec->limits.cpu_weight);
    proto_put_u64(sb, spec->limits.file_size_max);
    proto_put_u64(sb, spec->limits.cpu_quota_millis);
    proto_put_u64(sb, spec->network);
}

int proto_get_spec(struct proto_reader *r, struct runner_spec *spec)
{
    uint64_t n;

    memset(spec, 0, sizeof(*spec));
    spec->stdout_fd = spec->stderr_fd = spec->stdin_fd = -1;
    spec->name = proto_get_str(r);
    spec->hostname = proto_get_str(r);
    spec->uid_base = proto_get_u64(r);
    spec->gid_base = proto_get_u64(r);
    spec->id_count = proto_get_u64(r);
    spec->lower_dirs = proto_get_strv(r);
    spec->stack_dir = proto_get_str(r);
    spec->state_dir = proto_get_str(r);
    n = proto_get_u64(r);
    if (r->bad || n > PROTO_MAX_LIST)
        goto bad;
    if (n) {
        struct runner_mount *m = xcalloc(n, sizeof(*m));

        spec->mounts = m;
        spec->n_mounts = n;
        for (size_t i = 0; i < n; i++) {
            m[i].source = proto_get_str(r);
            m[i].target = proto_get_str(r);
            m[i].writable = proto_get_u64(r) != 0;
            m[i].hidden = proto_get_u64(r) != 0;
            if (!m[i].source || !m[i].target)
                goto bad;
        }
    }
    spec->argv = proto_get_strv(r);
    spec->envp = proto_get_strv(r);
    spec->cwd = proto_get_str(r);
    spec->uid = (unsigned)proto_get_u64(r);
    spec->gid = (unsigned)proto_get_u64(r);
    spec->port = (uint16_t)proto_get_u64(r);
    spec->cgroup = proto_get_str(r);
    spec->limits.memory_bytes = proto_get_u64(r);
    spec->limits.pids_max = proto_get_u64(r);
    spec->limits.cpu_weight = proto_get_u64(r);
    spec->limits.file_size_max = proto_get_u64(r);
    spec->limits.cpu_quota_millis = proto_get_u64(r);
    spec->network = proto_get_u64(r) != 0;
    if (r->bad || r->left != 0 || !spec->lower_dirs || !spec->argv || !spec->envp)
        goto bad;
    return 0;
bad:
    proto_spec_release(spec);
    return -EBADMSG;
}

void proto_spec_release(struct runner_spec *spec)
{
    free((void *)spec->lower_dirs);
    free((void *)spec->mounts);
    free((void *)spec->argv);
    free((void *)spec->envp);
    spec->lower_dirs = spec->argv = spec->envp = NULL;
    spec->mounts = NULL;
    spec->n_mounts = 0;
}

/* Messages are short; cut, rather than lose, an overlong one. */
#define MAX_REPLY_MSG 2048

void proto_put_reply(struct strbuf *sb, int code, const char *msg, uint64_t v0, uint64_t v1)
{
    _cleanup_free_ char *cut = NULL;

    if (msg && strlen(msg) > MAX_REPLY_MSG)
        msg = cut = xstrndup(msg, MAX_REPLY_MSG);
    proto_put_u64(sb, code > 0 ? (uint64_t)code : 0);
    proto_put_str(sb, code > 0 ? (msg ? msg : "") : NULL);
    proto_put_u64(sb, v0);
    proto_put_u64(sb, v1);
}

int proto_send_reply(int sock, int code, const char *msg, uint64_t v0, uint64_t v1)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    proto_put_reply(&sb, code, msg, v0, v1);
    return proto_send(sock, sb.buf, sb.len, NULL, 0);
}

int proto_get_reply(const void *buf, size_t len, struct proto_reply *ret)
{
    struct proto_reader rd = { .p = buf, .left = len };
    uint64_t code = proto_get_u64(&rd);
    const char *msg = proto_get_str(&rd);
    uint64_t v0 = proto_get_u64(&rd), v1 = proto_get_u64(&rd);

    if (rd.bad || rd.left != 0 || code > 4095 || (code != 0) != (msg != NULL))
        return -EBADMSG;
    *ret = (struct proto_reply){ .code = (int)code, .msg = msg, .v = { v0, v1 } };
    return 0;
}

void proto_put_tree_req(struct strbuf *sb, enum proto_request type, const char *const *paths,
                        const char *const *then_remove, unsigned long uid_base, unsigned long gid_base,
                        unsigned long id_count)
{
    proto_put_u64(sb, type);
    proto_put_strv(sb, paths);
    proto_put_strv(sb, then_remove);
    proto_put_u64(sb, uid_base);
    proto_put_u64(sb, gid_base);
    proto_put_u64(sb, id_count);
}

int proto_get_tree_req(struct proto_reader *r, struct proto_tree_req *ret)
{
    struct proto_tree_req req = { .paths = proto_get_strv(r) };

    req.then_remove = proto_get_strv(r);
    req.uid_base = proto_get_u64(r);
    req.gid_base = proto_get_u64(r);
    req.id_count = proto_get_u64(r);
    if (r->bad || r->left != 0 || !req.paths || !req.then_remove) {
        proto_tree_req_release(&req);
        return -EBADMSG;
    }
    *ret = req;
    return 0;
}

void proto_tree_req_release(struct proto_tree_req *req)
{
    free((void *)req->paths);
    free((void *)req->then_remove);
    req->paths = NULL;
    req->then_remove = NULL;
}

int proto_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
    return proto_sendf(sock, 0, buf, len, fds, n_fds);
}

/* One sendmsg of buf with n_fds (at most CONTROL_FDS) fds; 0 or -errno. */
static int send_fds(int sock, int flags, const void *buf, size_t len, const int *fds, size_t n_fds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * CONTROL_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    if (n_fds > CONTROL_FDS || len > PROTO_MAX_MSG)
        return -EMSGSIZE;
    if (n_fds) {
        struct cmsghdr *cmsg;

        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
    }
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return (size_t)n == len ? 0 : -EMSGSIZE;
}

int proto_sendf(int sock, int flags, const void *buf, size_t len, const int *fds, size_t n_fds)
{
    if (n_fds > PROTO_MAX_FDS)
        return -EMSGSIZE;
    return send_fds(sock, flags, buf, len, fds, n_fds);
}

ssize_t proto_recv(int sock, void *buf, size_t cap, int *fds, size_t max_fds, size_t *n_fds)
{
    return proto_recvf(sock, 0, buf, cap, fds, max_fds, n_fds);
}

/*
 * One recvmsg: the datagram's bytes, and the fds it carried in fds[] (up
 * to max_fds; those past it are closed, which sets MSG_CTRUNC in
 * *ret_flags, as does an fd the kernel could not install). Returns the
 * length, 0 on end of file, or -errno.
 */
static ssize_t recv_fds(int sock, int flags, void *buf, size_t cap, int *fds, size_t max_fds,
                        size_t *n_fds, int *ret_flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * CONTROL_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control.buf, .msg_controllen = sizeof(control.buf),
    };
    size_t got = 0;
    ssize_t n;

    *n_fds = 0;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (got < max_fds) {
                fds[got++] = fd;
            } else {
                (void)close(fd);
                msg.msg_flags |= MSG_CTRUNC;
            }
        }
    }
    *n_fds = got;
    *ret_flags = msg.msg_flags;
    return n;
}

ssize_t proto_recvf(int sock, int flags, void *buf, size_t cap, int *fds, size_t max_fds,
                    size_t *n_fds)
{
    int msg_flags = 0;
    ssize_t n = recv_fds(sock, flags, buf, cap, fds, max_fds, n_fds, &msg_flags);

    if (n >= 0 && (msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        for (size_t i = 0; i < *n_fds; i++)
            (void)close(fds[i]);
        *n_fds = 0;
        return -EMSGSIZE;
    }
    return n;
}

void proto_agent_put_reply(char buf[PROTO_AGENT_REPLY_LEN], uint64_t id, int32_t error)
{
    memcpy(buf, &id, sizeof(id));
    memcpy(buf + sizeof(id), &error, sizeof(error));
}

int proto_agent_send_stock(int sock, uint16_t port, const int *fds, size_t n)
{
    char buf[PROTO_AGENT_STOCK_LEN];
    uint16_t count = (uint16_t)n;

    if (n > PROTO_AGENT_STOCK_MAX)
        return -EMSGSIZE;
    memcpy(buf, &port, sizeof(port));
    memcpy(buf + sizeof(port), &count, sizeof(count));
    return send_fds(sock, MSG_DONTWAIT, buf, sizeof(buf), fds, n);
}

/* An answer that holds no socket yet. */
static void answer_init(struct runner_agent_answer *a, bool is_stock)
{
    *a = (struct runner_agent_answer){ .is_stock = is_stock, .sock = -1 };
    for (size_t i = 0; i < PROTO_AGENT_STOCK_MAX; i++)
        a->stock[i] = -1;
}

/* A connect reply (PROTO_AGENT_REPLY_LEN bytes in buf) into *ret; 0 or -EBADMSG. */
static int connect_answer(const char *buf, const int *fds, size_t n_fds, int msg_flags,
                          struct runner_agent_answer *ret)
{
    uint64_t id;
    int32_t error;

    memcpy(&id, buf, sizeof(id));
    memcpy(&error, buf + sizeof(id), sizeof(error));
    /* The socket did not fit in this process's fd table: the kernel closed it. */
    if ((msg_flags & MSG_CTRUNC) && error == 0 && n_fds == 0)
        error = EMFILE;
    if (error < 0 || error > 4095 || n_fds > 1 || (error == 0) != (n_fds == 1))
        return -EBADMSG;
    answer_init(ret, false);
    ret->id = id;
    ret->error = error;
    ret->sock = error == 0 ? fds[0] : -1;
    return 0;
}

/* A stock reply (PROTO_AGENT_STOCK_LEN bytes in buf) into *ret; 0 or -EBADMSG. */
static int stock_answer(const char *buf, const int *fds, size_t n_fds, int msg_flags,
                        struct runner_agent_answer *ret)
{
    uint16_t port, count;

    memcpy(&port, buf, sizeof(port));
    memcpy(&count, buf + sizeof(port), sizeof(count));
    /*
     * Fewer fds than the count only when the rest did not fit in this
     * process's fd table (the kernel closed them): the stock is what came.
     */
    if (count > PROTO_AGENT_STOCK_MAX || (port == 0 && count != 0) || n_fds > count ||
        (n_fds < count && !(msg_flags & MSG_CTRUNC)))
        return -EBADMSG;
    answer_init(ret, true);
    ret->port = port;
    ret->n_stock = (unsigned)n_fds;
    memcpy(ret->stock, fds, n_fds * sizeof(*fds));
    return 0;
}

int proto_agent_recv_answer(int sock, struct runner_agent_answer *ret)
{
    char buf[PROTO_AGENT_REPLY_LEN + 1];
    int fds[PROTO_AGENT_STOCK_MAX], msg_flags = 0, r = -EBADMSG;
    size_t n_fds = 0;
    ssize_t n;

    n = recv_fds(sock, MSG_DONTWAIT, buf, sizeof(buf), fds, PROTO_AGENT_STOCK_MAX, &n_fds, &msg_flags);
    /*
     * A unix socket closed with datagrams still unread in it (requests the
     * init never got to: it exited, or refused the channel) gives its peer
     * one ECONNRESET before end of file. It is the same end.
     */
    if (n == -ECONNRESET)
        return 0;
    if (n < 0)
        return (int)n;
    if (n == 0)
        r = 0;
    else if (msg_flags & MSG_TRUNC)
        r = -EBADMSG;
    else if (n == PROTO_AGENT_REPLY_LEN)
        r = connect_answer(buf, fds, n_fds, msg_flags, ret);
    else if (n == PROTO_AGENT_STOCK_LEN)
        r = stock_answer(buf, fds, n_fds, msg_flags, ret);
    if (r < 0 || n == 0) {
        for (size_t i = 0; i < n_fds; i++)
            (void)close(fds[i]);
        return r;
    }
    return 1;
}

void proto_report_ok(int sock)
{
    (void)send(sock, "K", 1, MSG_NOSIGNAL);
}

void proto_report_error(int sock, int code, const char *msg)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    size_t len;

    strbuf_addch(&sb, 'E');
    proto_put_u64(&sb, code > 0 ? (uint64_t)code : EIO);
    /* Messages are short; cut, rather than lose, an overlong one. */
    len = strlen(msg);
    strbuf_add(&sb, msg, len > 2048 ? 2048 : len);
    (void)send(sock, sb.buf, sb.len, MSG_NOSIGNAL);
}

int proto_report_read(int sock, const char *what, struct berth_error **err)
{
    char buf[4096];
    struct proto_reader r;
    size_t n_fds;
    uint64_t code;
    ssize_t n;

    n = proto_recv(sock, buf, sizeof(buf) - 1, NULL, 0, &n_fds);
    /*
     * A child that failed and exited with our message (the release) still
     * unread in its queue leaves ECONNRESET on this socket; the kernel
     * reports it once, ahead of the report the child queued before it
     * went, which the next read returns.
     */
    if (n == -ECONNRESET)
        n = proto_recv(sock, buf, sizeof(buf) - 1, NULL, 0, &n_fds);
    if (n < 0)
        return berth_error_make(err, (int)-n, "reading the setup report of %s", what);
    if (n == 0)
        return berth_error_plain(err, ECHILD, "%s died during setup without a report", what);
    if (buf[0] == 'K')
        return 0;
    r = (struct proto_reader){ .p = buf + 1, .left = (size_t)n - 1 };
    code = proto_get_u64(&r);
    if (buf[0] != 'E' || r.bad || code == 0 || code > 4095)
        return berth_error_plain(err, EBADMSG, "%s sent a malformed setup report", what);
    buf[n] = '\0';
    return berth_error_plain(err, (int)code, "%s: %s", what, r.p);
}

void proto_close_all_except(const int *keep, size_t n_keep)
{
    /* Walk the kept fds in ascending order, closing the gaps between them. */
    unsigned int from = 3;

    for (;;) {
        unsigned int next = UINT_MAX;

        for (size_t i = 0; i < n_keep; i++)
            if (keep[i] >= (int)from && (unsigned int)keep[i] < next)
                next = (unsigned int)keep[i];
        if (next == UINT_MAX) {
            (void)syscall(SYS_close_range, from, ~0U, 0);
            return;
        }
        if (next > from)
            (void)syscall(SYS_close_range, from, next - 1, 0);
        from = next + 1;
    }
}
