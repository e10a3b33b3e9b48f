/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Line splitting of build output (see lines.h). A NUL byte inside a line
 * would cut the C string handed to on_output short, so it is shown as '?';
 * everything else is passed on as the buildpack wrote it, colour escapes
 * included (the git client renders them).
 */
#include <stdbool.h>
#include <string.h>

#include "buildpacks/lines.h"
#include "common/banned.h"

void build_lines_init(struct build_lines *l, build_output_fn fn, void *cls)
{
    strbuf_init(&l->pending, 0);
    l->fn = fn;
    l->cls = cls;
}

static void emit(struct build_lines *l, bool at_newline)
{
    struct strbuf *p = &l->pending;

    if (at_newline && p->len > 0 && p->buf[p->len - 1] == '\r')
        strbuf_setlen(p, p->len - 1);
    for (size_t i = 0; i < p->len; i++) {
        if (p->buf[i] == '\0')
            p->buf[i] = '?';
    }
    if (l->fn)
        l->fn(l->cls, p->buf);
    strbuf_reset(p);
}

void build_lines_feed(struct build_lines *l, const char *data, size_t len)
{
    while (len > 0) {
        size_t room = BUILD_LINE_MAX - l->pending.len;
        size_t take = len < room ? len : room;
        const char *nl = memchr(data, '\n', take);

        if (nl) {
            strbuf_add(&l->pending, data, (size_t)(nl - data));
            emit(l, true);
            len -= (size_t)(nl - data) + 1;
            data = nl + 1;
            continue;
        }
        strbuf_add(&l->pending, data, take);
        data += take;
        len -= take;
        if (l->pending.len >= BUILD_LINE_MAX)
            emit(l, false);
    }
}

void build_lines_flush(struct build_lines *l)
{
    if (l->pending.len > 0)
        emit(l, true);
}

void build_lines_release(struct build_lines *l)
{
    strbuf_release(&l->pending);
}
