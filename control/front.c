/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The `berth` executable users run: a light front for the full program.
 * The full program (control/main.c, built as `berth-core`) links libcurl,
 * gnutls, libgit2, libmicrohttpd, jansson and some forty shared libraries
 * in all, whose loading alone takes ~7 ms at every exec; that is more than
 * a whole container start. So `berth` links only common/ and runner/, and
 * of their libraries libc alone (common/secret.c says why not libnettle),
 * statically where the build allows (meson.build, static_exe_args): it
 * runs `berth container run` itself (container-cmd.c), and execs
 * berth-core with argv unchanged for every other command. berth-core is looked for next
 * to this executable first (build/berth beside build/berth-core, or a
 * copy of both), then where `ninja install` puts it (libexecdir), then in
 * the build tree this front was built in.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "control/container-cmd.h"

#if !defined(BERTH_CORE_INSTALLED) || !defined(BERTH_CORE_BUILT)
#error "meson defines BERTH_CORE_INSTALLED and BERTH_CORE_BUILT"
#endif

/*
 * `container --help` and `container run --help` print berth-core's `help
 * container` (main.c), so they go there.
 */
static bool help_asked(int argc, char **argv)
{
    int h = argc > 2 && strcmp(argv[2], "run") == 0 ? 3 : 2;

    return argc == h + 1 && (strcmp(argv[h], "--help") == 0 || strcmp(argv[h], "-h") == 0);
}

int main(int argc, char **argv)
{
    char path[PATH_MAX];
    const char *core = path;

    if (argc > 1 && strcmp(argv[1], "container") == 0 && !help_asked(argc, argv))
        return container_cmd_main(argc - 1, argv + 1);
    if (!program_beside_self("berth-core", path, sizeof(path)))
        core = access(BERTH_CORE_INSTALLED, X_OK) == 0 ? BERTH_CORE_INSTALLED : BERTH_CORE_BUILT;
    execv(core, argv);
    fprintf(stderr, "berth: cannot run '%s': %s\n", core, strerror(errno));
    return 1;
}
