/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the parts of the build driver that need no container: the
 * Procfile parser, the bin/release YAML parser (fed the outputs of real
 * buildpacks, including berth's own static one), the output line splitter,
 * ENV_DIR writing, the slug hash and the hiding of host paths in messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildpacks/build.h"
#include "buildpacks/lines.h"
#include "buildpacks/release.h"
#include "buildpacks/shown.h"
#include "buildpacks/slug.h"
#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"

/* ---------------------------------------------------------------- Procfile */

static json_t *parse_ok(const char *text)
{
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *types = NULL;

    if (procfile_parse(text, strlen(text), &types, &err) < 0) {
        printf("# unexpected error: %s\n", berth_error_msg(&err));
        return NULL;
    }
    return types;
}

/* True when parsing fails and the message contains every needle. */
static bool parse_fails(const char *text, size_t len, const char *needle1, const char *needle2)
{
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *types = NULL;
    int r = procfile_parse(text, len, &types, &err);

    if (r >= 0) {
        json_decref(types);
        printf("# parsed, but should have failed\n");
        return false;
    }
    printf("# error: %s\n", berth_error_msg(&err));
    return r == -berth_error_code(&err) && strstr(berth_error_msg(&err), needle1) &&
           (!needle2 || strstr(berth_error_msg(&err), needle2));
}

static void test_procfile(void)
{
    const char *text =
        "# processes of the example app\r\n"
        "\r\n"
        "web: node web.js # inline\r\n"
        "   // another comment style\n"
        "worker:bundle exec sidekiq -q default\n"
        "clock_2-b:\tbin/clock   \n"
        "release: ./migrate";
    _cleanup_json_ json_t *t = parse_ok(text);

    ok(t && json_object_size(t) == 4, "a valid Procfile gives 4 process types");
    ok(t && strcmp(json_get_str(t, "web") ?: "", "node web.js # inline") == 0,
       "the command keeps a trailing ' # comment' (bash ignores it) and loses the CR");
    ok(t && strcmp(json_get_str(t, "worker") ?: "", "bundle exec sidekiq -q default") == 0,
       "no space after the colon is fine");
    ok(t && strcmp(json_get_str(t, "clock_2-b") ?: "", "bin/clock") == 0,
       "'_' and '-' are allowed in types; blanks around the command are trimmed");
    ok(t && strcmp(json_get_str(t, "release") ?: "", "./migrate") == 0,
       "the last line needs no newline");

    _cleanup_json_ json_t *empty = parse_ok("# nothing here\n\n");
    ok(empty && json_object_size(empty) == 0, "a Procfile of comments declares no types");
    _cleanup_json_ json_t *bom = parse_ok("\xef\xbb\xbfweb: ./server\n");
    ok(bom && json_get_str(bom, "web"), "a UTF-8 byte order mark is not part of the first type");

    char type63[80], type64[80];
    memset(type63, 'a', 63);
    memcpy(type63 + 63, ": run\n", 7);
    memset(type64, 'a', 64);
    memcpy(type64 + 64, ": run\n", 7);
    _cleanup_json_ json_t *long_ok = parse_ok(type63);
    ok(long_ok && json_object_size(long_ok) == 1, "a 63-character type is accepted");

    const char *dup = "web: a\nworker: b\nweb: c\n";
    ok(parse_fails(dup, strlen(dup), "line 3", "duplicate process type 'web' (first declared on line 1)"),
       "a duplicate type is an error naming both lines");
    const char *space = "web: a\nmy web: b\n";
    ok(parse_fails(space, strlen(space), "line 2", "invalid process type 'my web'"),
       "a type with a space is an error naming the line");
    ok(parse_fails(type64, strlen(type64), "line 1", "invalid process type"),
       "a 64-character type is an error");
    const char *dot = "w.eb: a\n";
    ok(parse_fails(dot, strlen(dot), "line 1", "invalid process type"), "a '.' in a type is an error");
    const char *nocolon = "web: a\n\nnode server.js\n";
    ok(parse_fails(nocolon, strlen(nocolon), "line 3", "expected '<type>: <command>'"),
       "a line without a colon is an error naming the line");
    const char *emptycmd = "web:   \r\n";
    ok(parse_fails(emptycmd, strlen(emptycmd), "line 1", "empty command for process type 'web'"),
       "an empty command is an error");
    const char *notype = ": ./x\n";
    ok(parse_fails(notype, strlen(notype), "line 1", "invalid process type ''"), "an empty type is an error");
    const char *conflict = "web: a\n<<<<<<< HEAD\nworker: b\n=======\nworker: c\n>>>>>>> branch\n";
    ok(parse_fails(conflict, strlen(conflict), "line 2", "merge conflict"),
       "merge-conflict markers reject the whole Procfile");
    const char nul[] = "web: a\0b\n";
    ok(parse_fails(nul, sizeof(nul) - 1, "line 1", "NUL"), "a NUL byte is an error");
    const char *badutf = "web: caf\xe9\n";
    ok(parse_fails(badutf, strlen(badutf), "line 1", "UTF-8"), "invalid UTF-8 is an error");

    struct strbuf big = STRBUF_INIT;
    for (int i = 0; i < 200; i++)
        strbuf_addf(&big, "t%d: run\n", i);
    ok(parse_fails(big.buf, big.len, "more than", NULL), "the number of types is capped");
    strbuf_reset(&big);
    while (big.len < 70 * 1024)
        strbuf_addstr(&big, "# padding padding padding padding padding padding padding\n");
    ok(parse_fails(big.buf, big.len, "larger than", NULL), "the Procfile size is capped");
    strbuf_release(&big);
}

/* ---------------------------------------------------------------- bin/release */

static json_t *release_ok(const char *text)
{
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *doc = NULL;

    if (build_release_parse(text, strlen(text), &doc, &err) < 0) {
        printf("# unexpected error: %s\n", berth_error_msg(&err));
        return NULL;
    }
    return doc;
}

static bool release_fails(const char *text, const char *needle)
{
    _cleanup_error_ struct berth_error *err = NULL;
    json_t *doc = NULL;

    if (build_release_parse(text, strlen(text), &doc, &err) >= 0) {
        json_decref(doc);
        printf("# parsed, but should have failed\n");
        return false;
    }
    printf("# error: %s\n", berth_error_msg(&err));
    return strstr(berth_error_msg(&err), needle) != NULL;
}

static const char *dpt(json_t *doc, const char *type)
{
    return json_get_str(json_object_get(doc, "default_process_types"), type) ?: "";
}

static void test_release(void)
{
    /* heroku-buildpack-nodejs bin/release */
    _cleanup_json_ json_t *node = release_ok("---\naddons: []\ndefault_process_types:\n  web: npm start\n");
    ok(node && strcmp(dpt(node, "web"), "npm start") == 0 &&
       json_array_size(json_object_get(node, "addons")) == 0 &&
       json_object_size(json_object_get(node, "config_vars")) == 0,
       "the Node.js buildpack's output: web is 'npm start', no addons");

    /* the buildpack API page's own example */
    _cleanup_json_ json_t *doc_example = release_ok(
        "---\naddons:\n  - heroku-postgresql:dev\ndefault_process_types:\n  web: bin/node server.js\n");
    ok(doc_example && strcmp(dpt(doc_example, "web"), "bin/node server.js") == 0 &&
       strcmp(json_string_value(json_array_get(json_object_get(doc_example, "addons"), 0)) ?: "",
              "heroku-postgresql:dev") == 0, "the Heroku doc example: an indented list and a web type");

    /* heroku-buildpack-ruby style: list items at the key's indent, config_vars */
    _cleanup_json_ json_t *ruby = release_ok(
        "---\r\n"
        "addons:\r\n"
        "- heroku-postgresql\r\n"
        "- 'heroku-redis:mini'\r\n"
        "config_vars:\n"
        "  LANG: en_US.UTF-8\n"
        "  RAILS_ENV: production   # a comment\n"
        "  QUOTED: \"a \\\"b\\\" # not a comment\"\n"
        "  SINGLE: 'it''s'\n"
        "default_process_types:\n"
        "  rake: bundle exec rake\n"
        "  web: bin/rails server -p ${PORT:-5000} -e $RAILS_ENV\n");
    json_t *addons = ruby ? json_object_get(ruby, "addons") : NULL;
    json_t *cv = ruby ? json_object_get(ruby, "config_vars") : NULL;
    ok(addons && json_array_size(addons) == 2 &&
       strcmp(json_string_value(json_array_get(addons, 1)), "heroku-redis:mini") == 0,
       "block list items at the key's own indent, quoted item");
    ok(cv && strcmp(json_get_str(cv, "LANG") ?: "", "en_US.UTF-8") == 0 &&
       strcmp(json_get_str(cv, "RAILS_ENV") ?: "", "production") == 0,
       "config_vars, with a trailing comment dropped");
    ok(cv && strcmp(json_get_str(cv, "QUOTED") ?: "", "a \"b\" # not a comment") == 0 &&
       strcmp(json_get_str(cv, "SINGLE") ?: "", "it's") == 0, "double- and single-quoted values");
    ok(ruby && strcmp(dpt(ruby, "web"), "bin/rails server -p ${PORT:-5000} -e $RAILS_ENV") == 0 &&
       strcmp(dpt(ruby, "rake"), "bundle exec rake") == 0, "commands with ':' and '$' stay whole");

    _cleanup_json_ json_t *empty = release_ok("addons: []\ndefault_process_types: {}\nconfig_vars: {}\n");
    ok(empty && json_object_size(json_object_get(empty, "default_process_types")) == 0,
       "inline '{}' and '[]' are empty");
    _cleanup_json_ json_t *nested_empty = release_ok("---\naddons:\n  []\ndefault_process_types:\n  {}\n");
    ok(nested_empty && json_object_size(json_object_get(nested_empty, "default_process_types")) == 0,
       "'[]' and '{}' on their own line under the key");
    _cleanup_json_ json_t *flow = release_ok("addons: [a, \"b\"]\n");
    ok(flow && json_array_size(json_object_get(flow, "addons")) == 2, "a flow list");
    _cleanup_json_ json_t *nothing = release_ok("");
    ok(nothing && json_object_size(json_object_get(nothing, "default_process_types")) == 0,
       "empty output means no defaults");
    _cleanup_json_ json_t *unknown = release_ok(
        "---\nfuture:\n  deeper:\n    deepest: 1\n  - x\nother: value\n"
        "default_process_types:\n  web: ./run\n...\n");
    ok(unknown && strcmp(dpt(unknown, "web"), "./run") == 0, "unknown keys are skipped whole");

    ok(release_fails("default_process_types:\n  web:\n    cmd: x\n", "line 2"),
       "a nested map deeper than one level is refused, naming the line");
    ok(release_fails("default_process_types:\n  web: a\n    worker: b\n", "line 3"),
       "inconsistent nesting is refused");
    ok(release_fails("default_process_types:\n\tweb: a\n", "tabs"), "tab indentation is refused");
    ok(release_fails("default_process_types: web\n", "must be a map"), "a scalar where a map belongs");
    ok(release_fails("addons:\n  web: x\n", "must be a list"), "a map where a list belongs");
    ok(release_fails("default_process_types:\n  bad type: x\n", "invalid process type"),
       "process types follow the Procfile rule");
    ok(release_fails("config_vars:\n  A: \"open\n", "unterminated"), "an unterminated string");
    ok(release_fails("default_process_types:\n  web: a\n  web: b\n", "duplicate"), "duplicate names");
    ok(release_fails("  web: a\n", "unexpected indentation"), "indentation without a key");
    ok(release_fails("just text\n", "line 1"), "a line that is no key");

    /* berth's own static buildpack, run for real */
    const char *bpdir = getenv("BUILDPACKS_DIR");
    if (!bpdir) {
        skip("BUILDPACKS_DIR is not set");
        return;
    }
    _cleanup_free_ char *cmd = xasprintf("'%s/static/bin/release' /tmp", bpdir);
    struct strbuf out = STRBUF_INIT;
    FILE *f = popen(cmd, "r");
    char buf[4096];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_add(&out, buf, n);
    int status = f ? pclose(f) : -1;
    _cleanup_json_ json_t *st = status == 0 ? release_ok(out.buf) : NULL;
    ok(st && strcmp(dpt(st, "web"), "exec /app/.berth/static/bin/berth-static-nginx") == 0,
       "the static buildpack's bin/release parses to its nginx web process");
    strbuf_release(&out);
}

/* ---------------------------------------------------------------- lines */

struct collected {
    struct strbuf all;   /* lines joined with '|' */
    int count;
    size_t longest;
};

static void collect(void *cls, const char *line)
{
    struct collected *c = cls;

    if (c->count++)
        strbuf_addch(&c->all, '|');
    strbuf_addstr(&c->all, line);
    if (strlen(line) > c->longest)
        c->longest = strlen(line);
}

static void test_lines(void)
{
    struct collected c = { .all = STRBUF_INIT };
    struct build_lines l;

    build_lines_init(&l, collect, &c);
    build_lines_feed(&l, "-----> Hi\r\nhalf", 15);
    ok(c.count == 1 && strcmp(c.all.buf, "-----> Hi") == 0, "a complete line goes out at once, without CRLF");
    build_lines_feed(&l, " line\n\nprogress\r50%\n", 20);
    ok(strcmp(c.all.buf, "-----> Hi|half line||progress\r50%") == 0,
       "a line split across reads is joined; empty lines kept; a CR inside a line kept");
    build_lines_feed(&l, "a\0b\n", 4);
    ok(strcmp(c.all.buf + c.all.len - 3, "a?b") == 0, "a NUL byte cannot cut the line short");

    strbuf_reset(&c.all);
    c.count = 0;
    char *big = xmalloc(25000);
    memset(big, 'x', 25000);
    build_lines_feed(&l, big, 12000);
    build_lines_feed(&l, big, 13000);
    ok(c.count == 2 && c.longest == BUILD_LINE_MAX, "an endless line is split every %d bytes", BUILD_LINE_MAX);
    build_lines_feed(&l, "tail", 4);
    build_lines_flush(&l);
    ok(c.count == 3 && c.all.len == 25004 + 2, "flush emits the unfinished last line");
    build_lines_flush(&l);
    ok(c.count == 3, "flush with nothing pending emits nothing");
    free(big);
    build_lines_release(&l);
    strbuf_release(&c.all);
}

/* ---------------------------------------------------------------- ENV_DIR */

static char *slurp(const char *path)
{
    struct strbuf sb = STRBUF_INIT;

    if (read_file(path, &sb, 1 << 20, NULL) < 0) {
        strbuf_release(&sb);
        return NULL;
    }
    return strbuf_detach(&sb, NULL);
}

static void test_env_dir(const char *tmp)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *dir = xasprintf("%s/env", tmp);
    _cleanup_json_ json_t *config = json_pack("{s:s,s:s,s:s}", "DATABASE_URL", "postgres://x/y",
                                              "BERTH_APP_NAME", "spoofed", "EMPTY", "");
    mode_t old = umask(077);
    int r = build_env_dir_write(dir, config, "hello", "0123abcd", &err);
    umask(old);
    ok(r == 0, "ENV_DIR is written (%s)", berth_error_msg(&err));

    _cleanup_free_ char *url_path = xasprintf("%s/DATABASE_URL", dir);
    _cleanup_free_ char *app_path = xasprintf("%s/BERTH_APP_NAME", dir);
    _cleanup_free_ char *sv_path = xasprintf("%s/SOURCE_VERSION", dir);
    _cleanup_free_ char *empty_path = xasprintf("%s/EMPTY", dir);
    _cleanup_free_ char *url = slurp(url_path);
    _cleanup_free_ char *app = slurp(app_path);
    _cleanup_free_ char *sv = slurp(sv_path);
    _cleanup_free_ char *empty = slurp(empty_path);
    struct stat st_dir, st_file;
    ok(url && strcmp(url, "postgres://x/y") == 0 && empty && *empty == '\0',
       "one file per config var, the value as its content");
    ok(app && strcmp(app, "hello") == 0 && sv && strcmp(sv, "0123abcd") == 0,
       "BERTH_APP_NAME and SOURCE_VERSION come from the platform, not the config");
    ok(stat(dir, &st_dir) == 0 && (st_dir.st_mode & 07777) == 0755 && stat(url_path, &st_file) == 0 &&
       (st_file.st_mode & 07777) == 0644, "modes 0755 and 0644 despite a 077 umask");

    _cleanup_free_ char *dir2 = xasprintf("%s/env2", tmp);
    _cleanup_json_ json_t *bad = json_pack("{s:s}", "A-B", "x");
    berth_error_release(&err);
    ok(build_env_dir_write(dir2, bad, "hello", NULL, &err) < 0 && strstr(berth_error_msg(&err), "'A-B'"),
       "an invalid variable name is refused");
    _cleanup_free_ char *dir3 = xasprintf("%s/env3", tmp);
    _cleanup_json_ json_t *notstr = json_pack("{s:i}", "PORT", 5);
    berth_error_release(&err);
    ok(build_env_dir_write(dir3, notstr, "hello", NULL, &err) < 0 &&
       strstr(berth_error_msg(&err), "not a string"), "a non-string value is refused");
    _cleanup_free_ char *dir4 = xasprintf("%s/env4", tmp);
    _cleanup_json_ json_t *slash = json_pack("{s:s}", "../evil", "x");
    berth_error_release(&err);
    ok(build_env_dir_write(dir4, slash, "hello", NULL, &err) < 0, "a name with '/' cannot escape the directory");
}

/* ---------------------------------------------------------------- slug hash */

static void put(const char *root, const char *rel, const char *content, mode_t mode)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", root, rel);
    _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    if (fd < 0 || write_all(fd, content, strlen(content)) < 0 || fchmod(fd, mode) < 0)
        printf("# cannot write %s\n", p);
}

static void make_tree(const char *root, const char *outside)
{
    _cleanup_free_ char *pub = xasprintf("%s/public", root);
    _cleanup_free_ char *css = xasprintf("%s/public/css", root);
    _cleanup_free_ char *emptyd = xasprintf("%s/empty", root);
    _cleanup_free_ char *link = xasprintf("%s/public/latest", root);
    _cleanup_free_ char *out_link = xasprintf("%s/outside", root);

    (void)mkdir(root, 0755);
    (void)mkdir(pub, 0755);
    (void)mkdir(css, 0755);
    (void)mkdir(emptyd, 0700);
    put(root, "Procfile", "web: ./run\n", 0644);
    put(root, "run", "#!/bin/sh\nexec true\n", 0755);
    put(root, "public/index.html", "<h1>Hello from berth</h1>\n", 0644);
    put(root, "public/css/style.css", "h1 { color: red }\n", 0644);
    put(root, ".static", "", 0644);
    if (symlink("index.html", link) < 0)
        printf("# symlink: %s\n", strerror(errno));
    if (symlink(outside, out_link) < 0)
        printf("# symlink: %s\n", strerror(errno));
}

static bool hash_of(const char *dir, char hex[SHA256_HEX_LEN + 1])
{
    _cleanup_error_ struct berth_error *err = NULL;

    if (build_slug_hash(dir, hex, NULL, &err) < 0) {
        printf("# hash error: %s\n", berth_error_msg(&err));
        return false;
    }
    return true;
}

static void test_slug_hash(const char *tmp)
{
    _cleanup_free_ char *a = xasprintf("%s/a", tmp);
    _cleanup_free_ char *b = xasprintf("%s/b", tmp);
    _cleanup_free_ char *outside = xasprintf("%s/secret", tmp);
    char ha[SHA256_HEX_LEN + 1], hb[SHA256_HEX_LEN + 1], h[SHA256_HEX_LEN + 1];

    put(tmp, "secret", "one\n", 0644);
    make_tree(a, outside);
    sleep(1);   /* different mtimes for the second tree */
    make_tree(b, outside);
    ok(hash_of(a, ha) && hash_of(b, hb) && strcmp(ha, hb) == 0 && strlen(ha) == SHA256_HEX_LEN,
       "two identical trees built at different times hash the same");
    ok(hash_of(a, h) && strcmp(h, ha) == 0, "hashing is stable");

    put(tmp, "secret", "two\n", 0644);
    ok(hash_of(b, h) && strcmp(h, hb) == 0, "a symlink out of the tree is not followed");

    put(b, "public/css/style.css", "h1 { color: rod }\n", 0644);
    ok(hash_of(b, h) && strcmp(h, ha) != 0, "changing one byte changes the hash");
    put(b, "public/css/style.css", "h1 { color: red }\n", 0644);
    ok(hash_of(b, h) && strcmp(h, ha) == 0, "changing it back restores the hash");

    _cleanup_free_ char *run = xasprintf("%s/run", b);
    (void)chmod(run, 0700);
    ok(hash_of(b, h) && strcmp(h, ha) != 0, "changing a mode changes the hash");
    (void)chmod(run, 0755);

    _cleanup_free_ char *from = xasprintf("%s/public/index.html", b);
    _cleanup_free_ char *to = xasprintf("%s/public/index.htm", b);
    (void)rename(from, to);
    ok(hash_of(b, h) && strcmp(h, ha) != 0, "renaming a file changes the hash");
    (void)rename(to, from);

    _cleanup_free_ char *link = xasprintf("%s/public/latest", b);
    (void)unlink(link);
    if (symlink("css", link) < 0)
        printf("# symlink: %s\n", strerror(errno));
    ok(hash_of(b, h) && strcmp(h, ha) != 0, "changing a symlink's target changes the hash");
    (void)unlink(link);
    if (symlink("index.html", link) < 0)
        printf("# symlink: %s\n", strerror(errno));

    _cleanup_free_ char *emptyd = xasprintf("%s/empty/x", b);
    (void)mkdir(emptyd, 0755);
    ok(hash_of(b, h) && strcmp(h, ha) != 0, "an added empty directory changes the hash");
    (void)rmdir(emptyd);
    ok(hash_of(b, h) && strcmp(h, ha) == 0, "the tree is back to the original hash");

    /* "ab" + "c" and "a" + "bc" must not collide: lengths are part of the stream. */
    _cleanup_free_ char *c1 = xasprintf("%s/c1", tmp);
    _cleanup_free_ char *c2 = xasprintf("%s/c2", tmp);
    (void)mkdir(c1, 0755);
    (void)mkdir(c2, 0755);
    put(c1, "ab", "c", 0644);
    put(c2, "a", "bc", 0644);
    char h1[SHA256_HEX_LEN + 1], h2[SHA256_HEX_LEN + 1];
    ok(hash_of(c1, h1) && hash_of(c2, h2) && strcmp(h1, h2) != 0, "name/content boundaries are unambiguous");

    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *fifo = xasprintf("%s/c1/pipe", tmp);
    (void)mkfifo(fifo, 0644);
    ok(hash_of(c1, h) && strcmp(h, h1) != 0, "a FIFO is hashed by type and name without opening it");

    if (geteuid() == 0) {
        skip("root reads unreadable files");
    } else {
        _cleanup_free_ char *locked = xasprintf("%s/c2/a", tmp);
        (void)chmod(locked, 0);
        ok(build_slug_hash(c2, h, NULL, &err) < 0 && strstr(berth_error_msg(&err), "cannot read 'a'"),
           "an unreadable file fails with a message naming it");
        (void)chmod(locked, 0644);
    }
    berth_error_release(&err);
    _cleanup_free_ char *missing = xasprintf("%s/nope", tmp);
    ok(build_slug_hash(missing, h, NULL, &err) < 0, "a missing tree is an error");
}

/* ---------------------------------------------------------------- host paths */

static bool scrubs_to(const struct build_shown_path *v, size_t n, const char *msg, const char *want)
{
    _cleanup_free_ char *got = build_paths_scrub(v, n, msg);

    if (strcmp(got, want) == 0)
        return true;
    printf("# '%s' became '%s', not '%s'\n", msg, got, want);
    return false;
}

static bool common_is(const char *a, const char *b, const char *want)
{
    const char *const v[] = { a, b };
    _cleanup_free_ char *got = build_paths_common_dir(v, 2);

    if ((!got && !want) || (got && want && strcmp(got, want) == 0))
        return true;
    printf("# common dir of '%s' and '%s': '%s', not '%s'\n", a, b, got ? got : "(none)",
           want ? want : "(none)");
    return false;
}

static void test_hidden_paths(void)
{
    const struct build_shown_path v[] = {
        { "/h/run/builds/a-v1", "<build>" },
        { "/h/run/builds/a-v1/slug/app", "/app" },
        { "/h/run/builds/a-v1/slug", "/berth/slug" },
        { "/h/apps/a/cache/", "/cache" },
        { "/h", "<home>" },
        { NULL, "<none>" }, { "", "<empty>" }, { "/", "<root>" },
    };
    size_t n = sizeof(v) / sizeof(*v);

    ok(scrubs_to(v, n, "bind '/h/run/builds/a-v1/slug/app' onto '/app': Not a directory",
                 "bind '/app' onto '/app': Not a directory"),
       "the app dir is /app, not the work dir's name plus /slug/app");
    ok(scrubs_to(v, n, "'/h/run/builds/a-v1/slug/app/x/y' is nested deeper than 256 levels",
                 "'/app/x/y' is nested deeper than 256 levels"), "a path below a known dir keeps its tail");
    ok(scrubs_to(v, n, "mount source '/h/run/builds/a-v1/slug' and /h/apps/a/cache",
                 "mount source '/berth/slug' and /cache"), "every path of a message is hidden");
    ok(scrubs_to(v, n, "creating '/h/run/builds/a-v1/c3': x", "creating '<build>/c3': x"),
       "the rest of the work dir is <build>");
    ok(scrubs_to(v, n, "/h/run/keeper.sock failed; /h", "<home>/run/keeper.sock failed; <home>"),
       "anything else under the home is <home>");
    ok(scrubs_to(v, n, "/h/run/builds/a-v12/c1 and /hx/y and /h2", "<home>/run/builds/a-v12/c1 and /hx/y and /h2"),
       "a path matches up to a component's end only");
    ok(scrubs_to(v, n, "a/h/run x-/h/y file:///h/z", "a/h/run x-/h/y file://<home>/z"),
       "a path matches where a path name can start only");
    ok(scrubs_to(v, n, "/usr/bin/env: 'x': No such file", "/usr/bin/env: 'x': No such file"),
       "other paths are left as they are (empty, NULL and / entries are skipped)");
    ok(scrubs_to(v, 0, "/h/run", "/h/run"), "no paths: the message unchanged");

    ok(common_is("/h/run/builds/a-v1", "/h/apps/a/cache", "/h"), "the common dir of two paths");
    ok(common_is("/h/ab", "/h/ac", "/h"), "... ends at a component's end");
    ok(common_is("/h/a/", "/h/a/b", "/h/a"), "... without a trailing slash");
    ok(common_is("/h/a", "/h/a", "/h/a"), "... of equal paths is the path");
    ok(common_is("/x/a", "/y/a", NULL), "... is none when it would be /");
    ok(common_is("/x/a", "relative", NULL), "... is none with a relative path");
}

int main(void)
{
    char tmpl[] = "/tmp/berth-test-procfile-XXXXXX";
    char *tmp = mkdtemp(tmpl);

    test_procfile();
    test_release();
    test_lines();
    test_hidden_paths();
    if (!tmp) {
        ok(0, "mkdtemp: %s", strerror(errno));
        return tap_done();
    }
    test_env_dir(tmp);
    test_slug_hash(tmp);
    (void)rm_rf(tmp, NULL);
    return tap_done();
}
