/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: how the build names a host path to the tenant. Every
 * message of a build reaches the pusher (its `remote:` lines, and git's
 * `[remote rejected]` reason), who must not learn where berth keeps its
 * state on the host. So a message leaves the build with each host
 * directory the build knows replaced by the name the build's containers
 * see it under (/app, /cache, /berth/slug...) or by a placeholder
 * (<build>, <home>). This covers berth's messages; the build's mount table
 * is the runner's to keep clean (its mounts are hidden ones, runner.h).
 */
#ifndef BERTH_BUILDPACKS_SHOWN_H
#define BERTH_BUILDPACKS_SHOWN_H

#include <stddef.h>

struct build_shown_path {
    const char *host;    /* an absolute host path; NULL, "" or "/" is skipped */
    const char *shown;   /* what stands for it in messages */
};

/*
 * msg with every host path of v replaced by its shown name: a host path
 * matches where a path name can start (not right after a letter, digit,
 * '.', '_' or '-') and up to a component's end, the longest one first, so
 * that <work>/slug/app is /app and not <work>'s name plus "/slug/app".
 * Trailing slashes of a host path do not count. malloc'ed.
 */
char *build_paths_scrub(const struct build_shown_path *v, size_t n, const char *msg);

/*
 * The deepest directory holding every one of paths (absolute, normalised),
 * or NULL when that is "/" or paths are fewer than two. malloc'ed.
 */
char *build_paths_common_dir(const char *const *paths, size_t n);

#endif
