/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pushed pack, checked as it streams into git_indexer (push.c), for
 * what libgit2 would otherwise build in memory unasked. The indexer
 * streams an object stored whole (its hash is computed as it inflates),
 * but when it resolves a delta (git_indexer_commit) it inflates the base
 * whole and builds the result whole, whatever size the delta's header
 * declares: a pack of a few KB can carry a 16 MiB base of zeros and a
 * delta of a few hundred bytes that copies it into a 4 GiB object. And
 * whatever reads a commit or tree afterwards (the export, git rev-list,
 * control's promote diff) reads it whole.
 *
 * So every object's header is read here, as git's pack format lays it out
 * (gitformat-pack): the type and size of an object stored whole, and for a
 * delta the base and result sizes that open its inflated data (libgit2
 * refuses a delta whose base or result differs from them, so they are
 * binding). A commit, tag or tree is held to its cap, whether stored
 * whole or built by a delta (the type of an OFS_DELTA comes from the
 * object at its base offset, of a REF_DELTA from the repository's copy of
 * its base; an in-pack REF_DELTA base, which git's client never sends
 * when ofs-delta is offered, leaves the type unknown and only the
 * generic cap applies); every delta's base and result are held to
 * max_built; and the sum of all sizes to max_total, which bounds the
 * CPU time indexing can take (a zlib stream inflates up to 1032 times).
 * Each object is inflated into a 64 KiB scratch buffer to find where it
 * ends, so the scan's memory is that buffer, zlib's window, and 9 bytes
 * per object for the base lookup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/xalloc.h"
#include "receiver/packscan.h"
#include "common/banned.h"

#define SCAN_CHUNK 65536

enum {
    SCAN_HEADER,    /* "PACK", version, count: 12 bytes */
    SCAN_OBJECT,    /* an object's type and size */
    SCAN_OFS,       /* an OFS_DELTA's base offset */
    SCAN_REF,       /* a REF_DELTA's base id */
    SCAN_DATA,      /* the zlib stream */
    SCAN_TRAILER,   /* the pack's checksum */
    SCAN_DONE,
};

/* Pack type codes (gitformat-pack) are libgit2's git_object_t values. */
static const char *type_name(unsigned int type)
{
    switch (type) {
    case GIT_OBJECT_COMMIT: return "commit";
    case GIT_OBJECT_TREE: return "tree";
    case GIT_OBJECT_BLOB: return "blob";
    case GIT_OBJECT_TAG: return "tag";
    default: return "object";
    }
}

void pack_scan_init(struct pack_scan *s, const struct pack_limits *lim, git_odb *odb)
{
    memset(s, 0, sizeof(*s));
    s->lim = *lim;
    s->odb = odb;
    s->state = SCAN_HEADER;
}

void pack_scan_release(struct pack_scan *s)
{
    if (s->z_ready)
        (void)inflateEnd(&s->z);
    free(s->offsets);
    free(s->types);
    free(s->out);
    s->z_ready = false;
    s->offsets = NULL;
    s->types = NULL;
    s->out = NULL;
}

/* A cap as people read it: "100 MiB", or "1000 bytes" when it is no whole number of MiB. */
static const char *cap_text(char buf[32], uint64_t cap)
{
    if (cap >= (1u << 20) && cap % (1u << 20) == 0)
        (void)snprintf(buf, 32, "%llu MiB", (unsigned long long)(cap >> 20));
    else
        (void)snprintf(buf, 32, "%llu bytes", (unsigned long long)cap);
    return buf;
}

static int malformed(struct pack_scan *s, struct berth_error **err, const char *what)
{
    return berth_error_plain(err, EPROTO, "malformed pack: %s (object at offset %llu)", what,
                             (unsigned long long)s->obj_offset);
}

/* The cap for an object of `type` (a delta's result type when known). */
static uint64_t cap_of(const struct pack_scan *s, unsigned int type)
{
    switch (type) {
    case GIT_OBJECT_COMMIT:
    case GIT_OBJECT_TAG:
        return s->lim.max_commit;
    case GIT_OBJECT_TREE:
        return s->lim.max_tree;
    default:
        return UINT64_MAX;
    }
}

static int add_total(struct pack_scan *s, uint64_t size, struct berth_error **err)
{
    char cap[32];

    if (size > s->lim.max_total - s->total)
        return berth_error_plain(err, EFBIG, "push refused: the pack's objects add up to more than %s",
                                 cap_text(cap, s->lim.max_total));
    s->total += size;
    return 0;
}

static int check_whole(struct pack_scan *s, struct berth_error **err)
{
    if (s->size > cap_of(s, s->type))
        return berth_error_plain(err, EFBIG, "push refused: a %s of %llu bytes is over the limit of "
                                 "%llu bytes", type_name(s->type), (unsigned long long)s->size,
                                 (unsigned long long)cap_of(s, s->type));
    return add_total(s, s->size, err);
}

/* Remembers the current object's offset and (resolved) type for later OFS_DELTAs. */
static void record(struct pack_scan *s, unsigned int type)
{
    if (s->n == s->alloc) {
        s->alloc = s->alloc ? s->alloc * 2 : 1024;
        s->offsets = xrealloc(s->offsets, s->alloc * sizeof(*s->offsets));
        s->types = xrealloc(s->types, s->alloc);
    }
    s->offsets[s->n] = s->obj_offset;
    s->types[s->n++] = (unsigned char)type;
}

/* The type of the object at `offset` (objects come in offset order), or -1 when none starts there. */
static int type_at(const struct pack_scan *s, uint64_t offset)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->offsets[mid] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->offsets[lo] == offset ? s->types[lo] : -1;
}

static int start_data(struct pack_scan *s, struct berth_error **err)
{
    if (!s->z_ready) {
        if (inflateInit(&s->z) != Z_OK)
            return berth_error_plain(err, ENOMEM, "starting zlib");
        s->z_ready = true;
        s->out = xmalloc(SCAN_CHUNK);
    } else if (inflateReset(&s->z) != Z_OK) {
        return berth_error_plain(err, EIO, "resetting zlib");
    }
    record(s, s->type >= GIT_OBJECT_OFS_DELTA ? (unsigned int)s->result_type : s->type);
    s->inflated = 0;
    s->buf_len = 0;
    s->delta_checked = false;
    s->state = SCAN_DATA;
    return 0;
}

/* An object's type-and-size header is complete. */
static int begin_object(struct pack_scan *s, struct berth_error **err)
{
    int k;

    switch (s->type) {
    case GIT_OBJECT_COMMIT:
    case GIT_OBJECT_TREE:
    case GIT_OBJECT_BLOB:
    case GIT_OBJECT_TAG:
        if ((k = check_whole(s, err)) < 0)
            return k;
        return start_data(s, err);
    case GIT_OBJECT_OFS_DELTA:
        s->ofs = 0;
        s->shift = 0;
        s->state = SCAN_OFS;
        return 0;
    case GIT_OBJECT_REF_DELTA:
        s->buf_len = 0;
        s->state = SCAN_REF;
        return 0;
    default:
        return malformed(s, err, "unknown object type");
    }
}

static int object_byte(struct pack_scan *s, unsigned char c, struct berth_error **err)
{
    if (s->shift == 0) {
        s->obj_offset = s->offset;
        s->type = (c >> 4) & 7;
        s->size = c & 15;
        s->shift = 4;
    } else {
        if (s->shift > 57)
            return malformed(s, err, "object size too large");
        s->size |= (uint64_t)(c & 0x7f) << s->shift;
        s->shift += 7;
    }
    if (c & 0x80)
        return 0;
    s->shift = 0;
    return begin_object(s, err);
}

static int ofs_byte(struct pack_scan *s, unsigned char c, struct berth_error **err)
{
    int type;

    /* git's offset encoding: each continuation adds one before shifting. */
    if (s->shift++ > 0)
        s->ofs = (s->ofs + 1) << 7;
    s->ofs |= c & 0x7f;
    if (s->ofs > s->obj_offset)
        return malformed(s, err, "delta base before the pack's start");
    if (c & 0x80)
        return 0;
    s->shift = 0;
    type = type_at(s, s->obj_offset - s->ofs);
    if (type < 0)
        return malformed(s, err, "delta base offset names no object");
    s->result_type = (git_object_t)type;
    return start_data(s, err);
}

/* A REF_DELTA's base id is complete: its type, when the repository has it (a thin pack). */
static int ref_done(struct pack_scan *s, struct berth_error **err)
{
    git_object_t type = GIT_OBJECT_INVALID;
    size_t size;
    git_oid id;

    memcpy(id.id, s->buf, GIT_OID_RAWSZ);
    if (!s->odb || git_odb_read_header(&size, &type, s->odb, &id) < 0)
        type = GIT_OBJECT_INVALID;
    s->result_type = type;
    return start_data(s, err);
}

/* Reads a delta header varint from s->buf at *pos: 1 done, 0 needs more bytes. */
static int delta_varint(const struct pack_scan *s, size_t *pos, uint64_t *ret)
{
    uint64_t v = 0;
    unsigned int shift = 0;

    for (size_t i = *pos; i < s->buf_len && shift < 64; i++, shift += 7) {
        v |= (uint64_t)(s->buf[i] & 0x7f) << shift;
        if (!(s->buf[i] & 0x80)) {
            *pos = i + 1;
            *ret = v;
            return 1;
        }
    }
    return 0;
}

/* Takes the first inflated bytes of a delta until its base and result sizes are read, then checks them. */
static int delta_header(struct pack_scan *s, const unsigned char *p, size_t n, struct berth_error **err)
{
    size_t take = n < sizeof(s->buf) - s->buf_len ? n : sizeof(s->buf) - s->buf_len;
    uint64_t base = 0, result = 0;
    size_t pos = 0;
    char cap[32];

    memcpy(s->buf + s->buf_len, p, take);
    s->buf_len += take;
    if (!delta_varint(s, &pos, &base) || !delta_varint(s, &pos, &result)) {
        if (s->buf_len == sizeof(s->buf))
            return malformed(s, err, "bad delta header");
        return 0;
    }
    s->delta_checked = true;
    if (base > s->lim.max_built || result > s->lim.max_built)
        return berth_error_plain(err, EFBIG, "push refused: a delta builds a %llu-byte %s from a "
                                 "%llu-byte base, over the limit of %s for a deltified "
                                 "object (store files that big outside git)",
                                 (unsigned long long)result, type_name(s->result_type),
                                 (unsigned long long)base, cap_text(cap, s->lim.max_built));
    if (result > cap_of(s, s->result_type))
        return berth_error_plain(err, EFBIG, "push refused: a %s of %llu bytes is over the limit of "
                                 "%llu bytes", type_name(s->result_type), (unsigned long long)result,
                                 (unsigned long long)cap_of(s, s->result_type));
    return add_total(s, result, err);
}

/* The object's zlib stream has ended. */
static int end_object(struct pack_scan *s, struct berth_error **err)
{
    if (s->inflated != s->size)
        return malformed(s, err, "object size differs from its header");
    if (s->type >= GIT_OBJECT_OFS_DELTA && !s->delta_checked)
        return malformed(s, err, "bad delta header");
    s->state = ++s->done == s->count ? SCAN_TRAILER : SCAN_OBJECT;
    s->buf_len = 0;
    return 0;
}

/* Inflates what `data` holds of the current object; returns the bytes used, or -errno. */
static ssize_t data_bytes(struct pack_scan *s, const unsigned char *data, size_t len, struct berth_error **err)
{
    int zr, k;

    s->z.next_in = (unsigned char *)data;
    s->z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    do {
        size_t made;

        s->z.next_out = s->out;
        s->z.avail_out = SCAN_CHUNK;
        zr = inflate(&s->z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            return malformed(s, err, "bad zlib data");
        /* Z_BUF_ERROR: no progress possible until more input comes. */
        made = SCAN_CHUNK - s->z.avail_out;
        if (made > s->size - s->inflated)
            return malformed(s, err, "object larger than its header says");
        s->inflated += made;
        if (s->type >= GIT_OBJECT_OFS_DELTA && !s->delta_checked && made
            && (k = delta_header(s, s->out, made, err)) < 0)
            return k;
        if (zr == Z_STREAM_END) {
            if ((k = end_object(s, err)) < 0)
                return k;
            break;
        }
    } while (zr != Z_BUF_ERROR && (s->z.avail_in > 0 || s->z.avail_out == 0));
    return (ssize_t)((const unsigned char *)s->z.next_in - data);
}

static int header_done(struct pack_scan *s, struct berth_error **err)
{
    uint32_t version = (uint32_t)s->buf[4] << 24 | (uint32_t)s->buf[5] << 16 | (uint32_t)s->buf[6] << 8 | s->buf[7];

    if (memcmp(s->buf, "PACK", 4) || (version != 2 && version != 3))
        return malformed(s, err, "bad pack header");
    s->count = (uint32_t)s->buf[8] << 24 | (uint32_t)s->buf[9] << 16 | (uint32_t)s->buf[10] << 8 | s->buf[11];
    s->buf_len = 0;
    s->state = s->count ? SCAN_OBJECT : SCAN_TRAILER;
    return 0;
}

/* One byte of anything before or after an object's zlib stream. */
static int header_byte(struct pack_scan *s, unsigned char c, struct berth_error **err)
{
    switch (s->state) {
    case SCAN_HEADER:
        s->buf[s->buf_len++] = c;
        return s->buf_len == 12 ? header_done(s, err) : 0;
    case SCAN_OBJECT:
        return object_byte(s, c, err);
    case SCAN_OFS:
        return ofs_byte(s, c, err);
    case SCAN_REF:
        s->buf[s->buf_len++] = c;
        return s->buf_len == GIT_OID_RAWSZ ? ref_done(s, err) : 0;
    case SCAN_TRAILER:
        if (++s->buf_len == GIT_OID_RAWSZ)
            s->state = SCAN_DONE;
        return 0;
    default:
        return 0;
    }
}

int pack_scan_feed(struct pack_scan *s, const unsigned char *data, size_t len, struct berth_error **err)
{
    while (len && s->state != SCAN_DONE) {
        ssize_t used = 1;
        int k;

        if (s->state == SCAN_DATA) {
            used = data_bytes(s, data, len, err);
            if (used < 0)
                return (int)used;
        } else if ((k = header_byte(s, *data, err)) < 0) {
            return k;
        }
        s->offset += (uint64_t)used;
        data += used;
        len -= (size_t)used;
    }
    return 0;
}
