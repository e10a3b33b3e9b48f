#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `make test`: builds berth and runs every suite (unit and integration), in a
# normal build and in an AddressSanitizer + UndefinedBehaviorSanitizer
# build, then prints one line `N passed, N failed, N skipped` counting TAP
# cases across all of them.
#
# Run as root (as CI does), it first prepares the host exactly as a user
# would (`berth setup`: the berth user, its subordinate ids, its delegated
# cgroups), then runs the whole suite again as that unprivileged user in a
# copy of the tree it owns, with BERTH_MUST_WORK=1 so that nothing that needs
# user namespaces or cgroups can quietly skip.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
user=${BERTH_TEST_USER:-berth}

if [ "$(id -u)" = 0 ]; then
    [ -f build/build.ninja ] || meson setup build --buildtype=debugoptimized >/dev/null
    ninja -C build berth berth-core >/dev/null
    dest=$(mktemp -d /tmp/berth-tests.XXXXXX)
    tar --exclude=./build --exclude=./build-asan --exclude=./.git -cf - . | tar -xf - -C "$dest"
    # What only root can check, counted below: setup and the privilege drop
    # (serve-as-root); two operators, doctor on a host broken on purpose,
    # setup --remove/--systemd (two-operators); make bench's tree memory,
    # which reads page frame numbers only root sees (tree-mem). Each one's
    # TAP goes to root-NAME.tap in the copy; failures are shown here.
    echo "=== root"
    for name in serve-as-root two-operators tree-mem; do
        BERTH_TEST_USER=$user BERTH=$top/build/berth bash "tests/$name.sh" >"$dest/root-$name.tap" 2>&1 || true
        grep -E '^(not )?ok ' "$dest/root-$name.tap" | grep -v '^ok ' || echo "$name: $(grep -c '^ok ' "$dest/root-$name.tap") ok"
    done
    chown -R "$user:" "$dest"
    chmod 0755 "$dest"
    home=$(getent passwd "$user" | cut -d: -f6)
    set +e
    runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" USER="$user" LANG=C.UTF-8 \
        BERTH_MUST_WORK="${BERTH_MUST_WORK:-1}" CI="${CI:-}" bash "$dest/tests/run-tests.sh" </dev/null
    rc=$?
    set -e
    # A failed run copies its logs into test-logs/ of this checkout (each
    # suite's whole output is in meson-logs/testlog.txt), since the copy of
    # the tree goes next; every run as root first removes an earlier run's,
    # so what is there is the last root run's (a run as the user itself
    # keeps its logs in its own build dirs and leaves test-logs/ alone).
    # Nothing is printed: the summary above stays the last line.
    rm -rf "$top/test-logs"
    if [ "$rc" != 0 ]; then
        mkdir -p "$top/test-logs"
        for d in build build-asan; do
            [ ! -d "$dest/$d/meson-logs" ] || cp -r "$dest/$d/meson-logs" "$top/test-logs/$d" || true
        done
        cp "$dest"/root-*.tap "$top/test-logs/" 2>/dev/null || true
    fi
    # The containers left files owned by subordinate ids; root can remove them.
    rm -rf "$dest"
    exit $rc
fi

logs=()
run_setup() { # run_setup BUILDDIR [meson options...]
    local dir=$1; shift
    [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
    ninja -C "$dir" >/dev/null
    echo "=== $dir"
    meson test -C "$dir" --num-processes 2 --print-errorlogs --no-rebuild 2>&1 | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):' || true
    logs+=("$dir/meson-logs/testlog.json")
}

run_setup build --buildtype=debugoptimized -Dwerror=true
# The fork-into-namespace paths make LeakSanitizer's at-exit check meaningless
# in children that exec or _exit; leaks are still checked in the unit suite.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=0 \
    run_setup build-asan -Db_sanitize=address,undefined -Dwerror=true
# The root phase's TAP, when there was one.
for tap in root-*.tap; do
    [ -f "$tap" ] && logs+=("$tap")
done
exec python3 tests/tap-summary.py "${logs[@]}"
