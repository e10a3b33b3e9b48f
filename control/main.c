/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * berth's main(): one binary for the daemon (`berth serve`), the one-time
 * root step (`berth setup`), `berth container run` and the client commands (`berth apps:create`,
 * ...). Option parsing lives here and nowhere else.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/cli.h"
#include "control/container-cmd.h"
#include "control/model.h"
#include "control/serve.h"

#ifndef BERTH_BUILDPACKS_SRC
#error "meson defines BERTH_BUILDPACKS_SRC"
#endif
#define BERTH_VERSION "0.1.0"

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return lchown(path, chown_uid, chown_gid) < 0 ? -1 : 0;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "home", required_argument, NULL, 'H' },
        { "http", required_argument, NULL, 'h' },
        { "https", required_argument, NULL, 's' },
        { "control", required_argument, NULL, 'c' },
        { "domain", required_argument, NULL, 'd' },
        { "user", required_argument, NULL, 'u' },
        { "allow-no-limits", no_argument, NULL, 'L' },
        { "help", no_argument, NULL, '?' + 1 },
        { NULL, 0, NULL, 0 },
    };
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *home = NULL, *installed = NULL;
    const char *bp_env = getenv("BERTH_BUILDPACKS");
    struct server_options opt = {
        .http_addr = "127.0.0.1:8080",
        .control_addr = "127.0.0.1:8081",
        .domain = "localhost",
        .buildpacks_src = bp_env && *bp_env ? bp_env : BERTH_BUILDPACKS_SRC,
    };
    const char *user = "berth";
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': home = xstrdup(optarg); break;
        case 'h': opt.http_addr = optarg; break;
        case 's': opt.https_addr = optarg; break;
        case 'c': opt.control_addr = optarg; break;
        case 'd': opt.domain = optarg; break;
        case 'u': user = optarg; break;
        case 'L': opt.allow_no_limits = true; break;
        case '?' + 1: return cli_help(stdout, "serve");
        default: cli_help(stderr, "serve"); return 2;
        }
    }
    if (optind != argc) {
        cli_help(stderr, "serve");
        return 2;
    }
    log_setup("serve", LOG_LEVEL_INFO);

    if (geteuid() == 0) {
        /* Started as root: prepare the host, then drop to the berth user for good. */
        _cleanup_free_ char *user_home = NULL;
        uid_t uid;
        gid_t gid;

        if (setup_host(user, &uid, &gid, &user_home, &err) < 0)
            goto fail;
        if (!home) {
            _cleanup_free_ char *local = xasprintf("%s/.local", user_home);
            _cleanup_free_ char *share = xasprintf("%s/.local/share", user_home);

            home = xasprintf("%s/.local/share/berth", user_home);
            if (setup_own_dir(local, uid, gid, &err) < 0 || setup_own_dir(share, uid, gid, &err) < 0)
                goto fail;
        }
        if (setup_own_dir(home, uid, gid, &err) < 0)
            goto fail;
        /* The source tree may not be readable by the berth user: install the buildpacks now. */
        installed = xasprintf("%s/buildpacks", home);
        if (serve_install_buildpacks(opt.buildpacks_src, installed, &err) < 0)
            goto fail;
        chown_uid = uid;
        chown_gid = gid;
        if (nftw(installed, chown_one, 16, FTW_PHYS) < 0) {
            berth_error_make(&err, errno, "chown '%s'", installed);
            goto fail;
        }
        opt.buildpacks_src = NULL;
        if (setup_drop_privileges(uid, gid, user, user_home, &err) < 0)
            goto fail;
        log_info("dropped privileges to user '%s'", user);
    }
    if (!home)
        home = model_default_home();
    if (home[0] != '/') {
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        char *abs = xasprintf("%s/%s", cwd ? cwd : "", home);

        free(home);
        home = abs;
    }
    opt.home = home;
    if (server_run(&opt, &err) < 0)
        goto fail;
    return 0;
fail:
    log_error("%s", berth_error_msg(&err));
    return 1;
}

static int cmd_setup(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "user", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    _cleanup_error_ struct berth_error *err = NULL;
    const char *user = "berth";
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(stdout, "setup");
        if (c != 'u') {
            cli_help(stderr, "setup");
            return 2;
        }
        user = optarg;
    }
    if (optind != argc) {
        cli_help(stderr, "setup");
        return 2;
    }
    if (setup_host(user, NULL, NULL, NULL, &err) < 0) {
        fprintf(stderr, "berth setup: %s\n", berth_error_msg(&err));
        return 1;
    }
    printf("berth setup: user '%s' is ready (subordinate ids, delegated cgroups)\n", user);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "help";

    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "setup") == 0)
        return cmd_setup(argc - 1, argv + 1);
    if (strcmp(cmd, "container") == 0) {
        /* `container --help` and `container run --help` say what `help container` says. */
        int h = argc > 2 && strcmp(argv[2], "run") == 0 ? 3 : 2;

        if (argc == h + 1 && (strcmp(argv[h], "--help") == 0 || strcmp(argv[h], "-h") == 0))
            return cli_help(stdout, "container");
        return container_cmd_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 3) {
            fprintf(stderr, "usage: berth help [COMMAND]\n");
            return 2;
        }
        return cli_help(stdout, argc == 3 ? argv[2] : NULL);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("berth %s\n", BERTH_VERSION);
        return 0;
    }
    return cli_run(cmd, argc - 2, argv + 2);
}
