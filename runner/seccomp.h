/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: berth's seccomp profile (reference/ISOLATION.md §2, the
 * "berth recipe"). The profile is compiled with libseccomp once, at build
 * time (seccomp-gen.c), into a BPF program, rewritten a fifth of its size
 * with the same decisions (seccomp-compact.c), that the runner carries as
 * data; each container's app loads that raw program with seccomp(2) as the
 * last step before execve, which costs tens of microseconds instead of the
 * ~3.5 ms libseccomp takes to compile it. seccomp.c (the compiler) is the
 * only part that links libseccomp, and only seccomp-gen and test-seccomp
 * link it.
 */
#ifndef BERTH_RUNNER_SECCOMP_H
#define BERTH_RUNNER_SECCOMP_H

#include <linux/filter.h>

#include "common/error.h"

struct seccomp_program {
    struct sock_filter *filter;   /* malloc'ed BPF instructions */
    unsigned short len;
};

/*
 * Compiles the profile (native 64-bit ABI only, other ABIs killed) into the
 * compact program; seccomp.c and seccomp-compact.c (seccomp-internal.h).
 */
int seccomp_program_build(struct seccomp_program *ret, struct berth_error **err);
/* The profile as compiled at build time, in a malloc'ed copy (seccomp_program_release). */
void seccomp_program_builtin(struct seccomp_program *ret);
void seccomp_program_release(struct seccomp_program *p);
/* Defined in the generated seccomp-bpf.c; use seccomp_program_builtin(). */
extern const struct sock_filter seccomp_builtin_filter[];
extern const unsigned short seccomp_builtin_len;
/*
 * Loads the program into the calling process. PR_SET_NO_NEW_PRIVS must
 * already be set. Makes no libseccomp calls and allocates nothing, so it is
 * safe in a child after fork/clone. Returns 0 or -errno.
 */
int seccomp_program_load(const struct seccomp_program *p);

#endif
