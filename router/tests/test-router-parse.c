/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the router's pure HTTP pieces (router/parse.h): Host
 * normalisation, request-id validation and generation, the response head
 * parser and the chunked decoder, including input split at every byte.
 */
#include <errno.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "router/parse.h"

static void test_host(void)
{
    char out[HOST_MAX + 1];
    char longhost[400];

    ok(host_normalise("Hello.LocalHost", out) == 15 && strcmp(out, "hello.localhost") == 0, "host lowercased");
    ok(host_normalise("a.localhost:8080", out) > 0 && strcmp(out, "a.localhost") == 0, "port stripped");
    ok(host_normalise("a.localhost.", out) > 0 && strcmp(out, "a.localhost") == 0, "trailing dot stripped");
    ok(host_normalise("[::1]:80", out) > 0 && strcmp(out, "[::1]") == 0, "ipv6 literal keeps brackets, loses port");
    ok(host_normalise("", out) == -EINVAL, "empty host refused");
    ok(host_normalise(":80", out) == -EINVAL, "port only refused");
    ok(host_normalise("a.localhost:80x", out) == -EINVAL, "a port that is not digits refused");
    ok(host_normalise("[::1]:44\xe9", out) == -EINVAL, "an IPv6 literal's port that is not digits refused");
    ok(host_normalise("a.localhost:123456", out) == -EINVAL, "a port over five digits refused");
    ok(host_normalise("a.localhost:", out) > 0 && strcmp(out, "a.localhost") == 0, "an empty port is no port");
    ok(host_normalise("a..localhost", out) == -EINVAL && host_normalise(".localhost", out) == -EINVAL &&
       host_normalise("a.localhost..", out) == -EINVAL, "empty labels refused (one trailing dot only)");
    ok(host_normalise("a b", out) == -EINVAL, "space refused");
    ok(host_normalise("<script>", out) == -EINVAL, "markup refused");
    memset(longhost, 'a', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    ok(host_normalise(longhost, out) == -EINVAL, "oversized host refused");
}

static void test_request_id(void)
{
    char id[REQUEST_ID_UUID_LEN + 1], id2[REQUEST_ID_UUID_LEN + 1];
    char long_id[202];

    ok(request_id_valid("abcdefghij0123456789"), "20 characters valid");
    ok(!request_id_valid("abcdefghij012345678"), "19 characters invalid");
    ok(request_id_valid("8601b555-6a83-4c12-8269-97c8e32cdb22"), "uuid valid");
    ok(request_id_valid("a+b/c=d-e+f/g=h-i+j/"), "+ / = - allowed");
    ok(!request_id_valid("abcdefghij0123456789_"), "underscore invalid");
    ok(!request_id_valid("abcdefghij0123456789\r\nX: y"), "CRLF invalid");
    memset(long_id, 'a', 201);
    long_id[201] = '\0';
    ok(!request_id_valid(long_id), "201 characters invalid");
    long_id[200] = '\0';
    ok(request_id_valid(long_id), "200 characters valid");

    request_id_generate(id);
    request_id_generate(id2);
    ok(strlen(id) == 36 && id[8] == '-' && id[13] == '-' && id[14] == '4' && id[18] == '-' &&
       strchr("89ab", id[19]) != NULL && id[23] == '-', "uuid v4 shape: %s", id);
    ok(strcmp(id, id2) != 0, "two ids differ");
    ok(request_id_valid(id), "generated id is valid");
}

static int parse(const char *text, bool head_req, struct http_response_head *h, char *buf)
{
    size_t len = strlen(text), hl = http_head_length(text, len);

    memcpy(buf, text, len + 1);
    if (hl == 0)
        return -EAGAIN;
    return http_parse_response_head(buf, hl, head_req, h);
}

static void test_head(void)
{
    static struct http_response_head h;
    static char buf[8192];

    ok(http_head_length("HTTP/1.1 200 OK\r\nA: b\r\n", 23) == 0, "incomplete head needs more");
    ok(http_head_length("HTTP/1.1 200 OK\r\n\r\nbody", 23) == 19, "head length with CRLF");
    ok(http_head_length("HTTP/1.0 200 OK\n\nbody", 21) == 17, "head length with bare LF");

    ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  spaced  \r\n\r\nhello", false, &h, buf) == 0 &&
       h.status == 200 && h.body == BODY_LENGTH && h.content_length == 5 && h.keep_alive &&
       h.nheaders == 2 && strcmp(h.headers[1].name, "X-A") == 0 && strcmp(h.headers[1].value, "spaced") == 0 &&
       strcmp(h.reason, "OK") == 0, "content-length response");
    ok(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n", false, &h, buf) == 0 &&
       h.body == BODY_CHUNKED, "chunked wins over content-length");
    ok(parse("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n", false, &h, buf) == 0 &&
       h.body == BODY_CLOSE && !h.keep_alive && h.minor_version == 0, "HTTP/1.0 close-delimited");
    ok(parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, &h, buf) == 0 &&
       h.keep_alive, "HTTP/1.0 keep-alive with length");
    ok(parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false, &h, buf) == 0 &&
       !h.keep_alive, "Connection: close");
    ok(parse("HTTP/1.1 204 No Content\r\n\r\n", false, &h, buf) == 0 && h.body == BODY_NONE, "204 has no body");
    ok(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, &h, buf) == 0 &&
       h.body == BODY_NONE, "304 has no body");
    ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, &h, buf) == 0 && h.body == BODY_NONE,
       "answer to HEAD has no body");
    ok(parse("HTTP/1.1 200\r\n\r\n", false, &h, buf) == -EBADMSG,
       "a status line without a reason phrase is malformed (Heroku's H17)");
    ok(parse("HTTP/1.1 200 \r\n\r\n", false, &h, buf) == 0 && h.status == 200 && h.reason[0] == '\0',
       "an empty reason phrase after the space is one (RFC 9112 §4)");
    ok(parse("HTTP/1.1 20 OK\r\n\r\n", false, &h, buf) == -EBADMSG, "two-digit status refused");
    ok(parse("HTTP/2.0 200 OK\r\n\r\n", false, &h, buf) == -EBADMSG, "HTTP/2 status line refused");
    ok(parse("garbage\r\n\r\n", false, &h, buf) == -EBADMSG, "garbage refused");
    ok(parse("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", false, &h, buf) == -EBADMSG, "header without colon refused");
    ok(parse("HTTP/1.1 200 OK\r\nA : b\r\n\r\n", false, &h, buf) == -EBADMSG, "space before colon refused");
    ok(parse("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", false, &h, buf) == -EBADMSG, "folding refused");
    ok(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false, &h, buf) == -EBADMSG,
       "conflicting content-lengths refused");
    ok(parse("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", false, &h, buf) == -EBADMSG,
       "negative content-length refused");

    {
        struct strbuf sb = STRBUF_INIT;
        strbuf_addstr(&sb, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i < RESPONSE_HEADERS_MAX + 1; i++)
            strbuf_addf(&sb, "X-%d: v\r\n", i);
        strbuf_addstr(&sb, "\r\n");
        ok(http_parse_response_head(sb.buf, sb.len, false, &h) == -E2BIG, "too many headers refused");
        strbuf_release(&sb);
    }
    ok(header_is_hop_by_hop("Connection") && header_is_hop_by_hop("keep-alive") &&
       header_is_hop_by_hop("Transfer-Encoding") && !header_is_hop_by_hop("Content-Type"),
       "hop-by-hop headers");
}

static void test_chunked(void)
{
    static const char msg[] = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    size_t body_len = strlen(msg) - 4;
    struct chunked_decoder c;
    struct strbuf out = STRBUF_INIT;
    ssize_t n;
    bool split_ok = true;

    chunked_init(&c);
    n = chunked_feed(&c, msg, strlen(msg), &out);
    ok(n == (ssize_t)body_len && c.done && strcmp(out.buf, "hello, world") == 0,
       "whole message decoded, stops before the next message");

    /* Every split point, fed one piece after the other. */
    for (size_t cut = 0; cut <= body_len; cut++) {
        ssize_t a, b;
        strbuf_reset(&out);
        chunked_init(&c);
        a = chunked_feed(&c, msg, cut, &out);
        b = chunked_feed(&c, msg + cut, body_len - cut, &out);
        if (a != (ssize_t)cut || b != (ssize_t)(body_len - cut) || !c.done || strcmp(out.buf, "hello, world") != 0)
            split_ok = false;
    }
    ok(split_ok, "decoding is independent of how the input is split");

    strbuf_reset(&out);
    chunked_init(&c);
    n = chunked_feed(&c, "A\nabcdefghij\n0\n\n", 16, &out);
    ok(n == 16 && c.done && out.len == 10, "bare LF line ends and upper-case hex");

    chunked_init(&c);
    ok(chunked_feed(&c, "zz\r\n", 4, &out) == -EBADMSG, "non-hex size refused");
    chunked_init(&c);
    ok(chunked_feed(&c, "1000000000000000\r\n", 18, &out) == -EBADMSG, "oversized chunk size refused");
    chunked_init(&c);
    ok(chunked_feed(&c, "3\r\nabcX", 7, &out) == -EBADMSG, "missing CRLF after data refused");
    chunked_init(&c);
    n = chunked_feed(&c, "3\r\nab", 5, &out);
    ok(n == 5 && !c.done, "partial message is not done");
    strbuf_release(&out);
}

static void test_decimal(void)
{
    static const struct {
        uint64_t v;
        const char *want;
    } cases[] = { { 0, "0" }, { 7, "7" }, { 10, "10" }, { 1234567890, "1234567890" },
                  { UINT64_MAX, "18446744073709551615" } };

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char buf[DECIMAL_U64_MAX];
        const char *d = decimal_u64(cases[i].v, buf);
        size_t len = (size_t)(buf + sizeof(buf) - d);

        ok(len == strlen(cases[i].want) && memcmp(d, cases[i].want, len) == 0, "decimal_u64 writes %s",
           cases[i].want);
    }
}

int main(void)
{
    test_host();
    test_decimal();
    test_request_id();
    test_head();
    test_chunked();
    return tap_done();
}
