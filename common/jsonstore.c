/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * JSON state store (see jsonstore.h).
 */
#include "common/jsonstore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fileio.h"

/* State files are small; anything larger is damage, not data. */
#define JSON_STORE_MAX_BYTES (16u << 20)

int json_store_load(const char *path, json_t **ret, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    json_error_t jerr;
    json_t *doc;
    int r;

    r = read_file(path, &sb, JSON_STORE_MAX_BYTES, err);
    if (r < 0)
        return r;
    doc = json_loadb(sb.buf, sb.len, 0, &jerr);
    if (!doc)
        return berth_error_plain(err, EINVAL, "parse '%s' line %d: %s", path, jerr.line, jerr.text);
    *ret = doc;
    return 0;
}

int json_store_save(const char *path, const json_t *doc, mode_t mode, struct berth_error **err)
{
    _cleanup_free_ char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    if (!text)
        return berth_error_plain(err, ENOMEM, "serialise '%s'", path);
    strbuf_addstr(&sb, text);
    strbuf_addch(&sb, '\n');
    return write_file_atomic(path, sb.buf, sb.len, mode, err);
}

const char *json_get_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}
