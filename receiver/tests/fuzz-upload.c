/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target over what a fetching client sends to upload-pack
 * (receiver/upload.c): want lines with capabilities, shallow/deepen/filter
 * lines, have rounds, "done", fed from a memfd as a transport's fd would,
 * against a fixed repository of one commit whose id the seed corpus
 * holds (so the fuzzer reaches the negotiation and the pack builder). The
 * first input byte picks stateless (HTTP) or stream (ssh) mode. Nothing may
 * crash, leak or read out of bounds; an error always says why. Built and
 * run by tests/fuzz.sh.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/fileio.h"
#include "receiver/push.h"
#include "receiver/upload.h"

static git_repository *repo;
static int sink = -1;
static char repo_dir[] = "/tmp/berth-fuzz-upload-XXXXXX";

static void remove_repo(void)
{
    git_repository_free(repo);
    (void)rm_rf(repo_dir, NULL);
}

/* A bare repository with one commit "fuzz" (tree: README), fixed id across runs. */
static void make_repo(void)
{
    git_signature *sig = NULL;
    git_treebuilder *tb = NULL;
    git_tree *tree = NULL;
    git_oid blob, tree_id, commit;

    if (!mkdtemp(repo_dir) || git_repository_init(&repo, repo_dir, 1) < 0 ||
        git_blob_create_from_buffer(&blob, repo, "hello\n", 6) < 0 ||
        git_treebuilder_new(&tb, repo, NULL) < 0 ||
        git_treebuilder_insert(NULL, tb, "README", &blob, GIT_FILEMODE_BLOB) < 0 ||
        git_treebuilder_write(&tree_id, tb) < 0 || git_tree_lookup(&tree, repo, &tree_id) < 0 ||
        git_signature_new(&sig, "fuzz", "fuzz@example.com", 1700000000, 0) < 0 ||
        git_commit_create(&commit, repo, "refs/heads/main", sig, sig, NULL, "fuzz\n", tree, 0, NULL) < 0)
        abort();
    git_signature_free(sig);
    git_tree_free(tree);
    git_treebuilder_free(tb);
    atexit(remove_repo);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    git_libgit2_init();
    make_repo();
    sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
    return sink < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pkt_reader r;
    struct berth_error *err = NULL;
    bool stateless;
    int fd, k;

    if (size == 0)
        return 0;
    stateless = data[0] & 1;
    fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0 || (size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)))
        abort();
    (void)lseek(fd, 0, SEEK_SET);
    pkt_reader_init(&r, fd);
    k = upload_serve(repo, &r, sink, stateless, &err);
    if (k < 0 && !err)
        abort();        /* a failure always says why */
    berth_error_release(&err);
    close(fd);
    return 0;
}
