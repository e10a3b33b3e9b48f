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

#define DECIMAL_U64_MAX 20
/*
 * Writes v in decimal at the end of buf (DECIMAL_U64_MAX bytes, no NUL) and
 * returns where the digits start; their length is buf + DECIMAL_U64_MAX
 * minus that. For the hot paths that would otherwise call snprintf.
 */
char *decimal_u64(uint64_t v, char buf[DECIMAL_U64_MAX]);
/* Appends v in decimal to sb: decimal_u64() for a strbuf. */
void router_add_decimal(struct strbuf *sb, uint64_t v);

/* A fast per-thread pseudo-random number (seeded from getrandom(); not for secrets). */
uint64_t router_random(void);

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
    bool conn_names;             /* a Connection header names headers (more than close, keep-alive, upgrade) */
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
 * Only h->headers[0 .. nheaders) are set; the rest is left as it was.
 * `head_request` tells whether the request was HEAD (no body follows).
 * Returns 0, -EBADMSG for a malformed head, or -E2BIG for too many headers.
 */
int http_parse_response_head(char *buf, size_t len, bool head_request,
                             struct http_response_head *h);

/* True when the comma-separated header value lists `token` (case-insensitive). */
bool header_value_has_token(const char *value, const char *token);
/* Whether a Connection value lists more than close, keep-alive and upgrade: names of headers to drop. */
bool header_connection_names_others(const char *value);
/* Appends `value` to the comma-separated header list in sb (", " between elements). */
void header_list_append(struct strbuf *sb, const char *value);
/* The value of the head's last header called `name` (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response_head *h, const char *name);
/*
 * Whether the response header `name` is for this hop only: a hop-by-hop
 * header, or one the app's own Connection header names (RFC 9110 §7.6.1).
 * Neither may reach the client.
 */
bool http_response_hop_header(const struct http_response_head *h, const char *name);
/* A chunk's size line without its CRLF: n in lower-case hex. */
void http_add_chunk_size(struct strbuf *sb, size_t n);

/* Hop-by-hop headers, which a proxy never forwards (RFC 7230 §6.1). */
bool header_is_hop_by_hop(const char *name);

/*
 * The headers only the router may set towards an app. FORWARDED_FOR is the
 * client's X-Forwarded-For, which the router appends to; FORWARDED_STRIP is
 * every other X-Forwarded-*, X-Request-Start and Forwarded, in any case and
 * with '_' for '-' (servers that map headers to CGI variables read
 * "X_Forwarded_Proto" as X-Forwarded-Proto), which the router drops.
 */
enum forwarded_kind { FORWARDED_NONE, FORWARDED_FOR, FORWARDED_STRIP };
enum forwarded_kind header_forwarded_kind(const char *name);

/*
 * An underscore spelling of a framing or hop-by-hop header
 * ("Transfer_Encoding", "content_length"): servers that fold '_' into '-'
 * (CGI-style variables) would read it as the real one, so it never reaches
 * an app.
 */
bool header_is_framing_alias(const char *name);

/*
 * An absolute-form request-target ("http://host:port/path?q") names the
 * host to route by (RFC 9112 §3.2.2): returns 1 with the normalised host
 * and *ret_path at the path (which may be empty), 0 for any other form,
 * -EINVAL for an authority that is no host (or carries userinfo).
 */
int request_target_split(const char *target, char host[HOST_MAX + 1], const char **ret_path);

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
