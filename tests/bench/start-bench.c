/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Benchmark helper: container start to exit of /bin/true with berth's
 * runner, the same work bwrap and crun are timed on in PEERS.md. Prints the
 * median and p90 of N runs in milliseconds. Runs as the unprivileged berth
 * user. Usage: start-bench STATE_DIR N [spawner|once]
 *   spawner (default): runner_spawn() through the daemon's spawner, to the
 *            exit (the state directory's removal is not timed);
 *   once:    runner_run_once(), removal included, in a new user namespace each time;
 *   kept:    the same in the kept user namespace, as `berth container run` does.
 */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "runner/runner.h"

static unsigned long first_subid(const char *file)
{
    struct passwd *pw = getpwuid(getuid());
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    char line[256];

    while (f && pw && fgets(line, sizeof(line), f)) {
        size_t n = strlen(pw->pw_name);

        if (strncmp(line, pw->pw_name, n) == 0 && line[n] == ':')
            return strtoul(line + n + 1, NULL, 10);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct runner *r = NULL;
    unsigned long uid_base = first_subid("/etc/subuid"), gid_base = first_subid("/etc/subgid");
    const char *lowers[] = { NULL };
    const char *args[] = { "/bin/true", NULL };
    const char *env[] = { "PATH=/usr/bin:/bin", NULL };
    _cleanup_free_ char *stack = NULL;
    double *ms;
    int n;

    bool kept = argc == 4 && strcmp(argv[3], "kept") == 0;
    bool once = kept || (argc == 4 && strcmp(argv[3], "once") == 0);

    if ((argc != 3 && argc != 4) || (argc == 4 && !once && strcmp(argv[3], "spawner")) || !uid_base) {
        fprintf(stderr, "usage: start-bench STATE_DIR N [spawner|once|kept] (as a user with subordinate ids)\n");
        return 2;
    }
    n = atoi(argv[2]);
    ms = xcalloc((size_t)n, sizeof(*ms));
    stack = xasprintf("%s/stack", argv[1]);
    if (runner_stack_prepare(stack, &err) < 0 || (!once && runner_spawner_start(&r, &err) < 0)) {
        fprintf(stderr, "start-bench: %s\n", berth_error_msg(&err));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        _cleanup_free_ char *state = xasprintf("%s/c%d", argv[1], i);
        struct runner_container *c = NULL;
        struct runner_spec spec = {
            .name = "bench", .hostname = "bench", .uid_base = uid_base, .gid_base = gid_base,
            .id_count = 65536, .lower_dirs = lowers, .stack_dir = stack, .state_dir = state,
            .argv = args, .envp = env, .cwd = "/", .uid = 1000, .gid = 1000,
            .stdout_fd = 2, .stderr_fd = 2,
        };
        struct timespec t0, t1;
        int status;

        mkdir(state, 0700);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (once) {
            if (runner_run_once(&spec, kept ? RUNNER_ONCE_KEEP_USERNS : 0, 0, &status, &err) < 0) {
                fprintf(stderr, "start-bench: %s\n", berth_error_msg(&err));
                return 1;
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            ms[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
            continue;
        }
        if (runner_spawn(r, &spec, &c, &err) < 0 || runner_wait(c, 10000, &status, &err) < 0) {
            fprintf(stderr, "start-bench: %s\n", berth_error_msg(&err));
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        runner_container_free(c);
        ms[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        (void)runner_remove_tree(r, state, uid_base, gid_base, 65536, NULL);
    }
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    printf("median %.2f p90 %.2f\n", ms[n / 2], ms[(n * 9) / 10]);
    runner_free(r);
    free(ms);
    return 0;
}
