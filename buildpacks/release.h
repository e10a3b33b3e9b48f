/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: parsing what a buildpack's bin/release prints
 * (reference/HEROKU.md §1.3), and the process type rule it shares with the
 * Procfile parser.
 */
#ifndef BERTH_BUILDPACKS_RELEASE_H
#define BERTH_BUILDPACKS_RELEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define BUILD_PROCESS_TYPE_MAX 63
#define BUILD_RELEASE_MAX_BYTES (64 * 1024)

/* true when name[0..len) matches ^[A-Za-z0-9_-]{1,63}$. */
bool build_process_type_valid(const char *name, size_t len);

/*
 * Parses the flat YAML hash bin/release prints: an optional `---`, then
 * top-level keys whose values are a scalar, an empty `[]` or `{}`, a flow
 * list `[a, b]`, a block list of `- item` lines, or a one-level map of
 * `key: value` strings. Scalars may be plain, 'single' or "double" quoted.
 * *ret is an object that always holds "addons" (array of strings),
 * "default_process_types" and "config_vars" (objects of strings); other
 * top-level keys are skipped. Errors name the line.
 */
int build_release_parse(const char *text, size_t len, json_t **ret, struct berth_error **err);

#endif
