/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of the buildpack fetch's time limit (fetch.c): a server that
 * accepts the connection (the kernel completes the handshake on a
 * listening socket nobody accepts on) and never answers must not hold the
 * fetch past its deadline, over http://, https:// (libgit2's TLS over
 * that stream), git:// and ssh:// (libssh2 waiting for the server's
 * banner on its own, until the watchdog shuts the socket down). Without
 * the receiver's socket stream, libgit2 1.5 would wait for ever here. A
 * name server that never answers must not hold the fetch either: in a
 * user, mount and network namespace of its own, a child points
 * /etc/resolv.conf at a silent UDP socket on 127.0.0.1:53 (with glibc told
 * to wait 30 s per try, 5 tries) and fetches from a name. And a fetch
 * that the server does answer (git daemon, when installed) still goes
 * through that stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "receiver/push.h"

/* A listening socket on 127.0.0.1 that never accepts; its port in *ret_port. */
static int silent_server(unsigned *ret_port)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 8) < 0
        || getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
        return -1;
    *ret_port = ntohs(addr.sin_port);
    return fd;
}

/*
 * Serves `base`'s repositories with git daemon on a free port; its pid, or
 * -1 when git daemon cannot run. *ret_port once it accepts connections.
 */
static pid_t start_daemon(const char *base, unsigned *ret_port)
{
    extern char **environ;
    _cleanup_free_ char *base_arg = xasprintf("--base-path=%s", base);
    _cleanup_free_ char *port_arg = NULL;
    int probe = silent_server(ret_port);
    pid_t pid;

    if (probe < 0)
        return -1;
    close(probe);
    port_arg = xasprintf("--port=%u", *ret_port);
    {
        char *argv[] = { (char *)"git", (char *)"daemon", (char *)"--export-all", (char *)"--reuseaddr",
                         (char *)"--listen=127.0.0.1", port_arg, base_arg, NULL };

        if (posix_spawnp(&pid, "git", NULL, NULL, argv, environ) != 0)
            return -1;
    }
    for (int i = 0; i < 100; i++) {
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                    .sin_port = htons(*ret_port) };
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            return pid;
        usleep(50000);
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Writes `text` to the file at path: 0 or -1. */
static int put(const char *path, const char *text)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    return fd >= 0 && write_all(fd, text, strlen(text)) == 0 ? 0 : -1;
}

/*
 * In a child of its own user, mount and network namespace: loopback up, a
 * UDP socket on 127.0.0.1:53 that reads nothing, and a resolv.conf naming
 * it bound over /etc/resolv.conf. Returns the socket, or -1 when the
 * namespaces cannot be had here.
 */
static int silent_name_server(const char *tmp)
{
    _cleanup_free_ char *conf = xasprintf("%s/resolv.conf", tmp);
    _cleanup_free_ char *map = xasprintf("0 %u 1", (unsigned)getuid());
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(53),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct ifreq ifr = { .ifr_name = "lo" };
    _cleanup_close_ int ctl = -1;
    int fd;

    if (put(conf, "nameserver 127.0.0.1\noptions timeout:30 attempts:5\n") < 0
        || unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) < 0 || put("/proc/self/setgroups", "deny") < 0
        || put("/proc/self/uid_map", map) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0
        || mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
        return -1;
    ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ctl < 0 || ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(ctl, SIOCSIFFLAGS, &ifr) < 0)
        return -1;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return -1;
    return fd;
}

/*
 * A fetch from a name the silent name server is asked about, in a child:
 * "skip", or the fetch's result, seconds taken and message, through a pipe.
 */
static void name_lookup_times_out(const char *tmp)
{
    char buf[512] = "";
    int pipefd[2], status = 0;
    pid_t pid;
    ssize_t n;

    if (pipe2(pipefd, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
        ok(false, "name lookup: fork failed");
        return;
    }
    if (pid == 0) {
        _cleanup_error_ struct berth_error *err = NULL;
        _cleanup_free_ char *cache = xasprintf("%s/cache-dns", tmp);
        _cleanup_free_ char *dest = xasprintf("%s/dest-dns", tmp);
        _cleanup_free_ char *line = NULL;
        char *commit = NULL;
        time_t start;
        int r;

        close(pipefd[0]);
        if (silent_name_server(tmp) < 0) {
            line = xasprintf("skip %s", strerror(errno));
        } else {
            start = time(NULL);
            r = fetch_tree_within("http://buildpack.example.com/bp.git", NULL, true, cache, dest, 2, &commit, &err);
            line = xasprintf("%d %ld %s", r, (long)(time(NULL) - start), err ? berth_error_msg(&err) : "");
        }
        (void)write_all(pipefd[1], line, strlen(line));
        _exit(0);
    }
    close(pipefd[1]);
    n = read(pipefd[0], buf, sizeof(buf) - 1);
    close(pipefd[0]);
    waitpid(pid, &status, 0);
    buf[n > 0 ? n : 0] = '\0';
    if (!strncmp(buf, "skip", 4)) {
        ok(true, "# SKIP no user and network namespace for a name server of our own (%s)", buf + 5);
        ok(true, "# SKIP");
        return;
    }
    {
        int r = 0;
        long secs = -1;
        int used = 0;

        (void)sscanf(buf, "%d %ld %n", &r, &secs, &used);
        ok(r == -ETIMEDOUT, "a name server that never answers times out the fetch: %s", buf + used);
        ok(secs >= 0 && secs <= 6, "... at the deadline (%ld s for 2)", secs);
    }
}

/* A bare repository at `path` whose main holds one file, README. */
static int make_source(const char *path)
{
    git_repository *repo = NULL;
    git_signature *sig = NULL;
    git_treebuilder *tb = NULL;
    git_tree *tree = NULL;
    git_oid blob, tree_id, commit;
    int k;

    k = git_repository_init(&repo, path, 1);
    if (k == 0)
        k = git_blob_create_from_buffer(&blob, repo, "fetched\n", 8);
    if (k == 0 && (k = git_treebuilder_new(&tb, repo, NULL)) == 0
        && (k = git_treebuilder_insert(NULL, tb, "README", &blob, GIT_FILEMODE_BLOB)) == 0)
        k = git_treebuilder_write(&tree_id, tb);
    if (k == 0 && (k = git_tree_lookup(&tree, repo, &tree_id)) == 0 && (k = git_signature_now(&sig, "t", "t@e")) == 0)
        k = git_commit_create(&commit, repo, "refs/heads/main", sig, sig, NULL, "m", tree, 0, NULL);
    if (k == 0)
        k = git_repository_set_head(repo, "refs/heads/main");
    git_signature_free(sig);
    git_tree_free(tree);
    git_treebuilder_free(tb);
    git_repository_free(repo);
    return k;
}

int main(void)
{
    _cleanup_error_ struct berth_error *err = NULL;
    char tmp[] = "/tmp/receiver-fetch-test-XXXXXX";
    static const char *const schemes[] = { "http", "https", "git", "ssh" };
    unsigned port = 0;
    int fd;

    if (receiver_global_init(&err) < 0 || !mkdtemp(tmp) || (fd = silent_server(&port)) < 0) {
        printf("Bail out! setup failed\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++) {
        _cleanup_free_ char *url = xasprintf("%s://127.0.0.1:%u/bp.git", schemes[i], port);
        _cleanup_free_ char *cache = xasprintf("%s/cache%zu", tmp, i);
        _cleanup_free_ char *dest = xasprintf("%s/dest%zu", tmp, i);
        char *commit = NULL;
        time_t start = time(NULL);
        int r;

        berth_error_release(&err);
        r = fetch_tree_within(url, NULL, true, cache, dest, 2, &commit, &err);
        ok(r == -ETIMEDOUT, "%s: a server that never answers times out: %s", schemes[i], berth_error_msg(&err));
        ok(time(NULL) - start <= 6, "%s: ... at the deadline (%ld s for 2)", schemes[i], (long)(time(NULL) - start));
        free(commit);
    }
    close(fd);
    name_lookup_times_out(tmp);
    {
        _cleanup_free_ char *src = xasprintf("%s/src.git", tmp);
        _cleanup_free_ char *readme = xasprintf("%s/fetched/README", tmp);
        _cleanup_free_ char *cache = xasprintf("%s/cache-ok", tmp);
        _cleanup_free_ char *dest = xasprintf("%s/fetched", tmp);
        _cleanup_free_ char *url = NULL;
        char *commit = NULL;
        struct stat st;
        pid_t daemon = make_source(src) == 0 ? start_daemon(tmp, &port) : -1;

        if (daemon < 0) {
            ok(true, "# SKIP git daemon cannot run here");
        } else {
            _cleanup_free_ char *by_name = xasprintf("git://localhost:%u/src.git", port);

            url = xasprintf("git://127.0.0.1:%u/src.git", port);
            /* A tenant's fetch reaches no address of this host, by number or by a name that resolves there. */
            berth_error_release(&err);
            ok(fetch_tree_within(url, "main", false, cache, dest, 30, &commit, &err) < 0 &&
               strstr(berth_error_msg(&err), "refusing to connect to 127.0.0.1: it is this host") &&
               stat(readme, &st) < 0, "an untrusted fetch from this host's loopback is refused: %s",
               berth_error_msg(&err));
            berth_error_release(&err);
            ok(fetch_tree_within(by_name, "main", false, cache, dest, 30, &commit, &err) < 0 &&
               strstr(berth_error_msg(&err), "refusing to connect to localhost"),
               "... and by a name that resolves there: %s", berth_error_msg(&err));
            berth_error_release(&err);
            ok(fetch_tree_within(url, "main", true, cache, dest, 30, &commit, &err) == 0 && stat(readme, &st) == 0,
               "a fetch from git daemon goes through the stream: %s", err ? berth_error_msg(&err) : "ok");
            kill(daemon, SIGTERM);
            waitpid(daemon, NULL, 0);
        }
        free(commit);
    }
    (void)rm_rf(tmp, NULL);
    return tap_done();
}
