/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A request's first access-handler call (proxy.c): where it goes, and the
 * head the app gets. By then the guard (guard.h) has seen the whole head,
 * so every name here is a token, every value is free of control bytes,
 * and the framing is unambiguous; what is left is policy:
 *
 *   - routing: the authority of an absolute-form target ("GET
 *     http://host/path"), which RFC 9112 §3.2.2 says wins over Host, else
 *     the Host header; normalised (case, port, trailing dot) and looked up
 *     in the current route table. The app always gets origin-form. A
 *     request whose ROUTER_PROBE_HEADER names a registered probe goes to
 *     the probe's backend instead (probe.c); the header itself is dropped
 *     from every request, registered or not.
 *   - headers towards the app (reference/HEROKU.md §3.1): hop-by-hop ones
 *     (and those any Connection line names, Host aside) dropped, and so
 *     is any underscore spelling of a framing header ("Transfer_Encoding"),
 *     which a server that folds names could read as the real one; every client
 *     X-Forwarded-*, X-Request-Start and Forwarded dropped, whatever its
 *     case or underscores, and set by the router alone: X-Forwarded-For
 *     appended with the client's address, X-Forwarded-Proto from the
 *     listener, X-Forwarded-Port, X-Request-Start in ms; X-Request-Id
 *     kept when valid, else a new UUID; Via appended; an Upgrade passed
 *     on only as a websocket request.
 *   - the body: up to SMALL_BODY_MAX with a Content-Length is collected
 *     and sent with the head (so a stale pooled connection can be retried);
 *     a larger one streams with its Content-Length; a chunked one streams
 *     re-chunked, as Heroku forwards it. Either way the router holds at
 *     most STREAM_BUFFER_MAX of it, under the router's budget.
 *
 * The head is built with plain appends: it is on every request's path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "router/internal.h"
#include "common/banned.h"

struct head_ctx {
    struct proxy_req *req;
    bool absolute;                /* the target named the host: the client's Host is replaced */
    int nhost;
    const char *host;
    const char *request_id;
    const char *probe;            /* ROUTER_PROBE_HEADER's value (never passed on) */
    const char *upgrade;          /* Upgrade: value when it names websocket */
    bool conn_upgrade;            /* Connection: lists "upgrade" */
    const char *conn_names;       /* Connection: its value (all of them, in conn_list, when sent twice) */
    struct strbuf conn_list;      /* Connection: the values of several lines, one list */
    bool bad_expect;              /* an Expect other than 100-continue (417, as Heroku) */
    const char *content_length;
    bool chunked;
    struct strbuf xff;
    struct strbuf via;
};

static void add_header(struct strbuf *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    strbuf_grow(out, nl + vl + 4);
    strbuf_add(out, name, nl);
    strbuf_add(out, ": ", 2);
    strbuf_add(out, value, vl);
    strbuf_add(out, "\r\n", 2);
}

/* Headers the router reads rather than passes on; true when `key` is one of them. */
static bool take_special(struct head_ctx *c, const char *key, const char *value)
{
    switch (key[0] | 0x20) {
    case 'h':
        if (strcasecmp(key, "Host") != 0)
            return false;
        c->nhost++;
        c->host = value;
        return c->absolute;   /* replaced by the target's authority */
    case 'c':
        if (strcasecmp(key, "Content-Length") == 0) {
            c->content_length = value;
            return true;      /* the router frames the body itself */
        }
        if (strcasecmp(key, "Connection") == 0) {
            if (header_value_has_token(value, "upgrade"))
                c->conn_upgrade = true;
            if (c->conn_names) {
                /* Rare: a second Connection line; its names count as much as the first's. */
                if (!c->conn_list.len)
                    header_list_append(&c->conn_list, c->conn_names);
                header_list_append(&c->conn_list, value);
                value = c->conn_list.buf;
            }
            c->conn_names = value;
            return true;
        }
        return false;
    case 't':
        if (strcasecmp(key, "Transfer-Encoding") == 0) {
            c->chunked = true;   /* the guard lets "chunked" alone through */
            return true;
        }
        return false;
    case 'u':
        if (strcasecmp(key, "Upgrade") != 0)
            return false;
        if (header_value_has_token(value, "websocket"))
            c->upgrade = value;
        return true;
    case 'e':
        if (strcasecmp(key, "Expect") != 0)
            return false;
        /* MHD answers 100-continue itself; nothing else can be met. */
        if (strcasecmp(value, "100-continue") != 0)
            c->bad_expect = true;
        return true;
    case 'v':
        if (strcasecmp(key, "Via") != 0)
            return false;
        header_list_append(&c->via, value);
        return true;
    case 'x':
        if (strcasecmp(key, "X-Request-Id") == 0) {
            if (!c->request_id)
                c->request_id = value;
            return true;
        }
        if (strcasecmp(key, ROUTER_PROBE_HEADER) == 0) {
            if (!c->probe)
                c->probe = value;
            return true;
        }
        switch (header_forwarded_kind(key)) {
        case FORWARDED_FOR:
            header_list_append(&c->xff, value);
            return true;
        case FORWARDED_STRIP:
            return true;
        case FORWARDED_NONE:
            return false;
        }
        return false;
    case 'f':
        return header_forwarded_kind(key) == FORWARDED_STRIP;
    default:
        return false;
    }
}

static void take_header(struct head_ctx *c, const char *key, const char *value)
{
    if (!value)
        value = "";
    if (take_special(c, key, value) || header_is_hop_by_hop(key) || header_is_framing_alias(key))
        return;
    add_header(&c->req->out, key, value);
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    take_header(cls, key, value);
    return MHD_YES;
}

/*
 * Connection may name more hop-by-hop headers ("Connection: close, X-Hop");
 * those are taken out of the head again. Rare, so done after the fact.
 */
static void drop_connection_names(struct strbuf *out, size_t start, const char *names)
{
    const char *p = names;

    while (*p) {
        size_t n;

        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == 0)
            break;
        /*
         * The Host the app gets is never a hop-by-hop header, whatever the
         * client says. The name is compared where it stands in the value
         * (n bytes, no copy), so a name of any length the guard lets
         * through is dropped.
         */
        if (!(n == 4 && strncasecmp(p, "host", 4) == 0)) {
            size_t at = start;
            while (at < out->len) {
                const char *line = out->buf + at, *eol = memchr(line, '\n', out->len - at);
                size_t ll = eol ? (size_t)(eol - line) + 1 : out->len - at;
                if (ll > n + 1 && line[n] == ':' && strncasecmp(line, p, n) == 0) {
                    memmove(out->buf + at, out->buf + at + ll, out->len - at - ll);
                    strbuf_setlen(out, out->len - ll);
                } else {
                    at += ll;
                }
            }
        }
        p += n;
    }
}

static uint64_t realtime_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* The headers only the router sets. */
static void add_forwarded(struct proxy_req *req, struct head_ctx *c)
{
    struct router *r = req->router;
    struct strbuf *out = &req->out;

    strbuf_addstr(out, "X-Forwarded-For: ");
    if (c->xff.len) {
        strbuf_add(out, c->xff.buf, c->xff.len);
        strbuf_add(out, ", ", 2);
    }
    strbuf_addstr(out, req->fwd);
    strbuf_addstr(out, req->tls ? "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: "
                                : "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ");
    strbuf_addstr(out, req->tls ? r->tls_port_str : r->port_str);
    strbuf_addstr(out, "\r\nX-Request-Start: ");
    router_add_decimal(out, realtime_ms());
    strbuf_addstr(out, "\r\nX-Request-Id: ");
    strbuf_addstr(out, req->request_id);
    strbuf_addstr(out, "\r\nVia: ");
    if (c->via.len) {
        strbuf_add(out, c->via.buf, c->via.len);
        strbuf_add(out, ", ", 2);
    }
    strbuf_addstr(out, "1.1 berth\r\n");
}

/* How the body goes upstream; its framing header joins the head. */
static void plan_body(struct proxy_req *req, const struct head_ctx *c)
{
    struct strbuf *out = &req->out;

    if (c->chunked) {
        req->stream = true;
        req->chunked_up = true;
        strbuf_addstr(out, "Transfer-Encoding: chunked\r\n");
        return;
    }
    if (!c->content_length)
        return;
    req->body_length = strtoull(c->content_length, NULL, 10);
    req->stream = req->body_length > SMALL_BODY_MAX;
    strbuf_addstr(out, "Content-Length: ");
    router_add_decimal(out, req->body_length);
    strbuf_addstr(out, "\r\n");
}

/* The route for the request's host; sets req->failure when there is none. */
static void route(struct proxy_req *req, const struct head_ctx *c, bool absolute)
{
    struct router *r = req->router;

    if (!absolute && (c->nhost != 1 || host_normalise(c->host, req->host) < 0)) {
        /* HTTP/1.0 without a Host (the guard takes care of 1.1), or one no app could have. */
        req->host[0] = '\0';
        req->failure = c->nhost == 0 ? FAIL_NO_ROUTE : FAIL_BAD_REQUEST;
        return;
    }
    if (c->bad_expect) {
        req->failure = FAIL_EXPECTATION;
        return;
    }
    if (atomic_load(&r->stopping)) {
        req->failure = FAIL_STOPPING;
        return;
    }
    /* A registered probe's secret routes to its backend alone; any other value is as good as none. */
    if (c->probe && atomic_load_explicit(&r->n_probes, memory_order_relaxed) &&
        (req->table = probe_lookup(r, c->probe))) {
        req->target = &req->table->targets[0];
        return;
    }
    req->table = router_current_table(r);
    req->target = route_table_lookup(req->table, req->host);
    if (!req->target)
        req->failure = FAIL_NO_ROUTE;
    else if (req->target->settings.maintenance)
        req->failure = FAIL_MAINTENANCE;
    else if (req->target->blank)
        req->failure = FAIL_BLANK;
    else if (req->target->settings.https_only && !req->tls && r->tls_listen_fd >= 0)
        req->redirect = true;
}

void request_begin(struct proxy_req *req, const char *method, const struct request_header *headers,
                   size_t n_headers)
{
    struct head_ctx c = { .req = req, .xff = STRBUF_INIT, .via = STRBUF_INIT, .conn_list = STRBUF_INIT };
    const char *path = req->uri;
    size_t start;
    int abs;

    strbuf_reset(&req->out);
    abs = request_target_split(req->uri, req->host, &path);
    c.absolute = abs > 0;

    strbuf_addstr(&req->out, method);
    strbuf_add(&req->out, " ", 1);
    /* The authority's path may be empty ("http://a.example?q=1"): origin-form starts with '/'. */
    if (c.absolute && path[0] != '/')
        strbuf_add(&req->out, "/", 1);
    strbuf_addstr(&req->out, path);
    strbuf_addstr(&req->out, " HTTP/1.1\r\n");
    if (c.absolute) {
        strbuf_addstr(&req->out, "Host: ");
        strbuf_addstr(&req->out, req->host);
        strbuf_addstr(&req->out, "\r\n");
    }
    start = req->out.len;
    if (headers) {
        for (size_t i = 0; i < n_headers; i++)
            take_header(&c, headers[i].name, headers[i].value);
    } else {
        (void)MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_header, &c);
    }
    if (c.conn_names && header_connection_names_others(c.conn_names))
        drop_connection_names(&req->out, start, c.conn_names);

    if (c.upgrade && c.conn_upgrade) {
        /* The only hop-by-hop headers passed on: they ask the app to switch protocols. */
        req->upgrade = true;
        strbuf_addstr(&req->out, "Connection: Upgrade\r\nUpgrade: ");
        strbuf_addstr(&req->out, c.upgrade);
        strbuf_addstr(&req->out, "\r\n");
    }
    if (c.request_id && request_id_valid(c.request_id)) {
        size_t n = strlen(c.request_id);
        memcpy(req->request_id, c.request_id, n + 1);
    } else {
        request_id_generate(req->request_id);
    }
    add_forwarded(req, &c);
    plan_body(req, &c);

    if (abs < 0) {
        req->host[0] = '\0';
        req->failure = FAIL_BAD_REQUEST;
    } else {
        route(req, &c, c.absolute);
    }
    strbuf_release(&c.xff);
    strbuf_release(&c.via);
    strbuf_release(&c.conn_list);
}
