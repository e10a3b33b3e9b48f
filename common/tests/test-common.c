/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for common/: strbuf, errors, atomic writes, the JSON store,
 * the crypto helpers and user names.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <ifaddrs.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/hostaddr.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/user.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"

static void test_strbuf(void)
{
    struct strbuf sb = STRBUF_INIT;

    ok(sb.buf && sb.buf[0] == '\0' && sb.len == 0, "STRBUF_INIT is an empty string");
    strbuf_addstr(&sb, "hello");
    strbuf_addch(&sb, ' ');
    strbuf_addf(&sb, "%s %d", "world", 42);
    ok(strcmp(sb.buf, "hello world 42") == 0, "add, addch and addf append");
    strbuf_add(&sb, "\0x", 2);
    ok(sb.len == 16 && sb.buf[16] == '\0', "binary data keeps len and the terminator");
    strbuf_setlen(&sb, 5);
    strbuf_addstr(&sb, "   \n");
    strbuf_rtrim(&sb);
    ok(strcmp(sb.buf, "hello") == 0, "rtrim removes trailing space");
    strbuf_remove_prefix(&sb, 2);
    ok(strcmp(sb.buf, "llo") == 0, "remove_prefix");
    for (int i = 0; i < 10000; i++)
        strbuf_addch(&sb, 'x');
    ok(sb.len == 10003, "grows across many reallocations");
    char *s = strbuf_detach(&sb, NULL);
    ok(s && strlen(s) == 10003 && sb.len == 0 && sb.buf[0] == '\0', "detach hands over and resets");
    free(s);
    strbuf_release(&sb);
    strbuf_release(&sb);
    ok(1, "release twice is safe");
}

static void test_error(void)
{
    struct berth_error *err = NULL;
    int r = berth_error_make(&err, ENOENT, "open '%s'", "x");

    ok(r == -ENOENT && berth_error_code(&err) == ENOENT, "make returns -code");
    ok(strcmp(berth_error_msg(&err), "open 'x': No such file or directory") == 0, "message has strerror");
    r = berth_error_wrap(&err, "loading app '%s'", "a");
    ok(r == -ENOENT && strstr(berth_error_msg(&err), "loading app 'a': open 'x'") == berth_error_msg(&err),
       "wrap prefixes context");
    berth_error_release(&err);
    ok(err == NULL, "release clears");
    ok(berth_error_make(NULL, EPERM, "x") == -EPERM, "a NULL err still returns the code");
    ok(berth_error_wrap(NULL, "context") == -EPERM, "wrapping a NULL err keeps that code");
}

static void test_files(void)
{
    char dir[] = "/tmp/berth-test-common-XXXXXX";
    struct berth_error *err = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    ok(mkdtemp(dir) != NULL, "mkdtemp");
    _cleanup_free_ char *nested = xasprintf("%s/a/b/c", dir);
    ok(mkdir_p(nested, 0755, &err) == 0 && access(nested, F_OK) == 0, "mkdir_p creates a chain");
    ok(mkdir_p(nested, 0755, &err) == 0, "mkdir_p on an existing tree is fine");
    _cleanup_free_ char *leaf = xasprintf("%s/a/b/d", dir);
    ok(mkdir_p(leaf, 0755, &err) == 0 && access(leaf, F_OK) == 0, "mkdir_p adds a last part alone");
    _cleanup_free_ char *blocker = xasprintf("%s/file", dir);
    _cleanup_free_ char *under = xasprintf("%s/file/x/y", dir);
    ok(write_file_atomic(blocker, "f", 1, 0600, &err) == 0, "a file where a directory would go");
    ok(mkdir_p(under, 0755, &err) == -ENOTDIR && strstr(berth_error_msg(&err), "/file/x") != NULL,
       "mkdir_p under a file: ENOTDIR, and the path in the message");
    berth_error_release(&err);
    ok(unlink(blocker) == 0, "the file goes");
    _cleanup_free_ char *f = xasprintf("%s/state.json", dir);
    ok(write_file_atomic(f, "one", 3, 0600, &err) == 0, "atomic write");
    ok(write_file_atomic(f, "two!", 4, 0600, &err) == 0, "atomic replace");
    ok(read_file(f, &sb, 0, &err) == 0 && strcmp(sb.buf, "two!") == 0, "read back the new content");
    struct stat st;
    ok(stat(f, &st) == 0 && (st.st_mode & 0777) == 0600, "mode is applied");
    strbuf_reset(&sb);
    ok(read_file(f, &sb, 2, &err) == -EFBIG, "read_file enforces its cap");
    berth_error_release(&err);

    json_t *doc = json_pack("{s:s, s:i}", "name", "hello", "n", 3);
    ok(json_store_save(f, doc, 0600, &err) == 0, "json save");
    json_decref(doc);
    _cleanup_json_ json_t *back = NULL;
    ok(json_store_load(f, &back, &err) == 0 && strcmp(json_get_str(back, "name"), "hello") == 0,
       "json load round-trips");
    ok(write_file_atomic(f, "{broken", 7, 0600, &err) == 0, "write broken json");
    json_t *bad = NULL;
    ok(json_store_load(f, &bad, &err) == -EINVAL && strstr(berth_error_msg(&err), "parse"),
       "broken json is a clear error");
    berth_error_release(&err);
    _cleanup_free_ char *missing = xasprintf("%s/missing.json", dir);
    ok(json_store_load(missing, &bad, &err) == -ENOENT, "missing file is -ENOENT");
    berth_error_release(&err);
    ok(rm_rf(dir, &err) == 0 && access(dir, F_OK) < 0, "rm_rf removes the tree");

    char beside[PATH_MAX], tiny[8];
    const char *slash;

    ok(program_beside_self("test-common", beside, sizeof(beside)) && (slash = strrchr(beside, '/')) &&
       !strcmp(slash, "/test-common"), "program_beside_self finds this program in its own directory");
    ok(!program_beside_self("no-such-berth-program", beside, sizeof(beside)),
       "program_beside_self: none by that name there");
    ok(!program_beside_self("test-common", tiny, sizeof(tiny)), "program_beside_self: a buffer too small");
}

static void test_crypto(void)
{
    char hex[SHA256_HEX_LEN + 1], a[33], b[33];

    sha256_hex("abc", 3, hex);
    ok(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
       "sha256 of 'abc'");
    ok(random_hex(a, 16, NULL) == 0 && random_hex(b, 16, NULL) == 0 && strlen(a) == 32 && strcmp(a, b),
       "random_hex gives distinct 32-hex-digit secrets");
    ok(secure_streq("abc", "abc") && !secure_streq("abc", "abd") && !secure_streq("abc", "ab"),
       "secure_streq");
}

static void collect_line(void *cls, const char *line)
{
    strbuf_addf(cls, "[%s]", line);
}

static void test_emitf(void)
{
    struct strbuf got = STRBUF_INIT;

    strbuf_emitf(collect_line, &got, "v%u of %s", 3u, "hello");
    strbuf_emitf(collect_line, &got, "%s", "");
    strbuf_emitf(NULL, &got, "never %d", 1);
    ok(strcmp(got.buf, "[v3 of hello][]") == 0, "strbuf_emitf hands each formatted line over, none without a callback");
    strbuf_release(&got);
}

/* user_name_in() on passwd files of our own, and user_name_of() against getpwuid(). */
static void test_user(void)
{
    char dir[] = "/tmp/berth-user-XXXXXX";
    _cleanup_free_ char *path = NULL, *me = NULL, *root = NULL, *a = NULL, *b = NULL, *c = NULL,
                        *d = NULL, *e = NULL, *f = NULL;
    static const char lines[] =
        "# a comment:x:7:7::/:/bin/sh\n"
        "+nis:x:7:7::/:/bin/sh\n"
        "-gone:x:7:7::/:/bin/sh\n"
        ":x:7:7::/:/bin/sh\n"
        "short:x:7\n"
        "neg:x:-7:7::/:/bin/sh\n"
        "big:x:4294967303:7::/:/bin/sh\n"
        "spaced:x: 7:7::/:/bin/sh\n"
        "alice:x:1007:1007:Alice,,,:/home/alice:/bin/bash\n"
        "seven:x:7:7::/:/bin/sh\n"
        "second:x:7:7::/:/bin/sh\n"
        "last:x:65534:65534::/:/bin/false";
    struct passwd *pw = getpwuid(getuid());

    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    path = xasprintf("%s/passwd", dir);
    ok(write_file_atomic(path, lines, sizeof(lines) - 1, 0644, NULL) == 0, "a passwd file to read");
    a = user_name_in(path, 7);
    ok(a && strcmp(a, "seven") == 0, "the first well-formed line of a uid names it, past comments, "
       "NIS lines, an empty name, a short line and uids that are not plain numbers (got %s)", a ? a : "NULL");
    b = user_name_in(path, 1007);
    ok(b && strcmp(b, "alice") == 0, "a name with the full seven fields");
    c = user_name_in(path, 65534);
    ok(c && strcmp(c, "last") == 0, "the last line without a newline");
    d = user_name_in(path, 4242);
    ok(d == NULL, "a uid no line has: NULL");
    e = user_name_in("/nonexistent/passwd", 0);
    ok(e == NULL, "a missing file: NULL");
    unlink(path);
    rmdir(dir);
    root = user_name_of(0);
    ok(root && strcmp(root, "root") == 0, "user_name_of(0) is root");
    me = user_name_of(getuid());
    ok(pw && me && strcmp(me, pw->pw_name) == 0, "user_name_of(getuid()) agrees with getpwuid (%s)",
       me ? me : "NULL");
    f = user_name_of(4000000000u);
    ok(f == NULL, "a uid no one has: NULL");
}

/* The ranges that reach this host, and one of its interfaces' own addresses. */
static void test_hostaddr(void)
{
    static const char *const local4[] = { "127.0.0.1", "127.255.0.9", "0.0.0.0", "169.254.169.254" };
    static const char *const other4[] = { "128.0.0.1", "10.1.2.3", "169.253.0.1", "93.184.216.34" };
    static const char *const local6[] = { "::1", "::", "fe80::1", "::ffff:127.0.0.1", "::ffff:169.254.1.1" };
    struct ifaddrs *all = NULL;
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct in6_addr a6;
    bool all_ok = true;

    for (size_t i = 0; i < sizeof(local4) / sizeof(*local4); i++) {
        all_ok &= inet_pton(AF_INET, local4[i], &sin.sin_addr) == 1 && hostaddr_is_this_host((struct sockaddr *)&sin);
    }
    ok(all_ok, "loopback, unspecified and link-local IPv4 addresses are this host");
    all_ok = true;
    for (size_t i = 0; i < sizeof(other4) / sizeof(*other4); i++) {
        all_ok &= inet_pton(AF_INET, other4[i], &sin.sin_addr) == 1 && !hostaddr_ipv4_is_local(&sin.sin_addr);
    }
    ok(all_ok, "... addresses beside those ranges are not in them");
    all_ok = true;
    for (size_t i = 0; i < sizeof(local6) / sizeof(*local6); i++)
        all_ok &= inet_pton(AF_INET6, local6[i], &a6) == 1 && hostaddr_ipv6_is_local(&a6);
    ok(all_ok && inet_pton(AF_INET6, "2001:db8::1", &a6) == 1 && !hostaddr_ipv6_is_local(&a6),
       "IPv6: loopback, unspecified, link-local and mapped forms are local, 2001:db8::1 is not");
    /* Any interface address outside those ranges (the host's own) counts too. */
    if (getifaddrs(&all) == 0) {
        const struct ifaddrs *i = all;

        while (i && !(i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                      !hostaddr_ipv4_is_local(&((struct sockaddr_in *)i->ifa_addr)->sin_addr)))
            i = i->ifa_next;
        if (i)
            ok(hostaddr_is_this_host(i->ifa_addr), "an address of interface %s is this host", i->ifa_name);
        else
            ok(true, "# SKIP no interface with an address outside the local ranges");
        freeifaddrs(all);
    }
}

int main(void)
{
    test_hostaddr();
    test_strbuf();
    test_emitf();
    test_error();
    test_files();
    test_crypto();
    test_user();
    return tap_done();
}
