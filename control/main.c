/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * berth's main(): one binary for the daemon (`berth serve`), the one-time
 * root step (`berth setup`) and the client commands (`berth apps:create`,
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
#include "control/model.h"
#include "control/serve.h"

#ifndef BERTH_BUILDPACKS_SRC
#error "meson defines BERTH_BUILDPACKS_SRC"
#endif
#define BERTH_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: berth <command> [options]\n\n"
            "Server:\n"
            "  serve [--home DIR] [--http ADDR] [--https ADDR] [--control ADDR] [--domain NAME]\n"
            "        [--user NAME] [--allow-no-limits]\n"
            "                       run berth (router on 127.0.0.1:8080, API and git on 127.0.0.1:8081;\n"
            "                       --https adds the router's HTTPS listener, e.g. 0.0.0.0:443)\n"
            "  setup [--user NAME]  as root, once: create the berth user, its subordinate ids and cgroups,\n"
            "                       and make /dev/net/tun usable for outbound network\n\n"
            "Apps (talk to $BERTH_URL, default http://127.0.0.1:8081, with $BERTH_TOKEN or <home>/admin.token):\n"
            "  apps:create NAME     create an app; push to http://127.0.0.1:8081/NAME.git\n"
            "  apps:list            list your apps\n"
            "  apps:info APP        show an app and its settings\n"
            "  buildpacks APP, buildpacks:set APP URL|NAME[#REF]..., buildpacks:clear APP\n"
            "                       the app's buildpacks (default: detected among the built-ins)\n"
            "  builds:set APP dir=PATH|memory=SIZE|disk=SIZE|timeout=DURATION...\n"
            "                       build a subdirectory; the build's budget (operator only)\n"
            "  net APP, net:set APP outbound=on|off\n"
            "                       outbound network for the app's processes (off by default)\n"
            "  config APP, config:get APP NAME, config:set APP NAME=VALUE..., config:unset APP NAME...\n"
            "                       config vars; each change is a new release (--no-restart: the next one)\n"
            "  domains APP, domains:add APP NAME, domains:remove APP NAME\n"
            "                       custom domains (www.example.com, *.example.com) besides APP.<domain>\n"
            "  certs APP, certs:add APP CERT_FILE KEY_FILE, certs:remove APP ID\n"
            "                       TLS certificates (PEM) for the app's domains, picked by SNI\n"
            "  router APP, router:set APP timeout=S|connect_timeout=S|idle_timeout=S|https_only=on|off|\n"
            "                       maintenance=on|off...: the router's timeouts for the app (30, 5, 55 s),\n"
            "                       HTTP-to-HTTPS redirects; an empty value goes back to the default\n"
            "  maintenance APP, maintenance:on APP, maintenance:off APP\n"
            "                       the router answers every request 503 (H80) with a plain page\n"
            "  releases APP         every release, newest first\n"
            "  rollback APP [vN]    a new release from vN (default: the one before), no build\n"
            "  events [APP]         the audit log: who changed what, when\n"
            "  run APP -- COMMAND...\n"
            "                       run a command in a one-off container of the app's release, attached\n"
            "                       (stdin, stdout, stderr); exits with the command's exit status\n"
            "  run:detached APP [--json] -- COMMAND...\n"
            "                       the same in the background, its output in the app's log\n"
            "  ps:grace APP [SECONDS|default]\n"
            "                       SIGTERM to SIGKILL (and the drain) when an instance retires (30 s)\n"
            "  checks APP, checks:enable APP, checks:disable APP, checks:skip APP\n"
            "                       whether deploys run the app's startup health checks (app.json, CHECKS)\n"
            "  gc [--dry-run] [--keep N]\n"
            "                       remove slugs no app's last N (10) releases use (operator only)\n"
            "                       (domains, certs, router and releases take --json)\n\n"
            "  version, help\n");
}

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
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
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
        { NULL, 0, NULL, 0 },
    };
    _cleanup_error_ struct berth_error *err = NULL;
    const char *user = "berth";
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c != 'u') {
            usage(stderr);
            return 2;
        }
        user = optarg;
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
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("berth %s\n", BERTH_VERSION);
        return 0;
    }
    return cli_run(cmd, argc - 2, argv + 2);
}
