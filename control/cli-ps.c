/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-ps: the app's processes, as Heroku's and Dokku's CLIs show
 * them: `berth ps APP [--json]`, `ps:scale APP TYPE=N...`, `ps:restart
 * APP [TYPE]`, `ps:stop APP [run.N]`, `ps:start APP`, over api-ps.c's
 * routes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"

/* "1h 02m", "3m 04s", "12s": how long a process has been up. */
static void format_uptime(long long secs, char *buf, size_t len)
{
    if (secs >= 3600)
        snprintf(buf, len, "%lldh %02lldm", secs / 3600, secs / 60 % 60);
    else if (secs >= 60)
        snprintf(buf, len, "%lldm %02llds", secs / 60, secs % 60);
    else
        snprintf(buf, len, "%llds", secs);
}

static void print_process(const json_t *p)
{
    const char *state = json_get_str(p, "state");
    long long mem = json_integer_value(json_object_get(p, "memory"));
    char up[32] = "", memtext[32] = "-";

    if (state && strcmp(state, "up") == 0)
        format_uptime(json_integer_value(json_object_get(p, "uptime")), up, sizeof(up));
    if (mem > 0)
        snprintf(memtext, sizeof(memtext), "%.1fM", (double)mem / (1 << 20));
    printf("%-12s %-9s %-10s v%-4lld restarts=%-3lld memory=%-8s %s", json_get_str(p, "name"), state ? state : "?",
           up, (long long)json_integer_value(json_object_get(p, "release")),
           (long long)json_integer_value(json_object_get(p, "restarts")), memtext, json_get_str(p, "since"));
    if (json_object_get(p, "exit_status"))
        printf("  (last exit %lld)", (long long)json_integer_value(json_object_get(p, "exit_status")));
    if (json_object_get(p, "restart_in"))
        printf("  (restart in %llds)", (long long)json_integer_value(json_object_get(p, "restart_in")));
    printf("\n");
}

static void print_ps(const char *app, const json_t *doc)
{
    const json_t *procs = json_object_get(doc, "processes");
    const char *type;
    json_t *v, *p;
    size_t i;

    if (json_is_true(json_object_get(doc, "stopped")))
        printf("=== %s is stopped (berth ps:start %s)\n", app, app);
    json_object_foreach(json_object_get(doc, "formation"), type, v) {
        printf("=== %s: %lld\n", type, (long long)json_integer_value(v));
        json_array_foreach(procs, i, p)
            if (strcmp(json_get_str(p, "type"), type) == 0)
                print_process(p);
    }
    if (json_object_size(json_object_get(doc, "formation")) == 0)
        printf("=== %s has no release yet (push to deploy)\n", app);
    json_array_foreach(procs, i, p) {
        if (strcmp(json_get_str(p, "type"), "run") != 0)
            continue;
        printf("=== run: one-off (%s): %s\n", json_is_true(json_object_get(p, "attached")) ? "attached" : "detached",
               json_get_str(p, "command"));
        printf("%-12s %-9s %s\n", json_get_str(p, "name"), json_get_str(p, "state"), json_get_str(p, "since"));
    }
}

int cli_ps(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int as_json = cli_json_flag(argc, argv, "ps APP [--json]");

    if (as_json < 0)
        return 2;
    if (cli_app_request("GET", argv[0], "/dynos", NULL, &doc) < 0)
        return 1;
    if (as_json)
        cli_print_json(doc);
    else
        print_ps(argv[0], doc);
    return 0;
}

/* "web=2" into body["web"] = 2; -1 (said) when malformed. */
static int add_count(json_t *body, const char *arg)
{
    const char *eq = strchr(arg, '=');
    char *end;
    long n;

    if (!eq || eq == arg) {
        fprintf(stderr, "berth: '%s' is not TYPE=COUNT\nusage: berth ps:scale APP TYPE=COUNT...\n", arg);
        return -1;
    }
    errno = 0;
    n = strtol(eq + 1, &end, 10);
    if (!eq[1] || *end || errno || n < 0) {
        fprintf(stderr, "berth: '%s': the count must be a number, 0 or more\n"
                "usage: berth ps:scale APP TYPE=COUNT...\n", arg);
        return -1;
    }
    {
        _cleanup_free_ char *type = xstrndup(arg, (size_t)(eq - arg));

        json_object_set_new(body, type, json_integer(n));
    }
    return 0;
}

int cli_ps_scale(int argc, char **argv)
{
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;

    for (int i = 1; i < argc; i++)
        if (add_count(body, argv[i]) < 0)
            return 2;
    printf("Scaling %s processes... ", argv[0]);
    fflush(stdout);
    if (cli_app_request("PATCH", argv[0], "/formation", body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("done\n");
    print_ps(argv[0], doc);
    return 0;
}

/* Prints "<doing>... ", POSTs body to the app's `sub`, then "failed" or `done`: 0, or 1 (the error said). */
static int post_action(const char *app, const char *sub, const json_t *body, const char *doing, const char *done)
{
    _cleanup_json_ json_t *doc = NULL;

    printf("%s... ", doing);
    fflush(stdout);
    if (cli_app_request("POST", app, sub, body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("%s\n", done);
    return 0;
}

static int action(const char *app, const char *what, const char *type, const char *doing)
{
    _cleanup_json_ json_t *body = json_object();
    _cleanup_free_ char *sub = xasprintf("/actions/%s", what);
    _cleanup_free_ char *label = xasprintf("%s %s%s%s", doing, app, type ? " " : "", type ? type : "");

    if (type)
        json_object_set_new(body, "type", json_string(type));
    return post_action(app, sub, body, label, "done");
}

int cli_ps_restart(int argc, char **argv)
{
    return action(argv[0], "restart", argc > 1 ? argv[1] : NULL, "Restarting");
}

/* `ps:stop APP run.N`: one one-off run, as Heroku's `ps:stop run.1828`. */
static int stop_run(const char *app, const char *dyno)
{
    _cleanup_free_ char *sub = xasprintf("/dynos/%s/actions/stop", dyno);
    _cleanup_free_ char *label = xasprintf("Stopping %s of %s", dyno, app);

    return post_action(app, sub, NULL, label, "done (SIGTERM now, SIGKILL after the app's grace period)");
}

int cli_ps_stop(int argc, char **argv)
{
    if (argc > 1)
        return stop_run(argv[0], argv[1]);
    return action(argv[0], "stop", NULL, "Stopping");
}

int cli_ps_start(int argc, char **argv)
{
    (void)argc;
    return action(argv[0], "start", NULL, "Starting");
}
