/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/build-slots: how many builds run at once. A push storm must not
 * start hundreds of builds: each build takes a slot first, in arrival
 * order, and a push that has to wait says so on the git client
 * (`remote: waiting for a build slot (2 ahead)`). The number of slots is
 * berth.json's "builds": {"concurrent": N}, read at each build, by
 * default the number of CPUs (at least 2).
 */
#ifndef BERTH_CONTROL_BUILD_SLOTS_H
#define BERTH_CONTROL_BUILD_SLOTS_H

#include "control/server.h"

/*
 * Blocks until a slot is free and this caller is the first in line; calls
 * say(cls, ahead) whenever the number of pushes in line before it changes
 * while it waits (never when a slot is free at once).
 */
void build_slots_acquire(struct server *s, void (*say)(void *cls, unsigned ahead), void *cls);
/* Gives back the slot build_slots_acquire() took. */
void build_slots_release(void);

#endif
