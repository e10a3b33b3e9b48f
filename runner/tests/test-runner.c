/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Integration test of the runner core: real rootless containers, run as the
 * unprivileged `berth` user (as root it first plays `berth setup`, then
 * re-executes itself as `berth`), with busybox from the host /usr. It checks
 * what runner.h promises and the isolation properties of
 * reference/ISOLATION.md §1 that a shell can show: exit status, output, id
 * maps, the init as PID 1, hostname, pid namespace, uid, no capabilities,
 * no_new_privs, seccomp, read-only /usr, the host /etc entries, the
 * overlay's upper and lower layers, binds, the file size limit, the port
 * agent against busybox httpd, the network namespace from the host's side,
 * cgroups (limits, cpu weight, the usage reported at reap), stop, and tree
 * removal. test-runner-net.c adds containers with network,
 * test-runner-tree.c the seal, usage and removal of trees,
 * test-runner-agent.c the port agent's channels and stocks; harness.c holds what they
 * share. This file has main() and the TAP counters.
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
#include <stdarg.h>
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
#include "runner/cgroup-internal.h"
#include "runner/runner.h"
#include "runner/tests/harness.h"
#include "common/banned.h"

void t_ok(bool cond, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* TAP takes one line per case: a captured output in the message must not break it. */
    for (char *p = buf; *p; p++)
        if (*p == '\n')
            *p = ' ';
    ok(cond, "%s", buf);
}

void t_skip(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    skip("%s", buf);
}

void t_skip_or_fail(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (must_work())
        ok(0, "%s (BERTH_MUST_WORK is set)", buf);
    else
        skip("%s", buf);
}

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

/*
 * A container with stdin_fd: `script` reads what the test writes into a
 * pipe, then end of file once the test closes its end (no copy of the
 * write end may stay in the spawner or the init, or the read never ends).
 */
static void run_with_stdin(struct runner *rn, const char *name, const char *script, const char *input,
                           struct run *res)
{
    _cleanup_free_ char *state = new_state(name);
    const char *argv[] = { "/bin/busybox", "sh", "-c", script, NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    int p[2];

    if (pipe2(p, O_CLOEXEC) < 0)
        abort();
    spec.stdin_fd = p[0];
    /* The input fits the pipe, so writing it all before the spawn cannot block. */
    if (write(p[1], input, strlen(input)) != (ssize_t)strlen(input))
        abort();
    (void)close(p[1]);
    run_sh_spec(rn, &spec, res);
    (void)close(p[0]);
}

static void test_stdin(struct runner *rn)
{
    struct run r;

    run_with_stdin(rn, "stdin", "tr a-z A-Z; echo end", "hello stdin\nline two\n", &r);
    ok(exited_with(&r, 0) && !strcmp(r.out.buf, "HELLO STDIN\nLINE TWO\nend\n"),
       "stdin_fd becomes the process's stdin, and its end of file arrives");
    if (strcmp(r.out.buf, "HELLO STDIN\nLINE TWO\nend\n"))
        fprintf(stderr, "# got '%s'\n", r.out.buf);
    run_release(&r);
    run_with_stdin(rn, "stdin-fds", "cat >/dev/null; ls /proc/self/fd | tr '\\n' ' '", "x", &r);
    ok(exited_with(&r, 0) && !strcmp(r.out.buf, "0 1 2 3 "),
       "with a stdin, the app still inherits only stdin, stdout and stderr ('%s')", r.out.buf);
    run_release(&r);
    /* base_spec() leaves stdin_fd 0, as any spec that does not name it. */
    check_output(rn, "stdin-null", 1000, "readlink /proc/self/fd/0; cat; echo end", "/dev/null\nend\n",
                 "without stdin_fd (0 or -1) stdin is /dev/null, never the daemon's own");
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

/*
 * A mount source where a tenant could have planted a symbolic link (a
 * build's <work>/slug/app, made by bin/detect): each of these is refused
 * before anything runs, with the message saying why, and the command
 * (which would print LEAK on seeing the host's root) never starts.
 */
static void test_mount_source_links(struct runner *rn)
{
    _cleanup_free_ char *slug = xasprintf("%s/slug", tmpdir);
    const char *const cases[][2] = {
        { "app", "a source that is a link to /" },
        { "up", "a source that is a relative link ('../..')" },
        { "mid/deep", "a source with a link in an intermediate component" },
    };
    const char *argv[] = { "/bin/busybox", "sh", "-c",
                           "[ -e /app/etc/passwd ] || [ -e /app/tmp ] && printf 'LEAK '; printf ran", NULL };
    const char *lowers[] = { lower_dir, NULL };
    _cleanup_close_ int dfd = -1;

    (void)mkdir(slug, 0755);
    dfd = open(slug, O_PATH | O_DIRECTORY | O_CLOEXEC);
    ok(dfd >= 0 && mkdirat(dfd, "deep", 0755) == 0 && symlinkat("/", dfd, "app") == 0 &&
       symlinkat("../..", dfd, "up") == 0 && symlinkat(".", dfd, "mid") == 0,
       "the links are planted under '%s'", slug);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        _cleanup_free_ char *state = new_state("link-source");
        _cleanup_free_ char *source = xasprintf("%s/%s", slug, cases[i][0]);
        struct runner_spec spec = base_spec(state, argv, lowers);
        struct runner_mount m = { .source = source, .target = "/app", .writable = true };
        struct run r;

        spec.mounts = &m;
        spec.n_mounts = 1;
        run_sh_spec(rn, &spec, &r);
        ok(r.spawn_r == -ELOOP && r.err && strstr(r.err, "is or passes through a symbolic link") &&
           !strstr(r.out.buf, "ran"), "%s is refused as a mount source (%d, %s; out '%s')",
           cases[i][1], r.spawn_r, r.err ? r.err : "-", r.out.buf);
        run_release(&r);
    }
}

/* One hidden mount of `source` at /srv/h (runner.h), running `script` as container root. */
static void run_hidden(struct runner *rn, const char *state_name, const char *source, bool writable,
                       const char *script, struct run *r)
{
    _cleanup_free_ char *state = new_state(state_name);
    const char *argv[] = { "/bin/busybox", "sh", "-c", script, NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct runner_mount m = { .source = source, .target = "/srv/h", .writable = writable, .hidden = true };

    spec.mounts = &m;
    spec.n_mounts = 1;
    spec.uid = spec.gid = 0;
    run_sh_spec(rn, &spec, r);
}

/* A directory of the test's with one file, old, in it; world-writable for container root. */
static char *hidden_source(const char *name)
{
    char *dir = xasprintf("%s/%s", tmpdir, name);
    _cleanup_free_ char *old = xasprintf("%s/old", dir);
    struct berth_error *err = NULL;

    (void)mkdir(dir, 0777);
    (void)chmod(dir, 0777);
    (void)write_file_atomic(old, "old\n", 4, 0644, &err);
    berth_error_release(&err);
    return dir;
}

static bool host_has(const char *dir, const char *name)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", dir, name);

    return access(p, F_OK) == 0;
}

/*
 * Where a writable hidden mount's overlay cannot be had, here because its
 * source (in /dev/shm, a tmpfs) is on another mount than state_dir, the
 * directory is bound as without it, and its path shows.
 */
static void test_hidden_fallback(struct runner *rn, const char *show)
{
    char fb[] = "/dev/shm/berth-test-hidsrc-XXXXXX";
    _cleanup_free_ char *script = xasprintf("echo new > /srv/h/new && cat /srv/h/new%s", show);
    _cleanup_free_ char *made = NULL;
    struct run r;

    if (!mkdtemp(fb) || chmod(fb, 0777) < 0) {
        skip("a hidden mount's fallback: no directory of our own in /dev/shm");
        return;
    }
    made = xasprintf("%s/new", fb);
    run_hidden(rn, "hidden-fallback", fb, true, script, &r);
    t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, "new\ntmpfs\n1\n") && host_has(fb, "new"),
         "with state_dir on another mount, a writable hidden mount is a plain bind ('%s'%s%s)",
         r.out.buf, r.err ? ", " : "", r.err ? r.err : "");
    run_release(&r);
    (void)unlink(made);
    (void)rmdir(fb);
}

/*
 * Hidden mounts (berth's own directories in a build): the container works
 * in them as in a bind, every change lands in the host directory, and the
 * mount table names none of it (a bind's line carries its source's path;
 * each source's name here is found nowhere else, and the script prints the
 * type of the mount at /srv/h and how many lines name a source).
 */
static void test_hidden_mounts(struct runner *rn)
{
    _cleanup_free_ char *rw = hidden_source("hidsrc-rw"), *ro = hidden_source("hidsrc-ro");
    const char *show = "; busybox awk '$5 == \"/srv/h\" {print $9}' /proc/self/mountinfo;"
                       " grep -c hidsrc /proc/self/mountinfo || :";
    _cleanup_free_ char *rw_script = xasprintf(
        "cat /srv/h/old && rm /srv/h/old && echo new > /srv/h/new && mkdir -p /srv/h/d/e &&"
        " mv /srv/h/d /srv/h/d2 && ln /srv/h/new /srv/h/link && echo $(ls /srv/h)%s", show);
    _cleanup_free_ char *ro_script = xasprintf(
        "cat /srv/h/old; touch /srv/h/x 2>/dev/null && echo writable || echo refused%s", show);
    _cleanup_free_ char *d2e = xasprintf("%s/d2/e", rw);
    struct stat st;
    struct run r;

    run_hidden(rn, "hidden-rw", rw, true, rw_script, &r);
    t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, "old\nd2 link new\noverlay\n0\n"),
         "a writable hidden mount works as a bind and its mount names no host path ('%s'%s%s)",
         r.out.buf, r.err ? ", " : "", r.err ? r.err : "");
    run_release(&r);
    ok(!host_has(rw, "old") && host_has(rw, "new") && host_has(rw, "link") && stat(d2e, &st) == 0 &&
       S_ISDIR(st.st_mode) && !host_has(rw, "d"),
       "every change made in it is in the host directory (old removed, new, link and d2/e there)");

    run_hidden(rn, "hidden-ro", ro, false, ro_script, &r);
    t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, "old\nrefused\noverlay\n0\n"),
         "a read-only hidden mount reads, refuses writes, and names no host path ('%s'%s%s)",
         r.out.buf, r.err ? ", " : "", r.err ? r.err : "");
    run_release(&r);
    ok(!host_has(ro, "x") && host_has(ro, "old"), "the read-only one's directory is untouched");

    test_hidden_fallback(rn, show);
}

/*
 * A read-only bind is read-only all the way down: /dev bound read-only
 * brings the host's /dev/shm (and /dev/pts) along, and every mount of the
 * tree shows "ro" in the container's mountinfo (fields 5 and 6).
 */
static void test_readonly_submounts(struct runner *rn)
{
    _cleanup_free_ char *state = new_state("ro-rec");
    const char *argv[] = { "/bin/busybox", "sh", "-c",
                           "busybox awk '$5 ~ \"^/hd\" {n++; if ($6 !~ /^ro/) printf \"%s \", $5}"
                           " END {printf \"%d mounts\", n}' /proc/self/mountinfo", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct runner_mount m = { .source = "/dev", .target = "/hd", .writable = false };
    struct stat dev, shm;
    struct run r;
    int n = 0;

    if (stat("/dev", &dev) < 0 || stat("/dev/shm", &shm) < 0 || dev.st_dev == shm.st_dev) {
        skip("read-only below the top of a bind: the host's /dev/shm is not a mount of its own");
        return;
    }
    spec.mounts = &m;
    spec.n_mounts = 1;
    run_sh_spec(rn, &spec, &r);
    /* "N mounts" alone: a writable one would come first, by its path. */
    ok(exited_with(&r, 0) && sscanf(r.out.buf, "%d mounts", &n) == 1 && n > 1,
       "a read-only bind is read-only below its top too "
       "(/dev/shm under /dev bound ro; writable mounts and count: '%s')", r.out.buf);
    run_release(&r);
}

/* The host's /etc/php entries, sorted, space-separated ("" without /etc/php). */
static char *host_php_listing(void)
{
    struct strbuf sb = STRBUF_INIT;
    struct dirent **list = NULL;
    int n = scandir("/etc/php", &list, NULL, alphasort);

    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.')
            strbuf_addf(&sb, "%s ", list[i]->d_name);
        free(list[i]);
    }
    free(list);
    return strbuf_detach(&sb, NULL);
}

/* Per-process limits, the host /etc entries, and what a container without network gets. */
static void test_limits(struct runner *rn)
{
    _cleanup_free_ char *php = host_php_listing();
    _cleanup_free_ char *want_php = xasprintf("%s\n", php);
    _cleanup_free_ char *state = new_state("fsize");
    const char *argv[] = { "/bin/busybox", "sh", "-c",
        "busybox dd if=/dev/zero of=/tmp/f bs=4096 count=512 2>/dev/null; echo $?;"
        "(trap '' XFSZ; busybox dd if=/dev/zero of=/tmp/g bs=4096 count=512 2>&1) |"
        " grep -c 'File too large'; wc -c < /tmp/f; wc -c < /tmp/g", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct run r;

    spec.limits.file_size_max = 1u << 20;
    run_sh_spec(rn, &spec, &r);
    t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, "153\n1\n1048576\n1048576\n"),
         "file_size_max 1 MiB: dd past it dies of SIGXFSZ (153), or gets EFBIG when it ignores "
         "the signal; both files stop at 1 MiB (%s)", r.out.buf);
    t_ok(r.usage.memory_peak_bytes == 0 && r.usage.oom_kills == 0,
         "a container without a cgroup reports zero usage");
    run_release(&r);
    check_output(rn, "php", 1000, "ls /etc/php | tr '\n' ' '; echo", want_php,
                 "/etc/php is the host's, read-only (or empty where the host has none)");
    check_output(rn, "nonet", 1000,
                 "ls /sys/class/net | tr '\n' ' '; wc -c < /etc/resolv.conf; ip route | wc -l",
                 "lo 0\n0\n", "network off: only lo, no routes, an empty resolv.conf");
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
    char a[PATH_MAX], b[PATH_MAX];

    if (!ns_link(pid, ns, a, sizeof(a)) || !ns_link(0, ns, b, sizeof(b))) {
        fprintf(stderr, "# readlink of the %s namespace of %s: %s\n", ns, a[0] ? "this process" : "the app",
                strerror(errno));
        return false;
    }
    if (!strcmp(a, b))
        fprintf(stderr, "# %s namespace not new: %s\n", ns, a);
    return strcmp(a, b) != 0;
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
        pid_t app = child_of(pid, NULL);

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

/* A container sleeping until stopped; *ret_app its app's pid once it runs (0 if it never showed). */
static struct runner_container *spawn_sleeper(struct runner *rn, const char *name, pid_t *ret_app)
{
    _cleanup_free_ char *state = new_state(name);
    const char *argv[] = { "/bin/busybox", "sleep", "60", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct runner_container *c = NULL;
    struct berth_error *err = NULL;

    *ret_app = 0;
    spec.stdout_fd = STDERR_FILENO;
    if (runner_spawn(rn, &spec, &c, &err) < 0) {
        fprintf(stderr, "# spawn %s: %s\n", name, berth_error_msg(&err));
        berth_error_release(&err);
        return NULL;
    }
    *ret_app = container_app(c);
    return c;
}

static void stop_sleeper(struct runner_container *c)
{
    struct berth_error *err = NULL;

    if (!c)
        return;
    (void)runner_stop(c, 1000, &err);
    berth_error_release(&err);
    runner_container_free(c);
}

/*
 * Containers without network of one id mapping share the spawner's kept
 * user namespace (userns-kept.h) and nothing else: two running side by
 * side have the same user namespace and each its own mount, pid, network,
 * ipc and uts one; the second's /proc shows none of the first's
 * processes, and its uid_map is the tenant's range.
 */
static void test_joined_userns(struct runner *rn)
{
    static const char *const own[] = { "mnt", "pid", "net", "ipc", "uts" };
    pid_t app_a = 0, app_b = 0;
    struct runner_container *a = spawn_sleeper(rn, "join-a", &app_a);
    struct runner_container *b = spawn_sleeper(rn, "join-b", &app_b);
    char la[128] = "", lb[128] = "";
    bool same_user, others_differ = true;
    _cleanup_free_ char *want_map = xasprintf("0 %lu 65536\n0\n", uid_base);

    same_user = app_a > 0 && app_b > 0 && ns_link(app_a, "user", la, sizeof(la)) &&
                ns_link(app_b, "user", lb, sizeof(lb)) && !strcmp(la, lb);
    ok(same_user, "two containers of one mapping, without network, share one user namespace (%s, %s)",
       app_a > 0 ? la : "?", app_b > 0 ? lb : "?");
    for (size_t i = 0; i < sizeof(own) / sizeof(*own); i++) {
        bool differ = app_a > 0 && app_b > 0 && ns_link(app_a, own[i], la, sizeof(la)) &&
                      ns_link(app_b, own[i], lb, sizeof(lb)) && strcmp(la, lb) != 0;

        if (!differ)
            fprintf(stderr, "# %s namespace shared: %s\n", own[i], la);
        others_differ &= differ;
    }
    ok(others_differ, "each has its own mount, pid, network, ipc and uts namespace");
    check_output(rn, "join-c", 1000,
                 "read a b c < /proc/self/uid_map; echo $a $b $c; cat /proc/[0-9]*/comm | grep -c sleep || true",
                 want_map,
                 "a third one, while they run, maps the tenant's range and sees none of their processes");
    stop_sleeper(a);
    stop_sleeper(b);
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

/* The path of a cgroup below this process's own, in the `ctrl` hierarchy (v1) or the unified one. */
static char *host_cgroup_dir(const char *ctrl, const char *rel)
{
    _cleanup_free_ char *subtree = cgroup_subtree_name(getuid());
    _cleanup_free_ char *want = xasprintf(":%s:", ctrl);
    _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
    char line[512];
    bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;

    while (f && fgets(line, sizeof(line), f)) {
        char *own = strchr(line, ':');

        if (!own || !(own = strchr(own + 1, ':')))
            continue;
        own[strcspn(own, "\n")] = '\0';
        if (v2 && !strncmp(line, "0::", 3))
            return xasprintf("/sys/fs/cgroup%s/%s/%s", strcmp(own + 1, "/") ? own + 1 : "", subtree, rel);
        if (!v2 && strstr(line, want))
            return xasprintf("/sys/fs/cgroup/%s%s/%s/%s", ctrl, strcmp(own + 1, "/") ? own + 1 : "",
                             subtree, rel);
    }
    return NULL;
}

/* One container in cgroup <tenant>/app/<leaf> running argv, to completion. */
static void run_in_cgroup(struct runner *rn, const char *tenant, const char *leaf,
                          const char *const *argv, const struct runner_limits *limits,
                          struct run *r)
{
    _cleanup_free_ char *rel = xasprintf("%s/app/%s", tenant, leaf);
    _cleanup_free_ char *state = new_state(leaf);
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);

    spec.cgroup = rel;
    spec.limits = *limits;
    run_sh_spec(rn, &spec, r);
}

/* cpu weight, and what a container's cgroup says it used once it is gone. */
static void test_cgroup_limits(struct runner *rn, const char *tenant)
{
    bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    const char *cat_cpu[] = { "/bin/busybox", "cat",
                              v2 ? "/sys/fs/cgroup/cpu.weight" : "/sys/fs/cgroup/cpu/cpu.shares", NULL };
    const char *hog[] = { "/bin/busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                          NULL };
    struct run r;

    run_in_cgroup(rn, tenant, "cpu", cat_cpu, &(struct runner_limits){ .cpu_weight = 50 }, &r);
    t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, v2 ? "50\n" : "512\n"),
         "cpu weight 50 is the container's %s (%s)", v2 ? "cpu.weight 50" : "cpu.shares 512",
         r.out.buf);
    run_release(&r);
    run_in_cgroup(rn, tenant, "cpu2", cat_cpu, &(struct runner_limits){ .cpu_weight = 10001 }, &r);
    {
        _cleanup_free_ char *rel = xasprintf("%s/app/cpu2", tenant);
        _cleanup_free_ char *leaf = host_cgroup_dir("cpu", rel);

        t_ok(r.spawn_r == -EINVAL && r.err && strstr(r.err, "cpu weight 10001") && leaf &&
             access(leaf, F_OK) < 0,
             "a cpu weight outside 1..10000 fails the spawn and leaves no cgroup (%s)",
             r.err ? r.err : "spawned");
    }
    run_release(&r);

    run_in_cgroup(rn, tenant, "peak", hog, &(struct runner_limits){ .memory_bytes = 256u << 20 }, &r);
    t_ok(exited_with(&r, 0) && r.usage.memory_peak_bytes >= (64u << 20) &&
         r.usage.memory_peak_bytes < (256u << 20) && r.usage.oom_kills == 0,
         "64 MiB under a 256 MiB limit: peak %llu bytes (>= 64 MiB), %llu OOM kills",
         (unsigned long long)r.usage.memory_peak_bytes, (unsigned long long)r.usage.oom_kills);
    run_release(&r);
    run_in_cgroup(rn, tenant, "oom", hog, &(struct runner_limits){ .memory_bytes = 32u << 20 }, &r);
    t_ok(r.spawn_r == 0 && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL &&
         r.usage.oom_kills >= 1,
         "64 MiB under a 32 MiB limit: killed, %llu OOM kills reported (status 0x%x)",
         (unsigned long long)r.usage.oom_kills, (unsigned)r.status);
    run_release(&r);
}

/* Waits up to two seconds for `dir` to go; true once it is gone. */
static bool gone_soon(const char *dir)
{
    for (int i = 0; i < 200; i++) {
        if (access(dir, F_OK) < 0 && errno == ENOENT)
            return true;
        usleep(10000);
    }
    return false;
}

/*
 * runner_release(): a container let go once its status was heard, its
 * teardown left to the spawner. Its usage is read then (an OOM kill
 * counted as at a reap); a container started into the same cgroup at once
 * is not harmed by the released one's cleanup and keeps its limits; a
 * released container's cgroup goes without another call; and one whose
 * status was not heard is not let go.
 */
static void test_release(struct runner *rn, const char *tenant)
{
    _cleanup_free_ char *rel = xasprintf("%s/app/release", tenant);
    _cleanup_free_ char *dir = host_cgroup_dir("pids", rel);
    _cleanup_free_ char *st1 = new_state("release1"), *st2 = new_state("release2");
    _cleanup_free_ char *st3 = new_state("release3");
    const char *hog[] = { "/bin/busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                          NULL };
    const char *after[] = { "/bin/busybox", "sh", "-c",
                            "sleep 0.3; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null ||"
                            " cat /sys/fs/cgroup/pids.max", NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec s1 = base_spec(st1, hog, lowers), s2 = base_spec(st2, after, lowers);
    struct runner_container *c = NULL;
    struct runner_usage u = { 0 };
    struct berth_error *err = NULL;
    struct run r;
    int status = -1, rr;

    s1.stdout_fd = STDERR_FILENO;
    s1.cgroup = rel;
    s1.limits.memory_bytes = 32u << 20;
    if (runner_spawn(rn, &s1, &c, &err) < 0) {
        ok(0, "spawn the memory hog to release: %s", berth_error_msg(&err));
        berth_error_release(&err);
        return;
    }
    rr = runner_release(c, &err);
    t_ok(rr == -EBUSY, "a container whose exit was not heard is not released (%s)",
         rr < 0 ? berth_error_msg(&err) : "released");
    berth_error_release(&err);
    rr = runner_wait(c, 20000, &status, &err);
    rr = rr == 0 ? runner_release(c, &err) : rr;
    rr = rr == 0 ? runner_container_usage(c, &u, &err) : rr;
    t_ok(rr == 0 && WIFSIGNALED(status) && u.oom_kills >= 1,
         "released once its exit was heard: 64 MiB under 32 MiB, %llu OOM kills read (%s)",
         (unsigned long long)u.oom_kills, rr < 0 ? berth_error_msg(&err) : "released");
    berth_error_release(&err);
    runner_container_free(c);
    /* At once into the same cgroup: the spawn waits for the released one's cleanup. */
    s2.cgroup = rel;
    s2.limits.pids_max = 16;
    run_sh_spec(rn, &s2, &r);
    t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, "16\n"),
         "a container started into a released one's cgroup runs to its end with its own limits "
         "(%s)", r.out.buf);
    run_release(&r);
    t_ok(dir && gone_soon(dir), "and the cgroup is removed after it");

    s1.argv = (const char *const[]){ "/bin/busybox", "true", NULL };
    s1.state_dir = st3;
    c = NULL;
    rr = runner_spawn(rn, &s1, &c, &err);
    rr = rr == 0 ? runner_wait(c, 20000, &status, &err) : rr;
    rr = rr == 0 ? runner_release(c, &err) : rr;
    runner_container_free(c);
    t_ok(rr == 0 && dir && gone_soon(dir),
         "a released container's cgroup goes without another call (%s)",
         rr < 0 ? berth_error_msg(&err) : "released");
    berth_error_release(&err);
}

static void test_cgroup(struct runner *rn)
{
    _cleanup_free_ char *state = new_state("cgroup");
    _cleanup_free_ char *tenant = xasprintf("t%d", (int)getpid());
    _cleanup_free_ char *rel = xasprintf("%s/app/web.1", tenant);
    _cleanup_free_ char *dir = host_cgroup_dir("pids", rel);
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
        t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, "67108864\n16\nro\n0\n"),
             "inside, /sys/fs/cgroup shows the container's own limits, read-only, and no other "
             "cgroup (%s)", r.out.buf);
        run_release(&r);
    }
    test_cgroup_limits(rn, tenant);
    test_release(rn, tenant);
}

/*
 * The leaves are the runner's; the parents t<pid>/app are the caller's, here
 * the test's, in every hierarchy.
 */
static void remove_test_cgroups(void)
{
    static const char *const hierarchies[] = { "pids", "memory", "cpu" };
    _cleanup_free_ char *tenant = xasprintf("t%d", (int)getpid());
    int left = 0;

    for (size_t i = 0; i < sizeof(hierarchies) / sizeof(*hierarchies); i++) {
        char *p = host_cgroup_dir(hierarchies[i], tenant);

        if (p) {
            _cleanup_free_ char *app = xasprintf("%s/app", p);

            (void)rmdir(app);
            if (rmdir(p) < 0 && errno != ENOENT) {
                fprintf(stderr, "# left behind: %s (%s)\n", p, strerror(errno));
                left++;
            }
        }
        free(p);
    }
    if (runner_cgroup_check(NULL) == 0)
        t_ok(left == 0, "every container cgroup the runner made is gone (%d left)", left);
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
    /* The one-time root steps `berth setup` performs (idempotent). */
    if (runner_cgroup_delegate(pw->pw_uid, pw->pw_gid, &err) < 0) {
        printf("# cgroup delegation failed: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }
    /* tests/serve-as-root.sh proves this step through `berth setup`. */
    if (runner_network_prepare(&err) < 0)
        printf("# network prepare failed: %s\n", berth_error_msg(&err));
    berth_error_release(&err);
    if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
        return skip_all("cannot switch to the 'berth' user");
    (void)setenv("HOME", pw->pw_dir, 1);
    (void)setenv("USER", "berth", 1);
    execv("/proc/self/exe", argv);
    return skip_all("cannot re-execute as 'berth'");
}

/*
 * runner_spawner_start() execs berth-spawner in the child it forks (client.c):
 * the spawner, this process's only child by that name, runs that program.
 */
static void test_spawner_program(void)
{
    _cleanup_free_ char *kids_path = xasprintf("/proc/self/task/%d/children", (int)getpid());
    _cleanup_strbuf_ struct strbuf kids = STRBUF_INIT;
    struct berth_error *err = NULL;
    char exe[PATH_MAX] = "";

    if (read_file(kids_path, &kids, 65536, &err) < 0)
        berth_error_release(&err);
    for (char *p = kids.buf, *end; p && *p; p = end) {
        long pid = strtol(p, &end, 10);
        _cleanup_free_ char *comm_path = xasprintf("/proc/%ld/comm", pid);
        _cleanup_free_ char *exe_path = xasprintf("/proc/%ld/exe", pid);
        _cleanup_strbuf_ struct strbuf comm = STRBUF_INIT;
        ssize_t n;

        if (end == p)
            break;
        if (read_file(comm_path, &comm, 64, &err) < 0 || strcmp(comm.buf, "berth-spawner\n") != 0) {
            berth_error_release(&err);
            continue;
        }
        if ((n = readlink(exe_path, exe, sizeof(exe) - 1)) > 0)
            exe[n] = '\0';
        break;
    }
    ok(strrchr(exe, '/') && !strcmp(strrchr(exe, '/'), "/berth-spawner"),
       "the spawner runs the berth-spawner program, not a fork of this one's image (%s)",
       exe[0] ? exe : "no spawner found");
}

/* Whether a file named like the stamp is among the stack's top entries. */
static bool stamp_in(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool found = false;

    while (d && (e = readdir(d)))
        found = found || strstr(e->d_name, ".made") != NULL;
    if (d)
        closedir(d);
    return found;
}

/*
 * The stamp `berth container run` trusts instead of preparing the stack at
 * every start (runner/stack.c): written by a full prepare, beside the stack
 * rather than in it, and no longer trusted once the stamp differs, an entry
 * of the stack's root or etc/ comes or goes, or the root's mode changes; a
 * prepare then repairs.
 */
static void test_stack_stamp(const char *parent)
{
    _cleanup_free_ char *dir = xasprintf("%s/stack-stamped", parent);
    _cleanup_free_ char *stamp = xasprintf("%s.made", dir);
    _cleanup_free_ char *run = xasprintf("%s/run", dir);
    _cleanup_free_ char *extra = xasprintf("%s/etc/extra", dir);
    struct berth_error *err = NULL;
    struct stat st;

    ok(!runner_stack_made(dir), "no stack: not made");
    ok(runner_stack_prepare(dir, &err) == 0 && runner_stack_made(dir) && stat(stamp, &st) == 0,
       "a prepared stack is made, its stamp beside it%s", err ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    ok(!stamp_in(dir), "the stamp is not in the stack (every container's lowest layer)");
    (void)write_file_atomic(stamp, "0 0:0 0.0 0.0\n", 14, 0644, &err);
    berth_error_release(&err);
    ok(!runner_stack_made(dir), "a stamp of another skeleton or stack is not trusted");
    ok(runner_stack_prepare(dir, &err) == 0 && runner_stack_made(dir),
       "... and a prepare stamps it again%s", err ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    ok(rmdir(run) == 0 && !runner_stack_made(dir),
       "a mount point removed from the stack: not made");
    ok(runner_stack_prepare(dir, &err) == 0 && runner_stack_made(dir) && stat(run, &st) == 0 &&
       S_ISDIR(st.st_mode), "... and a prepare puts it back%s", err ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    ok(write_file_atomic(extra, "x", 1, 0644, &err) == 0 && !runner_stack_made(dir),
       "an entry added to the stack's etc/: not made");
    berth_error_release(&err);
    (void)unlink(extra);
    ok(runner_stack_prepare(dir, &err) == 0 && runner_stack_made(dir) && chmod(dir, 0700) == 0 &&
       !runner_stack_made(dir),
       "the stack's root made unreadable to the container's uids: not made");
    ok(runner_stack_prepare(dir, &err) == 0 && runner_stack_made(dir) && stat(dir, &st) == 0 &&
       (st.st_mode & 07777) == 0755, "... and a prepare gives it back its mode%s",
       err ? berth_error_msg(&err) : "");
    berth_error_release(&err);
    ok(unlink(stamp) == 0 && !runner_stack_made(dir), "no stamp: not made");
}

int main(int argc, char **argv)
{
    struct runner *rn = NULL;
    struct berth_error *err = NULL;
    struct passwd *pw;
    _cleanup_free_ char *index = NULL, *appdir = NULL;

    /*
     * A container running this program as its helper (test-runner-tree.c).
     * _exit: in an ASan build, LeakSanitizer's at-exit check cannot work in
     * the container (and the container's environment has no ASAN_OPTIONS).
     */
    if (argc == 3 && !strcmp(argv[1], "--tree-helper"))
        _exit(tree_helper(argv[2]));
    if (argc == 4 && !strcmp(argv[1], "--listen-helper"))
        _exit(listen_helper(argv[2], argv[3]));
    if (getuid() == 0)
        return become_berth(argv);
    self_exe = realpath("/proc/self/exe", NULL);
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
    test_stack_stamp(tmpdir);
    test_spawner_program();
    (void)mkdir_p(appdir, 0755, &err);
    (void)write_file_atomic(index, "hello from the slug\n", 20, 0644, &err);
    berth_error_release(&err);

    test_basics(rn);
    test_stdin(rn);
    test_limits(rn);
    test_mounts_and_errors(rn);
    test_mount_source_links(rn);
    test_readonly_submounts(rn);
    test_hidden_mounts(rn);
    test_latency(rn);
    test_agent(rn);
    test_joined_userns(rn);
    test_agent_channels(rn);
    test_agent_stock(rn);
    test_exit_fds(rn);
    test_reaping(rn);
    test_cgroup(rn);
    test_network(rn);
    test_trees(rn);
    test_daemon_death();
    test_network_daemon_death();
    test_remove(rn);
    remove_test_cgroups();

    runner_free(rn);
    free(stack_dir);
    free(lower_dir);
    free(self_exe);
    return tap_done();
}
