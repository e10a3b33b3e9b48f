/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the user-namespace keeper (keeper.c), which holds a user
 * namespace with one id mapping between one-shot container starts, so that
 * each start joins it instead of running newuidmap and newgidmap.
 */
#ifndef BERTH_RUNNER_KEEPER_H
#define BERTH_RUNNER_KEEPER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* A keeper exits after this long without a use. */
#define KEEPER_IDLE_SECONDS 30
/* How often it looks. */
#define KEEPER_CHECK_SECONDS 5

/* How many spare network namespaces a keeper keeps made (keeper-netns.c). */
#define KEEPER_SPARES 2

/* A running keeper: its pid, and where it offers its spare network namespaces. */
struct keeper_ref {
    pid_t pid;
    /* Its socket's and offers' paths but their ends (keeper-netns.c); keeper_ref_release(). */
    char *spare_base;
};

/*
 * *ret_fd (O_CLOEXEC, the caller's) is a user namespace, child of the
 * caller's and owned by its uid, mapping container ids 0..count-1 to
 * uid_base.. and gid_base..: a running keeper's, else a new keeper's,
 * which *ret_keeper names.
 */
int keeper_userns(unsigned long uid_base, unsigned long gid_base, unsigned long count,
                  int *ret_fd, struct keeper_ref *ret_keeper, struct berth_error **err);
void keeper_ref_release(struct keeper_ref *k);
/* Whether the caller is in a user namespace with that mapping already (joined earlier). */
bool keeper_in_userns(unsigned long uid_base, unsigned long gid_base, unsigned long count);

/* A spare network namespace, claimed: now the caller's alone. */
struct keeper_spare {
    int net_fd;                 /* the namespace (O_CLOEXEC) */
    int run_fd;                 /* the connection to the keeper; its end says the run is over */
};

/*
 * The keeper's spare network namespace (keeper-netns.c), for a caller that
 * has joined the user namespace of `keeper` (keeper_userns() and setns()):
 * a fresh network namespace that user namespace owns, made ahead by the
 * keeper. -1 when there is none to take (the caller then makes its own);
 * ret's fds are -1 then.
 */
int keeper_claim_netns(const struct keeper_ref *keeper, struct keeper_spare *ret);
/*
 * Once the container in it has ended: the fds are closed, and once every
 * copy of run_fd is (a sweeper may hold one), the keeper makes the next
 * spare. A no-op on a spare of -1s.
 */
void keeper_spare_done(struct keeper_spare *s);

/* For keeper.c and keeper-netns.c: whether two fds name the same namespace. */
bool keeper_same_ns(int a, int b);

/*
 * The keeper's side of the spares (keeper-netns.c), in the keeper, once its
 * ids are mapped: its home network namespace, its socket at
 * "<base>.sock" and the slots' files "<base>.<slot>.pid". Never NULL: a
 * host that refuses what spares need gets a keeper that keeps none.
 */
struct keeper_spares *keeper_spares_open(const char *base);
/* Makes the missing spares, then waits up to timeout_ms for runs' claims and ends; reads them. */
void keeper_spares_serve(struct keeper_spares *s, int timeout_ms);
/* When the keeper ends: its offers withdrawn, its fds closed, s freed. */
void keeper_spares_close(struct keeper_spares *s);

#endif
