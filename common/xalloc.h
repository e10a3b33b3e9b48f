/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Allocators that abort on out-of-memory, the one place berth treats a
 * failure as fatal (STYLE.md: abort() only for programmer errors and OOM).
 */
#ifndef BERTH_XALLOC_H
#define BERTH_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void xalloc_die(const char *what);

#endif
