/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * strbuf: berth's growable string, modelled on git's.
 *
 * Invariants: `buf` is never NULL and is always NUL-terminated, so it can be
 * handed to any C string function; `len` is the number of bytes in use, not
 * counting the terminator; `alloc` is private. A strbuf may hold binary data
 * (pkt-lines, pack bytes): use `len`, not strlen().
 *
 * Life cycle: STRBUF_INIT (or strbuf_init), any number of strbuf_add*(),
 * then strbuf_release() to free, or strbuf_detach() to take the string over.
 * Allocation failure aborts (see xalloc.h): running out of memory is not an
 * error berth tries to recover from.
 */
#ifndef BERTH_STRBUF_H
#define BERTH_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
    size_t alloc;
    size_t len;
    char *buf;
};

extern char strbuf_slopbuf[];
#define STRBUF_INIT { .alloc = 0, .len = 0, .buf = strbuf_slopbuf }

void strbuf_init(struct strbuf *sb, size_t hint);
/* Frees the contents and leaves `sb` as STRBUF_INIT. Accepts a released sb. */
void strbuf_release(struct strbuf *sb);
/* Returns the malloc'ed string (never NULL) and re-initialises `sb`. */
char *strbuf_detach(struct strbuf *sb, size_t *ret_len);
/* Makes room for `extra` more bytes; aborts on size overflow. */
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_setlen(struct strbuf *sb, size_t len);
#define strbuf_reset(sb) strbuf_setlen((sb), 0)

void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Formats one line and hands it to `out` (a progress or output callback); nothing when out is NULL. */
void strbuf_emitf(void (*out)(void *cls, const char *line), void *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Removes trailing white space. */
void strbuf_rtrim(struct strbuf *sb);
/* Removes the first `n` bytes (n <= len). */
void strbuf_remove_prefix(struct strbuf *sb, size_t n);

#endif
