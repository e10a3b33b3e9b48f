/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The JSON state store: berth's records (tenants, apps, releases, config)
 * are small JSON documents on disk, read with jansson and written with
 * write_file_atomic(), so a crash never leaves a torn record.
 */
#ifndef BERTH_JSONSTORE_H
#define BERTH_JSONSTORE_H

#include <jansson.h>

#include "common/error.h"

/* Loads `path`; -ENOENT (with a message) when it does not exist. */
int json_store_load(const char *path, json_t **ret, struct berth_error **err);
/* Writes `doc` to `path` atomically with `mode` (pretty, sorted keys). */
int json_store_save(const char *path, const json_t *doc, mode_t mode, struct berth_error **err);
/* String member or NULL when missing or not a string. */
const char *json_get_str(const json_t *obj, const char *key);

/* jansson (>= 2.9) provides json_decrefp(); json_auto_t is the same idea. */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

#endif
