#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `make run`: starts berth in the foreground on its embedded default (data
# under one directory, router on 127.0.0.1:8080, API and git on
# 127.0.0.1:8081). As root, `berth serve` runs the one-time host setup itself
# and then drops to the unprivileged `berth` user for good. As another user,
# the host must have been prepared once by root; this says how if not.
set -euo pipefail
build=${1:-build}
if [ "$(id -u)" != 0 ] && ! grep -q "^$(id -un):" /etc/subuid 2>/dev/null; then
    echo "berth: user '$(id -un)' has no subordinate ids and no delegated cgroups yet." >&2
    echo "Run once:  sudo $build/berth setup --user $(id -un)" >&2
    exit 1
fi
exec "$build/berth" serve
