/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/git-shell: both ends of berth's SSH transport (see git-shell.h).
 *
 * The ssh side (gitshell_main) runs in sshd's session as the forced command
 * and never execs anything: it splits SSH_ORIGINAL_COMMAND itself and
 * either hands its three standard fds to the daemon, or runs a CLI command
 * in-process with a session token from the daemon.
 *
 * The daemon side is a unix socket listener with a thread per session.
 * One request per connection, a datagram-sized hello:
 *
 *   "git-receive-pack\0TENANT\0APP\0" + SCM_RIGHTS {stdin, stdout, stderr}
 *       -> the session runs on those fds; the answer is "exit N\n"
 *   "cli\0TENANT\0\0"
 *       -> "token HEX URL\n"; the token stays valid until the connection closes
 *
 * A git session is refused like the HTTP transport refuses it: an app of
 * another tenant is "does not exist".
 */
#include "control/git-shell.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api-internal.h"
#include "control/cli.h"
#include "control/deploy.h"
#include "control/keys.h"
#include "control/units.h"
#include "receiver/receiver.h"

#define HELLO_MAX 1024
#define MAX_WORDS 64
#define COMMAND_MAX 4096
#define STOP_WAIT_S 30

/* ===================================================================== ssh side */

static int usage(void)
{
    fprintf(stderr, "usage: berth git-shell --socket PATH TENANT (sshd's forced command; see berth keys:add)\n");
    return 2;
}

/* Characters a command may hold: no shell metacharacter, nothing to expand. */
static bool allowed_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
           strchr("._-:=/@,+%'", c) != NULL;
}

/*
 * Splits `cmd` into words (spaces separate, '...' groups). Returns the
 * number of words, or -1 with the reason on stderr.
 */
static int split_command(char *cmd, char **words)
{
    int n = 0;
    char *p = cmd;

    if (strlen(cmd) > COMMAND_MAX) {
        fprintf(stderr, "berth: command too long\n");
        return -1;
    }
    for (const char *c = cmd; *c; c++)
        if (!allowed_char((unsigned char)*c)) {
            fprintf(stderr, "berth: refused: the command holds '%c' (berth runs no shell; only letters, digits, "
                    "spaces, '...' quoting and ._-:=/@,+%%)\n", (unsigned char)*c >= 0x20 ? *c : '?');
            return -1;
        }
    while (*p) {
        char *w, *out;

        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (n >= MAX_WORDS) {
            fprintf(stderr, "berth: too many words in the command\n");
            return -1;
        }
        w = out = p;
        while (*p && *p != ' ') {
            if (*p == '\'') {
                char *close = strchr(p + 1, '\'');

                if (!close) {
                    fprintf(stderr, "berth: refused: unbalanced quote\n");
                    return -1;
                }
                memmove(out, p + 1, (size_t)(close - p - 1));
                out += close - p - 1;
                p = close + 1;
            } else {
                *out++ = *p++;
            }
        }
        if (*p)
            p++;
        *out = '\0';
        words[n++] = w;
    }
    return n;
}

/* 'APP.git', '/APP.git', 'APP' and 'APP/' name app APP; NULL when it is no app name. */
static char *app_from_path(const char *path)
{
    size_t len;
    char *app;

    while (*path == '/')
        path++;
    app = xstrdup(path);
    len = strlen(app);
    while (len && app[len - 1] == '/')
        app[--len] = '\0';
    if (len > 4 && strcmp(app + len - 4, ".git") == 0)
        app[len - 4] = '\0';
    if (!model_app_name_valid(app)) {
        free(app);
        return NULL;
    }
    return app;
}

static int connect_daemon(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    return fd;
}

static int send_hello(int fd, const char *kind, const char *tenant, const char *arg, bool with_fds)
{
    char buf[HELLO_MAX];
    int n = snprintf(buf, sizeof(buf), "%s%c%s%c%s%c", kind, 0, tenant, 0, arg, 0);
    union { struct cmsghdr h; char space[CMSG_SPACE(3 * sizeof(int))]; } cm;
    struct iovec iov = { .iov_base = buf, .iov_len = (size_t)n };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (n < 0 || (size_t)n >= sizeof(buf))
        return -E2BIG;
    if (with_fds) {
        int fds[3] = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO };

        memset(&cm, 0, sizeof(cm));
        msg.msg_control = cm.space;
        msg.msg_controllen = sizeof(cm.space);
        cm.h.cmsg_level = SOL_SOCKET;
        cm.h.cmsg_type = SCM_RIGHTS;
        cm.h.cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(&cm.h), fds, sizeof(fds));
    }
    while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

/* Reads one "\n"-ended line (at most len-1 bytes) from fd; -1 at EOF first. */
static int read_line(int fd, char *line, size_t len)
{
    size_t have = 0;

    while (have + 1 < len) {
        ssize_t n = read(fd, line + have, 1);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (line[have] == '\n')
            break;
        have++;
    }
    line[have] = '\0';
    return 0;
}

static int run_git(const char *socket_path, const char *tenant, const char *service, const char *path)
{
    _cleanup_free_ char *app = app_from_path(path);
    _cleanup_close_ int fd = -1;
    char line[64];
    int status;

    if (!app) {
        fprintf(stderr, "berth: '%s' is not an app's repository (use APP.git)\n", path);
        return 1;
    }
    fd = connect_daemon(socket_path);
    if (fd < 0) {
        fprintf(stderr, "berth: cannot reach berth serve at %s: %s\n", socket_path, strerror(-fd));
        return 1;
    }
    if (send_hello(fd, service, tenant, app, true) < 0) {
        fprintf(stderr, "berth: cannot hand the session to berth serve\n");
        return 1;
    }
    /* Our copies of the fds are not needed: the daemon holds its own. */
    if (read_line(fd, line, sizeof(line)) < 0 || sscanf(line, "exit %d", &status) != 1) {
        fprintf(stderr, "berth: the server ended the session\n");
        return 1;
    }
    return status;
}

/* Commands that would read files on this host for the remote user. */
static bool local_files(int argc, char **argv)
{
    if (strcmp(argv[0], "certs:add") == 0 || strcmp(argv[0], "git:clone") == 0)
        return true;
    if (strcmp(argv[0], "keys:add") == 0)
        return strcmp(argv[argc - 1], "-") != 0;
    return false;
}

static int run_cli(const char *socket_path, const char *tenant, int argc, char **argv)
{
    _cleanup_close_ int fd = -1;
    char line[512], token[SHA256_HEX_LEN + 1], url[256];

    if (local_files(argc, argv)) {
        fprintf(stderr, "berth: '%s' over ssh reads no file of the server: give the key on stdin "
                "(ssh ... keys:add - < KEY.pub), or use the CLI with a token\n", argv[0]);
        return 2;
    }
    fd = connect_daemon(socket_path);
    if (fd < 0) {
        fprintf(stderr, "berth: cannot reach berth serve at %s: %s\n", socket_path, strerror(-fd));
        return 1;
    }
    if (send_hello(fd, "cli", tenant, "", false) < 0 || read_line(fd, line, sizeof(line)) < 0 ||
        sscanf(line, "token %64s %255s", token, url) != 2) {
        fprintf(stderr, "berth: the server refused the session\n");
        return 1;
    }
    setenv("BERTH_URL", url, 1);
    setenv("BERTH_TOKEN", token, 1);
    /* The connection stays open while the command runs: closing it ends the token. */
    return cli_run(argv[0], argc - 1, argv + 1);
}

int gitshell_main(int argc, char **argv)
{
    const char *socket_path = NULL, *tenant, *orig = getenv("SSH_ORIGINAL_COMMAND");
    _cleanup_free_ char *cmd = NULL;
    char *words[MAX_WORDS];
    int n;

    if (argc == 4 && strcmp(argv[1], "--socket") == 0)
        socket_path = argv[2];
    else
        return usage();
    tenant = argv[3];
    if (!orig || !*orig) {
        printf("Hi %s! berth has no shell here. Push with\n"
               "  git push ssh://USER@HOST/APP.git main\n"
               "and run berth commands with `ssh USER@HOST COMMAND` (try `help`).\n", tenant);
        return 0;
    }
    cmd = xstrdup(orig);
    n = split_command(cmd, words);
    if (n < 0)
        return 2;
    if (n == 0)
        return usage();
    if (strcmp(words[0], "git-receive-pack") == 0 || strcmp(words[0], "git-upload-pack") == 0) {
        if (n != 2) {
            fprintf(stderr, "berth: usage: %s 'APP.git'\n", words[0]);
            return 2;
        }
        return run_git(socket_path, tenant, words[0], words[1]);
    }
    return run_cli(socket_path, tenant, n, words);
}

/* ===================================================================== daemon side */

struct session_token {
    struct session_token *next;
    char token[SHA256_HEX_LEN + 1];
    char *tenant;
    int conn;                   /* the ssh side's connection: its end ends the token */
};

static struct {
    struct server *s;
    char *path;
    int listen_fd;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t idle;
    unsigned active;
    struct session_token *tokens;
} gs = { .listen_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER };

bool gitshell_authenticate(const char *token, struct tenants_principal *ret)
{
    bool found = false;

    pthread_mutex_lock(&gs.lock);
    for (struct session_token *t = gs.tokens; t && !found; t = t->next) {
        if (secure_streq(t->token, token)) {
            memset(ret, 0, sizeof(*ret));
            ret->tenant = xstrdup(t->tenant);
            ret->role = TENANTS_ROLE_OWNER;
            found = true;
        }
    }
    pthread_mutex_unlock(&gs.lock);
    return found;
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    (void)write_all(fd, sb.buf, sb.len);
}

struct hello {
    char buf[HELLO_MAX + 1];
    const char *kind, *tenant, *arg;
    int fds[3];
    int n_fds;
};

static int read_hello(int conn, struct hello *h)
{
    union { struct cmsghdr h; char space[CMSG_SPACE(3 * sizeof(int))]; } cm;
    struct iovec iov = { .iov_base = h->buf, .iov_len = HELLO_MAX };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.space,
                          .msg_controllen = sizeof(cm.space) };
    struct timeval tv = { .tv_sec = 10 };
    ssize_t n;
    size_t l1, l2;

    h->n_fds = 0;
    (void)setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return -EPROTO;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (size_t i = 0; i < k; i++) {
                int fd;

                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (h->n_fds < 3)
                    h->fds[h->n_fds++] = fd;
                else
                    close(fd);
            }
        }
    h->buf[n] = '\0';
    h->kind = h->buf;
    l1 = strlen(h->kind);
    if (l1 + 1 >= (size_t)n)
        return -EPROTO;
    h->tenant = h->buf + l1 + 1;
    l2 = strlen(h->tenant);
    if (l1 + l2 + 2 >= (size_t)n + 1)
        return -EPROTO;
    h->arg = h->tenant + l2 + 1;
    if ((msg.msg_flags & MSG_CTRUNC) || !*h->tenant)
        return -EPROTO;
    return 0;
}

static bool tenant_exists(const char *tenant)
{
    _cleanup_json_ json_t *rec = NULL;

    return strcmp(tenant, MODEL_ADMIN_TENANT) == 0 || tenants_load(&gs.s->model, tenant, &rec, NULL) == 0;
}

void gitshell_limits(struct server *s, struct receiver_options *opts)
{
    _cleanup_json_ json_t *settings = NULL;
    const json_t *git, *v;
    uint64_t bytes;

    if (model_settings_load(&s->model, &settings, NULL) < 0 || !(git = json_object_get(settings, "git")))
        return;
    v = json_object_get(git, "max_push");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        opts->max_request_bytes = (size_t)json_integer_value(v);
    else if (json_is_string(v) && units_parse_size(json_string_value(v), &bytes) && bytes > 0)
        opts->max_request_bytes = (size_t)bytes;
    else if (v)
        log_warn("berth.json: git.max_push must be a positive size (\"512M\", or bytes); the default holds");
    v = json_object_get(git, "max_objects");
    if (json_is_integer(v) && json_integer_value(v) > 0)
        opts->max_objects = (size_t)json_integer_value(v);
    else if (v)
        log_warn("berth.json: git.max_objects must be a positive number; the default holds");
}

/* A git session on the passed fds; returns its exit status. Sets *ret_repo when a ref moved. */
static int serve_git(const struct hello *h, char **ret_repo)
{
    struct tenants_principal who = { .tenant = (char *)h->tenant, .role = TENANTS_ROLE_OWNER };
    bool push = strcmp(h->kind, "git-receive-pack") == 0;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *owner = NULL, *app = xstrdup(h->arg);
    struct deploy_ctx deploy = { 0 };
    struct receiver_options opts = { 0 };
    char *repo;
    bool moved = false;
    int r;

    if (!model_app_name_valid(app) || api_allows(gs.s, &who, app, push ? API_DEPLOY : API_READ, &owner) != 0) {
        say(h->fds[2], "berth: app '%s' does not exist\n", app);
        return 1;
    }
    repo = model_path(&gs.s->model, "apps/%s/repo.git", app);
    deploy.server = gs.s;
    deploy.app = app;
    deploy.tenant = owner;
    opts.repo_path = repo;
    opts.deploy = deploy_on_push;
    opts.settled = deploy_settled;
    opts.deploy_cls = &deploy;
    gitshell_limits(gs.s, &opts);
    r = receiver_session(h->kind, h->fds[0], h->fds[1], &opts, &moved, &err);
    /* A refused push was told through git's own report (ng lines). */
    if (r < 0 && r != -EIO)
        say(h->fds[2], "berth: %s\n", berth_error_msg(&err));
    if (moved)
        *ret_repo = repo;
    else
        free(repo);
    return r < 0 ? 1 : 0;
}

static void serve_cli(int conn, const struct hello *h)
{
    struct session_token *t = xcalloc(1, sizeof(*t));
    char ignored[64];

    if (random_hex(t->token, SHA256_HEX_LEN / 2, NULL) < 0) {
        free(t);
        return;
    }
    t->tenant = xstrdup(h->tenant);
    t->conn = conn;
    pthread_mutex_lock(&gs.lock);
    t->next = gs.tokens;
    gs.tokens = t;
    pthread_mutex_unlock(&gs.lock);
    say(conn, "token %s %s\n", t->token, gs.s->control_url);
    /* The token lives until the ssh side closes the connection. */
    {
        struct timeval tv = { 0 };

        (void)setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    for (;;) {
        ssize_t n = read(conn, ignored, sizeof(ignored));

        /* Only a failed read leaves errno meaningful: 0 (end of file) ends it whatever errno holds. */
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
    pthread_mutex_lock(&gs.lock);
    for (struct session_token **p = &gs.tokens; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    pthread_mutex_unlock(&gs.lock);
    free(t->tenant);
    free(t);
}

static bool peer_is_us(int conn)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    return getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == geteuid();
}

static void session(int conn)
{
    struct hello h = { .n_fds = 0 };
    _cleanup_free_ char *moved_repo = NULL;
    int status = 1;

    if (!peer_is_us(conn) || read_hello(conn, &h) < 0) {
        log_warn("git-shell: a malformed or foreign session on the socket was refused");
        for (int i = 0; i < h.n_fds; i++)
            close(h.fds[i]);
        return;
    }
    if (!tenant_exists(h.tenant)) {
        if (h.n_fds == 3)
            say(h.fds[2], "berth: tenant '%s' does not exist\n", h.tenant);
        say(conn, "exit 1\n");
    } else if (strcmp(h.kind, "cli") == 0) {
        serve_cli(conn, &h);
    } else if ((strcmp(h.kind, "git-receive-pack") == 0 || strcmp(h.kind, "git-upload-pack") == 0) &&
               h.n_fds == 3) {
        status = serve_git(&h, &moved_repo);
        /* The client sees the end when the last copy of its fds closes, then its exit status. */
        for (int i = 0; i < 3; i++)
            close(TAKE_FD(h.fds[i]));
        h.n_fds = 0;
        say(conn, "exit %d\n", status);
    } else {
        say(conn, "exit 2\n");
    }
    for (int i = 0; i < h.n_fds; i++)
        close(h.fds[i]);
    if (moved_repo) {
        _cleanup_error_ struct berth_error *err = NULL;

        (void)close(TAKE_FD(conn));
        if (receiver_repo_maintain(moved_repo, &err) < 0)
            log_warn("repository housekeeping: %s", berth_error_msg(&err));
    }
    if (conn >= 0)
        close(conn);
}

static void *session_main(void *arg)
{
    int conn = (int)(intptr_t)arg;

    session(conn);
    pthread_mutex_lock(&gs.lock);
    if (--gs.active == 0)
        pthread_cond_broadcast(&gs.idle);
    pthread_mutex_unlock(&gs.lock);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int conn = accept4(gs.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        pthread_attr_t attr;
        pthread_t t;

        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                if (errno == EMFILE || errno == ENFILE)
                    sleep(1);
                continue;
            }
            return NULL;    /* shut down */
        }
        pthread_mutex_lock(&gs.lock);
        gs.active++;
        pthread_mutex_unlock(&gs.lock);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, session_main, (void *)(intptr_t)conn) != 0) {
            close(conn);
            pthread_mutex_lock(&gs.lock);
            gs.active--;
            pthread_mutex_unlock(&gs.lock);
        }
        pthread_attr_destroy(&attr);
    }
}

static int listen_unix(const char *path, struct berth_error **err)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    _cleanup_close_ int fd = -1;
    mode_t old;
    int r;

    if (strlen(path) >= sizeof(sun.sun_path))
        return berth_error_plain(err, ENAMETOOLONG, "the git-shell socket path '%s' is too long for a unix "
                                 "socket (use a shorter --home)", path);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return berth_error_make(err, errno, "socket");
    (void)unlink(path);
    /* Only berth's user: sshd runs the forced command as it. */
    old = umask(0077);
    r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (r < 0)
        return berth_error_make(err, errno, "bind '%s'", path);
    if (listen(fd, 64) < 0)
        return berth_error_make(err, errno, "listen '%s'", path);
    return TAKE_FD(fd);
}

int gitshell_start(struct server *s, struct berth_error **err)
{
    _cleanup_error_ struct berth_error *kerr = NULL;
    int fd;

    gs.s = s;
    gs.path = model_path(&s->model, "run/git-shell.sock");
    fd = listen_unix(gs.path, err);
    if (fd < 0)
        return fd;
    gs.listen_fd = fd;
    if (pthread_create(&gs.thread, NULL, accept_main, NULL) != 0) {
        close(TAKE_FD(gs.listen_fd));
        return berth_error_plain(err, EAGAIN, "cannot start the git-shell listener");
    }
    gs.started = true;
    /* A daemon moved to another home or binary names the new ones in the forced commands. */
    if (keys_render(s, gs.path, &kerr) < 0)
        log_warn("writing authorized_keys: %s", berth_error_msg(&kerr));
    return 0;
}

void gitshell_stop(struct server *s)
{
    struct timespec until;
    (void)s;

    if (!gs.started)
        return;
    (void)shutdown(gs.listen_fd, SHUT_RDWR);
    (void)pthread_join(gs.thread, NULL);
    close(TAKE_FD(gs.listen_fd));
    (void)unlink(gs.path);
    gs.started = false;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_WAIT_S;
    pthread_mutex_lock(&gs.lock);
    /* Commands over ssh end now (their session's read returns); git sessions run to their end. */
    for (struct session_token *t = gs.tokens; t; t = t->next)
        (void)shutdown(t->conn, SHUT_RDWR);
    while (gs.active && pthread_cond_timedwait(&gs.idle, &gs.lock, &until) == 0)
        ;
    if (gs.active)
        log_warn("git-shell: %u ssh session(s) still running at stop", gs.active);
    pthread_mutex_unlock(&gs.lock);
}
