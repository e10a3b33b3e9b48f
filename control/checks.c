/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/checks: startup health checks (see checks.h). Each attempt is
 * the smallest client that does the job (one GET, Connection: close, read
 * to the end under a deadline) to the router's own HTTP listener, so the
 * check takes the path every client request takes (the guard, header
 * rules, X-Forwarded-* and X-Request-Id, connect, timeouts, error
 * answers, the access log); a router probe (router.h) carries it to the
 * new instance, which no route names yet.
 */
#include "control/checks.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "router/router.h"

#define CHECKS_FILE_MAX (64u << 10)
#define CHECK_BODY_MAX (1u << 20)
#define CHECK_PATH_MAX 2048
#define CHECKS_MAX 20

void checks_release(struct check_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].path);
        free(l->v[i].content);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static struct check *check_add(struct check_list *l)
{
    struct check *c;

    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    c = &l->v[l->n++];
    *c = (struct check){ .attempts = 5, .wait_s = 5, .timeout_s = 5 };
    return c;
}

/* A path a GET can carry: a leading '/', visible ASCII, bounded. */
static bool path_valid(const char *p)
{
    if (!p || p[0] != '/' || strlen(p) > CHECK_PATH_MAX)
        return false;
    for (; *p; p++)
        if (*p <= ' ' || *p >= 0x7f)
            return false;
    return true;
}

/* ---------------------------------------------------------------- app.json */

static int json_uint(const json_t *check, const char *key, unsigned max, unsigned *v, size_t i,
                     struct berth_error **err)
{
    const json_t *j = json_object_get(check, key);

    if (!j)
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > (json_int_t)max)
        return berth_error_plain(err, EINVAL, "app.json: healthchecks.web[%zu].%s must be a whole number "
                                 "from 0 to %u", i, key, max);
    *v = (unsigned)json_integer_value(j);
    return 0;
}

static int from_app_json(const json_t *doc, struct check_list *l, struct berth_error **err)
{
    const json_t *hc = json_object_get(doc, "healthchecks"), *web, *one;
    size_t i;
    int r;

    if (!hc)
        return 0;
    if (!json_is_object(hc))
        return berth_error_plain(err, EINVAL, "app.json: healthchecks must be an object of process types");
    web = json_object_get(hc, "web");
    if (!web)
        return 0;
    if (!json_is_array(web) || json_array_size(web) > CHECKS_MAX)
        return berth_error_plain(err, EINVAL, "app.json: healthchecks.web must be a list of at most %d checks",
                                 CHECKS_MAX);
    json_array_foreach(web, i, one) {
        const char *type = json_get_str(one, "type"), *path, *name, *content;
        struct check *c;

        if (!json_is_object(one))
            return berth_error_plain(err, EINVAL, "app.json: healthchecks.web[%zu] must be an object", i);
        /* Liveness and readiness checks are for running instances; a deploy runs the startup ones. */
        if (type && strcmp(type, "startup") != 0)
            continue;
        path = json_get_str(one, "path");
        if (!json_object_get(one, "path"))
            path = "/";
        if (!path_valid(path))
            return berth_error_plain(err, EINVAL, "app.json: healthchecks.web[%zu].path must start with '/' "
                                     "and hold no spaces or control characters", i);
        c = check_add(l);
        name = json_get_str(one, "name");
        content = json_get_str(one, "content");
        c->name = name ? xstrdup(name) : xasprintf("check %zu", i + 1);
        c->path = xstrdup(path);
        c->content = content && *content ? xstrdup(content) : NULL;
        if ((r = json_uint(one, "attempts", 100, &c->attempts, i, err)) < 0 ||
            (r = json_uint(one, "wait", 600, &c->wait_s, i, err)) < 0 ||
            (r = json_uint(one, "timeout", 600, &c->timeout_s, i, err)) < 0 ||
            (r = json_uint(one, "initialDelay", 600, &c->initial_delay_s, i, err)) < 0)
            return r;
        if (c->attempts == 0)
            c->attempts = 1;
        if (c->timeout_s == 0)
            c->timeout_s = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- CHECKS */

static int checks_setting(const char *line, unsigned *wait_s, unsigned *timeout_s, unsigned *attempts,
                          unsigned lineno, struct berth_error **err)
{
    static const char *const names[] = { "WAIT=", "TIMEOUT=", "ATTEMPTS=" };
    unsigned *dest[] = { wait_s, timeout_s, attempts };

    for (size_t k = 0; k < 3; k++) {
        size_t len = strlen(names[k]);
        char *end;
        unsigned long v;

        if (strncmp(line, names[k], len) != 0)
            continue;
        errno = 0;
        v = strtoul(line + len, &end, 10);
        if (end == line + len || (*end && *end != ' ' && *end != '\t') || errno || v > 600)
            return berth_error_plain(err, EINVAL, "CHECKS line %u: %s needs a number from 0 to 600", lineno,
                                     names[k]);
        *dest[k] = (unsigned)v;
        return 1;
    }
    return 0;
}

static int from_checks_file(char *text, struct check_list *l, struct berth_error **err)
{
    unsigned wait_s = 5, timeout_s = 30, attempts = 5, lineno = 0;
    char *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp, *end = line + strlen(line);
        struct check *c;
        int r;

        lineno++;
        while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        if ((r = checks_setting(line, &wait_s, &timeout_s, &attempts, lineno, err)) != 0) {
            if (r < 0)
                return r;
            continue;
        }
        /* "//host/path" is Dokku's form with a host: the host is ours (the app's), the path is kept. */
        if (line[0] == '/' && line[1] == '/' && (sp = strchr(line + 2, '/')))
            line = sp;
        sp = strpbrk(line, " \t");
        if (sp)
            *sp++ = '\0';
        if (!path_valid(line))
            return berth_error_plain(err, EINVAL, "CHECKS line %u: '%.80s' is not a path (it must start with '/')",
                                     lineno, line);
        if (l->n >= CHECKS_MAX)
            return berth_error_plain(err, EINVAL, "CHECKS: more than %d checks", CHECKS_MAX);
        while (sp && (*sp == ' ' || *sp == '\t'))
            sp++;
        c = check_add(l);
        c->name = xstrdup(line);
        c->path = xstrdup(line);
        c->content = sp && *sp ? xstrdup(sp) : NULL;
    }
    /* The settings apply to every check, wherever they stand in the file. */
    for (size_t i = 0; i < l->n; i++) {
        l->v[i].wait_s = wait_s;
        l->v[i].timeout_s = timeout_s ? timeout_s : 1;
        l->v[i].attempts = attempts ? attempts : 1;
    }
    return 0;
}

int checks_load(const char *app_dir, struct check_list *ret, struct berth_error **err)
{
    _cleanup_free_ char *json_path = xasprintf("%s/app.json", app_dir);
    _cleanup_free_ char *checks_path = xasprintf("%s/CHECKS", app_dir);
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
    int r;

    *ret = (struct check_list){ 0 };
    if (access(json_path, F_OK) == 0) {
        _cleanup_json_ json_t *doc = NULL;
        json_error_t jerr;

        if ((r = read_file(json_path, &text, CHECKS_FILE_MAX, err)) < 0)
            return r;
        doc = json_loadb(text.buf, text.len, 0, &jerr);
        if (!doc || !json_is_object(doc))
            return berth_error_plain(err, EINVAL, "app.json: not a JSON object (line %d: %s)", jerr.line,
                                     doc ? "not an object" : jerr.text);
        ret->source = "app.json";
        if ((r = from_app_json(doc, ret, err)) < 0 || ret->n) {
            if (r < 0)
                checks_release(ret);
            return r;
        }
        strbuf_reset(&text);
    }
    if (access(checks_path, F_OK) != 0)
        return 0;
    if ((r = read_file(checks_path, &text, CHECKS_FILE_MAX, err)) < 0)
        return r;
    if (memchr(text.buf, '\0', text.len))
        return berth_error_plain(err, EINVAL, "CHECKS holds a NUL byte");
    ret->source = "CHECKS";
    if ((r = from_checks_file(text.buf, ret, err)) < 0)
        checks_release(ret);
    return r;
}

/* ---------------------------------------------------------------- running them */

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* A socket connected to the router's HTTP listener, from this machine. */
static int dial_router(struct router *router, int *ret_fd, struct berth_error **err)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int fd, r;

    if ((r = router_local_address(router, &addr, &len)) < 0)
        return berth_error_make(err, -r, "the router's address");
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return berth_error_make(err, errno, "socket");
    if (connect(fd, (struct sockaddr *)&addr, len) < 0) {
        r = -errno;
        (void)close(fd);
        return berth_error_make(err, -r, "connecting to the router");
    }
    *ret_fd = fd;
    return 0;
}

/* Sends the GET and reads the whole answer into *resp before the deadline. */
static int exchange(int fd, const char *request, const struct timespec *deadline, struct strbuf *resp,
                    struct berth_error **err)
{
    char buf[8192];

    if (write_all(fd, request, strlen(request)) < 0)
        return berth_error_make(err, errno, "sending the request");
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        long left = ms_left(deadline);
        ssize_t n;

        if (left <= 0)
            return berth_error_plain(err, ETIMEDOUT, "no complete answer in time");
        if (poll(&p, 1, (int)left) < 0) {
            if (errno == EINTR)
                continue;
            return berth_error_make(err, errno, "poll");
        }
        if (!p.revents)
            continue;
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "reading the answer");
        if (n == 0 || resp->len + (size_t)n > CHECK_BODY_MAX)
            return 0;
        strbuf_add(resp, buf, (size_t)n);
    }
}

/*
 * The router may send the body chunked: joins the chunks in place, so that
 * the expected content is found whatever the chunk boundaries. A body cut
 * short keeps what arrived.
 */
static void dechunk(char *body, size_t len)
{
    char *in = body, *out = body, *end = body + len;

    while (in < end) {
        unsigned long n = strtoul(in, NULL, 16);
        char *eol = memchr(in, '\n', (size_t)(end - in));
        if (!eol || n == 0)
            break;
        in = eol + 1;
        if (n > (size_t)(end - in))
            n = (size_t)(end - in);
        memmove(out, in, n);
        out += n;
        in += n;
        if (in + 2 <= end && in[0] == '\r' && in[1] == '\n')
            in += 2;
    }
    *out = '\0';
}

/* Whether the head (up to the blank line at `body`) says the body is chunked. */
static bool head_chunked(const char *resp, const char *body)
{
    for (const char *p = resp; (p = strstr(p, "\r\n")) && p + 2 < body;) {
        p += 2;
        if (strncasecmp(p, "Transfer-Encoding:", 18) == 0) {
            const char *eol = strstr(p, "\r\n"), *chunked = strcasestr(p, "chunked");
            return chunked && eol && chunked < eol;
        }
    }
    return false;
}

/*
 * One attempt: 0 when it passes, else -errno with why in *err. The GET goes
 * to the router's own listener with the app's Host and the probe's secret,
 * so it takes every request's path (headers, connect, timeouts) to the
 * probe's instance alone.
 */
static int attempt(const struct check *c, struct router *router, const char *secret, const char *host,
                   struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf resp = STRBUF_INIT;
    _cleanup_free_ char *request = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-healthcheck\r\n"
                                             ROUTER_PROBE_HEADER ": %s\r\nConnection: close\r\n\r\n",
                                             c->path, host, secret);
    struct timespec deadline;
    char *body;
    int fd = -1, status = 0, r;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += c->timeout_s;
    if ((r = dial_router(router, &fd, err)) < 0)
        return r;
    r = exchange(fd, request, &deadline, &resp, err);
    (void)close(fd);
    if (r < 0)
        return r;
    strbuf_addch(&resp, '\0');
    resp.len--;
    if (sscanf(resp.buf, "HTTP/1.%*1[01] %3d", &status) != 1)
        return berth_error_plain(err, EPROTO, "the answer is not HTTP (%zu bytes)", resp.len);
    if (status < 200 || status > 399)
        return berth_error_plain(err, EIO, "status %d", status);
    body = strstr(resp.buf, "\r\n\r\n");
    body = body ? body + 4 : resp.buf + resp.len;
    if (head_chunked(resp.buf, body))
        dechunk(body, (size_t)(resp.buf + resp.len - body));
    if (c->content && !strstr(body, c->content))
        return berth_error_plain(err, EIO, "status %d, but '%.200s' is not in the body", status, c->content);
    return 0;
}

static int run_one(const struct check *c, struct router *router, const char *secret, const char *host,
                   void (*out)(void *cls, const char *line), void *cls, struct berth_error **err)
{
    _cleanup_error_ struct berth_error *last = NULL;

    if (c->initial_delay_s)
        sleep(c->initial_delay_s);
    for (unsigned a = 1; a <= c->attempts; a++) {
        berth_error_release(&last);
        if (attempt(c, router, secret, host, &last) == 0) {
            strbuf_emitf(out, cls, "       %s: GET %s passed (attempt %u of %u)", c->name, c->path, a,
                         c->attempts);
            return 0;
        }
        strbuf_emitf(out, cls, "       %s: GET %s attempt %u of %u failed: %s", c->name, c->path, a,
                     c->attempts, berth_error_msg(&last));
        if (a < c->attempts && c->wait_s)
            sleep(c->wait_s);
    }
    return berth_error_plain(err, EIO, "health check '%s' (GET %s) failed after %u attempts: %s", c->name,
                             c->path, c->attempts, berth_error_msg(&last));
}

int checks_run(const struct check_list *l, struct router *router, const char *app, struct instance *in,
               const char *host, void (*out)(void *cls, const char *line), void *cls, struct berth_error **err)
{
    char secret[ROUTER_PROBE_SECRET_LEN + 1];
    int r = 0;

    if (!l->n)
        return 0;
    strbuf_emitf(out, cls, "-----> Running %zu health check%s from %s for %s", l->n, l->n == 1 ? "" : "s",
                 l->source, instance_dyno(in));
    /* The instance is in no route table yet: the probe is the only way the router reaches it. */
    if ((r = router_probe_add(router, app, host, in, secret, err)) < 0)
        return r;
    for (size_t i = 0; i < l->n && r == 0; i++)
        r = run_one(&l->v[i], router, secret, host, out, cls, err);
    router_probe_remove(router, secret);
    return r;
}
