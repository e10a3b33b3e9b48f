/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The runtime half of berth's seccomp profile (seccomp.h): the BPF program
 * that seccomp-gen compiled with libseccomp at build time (the generated
 * seccomp-bpf.c holds it), and loading it with seccomp(2). Nothing here
 * links libseccomp, so the light `berth` front executable and the spawner
 * get the profile without compiling it at every start.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "runner/seccomp.h"
#include "common/banned.h"

void seccomp_program_builtin(struct seccomp_program *ret)
{
    size_t size = (size_t)seccomp_builtin_len * sizeof(struct sock_filter);

    ret->filter = xmalloc(size);
    memcpy(ret->filter, seccomp_builtin_filter, size);
    ret->len = seccomp_builtin_len;
}

void seccomp_program_release(struct seccomp_program *p)
{
    if (!p)
        return;
    free(p->filter);
    p->filter = NULL;
    p->len = 0;
}

int seccomp_program_load(const struct seccomp_program *p)
{
    struct sock_fprog prog = { .len = p->len, .filter = p->filter };

    if (!p->filter || p->len == 0)
        return -EINVAL;
    /*
     * SPEC_ALLOW: without it, older kernels in "seccomp" SSBD mode force the
     * speculative store bypass mitigation on every filtered task (crun
     * passes it too). Kernels before 4.17 do not know the flag and say
     * EINVAL; the plain load is then what they offer.
     */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog) == 0)
        return 0;
    if (errno != EINVAL)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
        return 0;
    return -errno;
}
