/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The receive-pack session (git's builtin/receive-pack.c is the behavioural
 * reference): parse the command list and push options, take the pack in
 * with git_indexer into a quarantine directory (objects/incoming-XXXXXX), let
 * update.c check the updates, run the deploy and move the refs, then write
 * the report-status, inside side-band 1 when the client asked for it.
 *
 * Nothing from a push becomes part of the repository before the deploy
 * accepted it: the pack stays in the quarantine, visible to checks and to
 * receiver_push_export() through an in-memory alternate, and is renamed into
 * objects/pack only afterwards. Any failure removes the quarantine.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "receiver/packscan.h"
#include "receiver/push.h"
#include "receiver/update.h"
#include "common/banned.h"

void push_init(struct receiver_push *p, const struct receiver_options *opts)
{
    memset(p, 0, sizeof(*p));
    p->opts = opts;
    p->out_fd = -1;
    pthread_mutex_init(&p->out_lock, NULL);
}

void push_release(struct receiver_push *p)
{
    for (size_t i = 0; i < p->n_cmds; i++) {
        free(p->cmds[i].refname);
        free(p->cmds[i].error);
    }
    free(p->cmds);
    for (size_t i = 0; i < p->n_options; i++)
        free(p->options[i]);
    free(p->options);
    if (p->quarantine)
        (void)rm_rf(p->quarantine, NULL);
    free(p->quarantine);
    free(p->pack_name);
    git_repository_free(p->repo);
    pthread_mutex_destroy(&p->out_lock);
    p->cmds = NULL;
    p->options = NULL;
    p->quarantine = p->pack_name = NULL;
    p->repo = NULL;
    p->n_cmds = p->n_options = 0;
}

bool push_moved_refs(const struct receiver_push *p)
{
    for (size_t i = 0; i < p->n_cmds; i++)
        if (!p->cmds[i].error)
            return true;
    return false;
}

/* ---- output ---------------------------------------------------------- */

void push_send(struct receiver_push *p, const char *data, size_t len)
{
    pthread_mutex_lock(&p->out_lock);
    while (len && !p->out_broken && p->out_fd >= 0) {
        /*
         * A socket rather than a pipe: once the client is gone the reader
         * end is closed and send() fails with EPIPE; MSG_NOSIGNAL keeps that
         * from killing the daemon with SIGPIPE.
         */
        ssize_t n = p->out_is_pipe ? write(p->out_fd, data, len) : send(p->out_fd, data, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOTSOCK && !p->out_is_pipe) {
                /* An ssh session's stdout may be a pipe (the daemon ignores SIGPIPE). */
                p->out_is_pipe = true;
                continue;
            }
            p->out_broken = true;
            break;
        }
        data += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&p->out_lock);
}

static void send_progress_text(struct receiver_push *p, const char *text, size_t len)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    /* Without side-band there is no channel for progress; git drops it too. */
    if (!p->side_band)
        return;
    pktline_add_sideband(&sb, 2, text, len);
    push_send(p, sb.buf, sb.len);
}

void receiver_progress(struct receiver_push *p, const char *fmt, ...)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    strbuf_addch(&sb, '\n');
    send_progress_text(p, sb.buf, sb.len);
}

/* Our own progress (indexing) obeys `quiet`; the deploy's output never does. */
static void own_progress(struct receiver_push *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void own_progress(struct receiver_push *p, const char *fmt, ...)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    va_list ap;

    if (p->quiet)
        return;
    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    send_progress_text(p, sb.buf, sb.len);
}

size_t receiver_push_option_count(const struct receiver_push *push)
{
    return push->n_options;
}

const char *receiver_push_option_at(const struct receiver_push *push, size_t i)
{
    return i < push->n_options ? push->options[i] : NULL;
}

const char *receiver_push_option(const struct receiver_push *push, const char *key)
{
    size_t klen = strlen(key);
    const char *found = NULL;

    for (size_t i = 0; i < push->n_options; i++) {
        const char *o = push->options[i];

        if (strncmp(o, key, klen) == 0 && (o[klen] == '=' || o[klen] == '\0'))
            found = o[klen] ? o + klen + 1 : "";
    }
    return found;
}

/* ---- command list ---------------------------------------------------- */

static bool is_hex40(const char *s)
{
    for (int i = 0; i < 40; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static int parse_caps(struct receiver_push *p, const char *caps, struct berth_error **err)
{
    _cleanup_free_ char *copy = xstrdup(caps);
    char *save = NULL;

    for (char *tok = strtok_r(copy, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
        if (!strcmp(tok, "report-status"))
            p->report_status = true;
        else if (!strcmp(tok, "side-band-64k"))
            p->side_band = true;
        else if (!strcmp(tok, "quiet"))
            p->quiet = true;
        else if (!strcmp(tok, "atomic"))
            p->atomic = true;
        else if (!strcmp(tok, "push-options"))
            p->push_options = true;
        else if (!strncmp(tok, "object-format=", 14) && strcmp(tok + 14, "sha1"))
            return berth_error_plain(err, EPROTO, "unsupported object format '%s'", tok + 14);
        /* Anything else (agent=, ofs-delta, ...) needs no action. */
    }
    return 0;
}

static int parse_command(struct receiver_push *p, char *line, size_t len, struct berth_error **err)
{
    struct push_command *c;
    size_t caps_at = strlen(line);

    if (caps_at < len) {
        /* Capabilities ride on the first command only, after a NUL. */
        if (p->n_cmds == 0) {
            int r = parse_caps(p, line + caps_at + 1, err);

            if (r < 0)
                return r;
        }
        len = caps_at;
    }
    if (len && line[len - 1] == '\n')
        line[--len] = '\0';
    if (len < 83 || line[40] != ' ' || line[81] != ' ' || !is_hex40(line) || !is_hex40(line + 41))
        return berth_error_plain(err, EPROTO, "protocol error: malformed command '%.100s'", line);
    if (p->n_cmds >= PUSH_MAX_COMMANDS)
        return berth_error_plain(err, E2BIG, "too many commands (at most %d)", PUSH_MAX_COMMANDS);
    p->cmds = xrealloc(p->cmds, (p->n_cmds + 1) * sizeof(*p->cmds));
    c = &p->cmds[p->n_cmds++];
    memset(c, 0, sizeof(*c));
    memcpy(c->old_hex, line, 40);
    memcpy(c->new_hex, line + 41, 40);
    (void)git_oid_fromstrn(&c->old_oid, c->old_hex, 40);
    (void)git_oid_fromstrn(&c->new_oid, c->new_hex, 40);
    c->refname = xstrdup(line + 82);
    return 0;
}

int push_read_commands(struct receiver_push *p, struct pkt_reader *r, struct berth_error **err)
{
    char *data;
    size_t len;
    int k;

    while ((k = pkt_reader_read(r, &data, &len, err)) > 0) {
        k = parse_command(p, data, len, err);
        if (k < 0)
            return k;
    }
    if (k < 0)
        return k;
    if (p->n_cmds && p->push_options) {
        while ((k = pkt_reader_read(r, &data, &len, err)) > 0) {
            if (p->n_options >= PUSH_MAX_OPTIONS)
                return berth_error_plain(err, E2BIG, "too many push options (at most %d)",
                                         PUSH_MAX_OPTIONS);
            if (len && data[len - 1] == '\n')
                data[--len] = '\0';
            p->options = xrealloc(p->options, (p->n_options + 1) * sizeof(*p->options));
            p->options[p->n_options++] = xstrndup(data, len);
        }
        if (k < 0)
            return k;
    }
    return (int)p->n_cmds;
}

/* ---- pack ingest ----------------------------------------------------- */

struct index_progress {
    struct receiver_push *p;
    unsigned int last_pct;
    size_t max_objects;
    bool too_many;
};

static int on_index_progress(const git_indexer_progress *s, void *payload)
{
    struct index_progress *ip = payload;

    /* The pack's header names its object count before any object is read. */
    if (s->total_objects > ip->max_objects) {
        ip->too_many = true;
        return -1;
    }

    if (s->total_objects && s->received_objects < s->total_objects) {
        unsigned int pct = (unsigned int)((uint64_t)s->received_objects * 100 / s->total_objects);

        /* One line per 10 % keeps a large push readable without flooding the client. */
        if (pct / 10 != ip->last_pct / 10) {
            ip->last_pct = pct;
            own_progress(ip->p, "Receiving objects: %3u%% (%u/%u)\r", pct,
                         s->received_objects, s->total_objects);
        }
    }
    return 0;
}

static bool needs_pack(const struct receiver_push *p)
{
    for (size_t i = 0; i < p->n_cmds; i++)
        if (!git_oid_is_zero(&p->cmds[i].new_oid))
            return true;
    return false;
}

/* A fresh quarantine directory (p->quarantine) and its pack/ directory (*ret_pack). */
static int make_quarantine(struct receiver_push *p, char **ret_pack, struct berth_error **err)
{
    _cleanup_free_ char *qpack = NULL;

    p->quarantine = xasprintf("%sobjects/incoming-XXXXXX", git_repository_path(p->repo));
    if (!mkdtemp(p->quarantine)) {
        int e = errno;

        free(p->quarantine);
        p->quarantine = NULL;
        return berth_error_make(err, e, "creating quarantine");
    }
    qpack = xasprintf("%s/pack", p->quarantine);
    if (mkdir(qpack, 0755) < 0)
        return berth_error_make(err, errno, "creating '%s'", qpack);
    *ret_pack = TAKE_PTR(qpack);
    return 0;
}

/*
 * Streams the pack from r into the indexer, within the push's byte and
 * object limits; each buffer is scanned (packscan.c) before the indexer
 * has it, so an object over a cap is refused before libgit2 would build it.
 */
static int feed_indexer(struct receiver_push *p, struct pkt_reader *r, git_indexer *idx,
                        struct pack_scan *scan, const struct index_progress *ip,
                        git_indexer_progress *stats, struct berth_error **err)
{
    uint64_t max_bytes = p->opts->max_request_bytes ? p->opts->max_request_bytes : PUSH_DEFAULT_MAX_BYTES;
    _cleanup_free_ char *buf = xmalloc(65536);
    uint64_t got = 0;
    ssize_t n;
    int k;

    while ((n = pkt_reader_read_raw(r, buf, 65536)) > 0) {
        got += (uint64_t)n;
        if (got > max_bytes)
            return berth_error_plain(err, EFBIG, "push too large (over the limit of %llu bytes)",
                                     (unsigned long long)max_bytes);
        if ((k = pack_scan_feed(scan, (const unsigned char *)buf, (size_t)n, err)) < 0)
            return k;
        k = git_indexer_append(idx, buf, (size_t)n, stats);
        if (k < 0 && ip->too_many)
            return berth_error_plain(err, E2BIG, "push of %u objects is over the limit of %zu objects",
                                     stats->total_objects, ip->max_objects);
        if (k < 0)
            return git_to_berth_error(err, k, "indexing pack");
    }
    if (n < 0)
        return berth_error_make(err, (int)-n, "reading pack");
    return 0;
}

/*
 * After the pack's last byte: the indexer's commit, git's closing progress
 * lines, and the quarantined objects made visible to checks and export (in
 * memory only); an empty pack keeps nothing.
 */
static int finish_pack(struct receiver_push *p, git_indexer *idx, git_odb *odb,
                       git_indexer_progress *stats, struct berth_error **err)
{
    int k = git_indexer_commit(idx, stats);

    if (k < 0)
        return git_to_berth_error(err, k, "indexing pack");
    if (stats->total_objects)
        own_progress(p, "Receiving objects: 100%% (%u/%u), done.\n", stats->received_objects,
                     stats->total_objects);
    if (stats->indexed_deltas)
        own_progress(p, "Resolving deltas: 100%% (%u/%u), done.\n", stats->indexed_deltas,
                     stats->total_deltas);
    if (stats->total_objects == 0) {
        /* git sends an empty pack when we already have everything; keep nothing. */
        (void)rm_rf(p->quarantine, NULL);
        free(p->quarantine);
        p->quarantine = NULL;
        return 0;
    }
    p->pack_name = xasprintf("pack-%s", git_indexer_name(idx));
    k = git_odb_add_disk_alternate(odb, p->quarantine);
    if (k < 0)
        return git_to_berth_error(err, k, "adding quarantine alternate");
    return 0;
}

/* Indexes the pack that follows the commands into a fresh quarantine. */
static int ingest_pack(struct receiver_push *p, struct pkt_reader *r, struct berth_error **err)
{
    static const struct pack_limits limits = {
        .max_commit = PUSH_MAX_COMMIT_BYTES, .max_tree = PUSH_MAX_TREE_BYTES,
        .max_built = PUSH_MAX_BUILT_BYTES, .max_total = PUSH_MAX_TOTAL_BYTES,
    };
    git_indexer_options o = GIT_INDEXER_OPTIONS_INIT;
    struct index_progress ip = { .p = p, .last_pct = 0 };
    struct pack_scan scan;
    git_indexer_progress stats = { 0 };
    git_indexer *idx = NULL;
    git_odb *odb = NULL;
    _cleanup_free_ char *qpack = NULL;
    int k;

    if ((k = make_quarantine(p, &qpack, err)) < 0)
        return k;
    k = git_repository_odb(&odb, p->repo);
    if (k < 0)
        return git_to_berth_error(err, k, "opening object database");
    /*
     * No verify: libgit2's connectivity check keeps every object of the pack
     * in memory (a 600 MiB blob costs 600 MiB). Each object's hash and the
     * pack's checksum are checked all the same; connectivity is update.c's,
     * by git rev-list, which never reads a blob.
     */
    o.verify = 0;
    o.progress_cb = on_index_progress;
    o.progress_cb_payload = &ip;
    ip.max_objects = p->opts->max_objects ? p->opts->max_objects : PUSH_DEFAULT_MAX_OBJECTS;
    /* The repository's odb lets the indexer complete a thin pack from bases we have. */
    k = git_indexer_new(&idx, qpack, 0, odb, &o);
    pack_scan_init(&scan, &limits, odb);
    if (k < 0)
        k = git_to_berth_error(err, k, "starting indexer");
    else if ((k = feed_indexer(p, r, idx, &scan, &ip, &stats, err)) == 0)
        k = finish_pack(p, idx, odb, &stats, err);
    pack_scan_release(&scan);
    git_indexer_free(idx);
    git_odb_free(odb);
    return k;
}

int push_publish_pack(struct receiver_push *p, struct berth_error **err)
{
    const char *gitdir = git_repository_path(p->repo);
    static const char *const exts[] = { ".pack", ".idx" };
    git_odb *odb = NULL;
    int k;

    if (!p->pack_name)
        return 0;
    /* The .idx goes last: git and libgit2 only see a pack once its index exists. */
    for (size_t i = 0; i < 2; i++) {
        _cleanup_free_ char *from = xasprintf("%s/pack/%s%s", p->quarantine, p->pack_name, exts[i]);
        _cleanup_free_ char *to = xasprintf("%sobjects/pack/%s%s", gitdir, p->pack_name, exts[i]);

        if (rename(from, to) < 0)
            return berth_error_make(err, errno, "moving '%s' into the repository", from);
    }
    {
        _cleanup_free_ char *idx = xasprintf("%sobjects/pack/%s.idx", gitdir, p->pack_name);

        k = fsync_parent_dir(idx, err);
        if (k < 0)
            return k;
    }
    k = git_repository_odb(&odb, p->repo);
    if (k < 0)
        return git_to_berth_error(err, k, "opening object database");
    k = git_odb_refresh(odb);
    git_odb_free(odb);
    if (k < 0)
        return git_to_berth_error(err, k, "refreshing object database");
    return 0;
}

/* ---- the session ----------------------------------------------------- */

static void send_report(struct receiver_push *p, const char *unpack_error)
{
    _cleanup_strbuf_ struct strbuf report = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;

    if (!p->report_status) {
        /* git's receive-pack still ends a side-band stream with a flush. */
        if (p->side_band)
            push_send(p, "0000", 4);
        return;
    }
    if (unpack_error)
        (void)pktline_addf(&report, "unpack %.1000s\n", unpack_error);
    else
        (void)pktline_addf(&report, "unpack ok\n");
    for (size_t i = 0; i < p->n_cmds; i++) {
        struct push_command *c = &p->cmds[i];

        /* Reasons are capped so a line always fits one packet. */
        if (c->error)
            (void)pktline_addf(&report, "ng %s %.1000s\n", c->refname, c->error);
        else
            (void)pktline_addf(&report, "ok %s\n", c->refname);
    }
    pktline_add_flush(&report);
    if (p->side_band) {
        pktline_add_sideband(&out, 1, report.buf, report.len);
        pktline_add_flush(&out);
        push_send(p, out.buf, out.len);
    } else {
        push_send(p, report.buf, report.len);
    }
}

static char *one_line(const char *s)
{
    char *copy = xstrdup(s);

    for (char *c = copy; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return copy;
}

void push_execute(struct receiver_push *p, struct pkt_reader *r)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *unpack_error = NULL;
    int k;

    k = git_repository_open_ext(&p->repo, p->opts->repo_path,
                                GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL);
    if (k < 0) {
        (void)git_to_berth_error(&err, k, "opening repository");
        unpack_error = one_line(berth_error_msg(&err));
    } else if (needs_pack(p)) {
        k = ingest_pack(p, r, &err);
        if (k < 0)
            unpack_error = one_line(berth_error_msg(&err));
    }
    if (unpack_error) {
        for (size_t i = 0; i < p->n_cmds; i++)
            p->cmds[i].error = xstrdup("unpacker error");
    } else {
        update_run(p);
    }
    if (p->quarantine) {
        (void)rm_rf(p->quarantine, NULL);
        free(p->quarantine);
        p->quarantine = NULL;
    }
    send_report(p, unpack_error);
}
