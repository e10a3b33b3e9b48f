/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the user-namespace keeper (keeper.c), which holds a user
 * namespace with one id mapping between one-shot container starts, so that
 * each start joins it instead of running newuidmap and newgidmap.
 */
#ifndef BERTH_RUNNER_KEEPER_H
#define BERTH_RUNNER_KEEPER_H

#include <stdbool.h>

#include "common/error.h"

/* A keeper exits after this long without a use. */
#define KEEPER_IDLE_SECONDS 30
/* How often it looks. */
#define KEEPER_CHECK_SECONDS 5

/*
 * *ret_fd (O_CLOEXEC, the caller's) is a user namespace, child of the
 * caller's and owned by its uid, mapping container ids 0..count-1 to
 * uid_base.. and gid_base..: a running keeper's, else a new keeper's.
 */
int keeper_userns(unsigned long uid_base, unsigned long gid_base, unsigned long count,
                  int *ret_fd, struct berth_error **err);
/* Whether the caller is in a user namespace with that mapping already (joined earlier). */
bool keeper_in_userns(unsigned long uid_base, unsigned long gid_base, unsigned long count);

#endif
