/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's internal seams, shared by router.c (daemon and lifecycle),
 * routes.c (route table and upstream pools), proxy.c (the libmicrohttpd side
 * of a request), upstream.c (the upstream event loops) and errors.c (error
 * pages and the access log).
 *
 * Threads: the router runs N loops (epoll threads). Each drives its own
 * libmicrohttpd daemon in external-epoll mode (fed the connections the loop
 * accepts itself) and the upstream sockets of the requests that daemon accepted, so
 * a request lives on one thread from its first byte to its last: no
 * hand-off between threads, and resuming a suspended connection wakes no
 * other thread. A request (struct proxy_req) still has two sides, the MHD
 * side (proxy.c) and the upstream side (upstream.c), each holding a
 * reference; its mutex matters where other threads touch it (router_stop(),
 * route swaps) and costs nothing uncontended.
 */
#ifndef BERTH_ROUTER_INTERNAL_H
#define BERTH_ROUTER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "router/parse.h"
#include "router/router.h"

/* ---------------------------------------------------------------- limits */

#define REQUEST_BODY_MAX (16u * 1024 * 1024)   /* larger buffered (chunked) uploads get 413 */
#define STREAM_BODY_MIN (1u * 1024 * 1024)     /* larger bodies with a Content-Length are streamed */
#define STREAM_BUFFER_MAX (256u * 1024)        /* unsent upload bytes before MHD is paused */
#define RESPONSE_BUFFER_MAX (256u * 1024)      /* upstream reads pause above this */
#define POOL_IDLE_MAX 64                       /* idle upstream connections per (app, generation) */
#define POOL_IDLE_MS 50000                     /* below typical 60 s server keep-alive timeouts */
#define HEAD_TIMEOUT_MS 30000                  /* H12: first response byte within 30 s */
#define IDLE_TIMEOUT_MS 55000                  /* H15: then a rolling 55 s window */
#define ROUTES_MAX 100000
#define REQ_SHARDS 16

uint64_t now_ms(void);

/* ---------------------------------------------------------------- routes.c */

/*
 * Idle keep-alive connections to one (app, generation), one slot per
 * upstream loop: an idle socket stays registered (disarmed, EPOLLONESHOT) in
 * the epoll of the loop that last used it, so it is only ever reused through
 * that loop and reuse costs one epoll_ctl(MOD) instead of ADD plus DEL.
 * Shared by every route table that routes to the pair; marked dead (idle
 * fds closed, returned fds closed) once the current table no longer routes
 * to it.
 */
struct pool_slot {
    int n;
    int fds[POOL_IDLE_MAX];
    uint64_t since[POOL_IDLE_MAX];
    char dynos[POOL_IDLE_MAX][ROUTER_DYNO_MAX];  /* the instance each fd reaches, for the log */
};

struct upstream_pool {
    atomic_int refs;
    pthread_mutex_t lock;
    char *app;
    uint64_t generation;
    bool dead;
    unsigned mark;
    unsigned nslots;
    struct pool_slot *slots;
};

struct route_entry {
    char *host;
    char *app;
    uint64_t generation;
    struct upstream_pool *pool;
};

/* Immutable once published; readers hold a reference. */
struct route_table {
    atomic_int refs;
    size_t n;
    struct route_entry *entries;
    size_t mask;                  /* slots has mask + 1 entries */
    uint32_t *slots;              /* open addressing by host: entry index + 1, 0 = empty */
};

/* `nloops` sizes the pools this build creates. */
struct route_table *route_table_build(const struct router_route *routes, size_t n,
                                      const struct route_table *old, unsigned mark, unsigned nloops);
struct route_table *route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);
const struct route_entry *route_table_lookup(const struct route_table *t, const char *host);
/* Marks the pools of `old` that `cur` (built with `mark`) no longer uses as dead. */
void route_table_retire_pools(const struct route_table *old, unsigned mark);

/* An idle connection registered with loop `slot` (its instance's name in `ret_dyno`), or -1. */
int pool_take(struct upstream_pool *p, unsigned slot, char ret_dyno[ROUTER_DYNO_MAX]);
/* Keeps fd (disarmed in loop `slot`'s epoll) for reuse, or closes it when the pool is dead or full. */
void pool_put(struct upstream_pool *p, unsigned slot, int fd, const char *dyno);
void pool_unref(struct upstream_pool *p);

/* ---------------------------------------------------------------- requests */

/* Why a request ended without a proxied response; indexes the error pages. */
enum router_failure {
    FAIL_NONE,
    FAIL_NO_ROUTE,        /* 404, unknown host */
    FAIL_BAD_REQUEST,     /* 400 H26 */
    FAIL_TOO_LARGE,       /* 413 */
    FAIL_EXPECTATION,     /* 417 H26: an Expect other than 100-continue */
    FAIL_NO_WEB,          /* 503 H14 */
    FAIL_CONNECT,         /* 503 H10 */
    FAIL_TIMEOUT,         /* 503 H12 */
    FAIL_NO_RESPONSE,     /* 503 H13 */
    FAIL_BAD_RESPONSE,    /* 502 H17 */
    FAIL_STOPPING,        /* 503 H24 */
    FAIL_COUNT,
};

enum upstream_state { UP_IDLE, UP_WRITING, UP_HEAD, UP_BODY, UP_DONE };

struct upstream_loop;
struct ws_session;

struct proxy_req {
    atomic_int refs;              /* the MHD side and the upstream side */
    pthread_mutex_t lock;
    struct router *router;
    struct MHD_Connection *conn;
    struct proxy_req *prev, *next;   /* router's list, for router_stop() */
    unsigned shard;

    /* set by the MHD side before the request reaches the upstream loop */
    char *uri;
    char method[16];
    bool is_head;
    bool seen;                    /* the access handler ran once */
    bool handed_off;              /* the upstream loop owns its side */
    bool response_queued;
    enum router_failure failure;  /* an error page to answer with */
    char host[HOST_MAX + 1];
    char request_id[201];
    char fwd[64];
    char dyno[ROUTER_DYNO_MAX];   /* the instance that served it (from connect or the pool) */
    struct route_table *table;
    const struct route_entry *route;
    struct strbuf out;            /* the upstream request: head, then body */
    struct strbuf reqbody;        /* the client's body, de-chunked by MHD */
    bool send_length;             /* the request carries a body: send Content-Length */
    bool stream;                  /* the body goes upstream as it arrives (stream_length bytes) */
    uint64_t stream_length;
    bool upload_blocked;          /* under lock: MHD is suspended until the loop has sent more */
    uint64_t start_ms, connect_ms, service_start_ms;

    /* upstream loop side */
    struct upstream_loop *loop;
    unsigned loop_idx;
    struct proxy_req *lprev, *lnext; /* the loop's active list (loop thread only) */
    struct proxy_req *fresh_next;    /* the loop's lock-free list of new requests */
    int fd;                       /* upstream socket, -1 when none; changed under lock */
    bool in_epoll;                /* fd is registered (armed or not) in the loop's epoll; under lock */
    bool from_pool, retried;
    bool upgrade;                 /* a websocket upgrade request, forwarded as such */
    int ws_fd;                    /* after a 101: the upstream socket, for the tunnel; under lock */
    enum upstream_state ustate;
    size_t written;
    struct strbuf inbuf;          /* response head bytes until parsed */
    struct http_response_head head;
    size_t head_len;              /* bytes of inbuf the head took (parsing rewrote its line ends) */
    uint64_t body_left;           /* BODY_LENGTH */
    struct chunked_decoder chunked;
    bool reusable;
    uint64_t deadline_ms;         /* head timeout, then idle timeout */
    bool paused;                  /* fd taken out of epoll: the client is slower */

    /* shared, under lock */
    bool head_ready;
    bool body_done;
    bool body_error;
    bool mhd_suspended;
    bool client_gone;
    bool aborted;                 /* router_stop(): end the response now */
    bool loop_done;               /* the upstream loop has let go of the request */
    struct strbuf body;           /* bytes waiting for MHD's content reader */
    size_t body_off;
    uint64_t bytes_sent;
    int status;                   /* the status sent to the client */
};

void proxy_req_unref(struct proxy_req *req);
/* Resumes the MHD connection if it is suspended; call with req->lock held. Returns true when the caller must resume it after unlocking. */
bool proxy_req_wake_locked(struct proxy_req *req);

/* ---------------------------------------------------------------- upstream.c */

/* Starts loop number `idx`, which drives `daemon` (MHD_USE_EPOLL, no thread of its own) from now on. */
struct upstream_loop *upstream_loop_start(struct router *r, unsigned idx, struct MHD_Daemon *daemon,
                                          struct berth_error **err);
/* Stops the loop's thread, which stops its daemon first (closing its connections). */
void upstream_loop_stop(struct upstream_loop *l);
/* MHD_resume_connection(), and on a loop's thread: run that loop's daemon before sleeping. */
void upstream_resume(struct MHD_Connection *conn);
/* The loop running on this thread: MHD's callbacks run on it. */
struct upstream_loop *upstream_loop_self(void);
unsigned upstream_loop_index(const struct upstream_loop *l);
/*
 * Hands a request over from its MHD side: writes it upstream as far as the
 * socket takes it and registers the socket with the loop, which owns one
 * reference until it is done with the request.
 */
void upstream_submit(struct upstream_loop *l, struct proxy_req *req);
/* The client side is gone: the loop drops the upstream work and one reference. */
void upstream_cancel(struct upstream_loop *l, struct proxy_req *req);
/*
 * A streamed request's next body bytes: appended to what goes upstream and
 * sent by the loop on its next turn. The caller keeps the unsent total under
 * STREAM_BUFFER_MAX; the loop resumes the MHD side once it has sent half.
 */
void upstream_stream_body(struct proxy_req *req, const char *data, size_t n);
/* The content reader drained the buffer: resume reading the upstream. Call under req->lock. */
void upstream_unpause_locked(struct proxy_req *req);

/* ---------------------------------------------------------------- errors.c */

int error_pages_create(struct MHD_Response *pages[FAIL_COUNT]);
void error_pages_destroy(struct MHD_Response *pages[FAIL_COUNT]);
unsigned failure_status(enum router_failure f);
const char *failure_code(enum router_failure f);
const char *failure_desc(enum router_failure f);
void access_log(const struct proxy_req *req);

/* ---------------------------------------------------------------- websocket.c */

/* Queues the 101 answer whose upgrade handler splices client and app (req->ws_fd). */
enum MHD_Result ws_queue_response(struct proxy_req *req);
/* Closes every tunnel and waits for their threads; before MHD_stop_daemon(). */
void ws_stop_all(struct router *r);

/* ---------------------------------------------------------------- router.c */

struct router {
    struct router_config cfg;
    int listen_fd;                /* the loops accept from it (EPOLLEXCLUSIVE) */
    uint16_t port;
    char port_str[8];
    bool access_log;
    unsigned head_timeout_ms;
    atomic_bool stopping;
    atomic_bool serving;          /* MHD_start_daemon() returned */

    pthread_mutex_t table_lock;   /* guards the `table` pointer, not the table */
    struct route_table *table;
    pthread_mutex_t set_lock;     /* serialises router_set_routes() */
    unsigned mark;

    /*
     * Every live request, for router_stop(); sharded so the loops do
     * not all queue on one lock twice per request.
     */
    struct req_shard {
        pthread_mutex_t lock;
        struct proxy_req *head;
    } shards[REQ_SHARDS];

    unsigned nloops;
    struct upstream_loop **loops;  /* each with its own MHD daemon */

    struct MHD_Response *pages[FAIL_COUNT];

    pthread_mutex_t ws_lock;      /* guards `ws`; ws_cond signals a session ending */
    pthread_cond_t ws_cond;
    struct ws_session *ws;
};

struct route_table *router_current_table(struct router *r);

/* ---------------------------------------------------------------- proxy.c */

void *proxy_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result proxy_access(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls);
/*
 * An upstream socket for req's route: an idle pooled one when allowed, else
 * a fresh one from the connect callback (non-blocking, TCP_NODELAY).
 * Returns the fd or the callback's -errno.
 */
int proxy_get_upstream(struct proxy_req *req, bool allow_pool);
void proxy_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                     enum MHD_RequestTerminationCode toe);

#endif
