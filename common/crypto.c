/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hashes (see crypto.h), on nettle. The secrets are in secret.c, so that a
 * program that only needs those (the light `berth` front) does not load
 * libnettle, whose start-up probes the CPU with cpuid: a trap to the
 * hypervisor in a VM.
 */
#include "common/crypto.h"

#include <nettle/sha2.h>

void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
    struct sha256_ctx ctx;
    unsigned char digest[SHA256_DIGEST_SIZE];

    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof(digest), digest);
    crypto_to_hex(digest, sizeof(digest), hex);
}
