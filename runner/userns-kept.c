/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The spawner's table of kept user namespaces (userns-kept.h says what
 * they are for): a fixed array, searched by mapping, the oldest entry
 * replaced once it is full.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runner/userns-kept.h"
#include "common/banned.h"

struct kept_userns {
    unsigned long uid_base, gid_base, id_count;
    int fd;   /* an open user namespace (slots below n_kept only) */
};

static struct kept_userns kept[USERNS_KEPT_MAX];
static size_t n_kept;
static size_t next_dropped;   /* the oldest, once all slots are taken */

int userns_kept_find(unsigned long uid_base, unsigned long gid_base, unsigned long count)
{
    for (size_t i = 0; i < n_kept; i++)
        if (kept[i].uid_base == uid_base && kept[i].gid_base == gid_base && kept[i].id_count == count)
            return kept[i].fd;
    return -1;
}

void userns_kept_add_fd(unsigned long uid_base, unsigned long gid_base, unsigned long count, int fd)
{
    struct kept_userns *k;

    if (userns_kept_find(uid_base, gid_base, count) >= 0) {
        (void)close(fd);
        return;
    }
    if (n_kept < USERNS_KEPT_MAX) {
        k = &kept[n_kept++];
    } else {
        k = &kept[next_dropped];
        next_dropped = (next_dropped + 1) % USERNS_KEPT_MAX;
        (void)close(k->fd);
    }
    *k = (struct kept_userns){ uid_base, gid_base, count, fd };
}

void userns_kept_add_pid(unsigned long uid_base, unsigned long gid_base, unsigned long count,
                         pid_t pid, int pidfd)
{
    char path[64];
    int fd;

    (void)snprintf(path, sizeof(path), "/proc/%ld/ns/user", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    /* Opened while the pidfd still says the pid is the child's: the namespace is its own. */
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0) {
        (void)close(fd);
        return;
    }
    userns_kept_add_fd(uid_base, gid_base, count, fd);
}
