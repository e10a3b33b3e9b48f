/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-logs: `berth logs APP [-t] [-n N] [-p TYPE|DYNO] [--source
 * app|router]`, Heroku's `heroku logs`, over GET /apps/<app>/logs
 * (api-logs.c). The lines are printed as the API sends them; with -t the
 * answer stays open and each new line is printed as it arrives, until the
 * user interrupts it or the server stops.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "control/applog.h"
#include "control/cli-internal.h"

#define LOGS_USAGE "usage: berth logs APP [-t|--tail] [-n|--num N] [-p|--ps TYPE|DYNO] [--source app|router]"

struct logs_args {
    const char *app;
    bool tail;
    long lines;                   /* -1: the server's default */
    const char *ps, *source;
};

/* The value of an option that takes one ("-n 5"), or NULL (said) when it is missing. */
static const char *option_value(int argc, char **argv, int *k)
{
    if (*k + 1 >= argc) {
        fprintf(stderr, "berth: '%s' needs a value\n" LOGS_USAGE "\n", argv[*k]);
        return NULL;
    }
    return argv[++*k];
}

/* 0, or 2 (said) for a usage error. */
static int parse_args(int argc, char **argv, struct logs_args *a)
{
    a->lines = -1;
    for (int k = 0; k < argc; k++) {
        const char *arg = argv[k], *v;
        char *end;

        if (!strcmp(arg, "-t") || !strcmp(arg, "--tail")) {
            a->tail = true;
        } else if (!strcmp(arg, "-n") || !strcmp(arg, "--num")) {
            if (!(v = option_value(argc, argv, &k)))
                return 2;
            errno = 0;
            a->lines = strtol(v, &end, 10);
            if (!*v || *end || errno || a->lines < 0 || a->lines > APPLOG_TAIL_MAX) {
                fprintf(stderr, "berth: -n takes a number of lines from 0 to %d, not '%s'\n" LOGS_USAGE "\n",
                        APPLOG_TAIL_MAX, v);
                return 2;
            }
        } else if (!strcmp(arg, "-p") || !strcmp(arg, "--ps") || !strcmp(arg, "-d") || !strcmp(arg, "--dyno")) {
            if (!(a->ps = option_value(argc, argv, &k)))
                return 2;
        } else if (!strcmp(arg, "-s") || !strcmp(arg, "--source")) {
            if (!(a->source = option_value(argc, argv, &k)))
                return 2;
            if (strcmp(a->source, "app") != 0 && strcmp(a->source, "router") != 0) {
                fprintf(stderr, "berth: --source is 'app' or 'router', not '%s'\n" LOGS_USAGE "\n", a->source);
                return 2;
            }
        } else if (!a->app && arg[0] != '-') {
            a->app = arg;
        } else {
            fprintf(stderr, "berth: unexpected '%s'\n" LOGS_USAGE "\n", arg);
            return 2;
        }
    }
    if (!a->app) {
        fprintf(stderr, LOGS_USAGE "\n");
        return 2;
    }
    return 0;
}

/* /apps/APP/logs?lines=N&ps=...&source=...&tail=1; the server checks each value (names need no escaping). */
static char *logs_path(const struct logs_args *a)
{
    struct strbuf sb = STRBUF_INIT;
    char sep = '?';

    strbuf_addf(&sb, "/apps/%s/logs", a->app);
    if (a->lines >= 0) {
        strbuf_addf(&sb, "%clines=%ld", sep, a->lines);
        sep = '&';
    }
    if (a->ps) {
        strbuf_addf(&sb, "%cps=", sep);
        for (const char *c = a->ps; *c; c++) {
            /* Anything but a process name's characters is escaped: the server refuses it anyway. */
            if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_')
                strbuf_addch(&sb, *c);
            else
                strbuf_addf(&sb, "%%%02X", (unsigned char)*c);
        }
        sep = '&';
    }
    if (a->source) {
        strbuf_addf(&sb, "%csource=%s", sep, a->source);
        sep = '&';
    }
    if (a->tail)
        strbuf_addf(&sb, "%ctail=1", sep);
    return strbuf_detach(&sb, NULL);
}

int cli_logs(int argc, char **argv)
{
    struct logs_args a = { 0 };
    _cleanup_free_ char *path = NULL;
    _cleanup_json_ json_t *doc = NULL;
    long status = 0;
    int r = parse_args(argc, argv, &a);

    if (r)
        return r;
    path = logs_path(&a);
    if (cli_api_stream(path, a.tail ? 0L : 60L, &status, &doc) < 0)
        return 1;
    if (status != 200)
        return cli_fail(status, doc);
    return 0;
}
