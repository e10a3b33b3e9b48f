/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: berth's init, PID 1 of every container (ARCHITECTURE.md,
 * Processes). The cloned child becomes it once the root is built: it starts
 * the app, reaps every process, forwards signals, reports the app's wait
 * status and serves the port agent.
 *
 * The port agent (agent.h) runs on the init's loop; agent_fd is the
 * init's end of the agent socket (its protocol: proto.h, "The port
 * agent"). The app's exit is reported on a separate pipe (a 4-byte wait
 * status), so agent replies and the exit never interleave.
 */
#ifndef BERTH_RUNNER_INIT_H
#define BERTH_RUNNER_INIT_H

#include "runner/runner.h"
#include "runner/seccomp.h"

struct init_ctx {
    const struct runner_spec *spec;
    const struct seccomp_program *prog;   /* NULL: no seccomp in this build */
    int sync_fd;      /* setup report to the spawner; closed once running */
    int agent_fd;     /* taken over by the port agent */
    int status_fd;    /* write end */
};

/*
 * Runs as container root after pivot_root: starts the app (reporting
 * setup and execve errors on sync_fd) and serves until the app exits.
 */
__attribute__((noreturn)) void init_run(const struct init_ctx *ctx);
/*
 * For a process forked from a command (the init, the user-namespace
 * keeper), whose argument and environment areas still hold the command's:
 * the arguments then read `title` (cut to their old length, padded with
 * NULs), the environment only NULs. Where /proc/self/stat cannot be read
 * or parsed, they stay as they were.
 */
void init_neutral_cmdline(const char *title);
/*
 * The text of field `field` (proc(5)'s numbering, 3 or more: those after
 * the comm, which may hold spaces) of a /proc/<pid>/stat line, or NULL
 * where the line has no such field. Also the keeper's (keeper-netns.c).
 */
const char *init_stat_field(const char *stat, int field);

#endif
