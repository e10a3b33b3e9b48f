/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/container-cmd: `berth container run`, one command in a container
 * built exactly as an app's (the runner's namespaces, overlay, /proc, /dev,
 * seccomp, capabilities, cgroup and init), with berth's stdin, stdout and
 * stderr, standalone: no `berth serve` needed, only `berth setup --user U`
 * once as root. For tests (tests/isolation.sh), benchmarks, operators.
 *
 * It uses common/, runner/ and control/subid.c (plain libc) and nothing
 * else, no jansson, libcurl, libgit2 or libmicrohttpd, so that a small
 * front binary can link just these and start faster.
 */
#ifndef BERTH_CONTROL_CONTAINER_CMD_H
#define BERTH_CONTROL_CONTAINER_CMD_H

/*
 * argv[0] is "container" (as in `berth container run ...`: main() passes
 * argv + 1); argv[1] must be "run". Returns the exit status for main(): the
 * command's own (128+N when a signal N ended it), 2 for bad usage, 125 when
 * the container could not be set up, 126 when the command cannot be
 * executed, 127 when it does not exist.
 */
int container_cmd_main(int argc, char **argv);

#endif
