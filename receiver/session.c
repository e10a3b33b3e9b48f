/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The stream transport of the receiver (git over SSH, see receiver.h):
 * one whole session on a pair of file descriptors, as git's own
 * receive-pack and upload-pack speak it on stdin and stdout. The ref
 * advertisement goes out first; then the same cores as smart HTTP run:
 * push.c/update.c for a push (one request, the pack read to the end of
 * input), upload.c for a fetch (non-stateless: the have rounds go on until
 * "done").
 */
#include <errno.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "receiver/push.h"
#include "receiver/upload.h"
#include "common/banned.h"

static int write_adv(int out_fd, const struct strbuf *sb, struct berth_error **err)
{
    struct receiver_push out;

    /* push_send() knows sockets and pipes alike. */
    push_init(&out, NULL);
    out.out_fd = out_fd;
    push_send(&out, sb->buf, sb->len);
    pthread_mutex_destroy(&out.out_lock);
    return out.out_broken ? berth_error_plain(err, EPIPE, "the client went away") : 0;
}

static int session_receive(git_repository *repo, int in_fd, int out_fd, const struct receiver_options *opts,
                           bool *ret_moved, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf adv = STRBUF_INIT;
    _cleanup_free_ struct pkt_reader *r = xmalloc(sizeof(*r));
    struct receiver_push push;
    int k;

    if ((k = advertise_refs(repo, &adv, err)) < 0 || (k = write_adv(out_fd, &adv, err)) < 0)
        return k;
    pkt_reader_init(r, in_fd);
    push_init(&push, opts);
    k = push_read_commands(&push, r, err);
    if (k > 0) {
        push.out_fd = out_fd;
        push_execute(&push, r);
        *ret_moved = push_moved_refs(&push);
        /* Failed updates were reported to git (ng lines); the session itself worked. */
        k = 0;
        for (size_t i = 0; i < push.n_cmds; i++)
            if (push.cmds[i].error)
                k = -EIO;
        if (k < 0)
            berth_error_plain(err, EIO, "the push was refused");
    }
    push_release(&push);
    return k < 0 ? k : 0;
}

static int session_upload(git_repository *repo, int in_fd, int out_fd, struct berth_error **err)
{
    _cleanup_strbuf_ struct strbuf adv = STRBUF_INIT;
    _cleanup_free_ struct pkt_reader *r = xmalloc(sizeof(*r));
    int k;

    if ((k = upload_advertise(repo, &adv, err)) < 0 || (k = write_adv(out_fd, &adv, err)) < 0)
        return k;
    pkt_reader_init(r, in_fd);
    return upload_serve(repo, r, out_fd, false, err);
}

int receiver_session(const char *service, int in_fd, int out_fd, const struct receiver_options *opts,
                     bool *ret_moved, struct berth_error **err)
{
    git_repository *repo = NULL;
    int k;

    *ret_moved = false;
    if (strcmp(service, "git-receive-pack") && strcmp(service, "git-upload-pack"))
        return berth_error_plain(err, EINVAL, "unknown git service '%.40s'", service);
    k = git_repository_open_ext(&repo, opts->repo_path, GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE,
                                NULL);
    if (k < 0)
        return git_to_berth_error(err, k, "opening repository");
    if (!strcmp(service, "git-receive-pack"))
        k = session_receive(repo, in_fd, out_fd, opts, ret_moved, err);
    else
        k = session_upload(repo, in_fd, out_fd, err);
    git_repository_free(repo);
    return k;
}
