/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The runner integration test's shared fixtures and helpers (harness.h):
 * running a script in a container to completion and collecting its output,
 * exit status and usage, and small /proc and clock helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/tests/harness.h"
#include "common/banned.h"

char tmpdir[] = "/tmp/berth-test-runner-XXXXXX";
char *stack_dir, *lower_dir, *self_exe;
unsigned long uid_base, gid_base;

bool must_work(void)
{
    const char *v = getenv("BERTH_MUST_WORK");

    return v && *v && strcmp(v, "0") != 0;
}

void run_release(struct run *r)
{
    strbuf_release(&r->out);
    free(r->err);
}

struct runner_spec base_spec(const char *state, const char *const *argv, const char *const *lowers)
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

char *new_state(const char *name)
{
    char *p = xasprintf("%s/%s", tmpdir, name);

    if (mkdir(p, 0755) < 0 && errno != EEXIST)
        fprintf(stderr, "# mkdir %s: %s\n", p, strerror(errno));
    return p;
}

/* Runs the spec to completion; keeps the state dir for inspection. */
void run_sh_spec(struct runner *rn, struct runner_spec *spec, struct run *res)
{
    struct runner_container *c = NULL;
    struct berth_error *err = NULL;
    int p[2];
    char buf[4096];
    ssize_t n;

    strbuf_init(&res->out, 0);
    res->status = -1;
    res->err = NULL;
    res->usage = (struct runner_usage){ 0 };
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
    if (runner_container_usage(c, &res->usage, &err) < 0) {
        fprintf(stderr, "# usage: %s\n", berth_error_msg(&err));
        berth_error_release(&err);
    }
    runner_container_free(c);
}

struct runner_container *spawn_mounted(struct runner *rn, const char *name,
                                       const char *const *argv, const struct runner_mount *m,
                                       uint16_t port)
{
    _cleanup_free_ char *state = new_state(name);
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);
    struct runner_container *c = NULL;
    struct berth_error *err = NULL;

    spec.name = name;
    spec.mounts = m;
    spec.n_mounts = m ? 1 : 0;
    spec.port = port;
    spec.stdout_fd = STDERR_FILENO;
    if (runner_spawn(rn, &spec, &c, &err) < 0) {
        t_ok(false, "spawn '%s': %s", name, berth_error_msg(&err));
        berth_error_release(&err);
        return NULL;
    }
    return c;
}

void run_sh(struct runner *rn, const char *name, unsigned uid, const char *script, struct run *res)
{
    _cleanup_free_ char *state = new_state(name);
    const char *argv[] = { "/bin/busybox", "sh", "-c", script, NULL };
    const char *lowers[] = { lower_dir, NULL };
    struct runner_spec spec = base_spec(state, argv, lowers);

    spec.uid = spec.gid = uid;
    run_sh_spec(rn, &spec, res);
}

bool exited_with(const struct run *r, int code)
{
    return r->spawn_r == 0 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == code;
}

void check_output(struct runner *rn, const char *name, unsigned uid, const char *script,
                  const char *want, const char *what)
{
    struct run r;

    run_sh(rn, name, uid, script, &r);
    t_ok(exited_with(&r, 0) && !strcmp(r.out.buf, want), "%s", what);
    if (strcmp(r.out.buf, want))
        fprintf(stderr, "# got '%s', want '%s'\n", r.out.buf, want);
    run_release(&r);
}

/*
 * The init itself is non-dumpable and never execs (its mm stays tied to the
 * host's user namespace), so not even berth may read its /proc/<pid>/ns; the
 * app's we may, as the owner of the container's user namespace. This finds
 * such children (the app of an init, the pasta of the spawner) by /proc scan.
 * `comm` matches the process name or argv[0]: pasta re-executes itself as
 * passt.avx2 (the name /proc shows) but keeps argv[0] "pasta".
 */
pid_t child_of(pid_t parent, const char *comm)
{
    _cleanup_closedir_ DIR *d = opendir("/proc");
    struct dirent *e;

    while (d && (e = readdir(d))) {
        _cleanup_free_ char *p = xasprintf("/proc/%s/status", e->d_name);
        _cleanup_fclose_ FILE *f = NULL;
        char line[256], name[64] = "", argv0[64] = "";
        pid_t ppid = -1;

        if (e->d_name[0] < '0' || e->d_name[0] > '9' || !(f = fopen(p, "re")))
            continue;
        while (fgets(line, sizeof(line), f)) {
            if (!strncmp(line, "Name:", 5))
                (void)sscanf(line + 5, "%63s", name);
            else if (!strncmp(line, "PPid:", 5))
                ppid = atoi(line + 5);
        }
        if (ppid != parent)
            continue;
        if (comm) {
            _cleanup_free_ char *cp = xasprintf("/proc/%s/cmdline", e->d_name);
            _cleanup_fclose_ FILE *cf = fopen(cp, "re");

            if (cf && !fgets(argv0, sizeof(argv0), cf))
                argv0[0] = '\0';
        }
        if (!comm || !strcmp(name, comm) || !strcmp(argv0, comm))
            return atoi(e->d_name);
    }
    return -1;
}

pid_t container_app(const struct runner_container *c)
{
    for (int i = 0; i < 200; i++) {
        pid_t app = child_of(runner_container_pid(c), NULL);

        if (app > 0)
            return app;
        usleep(5 * 1000);
    }
    return 0;
}

bool ns_link(pid_t pid, const char *ns, char *buf, size_t size)
{
    char p[64];
    ssize_t n;

    if (pid > 0)
        (void)snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid, ns);
    else
        (void)snprintf(p, sizeof(p), "/proc/self/ns/%s", ns);
    n = readlink(p, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0;
}

double ms_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}
