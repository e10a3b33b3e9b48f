/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for choosing buildpacks (select.c) and the guarded reads of
 * tenant files (files.c): which references are built-ins or their
 * aliases, which git URLs a tenant may give and which only the operator,
 * #ref checks, `.buildpacks` parsing with the line of each error, and
 * reading a Procfile or app subdirectory that a tenant turned into a
 * symlink or a FIFO.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildpacks/build.h"
#include "buildpacks/files.h"
#include "buildpacks/select.h"
#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"

/* The built-in a reference names, "git" for a git buildpack, or NULL when it is refused. */
static char *kind(const char *spec, bool trusted, char **ret_msg)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct bp_ref ref;
    char *k;

    if (bp_ref_parse(spec, trusted, &ref, &err) < 0) {
        if (ret_msg)
            *ret_msg = xstrdup(berth_error_msg(&err));
        return NULL;
    }
    if (ref.builtin)
        k = xstrdup(ref.builtin);
    else
        k = xasprintf("git %s %s", ref.url, ref.ref ? ref.ref : "-");
    bp_ref_release(&ref);
    return k;
}

static bool is(const char *spec, bool trusted, const char *want)
{
    _cleanup_free_ char *msg = NULL;
    _cleanup_free_ char *k = kind(spec, trusted, &msg);

    if (!k || strcmp(k, want) != 0) {
        printf("# '%s': got %s (%s)\n", spec, k ? k : "refused", msg ? msg : "");
        return false;
    }
    return true;
}

static bool refused(const char *spec, bool trusted, const char *why)
{
    _cleanup_free_ char *msg = NULL;
    _cleanup_free_ char *k = kind(spec, trusted, &msg);

    if (k || !msg || !strstr(msg, why)) {
        printf("# '%s': got %s / '%s'\n", spec, k ? k : "refused", msg ? msg : "");
        return false;
    }
    return true;
}

static void test_refs(void)
{
    ok(is("node", false, "node") && is("python", false, "python") && is("null", false, "null"),
       "built-ins by name");
    ok(is("heroku/nodejs", false, "node") && is("heroku/php", false, "php") && is("nodejs", false, "node"),
       "Heroku's short names stand for the built-ins");
    ok(is("https://github.com/heroku/heroku-buildpack-nodejs", false, "node") &&
       is("https://github.com/heroku/heroku-buildpack-python.git", false, "python") &&
       is("git@github.com:heroku/heroku-buildpack-go.git", false, "go") &&
       is("https://GitHub.com/Heroku/heroku-buildpack-php/", false, "php") &&
       is("https://github.com/heroku/heroku-buildpack-nodejs#v200", false, "node"),
       "the official Heroku buildpacks' URLs (any form, any #ref) stand for the built-ins");
    ok(is("https://github.com/dokku/heroku-buildpack-nginx", false, "static") &&
       is("https://github.com/ryandotsmith/null-buildpack.git", false, "null"),
       "Dokku's static and null buildpacks too");
    ok(is("https://example.com/me/bp.git", false, "git https://example.com/me/bp.git -") &&
       is("https://example.com/me/bp.git#v1.2", false, "git https://example.com/me/bp.git v1.2") &&
       is("git://example.com/bp#feature/x", false, "git git://example.com/bp feature/x") &&
       is("ssh://git@example.com/bp.git#0123abc", false, "git ssh://git@example.com/bp.git 0123abc") &&
       is("git@example.com:me/bp.git", false, "git git@example.com:me/bp.git -"),
       "git URLs with and without #ref");
    ok(refused("file:///srv/bp", false, "only the operator's tenant") &&
       is("file:///srv/bp#main", true, "git file:///srv/bp main"),
       "file:// only for the trusted tenant");
    ok(refused("http://127.0.0.1:8081/x.git", false, "hosts on this machine") &&
       refused("https://localhost/bp", false, "hosts on this machine") &&
       refused("http://[::1]/bp", false, "hosts on this machine") &&
       refused("git@127.0.0.2:bp", false, "hosts on this machine") &&
       is("http://127.0.0.1:8081/bp.git", true, "git http://127.0.0.1:8081/bp.git -"),
       "loopback hosts only for the trusted tenant");
    /* What getaddrinfo() takes for a loopback or unspecified address, however it is written. */
    ok(refused("http://2130706433/bp.git", false, "hosts on this machine") &&
       refused("http://0x7f000001/bp.git", false, "hosts on this machine") &&
       refused("http://0177.0.0.1/bp.git", false, "hosts on this machine") &&
       refused("http://127.1/bp.git", false, "hosts on this machine") &&
       refused("http://0/bp.git", false, "hosts on this machine") &&
       refused("http://0.0.0.0:8081/bp.git", false, "hosts on this machine") &&
       refused("https://localhost./bp", false, "hosts on this machine") &&
       refused("https://LocalHost/bp", false, "hosts on this machine") &&
       refused("https://a.localhost./bp", false, "hosts on this machine") &&
       refused("http://[0:0:0:0:0:ffff:7f00:1]/bp", false, "hosts on this machine") &&
       refused("http://[::ffff:127.0.0.1]/bp", false, "hosts on this machine") &&
       refused("http://[::]/bp", false, "hosts on this machine") &&
       refused("http://[0::1]/bp", false, "hosts on this machine") &&
       refused("git@0x7f.1:bp", false, "hosts on this machine") &&
       is("http://128.0.0.1/bp.git", false, "git http://128.0.0.1/bp.git -") &&
       is("http://[2001:db8::1]/bp.git", false, "git http://[2001:db8::1]/bp.git -") &&
       is("https://127.example.com/bp", false, "git https://127.example.com/bp -"),
       "loopback hosts in any notation are refused, other hosts that look alike are not");
    ok(refused("http://169.254.169.254/latest/bp.git", false, "hosts on this machine") &&
       refused("http://[fe80::1]/bp", false, "hosts on this machine") &&
       is("http://169.253.1.1/bp.git", false, "git http://169.253.1.1/bp.git -"),
       "link-local hosts (a cloud's metadata service) are refused too");
    ok(refused("https://example.com/bp#../x", false, "not a branch, tag or commit") &&
       refused("https://example.com/bp#-delete", false, "not a branch, tag or commit") &&
       refused("https://example.com/bp#a b", false, "contains a space") &&
       refused("https://example.com/bp#", false, "not a branch, tag or commit"),
       "a #ref must be a plain ref name");
    ok(refused("heroku-community/apt", false, "buildpack registry") &&
       refused("rubyy", false, "neither a built-in") &&
       refused("ftp://example.com/bp", false, "neither a built-in") &&
       refused("", false, "empty") && refused("https://exa mple.com/x", false, "space") &&
       refused("file://relative/bp", true, "absolute path"),
       "what is neither a built-in nor a git URL is refused, saying what would work");
    {
        char big[BUILDPACK_URL_MAX + 16];

        memset(big, 'a', sizeof(big) - 1);
        memcpy(big, "https://", 8);
        big[sizeof(big) - 1] = '\0';
        ok(refused(big, false, "longer than"), "a URL over %d bytes is refused", BUILDPACK_URL_MAX);
    }
    ok(build_buildpack_check("heroku/go", false, NULL) == 0 &&
       build_buildpack_check("file:///x", false, NULL) == -EPERM, "build_buildpack_check");
}

static void test_lists(void)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct bp_list list = { 0 };
    static const char text[] = "# primary last\n\n  https://example.com/a.git#v1  \r\n"
                               "heroku/nodejs\n\t# indented comment\n";

    ok(bp_list_parse(".buildpacks", text, strlen(text), false, &list, &err) == 0 && list.n == 2 &&
       strcmp(list.v[0].url, "https://example.com/a.git") == 0 && strcmp(list.v[0].ref, "v1") == 0 &&
       strcmp(list.v[1].builtin, "node") == 0 && strcmp(list.origin, ".buildpacks") == 0,
       "a .buildpacks file: comments, blank lines, CRLF and blanks around an entry");
    bp_list_release(&list);
    ok(bp_list_parse(".buildpacks", "node\nnot a url\n", 16, false, &list, &err) < 0 &&
       strstr(berth_error_msg(&err), ".buildpacks line 2: buildpack 'not a url' contains a space"),
       "an error names the line (%s)", berth_error_msg(&err));
    berth_error_release(&err);
    ok(bp_list_parse("BUILDPACK_URL", "# nothing\n\n", 11, false, &list, &err) < 0 &&
       strcmp(berth_error_msg(&err), "BUILDPACK_URL names no buildpack") == 0,
       "a list that names nothing is an error, not a silent fallback");
    berth_error_release(&err);
    ok(bp_list_parse(".buildpacks", "file:///srv/bp\n", 15, false, &list, &err) < 0 &&
       strstr(berth_error_msg(&err), "only the operator's tenant"), "the trust rule applies to files too");
    berth_error_release(&err);
    {
        struct strbuf many = STRBUF_INIT;

        for (int i = 0; i <= BUILDPACK_LIST_MAX; i++)
            strbuf_addstr(&many, "node\n");
        ok(bp_list_parse(".buildpacks", many.buf, many.len, false, &list, &err) < 0 &&
           strstr(berth_error_msg(&err), "more than 16 buildpacks"), "at most %d buildpacks",
           BUILDPACK_LIST_MAX);
        berth_error_release(&err);
        strbuf_release(&many);
    }
    ok(bp_list_parse(".buildpacks", "node\0python\n", 12, false, &list, &err) < 0 &&
       strstr(berth_error_msg(&err), "NUL"), "a NUL byte is refused");
}

static void test_shown(void)
{
    _cleanup_free_ char *a = bp_ref_shown("https://me:s3cret@example.com/bp.git#v1");
    _cleanup_free_ char *b = bp_ref_shown("https://example.com/a@b/bp.git");
    _cleanup_free_ char *c = bp_ref_shown("git@example.com:me/bp.git");
    _cleanup_free_ char *d = bp_ref_shown("heroku/nodejs");

    ok(strcmp(a, "https://***@example.com/bp.git#v1") == 0, "a URL's credentials are not shown (%s)", a);
    ok(strcmp(b, "https://example.com/a@b/bp.git") == 0 && strcmp(c, "git@example.com:me/bp.git") == 0 &&
       strcmp(d, "heroku/nodejs") == 0, "an '@' in a path, an scp-like URL or a name stay as they are");
}

static void test_files(void)
{
    char dir[] = "/tmp/berth-test-select-XXXXXX";
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    _cleanup_free_ char *p = NULL, *fifo = NULL, *link = NULL, *big = NULL, *sub = NULL;
    char *resolved = NULL;

    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return;
    }
    p = xasprintf("%s/Procfile", dir);
    fifo = xasprintf("%s/fifo", dir);
    link = xasprintf("%s/link", dir);
    big = xasprintf("%s/big", dir);
    (void)write_file_atomic(p, "web: x\n", 7, 0644, NULL);
    (void)mkfifo(fifo, 0644);
    if (symlink("/etc/passwd", link) < 0)
        printf("# symlink: %s\n", strerror(errno));
    {
        _cleanup_free_ char *blob = xcalloc(1, 5000);
        memset(blob, 'x', 4999);
        (void)write_file_atomic(big, blob, 4999, 0644, NULL);
    }
    ok(build_read_file_at(dir, "Procfile", "the Procfile", 1024, &out, &err) == 0 &&
       strcmp(out.buf, "web: x\n") == 0, "a regular file is read");
    ok(build_read_file_at(dir, "missing", "x", 1024, &out, &err) == -ENOENT && !err,
       "a missing file is -ENOENT without a message");
    ok(build_read_file_at(dir, "link", "the Procfile", 1024, &out, &err) == -EINVAL &&
       strstr(berth_error_msg(&err), "the Procfile is a symlink"), "a symlink is refused, not followed");
    berth_error_release(&err);
    ok(build_read_file_at(dir, "fifo", "the Procfile", 1024, &out, &err) == -EINVAL,
       "a FIFO is refused without hanging");
    berth_error_release(&err);
    ok(build_read_file_at(dir, "big", "the Procfile", 1024, &out, &err) == -EFBIG &&
       strstr(berth_error_msg(&err), "larger than 1 KiB"), "a file past the cap is refused");
    berth_error_release(&err);

    sub = xasprintf("%s/a/b", dir);
    (void)mkdir_p(sub, 0755, NULL);
    ok(build_resolve_subdir(dir, "a/b/", &resolved, &err) == 0 && strcmp(resolved, sub) == 0,
       "a subdirectory resolves");
    free(resolved);
    ok(build_resolve_subdir(dir, "a/../a", &resolved, &err) < 0 && strstr(berth_error_msg(&err), "'..'"),
       "'..' is refused");
    berth_error_release(&err);
    ok(build_resolve_subdir(dir, "link", &resolved, &err) == -ENOTDIR, "a symlink is not followed");
    berth_error_release(&err);
    ok(build_resolve_subdir(dir, "nope", &resolved, &err) == -ENOENT &&
       strstr(berth_error_msg(&err), "'nope' is not in the pushed tree"), "a missing one names itself");
    berth_error_release(&err);
    (void)rm_rf(dir, NULL);
}

int main(void)
{
    test_refs();
    test_lists();
    test_shown();
    test_files();
    return tap_done();
}
