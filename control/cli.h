/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli: the `berth` client commands (apps:create, apps:list,
 * apps:info), which talk to the control API over HTTP with libcurl. The API
 * is at $BERTH_URL (default http://127.0.0.1:8081); the token comes from
 * $BERTH_TOKEN, else from <home>/admin.token.
 */
#ifndef BERTH_CONTROL_CLI_H
#define BERTH_CONTROL_CLI_H

#include <stdio.h>

/*
 * Runs one client command; returns the process exit code: 0 success, 1
 * error, 2 usage (unknown command, wrong arguments). `COMMAND --help`
 * prints its help instead.
 */
int cli_run(const char *command, int argc, char **argv);
/*
 * `berth help [COMMAND]` to f: every command by group (command NULL), or
 * one's usage and description; serve, setup, help and version included.
 * Returns 0, or 2 for an unknown command.
 */
int cli_help(FILE *f, const char *command);

#endif
