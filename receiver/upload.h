/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * upload-pack (clone and fetch back) inside receiver/ (see upload.c): the
 * ref advertisement and one request, for both transports.
 */
#ifndef BERTH_RECEIVER_UPLOAD_H
#define BERTH_RECEIVER_UPLOAD_H

#include <git2.h>
#include <stdbool.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "receiver/pktline.h"

/* Appends upload-pack's ref advertisement (HEAD first, then every branch) and its flush. */
int upload_advertise(git_repository *repo, struct strbuf *out, struct berth_error **err);

/*
 * Serves one upload-pack request read from `r`, writing the answer to
 * out_fd (a socket or a pipe). stateless: an HTTP request, which may end
 * after a negotiation round. An error the client should see goes out as
 * "ERR <msg>" as well as into *err. 0 or -errno.
 */
int upload_serve(git_repository *repo, struct pkt_reader *r, int out_fd, bool stateless,
                 struct berth_error **err);

#endif
