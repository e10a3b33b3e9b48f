/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/container-cmd: `berth container run` (see container-cmd.h). It
 * runs one container laid out as an app's with runner_run_once(), straight
 * from this process (no spawner: nothing here has threads), in the user
 * namespace the runner keeps for the tenant's ids between runs, which
 * spares each start the setuid newuidmap and newgidmap (runner.h,
 * RUNNER_ONCE_KEEP_USERNS): start-up time is what tests, benchmarks and
 * `berth doctor` wait on. ROOTFS_OR_SLUG_DIR is the topmost
 * lower layer over the host stack (a slug holds app/, so an empty
 * directory gives the bare stack with an empty /app), the command runs as
 * the app user (1000) in /app with the app's PATH and HOME, under berth's
 * init, in a cgroup of its own below the tenant's.
 *
 * Where things live: the home is $BERTH_HOME or ~/.local/share/berth (as
 * for `berth serve`); the stack is the daemon's (layers/stacks/host). Each
 * container's overlay upper is a tmpfs of its own, mounted in its own
 * mount namespace over containers/mnt, a directory every run shares and
 * none writes to (so no run makes or removes a directory on the home's
 * disk: on ext4 mounted with discard, that rmdir alone waited up to 0.9 ms
 * for the device); with --net, over containers/run/<id>, which first gets
 * the container's resolv.conf and is removed at its end. The cgroup is
 * removed at the end too: with --net before berth exits, without it by a
 * detached child of berth's once the container's init is gone, a moment
 * after berth exited with the command's status (RUNNER_ONCE_DETACH_CLEANUP:
 * the init's teardown is then off the command's time). Tenants of
 * `container run` are named freely (default "default") and get
 * subordinate id slices from the top of the operator's
 * range down, recorded in containers/tenants, while `berth serve` hands its
 * tenants slices from the bottom up: the two meet only on a host whose
 * range is full, and then share a slice.
 *
 * Signals: SIGINT, SIGTERM or SIGHUP to berth (even one it was started
 * with ignored, as a shell does for background jobs) sends SIGTERM to every
 * process in the container and SIGKILL CONTAINER_GRACE_MS later; berth then
 * exits with the command's status. SIGKILL to berth takes the container
 * down with it (the runner's parent-death signals), leaving an empty
 * cgroup behind (and, with --net, its containers/run/<id>).
 */
#include "control/container-cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/dnsname.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/user.h"
#include "common/xalloc.h"
#include "control/subid.h"
#include "runner/runner.h"

/* Ids per tenant, as `berth serve` slices them (TENANT_ID_SLICE in model.h). */
#define CONTAINER_ID_SLICE 65536UL
#define CONTAINER_APP_UID 1000
#define CONTAINER_GRACE_MS 10000
#define EXIT_USAGE 2
#define EXIT_SETUP 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127

static const char usage_text[] =
    "usage: berth container run [--tenant T] [--memory M] [--pids N] [--cpus C] [--net]\n"
    "           [--hostname H] [-e K=V]... [--volume SRC:DST[:ro]]... ROOTFS_OR_SLUG_DIR -- CMD [ARG...]\n";

struct run_opts {
    const char *tenant;
    const char *hostname;
    const char *dir;
    struct runner_limits limits;
    bool network;
    char **env;                 /* K=V, n_env of them */
    size_t n_env;
    struct runner_mount *mounts;
    size_t n_mounts;
    char **cmd;                 /* NULL-terminated */
};

static void opts_release(struct run_opts *o)
{
    for (size_t i = 0; i < o->n_mounts; i++) {
        free((char *)o->mounts[i].source);
        free((char *)o->mounts[i].target);
    }
    free(o->mounts);
    free(o->env);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("berth container run: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage_text, stderr);
    return -EINVAL;
}

/* "64M", "1G", "1048576": bytes, binary suffixes K M G T; at least 1 MiB. */
static int parse_memory(const char *s, uint64_t *ret)
{
    static const char units[] = "KMGT";
    char *end;
    unsigned long long v;
    const char *u;

    errno = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    if (*end) {
        u = strchr(units, *end & ~0x20);
        if (!u || end[1] != '\0')
            return -EINVAL;
        for (ptrdiff_t i = 0; i <= u - units; i++) {
            if (v > ULLONG_MAX / 1024)
                return -EINVAL;
            v *= 1024;
        }
    }
    if (v < (1ULL << 20))
        return -EINVAL;
    *ret = v;
    return 0;
}

static int parse_pids(const char *s, uint64_t *ret)
{
    char *end;
    unsigned long v;

    errno = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < 1 || v > 4194304)
        return -EINVAL;
    *ret = v;
    return 0;
}

/* CPUs as a decimal ("0.5", "2"), in thousandths within the runner's range. */
static int parse_cpus(const char *s, uint64_t *ret)
{
    char *end;
    double v;

    errno = 0;
    if ((*s < '0' || *s > '9') && *s != '.')
        return -EINVAL;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -EINVAL;
    /* isfinite() above, and the range check before the cast: no libm needed. */
    v = v * 1000 + 0.5;
    if (v < RUNNER_CPU_QUOTA_MIN || v >= RUNNER_CPU_QUOTA_MAX + 1)
        return -EINVAL;
    *ret = (uint64_t)v;
    return 0;
}

/*
 * A host name as RFC 1123 has it, within the kernel's 64 bytes: dot-separated
 * labels (common/dnsname.h). The kernel takes any bytes, but a name with '/'
 * or spaces breaks every program that puts it in a path, a URL or a log
 * line. NULL when fine, else what is wrong.
 */
static const char *hostname_problem(const char *s)
{
    const char *why;

    if (!*s)
        return "it is empty";
    if (strlen(s) > 64)
        return "it is longer than 64 characters";
    for (;;) {
        size_t len = strcspn(s, ".");

        if ((why = dnsname_label_problem(s, len)))
            return why;
        if (!s[len])
            return NULL;
        s += len + 1;
    }
}

/*
 * SRC:DST[:ro], both absolute; SRC must exist. SRC is resolved here, before
 * any container code runs: the runner refuses a mount source that passes
 * through a symbolic link (runner.h), and the links in the operator's own
 * path are the operator's choice.
 */
static int parse_volume(const char *s, struct run_opts *o)
{
    _cleanup_free_ char *copy = xstrdup(s), *src = NULL;
    char *dst = strchr(copy, ':'), *mode;
    bool ro = false;

    if (!dst)
        return usage_error("--volume '%s': want SRC:DST[:ro]", s);
    *dst++ = '\0';
    mode = strchr(dst, ':');
    if (mode) {
        *mode++ = '\0';
        if (strcmp(mode, "ro") != 0 && strcmp(mode, "rw") != 0)
            return usage_error("--volume '%s': the mode after DST is ro or rw", s);
        ro = strcmp(mode, "ro") == 0;
    }
    if (copy[0] != '/' || dst[0] != '/' || dst[1] == '\0')
        return usage_error("--volume '%s': SRC and DST must be absolute paths, DST not '/'", s);
    if (!(src = realpath(copy, NULL)) && errno == ENOENT)
        return usage_error("--volume '%s': SRC does not exist", s);
    if (!src)
        return usage_error("--volume '%s': resolving SRC: %s", s, strerror(errno));
    o->mounts = xrealloc(o->mounts, (o->n_mounts + 1) * sizeof(*o->mounts));
    o->mounts[o->n_mounts++] = (struct runner_mount){
        .source = TAKE_PTR(src), .target = xstrdup(dst), .writable = !ro,
    };
    return 0;
}

static bool valid_tenant(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > 32 || t[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '-'))
            return false;
    return true;
}

/* One option of parse_opts(); c is getopt's answer. */
static int parse_one(int c, const char *arg, struct run_opts *o)
{
    const char *why;

    switch (c) {
    case 't':
        if (!valid_tenant(arg))
            return usage_error("--tenant '%s': want 1-32 of a-z, 0-9 and '-', not starting with '-'", arg);
        o->tenant = arg;
        return 0;
    case 'm':
        if (parse_memory(arg, &o->limits.memory_bytes) < 0)
            return usage_error("--memory '%s': want bytes with an optional K, M, G or T, at least 1M", arg);
        return 0;
    case 'p':
        if (parse_pids(arg, &o->limits.pids_max) < 0)
            return usage_error("--pids '%s': want a whole number from 1 to 4194304", arg);
        return 0;
    case 'c':
        if (parse_cpus(arg, &o->limits.cpu_quota_millis) < 0)
            return usage_error("--cpus '%s': want a number of CPUs from 0.01 to 1024", arg);
        return 0;
    case 'n':
        o->network = true;
        return 0;
    case 'H':
        if ((why = hostname_problem(arg)))
            return usage_error("--hostname '%s': %s (want a host name: 1 to 64 characters, labels between dots)",
                               arg, why);
        o->hostname = arg;
        return 0;
    case 'e':
        if (!strchr(arg, '=') || arg[0] == '=')
            return usage_error("-e '%s': want NAME=VALUE", arg);
        o->env = xrealloc(o->env, (o->n_env + 1) * sizeof(*o->env));
        o->env[o->n_env++] = (char *)arg;
        return 0;
    case 'v':
        return parse_volume(arg, o);
    default:
        return usage_error("%s", "unknown option");
    }
}

/* 1: --help; 0: parsed; -EINVAL: bad usage, already said. */
static int parse_opts(int argc, char **argv, struct run_opts *o)
{
    static const struct option longopts[] = {
        { "tenant", required_argument, NULL, 't' }, { "memory", required_argument, NULL, 'm' },
        { "pids", required_argument, NULL, 'p' },   { "cpus", required_argument, NULL, 'c' },
        { "net", no_argument, NULL, 'n' },          { "hostname", required_argument, NULL, 'H' },
        { "env", required_argument, NULL, 'e' },    { "volume", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    struct stat st;
    int c, r;

    optind = 1;
    opterr = 0;
    /* "+": stop at the directory, so the command's own options stay its own. */
    while ((c = getopt_long(argc, argv, "+e:", longopts, NULL)) != -1) {
        if (c == 'h')
            return 1;
        if (c == '?' || c == ':')
            return usage_error("bad option '%s'", argv[optind - 1]);
        if ((r = parse_one(c, optarg, o)) < 0)
            return r;
    }
    if (optind + 2 > argc || strcmp(argv[optind + 1], "--") != 0 || optind + 2 == argc)
        return usage_error("%s", "want ROOTFS_OR_SLUG_DIR -- CMD [ARG...]");
    o->dir = argv[optind];
    o->cmd = argv + optind + 2;
    if (o->dir[0] == '\0' || stat(o->dir, &st) < 0)
        return usage_error("'%s': no such directory", o->dir);
    if (!S_ISDIR(st.st_mode))
        return usage_error("'%s' is not a directory", o->dir);
    return 0;
}

static char *berth_home(void)
{
    const char *env = getenv("BERTH_HOME");
    const char *home = getenv("HOME");
    struct passwd *pw;

    if (env && *env == '/')
        return xstrdup(env);
    if ((!home || *home != '/') && (pw = getpwuid(getuid())))
        home = pw->pw_dir;
    return xasprintf("%s/.local/share/berth", home && *home == '/' ? home : "/");
}

/*
 * The slice recorded for `tenant` in the registry (one "name slice" line
 * each), or the highest one not recorded, appended; under an flock, so
 * concurrent runs agree.
 */
static int registry_slice(const char *path, const char *tenant, unsigned long n_slices,
                          unsigned long *ret, struct berth_error **err)
{
    _cleanup_fclose_ FILE *f = NULL;
    _cleanup_free_ bool *used = xcalloc(n_slices ? n_slices : 1, sizeof(bool));
    char name[64];
    unsigned long slice;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0 || !(f = fdopen(fd, "r+"))) {
        if (fd >= 0)
            (void)close(fd);
        return berth_error_make(err, errno, "open '%s'", path);
    }
    if (flock(fileno(f), LOCK_EX) < 0)
        return berth_error_make(err, errno, "lock '%s'", path);
    while (fscanf(f, "%63s %lu", name, &slice) == 2) {
        if (strcmp(name, tenant) == 0) {
            *ret = slice;
            return 0;
        }
        if (slice < n_slices)
            used[slice] = true;
    }
    for (slice = n_slices; slice-- > 0;) {
        if (used[slice])
            continue;
        if (fseek(f, 0, SEEK_END) < 0 || fprintf(f, "%s %lu\n", tenant, slice) < 0 || fflush(f) != 0)
            return berth_error_make(err, errno, "write '%s'", path);
        *ret = slice;
        return 0;
    }
    return berth_error_plain(err, ENOSPC, "no free subordinate id slice for tenant '%s' (%lu slices, "
                             "all taken in '%s')", tenant, n_slices, path);
}

/* The tenant's first subordinate uid and gid. */
static int tenant_ids(const char *home, const char *tenant, unsigned long *ret_uid,
                      unsigned long *ret_gid, struct berth_error **err)
{
    char *name = user_name_of(getuid());
    _cleanup_free_ char *user = name ? name : xstrdup("");
    _cleanup_free_ char *dir = xasprintf("%s/containers", home);
    _cleanup_free_ char *reg = xasprintf("%s/containers/tenants", home);
    unsigned long nu = subid_count_slices(SUBUID_FILE, user, getuid(), CONTAINER_ID_SLICE);
    unsigned long ng = subid_count_slices(SUBGID_FILE, user, getuid(), CONTAINER_ID_SLICE);
    unsigned long slice = 0;
    int r;

    if (nu == 0 || ng == 0)
        return berth_error_plain(err, ENOENT, "user '%s' has no subordinate id range of %lu ids in %s and %s: "
                                 "run 'berth setup --user %s' as root", user, CONTAINER_ID_SLICE,
                                 SUBUID_FILE, SUBGID_FILE, user);
    if ((r = mkdir_p(dir, 0700, err)) < 0 ||
        (r = registry_slice(reg, tenant, nu < ng ? nu : ng, &slice, err)) < 0 ||
        (r = subid_slice(SUBUID_FILE, user, getuid(), slice, CONTAINER_ID_SLICE, ret_uid, err)) < 0)
        return r;
    return subid_slice(SUBGID_FILE, user, getuid(), slice, CONTAINER_ID_SLICE, ret_gid, err);
}

/* The app's environment (PATH, HOME), then -e's, a later one of a name replacing the earlier. */
static char **make_envp(const struct run_opts *o)
{
    char **envp = xcalloc(o->n_env + 3, sizeof(char *));
    size_t n = 0;

    envp[n++] = (char *)"PATH=/app/bin:/usr/local/bin:/usr/bin:/bin";
    envp[n++] = (char *)"HOME=/app";
    for (size_t i = 0; i < o->n_env; i++) {
        size_t klen = (size_t)(strchr(o->env[i], '=') - o->env[i]) + 1, j;

        for (j = 0; j < n && strncmp(envp[j], o->env[i], klen) != 0; j++)
            ;
        envp[j] = o->env[i];
        if (j == n)
            n++;
    }
    envp[n] = NULL;
    return envp;
}

/* An fd for the container's stdio slot `fd` of berth: a dup, or /dev/null when berth's is closed. */
static int stdio_fd(int fd)
{
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);

    if (d < 0)
        d = open("/dev/null", (fd == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
    return d;
}

/* A wait status as a shell reports it. */
static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return EXIT_SETUP;
}

/*
 * Whether other users may not enter `dir` (no o+x). The container's ids
 * are subordinate ids, not the caller's, so to them the caller's own
 * directory is another's. (Its parents do not count: the container's
 * mounts name the directory by an fd opened before, runner/mounts.c.)
 */
static bool closed_to_others(const char *dir)
{
    struct stat st;

    return stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH);
}

/* The message and exit code of a spawn that failed. */
static int spawn_failed(const struct run_opts *o, struct berth_error **err)
{
    int code = berth_error_code(err);
    bool exec = strstr(berth_error_msg(err), "execve '") != NULL;

    fprintf(stderr, "berth container run: %s\n", berth_error_msg(err));
    /* A `mktemp -d` directory, say: the mount of the root fails inside, with a bare EACCES. */
    if (code == EACCES && closed_to_others(o->dir))
        fprintf(stderr, "berth container run: the container cannot enter '%s': its ids are "
                "subordinate ids, not yours, and it is closed to other users (chmod o+x)\n",
                o->dir);
    if (exec && (code == ENOENT || code == ENOTDIR)) {
        fprintf(stderr, "berth container run: '%s': command not found in the container\n", o->cmd[0]);
        return EXIT_NOTFOUND;
    }
    return exec ? EXIT_NOEXEC : EXIT_SETUP;
}

struct run_ctx {
    struct runner_spec spec;
    char id[17];
    char *state_dir, *cgroup, *stack_dir;
    bool state_dir_shared; /* containers/mnt: never removed (runner.h, upper_in_memory) */
    int fds[3];
};

static void ctx_release(struct run_ctx *x)
{
    /* runner_run_once() removes it; when the run never started, it is still empty and ours. */
    if (x->state_dir && !x->state_dir_shared && rmdir(x->state_dir) < 0 && errno != ENOENT)
        fprintf(stderr, "berth container run: removing '%s': %s\n", x->state_dir, strerror(errno));
    for (int i = 0; i < 3; i++)
        closep(&x->fds[i]);
    free(x->state_dir);
    free(x->cgroup);
    free(x->stack_dir);
}

/*
 * Everything but the run: ids, stack, state dir, cgroup path, stdio. The
 * state dir is the shared mount point, or with --net a directory of the
 * run's own (see the top of the file). The
 * cgroups are checked by the run itself: runner_run_once() finds berth's
 * delegated subtree or fails naming `berth setup`, and creates the cgroup
 * or says why it could not (a separate runner_cgroup_check() cost another
 * mkdir and rmdir per hierarchy at every start).
 */
static int prepare(const struct run_opts *o, struct run_ctx *x, struct berth_error **err)
{
    _cleanup_free_ char *home = berth_home();
    _cleanup_free_ char *run_dir = xasprintf("%s/containers/run", home);
    const char *tenant = o->tenant ? o->tenant : "default";
    int r;

    if (geteuid() == 0)
        return berth_error_plain(err, EPERM, "run it as the berth user (see 'berth setup --user NAME'), not as root");
    if ((r = tenant_ids(home, tenant, &x->spec.uid_base, &x->spec.gid_base, err)) < 0 ||
        (r = random_hex(x->id, 8, err)) < 0)
        return r;
    x->stack_dir = xasprintf("%s/layers/stacks/host", home);
    if (!runner_stack_made(x->stack_dir) && (r = runner_stack_prepare(x->stack_dir, err)) < 0)
        return r;
    if (!o->network) {
        x->state_dir = xasprintf("%s/containers/mnt", home);
        x->state_dir_shared = true;
        if ((r = mkdir_p(x->state_dir, 0700, err)) < 0)
            return r;
    } else {
        if ((r = mkdir_p(run_dir, 0700, err)) < 0)
            return r;
        x->state_dir = xasprintf("%s/%s", run_dir, x->id);
        if (mkdir(x->state_dir, 0700) < 0) {
            r = berth_error_make(err, errno, "mkdir '%s'", x->state_dir);
            free(TAKE_PTR(x->state_dir));
            return r;
        }
    }
    x->cgroup = xasprintf("containers/%s/%s", tenant, x->id);
    for (int i = 0; i < 3; i++)
        if ((x->fds[i] = stdio_fd(i)) < 0)
            return berth_error_make(err, errno, "open '/dev/null'");
    return 0;
}

static int run(const struct run_opts *o)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct run_ctx x = { .fds = { -1, -1, -1 } };
    _cleanup_free_ char **envp = make_envp(o);
    const char *lowers[] = { o->dir, NULL };
    _cleanup_free_ char *dir = realpath(o->dir, NULL);
    sigset_t set;
    int status, code, r;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /*
     * Before anything starts: a ^C on the way stops the container once it
     * runs, not lost. An ignored signal never reaches the runner's signalfd,
     * and a shell starts background jobs with SIGINT ignored: like docker's
     * client, berth takes the three back (blocked, their default action
     * never runs).
     */
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 || signal(SIGINT, SIG_DFL) == SIG_ERR ||
        signal(SIGTERM, SIG_DFL) == SIG_ERR || signal(SIGHUP, SIG_DFL) == SIG_ERR) {
        fprintf(stderr, "berth container run: sigprocmask: %s\n", strerror(errno));
        return EXIT_SETUP;
    }
    lowers[0] = dir ? dir : o->dir;
    if (prepare(o, &x, &err) < 0) {
        fprintf(stderr, "berth container run: %s\n", berth_error_msg(&err));
        ctx_release(&x);
        return EXIT_SETUP;
    }
    x.spec = (struct runner_spec){
        .name = x.id, .hostname = o->hostname,
        .uid_base = x.spec.uid_base, .gid_base = x.spec.gid_base, .id_count = CONTAINER_ID_SLICE,
        .lower_dirs = lowers, .stack_dir = x.stack_dir, .state_dir = x.state_dir,
        .mounts = o->mounts, .n_mounts = o->n_mounts,
        .argv = (const char *const *)o->cmd, .envp = (const char *const *)envp, .cwd = "/app",
        .uid = CONTAINER_APP_UID, .gid = CONTAINER_APP_UID,
        .stdin_fd = x.fds[0], .stdout_fd = x.fds[1], .stderr_fd = x.fds[2],
        .cgroup = x.cgroup, .limits = o->limits, .network = o->network,
    };
    status = -1;
    r = runner_run_once(&x.spec, RUNNER_ONCE_KEEP_USERNS | RUNNER_ONCE_UPPER_IN_MEMORY | RUNNER_ONCE_DETACH_CLEANUP,
                        CONTAINER_GRACE_MS, &status, &err);
    if (status == -1) {
        /* It never ran: the setup failed, or the command could not be executed. */
        code = r < 0 ? spawn_failed(o, &err) : EXIT_SETUP;
    } else {
        code = exit_code(status);
        if (r < 0)
            fprintf(stderr, "berth container run: %s\n", berth_error_msg(&err));
    }
    ctx_release(&x);
    return code;
}

int container_cmd_main(int argc, char **argv)
{
    struct run_opts o = { 0 };
    int r;

    if (argc < 2 || (strcmp(argv[1], "run") != 0)) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            fputs(usage_text, stdout);
            return 0;
        }
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    r = parse_opts(argc - 1, argv + 1, &o);
    if (r == 0) {
        r = run(&o);
    } else if (r == 1) {
        fputs(usage_text, stdout);
        r = 0;
    } else {
        r = EXIT_USAGE;
    }
    opts_release(&o);
    return r;
}
