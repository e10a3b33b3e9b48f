/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the parts of the runner integration test (test-runner.c, which has
 * main() and the TAP counters, test-runner-net.c, test-runner-tree.c,
 * test-runner-agent.c, test-runner-exit.c, test-runner-reap.c) share: the test's fixtures, running a busybox script in a container to
 * completion, and TAP output through t_ok()/t_skip(), since tap.h keeps its
 * counters per translation unit and only test-runner.c includes it.
 */
#ifndef BERTH_RUNNER_TESTS_HARNESS_H
#define BERTH_RUNNER_TESTS_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/strbuf.h"
#include "runner/runner.h"

/* Fixtures, set up by main(): a temporary dir, the stack, a lower layer holding app/index.html. */
extern char tmpdir[];
extern char *stack_dir, *lower_dir;
extern unsigned long uid_base, gid_base;   /* berth's first subordinate uid and gid */
/* The test program itself, which a container can run as a helper (bound at /t/helper). */
extern char *self_exe;

void t_ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A skip, or a failure when BERTH_MUST_WORK is set. */
void t_skip_or_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool must_work(void);

struct run {
    struct strbuf out;   /* the container's stdout */
    int status;          /* wait status, -1 if none */
    int spawn_r;
    char *err;           /* runner_spawn's message when it failed */
    struct runner_usage usage;
};
void run_release(struct run *r);

/* A spec for `argv` as uid/gid 1000 over `lowers` and the stack, with state dir `state`. */
struct runner_spec base_spec(const char *state, const char *const *argv, const char *const *lowers);
/* A fresh state dir <tmpdir>/<name> (malloc'ed path). */
char *new_state(const char *name);
/* Runs the spec to completion (stdout captured), stops and frees the container. */
void run_sh_spec(struct runner *rn, struct runner_spec *spec, struct run *res);
/*
 * Starts argv (output to our stderr) over the test's lower layer in a fresh
 * state dir <tmpdir>/<name>, with bind mount m (NULL: none) and port-agent
 * port `port`; NULL, and a failed TAP line, when the spawn fails.
 */
struct runner_container *spawn_mounted(struct runner *rn, const char *name,
                                       const char *const *argv, const struct runner_mount *m,
                                       uint16_t port);
/* `busybox sh -c script` as uid/gid `uid` over the test's lower layer. */
void run_sh(struct runner *rn, const char *name, unsigned uid, const char *script, struct run *res);
bool exited_with(const struct run *r, int code);
/* run_sh and one TAP line: exit 0 and exactly `want` on stdout. */
void check_output(struct runner *rn, const char *name, unsigned uid, const char *script,
                  const char *want, const char *what);

/* A child of `parent` whose name or argv[0] is `comm` (NULL: any); -1 if none. */
pid_t child_of(pid_t parent, const char *comm);
/* The app of container c (its init's child), waited for up to a second; 0 if it never showed. */
pid_t container_app(const struct runner_container *c);
/*
 * The namespace `ns` of `pid` (0: this process) as its link reads
 * ("user:[4026532...]"), into buf; false, and buf "", if unreadable.
 */
bool ns_link(pid_t pid, const char *ns, char *buf, size_t size);
/* Milliseconds since `t0` (CLOCK_MONOTONIC). */
double ms_since(const struct timespec *t0);

/* The parts of the test in the other files. */
void test_network(struct runner *rn);
void test_network_daemon_death(void);
void test_trees(struct runner *rn);
/* In-container helper for test_trees: `<self> --tree-helper DIR`. */
int tree_helper(const char *dir);
void test_agent_channels(struct runner *rn);
void test_agent_stock(struct runner *rn);
/* In-container app for test_agent_channels: `<self> --listen-helper PORT serve|stall`. */
int listen_helper(const char *port, const char *mode);
void test_exit_fds(struct runner *rn);
void test_reaping(struct runner *rn);

#endif
