/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-parse: a libFuzzer target over the rest of berth's own request and
 * response handling (router/parse.h): Host normalisation, X-Request-Id
 * validation, the rules for headers only the router may set, absolute-form
 * targets, the response head parser and the chunked decoder. Built without
 * -DBERTH_FUZZ_LIBFUZZER it is a plain program that replays files (the
 * seed corpus in router/tests/parse-corpus/ runs in every `meson test`).
 *
 * An input is one selector byte (which piece it drives, and for the
 * decoder how the stream is cut) and the bytes to give it. Each piece is
 * handed an exact-size heap copy, so AddressSanitizer catches a read past
 * the end. Invariants (abort() on a violation):
 *   - host_normalise(): a result of 1 to HOST_MAX bytes, lower case, of the
 *     characters a host may hold, and a fixed point (normalising it again
 *     gives the same); a name with a NUL, a space or a control byte is
 *     always refused;
 *   - request_id_valid(): exactly Heroku's rule, checked by a second,
 *     independent implementation;
 *   - header_forwarded_kind(): FORWARDED_FOR only for X-Forwarded-For in
 *     some case; any name that folds ('_' as '-', any case) to an
 *     x-forwarded-* name, x-request-start or forwarded is never passed on;
 *     header_is_framing_alias(): every underscore spelling of
 *     Content-Length, Transfer-Encoding and Host, and only names with '_';
 *   - request_target_split(): a host that normalises to itself and a path
 *     inside the input;
 *   - http_parse_response_head(): a status of 100-599 when it succeeds,
 *     every header name and value inside the input, no more headers than
 *     the limit;
 *   - the chunked decoder: the same output, consumption and verdict
 *     however the stream is cut, and never more output than input.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/strbuf.h"
#include "router/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz-parse: invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort(); \
        } \
    } while (0)

/* An exact-size, NUL-terminated heap copy (the string functions need the NUL; ASan sees past it). */
static char *copy_str(const uint8_t *d, size_t n)
{
    char *s = malloc(n + 1);

    CHECK(s != NULL);
    memcpy(s, d, n);
    s[n] = '\0';
    return s;
}

static bool host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
           ch == ':' || ch == '[' || ch == ']';
}

static void fuzz_host(const uint8_t *d, size_t n)
{
    char *in = copy_str(d, n), out[HOST_MAX + 1], again[HOST_MAX + 1];
    int len = host_normalise(in, out);
    bool bad_byte = false;

    for (size_t i = 0; i < n && in[i]; i++)
        if ((unsigned char)in[i] <= ' ' || (unsigned char)in[i] >= 0x7f)
            bad_byte = true;
    if (len >= 0) {
        CHECK(!bad_byte);
        CHECK(len >= 1 && len <= HOST_MAX && (size_t)len == strlen(out));
        for (int i = 0; i < len; i++)
            CHECK(host_char(out[i]));
        CHECK(host_normalise(out, again) == len && strcmp(out, again) == 0);
    } else {
        CHECK(len == -EINVAL);
    }
    free(in);
}

static void fuzz_request_id(const uint8_t *d, size_t n)
{
    char *in = copy_str(d, n);
    size_t len = strlen(in);
    bool want = len >= 20 && len <= 200;

    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '+' ||
              ch == '/' || ch == '=' || ch == '-'))
            want = false;
    }
    CHECK(request_id_valid(in) == want);
    free(in);
}

static void fuzz_forwarded(const uint8_t *d, size_t n)
{
    char *name = copy_str(d, n), *folded = copy_str(d, n);
    enum forwarded_kind k = header_forwarded_kind(name);

    for (char *p = folded; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        else if (*p == '_')
            *p = '-';
    }
    if (k == FORWARDED_FOR)
        CHECK(strcasecmp(name, "X-Forwarded-For") == 0);
    if (strncmp(folded, "x-forwarded-", 12) == 0 || strcmp(folded, "x-request-start") == 0 ||
        strcmp(folded, "forwarded") == 0)
        CHECK(k != FORWARDED_NONE);
    else
        CHECK(k == FORWARDED_NONE);
    /* An underscore spelling of a framing header never passes. */
    if (strchr(name, '_') && (strcmp(folded, "content-length") == 0 || strcmp(folded, "transfer-encoding") == 0 ||
                              strcmp(folded, "host") == 0))
        CHECK(header_is_framing_alias(name));
    if (header_is_framing_alias(name))
        CHECK(strchr(name, '_') != NULL);
    free(name);
    free(folded);
}

static void fuzz_target(const uint8_t *d, size_t n)
{
    char *target = copy_str(d, n), host[HOST_MAX + 1], again[HOST_MAX + 1];
    const char *path = NULL;
    int r = request_target_split(target, host, &path);

    CHECK(r == 0 || r == 1 || r == -EINVAL);
    if (r == 1) {
        CHECK(path >= target && path <= target + strlen(target));
        CHECK(host_normalise(host, again) >= 0 && strcmp(host, again) == 0);
        CHECK(path[0] == '\0' || path[0] == '/' || path[0] == '?' || path[0] == '#');
    }
    free(target);
}

static void fuzz_response(const uint8_t *d, size_t n, bool head_request)
{
    char *buf = copy_str(d, n);
    size_t hl = http_head_length(buf, n);
    struct http_response_head h;

    CHECK(hl <= n);
    if (hl > 0 && http_parse_response_head(buf, hl, head_request, &h) == 0) {
        CHECK(h.status >= 100 && h.status <= 599);
        CHECK(h.nheaders <= RESPONSE_HEADERS_MAX);
        CHECK(h.reason >= buf && h.reason <= buf + hl);
        for (size_t i = 0; i < h.nheaders; i++) {
            CHECK(h.headers[i].name >= buf && h.headers[i].name < buf + hl);
            CHECK(h.headers[i].value >= buf && h.headers[i].value <= buf + hl);
            CHECK(h.headers[i].name[0] != '\0');
        }
        if (head_request || h.status == 204 || h.status == 304 || h.status < 200)
            CHECK(h.body == BODY_NONE);
    }
    free(buf);
}

/* Feeds the stream in pieces of `piece` bytes (0: whole); returns the verdict, output in *out. */
static int chunked_run(const uint8_t *d, size_t n, size_t piece, struct strbuf *out, size_t *ret_used)
{
    struct chunked_decoder c;
    size_t off = 0;

    chunked_init(&c);
    *ret_used = 0;
    while (off < n && !c.done) {
        size_t take = piece && n - off > piece ? piece : n - off;
        char *p = malloc(take ? take : 1);
        ssize_t used;

        CHECK(p != NULL);
        memcpy(p, d + off, take);
        used = chunked_feed(&c, p, take, out);
        free(p);
        if (used < 0)
            return -1;
        CHECK((size_t)used <= take);
        CHECK((size_t)used == take || c.done);
        off += (size_t)used;
        *ret_used = off;
    }
    return c.done ? 1 : 0;
}

static void fuzz_chunked(const uint8_t *d, size_t n, unsigned piece)
{
    struct strbuf whole = STRBUF_INIT, cut = STRBUF_INIT;
    size_t used_whole, used_cut;
    int a = chunked_run(d, n, 0, &whole, &used_whole);
    int b = chunked_run(d, n, piece ? piece : 1, &cut, &used_cut);

    CHECK(a == b);
    CHECK(whole.len <= n);
    if (a >= 0) {
        CHECK(used_whole == used_cut);
        CHECK(whole.len == cut.len && memcmp(whole.buf, cut.buf, whole.len) == 0);
    }
    strbuf_release(&whole);
    strbuf_release(&cut);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sel;

    if (size == 0)
        return 0;
    sel = data[0];
    data++;
    size--;
    switch (sel % 7) {
    case 0:
        fuzz_host(data, size);
        break;
    case 1:
        fuzz_request_id(data, size);
        break;
    case 2:
        fuzz_forwarded(data, size);
        break;
    case 3:
        fuzz_target(data, size);
        break;
    case 4:
        fuzz_response(data, size, false);
        break;
    case 5:
        fuzz_response(data, size, true);
        break;
    default:
        fuzz_chunked(data, size, sel / 7);
        break;
    }
    return 0;
}

#ifndef BERTH_FUZZ_LIBFUZZER
/*
 * The replay driver: runs every file named on the command line (a
 * directory: every file in it, in name order) through the target and
 * prints TAP; a broken invariant aborts, which the test run reports.
 */
static int tap_n;

static void replay_file(const char *path, const char *name)
{
    FILE *f = fopen(path, "rb");
    struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    size_t n;

    tap_n++;
    if (!f) {
        printf("not ok %d - %s: cannot open\n", tap_n, name);
        return;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_add(&sb, buf, n);
    fclose(f);
    LLVMFuzzerTestOneInput((const uint8_t *)sb.buf, sb.len);
    printf("ok %d - %s: %zu bytes, every invariant holds\n", tap_n, name, sb.len);
    strbuf_release(&sb);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct dirent **names;
        struct stat st;
        int n;

        if (stat(argv[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            const char *base = strrchr(argv[i], '/');
            replay_file(argv[i], base ? base + 1 : argv[i]);
            continue;
        }
        n = scandir(argv[i], &names, NULL, by_name);
        for (int k = 0; k < n; k++) {
            if (names[k]->d_name[0] != '.') {
                char path[4096];
                (void)snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
                replay_file(path, names[k]->d_name);
            }
            free(names[k]);
        }
        free(n >= 0 ? names : NULL);
    }
    printf("1..%d\n", tap_n);
    return 0;
}
#endif
