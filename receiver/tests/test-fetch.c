/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of the buildpack fetch's time limit (fetch.c): a server that
 * accepts the connection (the kernel completes the handshake on a
 * listening socket nobody accepts on) and never answers must not hold the
 * fetch past its deadline, over http://, https:// (libgit2's TLS over
 * that stream) and git://. Without the receiver's socket stream, libgit2
 * 1.5 would wait for ever here. And a fetch that the server does answer
 * (git daemon, when installed) still goes through that stream.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
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
    static const char *const schemes[] = { "http", "https", "git" };
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
        r = fetch_tree_within(url, NULL, cache, dest, 2, &commit, &err);
        ok(r == -ETIMEDOUT, "%s: a server that never answers times out: %s", schemes[i], berth_error_msg(&err));
        ok(time(NULL) - start <= 6, "%s: ... at the deadline (%ld s for 2)", schemes[i], (long)(time(NULL) - start));
        free(commit);
    }
    close(fd);
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
            url = xasprintf("git://127.0.0.1:%u/src.git", port);
            berth_error_release(&err);
            ok(fetch_tree_within(url, "main", cache, dest, 30, &commit, &err) == 0 && stat(readme, &st) == 0,
               "a fetch from git daemon goes through the stream: %s", err ? berth_error_msg(&err) : "ok");
            kill(daemon, SIGTERM);
            waitpid(daemon, NULL, 0);
        }
        free(commit);
    }
    (void)rm_rf(tmp, NULL);
    return tap_done();
}
