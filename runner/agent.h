/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * runner-internal: the port agent, served by every container's init
 * (init.c) from the init's one epoll loop, beside its signals. It takes
 * channels from the agent socket, reads connect requests from them, starts
 * a non-blocking TCP connect to 127.0.0.1:<port> in the container's network
 * namespace for each, many at once, and answers each request on its own
 * channel when its connect completes, fails or reaches
 * RUNNER_AGENT_CONNECT_TIMEOUT_MS; and answers stock requests at once with
 * unconnected TCP sockets made in that namespace, for the caller to dial
 * itself (the wire: proto.h, "The port agent").
 * Nothing here ever blocks: a slow app holds up only its own requests.
 */
#ifndef BERTH_RUNNER_AGENT_H
#define BERTH_RUNNER_AGENT_H

#include <stdint.h>
#include <sys/epoll.h>

#include "runner/runner.h"

/*
 * Channels an init serves at once. One past it is closed as it arrives: its
 * other end reads end of file, and the caller may open another once one of
 * its own is closed.
 */
#define AGENT_MAX_CHANNELS RUNNER_AGENT_MAX_CHANNELS
/*
 * Requests an init holds at once, over all its channels: connects in
 * progress, and replies waiting for room on a channel whose reader is
 * behind. A request past it is answered EAGAIN at once.
 */
#define AGENT_MAX_CONNECTS RUNNER_AGENT_MAX_REQUESTS

struct agent;

/*
 * Starts the agent on the epoll set epfd, taking over ctl_fd (the init's
 * end of the agent socket). Every event it adds to epfd carries a
 * data.ptr other than NULL; NULL is left to the caller for its own fds.
 * Raises the calling process's soft RLIMIT_NOFILE (up to the hard limit)
 * so that the sockets above fit. 0 or -errno.
 */
int agent_new(int epfd, int ctl_fd, uint16_t port, struct agent **ret);
/* Handles one event that carries a data.ptr the agent added. */
void agent_handle(struct agent *a, const struct epoll_event *ev);
/* Milliseconds until the earliest connect's deadline, -1 for none: the loop's epoll timeout. */
int agent_timeout_ms(const struct agent *a);
/*
 * Called after every batch of events, never during one: answers
 * ETIMEDOUT for each connect past its deadline, and frees what the batch
 * dropped (freed only now, since later events of the same batch may still
 * point at it).
 */
void agent_tick(struct agent *a);

#endif
