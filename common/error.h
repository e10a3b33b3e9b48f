/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The error type every berth module uses (STYLE.md §7, after crun's
 * libcrun_error_t): a fallible function returns int, >= 0 on success and
 * -errno on failure, and fills `*err` with a message when it takes a
 * `struct berth_error **err` as its last parameter.
 *
 *     return berth_error_make(err, errno, "open '%s'", path);
 *     return berth_error_wrap(err, "creating cgroup '%s'", p);
 *
 * Messages follow git's rules: lowercase, no full stop, subject in single
 * quotes. `err` may be NULL when the caller does not want a message. A
 * function only ever sets `*err` when it returns < 0, and `*err` must be NULL
 * on entry.
 */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

struct berth_error {
    int code;   /* a positive errno value */
    char *msg;
};

/*
 * Creates the error with `code` (an errno; 0 becomes EIO) and the formatted
 * message, appending strerror(code) when `code` came from the system.
 * Returns -code so that building and returning is one statement.
 */
int berth_error_make(struct berth_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like berth_error_make but without the ": strerror" suffix. */
int berth_error_plain(struct berth_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Prefixes context ("ctx: old message"); returns -code of the wrapped error
 * (with err == NULL, the code of the last error this thread made unreported).
 */
int berth_error_wrap(struct berth_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The errno of *err, or 0 when there is none. */
int berth_error_code(struct berth_error **err);
/* The message, or "" when there is none. Owned by the error. */
const char *berth_error_msg(struct berth_error **err);
/* Frees *err (NULL is fine) and sets it to NULL. */
void berth_error_release(struct berth_error **err);

#endif
