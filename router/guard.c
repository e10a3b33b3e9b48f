/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The guard (guard.h): one state machine over a client connection's bytes,
 * from request line through header lines, body and trailers to the next
 * request. It keeps no copy of the input: a few counters, the framing
 * header being read and the first bytes of a name are all the state it
 * needs, so a connection costs one small struct.
 *
 * Speed: the bytes that make up nearly all of a request (request-target,
 * header names, header values other than the framing ones, bodies) are
 * taken by tight loops over a class table; every other byte goes through
 * its state's code one at a time. The states are handled by a step per
 * part of a message (request line, headers, chunk lines, body bytes) that
 * guard_feed() calls in turn. Every loop is bounded by the limit it counts
 * towards, so a limit is hit at the same byte however the stream is split.
 */
#include <string.h>

#include "router/guard.h"
#include "common/banned.h"

/* Character classes, one bit each in cls[]. */
enum {
    CC_TCHAR = 1 << 0,   /* token character (RFC 9110 §5.6.2) */
    CC_VALUE = 1 << 1,   /* field-vchar, SP or HTAB: a header value byte (also a quoted-pair byte) */
    CC_TARGET = 1 << 2,  /* visible ASCII except '#': a request-target byte */
    CC_HEX = 1 << 3,     /* HEXDIG */
    CC_EXT = 1 << 4,     /* a chunk extension byte outside quotes: tchar, '=', ';', SP, HTAB */
    CC_QDTEXT = 1 << 5,  /* qdtext (RFC 9110 §5.6.4) */
};

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define IS_TCHAR(c) (IS_DIGIT(c) || IS_ALPHA(c) || (c) == '!' || (c) == '#' || (c) == '$' || \
                     (c) == '%' || (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || \
                     (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' || (c) == '`' || \
                     (c) == '|' || (c) == '~')
#define IS_VCHAR(c) ((c) >= 0x21 && (c) <= 0x7e)
#define IS_OBS_TEXT(c) ((c) >= 0x80)
#define IS_WS(c) ((c) == ' ' || (c) == '\t')
#define CLASS(c) \
    ((IS_TCHAR(c) ? CC_TCHAR : 0) | \
     (IS_VCHAR(c) || IS_OBS_TEXT(c) || IS_WS(c) ? CC_VALUE : 0) | \
     (IS_VCHAR(c) && (c) != '#' ? CC_TARGET : 0) | \
     (IS_HEX(c) ? CC_HEX : 0) | \
     (IS_TCHAR(c) || (c) == '=' || (c) == ';' || IS_WS(c) ? CC_EXT : 0) | \
     (IS_WS(c) || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) || ((c) >= 0x5d && (c) <= 0x7e) || \
      IS_OBS_TEXT(c) ? CC_QDTEXT : 0))
#define CLASS4(c) CLASS(c), CLASS((c) + 1), CLASS((c) + 2), CLASS((c) + 3)
#define CLASS16(c) CLASS4(c), CLASS4((c) + 4), CLASS4((c) + 8), CLASS4((c) + 12)
#define CLASS64(c) CLASS16(c), CLASS16((c) + 16), CLASS16((c) + 32), CLASS16((c) + 48)

static const uint8_t cls[256] = { CLASS64(0), CLASS64(64), CLASS64(128), CLASS64(192) };

/*
 * States. Those up to S_END_CR read a head (or, with g->trailers, a chunked
 * body's trailer section): each of their bytes counts towards the head size.
 */
enum {
    S_IDLE,             /* between requests: no byte of the next one yet */
    S_LEAD,             /* after empty lines before a request line */
    S_LEAD_CR,
    S_METHOD,
    S_TARGET_START,
    S_SCHEME,           /* absolute-form: matching "http://" or "https://" */
    S_AUTHORITY,        /* absolute-form: the first byte after "//" */
    S_TARGET,
    S_STAR,             /* after the "*" of OPTIONS * */
    S_TARGET_CR,
    S_VERSION,
    S_REQLINE_CR,
    S_LINE_START,       /* the start of a header line, or of the empty line */
    S_NAME,
    S_NAME_WS,          /* whitespace after a name: refused, but with the right reason */
    S_VALUE,
    S_VALUE_CR,
    S_END_CR,           /* CR of the empty line that ends the head or the trailers */
    S_BODY,             /* Content-Length bytes */
    C_SIZE_FIRST,       /* chunked: the first hex digit of a chunk-size line */
    C_SIZE,
    C_SIZE_WS,          /* whitespace between the size and ';' */
    C_EXT,
    C_QUOTE,            /* inside a quoted extension value */
    C_QPAIR,            /* after a backslash inside one */
    C_SIZE_CR,
    C_DATA,
    C_DATA_CR,
    C_DATA_LF,
};

/* The headers whose values the guard reads. */
enum {
    H_OTHER,
    H_CONTENT_LENGTH,
    H_TRANSFER_ENCODING,
    H_HOST,
    H_CONNECTION,
    H_UPGRADE,
};

/* Connection's list: where in the current element. */
enum {
    L_BETWEEN,          /* before an element (after ',' or the colon) */
    L_WORD,             /* in an element that still matches "upgrade" */
    L_OTHER,            /* in an element that does not */
    L_AFTER,            /* whitespace after a complete "upgrade" */
};

static int refuse(struct guard *g, int status, const char *why)
{
    g->status = status;
    g->why = why;
    return status;
}

void guard_init(struct guard *g)
{
    memset(g, 0, sizeof(*g));
    g->state = S_IDLE;
}

bool guard_in_head(const struct guard *g)
{
    return g->status == 0 && !g->passthrough && !g->trailers && g->state > S_IDLE &&
           g->state <= S_END_CR;
}

bool guard_wants_upgrade(const struct guard *g)
{
    return g->wants_upgrade;
}

void guard_passthrough(struct guard *g)
{
    g->passthrough = true;
}

static unsigned hex_value(unsigned char ch)
{
    return ch <= '9' ? (unsigned)(ch - '0') : (unsigned)((ch | 0x20) - 'a' + 10);
}

/* `s` (n bytes) equals the lowercase ASCII word `lower`, ignoring the case of its letters. */
static bool equal_nocase(const char *s, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] | 0x20) != (unsigned char)lower[i])
            return false;
    return true;
}

static void to_idle(struct guard *g)
{
    g->state = S_IDLE;
    g->head_len = 0;
    g->line_len = 0;
    g->trailers = false;
}

/* The first byte of a request line: forget the previous request (head_len keeps the empty lines). */
static void start_request(struct guard *g)
{
    g->state = S_METHOD;
    g->body_left = 0;
    g->line_len = 0;
    g->name_len = 0;
    g->nheaders = 0;
    g->hdr = H_OTHER;
    g->vstate = 0;
    g->match = 0;
    g->version = 0;
    g->nhost = 0;
    g->http10 = g->is_options = g->has_length = g->has_te = g->chunked = false;
    g->host_value = g->upgrade = g->conn_upgrade = false;
}

/*
 * The name (lowercased in g->token when it fits) is complete: find out
 * which header this is, and refuse the framing combinations right at the
 * colon of the second header involved.
 */
static int begin_value(struct guard *g)
{
    int kind = H_OTHER;

    switch (g->name_len) {
    case 4:
        if (memcmp(g->token, "host", 4) == 0)
            kind = H_HOST;
        break;
    case 7:
        if (memcmp(g->token, "upgrade", 7) == 0)
            kind = H_UPGRADE;
        break;
    case 10:
        if (memcmp(g->token, "connection", 10) == 0)
            kind = H_CONNECTION;
        break;
    case 14:
        if (memcmp(g->token, "content-length", 14) == 0)
            kind = H_CONTENT_LENGTH;
        break;
    case 17:
        if (memcmp(g->token, "transfer-encoding", 17) == 0)
            kind = H_TRANSFER_ENCODING;
        break;
    default:
        break;
    }

    g->vstate = 0;
    g->match = 0;
    switch (kind) {
    case H_CONTENT_LENGTH:
        if (g->trailers)
            return refuse(g, 400, "Content-Length in the trailers");
        if (g->has_te)
            return refuse(g, 400, "Content-Length with Transfer-Encoding");
        if (g->has_length)
            return refuse(g, 400, "two Content-Length headers");
        g->has_length = true;
        break;
    case H_TRANSFER_ENCODING:
        if (g->trailers)
            return refuse(g, 400, "Transfer-Encoding in the trailers");
        if (g->http10)
            return refuse(g, 400, "Transfer-Encoding on HTTP/1.0");
        if (g->has_length)
            return refuse(g, 400, "Content-Length with Transfer-Encoding");
        if (g->has_te)
            return refuse(g, 400, "two Transfer-Encoding headers");
        g->has_te = true;
        break;
    case H_HOST:
        if (g->trailers)
            return refuse(g, 400, "Host in the trailers");
        if (g->nhost++ > 0)
            return refuse(g, 400, "two Host headers");
        break;
    case H_CONNECTION:
    case H_UPGRADE:
        if (g->trailers)
            kind = H_OTHER;
        break;
    default:
        break;
    }
    g->hdr = (uint8_t)kind;
    return 0;
}

/* Connection: the end of a list element (',' or the line end). */
static void list_element_end(struct guard *g)
{
    if ((g->vstate == L_WORD && g->match == 7) || g->vstate == L_AFTER)
        g->conn_upgrade = true;
    g->vstate = L_BETWEEN;
    g->match = 0;
}

/* Connection: one value byte, looking for an element "upgrade" in any case. */
static void list_byte(struct guard *g, unsigned char ch, bool ws)
{
    if (ch == ',') {
        list_element_end(g);
        return;
    }
    if (g->vstate == L_BETWEEN) {
        if (ws)
            return;
        g->vstate = L_WORD;
    }
    if (g->vstate == L_WORD) {
        if (ws)
            g->vstate = g->match == 7 ? L_AFTER : L_OTHER;
        else if (g->match < 7 && (ch | 0x20) == (unsigned char)"upgrade"[g->match])
            g->match++;
        else
            g->vstate = L_OTHER;
    } else if (g->vstate == L_AFTER && !ws) {
        g->vstate = L_OTHER;
    }
}

/* One byte of a value (already known to be a valid value byte) of a header the guard reads. */
static int value_byte(struct guard *g, unsigned char ch)
{
    bool ws = IS_WS(ch);

    switch (g->hdr) {
    case H_CONTENT_LENGTH:
        if (ws && g->match == 0)
            return 0;
        if (!IS_DIGIT(ch))
            return refuse(g, 400, "Content-Length is not a number");
        /* 19 digits stay below 2^64. */
        if (++g->match > 19)
            return refuse(g, 400, "Content-Length over 19 digits");
        g->body_left = g->body_left * 10 + (uint64_t)(ch - '0');
        return 0;
    case H_TRANSFER_ENCODING:
        if (ws && g->match == 0)
            return 0;
        if (g->match >= 7 || (ch | 0x20) != (unsigned char)"chunked"[g->match])
            return refuse(g, 400, "Transfer-Encoding other than chunked");
        g->match++;
        return 0;
    case H_HOST:
        if (!ws)
            g->host_value = true;
        return 0;
    case H_UPGRADE:
        if (!ws)
            g->upgrade = true;
        return 0;
    case H_CONNECTION:
        list_byte(g, ch, ws);
        return 0;
    default:
        return 0;
    }
}

/* A header (or trailer) line ended. */
static int end_line(struct guard *g)
{
    switch (g->hdr) {
    case H_CONTENT_LENGTH:
        if (g->match == 0)
            return refuse(g, 400, "Content-Length is not a number");
        break;
    case H_TRANSFER_ENCODING:
        if (g->match != 7)
            return refuse(g, 400, "Transfer-Encoding other than chunked");
        g->chunked = true;
        break;
    case H_HOST:
        if (!g->host_value)
            return refuse(g, 400, "empty Host");
        break;
    case H_CONNECTION:
        list_element_end(g);
        break;
    default:
        break;
    }
    g->hdr = H_OTHER;
    g->line_len = 0;
    g->state = S_LINE_START;
    return 0;
}

/* The empty line after the headers: check the head as a whole, then follow its body. */
static int end_head(struct guard *g)
{
    if (!g->http10 && g->nhost == 0)
        return refuse(g, 400, "missing Host");
    g->wants_upgrade = g->upgrade && g->conn_upgrade;
    g->requests++;
    g->head_len = 0;
    g->line_len = 0;
    if (g->chunked)
        g->state = C_SIZE_FIRST;
    else if (g->body_left > 0)
        g->state = S_BODY;
    else
        to_idle(g);
    return 0;
}

static int bad_target(struct guard *g, unsigned char ch)
{
    if (ch == '\r')
        return refuse(g, 400, "CR in the request-target");
    if (ch == '#')
        return refuse(g, 400, "fragment in the request-target");
    return refuse(g, 400, "bad request-target");
}

/* Consume the byte at p: one byte of the head. */
#define EAT() do { p++; g->head_len++; } while (0)
/* ... and of the current line. */
#define EAT_LINE() do { p++; g->head_len++; g->line_len++; } while (0)
/* Consume the n bytes from p to q (a run found by run()). */
#define EAT_RUN(q) do { \
        g->head_len += (uint32_t)((q) - p); \
        g->line_len += (uint32_t)((q) - p); \
        p = (q); \
    } while (0)
/*
 * Go on to the head state `label` of the same step without going back to
 * guard_feed() when the window has another byte (p < lim is exactly "the
 * head limit is not reached"); else the step's break returns there, and
 * guard_feed()'s loop checks.
 */
#define NEXT(label) do { if (p < lim) { ch = *p; goto label; } } while (0)
/* Any request-line byte but a line end counts towards its limit. */
#define CHECK_REQUEST_LINE() do { \
        if (ch != '\r' && ch != '\n' && g->line_len >= GUARD_REQUEST_LINE_MAX) \
            return refuse(g, 414, "request line over 8192 bytes"); \
    } while (0)
#define CHECK_CHUNK_LINE() do { \
        if (g->line_len >= GUARD_CHUNK_LINE_MAX) \
            return refuse(g, 400, "chunk line over 4096 bytes"); \
    } while (0)

/*
 * Runs from p while the bytes are of class `c`, up to `stop` or at most
 * `room` bytes: the tight loops of the hot states.
 */
static const unsigned char *run(const unsigned char *p, const unsigned char *stop, size_t room,
                                uint8_t c)
{
    if ((size_t)(stop - p) > room)
        stop = p + room;
    while (p < stop && (cls[*p] & c))
        p++;
    return p;
}

/* Keeps the first bytes of a method or header name (lowercased when `fold` is 0x20). */
static void keep_token(struct guard *g, const unsigned char *p, size_t n, unsigned char fold)
{
    for (size_t i = g->name_len; i < sizeof(g->token) && i - g->name_len < n; i++)
        g->token[i] = (char)(p[i - g->name_len] | fold);
    g->name_len += (uint32_t)n;
}

/* Every step's default: unreachable, guard_feed() calls a step only in its own states. */
static int corrupted(struct guard *g)
{
    return refuse(g, 400, "guard state corrupted");
}

/*
 * The steps: each handles the state at *pp over as many bytes as its
 * states take, within the window [*pp, lim) that guard_feed() leaves before
 * the head limit, and moves *pp on. They return 0, or the status of a
 * refusal. Within a step, the common transitions jump straight to the next
 * state's code (NEXT) instead of going back to guard_feed()'s loop.
 */

/*
 * Empty lines before a request line (tolerated, as RFC 9112 §2.2 allows),
 * and the request's start at its first byte, which method_step() reads.
 */
static int lead_step(struct guard *g, const unsigned char **pp)
{
    const unsigned char *p = *pp;
    unsigned char ch = *p;

    switch (g->state) {
    case S_IDLE:
    case S_LEAD:
        if (ch == '\r') {
            EAT();
            g->state = S_LEAD_CR;
        } else if (ch == '\n') {
            EAT();
            g->state = S_LEAD;
        } else if (cls[ch] & CC_TCHAR) {
            start_request(g);
        } else {
            return refuse(g, 400, "bad method");
        }
        break;

    case S_LEAD_CR:
        if (ch != '\n')
            return refuse(g, 400, "lone CR before the request line");
        EAT();
        g->state = S_LEAD;
        break;

    default:
        return corrupted(g);
    }
    *pp = p;
    return 0;
}

/* The method, up to its space. */
static int method_step(struct guard *g, const unsigned char **pp, const unsigned char *lim)
{
    const unsigned char *p = *pp, *q;
    unsigned char ch;

    q = run(p, lim, GUARD_REQUEST_LINE_MAX - g->line_len, CC_TCHAR);
    keep_token(g, p, (size_t)(q - p), 0);
    EAT_RUN(q);
    if (p < lim) {
        ch = *p;
        CHECK_REQUEST_LINE();
        if (ch != ' ')
            return refuse(g, 400, "bad method");
        EAT_LINE();
        if (g->name_len == 7 && equal_nocase(g->token, "connect", 7))
            return refuse(g, 405, "CONNECT method");
        /* Methods are case-sensitive (RFC 9110 §9.1): "options *" is not OPTIONS. */
        g->is_options = g->name_len == 7 && memcmp(g->token, "OPTIONS", 7) == 0;
        g->state = S_TARGET_START;
    }
    *pp = p;
    return 0;
}

/* The request-target in each of its forms, up to the space before the version. */
static int target_step(struct guard *g, const unsigned char **pp, const unsigned char *lim)
{
    const unsigned char *p = *pp, *q;
    unsigned char ch = *p;

    switch (g->state) {
    case S_TARGET_START:
        CHECK_REQUEST_LINE();
        if (ch == '/') {
            EAT_LINE();
            g->state = S_TARGET;
            NEXT(target);
        } else if (ch == '*' && g->is_options) {
            EAT_LINE();
            g->state = S_STAR;
        } else if ((ch | 0x20) == 'h') {
            EAT_LINE();
            g->match = 1;
            g->state = S_SCHEME;
        } else {
            return bad_target(g, ch);
        }
        break;

    case S_SCHEME: {
        /* "https://" with the 's' optional; the scheme's letters in any case. */
        static const char scheme[] = "https://";
        CHECK_REQUEST_LINE();
        if (g->match == 4 && ch == ':')
            g->match++;
        else if ((g->match <= 4 ? (ch | 0x20) : ch) != (unsigned char)scheme[g->match])
            return bad_target(g, ch);
        EAT_LINE();
        if (++g->match == 8)
            g->state = S_AUTHORITY;
        break;
    }

    case S_AUTHORITY:
        CHECK_REQUEST_LINE();
        if (!(cls[ch] & CC_TARGET) || ch == '/' || ch == '?')
            return bad_target(g, ch);
        EAT_LINE();
        g->state = S_TARGET;
        NEXT(target);
        break;

    case S_TARGET:
    target:
        q = run(p, lim, GUARD_REQUEST_LINE_MAX - g->line_len, CC_TARGET);
        EAT_RUN(q);
        if (p == lim)
            break;
        ch = *p;
        CHECK_REQUEST_LINE();
        if (ch == ' ') {
            EAT_LINE();
            g->match = 0;
            g->state = S_VERSION;
        } else if (ch == '\r') {
            EAT();
            g->state = S_TARGET_CR;
        } else if (ch == '\n') {
            return refuse(g, 400, "missing HTTP version");
        } else {
            return bad_target(g, ch);
        }
        break;

    case S_STAR:
        CHECK_REQUEST_LINE();
        if (ch != ' ')
            return bad_target(g, ch);
        EAT_LINE();
        g->match = 0;
        g->state = S_VERSION;
        break;

    case S_TARGET_CR:
        if (ch == '\n')
            return refuse(g, 400, "missing HTTP version");
        return refuse(g, 400, "CR in the request-target");

    default:
        return corrupted(g);
    }
    *pp = p;
    return 0;
}

/* HTTP/1.0 or HTTP/1.1, and the request line's end. */
static int version_step(struct guard *g, const unsigned char **pp, const unsigned char *lim)
{
    const unsigned char *p = *pp;
    unsigned char ch = *p;

    switch (g->state) {
    case S_VERSION:
        CHECK_REQUEST_LINE();
        if (g->match == 0 && lim - p > 8 && GUARD_REQUEST_LINE_MAX - g->line_len >= 8 &&
            memcmp(p, "HTTP/1.", 7) == 0 && (p[7] == '1' || p[7] == '0')) {
            /* The usual versions in one step; the same as the byte-by-byte path below. */
            g->version = (uint8_t)(10 + (p[7] - '0'));
            g->match = 8;
            p += 8;
            g->head_len += 8;
            g->line_len += 8;
            ch = *p;
            CHECK_REQUEST_LINE();
        }
        if (g->match < 8) {
            /* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive */
            bool digit = g->match == 5 || g->match == 7;
            if (digit ? !IS_DIGIT(ch) : ch != (unsigned char)"HTTP/1.1"[g->match])
                return refuse(g, 400, "bad HTTP version");
            if (g->match == 5)
                g->version = (uint8_t)(10 * (ch - '0'));
            else if (g->match == 7)
                g->version = (uint8_t)(g->version + (ch - '0'));
            g->match++;
            EAT_LINE();
            break;
        }
        if (ch != '\r' && ch != '\n')
            return refuse(g, 400, "bad HTTP version");
        if (g->version != 10 && g->version != 11)
            return refuse(g, 505, "unsupported HTTP version");
        g->http10 = g->version == 10;
        EAT();
        g->line_len = 0;
        if (ch == '\n') {
            g->state = S_LINE_START;
            break;
        }
        g->state = S_REQLINE_CR;
        NEXT(reqline_cr);
        break;

    case S_REQLINE_CR:
    reqline_cr:
        if (ch != '\n')
            return refuse(g, 400, "lone CR in the request line");
        EAT();
        g->state = S_LINE_START;
        break;

    default:
        return corrupted(g);
    }
    *pp = p;
    return 0;
}

/*
 * The header lines and the empty line after them (also a chunked body's
 * trailers). One step, not one per line: the chained states are the loop
 * that most of a head's bytes go through.
 */
static int header_step(struct guard *g, const unsigned char **pp, const unsigned char *lim)
{
    const unsigned char *p = *pp, *q;
    unsigned char ch = *p;

    switch (g->state) {
    case S_LINE_START:
    line_start:
        if (ch == '\r') {
            EAT();
            g->state = S_END_CR;
            NEXT(end_cr);
        } else if (ch == '\n') {
            if (g->trailers)
                return refuse(g, 400, "bad chunk framing");
            EAT();
            if (end_head(g))
                return g->status;
        } else if (cls[ch] & CC_TCHAR) {
            if (g->nheaders >= GUARD_HEADERS_MAX)
                return refuse(g, 431, "more than 1000 headers");
            g->nheaders++;
            g->name_len = 0;
            g->line_len = 0;
            g->state = S_NAME;
            goto name;
        } else if (IS_WS(ch)) {
            return refuse(g, 400, g->nheaders == 0 ? "whitespace before the first header line"
                                                   : "obs-fold header line");
        } else if (ch == ':') {
            return refuse(g, 400, "empty header name");
        } else {
            return refuse(g, 400, "header name is not a token");
        }
        break;

    case S_NAME:
    name:
        /* A name stays under GUARD_HEADER_NAME_MAX, hence under the line limit too. */
        q = run(p, lim, GUARD_HEADER_NAME_MAX - g->name_len, CC_TCHAR);
        keep_token(g, p, (size_t)(q - p), 0x20);
        EAT_RUN(q);
        if (p == lim)
            break;
        ch = *p;
        if (ch == ':') {
            EAT_LINE();
            if (begin_value(g))
                return g->status;
            g->state = S_VALUE;
            NEXT(value);
        } else if (cls[ch] & CC_TCHAR) {
            return refuse(g, 431, "header name over 1000 bytes");
        } else if (IS_WS(ch)) {
            EAT_LINE();
            g->state = S_NAME_WS;
        } else if (ch == '\r' || ch == '\n') {
            return refuse(g, 400, "header line without a colon");
        } else {
            return refuse(g, 400, "header name is not a token");
        }
        break;

    case S_NAME_WS:
        if (ch == ':')
            return refuse(g, 400, "whitespace before a header colon");
        if (ch == '\r' || ch == '\n')
            return refuse(g, 400, "header line without a colon");
        if (!IS_WS(ch))
            return refuse(g, 400, "header name is not a token");
        if (g->line_len >= GUARD_HEADER_LINE_MAX)
            return refuse(g, 431, "header line over 8192 bytes");
        EAT_LINE();
        break;

    case S_VALUE:
    value:
        if (g->hdr == H_OTHER) {
            q = run(p, lim, GUARD_HEADER_LINE_MAX - g->line_len, CC_VALUE);
            EAT_RUN(q);
            if (p == lim)
                break;
            ch = *p;
        }
        if (ch == '\r') {
            EAT();
            g->state = S_VALUE_CR;
            NEXT(value_cr);
            break;
        }
        if (ch == '\n') {
            if (g->trailers)
                return refuse(g, 400, "bad chunk framing");
            EAT();
            if (end_line(g))
                return g->status;
            NEXT(line_start);
            break;
        }
        if (g->line_len >= GUARD_HEADER_LINE_MAX)
            return refuse(g, 431, "header line over 8192 bytes");
        if (!(cls[ch] & CC_VALUE))
            return refuse(g, 400, "control character in a header value");
        EAT_LINE();
        if (value_byte(g, ch))
            return g->status;
        NEXT(value);
        break;

    case S_VALUE_CR:
    value_cr:
        if (ch != '\n')
            return refuse(g, 400, "lone CR in a header value");
        EAT();
        if (end_line(g))
            return g->status;
        NEXT(line_start);
        break;

    case S_END_CR:
    end_cr:
        if (ch != '\n')
            return refuse(g, 400, g->trailers ? "bad chunk framing" : "lone CR after the headers");
        EAT();
        /* Both reset head_len: go round the loop for a new window. */
        if (g->trailers)
            to_idle(g);
        else if (end_head(g))
            return g->status;
        break;

    default:
        return corrupted(g);
    }
    *pp = p;
    return 0;
}

/* A chunk-size line: the size, and its CRLF after any extensions. */
static int chunk_size_step(struct guard *g, const unsigned char **pp)
{
    const unsigned char *p = *pp;
    unsigned char ch = *p;

    switch (g->state) {
    case C_SIZE_FIRST:
        if (!(cls[ch] & CC_HEX))
            return refuse(g, 400, ch == '\n' ? "bad chunk framing" : "bad chunk size");
        p++;
        g->body_left = hex_value(ch);
        g->match = 1;
        g->line_len = 1;
        g->state = C_SIZE;
        break;

    case C_SIZE:
        if (cls[ch] & CC_HEX) {
            /* 15 hex digits stay below 2^60; libmicrohttpd refuses 16. */
            if (++g->match > 15)
                return refuse(g, 400, "bad chunk size");
            g->body_left = g->body_left * 16 + hex_value(ch);
            g->line_len++;
        } else if (ch == '\r') {
            g->state = C_SIZE_CR;
        } else if (ch == ';') {
            g->line_len++;
            g->state = C_EXT;
        } else if (IS_WS(ch)) {
            g->line_len++;
            g->state = C_SIZE_WS;
        } else {
            return refuse(g, 400, ch == '\n' ? "bad chunk framing" : "bad chunk size");
        }
        p++;
        break;

    case C_SIZE_WS:
        if (ch == ';')
            g->state = C_EXT;
        else if (!IS_WS(ch))
            return refuse(g, 400, "bad chunk size");
        CHECK_CHUNK_LINE();
        g->line_len++;
        p++;
        break;

    case C_SIZE_CR:
        if (ch != '\n')
            return refuse(g, 400, "bad chunk framing");
        p++;
        g->line_len = 0;
        if (g->body_left > 0) {
            g->state = C_DATA;
        } else {
            /* The last chunk: its trailer section is read like a head, with its own limit. */
            g->trailers = true;
            g->head_len = 0;
            g->nheaders = 0;
            g->state = S_LINE_START;
        }
        break;

    default:
        return corrupted(g);
    }
    *pp = p;
    return 0;
}

/* A chunk-size line's extensions, quoted or not: checked, then ignored. */
static int chunk_ext_step(struct guard *g, const unsigned char **pp)
{
    const unsigned char *p = *pp;
    unsigned char ch = *p;

    switch (g->state) {
    case C_EXT:
        if (ch == '\r') {
            p++;
            g->state = C_SIZE_CR;
            break;
        }
        if (ch == '\n')
            return refuse(g, 400, "bad chunk framing");
        if (ch == '"')
            g->state = C_QUOTE;
        else if (!(cls[ch] & CC_EXT))
            return refuse(g, 400, "bad chunk extension");
        CHECK_CHUNK_LINE();
        g->line_len++;
        p++;
        break;

    case C_QUOTE:
        if (ch == '"')
            g->state = C_EXT;
        else if (ch == '\\')
            g->state = C_QPAIR;
        else if (!(cls[ch] & CC_QDTEXT))
            return refuse(g, 400, "bad chunk extension");
        CHECK_CHUNK_LINE();
        g->line_len++;
        p++;
        break;

    case C_QPAIR:
        if (!(cls[ch] & CC_VALUE))
            return refuse(g, 400, "bad chunk extension");
        CHECK_CHUNK_LINE();
        g->state = C_QUOTE;
        g->line_len++;
        p++;
        break;

    default:
        return corrupted(g);
    }
    *pp = p;
    return 0;
}

/* Body bytes: a Content-Length body, or a chunk's data and the CRLF after it. */
static int data_step(struct guard *g, const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    unsigned char ch = *p;

    switch (g->state) {
    case S_BODY: {
        size_t n = (size_t)(end - p);
        if (n > g->body_left)
            n = (size_t)g->body_left;
        p += n;
        g->body_left -= n;
        if (g->body_left == 0)
            to_idle(g);
        break;
    }

    case C_DATA: {
        size_t n = (size_t)(end - p);
        if (n > g->body_left)
            n = (size_t)g->body_left;
        p += n;
        g->body_left -= n;
        if (g->body_left == 0)
            g->state = C_DATA_CR;
        break;
    }

    case C_DATA_CR:
        if (ch != '\r')
            return refuse(g, 400, "bad chunk framing");
        p++;
        g->state = C_DATA_LF;
        break;

    case C_DATA_LF:
        if (ch != '\n')
            return refuse(g, 400, "bad chunk framing");
        p++;
        g->state = C_SIZE_FIRST;
        break;

    default:
        return corrupted(g);
    }
    *pp = p;
    return 0;
}

/*
 * The loop: each turn hands the state at p to its step, within a window
 * [p, lim) that ends where the head limit does for head states.
 */
int guard_feed(struct guard *g, const char *data, size_t len)
{
    const unsigned char *p, *end;

    if (g->status != 0 || g->passthrough || len == 0)
        return g->status;
    p = (const unsigned char *)data;
    end = p + len;

    while (p < end) {
        const unsigned char *lim = end;
        int r;

        if (g->state <= S_END_CR) {
            uint32_t max = g->trailers ? GUARD_TRAILER_MAX : GUARD_HEAD_MAX;
            if (g->head_len >= max)
                return g->trailers ? refuse(g, 431, "trailers over 8 KiB")
                                   : refuse(g, 431, "head over 32 KiB");
            if ((size_t)(end - p) > max - g->head_len)
                lim = p + (max - g->head_len);
        }
        if (g->state <= S_LEAD_CR)
            r = lead_step(g, &p);
        else if (g->state == S_METHOD)
            r = method_step(g, &p, lim);
        else if (g->state < S_VERSION)
            r = target_step(g, &p, lim);
        else if (g->state < S_LINE_START)
            r = version_step(g, &p, lim);
        else if (g->state <= S_END_CR)
            r = header_step(g, &p, lim);
        else if (g->state >= C_EXT && g->state <= C_QPAIR)
            r = chunk_ext_step(g, &p);
        else if (g->state >= C_SIZE_FIRST && g->state <= C_SIZE_CR)
            r = chunk_size_step(g, &p);
        else
            r = data_step(g, &p, end);
        if (r)
            return r;
    }
    return 0;
}
