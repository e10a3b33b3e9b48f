/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Ref-update policy of the receiver (internal): per-command checks, the
 * atomic rule, the deploy callback, publishing the pack and the ref
 * compare-and-swap. Split from push.c along the seam "the pack is in, now
 * decide what moves".
 */
#ifndef BERTH_RECEIVER_UPDATE_H
#define BERTH_RECEIVER_UPDATE_H

#include "receiver/push.h"

/*
 * Runs checks, deploy and ref updates for every command of `p` whose pack
 * (if any) is indexed and visible. Sets each command's `error` to its `ng`
 * reason; commands left without an error were updated.
 */
void update_run(struct receiver_push *p);

#endif
