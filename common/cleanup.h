/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scope-bound cleanup (systemd's _cleanup_, crun's cleanup_*): a variable
 * declared with one of these attributes is freed or closed when it goes out
 * of scope. Ownership leaves a scope only through TAKE_PTR() or TAKE_FD().
 * fds start at -1; pointers at NULL.
 */
#ifndef BERTH_CLEANUP_H
#define BERTH_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>
#include <errno.h>

#include "common/error.h"
#include "common/strbuf.h"

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) { free(*(void **)p); }
/* Keeps errno intact so an error path can still report the original cause. */
/* Closes *fd and sets it to -1, so that a second closep() of the same variable is harmless. */
static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        (void)close(*fd);
        errno = saved;
        *fd = -1;
    }
}
static inline void fclosep(FILE **f) { if (*f) (void)fclose(*f); }
static inline void closedirp(DIR **d) { if (*d) (void)closedir(*d); }
static inline void berth_errorp(struct berth_error **e) { berth_error_release(e); }
static inline void strv_freep(char ***v) { if (*v) { for (char **p = *v; *p; p++) free(*p); free(*v); } }

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_strbuf_ _cleanup_(strbuf_release)
#define _cleanup_error_ _cleanup_(berth_errorp)
#define _cleanup_strv_ _cleanup_(strv_freep)

#define TAKE_PTR(p) ({ __typeof__(p) _tp = (p); (p) = NULL; _tp; })
#define TAKE_FD(fd) ({ int _tf = (fd); (fd) = -1; _tf; })

#endif
