/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the guard (router/guard.h): the request shapes real
 * clients send are accepted and the malformed or ambiguous ones refused
 * with their status and reason, whole, one byte at a time and split at
 * every offset; guard_in_head() follows the heads of a pipelined stream;
 * a refusal is final; passthrough stops the checks. Ends with a timing
 * of typical requests, printed as a TAP comment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tests/tap.h"
#include "router/guard.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* What a guard says after a stream: compared between the ways of feeding it. */
struct outcome {
    int status;
    const char *why;
    bool in_head, wants_upgrade;
    uint64_t requests;
};

static struct outcome outcome_of(const struct guard *g, int status)
{
    struct outcome o = { status, g->why, guard_in_head(g), guard_wants_upgrade(g), g->requests };
    return o;
}

static bool outcome_equal(const struct outcome *a, const struct outcome *b)
{
    return a->status == b->status && a->why == b->why && a->in_head == b->in_head &&
           a->wants_upgrade == b->wants_upgrade && a->requests == b->requests;
}

static void print_outcome(const char *how, const struct outcome *o)
{
    printf("# %s: status %d why '%s' in_head %d upgrade %d requests %llu\n", how, o->status,
           o->why ? o->why : "(null)", o->in_head, o->wants_upgrade, (unsigned long long)o->requests);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/*
 * Feeds `s` whole, one byte at a time, split in two at every offset (at
 * most 2,000 offsets, spread evenly, for long streams) and in 50 random
 * splittings, and checks that each gives the same outcome, and that a
 * refusal, once returned, is returned by every later call. Returns the
 * outcome of the whole feed in *out.
 */
static bool feed_every_way(const char *s, size_t len, struct outcome *out)
{
    struct guard g;
    struct outcome whole, o;
    int st;
    size_t step = len > 2000 ? len / 2000 : 1;

    guard_init(&g);
    st = guard_feed(&g, s, len);
    whole = outcome_of(&g, st);
    *out = whole;

    guard_init(&g);
    st = 0;
    for (size_t i = 0; i < len; i++) {
        int r = guard_feed(&g, s + i, 1);
        if (st != 0 && r != st) {
            printf("# byte by byte: refusal %d changed to %d at offset %zu\n", st, r, i);
            return false;
        }
        st = r;
    }
    o = outcome_of(&g, st);
    if (!outcome_equal(&o, &whole)) {
        print_outcome("whole", &whole);
        print_outcome("byte by byte", &o);
        return false;
    }

    for (size_t k = 0; k <= len; k += step) {
        int a, b;
        guard_init(&g);
        a = guard_feed(&g, s, k);
        b = guard_feed(&g, s + k, len - k);
        o = outcome_of(&g, b);
        if ((a != 0 && a != b) || !outcome_equal(&o, &whole)) {
            printf("# split at %zu: first part %d\n", k, a);
            print_outcome("whole", &whole);
            print_outcome("split", &o);
            return false;
        }
    }

    for (int round = 0; round < 50; round++) {
        size_t off = 0;
        guard_init(&g);
        st = 0;
        while (off < len) {
            size_t n = 1 + (size_t)(rng() % (round < 25 ? 8 : 300));
            int r;
            if (n > len - off)
                n = len - off;
            r = guard_feed(&g, s + off, n);
            if (st != 0 && r != st) {
                printf("# random split: refusal %d changed to %d\n", st, r);
                return false;
            }
            st = r;
            off += n;
        }
        o = outcome_of(&g, st);
        if (!outcome_equal(&o, &whole)) {
            print_outcome("whole", &whole);
            print_outcome("random split", &o);
            return false;
        }
    }
    return true;
}

/* A well-formed stream of `nrequests` complete requests: accepted every way, not inside a head. */
static void accept_stream(const char *what, const char *s, size_t len, uint64_t nrequests)
{
    struct outcome o;
    bool same = feed_every_way(s, len, &o);

    if (o.status != 0)
        print_outcome("refused", &o);
    ok(same && o.status == 0 && o.requests == nrequests && !o.in_head,
       "accepted: %s (%llu requests)", what, (unsigned long long)nrequests);
}

static void refuse_stream(const char *what, const char *s, size_t len, int status, const char *why)
{
    struct outcome o;
    bool same = feed_every_way(s, len, &o);

    if (o.status != status || !o.why || strcmp(o.why, why) != 0)
        print_outcome("got", &o);
    ok(same && o.status == status && o.why && strcmp(o.why, why) == 0, "refused %d '%s': %s", status,
       why, what);
}

/* The offset of the byte at which a byte-by-byte feed is refused, or len. */
static size_t refusal_offset(const char *s, size_t len)
{
    struct guard g;

    guard_init(&g);
    for (size_t i = 0; i < len; i++)
        if (guard_feed(&g, s + i, 1) != 0)
            return i;
    return len;
}

/* A minimal valid head around a header line: "GET / HTTP/1.1\r\nHost: a\r\n<line>\r\n". */
static void refuse_header(const char *line, size_t linelen, int status, const char *why)
{
    static char buf[65536];
    static const char pre[] = "POST / HTTP/1.1\r\nHost: a\r\n";
    size_t n = 0;
    char what[120];

    memcpy(buf, pre, sizeof(pre) - 1);
    n = sizeof(pre) - 1;
    memcpy(buf + n, line, linelen);
    n += linelen;
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    snprintf(what, sizeof(what), "header line '%.*s'", (int)(linelen > 60 ? 60 : linelen), line);
    for (char *c = what; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '.';
    refuse_stream(what, buf, n, status, why);
}

#define REFUSE_HEADER(lit, status, why) refuse_header(S(lit), status, why)

/* ---------------------------------------------------------------- accepted */

static void test_accepted(void)
{
    accept_stream("curl GET", S("GET / HTTP/1.1\r\nHost: localhost:8080\r\n"
                               "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"), 1);
    accept_stream("browser GET with cookies and obs-text",
                  S("GET /search?q=caf%C3%A9&lang=fr HTTP/1.1\r\n"
                    "Host: app.berth.localhost\r\n"
                    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
                    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
                    "Accept-Language: en-US,en;q=0.5\r\n"
                    "Accept-Encoding: gzip, deflate, br\r\n"
                    "Referer: https://app.berth.localhost/\r\n"
                    "Cookie: session=abc123; theme=\"dark\"; x=caf\xc3\xa9\r\n"
                    "Upgrade-Insecure-Requests: 1\r\n"
                    "Sec-Fetch-Dest: document\r\n"
                    "Sec-Fetch-Mode: navigate\r\n"
                    "If-None-Match: W/\"5e15153d-120f\"\r\n"
                    "X-Tab:\tvalue\twith\ttabs\t\r\n"
                    "X-Empty:\r\n"
                    "Connection: keep-alive\r\n\r\n"), 1);
    accept_stream("wrk, three pipelined GETs",
                  S("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
                    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
                    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"), 3);
    accept_stream("git info/refs then a chunked receive-pack",
                  S("GET /app.git/info/refs?service=git-receive-pack HTTP/1.1\r\n"
                    "Host: git.localhost\r\nUser-Agent: git/2.39.2\r\nAccept: */*\r\n"
                    "Accept-Encoding: deflate, gzip, br, zstd\r\nPragma: no-cache\r\n"
                    "Git-Protocol: version=2\r\n\r\n"
                    "POST /app.git/git-receive-pack HTTP/1.1\r\nHost: git.localhost\r\n"
                    "User-Agent: git/2.39.2\r\nContent-Type: application/x-git-receive-pack-request\r\n"
                    "Accept: application/x-git-receive-pack-result\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "1a\r\n0000000000000000000000000a\r\n"
                    "A\r\n\x00\x01\x02\r\n\r\n\xff\xfe\xfd\r\n"
                    "0\r\n\r\n"), 2);
    accept_stream("python requests POST with Content-Length",
                  S("POST /api/items HTTP/1.1\r\nHost: api.localhost\r\n"
                    "User-Agent: python-requests/2.28.1\r\nAccept-Encoding: gzip, deflate\r\n"
                    "Accept: */*\r\nConnection: keep-alive\r\nContent-Length: 16\r\n"
                    "Content-Type: application/json\r\n\r\n{\"key\": \"value\"}"), 1);
    accept_stream("keep-alive: Content-Length body, chunked body with extensions and trailers, GET",
                  S("PUT /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
                    "GET /x HTT"
                    "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                    "5;name=value;flag\r\nhello\r\n"
                    "6 ; q=\"a \\\"quoted\\\" ;=\"\r\n world\r\n"
                    "0\r\nX-Sum: 42\r\nX-Other: \xe2\x9c\x93\r\n\r\n"
                    "GET /c HTTP/1.1\r\nHost: a\r\n\r\n"), 3);
    accept_stream("Expect: 100-continue with its body",
                  S("PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                    "Expect: 100-continue\r\n\r\nhello"), 1);
    accept_stream("WebSocket upgrade head",
                  S("GET /chat HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\nOrigin: http://ws.localhost\r\n\r\n"), 1);
    accept_stream("absolute-form targets",
                  S("GET http://app.localhost/x?y=1 HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
                    "GET HTTPS://APP.LOCALHOST:443 HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
                    "GET hTTp://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), 3);
    accept_stream("OPTIONS *", S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    accept_stream("HEAD", S("HEAD /index.html HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    accept_stream("HTTP/1.0 without Host, then keep-alive with a body",
                  S("GET / HTTP/1.0\r\n\r\n"
                    "POST /f HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"
                    "GET / HTTP/1.0\r\nHost: a\r\n\r\n"), 3);
    accept_stream("bare LF line ends in the head",
                  S("GET / HTTP/1.1\nHost: a\nX: y\n\nGET / HTTP/1.1\r\nHost: a\n\r\n"), 2);
    accept_stream("leading empty lines before a request line",
                  S("\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
                    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\r\n"
                    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 3);
    accept_stream("Content-Length: 0, then a GET with a body",
                  S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
                    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nGET "
                    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 3);
    accept_stream("Content-Length with whitespace before and leading zeros",
                  S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t 0003\r\n\r\nabc"), 1);
    accept_stream("Transfer-Encoding: Chunked (any case), sizes with leading zeros and upper-case hex",
                  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\t CHUNKED\r\n\r\n"
                    "0000000000000A\r\n0123456789\r\n00b\r\nhello world\r\n000\r\n\r\n"), 1);
    accept_stream("empty chunked body", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          "0\r\n\r\n"), 1);
    accept_stream("methods are tokens", S("PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n"
                                          "M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n"
                                          "get / HTTP/1.1\r\nHost: a\r\n\r\n"), 3);
    accept_stream("target with query, percent and sub-delims",
                  S("GET /a/b;c=d/e@f:g?h=i&j=k%20l!$'()*+,;=~|{}^`\"<>\\ HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
}

/* Lengths exactly at each limit are accepted, one more byte is refused. */
static void test_limits(void)
{
    static char buf[200000];
    size_t n;
    char name[GUARD_HEADER_NAME_MAX + 2];

    /* request line: exactly 8192 bytes */
    n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', GUARD_REQUEST_LINE_MAX - 14);
    n += GUARD_REQUEST_LINE_MAX - 14;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    accept_stream("request line of 8192 bytes", buf, n, 1);
    n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', GUARD_REQUEST_LINE_MAX - 13);
    n += GUARD_REQUEST_LINE_MAX - 13;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    refuse_stream("request line of 8193 bytes", buf, n, 414, "request line over 8192 bytes");
    n = (size_t)snprintf(buf, sizeof(buf), "GET /");
    memset(buf + n, 'a', 20000);
    n += 20000;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    refuse_stream("20,000-byte target", buf, n, 414, "request line over 8192 bytes");
    memset(buf, 'G', 9000);
    refuse_stream("9000-byte method", buf, 9000, 414, "request line over 8192 bytes");

    /* header name: 1000 bytes, then 1001 */
    memset(name, 'n', sizeof(name));
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n%.*s: v\r\n\r\n",
                         GUARD_HEADER_NAME_MAX, name);
    accept_stream("header name of 1000 bytes", buf, n, 1);
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n%.*s: v\r\n\r\n",
                         GUARD_HEADER_NAME_MAX + 1, name);
    refuse_stream("header name of 1001 bytes", buf, n, 431, "header name over 1000 bytes");

    /* header line: 8192 bytes, then 8193, and 9000 */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'v', GUARD_HEADER_LINE_MAX - 3);
    n += GUARD_HEADER_LINE_MAX - 3;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n\r\n");
    accept_stream("header line of 8192 bytes", buf, n, 1);
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(buf + n, 'v', GUARD_HEADER_LINE_MAX - 2);
    n += GUARD_HEADER_LINE_MAX - 2;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n\r\n");
    refuse_stream("header line of 8193 bytes", buf, n, 431, "header line over 8192 bytes");
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: ");
    memset(buf + n, ' ', 9000);
    n += 9000;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "5\r\n\r\nhello");
    refuse_stream("9000-byte Content-Length line", buf, n, 431, "header line over 8192 bytes");
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX");
    memset(buf + n, ' ', 9000);
    n += 9000;
    refuse_stream("9000 bytes of whitespace after a name", buf, n, 431, "header line over 8192 bytes");

    /* header count: 1000 (Host included), then 1001, and 10,000 */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 1; i < GUARD_HEADERS_MAX; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "h:%d\r\n", i % 10);
    memcpy(buf + n, "\r\n", 2);
    accept_stream("1000 header lines", buf, n + 2, 1);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "h:x\r\n\r\n");
    refuse_stream("1001 header lines", buf, n, 431, "more than 1000 headers");
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-H: %d\r\n", i % 10);
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
    refuse_stream("10,000 header lines", buf, n, 431, "more than 1000 headers");

    /* head: exactly 32 KiB, then one more byte */
    n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    while (n + 8002 + 2 <= GUARD_HEAD_MAX) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X: ");
        memset(buf + n, 'v', 7997);
        n += 7997;
        buf[n++] = '\r';
        buf[n++] = '\n';
    }
    {
        size_t fill = GUARD_HEAD_MAX - n - 2 - 5;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "Y: ");
        memset(buf + n, 'v', fill);
        n += fill;
        memcpy(buf + n, "\r\n\r\n", 4);
        n += 4;
    }
    accept_stream("head of exactly 32 KiB", buf, n, 1);
    memmove(buf + 1, buf, n);
    buf[0] = '\n';
    refuse_stream("head of 32 KiB + 1 (a leading empty line)", buf, n + 1, 431, "head over 32 KiB");
    n = 0;
    while (n < 17000 * 2) {
        buf[n++] = '\r';
        buf[n++] = '\n';
    }
    refuse_stream("17,000 empty lines", buf, n, 431, "head over 32 KiB");

    /* chunk-size line: 4096 bytes, then 4097 */
    n = (size_t)snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    memset(buf + n, 'e', GUARD_CHUNK_LINE_MAX - 2);
    n += GUARD_CHUNK_LINE_MAX - 2;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\nx\r\n0\r\n\r\n");
    accept_stream("chunk-size line of 4096 bytes", buf, n, 1);
    n = (size_t)snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    memset(buf + n, 'e', GUARD_CHUNK_LINE_MAX - 1);
    n += GUARD_CHUNK_LINE_MAX - 1;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\nx\r\n0\r\n\r\n");
    refuse_stream("chunk-size line of 4097 bytes", buf, n, 400, "chunk line over 4096 bytes");

    /* trailer section: 8 KiB, then one more byte */
    n = (size_t)snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ");
    {
        size_t start = n - 3;   /* the trailer section starts at "T: " */
        size_t fill = GUARD_TRAILER_MAX - 3 - 4 - (n - start - 3);
        memset(buf + n, 't', fill);
        n += fill;
        memcpy(buf + n, "\r\n\r\n", 4);
        n += 4;
        accept_stream("trailer section of 8 KiB", buf, n, 1);
        memmove(buf + n - 3, buf + n - 4, 4);
        buf[n - 4] = 't';
        refuse_stream("trailer section of 8 KiB + 1", buf, n + 1, 431, "trailers over 8 KiB");
    }
}

/* ----------------------------------------------------------------- refused */

static void test_request_line(void)
{
    refuse_stream("CONNECT", S("CONNECT a.localhost:443 HTTP/1.1\r\nHost: a.localhost:443\r\n\r\n"),
                  405, "CONNECT method");
    refuse_stream("connect in lower case", S("connect a:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
                  405, "CONNECT method");
    refuse_stream("method with '('", S("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad method");
    refuse_stream("space before the method", S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad method");
    refuse_stream("HTAB after the method", S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad method");
    refuse_stream("request line without target", S("GET\r\n\r\n"), 400, "bad method");
    refuse_stream("a TLS ClientHello", S("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400, "bad method");
    refuse_stream("lone CR before the request line", S("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
                  400, "lone CR before the request line");
    refuse_stream("two spaces after the method", S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
                  400, "bad request-target");
    refuse_stream("relative target", S("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("* without OPTIONS", S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("options * in lower case", S("options * HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "bad request-target");
    refuse_stream("OPTIONS *x", S("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("authority-form", S("GET a.localhost:80 HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "bad request-target");
    refuse_stream("ftp scheme", S("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("http:/x", S("GET http:/x HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("empty authority", S("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "bad request-target");
    refuse_stream("httpx://", S("GET httpx://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("obs-text in the target", S("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "bad request-target");
    refuse_stream("NUL in the target", S("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("HTAB in the target", S("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("DEL in the target", S("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "bad request-target");
    refuse_stream("fragment", S("GET /page#section HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "fragment in the request-target");
    refuse_stream("lone CR in the target", S("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "CR in the request-target");
    refuse_stream("CR as the target", S("GET \r HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "CR in the request-target");
    refuse_stream("HTTP/0.9 request", S("GET /\r\n"), 400, "missing HTTP version");
    refuse_stream("HTTP/0.9 request, bare LF", S("GET /\n"), 400, "missing HTTP version");
    refuse_stream("space inside the target", S("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
                  "bad HTTP version");
    refuse_stream("lower-case version", S("GET / http/1.1\r\nHost: a\r\n\r\n"), 400, "bad HTTP version");
    refuse_stream("HTTP/11", S("GET / HTTP/11\r\nHost: a\r\n\r\n"), 400, "bad HTTP version");
    refuse_stream("HTTP/1.1x", S("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400, "bad HTTP version");
    refuse_stream("space after the version", S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400, "bad HTTP version");
    refuse_stream("HTTP/1.", S("GET / HTTP/1.\r\nHost: a\r\n\r\n"), 400, "bad HTTP version");
    refuse_stream("HTTP/2.0", S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505, "unsupported HTTP version");
    refuse_stream("HTTP/1.2", S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505, "unsupported HTTP version");
    refuse_stream("HTTP/0.9", S("GET / HTTP/0.9\r\n\r\n"), 505, "unsupported HTTP version");
    refuse_stream("HTTP/3.0, bare LF", S("GET / HTTP/3.0\n\n"), 505, "unsupported HTTP version");
    refuse_stream("lone CR after the version", S("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400,
                  "lone CR in the request line");
}

static void test_headers(void)
{
    REFUSE_HEADER("X: a\rb", 400, "lone CR in a header value");
    REFUSE_HEADER("X: a\r", 400, "lone CR in a header value");   /* "\r\r\n" */
    REFUSE_HEADER("X: a\0b", 400, "control character in a header value");
    REFUSE_HEADER("X: a\x01", 400, "control character in a header value");
    REFUSE_HEADER("X: a\x7f", 400, "control character in a header value");
    REFUSE_HEADER("X: a\x1b[31m", 400, "control character in a header value");
    REFUSE_HEADER("Content-Length: 5\0", 400, "control character in a header value");
    REFUSE_HEADER("X: a\r\n b", 400, "obs-fold header line");
    REFUSE_HEADER("X: a\r\n\tb", 400, "obs-fold header line");
    REFUSE_HEADER("X: a\n b", 400, "obs-fold header line");
    REFUSE_HEADER("Transfer-Encoding : chunked", 400, "whitespace before a header colon");
    REFUSE_HEADER("Transfer-Encoding\t: chunked", 400, "whitespace before a header colon");
    REFUSE_HEADER("Content-Length  \t : 5", 400, "whitespace before a header colon");
    REFUSE_HEADER("X(y): z", 400, "header name is not a token");
    REFUSE_HEADER("X\0: z", 400, "header name is not a token");
    REFUSE_HEADER("X/Y: z", 400, "header name is not a token");
    REFUSE_HEADER("\"X\": z", 400, "header name is not a token");
    REFUSE_HEADER("caf\xc3\xa9: z", 400, "header name is not a token");
    REFUSE_HEADER("X Y: z", 400, "header name is not a token");
    REFUSE_HEADER(": z", 400, "empty header name");
    REFUSE_HEADER("NoColon", 400, "header line without a colon");
    REFUSE_HEADER("NoColon ", 400, "header line without a colon");
    REFUSE_HEADER("Host: b", 400, "two Host headers");
    refuse_stream("whitespace before the first header line",
                  S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400, "whitespace before the first header line");
    refuse_stream("lone CR after the headers", S("GET / HTTP/1.1\r\nHost: a\r\n\rX"), 400,
                  "lone CR after the headers");
    refuse_stream("missing Host", S("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), 400, "missing Host");
    refuse_stream("two Host headers on HTTP/1.0", S("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
                  400, "two Host headers");
    refuse_stream("empty Host", S("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400, "empty Host");
    refuse_stream("Host of whitespace", S("GET / HTTP/1.1\r\nHost: \t \r\n\r\n"), 400, "empty Host");
    refuse_stream("empty Host on HTTP/1.0", S("GET / HTTP/1.0\r\nHOST:\n\n"), 400, "empty Host");
}

/* The request-smuggling classics, and the rest of the framing rules. */
static void test_framing(void)
{
    refuse_stream("CL.TE", S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED"),
                  400, "Content-Length with Transfer-Encoding");
    refuse_stream("TE.CL", S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                             "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"),
                  400, "Content-Length with Transfer-Encoding");
    REFUSE_HEADER("Transfer-Encoding: xchunked", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: chunked, identity", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: gzip, chunked", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: identity", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: chunk", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: chunkedx", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: chunked ", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: \"chunked\"", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: ch\xc3\xbcnked", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding:", 400, "Transfer-Encoding other than chunked");
    REFUSE_HEADER("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400,
                  "two Transfer-Encoding headers");
    REFUSE_HEADER("Transfer-Encoding: chunked\r\nTransfer-encoding: identity", 400,
                  "two Transfer-Encoding headers");
    refuse_stream("Transfer-Encoding on HTTP/1.0",
                  S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400,
                  "Transfer-Encoding on HTTP/1.0");
    REFUSE_HEADER("Content-Length: +5", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: 5, 5", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: 0x5", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: -1", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: 5 5", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: 5 ", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: 1e3", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: 5\xc2\xa0", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length:", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length:  ", 400, "Content-Length is not a number");
    REFUSE_HEADER("Content-Length: 12345678901234567890", 400, "Content-Length over 19 digits");
    REFUSE_HEADER("Content-Length: 5\r\nContent-Length: 5", 400, "two Content-Length headers");
    REFUSE_HEADER("Content-Length: 5\r\ncontent-length: 6", 400, "two Content-Length headers");
    accept_stream("19-digit Content-Length (the body is not all here)",
                  S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\nabc"), 1);
    /* Same-looking names that are not the framing headers are plain headers. */
    accept_stream("Content-Lengths, Transfer-Encodings, X-Host are other headers",
                  S("POST / HTTP/1.1\r\nHost: a\r\nContent-Lengths: x\r\nTransfer-Encodings: gzip\r\n"
                    "X-Host:\r\nContent-Type: text/plain\r\nTE: trailers\r\n\r\n"), 1);
}

static const char chunked_head[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

static void refuse_chunked(const char *body, size_t bodylen, int status, const char *why)
{
    static char buf[8192];
    char what[100];
    size_t n = sizeof(chunked_head) - 1;

    memcpy(buf, chunked_head, n);
    memcpy(buf + n, body, bodylen);
    snprintf(what, sizeof(what), "chunked body '%.*s'", (int)(bodylen > 40 ? 40 : bodylen), body);
    for (char *c = what; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '.';
    refuse_stream(what, buf, n + bodylen, status, why);
}

#define REFUSE_CHUNKED(lit, status, why) refuse_chunked(S(lit), status, why)

static void test_chunked(void)
{
    REFUSE_CHUNKED("x\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("\n", 400, "bad chunk framing");
    REFUSE_CHUNKED(" 5\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("-1\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("0x5\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("+5\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("5 \r\nhello\r\n0\r\n\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("5 x\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("0000000000000005\r\nhello\r\n0\r\n\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("ffffffffffffffffff\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("5\nhello\r\n0\r\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("5\rhello\r\n0\r\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("5\r\nhello\n0\r\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("5\r\nhelloX\r\n0\r\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("5\r\nhello\rX0\r\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("5\r\nhello\r\n\r\n0\r\n\r\n", 400, "bad chunk size");
    REFUSE_CHUNKED("0\r\n\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("0\r\n\rX", 400, "bad chunk framing");
    REFUSE_CHUNKED("0\r\nX: y\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("3;a\rb\r\nabc\r\n0\r\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("3;a\nabc\r\n0\r\n\r\n", 400, "bad chunk framing");
    REFUSE_CHUNKED("3;a@b\r\nabc\r\n0\r\n\r\n", 400, "bad chunk extension");
    REFUSE_CHUNKED("3;a=\"b\rc\"\r\nabc\r\n0\r\n\r\n", 400, "bad chunk extension");
    REFUSE_CHUNKED("3;a=\"b\nc\"\r\nabc\r\n0\r\n\r\n", 400, "bad chunk extension");
    REFUSE_CHUNKED("3;a=\"b\\\rc\"\r\nabc\r\n0\r\n\r\n", 400, "bad chunk extension");
    REFUSE_CHUNKED("3;a=\"unterminated\r\nabc\r\n0\r\n\r\n", 400, "bad chunk extension");
    REFUSE_CHUNKED("3;a\0\r\nabc\r\n0\r\n\r\n", 400, "bad chunk extension");
    REFUSE_CHUNKED("0\r\nContent-Length: 5\r\n\r\n", 400, "Content-Length in the trailers");
    REFUSE_CHUNKED("0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding in the trailers");
    REFUSE_CHUNKED("0\r\nHost: b\r\n\r\n", 400, "Host in the trailers");
    REFUSE_CHUNKED("0\r\nX: a\r\n b\r\n\r\n", 400, "obs-fold header line");
    REFUSE_CHUNKED("0\r\nX : a\r\n\r\n", 400, "whitespace before a header colon");
    REFUSE_CHUNKED("0\r\nX: a\rb\r\n\r\n", 400, "lone CR in a header value");
    REFUSE_CHUNKED("0\r\nX: a\0\r\n\r\n", 400, "control character in a header value");
    REFUSE_CHUNKED("0\r\nNoColon\r\n\r\n", 400, "header line without a colon");
    /* a body that looks like a request is data, and the next request comes after it */
    accept_stream("chunk data that looks like a smuggled request",
                  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "20\r\nGET /admin HTTP/1.1\r\nHost: b\r\n\r\n\r\n0\r\n\r\n"
                    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 2);
    accept_stream("Connection, Upgrade and Host-like names in the trailers are plain trailers",
                  S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "0\r\nConnection: close\r\nUpgrade: x\r\nX-Host: b\r\n\r\n"), 1);
}

/* ------------------------------------------------------- connection-level */

struct piece {
    const char *text;
    size_t len;
    bool head;      /* a request head (guard_in_head() inside it), else body bytes */
};

#define HEAD(lit) { (lit), sizeof(lit) - 1, true }
#define BODY(lit) { (lit), sizeof(lit) - 1, false }

static void test_in_head(void)
{
    static const struct piece pieces[] = {
        HEAD("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
        BODY("hello"),
        HEAD("PUT /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        BODY("3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
        HEAD("GET /c HTTP/1.1\r\nHost: a\r\n\r\n"),
        HEAD("\r\nGET /d HTTP/1.1\nHost: a\n\n"),
    };
    static char buf[1024];
    static bool want[1024];
    size_t n = 0;
    struct guard g;
    bool good = true, idle_between = true;

    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        memcpy(buf + n, pieces[i].text, pieces[i].len);
        /* After byte j, in a head unless it was the head's last byte. */
        for (size_t j = 0; j < pieces[i].len; j++)
            want[n + j] = pieces[i].head && j + 1 < pieces[i].len;
        n += pieces[i].len;
    }
    accept_stream("pipelined heads and bodies for guard_in_head()", buf, n, 4);

    guard_init(&g);
    ok(!guard_in_head(&g), "a new connection is not inside a head");
    for (size_t i = 0; i < n; i++) {
        if (guard_feed(&g, buf + i, 1) != 0 || guard_in_head(&g) != want[i]) {
            printf("# offset %zu ('%c'): in_head %d, wanted %d\n", i, buf[i] >= ' ' ? buf[i] : '.',
                   guard_in_head(&g), want[i]);
            good = false;
            break;
        }
    }
    ok(good, "guard_in_head() true mid-head, false between requests and in bodies (byte by byte)");

    /* The same at the piece boundaries, fed piece by piece. */
    guard_init(&g);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        guard_feed(&g, pieces[i].text, pieces[i].len);
        if (guard_in_head(&g))
            idle_between = false;
    }
    ok(idle_between && g.status == 0, "not in a head after each whole head or body");

    guard_init(&g);
    guard_feed(&g, S("GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n"));
    ok(guard_in_head(&g), "an empty line after a request starts the next head");

    guard_init(&g);
    guard_feed(&g, S("GET / HTTP/1.1\r\nHost: a\r\nX: ab\r\nTransfer-Encoding: chu"));
    ok(guard_in_head(&g), "a head cut in a framing value is still a head");
}

static void test_connection(void)
{
    static const char good_then_bad[] =
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n";
    size_t second = sizeof("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                           "GET / HTTP/1.1\r\nHost: a\r\n\r\n") - 1;
    size_t at = refusal_offset(S(good_then_bad));
    struct guard g;
    int st;

    refuse_stream("a bad request after two good ones", S(good_then_bad), 400, "lone CR in a header value");
    ok(at == second + sizeof("GET / HTTP/1.1\r\nHost: a\r\nX: a\r") - 1,
       "the verdict comes at the byte after the lone CR (offset %zu)", at);
    guard_init(&g);
    st = guard_feed(&g, good_then_bad, second);
    ok(st == 0 && g.requests == 2 && !guard_in_head(&g), "the good requests before it pass");

    /* Smuggled bytes after a Content-Length body are the next request, and checked as one. */
    refuse_stream("bytes after a Content-Length body are a request",
                  S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcX: y\r\n\r\n"),
                  400, "bad method");
    at = refusal_offset(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\x01"));
    ok(at == sizeof("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc") - 1,
       "a request that starts with a control byte is refused at that byte");

    /* A refusal is final. */
    guard_init(&g);
    st = guard_feed(&g, S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"));
    ok(st == 400 && strcmp(g.why, "whitespace before a header colon") == 0, "refused");
    st = guard_feed(&g, S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    ok(st == 400 && strcmp(g.why, "whitespace before a header colon") == 0 && !guard_in_head(&g),
       "a refused guard stays refused when fed good bytes");
    st = guard_feed(&g, NULL, 0);
    ok(st == 400, "and when fed nothing");
    guard_passthrough(&g);
    ok(guard_feed(&g, S("x")) == 400, "and after guard_passthrough()");

    guard_init(&g);
    ok(guard_feed(&g, NULL, 0) == 0 && g.why == NULL, "nothing fed is acceptable");
}

static void test_upgrade(void)
{
    static const char ws[] = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                             "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    struct guard g;
    int st;
    bool all = true;

    guard_init(&g);
    ok(guard_feed(&g, S(ws)) == 0 && guard_wants_upgrade(&g) && !guard_in_head(&g),
       "a WebSocket head wants an upgrade");
    guard_passthrough(&g);
    for (int i = 0; i < 256; i++) {
        char b = (char)i;
        if (guard_feed(&g, &b, 1) != 0)
            all = false;
    }
    st = guard_feed(&g, S("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58\r\r\0 GET / HTTP/9.9\r\n"));
    ok(all && st == 0 && !guard_in_head(&g), "after guard_passthrough() no byte is checked");

    guard_init(&g);
    st = guard_feed(&g, S(ws));
    st = guard_feed(&g, S("\x81\x85\x37\xfa"));
    ok(st == 400 && strcmp(g.why, "bad method") == 0,
       "without guard_passthrough() the bytes after an upgrade head are checked as HTTP");

    guard_init(&g);
    guard_feed(&g, S(ws));
    guard_feed(&g, S("GET / HTTP/1.1\r\nHost: a\r\n"));
    ok(guard_wants_upgrade(&g), "wants_upgrade holds until the next head is complete");
    guard_feed(&g, S("\r\n"));
    ok(!guard_wants_upgrade(&g), "and then follows that head");

    static const struct {
        const char *what, *headers;
        bool want;
    } cases[] = {
        { "Connection: upgrade", "Upgrade: websocket\r\nConnection: upgrade\r\n", true },
        { "UPGRADE before Upgrade", "Connection: UPGRADE\r\nUpgrade: h2c\r\n", true },
        { "second Connection, trailing space", "Upgrade: websocket\r\nConnection: keep-alive\r\n"
          "Connection: Upgrade \r\n", true },
        { "list without spaces", "Upgrade: websocket\r\nConnection: close,upgrade,te\r\n", true },
        { "no Connection", "Upgrade: websocket\r\n", false },
        { "no Upgrade", "Connection: upgrade\r\n", false },
        { "empty Upgrade", "Upgrade: \r\nConnection: upgrade\r\n", false },
        { "Connection: upgraded", "Upgrade: websocket\r\nConnection: upgraded\r\n", false },
        { "Connection: up grade", "Upgrade: websocket\r\nConnection: up grade\r\n", false },
        { "Connection: upgrade x", "Upgrade: websocket\r\nConnection: upgrade x\r\n", false },
        { "Connection: x-upgrade", "Upgrade: websocket\r\nConnection: x-upgrade\r\n", false },
        { "Connection: keep-alive", "Upgrade: websocket\r\nConnection: keep-alive\r\n", false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256];
        int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n", cases[i].headers);
        guard_init(&g);
        st = guard_feed(&g, buf, (size_t)n);
        ok(st == 0 && guard_wants_upgrade(&g) == cases[i].want, "upgrade %s: %s",
           cases[i].want ? "wanted" : "not wanted", cases[i].what);
    }
}

/* ------------------------------------------------------------------- speed */

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not an assertion: a figure for the log, on typical browser requests fed in 16 KiB reads. */
static void test_speed(void)
{
    static const char request[] =
        "GET /assets/application-3f2a1b.js?v=2 HTTP/1.1\r\n"
        "Host: myapp.berth.example.com\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
        "Accept: */*\r\n"
        "Accept-Language: en-US,en;q=0.5\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Referer: https://myapp.berth.example.com/\r\n"
        "Cookie: _session_id=4f1c2a9b8e7d6c5b4a39281706f5e4d3\r\n"
        "Sec-Fetch-Dest: script\r\n"
        "Connection: keep-alive\r\n\r\n";
    static const char upload_head[] =
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n";
    size_t reqlen = sizeof(request) - 1, nreq = 10000, total = reqlen * nreq;
    char *buf = malloc(total + (1 << 20) + sizeof(upload_head));
    double t0, t1, best = 1e9;
    struct guard g;
    int st = 0;

    if (!buf) {
        skip("speed: out of memory");
        return;
    }
    for (size_t i = 0; i < nreq; i++)
        memcpy(buf + i * reqlen, request, reqlen);
    for (int round = 0; round < 20; round++) {
        guard_init(&g);
        t0 = now();
        for (size_t off = 0; off < total; off += 16384)
            st |= guard_feed(&g, buf + off, total - off < 16384 ? total - off : 16384);
        t1 = now();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    ok(st == 0 && g.requests == nreq, "speed run: %zu requests of %zu bytes accepted", nreq, reqlen);
    printf("# guard speed: %.0f MB/s, %.2f M requests/s (%zu-byte requests, 16 KiB reads, best of 20)\n",
           (double)total / best / 1e6, (double)nreq / best / 1e6, reqlen);

    memcpy(buf, upload_head, sizeof(upload_head) - 1);
    memset(buf + sizeof(upload_head) - 1, 'x', 1 << 20);
    best = 1e9;
    for (int round = 0; round < 20; round++) {
        guard_init(&g);
        t0 = now();
        st = guard_feed(&g, buf, sizeof(upload_head) - 1 + (1 << 20));
        t1 = now();
        if (t1 - t0 < best)
            best = t1 - t0;
    }
    printf("# guard speed: a 1 MiB Content-Length body in one read: %.1f us\n", best * 1e6);
    free(buf);
}

int main(void)
{
    test_accepted();
    test_limits();
    test_request_line();
    test_headers();
    test_framing();
    test_chunked();
    test_in_head();
    test_connection();
    test_upgrade();
    test_speed();
    return tap_done();
}
