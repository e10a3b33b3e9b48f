/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pure HTTP helpers of the router (see parse.h): they never touch a socket,
 * so the proxy code stays about I/O and these stay testable on their own.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "router/parse.h"
#include "common/hex.h"
#include "common/banned.h"

int host_normalise(const char *in, char out[HOST_MAX + 1])
{
    size_t len = strlen(in), end = len, n = 0;

    if (len == 0 || len > HOST_MAX + 6)
        return -EINVAL;
    if (in[0] == '[') {
        /* An IPv6 literal: the port, if any, follows the closing bracket. */
        const char *close = strchr(in, ']');
        if (!close)
            return -EINVAL;
        end = (size_t)(close - in) + 1;
        if (in[end] != '\0' && in[end] != ':')
            return -EINVAL;
    } else {
        const char *colon = strchr(in, ':');
        if (colon)
            end = (size_t)(colon - in);
    }
    /* The port, if any, is ignored but must be one (RFC 9110 §4.2.1: digits, maybe none). */
    if (in[end] == ':') {
        size_t digits = strspn(in + end + 1, "0123456789");
        if (in[end + 1 + digits] != '\0' || digits > 5)
            return -EINVAL;
    }
    if (end > 0 && in[end - 1] == '.')
        end--;
    if (end == 0 || end > HOST_MAX)
        return -EINVAL;
    /* No empty label: "a..b", ".a" and "a.." name no host. */
    if (in[0] != '[' && (in[0] == '.' || in[end - 1] == '.' || memmem(in, end, "..", 2)))
        return -EINVAL;
    for (size_t i = 0; i < end; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                   ch == '.' || ch == '_' || (in[0] == '[' && (ch == ':' || ch == '[' || ch == ']'))))
            return -EINVAL;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return (int)n;
}

bool request_id_valid(const char *id)
{
    size_t n = 0;

    for (const char *p = id; *p; p++, n++) {
        char ch = *p;
        if (n >= 200)
            return false;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || ch == '=' || ch == '-'))
            return false;
    }
    return n >= 20;
}

/*
 * Request ids need to be unique, not secret: a per-thread xoshiro-style
 * generator seeded once from getrandom() avoids a syscall per request.
 */
char *decimal_u64(uint64_t v, char buf[DECIMAL_U64_MAX])
{
    char *p = buf + DECIMAL_U64_MAX;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

void router_add_decimal(struct strbuf *sb, uint64_t v)
{
    char buf[DECIMAL_U64_MAX];
    const char *digits = decimal_u64(v, buf);

    strbuf_add(sb, digits, (size_t)(buf + sizeof(buf) - digits));
}

uint64_t router_random(void)
{
    static __thread uint64_t s0, s1;
    uint64_t a, b;

    if (s0 == 0 && s1 == 0) {
        uint64_t seed[2] = { 0, 0 };
        if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
            seed[0] = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15ull;
        s0 = seed[0] | 1;
        s1 = seed[1];
    }
    a = s0;
    b = s1;
    s0 = b;
    a ^= a << 23;
    s1 = a ^ b ^ (a >> 17) ^ (b >> 26);
    return s1 + b;
}

void request_id_generate(char out[REQUEST_ID_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t x = router_random(), y = router_random();
    size_t o = 0;

    memcpy(b, &x, 8);
    memcpy(b + 8, &y, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);  /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

size_t http_head_length(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

bool header_is_hop_by_hop(const char *name)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    };

    /* Every request and response header comes through here: most leave at the first letter. */
    switch (name[0] | 0x20) {
    case 'c':
    case 'k':
    case 'p':
    case 't':
    case 'u':
        break;
    default:
        return false;
    }
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if ((name[0] | 0x20) == hop[i][0] && strcasecmp(name, hop[i]) == 0)
            return true;
    return false;
}

void header_list_append(struct strbuf *sb, const char *value)
{
    if (sb->len)
        strbuf_add(sb, ", ", 2);
    strbuf_addstr(sb, value);
}

bool header_value_has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = value;

    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tlen && strncasecmp(start, token, tlen) == 0)
            return true;
    }
    return false;
}

bool header_connection_names_others(const char *value)
{
    static const char *const plain[] = { "close", "keep-alive", "upgrade" };
    const char *p = value;

    for (;;) {
        size_t n;
        bool known = false;

        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == 0)
            return false;
        for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
            if (strlen(plain[i]) == n && strncasecmp(p, plain[i], n) == 0)
                known = true;
        if (!known)
            return true;
        p += n;
    }
}

bool http_response_hop_header(const struct http_response_head *h, const char *name)
{
    if (header_is_hop_by_hop(name))
        return true;
    if (!h->conn_names)
        return false;   /* the common case: no Connection header, or close, keep-alive or upgrade alone */
    for (size_t i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, "Connection") == 0 && header_value_has_token(h->headers[i].value, name))
            return true;
    return false;
}

const char *http_response_header(const struct http_response_head *h, const char *name)
{
    const char *value = NULL;

    for (size_t i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            value = h->headers[i].value;
    return value;
}

void http_add_chunk_size(struct strbuf *sb, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    int len = 0;

    do {
        digits[sizeof(digits) - 1 - len++] = hex[n & 15];
        n >>= 4;
    } while (n);
    strbuf_add(sb, digits + sizeof(digits) - len, (size_t)len);
}

/* Cuts the next line off *p (within end), NUL-terminating it without its CR. */
static char *next_line(char **p, char *end)
{
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));

    if (!nl)
        return NULL;
    *nl = '\0';
    if (nl > line && nl[-1] == '\r')
        nl[-1] = '\0';
    *p = nl + 1;
    return line;
}

/* "HTTP/1.x NNN reason": the version, status and reason into h. */
static int parse_status_line(char *line, struct http_response_head *h)
{
    char *q;

    if (!line || strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ')
        return -EBADMSG;
    h->minor_version = line[7] - '0';
    q = line + 9;
    if (q[0] < '1' || q[0] > '5' || q[1] < '0' || q[1] > '9' || q[2] < '0' || q[2] > '9' ||
        q[3] != ' ')
        return -EBADMSG;   /* no reason phrase (not even an empty one after the SP): Heroku's H17 */
    h->status = (q[0] - '0') * 100 + (q[1] - '0') * 10 + (q[2] - '0');
    h->reason = q + 4;
    return 0;
}

/* Splits a header line in place into its name and its value without the white space around it. */
static int split_header_line(char *line, char **ret_value)
{
    char *colon = strchr(line, ':'), *value;

    /* Obsolete line folding and names with white space are refused (RFC 7230 §3.2.4). */
    if (!colon || colon == line || line[0] == ' ' || line[0] == '\t' || colon[-1] == ' ' ||
        colon[-1] == '\t')
        return -EBADMSG;
    for (char *c = line; c < colon; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return -EBADMSG;
    *colon = '\0';
    value = colon + 1;
    while (*value == ' ' || *value == '\t')
        value++;
    for (char *t = value + strlen(value); t > value && (t[-1] == ' ' || t[-1] == '\t'); t--)
        t[-1] = '\0';
    for (char *c = value; *c; c++)
        if (((unsigned char)*c < ' ' && *c != '\t') || *c == 0x7f)
            return -EBADMSG;
    *ret_value = value;
    return 0;
}

/* What the framing headers of a response say, as they are read. */
struct framing {
    bool chunked, have_length, conn_close, conn_keep, conn_names;
    uint64_t length;
};

/* Notes one header into f if it is a framing one; two different Content-Lengths are refused. */
static int note_framing(struct framing *f, const char *name, const char *value)
{
    if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (!header_value_has_token(value, "chunked"))
            return -EBADMSG;   /* gzip-only transfer codings are not something we can relay */
        f->chunked = true;
    } else if (strcasecmp(name, "Content-Length") == 0) {
        char *e;
        uint64_t v;

        if (*value < '0' || *value > '9')
            return -EBADMSG;
        errno = 0;
        v = strtoull(value, &e, 10);
        if (errno || *e || (f->have_length && v != f->length))
            return -EBADMSG;
        f->length = v;
        f->have_length = true;
    } else if (strcasecmp(name, "Connection") == 0) {
        if (header_value_has_token(value, "close"))
            f->conn_close = true;
        if (header_value_has_token(value, "keep-alive"))
            f->conn_keep = true;
        if (header_connection_names_others(value))
            f->conn_names = true;
    }
    return 0;
}

/* The body's framing and the connection's reuse, from the status and the framing headers. */
static void set_framing(struct http_response_head *h, const struct framing *f, bool head_request)
{
    if (head_request || h->status < 200 || h->status == 204 || h->status == 304)
        h->body = BODY_NONE;
    else if (f->chunked)
        h->body = BODY_CHUNKED;    /* chunked wins over Content-Length (RFC 7230 §3.3.3) */
    else if (f->have_length)
        h->body = BODY_LENGTH;
    else
        h->body = BODY_CLOSE;
    h->content_length = h->body == BODY_LENGTH ? f->length : 0;
    h->conn_names = f->conn_names;
    if (h->minor_version >= 1)
        h->keep_alive = !f->conn_close;
    else
        h->keep_alive = f->conn_keep && !f->conn_close;
    if (h->body == BODY_CLOSE)
        h->keep_alive = false;
}

int http_parse_response_head(char *buf, size_t len, bool head_request,
                             struct http_response_head *h)
{
    char *p = buf, *end = buf + len, *line;
    struct framing f = { 0 };
    int r;

    /* Not the header array: only its first nheaders entries are ever read (2 KiB less to clear per response). */
    h->status = 0;
    h->minor_version = 0;
    h->reason = NULL;
    h->nheaders = 0;
    h->body = BODY_NONE;
    h->content_length = 0;
    h->keep_alive = false;
    h->conn_names = false;
    if ((r = parse_status_line(next_line(&p, end), h)) < 0)
        return r;
    while ((line = next_line(&p, end)) != NULL && line[0] != '\0') {
        char *value;

        if ((r = split_header_line(line, &value)) < 0)
            return r;
        if (h->nheaders == RESPONSE_HEADERS_MAX)
            return -E2BIG;
        h->headers[h->nheaders].name = line;
        h->headers[h->nheaders].value = value;
        h->nheaders++;
        if ((r = note_framing(&f, line, value)) < 0)
            return r;
    }
    if (!line)
        return -EBADMSG;
    set_framing(h, &f, head_request);
    return 0;
}

enum {
    CH_SIZE, CH_EXT, CH_DATA, CH_DATA_CR, CH_DATA_LF,
    CH_TRAILER_START, CH_TRAILER, CH_DONE,
};

/* Chunk-size lines and trailer lines longer than this are refused. */
#define CHUNK_LINE_MAX 4096

void chunked_init(struct chunked_decoder *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
}

ssize_t chunked_feed(struct chunked_decoder *c, const char *in, size_t len, struct strbuf *out)
{
    size_t i = 0;

    while (i < len && c->state != CH_DONE) {
        char ch = in[i];
        switch (c->state) {
        case CH_SIZE: {
            int v = hex_digit_value(ch);
            if (v >= 0) {
                /* 15 hex digits stay below 2^60: no overflow, and far above any real chunk. */
                if (++c->digits > 15)
                    return -EBADMSG;
                c->remaining = c->remaining * 16 + (uint64_t)v;
                i++;
                break;
            }
            if (c->digits == 0)
                return -EBADMSG;
            c->line = 0;
            c->state = CH_EXT;
            break;
        }
        case CH_EXT:
            /* Chunk extensions (";name=value") are skipped. */
            i++;
            if (ch == '\n') {
                c->digits = 0;
                c->state = c->remaining ? CH_DATA : CH_TRAILER_START;
                c->line = 0;
            } else if (++c->line > CHUNK_LINE_MAX) {
                return -EBADMSG;
            }
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            strbuf_add(out, in + i, n);
            i += n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            i++;
            if (ch == '\r')
                c->state = CH_DATA_LF;
            else if (ch == '\n')
                c->state = CH_SIZE;
            else
                return -EBADMSG;
            break;
        case CH_DATA_LF:
            i++;
            if (ch != '\n')
                return -EBADMSG;
            c->state = CH_SIZE;
            break;
        case CH_TRAILER_START:
            i++;
            if (ch == '\n') {
                c->state = CH_DONE;
                c->done = true;
            } else if (ch != '\r') {
                c->line = 1;
                c->state = CH_TRAILER;
            }
            break;
        case CH_TRAILER:
            /* Trailer fields are dropped: MHD re-chunks without them. */
            i++;
            if (ch == '\n')
                c->state = CH_TRAILER_START;
            else if (++c->line > CHUNK_LINE_MAX)
                return -EBADMSG;
            break;
        default:
            return -EBADMSG;
        }
    }
    return (ssize_t)i;
}

/* Lower case, '_' read as '-': how CGI-style servers fold names into one variable (HTTP_X_FORWARDED_FOR). */
static bool name_is(const char *name, const char *folded, size_t n, bool prefix)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char ch = name[i];
        if (!ch)
            return false;
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        else if (ch == '_')
            ch = '-';
        if (ch != folded[i])
            return false;
    }
    return prefix || name[i] == '\0';
}

enum forwarded_kind header_forwarded_kind(const char *name)
{
    if (strcasecmp(name, "X-Forwarded-For") == 0)
        return FORWARDED_FOR;
    if (name_is(name, "x-forwarded-", 12, true) || name_is(name, "x-request-start", 15, false) ||
        name_is(name, "forwarded", 9, false))
        return FORWARDED_STRIP;
    return FORWARDED_NONE;
}

int request_target_split(const char *target, char host[HOST_MAX + 1], const char **ret_path)
{
    char authority[HOST_MAX + 8];
    const char *p, *end;
    size_t len;

    if (strncasecmp(target, "http://", 7) == 0)
        p = target + 7;
    else if (strncasecmp(target, "https://", 8) == 0)
        p = target + 8;
    else
        return 0;
    end = p + strcspn(p, "/?#");
    len = (size_t)(end - p);
    /* userinfo ("user@host") has no place in a request (RFC 9110 §4.2.4). */
    if (len == 0 || len >= sizeof(authority) || memchr(p, '@', len))
        return -EINVAL;
    memcpy(authority, p, len);
    authority[len] = '\0';
    if (host_normalise(authority, host) < 0)
        return -EINVAL;
    *ret_path = end;
    return 1;
}

bool header_is_framing_alias(const char *name)
{
    static const char *const framing[] = {
        "content-length", "transfer-encoding", "host", "expect", "connection", "keep-alive",
        "proxy-connection", "te", "trailer", "upgrade",
    };
    char folded[32];
    size_t n = strlen(name);

    if (!memchr(name, '_', n) || n >= sizeof(folded))
        return false;
    for (size_t i = 0; i <= n; i++) {
        char ch = name[i];
        folded[i] = ch == '_' ? '-' : (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
        if (strcmp(folded, framing[i]) == 0)
            return true;
    return false;
}
