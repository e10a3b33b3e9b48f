/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's pure HTTP pieces, kept free of sockets and threads so that
 * test-router-parse can check them directly: Host normalisation, request-id
 * validation and generation, the upstream response head parser and the
 * chunked transfer-coding decoder. Everything here works on caller-supplied
 * memory and caps every size that comes from the network.
 */
#ifndef BERTH_ROUTER_PARSE_H
#define BERTH_ROUTER_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/strbuf.h"

/* DNS names are at most 253 characters; the brackets of an IPv6 literal fit too. */
#define HOST_MAX 255

/*
 * Lowercases `in`, strips a ":port" suffix (also after an IPv6 literal
 * "[::1]:80") and a trailing dot, and checks the characters a host name may
 * hold. Writes the result to `out` (HOST_MAX + 1 bytes). Returns its length,
 * or -EINVAL for an empty, oversized or malformed host.
 */
int host_normalise(const char *in, char out[HOST_MAX + 1]);

/* Heroku's rule: 20 to 200 characters of ASCII letters, digits, '+', '/', '=', '-'. */
bool request_id_valid(const char *id);

#define REQUEST_ID_UUID_LEN 36
/* Writes a random UUID version 4 (36 characters and NUL) to out. */
void request_id_generate(char out[REQUEST_ID_UUID_LEN + 1]);

/* Upstream response heads larger than this are refused (H25-ish 502). */
#define RESPONSE_HEAD_MAX (64 * 1024)
#define RESPONSE_HEADERS_MAX 128

struct http_header {
    const char *name;
    const char *value;
};

enum body_kind {
    BODY_NONE,       /* 1xx, 204, 304, or the answer to HEAD */
    BODY_LENGTH,     /* Content-Length */
    BODY_CHUNKED,    /* Transfer-Encoding: chunked */
    BODY_CLOSE,      /* read until the upstream closes (HTTP/1.0 style) */
};

struct http_response_head {
    int status;
    int minor_version;           /* HTTP/1.<minor> */
    const char *reason;
    size_t nheaders;
    struct http_header headers[RESPONSE_HEADERS_MAX];
    enum body_kind body;
    uint64_t content_length;     /* when body == BODY_LENGTH */
    bool keep_alive;             /* the upstream connection may be reused afterwards */
};

/*
 * Returns the length of the head (up to and including the blank line) when
 * `buf` holds a complete one, 0 when more bytes are needed. Accepts bare LF
 * line ends as well as CRLF.
 */
size_t http_head_length(const char *buf, size_t len);

/*
 * Parses a complete response head of `len` bytes in place: line ends are
 * overwritten with NULs, and the name/value pointers point into `buf`.
 * `head_request` tells whether the request was HEAD (no body follows).
 * Returns 0, -EBADMSG for a malformed head, or -E2BIG for too many headers.
 */
int http_parse_response_head(char *buf, size_t len, bool head_request,
                             struct http_response_head *h);

/* True when the comma-separated header value lists `token` (case-insensitive). */
bool header_value_has_token(const char *value, const char *token);

/* Hop-by-hop headers, which a proxy never forwards (RFC 7230 §6.1). */
bool header_is_hop_by_hop(const char *name);

/* The chunked transfer-coding decoder (RFC 7230 §4.1), fed in pieces. */
struct chunked_decoder {
    int state;
    uint64_t remaining;          /* bytes left in the current chunk */
    unsigned digits;             /* hex digits seen in the size line */
    size_t line;                 /* bytes of the current extension/trailer line */
    bool done;                   /* the last chunk and the trailers were read */
};

void chunked_init(struct chunked_decoder *c);
/*
 * Decodes up to `len` bytes of `in`, appending chunk data to `out`. Returns
 * the number of bytes consumed (less than `len` only when the message ended
 * inside `in`, then `done` is set), or -EBADMSG.
 */
ssize_t chunked_feed(struct chunked_decoder *c, const char *in, size_t len, struct strbuf *out);

#endif
