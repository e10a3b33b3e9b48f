/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli: the `berth` client commands (apps:create, apps:list,
 * apps:info), which talk to the control API over HTTP with libcurl. The API
 * is at $BERTH_URL (default http://127.0.0.1:8081); the token comes from
 * $BERTH_TOKEN, else from <home>/admin.token.
 */
#ifndef BERTH_CONTROL_CLI_H
#define BERTH_CONTROL_CLI_H

/* Runs one client command; returns the process exit code. */
int cli_run(const char *command, int argc, char **argv);

#endif
