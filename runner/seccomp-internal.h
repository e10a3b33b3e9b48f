/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal, build time only (seccomp-gen and test-seccomp link it,
 * the runner does not): what seccomp.c, which compiles the profile with
 * libseccomp, and seccomp-compact.c, which rewrites that program smaller,
 * share. The argument rules' constants are defined once, in seccomp.c, and
 * both programs are built from them.
 */
#ifndef BERTH_RUNNER_SECCOMP_INTERNAL_H
#define BERTH_RUNNER_SECCOMP_INTERNAL_H

#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runner/seccomp.h"

/* clone(2): the flags that create namespaces, refused (EPERM). */
extern const unsigned long seccomp_clone_ns_flags[];
extern const size_t seccomp_n_clone_ns_flags;
/* Those flags together (Docker's 0x7E020000). */
unsigned long seccomp_clone_ns_mask(void);
/* socket(2): the families allowed; every other one gets EAFNOSUPPORT. */
extern const unsigned long seccomp_socket_families[];
extern const size_t seccomp_n_socket_families;
/* personality(2): the values allowed; every other one gets EPERM. */
extern const unsigned long seccomp_personality_ok[];
extern const size_t seccomp_n_personality_ok;
/* ioctl(2): the requests refused (EPERM), compared on their low 32 bits. */
extern const unsigned long seccomp_ioctl_denied[];
extern const size_t seccomp_n_ioctl_denied;

/* The profile as libseccomp compiles it: the reference the compact program must equal. */
int seccomp_program_build_libseccomp(struct seccomp_program *ret, struct berth_error **err);

/*
 * The same decisions as `ref` (libseccomp's program) in a third of the
 * instructions (seccomp-compact.c says how). Fails, saying where, if the
 * result differs from `ref` anywhere seccomp_program_differ() looks.
 */
int seccomp_program_compact(const struct seccomp_program *ref, struct seccomp_program *ret,
                            struct berth_error **err);

/*
 * Runs a classic BPF seccomp program on one syscall as the kernel would:
 * *ret_action is its return value, and *ret_args_read says whether it read
 * an argument. -EINVAL for an instruction this interpreter does not know
 * (libseccomp's programs use loads of seccomp_data, AND, jumps and returns)
 * or a jump out of the program.
 */
int seccomp_program_run(const struct seccomp_program *p, const struct seccomp_data *d,
                        uint32_t *ret_action, bool *ret_args_read);

/*
 * Compares two programs: every syscall number below 2048 and at the edges
 * of the 32-bit range, on the native ABI, i386, x32 and a foreign one, and
 * for each syscall whose decision reads its arguments, each argument over
 * the constants either program compares with, one either side of each,
 * their complements, 0-64 and every single bit, with high halves of 0, 1,
 * 0x80000000 and all ones; and the first two arguments together over the
 * constants, one either side and the complements. 0 when they agree
 * everywhere; otherwise -EINVAL, and err says where they first differ.
 */
int seccomp_program_differ(const struct seccomp_program *a, const struct seccomp_program *b,
                           struct berth_error **err);

#endif
