/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tiny TAP emitter for berth's C unit tests (bubblewrap's test-utils idea):
 * each check prints "ok N - what" or "not ok N - what", tap_done() prints the
 * plan and returns the exit code. Used by every <module>/tests/test-*.c.
 */
#ifndef BERTH_TAP_H
#define BERTH_TAP_H

#include <stdio.h>

static int tap_count, tap_failed;

#define ok(cond, ...) do { \
        tap_count++; \
        if (cond) { printf("ok %d - ", tap_count); } \
        else { tap_failed++; printf("not ok %d - ", tap_count); } \
        printf(__VA_ARGS__); printf("\n"); fflush(stdout); \
    } while (0)

#define skip(...) do { tap_count++; printf("ok %d # SKIP ", tap_count); printf(__VA_ARGS__); printf("\n"); } while (0)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

#endif
