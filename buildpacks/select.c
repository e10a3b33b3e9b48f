/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Buildpack references and lists (select.h). What a user may name is
 * checked here, before anything is fetched or run: the forms of URL a git
 * client can fetch, a #ref that is a plain ref name or commit id, and the
 * two kinds of source that reach into this host (file:// and loopback
 * hosts), which only a trusted tenant (the operator) may use, since a fetch
 * runs with berth's own uid: a file:// URL could otherwise read another
 * tenant's repository, and a loopback URL could probe the host's services.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "buildpacks/build.h"
#include "buildpacks/select.h"
#include "common/cleanup.h"
#include "common/hostaddr.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/banned.h"

/*
 * Detection order: herokuish's BUILDPACK_ORDER (reference/HEROKU.md §1.5)
 * restricted to the buildpacks berth ships; null, the Procfile-only
 * fallback, is last so that it applies only when nothing else does.
 */
const char *const build_builtin_order[] = {
    "node", "python", "php", "go", "static", "null", NULL,
};

/*
 * Names that stand for a built-in. The official Heroku buildpacks (and
 * Dokku's defaults) download their runtimes at build time, which cannot
 * work on a host without internet; berth's built-ins take the same apps
 * with the stack's runtimes, so their URLs select the built-in. The URLs
 * are compared without scheme, user, trailing ".git" or "/", in lower case.
 */
static const struct {
    const char *alias;
    const char *builtin;
} aliases[] = {
    { "nodejs", "node" },
    { "heroku/nodejs", "node" },
    { "heroku/python", "python" },
    { "heroku/php", "php" },
    { "heroku/go", "go" },
    { "heroku/static", "static" },
    { "github.com/heroku/heroku-buildpack-nodejs", "node" },
    { "github.com/heroku/heroku-buildpack-python", "python" },
    { "github.com/heroku/heroku-buildpack-php", "php" },
    { "github.com/heroku/heroku-buildpack-go", "go" },
    { "github.com/heroku/heroku-buildpack-static", "static" },
    { "github.com/dokku/heroku-buildpack-nginx", "static" },
    { "github.com/dokku/buildpack-nginx", "static" },
    { "github.com/dokku/buildpack-null", "null" },
    { "github.com/ryandotsmith/null-buildpack", "null" },
};

static bool is_builtin(const char *name)
{
    for (size_t i = 0; build_builtin_order[i]; i++)
        if (strcmp(build_builtin_order[i], name) == 0)
            return true;
    return false;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* "https://user@GitHub.com/Heroku/x.git/" -> "github.com/heroku/x" */
static char *alias_key(const char *url)
{
    static const char *const schemes[] = { "https://", "http://", "git://", "ssh://" };
    struct strbuf sb = STRBUF_INIT;
    const char *p = url;
    const char *at;

    for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
        if (starts_with(p, schemes[i]))
            p += strlen(schemes[i]);
    at = strchr(p, '@');
    if (at && at < p + strcspn(p, "/"))
        p = at + 1;
    for (; *p; p++)
        strbuf_addch(&sb, *p == ':' ? '/' : tolower((unsigned char)*p));
    while (sb.len && sb.buf[sb.len - 1] == '/')
        strbuf_setlen(&sb, sb.len - 1);
    if (sb.len > 4 && strcmp(sb.buf + sb.len - 4, ".git") == 0)
        strbuf_setlen(&sb, sb.len - 4);
    return strbuf_detach(&sb, NULL);
}

static const char *builtin_for(const char *url)
{
    _cleanup_free_ char *key = alias_key(url);

    if (is_builtin(url))
        return url;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(*aliases); i++)
        if (strcmp(key, aliases[i].alias) == 0)
            return aliases[i].builtin;
    return NULL;
}

/* A ref as git would name a branch or tag, or a commit id. */
static int check_ref(const char *spec, const char *ref, struct berth_error **err)
{
    size_t len = strlen(ref);

    if (len == 0 || len > BUILDPACK_REF_MAX || ref[0] == '-' || ref[0] == '/' ||
        ref[len - 1] == '/' || strstr(ref, "..") || strstr(ref, "//"))
        goto bad;
    for (size_t i = 0; i < len; i++) {
        char c = ref[i];
        if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-' || c == '/'))
            goto bad;
    }
    return 0;
bad:
    return berth_error_plain(err, EINVAL, "buildpack '%s': '#%.80s' is not a branch, tag or "
                             "commit name", spec, ref);
}

/* The host part of a URL, lower-cased, without user, port or brackets; NULL for file://. */
static char *url_host(const char *url)
{
    const char *p = strstr(url, "://");
    const char *end, *at;
    struct strbuf sb = STRBUF_INIT;

    if (p) {
        p += 3;
    } else {
        /* scp-like user@host:path */
        p = url;
    }
    end = p + strcspn(p, p == url ? ":" : "/");
    at = memchr(p, '@', (size_t)(end - p));
    if (at)
        p = at + 1;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (close) {
            p++;
            end = close;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon)
            end = colon;
    }
    for (; p < end; p++)
        strbuf_addch(&sb, tolower((unsigned char)*p));
    return strbuf_detach(&sb, NULL);
}

/*
 * Whether host names this machine: "localhost" and its subdomains, and a
 * loopback, unspecified or link-local address (common/hostaddr.h) in any
 * notation getaddrinfo() accepts (inet_aton()'s "127.1", "2130706433",
 * "0x7f000001", "0177.0.0.1"; IPv6, IPv4-mapped or compatible). A name
 * that resolves to one, or to an interface's address, is refused when the
 * fetch connects (receiver/fetch.c).
 */
static bool host_is_local(const char *host)
{
    _cleanup_free_ char *h = xstrdup(host);
    size_t len = strlen(h);
    struct in_addr a4;
    struct in6_addr a6;

    /* "localhost." is the same name, fully qualified. */
    if (len > 0 && h[len - 1] == '.')
        h[--len] = '\0';
    if (len == 0 || strcmp(h, "localhost") == 0 || (len > 10 && strcmp(h + len - 10, ".localhost") == 0))
        return true;
    if (inet_aton(h, &a4))
        return hostaddr_ipv4_is_local(&a4);
    return inet_pton(AF_INET6, h, &a6) == 1 && hostaddr_ipv6_is_local(&a6);
}

static int check_url(const char *spec, const char *url, bool trusted, struct berth_error **err)
{
    static const char *const schemes[] = { "https://", "http://", "git://", "ssh://", "file://" };
    _cleanup_free_ char *host = NULL;
    bool known = false;

    for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++)
        known |= starts_with(url, schemes[i]);
    /* scp-like: user@host:path, with no "://" */
    if (!known && !strstr(url, "://") && strchr(url, '@') && strchr(url, ':') &&
        strchr(url, '@') < strchr(url, ':'))
        known = true;
    if (!known) {
        if (strchr(url, '/') && !strchr(url, ':'))
            return berth_error_plain(err, EINVAL, "buildpack '%s' looks like a name in Heroku's "
                                     "buildpack registry, which berth cannot use: give its git URL "
                                     "or a built-in (node, python, php, go, static, null)", spec);
        return berth_error_plain(err, EINVAL, "buildpack '%s' is neither a built-in (node, python, "
                                 "php, go, static, null) nor a git URL (https://, http://, git://, "
                                 "ssh://)", spec);
    }
    if (starts_with(url, "file://")) {
        if (!trusted)
            return berth_error_plain(err, EPERM, "buildpack '%s': file:// URLs read this host's "
                                     "files, so only the operator's tenant may use them", spec);
        if (url[7] != '/')
            return berth_error_plain(err, EINVAL, "buildpack '%s': a file:// URL needs an "
                                     "absolute path", spec);
        return 0;
    }
    host = url_host(url);
    if (host_is_local(host) && !trusted)
        return berth_error_plain(err, EPERM, "buildpack '%s': hosts on this machine are only for "
                                 "the operator's tenant", spec);
    if (!*host)
        return berth_error_plain(err, EINVAL, "buildpack '%s' has no host", spec);
    return 0;
}

int bp_ref_parse(const char *spec, bool trusted, struct bp_ref *ret, struct berth_error **err)
{
    _cleanup_free_ char *url = NULL;
    const char *hash;
    const char *builtin;
    size_t len = strlen(spec);
    int r;

    if (len == 0)
        return berth_error_plain(err, EINVAL, "empty buildpack name");
    if (len > BUILDPACK_URL_MAX)
        return berth_error_plain(err, EINVAL, "buildpack URL longer than %d bytes", BUILDPACK_URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)spec[i];
        if (c <= 0x20 || c == 0x7f)
            return berth_error_plain(err, EINVAL, "buildpack '%.80s' contains a space or a control "
                                     "character", spec);
    }
    hash = strchr(spec, '#');
    url = hash ? xstrndup(spec, (size_t)(hash - spec)) : xstrdup(spec);
    builtin = builtin_for(url);
    if (hash && (r = check_ref(spec, hash + 1, err)) < 0)
        return r;
    if (!builtin && (r = check_url(spec, url, trusted, err)) < 0)
        return r;
    *ret = (struct bp_ref){
        .spec = xstrdup(spec),
        .builtin = builtin ? xstrdup(builtin) : NULL,
        .url = builtin ? NULL : TAKE_PTR(url),
        /* A built-in is the one on this host: a #ref cannot pick another version of it. */
        .ref = hash && !builtin ? xstrdup(hash + 1) : NULL,
    };
    return 0;
}

int build_buildpack_check(const char *spec, bool trusted, struct berth_error **err)
{
    struct bp_ref ref;
    int r = bp_ref_parse(spec, trusted, &ref, err);

    if (r == 0)
        bp_ref_release(&ref);
    return r;
}

void bp_ref_release(struct bp_ref *ref)
{
    free(ref->spec);
    free(ref->builtin);
    free(ref->url);
    free(ref->ref);
    *ref = (struct bp_ref){ 0 };
}

int bp_list_add(struct bp_list *list, const char *spec, bool trusted, struct berth_error **err)
{
    struct bp_ref ref;
    int r;

    if (list->n >= BUILDPACK_LIST_MAX)
        return berth_error_plain(err, E2BIG, "more than %d buildpacks", BUILDPACK_LIST_MAX);
    if ((r = bp_ref_parse(spec, trusted, &ref, err)) < 0)
        return r;
    list->v = xrealloc(list->v, (list->n + 1) * sizeof(*list->v));
    list->v[list->n++] = ref;
    return 0;
}

int bp_list_parse(const char *origin, const char *text, size_t len, bool trusted,
                  struct bp_list *ret, struct berth_error **err)
{
    struct bp_list list = { .origin = origin };
    unsigned lineno = 0;
    int r = 0;

    while (len > 0 && r == 0) {
        const char *nl = memchr(text, '\n', len);
        size_t line_len = nl ? (size_t)(nl - text) : len;
        size_t used = nl ? line_len + 1 : len;
        const char *p = text;
        size_t n = line_len;

        lineno++;
        while (n > 0 && isspace((unsigned char)*p)) {
            p++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        if (n > 0 && *p != '#') {
            _cleanup_free_ char *spec = xstrndup(p, n);

            if (memchr(p, '\0', n))
                r = berth_error_plain(err, EINVAL, "%s line %u: contains a NUL byte", list.origin,
                                      lineno);
            else if ((r = bp_list_add(&list, spec, trusted, err)) < 0)
                r = berth_error_wrap(err, "%s line %u", list.origin, lineno);
        }
        text += used;
        len -= used;
    }
    if (r == 0 && list.n == 0)
        r = berth_error_plain(err, EINVAL, "%s names no buildpack", list.origin);
    if (r < 0) {
        bp_list_release(&list);
        return r;
    }
    *ret = list;
    return 0;
}

char *bp_ref_shown(const char *spec)
{
    const char *scheme = strstr(spec, "://");
    const char *host, *at;

    if (!scheme)
        return xstrdup(spec);
    host = scheme + 3;
    at = memchr(host, '@', strcspn(host, "/#"));
    if (!at)
        return xstrdup(spec);
    return xasprintf("%.*s***%s", (int)(host - spec), spec, at);
}

void bp_list_release(struct bp_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        bp_ref_release(&list->v[i]);
    free(list->v);
    list->v = NULL;
    list->n = 0;
}
