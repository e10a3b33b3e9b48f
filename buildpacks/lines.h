/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: turns the byte stream a buildpack writes into output
 * lines for build_spec.on_output. The stream is the tenant's: lines are
 * passed through unchanged except for the trailing "\n" (and "\r\n"), and a
 * line longer than BUILD_LINE_MAX is split so one endless line cannot grow
 * berth's memory. berth's own status lines never pass through here.
 */
#ifndef BERTH_BUILDPACKS_LINES_H
#define BERTH_BUILDPACKS_LINES_H

#include <stddef.h>

#include "buildpacks/build.h"
#include "common/strbuf.h"

#define BUILD_LINE_MAX 10000

struct build_lines {
    struct strbuf pending;   /* the current, unfinished line */
    build_output_fn fn;      /* NULL: lines are dropped */
    void *cls;
};

void build_lines_init(struct build_lines *l, build_output_fn fn, void *cls);
/* Emits every complete line in data; keeps the rest for the next call. */
void build_lines_feed(struct build_lines *l, const char *data, size_t len);
/* Emits the unfinished last line, if any (the stream ended without "\n"). */
void build_lines_flush(struct build_lines *l);
/* Frees the buffer without emitting anything. */
void build_lines_release(struct build_lines *l);

#endif
