/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target over what a pusher sends first: the pkt-line reader
 * (receiver/pktline.c) and receive-pack's command list, capabilities and
 * push options (push_read_commands() in receiver/push.c), fed from a
 * memfd as a transport's fd would. Nothing may crash, leak or read out of
 * bounds; what is parsed must satisfy the parser's own promises: every
 * command's ids are 40 hex digits, its ref name a string, the counts under
 * their caps. Built and run by tests/fuzz.sh.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "receiver/push.h"

static int feed(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);

    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    (void)lseek(fd, 0, SEEK_SET);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pkt_reader r;
    struct receiver_options opts = { .repo_path = "/nonexistent" };
    struct receiver_push p;
    struct berth_error *err = NULL;
    int fd = feed(data, size), n;

    pkt_reader_init(&r, fd);
    push_init(&p, &opts);
    n = push_read_commands(&p, &r, &err);
    if (n >= 0) {
        if ((size_t)n != p.n_cmds || p.n_cmds > PUSH_MAX_COMMANDS || p.n_options > PUSH_MAX_OPTIONS)
            abort();
        for (size_t i = 0; i < p.n_cmds; i++)
            if (strlen(p.cmds[i].old_hex) != 40 || strlen(p.cmds[i].new_hex) != 40 || !p.cmds[i].refname)
                abort();
        /* What follows the list is the pack, read raw; drain a little of it. */
        {
            char buf[256];

            (void)pkt_reader_read_raw(&r, buf, sizeof(buf));
        }
    } else if (!err) {
        abort();        /* a failure always says why */
    }
    berth_error_release(&err);
    push_release(&p);
    close(fd);
    return 0;
}
