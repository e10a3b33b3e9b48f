/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * strbuf implementation. See strbuf.h for the invariants; every function here
 * keeps `buf` NUL-terminated and never NULL.
 */
#include "common/strbuf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* The shared empty buffer behind STRBUF_INIT; never written except its NUL. */
char strbuf_slopbuf[1];

void strbuf_init(struct strbuf *sb, size_t hint)
{
    sb->alloc = sb->len = 0;
    sb->buf = strbuf_slopbuf;
    if (hint)
        strbuf_grow(sb, hint);
}

void strbuf_release(struct strbuf *sb)
{
    if (sb->alloc)
        free(sb->buf);
    strbuf_init(sb, 0);
}

char *strbuf_detach(struct strbuf *sb, size_t *ret_len)
{
    char *s;

    if (ret_len)
        *ret_len = sb->len;
    s = sb->alloc ? sb->buf : xstrdup("");
    strbuf_init(sb, 0);
    return s;
}

void strbuf_grow(struct strbuf *sb, size_t extra)
{
    size_t need;

    if (__builtin_add_overflow(sb->len, extra, &need) || __builtin_add_overflow(need, 1, &need))
        xalloc_die("strbuf size overflow");
    if (need <= sb->alloc)
        return;
    size_t alloc = sb->alloc ? sb->alloc : 64;
    while (alloc < need) {
        if (__builtin_mul_overflow(alloc, 2, &alloc))
            alloc = need;
    }
    if (sb->alloc) {
        sb->buf = xrealloc(sb->buf, alloc);
    } else {
        sb->buf = xmalloc(alloc);
        sb->buf[0] = '\0';
    }
    sb->alloc = alloc;
}

void strbuf_setlen(struct strbuf *sb, size_t len)
{
    if (!sb->alloc) {
        if (len)
            xalloc_die("strbuf_setlen beyond an empty buffer");
        return;
    }
    if (len >= sb->alloc)
        xalloc_die("strbuf_setlen beyond the allocation");
    sb->len = len;
    sb->buf[len] = '\0';
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
    if (!len)
        return;
    strbuf_grow(sb, len);
    memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
}

void strbuf_addstr(struct strbuf *sb, const char *s)
{
    strbuf_add(sb, s, strlen(s));
}

void strbuf_addch(struct strbuf *sb, int c)
{
    char ch = (char)c;

    strbuf_add(sb, &ch, 1);
}

void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    /* Try in the room there is (at least 64 bytes); grow and retry once if short. */
    strbuf_grow(sb, 64);
    va_copy(cp, ap);
    n = vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, cp);
    va_end(cp);
    if (n < 0)
        xalloc_die("vsnprintf failed");
    if ((size_t)n >= sb->alloc - sb->len) {
        strbuf_grow(sb, (size_t)n);
        n = vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
        if (n < 0)
            xalloc_die("vsnprintf failed");
    }
    sb->len += (size_t)n;
    sb->buf[sb->len] = '\0';
}

void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    strbuf_vaddf(sb, fmt, ap);
    va_end(ap);
}

void strbuf_emitf(void (*out)(void *cls, const char *line), void *cls, const char *fmt, ...)
{
    struct strbuf sb = STRBUF_INIT;
    va_list ap;

    if (!out)
        return;
    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    out(cls, sb.buf);
    strbuf_release(&sb);
}

void strbuf_rtrim(struct strbuf *sb)
{
    size_t len = sb->len;

    while (len && isspace((unsigned char)sb->buf[len - 1]))
        len--;
    if (sb->alloc)
        strbuf_setlen(sb, len);
}

void strbuf_remove_prefix(struct strbuf *sb, size_t n)
{
    if (n > sb->len)
        xalloc_die("strbuf_remove_prefix beyond the end");
    if (!n)
        return;
    memmove(sb->buf, sb->buf + n, sb->len - n);
    strbuf_setlen(sb, sb->len - n);
}
