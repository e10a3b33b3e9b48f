/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/instance: one running process of a release (see instance.h).
 * The container comes from the runner; this file adds what Heroku's dyno
 * manager does around it: the environment ($PORT, $DYNO, config vars,
 * .profile.d), the boot wait, the app's output handed to the log thread
 * (applog.h: `timestamp app[web.1]: line` in the app's log, and Heroku's
 * `heroku[web.1]:` lines for its start and stop), and the stop with a
 * grace period.
 */
#include "control/instance.h"
#include "control/quota.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/applog.h"

/* The app's uid and gid inside its container: never root. */
#define APP_UID 1000
#define APP_GID 1000

struct instance {
    char *app;
    char *dyno;                   /* "web.1" */
    char *state_dir;
    char *cgroup;
    unsigned long uid_base, gid_base;
    struct runner_container *container;
    struct applog_pump *pump;     /* the app's stdout+stderr, into its log */
    void (*output)(void *cls, const char *line);   /* also gets each line (one-off runs) */
    void *output_cls;
    char *source;                 /* "heroku[web.1]", for its platform lines */
    const char *state;            /* Heroku's word for its log lines: "starting", "up" */
    bool one_off;                 /* instance_run_once(): it ends "complete", not "down" */
    bool exit_reported;           /* "Process exited with status N" is in the log already */
    /*
     * The router holds a reference while a published route table or one of
     * its channels names the instance; freeing waits for the last. The
     * lock also guards `container` against a channel being opened while
     * the instance stops.
     */
    pthread_mutex_t ref_lock;
    pthread_cond_t ref_cond;
    unsigned refs;
    bool stopping;                /* under ref_lock: no new channels */
    uint64_t serial;              /* unique in this daemon's life */
    int grace_ms;                 /* for the drain and from SIGTERM to SIGKILL when it retires */
};

static atomic_uint_fast64_t next_serial = 1;

void instance_hold(struct instance *in)
{
    pthread_mutex_lock(&in->ref_lock);
    in->refs++;
    pthread_mutex_unlock(&in->ref_lock);
}

void instance_unhold(struct instance *in)
{
    pthread_mutex_lock(&in->ref_lock);
    if (--in->refs == 0)
        pthread_cond_broadcast(&in->ref_cond);
    pthread_mutex_unlock(&in->ref_lock);
}

/* Waits until nothing holds `in`, at most timeout_ms; whether it got there. */
static bool wait_unheld(struct instance *in, int timeout_ms)
{
    struct timespec deadline;
    bool unheld;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&in->ref_lock);
    while (in->refs && pthread_cond_timedwait(&in->ref_cond, &in->ref_lock, &deadline) == 0)
        ;
    unheld = in->refs == 0;
    pthread_mutex_unlock(&in->ref_lock);
    return unheld;
}

int instance_connect(struct instance *in, int *ret_fd, struct berth_error **err)
{
    /* No lock across the wait: the caller owns `in`, so nothing frees the container meanwhile. */
    if (!in->container)
        return berth_error_plain(err, ECONNREFUSED, "%s of '%s' has stopped", in->dyno, in->app);
    return runner_connect(in->container, ret_fd, err);
}

static void instance_free(struct instance *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->ref_lock);
    while (in->refs)
        pthread_cond_wait(&in->ref_cond, &in->ref_lock);
    pthread_mutex_unlock(&in->ref_lock);
    pthread_mutex_destroy(&in->ref_lock);
    pthread_cond_destroy(&in->ref_cond);
    applog_pump_finish(in->pump);
    if (in->container)
        runner_container_free(in->container);
    free(in->app);
    free(in->dyno);
    free(in->source);
    free(in->state_dir);
    free(in->cgroup);
    free(in);
}

/* Single-quotes s for bash. */
static void shell_quote(struct strbuf *sb, const char *s)
{
    strbuf_addch(sb, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            strbuf_addstr(sb, "'\\''");
        else
            strbuf_addch(sb, *s);
    }
    strbuf_addch(sb, '\'');
}

/* Bash's builtins and reserved words: a command naming one as its first word is bash's to run. */
static const char *const bash_own_words[] = {
    "!", ".", ":", "[", "[[", "]]", "alias", "bg", "bind", "break", "builtin", "caller", "case",
    "cd", "command", "compgen", "complete", "compopt", "continue", "coproc", "declare", "dirs",
    "disown", "do", "done", "echo", "elif", "else", "enable", "esac", "eval", "exec", "exit",
    "export", "false", "fc", "fg", "fi", "for", "function", "getopts", "hash", "help", "history",
    "if", "in", "jobs", "kill", "let", "local", "logout", "mapfile", "popd", "printf", "pushd",
    "pwd", "read", "readarray", "readonly", "return", "select", "set", "shift", "shopt", "source",
    "suspend", "test", "then", "time", "times", "trap", "true", "type", "typeset", "ulimit",
    "umask", "unalias", "unset", "until", "wait", "while", "{", "}",
};

/*
 * The length of the command's first word if the command is plain: words of
 * letters, digits and `_./:@%+,=-` separated by spaces, so that bash would
 * read it as one simple command with nothing to expand, quote or redirect,
 * and a first word that is neither an assignment nor bash's own; else 0.
 */
static size_t plain_command_word(const char *cmd)
{
    size_t first = strcspn(cmd, " ");

    if (first == 0 || memchr(cmd, '=', first))
        return 0;
    for (const char *p = cmd; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_./:@%+,=- ", *p)))
            return 0;
    for (size_t i = 0; i < sizeof(bash_own_words) / sizeof(*bash_own_words); i++)
        if (strlen(bash_own_words[i]) == first && !strncmp(cmd, bash_own_words[i], first))
            return 0;
    return first;
}

/*
 * Heroku's start-up order (HEROKU.md §1.4): cd /app, source .profile.d
 * scripts and .profile, then exec the command through the shell so that
 * $PORT expands. A plain command (plain_command_word()) whose program is
 * found, a file and no shell function of the profile's, is exec'd by this
 * shell itself, as `bash -c` would exec it: the second bash's start was ~3
 * ms of an instance's (traced 2026-12-06). Anything else, a missing
 * program included (for bash's own "command not found"), goes through
 * `bash -c` as before.
 */
static void start_script(struct strbuf *script, const char *command)
{
    size_t first = plain_command_word(command);

    strbuf_addstr(script, "cd /app || exit 1; "
                  "for f in /app/.profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done; "
                  "[ -s /app/.profile ] && . /app/.profile; hash -r; ");
    if (first) {
        _cleanup_free_ char *word = xstrndup(command, first);
        _cleanup_strbuf_ struct strbuf q = STRBUF_INIT;

        shell_quote(&q, word);
        if (strchr(word, '/'))
            strbuf_addf(script, "[ -f %s ] && [ -x %s ] && ", q.buf, q.buf);
        else
            strbuf_addf(script, "hash -- %s 2>/dev/null && ", q.buf);
        strbuf_addf(script, "! declare -F -- %s >/dev/null && exec %s; ", q.buf, command);
    }
    strbuf_addstr(script, "exec bash -c ");
    shell_quote(script, command);
}

static int wait_until_bound(struct instance *in, struct berth_error **err)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        _cleanup_error_ struct berth_error *cerr = NULL;
        int fd = -1, status, r;
        long elapsed;

        r = runner_connect(in->container, &fd, &cerr);
        if (r >= 0) {
            close(fd);
            return 0;
        }
        if (runner_wait(in->container, 0, &status, NULL) >= 0) {
            if (WIFEXITED(status))
                return berth_error_plain(err, ECHILD, "%s process exited with status %d before binding $PORT",
                                         in->dyno, WEXITSTATUS(status));
            return berth_error_plain(err, ECHILD, "%s process was killed by signal %d before binding $PORT",
                                     in->dyno, WTERMSIG(status));
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > INSTANCE_BOOT_TIMEOUT_MS)
            return berth_error_plain(err, ETIMEDOUT,
                                     "Error R10 (Boot timeout) -> %s process failed to bind to $PORT within %d seconds of launch",
                                     in->dyno, INSTANCE_BOOT_TIMEOUT_MS / 1000);
        /*
         * Polls at a twentieth of the time waited so far, 5 to 100 ms: the
         * bind is seen within ~5% of the app's own start (a deploy waits on
         * it), for a few hundred connects over a minute's boot. A fixed 5 ms
         * for 20 tries and then 100 ms made an app that binds at ~120 ms
         * (Python's http.server here) wait until 200 ms half the time.
         */
        usleep((useconds_t)(elapsed < 100 ? 5 : elapsed > 2000 ? 100 : elapsed / 20) * 1000);
    }
}

/*
 * The process's environment, Heroku's way round: the buildpack's defaults,
 * then the app's config vars over them, then berth's own variables, which
 * win over a user's PORT or DYNO.
 */
static char **make_envp(const struct instance_spec *spec, const char *dyno, uint16_t port)
{
    const json_t *layers[] = { spec->defaults, spec->config };
    size_t n = json_object_size(spec->defaults) + json_object_size(spec->config) + 8, i = 0;
    char **envp = xcalloc(n + 1, sizeof(*envp));
    const char *key;
    json_t *value;

    for (size_t l = 0; l < sizeof(layers) / sizeof(*layers); l++) {
        json_object_foreach((json_t *)layers[l], key, value) {
            if (!json_is_string(value))
                continue;
            /* A config var replaces a buildpack default of the same name. */
            if (l == 0 && json_object_get(spec->config, key))
                continue;
            envp[i++] = xasprintf("%s=%s", key, json_string_value(value));
        }
    }
    if (port)
        envp[i++] = xasprintf("PORT=%u", port);
    envp[i++] = xasprintf("DYNO=%s", dyno);
    envp[i++] = xasprintf("BERTH_APP_NAME=%s", spec->app);
    envp[i++] = xasprintf("BERTH_RELEASE_VERSION=v%u", spec->release);
    envp[i++] = xstrdup("HOME=/app");
    envp[i++] = xstrdup("PATH=/app/bin:/usr/local/bin:/usr/bin:/bin");
    envp[i] = NULL;
    return envp;
}

/* Starts the container; its output goes to the log thread (applog_pump_add()). */
static int spawn(struct server *s, const struct instance_spec *spec, struct instance *in, uint16_t port,
                 struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf script = STRBUF_INIT;
    _cleanup_strv_ char **envp = NULL;
    _cleanup_close_ int pipe_wr = -1, pipe_rd = -1;
    char suffix[17];
    int pipefd[2], r;

    r = server_tenant_ids(s, spec->tenant, &in->uid_base, &in->gid_base, err);
    if (r < 0)
        return r;
    r = random_hex(suffix, 8, err);
    if (r < 0)
        return r;
    in->state_dir = model_path(&s->model, "run/instances/%s-v%u-%s-%s", spec->app, spec->release, in->dyno, suffix);
    if (mkdir(in->state_dir, 0700) < 0)
        return berth_error_make(err, errno, "mkdir '%s'", in->state_dir);
    if (s->cgroups) {
        _cleanup_free_ char *app_cg = model_app_cgroup_of(&s->model, spec->tenant, spec->app);

        in->cgroup = xasprintf("%s/%s-v%u-%s", app_cg, in->dyno, spec->release, suffix);
    }

    if (!spec->stdio) {
        if (pipe2(pipefd, O_CLOEXEC) < 0)
            return berth_error_make(err, errno, "pipe");
        pipe_rd = pipefd[0];
        pipe_wr = pipefd[1];
    }

    start_script(&script, spec->command);
    envp = make_envp(spec, in->dyno, port);
    {
        const char *lowers[] = { spec->slug_dir, NULL };
        const char *argv[] = { "/bin/bash", "-c", script.buf, NULL };
        /* A spec that names no limits (a one-off run) gets a process type's defaults. */
        struct runner_limits limits = spec->limits;
        if (!limits.memory_bytes && !limits.pids_max)
            limits = (struct runner_limits){ .memory_bytes = QUOTA_INSTANCE_MEMORY, .pids_max = QUOTA_INSTANCE_PIDS };
        struct runner_spec rs = {
            .name = in->dyno,
            .hostname = in->dyno,
            .uid_base = in->uid_base,
            .gid_base = in->gid_base,
            .id_count = TENANT_ID_SLICE,
            .lower_dirs = lowers,
            .stack_dir = s->stack_dir,
            .state_dir = in->state_dir,
            .argv = argv,
            .envp = (const char *const *)envp,
            .cwd = "/app",
            .uid = APP_UID,
            .gid = APP_GID,
            .stdout_fd = spec->stdio ? spec->stdio->out : pipe_wr,
            .stderr_fd = spec->stdio ? spec->stdio->err : pipe_wr,
            .stdin_fd = spec->stdio ? spec->stdio->in : -1,
            .port = port,
            .cgroup = in->cgroup,
            .limits = limits,
            .network = spec->network,
        };

        /* The tenant's cgroup above it holds the tenant's limits before anything of it runs. */
        r = quota_apply_tenant(s, spec->tenant, err);
        if (r == 0)
            r = runner_spawn(s->runner, &rs, &in->container, err);
        if (r < 0)
            return berth_error_wrap(err, "starting %s", in->dyno);
    }
    if (spec->stdio)
        return 0;
    close(TAKE_FD(pipe_wr));
    return applog_pump_add(s->applog, spec->app, in->dyno, TAKE_FD(pipe_rd), in->output, in->output_cls,
                           &in->pump, err);
}

/*
 * "heroku[run.1]: State changed from starting to up" in the app's log, for
 * one-off processes; the formation says the states of the processes it
 * runs (they outlive one instance: crashed, starting again).
 */
static void set_state(struct server *s, struct instance *in, const char *state)
{
    if (in->one_off)
        applog_emit(s->applog, in->app, in->source, "State changed from %s to %s", in->state, state);
    in->state = state;
}

int instance_report_exit(struct server *s, struct instance *in)
{
    int status, code;

    if (!in->container || runner_wait(in->container, 0, &status, NULL) < 0)
        return -EAGAIN;
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (!in->exit_reported)
        applog_emit(s->applog, in->app, in->source, "Process exited with status %d", code);
    in->exit_reported = true;
    return code;
}

/* Heroku's words for a process that ended: its exit status (128 + N for signal N), then its state. */
static void log_exit(struct server *s, struct instance *in)
{
    if (instance_report_exit(s, in) >= 0)
        set_state(s, in, in->one_off ? "complete" : "down");
}

static struct instance *instance_new(const struct instance_spec *spec)
{
    struct instance *in = xcalloc(1, sizeof(*in));

    in->state = "starting";
    pthread_mutex_init(&in->ref_lock, NULL);
    pthread_cond_init(&in->ref_cond, NULL);
    in->app = xstrdup(spec->app);
    in->dyno = xasprintf("%s.%u", spec->process_type, spec->number ? spec->number : 1);
    in->source = xasprintf("heroku[%s]", in->dyno);
    in->serial = atomic_fetch_add(&next_serial, 1);
    in->grace_ms = spec->grace_ms ? (int)spec->grace_ms : INSTANCE_STOP_GRACE_MS;
    return in;
}

int instance_start(struct server *s, const struct instance_spec *spec, struct instance **ret,
                   void (*progress)(void *cls, const char *line), void *cls, struct berth_error **err)
{
    struct instance *in = instance_new(spec);
    int r;

    /* Only web processes get $PORT and must bind it (Heroku's R10); the others are up once started. */
    bool web = strcmp(spec->process_type, "web") == 0;

    strbuf_emitf(progress, cls, "       Starting process with command `%s`", spec->command);
    applog_emit(s->applog, spec->app, in->source, "Starting process with command `%s`", spec->command);
    r = spawn(s, spec, in, web ? INSTANCE_PORT : 0, err);
    if (r == 0 && web)
        r = wait_until_bound(in, err);
    if (r == 0)
        set_state(s, in, "up");
    if (r < 0) {
        /* A failed start leaves nothing behind: no process, no files. */
        instance_stop_and_free(s, in, 0);
        return r;
    }
    *ret = in;
    return 0;
}

/*
 * Waits for a one-off process to end, handing its output to in->output as
 * it comes (the log thread never calls a consumer itself); gives up when
 * `cancel` (may be NULL) turns true.
 */
static int wait_run(struct instance *in, int timeout_ms, const atomic_bool *cancel, int *ret_status,
                    struct berth_error **err)
{
    struct timespec start, now;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int r = runner_wait(in->container, 0, ret_status, err);
        long elapsed;

        if (r != -ETIMEDOUT)
            return r;
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > timeout_ms)
            return berth_error_plain(err, ETIMEDOUT, "%s did not finish within %d minutes", in->dyno,
                                     timeout_ms / 60000);
        if (cancel && atomic_load(cancel))
            return berth_error_plain(err, ECANCELED, "%s was stopped before it finished",
                                     in->dyno);
        /* Until the pipe's end (the process is gone): then only the exit status is missing. */
        if (applog_pump_deliver(in->pump, 100) == 1)
            usleep(10000);
    }
}

/* instance_run_start() with an output consumer. */
static int run_start(struct server *s, const struct instance_spec *spec,
                     void (*output)(void *cls, const char *line), void *cls, struct instance **ret,
                     struct berth_error **err)
{
    struct instance *in = instance_new(spec);
    int r;

    in->output = output;
    in->output_cls = cls;
    in->one_off = true;
    applog_emit(s->applog, spec->app, in->source, "Starting process with command `%s`", spec->command);
    r = spawn(s, spec, in, 0, err);
    if (r < 0) {
        instance_stop_and_free(s, in, 0);
        return r;
    }
    set_state(s, in, "up");
    *ret = in;
    return 0;
}

int instance_run_start(struct server *s, const struct instance_spec *spec, struct instance **ret,
                       struct berth_error **err)
{
    return run_start(s, spec, NULL, NULL, ret, err);
}

int instance_wait(struct instance *in, int timeout_ms, int *ret_status, struct berth_error **err)
{
    return runner_wait(in->container, timeout_ms, ret_status, err);
}

int instance_run_once(struct server *s, const struct instance_spec *spec, int timeout_ms,
                      void (*output)(void *cls, const char *line), void *cls, int *ret_status,
                      struct berth_error **err)
{
    struct instance *in = NULL;
    int status = 0, r;

    r = run_start(s, spec, output, cls, &in, err);
    if (r < 0)
        return r;
    r = wait_run(in, timeout_ms, spec->cancel, &status, err);
    /* Finishes the pump too: every line is out before this returns. */
    instance_stop_and_free(s, in, 0);
    if (r < 0)
        return r;
    *ret_status = status;
    return 0;
}

const char *instance_dyno(const struct instance *in)
{
    return in->dyno;
}

uint64_t instance_serial(const struct instance *in)
{
    return in->serial;
}

int instance_grace_ms(const struct instance *in)
{
    return in->grace_ms;
}

int instance_exit_fd(const struct instance *in)
{
    return in->container ? runner_container_exit_fd(in->container) : -1;
}

uint64_t instance_memory(const struct instance *in)
{
    uint64_t bytes = 0;

    if (in->cgroup && runner_cgroup_memory_current(in->cgroup, &bytes, NULL) < 0)
        return 0;
    return bytes;
}

/* ---------------------------------------------------------------- the router's backend */

static int backend_open_channel(void *backend, int *ret_fd)
{
    struct instance *in = backend;
    _cleanup_error_ struct berth_error *err = NULL;
    int r = -ECONNREFUSED;

    pthread_mutex_lock(&in->ref_lock);
    if (in->container && !in->stopping)
        r = runner_agent_open(in->container, ret_fd, &err);
    pthread_mutex_unlock(&in->ref_lock);
    return r < 0 ? r : 0;
}

static const char *backend_name(void *backend)
{
    return instance_dyno(backend);
}

static void backend_hold(void *backend)
{
    instance_hold(backend);
}

static void backend_release(void *backend)
{
    instance_unhold(backend);
}

/* The runner's answer in the router's words: the same fields (router.h, runner.h). */
static int backend_answer(int channel_fd, struct router_answer *ret)
{
    struct runner_agent_answer a;
    int r = runner_agent_answer(channel_fd, &a);

    if (r != 1)
        return r;
    ret->is_stock = a.is_stock;
    ret->id = a.id;
    ret->sock = a.sock;
    ret->error = a.error;
    ret->n_stock = a.n_stock;
    memcpy(ret->stock, a.stock, a.n_stock * sizeof(*a.stock));
    ret->port = a.port;
    return 1;
}

_Static_assert(ROUTER_STOCK_MAX == RUNNER_AGENT_STOCK_MAX, "a stock answer fits the router's");

const struct router_backend_ops instance_backend_ops = {
    .open_channel = backend_open_channel,
    .request = runner_agent_request,
    .ask_stock = runner_agent_ask_stock,
    .answer = backend_answer,
    .name = backend_name,
    .hold = backend_hold,
    .release = backend_release,
};

/* Heroku's line before a running process is stopped: SIGTERM (SIGKILL with no grace period). */
static void log_stopping(struct server *s, struct instance *in, int grace_ms)
{
    int status;

    if (in->container && runner_wait(in->container, 0, &status, NULL) == -ETIMEDOUT)
        applog_emit(s->applog, in->app, in->source, "Stopping all processes with %s",
                    grace_ms > 0 ? "SIGTERM" : "SIGKILL");
}

void instance_stop_and_free(struct server *s, struct instance *in, int grace_ms)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct runner_container *c;

    if (!in)
        return;
    pthread_mutex_lock(&in->ref_lock);
    in->stopping = true;
    pthread_mutex_unlock(&in->ref_lock);
    log_stopping(s, in, grace_ms);
    if (in->container && runner_stop(in->container, grace_ms, &err) < 0)
        log_warn("stopping %s of '%s': %s", in->dyno, in->app, berth_error_msg(&err));
    berth_error_release(&err);
    log_exit(s, in);
    applog_pump_finish(TAKE_PTR(in->pump));
    pthread_mutex_lock(&in->ref_lock);
    c = in->container;
    in->container = NULL;
    pthread_mutex_unlock(&in->ref_lock);
    if (c)
        runner_container_free(c);
    if (in->state_dir && access(in->state_dir, F_OK) == 0 && runner_remove_tree(s->runner, in->state_dir, in->uid_base, in->gid_base,
                                            TENANT_ID_SLICE, &err) < 0)
        log_warn("removing '%s': %s", in->state_dir, berth_error_msg(&err));
    instance_free(in);
}

struct retire_job {
    struct server *server;
    struct instance *instance;
};

static void *retire_thread(void *arg)
{
    struct retire_job *job = arg;

    /*
     * The route no longer names it; requests already on their way finish
     * first (the router drops a retired table, its pool and its channels
     * once their last request is done, and its sweep closes idle channels).
     */
    if (!wait_unheld(job->instance, job->instance->grace_ms))
        log_warn("%s of '%s' still had requests after %d ms; stopping it", job->instance->dyno,
                 job->instance->app, job->instance->grace_ms);
    instance_stop_and_free(job->server, job->instance, job->instance->grace_ms);
    pthread_mutex_lock(&job->server->retire_lock);
    if (--job->server->retiring == 0)
        pthread_cond_broadcast(&job->server->retire_cond);
    pthread_mutex_unlock(&job->server->retire_lock);
    free(job);
    return NULL;
}

void instance_retire(struct server *s, struct instance *in)
{
    struct retire_job *job = xcalloc(1, sizeof(*job));
    pthread_t t;

    job->server = s;
    job->instance = in;
    pthread_mutex_lock(&s->retire_lock);
    s->retiring++;
    pthread_mutex_unlock(&s->retire_lock);
    if (pthread_create(&t, NULL, retire_thread, job) != 0) {
        retire_thread(job);
        return;
    }
    pthread_detach(t);
}
