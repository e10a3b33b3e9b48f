/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's own answers and its access log. Error pages are built once
 * per router as persistent libmicrohttpd responses and shared by every
 * connection (MHD reference-counts responses). They name no app and echo
 * nothing from the request, so an unknown Host cannot probe which apps exist
 * or inject markup. The access log line copies Heroku's router line
 * (HEROKU.md §3.7), with at=error code=Hxx desc="..." for failures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "router/internal.h"
#include "common/banned.h"

struct failure_info {
    unsigned status;
    const char *code;
    const char *desc;
    const char *title;
    const char *text;
};

static const struct failure_info failures[FAIL_COUNT] = {
    [FAIL_NONE] = { 200, "", "", "", "" },
    [FAIL_NO_ROUTE] = { 404, "", "No such app", "No such app",
                        "There is no app configured at that hostname." },
    [FAIL_BAD_REQUEST] = { 400, "H26", "Request Error", "Bad request",
                           "The request could not be understood." },
    [FAIL_TOO_LARGE] = { 413, "H26", "Request Error", "Request too large",
                         "The request body is larger than this router accepts." },
    [FAIL_EXPECTATION] = { 417, "H26", "Request Error", "Expectation failed",
                           "The only expectation this router meets is 100-continue." },
    [FAIL_NO_WEB] = { 503, "H14", "No web processes running", "Application error",
                      "No web processes are running for this application." },
    [FAIL_CONNECT] = { 503, "H10", "App crashed", "Application error",
                       "An error occurred in the application and your page could not be served." },
    [FAIL_TIMEOUT] = { 503, "H12", "Request timeout", "Application error",
                       "The application did not respond in time." },
    [FAIL_NO_RESPONSE] = { 503, "H13", "Connection closed without response", "Application error",
                           "The application closed the connection without a response." },
    [FAIL_BAD_RESPONSE] = { 502, "H17", "Poorly formatted HTTP response", "Bad gateway",
                            "The application sent a malformed response." },
    [FAIL_STOPPING] = { 503, "H24", "Forced close", "Service unavailable",
                        "The router is shutting down." },
};

unsigned failure_status(enum router_failure f)
{
    return failures[f].status;
}

const char *failure_code(enum router_failure f)
{
    return failures[f].code;
}

const char *failure_desc(enum router_failure f)
{
    return failures[f].desc;
}

int error_pages_create(struct MHD_Response *pages[FAIL_COUNT])
{
    for (int f = FAIL_NO_ROUTE; f < FAIL_COUNT; f++) {
        struct strbuf sb = STRBUF_INIT;
        size_t len;
        char *body;

        strbuf_addf(&sb,
                    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head>\n"
                    "<body><h1>%s</h1><p>%s</p></body></html>\n",
                    failures[f].title, failures[f].title, failures[f].text);
        body = strbuf_detach(&sb, &len);
        pages[f] = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!pages[f]) {
            free(body);
            error_pages_destroy(pages);
            return -ENOMEM;
        }
        (void)MHD_add_response_header(pages[f], MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
        (void)MHD_add_response_header(pages[f], MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache, no-store");
    }
    return 0;
}

void error_pages_destroy(struct MHD_Response *pages[FAIL_COUNT])
{
    for (int f = 0; f < FAIL_COUNT; f++) {
        if (pages[f])
            MHD_destroy_response(pages[f]);
        pages[f] = NULL;
    }
}

/* Quotes a value for the log line: no quotes, backslashes or control bytes get through raw. */
static void add_quoted(struct strbuf *sb, const char *s, size_t max)
{
    strbuf_addch(sb, '"');
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            strbuf_addf(sb, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            strbuf_addf(sb, "\\x%02x", ch);
        else
            strbuf_addch(sb, (char)ch);
    }
    strbuf_addch(sb, '"');
}

void access_log(const struct proxy_req *req)
{
    struct strbuf sb = STRBUF_INIT;
    uint64_t end = now_ms();
    uint64_t service = req->service_start_ms ? end - req->service_start_ms : 0;

    if (req->failure != FAIL_NONE && req->failure != FAIL_NO_ROUTE)
        strbuf_addf(&sb, "at=error code=%s desc=\"%s\" ", failure_code(req->failure),
                    failure_desc(req->failure));
    else
        strbuf_addstr(&sb, "at=info ");
    /* MHD only accepts token characters in a method, so it needs no quoting. */
    strbuf_addf(&sb, "method=%s", req->method);
    strbuf_addstr(&sb, " path=");
    add_quoted(&sb, req->uri ? req->uri : "", 2048);
    strbuf_addf(&sb, " host=%s request_id=%s fwd=\"%s\" dyno=%s connect=%llums service=%llums"
                " status=%d bytes=%llu protocol=http",
                req->host[0] ? req->host : "-", req->request_id, req->fwd, req->dyno,
                (unsigned long long)req->connect_ms, (unsigned long long)service,
                req->status, (unsigned long long)req->bytes_sent);
    log_info("%s", sb.buf);
    strbuf_release(&sb);
}
