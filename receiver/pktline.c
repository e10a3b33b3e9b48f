/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pkt-line encoding, decoding and side-band framing (see pktline.h). Used by
 * the advertisement, the command-list parser and the report writer; the
 * reader enforces the 65520-byte packet cap before allocating or reading.
 */
#include "receiver/pktline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/hex.h"
#include "common/banned.h"

int pktline_parse_header(const char hdr[4], size_t *ret_len)
{
    size_t len = 0;

    for (int i = 0; i < 4; i++) {
        int v = hex_digit_value(hdr[i]);

        if (v < 0)
            return -EPROTO;
        len = (len << 4) | (size_t)v;
    }
    /* 0001 (delim) and 0002 (response-end) belong to protocol v2 only. */
    if ((len > 0 && len < 4) || len > PKT_MAX_LEN)
        return -EPROTO;
    *ret_len = len;
    return 0;
}

static void set_header(char *dst, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    dst[0] = hex[(len >> 12) & 0xf];
    dst[1] = hex[(len >> 8) & 0xf];
    dst[2] = hex[(len >> 4) & 0xf];
    dst[3] = hex[len & 0xf];
}

int pktline_add(struct strbuf *out, const void *data, size_t len)
{
    size_t start = out->len;

    if (len > PKT_MAX_DATA)
        return -EMSGSIZE;
    strbuf_grow(out, len + 4);
    strbuf_add(out, "0000", 4);
    set_header(out->buf + start, len + 4);
    strbuf_add(out, data, len);
    return 0;
}

int pktline_addf(struct strbuf *out, const char *fmt, ...)
{
    size_t start = out->len;
    va_list ap;

    /* Reserve the header, format in place, then patch the length (git's format_packet). */
    strbuf_add(out, "0000", 4);
    va_start(ap, fmt);
    strbuf_vaddf(out, fmt, ap);
    va_end(ap);
    if (out->len - start > PKT_MAX_LEN) {
        strbuf_setlen(out, start);
        return -EMSGSIZE;
    }
    set_header(out->buf + start, out->len - start);
    return 0;
}

void pktline_add_flush(struct strbuf *out)
{
    strbuf_add(out, "0000", 4);
}

void pktline_add_sideband(struct strbuf *out, int band, const void *data, size_t len)
{
    const char *p = data;

    while (len) {
        size_t n = len < PKT_SIDEBAND_MAX_DATA ? len : PKT_SIDEBAND_MAX_DATA;
        size_t start = out->len;
        char b = (char)band;

        strbuf_grow(out, n + 5);
        strbuf_add(out, "0000", 4);
        set_header(out->buf + start, n + 5);
        strbuf_add(out, &b, 1);
        strbuf_add(out, p, n);
        p += n;
        len -= n;
    }
}

void pkt_reader_init(struct pkt_reader *r, int fd)
{
    r->fd = fd;
    r->pos = r->len = 0;
}

/* Makes at least `need` unread bytes available; returns 0, 1 at EOF, or -errno. */
static int fill(struct pkt_reader *r, size_t need)
{
    if (r->len - r->pos >= need)
        return 0;
    if (r->pos) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    while (r->len < need) {
        ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return 1;
        r->len += (size_t)n;
    }
    return 0;
}

int pkt_reader_read(struct pkt_reader *r, char **ret_data, size_t *ret_len,
                    struct berth_error **err)
{
    size_t len;
    int k;

    k = fill(r, 4);
    if (k < 0)
        return berth_error_make(err, -k, "reading request");
    if (k > 0)
        return berth_error_plain(err, EPROTO, "protocol error: unexpected end of input, expected a pkt-line");
    if (pktline_parse_header(r->buf + r->pos, &len) < 0)
        return berth_error_plain(err, EPROTO, "protocol error: bad pkt-line length '%.4s'",
                                 r->buf + r->pos);
    if (len == 0) {
        r->pos += 4;
        return 0;
    }
    k = fill(r, len);
    if (k < 0)
        return berth_error_make(err, -k, "reading request");
    if (k > 0)
        return berth_error_plain(err, EPROTO, "protocol error: truncated pkt-line");
    /* Copy out so the payload can be NUL-terminated without touching the next packet. */
    memcpy(r->data, r->buf + r->pos + 4, len - 4);
    r->data[len - 4] = '\0';
    r->pos += len;
    *ret_data = r->data;
    *ret_len = len - 4;
    return 1;
}

ssize_t pkt_reader_read_raw(struct pkt_reader *r, void *buf, size_t n)
{
    if (r->pos < r->len) {
        size_t avail = r->len - r->pos;

        if (n > avail)
            n = avail;
        memcpy(buf, r->buf + r->pos, n);
        r->pos += n;
        return (ssize_t)n;
    }
    for (;;) {
        ssize_t k = read(r->fd, buf, n);

        if (k < 0 && errno == EINTR)
            continue;
        return k < 0 ? -errno : k;
    }
}
