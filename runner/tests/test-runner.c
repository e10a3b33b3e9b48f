/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Integration test of the runner core: real rootless containers, run as the
 * unprivileged `berth` user (as root it re-executes itself as `berth`),
 * with busybox from the host /usr. It checks what runner.h promises and the
 * isolation properties of reference/ISOLATION.md §1 that a shell can show:
 * exit status, output, id maps, the init as PID 1, hostname, pid namespace,
 * uid, no capabilities, no_new_privs, seccomp, read-only /usr, the overlay's
 * upper and lower layers, binds, the port agent against busybox httpd, the
 * network namespace from the host's side, stop, and tree removal.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "runner/runner.h"
#include "common/banned.h"

static char tmpdir[] = "/tmp/berth-test-runner-XXXXXX";
static char *stack_dir, *lower_dir;
static unsigned long uid_base, gid_base;

static int skip_all(const char *why)
{
    if (getenv("BERTH_MUST_WORK")) {
        printf("not ok 1 - %s (BERTH_MUST_WORK is set)\n1..1\n", why);
        return 1;
    }
    printf("1..0 # SKIP %s\n", why);
    return 0;
}

/* The first range of `name` in an /etc/sub?id file holding at least 65536 ids. */
static int subid_base(const char *file, const char *name, unsigned long *ret)
{
    _cleanup_fclose_ FILE *f = fopen(file, "re");
    char line[256];

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL, *user = strtok_r(line, ":\n", &save);
        char *base = strtok_r(NULL, ":\n", &save), *count = strtok_r(NULL, ":\n", &save);

        if (user && base && count && !strcmp(user, name) && strtoul(count, NULL, 10) >= 65536) {
            *ret = strtoul(base, NULL, 10);
            return 0;
        }
    }
    return -ENOENT;
}

struct run {
    struct strbuf out;
    int status;
    int spawn_r;
    char *err;
};

static void run_release(struct run *r)
{
    strbuf_release(&r->out);
    free(r->err);
}

static struct runner_spec base_spec(const char *state, const char *const *argv,
                                    const char *const *lowers)
{
    static const char *const envp[] = { "PATH=/usr/bin:/bin", "HOME=/app", NULL };
    struct runner_spec s = {
        .name = "test", .hostname = "berth-test",
        .uid_base = uid_base, .gid_base = gid_base, .id_count = 65536,
        .lower_dirs = lowers, .stack_dir = stack_dir, .state_dir = state,
        .argv = argv, .envp = envp, .cwd = "/", .uid = 1000, .gid = 1000,
        .stdout_fd = -1, .stderr_fd = STDERR_FILENO,
    };
    return s;
}

static char *new_state(const char *name)
{
    char *p = xasprintf("%s/%s", tmpdir, name);

    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        fprintf(stderr, "# mkdir %s: %s\n", p, strerror(errno));
    return p;
}

/* Runs `busybox sh -c script` to completion; keeps the state dir for inspection. */
static void run_sh_spec(struct runner *rn, struct runner_spec *spec, struct run *res)
{
    struct runner_container *c = NULL;
    struct berth_error *err = NULL;
    int p[2];
    char buf[4096];
    ssize_t n;

    strbuf_init(&res->out, 0);
    res->status = -1;
    res->err = NULL;
    if (pipe2(p, O_CLOEXEC) < 0)
        abort();
    spec->stdout_fd = p[1];
    res->spawn_r = runner_spawn(rn, spec, &c, &err);
    (void)close(p[1]);
    if (res->spawn_r < 0) {
        res->err = xstrdup(berth_error_msg(&err));
        fprintf(stderr, "# spawn: %s\n", res->err);
        berth_error_release(&err);
        (void)close(p[0]);
        return;
    }
    while ((n = read(p[0], buf, sizeof(buf))) > 0)
        strbuf_add(&res->out, buf, (size_t)n);
    (void)close(p[0]);
    if (runner_wait(c, 20000, &res->status, &err) < 0) {
        fprintf(stderr, "# wait: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }
    if (runner_stop(c, 1000, &err) < 0) {
        fprintf(stderr, "# stop: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }
    runner_container_free(c);
}

static void run_sh(struct runner *rn, const char *name, unsigned uid, const char *script,
                   struct run *res)
{
    _cleanup_free_ char *state = new_state(name);
    const char *argv[] = { "/bin/busybox", "sh", "-c", script, NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);

    spec.uid = spec.gid = uid;
    run_sh_spec(rn, &spec, res);
}

static bool exited_with(const struct run *r, int code)
{
    return r->spawn_r == 0 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == code;
}

static void check_output(struct runner *rn, const char *name, unsigned uid, const char *script,
                         const char *want, const char *what)
{
    struct run r;

    run_sh(rn, name, uid, script, &r);
    ok(exited_with(&r, 0) && !strcmp(r.out.buf, want), "%s", what);
    if (strcmp(r.out.buf, want))
        fprintf(stderr, "# got '%s', want '%s'\n", r.out.buf, want);
    run_release(&r);
}

static bool is_dir(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_basics(struct runner *rn)
{
    struct run r;
    _cleanup_free_ char *want_map = xasprintf("0 %lu 65536\n", uid_base);
    _cleanup_free_ char *want_gmap = xasprintf("0 %lu 65536\n", gid_base);
    _cleanup_free_ char *in_lower = NULL, *in_stack = NULL;

    run_sh(rn, "exit", 1000, "exit 7", &r);
    ok(exited_with(&r, 7), "exit status 7 propagates");
    run_release(&r);

    check_output(rn, "echo", 1000, "echo hello", "hello\n", "stdout reaches stdout_fd");
    check_output(rn, "uidmap", 1000, "read a b c < /proc/self/uid_map; echo $a $b $c", want_map,
                 "uid_map inside is '0 <base> 65536' (berth's uid unmapped)");
    check_output(rn, "gidmap", 1000, "read a b c < /proc/self/gid_map; echo $a $b $c", want_gmap,
                 "gid_map inside is '0 <gid base> 65536'");
    check_output(rn, "init", 1000, "echo $PPID; cat /proc/1/comm", "1\nberth-init\n",
                 "the shell's parent is PID 1, berth's init");
    check_output(rn, "zombies", 1000,
                 "busybox sh -c 'busybox sleep 0.1 & exit 0'; busybox sleep 0.5;"
                 "cat /proc/[0-9]*/stat | grep -c ') Z ' || true",
                 "0\n", "an orphan's exit is reaped by the init (no zombies)");
    check_output(rn, "fds", 1000, "ls /proc/self/fd | tr '\\n' ' '", "0 1 2 3 ",
                 "the app inherits only stdin, stdout and stderr");
    check_output(rn, "ptrace", 0,
                 "cat /proc/1/environ >/dev/null 2>&1 && echo open || echo closed; "
                 "readlink /proc/1/exe >/dev/null 2>&1 && echo open || echo closed",
                 "closed\nclosed\n", "even container root cannot look into the init");
    {
        struct strbuf big = STRBUF_INIT;
        _cleanup_free_ char *state = new_state("bigenv");
        const char *a[] = { "/bin/busybox", "sh", "-c", "echo ${#BIG}", NULL };
        const char *lowers[] = { lower_dir, NULL };
        const char *envp[] = { "PATH=/usr/bin", NULL, NULL };
        struct runner_spec spec = base_spec(state, a, lowers);

        strbuf_addstr(&big, "BIG=");
        for (int i = 0; i < 100000; i++)
            strbuf_addch(&big, 'x');
        envp[1] = big.buf;
        spec.envp = envp;
        run_sh_spec(rn, &spec, &r);
        ok(exited_with(&r, 0) && !strcmp(r.out.buf, "100000\n"), "a 100 KB environment arrives whole");
        run_release(&r);
        strbuf_release(&big);
    }
    check_output(rn, "hostname", 1000, "hostname", "berth-test\n", "hostname is the spec's");
    check_output(rn, "pids", 1000,
                 "for p in /proc/[0-9]*; do n=${p#/proc/}; [ $n -gt 10 ] && echo $n; done; echo end",
                 "end\n", "/proc shows only the container's few pids");
    check_output(rn, "ids", 1000, "id -u; id -g; id -G", "1000\n1000\n1000\n",
                 "the app runs as the requested uid/gid with no supplementary groups");
    check_output(rn, "caps", 1000,
                 "grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|CapAmb|Seccomp):' /proc/self/status",
                 "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
                 "CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n"
                 "NoNewPrivs:\t1\nSeccomp:\t2\n",
                 "no capabilities, NoNewPrivs 1, seccomp filter on");
    check_output(rn, "initcaps", 1000, "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/1/status",
                 "CapEff:\t0000000000000020\nCapBnd:\t0000000000000020\nNoNewPrivs:\t1\n",
                 "the running init keeps only CAP_KILL");
    check_output(rn, "caps0", 0, "grep -E '^(CapEff|CapBnd):' /proc/self/status; id -u",
                 "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n0\n",
                 "container root as app also has no capabilities");
    check_output(rn, "usr-ro", 0, "touch /usr/x 2>/dev/null && echo writable || echo refused",
                 "refused\n", "writing to /usr fails (read-only bind)");
    check_output(rn, "app", 1000, "cat /app/index.html", "hello from the slug\n",
                 "the lower layer's app/index.html is /app/index.html");
    check_output(rn, "passwd", 1000, "cut -d: -f1 /etc/passwd | tr '\\n' ' '",
                 "root app nobody ", "/etc/passwd is the stack's, not the host's");
    check_output(rn, "dev", 1000, "ls /dev | tr '\\n' ' '; echo x > /dev/null && echo null-ok",
                 "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero null-ok\n",
                 "/dev holds just the small set");
    check_output(rn, "masks", 0,
                 "awk '$5==\"/proc/sys\"{print substr($6,1,2)}' /proc/self/mountinfo;"
                 "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo w || echo ro;"
                 "ls /sys/firmware | wc -l; wc -c < /proc/keys; wc -c < /proc/timer_list",
                 "ro\nro\n0\n0\n0\n", "read-only /proc paths and masked /sys/firmware");
    check_output(rn, "net", 1000, "ls /sys/class/net | tr '\\n' ' '; cat /proc/net/tcp | wc -l",
                 "lo 1\n", "network namespace has only lo and no listeners");

    run_sh(rn, "upper", 0, "echo data > /newfile && mkdir /newdir && echo y > /newdir/f", &r);
    in_lower = xasprintf("%s/newfile", lower_dir);
    in_stack = xasprintf("%s/newfile", stack_dir);
    ok(exited_with(&r, 0), "container root writes to / (the upper's root is its own)");
    run_release(&r);
    {
        _cleanup_free_ char *p = xasprintf("%s/upper/upper/newfile", tmpdir);
        _cleanup_free_ char *d = xasprintf("%s/upper/upper/newdir", tmpdir);
        struct stat st;

        ok(access(p, F_OK) == 0 && is_dir(d) && access(in_lower, F_OK) < 0 &&
           access(in_stack, F_OK) < 0, "the writes landed in state_dir/upper, lower layers unchanged");
        ok(stat(d, &st) == 0 && st.st_uid == uid_base && st.st_gid == gid_base,
           "on the host, container root's files belong to the first subordinate id");
    }
}

static void test_mounts_and_errors(struct runner *rn)
{
    _cleanup_free_ char *vol = xasprintf("%s/vol", tmpdir);
    _cleanup_free_ char *volfile = xasprintf("%s/vol/v", tmpdir);
    _cleanup_free_ char *state = new_state("binds");
    const char *argv[] = { "/bin/busybox", "sh", "-c",
                           "cat /srv/vol/v; touch /srv/vol/y 2>/dev/null && echo w || echo ro", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct runner_mount m = { .source = vol, .target = "/srv/vol", .writable = false };
    struct berth_error *err = NULL;
    struct run r;

    (void)mkdir(vol, 0755);
    (void)write_file_atomic(volfile, "vol\n", 4, 0644, &err);
    berth_error_release(&err);
    spec.mounts = &m;
    spec.n_mounts = 1;
    spec.uid = spec.gid = 0;
    run_sh_spec(rn, &spec, &r);
    ok(exited_with(&r, 0) && !strcmp(r.out.buf, "vol\nro\n"),
       "a read-only bind mount is visible and refuses writes");
    run_release(&r);

    {
        _cleanup_free_ char *st2 = new_state("noexec");
        const char *bad_argv[] = { "/nonexistent/program", NULL };
        struct runner_spec s2 = base_spec(st2, bad_argv, lowers);

        run_sh_spec(rn, &s2, &r);
        ok(r.spawn_r == -ENOENT && r.err && strstr(r.err, "execve '/nonexistent/program'"),
           "an execve failure comes back from runner_spawn with its cause");
        run_release(&r);
    }
    {
        _cleanup_free_ char *st4 = new_state("badcwd");
        const char *a[] = { "/bin/busybox", "true", NULL };
        struct runner_spec s4 = base_spec(st4, a, lowers);

        s4.cwd = "/nonexistent";
        run_sh_spec(rn, &s4, &r);
        ok(r.spawn_r == -ENOENT && r.err && strstr(r.err, "chdir '/nonexistent'"),
           "a bad cwd is reported by runner_spawn (%d, %s; exit 0x%x)", r.spawn_r, r.err ? r.err : "-",
           (unsigned)r.status);
        run_release(&r);
    }
    {
        _cleanup_free_ char *st3 = new_state("badlower");
        const char *bad_lowers[] = { "/nonexistent/layer", NULL };
        const char *a[] = { "/bin/busybox", "true", NULL };
        struct runner_spec s3 = base_spec(st3, a, bad_lowers);

        run_sh_spec(rn, &s3, &r);
        ok(r.spawn_r < 0 && r.err && strstr(r.err, "'/nonexistent/layer'"),
           "a setup failure in the child is reported, naming what failed");
        run_release(&r);
    }
}

/* Start latency (ISOLATION.md §6): spawn -> exit of `true` -> stop, sequentially. */
static void test_latency(struct runner *rn)
{
    const char *a[] = { "/bin/busybox", "true", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct timespec t0, t1;
    int good = 0;
    double ms;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++) {
        _cleanup_free_ char *name = xasprintf("lat%d", i);
        _cleanup_free_ char *st = new_state(name);
        struct runner_spec spec = base_spec(st, a, lowers);
        struct run r;

        run_sh_spec(rn, &spec, &r);
        good += exited_with(&r, 0);
        run_release(&r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / 20;
    printf("# mean spawn -> exit -> stop of 'true': %.1f ms\n", ms);
    ok(good == 20 && ms < 250, "20 sequential containers run 'true' (%.1f ms each)", ms);
}

static bool ns_differs(pid_t pid, const char *ns)
{
    char a[PATH_MAX], b[PATH_MAX], pa[64], pb[64];
    ssize_t na, nb;

    (void)snprintf(pa, sizeof(pa), "/proc/%d/ns/%s", (int)pid, ns);
    (void)snprintf(pb, sizeof(pb), "/proc/self/ns/%s", ns);
    na = readlink(pa, a, sizeof(a) - 1);
    nb = readlink(pb, b, sizeof(b) - 1);
    if (na <= 0 || nb <= 0) {
        fprintf(stderr, "# readlink %s: %s\n", na <= 0 ? pa : pb, strerror(errno));
        return false;
    }
    a[na] = b[nb] = '\0';
    if (!strcmp(a, b))
        fprintf(stderr, "# %s namespace not new: %s\n", ns, a);
    return strcmp(a, b) != 0;
}

/*
 * The app's host pid: the child of the init. The init itself is non-dumpable
 * and never execs (its mm stays tied to the host's user namespace), so not
 * even berth may read its /proc/<pid>/ns; the app's we may, as the owner of
 * the container's user namespace.
 */
static pid_t child_of(pid_t parent)
{
    _cleanup_closedir_ DIR *d = opendir("/proc");
    struct dirent *e;

    while (d && (e = readdir(d))) {
        _cleanup_free_ char *p = xasprintf("/proc/%s/status", e->d_name);
        _cleanup_fclose_ FILE *f = NULL;
        char line[256];

        if (e->d_name[0] < '0' || e->d_name[0] > '9' || !(f = fopen(p, "re")))
            continue;
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, "PPid:", 5) && atoi(line + 5) == parent)
                return atoi(e->d_name);
    }
    return -1;
}

struct fetcher {
    struct runner_container *c;
    int good;
};

static bool fetch(struct runner_container *c)
{
    const char *req = "GET /index.html HTTP/1.0\r\n\r\n";
    struct strbuf resp = STRBUF_INIT;
    struct berth_error *err = NULL;
    char buf[1024];
    ssize_t n;
    bool good;
    int fd;

    if (runner_connect(c, &fd, &err) < 0) {
        fprintf(stderr, "# connect: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
        return false;
    }
    (void)write_all(fd, req, strlen(req));
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        strbuf_add(&resp, buf, (size_t)n);
    (void)close(fd);
    good = strstr(resp.buf, "200 OK") && strstr(resp.buf, "hello from the slug");
    strbuf_release(&resp);
    return good;
}

static void *fetch_many(void *arg)
{
    struct fetcher *f = arg;

    for (int i = 0; i < 25; i++)
        f->good += fetch(f->c);
    return NULL;
}

static void test_agent(struct runner *rn)
{
    uint16_t port = (uint16_t)(20000 + getpid() % 20000);
    _cleanup_free_ char *state = new_state("httpd");
    _cleanup_free_ char *addr = xasprintf("127.0.0.1:%u", port);
    const char *argv[] = { "/bin/busybox", "httpd", "-f", "-p", addr, "-h", "/app", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct runner_container *c = NULL;
    struct berth_error *err = NULL;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    struct strbuf resp = STRBUF_INIT;
    int fd = -1, r = -1, hostfd, status = -1;
    char buf[1024];
    ssize_t n;
    pid_t pid;

    spec.stdout_fd = STDERR_FILENO;
    spec.port = port;
    if (runner_spawn(rn, &spec, &c, &err) < 0) {
        ok(0, "spawn busybox httpd: %s", berth_error_msg(&err));
        berth_error_release(&err);
        return;
    }
    pid = runner_container_pid(c);
    for (int i = 0; i < 100; i++) {
        r = runner_connect(c, &fd, &err);
        if (r == 0)
            break;
        berth_error_release(&err);
        usleep(50 * 1000);
    }
    ok(r == 0, "runner_connect reaches httpd inside once it listens");
    if (r == 0) {
        const char *req = "GET /index.html HTTP/1.0\r\n\r\n";

        (void)write_all(fd, req, strlen(req));
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            strbuf_add(&resp, buf, (size_t)n);
        (void)close(fd);
    }
    ok(strstr(resp.buf, "200 OK") && strstr(resp.buf, "hello from the slug"),
       "the page comes back over the passed socket");
    strbuf_release(&resp);
    {
        struct fetcher f[4];
        pthread_t t[4];
        int good = 0;

        for (int i = 0; i < 4; i++) {
            f[i] = (struct fetcher){ .c = c };
            (void)pthread_create(&t[i], NULL, fetch_many, &f[i]);
        }
        for (int i = 0; i < 4; i++) {
            (void)pthread_join(t[i], NULL);
            good += f[i].good;
        }
        ok(good == 100, "4 threads x 25 concurrent runner_connect + GET all succeed (%d)", good);
    }

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    hostfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    r = connect(hostfd, (struct sockaddr *)&sa, sizeof(sa));
    ok(r < 0 && errno == ECONNREFUSED, "the host's 127.0.0.1:%u is refused (own netns)", port);
    (void)close(hostfd);
    {
        pid_t app = child_of(pid);

        ok(app > 0 && ns_differs(app, "user") && ns_differs(app, "pid") && ns_differs(app, "net") &&
           ns_differs(app, "mnt") && ns_differs(app, "uts") && ns_differs(app, "ipc") &&
           ns_differs(app, "cgroup"), "user, pid, net, mnt, uts, ipc, cgroup namespaces are new");
    }
    {
        _cleanup_free_ char *p = xasprintf("/proc/%d/ns/user", (int)pid);
        char b[64];

        ok(readlink(p, b, sizeof(b)) < 0 && errno == EACCES,
           "the non-dumpable init's /proc entries are closed even to berth");
    }
    ok(runner_wait(c, 100, &status, &err) == -ETIMEDOUT, "runner_wait times out while it runs");
    berth_error_release(&err);
    r = runner_stop(c, 2000, &err);
    ok(r == 0, "runner_stop: %s", r == 0 ? "ok" : berth_error_msg(&err));
    berth_error_release(&err);
    ok(kill(pid, 0) < 0 && errno == ESRCH, "the init's pid is gone after runner_stop");
    r = runner_wait(c, 1000, &status, &err);
    ok(r == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
       "the app ended by the forwarded SIGTERM (status %d)", status);
    berth_error_release(&err);
    ok(runner_connect(c, &fd, &err) < 0, "runner_connect fails on a stopped container");
    berth_error_release(&err);
    runner_container_free(c);
}

static void test_remove(struct runner *rn)
{
    _cleanup_free_ char *state = xasprintf("%s/upper", tmpdir);
    struct berth_error *err = NULL;
    int r;

    r = runner_remove_tree(rn, state, uid_base, gid_base, 65536, &err);
    ok(r == 0 && access(state, F_OK) < 0 && errno == ENOENT,
       "runner_remove_tree removes a state dir with subuid-owned files%s%s",
       r < 0 ? ": " : "", r < 0 ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    r = runner_remove_tree(rn, tmpdir, uid_base, gid_base, 65536, &err);
    ok(r == 0 && access(tmpdir, F_OK) < 0, "runner_remove_tree removes the whole test tree%s%s",
       r < 0 ? ": " : "", r < 0 ? berth_error_msg(&err) : "");
    berth_error_release(&err);
}

/* The path of a cgroup below this process's own, in the pids hierarchy (v1) or the unified one. */
static char *host_cgroup_dir(const char *rel)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
    char line[512];
    bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;

    while (f && fgets(line, sizeof(line), f)) {
        char *own = strchr(line, ':');

        if (!own || !(own = strchr(own + 1, ':')))
            continue;
        own[strcspn(own, "\n")] = '\0';
        if (v2 && !strncmp(line, "0::", 3))
            return xasprintf("/sys/fs/cgroup%s/berth/%s", strcmp(own + 1, "/") ? own + 1 : "", rel);
        if (!v2 && strstr(line, ":pids:"))
            return xasprintf("/sys/fs/cgroup/pids%s/berth/%s", strcmp(own + 1, "/") ? own + 1 : "", rel);
    }
    return NULL;
}

static void test_cgroup(struct runner *rn)
{
    _cleanup_free_ char *state = new_state("cgroup");
    _cleanup_free_ char *tenant = xasprintf("t%d", (int)getpid());
    _cleanup_free_ char *rel = xasprintf("%s/app/web.1", tenant);
    _cleanup_free_ char *dir = host_cgroup_dir(rel);
    _cleanup_free_ char *procs = dir ? xasprintf("%s/cgroup.procs", dir) : NULL;
    const char *argv[] = { "/bin/busybox", "sleep", "30", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct runner_container *c = NULL;
    struct berth_error *err = NULL;
    struct strbuf sb = STRBUF_INIT;
    char pid_s[24];

    if (runner_cgroup_check(&err) < 0) {
        if (getenv("BERTH_MUST_WORK"))
            ok(0, "cgroups are delegated: %s", berth_error_msg(&err));
        else
            skip("cgroups not delegated (run as root or `berth setup`): %s", berth_error_msg(&err));
        berth_error_release(&err);
        return;
    }
    spec.stdout_fd = STDERR_FILENO;
    spec.cgroup = rel;
    spec.limits.pids_max = 64;
    spec.limits.memory_bytes = 64u << 20;
    if (runner_spawn(rn, &spec, &c, &err) < 0) {
        ok(0, "spawn into cgroup '%s': %s", rel, berth_error_msg(&err));
        berth_error_release(&err);
        return;
    }
    (void)snprintf(pid_s, sizeof(pid_s), "%d\n", (int)runner_container_pid(c));
    ok(dir && read_file(procs, &sb, 65536, &err) == 0 && strstr(sb.buf, pid_s) == sb.buf,
       "the init runs in the container's cgroup '%s'", rel);
    berth_error_release(&err);
    strbuf_release(&sb);
    ok(runner_stop(c, 1000, &err) == 0, "stop the cgroup'ed container");
    berth_error_release(&err);
    ok(dir && access(dir, F_OK) < 0 && errno == ENOENT, "its cgroup is removed once it is gone");
    runner_container_free(c);
    {
        _cleanup_free_ char *rel2 = xasprintf("%s/app/web.2", tenant);
        _cleanup_free_ char *st2 = new_state("cgroup2");
        const char *a2[] = { "/bin/busybox", "sh", "-c", "grep -vc ':/$' /proc/self/cgroup || true", NULL };
        struct runner_spec s2 = base_spec(st2, a2, lowers);
        struct run r;

        s2.cgroup = rel2;
        s2.limits.pids_max = 16;
        run_sh_spec(rn, &s2, &r);
        ok(exited_with(&r, 0) && !strcmp(r.out.buf, "0\n"),
           "inside, every hierarchy in /proc/self/cgroup reads '/' (cgroupns after the move)");
        run_release(&r);
    }
    {
        /* The app reads its own limits, and only its own cgroup, read-only. */
        bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
        _cleanup_free_ char *rel3 = xasprintf("%s/app/web.3", tenant);
        _cleanup_free_ char *st3 = new_state("cgroup3");
        const char *a3[] = { "/bin/busybox", "sh", "-c", v2 ?
            "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max;"
            "(echo 1 > /sys/fs/cgroup/pids.max) 2>/dev/null && echo w || echo ro;"
            "find /sys/fs/cgroup -mindepth 1 -type d | wc -l" :
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max;"
            "(echo 1 > /sys/fs/cgroup/pids/pids.max) 2>/dev/null && echo w || echo ro;"
            "find /sys/fs/cgroup/memory /sys/fs/cgroup/pids -mindepth 1 -type d | wc -l", NULL };
        struct runner_spec s3 = base_spec(st3, a3, lowers);
        struct run r;

        s3.cgroup = rel3;
        s3.limits.pids_max = 16;
        s3.limits.memory_bytes = 64u << 20;
        run_sh_spec(rn, &s3, &r);
        ok(exited_with(&r, 0) && !strcmp(r.out.buf, "67108864\n16\nro\n0\n"),
           "inside, /sys/fs/cgroup shows the container's own limits, read-only, and no other cgroup (%s)",
           r.out.buf);
        run_release(&r);
    }
    if (dir) {
        /* The leaf is the runner's; the parents are the caller's, here the test's. */
        char *slash;

        while ((slash = strrchr(dir, '/')) && strstr(dir, tenant)) {
            *slash = '\0';
            (void)rmdir(dir);
        }
    }
}

/*
 * kill -9 of the daemon must take its containers down (PDEATHSIG on the
 * spawner, and on the init after its id change).
 */
static void test_daemon_death(void)
{
    _cleanup_free_ char *state = new_state("orphan");
    int p[2];
    pid_t daemon, init = 0;
    bool gone = false;

    if (pipe2(p, O_CLOEXEC) < 0)
        abort();
    daemon = fork();
    if (daemon == 0) {
        const char *argv[] = { "/bin/busybox", "sleep", "30", NULL };
        const char *lowers[] = { lower_dir, NULL };
        struct runner_spec spec = base_spec(state, argv, lowers);
        struct runner_container *c = NULL;
        struct runner *r2 = NULL;
        struct berth_error *err = NULL;
        pid_t pid = 0;

        spec.stdout_fd = STDERR_FILENO;
        if (runner_spawner_start(&r2, &err) == 0 && runner_spawn(r2, &spec, &c, &err) == 0)
            pid = runner_container_pid(c);
        (void)write_all(p[1], &pid, sizeof(pid));
        pause();
        _exit(0);
    }
    (void)close(p[1]);
    if (read(p[0], &init, sizeof(init)) != sizeof(init))
        init = 0;
    (void)close(p[0]);
    (void)kill(daemon, SIGKILL);
    (void)waitpid(daemon, NULL, 0);
    /*
     * The test is a subreaper (main), so the dead daemon's spawner and init
     * are re-parented to it and reaped here; gone means no such pid at all.
     */
    for (int i = 0; i < 60 && init > 0 && !gone; i++) {
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        gone = kill(init, 0) < 0 && errno == ESRCH;
        if (!gone)
            usleep(50 * 1000);
    }
    ok(init > 0 && gone, "kill -9 of the daemon takes its containers down");
}

static int become_berth(char **argv)
{
    struct passwd *pw = getpwnam("berth");

    struct berth_error *err = NULL;

    if (!pw)
        return skip_all("running as root and there is no 'berth' user");
    /* The one-time root step `berth setup` performs (idempotent). */
    if (runner_cgroup_delegate(pw->pw_uid, pw->pw_gid, &err) < 0) {
        printf("# cgroup delegation failed: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }
    if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        return skip_all("cannot switch to the 'berth' user");
    (void)setenv("HOME", pw->pw_dir, 1);
    (void)setenv("USER", "berth", 1);
    execv("/proc/self/exe", argv);
    return skip_all("cannot re-execute as 'berth'");
}

int main(int argc, char **argv)
{
    struct runner *rn = NULL;
    struct berth_error *err = NULL;
    struct passwd *pw;
    _cleanup_free_ char *index = NULL, *appdir = NULL;

    (void)argc;
    if (getuid() == 0)
        return become_berth(argv);
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    pw = getpwuid(getuid());
    if (!pw || subid_base("/etc/subuid", pw->pw_name, &uid_base) < 0 ||
        subid_base("/etc/subgid", pw->pw_name, &gid_base) < 0)
        return skip_all("no /etc/subuid and /etc/subgid range of 65536 for this user");
    if (access("/bin/busybox", X_OK) < 0)
        return skip_all("no /bin/busybox");
    if (runner_spawner_start(&rn, &err) < 0) {
        int r = skip_all(berth_error_msg(&err));

        berth_error_release(&err);
        return r;
    }
    if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755) < 0) {
        runner_free(rn);
        return skip_all("cannot create a temporary directory");
    }
    stack_dir = xasprintf("%s/stack", tmpdir);
    lower_dir = xasprintf("%s/lower", tmpdir);
    appdir = xasprintf("%s/app", lower_dir);
    index = xasprintf("%s/index.html", appdir);
    ok(runner_stack_prepare(stack_dir, &err) == 0 && runner_stack_prepare(stack_dir, &err) == 0,
       "runner_stack_prepare (twice: idempotent)%s", err ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    (void)mkdir_p(appdir, 0755, &err);
    (void)write_file_atomic(index, "hello from the slug\n", 20, 0644, &err);
    berth_error_release(&err);

    test_basics(rn);
    test_mounts_and_errors(rn);
    test_latency(rn);
    test_agent(rn);
    test_cgroup(rn);
    test_daemon_death();
    test_remove(rn);

    runner_free(rn);
    free(stack_dir);
    free(lower_dir);
    return tap_done();
}
