/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target over the pushed-pack scan (receiver/packscan.c): the
 * first input byte sets how the rest is cut into pieces (1 to 256 bytes,
 * as a socket may hand it over), the rest is the pack. Nothing may crash,
 * leak, read out of bounds or take long (each object inflates into a fixed
 * buffer, and the caps stop a zlib bomb); a refusal says why, with -EFBIG
 * or -EPROTO, and the sizes counted stay under the total cap. Built and
 * run by tests/fuzz.sh, from a corpus of small packs made by git.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "receiver/packscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct pack_limits limits = {
        .max_commit = 4096, .max_tree = 8192, .max_built = 1 << 20, .max_total = 4 << 20,
    };
    struct berth_error *err = NULL;
    struct pack_scan s;
    size_t piece;
    int k = 0;

    if (size == 0)
        return 0;
    piece = (size_t)data[0] + 1;
    data++;
    size--;
    pack_scan_init(&s, &limits, NULL);
    for (size_t at = 0; at < size && k == 0; at += piece)
        k = pack_scan_feed(&s, data + at, size - at < piece ? size - at : piece, &err);
    if (k < 0 && (!err || (k != -EFBIG && k != -EPROTO)))
        abort();
    if (k == 0 && (err || s.total > limits.max_total))
        abort();
    berth_error_release(&err);
    pack_scan_release(&s);
    return 0;
}
