/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/subid: berth's subordinate id ranges (/etc/subuid, /etc/subgid),
 * cut into tenant slices of TENANT_ID_SLICE ids. Slice i of a user is the
 * i-th whole slice found walking that user's entries in file order, so a
 * slice never straddles two entries (newuidmap checks each mapping against
 * one entry).
 */
#ifndef BERTH_CONTROL_SUBID_H
#define BERTH_CONTROL_SUBID_H

#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

#define SUBUID_FILE "/etc/subuid"
#define SUBGID_FILE "/etc/subgid"

/* The first id of slice `slice` for user (name or numeric uid) in file. */
int subid_slice(const char *file, const char *user, uid_t uid, unsigned long slice,
                unsigned long slice_size, unsigned long *ret_base, struct berth_error **err);
/* How many whole slices the user has in file (0 when none). */
unsigned long subid_count_slices(const char *file, const char *user, uid_t uid, unsigned long slice_size);
/* One past the highest id any entry in file uses (at least `floor`). */
unsigned long subid_first_free(const char *file, unsigned long floor);

/*
 * The first ids of the user's entries in file that hold exactly `count`
 * ids (`berth setup` adds its ranges in one size), in file order; the
 * array is malloc'ed (NULL when none). Returns how many.
 */
size_t subid_ranges_sized(const char *file, const char *user, uid_t uid, unsigned long count,
                          unsigned long **ret_starts);

#endif
