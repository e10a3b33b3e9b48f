/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * common/user: the name of a uid, for what berth keys by the berth user's
 * name (its /etc/subuid and /etc/subgid entries, its delegated cgroup
 * subtree `berth-<name>`). /etc/passwd is read first, by hand: glibc's
 * getpwuid() parses /etc/nsswitch.conf, asks for nscd and pages in its
 * NSS code on its first use in a process, about 0.12 ms of the ~5 ms a
 * `berth container run` takes (ARCHITECTURE.md, Start time). Users that
 * /etc/passwd does not hold (LDAP, systemd's dynamic users) are asked of
 * NSS, so the answer differs from getpwuid()'s only where nsswitch.conf
 * puts another source before `files` and that source names the uid
 * differently.
 */
#ifndef BERTH_COMMON_USER_H
#define BERTH_COMMON_USER_H

#include <sys/types.h>

/* The user name of `uid` (malloc'ed), or NULL when neither /etc/passwd nor NSS knows it. */
char *user_name_of(uid_t uid);
/* The name of `uid` in the passwd(5) file `path` alone (malloc'ed), or NULL. */
char *user_name_in(const char *path, uid_t uid);

#endif
