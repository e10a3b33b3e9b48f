/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control-internal: what the `berth` client commands share. cli.c holds
 * the transport (libcurl to the control API) and the command table;
 * cli-settings.c the commands that read and change an app's settings and
 * config; cli-domains.c its domains, certificates and router settings;
 * cli-releases.c its releases and rollback; cli-cron.c its scheduled jobs;
 * cli-run.c its one-off runs; cli-logs.c its log; cli-tenants.c tenants,
 * tokens and apps:destroy; cli-quota.c tenants' limits and process types'
 * resources; cli-pipelines.c pipelines, promotion, config:copy and previews.
 * Each command takes its own arguments (after the command name) and
 * returns the process exit code.
 */
#ifndef BERTH_CONTROL_CLI_INTERNAL_H
#define BERTH_CONTROL_CLI_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* One row of the command table (cli.c). */
struct cli_command {
    const char *name;
    int min_args, max_args;     /* max -1: any number */
    const char *usage;          /* "cron APP [--json]" */
    int (*run)(int argc, char **argv);
};
/*
 * cli-help.c: `berth help` over the table v[0..n): every command by group
 * (name NULL), or one command's usage and description. The exit code: 0,
 * or 2 (said on stderr) for a name no command has.
 */
int cli_help_print(FILE *f, const char *name, const struct cli_command *v, size_t n);

/* The API's token: $BERTH_TOKEN, else the server's admin.token (malloc'ed); NULL if none. */
char *cli_token(void);
/* The API's base URL: $BERTH_URL, else http://127.0.0.1:8081. */
const char *cli_base_url(void);
/*
 * One API request; `body` (may be NULL) is sent as JSON. *ret_doc is the
 * parsed answer (NULL if it was not JSON). < 0 when the API could not be
 * reached (already said on stderr).
 */
int cli_api(const char *method, const char *path, const json_t *body, long *ret_status, json_t **ret_doc);
/*
 * GET `path` whose 200 answer is printed on stdout as it arrives (a log
 * stream); any other answer is parsed into *ret_doc (NULL if not JSON).
 * timeout_s 0: none. < 0 when the API could not be reached (said).
 */
int cli_api_stream(const char *path, long timeout_s, long *ret_status, json_t **ret_doc);
/* Says the API's error on stderr; returns 1. */
int cli_fail(long status, const json_t *doc);
/*
 * One request on /apps/<app><sub>: *ret_doc on a 2xx answer; otherwise the
 * error is said on stderr and -1 returned.
 */
int cli_app_request(const char *method, const char *app, const char *sub, const json_t *body, json_t **ret_doc);
/* The same on any path ("/tokens"). */
int cli_request(const char *method, const char *path, const json_t *body, json_t **ret_doc);
/*
 * PATCH /apps/<app><sub> with `body`, said as "<doing>... done" (or
 * "failed", the API's error on stderr). The exit code: 0 or 1.
 */
int cli_app_switch(const char *app, const char *sub, json_t *body, const char *doing);
/* "--json" as the optional argument after APP of a listing command: 1, 0 without, -1 (said) for anything else. */
int cli_json_flag(int argc, char **argv, const char *usage);
/*
 * GET /apps/<argv[0]><sub> for a command `NAME APP [--json]`: 2 for a usage
 * error, 1 for an error (both said), else 0 with *ret_doc the answer to
 * show, or NULL when --json printed it already.
 */
int cli_app_show(int argc, char **argv, const char *usage, const char *sub, json_t **ret_doc);
/* The API's answer as it is, indented, keys sorted. */
void cli_print_json(const json_t *doc);
/* "key=value" arguments into body[key]; an empty value is null (back to the default). -1 (said) if malformed. */
int cli_add_pairs(json_t *body, int argc, char **argv, const char *usage);

int cli_buildpacks(int argc, char **argv);
int cli_buildpacks_set(int argc, char **argv);
int cli_buildpacks_clear(int argc, char **argv);
int cli_builds_set(int argc, char **argv);
int cli_builds_cache_purge(int argc, char **argv);
int cli_net(int argc, char **argv);
int cli_net_set(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_config_get(int argc, char **argv);
int cli_config_set(int argc, char **argv);
int cli_config_unset(int argc, char **argv);
/* cli-domains.c */
int cli_domains(int argc, char **argv);
int cli_domains_add(int argc, char **argv);
int cli_domains_remove(int argc, char **argv);
int cli_certs(int argc, char **argv);
int cli_certs_add(int argc, char **argv);
int cli_certs_remove(int argc, char **argv);
int cli_router(int argc, char **argv);
int cli_router_set(int argc, char **argv);
int cli_maintenance(int argc, char **argv);
int cli_maintenance_on(int argc, char **argv);
int cli_maintenance_off(int argc, char **argv);
/* cli-releases.c */
int cli_releases(int argc, char **argv);
int cli_rollback(int argc, char **argv);
int cli_events(int argc, char **argv);
int cli_gc(int argc, char **argv);
int cli_checks(int argc, char **argv);
int cli_checks_enable(int argc, char **argv);
int cli_checks_disable(int argc, char **argv);
int cli_checks_skip(int argc, char **argv);
int cli_ps_grace(int argc, char **argv);
/* cli-cron.c */
int cli_cron(int argc, char **argv);
/* cli-run.c */
int cli_run_attached(int argc, char **argv);
int cli_run_detached(int argc, char **argv);
/* cli-tenants.c */
int cli_apps_destroy(int argc, char **argv);
int cli_tenants_create(int argc, char **argv);
int cli_tenants_list(int argc, char **argv);
int cli_tenants_destroy(int argc, char **argv);
int cli_tokens(int argc, char **argv);
int cli_tokens_create(int argc, char **argv);
int cli_tokens_revoke(int argc, char **argv);
int cli_tokens_rotate(int argc, char **argv);

/* cli-keys.c */
int cli_keys(int argc, char **argv);
int cli_keys_add(int argc, char **argv);
int cli_keys_remove(int argc, char **argv);
int cli_git_clone(int argc, char **argv);
/* cli-ps.c */
int cli_ps(int argc, char **argv);
int cli_ps_scale(int argc, char **argv);
int cli_ps_restart(int argc, char **argv);
int cli_ps_stop(int argc, char **argv);
int cli_ps_start(int argc, char **argv);
/* cli-logs.c */
int cli_logs(int argc, char **argv);
/* cli-pipelines.c */
int cli_pipelines(int argc, char **argv);
int cli_pipelines_create(int argc, char **argv);
int cli_pipelines_add(int argc, char **argv);
int cli_pipelines_remove(int argc, char **argv);
int cli_pipelines_destroy(int argc, char **argv);
int cli_pipelines_promote(int argc, char **argv);
int cli_pipelines_diff(int argc, char **argv);
int cli_pipelines_previews(int argc, char **argv);
int cli_config_copy(int argc, char **argv);
/* config:set/unset --preview APP ...: the staging app's preview overrides (argv from APP on). */
int cli_config_preview(int argc, char **argv, bool set);
/* cli-quota.c */
int cli_tenants_limits(int argc, char **argv);
int cli_resource(int argc, char **argv);
int cli_resource_limit(int argc, char **argv);

#endif
