/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/doctor: whether this host can run berth safely for the current
 * user (`berth doctor`, and `berth serve` at its start): user namespaces,
 * the user's subordinate ids, setuid newuidmap/newgidmap, the delegated
 * cgroup subtree `berth-<user>` and its ownership, cpu quotas, overlay with
 * userxattr in a user namespace, and outbound network (pasta and
 * /dev/net/tun). Each failure says what to run to fix it.
 */
#ifndef BERTH_CONTROL_DOCTOR_H
#define BERTH_CONTROL_DOCTOR_H

#include <stdio.h>

#include "common/error.h"

/* What a check guards; a caller says which kinds stop it (a bit mask). */
enum doctor_kind {
    DOCTOR_REQUIRED = 1u << 0,   /* containers cannot run at all, or not safely */
    DOCTOR_LIMITS = 1u << 1,     /* memory, pids and cpu limits (serve's --allow-no-limits) */
    DOCTOR_NETWORK = 1u << 2,    /* outbound network for builds and apps that ask for it */
};
#define DOCTOR_ALL (DOCTOR_REQUIRED | DOCTOR_LIMITS | DOCTOR_NETWORK)

/*
 * Runs every check as the current user. With `out`, prints one line per
 * check: "ok   <check>" or "FAIL <check>: <what is wrong and the fix>".
 * `scratch` is a directory the user may write, where the overlay probe
 * makes (and removes) its layers: berth's home, or /tmp. Returns the number
 * of failed checks of the kinds in `fatal`; *err then holds the first of
 * them, worded as its FAIL line.
 */
unsigned doctor_run(FILE *out, unsigned fatal, const char *scratch, struct berth_error **err);

#endif
