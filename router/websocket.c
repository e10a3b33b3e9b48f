/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * WebSocket (any HTTP/1.1 Upgrade to "websocket") passthrough. The request's
 * Upgrade and Connection headers are forwarded; when the app answers 101,
 * the upstream loop lets go of the socket, the MHD side queues an upgrade
 * response with the app's headers, and once MHD hands over the client
 * socket a session thread splices bytes both ways until either side closes.
 * A thread per session (verified in LIBRARIES.md §3) keeps this off the
 * request path; long-lived sockets are few next to requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

struct ws_session {
    struct router *router;
    struct ws_session *prev, *next;
    pthread_t thread;
    bool started;
    int upstream;                 /* owned */
    int client;                   /* MHD's, closed through MHD_upgrade_action() */
    struct MHD_UpgradeResponseHandle *urh;
    char *to_client;              /* bytes the app sent right after its 101 head */
    size_t to_client_len;
    char *to_app;                 /* bytes the client sent right after its request */
    size_t to_app_len;
};

/* Writes everything to a possibly non-blocking socket, waiting while it is full. */
static int write_all_sock(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            (void)poll(&pfd, 1, 60000);
            continue;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Closes both ends; the struct itself stays for the caller to free. */
static void release(struct ws_session *s)
{
    if (s->urh)
        (void)MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
    s->urh = NULL;
    if (s->upstream >= 0)
        (void)close(s->upstream);
    s->upstream = -1;
    free(s->to_client);
    free(s->to_app);
    s->to_client = s->to_app = NULL;
}

static void session_free(struct ws_session *s)
{
    release(s);
    free(s);
}

static void *session_main(void *arg)
{
    struct ws_session *s = arg;
    struct router *r = s->router;
    char buf[16384];
    struct pollfd pfd[2] = { { .fd = s->client, .events = POLLIN }, { .fd = s->upstream, .events = POLLIN } };

    if (write_all_sock(s->upstream, s->to_app, s->to_app_len) < 0 ||
        write_all_sock(s->client, s->to_client, s->to_client_len) < 0)
        goto out;
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            ssize_t n;
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0 || write_all_sock(pfd[1 - i].fd, buf, (size_t)n) < 0)
                goto out;
        }
    }
out:
    /* Either side closing ends the tunnel for both. */
    release(s);
    pthread_mutex_lock(&r->ws_lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        r->ws = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_cond_broadcast(&r->ws_cond);
    pthread_mutex_unlock(&r->ws_lock);
    free(s);
    return NULL;
}

static void upgrade_handler(void *cls, struct MHD_Connection *conn, void *req_cls,
                            const char *extra_in, size_t extra_in_size, MHD_socket sock,
                            struct MHD_UpgradeResponseHandle *urh)
{
    struct ws_session *s = cls;
    struct proxy_req *req = req_cls;
    struct router *r = s->router;

    (void)conn;
    /* The session is the handler's from here on, not the request's (ws_forget()). */
    if (req && req->ws_pending == s)
        req->ws_pending = NULL;
    s->client = sock;
    s->urh = urh;
    if (extra_in_size) {
        s->to_app = xmalloc(extra_in_size);
        memcpy(s->to_app, extra_in, extra_in_size);
        s->to_app_len = extra_in_size;
    }
    pthread_mutex_lock(&r->ws_lock);
    if (!atomic_load(&r->stopping)) {
        pthread_attr_t attr;
        /* Detached: a session unlinks and frees itself; router_stop() waits for the list to empty. */
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        s->next = r->ws;
        if (r->ws)
            r->ws->prev = s;
        r->ws = s;
        if (pthread_create(&s->thread, &attr, session_main, s) == 0) {
            s->started = true;
        } else {
            r->ws = s->next;
            if (r->ws)
                r->ws->prev = NULL;
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&r->ws_lock);
    if (!s->started)
        session_free(s);
}

enum MHD_Result ws_queue_response(struct proxy_req *req)
{
    const struct http_response_head *h = &req->head;
    struct ws_session *s;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    size_t hl;

    s = xcalloc(1, sizeof(*s));
    s->router = req->router;
    s->client = -1;
    pthread_mutex_lock(&req->lock);
    s->upstream = req->ws_fd;
    req->ws_fd = -1;
    pthread_mutex_unlock(&req->lock);
    hl = req->head_len;
    if (req->inbuf.len > hl) {
        s->to_client_len = req->inbuf.len - hl;
        s->to_client = xmalloc(s->to_client_len);
        memcpy(s->to_client, req->inbuf.buf + hl, s->to_client_len);
    }
    /* From the 101 on, the client's bytes are the app's protocol, not HTTP: the guard lets them pass. */
    clients_passthrough(req->conn);
    resp = MHD_create_response_for_upgrade(upgrade_handler, s);
    if (!resp) {
        session_free(s);
        return MHD_NO;
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        const char *name = h->headers[i].name;
        /* MHD writes "Connection: Upgrade" itself; Upgrade names the protocol. */
        if (strcasecmp(name, "Upgrade") != 0 &&
            (http_response_hop_header(h, name) || strcasecmp(name, "Content-Length") == 0))
            continue;
        (void)MHD_add_response_header(resp, name, h->headers[i].value);
    }
    req->status = 101;
    req->response_queued = true;
    /*
     * MHD runs the upgrade handler only once the 101 head went out whole;
     * a client that goes before that ends the request without it. Until
     * the handler runs, the request owns the session (ws_forget()).
     */
    req->ws_pending = s;
    ret = MHD_queue_response(req->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    if (ret != MHD_YES) {
        /* The handler will never run: the session is still ours. */
        req->ws_pending = NULL;
        session_free(s);
    }
    return ret;
}

void ws_forget(struct proxy_req *req)
{
    /* MHD calls this and the upgrade handler on the connection's thread, one after the other. */
    if (req->ws_pending)
        session_free(req->ws_pending);
    req->ws_pending = NULL;
}

void ws_stop_all(struct router *r)
{
    pthread_mutex_lock(&r->ws_lock);
    for (struct ws_session *s = r->ws; s; s = s->next) {
        (void)shutdown(s->upstream, SHUT_RDWR);
        (void)shutdown(s->client, SHUT_RDWR);
    }
    while (r->ws)
        pthread_cond_wait(&r->ws_cond, &r->ws_lock);
    pthread_mutex_unlock(&r->ws_lock);
}
