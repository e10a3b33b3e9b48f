#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The shared-hosting scenario (examples/shared-hosting) through a real
# `berth serve`: two tenants, each with an Apache+PHP site built by the php
# buildpack. From inside tenant A's PHP: B's files cannot be read (neither
# by the host path of B's slug nor through /proc), B's processes cannot be
# seen, and 127.0.0.1:5000 is A's own site (B is reached only through the
# router, and the router's port is not there either). A exhausting its
# memory quota (a PHP loop that allocates) and its process quota (a fork
# storm through proc_open) leaves B answering every request; A's crashed
# site is restarted by the supervisor while B never fails a request.
# Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
out=$TEST_DIR/out
as() { local t=$1; shift; BERTH_TOKEN=$t "$@"; }

# Tenant names of their own: berth-<user> in the cpu and pids hierarchies may be shared with other runs.
A=sa$$ B=sb$$
token() { "$BERTH" tenants:create "$1" >"$out" 2>&1 && tail -1 "$out" | grep -oE '[A-Za-z0-9_-]{20,}'; }
TA=$(token $A) && TB=$(token $B) && ok "tenants $A and $B" || { not_ok "tenants $A and $B"; diag "$out"; done_testing; exit 1; }
"$BERTH" tenants:limits $A --memory 256M --pids 200 >/dev/null && ok "$A gets 256M and 200 processes" ||
    not_ok "$A gets 256M and 200 processes"

# Each site: the example's PHP, with a secret only its own tenant should ever read.
SA=a-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n') SB=b-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
site() { # site TOKEN APP SECRET
    mkdir -p "$TEST_DIR/$2"
    cp -a "$SRCDIR/examples/shared-hosting/site/." "$TEST_DIR/$2/"
    echo "$3" >"$TEST_DIR/$2/secret.txt"
    git -C "$TEST_DIR/$2" init -q -b main
    commit_all "$TEST_DIR/$2" "site $2"
    as "$1" "$BERTH" apps:create "$2" >/dev/null &&
        BERTH_TOKEN=$1 push_app "$TEST_DIR/$2" "$2" "$TEST_DIR/push.$2"
}
site "$TA" site-a$$ "$SA" && ok "$A's site deploys with the php buildpack" || { not_ok "$A's site deploys"; diag "$TEST_DIR/push.site-a$$"; }
site "$TB" site-b$$ "$SB" && ok "$B's site deploys" || { not_ok "$B's site deploys"; diag "$TEST_DIR/push.site-b$$"; }
HA=site-a$$.localhost HB=site-b$$.localhost
check "A's site answers through the router, from Apache's mod_php" wait_body $HA / "site site-a$$ (SAPI apache2handler)" 30
check "B's site answers through the router" wait_body $HB / "site site-b$$ (SAPI apache2handler)" 30
get() { curl -s --max-time 20 -H "Host: $1" "http://127.0.0.1:$HTTP_PORT$2" || true; }

# ---------------------------------------------------------------- files, processes, network
bslug=$(ls -d "$home"/layers/$B/*/app 2>/dev/null | head -1)
check "B's slug is on the host, with its secret" grep -qx "$SB" "$bslug/secret.txt"
get $HA "/probe.php?what=read&path=$bslug/secret.txt" >"$out"
check "A's PHP cannot read B's slug by its host path" bash -c "grep -q '^denied' $out && ! grep -q $SB $out"
get $HA "/probe.php?what=read&path=$home/apps/site-b$$/app.json" >"$out"
check "... nor B's records in berth's home" bash -c "grep -q '^denied' $out && ! grep -q tenant $out"
get $HA "/probe.php?what=read&path=/app/secret.txt" >"$out"
check "... while it reads its own files" grep -qx "read: $SA" "$out"
get $HA "/probe.php?what=procs" >"$out"
bprocs=$(cat "$(berth_cgroup pids $B/site-b$$)"/*/cgroup.procs 2>/dev/null | wc -l)
check "B's Apache runs on the host ($bprocs processes)" test "$bprocs" -gt 0
check "A's PHP sees processes, Apache among them" grep -q "apache2" "$out"
check "... every one of them A's own (each sees A's secret at /app)" bash -c "! grep -v \" | $SA\$\" $out | grep -v ' | unreadable$' | grep -q . && grep -q \" | $SA\$\" $out"
check "... none of B's: B's secret is nowhere in /proc" not_contains "$out" "$SB"
check "... and no host process: init is berth's, pid 1" grep -qE "^1 " "$out"
get $HA "/probe.php?what=connect&port=5000" >"$out"
check "127.0.0.1:5000 inside A's container is A's own site" grep -q "connected: site site-a$$ " "$out"
get $HA "/probe.php?what=connect&port=$HTTP_PORT" >"$out"
check "... and the router's port is not there: B is reached only from outside" grep -q "^refused" "$out"

# ---------------------------------------------------------------- quotas
while_watching_b() { # runs CMD while B is curled
    rm -f "$TEST_DIR/stop"
    watch_host $HB & local w=$!
    sleep 0.5
    "$@" || true
    sleep 0.5
    touch "$TEST_DIR/stop"
    wait $w
}
oom_kills() { # in A's cgroups (v1 counts a kill where it happened, v2 up the tree too: the tenant's own is enough)
    local f=memory.oom_control; [ ! -e "$(berth_cgroup memory $A)/memory.events" ] || f=memory.events
    find "$(berth_cgroup memory $A)" -name $f -exec sed -n 's/^oom_kill //p' {} + 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
before=$(oom_kills)
while_watching_b get $HA "/hog.php?mb=1024" >"$out"
check "A's PHP loop allocating 1G does not get it (the kernel kills it at A's 256M)" not_contains "$out" "survived"
check "... the kernel's OOM killer did it ($(oom_kills) kills in A's cgroups)" test "$(oom_kills)" -gt "$before"
check "... and B answered every request meanwhile ($(cat "$TEST_DIR/fail.$HB") failed)" grep -q '^0/[1-9]' "$TEST_DIR/fail.$HB"
check "A's site answers again" wait_body $HA / "site site-a$$" 30

while_watching_b get $HA "/storm.php?n=5000" >"$out"
forked=$(sed -n 's/^forked=\([0-9]*\).*/\1/p' "$out")
check "A's fork storm stops at A's 200 processes (forked ${forked:-?}: $(head -c 100 "$out"))" \
    bash -c "[ ${forked:-9999} -lt 200 ] && [ ${forked:-0} -gt 50 ]"
check "... and B answered every request meanwhile ($(cat "$TEST_DIR/fail.$HB") failed)" grep -q '^0/[1-9]' "$TEST_DIR/fail.$HB"
check "A's site answers again" wait_body $HA / "site site-a$$" 30

# ---------------------------------------------------------------- a crash
restarts() { as "$TA" "$BERTH" ps site-a$$ --json 2>/dev/null | python3 -c '
import json, sys
print(sum(p.get("restarts", 0) for p in json.load(sys.stdin)["processes"]))' 2>/dev/null || echo 0; }
r0=$(restarts)
rm -f "$TEST_DIR/stop"
watch_host $HB & w=$!
sleep 0.5
get $HA "/crash.php" >"$out"
check "A's PHP kills its own Apache" grep -q "killing Apache's parent" "$out"
wait_body $HA / "site site-a$$" 30 && up=1 || up=0
sleep 0.5
touch "$TEST_DIR/stop"
wait $w
check "A's site is restarted by the supervisor and answers again" test $up = 1
check "... ps shows the restart ($r0 before, $(restarts) now)" test "$(restarts)" -gt "$r0"
check "... and B never noticed: every request answered ($(cat "$TEST_DIR/fail.$HB") failed)" grep -q '^0/[1-9]' "$TEST_DIR/fail.$HB"
as "$TA" "$BERTH" logs site-a$$ -n 200 >"$out" 2>&1 || true
check "A's log says its web process was killed (137) and crashed" \
    bash -c "grep -q 'heroku\[web.1\]: Process exited with status 137' $out && grep -q 'heroku\[web.1\]: State changed from up to crashed' $out"
as "$TB" "$BERTH" logs site-b$$ -n 200 >"$out" 2>&1 || true
check "B's log has no crash" bash -c "! grep -Eq 'crashed|Process exited' $out"

stop_berth
remove_tenant_cgroups $A $B
done_testing
