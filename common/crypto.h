/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hashes and secrets, never our own crypto: nettle's SHA-256 for token
 * hashes and content addresses (crypto.c), the kernel's getrandom() for
 * new secrets (secret.c, which needs no nettle).
 */
#ifndef BERTH_CRYPTO_H
#define BERTH_CRYPTO_H

#include <stddef.h>

#include "common/error.h"

#define SHA256_HEX_LEN 64

/* Writes n bytes as lowercase hex into out (2*n + 1 bytes). */
void crypto_to_hex(const unsigned char *in, size_t n, char *out);
/* Writes the lowercase hex SHA-256 of data into hex (SHA256_HEX_LEN + 1 bytes). */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);
/* Fills out with `bytes` random bytes as lowercase hex (2*bytes + 1 bytes). */
int random_hex(char *out, size_t bytes, struct berth_error **err);
/* Compares two NUL-terminated strings in time independent of where they differ. */
int secure_streq(const char *a, const char *b);

#endif
