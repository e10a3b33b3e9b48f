/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File helpers for berth's on-disk state. Every state file is replaced
 * atomically: write a temporary file in the same directory, fsync it, rename
 * it over the target, fsync the directory. A crash at any moment leaves the
 * old or the new content, never a torn file (ARCHITECTURE.md, State on disk).
 */
#ifndef BERTH_FILEIO_H
#define BERTH_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"

/* Atomically replaces `path` with `len` bytes of `data`, created with `mode`. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                      struct berth_error **err);
/* Appends the whole file to `out`; fails with EFBIG past `max` bytes (0: no cap). */
int read_file(const char *path, struct strbuf *out, size_t max, struct berth_error **err);
/* mkdir -p; existing directories are fine. */
int mkdir_p(const char *path, mode_t mode, struct berth_error **err);
/* fsyncs the directory that holds `path`. */
int fsync_parent_dir(const char *path, struct berth_error **err);
/* Removes a tree this process owns (no symlink following); missing is fine. */
int rm_rf(const char *path, struct berth_error **err);
/* Writes all of buf to fd, retrying on EINTR and short writes. Returns 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/*
 * Fills `buf` with the path of the executable `name` in the directory of
 * the running program (/proc/self/exe): how berth's programs find each
 * other in a build tree or an install. False when there is none.
 */
bool program_beside_self(const char *name, char *buf, size_t size);

#endif
