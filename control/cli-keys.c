/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli-keys: `berth keys`, `keys:add`, `keys:remove` (tenants' SSH
 * keys, /keys in the API, keys.h) and `berth git:clone`, which clones an
 * app's repository back over smart HTTP with the CLI's token, handed to
 * git in its environment (never on a command line or in the clone's config).
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"
#include "control/cli-internal.h"

#define KEYFILE_MAX 16384

int cli_keys(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    int as_json = cli_json_flag(argc, argv, "keys [--json]");
    json_t *k;
    size_t i;

    if (as_json < 0)
        return 2;
    if (cli_request("GET", "/keys", NULL, &doc) < 0)
        return 1;
    if (as_json) {
        cli_print_json(doc);
        return 0;
    }
    printf("=== SSH keys\n");
    if (json_array_size(json_object_get(doc, "keys")) == 0)
        printf("(none: 'berth keys:add KEYFILE', e.g. ~/.ssh/id_ed25519.pub)\n");
    json_array_foreach(json_object_get(doc, "keys"), i, k) {
        const char *comment = json_get_str(k, "comment");

        printf("%-51s %-16s %-12s %s\n", json_get_str(k, "fingerprint"), json_get_str(k, "tenant"),
               json_get_str(k, "type"), comment ? comment : "");
    }
    return 0;
}

static int read_keyfile(const char *path, struct strbuf *out)
{
    _cleanup_error_ struct berth_error *err = NULL;

    if (strcmp(path, "-") == 0) {
        char buf[4096];
        ssize_t n;

        while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
            if (n > 0)
                strbuf_add(out, buf, (size_t)n);
            if (out->len > KEYFILE_MAX) {
                fprintf(stderr, "berth: the key on stdin is too long\n");
                return -1;
            }
        }
        return 0;
    }
    if (read_file(path, out, KEYFILE_MAX, &err) < 0) {
        fprintf(stderr, "berth: %s\n", berth_error_msg(&err));
        return -1;
    }
    return 0;
}

int cli_keys_add(int argc, char **argv)
{
    _cleanup_strbuf_ struct strbuf key = STRBUF_INIT;
    _cleanup_json_ json_t *body = json_object(), *doc = NULL;
    const char *file = argv[argc - 1];

    if (argc == 2)
        json_object_set_new(body, "tenant", json_string(argv[0]));
    if (read_keyfile(file, &key) < 0)
        return 1;
    json_object_set_new(body, "key", json_stringn(key.buf ? key.buf : "", key.len));
    printf("Adding ssh key from %s... ", strcmp(file, "-") ? file : "stdin");
    fflush(stdout);
    if (cli_request("POST", "/keys", body, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("done, %s for tenant %s\n", json_get_str(doc, "fingerprint"), json_get_str(doc, "tenant"));
    return 0;
}

int cli_keys_remove(int argc, char **argv)
{
    _cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
    _cleanup_json_ json_t *doc = NULL;
    (void)argc;

    /* base64 holds '+' and '/', and '=' may follow: percent-encode all but the safe ones. */
    strbuf_addstr(&path, "/keys?fingerprint=");
    for (const char *c = argv[0]; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_')
            strbuf_addch(&path, *c);
        else
            strbuf_addf(&path, "%%%02X", (unsigned char)*c);
    }
    printf("Removing ssh key %s... ", argv[0]);
    fflush(stdout);
    if (cli_request("DELETE", path.buf, NULL, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    printf("done\n");
    return 0;
}

int cli_git_clone(int argc, char **argv)
{
    _cleanup_free_ char *token = cli_token();
    _cleanup_free_ char *url = xasprintf("%s/%s.git", cli_base_url(), argv[0]);
    _cleanup_free_ char *header = NULL;
    const char *dir = argc == 2 ? argv[1] : argv[0];
    char *git_argv[] = { (char *)"git", (char *)"clone", (char *)"--origin", (char *)"berth", url, (char *)dir, NULL };
    extern char **environ;
    pid_t pid;
    int r, status;

    if (!token) {
        fprintf(stderr, "berth: no API token: set BERTH_TOKEN\n");
        return 1;
    }
    /* git reads these as `-c http.extraHeader=...`; nothing of it lands in the clone. */
    header = xasprintf("Authorization: Bearer %s", token);
    setenv("GIT_CONFIG_COUNT", "1", 1);
    setenv("GIT_CONFIG_KEY_0", "http.extraHeader", 1);
    setenv("GIT_CONFIG_VALUE_0", header, 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    r = posix_spawnp(&pid, "git", NULL, NULL, git_argv, environ);
    if (r != 0) {
        fprintf(stderr, "berth: cannot run git: %s\n", strerror(r));
        return 1;
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    printf("Cloned %s into %s (remote 'berth': push there with your token as the password)\n", argv[0], dir);
    return 0;
}
