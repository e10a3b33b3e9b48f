/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the router's integration tests (test-router.c, test-router-hardening.c)
 * share: an in-process upstream HTTP server on 127.0.0.1 with the endpoints
 * both test, clients (the `curl` binary, and raw sockets for what curl will
 * not send) and the access-log capture. Each test program has its own main()
 * and TAP counters (tap.h); nothing here prints a TAP line.
 *
 * The upstream server speaks HTTP/1.1 keep-alive, one thread per connection,
 * and records every request line it reads (upstream_seen()), so a test can
 * tell whether a request reached an app. Its endpoints:
 *
 *   /hello            "hello"                  /echo...   the whole request back
 *   /count            the body's length        /count-slowly  the same, read in sips
 *   /big, /bigchunked patterned 5 MB / 3 MB    /chunked   a chunked answer with trailers
 *   /http10           close-delimited HTTP/1.0 /malformed "HTTP/1.1 abc"
 *   /nothing          closes without a byte    /bye       answers keep-alive, then closes
 *   /slow, /veryslow  after 1 s / 3 s          /early     413 before reading the body
 *   /ws               101, then echoes bytes   /token/T   "T" (a per-request answer)
 *   /close            "close" with Connection: close (every request dials anew)
 *   /port             the port of the listener that took the connection
 *   /smuggle          "ok", then 100 ms later a second, unasked-for response on the same connection
 *   /smuggle-now      "ok" and the unasked-for response in one write
 *   /noreason         a status line without a reason phrase
 *   /conn-named       "ok" with X-Internal and X-Other named by the app's two Connection lines, and X-Public
 *   /bigcookie        a 9000-byte Set-Cookie    /bighead  a 70 KB head
 *   /watch-close, /watch-http10, /watch-silent   an app that answers and closes
 *                     (Connection: close; HTTP/1.0, close-delimited) or never answers,
 *                     then watches how the router ends the connection (upstream_ends())
 *   /verify-slowly    reads a patterned body (Content-Length or chunked) in sips and
 *                     answers "<bytes> ok" (or "bad"); a body cut short counts in
 *                     upstream_short_bodies()
 */
#ifndef BERTH_ROUTER_TESTS_HARNESS_H
#define BERTH_ROUTER_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/strbuf.h"

#define BIG_SIZE (5 * 1024 * 1024)
#define BIGCHUNKED_SIZE (3 * 1024 * 1024)

/* Set by the test's main(): a mkdtemp()'d folder for bodies and logs, and the router's HTTP port. */
extern char tmpdir[];
extern uint16_t router_port_num;

/*
 * The start every integration test shares: SIGPIPE ignored, curl on the
 * PATH (without it the whole test skips, or fails under BERTH_MUST_WORK),
 * tmpdir created. False when the test cannot run: its TAP plan is printed
 * and main() returns *ret_exit.
 */
bool harness_begin(int *ret_exit);
/* BERTH_MUST_WORK is set: a missing tool is a failure, not a skip. */
bool must_work(void);

/* ---------------------------------------------------------------- the upstream server */

/* A new listener on 127.0.0.1:0 served by the server (up to 4); its port in *ret_port. */
int upstream_start(uint16_t *ret_port);
/* Closes every listener and connection and joins their threads. */
void upstream_stop(void);
/* Request heads read so far, over every connection. */
unsigned upstream_requests(void);
/* How many request lines read so far contain `needle`. */
unsigned upstream_seen(const char *needle);
/* Bodies /verify-slowly did not get whole (the router closed the connection first). */
unsigned upstream_short_bodies(void);
/* How the router ended the /watch- connections so far: with a reset, with a FIN. */
void upstream_ends(unsigned *ret_resets, unsigned *ret_fins);

/* The byte at offset i of every patterned body. */
unsigned char pattern(size_t i);
bool body_is_pattern(const char *body, size_t len, size_t want);

/* ---------------------------------------------------------------- sockets */

int send_all(int fd, const void *buf, size_t len);
int send_str(int fd, const char *s);
/* A socket listening on 127.0.0.1:0, its port in *port; -1 on failure. */
/*
 * A port where connections are refused: a socket bound to 127.0.0.1 that
 * never listens, which the caller keeps open. A closed listener's port can
 * be taken by the next bind to port 0 (once the router's own listener, which
 * then proxied to itself until the head grew past its limit: 431).
 */
int refusing_local(uint16_t *port);
int listen_local(uint16_t *port);
/*
 * A blocking socket connected to 127.0.0.1:port, from address `from` (NULL:
 * any), with 5 s send and receive timeouts; -1 on failure.
 */
int dial_port_from(const char *from, uint16_t port);
int dial_port(uint16_t port);
/* Reads until `want` shows up in *sb; false on a timeout or the end. */
bool read_until(int fd, struct strbuf *sb, const char *want);
/* Reads everything until the peer closes (or resets, or the receive timeout passes); true on a close. */
bool read_to_close(int fd, struct strbuf *sb);

/* ---------------------------------------------------------------- curl */

/* Runs a shell command and returns its stdout (caller frees) or NULL. */
char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * curl to the router's HTTP port on `port`, with a Host header (and more curl
 * arguments in `extra`); returns the status, the body in *body (caller frees).
 */
int request_to(uint16_t port, const char *host, const char *path, const char *extra, char **body,
               size_t *body_len);
/* request_to() on router_port_num. */
int request(const char *host, const char *path, const char *extra, char **body, size_t *body_len);
/* n GETs of `host`'s /close (each ends its upstream connection, so each needs a new one): how many were answered in full. */
int answered_fresh(const char *host, int n);

/* Seconds since t0 (CLOCK_MONOTONIC). */
double elapsed(const struct timespec *t0);
/* Case-insensitive occurrences of `needle` in `s` (0 for a NULL s). */
unsigned count_ci(const char *s, const char *needle);

/* ---------------------------------------------------------------- the access log */

/* Sends stderr (where the router writes its access log) to `path` until log_capture_end(). */
int log_capture_begin(const char *path);
void log_capture_end(void);

/* A router_config.access_log callback that keeps the apps' access-log lines for access_lines_have(). */
void access_lines_capture(void *cls, const char *lines, size_t len);
/* Whether a kept line holds both needles (the loops flush every 100 ms: waits up to 3 s). */
bool access_lines_have(const char *a, const char *b);
void access_lines_release(void);

#endif
