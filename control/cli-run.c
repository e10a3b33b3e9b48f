/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-run: `berth run APP -- COMMAND...` and `berth run:detached`,
 * Heroku's one-off dynos from the command line. An attached run asks the
 * API for an upgraded connection (POST /apps/<app>/dynos with "Upgrade:
 * berth-run", docs/API.md) over a connection libcurl opens (it does the
 * TLS for an https BERTH_URL) and then speaks the run protocol's frames on
 * it itself: this process's stdin goes to the command, the command's
 * stdout and stderr come back to ours, and we exit with its exit status
 * (128 + N when signal N killed it). If we go away, berth stops the run.
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"
#include "control/run-proto.h"

/* The answer's head, and an error answer's body, are small. */
#define HEAD_MAX (64u << 10)
/* Stdin waiting for the server past which we stop reading ours. */
#define OUT_MAX (256u << 10)
/*
 * The server's bytes read and not yet handled past which we handle them
 * before reading on: a command that writes as fast as the server sends
 * (yes) would otherwise keep the socket from ever running dry, and its
 * output would pile up here instead of reaching our stdout.
 */
#define IN_MAX (256u << 10)
/* handle_frames() leaves at most one partial frame, so recv_some() can always read on. */
_Static_assert(IN_MAX > RUN_FRAME_HEADER + RUN_FRAME_MAX, "IN_MAX holds a whole frame");
/* For the connection and the answer's head; the run itself may take as long as it likes. */
#define CONNECT_TIMEOUT_MS 60000

struct conn {
    CURL *curl;
    curl_socket_t sock;
    struct strbuf in;             /* from the server, not yet used */
    struct strbuf out;            /* to the server, not yet sent */
};

/* ---------------------------------------------------------------- arguments */

static bool shell_plain(const char *s)
{
    return *s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-") == strlen(s);
}

/*
 * The command line the server runs through bash: one argument as it is (a
 * whole shell command, as `heroku run "echo $HOME"` takes it), several
 * each quoted for the shell where it needs it and joined with spaces.
 */
static char *join_command(int argc, char **argv)
{
    struct strbuf sb = STRBUF_INIT;

    if (argc == 1)
        return xstrdup(argv[0]);
    for (int i = 0; i < argc; i++) {
        if (i)
            strbuf_addch(&sb, ' ');
        if (shell_plain(argv[i])) {
            strbuf_addstr(&sb, argv[i]);
            continue;
        }
        strbuf_addch(&sb, '\'');
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'')
                strbuf_addstr(&sb, "'\\''");
            else
                strbuf_addch(&sb, *p);
        }
        strbuf_addch(&sb, '\'');
    }
    return strbuf_detach(&sb, NULL);
}

/*
 * APP [--json] [--] COMMAND...: the command (malloc'ed), or NULL with the
 * usage said. `json` may be NULL where --json is not an option.
 */
static char *parse_args(int argc, char **argv, bool *json, const char *usage)
{
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (json && strcmp(argv[i], "--json") == 0) {
            *json = true;
            continue;
        }
        fprintf(stderr, "berth: unknown option '%s' (put the command after '--')\nusage: berth %s\n", argv[i],
                usage);
        return NULL;
    }
    if (i >= argc) {
        fprintf(stderr, "berth: no command to run\nusage: berth %s\n", usage);
        return NULL;
    }
    return join_command(argc - i, argv + i);
}

/* ---------------------------------------------------------------- the connection */

static int wait_sock(curl_socket_t sock, short events, int timeout_ms)
{
    struct pollfd p = { sock, events, 0 };
    int r;

    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* Sends what waits in c->out; with `block`, all of it. -1 when the connection broke. */
static int send_pending(struct conn *c, bool block)
{
    while (c->out.len) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(c->curl, c->out.buf, c->out.len, &n);

        if (rc == CURLE_AGAIN) {
            if (!block)
                return 0;
            if (wait_sock(c->sock, POLLOUT, CONNECT_TIMEOUT_MS) <= 0)
                return -1;
            continue;
        }
        if (rc != CURLE_OK)
            return -1;
        strbuf_remove_prefix(&c->out, n);
    }
    return 0;
}

/*
 * Reads what the server sent into c->in, until there is nothing more or
 * c->in holds IN_MAX: 1 for some (2 when it stopped at IN_MAX, and more may
 * wait), 0 for none yet, -1 at its end or on an error.
 */
static int recv_some(struct conn *c)
{
    char buf[RUN_FRAME_MAX];
    int got = 0;

    while (c->in.len < IN_MAX) {
        size_t n = 0;
        CURLcode rc = curl_easy_recv(c->curl, buf, sizeof(buf), &n);

        if (rc == CURLE_AGAIN)
            return got;
        if (rc != CURLE_OK || n == 0)
            return got ? 1 : -1;
        strbuf_add(&c->in, buf, n);
        got = 1;
        /* TLS may hold more than the socket shows: read until there is nothing (or IN_MAX). */
    }
    return 2;
}

/* The request line and headers of the attached run's request. */
static void add_request(struct strbuf *sb, const char *url, const char *token, const char *body)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *path = NULL;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        (void)curl_url_get(u, CURLUPART_HOST, &host, 0);
        (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
        (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    }
    strbuf_addf(sb, "POST %s HTTP/1.1\r\nHost: %s%s%s\r\n", path ? path : "/", host ? host : "localhost",
                port ? ":" : "", port ? port : "");
    strbuf_addf(sb, "Authorization: Bearer %s\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                "Content-Length: %zu\r\nConnection: Upgrade\r\nUpgrade: " RUN_PROTOCOL "\r\n\r\n%s",
                token, strlen(body), body);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
}

/* Reads until c->in holds the answer's head; its length, or -1 (said). */
static ssize_t read_head(struct conn *c)
{
    char *end;

    while (!(end = memmem(c->in.buf, c->in.len, "\r\n\r\n", 4))) {
        int r;

        if (c->in.len > HEAD_MAX) {
            fprintf(stderr, "berth: the API's answer is not HTTP\n");
            return -1;
        }
        r = recv_some(c);
        if (r < 0) {
            fprintf(stderr, "berth: the API closed the connection without an answer\n");
            return -1;
        }
        if (r == 0 && wait_sock(c->sock, POLLIN, CONNECT_TIMEOUT_MS) <= 0) {
            fprintf(stderr, "berth: no answer from the API\n");
            return -1;
        }
    }
    return end + 4 - c->in.buf;
}

/* An answer other than 101: its JSON error said on stderr. The exit code. */
static int refused(struct conn *c, long status, size_t head_len)
{
    const char *cl = strcasestr(c->in.buf, "\r\nContent-Length:");
    size_t want = cl && cl < c->in.buf + head_len ? strtoul(cl + 17, NULL, 10) : 0;
    _cleanup_json_ json_t *doc = NULL;

    while (c->in.len < head_len + want && c->in.len <= HEAD_MAX * 2) {
        int r = recv_some(c);

        if (r < 0 || (r == 0 && wait_sock(c->sock, POLLIN, CONNECT_TIMEOUT_MS) <= 0))
            break;
    }
    doc = json_loadb(c->in.buf + head_len, c->in.len - head_len, 0, NULL);
    return cli_fail(status, doc);
}

/*
 * Connects and asks for the attached run; on a 101, 0 with c->in holding
 * whatever of the stream came with the head. Otherwise the exit code (said).
 */
static int open_run(struct conn *c, const char *app, const char *command)
{
    _cleanup_free_ char *token = cli_token(), *url = NULL, *body = NULL;
    _cleanup_json_ json_t *req = json_pack("{s:s, s:b}", "command", command, "attach", 1);
    CURLcode rc;
    long status = 0;
    ssize_t head;

    if (!token) {
        fprintf(stderr, "berth: no API token: set BERTH_TOKEN, or BERTH_HOME to the server's data directory\n");
        return 1;
    }
    url = xasprintf("%s/apps/%s/dynos", cli_base_url(), app);
    body = json_dumps(req, JSON_COMPACT);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK || curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &c->sock) != CURLE_OK) {
        fprintf(stderr, "berth: cannot reach the berth API at '%s': %s\n", cli_base_url(), curl_easy_strerror(rc));
        return 1;
    }
    add_request(&c->out, url, token, body);
    if (send_pending(c, true) < 0) {
        fprintf(stderr, "berth: the connection to the API broke\n");
        return 1;
    }
    head = read_head(c);
    if (head < 0)
        return 1;
    if (sscanf(c->in.buf, "HTTP/1.%*c %ld", &status) != 1) {
        fprintf(stderr, "berth: the API's answer is not HTTP\n");
        return 1;
    }
    if (status != 101)
        return refused(c, status, (size_t)head);
    strbuf_remove_prefix(&c->in, (size_t)head);
    return 0;
}

/* ---------------------------------------------------------------- the stream */

/* What a JSON frame holds; NULL if it is not a JSON object. */
static json_t *frame_json(const char *data, size_t len)
{
    json_t *doc = json_loadb(data, len, 0, NULL);

    if (!json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/*
 * One frame from the server: -1 to read on, else the exit code to leave
 * with (the command's, or 1 after an error said).
 */
static int handle_frame(uint8_t type, const char *data, size_t len, const char *app, const char *command)
{
    _cleanup_json_ json_t *doc = NULL;

    switch (type) {
    case RUN_FRAME_STDOUT:
        return write_all(STDOUT_FILENO, data, len) < 0 ? 1 : -1;
    case RUN_FRAME_STDERR:
        (void)write_all(STDERR_FILENO, data, len);
        return -1;
    case RUN_FRAME_STARTED:
        /* Heroku's line, for people; scripts reading stderr get the command's alone. */
        doc = frame_json(data, len);
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "Running `%s` on %s... up, %s\n", command, app, doc ? json_get_str(doc, "name") : "?");
        return -1;
    case RUN_FRAME_EXIT:
        doc = frame_json(data, len);
        if (!doc || !json_is_integer(json_object_get(doc, "status"))) {
            fprintf(stderr, "berth: a malformed exit status from the API\n");
            return 1;
        }
        return (int)(json_integer_value(json_object_get(doc, "status")) & 0xff);
    case RUN_FRAME_ERROR:
        fprintf(stderr, "berth: %.*s\n", (int)len, data);
        return 1;
    default:
        /* A later server's frame this client does not know. */
        return -1;
    }
}

/* Handles the whole frames in c->in: -1 to read on, else the exit code. */
static int handle_frames(struct conn *c, const char *app, const char *command)
{
    const char *payload;
    size_t len;
    uint8_t type;
    int r, code;

    while ((r = run_frame_next(c->in.buf, c->in.len, &type, &payload, &len)) == 1) {
        code = handle_frame(type, payload, len, app, command);
        strbuf_remove_prefix(&c->in, RUN_FRAME_HEADER + len);
        if (code >= 0)
            return code;
    }
    if (r < 0) {
        fprintf(stderr, "berth: a malformed frame from the API\n");
        return 1;
    }
    return -1;
}

/* Our stdin is readable: a STDIN frame, or STDIN_EOF at its end. false once it ended. */
static bool read_stdin(struct conn *c)
{
    char buf[RUN_FRAME_MAX];
    ssize_t n;

    do {
        n = read(STDIN_FILENO, buf, sizeof(buf));
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        run_frame_add(&c->out, RUN_FRAME_STDIN, buf, (size_t)n);
        return true;
    }
    if (n < 0 && errno == EAGAIN)
        return true;
    /* The end, or an stdin that cannot be read (closed, a directory): the command sees its end. */
    run_frame_add(&c->out, RUN_FRAME_STDIN_EOF, NULL, 0);
    return false;
}

/* Copies both ways until the server says how the command ended; the exit code. */
static int stream(struct conn *c, const char *app, const char *command)
{
    bool stdin_open = true, more = false;
    int code = handle_frames(c, app, command);

    while (code < 0) {
        struct pollfd p[2] = {
            { c->sock, (short)(POLLIN | (c->out.len ? POLLOUT : 0)), 0 },
            { stdin_open && c->out.len < OUT_MAX ? STDIN_FILENO : -1, POLLIN, 0 },
        };
        int got = 0;

        /* (what the last read left may already be in TLS's buffer, where poll does not see it) */
        if (poll(p, 2, more ? 0 : -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[1].revents)
            stdin_open = read_stdin(c);
        if (p[0].revents || more) {
            got = recv_some(c);
            more = got == 2;
        }
        if (send_pending(c, false) < 0 || got < 0) {
            /* Frames that came before the end still count (the exit status among them). */
            code = handle_frames(c, app, command);
            if (code < 0)
                fprintf(stderr, "berth: the connection to the API was lost before the command ended\n");
            return code < 0 ? 1 : code;
        }
        code = handle_frames(c, app, command);
    }
    return code;
}

int cli_run_attached(int argc, char **argv)
{
    const char *usage = "run APP [--] COMMAND...";
    _cleanup_free_ char *command = parse_args(argc, argv, NULL, usage);
    struct conn c = { .in = STRBUF_INIT, .out = STRBUF_INIT };
    int code;

    if (!command)
        return 2;
    c.curl = curl_easy_init();
    if (!c.curl)
        return 1;
    code = open_run(&c, argv[0], command);
    if (code == 0)
        code = stream(&c, argv[0], command);
    fflush(stdout);
    curl_easy_cleanup(c.curl);
    strbuf_release(&c.in);
    strbuf_release(&c.out);
    return code;
}

int cli_run_detached(int argc, char **argv)
{
    const char *usage = "run:detached APP [--json] [--] COMMAND...";
    bool json = false;
    _cleanup_free_ char *command = parse_args(argc, argv, &json, usage);
    _cleanup_free_ char *path = NULL;
    _cleanup_json_ json_t *req = NULL, *doc = NULL;
    long status = 0;

    if (!command)
        return 2;
    path = xasprintf("/apps/%s/dynos", argv[0]);
    req = json_pack("{s:s, s:b}", "command", command, "attach", 0);
    if (!json) {
        printf("Running `%s` on %s... ", command, argv[0]);
        fflush(stdout);
    }
    if (cli_api("POST", path, req, &status, &doc) < 0) {
        if (!json)
            printf("failed\n");
        return 1;
    }
    if (status != 201) {
        if (!json)
            printf("failed\n");
        return cli_fail(status, doc);
    }
    if (json) {
        cli_print_json(doc);
        return 0;
    }
    printf("up, %s\nRun `berth logs %s` to see its output.\n", json_get_str(doc, "name"), argv[0]);
    return 0;
}
