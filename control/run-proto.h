/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/run-proto: the frames of an attached one-off run (docs/API.md,
 * One-off runs), which the API (api-run.c) and the CLI (cli-run.c) speak
 * over the upgraded connection: one byte of type, four bytes of payload
 * length (big-endian, at most RUN_FRAME_MAX), the payload.
 */
#ifndef BERTH_CONTROL_RUN_PROTO_H
#define BERTH_CONTROL_RUN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"

/* The protocol's name in the Upgrade header. */
#define RUN_PROTOCOL "berth-run"

enum run_frame_type {
    RUN_FRAME_STDIN = 0,          /* client: bytes for the process's stdin */
    RUN_FRAME_STDOUT = 1,         /* server: bytes the process wrote to stdout */
    RUN_FRAME_STDERR = 2,         /* server: ... to stderr */
    RUN_FRAME_EXIT = 3,           /* server, last: {"status": N[, "signal": S]} */
    RUN_FRAME_STDIN_EOF = 4,      /* client: the end of stdin (empty) */
    RUN_FRAME_ERROR = 5,          /* server, last: a message; the run did not start or was ended */
    RUN_FRAME_STARTED = 6,        /* server, first: {"name": "run.4821"} */
};

#define RUN_FRAME_HEADER 5
#define RUN_FRAME_MAX (64u << 10)

/* Appends one frame. */
void run_frame_add(struct strbuf *sb, uint8_t type, const void *data, size_t len);
/*
 * The frame at the start of buf: 1 with its type, payload and payload
 * length (the whole frame takes RUN_FRAME_HEADER + *ret_len bytes), 0 when
 * buf does not hold all of it yet, -1 when its length is past RUN_FRAME_MAX.
 */
int run_frame_next(const char *buf, size_t len, uint8_t *ret_type, const char **ret_payload, size_t *ret_len);

#endif
