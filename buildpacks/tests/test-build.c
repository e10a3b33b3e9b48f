/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Integration test of the build driver with the real runner: builds
 * examples/static into a slug in rootless containers, checks the output
 * lines, the slug's content address and layout and the process types,
 * rebuilds to the same slug id, checks the failure modes (no buildpack,
 * a bad Procfile, a failing compile, none leaving a slug), proves the
 * output streams while compile runs, and finally serves the slug's web
 * process in a container and fetches `/` through the port agent.
 *
 * It must run as the unprivileged berth user (the one with /etc/subuid
 * entries); started as root it re-executes itself as `berth` with setpriv.
 * Without user namespaces or subordinate ids it skips, unless
 * BERTH_MUST_WORK is set.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buildpacks/build.h"
#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "runner/runner.h"

#define WEB_PORT 5000

static int skip_all(const char *why)
{
    if (getenv("BERTH_MUST_WORK")) {
        printf("not ok 1 - cannot run: %s (BERTH_MUST_WORK is set)\n1..1\n", why);
        return 1;
    }
    printf("1..0 # SKIP %s\n", why);
    return 0;
}

/* Root: become the berth user (setpriv keeps the environment) or say why not. */
static int reexec_as_berth(char **argv)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

    struct passwd *pw = getpwnam("berth");
    _cleanup_error_ struct berth_error *err = NULL;

    if (!pw)
        return skip_all("running as root and there is no 'berth' user");
    /* The one-time root step of `berth setup` (idempotent), so builds get their cgroup limits. */
    if (runner_cgroup_delegate(pw->pw_uid, pw->pw_gid, &err) < 0)
        printf("# cgroup delegation failed: %s\n", berth_error_msg(&err));
    if (n < 0)
        return skip_all("cannot find /proc/self/exe");
    self[n] = '\0';
    fflush(stdout);
    char *args[] = { (char *)"setpriv", (char *)"--reuid=berth", (char *)"--regid=berth",
                     (char *)"--init-groups", (char *)"--", self, NULL };
    (void)argv;
    execvp("setpriv", args);
    return skip_all("running as root and setpriv is not available");
}

/* The first range of `user` in an /etc/subuid-style file, at most 65536 ids. */
static bool subid_range(const char *file, const char *user, unsigned long *base, unsigned long *count)
{
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    char line[512];
    size_t ulen = strlen(user);

    while (f && fgets(line, sizeof(line), f)) {
        unsigned long b, c;
        if (strncmp(line, user, ulen) != 0 || line[ulen] != ':')
            continue;
        if (sscanf(line + ulen + 1, "%lu:%lu", &b, &c) != 2 || c < 65536)
            continue;
        *base = b;
        *count = 65536;
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- output capture */

struct output {
    /*
     * Only count the lines, taking 1 ms per 1000 as a push to a git client
     * over the network would: for a step that floods its output.
     */
    bool quiet;
    unsigned long lines;
    struct strbuf text;     /* every line, each followed by '\n' */
    long long t_one, t_three;   /* when the slow buildpack's lines arrived (ms) */
    const char *cgroup;     /* the build's cgroup, read while compile runs */
    char *limits;           /* "<memory limit> <pids.max>" as the host sees them */
};

/* A file of <berth cgroup>/<rel> for `controller` (v1) or the unified tree (v2). */
static char *host_cgroup_file(const char *controller, const char *rel, const char *v1_file,
                              const char *v2_file)
{
    /* berth's delegated subtree is berth-<user> (runner/cgroup-layout.c). */
    const struct passwd *pw = getpwuid(getuid());
    const char *user = pw ? pw->pw_name : "berth";
    _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
    bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    char line[1024];

    while (f && fgets(line, sizeof(line), f)) {
        char *ctl = strchr(line, ':');
        char *path = ctl ? strchr(ctl + 1, ':') : NULL;
        if (!path)
            continue;
        *path++ = '\0';
        path[strcspn(path, "\n")] = '\0';
        if (strcmp(path, "/") == 0)
            path = (char *)"";
        if (v2 && strcmp(ctl + 1, "") == 0)
            return xasprintf("/sys/fs/cgroup%s/berth-%s/%s/%s", path, user, rel, v2_file);
        if (!v2 && strcmp(ctl + 1, controller) == 0)
            return xasprintf("/sys/fs/cgroup/%s%s/berth-%s/%s/%s", controller, path, user, rel, v1_file);
    }
    return NULL;
}

/* The most steps a test build here runs, each in a cgroup <build's>-c<N> of its own. */
#define MAX_STEPS 16

/* The cgroup of the build's latest step that still has one; NULL if none has. */
static char *newest_step_cgroup(const char *build_cgroup)
{
    for (unsigned n = MAX_STEPS; n > 0; n--) {
        char *rel = xasprintf("%s-c%u", build_cgroup, n);
        _cleanup_free_ char *dir = host_cgroup_file("pids", rel, "", "");

        if (dir && access(dir, F_OK) == 0)
            return rel;
        free(rel);
    }
    return NULL;
}

static void read_limits(struct output *o)
{
    _cleanup_free_ char *step = newest_step_cgroup(o->cgroup);
    _cleanup_free_ char *mem = step ? host_cgroup_file("memory", step, "memory.limit_in_bytes",
                                                       "memory.max") : NULL;
    _cleanup_free_ char *pids = step ? host_cgroup_file("pids", step, "pids.max", "pids.max")
                                     : NULL;
    struct strbuf m = STRBUF_INIT, p = STRBUF_INIT;

    if (mem && pids && read_file(mem, &m, 64, NULL) == 0 && read_file(pids, &p, 64, NULL) == 0) {
        strbuf_rtrim(&m);
        strbuf_rtrim(&p);
        o->limits = xasprintf("%s %s", m.buf, p.buf);
    }
    strbuf_release(&m);
    strbuf_release(&p);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_output(void *cls, const char *line)
{
    struct output *o = cls;

    if (o->quiet) {
        if (++o->lines % 1000 == 0)
            usleep(1000);
        return;
    }
    printf("#   | %s\n", line);
    strbuf_addstr(&o->text, line);
    strbuf_addch(&o->text, '\n');
    if (strcmp(line, "slow: one") == 0) {
        o->t_one = now_ms();
        if (o->cgroup)
            read_limits(o);
    }
    if (strcmp(line, "slow: three") == 0)
        o->t_three = now_ms();
}

static bool has_line(const struct output *o, const char *line)
{
    _cleanup_free_ char *needle = xasprintf("\n%s\n", line);

    return strncmp(o->text.buf, needle + 1, strlen(needle + 1)) == 0 || strstr(o->text.buf, needle);
}

/* ---------------------------------------------------------------- fixture */

struct fixture {
    struct runner *r;
    char *tmp;
    char *stack, *layers, *cache, *bpdir;
    unsigned long uid_base, gid_base, id_count;
    const char *cgroup;
    unsigned n_builds;
};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    _cleanup_free_ char *cmd = NULL;
    va_list ap;
    int status;

    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0)
        abort();
    va_end(ap);
    status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static size_t count_entries(const char *dir)
{
    _cleanup_closedir_ DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    return n;
}

static int build_with(struct fixture *fx, const char *src, const json_t *config,
                      const struct build_budget *budget, struct output *o, struct build_result *res,
                      struct berth_error **err)
{
    _cleanup_free_ char *work = xasprintf("%s/work%u", fx->tmp, ++fx->n_builds);
    const struct build_spec spec = {
        .app = "hello", .source_dir = src, .cache_dir = fx->cache, .work_dir = work,
        .buildpacks_dir = fx->bpdir, .stack_dir = fx->stack, .layers_dir = fx->layers,
        .config = config, .commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        .uid_base = fx->uid_base, .gid_base = fx->gid_base, .id_count = fx->id_count,
        .cgroup = fx->cgroup, .on_output = on_output, .cls = o,
        .budget = budget ? *budget : (struct build_budget){ 0 },
    };
    int r;

    if (mkdir(work, 0700) < 0)
        return berth_error_make(err, errno, "mkdir '%s'", work);
    r = build_run(fx->r, &spec, res, err);
    printf("# build of %s: %d %s\n", src, r, berth_error_msg(err));
    /* Whatever the outcome, the build leaves nothing but its (empty) work dir. */
    ok(count_entries(work) == 0, "build %u leaves its work dir empty", fx->n_builds);
    return r;
}

static int build(struct fixture *fx, const char *src, const json_t *config, struct output *o,
                 struct build_result *res, struct berth_error **err)
{
    return build_with(fx, src, config, NULL, o, res, err);
}

/* ---------------------------------------------------------------- HTTP through the port agent */

static int http_get(struct runner_container *c, const char *path, struct strbuf *resp)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *req = xasprintf("GET %s HTTP/1.0\r\nHost: hello.test\r\n\r\n", path);
    char buf[4096];
    ssize_t n;

    for (int i = 0; i < 100; i++) {
        berth_error_release(&err);
        if (runner_connect(c, &fd, &err) == 0)
            break;
        if (berth_error_code(&err) != ECONNREFUSED) {
            printf("# runner_connect: %s\n", berth_error_msg(&err));
            return -1;
        }
        usleep(100 * 1000);
    }
    if (fd < 0) {
        printf("# nothing listens on port %d: %s\n", WEB_PORT, berth_error_msg(&err));
        return -1;
    }
    if (write_all(fd, req, strlen(req)) < 0)
        return -1;
    while ((n = read(fd, buf, sizeof(buf))) > 0 && resp->len < (1 << 20))
        strbuf_add(resp, buf, (size_t)n);
    return 0;
}

/* Two requests on one connection: a server without keep-alive answers only the first. */
static int count_keepalive_answers(struct runner_container *c)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_close_ int fd = -1;
    static const char reqs[] = "GET / HTTP/1.1\r\nHost: hello.test\r\n\r\n"
                               "GET /style.css HTTP/1.1\r\nHost: hello.test\r\nConnection: close\r\n\r\n";
    struct strbuf resp = STRBUF_INIT;
    char buf[4096];
    ssize_t n;
    int count = 0;

    if (runner_connect(c, &fd, &err) < 0 || write_all(fd, reqs, strlen(reqs)) < 0)
        return -1;
    while ((n = read(fd, buf, sizeof(buf))) > 0 && resp.len < (1 << 20))
        strbuf_add(&resp, buf, (size_t)n);
    for (const char *p = resp.buf; (p = strstr(p, "HTTP/1.1 200 ")); p++)
        count++;
    strbuf_release(&resp);
    return count;
}

static void test_serve(struct fixture *fx, const struct build_result *res)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *state = xasprintf("%s/run1", fx->tmp);
    _cleanup_free_ char *cmd = xstrdup(json_get_str(res->process_types, "web") ?: "false");
    struct strbuf page = STRBUF_INIT, missing = STRBUF_INIT;
    struct runner_container *c = NULL;
    int status = 0;

    const char *const lower[] = { res->slug_dir, NULL };
    const char *const argv[] = { "/bin/bash", "-c", cmd, NULL };
    const char *const envp[] = { "PORT=5000", "HOME=/app", "PATH=/usr/local/bin:/usr/bin:/bin",
                                 "DYNO=web.1", NULL };
    if (mkdir(state, 0700) < 0) {
        ok(0, "mkdir '%s': %s", state, strerror(errno));
        return;
    }
    const struct runner_spec spec = {
        .name = "hello.web.1", .hostname = "web-1",
        .uid_base = fx->uid_base, .gid_base = fx->gid_base, .id_count = fx->id_count,
        .lower_dirs = lower, .stack_dir = fx->stack, .state_dir = state,
        .argv = argv, .envp = envp, .cwd = "/app", .uid = 1000, .gid = 1000,
        .stdout_fd = STDERR_FILENO, .stderr_fd = STDERR_FILENO, .port = WEB_PORT,
    };
    if (runner_spawn(fx->r, &spec, &c, &err) < 0) {
        ok(0, "the slug's web process starts: %s", berth_error_msg(&err));
        return;
    }
    ok(1, "the slug's web process starts");
    ok(http_get(c, "/", &page) == 0 && strstr(page.buf, " 200 ") &&
       strstr(page.buf, "<h1>Hello from berth</h1>"), "GET / through the port agent serves index.html");
    ok(http_get(c, "/style.css", &missing) == 0 && strstr(missing.buf, " 200 ") &&
       strstr(missing.buf, "text/css"), "GET /style.css is served as text/css");
    strbuf_reset(&missing);
    ok(http_get(c, "/no-such-page", &missing) == 0 && strstr(missing.buf, " 404 "),
       "a missing path is a 404");
    ok(count_keepalive_answers(c) == 2, "two requests on one connection are both answered (keep-alive)");
    if (page.len)
        printf("# %.*s\n", (int)(strchr(page.buf, '\r') ? strchr(page.buf, '\r') - page.buf : 0), page.buf);
    ok(runner_stop(c, 2000, &err) == 0, "the web process stops (%s)", berth_error_msg(&err));
    (void)runner_wait(c, 0, &status, NULL);
    runner_container_free(c);
    berth_error_release(&err);
    ok(runner_remove_tree(fx->r, state, fx->uid_base, fx->gid_base, fx->id_count, &err) == 0,
       "the instance's state is removed (%s)", berth_error_msg(&err));
    strbuf_release(&page);
    strbuf_release(&missing);
}

/* ---------------------------------------------------------------- the builds */

static void test_static(struct fixture *fx, const char *examples)
{
    int r;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *src = xasprintf("%s/src-static", fx->tmp);
    struct output o = { .text = STRBUF_INIT };
    struct build_result res = { 0 }, again = { 0 };

    if (sh("cp -a '%s/static' '%s' && chmod -R a+rX '%s'", examples, src, src) != 0) {
        ok(0, "copy examples/static");
        return;
    }
    r = build(fx, src, NULL, &o, &res, &err);
    ok(r == 0, "examples/static builds (%s)", berth_error_msg(&err));
    ok(has_line(&o, "-----> Static app detected"), "'-----> Static app detected'");
    ok(has_line(&o, "-----> Installing static site"), "the buildpack's own lines pass through");
    ok(has_line(&o, "-----> Discovering process types") &&
       has_line(&o, "       Default types for buildpack -> web"), "the process types are announced");
    ok(res.buildpack && strcmp(res.buildpack, "Static") == 0, "result: buildpack 'Static'");
    ok(res.slug_id && strlen(res.slug_id) == 64, "result: a sha256 slug id");

    _cleanup_free_ char *want_dir = xasprintf("%s/%s", fx->layers, res.slug_id ?: "");
    _cleanup_free_ char *index = xasprintf("%s/app/public/index.html", res.slug_dir ?: "");
    struct strbuf page = STRBUF_INIT;
    ok(res.slug_dir && strcmp(res.slug_dir, want_dir) == 0, "result: slug dir <layers>/<sha>");
    ok(res.slug_bytes > 0 && res.slug_bytes < (1 << 20), "result: the slug's size (%llu bytes)",
       (unsigned long long)res.slug_bytes);
    ok(res.buildpacks && json_array_size(res.buildpacks) == 1 &&
       strcmp(json_get_str(json_array_get(res.buildpacks, 0), "name") ?: "", "Static") == 0,
       "result: the buildpacks used");
    ok(read_file(index, &page, 1 << 20, NULL) == 0 && strstr(page.buf, "<h1>Hello from berth</h1>"),
       "the slug holds app/public/index.html");
    strbuf_release(&page);
    _cleanup_free_ char *app = xasprintf("%s/app", res.slug_dir ?: "");
    struct stat st;
    /* Mapped in the app's containers, so the overlay can copy it up when the app writes. */
    ok(stat(app, &st) == 0 && st.st_uid == fx->uid_base + 1000 && st.st_gid == fx->gid_base + 1000,
       "the slug's app dir belongs to the tenant's build user (uid %lu)", fx->uid_base + 1000);
    ok((st.st_mode & 07777) == 0755, "and is readable by all, writable by none else (%o)",
       (unsigned)(st.st_mode & 07777));
    ok(res.process_types && strcmp(json_get_str(res.process_types, "web") ?: "",
       "exec /app/.berth/static/bin/berth-static-nginx") == 0,
       "process_types.web is bin/release's default");

    strbuf_reset(&o.text);
    berth_error_release(&err);
    r = build(fx, src, NULL, &o, &again, &err);
    ok(r == 0, "the same source builds again (%s)",
       berth_error_msg(&err));
    ok(res.slug_id && again.slug_id && strcmp(res.slug_id, again.slug_id) == 0,
       "the rebuild has the same slug id");
    ok(count_entries(fx->layers) == 1, "and shares the one slug");

    if (res.slug_dir)
        test_serve(fx, &res);
    build_result_release(&again);
    build_result_release(&res);
    strbuf_release(&o.text);
}

/*
 * A source with more top-level entries than one command line takes (the
 * build once copied them with xargs; now one cp takes the tree whole): each
 * one reaches the slug, a symlink as a symlink, and a .git does not.
 */
static void test_many_entries(struct fixture *fx, const char *examples)
{
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *src = xasprintf("%s/src-many", fx->tmp);
    _cleanup_free_ char *public = NULL, *link = NULL;
    struct output o = { .text = STRBUF_INIT };
    struct build_result res = { 0 };
    char target[64] = "";
    size_t pages = 0;
    int r;

    /* 700 names of 230 bytes: 160 KiB, over the 128 KiB of command line xargs gives one cp. */
    if (sh("cp -a '%s/static' '%s' && cd '%s' && p=page-$(printf '%%0210d' 0) &&"
           " for i in $(seq 1000 1699); do : >$p-$i.html; done &&"
           " ln -s index.html home.html && mkdir .git && echo ref >.git/HEAD && chmod -R a+rX .",
           examples, src, src) != 0) {
        ok(0, "make a source of 700 pages");
        return;
    }
    r = build(fx, src, NULL, &o, &res, &err);
    ok(r == 0, "a source of 700 top-level pages with long names builds (%s)", berth_error_msg(&err));
    public = xasprintf("%s/app/public", res.slug_dir ?: "");
    link = xasprintf("%s/home.html", public);
    {
        _cleanup_closedir_ DIR *d = opendir(public);

        for (struct dirent *e; d && (e = readdir(d));)
            pages += strncmp(e->d_name, "page-", 5) == 0;
    }
    ok(pages == 700, "every page is in the slug (%zu)", pages);
    ok(readlink(link, target, sizeof(target) - 1) > 0 && strcmp(target, "index.html") == 0,
       "a top-level symlink stays a symlink ('%s')", target);
    {
        _cleanup_free_ char *git = xasprintf("%s/app/.git", res.slug_dir ?: "");
        _cleanup_free_ char *moved = xasprintf("%s/.git", public);

        ok(r == 0 && access(git, F_OK) < 0 && access(moved, F_OK) < 0,
           "the source's .git is no part of the slug");
    }
    build_result_release(&res);
    strbuf_release(&o.text);
}

static void test_failures(struct fixture *fx, const char *examples)
{
    int r;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *plain = xasprintf("%s/src-plain", fx->tmp);
    _cleanup_free_ char *badproc = xasprintf("%s/src-badproc", fx->tmp);
    _cleanup_free_ char *noindex = xasprintf("%s/src-noindex", fx->tmp);
    struct output o = { .text = STRBUF_INIT };
    struct build_result res = { 0 };
    size_t slugs = count_entries(fx->layers);

    if (sh("mkdir -p '%s' && echo hi > '%s/README' && chmod -R a+rX '%s'", plain, plain, plain) ||
        sh("cp -a '%s/static' '%s' && printf 'web: ok\\nweb node server.js\\n' > '%s/Procfile' && "
           "chmod -R a+rX '%s'", examples, badproc, badproc, badproc) ||
        sh("mkdir -p '%s' && touch '%s/.static' && echo x > '%s/about.html' && chmod -R a+rX '%s'",
           noindex, noindex, noindex, noindex)) {
        ok(0, "prepare the failing sources");
        return;
    }

    r = build(fx, plain, NULL, &o, &res, &err);
    ok(r < 0 &&
       strcmp(berth_error_msg(&err), "Unable to select a buildpack") == 0,
       "a tree no buildpack detects fails with 'Unable to select a buildpack'");
    ok(has_line(&o, "-----> Unable to select a buildpack"), "and says so in the output");

    strbuf_reset(&o.text);
    berth_error_release(&err);
    r = build(fx, badproc, NULL, &o, &res, &err);
    ok(r < 0 &&
       strstr(berth_error_msg(&err), "Procfile line 2: expected '<type>: <command>'"),
       "an invalid Procfile fails the build, naming the line");
    ok(has_line(&o, " !     Procfile line 2: expected '<type>: <command>', got 'web node server.js'"),
       "the Procfile error is in the output");

    strbuf_reset(&o.text);
    berth_error_release(&err);
    r = build(fx, noindex, NULL, &o, &res, &err);
    ok(r < 0 &&
       strcmp(berth_error_msg(&err), "compile failed with exit status 1") == 0,
       "a failing compile fails the build with its exit status");
    ok(has_line(&o, " !     no index.html in public/: a static site needs one at its root") &&
       has_line(&o, " !     Push rejected, failed to compile Static app."),
       "the buildpack's error and the rejection are in the output");
    ok(count_entries(fx->layers) == slugs, "no failed build left a slug");
    strbuf_release(&o.text);
}

/*
 * A buildpack of the test's own, in a buildpacks dir of its own, proves
 * what examples/static cannot: lines arrive while compile still runs,
 * stderr is interleaved in order, ENV_DIR carries the config, the build
 * environment is set, and a missing bin/release means no defaults.
 */
static void test_streaming(struct fixture *fx)
{
    int r;
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *bpdir = xasprintf("%s/bp-slow", fx->tmp);
    _cleanup_free_ char *src = xasprintf("%s/src-slow", fx->tmp);
    _cleanup_json_ json_t *config = json_pack("{s:s}", "GREETING", "hello world");
    struct output o = { .text = STRBUF_INIT, .cgroup = fx->cgroup };
    struct build_result res = { 0 };
    char *saved = fx->bpdir;

    static const char detect[] = "#!/bin/bash\n[ -f \"$1/.slow\" ] && echo Slow\n";
    static const char compile[] =
        "#!/bin/bash\n"
        "echo 'slow: one'\n"
        "echo 'slow: two' >&2\n"
        "sleep 1.5\n"
        "echo 'slow: three'\n"
        "echo \"env: $(cat \"$3/GREETING\") $STACK $HOME $SOURCE_VERSION\"\n"
        "echo 'web: ./x' > \"$1/Procfile\"\n";
    _cleanup_free_ char *detect_path = xasprintf("%s/static/bin/detect", bpdir);
    _cleanup_free_ char *compile_path = xasprintf("%s/static/bin/compile", bpdir);
    _cleanup_free_ char *marker = xasprintf("%s/.slow", src);

    if (sh("mkdir -p '%s/static/bin' '%s'", bpdir, src) ||
        write_file_atomic(detect_path, detect, strlen(detect), 0755, NULL) < 0 ||
        write_file_atomic(compile_path, compile, strlen(compile), 0755, NULL) < 0 ||
        write_file_atomic(marker, "", 0, 0644, NULL) < 0 ||
        sh("chmod -R a+rX '%s' '%s' && chmod a+rx '%s' '%s'", bpdir, src, detect_path, compile_path)) {
        ok(0, "prepare the slow buildpack");
        return;
    }
    fx->bpdir = bpdir;
    r = build(fx, src, config, &o, &res, &err);
    ok(r == 0, "a build with a slow compile succeeds (%s)",
       berth_error_msg(&err));
    fx->bpdir = saved;
    ok(strstr(o.text.buf, "slow: one\nslow: two\nslow: three\n") != NULL,
       "stdout and stderr lines arrive in the order they were written");
    ok(o.t_one && o.t_three && o.t_three - o.t_one >= 1000,
       "lines are streamed while compile runs (%lld ms apart)", o.t_three - o.t_one);
    ok(has_line(&o, "env: hello world berth-host /app 4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
       "ENV_DIR holds the config; STACK, HOME and SOURCE_VERSION are set");
    ok(has_line(&o, "       Procfile declares types -> web") && res.process_types &&
       strcmp(json_get_str(res.process_types, "web") ?: "", "./x") == 0,
       "a Procfile written by compile, and no bin/release, give the Procfile's types");
    if (fx->cgroup) {
        _cleanup_free_ char *left = NULL;

        ok(o.limits && strcmp(o.limits, "1073741824 1024") == 0,
           "the build container's cgroup has its memory and pids limits (%s)", o.limits ?: "none");
        /* The spawner removes a released step's cgroup once its init is gone: soon, not at once. */
        for (int i = 0; i < 200 && (left = newest_step_cgroup(fx->cgroup)); i++) {
            free(left);
            left = NULL;
            usleep(10000);
        }
        ok(!left, "no step of the build keeps its cgroup afterwards (%s)", left ?: "none left");
    } else if (getenv("BERTH_MUST_WORK"))
        ok(0, "cgroups are not delegated: build limits cannot be checked (BERTH_MUST_WORK is set)");
    else
        skip("cgroups are not delegated: no limits to check");
    free(o.limits);
    build_result_release(&res);
    strbuf_release(&o.text);
}

/*
 * Detection over the built-ins reads a bash detect in a subshell of the
 * prepare step's shell (phases.c says why) and runs any other as a
 * program. A buildpacks dir of the test's own: "node" has a bash detect
 * that says how it ran and with which shell options, and exits 1 unless
 * the app has want-bash; "python" has a sh detect. Its exit must not end
 * the detects after it, its globs must see neither the step's nullglob
 * nor its dotglob (a hidden .x.dot would match), and the sh one must
 * still run. "go" and "static" carry BUILD_SOURCED_MARK: read by the
 * step's shell itself, with the same fresh glob options, a return 1 of
 * one ending only itself; the kept built-in alone is in /buildpacks (its
 * compile lists it), mounted from its source.
 */
static void test_builtin_detects(struct fixture *fx)
{
    _cleanup_free_ char *bpdir = xasprintf("%s/bp-detects", fx->tmp);
    _cleanup_free_ char *src_bash = xasprintf("%s/src-detect-bash", fx->tmp);
    _cleanup_free_ char *src_sh = xasprintf("%s/src-detect-sh", fx->tmp);
    _cleanup_free_ char *src_marked = xasprintf("%s/src-detect-marked", fx->tmp);
    _cleanup_free_ char *src_static = xasprintf("%s/src-detect-static", fx->tmp);
    static const char bash_detect[] =
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        "for f in \"$1\"/*.dot; do [[ -f \"$f\" ]] && { echo \"Glob $f\"; exit 0; }; done\n"
        "[[ -f \"$1/want-bash\" ]] || exit 1\n"
        "how=run; [[ $$ == \"$BASHPID\" ]] || how=sourced\n"
        "echo \"Bash $how$(shopt -q nullglob && echo ' nullglob')$(shopt -q dotglob && echo ' dotglob')\"\n";
    static const char sh_detect[] = "#!/bin/sh\n[ -f \"$1/want-sh\" ] || exit 1\necho Sh detect\n";
    static const char compile[] = "#!/bin/bash\ntrue\n";
    static const char bash_release[] =
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        "how=run; [[ $$ == \"$BASHPID\" ]] || how=sourced\n"
        "printf 'default_process_types:\\n  web: bash-%s %s\\n' \"$how\" \"$1\"\n";
    static const char sh_release[] = "#!/bin/sh\nprintf 'default_process_types:\\n  web: sh %s\\n' \"$1\"\n";
    static const char marked_detect[] =
        "#!/bin/bash\n" BUILD_SOURCED_MARK "\n"
        "detect_t() {\n"
        "    local f how=run name=${BASH_SOURCE[0]%/bin/detect}\n"
        "    name=${name##*/}\n"
        "    for f in \"$1\"/*.dot; do [[ -f \"$f\" ]] && { echo \"Glob $f\"; return 0; }; done\n"
        "    [[ -f \"$1/want-$name\" ]] || return 1\n"
        "    [[ $$ == \"$BASHPID\" ]] && how=inshell\n"
        "    echo \"Marked $name $how$(shopt -q nullglob && echo ' nullglob')\"\n"
        "}\n"
        "detect_t \"$@\"\n";
    static const char listing_compile[] =
        "#!/bin/bash\ncd /buildpacks && echo \"copied:\" *\n";
    static const struct { const char *path, *text; } files[] = {
        { "node/bin/detect", bash_detect }, { "node/bin/compile", compile },
        { "node/bin/release", bash_release }, { "python/bin/detect", sh_detect },
        { "python/bin/compile", compile }, { "python/bin/release", sh_release },
        { "go/bin/detect", marked_detect }, { "go/bin/compile", listing_compile },
        { "static/bin/detect", marked_detect }, { "static/bin/compile", listing_compile },
    };
    struct output o = { .text = STRBUF_INIT };
    _cleanup_error_ struct berth_error *err = NULL;
    struct build_result res = { 0 };
    char *saved = fx->bpdir;
    int r;

    if (sh("mkdir -p '%s/node/bin' '%s/python/bin' '%s/go/bin' '%s/static/bin' '%s' '%s' '%s' '%s' && "
           "touch '%s/want-bash' '%s/.x.dot' '%s/want-sh' '%s/want-go' '%s/want-static' '%s/.x.dot' "
           "'%s/want-static' '%s/.x.dot' && chmod -R a+rX '%s' '%s' '%s' '%s'",
           bpdir, bpdir, bpdir, bpdir, src_bash, src_sh, src_marked, src_static, src_bash, src_bash,
           src_sh, src_marked, src_marked, src_marked, src_static, src_static, src_bash, src_sh,
           src_marked, src_static)) {
        ok(0, "prepare the detecting buildpacks");
        return;
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
        _cleanup_free_ char *path = xasprintf("%s/%s", bpdir, files[i].path);

        if (write_file_atomic(path, files[i].text, strlen(files[i].text), 0755, NULL) < 0 ||
            chmod(path, 0755) < 0) {
            ok(0, "write %s", files[i].path);
            return;
        }
    }
    fx->bpdir = bpdir;
    r = build(fx, src_bash, NULL, &o, &res, &err);
    ok(r == 0 && has_line(&o, "-----> Bash sourced app detected"),
       "a built-in's bash detect is sourced, with a fresh shell's glob options (%s)",
       berth_error_msg(&err));
    ok(r == 0 && !strcmp(json_get_str(res.process_types, "web") ?: "", "bash-sourced /app"),
       "a built-in's bash release is sourced too, given BUILD_DIR: web is '%s'",
       r == 0 ? json_get_str(res.process_types, "web") ?: "" : "");
    build_result_release(&res);
    strbuf_reset(&o.text);
    berth_error_release(&err);
    r = build(fx, src_sh, NULL, &o, &res, &err);
    ok(r == 0 && has_line(&o, "-----> Sh detect app detected"),
       "a sourced detect's exit 1 ends only itself, and a sh detect still runs (%s)",
       berth_error_msg(&err));
    ok(r == 0 && !strcmp(json_get_str(res.process_types, "web") ?: "", "sh /app"),
       "a built-in's sh release runs as a program: web is '%s'",
       r == 0 ? json_get_str(res.process_types, "web") ?: "" : "");
    build_result_release(&res);
    strbuf_reset(&o.text);
    berth_error_release(&err);
    r = build(fx, src_marked, NULL, &o, &res, &err);
    ok(r == 0 && has_line(&o, "-----> Marked go inshell app detected") && has_line(&o, "copied: go"),
       "a marked detect is read by the step's own shell, with fresh glob options; go and static both "
       "passed, and go, kept, alone is in /buildpacks (%s)", berth_error_msg(&err));
    build_result_release(&res);
    strbuf_reset(&o.text);
    berth_error_release(&err);
    r = build(fx, src_static, NULL, &o, &res, &err);
    ok(r == 0 && has_line(&o, "-----> Marked static inshell app detected") && has_line(&o, "copied: static"),
       "a marked detect's return 1 ends only itself: the next one still runs (%s)", berth_error_msg(&err));
    fx->bpdir = saved;
    build_result_release(&res);
    strbuf_release(&o.text);
}

/*
 * A buildpack of the test's own, as the built-in "static" of a buildpacks
 * dir <tmp>/bp-<name>, detecting any app: bin/compile is `compile`.
 */
static char *edge_buildpack(struct fixture *fx, const char *name, const char *detect, const char *compile)
{
    char *dir = xasprintf("%s/bp-%s", fx->tmp, name);
    _cleanup_free_ char *detect_text = xasprintf("#!/bin/bash\n%s\necho Edge\n", detect);
    _cleanup_free_ char *compile_text = xasprintf("#!/bin/bash\n%s\n", compile);
    _cleanup_free_ char *detect_path = xasprintf("%s/static/bin/detect", dir);
    _cleanup_free_ char *compile_path = xasprintf("%s/static/bin/compile", dir);

    if (sh("mkdir -p '%s/static/bin'", dir) ||
        write_file_atomic(detect_path, detect_text, strlen(detect_text), 0755, NULL) < 0 ||
        write_file_atomic(compile_path, compile_text, strlen(compile_text), 0755, NULL) < 0 ||
        sh("chmod -R a+rX '%s'", dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* Builds src with the edge buildpack `name` under `budget`; the time it took in *ret_ms. */
static int edge_build(struct fixture *fx, const char *name, const char *detect, const char *compile,
                      const char *src, const struct build_budget *budget, struct output *o,
                      struct build_result *res, long long *ret_ms, struct berth_error **err)
{
    _cleanup_free_ char *dir = edge_buildpack(fx, name, detect, compile);
    char *saved = fx->bpdir;
    long long start = now_ms();
    int r;

    if (!dir)
        return berth_error_plain(err, EIO, "cannot write the buildpack '%s'", name);
    fx->bpdir = dir;
    r = build_with(fx, src, NULL, budget, o, res, err);
    fx->bpdir = saved;
    if (ret_ms)
        *ret_ms = now_ms() - start;
    return r;
}

/*
 * The budget's edges: a step that floods its output still meets the
 * build's deadline; a time limit past INT_MAX milliseconds is a long one,
 * not an expired one; what bin/detect and bin/compile write outside /app
 * and /cache (their buildpack's copy, /berth/out) counts against the disk
 * allowance, even when the step ends before the watch measures; and a
 * Procfile only the build user may read is read after the seal.
 */
static void test_budget_edges(struct fixture *fx)
{
    _cleanup_free_ char *src = xasprintf("%s/src-edge", fx->tmp);
    static const char procfile[] = "echo 'web: ./x' >\"$1/Procfile\"";
    struct build_result res = { 0 };
    long long ms = 0;
    int r;

    if (sh("mkdir -p '%s' && echo hi >'%s/README' && chmod -R a+rX '%s'", src, src, src)) {
        ok(0, "prepare the source of the budget tests");
        return;
    }
    {
        _cleanup_error_ struct berth_error *err = NULL;
        struct output o = { .quiet = true, .text = STRBUF_INIT };
        const struct build_budget b = { .timeout_s = 3 };

        r = edge_build(fx, "flood", "", "exec timeout 40 yes flood", src, &b, &o, &res, &ms, &err);
        ok(r == -ETIMEDOUT && strstr(berth_error_msg(&err), "time limit of 3 seconds") && ms < 20000,
           "a compile flooding its output stops at the build's time limit (%lld ms, %lu lines: %s)", ms,
           o.lines, berth_error_msg(&err));
        build_result_release(&res);
        strbuf_release(&o.text);
    }
    {
        _cleanup_error_ struct berth_error *err = NULL;
        struct output o = { .text = STRBUF_INIT };
        const struct build_budget b = { .timeout_s = 600 * 3600 };

        r = edge_build(fx, "long", "", procfile, src, &b, &o, &res, NULL, &err);
        ok(r == 0, "a build with a 600-hour time limit runs (%s)", berth_error_msg(&err));
        build_result_release(&res);
        strbuf_release(&o.text);
    }
    {
        _cleanup_error_ struct berth_error *err = NULL;
        struct output o = { .text = STRBUF_INIT };

        r = edge_build(fx, "private", "",
                       "umask 077; echo 'web: ./private' >\"$1/Procfile.new\" && mv \"$1/Procfile.new\" "
                       "\"$1/Procfile\" && chmod 0700 \"$1\"", src, NULL, &o, &res, NULL, &err);
        ok(r == 0 && res.process_types &&
           strcmp(json_get_str(res.process_types, "web") ?: "", "./private") == 0,
           "a Procfile only the build user could read gives the process types (%s)",
           berth_error_msg(&err));
        build_result_release(&res);
        strbuf_release(&o.text);
    }
    static const char *const spills[][3] = {
        { "spill-compile", "", "for i in 1 2 3 4 5 6; do head -c 4M /dev/zero >/berth/out/spill$i || exit 1; done" },
        { "spill-detect", "for i in 1 2 3 4 5 6; do head -c 4M /dev/zero >/berth/out/spill$i; done", "true" },
    };
    for (size_t i = 0; i < sizeof(spills) / sizeof(*spills); i++) {
        _cleanup_error_ struct berth_error *err = NULL;
        _cleanup_free_ char *compile = xasprintf("%s && %s", spills[i][2], procfile);
        struct output o = { .text = STRBUF_INIT };
        const struct build_budget b = { .disk_bytes = 8 << 20 };

        r = edge_build(fx, spills[i][0], spills[i][1], compile, src, &b, &o, &res, NULL, &err);
        ok(r == -EDQUOT && strstr(berth_error_msg(&err), "disk allowance of 8 MiB"),
           "%s: 24 MiB written outside /app and /cache go over an 8 MiB disk allowance (%s)",
           spills[i][0], berth_error_msg(&err));
        build_result_release(&res);
        strbuf_release(&o.text);
    }
    {
        _cleanup_error_ struct berth_error *err = NULL;
        _cleanup_free_ char *compile = xasprintf("if touch \"$(dirname \"$0\")/../x\" 2>/dev/null; then "
                                                 "echo bp-writable; else echo bp-read-only; fi && %s", procfile);
        struct output o = { .text = STRBUF_INIT };

        r = edge_build(fx, "bp-read-only", "", compile, src, NULL, &o, &res, NULL, &err);
        ok(r == 0 && has_line(&o, "bp-read-only"),
           "the one built-in autodetection kept compiles from its source, read-only (%s)",
           berth_error_msg(&err));
        build_result_release(&res);
        strbuf_release(&o.text);
    }
}

int main(int argc, char **argv)
{
    _cleanup_error_ struct berth_error *err = NULL;
    const char *bpdir = getenv("BUILDPACKS_DIR");
    const char *examples = getenv("EXAMPLES_DIR");
    struct passwd *pw;
    struct fixture fx = { 0 };
    char tmpl[] = "/tmp/berth-test-build-XXXXXX";

    (void)argc;
    if (!bpdir || !examples)
        return skip_all("BUILDPACKS_DIR and EXAMPLES_DIR must be set (run it with meson test)");
    if (geteuid() == 0)
        return reexec_as_berth(argv);
    pw = getpwuid(geteuid());
    if (!pw || !subid_range("/etc/subuid", pw->pw_name, &fx.uid_base, &fx.id_count) ||
        !subid_range("/etc/subgid", pw->pw_name, &fx.gid_base, &fx.id_count))
        return skip_all("this user has no 65536 subordinate ids in /etc/subuid and /etc/subgid");
    if (runner_spawner_start(&fx.r, &err) < 0)
        return skip_all(berth_error_msg(&err));

    /*
     * Builds run in a cgroup with memory and pids limits when berth's
     * cgroups are delegated (`berth setup`); without them, in none.
     */
    _cleanup_free_ char *cgroup = xasprintf("test-build-%d", (int)getpid());
    if (runner_cgroup_check(&err) == 0) {
        fx.cgroup = cgroup;
    } else {
        printf("# builds run without a cgroup: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }

    fx.tmp = mkdtemp(tmpl);
    if (!fx.tmp) {
        runner_free(fx.r);
        return skip_all("mkdtemp failed");
    }
    fx.stack = xasprintf("%s/stack", fx.tmp);
    fx.layers = xasprintf("%s/layers", fx.tmp);
    fx.cache = xasprintf("%s/cache", fx.tmp);
    fx.bpdir = xstrdup(bpdir);
    /* Containers see these through binds and O_PATH fds opened as berth; 0755 lets them read. */
    (void)chmod(fx.tmp, 0755);
    if (mkdir(fx.layers, 0755) < 0 || mkdir(fx.cache, 0700) < 0 ||
        runner_stack_prepare(fx.stack, &err) < 0) {
        ok(0, "prepare the stack, layers and cache (%s)", berth_error_msg(&err));
    } else {
        test_static(&fx, examples);
        test_many_entries(&fx, examples);
        test_failures(&fx, examples);
        test_streaming(&fx);
        test_builtin_detects(&fx);
        test_budget_edges(&fx);
    }

    berth_error_release(&err);
    ok(runner_remove_tree(fx.r, fx.tmp, fx.uid_base, fx.gid_base, fx.id_count, &err) == 0,
       "the test tree is removed (%s)", berth_error_msg(&err));
    runner_free(fx.r);
    free(fx.stack);
    free(fx.layers);
    free(fx.cache);
    free(fx.bpdir);
    return tap_done();
}
