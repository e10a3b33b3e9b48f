/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the spawner process (spawner.c), forked by
 * runner_spawner_start() (client.c) while the daemon is single-threaded,
 * and then the berth-spawner program (spawner-exe.c) where one is found.
 * It serves the requests of proto.h on `sock` until the daemon closes it,
 * then takes its containers down and exits.
 */
#ifndef BERTH_RUNNER_SPAWNER_H
#define BERTH_RUNNER_SPAWNER_H

#include <sys/types.h>

/* Never returns; `parent` is the daemon's pid, checked against PDEATHSIG races. */
__attribute__((noreturn)) void spawner_main(int sock, pid_t parent);

#endif
