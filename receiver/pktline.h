/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pkt-line framing for the receiver (git's protocol v0 wire format, see git's
 * Documentation/gitprotocol-common.txt). A pkt-line is four lowercase or
 * uppercase hex digits giving the total length including those four bytes,
 * then the payload; "0000" is a flush packet. Lengths 0001-0003 are not
 * valid in protocol v0 (0001/0002 are v2's delim and response-end), and the
 * total length is capped at 65520 bytes, which is the cap both sides of git
 * use and the one every externally supplied length here is checked against.
 *
 * Writers build whole packets in a strbuf so the transport can send each
 * packet with a single write: a header written apart from its payload costs
 * a Nagle round trip per line on TCP (reference/PEERS.md).
 *
 * Side-band-64k wraps data in packets whose first payload byte is the band:
 * 1 for the report, 2 for progress text, 3 for a fatal error. One side-band
 * packet carries at most 65520 - 4 - 1 = 65515 data bytes.
 */
#ifndef BERTH_RECEIVER_PKTLINE_H
#define BERTH_RECEIVER_PKTLINE_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"

#define PKT_MAX_LEN 65520
#define PKT_MAX_DATA (PKT_MAX_LEN - 4)
#define PKT_SIDEBAND_MAX_DATA (PKT_MAX_DATA - 1)

/*
 * Decodes a 4-byte header. On success stores the total packet length in
 * *ret_len (0 for a flush, 4..65520 for data) and returns 0; returns -EPROTO
 * for non-hex digits, the reserved lengths 1-3 and lengths over the cap.
 */
int pktline_parse_header(const char hdr[4], size_t *ret_len);

/* Appends one data packet; -EMSGSIZE (nothing appended) if len > PKT_MAX_DATA. */
int pktline_add(struct strbuf *out, const void *data, size_t len);
/* Appends one formatted data packet; -EMSGSIZE if it would be too long. */
int pktline_addf(struct strbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the flush packet "0000". */
void pktline_add_flush(struct strbuf *out);
/*
 * Appends `data` as side-band packets on `band` (1, 2 or 3), split into
 * pieces of at most PKT_SIDEBAND_MAX_DATA bytes. len 0 appends nothing.
 */
void pktline_add_sideband(struct strbuf *out, int band, const void *data, size_t len);

/*
 * A pkt-line reader over a file descriptor with its own buffer, so the bytes
 * after the command list (the pack) are not lost to read-ahead: read them
 * with pkt_reader_read_raw(), which drains the buffer first.
 */
struct pkt_reader {
    int fd;
    size_t pos, len;
    char buf[PKT_MAX_LEN];
    char data[PKT_MAX_DATA + 1];
};

void pkt_reader_init(struct pkt_reader *r, int fd);
/*
 * Reads one packet. Returns 1 for data (payload in *ret_data, NUL-terminated
 * and valid until the next call, length in *ret_len), 0 for a flush; -EPROTO for a
 * malformed header or a truncated packet (the end of input inside a packet,
 * or before a flush), -errno for read errors.
 */
int pkt_reader_read(struct pkt_reader *r, char **ret_data, size_t *ret_len,
                    struct berth_error **err);
/* Reads up to n bytes of whatever follows; 0 at end of input, -errno on error. */
ssize_t pkt_reader_read_raw(struct pkt_reader *r, void *buf, size_t n);

#endif
