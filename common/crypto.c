/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hashes and secrets (see crypto.h).
 */
#include "common/crypto.h"

#include <errno.h>
#include <nettle/sha2.h>
#include <string.h>
#include <sys/random.h>

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
    struct sha256_ctx ctx;
    unsigned char digest[SHA256_DIGEST_SIZE];

    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, sizeof(digest), digest);
    to_hex(digest, sizeof(digest), hex);
}

int random_hex(char *out, size_t bytes, struct berth_error **err)
{
    unsigned char buf[64];

    if (bytes > sizeof(buf))
        return berth_error_plain(err, EINVAL, "random_hex: %zu bytes is too many", bytes);
    if (getrandom(buf, bytes, 0) != (ssize_t)bytes)
        return berth_error_make(err, errno, "getrandom");
    to_hex(buf, bytes, out);
    return 0;
}

int secure_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;

    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}
