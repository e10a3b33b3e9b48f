#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Pipelines through a real `berth serve`, the real git client and the
# `berth` CLI: a pipeline with a staging and a production app of different
# config; a push to staging names its stage; promotion moves the staging
# slug (the same content hash) to production with production's own config
# and no build, described "Promote staging vN (<commit>)"; `pipelines` and
# `pipelines:diff` show what each stage runs; production rolls back;
# config:copy copies chosen keys as a new release. Previews: with
# `pipelines:previews on`, a pushed branch gets its own app with the
# staging config and the preview overrides, answering at its own host, the
# push ending with its URL; a second push updates it; deleting the branch
# destroys it; one idle past the pipeline's idle time is stopped, and
# its next push starts it again. Bad input changes nothing: promotion from an app with no
# release, to an app outside the pipeline, across tenants; another
# tenant's app added to a pipeline; a branch that makes no DNS label or a
# name too long; two branches whose labels collide; a preview past the
# tenant's app quota. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
as() { local t=$1; shift; rc=0; BERTH_TOKEN=$t "$BERTH" "$@" >"$out" 2>"$err" || rc=$?; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$out"; }
rel() { "$BERTH" releases "$1" --json | python3 -c "import json,sys; d=json.load(sys.stdin); r=[x for x in d['releases'] if x['current']]; print(r[0]['$2'] if r else '')"; }
current() { "$BERTH" releases "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["current"])'; }
apps_now() { "$BERTH" apps --json | python3 -c 'import json,sys; print(" ".join(sorted(a["name"] for a in json.load(sys.stdin)["apps"])))'; }
url() { echo "http://berth:$BERTH_TOKEN@127.0.0.1:$CONTROL_PORT/$1.git"; }

src=$TEST_DIR/src
make_tree "$src" Procfile 'web: python3 -u app.py
' requirements.txt '' version 'one
' app.py 'import os, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("greeting=%s extra=%s version=%s" % (os.environ.get("GREETING", "unset"), os.environ.get("EXTRA", "unset"),
                open("version").read().strip())).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
'

# ---------------------------------------------------------------- a pipeline
for a in stg prod other; do "$BERTH" apps:create $a >/dev/null; done
run pipelines:create web
check "pipelines:create web" test "$rc" = 0
run pipelines:create web
check "... a second time: 409, exit 1" bash -c "[ $rc = 1 ] && grep -q 'HTTP 409' $err"
run pipelines:add web stg --stage staging
check "pipelines:add stg as staging" test "$rc" = 0
run pipelines:add web prod --stage production
check "pipelines:add prod as production" test "$rc" = 0
run pipelines:add web other --stage qa
check "an unknown stage is refused (400, exit 1)" bash -c "[ $rc = 1 ] && grep -q 'HTTP 400' $err && grep -q 'unknown stage' $err"
run pipelines:add nope other --stage staging
check "adding to a pipeline that does not exist: 404" bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err"
run pipelines:create two
run pipelines:add two stg --stage staging
check "an app belongs to one pipeline at most (409)" bash -c "[ $rc = 1 ] && grep -q 'HTTP 409' $err && grep -q \"in pipeline 'web' already\" $err"
run pipelines:add web stg
check "pipelines:add without --stage is a usage error" test "$rc" = 2
run pipelines --json
check "pipelines --json lists both pipelines" test "$(json '" ".join(p["name"] for p in d["pipelines"])')" = "two web"
run pipelines:destroy two --confirm wrong
check "pipelines:destroy with the wrong confirmation: refused" bash -c "[ $rc = 1 ] && grep -q 'HTTP 400' $err"
run pipelines:destroy two --confirm two
check "pipelines:destroy two" bash -c "[ $rc = 0 ] && ! $BERTH pipelines two 2>/dev/null"
"$BERTH" config:set stg GREETING=staging >/dev/null
"$BERTH" config:set prod GREETING=production >/dev/null

# ---------------------------------------------------------------- promotion from nothing
run pipelines:promote stg
check "promoting an app with no release: 409, exit 1, says so" \
    bash -c "[ $rc = 1 ] && grep -q 'HTTP 409' $err && grep -q 'no release to promote' $err"
check "... and production has no release" test "$(current prod)" = 0

# ---------------------------------------------------------------- push, promote
if push_app "$src" stg "$TEST_DIR/push"; then ok "a push to staging deploys"; else not_ok "a push to staging deploys"; diag "$TEST_DIR/push"; fi
check "... its output names the stage" contains "$TEST_DIR/push" "stg is the staging stage of pipeline 'web'"
check "staging serves its own config" wait_body stg.localhost / "greeting=staging extra=unset version=one"
commit=$(git -C "$src" rev-parse --short=7 HEAD)
run pipelines:promote stg
check "pipelines:promote stg" test "$rc" = 0
check "... says where it went" contains "$out" "prod (production) v1 from staging v1 ($commit)"
check "... without a build step" bash -c "! grep -Eqi 'build|compil|install|detected' $out $err"
check "production serves the promoted slug with its own config" wait_body prod.localhost / "greeting=production extra=unset version=one"
check "production runs the same slug (content hash) as staging" test "$(rel prod slug)" = "$(rel stg slug)" -a -n "$(rel stg slug)"
check "... described 'Promote staging v1 ($commit)'" test "$(rel prod description)" = "Promote staging v1 ($commit)"
run pipelines web --json
check "pipelines web --json: both stages with their release and commit" \
    test "$(json '" ".join("%s:%s:v%d:%s" % (a["stage"], a["app"], a["release"], (a["commit"] or "")[:7]) for a in d["apps"])')" \
         = "staging:stg:v1:$commit production:prod:v1:$commit"
run pipelines web
check "pipelines web prints each stage" bash -c "grep -Eq '^staging +stg +v1 +$commit' $out && grep -Eq '^production +prod +v1 +$commit' $out"
run pipelines:diff stg
check "pipelines:diff: up to date after the promotion" contains "$out" "Up to date"

echo 'two' >"$src/version"
commit_all "$src" "version two"
push_app "$src" stg "$TEST_DIR/push" || diag "$TEST_DIR/push"
check "staging serves version two" wait_body stg.localhost / "version=two"
commit2=$(git -C "$src" rev-parse --short=7 HEAD)
run pipelines:diff stg --json
check "pipelines:diff --json: one commit ahead of production" \
    test "$(json '"%d %d %s %s" % (d["ahead"], d["behind"], d["commits"][0]["id"][:7], d["commits"][0]["summary"])')" = "1 0 $commit2 version two"
run pipelines:promote stg --to prod
check "pipelines:promote --to prod" test "$rc" = 0
check "production serves version two, its own config" wait_body prod.localhost / "greeting=production extra=unset version=two"
run rollback prod
check "production rolls back (v3, to v1)" bash -c "[ $rc = 0 ] && grep -q 'done, v3' $out"
check "... and serves version one again, its own config" wait_body prod.localhost / "greeting=production extra=unset version=one"

# ---------------------------------------------------------------- bad promotions
before=$(current other)
run pipelines:promote stg --to other
check "promotion to an app outside the pipeline: 409, exit 1" \
    bash -c "[ $rc = 1 ] && grep -q 'HTTP 409' $err && grep -q \"not in pipeline 'web'\" $err"
check "... which keeps its releases" test "$(current other)" = "$before" -a "$(current prod)" = 3
run pipelines:promote prod
check "promotion past the last stage is refused" bash -c "[ $rc = 1 ] && grep -q 'no stage after production' $err"
run pipelines:promote stg --to nosuch
check "promotion to an app that does not exist: 404" bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err"

T=pl$$
run tenants:create $T
tok=$(tail -1 "$out")
as "$tok" apps:create $T-app
as "$tok" pipelines:create mine
as "$tok" pipelines:add mine stg --stage staging
check "a tenant cannot add another tenant's app (404, as if missing)" \
    bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err && grep -q \"app 'stg' does not exist\" $err"
as "$tok" pipelines:add mine $T-app --stage staging
check "... its own app it can" test "$rc" = 0
as "$tok" pipelines:promote stg
check "... nor promote another tenant's app (404)" bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err"
as "$tok" pipelines web
check "... nor see another tenant's pipeline (404)" bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err"
run pipelines:promote stg --to $T-app
check "promotion across tenants (the operator's pipeline to a tenant's app): refused" \
    bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err && [ \"\$(BERTH_TOKEN=$tok $BERTH releases $T-app --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"current\"])')\" = 0 ]"
run pipelines:add web $T-app --stage production
check "the operator cannot put a tenant's app into its pipeline either" bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err"

run tokens:create --app stg --role deploy
scoped=$(tail -1 "$out")
as "$scoped" pipelines:promote stg
check "a token limited to staging cannot promote to production (404)" \
    bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err && grep -q \"app 'prod' does not exist\" $err && [ $(current prod) = 3 ]"

# ---------------------------------------------------------------- config:copy
"$BERTH" config:set stg EXTRA=copied OTHER=x >/dev/null
v=$(current prod)
run config:copy stg prod EXTRA
check "config:copy stg prod EXTRA: a new release of prod" bash -c "[ $rc = 0 ] && [ $(current prod) = $((v + 1)) ]"
check "... its output names the stage" contains "$out" "Copied EXTRA: prod (production) v$((v + 1))"
check "... which serves EXTRA with its own GREETING" wait_body prod.localhost / "greeting=production extra=copied"
run config prod --json
check "... and copied nothing else" test "$(json '" ".join(sorted(d["config"]))')" = "EXTRA GREETING"
run config:copy stg prod NOPE
check "config:copy of a key the source lacks: refused, no release" \
    bash -c "[ $rc = 1 ] && grep -q \"'NOPE' is not set on 'stg'\" $err && [ $(current prod) = $((v + 1)) ]"

# ---------------------------------------------------------------- previews
git -C "$src" checkout -q -b feature-x
echo 'feature' >"$src/version"
commit_all "$src" "feature"
git -C "$src" push -q "$(url stg)" feature-x >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "without previews, a branch push makes no preview" bash -c "! $BERTH apps | grep -q stg-feature-x"
check "... the branch is stored as any git server would" \
    test "$(git --git-dir="$home/apps/stg/repo.git" rev-parse -q --verify refs/heads/feature-x)" = "$(git -C "$src" rev-parse HEAD)"
# Gone again, so the push below is a new branch for the preview.
git -C "$src" push -q "$(url stg)" :feature-x 2>/dev/null
run pipelines:previews web on --idle 1h
check "pipelines:previews web on --idle 1h" test "$rc" = 0
run config:set --preview stg GREETING=preview
check "config:set --preview stg GREETING=preview" bash -c "[ $rc = 0 ] && grep -q 'GREETING: preview' $out"
stg_before=$(current stg)
git -C "$src" push "$(url stg)" feature-x >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
if [ $rc = 0 ]; then ok "a branch push to staging is taken"; else not_ok "a branch push to staging is taken"; diag "$TEST_DIR/bpush"; fi
check "... its output ends with the preview's URL" \
    bash -c "grep '^remote:' $TEST_DIR/bpush | tail -1 | grep -q 'http://stg-feature-x.localhost:$HTTP_PORT/'"
check "... the preview is an app" bash -c "$BERTH apps | grep -qx stg-feature-x"
check "... answering at its own host with the staging config and the preview overrides" \
    wait_body stg-feature-x.localhost / "greeting=preview extra=copied version=feature"
check "... staging itself untouched" bash -c "[ $(current stg) = $stg_before ] && curl -s -H 'Host: stg.localhost' http://127.0.0.1:$HTTP_PORT/ | grep -q 'version=two'"
run pipelines web --json
check "... in the pipeline's review stage, with its branch" \
    test "$(json '" ".join("%s:%s:%s" % (a["app"], a["stage"], a.get("branch")) for a in d["apps"] if a.get("preview_of"))')" = "stg-feature-x:review:feature-x"
echo 'feature two' >"$src/version"
commit_all "$src" "feature two"
git -C "$src" push "$(url stg)" feature-x >"$TEST_DIR/bpush" 2>&1
check "a second push updates the preview" wait_body stg-feature-x.localhost / "version=feature two"
check "... as its v2" test "$(current stg-feature-x)" = 2
# A crash between the preview's app record and the pipeline's loses the entry: the next push takes the app back.
python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["apps"]=[a for a in d["apps"] if a["app"]!="stg-feature-x"]; json.dump(d,open(p,"w"))' \
    "$home/pipelines/admin/web.json"
echo 'feature three' >"$src/version"
commit_all "$src" "feature three"
git -C "$src" push "$(url stg)" feature-x >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "a preview whose pipeline entry was lost is taken back by its branch's next push" \
    bash -c "[ $rc = 0 ] && [ $(current stg-feature-x) = 3 ] && $BERTH pipelines web | grep -q 'stg-feature-x .*branch feature-x'"
check "... and serves the new commit" wait_body stg-feature-x.localhost / "version=feature three"

# bad branches: nothing made, nothing released
apps_before=$(apps_now)
git -C "$src" branch -q -- ___ && git -C "$src" push "$(url stg)" ___ >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "a branch that makes no DNS label is refused with the reason" \
    bash -c "[ $rc != 0 ] && grep -q 'no letter or digit to make a DNS label' $TEST_DIR/bpush"
long=feature-with-a-name-far-too-long
git -C "$src" branch -q $long && git -C "$src" push "$(url stg)" $long >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "a branch whose preview name is too long is refused with the reason" \
    bash -c "[ $rc != 0 ] && grep -q 'longer than the 30 characters' $TEST_DIR/bpush"
git -C "$src" branch -q Feature_X && git -C "$src" push "$(url stg)" Feature_X >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "two branches whose labels collide: the second is refused with the reason" \
    bash -c "[ $rc != 0 ] && grep -q \"which branch 'feature-x' of 'stg' has already\" $TEST_DIR/bpush"
# The operator sees the other tenant's app too: the operator's own are one fewer.
"$BERTH" tenants:limits admin --apps "$(($(echo $apps_before | wc -w) - 1))" >/dev/null
git -C "$src" branch -q feature-y && git -C "$src" push "$(url stg)" feature-y >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "a preview past the tenant's app quota is refused with the reason" \
    bash -c "[ $rc != 0 ] && grep -q 'no preview for branch .feature-y.*limit of' $TEST_DIR/bpush"
"$BERTH" tenants:limits admin --apps 20 >/dev/null
check "... none of them made an app, or a release" \
    bash -c "[ \"$(apps_now)\" = \"$apps_before\" ] && [ $(current stg) = $stg_before ] && [ $(current stg-feature-x) = 3 ]"
check "... or left the preview" wait_body stg-feature-x.localhost / "version=feature three"

# A preview destroyed by hand, and an app of its name made since: not the preview, whatever its branch does.
git -C "$src" branch -q feature-z && git -C "$src" push "$(url stg)" feature-z >"$TEST_DIR/bpush" 2>&1 || true
check "the preview of feature-z serves" wait_body stg-feature-z.localhost / "version=feature three"
run apps:destroy stg-feature-z --confirm stg-feature-z
run apps:create stg-feature-z
check "... destroyed by hand, and an app made with its name" test "$rc" = 0
git -C "$src" push "$(url stg)" :feature-z >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "deleting the branch leaves that app alone" \
    bash -c "[ $rc = 0 ] && $BERTH apps | grep -qx stg-feature-z && ! grep -q 'Destroyed preview' $TEST_DIR/bpush"
run apps:destroy stg-feature-z --confirm stg-feature-z

# A push that is not atomic settles each deleted branch by its own ref.
repo=$home/apps/stg/repo.git
touch "$repo/refs/heads/feature-x.lock"
git -C "$src" push "$(url stg)" :feature-x >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
rm -f "$repo/refs/heads/feature-x.lock"
check "a branch deletion that fails to land keeps the branch's preview" \
    bash -c "[ $rc != 0 ] && git --git-dir=$repo rev-parse -q --verify refs/heads/feature-x >/dev/null && $BERTH apps | grep -qx stg-feature-x && ! grep -q 'Destroyed preview' $TEST_DIR/bpush"
main_before=$(git --git-dir="$repo" rev-parse refs/heads/main)
git -C "$src" push -q "$(url stg)" feature-y >/dev/null 2>&1 || true
check "the preview of feature-y serves" wait_body stg-feature-y.localhost / "version=feature three"
touch "$repo/refs/heads/main.lock"
git -C "$src" push "$(url stg)" HEAD:refs/heads/main :feature-y >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
rm -f "$repo/refs/heads/main.lock"
check "main failing to land beside a branch deletion that lands: the branch's preview is destroyed" \
    bash -c "[ $rc != 0 ] && ! git --git-dir=$repo rev-parse -q --verify refs/heads/feature-y >/dev/null && grep -q 'Destroyed preview stg-feature-y' $TEST_DIR/bpush && ! $BERTH apps | grep -qx stg-feature-y"
check "... while main and its releases stay as they were" \
    bash -c "[ \"\$(git --git-dir=$repo rev-parse refs/heads/main)\" = $main_before ] && [ $(current stg) = $stg_before ]"

# deleting the branch
git -C "$src" push "$(url stg)" :feature-x >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "deleting the branch destroys its preview" \
    bash -c "[ $rc = 0 ] && grep -q 'Destroyed preview stg-feature-x' $TEST_DIR/bpush && ! $BERTH apps | grep -qx stg-feature-x"
check "... which answers no more" bash -c "! curl -s -H 'Host: stg-feature-x.localhost' http://127.0.0.1:$HTTP_PORT/ | grep -q greeting"
run pipelines web --json
check "... and left the pipeline" test "$(json 'len([a for a in d["apps"] if a.get("preview_of")])')" = 0

# ---------------------------------------------------------------- idle previews
run pipelines:previews web on --idle 1m
check "pipelines:previews --idle 1m" bash -c "[ $rc = 0 ] && [ \"\$($BERTH pipelines web --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"previews\"][\"idle\"])')\" = 60 ]"
run pipelines:previews web on --idle 10s
check "... an idle time under a minute is a usage error" test "$rc" = 2
git -C "$src" checkout -q -b idle-one
echo 'idle' >"$src/version"
commit_all "$src" "idle"
git -C "$src" push "$(url stg)" idle-one >"$TEST_DIR/bpush" 2>&1 || true
check "the preview of branch idle-one serves" wait_body stg-idle-one.localhost / "version=idle"
# No request from now on: stopped at the first minute boundary 60 s after the last one.
for _ in $(seq 1 150); do grep -q '"stopped": true' "$home/apps/stg-idle-one/app.json" && break; sleep 1; done
check "a preview that served no request for its idle time is stopped" grep -q '"stopped": true' "$home/apps/stg-idle-one/app.json"
check "... and serves no more" bash -c "! curl -s -H 'Host: stg-idle-one.localhost' http://127.0.0.1:$HTTP_PORT/ | grep -q greeting"
echo 'idle again' >"$src/version"
commit_all "$src" "idle again"
git -C "$src" push "$(url stg)" idle-one >"$TEST_DIR/bpush" 2>&1 || true
check "... until its next push starts it again" wait_body stg-idle-one.localhost / "version=idle again"
run pipelines:previews web off
git -C "$src" push "$(url stg)" :idle-one >"$TEST_DIR/bpush" 2>&1 && rc=0 || rc=$?
check "with previews off, deleting a branch still destroys its preview" \
    bash -c "[ $rc = 0 ] && grep -q 'Destroyed preview stg-idle-one' $TEST_DIR/bpush && ! $BERTH apps | grep -qx stg-idle-one"

# ---------------------------------------------------------------- the end
run pipelines:remove web prod
check "pipelines:remove web prod" bash -c "[ $rc = 0 ] && ! $BERTH pipelines web | grep -q ' prod '"
run pipelines:remove web prod
check "... a second time: 404" bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $err && grep -q \"'prod' is not in pipeline 'web'\" $err"
run pipelines:destroy web --confirm web --json
check "pipelines:destroy web --json" bash -c "[ $rc = 0 ] && grep -q '\"destroyed\": \"web\"' $out"
run tenants:destroy $T --confirm $T
run tenants:create $T
as "$(tail -1 "$out")" pipelines --json
check "a tenant created again under a destroyed one's name has none of its pipelines" \
    bash -c "[ $rc = 0 ] && [ \"\$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))[\"pipelines\"]))' $out)\" = 0 ]"
stop_berth
remove_tenant_cgroups $T
done_testing
