/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/applog-read: the reading side of the apps' logs (see applog.h):
 * the filter of `berth logs -p/--source`, the last N lines across app.log.1
 * and app.log, and following the log as it grows. A reader opens both
 * files under the app's lock and notes app.log's size then: the tail reads
 * up to that size and the follow goes on from it, through rotations (the
 * open descriptor keeps reading the renamed file to its end, then the new
 * app.log is opened).
 */
#include "control/applog.h"
#include "control/applog-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"

/* The most one follow call reads, so that a reader far behind catches up in steps of bounded memory. */
#define FOLLOW_READ_MAX (1u << 20)

struct applog_reader {
    struct applog *log;
    struct applog_file *file;
    enum applog_source source;
    char *ps;
    int old_fd;                   /* app.log.1 at the open, for the tail; -1 if none */
    int fd;                       /* the app.log being followed; -1 while none */
    uint64_t tail_end;            /* app.log's size at the open */
    uint64_t offset;              /* the next byte of fd to follow */
    uint64_t writes, rotations;   /* the file's counts when last looked at */
    uint64_t forgets;             /* the file's applog_forget() count at the open */
    struct strbuf partial;        /* a line whose end was not written yet */
};

/* ---------------------------------------------------------------- the filter */

bool applog_line_matches(const char *line, size_t len, const struct applog_filter *f)
{
    const char *end = line + len, *sp = memchr(line, ' ', len), *open, *close;
    size_t dyno_len, ps_len;
    bool router;

    if (!sp)
        return false;
    open = memchr(sp, '[', (size_t)(end - sp));
    close = open ? memchr(open, ']', (size_t)(end - open)) : NULL;
    if (!close)
        return false;
    router = (size_t)(close + 1 - (sp + 1)) == strlen("heroku[router]") &&
             memcmp(sp + 1, "heroku[router]", strlen("heroku[router]")) == 0;
    if ((f->source == APPLOG_SOURCE_APP && router) || (f->source == APPLOG_SOURCE_ROUTER && !router))
        return false;
    if (!f->ps)
        return true;
    /* "web" matches web.1, web.2...; "web.1" only itself. */
    dyno_len = (size_t)(close - open - 1);
    ps_len = strlen(f->ps);
    if (dyno_len < ps_len || memcmp(open + 1, f->ps, ps_len) != 0)
        return false;
    return dyno_len == ps_len || (!strchr(f->ps, '.') && open[1 + ps_len] == '.');
}

/* ---------------------------------------------------------------- open */

int applog_reader_open(struct applog *l, const char *app, const struct applog_filter *f,
                       struct applog_reader **ret, struct berth_error **err)
{
    struct applog_reader *r = xcalloc(1, sizeof(*r));
    _cleanup_free_ char *old = NULL;
    struct stat st;
    int e;

    r->log = l;
    applog_reader_count(l, 1);
    r->file = applog_file_get(l, app);
    r->source = f->source;
    r->ps = f->ps ? xstrdup(f->ps) : NULL;
    strbuf_init(&r->partial, 0);
    old = xasprintf("%s.1", r->file->path);
    /* Under the lock no write or rotation is half done: the two files and the size agree. */
    pthread_mutex_lock(&r->file->lock);
    r->old_fd = open(old, O_RDONLY | O_CLOEXEC);
    e = r->old_fd < 0 && errno != ENOENT ? errno : 0;
    r->fd = open(r->file->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0 && errno != ENOENT)
        e = errno;
    if (r->fd >= 0 && fstat(r->fd, &st) == 0)
        r->tail_end = (uint64_t)st.st_size;
    r->offset = r->tail_end;
    r->writes = r->file->writes;
    r->rotations = r->file->rotations;
    r->forgets = r->file->forgets;
    pthread_mutex_unlock(&r->file->lock);
    /* No log yet is no error: nothing was written. */
    if (e) {
        applog_reader_free(r);
        return berth_error_make(err, e, "opening the log of '%s'", app);
    }
    *ret = r;
    return 0;
}

void applog_reader_free(struct applog_reader *r)
{
    if (!r)
        return;
    if (r->old_fd >= 0)
        close(r->old_fd);
    if (r->fd >= 0)
        close(r->fd);
    strbuf_release(&r->partial);
    free(r->ps);
    applog_reader_count(r->log, -1);
    free(r);
}

static bool matches(const struct applog_reader *r, const char *line, size_t len)
{
    struct applog_filter f = { .source = r->source, .ps = r->ps };

    return applog_line_matches(line, len, &f);
}

/* ---------------------------------------------------------------- tail */

/* The last n lines kept, in a ring. */
struct ring {
    char **lines;
    size_t *lens;
    unsigned n, next, count;
};

static void ring_push(struct ring *g, const char *line, size_t len)
{
    free(g->lines[g->next]);
    g->lines[g->next] = xstrndup(line, len);
    g->lens[g->next] = len;
    g->next = (g->next + 1) % g->n;
    if (g->count < g->n)
        g->count++;
}

/* Reads fd from 0 up to `limit` bytes (UINT64_MAX: to its end), keeping the matching lines. */
static int tail_file(const struct applog_reader *r, int fd, uint64_t limit, struct ring *g)
{
    _cleanup_strbuf_ struct strbuf buf = STRBUF_INIT;
    uint64_t off = 0;

    while (off < limit) {
        size_t want = limit - off < 65536 ? (size_t)(limit - off) : 65536;
        ssize_t n;
        char *line, *nl;

        strbuf_grow(&buf, want);
        n = pread(fd, buf.buf + buf.len, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        off += (uint64_t)n;
        strbuf_setlen(&buf, buf.len + (size_t)n);
        for (line = buf.buf; (nl = memchr(line, '\n', (size_t)(buf.buf + buf.len - line))); line = nl + 1)
            if (matches(r, line, (size_t)(nl + 1 - line)))
                ring_push(g, line, (size_t)(nl + 1 - line));
        strbuf_remove_prefix(&buf, (size_t)(line - buf.buf));
    }
    return 0;
}

int applog_reader_tail(struct applog_reader *r, unsigned n, struct strbuf *out, struct berth_error **err)
{
    struct ring g = { .n = n };
    int rc = 0;

    if (!n)
        return 0;
    g.lines = xcalloc(n, sizeof(*g.lines));
    g.lens = xcalloc(n, sizeof(*g.lens));
    if (r->old_fd >= 0)
        rc = tail_file(r, r->old_fd, UINT64_MAX, &g);
    if (rc == 0 && r->fd >= 0)
        rc = tail_file(r, r->fd, r->tail_end, &g);
    for (unsigned i = 0; i < g.count; i++) {
        unsigned k = (g.next + g.n - g.count + i) % g.n;

        strbuf_add(out, g.lines[k], g.lens[k]);
    }
    for (unsigned i = 0; i < n; i++)
        free(g.lines[i]);
    free(g.lines);
    free(g.lens);
    if (rc < 0)
        return berth_error_make(err, -rc, "reading the log of '%s'", r->file->app);
    return 0;
}

/* ---------------------------------------------------------------- follow */

/* Appends the matching whole lines from r->offset on (at most FOLLOW_READ_MAX bytes); whether it read to the end. */
static bool read_new(struct applog_reader *r, struct strbuf *out, bool *added)
{
    size_t total = 0;
    char buf[65536];

    while (total < FOLLOW_READ_MAX) {
        ssize_t n = pread(r->fd, buf, sizeof(buf), (off_t)r->offset);
        char *line, *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return true;
        r->offset += (uint64_t)n;
        total += (size_t)n;
        strbuf_add(&r->partial, buf, (size_t)n);
        for (line = r->partial.buf; (nl = memchr(line, '\n', (size_t)(r->partial.buf + r->partial.len - line)));
             line = nl + 1) {
            if (matches(r, line, (size_t)(nl + 1 - line))) {
                strbuf_add(out, line, (size_t)(nl + 1 - line));
                *added = true;
            }
        }
        strbuf_remove_prefix(&r->partial, (size_t)(line - r->partial.buf));
    }
    return false;
}

/*
 * Waits until the file changes (or the timeout); -ESHUTDOWN once follows
 * end, -ENOENT once the app was forgotten, else whether it rotated.
 */
static int wait_change(struct applog_reader *r, int timeout_ms)
{
    struct applog_file *f = r->file;
    struct timespec deadline;
    bool rotated;

    applog_deadline_in(&deadline, timeout_ms);
    pthread_mutex_lock(&f->lock);
    while (f->writes == r->writes && f->rotations == r->rotations && f->forgets == r->forgets &&
           !atomic_load(&r->log->ending) && pthread_cond_timedwait(&f->grew, &f->lock, &deadline) == 0)
        ;
    if (f->forgets != r->forgets) {
        pthread_mutex_unlock(&f->lock);
        return -ENOENT;
    }
    rotated = f->rotations != r->rotations;
    r->writes = f->writes;
    r->rotations = f->rotations;
    pthread_mutex_unlock(&f->lock);
    if (atomic_load(&r->log->ending))
        return -ESHUTDOWN;
    return rotated;
}

/* Whether the app was destroyed since the open (applog_forget()). */
static bool forgotten(struct applog_reader *r)
{
    bool gone;

    pthread_mutex_lock(&r->file->lock);
    gone = r->file->forgets != r->forgets;
    pthread_mutex_unlock(&r->file->lock);
    return gone;
}

int applog_reader_follow(struct applog_reader *r, int timeout_ms, struct strbuf *out)
{
    bool added = false, at_end = true;
    int rotated = 0;

    if (forgotten(r))
        return -ENOENT;

    /* A reader behind (the last call stopped at FOLLOW_READ_MAX) reads on without waiting. */
    if (r->fd >= 0)
        at_end = read_new(r, out, &added);
    if (added || !at_end)
        return added;
    rotated = wait_change(r, timeout_ms);
    if (rotated < 0)
        return rotated;
    if (r->fd >= 0)
        at_end = read_new(r, out, &added);
    if (at_end && (rotated || r->fd < 0)) {
        /* The renamed file was read to its end: go on with the new app.log from its start. */
        if (r->fd >= 0)
            close(r->fd);
        r->fd = open(r->file->path, O_RDONLY | O_CLOEXEC);
        r->offset = 0;
        strbuf_reset(&r->partial);
        if (r->fd >= 0)
            read_new(r, out, &added);
    }
    return added;
}
