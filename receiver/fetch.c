/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * receiver_fetch_tree(): the one git *client* operation berth needs, a
 * fetch of a buildpack given as a git URL (HEROKU.md §1.5: `.buildpacks`
 * lines are git URLs with an optional #ref). It lives here because the
 * receiver is berth's git module: it owns libgit2 and the safe tree export
 * that pushes use too.
 *
 * Every URL gets a bare cache repository, so a rebuild fetches only what is
 * new; one fetch at a time per cache (flock on a lock file beside it). All
 * branches and tags are fetched, and the remote's HEAD as refs/berth/HEAD,
 * so that a #ref may name a branch, a tag or any commit reachable from them
 * (servers need not serve a bare commit id in a want). A fetch is bounded
 * in size through the transfer-progress callback, which libgit2 aborts on
 * when it returns non-zero, and in time by that callback, by the socket
 * stream below, whose every wait (the name lookup included) ends at the
 * fetch's deadline, and by a watchdog that shuts the fetch's sockets down
 * at the deadline, for the waits that are not the stream's (libssh2's).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <git2/sys/stream.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/hostaddr.h"
#include "common/xalloc.h"
#include "receiver/push.h"
#include "receiver/receiver.h"
#include "common/banned.h"

#define FETCH_MAX_BYTES (256u << 20)
#define FETCH_MAX_SECONDS (5 * 60)

struct fetch_limits {
    time_t deadline;
    bool too_big, too_slow;
};

static int on_progress(const git_indexer_progress *stats, void *payload)
{
    struct fetch_limits *l = payload;

    if (stats->received_bytes > FETCH_MAX_BYTES) {
        l->too_big = true;
        return -1;
    }
    if (time(NULL) > l->deadline) {
        l->too_slow = true;
        return -1;
    }
    return 0;
}

/* ---- a socket stream with a deadline ------------------------------------- */

/*
 * libgit2 1.5 has no network timeout (GIT_OPT_SET_SERVER_TIMEOUT came in
 * 1.7), and transfer_progress runs only while pack data arrives: a server
 * that accepts and then never answers would hold the fetch, and a build
 * slot, for ever. So the receiver registers (at its first fetch) its own
 * plain socket stream (git_stream_register(GIT_STREAM_STANDARD)), which
 * libgit2 1.5 uses for http:// and git://, and under its TLS layer for
 * https://; each connect, read and write waits in poll() no later than
 * the deadline of the fetch running on that thread. The deadline is
 * thread-local, not global: fetches of different builds run at once, and
 * libgit2 makes a fetch's streams on the calling thread.
 *
 * ssh:// connects through this stream too (libgit2 1.5's ssh transport
 * calls git_socket_stream_new(), which takes the registered stream), but
 * then hands the socket to libssh2, which reads and writes it itself and
 * waits in its own poll() without a limit: libssh2_session_set_timeout()
 * would not help, as libgit2 retries a handshake that returns
 * LIBSSH2_ERROR_TIMEOUT, and it gives no access to the session anyway. So
 * each fetch has a watchdog thread (fetch_watch below) that, at the
 * deadline, shuts every socket of the fetch down: libssh2's poll() wakes,
 * its recv() sees the end of the stream and the handshake, or read, fails.
 * A socket is closed under the watchdog's lock, so it never shuts an fd
 * that was closed and reused meanwhile.
 */
static __thread time_t stream_deadline;     /* 0: no fetch on this thread, no limit */
/* A tenant's fetch on this thread: no connection to an address of this host (common/hostaddr.h). */
static __thread bool stream_refuse_host;

/*
 * libgit2 1.5's ssh transport reads the socket out of the stream it is
 * given as a git_socket_stream (its streams/socket.h: the git_stream, host,
 * port, then the socket as an int): this struct keeps that layout, or
 * ssh:// would hand libssh2 a wrong descriptor.
 */
struct deadline_stream {
    git_stream parent;
    char *host, *port;
    int fd;
};

/* ---- the watchdog: a fetch's sockets shut down at its deadline ----------- */

#define WATCH_MAX_SOCKETS 8     /* libgit2 holds one connection at a time (two across a redirect) */

struct fetch_watch {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    time_t deadline;
    bool done, fired;
    int fds[WATCH_MAX_SOCKETS];
    size_t n_fds;
    pthread_t thread;
};

static __thread struct fetch_watch *current_watch;      /* the fetch running on this thread */

static void *watch_run(void *arg)
{
    struct fetch_watch *w = arg;
    struct timespec at = { .tv_sec = w->deadline };

    pthread_mutex_lock(&w->lock);
    while (!w->done && pthread_cond_timedwait(&w->wake, &w->lock, &at) != ETIMEDOUT)
        ;
    if (!w->done) {
        w->fired = true;
        for (size_t i = 0; i < w->n_fds; i++)
            (void)shutdown(w->fds[i], SHUT_RDWR);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static int watch_start(struct fetch_watch *w, time_t deadline)
{
    int k;

    memset(w, 0, sizeof(*w));
    w->deadline = deadline;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    k = pthread_create(&w->thread, NULL, watch_run, w);
    if (k != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        return -k;
    }
    current_watch = w;
    return 0;
}

static void watch_stop(struct fetch_watch *w)
{
    current_watch = NULL;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    (void)pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
}

/* Puts a connected socket under this thread's watchdog: -1 (libgit2's error set) once it has fired. */
static int watch_add(int fd)
{
    struct fetch_watch *w = current_watch;
    int k = 0;

    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    if (w->fired || w->n_fds == WATCH_MAX_SOCKETS) {
        git_error_set(GIT_ERROR_NET, "connecting: %s", w->fired ? "timed out" : "too many connections");
        k = -1;
    } else {
        w->fds[w->n_fds++] = fd;
    }
    pthread_mutex_unlock(&w->lock);
    return k;
}

/* Closes a socket, taking it from the watchdog first under its lock. */
static void watch_close(int fd)
{
    struct fetch_watch *w = current_watch;

    if (w)
        pthread_mutex_lock(&w->lock);
    for (size_t i = 0; w && i < w->n_fds; i++)
        if (w->fds[i] == fd) {
            w->fds[i] = w->fds[--w->n_fds];
            break;
        }
    close(fd);
    if (w)
        pthread_mutex_unlock(&w->lock);
}

/* ---- name resolution within the deadline --------------------------------- */

/*
 * getaddrinfo() has no timeout of its own. glibc's DNS lookups do end, per
 * resolv.conf (timeout:5 attempts:2 per server and per search domain: up
 * to minutes with three servers and a search list), but other NSS modules
 * may wait for ever. So the lookup runs in glibc's getaddrinfo_a(), on one
 * of glibc's helper threads (at most 20, the rest queued), and the fetch
 * waits in gai_suspend() no later than its deadline. A lookup still
 * queued then is cancelled; one already running cannot be (gai_cancel()
 * says EAI_NOTCANCELED) and glibc writes into its request when it ends, so
 * the request stays allocated on a list of abandoned lookups, freed by a
 * later lookup once gai_error() says glibc is done with it.
 */
struct lookup {
    struct gaicb cb;
    struct addrinfo hints;
    char *host, *port;
    struct lookup *next;
};

static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lookup *abandoned;

static void lookup_free(struct lookup *l)
{
    if (l->cb.ar_result)
        freeaddrinfo(l->cb.ar_result);
    free(l->host);
    free(l->port);
    free(l);
}

static void reap_abandoned(void)
{
    pthread_mutex_lock(&abandoned_lock);
    for (struct lookup **pp = &abandoned; *pp;) {
        struct lookup *l = *pp;

        if (gai_error(&l->cb) == EAI_INPROGRESS) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        lookup_free(l);
    }
    pthread_mutex_unlock(&abandoned_lock);
}

/* Gives up on a lookup at the deadline: cancelled, or left to glibc until it is done. */
static void lookup_abandon(struct lookup *l)
{
    if (gai_cancel(&l->cb) != EAI_NOTCANCELED) {
        /* EAI_CANCELED: it never ran; EAI_ALLDONE: it has just ended. */
        lookup_free(l);
        return;
    }
    pthread_mutex_lock(&abandoned_lock);
    l->next = abandoned;
    abandoned = l;
    pthread_mutex_unlock(&abandoned_lock);
}

/* getaddrinfo() of host:port within stream_deadline: 0, or an EAI_* code (-1: timed out). */
static int resolve_host(const char *host, const char *port, struct addrinfo **ret)
{
    struct lookup *l = xcalloc(1, sizeof(*l));
    struct gaicb *list[] = { &l->cb };
    int k;

    reap_abandoned();
    l->host = xstrdup(host);
    l->port = xstrdup(port);
    l->hints.ai_socktype = SOCK_STREAM;
    l->cb.ar_name = l->host;
    l->cb.ar_service = l->port;
    l->cb.ar_request = &l->hints;
    k = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (k != 0) {
        lookup_free(l);
        return k;
    }
    while ((k = gai_error(&l->cb)) == EAI_INPROGRESS) {
        time_t left = stream_deadline - time(NULL);
        struct timespec wait = { .tv_sec = left };

        if (stream_deadline && left <= 0) {
            lookup_abandon(l);
            return -1;
        }
        (void)gai_suspend((const struct gaicb *const *)list, 1, stream_deadline ? &wait : NULL);
    }
    if (k == 0) {
        *ret = l->cb.ar_result;
        l->cb.ar_result = NULL;
    }
    lookup_free(l);
    return k;
}

/* Waits for `events` on fd until the deadline: 0 ready, -1 with libgit2's error set. */
static int stream_wait(int fd, short events, const char *what)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int k;

    do {
        time_t left = stream_deadline ? stream_deadline - time(NULL) : 0;

        if (stream_deadline && left <= 0)
            k = 0;
        else
            k = poll(&pfd, 1, stream_deadline ? (int)left * 1000 : -1);
    } while (k < 0 && errno == EINTR);
    if (k > 0)
        return 0;
    git_error_set(GIT_ERROR_NET, "%s: %s", what, k == 0 ? "timed out" : strerror(errno));
    return -1;
}

static int stream_connect(git_stream *stream)
{
    struct deadline_stream *st = (struct deadline_stream *)stream;
    struct addrinfo *info = NULL;
    bool refused = false;
    int k = resolve_host(st->host, st->port, &info);

    if (k != 0) {
        git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s", st->host,
                      k == -1 ? "timed out" : gai_strerror(k));
        return -1;
    }
    for (struct addrinfo *a = info; a && st->fd < 0; a = a->ai_next) {
        int fd, e = 0;
        socklen_t len = sizeof(e);

        /* Checked here, on what the name resolved to now: no DNS answer can lead a tenant's fetch home. */
        if (stream_refuse_host && hostaddr_is_this_host(a->ai_addr)) {
            refused = true;
            continue;
        }
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            st->fd = fd;
        else if (errno == EINPROGRESS && stream_wait(fd, POLLOUT, "connecting") == 0
                 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == 0)
            st->fd = fd;
        else {
            k = e ? e : errno;
            close(fd);
        }
    }
    freeaddrinfo(info);
    if (st->fd >= 0 && watch_add(st->fd) < 0) {
        close(st->fd);
        st->fd = -1;
        return -1;
    }
    if (st->fd >= 0)
        return 0;
    if (refused && k == 0) {
        git_error_set(GIT_ERROR_NET, "refusing to connect to %s: it is this host (a loopback, link-local or "
                      "interface address), which a tenant's buildpack may not come from", st->host);
        return -1;
    }
    git_error_set(GIT_ERROR_NET, "failed to connect to %s: %s", st->host,
                  stream_deadline && time(NULL) >= stream_deadline ? "timed out" : strerror(k));
    return -1;
}

/* One send or receive on the stream's socket, waiting (to the deadline) while it would block. */
static ssize_t stream_io(struct deadline_stream *st, bool sending, void *data, size_t len)
{
    for (;;) {
        ssize_t n = sending ? send(st->fd, data, len, MSG_NOSIGNAL) : recv(st->fd, data, len, 0);

        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EINTR) {
            git_error_set(GIT_ERROR_NET, "error %s socket: %s", sending ? "sending data to" : "receiving data from",
                          strerror(errno));
            return -1;
        }
        if (errno == EAGAIN && stream_wait(st->fd, sending ? POLLOUT : POLLIN,
                                           sending ? "writing to the server" : "reading from the server") < 0)
            return -1;
    }
}

static ssize_t stream_read(git_stream *stream, void *data, size_t len)
{
    return stream_io((struct deadline_stream *)stream, false, data, len);
}

static ssize_t stream_write(git_stream *stream, const char *data, size_t len, int flags)
{
    (void)flags;
    return stream_io((struct deadline_stream *)stream, true, (void *)data, len);
}

static int stream_close(git_stream *stream)
{
    struct deadline_stream *st = (struct deadline_stream *)stream;

    if (st->fd >= 0)
        watch_close(st->fd);
    st->fd = -1;
    return 0;
}

static void stream_free(git_stream *stream)
{
    struct deadline_stream *st = (struct deadline_stream *)stream;

    (void)stream_close(stream);
    free(st->host);
    free(st->port);
    free(st);
}

static int stream_new(git_stream **out, const char *host, const char *port)
{
    struct deadline_stream *st = xcalloc(1, sizeof(*st));

    st->parent.version = GIT_STREAM_VERSION;
    st->parent.connect = stream_connect;
    st->parent.read = stream_read;
    st->parent.write = stream_write;
    st->parent.close = stream_close;
    st->parent.free = stream_free;
    st->host = xstrdup(host);
    st->port = xstrdup(port);
    st->fd = -1;
    *out = &st->parent;
    return 0;
}

static pthread_once_t stream_once = PTHREAD_ONCE_INIT;
static int stream_registered;    /* git_stream_register()'s result, set once under stream_once */

static void stream_register(void)
{
    git_stream_registration reg = { .version = GIT_STREAM_VERSION, .init = stream_new };

    stream_registered = git_stream_register(GIT_STREAM_STANDARD, &reg);
}

/* ---- the fetch ------------------------------------------------------------ */

static int lock_cache(const char *cache_dir, struct berth_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s.lock", cache_dir);
    _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0)
        return berth_error_make(err, errno, "opening '%s'", path);
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return berth_error_make(err, errno, "locking '%s'", path);
    return TAKE_FD(fd);
}

static int open_cache(const char *cache_dir, git_repository **ret, struct berth_error **err)
{
    int k = git_repository_open_bare(ret, cache_dir);

    if (k == 0)
        return 0;
    (void)rm_rf(cache_dir, NULL);
    k = git_repository_init(ret, cache_dir, 1);
    if (k < 0)
        return git_to_berth_error(err, k, "creating the buildpack cache '%s'", cache_dir);
    return 0;
}

static int fetch(git_repository *repo, const char *url, bool trusted, int seconds, struct berth_error **err)
{
    static char *specs[] = {
        (char *)"+refs/heads/*:refs/remotes/origin/*",
        (char *)"+refs/tags/*:refs/tags/*",
        (char *)"+HEAD:refs/berth/HEAD",
    };
    const git_strarray refspecs = { specs, sizeof(specs) / sizeof(*specs) };
    git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
    struct fetch_limits limits = { .deadline = time(NULL) + seconds };
    struct fetch_watch watch;
    git_remote *remote = NULL;
    int k;

    /* Once per process, on the first fetch: the receiver is libgit2's only network client. */
    (void)pthread_once(&stream_once, stream_register);
    if (stream_registered < 0)
        return git_to_berth_error(err, stream_registered, "registering the fetch socket stream");
    k = git_remote_create_anonymous(&remote, repo, url);
    if (k < 0)
        return git_to_berth_error(err, k, "'%s' is not a URL git can fetch", url);
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    opts.prune = GIT_FETCH_PRUNE;
    opts.callbacks.transfer_progress = on_progress;
    opts.callbacks.payload = &limits;
    if ((k = watch_start(&watch, limits.deadline)) < 0) {
        git_remote_free(remote);
        return berth_error_make(err, -k, "starting the fetch's watchdog");
    }
    stream_deadline = limits.deadline;
    stream_refuse_host = !trusted;
    k = git_remote_fetch(remote, &refspecs, &opts, NULL);
    stream_deadline = 0;
    stream_refuse_host = false;
    /* The remote's streams are closed (under the watchdog) before it stops. */
    git_remote_free(remote);
    watch_stop(&watch);
    /* The stream gave up at the deadline, or the watchdog, or the progress callback did. */
    limits.too_slow |= k < 0 && (watch.fired || time(NULL) >= limits.deadline);
    if (k < 0 && limits.too_big)
        return berth_error_plain(err, EFBIG, "cannot fetch '%s': it is larger than %u MiB", url,
                                 FETCH_MAX_BYTES >> 20);
    if (k < 0 && limits.too_slow)
        return berth_error_plain(err, ETIMEDOUT, "cannot fetch '%s': it took longer than %d "
                                 "seconds", url, seconds);
    if (k < 0)
        return git_to_berth_error(err, k, "cannot fetch '%s'", url);
    return 0;
}

static bool is_hex(const char *s, size_t min)
{
    size_t n = strlen(s);

    if (n < min || n > GIT_OID_HEXSZ)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* The commit `ref` names: a branch, then a tag, then a (possibly abbreviated) commit id. */
static int resolve(git_repository *repo, const char *url, const char *ref, git_oid *ret,
                   struct berth_error **err)
{
    const char *prefixes[] = { "refs/remotes/origin/", "refs/tags/" };
    git_object *obj = NULL;
    int k;

    if (!ref) {
        k = git_revparse_single(&obj, repo, "refs/berth/HEAD^{commit}");
        if (k < 0)
            return git_to_berth_error(err, k, "'%s' has no default branch", url);
        git_oid_cpy(ret, git_object_id(obj));
        git_object_free(obj);
        return 0;
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
        _cleanup_free_ char *spec = xasprintf("%s%s^{commit}", prefixes[i], ref);

        if (git_revparse_single(&obj, repo, spec) == 0) {
            git_oid_cpy(ret, git_object_id(obj));
            git_object_free(obj);
            return 0;
        }
    }
    if (is_hex(ref, 7)) {
        _cleanup_free_ char *spec = xasprintf("%s^{commit}", ref);

        if (git_revparse_single(&obj, repo, spec) == 0) {
            git_oid_cpy(ret, git_object_id(obj));
            git_object_free(obj);
            return 0;
        }
    }
    return berth_error_plain(err, ENOENT, "'%s' is neither a branch, a tag nor a commit of '%s'",
                             ref, url);
}

int receiver_fetch_tree(const char *url, const char *ref, bool trusted, const char *cache_dir,
                        const char *dest_dir, char **ret_commit, struct berth_error **err)
{
    return fetch_tree_within(url, ref, trusted, cache_dir, dest_dir, FETCH_MAX_SECONDS, ret_commit, err);
}

int fetch_tree_within(const char *url, const char *ref, bool trusted, const char *cache_dir, const char *dest_dir,
                      int seconds, char **ret_commit, struct berth_error **err)
{
    _cleanup_close_ int lock_fd = -1;
    git_repository *repo = NULL;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid oid;
    int r;

    if ((r = mkdir_p(cache_dir, 0700, err)) < 0)
        return r;
    lock_fd = lock_cache(cache_dir, err);
    if (lock_fd < 0)
        return lock_fd;
    if ((r = open_cache(cache_dir, &repo, err)) < 0)
        return r;
    r = fetch(repo, url, trusted, seconds, err);
    if (r == 0)
        r = resolve(repo, url, ref, &oid, err);
    if (r == 0)
        r = export_commit(repo, &oid, dest_dir, err);
    git_repository_free(repo);
    if (r < 0)
        return r;
    git_oid_tostr(hex, sizeof(hex), &oid);
    *ret_commit = xstrdup(hex);
    return 0;
}
