#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Scheduled jobs through a real `berth serve`, the real git client and the
# `berth` CLI: app.json "cron" entries (Dokku's) are read at push and kept in
# the release; `berth cron` lists them with their next run; at the next
# minute boundary each runs as a one-off container of the current release
# with the app's config, its output and exit status (0, and 3 for a failing
# one) in the app's log and its last run in `berth cron` (and --json); a
# command naming a Procfile type runs that type's command; a job still
# running when it is due again is skipped with a log line; berth stops
# promptly with a job running, a minute it was down for is not made up,
# and the last runs survive the restart; a
# push with an invalid schedule, a missing command or an unsupported
# concurrency policy is rejected with the entry named and changes nothing;
# a release without cron lists none, and a rollback brings its schedule
# back; apps:destroy stops a running job; an unknown app is a 404 (exit 1),
# a bad invocation exit 2. Prints TAP. Bounded by the minute boundaries it
# waits for (about 4 to 5 minutes).
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
applog=$home/apps/tick/logs/app.log
current() { "$BERTH" releases tick --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["current"])'; }
# wait_log TEXT SECONDS: until the app's log holds TEXT.
wait_log() {
    local i
    for i in $(seq 1 $(($2 * 5))); do
        grep -qF -- "$1" "$applog" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}
# wait_until SECONDS COMMAND...: until COMMAND succeeds.
wait_until() {
    local i n=$(($1 * 5)); shift
    for i in $(seq 1 $n); do "$@" && return 0; sleep 0.2; done
    return 1
}
# job_field ID KEY...: a field of job ID in `cron tick --json` (a path of keys), printed as JSON.
job_field() {
    "$BERTH" cron tick --json | python3 -c '
import json, sys
job = [j for j in json.load(sys.stdin)["jobs"] if j["id"] == sys.argv[1]][0]
for k in sys.argv[2:]:
    job = job[k] if job is not None else None
print(json.dumps(job))' "$@"
}

"$BERTH" apps:create tick >/dev/null
src=$TEST_DIR/src
cp -a "$SRCDIR/tests/apps/greet" "$src"
printf 'web: exec python3 -u app.py\nclock: echo from-procfile-$GREETING\n' >"$src/Procfile"
cat >"$src/app.json" <<'EOF'
{"cron": [
  {"command": "echo cron-marker-$GREETING", "schedule": "* * * * *"},
  {"command": "echo failing-job; exit 3", "schedule": "*/1 * * * *"},
  {"command": "clock", "schedule": "@hourly"},
  {"command": "clock", "schedule": "* * * * *"},
  {"command": "sleep 75.5; echo slept", "schedule": "* * * * *", "concurrency_policy": "forbid"},
  {"command": "echo never", "schedule": "0 0 1 1 *", "maintenance": true}
]}
EOF
git -C "$src" init -q -b main
commit_all "$src" "with cron"
push() { # push MESSAGE: commits what changed in $src and pushes; the output in $TEST_DIR/push
    commit_all "$src" "$1" >/dev/null 2>&1 || true
    push_app "$src" tick "$TEST_DIR/push"
}

# ---------------------------------------------------------------- listing
if push "v1"; then ok "a push with cron entries deploys"; else not_ok "a push with cron entries deploys"; diag "$TEST_DIR/push"; fi
check "... and says how many jobs it scheduled" contains "$TEST_DIR/push" "Scheduled jobs: 6 (berth cron tick)"
run config:set tick GREETING=hello
check "config:set makes v2, which keeps the jobs" test "$rc" = 0 -a "$(current)" = 2
run cron tick
check "cron lists the jobs under a header" contains "$out" "=== tick Scheduled jobs (UTC)"
check "... with schedule and command" grep -Eq '^[0-9a-f]{10}  \* \* \* \* \* +echo cron-marker-\$GREETING$' "$out"
check "... never run yet, next at a minute's start" grep -Eq 'last: -  next: [0-9-]{10}T[0-9]{2}:[0-9]{2}:00Z$' "$out"
check "... a maintenance job has no next run" contains "$out" "next: (maintenance)"
run cron tick --json
check "cron --json: six jobs, ids distinct, none run, the next run within the minute" python3 -c '
import datetime, json, sys, time
jobs = json.load(open(sys.argv[1]))["jobs"]
assert len(jobs) == 6 and len({j["id"] for j in jobs}) == 6
assert all(j["last_run"] is None and not j["running"] for j in jobs)
assert [j["dyno"] for j in jobs] == ["cron.%d" % n for n in range(1, 7)]
assert [j["next_run"] is None for j in jobs] == [False] * 5 + [True]
assert jobs[2]["next_run"].endswith(":00:00Z") and jobs[2]["schedule"] == "@hourly"
nxt = datetime.datetime.strptime(jobs[0]["next_run"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
assert -5 < nxt.timestamp() - time.time() <= 60, jobs[0]' "$out"
ids=$(python3 -c 'import json,sys; print(" ".join(j["id"] for j in json.load(open(sys.argv[1]))["jobs"]))' "$out")
read -r marker_id fail_id _ clock_id sleep_id _ <<<"$ids"

# ---------------------------------------------------------------- bad input (while the minute comes)
push_rejected() { # push_rejected WHAT APP_JSON TEXT: the push fails saying TEXT; nothing changes
    local before=$(current)
    printf '%s' "$2" >"$src/app.json"
    if push "$1"; then not_ok "a push with $1 is rejected"; diag "$TEST_DIR/push"; return; fi
    ok "a push with $1 is rejected"
    check "... saying why, the entry named" contains "$TEST_DIR/push" "$3"
    check "... and the release stays v$before" test "$(current)" = "$before"
}
cp "$src/app.json" "$TEST_DIR/app.json.good"
push_rejected "an invalid schedule" '{"cron": [{"command": "true", "schedule": "* * * * *"}, {"command": "x", "schedule": "61 * * * *"}]}' \
    "app.json: cron[1] (\"61 * * * *\"): minute '61' is out of range 0-59"
push_rejected "a missing command" '{"cron": [{"schedule": "@daily"}]}' 'app.json: cron[0] needs a "command"'
push_rejected "six fields" '{"cron": [{"command": "true", "schedule": "0 * * * * *"}]}' "seconds are not supported"
push_rejected "concurrency_policy allow" '{"cron": [{"command": "true", "schedule": "@daily", "concurrency_policy": "allow"}]}' \
    'only "forbid" is supported'
cp "$TEST_DIR/app.json.good" "$src/app.json"
commit_all "$src" "back to the good app.json" >/dev/null 2>&1

"$BERTH" apps:create plain >/dev/null
run cron plain
check "an app with no release lists no jobs" contains "$out" "plain has no scheduled jobs"
run cron plain --json
check "... --json: an empty list" python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"jobs": []}' "$out"
run cron nope
check "cron of an unknown app exits 1" test "$rc" = 1
check "... saying so" contains "$err" "nope"
status=$(curl -sS -o "$out" -w '%{http_code}' -H "Authorization: Bearer $BERTH_TOKEN" "$BERTH_URL/apps/nope/cron")
check "GET /apps/nope/cron is 404" test "$status" = 404
status=$(curl -sS -o "$out" -w '%{http_code}' -X POST -H "Authorization: Bearer $BERTH_TOKEN" "$BERTH_URL/apps/tick/cron")
check "POST /apps/tick/cron is 405" test "$status" = 405
run cron
check "cron without an app is a usage error (exit 2)" test "$rc" = 2
check "... showing the usage" contains "$err" "usage: berth cron APP [--json]"
run cron tick --yaml
check "cron with an unknown flag is a usage error (exit 2)" test "$rc" = 2

# ---------------------------------------------------------------- the runs
if wait_log "app[cron.1]: cron-marker-hello" 75; then ok "the job ran within a minute, with the app's config"; else
    not_ok "the job ran within a minute, with the app's config"; diag "$applog"; fi
check "... its exit status 0 in the log" wait_log "heroku[cron.1]: Cron job $marker_id exited with status 0" 10
check "a failing job's status is logged" wait_log "heroku[cron.2]: Cron job $fail_id exited with status 3" 10
check "... in Heroku's words too" contains "$applog" "heroku[cron.2]: Process exited with status 3"
check "... its output too" contains "$applog" "app[cron.2]: failing-job"
check "a command naming a Procfile type runs that type's command" wait_log "app[cron.4]: from-procfile-hello" 10
run logs tick -p cron.2 -n 100
check "logs -p cron.2 shows that job's lines" contains "$out" "app[cron.2]: failing-job"
check "... and no other job's" not_contains "$out" "cron-marker"
check "each run's start is logged with its command" contains "$applog" "heroku[cron.2]: Starting process with command \`echo failing-job; exit 3\`"
check "... and its job" contains "$applog" "heroku[cron.2]: Cron job $fail_id is due"
check "cron --json: the marker's last run exited 0" test "$(job_field "$marker_id" last_run exit_status)" = 0
check "... the failing job's 3" test "$(job_field "$fail_id" last_run exit_status)" = 3
check "... the sleeper is running" test "$(job_field "$sleep_id" running)" = true
check "... the next run is after the last" python3 -c '
import json, subprocess, sys
j = [j for j in json.loads(subprocess.check_output([sys.argv[1], "cron", "tick", "--json"]))["jobs"] if j["id"] == sys.argv[2]][0]
assert j["next_run"] > j["last_run"]["started_at"], j' "$BERTH" "$marker_id"
run cron tick
check "cron shows a last run's time and status" grep -Eq "last: [0-9T:-]+Z exit 3  next: " "$out"
check "... and a running job as running" contains "$out" "last: running"
if wait_log "heroku[cron.5]: Skipping cron job $sleep_id" 65; then ok "a job still running when due again is skipped, with a log line"; else
    not_ok "a job still running when due again is skipped, with a log line"; diag "$applog"; fi
check "... saying why" contains "$applog" "its previous run is still going"
marker_runs() { test "$(grep -c 'app\[cron.1\]: cron-marker-' "$applog")" -ge 2; }
check "... while the others run again" wait_until 10 marker_runs

# ---------------------------------------------------------------- restart
sleeper_running() { test "$(job_field "$sleep_id" running)" = true; }
check "the sleeper runs again (75 s of every 120)" wait_until 60 sleeper_running
t0=$(date +%s)
stop_berth
check "berth stops promptly with a job running" test $(( $(date +%s) - t0 )) -le 15
check "... the stopped run is logged" contains "$applog" "Cron job $sleep_id did not complete"
# Down across a minute boundary: that minute's runs are not made up at the start.
dues() { grep -c "Cron job $marker_id is due" "$applog" || true; }
dues_before=$(dues)
sleep $(( 61 - $(date +%s) % 60 ))
start_berth "$home"
sleep 2
check "a minute missed while berth was down is not made up" test "$(dues)" = "$dues_before"
check "after a restart, the last runs are still known" test "$(job_field "$fail_id" last_run exit_status)" = 3
check "... the stopped one with its reason" python3 -c 'import json,sys; assert "stopped" in json.loads(sys.argv[1])' \
    "$(job_field "$sleep_id" last_run error)"

# ---------------------------------------------------------------- releases carry their schedule
rm "$src/app.json"
if push "no cron"; then ok "a push without app.json deploys"; else not_ok "a push without app.json deploys"; diag "$TEST_DIR/push"; fi
run cron tick
check "... and the app lists no jobs" contains "$out" "tick has no scheduled jobs"
run rollback tick v2
check "rollback to v2" test "$rc" = 0
run cron tick --json
check "... brings v2's six jobs back, with their last runs" python3 -c '
import json, sys
jobs = json.load(open(sys.argv[1]))["jobs"]
assert len(jobs) == 6 and [j for j in jobs if j["id"] == sys.argv[2]][0]["last_run"]["exit_status"] == 0' "$out" "$marker_id"

# ---------------------------------------------------------------- destroy
check "the sleeper runs again after the rollback" wait_until 70 sleeper_running
sleeper_process() { pgrep -f "sleep 75.5" >/dev/null; }
no_sleeper() { ! sleeper_process; }
check "... its sleep is a process on the host" wait_until 15 sleeper_process   # running: the init may not have exec'd it yet
run apps:destroy tick --confirm tick
check "apps:destroy with a job running succeeds" test "$rc" = 0
check "... and stops the job's container" wait_until 10 no_sleeper
run cron tick
check "... after which cron of the app exits 1" test "$rc" = 1
done_testing
