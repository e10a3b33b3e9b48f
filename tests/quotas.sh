#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Quotas enforced by the kernel (control/quota.c, runner_cgroup_set_limits()),
# through a real `berth serve` with two tenants, "acme" and "other" below
# (named qa<pid> and qb<pid>: cgroups of other runs may sit beside them):
# `tenants:limits` writes the tenant's cgroup at once (the files are read
# back from /sys/fs/cgroup), `resource:limit` reaches the instance's
# cgroup, an app that allocates past acme's memory is OOM-killed by the
# kernel while acme's other app and other's app answer, a fork storm stops
# at acme's pids.max while other's app answers, a spinner is held to acme's
# cpu quota, the app cap refuses apps:create, and a third tenant's instance
# limit holds through first pushes (two at once too), redeploys, restarts
# and rollbacks, a tenant at its limit still redeploying and restarting an
# app whose formation is unchanged. Bad input (malformed sizes,
# negative cpus, unknown flags, over-quota values, a tenant setting limits)
# is refused with the right status and exit code (2 for what the CLI can
# tell is malformed, 1 for what the API refuses) and changes nothing.
# Last, `berth serve` refuses to start when a tenant's limits cannot be
# written, unless --allow-no-limits. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
ADMIN=$BERTH_TOKEN

# cg CTRL REL: the directory of berth's cgroup REL (libtest.sh).
cg() { berth_cgroup "$@"; }
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then V2=1 MEMKNOB=memory.max; else V2=0 MEMKNOB=memory.limit_in_bytes; fi
knob() { cat "$(cg "$1" "$2")/$3" 2>/dev/null || echo missing; }
cpu_quota() { # cpu_quota REL: "50000" (v1 cfs_quota_us, or v2's cpu.max quota), -1/max for none
    if [ $V2 = 1 ]; then knob cpu "$1" cpu.max | cut -d' ' -f1; else knob cpu "$1" cpu.cfs_quota_us; fi
}

# new_tenant NAME SLICE: makes the tenant (tenants:create where this berth has it) and prints its token.
new_tenant() {
    if "$BERTH" help 2>&1 | grep -q 'tenants:create'; then
        "$BERTH" tenants:create "$1" >"$TEST_DIR/tenant.$1" 2>&1 || { diag "$TEST_DIR/tenant.$1"; return 1; }
        grep -oE '[A-Za-z0-9_-]{20,}' "$TEST_DIR/tenant.$1" | tail -1
        return 0
    fi
    local token
    token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '{"name": "%s", "slice": %s, "token_sha256": ["%s"]}\n' "$1" "$2" \
        "$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)" >"$home/tenants/$1.json"
    echo "$token"
}
# Names of their own: berth-<user> in the cpu and pids hierarchies may be shared with other runs.
A=qa$$ B=qb$$
ACME=$(new_tenant $A 1)
OTHER=$(new_tenant $B 2)
check "two tenants, acme and other" test -n "$ACME" -a -n "$OTHER"
as() { local t=$1; shift; BERTH_TOKEN=$t "$@"; }
quiet() { "$@" >/dev/null 2>&1; }

# ---------------------------------------------------------------- tenants:limits
out=$TEST_DIR/out
"$BERTH" tenants:limits $B >"$out" 2>&1
check "tenants:limits shows a tenant's defaults" grep -q 'Memory: *2G (default)' "$out"
check "... its cpus, processes, apps and instances" \
    bash -c "grep -q 'CPUs: *1 (default)' $out && grep -q 'Processes: *2000' $out && grep -q 'Apps: *20 (default) (0 used)' $out && grep -q 'Instances: *50' $out"
if "$BERTH" tenants:limits $A --memory 256M --pids 300 --apps 2 --instances 5 >"$out" 2>&1; then
    ok "the admin sets acme's limits"; else not_ok "the admin sets acme's limits"; diag "$out"; fi
check "... and sees them" grep -q 'Memory: *256M$' "$out"
check "acme's cgroup has $MEMKNOB 256M at once" test "$(knob memory $A $MEMKNOB)" = 268435456
[ $V2 = 1 ] || check "... and memory.memsw.limit_in_bytes" \
    bash -c "[ ! -e $(cg memory $A)/memory.memsw.limit_in_bytes ] || [ \$(cat $(cg memory $A)/memory.memsw.limit_in_bytes) = 268435456 ]"
check "... and pids.max 300" test "$(knob pids $A pids.max)" = 300
"$BERTH" tenants:limits $A --json >"$out" 2>&1
check "tenants:limits --json names the limits and what is left at the default" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tenant"] == sys.argv[2] and d["limits"]["memory"] == 268435456 and d["limits"]["pids"] == 300
assert d["limits"]["apps"] == 2 and d["limits"]["instances"] == 5 and d["limits"]["cpus"] == 1
assert d["defaults"] == ["cpus"] and d["enforced"] is True' "$out" $A
check "a tenant reads its own limits" quiet as "$ACME" "$BERTH" tenants:limits $A
as "$ACME" "$BERTH" tenants:limits $B >"$out" 2>&1 && rc=0 || rc=$?
check "... but not another's (exit 1, 404)" bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' $out"
"$BERTH" tenants:limits admin --json >"$out" 2>&1
check "the operator's own tenant has no limits by default" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert all(v is None for v in d["limits"].values()), d' "$out"

# ---------------------------------------------------------------- apps and their pushes
check "acme creates two apps" bash -c "BERTH_TOKEN=$ACME $BERTH apps:create hog1 >/dev/null && BERTH_TOKEN=$ACME $BERTH apps:create calm >/dev/null"
as "$ACME" "$BERTH" apps:create third >"$out" 2>&1 && rc=0 || rc=$?
check "a third is refused: acme's app cap (exit 1, 409, the limit named)" \
    bash -c "[ $rc = 1 ] && grep -q 'HTTP 409' $out && grep -q \"limit of 2 apps\" $out"
check "... and nothing was created" bash -c "! BERTH_TOKEN=$ACME $BERTH apps:list | grep -qx third && [ ! -e $home/apps/third ]"
check "other creates its app" quiet as "$OTHER" "$BERTH" apps:create other1
# The cap is checked with the creation under one lock: four creations at once, room for one.
"$BERTH" tenants:limits $B --apps 2 >/dev/null
racers=()
for i in 1 2 3 4; do BERTH_TOKEN=$OTHER "$BERTH" apps:create "race$i" >"$TEST_DIR/race.$i" 2>&1 & racers+=($!); done
wait "${racers[@]}" || true
check "four apps:create at once with room for one: one app made, three refused by the cap" \
    bash -c "[ \$(BERTH_TOKEN=$OTHER $BERTH apps:list | grep -c '^race') = 1 ] && [ \$(cat $TEST_DIR/race.* | grep -c 'limit of 2 apps') = 3 ]"
for i in 1 2 3 4; do BERTH_TOKEN=$OTHER "$BERTH" apps:destroy "race$i" --confirm "race$i" >/dev/null 2>&1 || true; done
make_repo "$SRCDIR/tests/apps/hog" "$TEST_DIR/hog"
make_repo "$SRCDIR/tests/apps/greet" "$TEST_DIR/greet"
BERTH_TOKEN=$ACME push_app "$TEST_DIR/hog" hog1 "$TEST_DIR/push1" && ok "hog1 deploys" || { not_ok "hog1 deploys"; diag "$TEST_DIR/push1"; }
BERTH_TOKEN=$ACME push_app "$TEST_DIR/greet" calm "$TEST_DIR/push2" && ok "calm deploys" || { not_ok "calm deploys"; diag "$TEST_DIR/push2"; }
BERTH_TOKEN=$OTHER push_app "$TEST_DIR/greet" other1 "$TEST_DIR/push3" && ok "other1 deploys" || { not_ok "other1 deploys"; diag "$TEST_DIR/push3"; }
check "hog1 answers" wait_body hog1.localhost / "app=hog1 ok" 20
check "calm answers" wait_body calm.localhost / "greeting=" 20
check "other1 answers" wait_body other1.localhost / "greeting=" 20
check "the instances run below their tenant's cgroup" \
    bash -c "ls -d $(cg memory $A)/hog1/web.1-* $(cg pids $A)/calm/web.1-* $(cg memory $B)/other1/web.1-* >/dev/null"
"$BERTH" tenants:limits $A >"$out" 2>&1
check "tenants:limits counts acme's apps and the instances in use" \
    bash -c "grep -q 'Apps: *2 (2 used)' $out && grep -q 'Instances: *5 (2 in use)' $out"

# ---------------------------------------------------------------- cpu quota and resource:limit
check "the admin gives acme a fifth of a CPU" quiet "$BERTH" tenants:limits $A --cpus 0.2
check "acme's cgroup has a cpu quota of 20 ms per 100 ms" test "$(cpu_quota $A)" = 20000
if as "$ACME" "$BERTH" resource:limit calm --memory 200M --cpus 0.1 --pids 100 >"$out" 2>&1; then
    ok "acme limits calm's web processes"; else not_ok "acme limits calm's web processes"; diag "$out"; fi
check "... which it shows" grep -qE '^web +200M +0.1 +100$' "$out"
found=0
for _ in $(seq 1 100); do
    for d in $(ls -d "$(cg memory $A/calm)"/web.1-* 2>/dev/null); do
        [ "$(cat "$d/$MEMKNOB" 2>/dev/null)" = 209715200 ] && [ -n "$(cat "$d/cgroup.procs")" ] && found=1
    done
    [ $found = 1 ] && break; sleep 0.2
done
check "calm restarted into an instance cgroup with $MEMKNOB 200M" test $found = 1
inst=$(for d in "$(cg memory $A/calm)"/web.1-*; do [ "$(cat "$d/$MEMKNOB")" != 209715200 ] || basename "$d"; done | tail -1)
check "... pids.max 100" test "$(knob pids "$A/calm/$inst" pids.max)" = 100
check "... and a cpu quota of 10 ms per 100 ms" test "$(cpu_quota "$A/calm/$inst")" = 10000
check "calm still answers" wait_body calm.localhost / "greeting=" 20
as "$ACME" "$BERTH" resource:limit calm --pids 100 --json >"$out" 2>&1
check "resource:limit --json answers with web's limits, none left at the default" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["resources"]["web"]
assert d["memory"] == 209715200 and d["cpus"] == 0.1 and d["pids"] == 100 and d["defaults"] == [], d' "$out"
as "$ACME" "$BERTH" resource hog1 >"$out" 2>&1
check "an app without resources shows the defaults (512M, no cpu quota, 512)" grep -qE '^web +512M +none +512$' "$out"

# ---------------------------------------------------------------- bad input, nothing changed
before=$("$BERTH" tenants:limits $A --json)
before_res=$(as "$ACME" "$BERTH" resource calm --json)
before_cg="$(knob memory $A $MEMKNOB) $(knob pids $A pids.max) $(cpu_quota $A)"
refused() { # refused EXIT TEXT CMD...: exits EXIT and says TEXT
    local want=$1 text=$2 rc; shift 2
    "$@" >"$out" 2>&1 && rc=0 || rc=$?
    [ "$rc" = "$want" ] && grep -qF -- "$text" "$out" || { diag "$out"; return 1; }
}
check "tenants:limits --memory 2Q is a usage error (exit 2)" refused 2 "is not a size" "$BERTH" tenants:limits $A --memory 2Q
check "tenants:limits --cpus -1 is a usage error" refused 2 "is not a number of CPUs" "$BERTH" tenants:limits $A --cpus -1
check "tenants:limits --cpus 0 is a usage error" refused 2 "usage:" "$BERTH" tenants:limits $A --cpus 0
check "tenants:limits --cpus 0.0001 is a usage error" refused 2 "usage:" "$BERTH" tenants:limits $A --cpus 0.0001
check "tenants:limits --pids 1.5 is a usage error" refused 2 "is not a whole number" "$BERTH" tenants:limits $A --pids 1.5
check "tenants:limits --apps 0 is a usage error" refused 2 "usage:" "$BERTH" tenants:limits $A --apps 0
check "tenants:limits --memory 1K (below 16M) is refused by the API (exit 1, 400)" refused 1 "HTTP 400" "$BERTH" tenants:limits $A --memory 1K
check "... naming the bounds" grep -q "memory must be a size from 16M to 1T" "$out"
check "tenants:limits --cpus 2000 (above 1024) is refused (exit 1, 400)" refused 1 "cpus must be" "$BERTH" tenants:limits $A --cpus 2000
check "an unknown flag is a usage error (exit 2)" refused 2 "usage:" "$BERTH" tenants:limits $A --disk 1G
check "a flag without a value is a usage error" refused 2 "usage:" "$BERTH" tenants:limits $A --memory
check "a tenant setting limits is refused (exit 1, 403)" refused 1 "HTTP 403" as "$ACME" "$BERTH" tenants:limits $A --memory 4G
check "limits of a missing tenant: exit 1, 404" refused 1 "HTTP 404" "$BERTH" tenants:limits nosuch --memory 1G
check "limits of an invalid tenant name: 404" refused 1 "HTTP 404" "$BERTH" tenants:limits ../admin --memory 1G
check "resource:limit past the tenant's memory is refused, the limit named (exit 1, 409)" \
    refused 1 "memory 4G exceeds tenant '$A' limit of 256M" as "$ACME" "$BERTH" resource:limit calm --memory 4G
check "... past its cpus" refused 1 "cpus 2 exceeds tenant '$A' limit of 0.2" as "$ACME" "$BERTH" resource:limit calm --cpus 2
check "... past its processes" refused 1 "pids 1000 exceeds tenant '$A' limit of 300" as "$ACME" "$BERTH" resource:limit calm --pids 1000
check "resource:limit with a bad type is a usage error" refused 2 "not a process type name" as "$ACME" "$BERTH" resource:limit calm --type 'we b' --memory 100M
check "resource:limit with a malformed size is a usage error" refused 2 "is not a size" as "$ACME" "$BERTH" resource:limit calm --memory 12XB
check "resource:limit --pids 1 (below 8) is refused by the API (400)" refused 1 "pids must be" as "$ACME" "$BERTH" resource:limit calm --pids 1
check "resource:limit without a limit is a usage error" refused 2 "usage:" as "$ACME" "$BERTH" resource:limit calm --type web
check "resource:limit of another tenant's app: 404" refused 1 "HTTP 404" as "$OTHER" "$BERTH" resource:limit calm --memory 100M
check "ps:scale past acme's instances is refused, the limit named (exit 1, 409)" \
    refused 1 "would exceed tenant '$A' limit of 5 instances" as "$ACME" "$BERTH" ps:scale calm web=5
check "... and calm still runs one web process" bash -c "[ \$(ls -d $(cg pids $A/calm)/web.* | wc -l) -ge 1 ] && ! grep -q '\"web\": *5' $home/apps/calm/app.json"
# A stopped app's instances count for nothing until ps:start, which must fit them in the quota again.
quiet as "$ACME" "$BERTH" ps:stop calm
"$BERTH" tenants:limits $A --instances 1 >/dev/null
check "ps:start of a stopped app past the instances left is refused, the limit named (exit 1, 409)" \
    refused 1 "would exceed tenant '$A' limit of 1 instances" as "$ACME" "$BERTH" ps:start calm
check "... and it stays stopped" grep -q '"stopped": *true' "$home/apps/calm/app.json"
"$BERTH" tenants:limits $A --instances 5 >/dev/null
check "with room again, ps:start runs it" quiet as "$ACME" "$BERTH" ps:start calm
check "... and it serves" wait_body calm.localhost / "greeting=" 20
api_patch() { curl -s -o "$out" -w '%{http_code}' -X PATCH -H "Authorization: Bearer $1" -d "$3" "$BERTH_URL$2"; }
check "the API refuses a malformed size (400)" test "$(api_patch "$ADMIN" /tenants/$A/limits '{"memory": "2Q"}')" = 400
check "... naming what a size is" grep -q "memory must be a size" "$out"
check "... negative cpus (400)" test "$(api_patch "$ADMIN" /tenants/$A/limits '{"cpus": -1}')" = 400
check "... a bad process type (400)" test "$(api_patch "$ACME" /apps/calm/resources '{"type": "we b", "memory": "100M"}')" = 400
check "the API refuses a limit of the wrong JSON type (400)" test "$(api_patch "$ADMIN" /tenants/$A/limits '{"memory": true}')" = 400
check "... an unknown limit (400)" test "$(api_patch "$ADMIN" /tenants/$A/limits '{"frobs": 1}')" = 400
check "... a body that is not an object (400)" test "$(api_patch "$ADMIN" /tenants/$A/limits '[1]')" = 400
check "... a negative resource (400)" test "$(api_patch "$ACME" /apps/calm/resources '{"pids": -5}')" = 400
# calm runs with a tenth of a CPU: the kernel refuses acme a twentieth while that container lives.
if "$BERTH" tenants:limits $A --cpus 0.05 >"$out" 2>&1; then
    not_ok "a tenant cpu limit below a running container's is refused"; diag "$out"
else
    check "a tenant cpu limit below a running container's is refused, naming the app's limit as the cause" \
        grep -q "a running container of tenant '$A' has a higher cpu limit" "$out"
fi
check "acme's limits are unchanged" test "$("$BERTH" tenants:limits $A --json)" = "$before"
check "calm's resources are unchanged" test "$(as "$ACME" "$BERTH" resource calm --json)" = "$before_res"
check "acme's cgroup is unchanged" test "$(knob memory $A $MEMKNOB) $(knob pids $A pids.max) $(cpu_quota $A)" = "$before_cg"

# ---------------------------------------------------------------- instances: every start is counted
# A third tenant with room for one instance. Deploys count slots, not
# processes: web.1's old and new process overlap in a rolling deploy, and a
# tenant at its limit still redeploys or restarts an app whose formation is
# unchanged; what a push, a rollback or a restart would add past the limit is
# refused before anything runs, with the message ps:scale gives.
C=qc$$
THIRD=$(new_tenant $C 3)
check "a third tenant, with room for one instance" quiet "$BERTH" tenants:limits $C --apps 4 --instances 1
asc() { BERTH_TOKEN=$THIRD "$@"; }
used() { "$BERTH" tenants:limits $C --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["usage"]["instances"])'; }
processes() { asc "$BERTH" ps "$1" --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["processes"]))'; }
current_release() { ls "$home/apps/$1/releases" 2>/dev/null | sed -n 's/^\([0-9]*\)\.json$/\1/p' | sort -n | tail -1; }
for a in qone qtwo qr1 qr2; do quiet asc "$BERTH" apps:create $a; done
make_repo "$SRCDIR/tests/apps/greet" "$TEST_DIR/qgreet"
make_repo "$SRCDIR/tests/apps/procs" "$TEST_DIR/qprocs"   # web, and a worker type (scaled to 0)
BERTH_TOKEN=$THIRD push_app "$TEST_DIR/qgreet" qone "$TEST_DIR/qpush1" && ok "its first app's first push runs" ||
    { not_ok "its first app's first push runs"; diag "$TEST_DIR/qpush1"; }
check "... and it answers" wait_body qone.localhost / "greeting=" 20
if BERTH_TOKEN=$THIRD push_app "$TEST_DIR/qgreet" qtwo "$TEST_DIR/qpush2"; then
    not_ok "the second app's first push is refused: its web.1 is one instance past the limit"
else ok "the second app's first push is refused: its web.1 is one instance past the limit"; fi
check "... the pusher told why, the limit named (remote: ... limit of 1 instances)" \
    grep -q "^remote: .*1 more instances would exceed tenant '$C' limit of 1 instances (1 run now)" "$TEST_DIR/qpush2"
check "... and that the push was rejected" grep -q "^remote: .*Push rejected to qtwo" "$TEST_DIR/qpush2"
check "... nothing runs for it (ps lists no process)" test "$(processes qtwo)" = 0
check "... it has no release, no build dir is left, its main was not moved" \
    bash -c "[ -z \"$(current_release qtwo)\" ] && [ $(builds_left "$home") = 0 ] && ! git --git-dir=$home/apps/qtwo/repo.git rev-parse -q --verify refs/heads/main"
check "... and the tenant still runs one instance" test "$(used)" = 1
# At the limit, the running app changes release with its formation unchanged (web=1): its web.1's
# old and new process overlap, one slot.
BERTH_TOKEN=$THIRD push_app "$TEST_DIR/qprocs" qone "$TEST_DIR/qpush3" -f &&
    ok "at its limit, the tenant redeploys its running app (web=1, a worker type scaled to 0)" ||
    { not_ok "at its limit, the tenant redeploys its running app"; diag "$TEST_DIR/qpush3"; }
check "... which answers from the new release" wait_body qone.localhost / "dyno=web.1" 20
check "... config:set makes a release of it at the limit" quiet asc "$BERTH" config:set qone GREETING=hi
check "... ps:restart restarts it" quiet asc "$BERTH" ps:restart qone
check "... so does a change of its resources (a restart of its release)" quiet asc "$BERTH" resource:limit qone --pids 200
check "... and it runs one process, the tenant one instance" bash -c "[ $(processes qone) = 1 ] && [ $(used) = 1 ]"
# A rollback brings back its release's formation: a worker scaled up under v3, gone with v4, back with v3.
"$BERTH" tenants:limits $C --instances 2 >/dev/null
check "with room for two, qone scales a worker" quiet asc "$BERTH" ps:scale qone worker=1
BERTH_TOKEN=$THIRD push_app "$TEST_DIR/qgreet" qone "$TEST_DIR/qpush4" -f || diag "$TEST_DIR/qpush4"
check "a push without the worker type takes the worker away" bash -c "[ $(processes qone) = 1 ] && [ $(used) = 1 ]"
last=$(current_release qone)
"$BERTH" tenants:limits $C --instances 1 >/dev/null
asc "$BERTH" rollback qone "v$((last - 1))" >"$out" 2>&1 && rc=0 || rc=$?
check "at the limit, a rollback to the release with the scaled worker is refused, the limit named (HTTP 409, exit 1)" \
    bash -c "[ $rc = 1 ] && grep -q \"1 more instances would exceed tenant '$C' limit of 1 instances (1 run now) (HTTP 409)\" $out"
check "... qone keeps its release and its one process" \
    bash -c "[ $(current_release qone) = $last ] && [ $(processes qone) = 1 ] && [ $(used) = 1 ]"
check "... still answering" wait_body qone.localhost / "greeting=hi" 20
# Room again: the refused push goes through.
"$BERTH" tenants:limits $C --instances 2 >/dev/null
BERTH_TOKEN=$THIRD push_app "$TEST_DIR/qgreet" qtwo "$TEST_DIR/qpush5" && ok "with the limit raised, the second app's push runs" ||
    { not_ok "with the limit raised, the second app's push runs"; diag "$TEST_DIR/qpush5"; }
check "... and it answers" wait_body qtwo.localhost / "greeting=" 20
# One instance left, two first pushes at once: the check and the claim hold one lock.
"$BERTH" tenants:limits $C --instances 3 >/dev/null
pushers=()
for a in qr1 qr2; do BERTH_TOKEN=$THIRD push_app "$TEST_DIR/qgreet" $a "$TEST_DIR/qrace.$a" & pushers+=($!); done
won=0
for p in "${pushers[@]}"; do wait "$p" && won=$((won + 1)) || true; done
check "two first pushes at once with room for one instance: one deploys ($won did)" test $won = 1
check "... the other is refused, the limit named" \
    test "$(cat "$TEST_DIR"/qrace.* | grep -c "^remote: .*would exceed tenant '$C' limit of 3 instances")" = 1
check "... and the tenant runs three instances" test "$(used)" = 3
lost=qr1; grep -q "would exceed" "$TEST_DIR/qrace.qr2" && lost=qr2
# A stopped app holds no instance, and a push to it starts none: ps:start checks them.
quiet asc "$BERTH" ps:stop $lost
BERTH_TOKEN=$THIRD push_app "$TEST_DIR/qgreet" $lost "$TEST_DIR/qpush6" && ok "at the limit, a push to a stopped app is taken" ||
    { not_ok "at the limit, a push to a stopped app is taken"; diag "$TEST_DIR/qpush6"; }
check "... and starts nothing" bash -c "[ $(processes $lost) = 0 ] && [ $(used) = 3 ]"
check "... ps:start then is refused, the limit named" refused 1 "would exceed tenant '$C' limit of 3 instances" asc "$BERTH" ps:start $lost
for a in qone qtwo qr1 qr2; do quiet asc "$BERTH" apps:destroy $a --confirm $a || true; done

# ---------------------------------------------------------------- the kernel enforces
watched() { # watched CMD...: runs CMD while calm and other1 are curled
    rm -f "$TEST_DIR/stop"
    watch_host calm.localhost & local w1=$!
    watch_host other1.localhost & local w2=$!
    sleep 0.5
    "$@" || true
    sleep 0.5
    touch "$TEST_DIR/stop"
    wait $w1 $w2
}
# sum_below CTRL REL FILE KEY: KEY's count in FILE summed over REL and every cgroup below it (v1 counts
# OOM kills and refused forks where they happened, not in the parent whose limit was hit).
sum_below() {
    find "$(cg "$1" "$2")" -name "$3" -exec sed -n "s/^$4 //p" {} + 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
oom_kills() { if [ $V2 = 1 ]; then sum_below memory $A memory.events oom_kill; else sum_below memory $A memory.oom_control oom_kill; fi; }
kills_before=$(oom_kills)
watched router_get hog1.localhost "/hog?mb=600" >"$out" 2>&1
check "a child of hog1 allocating 600M in acme's 256M is killed by the kernel" grep -q "hog exit=-9" "$out"
check "... the tenant's cgroup counted the OOM kill" test "$(oom_kills)" -gt "${kills_before:-0}"
check "... acme's other app answered all along ($(cat "$TEST_DIR/fail.calm.localhost") failed)" \
    grep -q '^0/[1-9]' "$TEST_DIR/fail.calm.localhost"
check "... and other's app too ($(cat "$TEST_DIR/fail.other1.localhost") failed)" grep -q '^0/[1-9]' "$TEST_DIR/fail.other1.localhost"
check "hog1 itself still answers" wait_body hog1.localhost / "app=hog1 ok" 10

# acme has a fifth of a CPU: some 300 forks take it seconds (5.7 ms of CPU each on the 2026-12-05 VM,
# 10 s and more in all), so the client waits for up to the router's own first-byte limit (30 s).
watched curl -sS --max-time 29 -H "Host: hog1.localhost" "http://127.0.0.1:$HTTP_PORT/fork?n=2000" >"$out" 2>&1
forked=$(sed -n 's/.*forked=\([0-9]*\).*/\1/p' "$out")
check "a fork storm in hog1 stops at acme's pids.max with EAGAIN (forked ${forked:-?})" \
    bash -c "grep -q 'error=EAGAIN' $out && [ ${forked:-9999} -lt 300 ] && [ ${forked:-0} -gt 100 ]"
check "... other's app answered all along ($(cat "$TEST_DIR/fail.other1.localhost") failed)" grep -q '^0/[1-9]' "$TEST_DIR/fail.other1.localhost"
check "hog1 answers after the storm" wait_body hog1.localhost / "app=hog1 ok" 10
check "acme's pids.events counted the refused forks" test "$(sum_below pids $A pids.events max)" -gt 0

throttled_before=$(sed -n 's/^nr_throttled //p' "$(cg cpu $A)/cpu.stat")
router_get hog1.localhost "/spin?ms=1500&procs=3" >"$out" 2>&1 || true
cpu_ms=$(sed -n 's/cpu_ms=//p' "$out")
check "3 spinners in acme's fifth of a CPU get at most about that of 1.5 s together (${cpu_ms:-?} ms of cpu)" test "${cpu_ms:-9999}" -lt 700
sleep 0.5   # the kernel counts throttled periods in its period timer
throttled=$(( $(sed -n 's/^nr_throttled //p' "$(cg cpu $A)/cpu.stat") - ${throttled_before:-0} ))
check "... and acme's cgroup was throttled ($throttled periods)" test "${throttled:-0}" -gt 0

# ---------------------------------------------------------------- at every start
stop_berth
python3 - "$home/tenants/$B.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["limits"] = {"cpus": 0.001}
json.dump(d, open(sys.argv[1], "w"))
EOF
if start_berth "$home" 2>/dev/null; then not_ok "berth serve refuses a tenant whose limits the kernel cannot hold"; stop_berth
else ok "berth serve refuses a tenant whose limits the kernel cannot hold"; fi
check "... saying so, and naming --allow-no-limits" \
    bash -c "grep -q \"tenants' limits cannot be enforced\" $TEST_DIR/serve.log && grep -q -- --allow-no-limits $TEST_DIR/serve.log"
if start_berth "$home" --allow-no-limits; then ok "with --allow-no-limits it starts"; else not_ok "with --allow-no-limits it starts"; fi
check "... warning that limits are not enforced" grep -q "running WITHOUT tenants' limits" "$TEST_DIR/serve.log"
check "... and tenants:limits says so" bash -c "$BERTH tenants:limits $A | grep -q 'NOT enforced'"
stop_berth
python3 - "$home/tenants/$B.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
del d["limits"]
json.dump(d, open(sys.argv[1], "w"))
EOF
rmdir "$(cg memory $B)/other1" "$(cg memory $B)" 2>/dev/null || true
start_berth "$home" && ok "berth serve starts again" || not_ok "berth serve starts again"
check "at start, every tenant's cgroup has its limits: other's default 2G" test "$(knob memory $B $MEMKNOB)" = 2147483648
check "... acme's 256M" test "$(knob memory $A $MEMKNOB)" = 268435456
check "... acme's fifth of a CPU" test "$(cpu_quota $A)" = 20000
check "the apps are back" wait_body other1.localhost / "greeting=" 30

# ---------------------------------------------------------------- a second home of the same user
# One user may serve two homes (staging and production): the same tenant name
# in both gets two cgroups (its name carries the home's key), each with its
# own home's limits, and one home's stop leaves the other's alone.
h2=$TEST_DIR/home2
"$BERTH" serve --home "$h2" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$TEST_DIR/serve2.log" 2>&1 &
pid2=$!
for _ in $(seq 1 300); do [ -s "$h2/run/serve.json" ] && break; sleep 0.1; done
ctl2=$(sed -n 's/.*"control_port": *\([0-9]*\).*/\1/p' "$h2/run/serve.json" 2>/dev/null || true)
as2() { BERTH_URL=http://127.0.0.1:$ctl2 BERTH_TOKEN=$(cat "$h2/admin.token") "$BERTH" "$@"; }
as2 tenants:create $A >"$out" 2>&1 && as2 tenants:limits $A --memory 300M >>"$out" 2>&1 ||
    diag "$out" "$TEST_DIR/serve2.log"
cg2() { echo "$(dirname "$(cg "$1" $A)")/$(tenant_cgroup $A "$h2")"; }
check "a second home's tenant $A has a cgroup of its own ($(tenant_cgroup $A "$h2"), not $(tenant_cgroup $A)) with its 300M" \
    test "$(cat "$(cg2 memory)/$MEMKNOB" 2>/dev/null)" = 314572800
check "... while the first home's $A keeps its 256M" test "$(knob memory $A $MEMKNOB)" = 268435456
kill -TERM $pid2; wait $pid2 2>/dev/null || true
check "the second home's stop removes its own tenant's cgroup" test ! -d "$(cg2 memory)"
check "... and leaves the first home's, with its limits" test "$(knob memory $A $MEMKNOB)" = 268435456
check "... whose apps still serve" wait_body other1.localhost / "greeting=" 10
stop_berth
left=$(for c in memory pids cpu; do for t in $A $B $C; do [ ! -d "$(cg $c $t)" ] || echo "$c/$t"; done; done)
check "berth serve's stop removed its tenants' cgroups and their apps' (left: ${left:-none})" test -z "$left"
# Whatever the kernel still held at the stop (it keeps a cgroup while a process is in it).
remove_tenant_cgroups $A $B $C
done_testing
