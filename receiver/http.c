/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Smart-HTTP transport of the receiver (git's "stateless RPC" push), as
 * handlers for control's libmicrohttpd daemon, which runs one thread per
 * connection, so a content-reader callback may block.
 *
 *   GET  info/refs?service=git-receive-pack  the ref advertisement
 *   POST git-receive-pack                    commands + pack -> report
 *   GET  info/refs?service=git-upload-pack   upload-pack's advertisement
 *   POST git-upload-pack                     wants + haves -> ACK/NAK, pack
 *
 * The POST body is spooled to an unlinked temporary file next to the
 * repository (decompressed when the client sent Content-Encoding: gzip), up
 * to the configured cap. When the body is complete the command list is parsed
 * on the spot, so malformed input gets a plain 400 and stores nothing; git's
 * 4-byte "0000" probe (sent before a chunked upload) gets an empty 200. A real
 * push runs on a worker thread that writes pkt-lines into a socketpair while
 * the response's content reader streams the other end to the client, so the
 * deploy's progress reaches `git push` while the build is still running.
 * An upload-pack request (clone, fetch) takes the same way: spooled, then
 * answered by a worker (upload.c) whose pack streams out as it is built.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "receiver/push.h"
#include "receiver/upload.h"
#include "common/banned.h"

#define DEFAULT_MAX_REQUEST_BYTES PUSH_DEFAULT_MAX_BYTES
#define SPOOL_CHUNK 65536
#define RESULT_KEEPALIVE_MS 5000

struct http_request {
    struct receiver_options opts;   /* a copy; repo_path owned below */
    char *repo_path;
    bool receiving;                 /* a POST git-receive-pack whose body we take */
    bool upload;                    /* ... or a POST git-upload-pack */
    int body_fd;
    uint64_t body_bytes, max_bytes;
    bool gzip, z_ready, z_end;
    z_stream z;
    int fail_status;                /* != 0: answer this when the body is done */
    char *fail_msg;

    struct receiver_push push;
    bool push_ready;
    struct pkt_reader *reader;
    int sock[2];                    /* [0]: read by the response, [1]: the worker's output */
    pthread_t worker;
    bool worker_started;

    /* outer pkt-line framing of the result stream, tracked for keepalives */
    char hdr[4];
    size_t hdr_have, pkt_left;
    bool saw_flush;
};

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned int status,
                                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned int status,
                                  const char *fmt, ...)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    struct MHD_Response *resp;
    enum MHD_Result r;
    va_list ap;

    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    strbuf_addch(&sb, '\n');
    resp = MHD_create_response_from_buffer(sb.len, sb.buf, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void no_cache(struct MHD_Response *resp, const char *content_type)
{
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                  "no-cache, max-age=0, must-revalidate");
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_PRAGMA, "no-cache");
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES, "Fri, 01 Jan 1980 00:00:00 GMT");
}

static bool repo_exists(const char *path)
{
    _cleanup_free_ char *objects = xasprintf("%s/objects", path);
    struct stat st;

    return stat(objects, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- GET info/refs --------------------------------------------------- */

static enum MHD_Result serve_advertisement(struct MHD_Connection *conn, const char *repo_path, bool upload)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
    git_repository *repo = NULL;
    struct MHD_Response *resp;
    enum MHD_Result r;
    int k;

    k = git_repository_open_ext(&repo, repo_path,
                                GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL);
    if (k < 0)
        return queue_text(conn, MHD_HTTP_NOT_FOUND, "repository not found");
    (void)pktline_addf(&body, "# service=git-%s-pack\n", upload ? "upload" : "receive");
    pktline_add_flush(&body);
    k = upload ? upload_advertise(repo, &body, &err) : advertise_refs(repo, &body, &err);
    git_repository_free(repo);
    if (k < 0)
        return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", berth_error_msg(&err));
    resp = MHD_create_response_from_buffer(body.len, body.buf, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    no_cache(resp, upload ? "application/x-git-upload-pack-advertisement"
                          : "application/x-git-receive-pack-advertisement");
    r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

/* ---- POST git-receive-pack: spooling the body ------------------------- */

static void set_fail(struct http_request *req, unsigned int status, const char *msg)
{
    if (req->fail_status)
        return;
    req->fail_status = (int)status;
    req->fail_msg = xstrdup(msg);
}

/* Appends decoded body bytes to the spool file, enforcing the cap. */
static int spool(struct http_request *req, const char *data, size_t len)
{
    int k;

    if (len > req->max_bytes - req->body_bytes)
        return -EFBIG;
    k = write_all(req->body_fd, data, len);
    if (k < 0)
        return k;
    req->body_bytes += len;
    return 0;
}

static int spool_gzip(struct http_request *req, const char *data, size_t len)
{
    char out[SPOOL_CHUNK];

    if (req->z_end)
        return len ? -EPROTO : 0;   /* bytes after the gzip trailer */
    req->z.next_in = (Bytef *)(uintptr_t)data;
    req->z.avail_in = (uInt)len;
    while (req->z.avail_in) {
        int zr, k;

        req->z.next_out = (Bytef *)out;
        req->z.avail_out = sizeof(out);
        zr = inflate(&req->z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            return -EPROTO;
        k = spool(req, out, sizeof(out) - req->z.avail_out);
        if (k < 0)
            return k;
        if (zr == Z_STREAM_END) {
            req->z_end = true;
            return req->z.avail_in ? -EPROTO : 0;
        }
        if (zr == Z_BUF_ERROR && req->z.avail_out)
            break;
    }
    return 0;
}

static enum MHD_Result start_receive(struct MHD_Connection *conn, struct http_request *req)
{
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *cenc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_ENCODING);
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_LENGTH);
    _cleanup_free_ char *tmpl = NULL;
    const char *want_type = req->upload ? "application/x-git-upload-pack-request"
                                        : "application/x-git-receive-pack-request";

    if (!repo_exists(req->repo_path))
        return queue_text(conn, MHD_HTTP_NOT_FOUND, "repository not found");
    if (!ctype || strcmp(ctype, want_type))
        return queue_text(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "expected Content-Type %s", want_type);
    if (cenc && !strcasecmp(cenc, "gzip")) {
        req->gzip = true;
        /* 15 + 16: a gzip wrapper around a deflate stream with the largest window. */
        if (inflateInit2(&req->z, 15 + 16) != Z_OK)
            return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot set up gzip decoding");
        req->z_ready = true;
    } else if (cenc && strcasecmp(cenc, "identity")) {
        return queue_text(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported Content-Encoding '%s'",
                          cenc);
    }
    /* A declared length over the cap is refused before a byte is read. */
    if (clen) {
        char *end = NULL;
        unsigned long long n;

        errno = 0;
        n = strtoull(clen, &end, 10);
        if (errno || end == clen || *end || n > req->max_bytes)
            return queue_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                              "push too large (at most %llu bytes)", (unsigned long long)req->max_bytes);
    }
    /*
     * Spool next to the repository: it is the app's disk, and a push of
     * hundreds of MiB does not belong in memory or a small /tmp. Unlinked at
     * once, so a crash leaves nothing behind.
     */
    tmpl = xasprintf("%s/receive-body-XXXXXX", req->repo_path);
    req->body_fd = mkostemp(tmpl, O_CLOEXEC);
    if (req->body_fd < 0)
        return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the request: %s",
                          strerror(errno));
    (void)unlink(tmpl);
    req->receiving = true;
    return MHD_YES;
}

/* ---- POST git-receive-pack: running the push --------------------------- */

static void *upload_worker_main(void *arg)
{
    struct http_request *req = arg;
    _cleanup_error_ struct berth_error *err = NULL;
    git_repository *repo = NULL;
    int k;

    k = git_repository_open_ext(&repo, req->repo_path,
                                GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL);
    if (k < 0)
        (void)git_to_berth_error(&err, k, "opening repository");
    else
        (void)upload_serve(repo, req->reader, req->sock[1], true, &err);
    git_repository_free(repo);
    /* EOF on the socket ends the response. */
    (void)close(req->sock[1]);
    req->sock[1] = -1;
    return NULL;
}

static void *worker_main(void *arg)
{
    struct http_request *req = arg;

    push_execute(&req->push, req->reader);
    /* EOF on the socket ends the response. */
    pthread_mutex_lock(&req->push.out_lock);
    (void)close(req->push.out_fd);
    req->push.out_fd = -1;
    req->sock[1] = -1;
    pthread_mutex_unlock(&req->push.out_lock);
    /* The client has its report; now the housekeeping, as git receive-pack does. */
    if (push_moved_refs(&req->push)) {
        _cleanup_error_ struct berth_error *err = NULL;

        if (receiver_repo_maintain(req->push.opts->repo_path, &err) < 0)
            log_warn("repository housekeeping: %s", berth_error_msg(&err));
    }
    return NULL;
}

/* Follows the outer pkt-line framing of what the worker sent, byte by byte if need be. */
static void track_framing(struct http_request *req, const char *buf, size_t n)
{
    while (n) {
        if (req->pkt_left) {
            size_t take = n < req->pkt_left ? n : req->pkt_left;

            req->pkt_left -= take;
            buf += take;
            n -= take;
            continue;
        }
        req->hdr[req->hdr_have++] = *buf++;
        n--;
        if (req->hdr_have == 4) {
            size_t len = 0;

            req->hdr_have = 0;
            /* Our own output: a bad header cannot happen; treat it as the end of keepalives. */
            if (pktline_parse_header(req->hdr, &len) < 0 || len == 0)
                req->saw_flush = true;
            else
                req->pkt_left = len - 4;
        }
    }
}

static ssize_t read_result(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_request *req = cls;

    (void)pos;
    for (;;) {
        ssize_t n;

        /*
         * A build can be silent for minutes, and proxies or load balancers
         * drop idle connections. Like git's receive.keepAlive, send an
         * empty band-1 packet ("0005\1": adds nothing to the report) after
         * RESULT_KEEPALIVE_MS of silence, only between two packets and only
         * before the final flush.
         */
        if (req->push.side_band && !req->saw_flush && max >= 5 && !req->pkt_left && !req->hdr_have) {
            struct pollfd pfd = { .fd = req->sock[0], .events = POLLIN };
            int k = poll(&pfd, 1, RESULT_KEEPALIVE_MS);

            if (k == 0) {
                memcpy(buf, "0005\1", 5);
                return 5;
            }
            if (k < 0 && errno != EINTR)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            if (k < 0)
                continue;
        }
        n = recv(req->sock[0], buf, max, 0);
        if (n > 0) {
            track_framing(req, buf, (size_t)n);
            return n;
        }
        if (n == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (errno != EINTR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

/* Queues a 200 whose body `resp` is, or MHD_NO when there is none. */
static enum MHD_Result queue_ok(struct MHD_Connection *conn, struct MHD_Response *resp, const char *content_type)
{
    enum MHD_Result r;

    if (!resp)
        return MHD_NO;
    no_cache(resp, content_type);
    r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Starts `fn` on a worker writing into req->sock[1]; the answer streams req->sock[0]. */
static struct MHD_Response *start_worker(struct http_request *req, void *(*fn)(void *))
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, req->sock) < 0)
        return NULL;
    req->push.out_fd = req->sock[1];
    if (pthread_create(&req->worker, NULL, fn, req) != 0)
        return NULL;
    req->worker_started = true;
    return MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SPOOL_CHUNK, read_result, req, NULL);
}

static enum MHD_Result finish_receive(struct MHD_Connection *conn, struct http_request *req)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct MHD_Response *resp;
    int n;

    if (req->fail_status)
        return queue_text(conn, (unsigned int)req->fail_status, "%s", req->fail_msg);
    if (req->gzip && !req->z_end)
        return queue_text(conn, MHD_HTTP_BAD_REQUEST, "truncated gzip body");
    if (lseek(req->body_fd, 0, SEEK_SET) < 0)
        return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the request back");
    req->reader = xmalloc(sizeof(*req->reader));
    pkt_reader_init(req->reader, req->body_fd);
    if (req->upload) {
        resp = start_worker(req, upload_worker_main);
        if (!resp && !req->worker_started)
            return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start the fetch");
        return queue_ok(conn, resp, "application/x-git-upload-pack-result");
    }
    push_init(&req->push, &req->opts);
    req->push_ready = true;
    n = push_read_commands(&req->push, req->reader, &err);
    if (n < 0)
        return queue_text(conn, berth_error_code(&err) == E2BIG ? MHD_HTTP_CONTENT_TOO_LARGE
                                                                 : MHD_HTTP_BAD_REQUEST,
                          "%s", berth_error_msg(&err));
    if (n == 0) {
        /* git's probe before a chunked upload: nothing to do, an empty 200 result. */
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        resp = start_worker(req, worker_main);
        if (!resp && !req->worker_started)
            return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start the push");
    }
    return queue_ok(conn, resp, "application/x-git-receive-pack-result");
}

/* ---- entry points ------------------------------------------------------ */

static void set_nodelay(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int one = 1;

    /* Small report and progress packets must not wait for Nagle (reference/PEERS.md). */
    if (ci)
        (void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static enum MHD_Result first_call(struct MHD_Connection *conn, struct http_request *req,
                                  const char *subpath, const char *method)
{
    set_nodelay(conn);
    if (!strcmp(subpath, "info/refs")) {
        const char *service = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "service");

        if (strcmp(method, MHD_HTTP_METHOD_GET))
            return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET for info/refs");
        if (!service || (strcmp(service, "git-receive-pack") && strcmp(service, "git-upload-pack")))
            return queue_text(conn, MHD_HTTP_FORBIDDEN,
                              "berth serves the smart protocol only (service=git-receive-pack or "
                              "git-upload-pack)");
        return serve_advertisement(conn, req->repo_path, !strcmp(service, "git-upload-pack"));
    }
    if (!strcmp(subpath, "git-receive-pack")) {
        if (strcmp(method, MHD_HTTP_METHOD_POST))
            return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST for git-receive-pack");
        return start_receive(conn, req);
    }
    if (!strcmp(subpath, "git-upload-pack")) {
        if (strcmp(method, MHD_HTTP_METHOD_POST))
            return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST for git-upload-pack");
        req->upload = true;
        return start_receive(conn, req);
    }
    return queue_text(conn, MHD_HTTP_NOT_FOUND, "not found");
}

enum MHD_Result receiver_http_handle(struct MHD_Connection *conn, const char *subpath,
                                     const char *method, const char *upload_data,
                                     size_t *upload_data_size, void **slot,
                                     const struct receiver_options *opts)
{
    struct http_request *req = *slot;

    if (!req) {
        req = xcalloc(1, sizeof(*req));
        req->body_fd = -1;
        req->sock[0] = req->sock[1] = -1;
        req->repo_path = xstrdup(opts->repo_path);
        req->opts = *opts;
        req->opts.repo_path = req->repo_path;
        req->max_bytes = opts->max_request_bytes ? opts->max_request_bytes : DEFAULT_MAX_REQUEST_BYTES;
        *slot = req;
        return first_call(conn, req, subpath, method);
    }
    if (!req->receiving) {
        /* A response is already queued (an error or the advertisement): discard any body. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t len = *upload_data_size;
        int k;

        *upload_data_size = 0;
        if (req->fail_status)
            return MHD_YES;
        k = req->gzip ? spool_gzip(req, upload_data, len) : spool(req, upload_data, len);

        if (k == -EFBIG) {
            /*
             * Only a chunked body gets here (a declared length was checked
             * up front). libmicrohttpd cannot answer before the body is
             * read, so drop the connection rather than read on.
             */
            return MHD_NO;
        }
        if (k == -EPROTO)
            set_fail(req, MHD_HTTP_BAD_REQUEST, "malformed gzip body");
        else if (k < 0)
            set_fail(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the request");
        return MHD_YES;
    }
    req->receiving = false;
    return finish_receive(conn, req);
}

void receiver_http_completed(void **slot)
{
    struct http_request *req = *slot;

    if (!req)
        return;
    *slot = NULL;
    if (req->worker_started) {
        /*
         * Close our end first: if the client went away mid-push the worker
         * may be blocked writing progress; it now gets EPIPE, drops further
         * output and runs the push to its end, which the join waits for.
         */
        (void)close(req->sock[0]);
        req->sock[0] = -1;
        (void)pthread_join(req->worker, NULL);
    }
    if (req->push_ready)
        push_release(&req->push);
    if (req->sock[0] >= 0)
        (void)close(req->sock[0]);
    if (req->sock[1] >= 0)
        (void)close(req->sock[1]);
    if (req->body_fd >= 0)
        (void)close(req->body_fd);
    if (req->z_ready)
        (void)inflateEnd(&req->z);
    free(req->reader);
    free(req->fail_msg);
    free(req->repo_path);
    free(req);
}
