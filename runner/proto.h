/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the wire between the daemon and its spawner, between a
 * container's setup code and the spawner, from a tree worker to the daemon,
 * and between the daemon and a container's port agent (its own section
 * below). Every message is one SOCK_SEQPACKET datagram (so message
 * boundaries and the fds that travel with a message by SCM_RIGHTS stay
 * together), holding a small binary encoding: u64 numbers and strings as a
 * u32 length (including the NUL) followed by the bytes, NULL strings as
 * length 0xffffffff. The decoder checks every length against what is left
 * and hands out pointers into the received buffer, so a decoded runner_spec
 * lives as long as that buffer.
 *
 * Every request gets one reply on the same socket (struct proto_reply). The
 * tree requests (remove, seal, usage) are the exception to "one reply is
 * the whole answer": they carry a second socket, made by the daemon, and the
 * spawner's reply only says that a worker started; the worker itself sends
 * the result, another proto_reply, on the passed socket. So a removal that
 * takes seconds never holds the request socket, and with it every spawn.
 */
#ifndef BERTH_RUNNER_PROTO_H
#define BERTH_RUNNER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "runner/runner.h"

/*
 * The cap on one message. A spec carries argv and the whole environment
 * (config vars), so it is generous, but it stays below the default
 * net.core.wmem_max, which bounds a single SEQPACKET datagram.
 */
#define PROTO_MAX_MSG (160 * 1024)
#define PROTO_MAX_FDS 4
/* Caps on the lists inside a spec; more is refused, not truncated. */
#define PROTO_MAX_LIST 4096

/*
 * Requests, and the values (v[0], v[1]) and fds of their successful reply.
 * The tree requests' arguments are a proto_tree_req and their one fd is the
 * socket the worker answers on; the result's v[0] is the byte count for
 * REQ_USAGE and for a REQ_SEAL that measures, 0 otherwise. Any of them may name trees to remove once its
 * job is done (then_remove), in the same worker.
 */
enum proto_request {
    REQ_SPAWN = 1,    /* spec; fds: stdout, stderr. Reply: pid, container id; fds: agent, status, pidfd */
    REQ_REAP = 2,     /* container id, once its init exited (else EBUSY). Reply: memory peak, OOM kills */
    REQ_REMOVE = 3,   /* tree request with one path */
    REQ_SEAL = 4,     /* tree request: the path to seal, then any to measure with it (v[0]) */
    REQ_USAGE = 5,    /* tree request with any number of paths */
    REQ_RELEASE = 6,  /* container id, once its status was heard. Reply: memory peak, OOM kills */
};

/* A decoded reply; msg points into the received buffer. */
struct proto_reply {
    int code;          /* 0, or a positive errno */
    const char *msg;   /* NULL on success */
    uint64_t v[2];
};

/* A decoded tree request; paths is malloc'ed, its strings point into the buffer. */
struct proto_tree_req {
    const char **paths;         /* NULL-terminated */
    const char **then_remove;   /* NULL-terminated: removed after the job, whatever its outcome */
    unsigned long uid_base, gid_base, id_count;
};

struct proto_reader {
    const char *p;
    size_t left;
    bool bad;
};

void proto_put_u64(struct strbuf *sb, uint64_t v);
void proto_put_str(struct strbuf *sb, const char *s);
void proto_put_strv(struct strbuf *sb, const char *const *v);

uint64_t proto_get_u64(struct proto_reader *r);
const char *proto_get_str(struct proto_reader *r);
/* A NULL-terminated array (malloc'ed, the strings point into the buffer). */
const char **proto_get_strv(struct proto_reader *r);

/* Encodes a spec (without its fds, which travel as SCM_RIGHTS). */
void proto_put_spec(struct strbuf *sb, const struct runner_spec *spec);
/*
 * Decodes a spec into *spec; the arrays it allocates are freed with
 * proto_spec_release(). Fails with EBADMSG on a malformed message.
 */
int proto_get_spec(struct proto_reader *r, struct runner_spec *spec);
void proto_spec_release(struct runner_spec *spec);

void proto_put_reply(struct strbuf *sb, int code, const char *msg, uint64_t v0, uint64_t v1);
/* Builds and sends a reply (no fds); 0 or -errno. */
int proto_send_reply(int sock, int code, const char *msg, uint64_t v0, uint64_t v1);
/* Fails with EBADMSG on a malformed reply or a code that is no errno. */
int proto_get_reply(const void *buf, size_t len, struct proto_reply *ret);

void proto_put_tree_req(struct strbuf *sb, enum proto_request type, const char *const *paths,
                        const char *const *then_remove, unsigned long uid_base, unsigned long gid_base,
                        unsigned long id_count);
/* After the type: fails with EBADMSG on a malformed request; release with proto_tree_req_release(). */
int proto_get_tree_req(struct proto_reader *r, struct proto_tree_req *ret);
void proto_tree_req_release(struct proto_tree_req *req);

/* Sends one datagram with up to PROTO_MAX_FDS fds. Returns 0 or -errno. */
int proto_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);
/* proto_send() with sendmsg flags besides MSG_NOSIGNAL (MSG_DONTWAIT). */
int proto_sendf(int sock, int flags, const void *buf, size_t len, const int *fds, size_t n_fds);
/*
 * Receives one datagram of at most `cap` bytes; the fds it carried are
 * returned O_CLOEXEC in fds[] (*n_fds of them, at most max_fds; extra or
 * truncated messages are an error and their fds are closed). Returns the
 * length, 0 on end of file, or -errno.
 */
ssize_t proto_recv(int sock, void *buf, size_t cap, int *fds, size_t max_fds, size_t *n_fds);
/* proto_recv() with recvmsg flags besides MSG_CMSG_CLOEXEC (MSG_DONTWAIT). */
ssize_t proto_recvf(int sock, int flags, void *buf, size_t cap, int *fds, size_t max_fds,
                    size_t *n_fds);

/* ------------------------------------------------------------------------
 * The port agent (runner.h: runner_agent_*, runner_connect; served by
 * agent.c in every container's init). Two kinds of SOCK_SEQPACKET socket:
 *
 * The agent socket, one per container, made by the spawner: the daemon
 * holds one end, the init the other. It carries channels, daemon to init
 * only, and nothing ever comes back on it: each datagram is the single
 * byte PROTO_AGENT_CHANNEL with exactly one fd by SCM_RIGHTS, the init's
 * end of a socketpair the daemon made. The init ignores a datagram of any
 * other shape (closing what fds it carried), and closes a channel it
 * cannot take (past RUNNER_AGENT_MAX_CHANNELS), so that its other end
 * reads end of file.
 *
 * A channel, many per container, carries two kinds of request from the
 * daemon and their replies from the init. A connect request is exactly
 * PROTO_AGENT_REQUEST_LEN bytes, a u64 id (opaque to the init); its reply
 * exactly PROTO_AGENT_REPLY_LEN bytes, the u64 id of the request it answers
 * and an i32 errno: 0 with exactly one fd by SCM_RIGHTS, a TCP socket
 * connected to 127.0.0.1:<port> in the container's network namespace
 * (non-blocking, TCP_NODELAY), or a positive errno and no fd. Every connect
 * request gets exactly one reply while the channel lasts, in the order the
 * connects complete, not the order of the requests.
 *
 * A stock request is exactly PROTO_AGENT_STOCK_REQUEST_LEN bytes, a u32 n,
 * 1..PROTO_AGENT_STOCK_MAX: it asks for n TCP sockets made in the
 * container's network namespace and not connected (a socket connects in
 * the namespace it was made in, whoever calls connect()), for the daemon to
 * dial 127.0.0.1:<port> itself, without a round trip to the init per
 * connection. Its reply, sent as soon as the request is read, is exactly
 * PROTO_AGENT_STOCK_LEN bytes, a u16 port and a u16 count, with exactly
 * `count` fds by SCM_RIGHTS (none when count is 0): non-blocking,
 * TCP_NODELAY sockets to connect to 127.0.0.1:port. count is at most n,
 * fewer when the init could make no more (its fd limit), and 0, with port
 * 0, when the container has no port. A stock holds none of
 * RUNNER_AGENT_MAX_REQUESTS. Unlike a connect, a stock request may go
 * unanswered: one the init cannot send at once (the channel is full, or
 * too many of the init's fds are in flight) is dropped, sockets and all,
 * and the daemon asks again after a while. Replies keep their order: the
 * init reads a channel only once it has sent every reply it owes there.
 *
 * A datagram of another length, or a stock request for 0 or more than
 * PROTO_AGENT_STOCK_MAX sockets, ends the channel. The daemon ends a
 * channel by closing its end (which ends the connects in progress for it);
 * the init ends it by closing its own, or by exiting, and the daemon then
 * reads end of file (after one ECONNRESET when requests were left unread in
 * the init's end). Numbers are in host byte order: both ends run on one
 * host.
 */
#define PROTO_AGENT_CHANNEL 'C'
#define PROTO_AGENT_REQUEST_LEN 8
#define PROTO_AGENT_REPLY_LEN 12
#define PROTO_AGENT_STOCK_REQUEST_LEN 4
#define PROTO_AGENT_STOCK_LEN 4
#define PROTO_AGENT_STOCK_MAX RUNNER_AGENT_STOCK_MAX

/* Encodes a connect reply into buf. */
void proto_agent_put_reply(char buf[PROTO_AGENT_REPLY_LEN], uint64_t id, int32_t error);
/*
 * Sends a stock reply without waiting: port and the n (at most
 * PROTO_AGENT_STOCK_MAX) sockets in fds[], which stay the caller's to
 * close. 0 or -errno (-EAGAIN when the channel is full).
 */
int proto_agent_send_stock(int sock, uint16_t port, const int *fds, size_t n);
/*
 * Receives one reply, connect or stock, without waiting: 1 with *ret
 * filled (runner_agent_answer(); its fds O_CLOEXEC and the caller's); 0 at
 * the channel's end; -EAGAIN when none is waiting; -EBADMSG, closing what
 * fds came, for a reply of another length, a connect reply with an errno
 * outside 0..4095 or an fd where there should be none or none where there
 * should be one, or a stock reply whose count is past
 * PROTO_AGENT_STOCK_MAX, differs from its fds, or is not 0 with port 0.
 * Fds that did not fit in this process's fd table (the kernel closed them)
 * lose no reply: a connect reply comes back with EMFILE, so its id is not
 * lost, and a stock with the sockets that did fit.
 */
int proto_agent_recv_answer(int sock, struct runner_agent_answer *ret);

/*
 * Reports a setup error or success from a child to the spawner over a
 * SEQPACKET socket: 'K' alone, or 'E', a u64 errno and the message.
 * proto_report_read turns the report into a return value and *err.
 */
void proto_report_ok(int sock);
void proto_report_error(int sock, int code, const char *msg);
int proto_report_read(int sock, const char *what, struct berth_error **err);

/* Closes every fd >= 3 except those in keep[]. */
void proto_close_all_except(const int *keep, size_t n_keep);

#endif
