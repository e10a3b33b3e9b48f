/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/api-run: one-off runs in the control API (docs/API.md, One-off
 * runs; the runs themselves are run.h's).
 *
 *   POST /apps/<app>/dynos {"command": "...", "attach": false}
 *        201 {"name": "run.4821", ...}: `berth run:detached`, output in the app's log
 *   POST /apps/<app>/dynos {"command": "...", "attach": true}, with "Upgrade: berth-run"
 *        101 Switching Protocols, then the run's stdin, stdout, stderr and
 *        exit status over the same connection: `berth run`
 *
 * After the 101 both sides speak the frames of run-proto.h: the client
 * sends STDIN and STDIN_EOF, the server STARTED, STDOUT, STDERR, and last
 * EXIT or ERROR. The session runs on the connection's own thread
 * (the API runs one per connection), in one poll loop over the client's
 * socket and the process's three pipes, each side paced by the other:
 * the process's output is read only while less than SESSION_OUT_MAX waits
 * for the client, the client's input only once the last of it reached the
 * process. A client that goes away (end of file, a reset, a malformed
 * frame) ends the run at once: its container is stopped with SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/events.h"
#include "control/instance.h"
#include "control/run.h"
#include "control/run-proto.h"

/* Output waiting for the client past which the process's pipes are not read. */
#define SESSION_OUT_MAX (256u << 10)
/* How long the last frames may take to reach a client that reads slowly. */
#define SESSION_FLUSH_MS 30000
/* How long the client has to close its end after the last frame (a lingering close). */
#define SESSION_LINGER_MS 2000
/* Between looks at the exit status, once the process closed its stdout and stderr. */
#define SESSION_EXIT_POLL_MS 100

struct session {
    struct server *server;
    char *app;
    char *command;
    char *user;                   /* the caller's tenant, for the audit log */
    int sock;                     /* the client's, libmicrohttpd's to close */
    struct strbuf in;             /* from the client, not yet a whole frame */
    struct strbuf to_app;         /* stdin bytes not yet in the pipe */
    struct strbuf out;            /* frames not yet sent */
    int stdin_wr, stdout_rd, stderr_rd;   /* our ends of the process's pipes; -1 once closed */
    bool stdin_eof;               /* the client sent STDIN_EOF */
};

enum pump_end { PUMP_EXITED, PUMP_GONE, PUMP_STOPPING };

static void session_free(void *cls)
{
    struct session *ss = cls;

    if (!ss)
        return;
    strbuf_release(&ss->in);
    strbuf_release(&ss->to_app);
    strbuf_release(&ss->out);
    if (ss->stdin_wr >= 0)
        close(ss->stdin_wr);
    if (ss->stdout_rd >= 0)
        close(ss->stdout_rd);
    if (ss->stderr_rd >= 0)
        close(ss->stderr_rd);
    free(ss->app);
    free(ss->command);
    free(ss->user);
    free(ss);
}

static void frame_add_json(struct strbuf *sb, uint8_t type, json_t *doc)
{
    _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

    json_decref(doc);
    run_frame_add(sb, type, text, strlen(text));
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---------------------------------------------------------------- the loop */

/* Takes the whole frames out of ss->in. -1 on a malformed one. */
static int parse_frames(struct session *ss)
{
    const char *payload;
    size_t len;
    uint8_t type;
    int r;

    while ((r = run_frame_next(ss->in.buf, ss->in.len, &type, &payload, &len)) == 1) {
        if (type == RUN_FRAME_STDIN && ss->stdin_wr >= 0 && !ss->stdin_eof)
            strbuf_add(&ss->to_app, payload, len);
        else if (type == RUN_FRAME_STDIN_EOF)
            ss->stdin_eof = true;
        /* Anything else from a client is ignored, so that later clients may say more. */
        strbuf_remove_prefix(&ss->in, RUN_FRAME_HEADER + len);
    }
    return r;
}

/* The client's socket is ready: sends what waits, reads what came. -1 once the client is gone. */
static int client_ready(struct session *ss, short revents)
{
    char buf[RUN_FRAME_MAX];
    ssize_t n;

    if (revents & POLLOUT && ss->out.len) {
        n = send(ss->sock, ss->out.buf, ss->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0)
            strbuf_remove_prefix(&ss->out, (size_t)n);
    }
    if (!(revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)))
        return 0;
    /* Not reading (stdin waits for the process): a hang-up still ends the run. */
    if (ss->to_app.len)
        return revents & (POLLRDHUP | POLLHUP | POLLERR) ? -1 : 0;
    n = recv(ss->sock, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return -1;
    if (n > 0) {
        strbuf_add(&ss->in, buf, (size_t)n);
        return parse_frames(ss);
    }
    return 0;
}

/* The process's stdin has room: writes what the client sent. */
static void feed_process(struct session *ss)
{
    ssize_t n = write(ss->stdin_wr, ss->to_app.buf, ss->to_app.len);

    if (n > 0) {
        strbuf_remove_prefix(&ss->to_app, (size_t)n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        /* The process closed its stdin: the rest of the client's has nowhere to go. */
        close_fd(&ss->stdin_wr);
        strbuf_reset(&ss->to_app);
    }
}

/* One of the process's output pipes is readable: its bytes become a frame for the client. */
static void drain_output(struct session *ss, int *fd, uint8_t type)
{
    char buf[RUN_FRAME_MAX];
    ssize_t n = read(*fd, buf, sizeof(buf));

    if (n > 0)
        run_frame_add(&ss->out, type, buf, (size_t)n);
    else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        close_fd(fd);
}

enum { P_SOCK, P_STDIN, P_STDOUT, P_STDERR, P_WAKE, P_COUNT };

/* Carries bytes both ways until the process exits, the client goes or berth stops. */
static enum pump_end pump(struct session *ss, struct run *run, int *ret_status)
{
    for (;;) {
        bool outputs_open = ss->stdout_rd >= 0 || ss->stderr_rd >= 0;
        bool room = ss->out.len < SESSION_OUT_MAX;
        struct pollfd p[P_COUNT] = {
            [P_SOCK] = { ss->sock, (short)(POLLRDHUP | (ss->to_app.len ? 0 : POLLIN) | (ss->out.len ? POLLOUT : 0)), 0 },
            [P_STDIN] = { ss->to_app.len ? ss->stdin_wr : -1, POLLOUT, 0 },
            [P_STDOUT] = { room ? ss->stdout_rd : -1, POLLIN, 0 },
            [P_STDERR] = { room ? ss->stderr_rd : -1, POLLIN, 0 },
            [P_WAKE] = { run_wake_fd(run), POLLIN, 0 },
        };

        /* Both pipes end when the container is gone; a process may also close them and carry on. */
        if (!outputs_open && run_wait(run, 0, ret_status, NULL) == 0)
            return PUMP_EXITED;
        if (poll(p, P_COUNT, outputs_open ? -1 : SESSION_EXIT_POLL_MS) < 0) {
            if (errno == EINTR)
                continue;
            return PUMP_GONE;
        }
        if (p[P_WAKE].revents)
            return PUMP_STOPPING;
        if (p[P_SOCK].revents && client_ready(ss, p[P_SOCK].revents) < 0)
            return PUMP_GONE;
        if (p[P_STDIN].revents)
            feed_process(ss);
        if (p[P_STDOUT].revents)
            drain_output(ss, &ss->stdout_rd, RUN_FRAME_STDOUT);
        if (p[P_STDERR].revents)
            drain_output(ss, &ss->stderr_rd, RUN_FRAME_STDERR);
        if (ss->stdin_eof && !ss->to_app.len)
            close_fd(&ss->stdin_wr);
    }
}

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/*
 * Sends the last frames, then closes our sending half and waits a moment
 * for the client to close its own: closing with its bytes unread would
 * reset the connection and could lose the end of the output on the way.
 */
static void finish(struct session *ss)
{
    struct timespec deadline;
    char buf[4096];
    long left;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += SESSION_FLUSH_MS / 1000;
    while (ss->out.len && (left = ms_left(&deadline)) > 0) {
        struct pollfd p = { ss->sock, POLLOUT, 0 };

        if (poll(&p, 1, (int)left) <= 0 || client_ready(ss, p.revents) < 0)
            return;
        /* Only sending now: what the client sends meanwhile is dropped. */
        strbuf_reset(&ss->in);
        strbuf_reset(&ss->to_app);
    }
    (void)shutdown(ss->sock, SHUT_WR);
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += SESSION_LINGER_MS / 1000;
    while ((left = ms_left(&deadline)) > 0) {
        struct pollfd p = { ss->sock, POLLIN, 0 };

        if (poll(&p, 1, (int)left) <= 0 || recv(ss->sock, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
            return;
    }
}

static json_t *exit_doc(int status)
{
    if (WIFSIGNALED(status))
        return json_pack("{s:i, s:i}", "status", 128 + WTERMSIG(status), "signal", WTERMSIG(status));
    return json_pack("{s:i}", "status", WEXITSTATUS(status));
}

/*
 * The process's pipes: its ends in *io (closed by the caller once the
 * container has them), ours non-blocking in the session.
 */
static int open_pipes(struct session *ss, struct instance_stdio *io, struct berth_error **err)
{
    int in[2], out[2], errp[2];

    if (pipe2(in, O_CLOEXEC) < 0)
        return berth_error_make(err, errno, "pipe");
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return berth_error_make(err, errno, "pipe");
    }
    if (pipe2(errp, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return berth_error_make(err, errno, "pipe");
    }
    *io = (struct instance_stdio){ .in = in[0], .out = out[1], .err = errp[1] };
    ss->stdin_wr = in[1];
    ss->stdout_rd = out[0];
    ss->stderr_rd = errp[0];
    (void)fcntl(ss->stdin_wr, F_SETFL, O_NONBLOCK);
    (void)fcntl(ss->stdout_rd, F_SETFL, O_NONBLOCK);
    (void)fcntl(ss->stderr_rd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Starts the run with the session's pipes; an ERROR frame waits in ss->out on failure. */
static struct run *session_start(struct session *ss)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct instance_stdio io = { -1, -1, -1 };
    struct run *run = NULL;
    int r;

    r = open_pipes(ss, &io, &err);
    if (r == 0) {
        r = run_start(ss->server, ss->app, ss->command, &io, &run, &err);
        close(io.in);
        close(io.out);
        close(io.err);
    }
    if (r < 0) {
        const char *msg = berth_error_msg(&err);

        log_warn("one-off run of '%s': %s", ss->app, msg);
        run_frame_add(&ss->out, RUN_FRAME_ERROR, msg, strlen(msg));
        return NULL;
    }
    events_record(ss->server, ss->user, ss->app, "run", "Started %s (attached)", run_dyno(run));
    frame_add_json(&ss->out, RUN_FRAME_STARTED, json_pack("{s:s}", "name", run_dyno(run)));
    return run;
}

/* The upgraded connection, on its own thread: the whole attached run. */
static void session_run(void *cls, const char *extra_in, size_t extra_in_size, int sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    struct session *ss = cls;
    const char *why = "the client went away";
    struct run *run;
    int status = 0;

    ss->sock = sock;
    strbuf_add(&ss->in, extra_in, extra_in_size);
    run = session_start(ss);
    if (run && parse_frames(ss) == 0) {
        switch (pump(ss, run, &status)) {
        case PUMP_EXITED:
            frame_add_json(&ss->out, RUN_FRAME_EXIT, exit_doc(status));
            why = NULL;
            break;
        case PUMP_STOPPING:
            why = run_stop_reason(run);
            {
                _cleanup_free_ char *msg = xasprintf("%s: the run was ended", why);

                run_frame_add(&ss->out, RUN_FRAME_ERROR, msg, strlen(msg));
            }
            break;
        case PUMP_GONE:
            /* Nobody to tell: the client went away. */
            strbuf_reset(&ss->out);
            break;
        }
    }
    /* Stopped at once when it still runs: before any wait for the client. */
    run_end(ss->server, run, why);
    if (ss->out.len)
        finish(ss);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    session_free(ss);
}

/* ---------------------------------------------------------------- the request */

static unsigned status_for(int code)
{
    switch (code) {
    case -ENOENT:
        return 404;
    case -ENODATA:
        return 409;
    case -EAGAIN:
        return 429;
    case -ESHUTDOWN:
        return 503;
    default:
        return 500;
    }
}

static enum MHD_Result run_detached_answer(const struct api_call *call, const char *app, const char *command)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *dyno = NULL;
    int r;

    r = run_detached(call->server, app, command, &dyno, &err);
    if (r < 0)
        return api_respond_error(call->conn, status_for(r), berth_error_msg(&err));
    events_record(call->server, call->tenant, app, "run", "Started %s (detached)", dyno);
    return api_respond_json(call->conn, 201, json_pack("{s:s, s:s, s:s, s:b}", "name", dyno, "command", command,
                                                       "state", "starting", "attach", 0));
}

/* Whether the request asks to switch to the run protocol ("Upgrade: berth-run"). */
static bool wants_upgrade(const struct api_call *call)
{
    const char *up = MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);

    return up && strcasecmp(up, RUN_PROTOCOL) == 0;
}

enum MHD_Result api_run_handle(const struct api_call *call, const char *app)
{
    enum MHD_Result answer;
    _cleanup_json_ json_t *body = api_body_object(call, &answer);
    _cleanup_error_ struct berth_error *err = NULL;
    const json_t *command, *attach;
    struct session *ss;
    unsigned version = 0;

    if (!body)
        return answer;
    command = json_object_get(body, "command");
    attach = json_object_get(body, "attach");
    if (!json_is_string(command) || json_string_length(command) == 0 ||
        json_string_length(command) != strlen(json_string_value(command)))
        return api_respond_error(call->conn, 400, "'command' must be a non-empty string");
    if (json_string_length(command) > RUN_COMMAND_MAX)
        return api_respond_error(call->conn, 400, "'command' is longer than 16 KiB");
    if (attach && !json_is_boolean(attach))
        return api_respond_error(call->conn, 400, "'attach' must be true or false");
    if (model_release_current(&call->server->model, app, &version, NULL, &err) < 0)
        return api_respond_error(call->conn, 500, berth_error_msg(&err));
    if (version == 0) {
        _cleanup_free_ char *msg = xasprintf("'%s' has no release yet: push it first (git push)", app);

        return api_respond_error(call->conn, 409, msg);
    }
    if (!json_is_true(attach))
        return run_detached_answer(call, app, json_string_value(command));
    if (!wants_upgrade(call))
        return api_respond_error(call->conn, 400, "an attached run needs 'Connection: Upgrade' and "
                                 "'Upgrade: " RUN_PROTOCOL "' (docs/API.md)");
    ss = xcalloc(1, sizeof(*ss));
    ss->server = call->server;
    ss->app = xstrdup(app);
    ss->user = xstrdup(call->tenant);
    ss->command = xstrdup(json_string_value(command));
    ss->sock = ss->stdin_wr = ss->stdout_rd = ss->stderr_rd = -1;
    strbuf_init(&ss->in, 0);
    strbuf_init(&ss->to_app, 0);
    strbuf_init(&ss->out, 0);
    return api_respond_upgrade(call, RUN_PROTOCOL, session_run, ss, session_free);
}
