/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * buildpacks-internal: which buildpacks a build uses. A user names them as
 * URLs (Heroku's and Dokku's habit): in the app's settings (`berth
 * buildpacks:set`), in the BUILDPACK_URL config var, or one per line in a
 * `.buildpacks` file at the app's root, in that order of precedence. Each is
 * a built-in (by name, by Heroku's short alias, or by the URL of the
 * official Heroku buildpack it stands in for: those download their runtimes
 * and cannot work on a host without internet) or a git URL with an optional
 * #ref, fetched at build time. No list at all means auto-detection over the
 * built-ins.
 */
#ifndef BERTH_BUILDPACKS_SELECT_H
#define BERTH_BUILDPACKS_SELECT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define BUILDPACK_URL_MAX 2048
#define BUILDPACK_REF_MAX 255
/* More buildpacks than this in one build is a mistake, not a need. */
#define BUILDPACK_LIST_MAX 16

struct bp_ref {
    char *spec;      /* as the user wrote it, #ref included: for messages */
    char *builtin;   /* the built-in it names, or NULL for a git buildpack */
    char *url;       /* git URL without #ref (NULL for a built-in) */
    char *ref;       /* NULL: the remote's HEAD */
};

struct bp_list {
    struct bp_ref *v;
    size_t n;
    const char *origin;   /* "the app's buildpacks", "BUILDPACK_URL", ".buildpacks" */
};

/* Parses one reference (see build_buildpack_check() in build.h). */
int bp_ref_parse(const char *spec, bool trusted, struct bp_ref *ret, struct berth_error **err);
void bp_ref_release(struct bp_ref *ref);

/*
 * Parses a `.buildpacks` file (or a BUILDPACK_URL value), called `origin`
 * in messages: one reference per line, blank lines and `#` comments ignored, at most BUILDPACK_LIST_MAX.
 * Errors name the line. An empty list is an error too: it would be a
 * surprise to fall back to detection.
 */
int bp_list_parse(const char *origin, const char *text, size_t len, bool trusted,
                  struct bp_list *ret, struct berth_error **err);
/* Adds one reference (the app's settings come as an array). */
int bp_list_add(struct bp_list *list, const char *spec, bool trusted, struct berth_error **err);
void bp_list_release(struct bp_list *list);

/*
 * A reference fit for the build output: the user and password of a URL
 * (https://user:token@host/...) replaced by "***", since a private
 * buildpack's URL may carry a token (malloc'ed).
 */
char *bp_ref_shown(const char *spec);

#endif
