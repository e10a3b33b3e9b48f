#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The router under load, through a real `berth serve` to real apps in
# containers (issue 10's proof), each step bounded in time:
#
#   - memory: 500 chunked uploads trickling a chunk a second for 10 s from
#     127.0.0.3 and 2000 half-open requests from 127.0.0.1 (tests/lib/
#     loadtool.py), while a canary on 127.0.0.2 asks another app every
#     200 ms: the daemon's RSS stays under RSS_BOUND_MB, the canary never
#     fails, the uploads all arrive, the first 1000 half-open connections
#     (the per-address limit) get 408 from the 10 s head deadline (H28)
#     and the other 1000 a 503 at once (H22);
#   - a burst: 900 uploads to one app whose connects all start at once
#     (three times) are all served (none refused with 503 H11);
#   - stall: app S (tests/apps/stall) listens and never accepts, so every
#     connect into it hangs; while 50 clients hammer it (wrk), wrk -c8 for
#     5 s on app F (tests/apps/sink), twice, must keep F's p99 within
#     max(2 x its idle p99, idle p99 + 5 ms), measured just before with the
#     same command (and again just after: the larger is the baseline), with
#     no request to F failing. The busy p99 is the lower of its two windows:
#     on the 2-CPU VM a 5 s window's p99 jumps to 6-8 ms now and then with
#     nothing else running (idle windows did, and once a busy one, failing
#     CI at 7.91 against 7.42 ms), while the defect this guards against (a
#     connect into S holding F's requests, 1 s p99) shows in both. A
#     round that misses the bound is run again, up to three rounds (CI once
#     read 4.1 ms idle and 12.5 ms in both busy windows, ASan build): the
#     defect shows in every round, so a retry cannot hide it; a failed
#     request to F in any round fails the test;
#   - concurrency sweep: busybox httpd (no keep-alive, listen backlog 9)
#     serving examples/static as a Procfile app, through the router with
#     wrk -d3s at 1, 8, 16, 32, 64 and 256 clients, beside the same busybox
#     httpd on the host with the same files ("direct": the container's
#     network namespace is out of the host's reach): at each level no
#     socket error or non-2xx, the router's req/s as a share of direct's
#     >= 0.5 x its best share at a level before (throughput never
#     collapses as clients grow: it fell to 58 req/s at 16 clients when
#     one dropped SYN held every connect behind it; a share, since the
#     host's own swings move direct's figure too), and p99 <= max(2 x direct p99, 3 x queue, 1000 ms). A
#     request that waits out the kernel's one-second SYN retransmission
#     (the port agent dials a dropped connect again itself) takes a second
#     on top of its queue: if more than 1% of requests do, p99 goes over
#     the bound while the queue is under half a second. The queue is the mean
#     latency of c clients at the router's req/s (Little's law, c / req/s):
#     busybox forks for every connection, so 256 clients wait ~290-390 ms
#     on average, and p99 was 1.3-2.0 x that with no stall at all (530 and
#     583 ms; CI failed on 533 against the earlier 500 ms floor). A queue
#     past half a second at 256 clients means under 512 req/s, near where
#     the throughput check before fails; at fewer clients, far below it.
#     The ratios to direct are a speed figure, not a pass/fail check on a
#     shared machine: they are printed here and measured by
#     tests/bench/sweep.sh (`make bench`).
#
# Prints the figures as TAP comments. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
command -v wrk >/dev/null || skip_all "wrk is needed (the Debian package wrk, in tools/packages.txt)"
command -v busybox >/dev/null || skip_all "busybox is needed (the Debian package busybox-static)"
serve_for_test

LOG=$TEST_DIR/serve.log
LOADTOOL=$SRCDIR/tests/lib/loadtool.py
ASAN=false
if ldd "$BERTH" 2>/dev/null | grep -q libasan; then ASAN=true; fi
# The memory test's bound on berth serve's RSS. 3,500 client connections,
# each with libmicrohttpd's 33 KiB connection pool (router.c), are 115 MB
# if every pool were touched; 500 streamed uploads hold at most 64 KiB each
# in the router (STREAM_BUFFER_MAX), but trickle 1 KiB at a time; the
# daemon idles at about 13 MB. 200 MB leaves room for all of that and is
# still far below what buffering the flood would take. AddressSanitizer's
# shadow memory and quarantine need more.
RSS_BOUND_MB=200
$ASAN && RSS_BOUND_MB=400

deploy() { # deploy NAME SRC_DIR
    "$BERTH" apps:create "$1" >/dev/null 2>&1 || true
    rm -rf "$TEST_DIR/src-$1"
    make_repo "$2" "$TEST_DIR/src-$1"
    push_app "$TEST_DIR/src-$1" "$1" "$TEST_DIR/$1.push"
}
deployed() { # deployed NAME SRC_DIR: deploys, and says so in TAP
    if deploy "$1" "$2"; then ok "app $1 deploys"; else not_ok "app $1 deploys"; diag "$TEST_DIR/$1.push"; fi
}

# busybox httpd with examples/static's pages, as a Procfile app.
mkdir -p "$TEST_DIR/bb/site"
cp "$SRCDIR"/examples/static/*.html "$SRCDIR"/examples/static/*.css "$TEST_DIR/bb/site/"
printf 'web: exec busybox httpd -f -p $PORT -h site\n' >"$TEST_DIR/bb/Procfile"
deployed sink "$SRCDIR/tests/apps/sink"
deployed stall "$SRCDIR/tests/apps/stall"
deployed bb "$TEST_DIR/bb"
check "busybox httpd answers through the router" wait_body bb.localhost / "Hello from berth"

# wrk_run NAME WRK_ARGS...: runs wrk --latency; sets rps, p50, p99 (ms), errors (socket errors) and non2xx.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.2f", n }'; }
wrk_run() {
    local name=$1; shift
    wrk --latency "$@" >"$TEST_DIR/wrk.$name" 2>&1 || true
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$TEST_DIR/wrk.$name")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$TEST_DIR/wrk.$name")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$TEST_DIR/wrk.$name")")
    errors=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$TEST_DIR/wrk.$name")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$TEST_DIR/wrk.$name")
    rps=${rps:-0} errors=${errors:-0} non2xx=${non2xx:-0}
}
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }   # fle A B: A <= B (floats)
fmax() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + 0 > b + 0) ? a : b }'; }
fmul() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a * b }'; }
fadd() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
fmin() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + 0 < b + 0) ? a : b }'; }

F="http://127.0.0.1:$HTTP_PORT/"
# ---------------------------------------------------------------- memory
# First, while no other client holds a connection from 127.0.0.1: the
# router keeps a client's connection, and its place in the per-address
# count, until the app answers, even once the client has gone.
rss0=$(awk '/^VmRSS:/ {print $2}' "/proc/$serve_pid/status")
( while sleep 0.2; do awk '/^VmRSS:/ {print $2}' "/proc/$serve_pid/status" || break; done ) >"$TEST_DIR/rss.samples" 2>/dev/null &
sampler=$!
: >"$TEST_DIR/canary.codes"
(
    while [ ! -e "$TEST_DIR/canary.stop" ]; do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 2 --interface 127.0.0.2 \
            -H 'Host: bb.localhost' "$F" >>"$TEST_DIR/canary.codes" 2>/dev/null || echo "000 failed" >>"$TEST_DIR/canary.codes"
        sleep 0.2
    done
) &
canary=$!
off=$(stat -c %s "$LOG")
timeout 60 python3 "$LOADTOOL" trickle "$HTTP_PORT" sink.localhost --conns 500 --chunks 10 --size 1024 \
    --interval 1 --ramp 1 --source 127.0.0.3 >"$TEST_DIR/trickle.out" 2>&1 &
trickle=$!
sleep 1
timeout 60 python3 "$LOADTOOL" halfopen "$HTTP_PORT" sink.localhost --conns 2000 --wait 14 \
    --source 127.0.0.1 >"$TEST_DIR/halfopen.out" 2>&1 || true
wait "$trickle" || true
touch "$TEST_DIR/canary.stop"
wait "$canary" || true
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
peak=$(sort -n "$TEST_DIR/rss.samples" | tail -n 1)
rss1=$(awk '/^VmRSS:/ {print $2}' "/proc/$serve_pid/status")
canary_n=$(wc -l <"$TEST_DIR/canary.codes")
canary_bad=$(grep -cv '^200 ' "$TEST_DIR/canary.codes" || true)
canary_slowest=$(sort -k2 -n "$TEST_DIR/canary.codes" | tail -n 1 | cut -d' ' -f2)
field() { sed -n "s/.*\\b$2=\\([0-9.]*\\).*/\\1/p" "$1" | head -n 1; }   # field FILE NAME: NAME=value
echo "# memory: trickle: $(cat "$TEST_DIR/trickle.out")"
echo "# memory: half-open: $(cat "$TEST_DIR/halfopen.out")"
echo "# memory: canary: $canary_n requests, $canary_bad failed, slowest ${canary_slowest}s"
echo "# memory: berth serve RSS $((rss0 / 1024)) MB before, $((peak / 1024)) MB peak, $((rss1 / 1024)) MB after (bound $RSS_BOUND_MB MB)"
# The router writes its log in batches (a line waits up to a loop turn past
# 100 ms), so the last lines may trail the answers the clients already have.
count_since() { tail -c +$((off + 1)) "$LOG" | grep -ac "$1" || true; }
for _ in $(seq 1 30); do
    h22=$(count_since 'at=error code=H22 desc="Connection limit reached" cause="the connection limit of the client')
    h28=$(count_since 'at=error code=H28 desc="Client Connection Idle"')
    [ "$h22" -ge 1000 ] && [ "$h28" -ge 1000 ] && break
    sleep 0.1
done
check "berth serve's RSS stayed under $RSS_BOUND_MB MB ($((peak / 1024)) MB peak)" [ "${peak:-999999999}" -lt $((RSS_BOUND_MB * 1024)) ]
check "the canary on 127.0.0.2 never failed ($canary_bad of $canary_n)" [ "$canary_bad" = 0 -a "$canary_n" -ge 25 ]
check "all 500 trickled chunked uploads arrived whole ($(field "$TEST_DIR/trickle.out" ok))" [ "$(field "$TEST_DIR/trickle.out" ok)" = 500 ]
check "the 1000 half-open connections the per-address limit allows got 408 ($(field "$TEST_DIR/halfopen.out" status_408))" \
    [ "$(field "$TEST_DIR/halfopen.out" status_408)" = 1000 ]
check "... within 12 s of connecting (the slowest: $(field "$TEST_DIR/halfopen.out" max_408_s) s)" \
    fle "$(field "$TEST_DIR/halfopen.out" max_408_s)" 12
check "... logged as H28 ($h28)" [ "$h28" = 1000 ]
check "the other 1000 got a 503 at once ($(field "$TEST_DIR/halfopen.out" status_503))" \
    [ "$(field "$TEST_DIR/halfopen.out" status_503)" = 1000 ]
check "... logged as H22 ($h22)" [ "$h22" = 1000 ]
check "no half-open connection was left open" [ -z "$(field "$TEST_DIR/halfopen.out" still_open)" ]
# ---------------------------------------------------------------- a burst
# 900 uploads from one address (under its limit of 1000) whose connects all
# start at once, three times: a burst the router must queue, not refuse
# (H11 is for a spent buffer budget, which 900 small uploads are far from).
burst_ok=0 burst_503=0
for round in 1 2 3; do
    timeout 60 python3 "$LOADTOOL" trickle "$HTTP_PORT" sink.localhost --conns 900 --chunks 1 --size 1024 \
        --interval 0.5 --source 127.0.0.4 >"$TEST_DIR/burst.out" 2>&1 || true
    echo "# burst $round: $(cat "$TEST_DIR/burst.out")"
    n=$(field "$TEST_DIR/burst.out" ok) e=$(field "$TEST_DIR/burst.out" status_503)
    burst_ok=$((burst_ok + ${n:-0})) burst_503=$((burst_503 + ${e:-0}))
done
check "3 bursts of 900 simultaneous uploads to one app: all answered 200 ($burst_ok of 2700, $burst_503 got 503)" \
    [ "$burst_ok" = 2700 ]
check "... none refused with H11 ($(grep -ac 'code=H11' "$LOG" || true) H11 log lines)" not_contains "$LOG" 'code=H11'

# ---------------------------------------------------------------- stall
# One round: F idle, F twice while 50 clients hammer S, F idle again. Sets
# idle_* and busy_* (p99 and req/s as the header describes) and adds F's
# failed requests to stall_idle_bad (idle) or stall_errors and stall_non2xx
# (busy).
stall_busy_failures() { stall_errors=$((stall_errors + errors)) stall_non2xx=$((stall_non2xx + non2xx)); }
stall_round() {
    wrk_run warm -t2 -c8 -d1s -H 'Host: sink.localhost' "$F"
    wrk_run idle -t2 -c8 -d5s -H 'Host: sink.localhost' "$F"
    idle_p99=$p99 idle_p50=$p50 idle_rps=$rps
    stall_idle_bad=$((stall_idle_bad + errors + non2xx))
    wrk --latency -t1 -c50 -d14s --timeout 10s -H 'Host: stall.localhost' "$F" >"$TEST_DIR/wrk.stall" 2>&1 &
    hammer=$!
    sleep 1
    wrk_run busy -t2 -c8 -d5s -H 'Host: sink.localhost' "$F"
    busy_p99=$p99 busy_p50=$p50 busy_rps=$rps
    stall_busy_failures
    wrk_run busy2 -t2 -c8 -d5s -H 'Host: sink.localhost' "$F"
    stall_busy_failures
    echo "# stall round $1: F with S stalled, two windows: p99 $busy_p99 and $p99 ms, $busy_rps and $rps req/s"
    busy_p99=$(fmin "$busy_p99" "$p99") busy_p50=$(fmin "$busy_p50" "$p50")
    busy_rps=$((rps < busy_rps ? rps : busy_rps))
    wait "$hammer" || true
    # Idle again, once S's last connects timed out: the larger idle p99 is
    # the baseline, so that a machine busy with something else fails no one.
    sleep 5
    wrk_run idle2 -t2 -c8 -d5s -H 'Host: sink.localhost' "$F"
    stall_idle_bad=$((stall_idle_bad + errors + non2xx))
    echo "# stall round $1: F idle before: $idle_rps req/s, p50 $idle_p50 ms, p99 $idle_p99 ms"
    echo "# stall round $1: F with S stalled: $busy_rps req/s (the lower window), p50 $busy_p50 ms, p99 $busy_p99 ms (the lower)"
    echo "# stall round $1: F idle after: $rps req/s, p50 $p50 ms, p99 $p99 ms"
    echo "# stall round $1: S $(grep -E 'requests in' "$TEST_DIR/wrk.stall" | sed 's/^ *//'), $(grep -E 'Non-2xx' "$TEST_DIR/wrk.stall" | sed 's/^ *//')"
    idle_p99=$(fmax "$idle_p99" "$p99")
    idle_rps=$((rps > idle_rps ? idle_rps : rps))
    bound=$(fmax "$(fmul "$idle_p99" 2)" "$(fadd "$idle_p99" 5)")
}
# Up to three rounds, until one meets the latency and rate bounds (the
# header says why a retry cannot hide the defect). A failed request to F is
# never excused: the counts cover all rounds.
off=$(stat -c %s "$LOG")
stall_idle_bad=0 stall_errors=0 stall_non2xx=0
for round in 1 2 3; do
    stall_round "$round"
    fle "$busy_p99" "$bound" && [ "$busy_rps" -ge $((idle_rps / 2)) ] && break
done
check "F answered every request while idle ($stall_idle_bad failed)" [ "$stall_idle_bad" = 0 ]
check "with S stalled by 50 clients, F's p99 $busy_p99 ms <= max(2 x idle p99, idle p99 + 5 ms) = $bound ms (idle p99 $idle_p99 ms; round $round)" \
    fle "$busy_p99" "$bound"
check "... and no request to F failed in any round ($stall_errors socket errors, $stall_non2xx non-2xx)" [ $((stall_errors + stall_non2xx)) = 0 ]
check "... F served at least half its idle rate ($busy_rps vs $idle_rps req/s, the lower idle figure)" [ "$busy_rps" -ge $((idle_rps / 2)) ]
h19=$(tail -c +$((off + 1)) "$LOG" | grep -ac 'code=H19 desc="Backend connection timeout".*host=stall.localhost' || true)
h21=$(tail -c +$((off + 1)) "$LOG" | grep -ac 'code=H21.*host=stall.localhost' || true)
s200=$(tail -c +$((off + 1)) "$LOG" | grep -a 'host=stall.localhost' | grep -ac 'status=200' || true)
check "S's clients got 503 H19/H21 ($h19 H19, $h21 H21 log lines), never a 200" [ $((h19 + h21)) -gt 0 -a "$s200" = 0 ]

# ---------------------------------------------------------------- concurrency sweep
direct_port=$(free_port)
busybox httpd -f -p "127.0.0.1:$direct_port" -h "$TEST_DIR/bb/site" &
direct_pid=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$direct_port/" && break; sleep 0.1; done
printf '# %-8s %12s %10s %10s %6s  %12s %10s %10s %6s\n' clients "router req/s" "p50 ms" "p99 ms" errors \
    "direct req/s" "p50 ms" "p99 ms" errors >"$TEST_DIR/sweep.table"
# The router's rate is judged as a share of direct's at the same level,
# measured right after it: the host's own swings (other suites run beside
# this one, under ASan too) move both, while the collapse this guards
# against (one connect waiting out a dropped SYN, 58 req/s against
# direct's 6,549) moves the router's alone.
best_share=0
for c in 1 8 16 32 64 256; do
    t=2
    [ "$c" -lt 2 ] && t=1
    wrk_run "r$c" -t$t -c$c -d3s --timeout 5s -H 'Host: bb.localhost' "$F"
    r_rps=$rps r_p50=$p50 r_p99=$p99 r_bad=$((errors + non2xx))
    wrk_run "d$c" -t$t -c$c -d3s --timeout 5s "http://127.0.0.1:$direct_port/"
    d_rps=$rps d_p50=$p50 d_p99=$p99 d_bad=$((errors + non2xx))
    printf '# %-8s %12s %10s %10s %6s  %12s %10s %10s %6s\n' "$c" "$r_rps" "$r_p50" "$r_p99" "$r_bad" \
        "$d_rps" "$d_p50" "$d_p99" "$d_bad" >>"$TEST_DIR/sweep.table"
    queue_ms=$(awk -v c="$c" -v r="$r_rps" 'BEGIN { printf "%.2f", (r > 0 ? 1000 * c / r : 0) }')
    p99_bound=$(fmax "$(fmax "$(fmul "$d_p99" 2)" "$(fmul "$queue_ms" 3)")" 1000)
    share=$(awk -v r="$r_rps" -v d="$d_rps" 'BEGIN { printf "%.3f", (d > 0 ? r / d : 0) }')
    check "c=$c: router req/s as a share of direct's >= 0.5 x its best share before ($r_rps vs direct $d_rps: $share; best $best_share)" \
        fle "$(fmul "$best_share" 0.5)" "$share"
    check "c=$c: router p99 $r_p99 ms <= max(2 x direct p99, 3 x queue $queue_ms ms, 1000 ms) = $p99_bound ms" fle "$r_p99" "$p99_bound"
    check "c=$c: no socket error or non-2xx through the router ($r_bad)" [ "$r_bad" = 0 ]
    fle "$share" "$best_share" || best_share=$share
done
kill "$direct_pid" 2>/dev/null || true
wait "$direct_pid" 2>/dev/null || true
cat "$TEST_DIR/sweep.table"

check "the router still answers afterwards" wait_body bb.localhost / "Hello from berth"
done_testing
