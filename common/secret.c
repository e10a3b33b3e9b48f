/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Secrets (see crypto.h): new ones from the kernel's getrandom(), their hex,
 * and a comparison that does not tell where two differ. Apart from
 * crypto.c's hashes, so that it needs no libnettle.
 */
#include "common/crypto.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

void crypto_to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int random_hex(char *out, size_t bytes, struct berth_error **err)
{
    unsigned char buf[64];

    if (bytes > sizeof(buf))
        return berth_error_plain(err, EINVAL, "random_hex: %zu bytes is too many", bytes);
    if (getrandom(buf, bytes, 0) != (ssize_t)bytes)
        return berth_error_make(err, errno, "getrandom");
    crypto_to_hex(buf, bytes, out);
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
