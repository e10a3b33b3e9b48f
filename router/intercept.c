/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The two reads the router takes from libmicrohttpd (clients.c says why):
 * recv(), through which MHD reads plain client connections (and GnuTLS
 * reads the encrypted bytes of TLS ones), and gnutls_record_recv(),
 * through which MHD reads the decrypted bytes of TLS connections. Both are
 * defined here, in the executable, and exported (router/meson.build), so
 * the dynamic linker binds every library's calls to them ahead of glibc's
 * and GnuTLS's own. Each calls the real function, then hands what was
 * read to clients_filter(), which passes through anything that is not a
 * client connection's HTTP bytes on a router loop.
 *
 * _FORTIFY_SOURCE is off in this file alone: with it, glibc's headers make
 * recv() an inline wrapper that cannot be redefined.
 */
#undef _FORTIFY_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "router/internal.h"

ssize_t recv(int fd, void *buf, size_t len, int flags);
ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t data_size);

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    ssize_t n;

    /* A connection the front handed over: what the front read comes first (the guard has seen it). */
    if (!(flags & MSG_PEEK) && (n = clients_unstash(fd, buf, len)) >= 0)
        return n;
    /* recvfrom() is what glibc's recv() does; calling it needs no lookup of the real one. */
    n = recvfrom(fd, buf, len, flags, NULL, NULL);

    if (n <= 0 || (flags & MSG_PEEK))
        return n;
    return clients_filter(fd, false, buf, n, NULL, NULL);
}

typedef ssize_t (*record_recv_fn)(gnutls_session_t, void *, size_t);
typedef ssize_t (*record_send_fn)(gnutls_session_t, const void *, size_t);

static record_recv_fn real_record_recv;
static record_send_fn real_record_send;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve(void)
{
    real_record_recv = (record_recv_fn)dlsym(RTLD_NEXT, "gnutls_record_recv");
    real_record_send = (record_send_fn)dlsym(RTLD_NEXT, "gnutls_record_send");
}

static ssize_t write_tls(void *ctx, const char *buf, size_t len)
{
    return real_record_send ? real_record_send(ctx, buf, len) : -1;
}

ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t data_size)
{
    ssize_t n;

    (void)pthread_once(&resolve_once, resolve);
    if (!real_record_recv)
        return GNUTLS_E_INTERNAL_ERROR;
    n = real_record_recv(session, data, data_size);
    if (n <= 0)
        return n;
    n = clients_filter(gnutls_transport_get_int(session), true, data, n, write_tls, session);
    /* A refusal: MHD sees a failed read and closes the connection. */
    return n < 0 ? GNUTLS_E_PULL_ERROR : n;
}

bool intercept_active(void)
{
    /* What the dynamic linker binds everyone's calls to is ours only if the executable exports ours. */
    return dlsym(RTLD_DEFAULT, "recv") == (void *)recv &&
           dlsym(RTLD_DEFAULT, "gnutls_record_recv") == (void *)gnutls_record_recv;
}
