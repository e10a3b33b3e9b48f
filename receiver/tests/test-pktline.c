/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for receiver/pktline.c: headers, encoding, the reader's caps and side-band framing. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "receiver/pktline.h"

/* A reader over an in-memory file holding `data`. */
static int memfd_with(const void *data, size_t len)
{
    int fd = memfd_create("pkt", MFD_CLOEXEC);

    if (fd < 0)
        return -1;
    if (len && write(fd, data, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    (void)lseek(fd, 0, SEEK_SET);
    return fd;
}

static int read_one(const char *input, size_t len, char **data, size_t *dlen)
{
    _cleanup_close_ int fd = memfd_with(input, len);
    _cleanup_error_ struct berth_error *err = NULL;
    static struct pkt_reader r;
    int k;

    pkt_reader_init(&r, fd);
    k = pkt_reader_read(&r, data, dlen, &err);
    return k;
}

int main(void)
{
    size_t len = 99;

    /* headers */
    ok(pktline_parse_header("0000", &len) == 0 && len == 0, "0000 is a flush");
    ok(pktline_parse_header("0004", &len) == 0 && len == 4, "0004 is an empty data packet");
    ok(pktline_parse_header("fff0", &len) == 0 && len == 65520, "fff0 is the largest packet");
    ok(pktline_parse_header("FFF0", &len) == 0 && len == 65520, "uppercase hex is accepted");
    ok(pktline_parse_header("fff1", &len) == -EPROTO, "fff1 exceeds the 65520 cap");
    ok(pktline_parse_header("ffff", &len) == -EPROTO, "ffff exceeds the cap");
    ok(pktline_parse_header("0001", &len) == -EPROTO, "0001 (v2 delim) is rejected");
    ok(pktline_parse_header("0003", &len) == -EPROTO, "0003 is rejected");
    ok(pktline_parse_header("00a", &len) == -EPROTO, "'00a' plus NUL is rejected");
    ok(pktline_parse_header("00g0", &len) == -EPROTO, "non-hex digit is rejected");
    ok(pktline_parse_header("-001", &len) == -EPROTO, "sign is rejected");

    /* encoding */
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        _cleanup_free_ char *big = xcalloc(1, PKT_MAX_DATA + 1);

        ok(pktline_add(&sb, "hello\n", 6) == 0 && sb.len == 10 && !memcmp(sb.buf, "000ahello\n", 10),
           "pktline_add frames 'hello\\n' as 000a");
        strbuf_reset(&sb);
        ok(pktline_addf(&sb, "%s %s%c%s\n", "a", "b", '\0', "caps") == 0 && sb.len == 4 + 9
           && !memcmp(sb.buf, "000da b\0caps\n", 13), "pktline_addf keeps the NUL before caps");
        strbuf_reset(&sb);
        pktline_add_flush(&sb);
        ok(sb.len == 4 && !memcmp(sb.buf, "0000", 4), "flush is 0000");
        strbuf_reset(&sb);
        ok(pktline_add(&sb, big, PKT_MAX_DATA) == 0 && sb.len == PKT_MAX_LEN
           && !memcmp(sb.buf, "fff0", 4), "65516 data bytes fit one packet");
        strbuf_reset(&sb);
        ok(pktline_add(&sb, big, PKT_MAX_DATA + 1) == -EMSGSIZE && sb.len == 0,
           "65517 data bytes are refused and nothing is appended");
        memset(big, 'x', PKT_MAX_DATA);
        ok(pktline_addf(&sb, "%s", big) == 0 && sb.len == PKT_MAX_LEN, "a formatted packet of exactly 65520 bytes fits");
        strbuf_reset(&sb);
        ok(pktline_addf(&sb, "%s!", big) == -EMSGSIZE && sb.len == 0, "an oversized pktline_addf is refused");
    }

    /* side-band */
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        size_t total = 150000, pos = 0, got = 0, packets = 0;
        _cleanup_free_ char *data = xmalloc(total);
        bool framing_ok = true;

        for (size_t i = 0; i < total; i++)
            data[i] = (char)('a' + i % 26);
        pktline_add_sideband(&sb, 2, "hi\n", 3);
        ok(sb.len == 8 && !memcmp(sb.buf, "0008\002hi\n", 8), "band-2 progress packet");
        strbuf_reset(&sb);
        pktline_add_sideband(&sb, 1, data, total);
        while (pos < sb.len) {
            size_t plen;

            if (pktline_parse_header(sb.buf + pos, &plen) < 0 || plen < 5 || sb.buf[pos + 4] != 1
                || plen - 5 > PKT_SIDEBAND_MAX_DATA || memcmp(sb.buf + pos + 5, data + got, plen - 5)) {
                framing_ok = false;
                break;
            }
            got += plen - 5;
            pos += plen;
            packets++;
        }
        ok(framing_ok && got == total && packets == 3, "150000 bytes split into 3 band-1 packets of <= 65515");
        strbuf_reset(&sb);
        pktline_add_sideband(&sb, 1, data, PKT_SIDEBAND_MAX_DATA);
        ok(sb.len == PKT_MAX_LEN, "exactly 65515 bytes make one full packet");
        strbuf_reset(&sb);
        pktline_add_sideband(&sb, 1, data, 0);
        ok(sb.len == 0, "empty data adds no packet");
    }

    /* reader */
    {
        char *d = NULL;
        size_t dl = 0;
        static const char two[] = "000ahello\n0000PACKrest";
        _cleanup_close_ int fd = memfd_with(two, sizeof(two) - 1);
        _cleanup_error_ struct berth_error *err = NULL;
        static struct pkt_reader r;
        char raw[16] = { 0 };
        ssize_t n;

        pkt_reader_init(&r, fd);
        ok(pkt_reader_read(&r, &d, &dl, &err) == 1 && dl == 6 && !strcmp(d, "hello\n"),
           "reader returns a data packet, NUL-terminated");
        ok(pkt_reader_read(&r, &d, &dl, &err) == 0, "reader returns the flush");
        n = pkt_reader_read_raw(&r, raw, sizeof(raw));
        ok(n == 8 && !memcmp(raw, "PACKrest", 8), "bytes after the flush are kept for the pack");
        ok(pkt_reader_read_raw(&r, raw, sizeof(raw)) == 0, "raw read hits end of input");

        ok(read_one("00a", 3, &d, &dl) == -EPROTO, "'00a' (short header) is a protocol error");
        ok(read_one("0003", 4, &d, &dl) == -EPROTO, "'0003' is a protocol error");
        ok(read_one("fff5xxxx", 8, &d, &dl) == -EPROTO, "length over 65520 is a protocol error");
        ok(read_one("0010abc", 7, &d, &dl) == -EPROTO, "truncated packet is a protocol error");
        ok(read_one("", 0, &d, &dl) == -EPROTO, "empty input is a protocol error");
        ok(read_one("0004", 4, &d, &dl) == 1 && dl == 0, "0004 reads as an empty data packet");
    }
    {
        /* A maximal packet followed by another, across the reader's buffer boundary. */
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        _cleanup_free_ char *big = xmalloc(PKT_MAX_DATA);
        _cleanup_error_ struct berth_error *err = NULL;
        static struct pkt_reader r;
        _cleanup_close_ int fd = -1;
        char *d = NULL;
        size_t dl = 0;

        memset(big, 'z', PKT_MAX_DATA);
        (void)pktline_add(&sb, "x", 1);
        (void)pktline_add(&sb, big, PKT_MAX_DATA);
        (void)pktline_add(&sb, "end", 3);
        fd = memfd_with(sb.buf, sb.len);
        pkt_reader_init(&r, fd);
        ok(pkt_reader_read(&r, &d, &dl, &err) == 1 && dl == 1, "small packet before a full one");
        ok(pkt_reader_read(&r, &d, &dl, &err) == 1 && dl == PKT_MAX_DATA && d[PKT_MAX_DATA - 1] == 'z'
           && d[PKT_MAX_DATA] == '\0', "a 65520-byte packet is read whole");
        ok(pkt_reader_read(&r, &d, &dl, &err) == 1 && dl == 3 && !strcmp(d, "end"),
           "the packet after it is intact");
    }
    return tap_done();
}
