/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * router-internal: the guard, a strict, incremental check of every byte a
 * client sends on one connection, before libmicrohttpd parses it.
 *
 * libmicrohttpd 0.9.75 is lenient where a proxy must not be: it lets a lone
 * CR inside a header value, whitespace before the colon and folded lines
 * through, takes the first of two Content-Length values, and serves
 * Content-Length with Transfer-Encoding. Forwarded to an app whose parser
 * reads those bytes differently, any of them can smuggle a request onto a
 * pooled upstream connection shared by other clients. So the router feeds
 * the guard what it reads from each client, in order, and closes the
 * connection with the guard's status when it objects; nothing it rejects
 * ever reaches libmicrohttpd or an app.
 *
 * The guard follows the connection's whole byte stream: request line,
 * header lines, then the body as the framing headers define it (a
 * Content-Length's worth of bytes, or chunked framing with its trailers),
 * then the next request of a keep-alive connection. It accepts only what
 * RFC 9110/9112 call well-formed, and refuses every shape whose framing
 * two parsers could read differently:
 *
 *   - request line: a token method (not CONNECT, in any case: 405), one SP,
 *     a request-target of visible ASCII without '#' (origin-form "/...",
 *     absolute-form "http://" or "https://" (scheme in any case) and a
 *     non-empty authority, or "*" for OPTIONS), one SP, "HTTP/1.0" or
 *     "HTTP/1.1"; "HTTP/<digit>.<digit>" naming another version is 505, any
 *     other version text 400;
 *   - header lines: a token name directly followed by ':', a value of
 *     visible characters, SP, HTAB and obs-text (0x80-0xFF), with no other
 *     control character (a lone CR, NUL and DEL included); no obs-fold (a
 *     line starting with SP or HTAB, the first header line included);
 *   - line ends: CRLF, or a bare LF in the request line and the header
 *     lines (RFC 9112 §2.2 lets a recipient take it); CRLF only inside a
 *     chunked body (chunk-size lines, after chunk data, trailer lines, the
 *     final empty line), because libmicrohttpd 0.9.75 skips up to two CR or
 *     LF bytes after a chunk-size line and would eat a data byte after a
 *     bare LF; a CR not followed by LF is always refused;
 *   - framing: at most one Content-Length, 1 to 19 decimal digits and
 *     nothing else (leading zeros allowed; "+5", "5, 5", "0x5", "-1", "5 5"
 *     refused); at most one Transfer-Encoding, and only "chunked"
 *     (case-insensitive); whitespace may come before either value but not
 *     after it, because libmicrohttpd 0.9.75 keeps trailing whitespace in a
 *     value: it refuses "5 " but reads "chunked " as an unknown coding and
 *     takes the rest of the connection as the body; never both headers; no
 *     Transfer-Encoding on HTTP/1.0; chunk sizes of 1 to 15 hex digits
 *     (leading zeros count); chunk extensions after ';' of token characters,
 *     '=', ';', quoted strings and whitespace; trailer lines checked as
 *     header lines, and no Content-Length, Transfer-Encoding or Host among
 *     them;
 *   - Host: exactly one on HTTP/1.1, at most one on HTTP/1.0, not empty
 *     (its value is not checked further: the router normalises it);
 *   - sizes (Heroku's router limits, reference/HEROKU.md §3.3): request line
 *     8192 bytes (414), a header name 1000 bytes, a header line 8192 bytes,
 *     1000 header lines, the whole head 32 KiB (431); a chunk-size line
 *     4096 bytes (400), the trailer section 8 KiB (431). Line sizes exclude
 *     the line end; the head size counts every byte, leading empty lines
 *     and line ends included.
 *
 * Edge cases, decided:
 *   - empty lines (CRLF or LF) before a request line are skipped (RFC 9112
 *     §2.2; libmicrohttpd skips them too); they count towards the head size,
 *     so an endless run of them ends in 431;
 *   - a Content-Length of 0 means no body; a body on any method (a GET
 *     with Content-Length) is followed like any other;
 *   - a fragment ("#...") in the request-target is refused: RFC 9112's
 *     grammar has none, clients strip it, and apps disagree on it;
 *   - HTTP/1.0 keep-alive is followed like HTTP/1.1 pipelining;
 *   - "Expect: 100-continue" is not the guard's business: the body still
 *     follows the framing, so a router that answers without reading the
 *     body must close the connection.
 *
 * A request with Upgrade and Connection: upgrade is still followed as HTTP
 * until the router calls guard_passthrough() (the app answered 101): bytes
 * a client sends before the switch are checked as the next request.
 *
 * Every verdict depends only on the bytes, never on how they were split
 * between calls. Pure code: no I/O, no allocation, no global state; the
 * fuzz target and the unit test drive it directly.
 */
#ifndef BERTH_ROUTER_GUARD_H
#define BERTH_ROUTER_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUARD_REQUEST_LINE_MAX 8192
#define GUARD_HEADER_NAME_MAX 1000
#define GUARD_HEADER_LINE_MAX 8192
#define GUARD_HEADERS_MAX 1000
#define GUARD_HEAD_MAX (32 * 1024)
#define GUARD_CHUNK_LINE_MAX 4096
#define GUARD_TRAILER_MAX (8 * 1024)

struct guard {
    /* private: the parser state, set by guard_init(); read it through the functions below */
    int status;                 /* the verdict once refused; 0 while acceptable */
    const char *why;            /* the reason once refused (a static string), else NULL */
    uint64_t body_left;         /* the Content-Length being read, then body or chunk bytes to skip */
    uint64_t requests;          /* heads accepted on this connection */
    uint32_t line_len;          /* bytes of the current line, its line end excluded */
    uint32_t head_len;          /* bytes of the current head, or of the trailer section */
    uint32_t name_len;          /* bytes of the current method or header name */
    uint32_t nheaders;          /* header (or trailer) lines so far */
    uint8_t state;
    uint8_t hdr;                /* which header the current line is (the framing ones are read) */
    uint8_t vstate;             /* where inside that header's value */
    uint8_t match;              /* bytes matched of a fixed word, or digits read */
    uint8_t version;            /* 10 * major + minor, once read */
    uint8_t nhost;
    char token[17];             /* the first bytes of the method, or of the name (lowercased) */
    bool http10, is_options, has_length, has_te, chunked, host_value;
    bool upgrade, conn_upgrade; /* the current head's Upgrade and Connection: upgrade */
    bool trailers;              /* the header-line states are reading a chunked body's trailers */
    bool wants_upgrade;         /* the last complete head asked for an upgrade */
    bool passthrough;           /* after guard_passthrough(): bytes are no longer HTTP */
};

void guard_init(struct guard *g);

/*
 * Checks the next `len` bytes the client sent. Returns 0 while everything
 * so far is acceptable (including a request cut anywhere: more may come),
 * or the HTTP status to refuse the connection with: 400, 405 (CONNECT),
 * 414, 431 or 505. A refusal is final: later calls return it again.
 * g->why then names the rule, for the log ("lone CR in a header value",
 * "two Content-Length headers", ...). Reads exactly `len` bytes of `data`
 * (which may be NULL when `len` is 0) and writes only to `g`.
 */
int guard_feed(struct guard *g, const char *data, size_t len);

/*
 * Whether the connection is inside a request head (for the router's head
 * deadline): true from the first byte of the next request (a leading empty
 * line included) to the end of its head; false between requests, in
 * bodies (chunked trailers included), after a refusal and in passthrough.
 */
bool guard_in_head(const struct guard *g);
/*
 * Whether the last complete head asked for an upgrade (a non-empty Upgrade
 * and a Connection listing "upgrade"); kept until the next head completes.
 */
bool guard_wants_upgrade(const struct guard *g);
/* The connection switched protocols (101): stop checking its bytes (a refusal stays). */
void guard_passthrough(struct guard *g);

#endif
