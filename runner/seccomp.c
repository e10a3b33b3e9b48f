/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * berth's seccomp profile: Docker's default allowlist restated for the native
 * 64-bit ABI, with the "berth recipe" of reference/ISOLATION.md §2 on top.
 * Unknown and future syscalls get ENOSYS (so glibc falls back, as it must for
 * clone3), the capability-gated and dangerous ones EPERM, and any other ABI
 * (i386 int 0x80, x32) kills the process. (A kernel built or booted without
 * IA32 emulation has no i386 entry at all: int 0x80 faults there, SIGSEGV,
 * before any filter sees it; runner/tests/test-seccomp.c checks whichever
 * the kernel does.)
 *
 * The profile is compiled with libseccomp into a raw BPF program
 * (seccomp_program_build_libseccomp) once, at build time, and rewritten
 * smaller with the same decisions (seccomp-compact.c; seccomp_program_build
 * does both): seccomp-gen.c writes it into the runner as a C array
 * (seccomp-load.c hands it out), so neither the daemon nor `berth container
 * run` pays the ~3.5 ms libseccomp takes to compile it, nor links
 * libseccomp. Every container's app installs that program with the
 * seccomp(2) syscall (seccomp_program_load), which costs tens of
 * microseconds, most of them the kernel's JIT of each instruction.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
/*
 * libseccomp's header and ours share a name; with the source folder on the
 * include path (meson's implicit_include_directories) <seccomp.h> finds
 * runner/seccomp.h instead. runner_lib must be built without it.
 */
#ifndef SCMP_VER_MAJOR
#error "<seccomp.h> is runner/seccomp.h here: build runner_lib with implicit_include_directories : false"
#endif
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/seccomp-internal.h"
#include "common/banned.h"

/*
 * Docker's unconditional allowlist as it applies to x86_64 (moby/profiles
 * seccomp/default_linux.go), minus the io_uring calls Docker dropped too.
 * Names a given libseccomp does not know are skipped: an unknown name is a
 * syscall this build cannot filter by name anyway, and it then falls to the
 * ENOSYS default, which is the safe side.
 */
static const char *const allow_names[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk",
    "cachestat", "capget", "capset", "chdir", "chmod", "chown", "clock_adjtime",
    "clock_getres", "clock_gettime", "clock_nanosleep", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr",
    "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync",
    "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake",
    "futimesat", "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer", "getpeername",
    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresuid", "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
    "gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents",
    "io_pgetevents", "io_setup", "io_submit", "ioprio_get", "ioprio_set", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "lremovexattr",
    "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
    "mlock", "mlock2", "mlockall", "mmap", "modify_ldt", "mprotect", "mq_getsetattr",
    "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink", "mremap",
    "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause",
    "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
    "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
    "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsuid",
    "setgid", "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid",
    "setresuid", "setreuid", "setrlimit", "setsid", "setsockopt", "setuid", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "socketpair", "splice", "stat", "statfs", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create",
    "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4",
    "waitid", "write", "writev",
};

/*
 * EPERM: what Docker allows only with a capability berth containers never
 * have (SYS_ADMIN, SYS_MODULE, SYS_PTRACE, SYS_TIME, ...), the obsolete
 * calls, and the kernel attack surface Docker also closes (keyrings are not
 * namespaced, io_uring, bpf, userfaultfd). EPERM rather than the ENOSYS
 * default because these exist and are refused: programs that probe for them
 * (e.g. `unshare -U`) should see "not allowed" rather than "no such call".
 */
static const char *const eperm_names[] = {
    "syslog", "uselib", "ustat", "sysfs", "vhangup", "pivot_root", "_sysctl", "chroot",
    "acct", "settimeofday", "clock_settime", "mount", "umount2", "swapon", "swapoff",
    "reboot", "sethostname", "setdomainname", "iopl", "ioperm", "create_module",
    "init_module", "finit_module", "delete_module", "get_kernel_syms", "query_module",
    "quotactl", "quotactl_fd", "nfsservctl", "getpmsg", "putpmsg", "afs_syscall", "tuxcall",
    "security", "vserver", "lookup_dcookie", "mbind", "set_mempolicy", "get_mempolicy",
    "set_mempolicy_home_node", "kexec_load", "kexec_file_load", "add_key", "request_key",
    "keyctl", "migrate_pages", "move_pages", "unshare", "setns", "perf_event_open",
    "fanotify_init", "open_by_handle_at", "kcmp", "bpf", "userfaultfd", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "pidfd_getfd", "process_madvise",
    "ptrace", "process_vm_readv", "process_vm_writev",
    /* newer than libseccomp 2.5.4; added when the library knows them */
    "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
};

/* The clone(2) flags that create namespaces (Docker's 0x7E020000). */
const unsigned long seccomp_clone_ns_flags[] = {
    CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};
const size_t seccomp_n_clone_ns_flags = sizeof(seccomp_clone_ns_flags) / sizeof(*seccomp_clone_ns_flags);

unsigned long seccomp_clone_ns_mask(void)
{
    unsigned long mask = 0;

    for (size_t i = 0; i < seccomp_n_clone_ns_flags; i++)
        mask |= seccomp_clone_ns_flags[i];
    return mask;
}

/* The socket(2) families apps need, in increasing order (add_arg_rules relies on it). */
const unsigned long seccomp_socket_families[] = { AF_UNIX, AF_INET, AF_INET6, AF_NETLINK };
const size_t seccomp_n_socket_families = sizeof(seccomp_socket_families) / sizeof(*seccomp_socket_families);

/* personality(2) values Docker lets through: PER_LINUX, PER_LINUX32, UNAME26 variants, query. */
const unsigned long seccomp_personality_ok[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };
const size_t seccomp_n_personality_ok = sizeof(seccomp_personality_ok) / sizeof(*seccomp_personality_ok);

/* ioctl(2) requests refused: TIOCSTI first (add_arg_rules' "everything else" rule names it). */
const unsigned long seccomp_ioctl_denied[] = { TIOCSTI, TIOCLINUX };
const size_t seccomp_n_ioctl_denied = sizeof(seccomp_ioctl_denied) / sizeof(*seccomp_ioctl_denied);

/* Largest BPF program the kernel accepts (BPF_MAXINSNS); also fits `len`. */
#define MAX_BPF_INSNS 4096

static int add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
                    const struct scmp_arg_cmp *cmp, const char *what,
                    struct berth_error **err)
{
    int r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
    if (r < 0)
        return berth_error_make(err, -r, "adding seccomp rule for '%s'", what);
    return 0;
}

static int add_named(scmp_filter_ctx ctx, uint32_t action, const char *const *names,
                     size_t n, struct berth_error **err)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;   /* unknown to this libseccomp: left to the ENOSYS default */
        int r = add_rule(ctx, action, nr, 0, NULL, names[i], err);
        if (r < 0)
            return r;
    }
    return 0;
}

/*
 * The argument-filtered syscalls. libseccomp turns the rules of one syscall
 * into a decision tree and refuses two comparisons of the same argument in
 * one rule, so each "everything else" case is written as rules that are
 * either disjoint from the allowed values or, where a complement cannot be
 * written with one comparison, as a NE rule that libseccomp orders after the
 * EQ rules (test-seccomp checks the resulting behaviour, not just the build).
 */
static int add_arg_rules(scmp_filter_ctx ctx, struct berth_error **err)
{
    struct scmp_arg_cmp c;
    int r;

    /* clone: only without namespace flags; one EPERM rule per flag. */
    c = SCMP_A0(SCMP_CMP_MASKED_EQ, seccomp_clone_ns_mask(), 0);
    if ((r = add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &c, "clone", err)) < 0)
        return r;
    for (size_t i = 0; i < seccomp_n_clone_ns_flags; i++) {
        c = SCMP_A0(SCMP_CMP_MASKED_EQ, seccomp_clone_ns_flags[i], seccomp_clone_ns_flags[i]);
        if ((r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &c, "clone", err)) < 0)
            return r;
    }

    /*
     * clone3 passes its flags in memory, which BPF cannot read, so it cannot
     * be filtered like clone. It must get ENOSYS so glibc falls back to
     * clone, whose flags we can check (pthread_create keeps working). That
     * is the default action, and libseccomp refuses (EACCES) a rule whose
     * action equals the default, so clone3 is deliberately in no list.
     */

    /*
     * socket: the four families apps need. Every other family gets
     * EAFNOSUPPORT (what a kernel without that family says), written as
     * disjoint rules: each value below AF_NETLINK by itself, then "greater
     * than AF_NETLINK" (AF_PACKET, AF_ALG, AF_VSOCK, ...). A value with
     * high bits set, which the kernel would truncate to an int, compares
     * greater and is refused too.
     */
    unsigned long top = seccomp_socket_families[seccomp_n_socket_families - 1];

    for (unsigned long fam = 0; fam <= top; fam++) {
        bool allowed = false;

        for (size_t i = 0; i < seccomp_n_socket_families; i++)
            allowed = allowed || fam == seccomp_socket_families[i];
        c = SCMP_A0(SCMP_CMP_EQ, fam);
        r = add_rule(ctx, allowed ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EAFNOSUPPORT),
                     SCMP_SYS(socket), 1, &c, "socket", err);
        if (r < 0)
            return r;
    }
    c = SCMP_A0(SCMP_CMP_GT, top);
    if ((r = add_rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, &c, "socket", err)) < 0)
        return r;

    /*
     * personality: only the harmless values; anything else (READ_IMPLIES_EXEC,
     * ADDR_NO_RANDOMIZE, ...) is EPERM. A nonzero high half also lands in
     * the EPERM branch.
     */
    for (size_t i = 0; i < seccomp_n_personality_ok; i++) {
        c = SCMP_A0(SCMP_CMP_EQ, seccomp_personality_ok[i]);
        if ((r = add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1, &c, "personality", err)) < 0)
            return r;
    }
    c = SCMP_A0(SCMP_CMP_NE, seccomp_personality_ok[0]);
    if ((r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1, &c, "personality", err)) < 0)
        return r;

    /*
     * ioctl: everything except TIOCSTI (push input into a terminal, the
     * CVE-2017-5226 escape through a shared tty) and TIOCLINUX. The kernel
     * takes `cmd` as an unsigned int, so compare only the low 32 bits: with
     * a full 64-bit compare, cmd | 1UL << 32 would pass the filter and still
     * reach the kernel as TIOCSTI (flatpak's CVE-2019-10063).
     */
    for (size_t i = 0; i < seccomp_n_ioctl_denied; i++) {
        c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, seccomp_ioctl_denied[i]);
        if ((r = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, &c, "ioctl", err)) < 0)
            return r;
    }
    c = SCMP_A1(SCMP_CMP_NE, seccomp_ioctl_denied[0]);
    return add_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &c, "ioctl", err);
}

static void seccomp_ctx_releasep(scmp_filter_ctx *ctx)
{
    if (*ctx)
        seccomp_release(*ctx);
}

/* Exports the compiled filter through a memfd into a malloc'ed array. */
static int export_bpf(scmp_filter_ctx ctx, struct seccomp_program *ret, struct berth_error **err)
{
    _cleanup_close_ int fd = memfd_create("berth-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return berth_error_make(err, errno, "creating memfd for the seccomp program");

    int r = seccomp_export_bpf(ctx, fd);
    if (r < 0)
        return berth_error_make(err, -r, "exporting the seccomp program");

    struct stat st;
    if (fstat(fd, &st) < 0)
        return berth_error_make(err, errno, "stat of the seccomp program");
    if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
        st.st_size / (off_t)sizeof(struct sock_filter) > MAX_BPF_INSNS)
        return berth_error_plain(err, EINVAL, "seccomp program has a bad size (%lld bytes)",
                                 (long long)st.st_size);

    size_t size = (size_t)st.st_size;
    _cleanup_free_ struct sock_filter *filter = xmalloc(size);
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (char *)filter + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return berth_error_make(err, errno, "reading the seccomp program");
        if (n == 0)
            return berth_error_plain(err, EIO, "seccomp program shorter than reported");
        done += (size_t)n;
    }

    ret->filter = TAKE_PTR(filter);
    ret->len = (unsigned short)(size / sizeof(struct sock_filter));
    return 0;
}

int seccomp_program_build_libseccomp(struct seccomp_program *ret, struct berth_error **err)
{
    _cleanup_(seccomp_ctx_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
    int r;

    if (!ctx)
        return berth_error_plain(err, ENOMEM, "seccomp_init failed");

    /*
     * Native ABI only: berth runs 64-bit apps, and a filter without the x86
     * and x32 sub-arches makes the bad-arch action the whole policy for
     * those ABIs, so they cannot be used to slip past the rules.
     */
    if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
        return berth_error_make(err, -r, "setting the seccomp bad-arch action");
    /* The container init sets PR_SET_NO_NEW_PRIVS itself, before loading. */
    if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
        return berth_error_make(err, -r, "clearing the seccomp NNP attribute");
    /* A binary tree of syscalls instead of a ~300-entry linear chain. */
    if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0)
        return berth_error_make(err, -r, "setting the seccomp optimizer");

    if ((r = add_named(ctx, SCMP_ACT_ALLOW, allow_names,
                       sizeof(allow_names) / sizeof(allow_names[0]), err)) < 0)
        return r;
    if ((r = add_named(ctx, SCMP_ACT_ERRNO(EPERM), eperm_names,
                       sizeof(eperm_names) / sizeof(eperm_names[0]), err)) < 0)
        return r;
    if ((r = add_arg_rules(ctx, err)) < 0)
        return r;

    struct seccomp_program p = { NULL, 0 };
    if ((r = export_bpf(ctx, &p, err)) < 0)
        return r;
    *ret = p;
    return 0;
}

int seccomp_program_build(struct seccomp_program *ret, struct berth_error **err)
{
    struct seccomp_program ref = { NULL, 0 };
    int r;

    if ((r = seccomp_program_build_libseccomp(&ref, err)) < 0)
        return r;
    r = seccomp_program_compact(&ref, ret, err);
    free(ref.filter);
    return r;
}
