/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The upload-pack side of the receiver (clone and fetch back, git protocol
 * v0; git's builtin/upload-pack.c is the behavioural reference), shared by
 * the smart-HTTP and the SSH transports. The ref advertisement lists HEAD
 * (with a symref capability) and every branch; a request is the wanted tips
 * (each must be an advertised tip, as git's default uploadpack settings
 * require), then "have" lines in rounds and "done". No multi_ack is
 * offered, so the negotiation is git's simplest: the first common "have"
 * is ACKed at once, a round without one gets NAK. The pack is built by
 * libgit2's pack builder from the wanted tips down to the common haves and
 * streamed to the client inside side-band 1 (progress on band 2) as the
 * builder writes it.
 *
 * Stateless (HTTP): each request carries the wants again and ends either
 * in a flush (answer: ACK/NAK, then the request is over) or in "done"
 * (answer: the pack).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "receiver/push.h"
#include "receiver/upload.h"
#include "common/banned.h"

#define UPLOAD_CAPS "side-band-64k ofs-delta no-progress object-format=sha1 agent=berth/0.1"
#define UPLOAD_MAX_WANTS 10000
#define UPLOAD_MAX_HAVES 100000

struct upload {
    git_repository *repo;
    struct receiver_push out;     /* only its output half: out_fd, lock, pipe fallback */
    bool side_band, no_progress;
    git_oid *wants;
    size_t n_wants;
    git_oid *common;
    size_t n_common;
};

/* ---- advertisement ---------------------------------------------------- */

static void add_line(struct strbuf *out, const git_oid *oid, const char *name, const char *symref_target,
                     bool *first)
{
    char hex[GIT_OID_HEXSZ + 1];

    git_oid_tostr(hex, sizeof(hex), oid);
    if (!*first) {
        (void)pktline_addf(out, "%s %s\n", hex, name);
        return;
    }
    *first = false;
    if (symref_target)
        (void)pktline_addf(out, "%s %s%c%s symref=HEAD:%s\n", hex, name, '\0', UPLOAD_CAPS, symref_target);
    else
        (void)pktline_addf(out, "%s %s%c%s\n", hex, name, '\0', UPLOAD_CAPS);
}

int upload_advertise(git_repository *repo, struct strbuf *out, struct berth_error **err)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL, *head = NULL;
    bool first = true;
    int r;

    /* HEAD first, when it points at a branch that exists. */
    if (git_reference_lookup(&head, repo, "HEAD") == 0 && git_reference_type(head) == GIT_REFERENCE_SYMBOLIC) {
        git_oid oid;

        if (git_reference_name_to_id(&oid, repo, "HEAD") == 0)
            add_line(out, &oid, "HEAD", git_reference_symbolic_target(head), &first);
    }
    git_reference_free(head);
    r = git_reference_iterator_new(&it, repo);
    if (r < 0)
        return git_to_berth_error(err, r, "listing refs");
    while ((r = git_reference_next(&ref, it)) == 0) {
        if (git_reference_type(ref) == GIT_REFERENCE_DIRECT)
            add_line(out, git_reference_target(ref), git_reference_name(ref), NULL, &first);
        git_reference_free(ref);
    }
    git_reference_iterator_free(it);
    if (r != GIT_ITEROVER)
        return git_to_berth_error(err, r, "listing refs");
    if (first) {
        git_oid zero;

        memset(&zero, 0, sizeof(zero));
        add_line(out, &zero, "capabilities^{}", NULL, &first);
    }
    pktline_add_flush(out);
    return 0;
}

/* ---- request ---------------------------------------------------------- */

/* Whether `oid` is the tip of some branch (what git's default allows in a want). */
static bool is_advertised_tip(git_repository *repo, const git_oid *oid)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    bool found = false;

    if (git_reference_iterator_new(&it, repo) < 0)
        return false;
    while (!found && git_reference_next(&ref, it) == 0) {
        found = git_reference_type(ref) == GIT_REFERENCE_DIRECT && git_oid_equal(git_reference_target(ref), oid);
        git_reference_free(ref);
    }
    git_reference_iterator_free(it);
    return found;
}

static int parse_oid(const char *hex, size_t len, git_oid *ret)
{
    for (size_t i = 0; i < GIT_OID_HEXSZ; i++) {
        char c = hex[i];

        if (i >= len || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
    }
    if (len > GIT_OID_HEXSZ && hex[GIT_OID_HEXSZ] != ' ' && hex[GIT_OID_HEXSZ] != '\n')
        return -1;
    return git_oid_fromstrn(ret, hex, GIT_OID_HEXSZ) < 0 ? -1 : 0;
}

static void parse_caps(struct upload *u, const char *caps)
{
    _cleanup_free_ char *copy = xstrdup(caps);
    char *save = NULL;

    for (char *tok = strtok_r(copy, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
        if (!strcmp(tok, "side-band-64k") || !strcmp(tok, "side-band"))
            u->side_band = true;
        else if (!strcmp(tok, "no-progress"))
            u->no_progress = true;
    }
}

/* The want list up to its flush. Returns the number of wants, or -errno with *err. */
static int read_wants(struct upload *u, struct pkt_reader *r, struct berth_error **err)
{
    char *data;
    size_t len;
    int k;

    while ((k = pkt_reader_read(r, &data, &len, err)) > 0) {
        git_oid oid;

        if (!strncmp(data, "shallow ", 8) || !strncmp(data, "deepen", 6) || !strncmp(data, "filter ", 7))
            return berth_error_plain(err, ENOTSUP, "shallow and partial clones are not served by berth");
        if (strncmp(data, "want ", 5) || parse_oid(data + 5, len - 5, &oid) < 0)
            return berth_error_plain(err, EPROTO, "protocol error: expected a want line, got '%.60s'", data);
        if (u->n_wants == 0 && len > 5 + GIT_OID_HEXSZ)
            parse_caps(u, data + 5 + GIT_OID_HEXSZ);
        if (u->n_wants >= UPLOAD_MAX_WANTS)
            return berth_error_plain(err, E2BIG, "too many wants (at most %d)", UPLOAD_MAX_WANTS);
        if (!is_advertised_tip(u->repo, &oid)) {
            char hex[GIT_OID_HEXSZ + 1];

            git_oid_tostr(hex, sizeof(hex), &oid);
            return berth_error_plain(err, EPERM, "upload-pack: not our ref %s", hex);
        }
        u->wants = xrealloc(u->wants, (u->n_wants + 1) * sizeof(*u->wants));
        u->wants[u->n_wants++] = oid;
    }
    return k < 0 ? k : (int)u->n_wants;
}

static void send_line(struct upload *u, const char *line)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    (void)pktline_addf(&sb, "%s", line);
    push_send(&u->out, sb.buf, sb.len);
}

/*
 * The have rounds. Returns 1 when the client said "done", 0 when a stateless
 * request ended in a flush (the answer is sent), or -errno.
 */
static int negotiate(struct upload *u, struct pkt_reader *r, bool stateless, struct berth_error **err)
{
    size_t n_haves = 0;
    char *data;
    size_t len;
    int k;

    for (;;) {
        git_oid oid;

        k = pkt_reader_read(r, &data, &len, err);
        if (k < 0)
            return k;
        if (k == 0) {
            if (u->n_common == 0)
                send_line(u, "NAK\n");
            if (stateless)
                return 0;
            continue;
        }
        if (!strcmp(data, "done") || !strcmp(data, "done\n")) {
            if (u->n_common == 0)
                send_line(u, "NAK\n");
            return 1;
        }
        if (strncmp(data, "have ", 5) || parse_oid(data + 5, len - 5, &oid) < 0)
            return berth_error_plain(err, EPROTO, "protocol error: expected have or done, got '%.60s'", data);
        if (++n_haves > UPLOAD_MAX_HAVES)
            return berth_error_plain(err, E2BIG, "too many haves (at most %d)", UPLOAD_MAX_HAVES);
        /* Only commits we have are common ground; anything else is the client's own. */
        {
            git_commit *c = NULL;

            if (git_commit_lookup(&c, u->repo, &oid) < 0)
                continue;
            git_commit_free(c);
        }
        u->common = xrealloc(u->common, (u->n_common + 1) * sizeof(*u->common));
        u->common[u->n_common++] = oid;
        if (u->n_common == 1) {
            char line[GIT_OID_HEXSZ + 6];

            memcpy(line, "ACK ", 4);
            git_oid_tostr(line + 4, GIT_OID_HEXSZ + 1, &oid);
            memcpy(line + 4 + GIT_OID_HEXSZ, "\n", 2);
            send_line(u, line);
        }
    }
}

/* ---- pack ------------------------------------------------------------- */

static int pack_chunk(void *buf, size_t size, void *payload)
{
    struct upload *u = payload;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    if (u->side_band)
        pktline_add_sideband(&sb, 1, buf, size);
    else
        strbuf_add(&sb, buf, size);
    push_send(&u->out, sb.buf, sb.len);
    /* A client that went away stops the builder. */
    return u->out.out_broken ? -1 : 0;
}

static void progress(struct upload *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(struct upload *u, const char *fmt, ...)
{
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    va_list ap;

    if (!u->side_band || u->no_progress)
        return;
    va_start(ap, fmt);
    strbuf_vaddf(&text, fmt, ap);
    va_end(ap);
    pktline_add_sideband(&sb, 2, text.buf, text.len);
    push_send(&u->out, sb.buf, sb.len);
}

static int send_pack(struct upload *u, struct berth_error **err)
{
    git_packbuilder *pb = NULL;
    git_revwalk *walk = NULL;
    int k;

    if ((k = git_packbuilder_new(&pb, u->repo)) < 0 || (k = git_revwalk_new(&walk, u->repo)) < 0) {
        k = git_to_berth_error(err, k, "starting the pack");
        goto out;
    }
    for (size_t i = 0; i < u->n_wants; i++)
        if ((k = git_revwalk_push(walk, &u->wants[i])) < 0) {
            k = git_to_berth_error(err, k, "walking history");
            goto out;
        }
    for (size_t i = 0; i < u->n_common; i++)
        (void)git_revwalk_hide(walk, &u->common[i]);
    if ((k = git_packbuilder_insert_walk(pb, walk)) < 0) {
        k = git_to_berth_error(err, k, "collecting objects");
        goto out;
    }
    progress(u, "Enumerating objects: %u, done.\n", (unsigned)git_packbuilder_object_count(pb));
    if ((k = git_packbuilder_foreach(pb, pack_chunk, u)) < 0) {
        k = u->out.out_broken ? berth_error_plain(err, EPIPE, "the client went away")
                              : git_to_berth_error(err, k, "writing the pack");
        goto out;
    }
    progress(u, "Total %u\n", (unsigned)git_packbuilder_written(pb));
    if (u->side_band)
        push_send(&u->out, "0000", 4);
    k = 0;
out:
    git_revwalk_free(walk);
    git_packbuilder_free(pb);
    return k;
}

/* ---- the session ------------------------------------------------------ */

static void send_error(struct upload *u, const char *msg)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    /* Before the pack git reads "ERR <msg>" as a fatal error; inside it, band 3 is. */
    (void)pktline_addf(&sb, "ERR %.1000s\n", msg);
    push_send(&u->out, sb.buf, sb.len);
}

int upload_serve(git_repository *repo, struct pkt_reader *r, int out_fd, bool stateless,
                 struct berth_error **err)
{
    struct upload u = { .repo = repo };
    int k;

    push_init(&u.out, NULL);
    u.out.out_fd = out_fd;
    k = read_wants(&u, r, err);
    if (k > 0)
        k = negotiate(&u, r, stateless, err);
    if (k > 0)
        k = send_pack(&u, err);
    if (k < 0 && berth_error_code(err) != EPIPE)
        send_error(&u, berth_error_msg(err));
    free(u.wants);
    free(u.common);
    pthread_mutex_destroy(&u.out.out_lock);
    return k < 0 ? k : 0;
}
