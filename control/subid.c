/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/subid: parsing /etc/subuid and /etc/subgid (see subid.h).
 * Format: one `user:start:count` per line; `user` may be a name or a uid.
 */
#include "control/subid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/xalloc.h"

typedef void (*entry_fn)(void *cls, const char *owner, unsigned long start, unsigned long count);

static int for_each_entry(const char *file, entry_fn fn, void *cls)
{
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    char line[512];

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':'), *c2, *end;
        unsigned long start, count;

        if (!c1 || line[0] == '#')
            continue;
        *c1 = '\0';
        c2 = strchr(c1 + 1, ':');
        if (!c2)
            continue;
        start = strtoul(c1 + 1, &end, 10);
        if (end != c2)
            continue;
        count = strtoul(c2 + 1, &end, 10);
        if (end == c2 + 1)
            continue;
        fn(cls, line, start, count);
    }
    return 0;
}

struct slice_walk {
    const char *user;
    char uid_str[24];
    unsigned long slice_size, want, seen;
    unsigned long base;
    int found;
};

static void slice_entry(void *cls, const char *owner, unsigned long start, unsigned long count)
{
    struct slice_walk *w = cls;
    unsigned long n;

    if (w->found || (strcmp(owner, w->user) && strcmp(owner, w->uid_str)))
        return;
    n = count / w->slice_size;
    if (w->want < w->seen + n) {
        w->base = start + (w->want - w->seen) * w->slice_size;
        w->found = 1;
    }
    w->seen += n;
}

int subid_slice(const char *file, const char *user, uid_t uid, unsigned long slice,
                unsigned long slice_size, unsigned long *ret_base, struct berth_error **err)
{
    struct slice_walk w = { .user = user, .slice_size = slice_size, .want = slice };
    int r;

    snprintf(w.uid_str, sizeof(w.uid_str), "%u", (unsigned)uid);
    r = for_each_entry(file, slice_entry, &w);
    if (r < 0)
        return berth_error_make(err, -r, "read '%s'", file);
    if (!w.found)
        return berth_error_plain(err, ERANGE,
                                 "user '%s' has %lu subordinate id slices of %lu in '%s', slice %lu is needed: "
                                 "run 'berth setup --user %s' as root", user, w.seen, slice_size, file, slice, user);
    *ret_base = w.base;
    return 0;
}

unsigned long subid_count_slices(const char *file, const char *user, uid_t uid, unsigned long slice_size)
{
    struct slice_walk w = { .user = user, .slice_size = slice_size, .want = (unsigned long)-1 };

    snprintf(w.uid_str, sizeof(w.uid_str), "%u", (unsigned)uid);
    (void)for_each_entry(file, slice_entry, &w);
    return w.seen;
}

static void max_entry(void *cls, const char *owner, unsigned long start, unsigned long count)
{
    unsigned long *max = cls;
    (void)owner;

    if (start + count > *max)
        *max = start + count;
}

unsigned long subid_first_free(const char *file, unsigned long floor)
{
    unsigned long max = floor;

    (void)for_each_entry(file, max_entry, &max);
    return max;
}

struct sized_walk {
    const char *user;
    char uid_str[24];
    unsigned long count;
    unsigned long *starts;
    size_t n;
};

static void sized_entry(void *cls, const char *owner, unsigned long start, unsigned long count)
{
    struct sized_walk *w = cls;

    if (count != w->count || (strcmp(owner, w->user) && strcmp(owner, w->uid_str)))
        return;
    w->starts = xrealloc(w->starts, (w->n + 1) * sizeof(*w->starts));
    w->starts[w->n++] = start;
}

size_t subid_ranges_sized(const char *file, const char *user, uid_t uid, unsigned long count,
                          unsigned long **ret_starts)
{
    struct sized_walk w = { .user = user, .count = count };

    snprintf(w.uid_str, sizeof(w.uid_str), "%u", (unsigned)uid);
    (void)for_each_entry(file, sized_entry, &w);
    *ret_starts = w.starts;
    return w.n;
}
