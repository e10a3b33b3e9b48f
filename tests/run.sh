#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# One-off runs through a real `berth serve` and the `berth` CLI (and the
# API where the CLI would refuse first): `berth run APP -- CMD` runs in a
# fresh container of the current release, with the release's config vars,
# as the app's uid, its output on our stdout and stderr kept apart, our
# stdin on its stdin (small, slow and a few MB), its exit status ours
# (128 + N for signal N; 127 for a missing command); the run ends when
# the command does even with our stdin still open; a client killed
# mid-run leaves no process and no container behind; `run:detached` puts
# the output and the exit status in the app's log; `ps:stop APP run.N`
# stops one run (SIGTERM, SIGKILL after the app's grace), attached or
# detached, and nothing else; an unknown app, an app
# with no release, bad usage and bad requests are refused and change
# nothing; a daemon that stops ends the runs in progress. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
# The processes on the host whose command line holds $1 (the tests write it
# so that it appears only once the shell in the container expanded it, never
# in the CLI's own arguments).
procs() { pgrep -f -- "$1" || true; }
procs_gone() { for _ in $(seq 1 50); do [ -z "$(procs "$1")" ] && break; sleep 0.1; done; } # up to 5 s
# run.* containers' directories under run/instances.
run_dirs() { find "$home/run/instances" -mindepth 1 -maxdepth 1 -name '*run.*' 2>/dev/null | wc -l; }
log=$home/apps/ones/logs/app.log
# A run's number is random and may be an earlier run's (1 in 9000 each), so
# lines naming it are looked for only in what the log gained since mark_log:
# new_log writes that part to $newlog.
newlog=$TEST_DIR/new.log
mark_log() { mark=$(stat -c %s "$log" 2>/dev/null || echo 0); }
new_log() { tail -c +$((mark + 1)) "$log" >"$newlog" 2>/dev/null || : >"$newlog"; }
# exited_since_mark DYNO TENTHS: waits up to TENTHS tenths of a second for
# DYNO's exit line in what the log gained, which stays in $newlog.
exited_since_mark() {
    for _ in $(seq 1 "$2"); do
        new_log
        grep -q "heroku\[$1\]: Process exited" "$newlog" && return 0
        sleep 0.1
    done
    return 0
}

"$BERTH" apps:create ones >/dev/null
"$BERTH" apps:create empty >/dev/null

# ---------------------------------------------------------------- before any release
run run empty -- true
check "run on an app with no release fails with exit 1" test "$rc" = 1
check "... saying there is no release yet (HTTP 409)" grep -q "no release yet.*(HTTP 409)" "$err"

src=$TEST_DIR/src
cp -a "$SRCDIR/tests/apps/greet" "$src"
git -C "$src" init -q -b main
commit_all "$src" "greet"
if push_app "$src" ones "$TEST_DIR/push"; then ok "the app deploys"; else not_ok "the app deploys"; diag "$TEST_DIR/push"; fi
"$BERTH" config:set ones GREETING=ahoy >/dev/null

# ---------------------------------------------------------------- output and exit status
o=$("$BERTH" run ones -- sh -c 'echo one-off-$((6*7)); exit 3' 2>&1) && rc=0 || rc=$?
check "run prints the command's output (one-off-42)" test "$o" = one-off-42
check "... and exits with its exit status (3)" test "$rc" = 3
run run ones -- sh -c 'echo to-out; echo to-err >&2; echo more-out'
check "stdout and stderr are kept apart" test "$(cat "$out")" = "$(printf 'to-out\nmore-out')" -a "$(cat "$err")" = to-err
check "... and a command that succeeds exits 0" test "$rc" = 0
run run ones -- 'echo "$GREETING from $DYNO in $PWD"'
check "the release's config var is in the environment, DYNO is run.N, in /app" \
    grep -Eqx 'ahoy from run\.[0-9]{4} in /app' "$out"
run run ones -- id -u
check "the command runs as the app's uid, not root" test "$rc" = 0 -a "$(cat "$out")" = 1000
# The start-up shell execs a plain command itself, where `bash -c`, which
# shell syntax or a program the profile shadows with a function takes,
# would start a second bash; that one exports $_ to what it execs.
run run ones -- printenv _
check "a plain command is exec'd by the start-up shell itself (no \$_ from a second bash)" \
    test "$rc" = 1 -a ! -s "$out"
run run ones -- 'printenv _;'
check "... one with shell syntax runs through bash -c (\$_ $(cat "$out"))" \
    test "$rc" = 0 -a "$(cat "$out")" = /usr/bin/printenv
run run ones -- ./bin/underscore
check "... and so does a program named by a path ($(cat "$out"))" test "$rc" = 0 -a "$(cat "$out")" = unset
run run ones -- ./no-such-program
check "... a missing one gets bash's own message, 127" \
    sh -c "[ $rc = 127 ] && grep -q 'no-such-program: No such file or directory' '$err'"
run run ones -- nproc
check "... a program the profile shadows with an exported function runs it through bash -c ($(cat "$out"))" \
    test "$rc" = 0 -a "$(cat "$out")" = "from-fn 1"
run run ones -- sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'
check "the run has a memory limit, as an instance has ($(cat "$out"))" grep -Eqx '[0-9]+' "$out"
run run ones -- sh -c 'kill -9 $$'
check "a command killed by signal 9 exits 137" test "$rc" = 137
run run ones -- no-such-command-xyz --flag
check "a missing command exits 127" test "$rc" = 127
check "... with bash's 'command not found'" grep -q "no-such-command-xyz: command not found" "$err"
run run ones -- ls /nonexistent
check "a failing command's own status comes back (ls: 2)" test "$rc" = 2

# ---------------------------------------------------------------- stdin
o=$(printf 'a\nb\n' | "$BERTH" run ones -- cat) && rc=0 || rc=$?
check "stdin reaches the command and its end too (cat echoes, exits 0)" test "$o" = "$(printf 'a\nb')" -a "$rc" = 0
o=$({ echo first; sleep 1; echo second; } | "$BERTH" run ones -- sh -c 'while read l; do echo "got $l"; done')
check "stdin written over time arrives as it comes" test "$o" = "$(printf 'got first\ngot second')"
seq 1 400000 >"$TEST_DIR/big"
"$BERTH" run ones -- seq 1 400000 >"$out" 2>"$err" || true
check "a few MB of output arrive intact ($(wc -c <"$out") bytes)" cmp -s "$out" "$TEST_DIR/big"
"$BERTH" run ones -- cat <"$TEST_DIR/big" >"$out" 2>"$err" || true
check "a few MB of stdin go through and back intact" cmp -s "$out" "$TEST_DIR/big"
"$BERTH" run ones -- true <"$TEST_DIR/big" >"$out" 2>"$err" && rc=0 || rc=$?
check "a command that never reads its stdin still ends cleanly" test "$rc" = 0
rc=0; timeout 10 "$BERTH" run ones -- echo done-early < <(sleep 30) >"$out" 2>"$err" || rc=$?
check "the run ends when the command does, with our stdin still open" test "$rc" = 0 -a "$(cat "$out")" = done-early

# ---------------------------------------------------------------- a client that goes away
"$BERTH" run ones -- sh -c 't=101.7; sleep $t; echo never' >"$out" 2>"$err" &
cli=$!
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 101.7')" ] && break; sleep 0.1; done
check "a long run is running (its process is on the host)" test -n "$(procs 'sleep 101.7')"
kill -9 "$cli"; wait "$cli" 2>/dev/null || true
for _ in $(seq 1 50); do [ -z "$(procs 'sleep 101.7')" ] && [ "$(run_dirs)" = 0 ] && break; sleep 0.1; done
check "a killed client leaves no process of its run" test -z "$(procs 'sleep 101.7')"
check "... and no container directory" test "$(run_dirs)" = 0
check "... and the app's log says why it stopped" \
    grep -Eq 'heroku\[run\.[0-9]+\]: Stopping process: the client went away' "$log"

o=$("$BERTH" run ones -- sh -c 'm=run-yes-marker; exec yes $m' | head -1) || true
procs_gone 'yes run-yes-marker'
check "a client whose stdout closes (yes | head) ends its run" \
    test "$o" = run-yes-marker -a -z "$(procs 'yes run-yes-marker')"
# Output as fast as the server sends it: the CLI once read its socket until
# it ran dry, which such a command could keep from ever happening, and
# nothing reached its stdout (about one run in five on a slow machine).
n=0
for _ in 1 2 3 4 5; do
    c=$(timeout 30 "$BERTH" run ones -- sh -c 'm=run-yes-flood; exec yes $m' | head -c 4000000 | wc -c) || true
    [ "$c" = 4000000 ] && n=$((n + 1))
done
procs_gone 'yes run-yes-flood'
check "a command that writes without end streams to our stdout as it comes (4 MB in $n of 5 runs)" test "$n" = 5
check "... and each of those runs ended with its client" test -z "$(procs 'yes run-yes-flood')"

# A client of our own, in the protocol of docs/API.md: it sees STARTED first,
# then sends a frame longer than the protocol allows.
cat >"$TEST_DIR/raw.py" <<'EOF'
import json, os, socket, struct, subprocess, sys, time
s = socket.create_connection(("127.0.0.1", int(os.environ["CONTROL_PORT"])), timeout=20)
body = json.dumps({"command": "sleep 104.9", "attach": True})
s.sendall(("POST /apps/ones/dynos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: Upgrade\r\n"
           "Upgrade: berth-run\r\n\r\n%s" % (os.environ["BERTH_TOKEN"], len(body), body)).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
head, buf = buf.split(b"\r\n\r\n", 1)
assert head.startswith(b"HTTP/1.1 101"), head
while len(buf) < 5 or len(buf) < 5 + struct.unpack(">I", buf[1:5])[0]:
    buf += s.recv(4096)
kind, n = buf[0], struct.unpack(">I", buf[1:5])[0]
assert kind == 6 and json.loads(buf[5:5 + n])["name"].startswith("run."), buf
for _ in range(100):
    if subprocess.run(["pgrep", "-f", "sleep 104.9"], capture_output=True).returncode == 0:
        break
    time.sleep(0.1)
s.sendall(b"\x00\xff\xff\xff\xff")
while s.recv(4096):
    pass
print("closed")
EOF
o=$(CONTROL_PORT=$CONTROL_PORT python3 "$TEST_DIR/raw.py" 2>&1) || true
check "a raw client sees 101, then STARTED with the run's name" test "$o" = closed
procs_gone 'sleep 104.9'
check "... and a frame longer than 64 KiB closes the connection and ends the run" test -z "$(procs 'sleep 104.9')"
[ "$o" = closed ] || echo "# $o"

# ---------------------------------------------------------------- detached
mark_log
run run:detached ones -- sh -c 'echo detached-$((7*6)); echo detached-err >&2; exit 4'
dyno=$(grep -oE 'run\.[0-9]+' "$out" | head -1 || true)
check "run:detached returns at once, naming the dyno ($dyno)" test "$rc" = 0 -a -n "$dyno"
exited_since_mark "$dyno" 100
check "its output is in the app's log as app[$dyno]" grep -Eq "^[0-9-]{10}T[0-9:.]+\+00:00 app\[$dyno\]: detached-42$" "$newlog"
check "... its stderr too" grep -q "app\[$dyno\]: detached-err" "$newlog"
check "... and its exit status" grep -q "heroku\[$dyno\]: Process exited with status 4" "$newlog"
run run:detached ones --json -- true
check "run:detached --json prints the API's answer" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["name"].startswith("run.") and d["attach"] is False' "$out"

run events ones
check "the audit log names each run: attached" grep -Eq "Started run\.[0-9]{4} \(attached\)" "$out"
check "... and detached ($dyno)" grep -qF "Started $dyno (detached)" "$out"
check "... never its command line" not_contains "$out" "one-off-"

# ---------------------------------------------------------------- ps:stop of one run
# Heroku's `ps:stop run.N`: SIGTERM to the run's processes, SIGKILL after the
# app's grace period, the app's web process untouched.
# run_of NAME...: the dyno of the one-off run whose command holds NAME.
run_of() {
    "$BERTH" ps ones --json | python3 -c 'import json,sys
for p in json.load(sys.stdin)["processes"]:
    if p["type"] == "run" and sys.argv[1] in p["command"]: print(p["name"])' "$1"
}
listed() { [ -n "$(run_of "$1")" ]; }
mark_log
run run:detached ones -- sh -c 'trap "echo got-term; exit 3" TERM; t=107.1; while :; do sleep $t & wait $!; done'
dyno=$(grep -oE 'run\.[0-9]+' "$out" | head -1 || true)
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 107.1')" ] && break; sleep 0.1; done
check "a detached run that traps SIGTERM runs ($dyno), and ps lists it" \
    sh -c "[ -n '$(procs 'sleep 107.1')' ] && [ '$(run_of 107.1)' = '$dyno' ]"
run ps:stop ones "$dyno"
check "ps:stop APP $dyno says it stops it (exit $rc)" \
    sh -c "[ $rc = 0 ] && grep -q 'Stopping $dyno of ones... done' '$out'"
exited_since_mark "$dyno" 100
check "... the run got SIGTERM and exited as its trap said (status 3)" \
    sh -c "grep -q 'app\[$dyno\]: got-term' '$newlog' && grep -q 'heroku\[$dyno\]: Process exited with status 3' '$newlog'"
check "... the log says how it was stopped" \
    sh -c "grep -q 'heroku\[$dyno\]: Stopping process: ps:stop' '$newlog' &&
           grep -q 'heroku\[$dyno\]: Stopping all processes with SIGTERM' '$newlog'"
for _ in $(seq 1 50); do listed 107.1 || break; sleep 0.1; done
gone=yes; listed 107.1 && gone=no
check "... and it is gone: not in ps ($gone), no process, no container directory" \
    sh -c "[ $gone = yes ] && [ -z '$(procs 'sleep 107.1')' ] && [ $(run_dirs) = 0 ]"
run ps ones --json
check "... while the app's web process stays up" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [p["state"] for p in d["processes"] if p["name"] == "web.1"] == ["up"]' "$out"
run events ones
check "the audit log names the stop" grep -qF "ps:stop $dyno" "$out"

"$BERTH" ps:grace ones 1 >/dev/null
mark_log
run run:detached ones -- sh -c 'trap "" TERM; t=107.2; while :; do sleep $t & wait $!; done'
deaf=$(grep -oE 'run\.[0-9]+' "$out" | head -1 || true)
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 107.2')" ] && break; sleep 0.1; done
started=$(date +%s%N)
run ps:stop ones "$deaf"
"$BERTH" ps ones --json >"$TEST_DIR/ps.json"
check "ps shows it stopping meanwhile" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [p["state"] for p in d["processes"] if p["name"] == sys.argv[2]] == ["stopping"], d' \
    "$TEST_DIR/ps.json" "$deaf"
exited_since_mark "$deaf" 150
took=$(( ($(date +%s%N) - started) / 1000000 ))
check "a run that ignores SIGTERM gets SIGKILL after the app's grace of 1 s (status 137, ${took} ms)" \
    sh -c "grep -q 'heroku\[$deaf\]: Process exited with status 137' '$newlog' && [ $took -ge 900 ] && [ $took -lt 10000 ]"
procs_gone 'sleep 107.2'
check "... and leaves no process" test -z "$(procs 'sleep 107.2')"
"$BERTH" ps:grace ones default >/dev/null

mark_log
"$BERTH" run ones -- sh -c 'trap "echo bye; exit 5" TERM; t=107.3; while :; do sleep $t & wait $!; done' \
    >"$TEST_DIR/att.out" 2>"$TEST_DIR/att.err" &
cli=$!
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 107.3')" ] && break; sleep 0.1; done
att=$(run_of 107.3)
run ps:stop ones "$att"
rc=0; wait "$cli" || rc=$?
check "ps:stop of an attached run ($att) ends its client: exit 1, saying so" \
    sh -c "[ $rc = 1 ] && grep -q 'ps:stop: the run was ended' '$TEST_DIR/att.err'"
procs_gone 'sleep 107.3'
exited_since_mark "$att" 50
check "... its process got SIGTERM first (its trap's status 5 in the log) and is gone" \
    sh -c "grep -q 'heroku\[$att\]: Process exited with status 5' '$newlog' && [ -z '$(procs 'sleep 107.3')' ]"

run ps:stop ones run.1234
check "ps:stop of a run not in progress: exit 1, 404, naming it" \
    sh -c "[ $rc = 1 ] && grep -q \"'ones' has no one-off run 'run.1234' in progress (HTTP 404)\" '$err'"
run ps:stop ones web.1
check "ps:stop APP web.1: exit 1, 400, pointing to ps:stop APP and ps:restart" \
    sh -c "[ $rc = 1 ] && grep -q 'only a one-off run (run.N) stops on its own.*(HTTP 400)' '$err'"
run ps:stop ones run.1234 extra
check "ps:stop with three arguments is a usage error (2)" test "$rc" = 2
api POST /apps/ones/dynos/run.12x/actions/stop
check "the API refuses a malformed run name (400)" test "$status" = 400
api POST /apps/ones/dynos/run.1234/actions/kill
check "... and an unknown action on a dyno (404)" test "$status" = 404
api POST /apps/nosuchapp/dynos/run.1234/actions/stop
check "... and an unknown app (404)" test "$status" = 404
run ps ones --json
check "none of them changed the app's processes" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [p["name"] for p in d["processes"]] == ["web.1"], d' "$out"

# ---------------------------------------------------------------- tenants
"$BERTH" tenants:create stranger >"$out" 2>&1
S=$(tail -1 "$out" | grep -Ex '[0-9a-f]{64}' || true)
rc=0; BERTH_TOKEN=$S "$BERTH" run ones -- true >"$out" 2>"$err" || rc=$?
check "another tenant's run of the app: 404, exit 1" test "$rc" = 1 -a "$(grep -c "does not exist (HTTP 404)" "$err")" = 1
"$BERTH" tokens:create --app ones --role read >"$out" 2>&1
R=$(tail -1 "$out" | grep -Ex '[0-9a-f]{64}' || true)
rc=0; BERTH_TOKEN=$R "$BERTH" run ones -- true >"$out" 2>"$err" || rc=$?
check "a read token's run: 403, exit 1" test -n "$R" -a "$rc" = 1 -a "$(grep -c "HTTP 403" "$err")" = 1
"$BERTH" run:detached ones -- sh -c 't=107.4; sleep $t' >/dev/null
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 107.4')" ] && break; sleep 0.1; done
mine_run=$(run_of 107.4)
rc=0; BERTH_TOKEN=$R "$BERTH" ps:stop ones "$mine_run" >"$out" 2>"$err" || rc=$?
check "a read token's ps:stop of a run: 403, exit 1" test "$rc" = 1 -a "$(grep -c "HTTP 403" "$err")" = 1
rc=0; BERTH_TOKEN=$S "$BERTH" ps:stop ones "$mine_run" >"$out" 2>"$err" || rc=$?
check "another tenant's ps:stop of it: 404, exit 1" test "$rc" = 1 -a "$(grep -c "does not exist (HTTP 404)" "$err")" = 1
check "... and the run goes on" sh -c "[ -n '$(procs 'sleep 107.4')' ] && [ '$(run_of 107.4)' = '$mine_run' ]"
"$BERTH" ps:stop ones "$mine_run" >/dev/null
BERTH_TOKEN=$S "$BERTH" apps:create theirs >/dev/null 2>&1
git -C "$src" push -q "http://x:$S@127.0.0.1:$CONTROL_PORT/theirs.git" main >"$TEST_DIR/push2" 2>&1 || diag "$TEST_DIR/push2"
uid_base() { awk '{print $2}' "$out"; }
run run ones -- cat /proc/self/uid_map; mine=$(uid_base)
run run theirs -- cat /proc/self/uid_map; theirs=$(uid_base)
check "the admin's run of stranger's app runs with stranger's ids ($theirs), not the admin's ($mine)" \
    test -n "$theirs" -a -n "$mine" -a "$theirs" != "$mine"
"$BERTH" run theirs -- sh -c 't=106.1; sleep $t' >"$out" 2>"$err" &
cli=$!
BERTH_TOKEN=$S "$BERTH" run:detached theirs -- sh -c 't=106.2; sleep $t' >/dev/null
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 106.1')" ] && [ -n "$(procs 'sleep 106.2')" ] && break; sleep 0.1; done
BERTH_TOKEN=$S "$BERTH" apps:destroy theirs --confirm theirs >/dev/null 2>&1
rc=0; wait "$cli" || rc=$?
check "apps:destroy ends the app's attached run (exit 1, saying why)" \
    test "$rc" = 1 -a "$(grep -c "the app is being destroyed" "$err")" = 1
check "... and leaves no process of its runs, attached or detached" test -z "$(procs 'sleep 106.1')$(procs 'sleep 106.2')"

# ---------------------------------------------------------------- bad input
run run nosuchapp -- true
check "run on an unknown app exits 1" test "$rc" = 1
check "... saying it does not exist (HTTP 404)" grep -q "app 'nosuchapp' does not exist (HTTP 404)" "$err"
run run:detached nosuchapp -- true
check "run:detached on an unknown app exits 1 too" test "$rc" = 1
while IFS='|' read -r args what; do
    # shellcheck disable=SC2086 # the arguments are split on purpose
    run $args
    check "$what is a usage error (2)" test "$rc" = 2
done <<'EOF'
run ones|run without a command
run ones --|run with nothing after '--'
run ones --bogus -- true|run with an unknown option
run:detached ones|run:detached without a command
EOF
run help run
check "help run says the exit status is the command's own" grep -q "^Exit status: the command's own" "$out"
before=$(grep -c . "$log")
while IFS='|' read -r body what; do
    api POST /apps/ones/dynos "$body"
    check "the API refuses $what (400)" test "$status" = 400
done <<'EOF'
{"command": ""}|an empty command
{"command": 7}|a command that is not a string
{"command": "true", "attach": "yes"}|an attach that is not a boolean
{"command": "true", "attach": true}|an attached run without the Upgrade header
not json|a body that is not JSON
EOF
check "... and none of them ran anything" test "$(grep -c . "$log")" = "$before" -a "$(run_dirs)" = 0

# ---------------------------------------------------------------- berth stops
"$BERTH" run ones -- sh -c 't=102.3; sleep $t' >"$out" 2>"$err" &
cli=$!
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 102.3')" ] && break; sleep 0.1; done
"$BERTH" run:detached ones -- sleep 103.1 >/dev/null
for _ in $(seq 1 100); do [ -n "$(procs 'sleep 103.1')" ] && break; sleep 0.1; done
t0=$(date +%s)
if stop_berth; then ok "berth stops with runs in progress ($(($(date +%s) - t0)) s)"; else not_ok "berth stops with runs in progress"; fi
rc=0; wait "$cli" || rc=$?
check "the attached client exits 1" test "$rc" = 1
check "... saying berth is stopping" grep -q "berth is stopping" "$err"
check "... and no process of either run is left" test -z "$(procs 'sleep 102.3')$(procs 'sleep 103.1')"

done_testing
