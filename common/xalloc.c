/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Aborting allocators (see xalloc.h).
 */
#include "common/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xalloc_die(const char *what)
{
    fprintf(stderr, "berth: fatal: %s\n", what);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (!p)
        xalloc_die("out of memory");
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        xalloc_die("out of memory");
    return p;
}

void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (!p)
        xalloc_die("out of memory");
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);

    if (!p)
        xalloc_die("out of memory");
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);

    if (!p)
        xalloc_die("out of memory");
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        xalloc_die("out of memory");
    va_end(ap);
    return s;
}
