/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: the host-side file work of a build, done by berth
 * with its own uid while no container runs: writing ENV_DIR, and hashing the
 * built tree into the slug's content address.
 */
#ifndef BERTH_BUILDPACKS_SLUG_H
#define BERTH_BUILDPACKS_SLUG_H

#include <jansson.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/error.h"

/* Caps on what a slug may hold; past them the build fails. */
#define BUILD_SLUG_MAX_BYTES (4ULL << 30)
#define BUILD_SLUG_MAX_ENTRIES 1000000
#define BUILD_SLUG_MAX_DEPTH 200

/*
 * Creates dir (0755, it must not exist) holding one file per config var
 * (name = variable, content = value, mode 0644), the classic ENV_DIR, plus
 * BERTH_APP_NAME=app and SOURCE_VERSION=commit (when not NULL), which win
 * over config vars of the same name. config may be NULL; its values must be
 * strings and its names ^[A-Za-z_][A-Za-z0-9_]*$.
 */
int build_env_dir_write(const char *dir, const json_t *config, const char *app, const char *commit,
                        struct berth_error **err);

/*
 * The SHA-256 of the tree at dir, over a canonical walk: entries in byte
 * order of their names, each contributing its relative path, type,
 * permission bits, and a symlink's target or a file's content. Owners and
 * times are not part of it, so rebuilding the same source gives the same
 * address. Symlinks are never followed; an entry berth cannot read fails
 * with a message naming it. *ret_bytes is the size of the regular files.
 */
int build_slug_hash(const char *dir, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_bytes,
                    struct berth_error **err);

#endif
