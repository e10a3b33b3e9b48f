/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Procfile parser (build.h, reference/HEROKU.md §2). One
 * `<type>: <command>` per line, type ^[A-Za-z0-9_-]{1,63}$ (Dokku's
 * procfile-util rule), blank lines and `#` or `//` comment lines ignored,
 * "\r\n" line ends accepted. The command is kept as written, including a
 * trailing ` # comment`: it runs under `bash -c`, where that is a comment
 * anyway. A file with any bad line is rejected as a whole, the way Dokku
 * rejects a Procfile with merge-conflict markers, and the error names the
 * line so the tenant can fix it from the push output alone.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "buildpacks/build.h"
#include "buildpacks/release.h"
#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/banned.h"

#define PROCFILE_MAX_BYTES (64 * 1024)
#define PROCFILE_MAX_TYPES 128

bool build_process_type_valid(const char *name, size_t len)
{
    if (len == 0 || len > BUILD_PROCESS_TYPE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
        if (!good)
            return false;
    }
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/*
 * Quotes a piece of the tenant's line for an error message, cut short so a
 * megabyte-long "type" does not become a megabyte-long error.
 */
static void add_quoted(struct strbuf *sb, const char *s, size_t len)
{
    size_t shown = len > 80 ? 80 : len;

    strbuf_addch(sb, '\'');
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            strbuf_addf(sb, "\\x%02x", c);
        else
            strbuf_addch(sb, (char)c);
    }
    if (shown < len)
        strbuf_addstr(sb, "...");
    strbuf_addch(sb, '\'');
}

static int parse_line(const char *line, size_t len, unsigned lineno, json_t *types, json_t *lines,
                      struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf what = STRBUF_INIT;
    const char *colon;
    const char *cmd;
    size_t cmd_len, type_len;
    json_t *first;

    while (len > 0 && is_blank(*line)) {
        line++;
        len--;
    }
    while (len > 0 && is_blank(line[len - 1]))
        len--;
    if (len == 0 || line[0] == '#' || starts_with(line, len, "//"))
        return 0;
    if (starts_with(line, len, "<<<<<<<") || starts_with(line, len, "=======") ||
        starts_with(line, len, ">>>>>>>"))
        return berth_error_plain(err, EINVAL, "Procfile line %u: merge conflict marker, resolve the "
                                 "conflict and push again", lineno);
    if (memchr(line, '\0', len))
        return berth_error_plain(err, EINVAL, "Procfile line %u: contains a NUL byte", lineno);

    colon = memchr(line, ':', len);
    if (!colon) {
        add_quoted(&what, line, len);
        return berth_error_plain(err, EINVAL, "Procfile line %u: expected '<type>: <command>', got %s",
                                 lineno, what.buf);
    }
    type_len = (size_t)(colon - line);
    if (!build_process_type_valid(line, type_len)) {
        add_quoted(&what, line, type_len);
        return berth_error_plain(err, EINVAL, "Procfile line %u: invalid process type %s (use 1 to %d "
                                 "letters, digits, '_' or '-')", lineno, what.buf,
                                 BUILD_PROCESS_TYPE_MAX);
    }
    cmd = colon + 1;
    cmd_len = len - type_len - 1;
    while (cmd_len > 0 && is_blank(*cmd)) {
        cmd++;
        cmd_len--;
    }
    add_quoted(&what, line, type_len);
    if (cmd_len == 0)
        return berth_error_plain(err, EINVAL, "Procfile line %u: empty command for process type %s",
                                 lineno, what.buf);

    _cleanup_free_ char *type = strndup(line, type_len);
    if (!type)
        return berth_error_make(err, ENOMEM, "Procfile line %u", lineno);
    first = json_object_get(lines, type);
    if (first)
        return berth_error_plain(err, EINVAL, "Procfile line %u: duplicate process type %s (first "
                                 "declared on line %u)", lineno, what.buf,
                                 (unsigned)json_integer_value(first));
    if (json_object_size(types) >= PROCFILE_MAX_TYPES)
        return berth_error_plain(err, E2BIG, "Procfile line %u: more than %d process types", lineno,
                                 PROCFILE_MAX_TYPES);

    json_t *value = json_stringn(cmd, cmd_len);
    if (!value)
        return berth_error_plain(err, EINVAL, "Procfile line %u: the command is not valid UTF-8",
                                 lineno);
    if (json_object_set_new(types, type, value) < 0 ||
        json_object_set_new(lines, type, json_integer(lineno)) < 0)
        return berth_error_make(err, ENOMEM, "Procfile line %u", lineno);
    return 0;
}

int procfile_parse(const char *text, size_t len, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *types = json_object();
    _cleanup_json_ json_t *lines = json_object();
    unsigned lineno = 0;
    int r;

    if (!types || !lines)
        return berth_error_make(err, ENOMEM, "parsing the Procfile");
    if (len > PROCFILE_MAX_BYTES)
        return berth_error_plain(err, EFBIG, "Procfile is larger than %d KiB",
                                 PROCFILE_MAX_BYTES / 1024);
    /* A UTF-8 byte order mark, as some Windows editors write, is not part of the first type. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t line_len = nl ? (size_t)(nl - text) : len;
        size_t used = nl ? line_len + 1 : len;

        lineno++;
        if (line_len > 0 && text[line_len - 1] == '\r')
            line_len--;
        r = parse_line(text, line_len, lineno, types, lines, err);
        if (r < 0)
            return r;
        text += used;
        len -= used;
    }
    *ret = TAKE_PTR(types);
    return 0;
}
