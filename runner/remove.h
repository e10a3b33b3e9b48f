/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: removal of container-written trees, run by the spawner
 * for runner_remove_tree() (see remove.c for why it needs a user namespace).
 */
#ifndef BERTH_RUNNER_REMOVE_H
#define BERTH_RUNNER_REMOVE_H

#include "common/error.h"

/* Removes `path` (absolute) and everything below it; missing is fine. */
int remove_tree_userns(const char *path, unsigned long uid_base, unsigned long gid_base,
                       unsigned long id_count, struct berth_error **err);

#endif
