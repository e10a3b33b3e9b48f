/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * interleave: start-to-exit times of a few commands, their runs interleaved
 * one by one (start.sh, beside hyperfine). hyperfine runs all of one
 * command, then all of the next; on a shared 2-CPU VM the host's mood
 * drifts over such a block, and two builds 5 % apart came out anywhere from
 * 0.85 to 1.25 of each other, round to round (docs/BENCHMARKS.md,
 * 2026-12-04). Here run i takes every command once, in an order that
 * rotates with i, so each command sees the same moments of the host.
 *
 *   interleave RUNS CMD [ARG...] [:: CMD [ARG...]]...
 *
 * Each command is fork+execvp'ed with stdin, stdout and stderr on
 * /dev/null, after two warm-up runs of each; it must exit 0. Prints one
 * line: each command's median in milliseconds, in the order given.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 8
#define WARMUP 2

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* One run of argv; its time in ms, or -1 when it did not exit 0. */
static double run_once(char **argv, int devnull)
{
    double start = now_ms();
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        (void)dup2(devnull, 0);
        (void)dup2(devnull, 1);
        (void)dup2(devnull, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? now_ms() - start : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char **cmds[MAX_CMDS];
    double *times[MAX_CMDS];
    int n_cmds = 0, runs = argc > 2 ? atoi(argv[1]) : 0;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (runs <= 0 || devnull < 0) {
        fprintf(stderr, "usage: interleave RUNS CMD [ARG...] [:: CMD [ARG...]]...\n");
        return 2;
    }
    cmds[n_cmds++] = argv + 2;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "::") != 0)
            continue;
        argv[i] = NULL;
        if (n_cmds == MAX_CMDS || i + 1 == argc) {
            fprintf(stderr, "interleave: at most %d commands, none empty\n", MAX_CMDS);
            return 2;
        }
        cmds[n_cmds++] = argv + i + 1;
    }
    for (int c = 0; c < n_cmds; c++) {
        if (!cmds[c][0]) {
            fprintf(stderr, "interleave: an empty command\n");
            return 2;
        }
    }
    for (int c = 0; c < n_cmds; c++) {
        times[c] = calloc((size_t)runs, sizeof(double));
        if (!times[c])
            return 1;
        for (int w = 0; w < WARMUP; w++)
            (void)run_once(cmds[c], devnull);
    }
    for (int i = 0; i < runs; i++) {
        for (int k = 0; k < n_cmds; k++) {
            int c = (i + k) % n_cmds;

            times[c][i] = run_once(cmds[c], devnull);
            if (times[c][i] < 0) {
                fprintf(stderr, "interleave: '%s' failed\n", cmds[c][0]);
                return 1;
            }
        }
    }
    for (int c = 0; c < n_cmds; c++) {
        qsort(times[c], (size_t)runs, sizeof(double), cmp_double);
        printf("%s%.3f", c ? " " : "", times[c][runs / 2]);
        free(times[c]);
    }
    printf("\n");
    return 0;
}
