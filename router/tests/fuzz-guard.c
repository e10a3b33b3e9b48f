/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-guard: a libFuzzer target for the guard (router/guard.h), and, built
 * without -DBERTH_FUZZ_LIBFUZZER, a plain program that replays files
 * through the same target (the seed corpus in router/tests/guard-corpus/
 * runs in every `meson test`).
 *
 * An input is one selector byte and then the client's byte stream. The
 * selector chooses how the stream is cut into guard_feed() calls: its low
 * 7 bits give a piece size m + 1, its top bit chooses pieces of exactly
 * that size (0x00: one byte at a time) or random sizes from 1 to m + 1
 * (seeded by the selector). Each piece is copied into a heap block of its
 * exact size, so AddressSanitizer catches a read past what was fed.
 *
 * Invariants checked (abort() on a violation, which libFuzzer reports):
 *   - a status is 0, 400, 405, 414, 431 or 505, and `why` is set exactly
 *     when it is not 0;
 *   - a refusal is final: every later call returns it, with the same why,
 *     whatever is fed (nothing, more bytes, after guard_passthrough());
 *   - the stream fed whole and fed in pieces ends in the same state:
 *     verdict, why, guard_in_head(), guard_wants_upgrade(), heads
 *     accepted, and the parser's position (state, counters, body left);
 *   - the refusal comes at one byte: the stream up to just before it is
 *     accepted, fed whole;
 *   - a stream accepted and left between requests is in step with the
 *     framing: a well-formed request fed next is accepted as exactly one
 *     more head, and leaves the guard between requests again;
 *   - after guard_passthrough() nothing is refused.
 *
 * The replay driver also checks the verdict a seed's file name states:
 * "accept-..." must be accepted, "NNN-..." refused with status NNN.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "router/guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { \
        if (!(cond)) { \
            fprintf(stderr, "fuzz-guard: invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort(); \
        } \
    } while (0)

static void check_verdict(const struct guard *g, int status)
{
    CHECK(status == 0 || status == 400 || status == 405 || status == 414 || status == 431 ||
          status == 505);
    CHECK(status == g->status);
    CHECK((status == 0) == (g->why == NULL));
}

/* The same bytes leave the same state, however they were cut. */
static void check_same(const struct guard *a, const struct guard *b)
{
    CHECK(a->status == b->status);
    CHECK(a->why == b->why);
    CHECK(guard_in_head(a) == guard_in_head(b));
    CHECK(guard_wants_upgrade(a) == guard_wants_upgrade(b));
    CHECK(a->requests == b->requests);
    if (a->status != 0)
        return;     /* where a refused parser stopped is not part of the contract */
    CHECK(a->state == b->state);
    CHECK(a->body_left == b->body_left);
    CHECK(a->head_len == b->head_len);
    CHECK(a->line_len == b->line_len);
    CHECK(a->name_len == b->name_len);
    CHECK(a->nheaders == b->nheaders);
    CHECK(a->trailers == b->trailers);
}

/* Feeds `n` bytes from an exact-size heap copy, so that any over-read is caught. */
static int feed_copy(struct guard *g, const char *s, size_t n)
{
    char *copy;
    int st;

    if (n == 0)
        return guard_feed(g, NULL, 0);
    copy = malloc(n);
    CHECK(copy != NULL);
    memcpy(copy, s, n);
    st = guard_feed(g, copy, n);
    free(copy);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct guard whole, split, prefix;
    const char *s;
    size_t len, off = 0, max_piece, at;
    uint32_t rng;
    uint8_t sel;
    int st_whole, st = 0;

    if (size == 0)
        return 0;
    sel = data[0];
    s = (const char *)data + 1;
    len = size - 1;
    max_piece = (size_t)(sel & 0x7f) + 1;
    rng = 0x9e3779b9u ^ (uint32_t)sel ^ ((uint32_t)len << 8);

    guard_init(&whole);
    st_whole = feed_copy(&whole, s, len);
    check_verdict(&whole, st_whole);

    guard_init(&split);
    while (off < len) {
        size_t n = max_piece;
        int r;
        if (sel & 0x80) {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            n = 1 + rng % max_piece;
        }
        if (n > len - off)
            n = len - off;
        r = feed_copy(&split, s + off, n);
        check_verdict(&split, r);
        if (st != 0)
            CHECK(r == st);
        st = r;
        off += n;
        if ((rng & 7) == 0)
            CHECK(guard_feed(&split, NULL, 0) == st);
    }
    check_same(&whole, &split);

    if (st_whole != 0) {
        static const char good[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        const char *why = whole.why;

        /* Final: more bytes, nothing, passthrough change nothing. */
        CHECK(feed_copy(&whole, s, len) == st_whole && whole.why == why);
        CHECK(guard_feed(&whole, NULL, 0) == st_whole);
        CHECK(feed_copy(&whole, good, sizeof(good) - 1) == st_whole && whole.why == why);
        guard_passthrough(&whole);
        CHECK(feed_copy(&whole, s, len) == st_whole && whole.why == why);
        CHECK(!guard_in_head(&whole));

        /* The refusal comes at one byte: everything before it passes, fed whole. */
        guard_init(&prefix);
        for (at = 0; at < len; at++)
            if (guard_feed(&prefix, s + at, 1) != 0)
                break;
        CHECK(at < len && prefix.status == st_whole && prefix.why == why);
        guard_init(&prefix);
        CHECK(feed_copy(&prefix, s, at) == 0);
        CHECK(feed_copy(&prefix, s + at, 1) == st_whole && prefix.why == why);
    } else {
        static const char next[] = "POST /next HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok";
        struct guard fresh;

        guard_init(&fresh);
        if (whole.state == fresh.state) {
            /* Between requests: the next one is found where a correct server finds it. */
            uint64_t before = whole.requests;
            CHECK(feed_copy(&whole, next, sizeof(next) - 1) == 0);
            CHECK(whole.requests == before + 1 && whole.state == fresh.state && !guard_in_head(&whole));
        }

        /* After a switch of protocols nothing is refused, not even this stream again. */
        guard_passthrough(&split);
        CHECK(feed_copy(&split, s, len) == 0);
        CHECK(feed_copy(&split, (const char *)data, size) == 0);
        CHECK(!guard_in_head(&split));
    }
    return 0;
}

#ifndef BERTH_FUZZ_LIBFUZZER
/*
 * The replay driver: runs every file named on the command line (a
 * directory: every file in it, in name order) through the target, and
 * prints TAP.
 */
static int tap_n, tap_failed;

static void replay_file(const char *path, const char *name)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    struct guard g;
    int st, want = -1;

    tap_n++;
    if (!f) {
        tap_failed++;
        printf("not ok %d - %s: cannot open\n", tap_n, name);
        return;
    }
    for (;;) {
        size_t n;
        if (len == cap) {
            uint8_t *nb;
            cap = cap ? cap * 2 : 4096;
            nb = realloc(buf, cap);
            CHECK(nb != NULL);
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);

    LLVMFuzzerTestOneInput(buf, len);   /* aborts on a broken invariant */

    guard_init(&g);
    st = len > 0 ? guard_feed(&g, (const char *)buf + 1, len - 1) : 0;
    if (strncmp(name, "accept-", 7) == 0)
        want = 0;
    else if (name[0] >= '1' && name[0] <= '5' && name[1] >= '0' && name[1] <= '9' && name[2] >= '0' &&
             name[2] <= '9' && name[3] == '-')
        want = (name[0] - '0') * 100 + (name[1] - '0') * 10 + (name[2] - '0');
    if (want >= 0 && st != want) {
        tap_failed++;
        printf("not ok %d - %s: status %d (%s), wanted %d\n", tap_n, name, st, g.why ? g.why : "accepted",
               want);
    } else {
        printf("ok %d - %s: %zu bytes, %s%s%s\n", tap_n, name, len, st ? "refused: " : "accepted",
               st ? g.why : "", want < 0 ? " (no expected verdict in the name)" : "");
    }
    free(buf);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        struct stat st;
        struct dirent **names;
        int n;

        if (stat(argv[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            const char *base = strrchr(argv[i], '/');
            replay_file(argv[i], base ? base + 1 : argv[i]);
            continue;
        }
        n = scandir(argv[i], &names, NULL, by_name);
        if (n < 0) {
            printf("not ok %d - %s: cannot list\n", ++tap_n, argv[i]);
            tap_failed++;
            continue;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            struct stat fst;
            snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
            if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode))
                replay_file(path, names[j]->d_name);
            free(names[j]);
        }
        free(names);
    }
    if (tap_n == 0) {
        printf("1..0 # SKIP no input files\n");
        return 0;
    }
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}
#endif
