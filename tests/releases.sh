#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Releases and safe deploys through a real `berth serve`, the real git
# client and the `berth` CLI (and the API where the CLI would refuse
# first): every deploy, config change and rollback is a numbered release
# (`berth releases`, --json, descriptions and authors, config left out of
# the listing); `berth rollback` to the previous release and to vN, with
# its config, no rebuild; bad rollbacks (a release that does not exist,
# none before, a malformed argument or body, a slug that is gone) change
# nothing; startup health checks from app.json and from a CHECKS file
# (passing, failing, malformed, a path without '/') decide whether a push
# goes live, and a rejected one leaves the old release serving; an app
# that crashes at boot is rejected; and wrk through the router sees no
# failed request while the app is redeployed, its config changed and
# rolled back, for a keep-alive app and for one that closes every
# connection. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
command -v wrk >/dev/null || skip_all "wrk is needed (the Debian package wrk, in tools/packages.txt)"
serve_for_test
out=$TEST_DIR/out
err=$TEST_DIR/err
run() { rc=0; "$BERTH" "$@" >"$out" 2>"$err" || rc=$?; }
api() { # api METHOD PATH [BODY]: the answer's status in $status, its body in $out
    status=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $BERTH_TOKEN" \
        ${3:+-H 'Content-Type: application/json' --data "$3"} "$BERTH_URL$2")
}
current() { "$BERTH" releases rel --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["current"])'; }
serves() { wait_body rel.localhost / "$1" 10; }

"$BERTH" apps:create rel >/dev/null
src=$TEST_DIR/src
cp -a "$SRCDIR/tests/apps/greet" "$src"
git -C "$src" init -q -b main
commit_all "$src" "greet"
push() { # push MESSAGE: commits what changed in $src and pushes; the output in $TEST_DIR/push
    commit_all "$src" "$1" 2>/dev/null || true
    push_app "$src" rel "$TEST_DIR/push"
}

# ---------------------------------------------------------------- releases
if push "v1"; then ok "the first push deploys"; else not_ok "the first push deploys"; diag "$TEST_DIR/push"; fi
check "v1 serves" serves "greeting=unset"
commit=$(git -C "$src" rev-parse --short=7 HEAD)
run releases rel
check "releases lists v1 as 'Deploy <commit>'" grep -Eq "^v1 +Deploy $commit +admin " "$out"
check "... under a Heroku-style header naming the current release" contains "$out" "=== rel Releases - Current: v1"

run config:set rel GREETING=ahoy
check "config:set makes v2" contains "$out" "done, v2"
check "v2 serves the new config" serves "greeting=ahoy"
run releases rel
check "releases lists v2 first, 'Set GREETING config vars'" \
    test "$(sed -n 2p "$out" | awk '{print $1}')" = v2 -a "$(grep -c 'Set GREETING config vars' "$out")" = 1
run releases rel --json
check "releases --json is the API's answer, two releases" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [r["version"] for r in d["releases"]] == [2, 1] and d["releases"][0]["current"]' "$out"
check "... which leaves the config vars out" not_contains "$out" "ahoy"
run releases rel --yaml
check "releases with an unknown flag is a usage error" test "$rc" = 2

# ---------------------------------------------------------------- rollback
slug_before=$(ls "$home/layers/admin" | sort)
t0=$(date +%s%N)
run rollback rel
t1=$(date +%s%N)
check "rollback without a version goes back one: v3" contains "$out" "done, v3"
check "... 'Rollback to v1'" contains "$out" "Rollback to v1"
echo "# rollback took $(((t1 - t0) / 1000000)) ms (CLI to answer; the new instance serving included)"
check "v3 serves v1's config" serves "greeting=unset"
run config rel
check "the app's config is v1's again" not_contains "$out" "GREETING"
check "no build: no new slug" test "$(ls "$home/layers/admin" | sort)" = "$slug_before"
run rollback rel v2
check "rollback v2 makes v4" contains "$out" "done, v4"
check "v4 serves v2's config" serves "greeting=ahoy"
run config:get rel GREETING
check "and the config is v2's" grep -qx ahoy "$out"
run releases rel
check "releases lists 'Rollback to v2' as current" grep -Eq "^v4 +Rollback to v2 " "$out"

run rollback rel v99
check "rollback to a release that does not exist fails" test "$rc" = 1
check "... saying so" contains "$err" "release v99 of 'rel' does not exist"
check "... and changes nothing" test "$(current)" = 4
run rollback rel vx
check "rollback with a malformed version is a usage error" test "$rc" = 2
check "... that says so" contains "$err" "'vx' is not a release"
api POST /apps/rel/releases '{"rollback": "2"}'
check "the API refuses a rollback that is not a number (400)" test "$status" = 400
api POST /apps/rel/releases '[1]'
check "... and a body that is not an object (400)" test "$status" = 400
api PUT /apps/rel/releases '{}'
check "... and another method (405)" test "$status" = 405
"$BERTH" apps:create empty >/dev/null
run rollback empty
check "an app with no release has nothing to roll back to" test "$rc" = 1
check "... said so" contains "$err" "no release yet"
api GET /apps/nosuch/releases
check "releases of an app that does not exist: 404" test "$status" = 404
check "the current release still serves after all that" serves "greeting=ahoy"

# ---------------------------------------------------------------- health checks
cat >"$src/app.json" <<'J'
{"healthchecks": {"web": [{"type": "startup", "name": "must-fail", "path": "/", "content": "no-such-content-7731",
  "attempts": 2, "wait": 0, "timeout": 2}]}}
J
if push "failing check"; then not_ok "a push whose health check fails is rejected"; else ok "a push whose health check fails is rejected"; fi
check "... with the check's output" contains "$TEST_DIR/push" "must-fail: GET / attempt 2 of 2 failed: status 200, but 'no-such-content-7731' is not in the body"
check "... and the reason" contains "$TEST_DIR/push" "health check 'must-fail' (GET /) failed after 2 attempts"
check "the old release keeps serving" serves "greeting=ahoy"
check "... and stays current" test "$(current)" = 4
cat >"$src/app.json" <<'J'
{"healthchecks": {"web": [{"type": "startup", "name": "greets", "path": "/status", "content": "greeting=", "attempts": 3},
  {"type": "liveness", "path": "/ignored-at-deploy"}]}}
J
if push "passing check"; then ok "a push whose health check passes deploys"; else not_ok "a push whose health check passes deploys"; diag "$TEST_DIR/push"; fi
check "... and says so" contains "$TEST_DIR/push" "greets: GET /status passed (attempt 1 of 3)"
check "... running only the startup check" contains "$TEST_DIR/push" "Running 1 health check from app.json"
echo '{"healthchecks": {"web": [{"path": "status"}]}}' >"$src/app.json"
if push "no slash"; then not_ok "a check path without a leading '/' is refused"; else ok "a check path without a leading '/' is refused"; fi
check "... saying what is wrong" contains "$TEST_DIR/push" "healthchecks.web[0].path must start with '/'"
echo '{"healthchecks": ' >"$src/app.json"
if push "broken json"; then not_ok "a malformed app.json is refused"; else ok "a malformed app.json is refused"; fi
check "... saying so" contains "$TEST_DIR/push" "app.json: not a JSON object"
git -C "$src" rm -q app.json
printf '# Dokku CHECKS\nWAIT=0\nATTEMPTS=1\nTIMEOUT=3\n/ greeting=\n/other pid=\n' >"$src/CHECKS"
if push "CHECKS"; then ok "a CHECKS file whose checks pass deploys"; else not_ok "a CHECKS file whose checks pass deploys"; diag "$TEST_DIR/push"; fi
check "... running both checks" contains "$TEST_DIR/push" "Running 2 health checks from CHECKS"
printf 'ATTEMPTS=1\nWAIT=0\n/ expected-words-never-there\n' >"$src/CHECKS"
if push "failing CHECKS"; then not_ok "a failing CHECKS check rejects the push"; else ok "a failing CHECKS check rejects the push"; fi
printf 'ATTEMPTS=many\n' >"$src/CHECKS"
if push "bad CHECKS"; then not_ok "a malformed CHECKS setting is refused"; else ok "a malformed CHECKS setting is refused"; fi
check "... saying which line" contains "$TEST_DIR/push" "CHECKS line 1: ATTEMPTS= needs a number"
git -C "$src" rm -q CHECKS
printf 'web: echo boot-output-4411; exit 3\n' >"$src/Procfile"
if push "crash at boot"; then not_ok "an app that crashes at boot is rejected"; else ok "an app that crashes at boot is rejected"; fi
check "... with its output" contains "$TEST_DIR/push" "boot-output-4411"
check "... and its exit status" contains "$TEST_DIR/push" "exited with status 3"
printf 'web: exec python3 -u app.py\n' >"$src/Procfile"
check "after every rejection the last good release serves" serves "greeting=ahoy"

# ---------------------------------------------------------------- zero downtime
# wrk_during SECONDS NAME: wrk -c8 through the router in the background; wrk_done NAME checks it.
wrk_during() { wrk -t1 -c8 -d"$1"s --timeout 10s -H 'Host: rel.localhost' "http://127.0.0.1:$HTTP_PORT/" >"$TEST_DIR/wrk.$2" 2>&1 & wrk_pid=$!; sleep 1; }
wrk_done() { # wrk_done NAME WHAT
    wait "$wrk_pid" || true
    local n
    n=$(awk '/requests in/ {print $1}' "$TEST_DIR/wrk.$1")
    echo "# $2: ${n:-0} requests; $(grep -E 'Socket errors|Non-2xx' "$TEST_DIR/wrk.$1" | tr '\n' ' ')"
    check "$2: requests went through (${n:-0})" test "${n:-0}" -ge 200
    check "$2: no socket error and no failed request" not_grep_wrk "$TEST_DIR/wrk.$1"
}
not_grep_wrk() { ! grep -qE 'Socket errors|Non-2xx' "$1"; }
for mode in keepalive close; do
    if [ "$mode" = close ]; then "$BERTH" config:set rel CLOSE=1 >/dev/null; serves "greeting=ahoy"; fi
    wrk_during 14 "$mode"
    for i in 1 2 3; do
        echo "# $mode $i" >>"$src/app.py"
        push "$mode $i" || { not_ok "redeploy $i under load ($mode)"; diag "$TEST_DIR/push"; }
    done
    "$BERTH" config:set rel GREETING=again >/dev/null
    "$BERTH" rollback rel >/dev/null
    wrk_done "$mode" "$mode: 3 redeploys, a config change and a rollback"
done
check "it serves afterwards" serves "greeting="
done_testing
