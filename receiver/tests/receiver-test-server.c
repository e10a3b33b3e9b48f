/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small smart-HTTP git server for receiver/tests/test-push.sh (not
 * installed): a libmicrohttpd thread-per-connection daemon on 127.0.0.1 with
 * an ephemeral port, which it prints on stdout, serving /<name>.git/... for
 * bare repositories under the directory given on the command line (created
 * on first use). With --deploy it installs a deploy callback that exports
 * the pushed tree, prints progress with a one-second pause (so the test can
 * see that progress streams while the deploy runs) and rejects a tree that
 * contains a file named REJECT; a tree with a file named SLOW makes it go
 * silent for six seconds (longer than the receiver's keepalive). Its
 * settled hook says "settled ok|failed, main at <oid>, main landed|not
 * landed|not pushed" with the ref as it is then and the outcome
 * receiver_push_ref_landed() gives for it. Runs until SIGTERM or SIGINT.
 *
 *   receiver-test-server [--deploy] [--max-bytes N] <repos-dir>
 */
#include <errno.h>
#include <git2.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/xalloc.h"
#include "receiver/receiver.h"
#include "common/banned.h"

struct server {
    const char *dir;
    bool deploy;
    size_t max_bytes;
};

static int deploy(void *cls, struct receiver_push *push, const struct receiver_update *updates,
                  size_t n_updates, struct strbuf *reason)
{
    (void)cls;
    receiver_progress(push, "-----> deploy starting (%zu update%s)", n_updates, n_updates == 1 ? "" : "s");
    for (size_t i = 0; i < n_updates; i++) {
        _cleanup_error_ struct berth_error *err = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_free_ char *reject = NULL;
        struct stat st;
        bool has_reject;

        if (!strcmp(updates[i].new_hex, "0000000000000000000000000000000000000000")) {
            receiver_progress(push, "-----> deleting %s", updates[i].refname);
            continue;
        }
        dir = xstrdup("/tmp/receiver-export-XXXXXX");
        if (!mkdtemp(dir)) {
            strbuf_addf(reason, "deploy failed: mkdtemp: %s", strerror(errno));
            return -EIO;
        }
        if (receiver_push_export(push, updates[i].new_hex, dir, &err) < 0) {
            strbuf_addf(reason, "deploy failed: %s", berth_error_msg(&err));
            (void)rm_rf(dir, NULL);
            return -EIO;
        }
        reject = xasprintf("%s/REJECT", dir);
        has_reject = lstat(reject, &st) == 0;
        {
            _cleanup_free_ char *slow = xasprintf("%s/SLOW", dir);

            /* A silent stretch longer than the receiver's keepalive interval. */
            if (lstat(slow, &st) == 0)
                sleep(6);
        }
        {
            _cleanup_free_ char *readme = xasprintf("%s/README", dir);

            receiver_progress(push, "-----> exported %.12s (README %s)", updates[i].new_hex,
                              lstat(readme, &st) == 0 ? "present" : "absent");
        }
        {
            /* A large file (exported by streaming): its size and digest, to compare with the pushed one. */
            _cleanup_free_ char *big = xasprintf("%s/BIG", dir);
            _cleanup_strbuf_ struct strbuf data = STRBUF_INIT;
            char hex[SHA256_HEX_LEN + 1];

            if (read_file(big, &data, (size_t)64 << 20, NULL) == 0) {
                sha256_hex(data.buf, data.len, hex);
                receiver_progress(push, "-----> BIG %zu %s", data.len, hex);
            }
        }
        (void)rm_rf(dir, NULL);
        sleep(1);
        receiver_progress(push, "-----> building %s", updates[i].refname);
        if (has_reject) {
            strbuf_addstr(reason, "deploy failed: REJECT present");
            return -EPERM;
        }
    }
    receiver_progress(push, "-----> deploy done");
    return 0;
}

/*
 * The receiver keeps a copy of the options of a request's first call, so
 * deploy_cls must outlive the call: repository paths are interned here for
 * the life of the program (a test server serves a handful).
 */
static const char *intern_path(const char *path)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static char *paths[64];
    const char *found = NULL;

    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < 64 && !found; i++) {
        if (!paths[i])
            paths[i] = xstrdup(path);
        if (strcmp(paths[i], path) == 0)
            found = paths[i];
    }
    pthread_mutex_unlock(&lock);
    return found;
}

/* The receiver's settled hook; cls is the repository's path (interned). */
static void settled(void *cls, struct receiver_push *push, bool ok)
{
    git_repository *repo = NULL;
    git_oid oid;
    char hex[GIT_OID_HEXSZ + 1] = "none";
    int landed;

    if (git_repository_open_bare(&repo, cls) == 0 && git_reference_name_to_id(&oid, repo, "refs/heads/main") == 0)
        git_oid_tostr(hex, sizeof(hex), &oid);
    git_repository_free(repo);
    landed = receiver_push_ref_landed(push, "refs/heads/main");
    receiver_progress(push, "-----> settled %s, main at %s, main %s", ok ? "ok" : "failed", hex,
                      landed < 0 ? "not pushed" : landed ? "landed" : "not landed");
}

static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || len > 100 || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
              || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **slot)
{
    struct server *s = cls;
    struct receiver_options opts = { 0 };
    const char *dotgit = strstr(url, ".git/");
    _cleanup_free_ char *repo = NULL;
    _cleanup_error_ struct berth_error *err = NULL;

    (void)version;
    if (url[0] != '/' || !dotgit || !valid_name(url + 1, (size_t)(dotgit - url - 1))) {
        static const char msg[] = "not found\n";
        struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                                                 MHD_RESPMEM_PERSISTENT);
        enum MHD_Result res = MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, r);

        MHD_destroy_response(r);
        return res;
    }
    repo = xasprintf("%s/%.*s.git", s->dir, (int)(dotgit - url - 1), url + 1);
    if (!*slot && receiver_repo_init(repo, &err) < 0)
        fprintf(stderr, "receiver-test-server: %s\n", berth_error_msg(&err));
    opts.repo_path = repo;
    opts.deploy = s->deploy ? deploy : NULL;
    opts.settled = settled;
    opts.deploy_cls = (void *)intern_path(repo);
    opts.max_request_bytes = s->max_bytes;
    return receiver_http_handle(conn, dotgit + 5, method, upload_data, upload_data_size, slot, &opts);
}

static void completed(void *cls, struct MHD_Connection *conn, void **slot,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    receiver_http_completed(slot);
}

int main(int argc, char **argv)
{
    _cleanup_error_ struct berth_error *err = NULL;
    struct server s = { 0 };
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;
    sigset_t set;
    int sig, i;

    for (i = 1; i < argc - 1; i++) {
        if (!strcmp(argv[i], "--deploy"))
            s.deploy = true;
        else if (!strcmp(argv[i], "--max-bytes") && i + 1 < argc - 1)
            s.max_bytes = (size_t)strtoull(argv[++i], NULL, 10);
        else
            break;
    }
    if (i != argc - 1) {
        fprintf(stderr, "usage: receiver-test-server [--deploy] [--max-bytes N] <repos-dir>\n");
        return 2;
    }
    s.dir = argv[i];
    if (receiver_global_init(&err) < 0) {
        fprintf(stderr, "receiver-test-server: %s\n", berth_error_msg(&err));
        return 1;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Block before MHD starts its threads so they inherit the mask and sigwait() gets the signal. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                             | MHD_USE_ERROR_LOG,
                         0, NULL, NULL, handle, &s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "receiver-test-server: cannot start the HTTP daemon\n");
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("%u\n", info ? (unsigned int)info->port : 0u);
    fflush(stdout);
    (void)sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
