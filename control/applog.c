/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/applog: the writing side of the apps' logs (see applog.h). Every
 * write goes through file_write(), which holds the app's lock across one
 * write(2) of whole lines and rotates the file first when it would grow
 * past the limit. The log thread is an epoll loop over the instances'
 * output pipes and an eventfd that says the router handed lines over, a
 * paused pump may read again, or the log stops. It never waits on a
 * consumer: a pump's `output` is called by the thread that owns the pump
 * (applog_pump_deliver()), and a pump whose undelivered lines pass
 * PUMP_QUEUE_MAX leaves the epoll set until they are taken.
 */
#include "control/applog.h"
#include "control/applog-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/xalloc.h"

/* Undelivered output of one pump past which its pipe is not read (the process waits). */
#define PUMP_QUEUE_MAX (1u << 20)
/* The router's lines waiting for the log thread past which new ones are dropped (and counted). */
#define ROUTER_QUEUE_MAX (8u << 20)
/* How long applog_end_follows() waits for the readers to be freed. */
#define END_FOLLOWS_WAIT_MS 2000
/* One read(2) of a pipe per turn, so that one chatty process does not starve the others. */
#define PUMP_READ_BYTES 65536

struct applog_pump {
    struct applog *log;
    struct applog_file *file;
    char *dyno;                   /* "web.1" */
    int fd;                       /* the pipe's read end; the log thread's until eof */
    struct strbuf pending;        /* log thread only: the start of a line */
    void (*output)(void *cls, const char *line);
    void *cls;
    pthread_mutex_t lock;         /* guards the four below */
    pthread_cond_t cond;          /* lines queued, or eof */
    struct strbuf queue;          /* lines for `output`, each ending in '\n' */
    bool paused;                  /* out of the epoll set until the queue is taken */
    bool eof;                     /* the log thread is done with the pump */
    struct applog_pump *resume_next;   /* in applog.resume, under its queue_lock */
};

/* ---------------------------------------------------------------- the files */

/* Waits on these use CLOCK_MONOTONIC deadlines (applog_deadline_in()): a clock change moves none. */
static void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

static unsigned bucket_of(const char *app)
{
    unsigned h = 5381;

    for (; *app; app++)
        h = h * 33 + (unsigned char)*app;
    return h % APPLOG_BUCKETS;
}

struct applog_file *applog_file_get(struct applog *l, const char *app)
{
    unsigned b = bucket_of(app);
    struct applog_file *f;

    pthread_mutex_lock(&l->files_lock);
    for (f = l->files[b]; f; f = f->next)
        if (strcmp(f->app, app) == 0)
            break;
    if (!f) {
        f = xcalloc(1, sizeof(*f));
        f->app = xstrdup(app);
        f->path = xasprintf("%s/%s/logs/app.log", l->apps_dir, app);
        f->fd = -1;
        pthread_mutex_init(&f->lock, NULL);
        cond_init_monotonic(&f->grew);
        f->next = l->files[b];
        l->files[b] = f;
    }
    pthread_mutex_unlock(&l->files_lock);
    return f;
}

/* Opens app.log for appending; the caller holds f->lock. Not the app's directory: a gone app gets no log. */
static int file_open(struct applog_file *f)
{
    _cleanup_free_ char *dir = xstrndup(f->path, strlen(f->path) - strlen("/app.log"));
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    f->fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (f->fd < 0)
        return -errno;
    f->size = fstat(f->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

/* app.log becomes app.log.1 (the older one goes); the caller holds f->lock. */
static int file_rotate(struct applog_file *f)
{
    _cleanup_free_ char *old = xasprintf("%s.1", f->path);

    if (rename(f->path, old) < 0)
        return -errno;
    close(f->fd);
    f->fd = -1;
    f->rotations++;
    return file_open(f);
}

/* Appends whole lines to the app's log in one write, rotating first when they would pass the limit. */
static void file_write(struct applog *l, struct applog_file *f, const char *data, size_t len)
{
    struct stat st;
    int r = 0;

    if (!len)
        return;
    pthread_mutex_lock(&f->lock);
    /* A log deleted under us (by hand, or with its app: apps:destroy) is started again by its path. */
    if (f->fd >= 0 && fstat(f->fd, &st) == 0 && st.st_nlink == 0) {
        close(f->fd);
        f->fd = -1;
    }
    if (f->fd < 0)
        r = file_open(f);
    if (r == 0 && f->size && f->size + len > l->rotate_bytes)
        r = file_rotate(f);
    if (r == 0 && write_all(f->fd, data, len) < 0)
        r = -errno;
    if (r == 0) {
        f->size += len;
        f->writes++;
        f->warned = false;
        pthread_cond_broadcast(&f->grew);
    } else if (!f->warned) {
        /* Said once until a write succeeds again: a full disk must not flood stderr. */
        log_warn("writing the log of '%s': %s", f->app, strerror(-r));
        f->warned = true;
    }
    pthread_mutex_unlock(&f->lock);
}

void applog_forget(struct applog *l, const char *app)
{
    struct applog_file *f = applog_file_get(l, app);

    pthread_mutex_lock(&f->lock);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->size = 0;
    f->forgets++;
    pthread_cond_broadcast(&f->grew);
    pthread_mutex_unlock(&f->lock);
}

/* ---------------------------------------------------------------- platform lines */

/* "TIMESTAMP source: " before each line of `text` (a newline in it starts another line). */
static void format_lines(struct strbuf *sb, const char *ts, const char *source, const char *text, size_t len)
{
    const char *end = text + len;

    do {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t n = nl ? (size_t)(nl - text) : (size_t)(end - text);

        strbuf_addf(sb, "%s %s: ", ts, source);
        strbuf_add(sb, text, n);
        strbuf_addch(sb, '\n');
        text += n + (nl ? 1 : 0);
    } while (text < end);
}

void applog_vemit(struct applog *l, const char *app, const char *source, const char *fmt, va_list ap)
{
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT, lines = STRBUF_INIT;
    char ts[48];

    if (!l)
        return;
    strbuf_vaddf(&text, fmt, ap);
    log_timestamp(ts, sizeof(ts));
    format_lines(&lines, ts, source, text.buf, text.len);
    file_write(l, applog_file_get(l, app), lines.buf, lines.len);
}

void applog_emit(struct applog *l, const char *app, const char *source, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    applog_vemit(l, app, source, fmt, ap);
    va_end(ap);
}

static void wake(struct applog *l)
{
    uint64_t one = 1;

    (void)!write(l->wake_fd, &one, sizeof(one));
}

/* ---------------------------------------------------------------- the router's lines */

void applog_router_lines(void *cls, const char *buf, size_t len)
{
    struct applog *l = cls;
    bool was_empty;

    pthread_mutex_lock(&l->queue_lock);
    was_empty = l->router_queue.len == 0;
    if (l->router_queue.len + len > ROUTER_QUEUE_MAX) {
        for (size_t i = 0; i < len; i++)
            l->router_dropped += buf[i] == '\n';
    } else {
        strbuf_add(&l->router_queue, buf, len);
    }
    pthread_mutex_unlock(&l->queue_lock);
    /* One wakeup per batch the log thread has not taken yet. */
    if (was_empty)
        wake(l);
}

/* Lines of one app gathered from a batch of the router's, written at once. */
struct app_batch {
    struct applog_file *file;
    struct strbuf lines;
};

#define BATCH_APPS 32

static void flush_batches(struct applog *l, struct app_batch *b, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        file_write(l, b[i].file, b[i].lines.buf, b[i].lines.len);
        strbuf_release(&b[i].lines);
    }
    *n = 0;
}

/* Writes "APP line\n" records to each app's log, one write per app and batch. */
static void write_router_lines(struct applog *l, const char *buf, size_t len)
{
    struct app_batch batches[BATCH_APPS];
    const char *end = buf + len;
    size_t n = 0;

    while (buf < end) {
        const char *nl = memchr(buf, '\n', (size_t)(end - buf));
        const char *sp = memchr(buf, ' ', (size_t)((nl ? nl : end) - buf));
        _cleanup_free_ char *app = NULL;
        struct applog_file *f;
        size_t i;

        if (!nl || !sp)
            break;
        app = xstrndup(buf, (size_t)(sp - buf));
        f = applog_file_get(l, app);
        for (i = 0; i < n && batches[i].file != f; i++)
            ;
        if (i == n) {
            if (n == BATCH_APPS)
                flush_batches(l, batches, &n);
            i = n++;
            batches[i].file = f;
            strbuf_init(&batches[i].lines, 0);
        }
        strbuf_add(&batches[i].lines, sp + 1, (size_t)(nl - sp));
        buf = nl + 1;
    }
    flush_batches(l, batches, &n);
}

/* ---------------------------------------------------------------- pumps */

/* One line of output (no newline in it) into the log batch and, with `output`, the pump's queue. */
static void pump_line(struct applog_pump *p, const char *ts, const char *line, size_t len, struct strbuf *batch,
                      struct strbuf *queued)
{
    strbuf_addf(batch, "%s app[%s]: ", ts, p->dyno);
    strbuf_add(batch, line, len);
    strbuf_addch(batch, '\n');
    if (p->output) {
        strbuf_add(queued, line, len);
        strbuf_addch(queued, '\n');
    }
}

/* Cuts p->pending into lines (all of it at the end of the pipe), split past APPLOG_LINE_MAX. */
static void pump_lines(struct applog_pump *p, bool at_end, struct strbuf *batch, struct strbuf *queued)
{
    char ts[48];
    char *nl;

    log_timestamp(ts, sizeof(ts));
    while ((nl = memchr(p->pending.buf, '\n', p->pending.len)) || p->pending.len >= APPLOG_LINE_MAX ||
           (at_end && p->pending.len)) {
        size_t len = nl ? (size_t)(nl - p->pending.buf) : p->pending.len;

        if (len > APPLOG_LINE_MAX) {
            len = APPLOG_LINE_MAX;
            nl = NULL;
        }
        pump_line(p, ts, p->pending.buf, len, batch, queued);
        strbuf_remove_prefix(&p->pending, nl ? len + 1 : len);
    }
}

/* The log thread's turn for one pipe: read once, write the lines, queue them for `output`. */
static void pump_read(struct applog *l, struct applog_pump *p)
{
    _cleanup_strbuf_ struct strbuf batch = STRBUF_INIT, queued = STRBUF_INIT;
    char buf[PUMP_READ_BYTES];
    ssize_t n = read(p->fd, buf, sizeof(buf));
    bool at_end = n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);

    if (n > 0)
        strbuf_add(&p->pending, buf, (size_t)n);
    pump_lines(p, at_end, &batch, &queued);
    file_write(l, p->file, batch.buf, batch.len);
    if (at_end) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        close(p->fd);
        p->fd = -1;
    }
    pthread_mutex_lock(&p->lock);
    strbuf_add(&p->queue, queued.buf, queued.len);
    if (!at_end && p->queue.len > PUMP_QUEUE_MAX) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, p->fd, NULL);
        p->paused = true;
    }
    p->eof = at_end;
    pthread_cond_broadcast(&p->cond);
    /* From eof on, the pump is its owner's to free: nothing here touches it again. */
    pthread_mutex_unlock(&p->lock);
}

static int pump_watch(struct applog *l, struct applog_pump *p)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };

    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, p->fd, &ev) < 0 ? -errno : 0;
}

int applog_pump_add(struct applog *l, const char *app, const char *dyno, int pipe_rd,
                    void (*output)(void *cls, const char *line), void *cls, struct applog_pump **ret,
                    struct berth_error **err)
{
    struct applog_pump *p = xcalloc(1, sizeof(*p));
    int r;

    p->log = l;
    p->file = applog_file_get(l, app);
    p->dyno = xstrdup(dyno);
    p->fd = pipe_rd;
    p->output = output;
    p->cls = cls;
    strbuf_init(&p->pending, 0);
    strbuf_init(&p->queue, 0);
    pthread_mutex_init(&p->lock, NULL);
    cond_init_monotonic(&p->cond);
    if (fcntl(pipe_rd, F_SETFL, fcntl(pipe_rd, F_GETFL) | O_NONBLOCK) < 0 || (r = pump_watch(l, p)) < 0) {
        r = berth_error_make(err, errno, "watching the output of %s of '%s'", dyno, app);
        p->eof = true;
        close(p->fd);
        p->fd = -1;
        applog_pump_finish(p);
        return r;
    }
    *ret = p;
    return 0;
}

void applog_deadline_in(struct timespec *t, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_sec += ms / 1000;
    t->tv_nsec += (long)(ms % 1000) * 1000000;
    if (t->tv_nsec >= 1000000000) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000;
    }
}

int applog_pump_deliver(struct applog_pump *p, int timeout_ms)
{
    _cleanup_strbuf_ struct strbuf lines = STRBUF_INIT;
    struct timespec deadline;
    bool eof, resume;
    char *line, *nl;

    applog_deadline_in(&deadline, timeout_ms);
    pthread_mutex_lock(&p->lock);
    while (!p->queue.len && !p->eof && pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == 0)
        ;
    strbuf_add(&lines, p->queue.buf, p->queue.len);
    strbuf_reset(&p->queue);
    eof = p->eof;
    resume = p->paused;
    p->paused = false;
    pthread_mutex_unlock(&p->lock);
    if (resume) {
        pthread_mutex_lock(&p->log->queue_lock);
        p->resume_next = p->log->resume;
        p->log->resume = p;
        pthread_mutex_unlock(&p->log->queue_lock);
        wake(p->log);
    }
    for (line = lines.buf; line < lines.buf + lines.len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(lines.buf + lines.len - line));
        *nl = '\0';
        p->output(p->cls, line);
    }
    return eof ? 1 : 0;
}

void applog_pump_finish(struct applog_pump *p)
{
    if (!p)
        return;
    while (applog_pump_deliver(p, 1000) == 0)
        ;
    strbuf_release(&p->pending);
    strbuf_release(&p->queue);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->dyno);
    free(p);
}

/* ---------------------------------------------------------------- the log thread */

/* What the eventfd announced: the router's lines, pumps to read again; false once stopping. */
static bool take_wakeup(struct applog *l)
{
    _cleanup_strbuf_ struct strbuf lines = STRBUF_INIT;
    struct applog_pump *resume;
    uint64_t count, dropped;
    bool stopping;

    (void)!read(l->wake_fd, &count, sizeof(count));
    pthread_mutex_lock(&l->queue_lock);
    {
        struct strbuf taken = l->router_queue;

        l->router_queue = lines;
        lines = taken;
    }
    dropped = l->router_dropped;
    l->router_dropped = 0;
    resume = l->resume;
    l->resume = NULL;
    stopping = l->stopping;
    pthread_mutex_unlock(&l->queue_lock);
    write_router_lines(l, lines.buf, lines.len);
    if (dropped)
        log_warn("dropped %llu router log lines: the log thread fell behind", (unsigned long long)dropped);
    while (resume) {
        struct applog_pump *p = resume;

        resume = p->resume_next;
        (void)pump_watch(l, p);
    }
    return !stopping;
}

static void *log_thread(void *arg)
{
    struct applog *l = arg;
    struct epoll_event evs[64];
    bool running = true;

    while (running) {
        int n = epoll_wait(l->epfd, evs, 64, -1);

        if (n < 0 && errno != EINTR) {
            log_error("the log thread's epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr)
                running = take_wakeup(l);
            else
                pump_read(l, evs[i].data.ptr);
        }
    }
    return NULL;
}

int applog_start(const char *home, uint64_t rotate_bytes, struct applog **ret, struct berth_error **err)
{
    struct applog *l = xcalloc(1, sizeof(*l));
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

    l->apps_dir = xasprintf("%s/apps", home);
    l->rotate_bytes = rotate_bytes ? rotate_bytes : APPLOG_ROTATE_BYTES;
    pthread_mutex_init(&l->files_lock, NULL);
    pthread_mutex_init(&l->queue_lock, NULL);
    cond_init_monotonic(&l->readers_cond);
    strbuf_init(&l->router_queue, 0);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->epfd < 0 || l->wake_fd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0) {
        int r = berth_error_make(err, errno, "setting up the log thread");

        applog_stop(l);
        return r;
    }
    if (pthread_create(&l->thread, NULL, log_thread, l) != 0) {
        applog_stop(l);
        return berth_error_plain(err, EAGAIN, "starting the log thread");
    }
    l->thread_started = true;
    *ret = l;
    return 0;
}

void applog_reader_count(struct applog *l, int delta)
{
    pthread_mutex_lock(&l->queue_lock);
    l->readers += delta;
    if (!l->readers)
        pthread_cond_broadcast(&l->readers_cond);
    pthread_mutex_unlock(&l->queue_lock);
}

void applog_end_follows(struct applog *l)
{
    struct timespec deadline;

    if (!l)
        return;
    atomic_store(&l->ending, true);
    pthread_mutex_lock(&l->files_lock);
    for (size_t b = 0; b < APPLOG_BUCKETS; b++) {
        for (struct applog_file *f = l->files[b]; f; f = f->next) {
            pthread_mutex_lock(&f->lock);
            pthread_cond_broadcast(&f->grew);
            pthread_mutex_unlock(&f->lock);
        }
    }
    pthread_mutex_unlock(&l->files_lock);
    /* The streams end their answers properly (the last chunk sent) before the API goes. */
    applog_deadline_in(&deadline, END_FOLLOWS_WAIT_MS);
    pthread_mutex_lock(&l->queue_lock);
    while (l->readers && pthread_cond_timedwait(&l->readers_cond, &l->queue_lock, &deadline) == 0)
        ;
    pthread_mutex_unlock(&l->queue_lock);
}

void applog_stop(struct applog *l)
{
    if (!l)
        return;
    applog_end_follows(l);
    if (l->thread_started) {
        pthread_mutex_lock(&l->queue_lock);
        l->stopping = true;
        pthread_mutex_unlock(&l->queue_lock);
        wake(l);
        pthread_join(l->thread, NULL);
    }
    for (size_t b = 0; b < APPLOG_BUCKETS; b++) {
        while (l->files[b]) {
            struct applog_file *f = l->files[b];

            l->files[b] = f->next;
            if (f->fd >= 0)
                close(f->fd);
            pthread_mutex_destroy(&f->lock);
            pthread_cond_destroy(&f->grew);
            free(f->app);
            free(f->path);
            free(f);
        }
    }
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    strbuf_release(&l->router_queue);
    pthread_mutex_destroy(&l->files_lock);
    pthread_mutex_destroy(&l->queue_lock);
    pthread_cond_destroy(&l->readers_cond);
    free(l->apps_dir);
    free(l);
}
