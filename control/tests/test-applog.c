/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the apps' logs (control/applog.c, applog-read.c) on a
 * temporary home: Heroku's line format, the pump (lines, splitting past
 * 10000 bytes, the output callback), the router's batches, rotation,
 * writers in many threads, the filter, and readers (tail and follow).
 */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "control/applog.h"

static char home[] = "/tmp/test-applog.XXXXXX";

static char *log_text(const char *app, const char *suffix)
{
    _cleanup_free_ char *path = xasprintf("%s/apps/%s/logs/app.log%s", home, app, suffix);
    struct strbuf sb = STRBUF_INIT;

    if (read_file(path, &sb, 64u << 20, NULL) < 0)
        return NULL;
    return strbuf_detach(&sb, NULL);
}

static void make_app(const char *app)
{
    _cleanup_free_ char *dir = xasprintf("%s/apps/%s", home, app);

    mkdir_p(dir, 0700, NULL);
}

static bool every_line_matches(const char *text, const char *pattern, size_t *ret_count)
{
    regex_t re;
    bool all = true;
    size_t count = 0;

    regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        _cleanup_free_ char *one = xstrndup(line, nl ? (size_t)(nl - line) : strlen(line));

        if (!nl || regexec(&re, one, 0, NULL, 0) != 0)
            all = false;
        count++;
        line = nl ? nl + 1 : NULL;
    }
    regfree(&re);
    if (ret_count)
        *ret_count = count;
    return all;
}

#define TS "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}\\+00:00 "

static void test_emit(struct applog *l)
{
    _cleanup_free_ char *text = NULL;
    size_t n = 0;

    applog_emit(l, "one", "app[api]", "Release v%u created by %s", 3, "admin");
    applog_emit(l, "one", "heroku[web.1]", "two\nlines");
    text = log_text("one", "");
    ok(text && every_line_matches(text, TS "(app\\[api\\]|heroku\\[web\\.1\\]): ", &n) && n == 3,
       "platform lines in Heroku's format, UTC with microseconds (%zu lines)", n);
    ok(text && strstr(text, " app[api]: Release v3 created by admin\n"), "the release line");
    ok(text && strstr(text, " heroku[web.1]: two\n") && strstr(text, " heroku[web.1]: lines\n"),
       "a newline in a platform line starts another line with the same source");
    {
        _cleanup_free_ char *path = xasprintf("%s/apps/one/logs/app.log", home);

        unlink(path);
        applog_emit(l, "one", "app[api]", "after the delete");
        free(text);
        text = log_text("one", "");
        ok(text && every_line_matches(text, TS "app\\[api\\]: after the delete$", &n) && n == 1,
           "a log deleted under berth is started again at the next line");
    }
    applog_emit(l, "gone", "app[api]", "nobody reads this");
    free(text);
    text = log_text("gone", "");
    ok(!text, "no log (and no directory) for an app that does not exist");
}

struct collected {
    struct strbuf lines;
    unsigned count;
};

static void collect(void *cls, const char *line)
{
    struct collected *c = cls;

    strbuf_addstr(&c->lines, line);
    strbuf_addch(&c->lines, '|');
    c->count++;
}

static void test_pump(struct applog *l)
{
    struct collected c = { STRBUF_INIT, 0 };
    struct applog_pump *p = NULL;
    _cleanup_free_ char *text = NULL, *big = xmalloc(25001);
    int fds[2];
    size_t n = 0;
    int r;

    memset(big, 'x', 25000);
    big[25000] = '\0';
    (void)!pipe(fds);
    r = applog_pump_add(l, "two", "web.1", fds[0], collect, &c, &p, NULL);
    ok(r == 0, "a pump on a pipe");
    dprintf(fds[1], "hello\nworld\n%s", big);
    ok(applog_pump_deliver(p, 2000) == 0 && c.count >= 1, "lines are delivered while the pipe is open");
    close(fds[1]);
    applog_pump_finish(p);
    ok(c.count == 5, "every line delivered by the end (%u of 5)", c.count);
    ok(strncmp(c.lines.buf, "hello|world|", 12) == 0 && strlen(c.lines.buf) == 12 + 25000 + 3,
       "... in order, the long line in three pieces");
    text = log_text("two", "");
    ok(text && every_line_matches(text, TS "app\\[web\\.1\\]: ", &n) && n == 5, "five lines as app[web.1] (%zu)", n);
    ok(text && strstr(text, "app[web.1]: hello\n") && strstr(text, "app[web.1]: world\n"), "the short lines as they were");
    {
        regex_t re;
        bool split;

        regcomp(&re, "app\\[web\\.1\\]: x{10000}\n.*app\\[web\\.1\\]: x{10000}\n.*app\\[web\\.1\\]: x{5000}\n$",
                REG_EXTENDED | REG_NOSUB);
        split = text && regexec(&re, text, 0, NULL, 0) == 0;
        regfree(&re);
        ok(split, "a line of 25000 bytes is split into 10000, 10000 and 5000 (Heroku's chunks)");
    }
    strbuf_release(&c.lines);

    /* Without output, many pumps at once: one thread reads them all. */
    {
        struct applog_pump *ps[20];
        int w[20];

        for (int i = 0; i < 20; i++) {
            (void)!pipe(fds);
            w[i] = fds[1];
            applog_pump_add(l, "three", i % 2 ? "worker.1" : "web.2", fds[0], NULL, NULL, &ps[i], NULL);
        }
        for (int k = 0; k < 50; k++)
            for (int i = 0; i < 20; i++)
                dprintf(w[i], "pump %d line %d\n", i, k);
        for (int i = 0; i < 20; i++) {
            close(w[i]);
            applog_pump_finish(ps[i]);
        }
        free(text);
        text = log_text("three", "");
        ok(text && every_line_matches(text, TS "app\\[(web\\.2|worker\\.1)\\]: pump [0-9]+ line [0-9]+$", &n) &&
               n == 1000, "20 pumps, 1000 whole lines, none mixed (%zu)", n);
    }
}

static void test_router(void)
{
    struct applog *l = NULL;
    _cleanup_free_ char *a = NULL, *b = NULL;
    const char *batch = "ra 2026-11-22T01:02:03.000001+00:00 heroku[router]: at=info path=\"/a\"\n"
                        "rb 2026-11-22T01:02:03.000002+00:00 heroku[router]: at=info path=\"/b\"\n"
                        "ra 2026-11-22T01:02:03.000003+00:00 heroku[router]: at=error code=H12\n";

    make_app("ra");
    make_app("rb");
    applog_start(home, 0, &l, NULL);
    applog_router_lines(l, batch, strlen(batch));
    applog_stop(l);
    a = log_text("ra", "");
    b = log_text("rb", "");
    ok(a && strcmp(a, "2026-11-22T01:02:03.000001+00:00 heroku[router]: at=info path=\"/a\"\n"
                      "2026-11-22T01:02:03.000003+00:00 heroku[router]: at=error code=H12\n") == 0,
       "the router's lines of one app reach its log, in order, without the app's name");
    ok(b && strstr(b, "heroku[router]: at=info path=\"/b\"\n"), "... and the other app's its own");
}

struct writer {
    struct applog *l;
    int id;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;

    for (int i = 0; i < 2000; i++)
        applog_emit(w->l, "rot", "heroku[web.1]", "writer %d line %d %s", w->id, i, "padding padding padding");
    return NULL;
}

static void test_rotation(void)
{
    struct applog *l = NULL;
    pthread_t t[4];
    struct writer w[4];
    _cleanup_free_ char *cur = NULL, *old = NULL, *path = NULL;
    struct stat st;
    size_t n1 = 0, n2 = 0;

    make_app("rot");
    applog_start(home, 65536, &l, NULL);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){ l, i };
        pthread_create(&t[i], NULL, write_many, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    applog_stop(l);
    cur = log_text("rot", "");
    old = log_text("rot", ".1");
    ok(cur && old, "past the limit, app.log was rotated to app.log.1");
    free(path);
    path = xasprintf("%s/apps/rot/logs/app.log.1", home);
    ok(old && stat(path, &st) == 0 && st.st_size <= 65536, "app.log.1 is within the limit (%lld bytes)",
       (long long)st.st_size);
    ok(cur && every_line_matches(cur, TS "heroku\\[web\\.1\\]: writer [0-3] line [0-9]+ padding padding padding$", &n1) &&
           old && every_line_matches(old, TS "heroku\\[web\\.1\\]: writer [0-3] line [0-9]+ padding padding padding$", &n2),
       "4 threads writing: only whole lines, in both files (%zu + %zu)", n1, n2);
    /* The last line written is some writer's last. */
    ok(cur && strlen(cur) > 40 && strstr(cur + strlen(cur) - 40, " line 1999 padding padding padding\n"),
       "the newest line is the last of app.log");
    free(path);
    path = xasprintf("%s/apps/rot/logs/app.log.2", home);
    ok(stat(path, &st) < 0, "no second generation: only app.log.1 is kept");
}

static void test_filter(void)
{
    const char *app = "2026-11-22T01:02:03.456789+00:00 app[web.1]: hello";
    const char *worker = "2026-11-22T01:02:03.456789+00:00 app[worker.2]: job";
    const char *dyno = "2026-11-22T01:02:03.456789+00:00 heroku[web.1]: State changed from starting to up";
    const char *router = "2026-11-22T01:02:03.456789+00:00 heroku[router]: at=info method=GET";
    const char *api = "2026-11-22T01:02:03.456789+00:00 app[api]: Release v3 created by admin";
    const char *web10 = "2026-11-22T01:02:03.456789+00:00 app[web.10]: ten";
    struct applog_filter all = { 0 }, src_app = { APPLOG_SOURCE_APP, NULL }, src_router = { APPLOG_SOURCE_ROUTER, NULL };
    struct applog_filter web = { APPLOG_SOURCE_ALL, "web" }, web1 = { APPLOG_SOURCE_ALL, "web.1" };
    struct applog_filter we = { APPLOG_SOURCE_ALL, "we" };

#define M(line, f) applog_line_matches(line, strlen(line), &f)
    ok(M(app, all) && M(router, all) && M(api, all), "no filter: everything");
    ok(M(app, src_app) && M(dyno, src_app) && M(api, src_app) && !M(router, src_app),
       "--source app: the app's and the platform's lines, not the router's");
    ok(M(router, src_router) && !M(app, src_router) && !M(dyno, src_router) && !M(api, src_router),
       "--source router: only heroku[router]");
    ok(M(app, web) && M(dyno, web) && M(web10, web) && !M(worker, web) && !M(router, web) && !M(api, web),
       "-p web: web.N of app[] and heroku[]");
    ok(M(app, web1) && M(dyno, web1) && !M(web10, web1), "-p web.1: that one only (not web.10)");
    ok(!M(app, we), "-p we: no prefix match of a type name");
    ok(!applog_line_matches("garbage", 7, &all), "a line without a source matches nothing");
#undef M
}

static void test_reader(void)
{
    struct applog *l = NULL;
    struct applog_reader *r = NULL;
    struct applog_filter web = { APPLOG_SOURCE_ALL, "web" }, all = { 0 };
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    _cleanup_free_ char *text = NULL;
    size_t n = 0;
    int rc = 0;

    make_app("rd");
    applog_start(home, 4096, &l, NULL);
    for (int i = 0; i < 100; i++)
        applog_emit(l, "rd", i % 2 ? "app[web.1]" : "app[worker.1]", "line %03d", i);
    ok(applog_reader_open(l, "rd", &web, &r, NULL) == 0, "a reader opens");
    ok(applog_reader_tail(r, 10, &out, NULL) == 0 && every_line_matches(out.buf, TS "app\\[web\\.1\\]: ", &n) &&
           n == 10 && strstr(out.buf, "line 099\n"),
       "the last 10 web lines, oldest first (%zu)", n);
    ok(strncmp(strstr(out.buf, ": ") + 2, "line 081", 8) == 0, "... starting at line 081");
    applog_reader_free(r);

    strbuf_reset(&out);
    applog_reader_open(l, "rd", &all, &r, NULL);
    applog_reader_tail(r, 10000, &out, NULL);
    every_line_matches(out.buf, TS, &n);
    free(text);
    text = log_text("rd", ".1");
    ok(n == 100 && strstr(out.buf, "line 000\n") && strstr(out.buf, "line 099\n") && text,
       "a tail reads across app.log.1 and app.log (%zu lines)", n);
    strbuf_reset(&out);
    ok(applog_reader_follow(r, 100, &out) == 0 && out.len == 0, "follow: nothing new, 0 after the timeout");
    applog_emit(l, "rd", "heroku[router]", "at=info new");
    ok(applog_reader_follow(r, 1000, &out) == 1 && strstr(out.buf, "heroku[router]: at=info new\n") &&
           !strstr(out.buf, "line 099"), "follow: the line written after the open, and nothing before");
    strbuf_reset(&out);
    /* A follower that keeps up (a file's worth at a time at most) sees every line through rotations. */
    for (int i = 0; i < 200; i++) {
        applog_emit(l, "rd", "app[web.1]", "after %03d", i);
        if (i % 20 == 19)
            while ((rc = applog_reader_follow(r, 50, &out)) == 1)
                ;
    }
    every_line_matches(out.buf, TS "app\\[web\\.1\\]: after [0-9]{3}$", &n);
    ok(rc == 0 && n == 200 && strstr(out.buf, "after 000\n") && strstr(out.buf, "after 199\n"),
       "follow goes on through rotations (%zu of 200 lines)", n);
    applog_end_follows(l);
    ok(applog_reader_follow(r, 5000, &out) == -ESHUTDOWN, "follow ends once the log's follows end");
    applog_reader_free(r);
    applog_stop(l);
}

/* A follow of a destroyed app ends: the next app of the name (perhaps another tenant's) is not its. */
static void test_forget(void)
{
    struct applog *l = NULL;
    struct applog_reader *r = NULL, *early = NULL, *late = NULL;
    struct applog_filter all = { 0 };
    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;

    make_app("fg");
    applog_start(home, 0, &l, NULL);
    ok(applog_reader_open(l, "fg", &all, &early, NULL) == 0, "a reader of an app with no log yet");
    applog_emit(l, "fg", "app[web.1]", "first app");
    ok(applog_reader_open(l, "fg", &all, &r, NULL) == 0, "... and one of its log");
    applog_forget(l, "fg");
    applog_emit(l, "fg", "app[web.1]", "next app of the name");
    ok(applog_reader_follow(r, 1000, &out) == -ENOENT && !strstr(out.buf, "next app"),
       "once the app is forgotten, a follow ends: -ENOENT, nothing of the next app");
    ok(applog_reader_follow(early, 1000, &out) < 0 && !strstr(out.buf, "next app"),
       "... also for a reader opened before any line (which reopens by path)");
    ok(applog_reader_open(l, "fg", &all, &late, NULL) == 0 && applog_reader_tail(late, 10, &out, NULL) == 0 &&
           strstr(out.buf, "next app of the name") && applog_reader_follow(late, 50, &out) == 0,
       "a reader opened after reads the new app's log and follows on");
    applog_reader_free(r);
    applog_reader_free(early);
    applog_reader_free(late);
    applog_stop(l);
}

int main(void)
{
    struct applog *l = NULL;
    _cleanup_free_ char *cmd = NULL;

    if (!mkdtemp(home))
        return 1;
    make_app("one");
    make_app("two");
    make_app("three");
    ok(applog_start(home, 0, &l, NULL) == 0, "the log thread starts");
    test_emit(l);
    test_pump(l);
    applog_stop(l);
    test_router();
    test_rotation();
    test_filter();
    test_reader();
    test_forget();
    cmd = xasprintf("rm -rf '%s'", home);
    (void)!system(cmd);
    return tap_done();
}
