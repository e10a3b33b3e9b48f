/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bin/release parser (release.h). Buildpacks print a tiny, flat subset
 * of YAML, so berth reads that subset itself rather than linking a YAML
 * library for three keys. Real outputs it must accept:
 *
 *     ---                              ---
 *     addons: []                       addons:
 *     default_process_types:           - heroku-postgresql
 *       web: npm start                 config_vars:
 *                                        LANG: en_US.UTF-8
 *                                      default_process_types:
 *                                        web: bin/rails server -p ${PORT:-5000}
 *
 * (the Node.js buildpack's and the Ruby buildpack's). Anything deeper than
 * one nested level is refused with the line number, except under keys berth
 * does not use, which are skipped whole.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "buildpacks/release.h"
#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/banned.h"

#define RELEASE_MAX_ENTRIES 1024

enum scalar_ctx {
    CTX_KEY,     /* a plain scalar ends at ':' followed by a blank or the end of line */
    CTX_VALUE,   /* a plain scalar runs to the end of the line or a " #" comment */
    CTX_FLOW,    /* inside [ ]: a plain scalar ends at ',' or ']' */
};

enum container {
    C_NONE,      /* no value seen yet (`key:` alone on its line) */
    C_LIST,
    C_MAP,
    C_SCALAR,    /* the value was given on the key's own line */
    C_SKIP,      /* a key berth does not use: its nested lines are ignored */
};

struct parser {
    unsigned lineno;
    json_t *doc;            /* the result: addons, default_process_types, config_vars */
    json_t *value;          /* the current key's container in doc (borrowed), or NULL */
    char *key;              /* the current top-level key */
    enum container kind;
    size_t nested_indent;   /* indent of the current key's nested lines, 0 until the first */
    size_t entries;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && is_blank(*p))
        p++;
    return p;
}

/* A comment starts at '#' at the start of the content or after a blank (YAML). */
static bool at_comment(const char *start, const char *p)
{
    return *p == '#' && (p == start || is_blank(p[-1]));
}

static int parse_error(struct parser *ps, struct berth_error **err, const char *what)
{
    return berth_error_plain(err, EINVAL, "bin/release output line %u: %s", ps->lineno, what);
}

static int read_double_quoted(struct parser *ps, const char **pp, const char *end, struct strbuf *out,
                              struct berth_error **err)
{
    const char *p = *pp + 1;

    while (p < end && *p != '"') {
        if (*p != '\\') {
            strbuf_addch(out, *p++);
            continue;
        }
        if (++p >= end)
            break;
        switch (*p) {
        case 'n': strbuf_addch(out, '\n'); break;
        case 't': strbuf_addch(out, '\t'); break;
        case 'r': strbuf_addch(out, '\r'); break;
        case '"': strbuf_addch(out, '"'); break;
        case '\\': strbuf_addch(out, '\\'); break;
        case '/': strbuf_addch(out, '/'); break;
        case ' ': strbuf_addch(out, ' '); break;
        default:
            return parse_error(ps, err, "unsupported escape in a double-quoted string");
        }
        p++;
    }
    if (p >= end)
        return parse_error(ps, err, "unterminated double-quoted string");
    *pp = p + 1;
    return 0;
}

static int read_single_quoted(struct parser *ps, const char **pp, const char *end, struct strbuf *out,
                              struct berth_error **err)
{
    const char *p = *pp + 1;

    for (;;) {
        if (p >= end)
            return parse_error(ps, err, "unterminated single-quoted string");
        if (*p == '\'') {
            if (p + 1 < end && p[1] == '\'') {
                strbuf_addch(out, '\'');
                p += 2;
                continue;
            }
            break;
        }
        strbuf_addch(out, *p++);
    }
    *pp = p + 1;
    return 0;
}

/*
 * Reads one scalar starting at *pp (blanks already skipped) into out and
 * leaves *pp after it. `start` is the start of the line's content, for
 * comment detection.
 */
static int read_scalar(struct parser *ps, const char *start, const char **pp, const char *end,
                       enum scalar_ctx ctx, struct strbuf *out, struct berth_error **err)
{
    const char *p = *pp;

    if (p < end && *p == '"')
        return read_double_quoted(ps, pp, end, out, err);
    if (p < end && *p == '\'')
        return read_single_quoted(ps, pp, end, out, err);
    while (p < end) {
        if (ctx == CTX_KEY && *p == ':' && (p + 1 == end || is_blank(p[1])))
            break;
        if (ctx == CTX_FLOW && (*p == ',' || *p == ']'))
            break;
        if (at_comment(start, p))
            break;
        p++;
    }
    const char *stop = p;
    while (stop > *pp && is_blank(stop[-1]))
        stop--;
    strbuf_add(out, *pp, (size_t)(stop - *pp));
    *pp = p;
    return 0;
}

/* Only blanks or a comment may follow a complete value. */
static int expect_line_end(struct parser *ps, const char *start, const char *p, const char *end,
                           struct berth_error **err)
{
    p = skip_blanks(p, end);
    if (p < end && !at_comment(start, p))
        return parse_error(ps, err, "unexpected text after the value");
    return 0;
}

static int add_string(struct parser *ps, json_t *array, const struct strbuf *s,
                      struct berth_error **err)
{
    json_t *v;

    if (++ps->entries > RELEASE_MAX_ENTRIES)
        return parse_error(ps, err, "too many entries");
    v = json_stringn(s->buf, s->len);
    if (!v)
        return parse_error(ps, err, "not valid UTF-8");
    if (json_array_append_new(array, v) < 0)
        return berth_error_make(err, ENOMEM, "parsing bin/release output");
    return 0;
}

/* `[]`, `[a, "b"]`: a flow list of scalars, starting at '['. */
static int read_flow_list(struct parser *ps, const char *start, const char **pp, const char *end,
                          json_t *array, struct berth_error **err)
{
    const char *p = skip_blanks(*pp + 1, end);
    int r;

    if (p < end && *p == ']') {
        *pp = p + 1;
        return 0;
    }
    for (;;) {
        _cleanup_strbuf_ struct strbuf item = STRBUF_INIT;

        r = read_scalar(ps, start, &p, end, CTX_FLOW, &item, err);
        if (r < 0)
            return r;
        if (array && (r = add_string(ps, array, &item, err)) < 0)
            return r;
        p = skip_blanks(p, end);
        if (p < end && *p == ',') {
            p = skip_blanks(p + 1, end);
            continue;
        }
        if (p < end && *p == ']') {
            *pp = p + 1;
            return 0;
        }
        return parse_error(ps, err, "unterminated '[' list");
    }
}

static json_t *known_key(struct parser *ps, const char *key, enum container *kind)
{
    if (strcmp(key, "addons") == 0) {
        *kind = C_LIST;
        return json_object_get(ps->doc, "addons");
    }
    if (strcmp(key, "default_process_types") == 0 || strcmp(key, "config_vars") == 0) {
        *kind = C_MAP;
        return json_object_get(ps->doc, key);
    }
    return NULL;
}

static int check_kind(struct parser *ps, enum container want, struct berth_error **err)
{
    enum container expected = C_NONE;

    if (!ps->value)
        return 0;
    known_key(ps, ps->key, &expected);
    if (want != expected)
        return berth_error_plain(err, EINVAL, "bin/release output line %u: '%s' must be %s",
                                 ps->lineno, ps->key, expected == C_LIST ? "a list" : "a map of strings");
    return 0;
}

/* A `key: value` line at indent 0. */
static int top_level_line(struct parser *ps, const char *p, const char *end, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf key = STRBUF_INIT;
    const char *start = p;
    enum container expected = C_NONE;
    int r;

    r = read_scalar(ps, start, &p, end, CTX_KEY, &key, err);
    if (r < 0)
        return r;
    p = skip_blanks(p, end);
    if (p >= end || *p != ':' || key.len == 0)
        return parse_error(ps, err, "expected 'key: value'");
    p = skip_blanks(p + 1, end);

    free(ps->key);
    ps->key = strbuf_detach(&key, NULL);
    ps->value = known_key(ps, ps->key, &expected);
    ps->kind = ps->value ? C_NONE : C_SKIP;
    ps->nested_indent = 0;

    if (p >= end || at_comment(start, p))
        return 0;
    if (*p == '{') {
        p = skip_blanks(p + 1, end);
        if (p >= end || *p != '}')
            return parse_error(ps, err, "only an empty '{}' map may be written inline");
        ps->kind = C_SCALAR;
        if ((r = check_kind(ps, C_MAP, err)) < 0)
            return r;
        return expect_line_end(ps, start, p + 1, end, err);
    }
    if (*p == '[') {
        if ((r = check_kind(ps, C_LIST, err)) < 0)
            return r;
        r = read_flow_list(ps, start, &p, end, ps->value, err);
        ps->kind = C_SCALAR;
        return r < 0 ? r : expect_line_end(ps, start, p, end, err);
    }
    if (ps->kind == C_SKIP) {
        ps->kind = C_SCALAR;
        return 0;
    }
    return berth_error_plain(err, EINVAL, "bin/release output line %u: '%s' must be %s", ps->lineno,
                             ps->key, expected == C_LIST ? "a list" : "a map of strings");
}

/* `- item` (at indent 0 right after `key:`, or nested). */
static int list_item_line(struct parser *ps, const char *p, const char *end, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf item = STRBUF_INIT;
    const char *start = p;
    int r;

    if (ps->kind == C_SKIP)
        return 0;
    if (ps->kind != C_NONE && ps->kind != C_LIST)
        return parse_error(ps, err, "a list item where a map entry was expected");
    if ((r = check_kind(ps, C_LIST, err)) < 0)
        return r;
    ps->kind = C_LIST;
    p = skip_blanks(p + 1, end);
    r = read_scalar(ps, start, &p, end, CTX_VALUE, &item, err);
    if (r < 0)
        return r;
    if ((r = expect_line_end(ps, start, p, end, err)) < 0)
        return r;
    return add_string(ps, ps->value, &item, err);
}

/* `  name: value` under a map key. */
static int map_entry_line(struct parser *ps, const char *p, const char *end, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf key = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf value = STRBUF_INIT;
    const char *start = p;
    json_t *v;
    int r;

    if (ps->kind != C_NONE && ps->kind != C_MAP)
        return parse_error(ps, err, "a map entry where a list item was expected");
    if ((r = check_kind(ps, C_MAP, err)) < 0)
        return r;
    ps->kind = C_MAP;
    if ((r = read_scalar(ps, start, &p, end, CTX_KEY, &key, err)) < 0)
        return r;
    p = skip_blanks(p, end);
    if (p >= end || *p != ':' || key.len == 0)
        return parse_error(ps, err, "expected 'name: value'");
    p = skip_blanks(p + 1, end);
    if (p >= end || at_comment(start, p))
        return berth_error_plain(err, EINVAL, "bin/release output line %u: '%s' has no value "
                                 "(nested maps are not supported)", ps->lineno, key.buf);
    if ((r = read_scalar(ps, start, &p, end, CTX_VALUE, &value, err)) < 0)
        return r;
    if ((r = expect_line_end(ps, start, p, end, err)) < 0)
        return r;

    if (memchr(key.buf, '\0', key.len))
        return parse_error(ps, err, "a name contains a NUL byte");
    if (strcmp(ps->key, "default_process_types") == 0 && !build_process_type_valid(key.buf, key.len))
        return berth_error_plain(err, EINVAL, "bin/release output line %u: invalid process type "
                                 "'%.80s'", ps->lineno, key.buf);
    if (++ps->entries > RELEASE_MAX_ENTRIES)
        return parse_error(ps, err, "too many entries");
    if (json_object_get(ps->value, key.buf))
        return berth_error_plain(err, EINVAL, "bin/release output line %u: duplicate name '%.80s'",
                                 ps->lineno, key.buf);
    v = json_stringn(value.buf, value.len);
    if (!v)
        return parse_error(ps, err, "not valid UTF-8");
    if (json_object_set_new(ps->value, key.buf, v) < 0)
        return parse_error(ps, err, "not a valid name");
    return 0;
}

static int parse_line(struct parser *ps, const char *line, size_t len, struct berth_error **err)
{
    const char *end = line + len;
    const char *p = line;
    size_t indent;

    while (p < end && *p == ' ')
        p++;
    indent = (size_t)(p - line);
    while (end > p && is_blank(end[-1]))
        end--;
    if (p == end || *p == '#')
        return 0;
    if (*p == '\t')
        return parse_error(ps, err, "tabs cannot indent YAML");
    if (indent == 0 && (end - p == 3) && (memcmp(p, "---", 3) == 0 || memcmp(p, "...", 3) == 0))
        return 0;

    bool item = *p == '-' && (p + 1 == end || is_blank(p[1]));
    if (indent == 0 && !(item && ps->key && ps->kind != C_SCALAR))
        return top_level_line(ps, p, end, err);
    if (!ps->key || ps->kind == C_SCALAR)
        return parse_error(ps, err, "unexpected indentation");
    if (ps->kind == C_SKIP)
        return 0;
    if (indent > 0) {
        if (ps->nested_indent == 0)
            ps->nested_indent = indent;
        else if (indent != ps->nested_indent)
            return parse_error(ps, err, "nesting deeper than one level is not supported");
    }
    if ((end - p == 2) && (memcmp(p, "[]", 2) == 0 || memcmp(p, "{}", 2) == 0)) {
        if (ps->kind != C_NONE)
            return parse_error(ps, err, "unexpected empty value");
        int r = check_kind(ps, *p == '[' ? C_LIST : C_MAP, err);
        ps->kind = C_SCALAR;
        return r;
    }
    if (item)
        return list_item_line(ps, p, end, err);
    return map_entry_line(ps, p, end, err);
}

int build_release_parse(const char *text, size_t len, json_t **ret, struct berth_error **err)
{
    struct parser ps = { 0 };
    _cleanup_json_ json_t *doc = NULL;
    int r = 0;

    if (len > BUILD_RELEASE_MAX_BYTES)
        return berth_error_plain(err, EFBIG, "bin/release output is larger than %d KiB",
                                 BUILD_RELEASE_MAX_BYTES / 1024);
    doc = json_pack("{s:[],s:{},s:{}}", "addons", "default_process_types", "config_vars");
    if (!doc)
        return berth_error_make(err, ENOMEM, "parsing bin/release output");
    ps.doc = doc;
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t line_len = nl ? (size_t)(nl - text) : len;
        size_t used = nl ? line_len + 1 : len;

        ps.lineno++;
        if (line_len > 0 && text[line_len - 1] == '\r')
            line_len--;
        if (memchr(text, '\0', line_len)) {
            r = parse_error(&ps, err, "contains a NUL byte");
            break;
        }
        r = parse_line(&ps, text, line_len, err);
        if (r < 0)
            break;
        text += used;
        len -= used;
    }
    free(ps.key);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(doc);
    return 0;
}
