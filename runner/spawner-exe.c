/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * berth-spawner: the spawner (spawner.c) as a program of its own, which the
 * child that runner_spawner_start() forks execs (client.c says why: the
 * forks of a small static program are much cheaper than those of the
 * daemon's image). Its arguments are the socket's fd and the daemon's pid;
 * spawner_main() checks that the daemon is still its parent and serves the
 * daemon on that socket. Started any other way, it says so and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "runner/spawner.h"
#include "common/banned.h"

/* A decimal in [min, max], the whole string; -1 otherwise. */
static long number(const char *s, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    return v;
}

int main(int argc, char **argv)
{
    long fd = argc == 3 ? number(argv[1], 3, INT_MAX) : -1;
    long parent = argc == 3 ? number(argv[2], 1, INT_MAX) : -1;
    struct stat st;

    if (fd < 0 || parent < 0 || fstat((int)fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "berth-spawner: berth's daemon starts this program (runner_spawner_start); "
                "it is not for running by hand\n");
        return 2;
    }
    /*
     * runner_spawner_start() cleared close-on-exec for this exec only: set
     * again, so that no program the spawner's children exec (pasta, an app)
     * inherits the daemon's socket.
     */
    (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    spawner_main((int)fd, (pid_t)parent);
}
