/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tests/probe: the isolation probe, a static program that tests/isolation.sh
 * copies into a slug and runs inside containers with `berth container run`
 * (reference/ISOLATION.md §5, checks A1-A15). Each check prints one line,
 * "ok NAME" or "not ok NAME: what was seen", asserting raw errnos; the exit
 * status is 0 only when every check of the mode passed. The script turns
 * the lines into TAP.
 *
 * Modes (argv[1]):
 *   static               every check needing nothing from outside but the
 *                        environment: PROBE_FORBID (':'-separated host paths
 *                        nothing inside may name), PROBE_HOST_PID (a host
 *                        pid), PROBE_ABSTRACT (a host abstract socket name),
 *                        PROBE_HOSTNAME (the expected hostname)
 *   tiocsti              TIOCSTI on fd 0, which must be a terminal
 *   forkbomb N           forks until refused; "forked N errno E"
 *   memhog MB            touches MB MiB; "survived" if it lives
 *   sibling MB SECONDS   holds MB MiB for SECONDS, then says its OOM kills
 *   spin SECONDS         spins; checks the CPU quota throttled it
 *   reap                 orphans and zombies are reaped by the init
 *   sigterm              waits for SIGTERM; exits 0 when it came
 *   hold SECONDS         prints "ready" and sleeps (a target for the host)
 *   serve PORT NAME KEY  listens on 127.0.0.1:PORT and abstract NAME, makes
 *                        a SysV segment of KEY, says "shmid ID", holds 60 s
 *   cross PORT NAME KEY SHMID PID
 *                        from another tenant: none of those is reachable
 *   killall              kill(-1, SIGKILL): only its own container dies
 *   secret FILE / peek FILE
 *                        writes FILE mode 0600 / must fail to read it
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

__attribute__((format(printf, 3, 4)))
static void check(const char *name, bool ok, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        printf("ok %s\n", name);
        return;
    }
    failures++;
    printf("not ok %s: ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* errno of a raw call: 0 when it succeeded. */
static int err_of(long r)
{
    return r < 0 ? errno : 0;
}

static const char *ename(int e)
{
    static char buf[64];

    if (e == 0)
        return "success";
    snprintf(buf, sizeof(buf), "%s (%d)", strerror(e), e);
    return buf;
}

/* Expects exactly errno `want` from a call whose errno (0: success) is e. */
static void check_errno(const char *name, int e, int want)
{
    check(name, e == want, "got %s, want %s", ename(e), strerror(want));
}

static char *slurp(const char *path, ssize_t *ret_len)
{
    static char buf[1 << 16];
    ssize_t n, total = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return NULL;
    while ((n = read(fd, buf + total, sizeof(buf) - 1 - (size_t)total)) > 0)
        total += n;
    close(fd);
    buf[total] = '\0';
    if (ret_len)
        *ret_len = total;
    return buf;
}

static const char *status_field(const char *field)
{
    static char val[128];
    char *s = slurp("/proc/self/status", NULL), *p;
    size_t n;

    if (!s || !(p = strstr(s, field)))
        return "";
    p += strlen(field);
    while (*p == ' ' || *p == '\t')
        p++;
    n = strcspn(p, "\n");
    if (n >= sizeof(val))
        n = sizeof(val) - 1;
    memcpy(val, p, n);
    val[n] = '\0';
    return val;
}

/* ------------------------------------------------------------------ A1 A2 */

static void check_ids(void)
{
    char *m = slurp("/proc/self/uid_map", NULL);
    unsigned long in, out, count;
    struct stat st;

    check("A1 uid_map is one range of 65536 from container 0",
          m && sscanf(m, "%lu %lu %lu", &in, &out, &count) == 3 && in == 0 && count == 65536 &&
              !strchr(strchr(m, '\n') + 1, '\n'), "%s", m ? m : "unreadable");
    check("A1 the range is subordinate ids, not berth's own uid",
          m && sscanf(m, "%lu %lu %lu", &in, &out, &count) == 3 && out >= 100000, "%s", m ? m : "?");
    m = slurp("/proc/self/gid_map", NULL);
    check("A1 gid_map is one range of 65536 from container 0",
          m && sscanf(m, "%lu %lu %lu", &in, &out, &count) == 3 && in == 0 && count == 65536, "%s",
          m ? m : "unreadable");
    check("A1 runs as the app user 1000", getuid() == 1000 && getgid() == 1000 && geteuid() == 1000,
          "uid %u gid %u", getuid(), getgid());
    check("A1 host root's files are nobody's", stat("/usr/bin", &st) == 0 && st.st_uid == 65534,
          "/usr/bin owner %u", st.st_uid);
    check_errno("A1 host root's files are read-only (EROFS)", err_of(open("/usr/bin/probe-x", O_WRONLY | O_CREAT, 0644)),
                EROFS);
}

static void check_caps(void)
{
    static const char *const zero_fields[] = { "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:" };

    for (size_t i = 0; i < sizeof(zero_fields) / sizeof(*zero_fields); i++) {
        char name[64];
        const char *v = status_field(zero_fields[i]);

        snprintf(name, sizeof(name), "A2 %s 0", zero_fields[i]);
        check(name, strcmp(v, "0000000000000000") == 0, "%s", v);
    }
    check("A2 NoNewPrivs: 1", strcmp(status_field("NoNewPrivs:"), "1") == 0, "%s", status_field("NoNewPrivs:"));
    check("A2 Seccomp: 2 (filter)", strcmp(status_field("Seccomp:"), "2") == 0, "%s", status_field("Seccomp:"));
}

/* ------------------------------------------------------------------ A3 A4 */

static void check_proc(void)
{
    static const char *const masked[] = { "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/interrupts" };
    ssize_t len = -1;

    for (size_t i = 0; i < sizeof(masked) / sizeof(*masked); i++) {
        char name[80];
        char *s = slurp(masked[i], &len);

        snprintf(name, sizeof(name), "A3 %s reads nothing", masked[i]);
        check(name, !s || len == 0, "%zd bytes", len);
    }
    /* The app is not root in the container: the permission check (EACCES) comes first. */
    /* Kernels without CONFIG_MAGIC_SYSRQ have no such file at all. */
    check_errno("A3 /proc/sysrq-trigger not writable (EACCES; ENOENT without sysrq)",
                err_of(open("/proc/sysrq-trigger", O_WRONLY)), access("/proc/sysrq-trigger", F_OK) == 0 ? EACCES : ENOENT);
    check_errno("A3 /proc/sys not writable (EACCES)", err_of(open("/proc/sys/kernel/hostname", O_WRONLY)), EACCES);
    check_errno("A3 umount of a mask refused (EPERM)", err_of(umount2("/proc/kcore", MNT_DETACH)), EPERM);
    check_errno("A3 /proc/acpi is an empty read-only tmpfs (EROFS)",
                err_of(open("/proc/acpi/x", O_WRONLY | O_CREAT, 0644)), EROFS);
}

static void check_nested_userns(void)
{
    pid_t p;

    check_errno("A4 unshare(CLONE_NEWUSER) (EPERM)", err_of(unshare(CLONE_NEWUSER)), EPERM);
    p = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
    if (p == 0)
        _exit(0);
    if (p > 0)
        waitpid(p, NULL, 0);
    check_errno("A4 clone(CLONE_NEWUSER) (EPERM)", p < 0 ? errno : 0, EPERM);
    check_errno("A4 unshare(CLONE_NEWNS|CLONE_NEWPID) (EPERM)", err_of(unshare(CLONE_NEWNS | CLONE_NEWPID)), EPERM);
    check_errno("A4 a fresh proc mount (EPERM)", err_of(mount("proc", "/tmp", "proc", 0, NULL)), EPERM);
    check("A4 max_user_namespaces is not raised", access("/proc/sys/user/max_user_namespaces", W_OK) != 0,
          "writable");
}

/* ------------------------------------------------------------------ A5 A6 */

static void check_denied_syscalls(void)
{
    struct timeval tv = { 0, 0 };

    check_errno("A5 mount (EPERM)", err_of(mount("none", "/tmp", "tmpfs", 0, NULL)), EPERM);
    check_errno("A5 umount2 (EPERM)", err_of(umount2("/proc", MNT_DETACH)), EPERM);
    check_errno("A5 pivot_root (EPERM)", err_of(syscall(SYS_pivot_root, "/tmp", "/tmp")), EPERM);
    check_errno("A5 chroot (EPERM)", err_of(chroot("/tmp")), EPERM);
    check_errno("A5 sethostname (EPERM)", err_of(sethostname("x", 1)), EPERM);
    gettimeofday(&tv, NULL);
    check_errno("A5 settimeofday (EPERM)", err_of(settimeofday(&tv, NULL)), EPERM);
    check_errno("A5 keyctl (EPERM)", err_of(syscall(SYS_keyctl, 0, -3, 0, 0, 0)), EPERM);
    check_errno("A5 add_key (EPERM)", err_of(syscall(SYS_add_key, "user", "k", "v", 1, -3)), EPERM);
    check_errno("A5 bpf (EPERM)", err_of(syscall(SYS_bpf, 0, NULL, 0)), EPERM);
    check_errno("A5 perf_event_open (EPERM)", err_of(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)), EPERM);
    check_errno("A5 userfaultfd (EPERM)", err_of(syscall(SYS_userfaultfd, 0)), EPERM);
    check_errno("A5 io_uring_setup (EPERM)", err_of(syscall(SYS_io_uring_setup, 1, NULL)), EPERM);
    check_errno("A5 setns (EPERM)", err_of(setns(0, CLONE_NEWNET)), EPERM);
    check_errno("A5 open_tree (EPERM)", err_of(syscall(SYS_open_tree, AT_FDCWD, "/tmp", 0)), EPERM);
    check_errno("A5 fsopen (EPERM)", err_of(syscall(SYS_fsopen, "tmpfs", 0)), EPERM);
    /* The profile answers what a kernel without the family says (runner/seccomp.c). */
    check_errno("A5 socket(AF_VSOCK) (EAFNOSUPPORT)", err_of(socket(40, SOCK_STREAM, 0)), EAFNOSUPPORT);
    check_errno("A5 socket(AF_ALG) (EAFNOSUPPORT)", err_of(socket(38, SOCK_SEQPACKET, 0)), EAFNOSUPPORT);
    check_errno("A5 socket(AF_PACKET) (EAFNOSUPPORT)", err_of(socket(AF_PACKET, SOCK_RAW, 0)), EAFNOSUPPORT);
    check_errno("A5 socket(AF_KEY) (EAFNOSUPPORT)", err_of(socket(15, SOCK_RAW, 2)), EAFNOSUPPORT);
    check_errno("A5 personality(READ_IMPLIES_EXEC) (EPERM)", err_of(personality(0x0400000)), EPERM);
    check_errno("A5 personality(0x0040000) (EPERM)", err_of(personality(0x0040000)), EPERM);
    check_errno("A5 ptrace of pid 1 (EPERM)", err_of(syscall(SYS_ptrace, 16 /* ATTACH */, 1, 0, 0)), EPERM);
}

static void check_enosys(void)
{
    struct clone_args ca = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };

    check_errno("A6 clone3 (ENOSYS)", err_of(syscall(SYS_clone3, &ca, sizeof(ca))), ENOSYS);
    check_errno("A6 syscall 471, past the kernel's table (ENOSYS)", err_of(syscall(471, 0, 0, 0)), ENOSYS);
    check_errno("A6 syscall 1000 (ENOSYS)", err_of(syscall(1000, 0, 0, 0)), ENOSYS);
    /* A 32-bit ABI call kills the process: run it in a child. */
    {
        pid_t p = fork();
        int st = 0;

        if (p == 0) {
            syscall(0x40000000 | 39); /* x32 getpid */
            _exit(0);
        }
        waitpid(p, &st, 0);
        check("A6 an x32 syscall kills the caller (SIGSYS)", WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
              "status %#x", st);
    }
}

/* ------------------------------------------------------------------ A7 A8 */

static void check_dev(void)
{
    static const char *const want = " fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ";
    char seen[512] = " ";
    struct dirent **list;
    struct statvfs sv;
    int n = scandir("/dev", &list, NULL, alphasort);
    size_t len = 1;

    for (int i = 0; i < n; i++) {
        size_t name = strlen(list[i]->d_name);

        if (list[i]->d_name[0] != '.' && len + name + 2 <= sizeof(seen)) {
            memcpy(seen + len, list[i]->d_name, name);
            seen[len + name] = ' ';
            len += name + 1;
            seen[len] = '\0';
        }
        free(list[i]);
    }
    free(list);
    check("A7 /dev holds exactly the small set", strcmp(seen, want) == 0, "[%s]", seen);
    check_errno("A7 /dev/mem is missing (ENOENT)", err_of(open("/dev/mem", O_RDONLY)), ENOENT);
    check_errno("A7 /dev/sda is missing (ENOENT)", err_of(open("/dev/sda", O_RDONLY)), ENOENT);
    check_errno("A7 mknod of a device (EPERM)", err_of(mknod("/tmp/null2", S_IFCHR | 0666, makedev(1, 3))), EPERM);
    check("A7 /dev/null works", access("/dev/null", W_OK) == 0, "%s", strerror(errno));
    check("A7 /dev/shm is 64 MiB", statvfs("/dev/shm", &sv) == 0 && sv.f_blocks * sv.f_frsize == 64 << 20,
          "%lu bytes", (unsigned long)(sv.f_blocks * sv.f_frsize));
    n = scandir("/dev/pts", &list, NULL, alphasort);
    {
        int ptys = 0;

        for (int i = 0; i < n; i++) {
            if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..") && strcmp(list[i]->d_name, "ptmx"))
                ptys++;
            free(list[i]);
        }
        free(list);
        check("A7 /dev/pts is the container's own (no ptys)", n > 0 && ptys == 0, "%d ptys", ptys);
    }
}

static void check_fds(void)
{
    char fds[256] = "", link[256], path[320];
    DIR *d = opendir("/proc/self/fd");
    ssize_t n;
    bool only = true;

    for (struct dirent *e; d && (e = readdir(d));) {
        int fd = atoi(e->d_name);

        if (e->d_name[0] == '.' || fd == dirfd(d))
            continue;
        if (fd > 2)
            only = false;
        snprintf(fds + strlen(fds), sizeof(fds) - strlen(fds), " %d", fd);
    }
    if (d)
        closedir(d);
    check("A8 only fds 0-2 are open", only, "open:%s", fds);
    n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = '\0';
    check("A8 the cwd is /app, inside the root", strcmp(link, "/app") == 0, "%s", link);
    for (int fd = 0; fd <= 2; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        link[n > 0 ? n : 0] = '\0';
        snprintf(path, sizeof(path), "A8 fd %d is a pipe, a tty or /dev/null", fd);
        check(path, !strncmp(link, "pipe:", 5) || !strncmp(link, "/dev/", 5) || !strncmp(link, "socket:", 7),
              "%s", link);
    }
    for (int fd = 3; fd <= 20; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (chdir(path) == 0 || errno != ENOENT) {
            check("A8 chdir /proc/self/fd/3..20 fails (ENOENT)", false, "%s: %s", path, ename(errno));
            if (chdir("/app") < 0)
                check("A8 back to /app", false, "%s", ename(errno));
            return;
        }
    }
    check("A8 chdir /proc/self/fd/3..20 fails (ENOENT)", true, "%s", "");
    check_errno("A8 /proc/1/cwd of the init is not readable (EACCES)", err_of(readlink("/proc/1/cwd", link, 10)), EACCES);
    check_errno("A8 /proc/1/fd of the init is not listable (EACCES)", err_of(open("/proc/1/fd", O_RDONLY)), EACCES);
}

/* -------------------------------------------------------------- A9 A10 A15 */

static void check_pids(void)
{
    const char *host = getenv("PROBE_HOST_PID");
    int procs = 0;
    DIR *d = opendir("/proc");

    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9')
            procs++;
    if (d)
        closedir(d);
    check("A9 the pid namespace holds the init and the probe", procs == 2 && getpid() == 2,
          "%d pids, mine %d", procs, getpid());
    if (host)
        check_errno("A9 kill(host pid, 0) (ESRCH)", err_of(kill(atoi(host), 0)), ESRCH);
    check_errno("A9 kill(1, SIGKILL) of the init (EPERM)", err_of(kill(1, SIGKILL)), EPERM);
    check("A9 pid 1 is the session leader of a session of its own", getsid(0) == 1, "sid %d", getsid(0));
}

static int abstract_connect(const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

    if (s < 0)
        return errno;
    memcpy(sa.sun_path + 1, name, n);
    e = err_of(connect(s, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)));
    close(s);
    return e;
}

static int tcp_connect(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

    if (s < 0)
        return errno;
    e = err_of(connect(s, (struct sockaddr *)&sa, sizeof(sa)));
    close(s);
    return e;
}

static void check_net(void)
{
    const char *abstract = getenv("PROBE_ABSTRACT");
    char seen[1024] = "";
    int listeners = 0;
    DIR *d = opendir("/sys/class/net");
    char *tcp, *line;

    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.')
            snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s ", e->d_name);
    if (d)
        closedir(d);
    check("A10 only lo", strcmp(seen, "lo ") == 0, "%s", seen);
    if (abstract)
        check_errno("A10 a host abstract socket is unreachable (ECONNREFUSED)", abstract_connect(abstract),
                    ECONNREFUSED);
    tcp = slurp("/proc/net/tcp", NULL);
    for (line = tcp ? strchr(tcp, '\n') : NULL; line && line[1]; line = strchr(line + 1, '\n')) {
        char st[8];

        if (sscanf(line + 1, "%*s %*s %*s %7s", st) == 1 && strcmp(st, "0A") == 0)
            listeners++;
    }
    check("A10 no host listener in /proc/net/tcp", tcp && listeners == 0, "%d listening", listeners);
    check_errno("A10 nothing on 127.0.0.1:22 (ECONNREFUSED)", tcp_connect(22), ECONNREFUSED);
}

static void check_tiocsti(void)
{
    char c = 'x';

    check("A15 fd 0 is a terminal for this check", isatty(0), "fd 0 is not a tty");
    check_errno("A15 TIOCSTI on fd 0 (EPERM)", err_of(ioctl(0, TIOCSTI, &c)), EPERM);
}

/* --------------------------------------------------------------- host view */

static bool names_forbidden(const char *text, const char **hit)
{
    static char copy[4096];
    const char *forbid = getenv("PROBE_FORBID");
    char *tok, *save = NULL;

    if (!text || !forbid)
        return false;
    snprintf(copy, sizeof(copy), "%s", forbid);
    for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
        if (*tok && strstr(text, tok)) {
            *hit = tok;
            return true;
        }
    return false;
}

static void check_host_view(void)
{
    const char *hit = "", *want = getenv("PROBE_HOSTNAME");
    char host[128] = "", *s;
    ssize_t len = 0;

    s = slurp("/proc/1/cmdline", &len);
    check("view /proc/1/cmdline reads init", s && strcmp(s, "init") == 0, "%s", s ? s : "unreadable");
    for (ssize_t i = 0; s && i < len; i++)
        if (s[i] == '\0')
            s[i] = ' ';
    check("view /proc/1/cmdline names no host path", !names_forbidden(s, &hit), "names %s", hit);
    check_errno("view /proc/1/environ is not readable (EACCES)", err_of(open("/proc/1/environ", O_RDONLY)), EACCES);
    s = slurp("/proc/self/mountinfo", NULL);
    check("view the mount table names no host path", s && !names_forbidden(s, &hit), "names %s", hit);
    check("view no shared mounts (no propagation to or from the host)", s && !strstr(s, "shared:"), "shared:");
    s = slurp("/proc/self/cgroup", NULL);
    {
        bool root = s != NULL;

        for (char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
            if (strncmp(strrchr(l, ':') ? strrchr(l, ':') : l, ":/\n", 3) != 0 && strncmp(l, "0::/\n", 5))
                root = false;
        check("view /proc/self/cgroup shows the namespace root", root, "%s", s ? s : "unreadable");
    }
    {
        int subdirs = 0;
        DIR *d = opendir("/sys/fs/cgroup/pids");

        if (!d)
            d = opendir("/sys/fs/cgroup");
        for (struct dirent *e; d && (e = readdir(d));)
            if (e->d_type == DT_DIR && e->d_name[0] != '.')
                subdirs++;
        if (d)
            closedir(d);
        s = slurp(access("/sys/fs/cgroup/pids", F_OK) == 0 ? "/sys/fs/cgroup/pids/cgroup.procs"
                                                            : "/sys/fs/cgroup/cgroup.procs", NULL);
        check("view /sys/fs/cgroup is the container's own cgroup", d && subdirs == 0 && s && strlen(s) > 0,
              "%d child cgroups, procs [%s]", subdirs, s ? s : "unreadable");
        check("view /sys/fs/cgroup names no host path", !names_forbidden(s, &hit), "names %s", hit);
    }
    gethostname(host, sizeof(host) - 1);
    if (want)
        check("view the hostname is the container's", strcmp(host, want) == 0, "%s", host);
    s = slurp("/proc/1/comm", NULL);
    check("view /proc/1/comm names no host path", s && !strchr(s, '/'), "%s", s ? s : "unreadable");
}

/* ------------------------------------------------------------- other modes */

static int mode_forkbomb(int n)
{
    int made = 0, e = 0;

    for (int i = 0; i < n; i++) {
        pid_t p = fork();

        if (p < 0) {
            e = errno;
            break;
        }
        if (p == 0) {
            pause();
            _exit(0);
        }
        made++;
    }
    printf("forked %d errno %d\n", made, e);
    fflush(stdout);
    kill(0, SIGKILL);
    return 0;
}

static int mode_memhog(long mb)
{
    for (long i = 0; i < mb; i++) {
        char *p = malloc(1 << 20);

        if (!p)
            break;
        memset(p, 1, 1 << 20);
    }
    printf("survived %ld MB\n", mb);
    return 0;
}

/* The OOM kills of this container's own cgroup (v1 memory.oom_control, v2 memory.events). */
static long oom_kills(void)
{
    char *s = slurp("/sys/fs/cgroup/memory/memory.oom_control", NULL), *p;

    if (!s)
        s = slurp("/sys/fs/cgroup/memory.events", NULL);
    if (!s || !(p = strstr(s, "oom_kill ")))
        return -1;
    return atol(p + 9);
}

static int mode_sibling(long mb, int seconds)
{
    char *p = malloc((size_t)mb << 20);

    if (!p)
        return 1;
    memset(p, 1, (size_t)mb << 20);
    printf("ready\n");
    fflush(stdout);
    sleep((unsigned)seconds);
    check("A12 the sibling is alive with its memory", p[(mb << 20) - 1] == 1, "lost");
    check("A12 the sibling's cgroup saw no OOM kill", oom_kills() == 0, "oom_kill %ld", oom_kills());
    return failures != 0;
}

static double now(int clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int mode_spin(int seconds)
{
    double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID), share;
    char *s, *p;
    volatile unsigned long x = 0;

    while (now(CLOCK_MONOTONIC) - w0 < seconds)
        for (int i = 0; i < 100000; i++)
            x++;
    share = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / (now(CLOCK_MONOTONIC) - w0);
    s = slurp("/sys/fs/cgroup/cpu/cpu.stat", NULL);
    if (!s)
        s = slurp("/sys/fs/cgroup/cpu.stat", NULL);
    p = s ? strstr(s, "nr_throttled ") : NULL;
    check("A13 the cgroup was throttled", p && atol(p + 13) > 0, "%s", s ? s : "no cpu.stat");
    /* At most about its quota; on a busy host it may get less, never more. */
    check("A13 the spinner got at most about its quota of half a CPU", share > 0.02 && share < 0.65,
          "%.2f CPU", share);
    return failures != 0;
}

static int mode_reap(void)
{
    int zombies = 0;
    pid_t p = fork();

    if (p == 0) {
        /* The middle child exits at once; its children become the init's. */
        for (int i = 0; i < 5; i++)
            if (fork() == 0)
                _exit(0);
        _exit(0);
    }
    waitpid(p, NULL, 0);
    usleep(1000 * 1000);
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300], *s, *q;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        s = slurp(path, NULL);
        if (s && (q = strrchr(s, ')')) && q[2] == 'Z')
            zombies++;
    }
    if (d)
        closedir(d);
    check("A9 orphans are reaped by the init: no zombie after 1 s", zombies == 0, "%d zombies", zombies);
    return failures != 0;
}

static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

static int mode_sigterm(void)
{
    signal(SIGTERM, on_term);
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 600 && !got_term; i++)
        usleep(100 * 1000);
    check("A9 SIGTERM to berth reaches the app", got_term, "no SIGTERM in 60 s");
    return failures != 0;
}

static int listen_tcp(int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 8) < 0)
        return -errno;
    return s;
}

static int listen_abstract(const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memcpy(sa.sun_path + 1, name, n);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0 ||
        listen(s, 8) < 0)
        return -errno;
    return s;
}

/* Tenant A's side: the things B must not reach, each checked reachable from A itself. */
static int mode_serve(int port, const char *name, int key)
{
    int t = listen_tcp(port), a = listen_abstract(name);
    int id = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0666);

    check("cross A listens on its 127.0.0.1 port", t >= 0 && tcp_connect(port) == 0, "%s", ename(-t));
    check("cross A listens on its abstract socket", a >= 0 && abstract_connect(name) == 0, "%s", ename(-a));
    check("cross A has its SysV segment", id >= 0 && shmget(key, 0, 0) == id, "%s", ename(errno));
    printf("shmid %d\nready\n", id);
    fflush(stdout);
    sleep(60);
    if (id >= 0)
        shmctl(id, IPC_RMID, NULL);
    return failures != 0;
}

static int mode_cross(int port, const char *name, int key, int shmid, int pid)
{
    char *s = slurp("/proc/sysvipc/shm", NULL);

    check_errno("cross B cannot reach A's 127.0.0.1 port (ECONNREFUSED)", tcp_connect(port), ECONNREFUSED);
    check_errno("cross B cannot reach A's abstract socket (ECONNREFUSED)", abstract_connect(name), ECONNREFUSED);
    check_errno("cross B cannot find A's SysV key (ENOENT)", err_of(shmget(key, 0, 0)), ENOENT);
    check_errno("cross B cannot stat A's SysV segment (EINVAL)", err_of(shmctl(shmid, IPC_STAT, &(struct shmid_ds){ 0 })),
                EINVAL);
    check("cross B's /proc/sysvipc/shm is empty", s && !strchr(strchr(s, '\n') + 1, '\n') && s[strlen(s) - 1] == '\n',
          "%s", s ? s : "unreadable");
    check_errno("cross B cannot signal A's host pid (ESRCH)", err_of(kill(pid, 0)), ESRCH);
    check_pids();
    return failures != 0;
}

/* kill(-1) reaches every process it may signal but the init and itself: here, its child. */
static int mode_killall(void)
{
    int st = 0;
    pid_t p = fork();

    if (p == 0) {
        pause();
        _exit(0);
    }
    usleep(100 * 1000);
    check("A9 kill(-1, SIGKILL) works inside", kill(-1, SIGKILL) == 0, "%s", ename(errno));
    waitpid(p, &st, 0);
    check("A9 ... and killed the container's other process", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
          "status %#x", st);
    return failures != 0;
}

static int mode_secret(const char *file)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);

    check("cross A writes its 0600 file", fd >= 0 && write(fd, "secret\n", 7) == 7, "%s", ename(errno));
    return failures != 0;
}

static int mode_peek(const char *file)
{
    struct stat st = { 0 };

    check("cross B sees A's file owned by nobody", stat(file, &st) == 0 && st.st_uid == 65534, "uid %u", st.st_uid);
    check_errno("cross B cannot read A's 0600 file (EACCES)", err_of(open(file, O_RDONLY)), EACCES);
    /* A sticky directory (mode 1777) answers EPERM for another's file. */
    check_errno("cross B cannot remove A's file (EPERM)", err_of(unlink(file)), EPERM);
    return failures != 0;
}

/*
 * The app runs under SCHED_BATCH (runner/init.c says why), the init under
 * SCHED_OTHER, and the app may take SCHED_OTHER back without privilege.
 */
static void check_sched(void)
{
    int self = sched_getscheduler(0), self_errno = errno, status = 0;
    int init = sched_getscheduler(1), init_errno = errno;
    pid_t pid;

    check("sched: the app runs under SCHED_BATCH", self == SCHED_BATCH, "policy %d (%s)", self,
          self < 0 ? ename(self_errno) : "");
    check("sched: the init runs under SCHED_OTHER", init == SCHED_OTHER, "policy %d (%s)", init,
          init < 0 ? ename(init_errno) : "");
    pid = fork();
    if (pid == 0) {
        struct sched_param param = { .sched_priority = 0 };

        _exit(sched_setscheduler(0, SCHED_OTHER, &param) == 0 && sched_getscheduler(0) == SCHED_OTHER
                  ? 0
                  : 10 + errno % 100);
    }
    check("sched: the app may take SCHED_OTHER back", pid > 0 && waitpid(pid, &status, 0) == pid &&
                                                          WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "fork %d, status 0x%x", (int)pid, status);
}

static int mode_static(void)
{
    check_ids();
    check_caps();
    check_proc();
    check_nested_userns();
    check_denied_syscalls();
    check_enosys();
    check_dev();
    check_fds();
    check_pids();
    check_net();
    check_host_view();
    check_sched();
    return failures != 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "static";

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "static"))
        return mode_static();
    if (!strcmp(mode, "tiocsti"))
        return check_tiocsti(), failures != 0;
    if (!strcmp(mode, "forkbomb") && argc > 2)
        return mode_forkbomb(atoi(argv[2]));
    if (!strcmp(mode, "memhog") && argc > 2)
        return mode_memhog(atol(argv[2]));
    if (!strcmp(mode, "sibling") && argc > 3)
        return mode_sibling(atol(argv[2]), atoi(argv[3]));
    if (!strcmp(mode, "spin") && argc > 2)
        return mode_spin(atoi(argv[2]));
    if (!strcmp(mode, "reap"))
        return mode_reap();
    if (!strcmp(mode, "sigterm"))
        return mode_sigterm();
    if (!strcmp(mode, "hold") && argc > 2) {
        printf("ready\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[2]));
        return 0;
    }
    if (!strcmp(mode, "serve") && argc > 4)
        return mode_serve(atoi(argv[2]), argv[3], atoi(argv[4]));
    if (!strcmp(mode, "cross") && argc > 6)
        return mode_cross(atoi(argv[2]), argv[3], atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    if (!strcmp(mode, "killall"))
        return mode_killall();
    if (!strcmp(mode, "secret") && argc > 2)
        return mode_secret(argv[2]);
    if (!strcmp(mode, "peek") && argc > 2)
        return mode_peek(argv[2]);
    fprintf(stderr, "probe: unknown mode or missing arguments: %s\n", mode);
    return 2;
}
