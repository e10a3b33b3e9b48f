/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: reading files the tenant shaped (the Procfile, a
 * `.buildpacks` file, what a step left for berth in its output dir) with
 * berth's own uid. A symlink there could name one of berth's own files and
 * have it echoed in an error, and a FIFO could hang the read, so only a
 * regular file directly in the given directory counts, and its size is
 * capped.
 */
#ifndef BERTH_BUILDPACKS_FILES_H
#define BERTH_BUILDPACKS_FILES_H

#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"

/*
 * Appends <dir>/<name> to out. -ENOENT (without a message) when there is
 * no such entry; -EINVAL for a symlink or a non-regular file; -EFBIG past
 * max bytes. `what` names the file in messages ("the Procfile").
 */
int build_read_file_at(const char *dir, const char *name, const char *what, size_t max,
                       struct strbuf *out, struct berth_error **err);

/*
 * Resolves `subdir` (relative, '/'-separated) below `top` without
 * following symlinks; *ret is the joined path (malloc'ed). Fails with a
 * message naming the directory when a component is missing, a symlink, not
 * a directory, or "." / "..".
 */
int build_resolve_subdir(const char *top, const char *subdir, char **ret, struct berth_error **err);

#endif
