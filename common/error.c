/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * berth_error implementation (see error.h).
 */
#include "common/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "common/xalloc.h"

/*
 * The code of the last error made on this thread with err == NULL, so that
 * berth_error_wrap(NULL, ...) can still return the real -errno.
 */
static __thread int last_unreported_code;

static int make(struct berth_error **err, int code, int with_strerror, const char *fmt, va_list ap)
{
    struct strbuf sb = STRBUF_INIT;

    if (code <= 0)
        code = code < 0 ? -code : EIO;
    if (!err) {
        last_unreported_code = code;
        return -code;
    }
    strbuf_vaddf(&sb, fmt, ap);
    if (with_strerror)
        strbuf_addf(&sb, ": %s", strerror(code));
    berth_error_release(err);
    *err = xcalloc(1, sizeof(**err));
    (*err)->code = code;
    (*err)->msg = strbuf_detach(&sb, NULL);
    return -code;
}

int berth_error_make(struct berth_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = make(err, code, 1, fmt, ap);
    va_end(ap);
    return r;
}

int berth_error_plain(struct berth_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = make(err, code, 0, fmt, ap);
    va_end(ap);
    return r;
}

int berth_error_wrap(struct berth_error **err, const char *fmt, ...)
{
    struct strbuf sb = STRBUF_INIT;
    va_list ap;

    if (!err)
        return last_unreported_code ? -last_unreported_code : -EIO;
    if (!*err)
        return berth_error_plain(err, EIO, "internal error: wrapping no error");
    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    strbuf_addf(&sb, ": %s", (*err)->msg);
    free((*err)->msg);
    (*err)->msg = strbuf_detach(&sb, NULL);
    return -(*err)->code;
}

int berth_error_code(struct berth_error **err)
{
    return err && *err ? (*err)->code : 0;
}

const char *berth_error_msg(struct berth_error **err)
{
    return err && *err ? (*err)->msg : "";
}

void berth_error_release(struct berth_error **err)
{
    if (!err || !*err)
        return;
    free((*err)->msg);
    free(*err);
    *err = NULL;
}
