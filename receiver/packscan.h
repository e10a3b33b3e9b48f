/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A pushed pack checked object by object while it streams in (internal to
 * receiver/, see packscan.c): the sizes libgit2 would later build in
 * memory are read from the object and delta headers, and a pack that asks
 * for more than the caps is refused before libgit2 resolves a delta.
 */
#ifndef BERTH_RECEIVER_PACKSCAN_H
#define BERTH_RECEIVER_PACKSCAN_H

#include <git2.h>
#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "common/error.h"

struct pack_limits {
    uint64_t max_commit;    /* a commit or an annotated tag */
    uint64_t max_tree;      /* one tree object */
    uint64_t max_built;     /* an object a delta builds, and the base it builds it from */
    uint64_t max_total;     /* the sum of every object's size (what indexing inflates and hashes) */
};

struct pack_scan {
    struct pack_limits lim;
    git_odb *odb;               /* bases of a thin pack's REF_DELTAs; NULL: none looked up */
    int state;
    z_stream z;
    bool z_ready;
    unsigned char buf[20];      /* the pack header, a REF_DELTA's base id, a delta's header */
    size_t buf_len;
    uint64_t offset;            /* pack bytes consumed */
    uint32_t count, done;       /* objects the header declares, objects scanned */
    uint64_t total;             /* sum of object sizes so far */

    /* the object being read */
    uint64_t obj_offset, size, inflated, ofs;
    unsigned int type, shift;
    git_object_t result_type;   /* what a delta builds (GIT_OBJECT_INVALID: not known) */
    bool delta_checked;

    /* offsets and types of the objects read so far, in pack order: an OFS_DELTA's base */
    uint64_t *offsets;
    unsigned char *types;
    size_t n, alloc;
    unsigned char *out;         /* inflate's scratch output */
};

/* `odb` (may be NULL) is borrowed and must outlive the scan. */
void pack_scan_init(struct pack_scan *s, const struct pack_limits *lim, git_odb *odb);
void pack_scan_release(struct pack_scan *s);

/*
 * Scans the next `len` bytes of the pack. Returns 0, -EFBIG when an object
 * is over a cap, -EPROTO when the pack is malformed (libgit2 would refuse
 * it too), each with *err saying which object and why. After the trailer
 * further bytes are ignored (the indexer judges them).
 */
int pack_scan_feed(struct pack_scan *s, const unsigned char *data, size_t len, struct berth_error **err);

#endif
