#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The isolation proof (reference/ISOLATION.md §5, A1-A15, and the cross-tenant
# checks): a static probe (tests/probe/probe.c) runs inside real containers
# started by `berth container run`, as apps run, and asserts raw errnos from
# the inside; this script adds what only the host can see (the container's
# host uids, the init's fds, what is left after a kill -9) and the bad input
# of `berth container run`. Run as the unprivileged berth user after
# `berth setup --user berth`; nothing is skipped.
set -euo pipefail
source "$(dirname "$0")/lib/libtest.sh"
require_rootless
[ -x "${PROBE:-}" ] || skip_all "no probe binary (PROBE=$PROBE)"

export BERTH_HOME=$TEST_DIR/home
slug=$TEST_DIR/slug
mkdir -p "$slug/app" "$TEST_DIR/empty" "$TEST_DIR/shared"
cp "$PROBE" "$slug/app/probe"
chmod -R a+rX "$slug"
chmod 1777 "$TEST_DIR/shared"
out=$TEST_DIR/out err=$TEST_DIR/err
bg_pids=()
stop_bg() { local p; for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; }
# An early exit must still fail the test: cleanup() exits with the status it finds.
trap 'keep=$?; stop_bg; if [ "$keep" = 0 ]; then cleanup; else false || cleanup; fi' EXIT

crun() { "$BERTH" container run "$@"; }
# In the background, berth itself ($! is its pid, not a subshell's).
CRUN=("$BERTH" container run)
# probe_tap FILE WHAT: the probe's "ok NAME" / "not ok NAME: why" lines as TAP lines.
probe_tap() {
    local line n=0
    while IFS= read -r line; do
        case $line in
            "ok "*) ok "${line#ok }"; n=$((n + 1)) ;;
            "not ok "*) not_ok "${line#not ok }"; n=$((n + 1)) ;;
        esac
    done <"$1"
    [ "$n" -gt 0 ] || { not_ok "$2: the probe printed no check"; diag "$1"; }
}
# wait_for FILE TEXT: up to 20 s for TEXT to appear in FILE.
wait_for() { local i; for i in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# The container cgroups of a tenant (pids hierarchy on v1; the one tree on v2).
ctr_cgroups() { find "$(berth_cgroup pids "containers/$1")" -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true; }
# no_ctr_cgroups T...: none of these tenants has a container cgroup (berth removes
# one a moment after `container run` returns: see settles).
no_ctr_cgroups() { local t; for t in "$@"; do [ -z "$(ctr_cgroups "$t")" ] || return 1; done; }
# live_cgroup T: the cgroup of tenant T's running container.
live_cgroup() {
    local d
    for d in $(ctr_cgroups "$1"); do [ -n "$(cat "$d/cgroup.procs" 2>/dev/null)" ] && { echo "$d"; return 0; }; done
    return 0
}
# What an earlier run of this test that was killed left (cgroups of berth-<user>/containers).
remove_tenant_cgroups containers
# pid_with_uid CGROUP UID: the host pid of the container's process running as UID.
pid_with_uid() {
    local p
    for p in $(cat "$1/cgroup.procs" 2>/dev/null); do
        [ "$(stat -c %u /proc/$p 2>/dev/null)" = "$2" ] && { echo "$p"; return 0; }
    done
    return 0
}
# Host processes whose uid lies in [BASE, BASE+65536).
procs_in_range() {
    local base=$1 p u st
    for p in /proc/[0-9]*; do
        u=$(stat -c %u "$p" 2>/dev/null) || continue
        [ "$u" -ge "$base" ] && [ "$u" -lt $((base + 65536)) ] || continue
        # A zombie runs nothing and holds no memory: `container run` leaves its
        # init, once ended, to the host's init to reap, as bwrap does its pid 1.
        st=$(sed 's/.*) //' "$p/stat" 2>/dev/null | cut -d' ' -f1) || continue
        [ "$st" = Z ] || echo "${p#/proc/}"
    done
    return 0
}
no_procs_in_range() { [ -z "$(procs_in_range "$1")" ]; }
# tenant_base T: the first host uid of tenant T's containers.
tenant_base() { crun --tenant "$1" "$TEST_DIR/empty" -- /bin/cat /proc/self/uid_map </dev/null | awk '{print $2}'; }

# ---------------------------------------------------------------- the probe, static checks
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind("\0" + sys.argv[1]); s.listen(1); print("ready", flush=True); time.sleep(120)
' "berth-probe-$$" >"$TEST_DIR/abstract.out" 2>&1 &
bg_pids+=($!)
wait_for "$TEST_DIR/abstract.out" ready || not_ok "a host abstract socket to aim at"
forbid="$TEST_DIR:$BERTH_HOME:$SRCDIR:$(dirname "$BERTH"):/home/$(id -un)"
# Through a pipe, as an app's output goes: a file there would name its host path.
set +e
crun --hostname probe-host -e "PROBE_FORBID=$forbid" -e "PROBE_HOST_PID=$$" -e "PROBE_ABSTRACT=berth-probe-$$" \
    -e PROBE_HOSTNAME=probe-host "$slug" -- /app/probe static </dev/null 2>&1 | cat >"$out"
rc=${PIPESTATUS[0]}
set -e
probe_tap "$out" "static probe"
check "static probe: every check passed (exit 0)" test "$rc" = 0
[ "$rc" = 0 ] || diag "$out"

# Where the kernel refuses a fresh sysfs, the host's /sys is bound read-only:
# /sys/fs/cgroup must still be the container's own view, not the host's tree.
set +e
BERTH_TEST_SYS_BIND=1 crun -e "PROBE_FORBID=$forbid" "$slug" -- /app/probe static </dev/null 2>&1 | cat >"$out"
rc=${PIPESTATUS[0]}
set -e
grep '^ok view\|^not ok view' "$out" | sed 's/^ok /ok host sysfs: /; s/^not ok /not ok host sysfs: /' >"$out.view"
probe_tap "$out.view" "the probe over the host's sysfs"
inner=$(BERTH_TEST_SYS_BIND=1 crun "$TEST_DIR/empty" -- stat -c %d /sys </dev/null 2>&1) || true
fresh=$(crun "$TEST_DIR/empty" -- stat -c %d /sys </dev/null 2>&1) || true
check "host sysfs: the knob binds the host's sysfs (device $inner = $(stat -c %d /sys)), else a fresh one ($fresh)" \
    test "$inner" = "$(stat -c %d /sys)" -a "$fresh" != "$inner"

rc=0
script -qec "$BERTH container run $slug -- /app/probe tiocsti" /dev/null >"$out" 2>&1 || rc=$?
tr -d '\r' <"$out" >"$out.tty"
probe_tap "$out.tty" "TIOCSTI"

# ---------------------------------------------------------------- A1, A8, A14 from the host
"${CRUN[@]}" --tenant held "$slug" -- /app/probe hold 60 </dev/null >"$out" 2>&1 &
held=$!
bg_pids+=($held)
if wait_for "$out" ready; then
    cg=$(live_cgroup held)
    pids=$(cat "$cg/cgroup.procs" 2>/dev/null | tr '\n' ' ') || true
    uids=$(for p in $pids; do stat -c %u /proc/$p || true; done | sort -n | tr '\n' ' ')
    set -- $uids
    base=${1:-0}
    init=$(pid_with_uid "$cg" "$base")
    check "A1 host: the container's processes run as the tenant's subordinate ids (uids $uids)" \
        test "$#" = 2 -a "${2:-0}" = $((base + 1000)) -a "$base" -ge 100000 -a "$base" != "$(id -u)"
    check "A1 host: berth's own uid is not mapped" \
        awk -v me="$(id -u)" '{ if ($2 <= me && me < $2 + $3) bad = 1 } END { exit bad }' /proc/$init/uid_map
    # The init never execs: its memory belongs to the host's namespace, so not
    # even berth's uid may look at its fds (they are /dev/null: runner/init.c).
    check "A8 host: the init's fds are closed even to berth's uid" \
        sh -c "! ls /proc/$init/fd >/dev/null 2>&1 && ! readlink /proc/$init/fd/0 >/dev/null 2>&1"
    check "view host: the init's cmdline names no host path" sh -c "tr '\0' ' ' </proc/$init/cmdline | grep -qx 'init *'"
    # A14: the one who started it dies by SIGKILL: nothing of the tenant survives.
    kill -KILL "$held"
    wait "$held" 2>/dev/null || true
    left=x
    for _ in $(seq 1 50); do left=$(procs_in_range "$base"); [ -z "$left" ] && break; sleep 0.1; done
    check "A14 kill -9 of berth leaves no process of the tenant (left: ${left:-none})" test -z "$left"
    # What berth killed with -9 leaves, as documented: an empty cgroup and its upper directory.
    rmdir "$cg" 2>/dev/null || true
    held_id=$(basename "$cg")
else
    not_ok "a container to look at from the host"; diag "$out"
fi

# ---------------------------------------------------------------- A9 signals, reaping, pid 1
rc=0; crun "$slug" -- /app/probe reap </dev/null >"$out" 2>&1 || rc=$?
probe_tap "$out" reap

rc=0
"${CRUN[@]}" "$slug" -- /app/probe sigterm </dev/null >"$out" 2>&1 &
p=$!
bg_pids+=($p)
wait_for "$out" ready && kill -TERM $p
wait $p || rc=$?
probe_tap "$out" sigterm
check "A9 SIGTERM to berth: the app's own exit status (0), got $rc" test "$rc" = 0

rc=0
# As from a terminal's ^C: a shell starts background jobs with SIGINT ignored, berth takes it back.
"${CRUN[@]}" --tenant sigint "$TEST_DIR/empty" -- /bin/sleep 60 </dev/null >"$out" 2>&1 &
p=$!
bg_pids+=($p)
for _ in $(seq 1 200); do [ -z "$(live_cgroup sigint)" ] || break; sleep 0.1; done
kill -INT $p
wait $p || rc=$?
check "A9 ^C (SIGINT) to berth: SIGTERM ends the app, berth exits 143 (got $rc)" test "$rc" = 143

rc=0
start=$(date +%s)
"${CRUN[@]}" --tenant deaf "$TEST_DIR/empty" -- /bin/sh -c 'trap "" TERM; echo ready; while :; do sleep 1; done' </dev/null >"$out" 2>&1 &
p=$!
bg_pids+=($p)
wait_for "$out" ready && kill -TERM $p
wait $p || rc=$?
took=$(($(date +%s) - start))
check "A9 an app ignoring SIGTERM is killed 10 s later: 137 (got $rc after ${took}s)" \
    test "$rc" = 137 -a "$took" -ge 9 -a "$took" -lt 30
check "... and its cgroup is gone" settles 5 no_ctr_cgroups deaf

rc=0
"${CRUN[@]}" --tenant pid1 "$slug" -- /app/probe hold 60 </dev/null >"$out" 2>&1 &
p=$!
bg_pids+=($p)
if wait_for "$out" ready; then
    cg=$(live_cgroup pid1)
    # The init is the container's root: the lowest uid of the two.
    init=$(for q in $(cat "$cg/cgroup.procs"); do echo "$(stat -c %u /proc/$q) $q" || true; done | sort -n | head -1 | cut -d' ' -f2)
    base=$(stat -c %u /proc/$init)
    kill -KILL "$init"
    wait $p || rc=$?
    left=$(procs_in_range "$base")
    check "A9 SIGKILL to the init ends the container: berth exits 137 (got $rc)" test "$rc" = 137
    check "A9 ... and leaves no process (left: ${left:-none})" test -z "$left"
else
    not_ok "a container whose init to kill"; diag "$out"
fi

# ---------------------------------------------------------------- A11-A13 limits
rc=0; crun --pids 40 "$slug" -- /app/probe forkbomb 500 </dev/null >"$out" 2>&1 || rc=$?
forked=$(sed -n 's/^forked \([0-9]*\) errno \([0-9]*\)$/\1/p' "$out")
e=$(sed -n 's/^forked \([0-9]*\) errno \([0-9]*\)$/\2/p' "$out")
check "A11 a fork bomb stops below --pids 40 with EAGAIN (forked ${forked:-?}, errno ${e:-?})" \
    test "${forked:-999}" -lt 40 -a "${e:-0}" = 11
check "A11 the host still forks" /bin/true

"${CRUN[@]}" --tenant sibling --memory 64M "$slug" -- /app/probe sibling 20 6 </dev/null >"$TEST_DIR/sibling" 2>&1 &
sib=$!
bg_pids+=($sib)
wait_for "$TEST_DIR/sibling" ready || true
rc=0; crun --tenant hog --memory 64M "$slug" -- /app/probe memhog 400 </dev/null >"$out" 2>&1 || rc=$?
check "A12 a memory hog dies at --memory 64M: 137 (got $rc)" test "$rc" = 137
check "A12 ... before it touched 400 MB" not_contains "$out" survived
rc=0; wait $sib || rc=$?
probe_tap "$TEST_DIR/sibling" "sibling"
check "A12 the sibling container exits 0 (got $rc)" test "$rc" = 0

rc=0; crun --cpus 0.5 "$slug" -- /app/probe spin 3 </dev/null >"$out" 2>&1 || rc=$?
probe_tap "$out" spin

# ---------------------------------------------------------------- across tenants
a_base=$(tenant_base alpha) b_base=$(tenant_base beta)
check "tenants alpha and beta get disjoint id ranges ($a_base, $b_base)" \
    test -n "$a_base" -a -n "$b_base" -a $((a_base > b_base ? a_base - b_base : b_base - a_base)) -ge 65536
check "the same tenant keeps its range" test "$(tenant_base alpha)" = "$a_base"

port=$(free_port) name="berth-cross-$$" key=$((RANDOM + 1000))
"${CRUN[@]}" --tenant alpha "$slug" -- /app/probe serve "$port" "$name" "$key" </dev/null >"$TEST_DIR/serve" 2>&1 &
serve=$!
bg_pids+=($serve)
if wait_for "$TEST_DIR/serve" ready; then
    shmid=$(sed -n 's/^shmid //p' "$TEST_DIR/serve")
    apid=$(pid_with_uid "$(live_cgroup alpha)" $((a_base + 1000)))
    rc=0; crun --tenant beta "$slug" -- /app/probe cross "$port" "$name" "$key" "$shmid" "${apid:-1}" </dev/null >"$out" 2>&1 || rc=$?
    probe_tap "$out" cross
    # kill(-1) inside another container of the same tenant reaches only that container.
    rc=0; crun --tenant alpha "$slug" -- /app/probe killall </dev/null >"$out" 2>&1 || rc=$?
    probe_tap "$out" killall
    check "A9 ... but not the same tenant's other container" kill -0 "$serve"
    kill -TERM "$serve"; wait "$serve" 2>/dev/null || true
    probe_tap "$TEST_DIR/serve" serve
else
    not_ok "tenant alpha's container to aim at"; diag "$TEST_DIR/serve"
fi
rc=0; crun --tenant alpha --volume "$TEST_DIR/shared:/shared" "$slug" -- /app/probe secret /shared/a.txt </dev/null >"$out" 2>&1 || rc=$?
probe_tap "$out" secret
rc=0; crun --tenant beta --volume "$TEST_DIR/shared:/shared" "$slug" -- /app/probe peek /shared/a.txt </dev/null >"$out" 2>&1 || rc=$?
probe_tap "$out" peek

# ---------------------------------------------------------------- berth container run itself
rc=0; crun "$TEST_DIR/empty" -- /bin/true </dev/null >"$out" 2>&1 || rc=$?
check "an empty directory runs /bin/true: 0 (got $rc)" test "$rc" = 0
rc=0; crun "$TEST_DIR/empty" -- /bin/sh -c 'exit 7' </dev/null >"$out" 2>&1 || rc=$?
check "the command's exit status is berth's: 7 (got $rc)" test "$rc" = 7
rc=0; crun "$TEST_DIR/empty" -- /bin/sh -c 'kill -9 $$' </dev/null >"$out" 2>&1 || rc=$?
check "a command killed by signal 9: 137 (got $rc)" test "$rc" = 137
rc=0; got=$(echo hello | crun "$TEST_DIR/empty" -- cat 2>"$err") || rc=$?
check "stdin and stdout are attached" test "$got" = hello -a "$rc" = 0
rc=0; crun "$TEST_DIR/empty" -- sh -c 'echo oops >&2' </dev/null >"$out" 2>"$err" || rc=$?
check "stderr is attached" grep -qx oops "$err"
got=$(crun -e FOO=bar -e PATH=/usr/bin:/bin "$TEST_DIR/empty" -- sh -c 'echo "$FOO $PATH $HOME $(pwd) $(id -u)"' </dev/null 2>"$err") || true
check "-e sets the environment; HOME and cwd /app, uid 1000 ($got)" test "$got" = "bar /usr/bin:/bin /app /app 1000"
got=$(crun --hostname web-1 "$TEST_DIR/empty" -- hostname </dev/null 2>"$err") || true
check "--hostname ($got)" test "$got" = web-1
echo data >"$TEST_DIR/vol.txt"; chmod 644 "$TEST_DIR/vol.txt"
rc=0; crun --volume "$TEST_DIR/vol.txt:/srv/vol.txt:ro" "$TEST_DIR/empty" -- sh -c 'cat /srv/vol.txt; echo x >/srv/vol.txt' </dev/null >"$out" 2>"$err" || rc=$?
check "--volume SRC:DST:ro is readable, not writable" sh -c "grep -qx data '$out' && grep -q 'Read-only' '$err' && [ $rc != 0 ]"
got=$(crun --net "$TEST_DIR/empty" -- sh -c 'ls /sys/class/net | wc -l' </dev/null 2>"$err") || true
check "--net adds an interface beside lo ($got interfaces)" test "${got:-0}" -ge 2

usage_case() { # usage_case WHAT ARGS...: exit 2 with a message naming the problem
    local what=$1; shift
    rc=0; crun "$@" </dev/null >"$out" 2>"$err" || rc=$?
    check "bad input: $what: exit 2 with a message ($(head -1 "$err"))" \
        sh -c "[ $rc = 2 ] && [ -s '$err' ] && [ ! -s '$out' ]"
}
usage_case "--memory 0" --memory 0 "$TEST_DIR/empty" -- /bin/true
usage_case "--pids -1" --pids -1 "$TEST_DIR/empty" -- /bin/true
usage_case "--cpus 1e9" --cpus 1e9 "$TEST_DIR/empty" -- /bin/true
usage_case "--memory 12X" --memory 12X "$TEST_DIR/empty" -- /bin/true
usage_case "a slug that is a file" "$TEST_DIR/vol.txt" -- /bin/true
usage_case "a slug that does not exist" "$TEST_DIR/nope" -- /bin/true
usage_case "no --" "$TEST_DIR/empty" /bin/true
usage_case "no command" "$TEST_DIR/empty" --
usage_case "a bad tenant name" --tenant ../x "$TEST_DIR/empty" -- /bin/true
usage_case "-e without =" -e FOO "$TEST_DIR/empty" -- /bin/true
usage_case "--volume without DST" --volume /tmp "$TEST_DIR/empty" -- /bin/true
usage_case "--hostname with a /" --hostname a/b "$TEST_DIR/empty" -- /bin/true
usage_case "--hostname starting with -" --hostname -web "$TEST_DIR/empty" -- /bin/true
usage_case "--hostname with an empty label" --hostname a..b "$TEST_DIR/empty" -- /bin/true
usage_case "--hostname of 65 characters" --hostname "$(printf 'a%.0s' $(seq 1 65))" "$TEST_DIR/empty" -- /bin/true
usage_case "--hostname ending with -" --hostname web- "$TEST_DIR/empty" -- /bin/true
check "... the message names what is wrong with the name" grep -q "a label may not start or end with '-'" "$err"
usage_case "an empty --hostname" --hostname "" "$TEST_DIR/empty" -- /bin/true
got=$(crun --hostname web-1.staging.example "$TEST_DIR/empty" -- hostname </dev/null 2>"$err") || true
check "--hostname with dots ($got)" test "$got" = web-1.staging.example
# A directory of the caller's that others may not enter (mktemp -d's 700):
# the container's ids are subordinate ids, so its root cannot be built there.
mkdir -p "$TEST_DIR/closed/root"; chmod 700 "$TEST_DIR/closed"
rc=0; crun "$TEST_DIR/closed" -- /bin/true </dev/null >"$out" 2>"$err" || rc=$?
check "a root directory closed to others: 125, saying so ($(tail -1 "$err"))" \
    sh -c "[ $rc = 125 ] && grep -q \"cannot enter '$TEST_DIR/closed': .* closed to other users (chmod o+x)\" '$err'"
rc=0; crun "$TEST_DIR/closed/root" -- /bin/true </dev/null >"$out" 2>"$err" || rc=$?
check "... while one inside it, open to others, runs: the mounts name it by an fd berth opened (exit $rc)" test "$rc" = 0
chmod 701 "$TEST_DIR/closed"
rc=0; crun "$TEST_DIR/closed" -- /bin/true </dev/null >"$out" 2>"$err" || rc=$?
check "... and so does the first once others may enter it (exit $rc)" test "$rc" = 0
rc=0; crun "$TEST_DIR/empty" -- /no/such/command </dev/null >"$out" 2>"$err" || rc=$?
check "a command that does not exist: 127 and says so" sh -c "[ $rc = 127 ] && grep -q 'not found' '$err'"
rc=0; crun "$TEST_DIR/empty" -- /etc/passwd </dev/null >"$out" 2>"$err" || rc=$?
check "a command that cannot be executed: 126 (got $rc)" test "$rc" = 126
# A process that leaves the app's process group and session dies with the app.
base=$(tenant_base default)
rc=0; crun "$TEST_DIR/empty" -- /bin/sh -c 'setsid /bin/sleep 300 </dev/null >/dev/null 2>&1 & sleep 0.3; exit 3' </dev/null >"$out" 2>&1 || rc=$?
# (SIGKILL is sent before berth hears the status; the end of a killed process takes a moment.)
settles 3 no_procs_in_range "$base" || true
left=$(procs_in_range "$base")
check "a process that forked away from the app's group is gone with it (exit $rc, left: ${left:-none})" \
    test "$rc" = 3 -a -z "$left"

# ---------------------------------------------------------------- through the daemon
# An app's one-off run sees what `container run` shows (its init is the
# daemon's clone: its command line must not show), and kill -9 of `berth
# serve` leaves none of the app's processes.
dhome=$TEST_DIR/daemon
if start_berth "$dhome"; then
    src=$TEST_DIR/src
    cp -a "$SRCDIR/tests/apps/greet" "$src"
    cp "$PROBE" "$src/probe"
    git -C "$src" init -q -b main
    commit_all "$src" "greet with the probe"
    "$BERTH" apps:create probed >/dev/null
    if push_app "$src" probed "$TEST_DIR/push"; then
        "$BERTH" config:set probed "PROBE_FORBID=$forbid:$dhome" >/dev/null
        set +e
        "$BERTH" run probed -- /app/probe static </dev/null 2>&1 | cat >"$out"
        rc=${PIPESTATUS[0]}
        set -e
        sed -i 's/^ok /ok daemon run: /; s/^not ok /not ok daemon run: /' "$out"
        probe_tap "$out" "the probe in a one-off run"
        check "daemon run: every check passed (exit 0, got $rc)" test "$rc" = 0
        cg=$(berth_cgroup pids admin/probed)
        before=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | wc -l)
        kill -KILL "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
        left=x
        for _ in $(seq 1 50); do left=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null); [ -z "$left" ] && break; sleep 0.1; done
        check "A14 kill -9 of berth serve leaves none of the app's processes ($before were running; left: ${left:-none})" \
            test "$before" -gt 0 -a -z "$left"
        # The tenant's cgroups in every hierarchy, the app's below them (the
        # daemon that would have removed them is gone). Removing only the
        # app's left one empty tenant cgroup behind at every run.
        remove_tenant_cgroups admin
    else
        not_ok "an app with the probe deploys"; diag "$TEST_DIR/push"
    fi
else
    not_ok "berth serve starts"
fi

# ---------------------------------------------------------------- nothing left behind
left=$(find "$BERTH_HOME/containers/run" -mindepth 1 -maxdepth 1 ! -name "${held_id:-none}" | wc -l)
check "no container's upper directory is left ($left)" test "$left" = 0
settles 5 no_ctr_cgroups default alpha beta hog sibling deaf sigint pid1 || true
left=$(for t in default alpha beta hog sibling deaf sigint pid1; do ctr_cgroups $t; done)
check "no container's cgroup is left (${left:-none})" test -z "$left"
check "no mount of berth's home on the host" not_contains /proc/self/mountinfo "$BERTH_HOME"
stop_bg
remove_tenant_cgroups containers
done_testing

