#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The README's first command, `make run`, on a machine that is not ready:
# as a normal user, tools/install-deps.sh must print the exact apt-get line
# for what is missing and stop (it may only install as root). (That
# tools/run.sh tells a user without subordinate ids how to prepare one is
# checked by tests/serve-as-root.sh, which can run it as such a user.)
# Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
[ "$(id -u)" != 0 ] || skip_all "run as an unprivileged user (make test does this as root)"

# A list with one package this machine has and one no machine has.
printf '# test list\nbash\n\nberth-no-such-package\n' >"$TEST_DIR/packages.txt"
r=0
BERTH_PACKAGES=$TEST_DIR/packages.txt bash "$SRCDIR/tools/install-deps.sh" >"$TEST_DIR/deps.out" 2>&1 || r=$?
check "install-deps as a normal user stops when a package is missing (exit $r)" [ "$r" = 1 ]
check "... printing the exact apt-get line for just what is missing" \
    contains "$TEST_DIR/deps.out" "sudo apt-get update && sudo apt-get install -y berth-no-such-package"
check "... and not the packages that are installed" not_contains "$TEST_DIR/deps.out" "install -y bash"

printf 'bash\ncoreutils\n' >"$TEST_DIR/installed.txt"
r=0
BERTH_PACKAGES=$TEST_DIR/installed.txt bash "$SRCDIR/tools/install-deps.sh" >"$TEST_DIR/deps2.out" 2>&1 || r=$?
check "install-deps with nothing missing succeeds (exit $r)" [ "$r" = 0 ]
check "... and prints nothing" [ ! -s "$TEST_DIR/deps2.out" ]

# package?command: satisfied by the command being on PATH, whatever installed it.
printf 'berth-no-such-package?bash\n' >"$TEST_DIR/cmd.txt"
r=0
BERTH_PACKAGES=$TEST_DIR/cmd.txt bash "$SRCDIR/tools/install-deps.sh" >"$TEST_DIR/deps3.out" 2>&1 || r=$?
check "a package whose command is on PATH counts as installed (exit $r)" [ "$r" = 0 ]
printf 'berth-no-such-package?berth-no-such-command\n' >"$TEST_DIR/cmd2.txt"
r=0
BERTH_PACKAGES=$TEST_DIR/cmd2.txt bash "$SRCDIR/tools/install-deps.sh" >"$TEST_DIR/deps4.out" 2>&1 || r=$?
check "... and when the command is missing the package is asked for (exit $r)" \
    contains "$TEST_DIR/deps4.out" "install -y berth-no-such-package"

done_testing
