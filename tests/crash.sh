#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kill -9 of `berth serve` in each window of a deploy, held open with the
# test-only knob BERTH_TEST_PAUSE (control/deploy.c): after the build
# ("built"), with the new release's instance started and checked but not
# yet routed ("started"), and after the receiver moved the ref but before
# the release record is written ("settled"). After each: every process of
# the killed daemon is gone (the spawner, the containers' inits, the app),
# a restart on the same home brings the old release back (never none,
# never a release whose commit the repository lacks), what the crash left
# in run/ and in the app's cgroup is swept, and the next push deploys.
# Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
"$BERTH" apps:create crash >/dev/null
src=$TEST_DIR/src
cp -a "$SRCDIR/tests/apps/greet" "$src"
git -C "$src" init -q -b main
commit_all "$src" "greet"
serves() { wait_body crash.localhost / "$1" 10; }
current() { "$BERTH" releases crash --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["current"])'; }
ref() { git --git-dir="$home/apps/crash/repo.git" rev-parse --verify -q refs/heads/main || echo none; }
if push_app "$src" crash "$TEST_DIR/push"; then ok "v1 deploys"; else not_ok "v1 deploys"; diag "$TEST_DIR/push"; fi
"$BERTH" config:set crash GREETING=one >/dev/null
check "v2 (config) serves" serves "greeting=one"

# The app's cgroup in the v1 memory hierarchy (berth setup delegates berth-<user> below the
# cgroup berth runs in, runner/cgroup-layout.c), or "" on a host without one.
app_cgroup() {
    local p
    p=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
    [ -n "$p" ] && [ -d "/sys/fs/cgroup/memory${p%/}/berth-$(id -un)" ] && berth_cgroup memory admin/crash
}
cg=$(app_cgroup || true)

# descendants PID: every process below PID.
descendants() {
    local kids p
    kids=$(pgrep -P "$1" || true)
    for p in $kids; do echo "$p"; descendants "$p"; done
}

# The spawner is berth-spawner, exec'd by the daemon's forked child (runner/client.c), so
# that what it forks copies a small image; PDEATHSIG, which the checks below rely on,
# is set after that exec (runner/spawner.c).
spawner=$(pgrep -P "$serve_pid" -x berth-spawner | head -1 || true)
spawner_exe=$( [ -n "$spawner" ] && readlink "/proc/$spawner/exe" || true)
check "the daemon's spawner runs the berth-spawner program (${spawner_exe:-no spawner found})" \
    test "$(basename "${spawner_exe:-none}")" = berth-spawner

for window in built started settled; do
    stop_berth
    export BERTH_TEST_PAUSE=$window BERTH_TEST_PAUSE_MS=30000
    start_berth "$home" || { not_ok "berth serve starts with the pause at '$window'"; continue; }
    unset BERTH_TEST_PAUSE BERTH_TEST_PAUSE_MS
    serves "greeting=one" || true
    before_ref=$(ref)
    before_release=$(current)
    echo "# $window" >>"$src/app.py"
    commit_all "$src" "crash at $window"
    push_app "$src" crash "$TEST_DIR/push.$window" &
    push_pid=$!
    for _ in $(seq 1 300); do grep -q "pausing the deploy at '$window'" "$TEST_DIR/serve.log" && break; sleep 0.1; done
    check "$window: the deploy reached its window" contains "$TEST_DIR/serve.log" "pausing the deploy at '$window'"
    procs=$(descendants "$serve_pid" | tr '\n' ' ')
    kill -KILL "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=
    wait "$push_pid" 2>/dev/null || true
    left=
    for _ in $(seq 1 50); do
        left=
        for p in $procs; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    check "$window: every process of the killed daemon is gone (${procs:+$(echo $procs | wc -w) were running})" test -z "$left"
    if [ "$window" = settled ]; then
        check "$window: the ref had moved to the pushed commit" test "$(ref)" = "$(git -C "$src" rev-parse HEAD)"
    else
        check "$window: the ref has not moved" test "$(ref)" = "$before_ref"
    fi
    if start_berth "$home"; then ok "$window: berth serve starts again"; else not_ok "$window: berth serve starts again"; continue; fi
    check "$window: the old release serves again" serves "greeting=one"
    check "$window: and it is still the current one (v$before_release)" test "$(current)" = "$before_release"
    check "$window: what the crash left in run/ is swept" test -z "$(ls "$home/run/builds")"
    if [ -n "$cg" ]; then
        check "$window: the killed containers' cgroups are swept, and said so" \
            grep -Eq "removed [0-9]+ empty cgroups below '$(tenant_cgroup admin)/crash', left after a crash" "$TEST_DIR/serve.log"
        check "$window: ... only the restored instance's is left ($(find "$cg" -mindepth 1 -maxdepth 1 -type d -printf '%f '))" \
            test "$(find "$cg" -mindepth 1 -maxdepth 1 -type d | wc -l)" = 1
    else
        skip "$window: no v1 memory hierarchy here to look for the crash's cgroups in"
    fi
    echo "# $window again" >>"$src/app.py"
    commit_all "$src" "after the crash at $window"
    if push_app "$src" crash "$TEST_DIR/push2.$window"; then ok "$window: the next push deploys"; else
        not_ok "$window: the next push deploys"; diag "$TEST_DIR/push2.$window"; fi
    check "$window: ... as the next release" test "$(current)" = $((before_release + 1))
    check "$window: ... and serves" serves "greeting=one"
done
done_testing
