/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * common/dnsname: the rule for one label of a host name (RFC 1123: 1 to 63
 * letters, digits and '-', not starting or ending with '-'), shared by
 * custom domains (control/domains.c, which lowercases names first) and
 * `berth container run --hostname` (control/container-cmd.c, in the light
 * front that links nothing of control/'s records). Header-only: one loop.
 */
#ifndef BERTH_COMMON_DNSNAME_H
#define BERTH_COMMON_DNSNAME_H

#include <stddef.h>

#define DNSNAME_LABEL_MAX 63

/* NULL when the `len` bytes at `label` are a valid label, else what is wrong with them. */
static inline const char *dnsname_label_problem(const char *label, size_t len)
{
    if (len == 0)
        return "it has an empty label";
    if (len > DNSNAME_LABEL_MAX)
        return "a label is longer than 63 characters";
    if (label[0] == '-' || label[len - 1] == '-')
        return "a label may not start or end with '-'";
    for (size_t i = 0; i < len; i++) {
        char c = label[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return "labels hold only letters, digits and '-' (use punycode for other letters)";
    }
    return NULL;
}

#endif
