/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: berth's seccomp profile (reference/ISOLATION.md §2, the
 * "berth recipe"). The profile is compiled with libseccomp once, in the
 * spawner at start, into a BPF program; each container's init then loads
 * the raw program with seccomp(2) as the last step before execve, which
 * costs well under a millisecond instead of ~14 ms per start.
 */
#ifndef BERTH_RUNNER_SECCOMP_H
#define BERTH_RUNNER_SECCOMP_H

#include <linux/filter.h>

#include "common/error.h"

struct seccomp_program {
    struct sock_filter *filter;   /* malloc'ed BPF instructions */
    unsigned short len;
};

/* Compiles the profile (native 64-bit ABI only, other ABIs killed). */
int seccomp_program_build(struct seccomp_program *ret, struct berth_error **err);
void seccomp_program_release(struct seccomp_program *p);
/*
 * Loads the program into the calling process. PR_SET_NO_NEW_PRIVS must
 * already be set. Makes no libseccomp calls and allocates nothing, so it is
 * safe in a child after fork/clone. Returns 0 or -errno.
 */
int seccomp_program_load(const struct seccomp_program *p);

#endif
