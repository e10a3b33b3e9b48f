/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host paths in the build's messages (shown.h). A plain textual rewrite:
 * the messages are berth's own and the runner's, which quote the paths
 * they were given, so the paths the build handed out are the ones to find.
 */
#include <stdbool.h>
#include <string.h>

#include "buildpacks/shown.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/banned.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* The length that counts: without trailing slashes; 0 for an entry to skip. */
static size_t host_len(const char *host)
{
    size_t len = host ? strlen(host) : 0;

    while (len > 1 && host[len - 1] == '/')
        len--;
    if (len <= 1 || host[0] != '/')
        return 0;
    return len;
}

/* The entry of v whose host path is the longest to match at p, or NULL. */
static const struct build_shown_path *match_at(const struct build_shown_path *v, size_t n,
                                               const char *p, size_t *ret_len)
{
    const struct build_shown_path *best = NULL;
    size_t best_len = 0;

    for (size_t i = 0; i < n; i++) {
        size_t len = host_len(v[i].host);

        if (len <= best_len || strncmp(p, v[i].host, len) != 0 || name_char(p[len]))
            continue;
        best = &v[i];
        best_len = len;
    }
    *ret_len = best_len;
    return best;
}

char *build_paths_scrub(const struct build_shown_path *v, size_t n, const char *msg)
{
    struct strbuf sb = STRBUF_INIT;

    for (const char *p = msg; *p;) {
        const struct build_shown_path *hit = NULL;
        size_t len = 0;

        if (*p == '/' && (p == msg || !name_char(p[-1])))
            hit = match_at(v, n, p, &len);
        if (hit) {
            strbuf_addstr(&sb, hit->shown);
            p += len;
        } else {
            strbuf_addch(&sb, *p++);
        }
    }
    return strbuf_detach(&sb, NULL);
}

char *build_paths_common_dir(const char *const *paths, size_t n)
{
    size_t len;

    if (n < 2 || !paths[0] || paths[0][0] != '/')
        return NULL;
    len = strlen(paths[0]);
    for (size_t i = 1; i < n; i++) {
        size_t k = 0;

        if (!paths[i] || paths[i][0] != '/')
            return NULL;
        while (k < len && paths[i][k] && paths[i][k] == paths[0][k])
            k++;
        /* Both end a component there, or the common part ends at the last '/' before it. */
        if (!(k == len && (paths[i][k] == '/' || paths[i][k] == '\0')) &&
            !(paths[i][k] == '\0' && paths[0][k] == '/')) {
            while (k > 0 && paths[0][k] != '/')
                k--;
        }
        len = k;
    }
    while (len > 0 && paths[0][len - 1] == '/')
        len--;
    if (len == 0)
        return NULL;
    return xstrndup(paths[0], len);
}
