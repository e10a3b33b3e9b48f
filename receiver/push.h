/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The receive-pack state machine, transport-independent (internal to
 * receiver/). A transport reads the command list with push_read_commands(),
 * then runs push_execute() (pack ingest into a quarantine, checks, deploy
 * callback, pack move, ref updates, report), which writes every pkt-line it
 * produces to `out_fd` in one send() each. The HTTP transport runs
 * push_execute() on a worker thread and streams `out_fd`'s peer to the
 * client.
 */
#ifndef BERTH_RECEIVER_PUSH_H
#define BERTH_RECEIVER_PUSH_H

#include <git2.h>
#include <pthread.h>
#include <stdbool.h>

#include "receiver/pktline.h"
#include "receiver/receiver.h"

/* Caps on what a client may send (STYLE.md: every external size has a cap). */
#define PUSH_MAX_COMMANDS 1000
#define PUSH_MAX_OPTIONS 100
/* Defaults of receiver_options' limits. */
#define PUSH_DEFAULT_MAX_BYTES ((uint64_t)512 << 20)
#define PUSH_DEFAULT_MAX_OBJECTS 1000000

/*
 * Caps on single objects, for what libgit2 and git read whole (commits and
 * trees always; any object built from a delta, and that delta's base),
 * checked from the headers before anything is built: as a pack streams in
 * (packscan.c) and before the export looks an object up (export.c). git
 * itself sets none; these sit far above what real repositories hold:
 * - a commit or annotated tag of 4 MiB: linux.git's longest commit message
 *   is some tens of KB, and a commit has one line per parent;
 * - a tree of 16 MiB: about 300,000 entries in one directory; the biggest
 *   tree of a huge monorepo is a few MB, and git is unusable long before;
 * - an object built from a delta, or serving as a delta's base, of 100 MiB:
 *   GitHub refuses any file over 100 MiB, and git's own pack-objects does
 *   not deltify files over core.bigFileThreshold (512 MiB), so a larger
 *   file reaches the receiver stored whole, which libgit2 streams;
 * - all objects of a pack summed, 64 GiB: what indexing inflates and hashes
 *   (about a minute of CPU); a 512 MiB pack of real history inflates to a
 *   few GB, but a zlib stream of zeros inflates a thousandfold.
 */
#define PUSH_MAX_COMMIT_BYTES ((uint64_t)4 << 20)
#define PUSH_MAX_TREE_BYTES ((uint64_t)16 << 20)
#define PUSH_MAX_BUILT_BYTES ((uint64_t)100 << 20)
#define PUSH_MAX_TOTAL_BYTES ((uint64_t)64 << 30)

#define RECEIVER_CAPS "report-status delete-refs side-band-64k quiet atomic ofs-delta " \
                      "push-options object-format=sha1 agent=berth/0.1"

struct push_command {
    char *refname;
    git_oid old_oid, new_oid;
    char old_hex[41], new_hex[41];
    char *error;        /* NULL: still ok; else the `ng` reason */
    bool accepted;      /* passed the checks and the deploy: the ref update was tried */
};

struct receiver_push {
    const struct receiver_options *opts;
    git_repository *repo;
    int out_fd;                     /* socket: one send() per pkt-line */
    pthread_mutex_t out_lock;       /* receiver_progress() may come from any thread */
    bool out_broken;                /* the client went away; output is dropped */
    bool out_is_pipe;               /* out_fd is not a socket: write() instead of send() */

    /* client capabilities */
    bool report_status, side_band, quiet, atomic, push_options;

    struct push_command *cmds;
    size_t n_cmds;
    char **options;
    size_t n_options;

    char *quarantine;               /* objects/incoming-XXXXXX, NULL when none */
    char *pack_name;                /* "pack-<hash>" inside quarantine/pack */
};

/* Initialises `p` for the repository in opts; out_fd stays -1 until set. */
void push_init(struct receiver_push *p, const struct receiver_options *opts);
/* Frees everything, removes a quarantine left behind; does not close out_fd. */
void push_release(struct receiver_push *p);

/*
 * Parses the command list (and push options) from `r`. Returns the number of
 * commands (0 for git's "0000" probe), or -EPROTO/-E2BIG/... with *err set.
 */
int push_read_commands(struct receiver_push *p, struct pkt_reader *r, struct berth_error **err);
/* Runs the push to the end and writes the report to out_fd. Never fails: errors are reported. */
void push_execute(struct receiver_push *p, struct pkt_reader *r);
/* After push_execute: whether it moved a ref (each failure sets its command's error). */
bool push_moved_refs(const struct receiver_push *p);

/*
 * Renames the quarantined pack into objects/pack (.pack first, .idx last),
 * fsyncs the directory and refreshes the odb. No pack: nothing to do.
 */
int push_publish_pack(struct receiver_push *p, struct berth_error **err);

/* Sends one already framed buffer to the client in one piece (thread-safe). */
void push_send(struct receiver_push *p, const char *data, size_t len);

/*
 * The one adapter from libgit2 results to berth errors: copies
 * git_error_last()'s message at once (later libgit2 calls clobber it) and
 * maps the GIT_E* code to an errno. Returns the negative errno.
 */
int git_to_berth_error(struct berth_error **err, int git_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The current libgit2 message copied into a new string (never NULL). */
char *git_error_copy(void);
/*
 * An object's size and type from its header, without reading it (libgit2
 * reads a whole object into memory, and a pack can carry a 256 MiB blob of
 * zeros in a few hundred KB). Returns libgit2's code.
 */
int repo_object_header(git_repository *repo, const git_oid *id, size_t *ret_size, git_object_t *ret_type);

/*
 * Takes the repository's push lock (<git_dir>/berth-push.lock, see
 * update.c): one push, or one housekeeping run, at a time. If another holds
 * it, calls waiting(cls) (may be NULL) once, then blocks. Returns the fd
 * holding the lock, or -errno.
 */
int repo_lock(const char *git_dir, void (*waiting)(void *cls), void *cls);

/*
 * Writes the tree of commit `oid` into dest_dir (created if missing),
 * refusing entries that would write outside it (export.c).
 */
int export_commit(git_repository *repo, const git_oid *oid, const char *dest_dir,
                  struct berth_error **err);

/* receiver_fetch_tree() with a time limit of `seconds` instead of 5 minutes (for tests). */
int fetch_tree_within(const char *url, const char *ref, bool trusted, const char *cache_dir, const char *dest_dir,
                      int seconds, char **ret_commit, struct berth_error **err);

/*
 * Runs git with argv (argv[0] "git"; env NULL: the daemon's), stdin from
 * /dev/null, stdout to out_fd, and waits: 0 when it exits 0.
 */
int repo_run_git(char *const *argv, char *const *env, int out_fd, struct berth_error **err);

/* Appends the ref advertisement (without the HTTP service header) to out. */
int advertise_refs(git_repository *repo, struct strbuf *out, struct berth_error **err);

#endif
