/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * berth's main(): one binary for the daemon (`berth serve`), the one-time
 * root step (`berth setup`), `berth container run` and the client commands (`berth apps:create`,
 * ...). Option parsing lives here and nowhere else.
 */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/cli.h"
#include "control/git-shell.h"
#include "control/container-cmd.h"
#include "control/doctor.h"
#include "control/model.h"
#include "control/serve.h"
#include "runner/runner.h"

#ifndef BERTH_BUILDPACKS_SRC
#error "meson defines BERTH_BUILDPACKS_SRC"
#endif
#define BERTH_VERSION "0.1.0"

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
    _cleanup_free_ char *home = NULL, *staging = NULL;
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
        if (setup_serve_as_root(user, home, opt.buildpacks_src, &staging, &err) < 0)
            goto fail;
        log_info("dropped privileges to user '%s'", user);
    } else if (setup_serve_clear_ambient_caps(&err) < 0) {
        goto fail;
    }
    if (!home)
        home = model_default_home();
    if (home[0] != '/') {
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        char *abs = xasprintf("%s/%s", cwd ? cwd : "", home);

        free(home);
        home = abs;
    }
    if (setup_serve_home(home, staging, &err) < 0)
        goto fail;
    if (staging)
        opt.buildpacks_src = NULL;
    /* Where systemd delegated our cgroup (Delegate=yes), berth-<user> is ours to make. */
    if (runner_cgroup_self_delegate(&err) < 0) {
        log_warn("making berth's cgroups below its own: %s", berth_error_msg(&err));
        berth_error_release(&err);
    }
    /* Network is optional (a warning later); the limits are unless --allow-no-limits. */
    if (doctor_run(NULL, DOCTOR_REQUIRED | (opt.allow_no_limits ? 0 : DOCTOR_LIMITS), home, &err) > 0) {
        berth_error_wrap(&err, "berth cannot run safely on this host ('berth doctor' lists every check)");
        goto fail;
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
        { "remove", no_argument, NULL, 'r' },
        { "purge", no_argument, NULL, 'p' },
        { "systemd", no_argument, NULL, 's' },
        { "unit-dir", required_argument, NULL, 'd' },
        { "ssh", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    _cleanup_error_ struct berth_error *err = NULL;
    const char *user = "berth", *unit_dir = "/etc/systemd/system";
    bool remove = false, purge = false, systemd = false, ssh = false;
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': user = optarg; break;
        case 'r': remove = true; break;
        case 'p': purge = true; break;
        case 's': systemd = true; break;
        case 'd': unit_dir = optarg; break;
        case 'S': ssh = true; break;
        case 'h': return cli_help(stdout, "setup");
        default: cli_help(stderr, "setup"); return 2;
        }
    }
    if (optind != argc || (purge && !remove) || (remove && (systemd || ssh))) {
        cli_help(stderr, "setup");
        return 2;
    }
    if (remove) {
        if (setup_remove(user, purge, &err) < 0)
            goto fail;
        printf("berth setup: removed what setup made for '%s'%s\n", user,
               purge ? " (and the user with its home)" : "");
        return 0;
    }
    if (setup_host(user, NULL, NULL, NULL, &err) < 0)
        goto fail;
    printf("berth setup: user '%s' is ready (subordinate ids, delegated cgroups)\n", user);
    if (ssh) {
        if (setup_ssh(user, &err) < 0)
            goto fail;
        printf("berth setup: sshd may log '%s' in with the keys of 'berth keys:add' (~%s/.ssh/authorized_keys)\n",
               user, user);
    }
    if (systemd) {
        if (setup_systemd(user, unit_dir, &err) < 0)
            goto fail;
        printf("berth setup: wrote %s/berth.service; run 'systemctl daemon-reload && "
               "systemctl enable --now berth'\n", unit_dir);
    }
    return 0;
fail:
    fprintf(stderr, "berth setup: %s\n", berth_error_msg(&err));
    return 1;
}

/* As root: the checks run for `user`, in a child that drops to it first. */
static int doctor_as(const char *user)
{
    struct passwd *pw = getpwnam(user);
    int status;
    pid_t pid;

    if (!pw) {
        fprintf(stderr, "berth doctor: no user '%s'; run 'berth setup --user %s' as root\n", user, user);
        return 1;
    }
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("berth doctor: fork");
        return 1;
    }
    if (pid == 0) {
        _cleanup_error_ struct berth_error *err = NULL;
        _cleanup_free_ char *home = NULL;

        if (setup_drop_privileges(pw->pw_uid, pw->pw_gid, user, pw->pw_dir, &err) < 0) {
            fprintf(stderr, "berth doctor: %s\n", berth_error_msg(&err));
            _exit(1);
        }
        home = model_default_home();
        _exit(doctor_run(stdout, DOCTOR_ALL, access(home, W_OK) == 0 ? home : "/tmp", &err) ? 1 : 0);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int cmd_doctor(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "user", required_argument, NULL, 'u' },
        { "home", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    _cleanup_error_ struct berth_error *err = NULL;
    _cleanup_free_ char *home = NULL;
    const char *user = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': user = optarg; break;
        case 'H': free(home); home = xstrdup(optarg); break;
        case 'h': return cli_help(stdout, "doctor");
        default: cli_help(stderr, "doctor"); return 2;
        }
    }
    if (optind != argc) {
        cli_help(stderr, "doctor");
        return 2;
    }
    if (geteuid() == 0)
        return doctor_as(user ? user : "berth");
    if (user) {
        struct passwd *pw = getpwuid(geteuid());

        if (!pw || strcmp(pw->pw_name, user) != 0) {
            fprintf(stderr, "berth doctor: --user is for root; run it as '%s' instead\n", user);
            return 2;
        }
    }
    if (!home)
        home = model_default_home();
    return doctor_run(stdout, DOCTOR_ALL, access(home, W_OK) == 0 ? home : "/tmp", &err) ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "help";

    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "git-shell") == 0)
        return gitshell_main(argc - 1, argv + 1);
    if (strcmp(cmd, "setup") == 0)
        return cmd_setup(argc - 1, argv + 1);
    if (strcmp(cmd, "container") == 0) {
        /* `container --help` and `container run --help` say what `help container` says. */
        int h = argc > 2 && strcmp(argv[2], "run") == 0 ? 3 : 2;

        if (argc == h + 1 && (strcmp(argv[h], "--help") == 0 || strcmp(argv[h], "-h") == 0))
            return cli_help(stdout, "container");
        return container_cmd_main(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "doctor") == 0)
        return cmd_doctor(argc - 1, argv + 1);
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
