/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control-internal: what the `berth` client commands share. cli.c holds
 * the transport (libcurl to the control API) and the command table;
 * cli-settings.c the commands that read and change an app's settings and
 * config. Each command takes its own arguments (after the command name)
 * and returns the process exit code.
 */
#ifndef BERTH_CONTROL_CLI_INTERNAL_H
#define BERTH_CONTROL_CLI_INTERNAL_H

#include <jansson.h>

/*
 * One API request; `body` (may be NULL) is sent as JSON. *ret_doc is the
 * parsed answer (NULL if it was not JSON). < 0 when the API could not be
 * reached (already said on stderr).
 */
int cli_api(const char *method, const char *path, const json_t *body, long *ret_status, json_t **ret_doc);
/* Says the API's error on stderr; returns 1. */
int cli_fail(long status, const json_t *doc);

int cli_buildpacks(int argc, char **argv);
int cli_buildpacks_set(int argc, char **argv);
int cli_buildpacks_clear(int argc, char **argv);
int cli_builds_set(int argc, char **argv);
int cli_net(int argc, char **argv);
int cli_net_set(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_config_get(int argc, char **argv);
int cli_config_set(int argc, char **argv);
int cli_config_unset(int argc, char **argv);

#endif
