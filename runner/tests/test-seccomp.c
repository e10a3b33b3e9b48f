/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test for runner/seccomp.c and seccomp-compact.c: builds berth's
 * profile, checks that the compact program decides as libseccomp's does
 * (and that the comparison would see a difference: every jump and return
 * of the compact program, changed by one bit, is caught), loads it in a
 * forked child (after PR_SET_NO_NEW_PRIVS, as the container init does) and
 * checks the raw errno of each syscall the profile decides on. The child
 * reports one line per check over a pipe; the parent turns them into TAP.
 * Needs no privileges and no namespaces. Checks that would change the host
 * if the filter failed to stop them are aimed at harmless targets (mount on
 * a path that does not exist, clone children that exit at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/strbuf.h"
#include "common/tests/tap.h"
#include "runner/seccomp-internal.h"
#include "common/banned.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

/* Set in the child only: where report() writes its lines. */
static int report_fd = -1;

/* One line per check: "1 what" or "0 what (got ...)". */
__attribute__((format(printf, 2, 3)))
static void report(int pass, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%d ", pass ? 1 : 0);
    va_list ap;

    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)write_all(report_fd, line, (size_t)n);
}

/* Reports whether `r` is -1 with errno `want`. */
static void expect_errno(long r, int want, const char *what)
{
    int e = errno;
    report(r == -1 && e == want, "%s fails with %s (got %ld, %s)", what,
           strerrorname_np(want), r, r == -1 ? strerrorname_np(e) : "no error");
}

static void *thread_main(void *arg)
{
    return arg;
}

/* Runs fn in a fresh grandchild and returns its wait status, or -1. */
static int in_grandchild(void (*fn)(void))
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        fn();
        _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return status;
}

/* The x32 ABI: same numbers with bit 30 set. Not in the filter's arch list. */
static void x32_getpid(void)
{
    (void)syscall(__NR_getpid | 0x40000000);
}

#if defined(__x86_64__)
/*
 * i386 getpid (20) through int 0x80: the other ABI the filter must kill.
 * A kernel built without IA32 emulation (or booted with it off) has no
 * such entry: int 0x80 is then a general protection fault, SIGSEGV, with
 * or without a filter. SIGSEGV goes back to its default first, so that a
 * sanitizer's handler does not turn the fault into an exit status.
 */
static void i386_getpid(void)
{
    long ret = 20;

    (void)signal(SIGSEGV, SIG_DFL);
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
}
#endif

/* Whether this kernel offers the i386 ABI: int 0x80 getpid, unfiltered, returns. */
static bool kernel_has_i386_abi(void)
{
#if defined(__x86_64__)
    int r = in_grandchild(i386_getpid);

    return r != -1 && WIFEXITED(r) && WEXITSTATUS(r) == 0;
#else
    return false;
#endif
}

static void socket_check(int family, const char *name)
{
    int fd = socket(family, family == AF_ALG ? SOCK_SEQPACKET : SOCK_STREAM, 0);
    int e = errno;
    if (fd >= 0)
        (void)close(fd);
    errno = e;
    expect_errno(fd < 0 ? -1 : fd, EAFNOSUPPORT, name);
}

/* Raw clone with namespace flags: if the filter let it through, the child must not run on. */
static void clone_ns_check(unsigned long flag, const char *name)
{
    long r = syscall(SYS_clone, flag | SIGCHLD, NULL, NULL, NULL, 0);
    int e = errno;
    if (r == 0)
        _exit(0);
    if (r > 0)
        (void)waitpid((pid_t)r, NULL, 0);
    errno = e;
    expect_errno(r, EPERM, name);
}

static void child_checks(const struct seccomp_program *prog, bool has_i386)
{
    struct timespec t0, t1;
    char buf[128];
    int r;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        report(0, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = seccomp_program_load(prog);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    report(r == 0, "seccomp_program_load (%s)", r == 0 ? "ok" : strerror(-r));
    if (r < 0)
        return;
    snprintf(buf, sizeof(buf), "T %ld\n",
             (long)((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000));
    (void)write_all(report_fd, buf, strlen(buf));

    expect_errno(unshare(CLONE_NEWUSER), EPERM, "unshare(CLONE_NEWUSER)");
    expect_errno(setns(-1, 0), EPERM, "setns");
    clone_ns_check(CLONE_NEWUSER, "clone(CLONE_NEWUSER)");
    clone_ns_check(CLONE_NEWNET, "clone(CLONE_NEWNET)");
    {
        uint64_t args[11] = { 0 };   /* a zeroed struct clone_args (v2 size) */
        expect_errno(syscall(SYS_clone3, args, sizeof(args)), ENOSYS, "clone3");
    }
    expect_errno(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0), EPERM, "keyctl");
    expect_errno(syscall(SYS_add_key, "user", "berth", "x", 1, -3), EPERM, "add_key");
    expect_errno(syscall(SYS_bpf, 0, NULL, 0), EPERM, "bpf");
    expect_errno(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM, "perf_event_open");
    expect_errno(syscall(SYS_userfaultfd, 0), EPERM, "userfaultfd");
    expect_errno(syscall(SYS_io_uring_setup, 1, NULL), EPERM, "io_uring_setup");
    expect_errno(mount("none", "/nonexistent-berth-seccomp-test", "tmpfs", 0, NULL), EPERM, "mount");
    expect_errno(ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM, "ptrace(PTRACE_TRACEME)");
    expect_errno(syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0), EPERM,
                 "process_vm_readv");

    socket_check(AF_PACKET, "socket(AF_PACKET)");
    socket_check(AF_VSOCK, "socket(AF_VSOCK)");
    socket_check(AF_ALG, "socket(AF_ALG)");
    socket_check(3 /* AF_AX25, below AF_NETLINK */, "socket(AF_AX25)");
    {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        report(fd >= 0, "socket(AF_INET) works (%s)", fd >= 0 ? "ok" : strerror(errno));
        if (fd >= 0)
            (void)close(fd);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        report(fd >= 0, "socket(AF_UNIX) works (%s)", fd >= 0 ? "ok" : strerror(errno));
        if (fd >= 0)
            (void)close(fd);
    }

    {
        pid_t pid = fork();
        int status = 0;
        if (pid == 0)
            _exit(7);
        report(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
               WEXITSTATUS(status) == 7, "fork and wait work");
    }
    {
        pthread_t th;
        void *res = NULL;
        int e = pthread_create(&th, NULL, thread_main, (void *)buf);
        if (e == 0)
            e = pthread_join(th, &res);
        report(e == 0 && res == buf, "pthread_create works (%s)", e ? strerror(e) : "ok");
    }

    expect_errno(syscall(1000), ENOSYS, "unknown syscall 1000");
    expect_errno(ioctl(0, TIOCSTI, "x"), EPERM, "ioctl(TIOCSTI)");
    expect_errno(syscall(SYS_ioctl, 0, (1UL << 32) | TIOCSTI, "x"), EPERM,
                 "ioctl(TIOCSTI | 1 << 32)");
    expect_errno(ioctl(0, TIOCLINUX, buf), EPERM, "ioctl(TIOCLINUX)");
    {
        int fl = fcntl(0, F_GETFL);
        int p[2] = { -1, -1 };
        int n = -1;
        r = pipe2(p, O_CLOEXEC);
        if (r == 0)
            r = ioctl(p[0], FIONREAD, &n);
        report(fl >= 0 && r == 0 && n == 0, "ordinary ioctl (FIONREAD) works");
        if (p[0] >= 0) {
            (void)close(p[0]);
            (void)close(p[1]);
        }
    }

    report(personality(0xffffffff) >= 0, "personality(query) works");
    expect_errno(personality(READ_IMPLIES_EXEC), EPERM, "personality(READ_IMPLIES_EXEC)");
    expect_errno(syscall(SYS_personality, 1UL << 32), EPERM, "personality(1 << 32)");

    r = in_grandchild(x32_getpid);
    report(r != -1 && WIFSIGNALED(r) && WTERMSIG(r) == SIGSYS,
           "x32 getpid kills the process with SIGSYS (status 0x%x)", (unsigned)r);
#if defined(__x86_64__)
    r = in_grandchild(i386_getpid);
    if (has_i386)
        report(r != -1 && WIFSIGNALED(r) && WTERMSIG(r) == SIGSYS,
               "i386 int 0x80 getpid kills the process with SIGSYS (status 0x%x)", (unsigned)r);
    else
        report(r != -1 && WIFSIGNALED(r) && WTERMSIG(r) == SIGSEGV,
               "i386 int 0x80 getpid faults (SIGSEGV, status 0x%x): this kernel has no IA32 emulation, "
               "so the i386 ABI is unreachable with or without the filter", (unsigned)r);
#else
    (void)has_i386;
#endif
}

/*
 * The compact program against libseccomp's: the same decisions, a third of
 * the size at most, and a comparison that notices a one-bit change to any
 * jump or return (each one matters, so each change must show).
 */
static void compact_checks(const struct seccomp_program *compact)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct seccomp_program ref = { NULL, 0 }, m;
    unsigned missed = 0, changed = 0, first_missed = 0;

    if (seccomp_program_build_libseccomp(&ref, &err) < 0) {
        ok(0, "libseccomp's program (%s)", berth_error_msg(&err));
        return;
    }
    ok(seccomp_program_differ(&ref, compact, &err) == 0, "the compact program decides as libseccomp's (%s)",
       err ? berth_error_msg(&err) : "everywhere the comparison looks");
    berth_error_release(&err);
    ok(compact->len * 3 <= ref.len, "the compact program has %u instructions, libseccomp's %u",
       (unsigned)compact->len, (unsigned)ref.len);
    m.len = compact->len;
    m.filter = malloc(compact->len * sizeof(*m.filter));
    for (unsigned i = 0; m.filter && i < compact->len; i++) {
        uint16_t cls = BPF_CLASS(compact->filter[i].code);

        if (cls != BPF_RET && (cls != BPF_JMP || BPF_OP(compact->filter[i].code) == BPF_JA))
            continue;
        memcpy(m.filter, compact->filter, compact->len * sizeof(*m.filter));
        m.filter[i].k ^= 1;
        changed++;
        if (seccomp_program_differ(&ref, &m, &err) == 0 && missed++ == 0)
            first_missed = i;
        berth_error_release(&err);
    }
    ok(changed > 50 && missed == 0, "each of the %u jumps and returns changed by one bit is caught "
       "(%u missed, the first at %u)", changed, missed, first_missed);
    /* Nor does a program that runs off its end, or has an instruction it cannot run, compare equal. */
    if (m.filter) {
        memcpy(m.filter, compact->filter, compact->len * sizeof(*m.filter));
        m.filter[compact->len - 1].code = BPF_LD | BPF_W | BPF_IND;
        ok(seccomp_program_differ(&ref, &m, &err) < 0, "a program with an unknown instruction is "
           "refused (%s)", err ? berth_error_msg(&err) : "not refused");
        berth_error_release(&err);
    }
    free(m.filter);
    free(ref.filter);
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

int main(void)
{
    struct seccomp_program prog = { NULL, 0 };
    _cleanup_error_ struct berth_error *err = NULL;
    struct timespec t0;
    int p[2];
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = seccomp_program_build(&prog, &err);
    double build_ms = ms_since(&t0);
    ok(r == 0, "seccomp_program_build (%s)", r == 0 ? "ok" : berth_error_msg(&err));
    if (r < 0)
        return tap_done();
    ok(prog.len > 0 && prog.len <= 4096, "program has %u instructions", (unsigned)prog.len);
    {
        /* What containers load is the build-time copy: it must be this very program. */
        struct seccomp_program builtin;

        seccomp_program_builtin(&builtin);
        ok(builtin.len == prog.len &&
           memcmp(builtin.filter, prog.filter, prog.len * sizeof(*prog.filter)) == 0,
           "the program built into the runner is the profile compiled now (%u instructions)",
           (unsigned)builtin.len);
        seccomp_program_release(&builtin);
    }
    compact_checks(&prog);

    bool has_i386 = kernel_has_i386_abi();
    if (pipe2(p, O_CLOEXEC) < 0) {
        ok(0, "pipe: %s", strerror(errno));
        return tap_done();
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        ok(0, "fork: %s", strerror(errno));
        return tap_done();
    }
    if (pid == 0) {
        (void)close(p[0]);
        report_fd = p[1];
        child_checks(&prog, has_i386);
        _exit(0);
    }
    (void)close(p[1]);

    _cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        strbuf_add(&out, buf, (size_t)n);
    }
    (void)close(p[0]);

    int status = 0;
    r = (int)waitpid(pid, &status, 0);
    long load_us = -1;
    int lines = 0;
    for (char *line = out.buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        if (line[0] == 'T' && line[1] == ' ') {
            load_us = strtol(line + 2, NULL, 10);
            continue;
        }
        lines++;
        ok(line[0] == '1', "%s", line + 2);
    }
    ok(lines >= 30, "child ran all checks (%d reported)", lines);
    ok(r == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "filtered child exited normally (status 0x%x)", (unsigned)status);
    printf("# build %.2f ms, load %ld us\n", build_ms, load_us);

    seccomp_program_release(&prog);
    return tap_done();
}
