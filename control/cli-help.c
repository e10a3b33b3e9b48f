/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-help: `berth help [COMMAND]` and `berth COMMAND --help`. The
 * command table (cli.c) says what each command takes (its usage line); this
 * file adds, keyed by name, a one-line description and a group for the
 * listing. A command added to the table without a row here still works and
 * is still listed (under "Other commands", with its usage); a row here for
 * a command the table lacks is never shown. Commands that share a handler
 * are aliases: listed once, "also" the others.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "control/cli-internal.h"

struct help_row {
    const char *name;
    const char *group;
    const char *summary;
};

/* Listing order. */
static const char *const groups[] = {
    "Apps", "Deploys and releases", "Config and settings", "Processes", "Domains, TLS and the router",
    "Pipelines and previews", "Tenants and tokens", "Operator",
};

static const struct help_row rows[] = {
    { "apps:create", "Apps", "create an app (no name: a free random one); push to its git URL to deploy" },
    { "apps:list", "Apps", "list your apps" },
    { "apps:info", "Apps", "show an app: its URLs, release and settings" },
    { "apps:destroy", "Apps", "remove an app with its processes, repository, releases and logs" },
    { "git:clone", "Deploys and releases", "clone the app's repository back (every branch pushed to it)" },
    { "releases", "Deploys and releases", "every release of the app, newest first" },
    { "rollback", "Deploys and releases", "a new release from vN (default: the one before the current), no build" },
    { "buildpacks", "Deploys and releases", "the app's buildpacks (default: detected among the built-ins)" },
    { "buildpacks:set", "Deploys and releases", "set the app's buildpacks, in order" },
    { "buildpacks:clear", "Deploys and releases", "go back to detecting the buildpack" },
    { "builds:set", "Deploys and releases", "build a subdirectory; the build's budget (operator only)" },
    { "builds:cache:purge", "Deploys and releases", "empty the app's build cache: the next build starts from nothing" },
    { "checks", "Deploys and releases", "whether deploys run the app's startup health checks" },
    { "checks:enable", "Deploys and releases", "deploys run the startup health checks (app.json, CHECKS)" },
    { "checks:disable", "Deploys and releases", "deploys skip the startup health checks (Dokku's name for it)" },
    { "checks:skip", "Deploys and releases", "deploys skip the startup health checks" },
    { "config", "Config and settings", "the app's config vars" },
    { "config:get", "Config and settings", "one config var's value" },
    { "config:set", "Config and settings", "set config vars: a new release (--no-restart: the next one uses them)" },
    { "config:unset", "Config and settings", "remove config vars: a new release (--no-restart: the next one)" },
    { "net", "Config and settings", "whether the app's processes have outbound network" },
    { "net:set", "Config and settings", "outbound network for the app's processes (off by default)" },
    { "ps", "Processes", "the app's processes: type, state, uptime, restarts, memory, release" },
    { "ps:scale", "Processes", "run N processes of each Procfile type" },
    { "ps:restart", "Processes", "restart the app's processes (of one type)" },
    { "ps:stop", "Processes", "stop every process of the app (kept across restarts of berth), or one one-off run" },
    { "ps:start", "Processes", "start the app's processes again" },
    { "ps:grace", "Processes", "SIGTERM to SIGKILL (and the drain) when an instance retires (30 s)" },
    { "resource", "Processes", "memory, cpu and pids limits of each of the app's process types" },
    { "resource:limit", "Processes", "memory, cpu and pids limits of the app's processes, within the quota" },
    { "run", "Processes", "run a command in a one-off container of the app's release, attached" },
    { "run:detached", "Processes", "the same in the background, its output in the app's log" },
    { "logs", "Processes", "the app's log (-t: follow it), in Heroku's format" },
    { "cron", "Processes", "the app's scheduled jobs (app.json \"cron\") with their last and next runs" },
    { "domains", "Domains, TLS and the router", "the app's custom domains" },
    { "domains:add", "Domains, TLS and the router", "add a custom domain (www.example.com, *.example.com)" },
    { "domains:remove", "Domains, TLS and the router", "remove a custom domain" },
    { "certs", "Domains, TLS and the router", "the app's TLS certificates" },
    { "certs:add", "Domains, TLS and the router", "add a TLS certificate and key (PEM), picked by SNI" },
    { "certs:remove", "Domains, TLS and the router", "remove a TLS certificate" },
    { "router", "Domains, TLS and the router", "the router's settings for the app" },
    { "router:set", "Domains, TLS and the router", "the router's timeouts for the app, HTTPS redirects, maintenance" },
    { "maintenance", "Domains, TLS and the router", "whether the app is in maintenance mode" },
    { "maintenance:on", "Domains, TLS and the router", "the router answers every request 503 (H80) with a plain page" },
    { "maintenance:off", "Domains, TLS and the router", "the router sends requests to the app again" },
    { "pipelines", "Pipelines and previews", "your pipelines, or one: its stages, apps and what each runs" },
    { "pipelines:create", "Pipelines and previews", "create a pipeline (staging, production, ... of one app)" },
    { "pipelines:add", "Pipelines and previews", "add an app to a pipeline at a stage (one pipeline per app)" },
    { "pipelines:remove", "Pipelines and previews", "take an app out of its pipeline (the app stays)" },
    { "pipelines:destroy", "Pipelines and previews", "remove a pipeline and its preview apps" },
    { "pipelines:promote", "Pipelines and previews", "the app's slug to the next stage's apps (or --to): no build" },
    { "pipelines:diff", "Pipelines and previews", "the commits the app runs that the next stage does not" },
    { "pipelines:previews", "Pipelines and previews", "an app per branch pushed to the staging app (on|off)" },
    { "config:copy", "Config and settings", "copy config vars (all, or those named) from one app to another" },
    { "tenants", "Tenants and tokens", "every tenant (admin only)" },
    { "tenants:list", "Tenants and tokens", "every tenant (admin only)" },
    { "tenants:create", "Tenants and tokens", "create a tenant and print its token, once (admin only)" },
    { "tenants:destroy", "Tenants and tokens", "remove a tenant and everything it owns (admin only)" },
    { "tenants:limits", "Tenants and tokens", "a tenant's quota: memory, cpus, pids, apps, instances (set: admin only)" },
    { "tokens", "Tenants and tokens", "your scoped tokens" },
    { "tokens:create", "Tenants and tokens", "a token limited to one app and one role, printed once" },
    { "tokens:revoke", "Tenants and tokens", "revoke a scoped token" },
    { "tokens:rotate", "Tenants and tokens", "replace your own token, printed once" },
    { "keys", "Tenants and tokens", "your SSH keys (the admin: everyone's), for git push and commands over ssh" },
    { "keys:add", "Tenants and tokens", "add an SSH public key (the admin may name the tenant); - reads stdin" },
    { "keys:remove", "Tenants and tokens", "remove an SSH key by its fingerprint" },
    { "events", "Operator", "the audit log: who changed what, when" },
    { "gc", "Operator", "remove slugs no app's last N (10) releases use (operator only)" },
};

/* The commands main() runs itself, not through the table: their usage and words. */
static const struct {
    const char *name, *usage, *summary;
} builtins[] = {
    { "serve", "serve [--home DIR] [--http ADDR] [--https ADDR] [--control ADDR] [--domain NAME] [--user NAME] "
      "[--allow-no-limits]",
      "run berth: the router (127.0.0.1:8080), the API and git (127.0.0.1:8081)" },
    { "setup", "setup [--user NAME] [--systemd [--unit-dir DIR]] | setup --remove [--purge] --user NAME",
      "as root, once: the berth user, its subordinate ids, cgroups, /dev/net/tun (again: repairs them)" },
    { "doctor", "doctor [--home DIR] [--user NAME (as root)]",
      "check that this host can run berth safely: one line per check, with the fix" },
    { "container", "container run [--tenant T] [--memory M] [--pids N] [--cpus C] [--net] [--hostname H] "
      "[-e K=V]... [--volume SRC:DST[:ro]]... ROOTFS_OR_SLUG_DIR -- CMD [ARG...]",
      "as the berth user, no daemon needed: run one command in a container built as an app's, attached; "
      "exits with its status" },
    { "help", "help [COMMAND]", "every command, or one command's usage and description (or: COMMAND --help)" },
    { "version", "version", "berth's version" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct help_row *row_of(const char *name)
{
    for (size_t i = 0; i < N(rows); i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

/* The first command of the table with c's handler: the one an alias's words are under. */
static const struct cli_command *canonical(const struct cli_command *c, const struct cli_command *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].run == c->run)
            return &v[i];
    return c;
}

/* The description of c: its own row's, else that of a command with its handler (an alias), else NULL. */
static const struct help_row *row_for(const struct cli_command *c, const struct cli_command *v, size_t n)
{
    const struct help_row *row = row_of(c->name);

    for (size_t i = 0; !row && i < n; i++)
        if (v[i].run == c->run)
            row = row_of(v[i].name);
    return row;
}

static void print_exit_codes(FILE *f)
{
    fprintf(f, "Exit status: 0 success; 1 error (the API refused, or could not be reached);\n"
            "             2 usage error (unknown command, wrong arguments).\n");
}

/* `berth run` exits with its command's status: berth's own errors share the range with it. */
static void print_exit_codes_of(FILE *f, const struct cli_command *c)
{
    if (c->run != cli_run_attached) {
        print_exit_codes(f);
        return;
    }
    fprintf(f, "Exit status: the command's own (128+N when signal N killed it, 127 when it was not found);\n"
            "             before it runs, 1 for an error (the API refused, or could not be reached)\n"
            "             and 2 for a usage error; 1 too when the connection is lost.\n");
}

/* One line of the listing: the name, its aliases, the description or, lacking one, the usage. */
static void print_line(FILE *f, const struct cli_command *c, const char *summary, const struct cli_command *v,
                       size_t n)
{
    int width = fprintf(f, "  %s", c->name);

    for (size_t i = 0; i < n; i++)
        if (&v[i] != c && v[i].run == c->run)
            width += fprintf(f, ", %s", v[i].name);
    fprintf(f, "%*s  %s\n", width < 24 ? 24 - width : 0, "", summary ? summary : c->usage);
}

static void print_all(FILE *f, const struct cli_command *v, size_t n)
{
    bool others = false;

    fprintf(f, "usage: berth COMMAND [ARGS...]    (berth help COMMAND, or berth COMMAND --help, for one)\n"
            "Client commands talk to $BERTH_URL (default http://127.0.0.1:8081)\n"
            "with $BERTH_TOKEN (default: <home>/admin.token).\n"
            "Commands that show data take --json where the usage says so.\n");
    for (size_t g = 0; g < N(groups); g++) {
        bool header = false;

        for (size_t i = 0; i < n; i++) {
            const struct help_row *row = row_for(&v[i], v, n);

            if (canonical(&v[i], v, n) != &v[i] || !row || strcmp(row->group, groups[g]) != 0)
                continue;
            if (!header)
                fprintf(f, "\n%s:\n", groups[g]);
            header = true;
            print_line(f, &v[i], row->summary, v, n);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (canonical(&v[i], v, n) != &v[i] || row_for(&v[i], v, n))
            continue;
        if (!others)
            fprintf(f, "\nOther commands:\n");
        others = true;
        print_line(f, &v[i], NULL, v, n);
    }
    fprintf(f, "\nServer:\n");
    for (size_t i = 0; i < N(builtins); i++)
        fprintf(f, "  %-22s  %s\n", builtins[i].name, builtins[i].summary);
    fprintf(f, "\n");
    print_exit_codes(f);
}

int cli_help_print(FILE *f, const char *name, const struct cli_command *v, size_t n)
{
    if (!name) {
        print_all(f, v, n);
        return 0;
    }
    for (size_t i = 0; i < N(builtins); i++) {
        if (strcmp(builtins[i].name, name) == 0) {
            fprintf(f, "usage: berth %s\n\n%s\n\n", builtins[i].usage, builtins[i].summary);
            print_exit_codes(f);
            return 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct help_row *row;

        if (strcmp(v[i].name, name) != 0)
            continue;
        row = row_for(&v[i], v, n);
        fprintf(f, "usage: berth %s\n\n", v[i].usage);
        if (row)
            fprintf(f, "%s\n\n", row->summary);
        if (canonical(&v[i], v, n) != &v[i])
            fprintf(f, "The same as '%s'.\n\n", canonical(&v[i], v, n)->name);
        print_exit_codes_of(f, &v[i]);
        return 0;
    }
    fprintf(stderr, "berth: unknown command '%s' (see 'berth help')\n", name);
    return 2;
}
