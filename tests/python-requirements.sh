#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Python buildpack's requirement walk (buildpacks/python/lib/
# requirements.sh), which bin/compile and bin/berth-offline source: the
# files a requirements.txt pulls in, each read once however it is named
# (a file is known by its device and inode), a loop refused wherever it
# closes, and whether anything is left to install. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
lib=$SRCDIR/buildpacks/python/lib/requirements.sh

# walk DIR: sources the library in a subshell in DIR, walks requirements.txt,
# prints the inputs one per line, then "install" or "nothing"; a loop
# prints "fail: <first line>" and exits 1, as the scripts' fail would.
walk() {
    (
        cd "$1"
        # shellcheck disable=SC2317 # called by req_walk
        fail() { echo "fail: $1"; exit 1; }
        # shellcheck source=../buildpacks/python/lib/requirements.sh
        . "$lib"
        req_walk requirements.txt
        # shellcheck disable=SC2154 # set by req_walk
        printf '%s\n' "${req_inputs[@]}"
        if req_nonempty; then echo install; else echo nothing; fi
    )
}

d=$TEST_DIR/flat
mkdir -p "$d"
printf '# only a comment\n\n--no-index\n' >"$d/requirements.txt"
check "a file of comments and options alone: itself, nothing to install" \
    [ "$(walk "$d")" = $'requirements.txt\nnothing' ]

d=$TEST_DIR/nested
mkdir -p "$d/sub" "$d/wheels"
printf -- '-r sub/base.txt\n-c sub/pins.txt\n--find-links wheels\n' >"$d/requirements.txt"
printf -- '-r ../sub/./pins.txt\n' >"$d/sub/base.txt"
printf 'flask==2.2\n' >"$d/sub/pins.txt"
check "-r and -c are followed, a file named twice through other paths is read once, --find-links is an input" \
    [ "$(walk "$d")" = $'requirements.txt\n./sub/base.txt\n./sub/../sub/./pins.txt\nwheels\n./wheels\ninstall' ]

d=$TEST_DIR/self
mkdir -p "$d"
printf -- '-r sub/../requirements.txt\nflask\n' >"$d/requirements.txt"
mkdir -p "$d/sub"
out=$(walk "$d" || true)
check "a file that includes itself by another path is a loop" \
    [ "$out" = "fail: the requirement files include each other in a loop (-r or -c back to sub/../requirements.txt): pip cannot install from them" ]

d=$TEST_DIR/loop
mkdir -p "$d/a"
printf -- '-r a/one.txt\n' >"$d/requirements.txt"
printf -- '-r two.txt\n' >"$d/a/one.txt"
printf -- '-c ../a/one.txt\n' >"$d/a/two.txt"
out=$(walk "$d" || true)
check "a loop two files deep, closed through a relative path, is refused naming where it closes" \
    [ "$out" = "fail: the requirement files include each other in a loop (-r or -c back to a/../a/one.txt): pip cannot install from them" ]

d=$TEST_DIR/link
mkdir -p "$d"
printf 'requests\n' >"$d/real.txt"
ln -s real.txt "$d/alias.txt"
printf -- '-r real.txt\n-r alias.txt\n' >"$d/requirements.txt"
check "a link to a file already read is that file: read once, no loop" \
    [ "$(walk "$d")" = $'requirements.txt\n./real.txt\ninstall' ]
done_testing
