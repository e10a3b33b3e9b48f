/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The exit part of the runner integration test (see test-runner.c): the
 * exit fds of runner_container_exit_fd() in one epoll set, which stay
 * quiet while their containers run and each turn readable when (and only
 * when) its own container exits, in whatever order they exit, with the
 * status then ready for runner_wait(c, 0, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/runner.h"
#include "runner/tests/harness.h"
#include "common/banned.h"

#define N_EXIT 5

/*
 * A container that waits until the file <go>/<i> exists (the host's go
 * dir, bound read-only at /go), then exits with status 10 + i.
 */
static struct runner_container *spawn_waiter(struct runner *rn, const char *go, int i)
{
    _cleanup_free_ char *name = xasprintf("exit-%d", i);
    _cleanup_free_ char *script = xasprintf("while [ ! -e /go/%d ]; do sleep 0.02; done; exit %d",
                                            i, 10 + i);
    const char *argv[] = { "/bin/busybox", "sh", "-c", script, NULL };
    struct runner_mount m = { .source = go, .target = "/go" };

    return spawn_mounted(rn, name, argv, &m, 0);
}

static void let_go(const char *go, int i)
{
    _cleanup_free_ char *p = xasprintf("%s/%d", go, i);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

    if (fd >= 0)
        (void)close(fd);
}

/* Lets container `i` go, and checks that its exit fd alone turns readable, with its status. */
static void check_one_exit(int epfd, struct runner_container **cs, const char *go, int i)
{
    struct epoll_event evs[N_EXIT];
    struct berth_error *err = NULL;
    int n, status = -1, r;

    let_go(go, i);
    n = epoll_wait(epfd, evs, N_EXIT, 20000);
    t_ok(n == 1 && (int)evs[0].data.u32 == i && (evs[0].events & EPOLLIN),
         "container %d exits: its exit fd alone is readable (%d events, first %d)", i, n,
         n > 0 ? (int)evs[0].data.u32 : -1);
    r = runner_wait(cs[i], 0, &status, &err);
    t_ok(r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 10 + i,
         "then runner_wait(c, 0) has its status at once (r %d, status 0x%x)", r, status);
    berth_error_release(&err);
    /* Level-triggered: still readable until it leaves the set. */
    n = epoll_wait(epfd, evs, N_EXIT, 0);
    t_ok(n == 1 && (int)evs[0].data.u32 == i, "its exit fd stays readable (%d events)", n);
    (void)epoll_ctl(epfd, EPOLL_CTL_DEL, runner_container_exit_fd(cs[i]), NULL);
    r = runner_stop(cs[i], 0, &err);
    t_ok(r == 0, "runner_stop after the exit fd said so%s%s", err ? ": " : "",
         err ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    runner_container_free(cs[i]);
    cs[i] = NULL;
}

void test_exit_fds(struct runner *rn)
{
    static const int order[N_EXIT] = { 3, 0, 4, 1, 2 };
    _cleanup_free_ char *go = xasprintf("%s/go", tmpdir);
    _cleanup_close_ int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct runner_container *cs[N_EXIT] = { NULL };
    struct epoll_event evs[N_EXIT];
    int n, added = 0;

    if (mkdir(go, 0755) < 0 && errno != EEXIST)
        t_ok(false, "mkdir '%s': %s", go, strerror(errno));
    for (int i = 0; i < N_EXIT; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

        cs[i] = spawn_waiter(rn, go, i);
        if (cs[i] && epoll_ctl(epfd, EPOLL_CTL_ADD, runner_container_exit_fd(cs[i]), &ev) == 0)
            added++;
    }
    t_ok(added == N_EXIT, "the exit fds of %d containers go in one epoll set (%d did)", N_EXIT,
         added);
    if (added == N_EXIT) {
        n = epoll_wait(epfd, evs, N_EXIT, 300);
        t_ok(n == 0, "no exit fd is readable while the containers run (%d events)", n);
        for (int k = 0; k < N_EXIT; k++)
            check_one_exit(epfd, cs, go, order[k]);
    }
    for (int i = 0; i < N_EXIT; i++) {
        if (!cs[i])
            continue;
        let_go(go, i);
        (void)runner_stop(cs[i], 0, NULL);
        runner_container_free(cs[i]);
    }
}
