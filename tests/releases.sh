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
# connection; maintenance mode answers 503 H80 without the app; `berth
# events` shows who changed what, never a config value; `berth gc` keeps
# the slugs of each app's last releases and removes the rest, after which
# a rollback to a collected release fails and changes nothing; a restart
# removes what a crash left (build and instance directories, a push's
# quarantine) and restores the app. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
command -v wrk >/dev/null || skip_all "wrk is needed (the Debian package wrk, in tools/packages.txt)"
serve_for_test
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
run config:set rel --no-restart EXTRA=later
check "config:set --no-restart saves without a release" contains "$out" "Setting EXTRA on rel (no restart)... done (the next release uses them)"
check "... the current release stays v2" test "$(current)" = 2
run config:get rel EXTRA
check "... and the config holds it" grep -qx later "$out"
run config:unset rel EXTRA --no-restart
check "config:unset --no-restart too" test "$rc" = 0 -a "$(current)" = 2
run config:set rel --no-restart
check "config:set with nothing but --no-restart is a usage error" test "$rc" = 2

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
printf '# Dokku CHECKS\nWAIT=0\nATTEMPTS=1\nTIMEOUT=3\n/ greeting=\n/other pid=\n/headers via=1.1 berth xff=127.0.0.1 probe=-\n' \
    >"$src/CHECKS"
if push "CHECKS"; then ok "a CHECKS file whose checks pass deploys"; else not_ok "a CHECKS file whose checks pass deploys"; diag "$TEST_DIR/push"; fi
check "... running all three checks" contains "$TEST_DIR/push" "Running 3 health checks from CHECKS"
# /headers answers what the router set: the check went through the router, which kept its probe header from the app.
check "... the checks went through the router (its Via and X-Forwarded-For, no probe header)" \
    contains "$TEST_DIR/push" "/headers: GET /headers passed"
in_app_log() { for _ in $(seq 1 50); do grep -Eq "$1" "$home/apps/rel/logs/app.log" && return 0; sleep 0.1; done; return 1; }
check "... and are in the app's log as the router's requests" in_app_log \
    'heroku\[router\]: at=info method=GET path="/headers" host=rel\.localhost .*status=200'
printf 'ATTEMPTS=1\nWAIT=0\n/ expected-words-never-there\n' >"$src/CHECKS"
if push "failing CHECKS"; then not_ok "a failing CHECKS check rejects the push"; else ok "a failing CHECKS check rejects the push"; fi
run checks rel
check "checks are enabled by default" grep -qx enabled "$out"
run checks:skip rel
check "checks:skip says so" contains "$out" "Skipping health checks for rel... done"
if push_app "$src" rel "$TEST_DIR/push"; then ok "with checks skipped, the same push deploys"; else
    not_ok "with checks skipped, the same push deploys"; diag "$TEST_DIR/push"; fi
check "... saying the checks were skipped" contains "$TEST_DIR/push" "Health checks skipped for rel"
run checks rel
check "checks shows skipped" grep -qx skipped "$out"
api PATCH /apps/rel/checks '{"checks": "sometimes"}'
check "the API refuses another checks mode (400)" test "$status" = 400
run checks:disable rel
check "checks:disable is taken" test "$rc" = 0
run checks:enable rel
check "checks:enable turns them back on" contains "$out" "Enabling health checks for rel... done"
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

# ---------------------------------------------------------------- maintenance
run maintenance rel
check "maintenance is off by default" grep -qx off "$out"
run maintenance:on rel
check "maintenance:on says so" contains "$out" "Enabling maintenance mode for rel... done"
code=$(curl -s -o "$TEST_DIR/maint" -w '%{http_code}' -H 'Host: rel.localhost' "http://127.0.0.1:$HTTP_PORT/")
check "in maintenance the router answers 503" test "$code" = 503
check "... with the maintenance page" contains "$TEST_DIR/maint" "Offline for maintenance"
# The router writes its access log once per loop turn: allow it a moment.
logged() { for _ in $(seq 1 30); do contains "$TEST_DIR/serve.log" "$1" && return 0; sleep 0.1; done; return 1; }
check "... logged as H80" logged 'code=H80 desc="Maintenance mode"'
run maintenance rel
check "maintenance shows on" grep -qx on "$out"
run router:set rel maintenance=sometimes
check "maintenance takes on or off only" contains "$err" "maintenance must be on or off"
run maintenance:off rel
check "maintenance:off serves the app again" serves "greeting=ahoy"

# ---------------------------------------------------------------- grace period
run ps:grace rel
check "ps:grace shows Heroku's 30 s by default" grep -qx "30s (default)" "$out"
run ps:grace rel 5
check "ps:grace APP 5 sets it" contains "$out" "Setting the grace period of rel to 5s... done"
run ps:grace rel
check "... and shows it" grep -qx "5s" "$out"
run ps:grace rel 0
check "a grace of 0 is a usage error" test "$rc" = 2
api PATCH /apps/rel/ps '{"grace": 99999}'
check "the API refuses a grace over an hour (400)" test "$status" = 400
run ps:grace rel default
check "ps:grace APP default goes back to 30 s" test "$rc" = 0 -a "$(grep -c . "$err")" = 0
run ps:grace rel
check "... as it shows" grep -qx "30s (default)" "$out"

# ---------------------------------------------------------------- events
run events rel
check "events lists the app's creation" grep -Eq " admin +rel +create +Created rel$" "$out"
check "... its deploys" grep -Eq " deploy +Deploy [0-9a-f]{7}: v1$" "$out"
check "... its config changes, by name" grep -Eq " config +Set GREETING config vars: v2$" "$out"
check "... its rollbacks" grep -Eq " rollback +Rollback to v1: v3$" "$out"
check "... and its settings changes" grep -Eq " settings +PATCH /apps/rel/router$" "$out"
check "... but never a config value" not_contains "$out" "ahoy"
run events rel --json
check "events --json gives the API's answer" \
    python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["events"]; assert e and all(x["app"] == "rel" for x in e)' "$out"
run events
check "events without an app lists every app's (empty's creation too)" grep -Eq " empty +create " "$out"
run events nosuch
check "events of an app that does not exist: 404" test "$rc" = 1
run events rel extra
check "events with two apps is a usage error" test "$rc" = 2

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

# ---------------------------------------------------------------- config changes at once
# Each change is applied to the config as it is under the app's deploy lock: read before it, four at
# once kept only the last one's var.
v0=$(current)
at_once=()
for i in 1 2 3 4; do "$BERTH" config:set rel "AT_ONCE_$i=$i" >"$TEST_DIR/at-once.$i" 2>&1 & at_once+=($!); done
wait "${at_once[@]}"
run config rel
check "four config:set at once: every var is in the config" \
    sh -c "for i in 1 2 3 4; do grep -q \"^AT_ONCE_\$i: *\$i\$\" '$out' || exit 1; done"
check "... each made a release" test "$(current)" = $((v0 + 4))
check "... and the last carries all four" python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]
assert all(c.get("AT_ONCE_%d" % i) == str(i) for i in range(1, 5)), c' "$home/apps/rel/releases/$((v0 + 4)).json"
run config:unset rel AT_ONCE_1 AT_ONCE_2 AT_ONCE_3 AT_ONCE_4
check "... which config:unset takes away in one release" test "$rc" = 0 -a "$(current)" = $((v0 + 5))

# ---------------------------------------------------------------- garbage collection
slugs() { find "$home/layers/admin" -mindepth 1 -maxdepth 1 -name '????????????????????????????????????????????????????????????????' | wc -l; }
before=$(slugs)
run gc --dry-run --keep 2
would=$(grep -c '^would remove admin/' "$out" || true)
check "gc --dry-run lists what it would free ($would of $before slugs)" test "$would" -ge 1
check "... and removes nothing" test "$(slugs)" = "$before"
run gc --keep 2
removed=$(grep -c '^removed admin/' "$out" || true)
check "gc removes what the dry run listed ($removed)" test "$removed" = "$would"
check "... the slugs are gone" test "$(slugs)" = $((before - removed))
check "... and it says how much it freed" grep -Eq "^Freed $removed slugs, [0-9]+ KiB" "$out"
check "the current release still serves" serves "greeting="
run rollback rel v1
check "rollback to a release whose slug was collected fails" test "$rc" = 1
check "... saying the slug is gone" contains "$err" "the slug of v1 of 'rel' is gone; nothing changed"
cur=$(current)
run rollback rel
check "rollback to the previous release (kept) works" contains "$out" "done, v$((cur + 1))"
run gc --keep 0
check "gc --keep 0 is a usage error" test "$rc" = 2
api POST /gc '{"keep": "all"}'
check "the API refuses a keep that is not a number (400)" test "$status" = 400
run events
check "events shows the collection" grep -Eq " gc +Removed $removed slugs" "$out"

# ---------------------------------------------------------------- what a crash leaves
# Left as a kill -9 would leave them: a build directory, an instance directory, a push's quarantine.
mkdir -p "$home/run/builds/rel-v99-0123456789abcdef/src" "$home/run/instances/rel-v98-web.1-0123456789abcdef/upper" \
    "$home/apps/rel/repo.git/objects/incoming-Ab12Cd" "$home/run/builds/nosuchapp-v1-00"
echo x >"$home/run/builds/rel-v99-0123456789abcdef/src/file"
stop_berth
if start_berth "$home"; then ok "berth serve starts again on the same home"; else not_ok "berth serve starts again"; fi
check "the app is restored and serves" serves "greeting="
check "a build directory left by a crash is removed at start" test ! -e "$home/run/builds/rel-v99-0123456789abcdef"
check "... an instance directory too" test ! -e "$home/run/instances/rel-v98-web.1-0123456789abcdef"
check "... and a push's quarantine" test ! -e "$home/apps/rel/repo.git/objects/incoming-Ab12Cd"
check "... each said in the log" contains "$TEST_DIR/serve.log" "rel-v99-0123456789abcdef', left after a crash"
check "one that names no app is left, and said so" contains "$TEST_DIR/serve.log" "nosuchapp-v1-00' (no app of that name)"
check "the running instance's own directory is kept" test -n "$(ls "$home/run/instances")"

# ---------------------------------------------------------------- scheduled collection
for i in 1 2; do echo "# gc $i" >>"$src/app.py"; push "gc $i" || true; done
stop_berth
set_gc() { python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["gc"]=json.loads(sys.argv[2]); json.dump(d,open(p,"w"))' "$home/berth.json" "$1"; }
set_gc '{"every": "soon"}'
if start_berth "$home" 2>/dev/null; then not_ok "a malformed gc.every stops berth serve from starting"; stop_berth; else
    ok "a malformed gc.every stops berth serve from starting"; fi
check "... saying what is wrong" contains "$TEST_DIR/serve.log" "gc.every must be a duration"
set_gc '{"every": "2s", "keep": 1}'
start_berth "$home"
before=$(slugs)
check "two new slugs to collect ($before in all)" test "$before" -ge 3
check "with gc.every 2s and keep 1, the scheduled pass removes all but the current slug" \
    bash -c "for i in \$(seq 1 50); do [ \$(find '$home/layers/admin' -mindepth 1 -maxdepth 1 -name '$(printf '?%.0s' $(seq 64))' | wc -l) = 1 ] && exit 0; sleep 0.2; done; exit 1"
check "... said in the log" grep -q "gc: removed [0-9]* slugs" "$TEST_DIR/serve.log"
check "... and the current release serves" serves "greeting="
done_testing
