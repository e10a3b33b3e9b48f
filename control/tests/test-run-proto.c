/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the run protocol's frames (control/run-proto.h), the bytes
 * `berth run` and the API exchange: the encoding docs/API.md gives, frames
 * split anywhere, several in one buffer, an empty payload, and the length
 * cap. Prints TAP.
 */
#include <stdbool.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "control/run-proto.h"
#include "common/banned.h"

static void test_encoding(void)
{
    struct strbuf sb = STRBUF_INIT;
    static const unsigned char want[] = { 1, 0, 0, 0, 3, 'a', 'b', 'c', 4, 0, 0, 0, 0 };

    run_frame_add(&sb, RUN_FRAME_STDOUT, "abc", 3);
    run_frame_add(&sb, RUN_FRAME_STDIN_EOF, NULL, 0);
    ok(sb.len == sizeof(want) && memcmp(sb.buf, want, sizeof(want)) == 0,
       "a frame is its type, a big-endian 32-bit length and the payload; an empty one is 5 bytes");
    strbuf_release(&sb);
}

static void test_decoding(void)
{
    struct strbuf sb = STRBUF_INIT;
    const char *payload = NULL;
    size_t len = 0, whole, at = 0;
    uint8_t type = 0;
    bool partial_ok = true;
    int r;

    run_frame_add(&sb, RUN_FRAME_STDERR, "hello", 5);
    run_frame_add(&sb, RUN_FRAME_EXIT, "{\"status\":3}", 12);
    whole = RUN_FRAME_HEADER + 5;
    for (size_t cut = 0; cut < whole; cut++)
        if (run_frame_next(sb.buf, cut, &type, &payload, &len) != 0)
            partial_ok = false;
    ok(partial_ok, "a frame cut anywhere before its end is not there yet (0)");
    r = run_frame_next(sb.buf, sb.len, &type, &payload, &len);
    ok(r == 1 && type == RUN_FRAME_STDERR && len == 5 && memcmp(payload, "hello", 5) == 0,
       "the first of two frames in a buffer comes out whole");
    at = RUN_FRAME_HEADER + len;
    r = run_frame_next(sb.buf + at, sb.len - at, &type, &payload, &len);
    ok(r == 1 && type == RUN_FRAME_EXIT && len == 12 && memcmp(payload, "{\"status\":3}", 12) == 0 &&
       at + RUN_FRAME_HEADER + len == sb.len, "then the second, ending where the buffer ends");
    strbuf_release(&sb);
}

static void test_cap(void)
{
    static const char at_cap[] = { 0, 0, 1, 0, 0 };        /* 65536: allowed, but not all there */
    static const char past_cap[] = { 0, 0, 1, 0, 1 };      /* 65537 */
    static const char huge[] = { 0, (char)0xff, (char)0xff, (char)0xff, (char)0xff };
    const char *payload;
    uint8_t type;
    size_t len;

    ok(run_frame_next(at_cap, sizeof(at_cap), &type, &payload, &len) == 0,
       "a frame of RUN_FRAME_MAX bytes is waited for");
    ok(run_frame_next(past_cap, sizeof(past_cap), &type, &payload, &len) == -1 &&
       run_frame_next(huge, sizeof(huge), &type, &payload, &len) == -1,
       "a length past RUN_FRAME_MAX is malformed (-1), however large");
}

int main(void)
{
    test_encoding();
    test_decoding();
    test_cap();
    return tap_done();
}
