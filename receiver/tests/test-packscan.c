/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the pushed-pack scan (packscan.c) on packs built here byte
 * by byte (gitformat-pack): a well-formed pack with whole objects and
 * deltas passes, fed whole and one byte at a time; a commit, tag or tree
 * over its cap, stored whole or built by a delta (its type found through
 * the OFS_DELTA's base), a delta that would build an object (or start from
 * a base) over max_built, and objects adding up past max_total are each
 * refused with -EFBIG and a message naming the sizes; malformed packs get
 * -EPROTO. The caps are small here so that the packs stay small.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "common/cleanup.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "receiver/packscan.h"

static const struct pack_limits limits = {
    .max_commit = 100, .max_tree = 200, .max_built = 1000, .max_total = 5000,
};

static void pack_header(struct strbuf *sb, unsigned int count)
{
    unsigned char h[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2,
                            (unsigned char)(count >> 24), (unsigned char)(count >> 16),
                            (unsigned char)(count >> 8), (unsigned char)count };

    strbuf_add(sb, h, sizeof(h));
}

static void object_header(struct strbuf *sb, unsigned int type, uint64_t size)
{
    unsigned char c = (unsigned char)(type << 4 | (size & 15));

    for (size >>= 4; size; size >>= 7) {
        strbuf_addch(sb, (char)(c | 0x80));
        c = size & 0x7f;
    }
    strbuf_addch(sb, (char)c);
}

static void deflated(struct strbuf *sb, const void *data, size_t len)
{
    uLongf n = compressBound((uLong)len);
    unsigned char *out = xmalloc(n);

    if (compress(out, &n, data, (uLong)len) != Z_OK)
        abort();
    strbuf_add(sb, out, n);
    free(out);
}

/* An object stored whole; returns its offset. */
static size_t whole(struct strbuf *sb, unsigned int type, const void *data, size_t len)
{
    size_t at = sb->len;

    object_header(sb, type, len);
    deflated(sb, data, len);
    return at;
}

static void varint(struct strbuf *sb, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        strbuf_addch(sb, (char)(0x80 | (v & 0x7f)));
    strbuf_addch(sb, (char)v);
}

/* An OFS_DELTA on the object at base_at, declaring base and result sizes, copying the base. */
static size_t ofs_delta(struct strbuf *sb, size_t base_at, uint64_t base_size, uint64_t result_size)
{
    _cleanup_strbuf_ struct strbuf d = STRBUF_INIT;
    size_t at = sb->len, ofs = at - base_at;
    unsigned char enc[16];
    int i = (int)sizeof(enc) - 1;

    varint(&d, base_size);
    varint(&d, result_size);
    /* copy from offset 0, size 16 (op 0x90: one size byte follows) */
    strbuf_addch(&d, (char)0x90);
    strbuf_addch(&d, 16);
    object_header(sb, 6, d.len);
    enc[i] = ofs & 0x7f;
    while (ofs >>= 7)
        enc[--i] = (unsigned char)(0x80 | (--ofs & 0x7f));
    strbuf_add(sb, enc + i, sizeof(enc) - (size_t)i);
    deflated(sb, d.buf, d.len);
    return at;
}

static void trailer(struct strbuf *sb)
{
    static const unsigned char zero[20];

    strbuf_add(sb, zero, sizeof(zero));
}

/* Scans a whole pack, in one piece or (bytewise) one byte at a time; *err keeps the message. */
static int scan(const struct strbuf *sb, bool bytewise, struct berth_error **err)
{
    struct pack_scan s;
    int k = 0;

    pack_scan_init(&s, &limits, NULL);
    if (bytewise)
        for (size_t i = 0; i < sb->len && k == 0; i++)
            k = pack_scan_feed(&s, (const unsigned char *)sb->buf + i, 1, err);
    else
        k = pack_scan_feed(&s, (const unsigned char *)sb->buf, sb->len, err);
    pack_scan_release(&s);
    return k;
}

static void refused(const struct strbuf *sb, int code, const char *needle, const char *what)
{
    _cleanup_error_ struct berth_error *err = NULL;
    int k = scan(sb, false, &err);

    ok(k == -code && err && strstr(berth_error_msg(&err), needle), "%s: %s", what,
       err ? berth_error_msg(&err) : "(accepted)");
}

static void good_pack(void)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    _cleanup_error_ struct berth_error *err = NULL;
    char blob[900], commit[100];
    size_t base;

    memset(blob, 'b', sizeof(blob));
    memset(commit, 'c', sizeof(commit));
    pack_header(&sb, 4);
    base = whole(&sb, 3, blob, sizeof(blob));
    (void)whole(&sb, 1, commit, sizeof(commit));
    (void)ofs_delta(&sb, base, sizeof(blob), 1000);
    (void)whole(&sb, 2, "", 0);
    trailer(&sb);
    ok(scan(&sb, false, &err) == 0, "a pack at the caps passes whole: %s", err ? berth_error_msg(&err) : "ok");
    ok(scan(&sb, true, &err) == 0, "... and fed one byte at a time: %s", err ? berth_error_msg(&err) : "ok");
}

static const char filler[1200] = { 'x' };

/* A pack of one object stored whole, expected to be refused. */
static void whole_refused(unsigned int type, size_t size, const char *needle, const char *what)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    pack_header(&sb, 1);
    (void)whole(&sb, type, filler, size);
    trailer(&sb);
    refused(&sb, EFBIG, needle, what);
}

/* A pack of a whole object and one delta on it, expected to be refused. */
static void delta_refused(unsigned int type, size_t base_size, uint64_t result_size, const char *needle,
                          const char *what)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    size_t at;

    pack_header(&sb, 2);
    at = whole(&sb, type, filler, base_size);
    (void)ofs_delta(&sb, at, base_size, result_size);
    trailer(&sb);
    refused(&sb, EFBIG, needle, what);
}

static void over_caps(void)
{
    whole_refused(1, 101, "a commit of 101 bytes is over the limit of 100 bytes", "a commit over its cap");
    whole_refused(4, 101, "a tag of 101 bytes", "a tag over the commit cap");
    whole_refused(2, 201, "a tree of 201 bytes is over the limit of 200 bytes", "a tree over its cap");
    delta_refused(1, 50, 101, "a commit of 101 bytes", "a delta building a commit over its cap (type from its base)");
    delta_refused(3, 16, (uint64_t)4 << 30, "builds a 4294967296-byte blob from a 16-byte base",
                  "a delta building a 4 GiB blob from 16 bytes");
    delta_refused(3, 1001, 10, "from a 1001-byte base", "a delta on a base over max_built");
    {
        /* Only the header: a refusal must not need the object's bytes. */
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        pack_header(&sb, 1);
        object_header(&sb, 1, (uint64_t)500 << 20);
        refused(&sb, EFBIG, "a commit of 524288000 bytes", "a 500 MiB commit, refused from its header");
    }
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
        size_t at;

        pack_header(&sb, 3);
        at = whole(&sb, 2, filler, 50);
        at = ofs_delta(&sb, at, 50, 60);
        (void)ofs_delta(&sb, at, 60, 201);
        trailer(&sb);
        refused(&sb, EFBIG, "a tree of 201 bytes", "a delta on a delta building a tree over its cap");
    }
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        pack_header(&sb, 6);
        for (int i = 0; i < 6; i++)
            (void)whole(&sb, 3, filler, 900);
        trailer(&sb);
        refused(&sb, EFBIG, "add up to more than", "blobs adding up past max_total");
    }
}

static void malformed(void)
{
    char data[64];

    memset(data, 'm', sizeof(data));
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        strbuf_add(&sb, "PACX\0\0\0\2\0\0\0\1", 12);
        refused(&sb, EPROTO, "bad pack header", "a bad pack signature");
    }
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        pack_header(&sb, 1);
        object_header(&sb, 3, 10);
        deflated(&sb, data, 20);
        refused(&sb, EPROTO, "larger than its header says", "an object inflating past its declared size");
    }
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        pack_header(&sb, 1);
        object_header(&sb, 3, 30);
        deflated(&sb, data, 20);
        refused(&sb, EPROTO, "differs from its header", "an object inflating short of its declared size");
    }
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        pack_header(&sb, 2);
        (void)whole(&sb, 3, data, 20);
        (void)ofs_delta(&sb, 5, 20, 20);
        refused(&sb, EPROTO, "names no object", "an OFS_DELTA whose base offset is inside an object");
    }
    {
        _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

        pack_header(&sb, 1);
        object_header(&sb, 5, 3);
        refused(&sb, EPROTO, "unknown object type", "object type 5");
    }
}

int main(void)
{
    good_pack();
    over_caps();
    malformed();
    return tap_done();
}
