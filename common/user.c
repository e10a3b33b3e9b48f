/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * common/user (user.h): a uid's name from /etc/passwd, then from NSS. The
 * file is read whole and each line taken as passwd(5) has it,
 * name:password:uid:...; NIS compat lines (+ and -), comments, and lines
 * whose uid is not a plain decimal number are skipped.
 */
#include "common/user.h"

#include <pwd.h>
#include <stdbool.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/banned.h"

/* Far past any real passwd file; a larger one is left to NSS. */
#define PASSWD_MAX (16u << 20)

/* Whether [s, end) is a decimal number equal to uid. */
static bool is_uid(const char *s, const char *end, uid_t uid)
{
    unsigned long long v = 0;

    if (s == end || end - s > 10)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned)(*s - '0');
    }
    return v == (unsigned long long)uid;
}

/* The name on `line` (len bytes, no newline) when its uid is `uid`. */
static char *name_on_line(const char *line, size_t len, uid_t uid)
{
    const char *end = line + len;
    const char *c1 = memchr(line, ':', len);
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
    const char *c3 = c2 ? memchr(c2 + 1, ':', (size_t)(end - c2 - 1)) : NULL;

    if (!c3 || c1 == line || *line == '+' || *line == '-' || *line == '#')
        return NULL;
    return is_uid(c2 + 1, c3, uid) ? xstrndup(line, (size_t)(c1 - line)) : NULL;
}

char *user_name_in(const char *path, uid_t uid)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    const char *p, *end;

    if (read_file(path, &sb, PASSWD_MAX, NULL) < 0)
        return NULL;
    for (p = sb.buf, end = sb.buf + sb.len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        char *name = name_on_line(p, len, uid);

        if (name)
            return name;
        p += len + 1;
    }
    return NULL;
}

char *user_name_of(uid_t uid)
{
    char *name = user_name_in("/etc/passwd", uid);
    struct passwd *pw;

    if (name)
        return name;
    pw = getpwuid(uid);
    return pw && pw->pw_name ? xstrdup(pw->pw_name) : NULL;
}
