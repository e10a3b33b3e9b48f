#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The apps' logs through a real `berth serve`, real git pushes, a real
# container and the `berth logs` CLI: the app's output appears as
# app[web.1] lines (a line of 25000 bytes split into Heroku's 10000-byte
# chunks), the platform's as heroku[web.1] (start, state changes, exit
# status) and app[api] (each release: the push, config:set, rollback), each request
# through the router as a heroku[router] at=info line with its path and
# status, and the router's timeout as an at=error code=H12 line, all in
# Heroku's format; -n, -p and --source filter; -t follows the live app and
# shows a new request's line within seconds; a -t client that disconnects
# leaves no thread behind and never delays the server's stop; the log
# survives a restart of berth. Bad input: an unknown app (404, exit 1), -n
# of garbage or an unknown source (exit 2; the API's 400), a malformed ps.
# Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
out=$TEST_DIR/out
err=$TEST_DIR/err
log=$home/apps/talk/logs/app.log
run() { rc=0; "$BERTH" "$@" >"$out" 2>"$err" || rc=$?; }
api() { # api PATH: GET; the answer's status in $status, its body in $out
    status=$(curl -sS -o "$out" -w '%{http_code}' -H "Authorization: Bearer $BERTH_TOKEN" "$BERTH_URL$1")
}
# eventually SECONDS CMD...: polls until CMD succeeds (the router hands its lines over in batches).
eventually() { local n=$(($1 * 10)); shift; for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$serve_pid/status"; }
threads_at_most() { [ "$(threads)" -le "$1" ]; }
thread_diag() { for t in /proc/"$serve_pid"/task/*; do echo "# thread $(cat "$t/comm") $(cat "$t/wchan")"; done >&2; }
# chunks: the lengths of the app's lines of B's (the /big request), on one line.
chunks() { grep -E "app\[web\.1\]: B+\$" "$log" | awk -F': ' '{print length($2)}' | tr '\n' ' '; }
chunks_are() { [ "$(chunks)" = "$1" ]; }
count_at_least() { [ "$(grep -c -- "$2" "$log")" -ge "$1" ]; }
ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00'

"$BERTH" apps:create talk >/dev/null
src=$TEST_DIR/src
make_repo "$SRCDIR/tests/apps/chatty" "$src"
commit=$(git -C "$src" rev-parse --short=7 HEAD)
if push_app "$src" talk "$TEST_DIR/push"; then ok "the app deploys"; else not_ok "the app deploys"; diag "$TEST_DIR/push"; fi

# ---------------------------------------------------------------- what the log holds
check "the app's own output is app[web.1], in Heroku's format" \
    eventually 5 grep -Eq "^$ts app\[web\.1\]: booting on port 5000\$" "$log"
check "the start is heroku[web.1]: Starting process with command \`...\`" \
    grep -Eq "^$ts heroku\[web\.1\]: Starting process with command \`exec python3 -u app.py\`\$" "$log"
check "... then State changed from ... to up (the formation's words)" \
    grep -Eq "^$ts heroku\[web\.1\]: State changed from [a-z]+ to up\$" "$log"
check "the push is app[api]: Deploy <commit> by admin" grep -Eq "^$ts app\[api\]: Deploy $commit by admin\$" "$log"
check "... and app[api]: Release v1 created by admin" grep -Eq "^$ts app\[api\]: Release v1 created by admin\$" "$log"

router_get talk.localhost "/hello?x=1" >/dev/null
check "a request: heroku[router] at=info with its method, path, host, dyno, times, status, bytes and protocol" \
    eventually 5 grep -Eq "^$ts heroku\[router\]: at=info method=GET path=\"/hello\?x=1\" host=talk\.localhost request_id=[0-9a-f-]+ fwd=\"127\.0\.0\.1\" dyno=web\.1 connect=[0-9]+ms service=[0-9]+ms status=200 bytes=[0-9]+ protocol=http\$" "$log"
check "... and the app's line for it" grep -q "app\[web.1\]: request /hello?x=1\$" "$log"
router_get talk.localhost /stderr >/dev/null
check "stderr is captured too" eventually 5 grep -q "app\[web.1\]: request to stderr\$" "$log"
router_get talk.localhost /big >/dev/null
check "a line of 25000 bytes is split into 10000, 10000 and 5000 (Heroku's chunks)" \
    eventually 5 chunks_are "10000 10000 5000 "

"$BERTH" router:set talk timeout=1 >/dev/null
router_get talk.localhost /slow >/dev/null 2>&1 || true
check "the router's timeout: at=error code=H12 desc=\"Request timeout\"" \
    eventually 5 grep -Eq "^$ts heroku\[router\]: at=error code=H12 desc=\"Request timeout\" method=GET path=\"/slow\" host=talk\.localhost .*status=503" "$log"
"$BERTH" router:set talk timeout= >/dev/null

run config:set talk GREETING=hi
check "config:set: app[api]: Set GREETING config vars by admin" grep -Eq "^$ts app\[api\]: Set GREETING config vars by admin\$" "$log"
check "... and Release v2 created by admin" grep -Eq "^$ts app\[api\]: Release v2 created by admin\$" "$log"
check "the replaced instance, once retired: heroku[web.1]: Process exited with status N" \
    eventually 40 grep -Eq "^$ts heroku\[web\.1\]: Process exited with status [0-9]+\$" "$log"
check "... after Stopping all processes with SIGTERM" \
    grep -Eq "^$ts heroku\[web\.1\]: Stopping all processes with SIGTERM\$" "$log"
check "... after the new one's start" \
    test "$(grep -Ec "heroku\[web\.1\]: (Starting process|Process exited)" "$log" | head -1)" -ge 3

run rollback talk v1
check "rollback: app[api]: Rollback to v1 by admin, then Release v3 created by admin" \
    test "$(grep -E "^$ts app\[api\]: (Rollback to v1|Release v3 created) by admin\$" "$log" | sed 's/.*: //' | tr '\n' '|')" = \
    "Rollback to v1 by admin|Release v3 created by admin|"

# ---------------------------------------------------------------- berth logs and its filters
run logs talk
check "logs: exit 0, the log's lines" test "$rc" = 0 -a "$(grep -c 'Release v2 created by admin' "$out")" = 1
check "... the last 100 by default" test "$(wc -l <"$out")" -le 100
run logs talk -n 2
check "-n 2: the last two lines" test "$rc" = 0 -a "$(wc -l <"$out")" = 2
# The file's last two lines, read right after (a line written in between makes it try again).
last_two_match() { "$BERTH" logs talk -n 2 >"$TEST_DIR/two" && tail -n 2 "$log" | cmp -s - "$TEST_DIR/two"; }
if eventually 3 last_two_match; then
    ok "... the file's last two"
else
    not_ok "... the file's last two"; diag "$TEST_DIR/two"; tail -n 5 "$log" | cut -c1-200 | diag
fi
run logs talk -n 0
check "-n 0: nothing" test "$rc" = 0 -a ! -s "$out"
run logs talk -p web -n 1000
check "-p web: only app[web.N] and heroku[web.N] lines" \
    test "$rc" = 0 -a "$(grep -cvE "^$ts (app|heroku)\[web\.[0-9]+\]: " "$out")" = 0 -a -s "$out"
run logs talk -p web.1 -n 1000
check "-p web.1: the same lines" test "$rc" = 0 -a "$(grep -cvE "^$ts (app|heroku)\[web\.1\]: " "$out")" = 0
run logs talk --source router -n 1000
check "--source router: only heroku[router] lines" \
    test "$rc" = 0 -a "$(grep -cv " heroku\[router\]: " "$out")" = 0 -a "$(grep -c 'path="/hello?x=1"' "$out")" = 1
run logs talk --source app -n 1000
check "--source app: the app's and the platform's lines, none of the router's" \
    test "$rc" = 0 -a "$(grep -c " heroku\[router\]: " "$out")" = 0 -a "$(grep -c 'app\[api\]: Release v1' "$out")" = 1
run logs talk -p router -n 1000
check "-p router: the router's lines" test "$rc" = 0 -a -s "$out" -a "$(grep -cv " heroku\[router\]: " "$out")" = 0

# ---------------------------------------------------------------- bad input
run logs nosuchapp
check "an unknown app: exit 1, said" test "$rc" = 1 && contains "$err" "app 'nosuchapp' does not exist (HTTP 404)"
run logs talk -n lots
check "-n of garbage: exit 2 (usage)" test "$rc" = 2 && contains "$err" "-n takes a number of lines"
run logs talk -n 10001
check "-n past 10000: exit 2" test "$rc" = 2
run logs talk --source everything
check "an unknown source: exit 2" test "$rc" = 2 && contains "$err" "--source is 'app' or 'router'"
run logs talk -p 'Web!'
check "a malformed -p: exit 1, the API's 400 said" test "$rc" = 1 && contains "$err" "(HTTP 400)"
run logs talk --tial
check "an unknown option: exit 2" test "$rc" = 2
api "/apps/talk/logs?source=everything"
check "API: an unknown source is 400" test "$status" = 400 && contains "$out" "source must be"
api "/apps/talk/logs?lines=abc"
check "API: lines of garbage is 400" test "$status" = 400
api "/apps/talk/logs?lines=-1"
check "API: negative lines is 400" test "$status" = 400
api "/apps/talk/logs?tail=maybe"
check "API: tail other than 1 or 0 is 400" test "$status" = 400
api "/apps/nosuchapp/logs"
check "API: an unknown app is 404" test "$status" = 404
status=$(curl -sS -o "$out" -w '%{http_code}' "$BERTH_URL/apps/talk/logs")
check "API: no token is 401" test "$status" = 401

# ---------------------------------------------------------------- -t
before=$(threads)
"$BERTH" logs talk -t -n 0 >"$TEST_DIR/follow" 2>"$TEST_DIR/follow.err" &
follower=$!
sleep 0.5
start=$(date +%s%N)
router_get talk.localhost /followed >/dev/null
if eventually 3 grep -q 'path="/followed"' "$TEST_DIR/follow"; then
    ok "-t: a new request's router line arrives within $((($(date +%s%N) - start) / 1000000)) ms"
else
    not_ok "-t: a new request's router line arrives within 3 s"; diag "$TEST_DIR/follow" "$TEST_DIR/follow.err"
fi
check "... the app's line too" grep -q "app\[web.1\]: request /followed\$" "$TEST_DIR/follow"
check "... and nothing from before (-n 0)" not_contains "$TEST_DIR/follow" "Release v1"
check "the follower is still attached" kill -0 "$follower"
kill "$follower"; wait "$follower" 2>/dev/null || true
if eventually 5 threads_at_most "$before"; then
    ok "a -t client that disconnects: the server's connection thread ends (threads back to $before)"
else
    not_ok "a -t client that disconnects: the server's connection thread ends ($(threads) threads, $before before)"
    thread_diag
fi
# A raw client that drops the stream: curl gives up after 1 s.
curl -sS -N --max-time 1 -H "Authorization: Bearer $BERTH_TOKEN" "$BERTH_URL/apps/talk/logs?tail=1&lines=1" \
    >"$TEST_DIR/raw" 2>/dev/null || true
check "... the same for a raw HTTP client cut off mid-stream" eventually 5 threads_at_most "$before"
check "... which got the last line first, as text/plain" test "$(wc -l <"$TEST_DIR/raw")" = 1

# ---------------------------------------------------------------- a restart of berth
"$BERTH" logs talk -t -n 0 >"$TEST_DIR/follow2" 2>&1 &
follower=$!
sleep 0.5
lines_before=$(wc -l <"$log")
start=$(date +%s)
stop_berth
check "a -t client does not delay the server's stop ($(($(date +%s) - start)) s)" test $(($(date +%s) - start)) -lt 15
rc=0; for _ in $(seq 1 50); do kill -0 "$follower" 2>/dev/null || break; sleep 0.1; done
wait "$follower" || rc=$?
check "... and its stream ends when the server stops (exit $rc)" test "$rc" = 0
[ "$rc" = 0 ] || diag "$TEST_DIR/follow2"
check "the stop is logged: Process exited with status N" \
    test "$(tail -n 5 "$log" | grep -c 'heroku\[web\.1\]: Process exited with status')" -ge 1
start_berth "$home"
check "after a restart the log goes on: the old lines are kept" test "$(wc -l <"$log")" -ge "$lines_before"
check "... and the restored instance's start appended" \
    eventually 30 count_at_least 3 'heroku\[web\.1\]: Starting process with command'
run logs talk -n 10000
check "logs reads it all after the restart" test "$rc" = 0 && contains "$out" "Deploy $commit by admin"

done_testing
