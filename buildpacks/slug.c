/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ENV_DIR and slug hashing (slug.h). Both run with berth's own uid on trees
 * the tenant shaped (config names, then the whole built /app), so every
 * path step is taken relative to an open directory with O_NOFOLLOW: a
 * symlink the buildpack left in the slug can point anywhere on the host and
 * must never lead berth there.
 *
 * The hash is a stream of length-prefixed records, one per entry in walk
 * order, so no two different trees produce the same byte stream:
 *
 *     type (1 byte: d f l p s c b) | mode (4 bytes, & 07777) |
 *     len(path) | path | [len(target) | target]  or  [size | content]
 *
 * with every length an 8-byte big-endian integer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <nettle/sha2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildpacks/slug.h"
#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "common/banned.h"

#define ENV_MAX_VARS 1000
#define ENV_MAX_NAME 255
#define ENV_MAX_VALUE (64 * 1024)

/* ------------------------------------------------------------------ ENV_DIR */

static bool env_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > ENV_MAX_NAME || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int write_env_file(int dfd, const char *dir, const char *name, const char *value, size_t len,
                          struct berth_error **err)
{
    _cleanup_close_ int fd = -1;
    int r;

    fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return berth_error_make(err, errno, "creating '%s/%s'", dir, name);
    /* The umask may have taken bits the build user needs to read the file. */
    if (fchmod(fd, 0644) < 0)
        return berth_error_make(err, errno, "chmod '%s/%s'", dir, name);
    r = write_all(fd, value, len);
    if (r < 0)
        return berth_error_make(err, -r, "writing '%s/%s'", dir, name);
    return 0;
}

static bool is_platform_var(const char *name)
{
    return strcmp(name, "BERTH_APP_NAME") == 0 || strcmp(name, "SOURCE_VERSION") == 0;
}

int build_env_dir_write(const char *dir, const json_t *config, const char *app, const char *commit,
                        struct berth_error **err)
{
    _cleanup_close_ int dfd = -1;
    const char *name;
    json_t *value;
    int r;

    if (config && !json_is_object(config))
        return berth_error_plain(err, EINVAL, "config vars must be a JSON object");
    if (config && json_object_size(config) > ENV_MAX_VARS)
        return berth_error_plain(err, E2BIG, "more than %d config vars", ENV_MAX_VARS);
    if (mkdir(dir, 0755) < 0)
        return berth_error_make(err, errno, "creating '%s'", dir);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "opening '%s'", dir);
    if (fchmod(dfd, 0755) < 0)
        return berth_error_make(err, errno, "chmod '%s'", dir);

    json_object_foreach((json_t *)config, name, value) {
        if (!env_name_valid(name))
            return berth_error_plain(err, EINVAL, "config var name '%.80s' is not a valid "
                                     "environment variable name", name);
        if (!json_is_string(value))
            return berth_error_plain(err, EINVAL, "config var '%s' is not a string", name);
        if (json_string_length(value) > ENV_MAX_VALUE)
            return berth_error_plain(err, EFBIG, "config var '%s' is larger than %d KiB", name,
                                     ENV_MAX_VALUE / 1024);
        if (is_platform_var(name))
            continue;
        r = write_env_file(dfd, dir, name, json_string_value(value), json_string_length(value), err);
        if (r < 0)
            return r;
    }
    if (app && (r = write_env_file(dfd, dir, "BERTH_APP_NAME", app, strlen(app), err)) < 0)
        return r;
    if (commit && (r = write_env_file(dfd, dir, "SOURCE_VERSION", commit, strlen(commit), err)) < 0)
        return r;
    return 0;
}

/* ---------------------------------------------------------------- slug hash */

struct walk {
    struct sha256_ctx ctx;
    uint64_t bytes;
    uint64_t entries;
    struct strbuf path;   /* relative path of the entry being hashed */
};

static void hash_u64(struct walk *w, uint64_t v)
{
    uint8_t b[8];

    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    sha256_update(&w->ctx, sizeof(b), b);
}

static void hash_field(struct walk *w, const void *data, size_t len)
{
    hash_u64(w, len);
    sha256_update(&w->ctx, len, data);
}

static char type_char(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return 'd';
    case S_IFREG: return 'f';
    case S_IFLNK: return 'l';
    case S_IFIFO: return 'p';
    case S_IFSOCK: return 's';
    case S_IFCHR: return 'c';
    case S_IFBLK: return 'b';
    default: return '?';
    }
}

static int hash_file(struct walk *w, int dfd, const char *name, const struct stat *st,
                     struct berth_error **err)
{
    _cleanup_close_ int fd = -1;
    struct stat fst;
    uint8_t buf[65536];
    uint64_t left;

    /* O_NONBLOCK: should the entry have been swapped for a FIFO, open must not hang. */
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return berth_error_make(err, errno, "slug: cannot read '%s'", w->path.buf);
    if (fstat(fd, &fst) < 0)
        return berth_error_make(err, errno, "slug: stat '%s'", w->path.buf);
    if (!S_ISREG(fst.st_mode) || fst.st_ino != st->st_ino || fst.st_dev != st->st_dev)
        return berth_error_plain(err, EAGAIN, "slug: '%s' changed while it was hashed", w->path.buf);
    if ((uint64_t)st->st_size > BUILD_SLUG_MAX_BYTES - w->bytes)
        return berth_error_plain(err, EFBIG, "slug: larger than %llu MiB",
                                 (unsigned long long)(BUILD_SLUG_MAX_BYTES >> 20));
    w->bytes += (uint64_t)st->st_size;

    hash_u64(w, (uint64_t)st->st_size);
    left = (uint64_t)st->st_size;
    while (left > 0) {
        size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        ssize_t n = read(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "slug: reading '%s'", w->path.buf);
        if (n == 0)
            return berth_error_plain(err, EAGAIN, "slug: '%s' shrank while it was hashed",
                                     w->path.buf);
        sha256_update(&w->ctx, (size_t)n, buf);
        left -= (uint64_t)n;
    }
    return 0;
}

static int hash_symlink(struct walk *w, int dfd, const char *name, struct berth_error **err)
{
    char target[PATH_MAX];
    ssize_t n = readlinkat(dfd, name, target, sizeof(target));

    if (n < 0)
        return berth_error_make(err, errno, "slug: reading the link '%s'", w->path.buf);
    if ((size_t)n >= sizeof(target))
        return berth_error_plain(err, ENAMETOOLONG, "slug: the link '%s' is too long", w->path.buf);
    hash_field(w, target, (size_t)n);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the names in dfd (not "." or ".."), sorted bytewise. dfd stays open. */
static int list_dir(struct walk *w, int dfd, char ***ret, size_t *ret_n, struct berth_error **err)
{
    _cleanup_closedir_ DIR *d = NULL;
    _cleanup_strv_ char **names = NULL;
    size_t n = 0, alloc = 0;
    int fd = dup(dfd);
    struct dirent *de;

    if (fd < 0)
        return berth_error_make(err, errno, "slug: dup");
    d = fdopendir(fd);
    if (!d) {
        (void)close(fd);
        return berth_error_make(err, errno, "slug: opening '%s'", w->path.buf);
    }
    rewinddir(d);
    names = xcalloc(1, sizeof(*names));
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno)
                return berth_error_make(err, errno, "slug: listing '%s'", w->path.buf);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (++w->entries > BUILD_SLUG_MAX_ENTRIES)
            return berth_error_plain(err, E2BIG, "slug: more than %d files", BUILD_SLUG_MAX_ENTRIES);
        if (n + 2 > alloc) {
            alloc = alloc ? alloc * 2 : 16;
            names = xrealloc(names, alloc * sizeof(*names));
        }
        names[n++] = xstrdup(de->d_name);
        names[n] = NULL;
    }
    qsort(names, n, sizeof(*names), cmp_names);
    *ret = TAKE_PTR(names);
    *ret_n = n;
    return 0;
}

static int walk_dir(struct walk *w, int dfd, unsigned depth, struct berth_error **err)
{
    _cleanup_strv_ char **names = NULL;
    size_t n = 0;
    size_t base = w->path.len;
    int r;

    if (depth > BUILD_SLUG_MAX_DEPTH)
        return berth_error_plain(err, ELOOP, "slug: '%s' is nested more than %d levels deep",
                                 w->path.buf, BUILD_SLUG_MAX_DEPTH);
    r = list_dir(w, dfd, &names, &n, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        struct stat st;

        strbuf_setlen(&w->path, base);
        if (base > 0)
            strbuf_addch(&w->path, '/');
        strbuf_addstr(&w->path, name);

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return berth_error_make(err, errno, "slug: stat '%s'", w->path.buf);
        uint8_t head[5] = { (uint8_t)type_char(st.st_mode) };
        uint32_t mode = (uint32_t)(st.st_mode & 07777);
        head[1] = (uint8_t)(mode >> 24);
        head[2] = (uint8_t)(mode >> 16);
        head[3] = (uint8_t)(mode >> 8);
        head[4] = (uint8_t)mode;
        sha256_update(&w->ctx, sizeof(head), head);
        hash_field(w, w->path.buf, w->path.len);

        r = 0;
        if (S_ISREG(st.st_mode)) {
            r = hash_file(w, dfd, name, &st, err);
        } else if (S_ISLNK(st.st_mode)) {
            r = hash_symlink(w, dfd, name, err);
        } else if (S_ISDIR(st.st_mode)) {
            _cleanup_close_ int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                return berth_error_make(err, errno, "slug: cannot read '%s'", w->path.buf);
            r = walk_dir(w, sub, depth + 1, err);
        }
        if (r < 0)
            return r;
    }
    strbuf_setlen(&w->path, base);
    return 0;
}

int build_slug_hash(const char *dir, char hex[SHA256_HEX_LEN + 1], uint64_t *ret_bytes,
                    struct berth_error **err)
{
    static const char digits[] = "0123456789abcdef";
    _cleanup_close_ int dfd = -1;
    struct walk w = { .path = STRBUF_INIT };
    uint8_t digest[SHA256_DIGEST_SIZE];
    int r;

    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return berth_error_make(err, errno, "slug: opening '%s'", dir);
    sha256_init(&w.ctx);
    r = walk_dir(&w, dfd, 0, err);
    strbuf_release(&w.path);
    if (r < 0)
        return r;
    sha256_digest(&w.ctx, sizeof(digest), digest);
    for (size_t i = 0; i < sizeof(digest); i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0xf];
    }
    hex[SHA256_HEX_LEN] = '\0';
    if (ret_bytes)
        *ret_bytes = w.bytes;
    return 0;
}
