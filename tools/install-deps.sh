#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Installs the Debian packages in tools/packages.txt that are missing. As
# root it runs apt-get itself (non-interactively, `apt-get update` first);
# otherwise it prints the exact command to run and stops.
# A line `package?command` means: only when `command` is not on PATH (node
# and npm may come from elsewhere, e.g. NodeSource's nodejs, which bundles
# npm and conflicts with Debian's npm package).
# BERTH_PACKAGES names another list (tests/make-commands.sh uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(grep -vE '^\s*(#|$)' "${BERTH_PACKAGES:-tools/packages.txt}")
missing=()
for line in "${wanted[@]}"; do
    p=${line%%\?*}
    if [ "$p" != "$line" ] && command -v "${line#*\?}" >/dev/null 2>&1; then
        continue
    fi
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "berth needs these Debian packages; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Server packages (apache2, nginx) are runtimes for apps here, not host
# services: keep their postinst from starting them, as container images do.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && own_policy=1
fi
trap '[ -n "$own_policy" ] && rm -f "$policy"' EXIT
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
