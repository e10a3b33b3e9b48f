/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The router's internal seams, shared by router.c (daemons, listeners and
 * life cycle), routes.c (route tables, targets and upstream pools),
 * clients.c (client connections: the guard on every byte, per-address
 * limits, head deadlines), tls.c (certificates chosen by SNI), proxy.c (the
 * libmicrohttpd side of a request), connect.c (sockets into backends
 * through their port agents, never waited on), upstream.c (the event loops
 * and the upstream side of a request), errors.c (error pages, the access
 * log), websocket.c (upgraded connections) and probe.c (probes: a backend
 * reached by a secret before any table names it).
 *
 * Threads: the router runs N loops (epoll threads). Each accepts client
 * connections itself and drives its own libmicrohttpd daemons (HTTP, and
 * HTTPS when configured) in external-epoll mode, the upstream sockets of
 * the requests those daemons accepted, and its own channels to the
 * backends' port agents; so a request lives on one thread from its first
 * byte to its last. A request (struct proxy_req) still has two sides, the
 * MHD side (proxy.c) and the upstream side (upstream.c), each holding a
 * reference; its mutex matters where other threads touch it
 * (router_stop()) and costs nothing uncontended.
 */
#ifndef BERTH_ROUTER_INTERNAL_H
#define BERTH_ROUTER_INTERNAL_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "router/guard.h"
#include "router/parse.h"
#include "router/router.h"

/* Linux 6.15's <linux/tcp.h> (a socket's floor for its retransmission timeout); Debian 12's headers predate it. */
#ifndef TCP_RTO_MIN_US
#define TCP_RTO_MIN_US 45
#endif

/* ---------------------------------------------------------------- limits */

#define SMALL_BODY_MAX (64u * 1024)             /* bodies up to this with a Content-Length are sent whole (retryable) */
#define STREAM_BUFFER_MAX (64u * 1024)          /* unsent upload bytes before MHD is paused */
#define RESPONSE_BUFFER_MAX (64u * 1024)        /* upstream reads pause above this */
#define POOL_IDLE_MAX 64                        /* idle upstream connections per (backend, loop) */
#define POOL_IDLE_MS 50000                      /* below typical 60 s server keep-alive timeouts */
#define QUARANTINE_MS 5000                      /* a refused or slow backend is skipped this long */
#define FRESH_RTO_MIN_US 10000                  /* a new upstream connection's retransmission floor (upstream.c) */
#define KERNEL_RTO_MIN_US 200000                /* the kernel's TCP_RTO_MIN, given back once it has answered */
#define DEFAULT_CONNECT_TIMEOUT_MS 5000         /* H19 */
#define DEFAULT_HEAD_TIMEOUT_MS 30000           /* H12: first response byte within 30 s */
#define DEFAULT_IDLE_TIMEOUT_MS 55000           /* H15: then a rolling 55 s window */
#define CLIENT_HEAD_TIMEOUT_MS 10000            /* H28: a request head arrives whole within 10 s */
#define CLIENT_IDLE_S 60                        /* Heroku: idle keep-alive client connections close after 1 minute */
#define CONNECTION_LIMIT_MAX 20000u             /* client connections, whatever the fd limit allows */
#define PER_ADDRESS_DEFAULT 1000u               /* client connections from one address */
#define BUDGET_DEFAULT (256ull << 20)           /* bytes buffered for requests and responses, router-wide */
#define SET_COOKIE_MAX 8192                     /* H25, as Heroku */
#define ROUTES_MAX 100000
#define LOOPS_MAX 64

uint64_t now_ms(void);

/* Every object whose pointer is an epoll event's data starts with its kind (upstream sockets: UPSTREAM_EV_TAG). */
enum ev_kind { EV_CHANNEL = 1, EV_CLIENT };

/* ---------------------------------------------------------------- routes.c */

/*
 * One backend of one target (app, generation), as every loop sees it: the
 * requests it has outstanding, whether it failed lately (quarantine), and
 * its idle keep-alive connections, one slot per loop: an idle socket stays
 * registered (edge-triggered, keyed by its fd: upstream.c) in the epoll of
 * the loop that last used it, so it is only ever reused through that loop
 * and reuse costs no epoll_ctl at all. Keeping the idle connections by
 * backend is what lets the balancer choose first and reuse second: a
 * request takes an idle connection to the backend it chose, never one to
 * another backend. Shared by every route table that routes the target to
 * this backend (a new table of the same generation takes it over from the
 * old one, counters and all); marked dead (idle fds closed, returned fds
 * closed) once the current table no longer routes the target to it, so a
 * connection to a backend the table dropped is never reused.
 */
struct pool_slot {
    pthread_mutex_t lock;         /* its loop's, but pool_kill() may come from elsewhere */
    int epfd;                     /* its loop's epoll, which the idle fds are registered in */
    int n;
    int fds[POOL_IDLE_MAX];
    uint64_t since[POOL_IDLE_MAX];
    /* Admission (connect.c): its loop's alone, no lock. */
    unsigned open;                /* this loop's requests on new connections to the backend, until they end */
    unsigned cap;                 /* how many may be (0: no cap) */
    unsigned grown;               /* connections made since the cap last grew */
    unsigned ceiling;             /* `open` when a dial last lost its SYN (0: none lost yet) */
    unsigned waiting;             /* requests on the list below */
    struct proxy_req *wait_head, *wait_tail;   /* requests waiting for room, oldest first */
    struct pool_slot *next_ready; /* on the connector's list: room and waiters */
    bool on_ready;
};

struct upstream_pool {
    /* Touched by every loop on every request: a cache line of their own (the pool is allocated aligned). */
    _Alignas(64) atomic_uint outstanding;   /* requests routed here and not finished (connect.c counts them) */
    _Atomic uint64_t quarantine_until;      /* ms (now_ms()): skipped by every loop until then */
    _Alignas(64) atomic_int refs;
    atomic_bool dead;             /* the current table no longer routes here */
    unsigned mark;                /* written by router_set_routes() callers only (set_lock) */
    unsigned nslots;
    struct pool_slot *slots;
};

struct route_backend {
    void *backend;                /* control's, held by the table */
    const char *name;             /* ops->name(backend) */
    struct upstream_pool *pool;   /* held by the table */
};

/* One app as a table routes to it: shared by the app's default host and its domains. */
struct route_target {
    char *app;
    uint64_t generation;
    struct router_app_settings settings;   /* the defaults filled in */
    bool blank;                   /* nothing deployed yet: 503 H81 */
    struct route_backend *backends;
    size_t n_backends;
};

struct route_entry {
    char *host;                   /* normalised; a wildcard is kept without its "*" (".example.com") */
    bool wildcard;
    struct route_target *target;
};

/* Immutable once published; readers hold a reference. */
struct route_table {
    atomic_int refs;
    const struct router_backend_ops *ops;
    size_t n;
    struct route_entry *entries;
    size_t n_targets;
    struct route_target *targets;
    size_t mask;                  /* slots has mask + 1 entries */
    uint32_t *slots;              /* open addressing by host: entry index + 1, 0 = empty */
    bool has_wildcards;
    size_t bmask;                 /* bset has bmask + 1 entries */
    void **bset;                  /* every backend the table names, by pointer (open addressing) */
};

/* Builds a table from routes with normalised hosts; `nloops` sizes the pools it creates. */
int route_table_build(const struct router_route *routes, size_t n, const struct route_table *old,
                      unsigned mark, unsigned nloops, const struct router_backend_ops *ops,
                      const struct router_app_settings *defaults, struct route_table **ret,
                      struct berth_error **err);
struct route_table *route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);
/* The target for a normalised host: the exact name, else the longest wildcard that covers it. */
const struct route_target *route_table_lookup(const struct route_table *t, const char *host);
/* Whether the table names `backend` (loops close channels to backends no table names). */
bool route_table_has_backend(const struct route_table *t, const void *backend);
/* Marks the pools of `old` that `cur` (built with `mark`) no longer uses as dead. */
void route_table_retire_pools(const struct route_table *old, unsigned mark);

/*
 * An idle connection to the pool's backend registered with loop `slot`, or
 * -1 (always -1 once the pool is dead). A connection that has bytes nobody
 * asked for, or is closed, is discarded, never reused.
 */
int pool_take(struct upstream_pool *p, unsigned slot);
/*
 * Keeps fd (registered in loop `slot`'s epoll `epfd`, no request mapped to
 * it) for reuse, or closes it when the pool is dead or full.
 */
void pool_put(struct upstream_pool *p, unsigned slot, int fd, int epfd);
void pool_unref(struct upstream_pool *p);
/* Every loop skips the backend until `until` (now_ms()), unless no other is left. */
void pool_quarantine(struct upstream_pool *p, uint64_t until);
bool pool_quarantined(const struct upstream_pool *p, uint64_t now);
/*
 * For tests only (router/tests/test-router-balance.c), not for the router
 * itself: the outstanding requests of each backend that r's current table
 * names for `host` (normalised), in the route's order, into counts[] (at
 * most max of them). Returns the target's number of backends, or -1 when
 * the host has no route.
 */
ssize_t route_outstanding_for_test(struct router *r, const char *host, unsigned *counts, size_t max);
/*
 * For tests: the admission state (connect.c) of the first backend of
 * `host` on loop 0, as {open, cap, waiting, ceiling}; -1 without a route. The loop
 * thread writes these plain counters while this reads them: a snapshot
 * for a test that knows the loop is idle or waiting, nothing more.
 */
int route_admission_for_test(struct router *r, const char *host, unsigned out[4]);

/* ---------------------------------------------------------------- requests */

/* Why a request ended without a proxied response; indexes the error pages. */
enum router_failure {
    FAIL_NONE,
    FAIL_NO_ROUTE,        /* 404, unknown host */
    FAIL_BAD_REQUEST,     /* 400 H26 */
    FAIL_EXPECTATION,     /* 417 H26: an Expect other than 100-continue */
    FAIL_NO_WEB,          /* 503 H14: no backend */
    FAIL_BLANK,           /* 503 H81: nothing deployed yet */
    FAIL_MAINTENANCE,     /* 503 H80: the app is in maintenance mode */
    FAIL_CRASHED,         /* 503 H10: the backend is gone */
    FAIL_REFUSED,         /* 503 H21: connection refused */
    FAIL_CONNECT_TIMEOUT, /* 503 H19 */
    FAIL_TIMEOUT,         /* 503 H12 */
    FAIL_NO_RESPONSE,     /* 503 H13 */
    FAIL_BAD_RESPONSE,    /* 502 H17 */
    FAIL_RESTRICTED,      /* 502 H25: oversized response header or cookie */
    FAIL_OVERLOADED,      /* 503 H11: the router's buffer budget is spent */
    FAIL_STOPPING,        /* 503 H24 */
    FAIL_COUNT,
};

enum upstream_state { UP_IDLE, UP_CONNECTING, UP_WRITING, UP_HEAD, UP_BODY, UP_DONE };

struct upstream_loop;
struct ws_session;
struct channel;
struct client_conn;
struct cert_set;
struct front_conn;

struct proxy_req {
    atomic_int refs;              /* the client side (MHD's or the front's) and the upstream side */
    struct router *router;
    struct MHD_Connection *conn;
    struct front_conn *front;     /* the front's connection it came on (front.c), else NULL (MHD's); under lock */
    struct proxy_req *prev, *next;   /* its loop's list in the router, for router_stop() */
    unsigned shard;               /* which list: its loop's index */

    /* set by the MHD side before the request reaches the upstream loop */
    char *uri;                    /* the request-target, as the app gets it (origin-form) */
    char method[16];
    bool is_head;
    bool tls;                     /* came in on the HTTPS listener */
    bool seen;                    /* the access handler ran once */
    bool handed_off;              /* the upstream loop owns its side */
    bool response_queued;
    enum router_failure failure;  /* an error page to answer with */
    bool redirect;                /* https_only: answer with a redirect to https:// */
    char host[HOST_MAX + 1];
    char request_id[201];
    char fwd[INET6_ADDRSTRLEN];
    char dyno[ROUTER_DYNO_MAX];   /* the backend that served it */
    struct route_table *table;
    const struct route_target *target;
    uint64_t body_length;         /* the client's Content-Length, when it sent one */
    bool stream;                  /* the body goes upstream as it arrives */
    bool chunked_up;              /* ... re-chunked (the client sent it chunked) */
    bool upload_done;             /* the whole body is in `out` */
    bool upload_blocked;          /* under lock: MHD is suspended until the loop has sent more */
    uint64_t budget;              /* bytes of the router's budget this request holds */
    uint64_t start_ms, connect_ms, service_start_ms;

    /* upstream loop side */
    struct upstream_loop *loop;
    unsigned loop_idx;
    struct proxy_req *lprev, *lnext; /* the loop's active list (loop thread only) */
    int fd;                       /* upstream socket, -1 when none; changed under lock */
    bool in_epoll;                /* fd is registered in the loop's epoll (mapped to req once watched); under lock */
    bool from_pool;               /* fd came from the pool (false for a new connection: upstream_rto_fresh()) */
    bool retried;
    bool upgrade;                 /* a websocket upgrade request, forwarded as such */
    int ws_fd;                    /* after a 101: the upstream socket, for the tunnel; under lock */
    struct ws_session *ws_pending;   /* a 101 queued whose upgrade handler has not run: ours to free (MHD's thread) */
    enum upstream_state ustate;
    uint64_t connect_id;          /* UP_CONNECTING: the agent request's id */
    struct channel *channel;      /* UP_CONNECTING: where it was asked */
    struct proxy_req *pending_next;   /* UP_CONNECTING: the connector's map by id */
    struct proxy_req *queue_next;     /* UP_CONNECTING: its channel's queue, while not sent yet */
    struct pool_slot *admitted;   /* the slot (its backend, this loop) whose `open` counts req, or NULL */
    struct pool_slot *wait_slot;  /* UP_CONNECTING: the slot req waits on for room, or NULL */
    struct proxy_req *wait_next;  /* ... its list */
    bool dialing;                 /* UP_CONNECTING: fd is a stock socket the loop is connecting (connect.c) */
    uint64_t dial_start_ms;
    struct proxy_req *dial_prev, *dial_next;   /* while dialing: the connector's list, oldest first */
    const struct route_backend *backend;   /* the backend tried or used */
    struct upstream_pool *counted;   /* the pool whose outstanding count req adds one to, or NULL */
    uint64_t tried[2];            /* backends tried (bit i: target->backends[i]; past 128, random retries) */
    unsigned attempts;
    uint64_t connect_start_ms;
    enum router_failure last_failure;   /* of the last backend tried, for when none is left */
    size_t written;
    size_t head_len;              /* bytes of inbuf the head took (parsing rewrote its line ends) */
    uint64_t body_left;           /* BODY_LENGTH */
    struct chunked_decoder chunked;
    bool reusable;
    uint64_t deadline_ms;         /* connect, head, then idle timeout */
    bool paused;                  /* the loop leaves fd unread: the client is slower */
    const char *end_code;         /* a code for the log line when the body failed (H15, H18) */

    /* shared, under lock */
    bool head_ready;
    bool body_done;
    bool body_error;
    bool mhd_suspended;
    bool client_gone;
    bool aborted;                 /* router_stop(): end the response now */
    bool loop_done;               /* the upstream loop has let go of the request */
    size_t body_off;
    uint64_t bytes_sent;
    int status;                   /* the status sent to the client */

    /*
     * Kept when a loop recycles the request for its next one (proxy.c):
     * not cleared, the buffers keep their memory, and the head (2 KiB) is
     * set by the parser as far as it is filled in.
     */
    pthread_mutex_t lock;
    struct strbuf out;            /* the upstream request: head, then body */
    struct strbuf reqbody;        /* a small body, collected to go out whole */
    struct strbuf inbuf;          /* response head bytes until parsed */
    struct strbuf body;           /* bytes waiting for MHD's content reader; shared, under lock */
    struct http_response_head head;
};

void proxy_req_unref(struct proxy_req *req);
/* Frees the requests this loop thread keeps for reuse (when idle, and when it ends). */
void proxy_req_cache_trim(void);
/* Resumes the MHD connection if it is suspended; call with req->lock held. Returns true when the caller must resume it after unlocking. */
bool proxy_req_wake_locked(struct proxy_req *req);

/*
 * The router's buffer budget: bytes held for requests and responses. A
 * request takes what it buffers and gives it back when done; new requests
 * get 503 H11 while the budget is spent, never an abort.
 */
bool budget_take(struct router *r, struct proxy_req *req, uint64_t bytes);
void budget_release_all(struct router *r, struct proxy_req *req);

/* ---------------------------------------------------------------- connect.c */

/* The file-descriptor limit under which the connector keeps no stocks (router.c's connection_limit()). */
#define STOCK_FD_MIN 8192

/*
 * One loop's connector: its channels to the backends' port agents (one per
 * backend, opened on first use, each held in the loop's epoll) with their
 * stocks of unconnected sockets, the requests waiting for an answer, by id,
 * and those dialing a stock socket. Loop thread only.
 */
struct connector;
struct connector *connector_new(struct router *r, int epfd);
/* Closes every channel; requests still waiting must have been failed first. */
void connector_free(struct connector *c);
/*
 * Gives req a backend of its target: the one with the fewest outstanding
 * requests (ties at random), quarantined ones last, never one it tried
 * already. With allow_pool, an idle connection to that backend is taken
 * when its pool has one: req->fd is set, req->from_pool too, and the caller
 * submits it (upstream_submit()). Else req waits in UP_CONNECTING: on a
 * socket of the channel's stock that the loop connects itself (req->fd
 * set, req->dialing: the caller submits it too, which sends the request
 * as soon as the connection is up), or, with no stock, for the answer to a
 * connect asked on the loop's channel to that backend, or, while the
 * backend's admission cap is reached, for room (connect_admit_waiting()
 * then starts it). From here until connect_leave(), req counts as one of
 * the backend's outstanding requests (a retry first lets go of the backend
 * it leaves). Returns FAIL_NONE, or the failure to answer with when no
 * backend can be asked (req then counts nowhere).
 */
enum router_failure connect_begin(struct connector *c, struct proxy_req *req, bool allow_pool);
/* req no longer counts against its backend: its upstream side ended (finish()). Idempotent. */
void connect_leave(struct proxy_req *req);
/* A channel's epoll event: sends what waits in its queue, reads every answer (each goes to upstream_connected()). */
void connect_on_channel(struct connector *c, struct channel *ch, uint32_t events);
/* req timed out or went away while connecting: it no longer waits for its answer. */
void connect_forget(struct connector *c, struct proxy_req *req);
/*
 * Closes channels to backends the current table no longer names, and the
 * stock of channels no connection came from since the last sweep.
 */
void connect_sweep(struct connector *c, const struct route_table *current);
/* The event of a dialing request's socket: connected (upstream_dialled()) or failed (upstream_connected() with the errno). */
void connect_on_dial(struct connector *c, struct proxy_req *req, uint32_t events);
/* req's dial is known to have connected (a send went through): it leaves the dialing list. */
void connect_dial_done(struct connector *c, struct proxy_req *req);
/*
 * Dials that have waited CONNECT_DIAL_WAIT_MS without completing (a SYN the
 * app's full accept queue dropped, which the kernel would send again only
 * after a second) give up their socket and ask the agent, which dials again
 * every few milliseconds (runner/agent.c). Called every loop turn.
 */
void connect_expire_dials(struct connector *c, uint64_t now);
/* How long the loop may sleep, at most `cap` ms: until the oldest dial expires. */
int connect_dial_wait_ms(const struct connector *c, int cap);
/*
 * For tests: dials wait `ms` instead of CONNECT_DIAL_WAIT_MS, so one can
 * outlive a dropped SYN's retransmit and complete through EPOLLOUT (0:
 * back to the default). Set while no router runs (the loops read it
 * unlocked).
 */
void connect_dial_wait_for_test(int ms);
/*
 * Admission: requests waiting for room on a backend (its accept queue
 * overflowed, see connect.c) start their connects as room frees. Called
 * every loop turn, after the events.
 */
void connect_admit_waiting(struct connector *c);
/* req's connection is up (a dial or the agent's): the backend's cap may grow. */
void connect_succeeded(struct proxy_req *req);
/*
 * After how many connections made while it binds a cap grows by one, given
 * `ceiling`, the `open` at the last lost SYN (connect.c, Admission). Only a
 * loss sets a cap, so a cap always comes with its ceiling.
 */
unsigned connect_admit_grow_after(unsigned cap, unsigned ceiling);
/* What the loop does with an answer: a socket (>= 0), or the connect's errno (sock < 0). */
void upstream_connected(struct upstream_loop *l, struct proxy_req *req, int sock, int err);
/* req's dial completed: its socket (req->fd, registered in the loop's epoll) is connected. */
void upstream_dialled(struct upstream_loop *l, struct proxy_req *req);
/* Takes req's upstream socket off it and closes it, out of the loop's epoll first when it is in it. */
void upstream_close_socket(struct upstream_loop *l, struct proxy_req *req);
/* fd, a new upstream connection (or a socket about to be one), gets the short retransmission floor (upstream.c). */
void upstream_rto_fresh(int fd);

/* ---------------------------------------------------------------- loop.c */

struct cmd;

/* One event loop: its fields are its thread's alone, except the queue under qlock. */
struct upstream_loop {
    struct router *r;
    unsigned idx;
    struct MHD_Daemon *daemons[2];   /* HTTP, and HTTPS or NULL; driven by this loop only */
    bool mhd_again[2];             /* a daemon has work without a new event: run it next turn */
    bool mhd_resumed;              /* this loop resumed a connection: the daemons must run */
    uint64_t last_mhd_run;
    uint64_t last_event;           /* the last turn with an event or an active request */
    bool busy_since_trim;          /* events or requests since the last malloc_trim() */
    pthread_t thread;
    int epfd;
    int evfd;
    pthread_mutex_t qlock;
    struct cmd *qhead, *qtail;     /* cancellations, under qlock */
    bool stop;                     /* under qlock */
    struct proxy_req *active;      /* requests the upstream side owns */
    struct connector *connector;
    uint64_t last_scan, last_sweep;
    /*
     * The request each upstream socket of this loop serves, by fd (NULL
     * for an idle one): the socket's epoll data is its fd, so that it is
     * registered once for its whole life (upstream.c).
     */
    struct proxy_req **by_fd;
    unsigned by_fd_cap;
};

struct upstream_loop *upstream_loop_start(struct router *r, unsigned idx, struct MHD_Daemon *http,
                                          struct MHD_Daemon *https, struct berth_error **err);
/* Stops the loop's thread, which stops its daemons first (closing their connections). */
void upstream_loop_stop(struct upstream_loop *l);
/* MHD_resume_connection(), and on a loop's thread: run that loop's daemons before sleeping. */
void upstream_resume(struct MHD_Connection *conn);
/* The loop running on this thread: MHD's callbacks run on it. */
struct upstream_loop *upstream_loop_self(void);
unsigned upstream_loop_index(const struct upstream_loop *l);
struct router *upstream_loop_router(const struct upstream_loop *l);
/* The client side is gone: the loop drops the upstream work and one reference (any thread). */
void upstream_cancel(struct upstream_loop *l, struct proxy_req *req);

/* ---------------------------------------------------------------- upstream.c */

/*
 * Hands a request over from its MHD side once it has a pooled socket
 * (req->fd) to its backend (req->backend, named in req->dyno then):
 * writes it upstream as far as the socket takes it and registers the
 * socket with the loop, which owns one reference until it is done.
 */
void upstream_submit(struct upstream_loop *l, struct proxy_req *req);
/* Puts a request under the loop's timeout scan (a request waiting for a socket, say). */
void upstream_track(struct upstream_loop *l, struct proxy_req *req);
/*
 * The epoll data of an upstream socket: this tag and its fd. Pointers, the
 * data of every other fd, never have the top bit set in user space.
 */
#define UPSTREAM_EV_TAG (1ull << 63)
/* An upstream socket's event: to the request it serves, if any. */
void upstream_on_fd_event(struct upstream_loop *l, int fd, uint32_t events);
/* Forgets the loop's map of sockets to requests (the loop is stopped). */
void upstream_map_free(struct upstream_loop *l);
/* The client side went away: ends the upstream side unless it already ended. */
void upstream_drop(struct upstream_loop *l, struct proxy_req *req);
/* Times out the loop's requests whose deadline passed. */
void upstream_scan_timeouts(struct upstream_loop *l, uint64_t now);
/*
 * A streamed request's next body bytes (already framed): appended to what
 * goes upstream and sent by the loop on its next turn. The caller keeps the
 * unsent total under STREAM_BUFFER_MAX; the loop resumes the MHD side once
 * it has sent half. Call on the loop's thread.
 */
void upstream_stream_body(struct proxy_req *req, const char *data, size_t n);
/* The content reader drained the buffer: resume reading the upstream. Call under req->lock. */
void upstream_unpause_locked(struct proxy_req *req);
/* Fails a request the loop owns with `f` (an error page, or a cut response). */
void upstream_fail(struct upstream_loop *l, struct proxy_req *req, enum router_failure f);

/* ---------------------------------------------------------------- clients.c */

/*
 * Accepts one client connection from `listen_fd` (TLS or not), counts it
 * against its address's limit and gives it to `daemon`. Returns whether
 * the daemon got one.
 */
bool clients_accept(struct upstream_loop *l, int listen_fd, struct MHD_Daemon *daemon, bool tls);
/* MHD_OPTION_NOTIFY_CONNECTION: a client connection started or closed. */
void clients_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe);
/* A response started (or ended) on the connection: a refusal then writes no page over it. */
void clients_set_busy(struct MHD_Connection *conn, bool busy);
/* Closes the loop's client connections whose request head is overdue (H28). */
void clients_scan(struct upstream_loop *l, uint64_t now);
/* A connection switched protocols (101): its bytes are no longer HTTP. */
void clients_passthrough(struct MHD_Connection *conn);
/* The client's address, as X-Forwarded-For and the log name it. */
const char *clients_address(struct MHD_Connection *conn);
/*
 * Ends a client connection whose request failed while its body was still
 * coming in (MHD would answer only once the whole body is read): the
 * failure's page goes out now (plain HTTP, no response started), then the
 * socket is shut down.
 */
void clients_abort(struct MHD_Connection *conn, enum router_failure f);
/* A TLS connection's handshake picked from `set`: the connection holds it until it closes. */
bool clients_hold_certs(int fd, struct cert_set *set);
/*
 * What intercept.c hands over: `n` bytes just read from fd (TLS: decrypted).
 * Returns n, or -1 with errno ECONNRESET when the connection is refused;
 * write_page (NULL: a plain send) writes the refusal's page.
 */
ssize_t clients_filter(int fd, bool tls, char *buf, ssize_t n,
                       ssize_t (*write_page)(void *ctx, const char *buf, size_t len), void *ctx);
/*
 * intercept.c: whether the dynamic linker binds every recv() and
 * gnutls_record_recv() to the router's (the executable exports them), so
 * the guard sees every byte; router_start() refuses to run without it.
 */
bool intercept_active(void);
/* The registry and limits of one router; the fd table is shared by every router in the process. */
int clients_global_init(struct router *r, unsigned nloops, struct berth_error **err);
void clients_global_free(struct router *r);

/* Gives a front connection (front.c) to the loop's HTTP daemon, with `n` bytes the front read first. Returns whether MHD took it (else it is closed). */
bool clients_handover(struct upstream_loop *l, int fd, const char *bytes, size_t n);
/* The front closes fd: the registry and the counts let go of it (the caller closes it). */
void clients_release(int fd);
/* The interposed recv(): bytes a handed-over connection's front read, given back first; -1 when there are none. */
ssize_t clients_unstash(int fd, void *buf, size_t len);

/* ---------------------------------------------------------------- front.c */

/* Takes a plain client connection (accepted and counted by clients.c) into the loop. Returns false when it could not (the caller closes it). */
bool front_adopt(struct upstream_loop *l, int fd, const char *fwd);
/* A front connection's socket event. */
void front_on_event(struct upstream_loop *l, struct front_conn *fc, uint32_t events);
/* The upstream side has news for the connection's request; it is served after this batch of events. */
void front_wake(struct front_conn *fc);
/* Serves the connections woken during this turn. */
void front_run_ready(struct upstream_loop *l);
/* Closes idle and stalled front connections. */
void front_scan(struct upstream_loop *l, uint64_t now);
/* The loop ends: every front connection closes. */
void front_close_all(struct upstream_loop *l);

/* ---------------------------------------------------------------- tls.c */

struct cert_set;
/* Parses the certificates into a set (PEM in, GnuTLS keys out). */
int tls_cert_set_build(const struct router_cert *certs, size_t n, struct cert_set **ret,
                       struct berth_error **err);
struct cert_set *tls_cert_set_ref(struct cert_set *s);
void tls_cert_set_unref(struct cert_set *s);
/*
 * For MHD_OPTION_HTTPS_CERT_CALLBACK (a gnutls_certificate_retrieve_function2):
 * picks the certificate by SNI from the router's current set, which the
 * connection then holds (clients_hold_certs()).
 */
gnutls_certificate_retrieve_function2 *tls_cert_callback(void);

/* ---------------------------------------------------------------- errors.c */

int error_pages_create(struct MHD_Response *pages[FAIL_COUNT], size_t lengths[FAIL_COUNT]);
void error_pages_destroy(struct MHD_Response *pages[FAIL_COUNT]);
unsigned failure_status(enum router_failure f);
const char *failure_code(enum router_failure f);
const char *failure_desc(enum router_failure f);
/* The whole answer for f as raw bytes (status line, headers with Connection: close, page). */
void failure_answer(enum router_failure f, struct strbuf *out);
/* The same for a connection that may stay open: the page only with `body`, Connection: close only with `close`. */
void failure_answer_keep(enum router_failure f, bool body, bool close, struct strbuf *out);
/* One access log line for a finished request, into the loop's buffer. */
void access_log(const struct proxy_req *req);
/*
 * A line about a client connection the router refused outside a request
 * (the guard, a limit, a head deadline). Lines are buffered per thread.
 */
void access_log_refusal(const char *fwd, const char *code, const char *desc, const char *cause,
                        unsigned status);
/* Writes this thread's log lines once enough are held or 100 ms passed since the last write (each loop turn). */
void access_log_flush(void);
/* A loop thread ends: the last lines out, the buffer freed. */
void access_log_thread_end(void);

/* ---------------------------------------------------------------- websocket.c */

/* Queues the 101 answer whose upgrade handler splices client and app (req->ws_fd). */
enum MHD_Result ws_queue_response(struct proxy_req *req);
/*
 * The request is complete (MHD's completed callback): a session whose
 * upgrade never happened (the client went before the 101 head was sent)
 * is freed, with the app's socket.
 */
void ws_forget(struct proxy_req *req);
/* Closes every tunnel and waits for their threads; before MHD_stop_daemon(). */
void ws_stop_all(struct router *r);

/* ---------------------------------------------------------------- router.c */

struct router {
    struct router_config cfg;
    const struct router_backend_ops *ops;
    int listen_fd;                /* HTTP: the loops accept from it (EPOLLEXCLUSIVE) */
    int tls_listen_fd;            /* HTTPS, or -1 */
    uint16_t port, tls_port;
    char port_str[8], tls_port_str[8];
    bool access_log;
    struct router_app_settings defaults;   /* for apps that set none */
    unsigned client_head_timeout_ms;
    unsigned per_address_max;
    unsigned connection_limit;    /* client connections, from the file-descriptor limit */
    bool stock;                   /* the connector keeps stocks of unconnected sockets (a limit of STOCK_FD_MIN fds or more) */
    uint64_t budget_max;
    _Atomic uint64_t budget_used;
    atomic_bool stopping;
    atomic_bool serving;          /* the daemons started */

    pthread_mutex_t table_lock;   /* guards the `table` and `certs` pointers, not what they point to */
    struct route_table *table;
    struct cert_set *certs;
    pthread_mutex_t set_lock;     /* serialises router_set_routes() */
    unsigned mark;

    /*
     * Every live request, for router_stop(): one list per loop, so the
     * loops never queue on one another's lock (only router_stop() takes
     * them all).
     */
    struct req_shard {
        pthread_mutex_t lock;
        struct proxy_req *head;
    } shards[LOOPS_MAX];

    unsigned nloops;
    struct upstream_loop **loops;  /* each with its own MHD daemons */

    struct MHD_Response *pages[FAIL_COUNT];
    size_t page_len[FAIL_COUNT];  /* their bodies' sizes, for the access log */

    pthread_mutex_t ws_lock;      /* guards `ws`; ws_cond signals a session ending */
    pthread_cond_t ws_cond;
    struct ws_session *ws;

    struct client_registry *clients;   /* clients.c */

    pthread_mutex_t probe_lock;   /* guards `probes` */
    struct router_probe *probes;  /* probe.c */
    atomic_uint n_probes;         /* how many: request.c asks probe_lookup() only when some exist */
};

struct route_table *router_current_table(struct router *r);
/* The current certificates, held (NULL when none were published). */
struct cert_set *router_current_certs(struct router *r);

/* ---------------------------------------------------------------- probe.c */

/* The probe table for `secret` (held: the request's to unref), or NULL when none is registered. */
struct route_table *probe_lookup(struct router *r, const char *secret);
/* router_stop(): every probe unregistered and its table let go. */
void probe_free_all(struct router *r);

/* ---------------------------------------------------------------- request.c */

/* A request header as the front parsed it (front.c). */
struct request_header {
    const char *name, *value;
};

/*
 * The first look at a request: routes req (req->table, req->target, or
 * req->failure / req->redirect) and builds the head the app gets in
 * req->out, without its final blank line, and plans the body (req->stream,
 * req->chunked_up, req->body_length). The request's headers are `headers`
 * (the front's), or with headers NULL, those of its MHD connection.
 */
void request_begin(struct proxy_req *req, const char *method, const struct request_header *headers,
                   size_t n_headers);

/* ---------------------------------------------------------------- proxy.c */

/* A new request for `uri` (the raw request-target), on this loop's thread; the caller holds its one reference. */
struct proxy_req *proxy_req_open(struct router *r, const char *uri);
/*
 * The first look at a request: routes it and builds its upstream head
 * (request_begin()), takes its share of the buffer budget; sets
 * req->failure or req->redirect when it goes no further.
 */
void proxy_req_begin(struct proxy_req *req, const char *method, bool tls, const char *fwd,
                     const struct request_header *headers, size_t n_headers);
/* A request whose body (if any) is in: gives it to its loop's upstream side. Returns FAIL_NONE or the failure to answer with. */
enum router_failure proxy_req_start(struct proxy_req *req);
/* The client side is done with req (completed: its answer went out whole): logged, and the reference let go. */
void proxy_req_close(struct proxy_req *req, bool completed);
/* What the client side owes: the failure to answer with (FAIL_STOPPING once router_stop() aborted it), else FAIL_NONE, with *ret_ready telling whether the app's head is in. */
enum router_failure proxy_req_due(struct proxy_req *req, bool *ret_ready);
/*
 * The app's response headers as the client gets them, one emit() each: less
 * hop-by-hop ones, those the app's Connection header names, and
 * Content-Length (the router frames the body), then Via
 * with " 1.1 berth" appended. Both client sides (proxy.c, front.c) use it.
 */
void proxy_response_headers(const struct proxy_req *req, void (*emit)(void *ctx, const char *name, const char *value),
                            void *ctx);
/* https_only: the Location of req's redirect, appended to sb. */
void proxy_redirect_location(const struct proxy_req *req, struct strbuf *sb);

void *proxy_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
enum MHD_Result proxy_access(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls);
void proxy_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                     enum MHD_RequestTerminationCode toe);

#endif
