/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * common/hex: the value of one hexadecimal digit, for the parsers that read
 * lengths in hex (git's pkt-line headers in receiver/, HTTP chunk sizes in
 * router/). Header-only: it is one comparison chain, inlined where parsed.
 */
#ifndef BERTH_COMMON_HEX_H
#define BERTH_COMMON_HEX_H

/* 0-15 for [0-9a-fA-F], else -1. */
static inline int hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
