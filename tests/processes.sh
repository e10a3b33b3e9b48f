#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Process types, scaling and supervision through a real `berth serve`, the
# real git client, curl through the router and the `berth` CLI: every
# Procfile type can run; `ps:scale` starts and stops web.N and worker.N and
# the router spreads requests over the web processes; `ps` (and --json)
# shows type, number, state, uptime, restarts, memory and release; a web
# process killed from the host is restarted by the supervisor and the app
# keeps answering; a process that keeps exiting is restarted with a growing
# back-off, its exit status shown; ps:restart replaces web processes with
# no failed request, and wrk sees none while the web processes scale up
# and down (keep-alive, and closing every connection); ps:stop and ps:start; a deploy keeps the scale and
# brings every type to the new release; a restart of berth brings the
# formation back; one-off runs show in ps; bad input changes nothing.
# Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
command -v wrk >/dev/null || skip_all "wrk is needed (the Debian package wrk, in tools/packages.txt)"
serve_for_test
# psq EXPR: a python expression over d (the ps --json document) and procs (its processes)
psq() { "$BERTH" ps procs --json 2>/dev/null | python3 -c "
import json,sys
d=json.load(sys.stdin); runs=[p for p in d['processes'] if p['type']=='run']
procs=[p for p in d['processes'] if p['type']!='run']
def up(t): return sum(1 for p in procs if p['type']==t and p['state']=='up')
def get(n): return next((p for p in procs if p['name']==n), {})
print($1)"; }
wait_ps() { # wait_ps EXPR EXPECTED SECONDS
    local i
    for i in $(seq 1 $(($3 * 5))); do [ "$(psq "$1")" = "$2" ] && return 0; sleep 0.2; done
    return 1
}
# host pids of this server's processes whose command line holds TEXT: its
# descendants only (other servers, of other tests or users, may run the same
# app under the same tenant and app names on the host)
app_pids() {
    ps -eo pid=,ppid=,args= | awk -v root="$serve_pid" -v text="$1" '
        { pid = $1; parent[pid] = $2; $1 = ""; $2 = ""; args[pid] = $0 }
        END { for (p in args) for (q = p; q > 1 && (q in parent); q = parent[q])
                  if (q == root) { if (index(args[p], text)) print p; break } }'
}

"$BERTH" apps:create procs >/dev/null
src=$TEST_DIR/src
make_repo "$SRCDIR/tests/apps/procs" "$src"

# ---------------------------------------------------------------- before a release
run ps:scale procs web=2
check "ps:scale before the first release fails (exit 1)" test "$rc" = 1
check "... saying to push first" contains "$err" "push first"

if push_app "$src" procs "$TEST_DIR/push"; then ok "the push deploys"; else not_ok "the push deploys"; diag "$TEST_DIR/push"; fi
check "web.1 serves" wait_body procs.localhost / "dyno=web.1" 10
check "ps --json: web scaled to 1, worker and crashy to 0" test "$(psq 'd["formation"]')" = "{'crashy': 0, 'web': 1, 'worker': 0}"
check "... one process, web.1, up, of v1" test "$(psq '[(p["name"],p["state"],p["release"]) for p in procs]')" = "[('web.1', 'up', 1)]"
check "... its memory is measured" test "$(psq 'get("web.1")["memory"] > 0')" = True
run ps procs
check "ps shows '=== web: 1' and web.1 up" grep -Eq '^web\.1 +up ' "$out"

# ---------------------------------------------------------------- scaling
run ps:scale procs web=3 worker=1
check "ps:scale web=3 worker=1 succeeds" test "$rc" = 0
[ "$rc" = 0 ] || diag "$err"
check "three web processes and one worker are up" wait_ps '(up("web"), up("worker"))' "(3, 1)" 20
seen=$(for i in $(seq 1 60); do router_get procs.localhost / 2>/dev/null | sed -n 's/^dyno=\([^ ]*\).*/\1/p'; done | sort -u | tr '\n' ' ')
check "the router spreads requests over web.1, web.2 and web.3 (saw: $seen)" test "$seen" = "web.1 web.2 web.3 "
check "the worker runs: its output is in the app's log" \
    bash -c "for i in \$(seq 1 50); do grep -q 'worker tick worker.1' '$home/apps/procs/logs/app.log' && exit 0; sleep 0.2; done; exit 1"
run ps:scale procs web=1 worker=0
check "scaling down to web=1 worker=0" wait_ps '[p["name"] for p in procs]' "['web.1']" 20
seen=$(for i in $(seq 1 20); do router_get procs.localhost / 2>/dev/null | sed -n 's/^dyno=\([^ ]*\).*/\1/p'; done | sort -u | tr '\n' ' ')
check "... only web.1 answers now (saw: $seen)" test "$seen" = "web.1 "
check "... and no worker process is left on the host" test -z "$(app_pids 'worker tick')"

# ---------------------------------------------------------------- supervision
run ps:scale procs web=2
wait_ps 'up("web")' 2 20 || true
# Scaled down just before: the retiring web processes drain first (up to their grace period), and
# killing one of those is no crash of the formation's; wait until only the two slots' processes are left.
for i in $(seq 1 200); do [ "$(app_pids 'python3 -u app.py' | wc -l)" = 2 ] && break; sleep 0.2; done
victim=$(app_pids 'python3 -u app.py' | head -1) || true
check "the web processes are on the host" test -n "$victim"
kill -9 "$victim" 2>/dev/null || true
check "a web process killed from the host is restarted (2 up, one restart)" \
    wait_ps '(up("web"), sum(p["restarts"] for p in procs))' "(2, 1)" 20
if ! [ "$(psq '(up("web"), sum(p["restarts"] for p in procs))')" = "(2, 1)" ]; then
    echo "# victim $victim; ps now:"; psq 'procs' | sed 's/^/# /'
    grep -E 'heroku\[web' "$home/apps/procs/logs/app.log" | tail -12 | sed 's/^/# /'
    grep -Ei 'supervisor|crash|restart' "$TEST_DIR/serve.log" | tail -12 | sed 's/^/# /'
fi
check "... its exit status (137, SIGKILL) is shown" test "$(psq '[p.get("exit_status") for p in procs if p["restarts"]]')" = "[137]"
check "... and the app answers" wait_body procs.localhost / "dyno=web" 5
check "... the crash is in the app's log, as Heroku says it" \
    grep -Eq ' heroku\[web\.[12]\]: Process exited with status 137$' "$home/apps/procs/logs/app.log"
check "... with the state changes" grep -Eq ' heroku\[web\.[12]\]: State changed from up to crashed$' "$home/apps/procs/logs/app.log"

run ps:scale procs crashy=1
check "a process that keeps exiting is crashed, with its exit status 3" wait_ps 'get("crashy.1").get("exit_status")' 3 10
sleep 6
n=$(psq 'get("crashy.1")["restarts"]')
check "... restarted with a back-off: 2 to 4 crashes in 6 s (saw $n), not dozens" test "$n" -ge 2 -a "$n" -le 4
check "... ps shows it crashed or starting, with when it restarts next" \
    test "$(psq 'get("crashy.1")["state"] in ("crashed", "starting", "up")')" = True
run ps procs
check "... and the text listing says crashed and the last exit" grep -Eq 'crashy\.1 .*last exit 3' "$out"
run ps:scale procs crashy=0
check "scaling the crashing type to 0 removes it" wait_ps '"crashy.1" in [p["name"] for p in procs]' False 10

# ---------------------------------------------------------------- one-off runs in ps
run run:detached procs -- sleep 30
check "run:detached starts a one-off" test "$rc" = 0
check "ps --json lists it beside the formation, as type run" \
    wait_ps '[(p["type"], p["state"]) for p in runs]' "[('run', 'up')]" 10
run ps procs
check "... and ps shows it with its command" grep -q '=== run: one-off (detached): sleep 30' "$out"

# ---------------------------------------------------------------- restart, stop, start
before=$(psq 'sorted(p["since"] for p in procs if p["type"]=="web")')
( fails=0; end=$((SECONDS + 8)); while [ $SECONDS -lt $end ]; do
      router_get procs.localhost / >/dev/null 2>&1 || fails=$((fails + 1)); done; echo "$fails" >"$TEST_DIR/fails" ) &
loader=$!
sleep 1
run ps:restart procs web
check "ps:restart procs web succeeds" test "$rc" = 0
wait "$loader"
check "... with no failed request during the restart ($(cat "$TEST_DIR/fails") failed)" test "$(cat "$TEST_DIR/fails")" = 0
check "... and both web processes are new" test "$(psq 'up("web")')" = 2
# wrk through the router while the web processes scale up and down and restart: nothing fails,
# for the keep-alive app and for one that closes every connection
for mode in keepalive close; do
    if [ "$mode" = close ]; then "$BERTH" config:set procs CLOSE=1 >/dev/null; wait_ps 'up("web")' 2 20 || true; fi
    wrk -t1 -c8 -d10s --timeout 10s -H 'Host: procs.localhost' "http://127.0.0.1:$HTTP_PORT/" >"$TEST_DIR/wrk" 2>&1 &
    wrk_pid=$!
    sleep 1
    "$BERTH" ps:scale procs web=4 >/dev/null 2>&1 || true
    sleep 1
    "$BERTH" ps:scale procs web=1 >/dev/null 2>&1 || true
    "$BERTH" ps:restart procs >/dev/null 2>&1 || true
    "$BERTH" ps:scale procs web=2 >/dev/null 2>&1 || true
    wait "$wrk_pid" || true
    n=$(awk '/requests in/ {print $1}' "$TEST_DIR/wrk")
    echo "# $mode, scaling under load: ${n:-0} requests; $(grep -E 'Socket errors|Non-2xx' "$TEST_DIR/wrk" | tr '\n' ' ')"
    check "$mode: wrk went through while scaling 2 -> 4 -> 1 -> 2 and restarting (${n:-0} requests)" test "${n:-0}" -ge 200
    check "$mode: ... with no socket error and no failed request" bash -c "! grep -qE 'Socket errors|Non-2xx' '$TEST_DIR/wrk'"
    check "$mode: ... and ends with 2 web processes up" wait_ps 'up("web")' 2 20
done
run ps:restart procs nosuch
check "ps:restart of a type not running fails (exit 1)" test "$rc" = 1
run ps:stop procs
check "ps:stop stops every process (a one-off run goes on)" wait_ps 'len([p for p in procs if p["type"] != "run"])' 0 20
check "... the router answers 503 (H14, no web process)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: procs.localhost' "http://127.0.0.1:$HTTP_PORT/")" = 503
run ps procs
check "... and ps says it is stopped" contains "$out" "is stopped"
run ps:start procs
check "ps:start brings the formation back" wait_ps 'up("web")' 2 20
check "... serving" wait_body procs.localhost / "dyno=web" 10

# ---------------------------------------------------------------- deploys keep the scale
run ps:scale procs worker=1
wait_ps 'up("worker")' 1 20 || true
echo "# v2" >>"$src/app.py"
commit_all "$src" "v2"
if push_app "$src" procs "$TEST_DIR/push"; then ok "a second push deploys"; else not_ok "a second push deploys"; diag "$TEST_DIR/push"; fi
check "after the deploy: 2 web and 1 worker, every one of v3 (v2 was CLOSE=1)" \
    wait_ps 'sorted((p["name"], p["state"], p["release"]) for p in procs)' \
    "[('web.1', 'up', 3), ('web.2', 'up', 3), ('worker.1', 'up', 3)]" 20

check "the deploy's lines: web.1 restarting, then starting and up" \
    bash -c "grep -E ' heroku\[web\.1\]: (Restarting|State changed from up to starting|State changed from starting to up)\$' '$home/apps/procs/logs/app.log' | tail -3 | cut -d' ' -f2- | tr '\n' '|' | grep -q '^heroku\[web.1\]: Restarting|heroku\[web.1\]: State changed from up to starting|heroku\[web.1\]: State changed from starting to up|\$'"

# ---------------------------------------------------------------- berth restarts
stop_berth
start_berth "$home"
check "after a restart of berth the formation is back: 2 web and 1 worker" \
    wait_ps 'sorted((p["name"], p["state"]) for p in procs)' "[('web.1', 'up'), ('web.2', 'up'), ('worker.1', 'up')]" 30

# ---------------------------------------------------------------- bad input
run ps:scale procs nosuch=1
check "scaling a type the Procfile lacks fails (exit 1)" test "$rc" = 1
check "... naming it" contains "$err" "nosuch"
run ps:scale procs web=-1
check "a negative count is a usage error (exit 2)" test "$rc" = 2
run ps:scale procs web=two
check "a count that is not a number is a usage error (exit 2)" test "$rc" = 2
run ps:scale procs web
check "TYPE without =COUNT is a usage error (exit 2)" test "$rc" = 2
run ps:scale procs web=101
check "more than 100 processes of a type fails (exit 1)" test "$rc" = 1
run ps:scale procs release=1
check "the release phase cannot be scaled (exit 1)" test "$rc" = 1
run ps:scale procs
check "ps:scale with no TYPE=COUNT is a usage error (exit 2)" test "$rc" = 2
api PATCH /apps/procs/formation '["web"]'
check "PATCH /formation with a non-object body answers 400" test "$status" = 400
api PATCH /apps/procs/formation '{"web": "2"}'
check "PATCH /formation with a string count answers 400" test "$status" = 400
api POST /apps/procs/actions/reboot
check "an unknown action answers 404" test "$status" = 404
run ps nosuchapp
check "ps of an app that does not exist fails (exit 1)" test "$rc" = 1
check "after all the bad input the formation is unchanged" \
    test "$(psq 'd["formation"]')" = "{'crashy': 0, 'web': 2, 'worker': 1}"
left=$(app_pids 'worker tick'; app_pids 'python3 -u app.py')
check "before the stop, the processes are on the host" test -n "$left"
stop_berth
gone() { for p in $left; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
check "berth stops cleanly with processes of several types running: none is left" gone
done_testing
