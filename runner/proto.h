/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the wire between the daemon and its spawner, and between
 * a container's setup code and the spawner. Every message is one
 * SOCK_SEQPACKET datagram (so message boundaries and the fds that travel
 * with a message by SCM_RIGHTS stay together), holding a small binary
 * encoding: u64 numbers and strings as a u32 length (including the NUL)
 * followed by the bytes, NULL strings as length 0xffffffff. The decoder
 * checks every length against what is left and hands out pointers into the
 * received buffer, so a decoded runner_spec lives as long as that buffer.
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

enum proto_request {
    REQ_SPAWN = 1,    /* spec; fds: stdout, stderr */
    REQ_REAP = 2,     /* pid: reap the exited init, remove its cgroup */
    REQ_REMOVE = 3,   /* path, uid_base, gid_base, id_count */
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

/* Sends one datagram with up to PROTO_MAX_FDS fds. Returns 0 or -errno. */
int proto_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);
/*
 * Receives one datagram of at most `cap` bytes; the fds it carried are
 * returned O_CLOEXEC in fds[] (*n_fds of them, at most max_fds; extra or
 * truncated messages are an error and their fds are closed). Returns the
 * length, 0 on end of file, or -errno.
 */
ssize_t proto_recv(int sock, void *buf, size_t cap, int *fds, size_t max_fds, size_t *n_fds);

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
