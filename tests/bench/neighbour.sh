#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The noisy neighbour (issue 9's goal: <= 1.2): tenant B's site through
# `berth serve`'s router (examples/static, wrk -t1 -c1), its p99 latency
# while tenant A runs a CPU spinner, a memory hog and a fork storm in a
# one-off run (`berth run:detached`), over its p99 when A is idle. A has
# limits of its own (--cpus 0.5 --memory 256M --pids 300 on this 2-CPU
# host), which the kernel enforces; B has the defaults. Medians of ROUNDS
# runs of SECS seconds each, idle and busy alternating (the load stopped
# with `ps:stop` between rounds). Run by tests/bench/run.sh as the berth user,
# or alone: tests/bench/neighbour.sh BUILD_DIR [ROUNDS] [SECS]. To see
# which part of the load costs B, NEIGHBOUR_LOAD names the parts to run
# (words spin, hog, storm; default "spin spin hog storm").
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
rounds=${2:-3}
secs=${3:-5}
top=$(cd "$(dirname "$0")/../.." && pwd)
# NEIGHBOUR_LOAD picks parts of tenant A's load (below), to see which one costs B.
parts=
for part in ${NEIGHBOUR_LOAD:-spin spin hog storm}; do
    case $part in spin | hog | storm) parts="$parts$part & " ;; *) echo "  unknown load part: $part"; exit 1 ;; esac
done
T=$(mktemp -d /tmp/berth-neighbour.XXXXXX)
. "$top/tests/bench/serve.sh"
trap bench_serve_stop EXIT
bench_serve_start "$build"
B="$build/berth"
token() { "$B" tenants:create "$1" 2>/dev/null | grep -oE '[A-Za-z0-9_-]{20,}' | tail -1; }
# push TOKEN APP SRC: deploys SRC as APP of the token's tenant.
push() {
    BERTH_TOKEN=$1 "$B" apps:create "$2" >/dev/null
    git -C "$3" init -q -b main
    git -C "$3" add -A && git -C "$3" -c user.email=b@b -c user.name=b commit -qm 0
    git -C "$3" push -q "http://x:$1@127.0.0.1:$control/$2.git" main >"$T/push.$2" 2>&1
}
p99() { # p99 HOST: wrk's p99 in ms, -t1 -c1 for SECS seconds
    wrk_stats -t1 -c1 -d"${secs}s" -H "Host: $1" "http://127.0.0.1:$http/" | awk '{print $3}'
}

ta=$(token noisya) tb=$(token quietb)
if [ -z "$ta" ] || [ -z "$tb" ]; then echo "  tenants:create failed"; exit 0; fi
"$B" tenants:limits noisya --cpus 0.5 --memory 256M --pids 300 >/dev/null
cp -a "$top/examples/static" "$T/b"
mkdir -p "$T/a/site" && echo a >"$T/a/site/index.html"
printf 'web: exec busybox httpd -f -p $PORT -h site\n' >"$T/a/Procfile"
if ! push "$tb" quiet "$T/b" || ! push "$ta" noisy "$T/a"; then
    echo "  push failed: $(tail -3 "$T"/push.* | tr '\n' ' ')"
    exit 0
fi
for _ in $(seq 1 50); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: quiet.localhost' "http://127.0.0.1:$http/")" = 200 ] && break
    sleep 0.2
done

# The load: two busy loops, memory grabbed 16 MiB at a time until the OOM
# killer ends it (again and again), and forks as fast as they go, on
# against pids.max's refusals (each child sleeps 5 s). The storm is
# Python's: a shell whose fork is refused gives up, which ended the
# storm (and a storm-only run) at its first refusal.
load="spin() { while :; do :; done; }
hog() { while :; do python3 -c \"x = []
while True: x.append(bytearray(16 << 20))\" 2>/dev/null; done; }
storm() { python3 -c \"import os, time
while True:
    try:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
    except OSError:
        pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass\"; }
${parts}wait"
# running DYNO: whether tenant A's one-off DYNO is still listed.
running() { BERTH_TOKEN=$ta "$B" ps noisy --json 2>/dev/null | grep -q "\"$1\""; }
# Idle and busy rounds alternate, so that both see the host in the same
# mood (its speed drifts over minutes): each round measures B with A idle,
# starts A's load, measures B again, and stops the load (`ps:stop`).
: >"$T/idle"
: >"$T/busy"
for _ in $(seq 1 "$rounds"); do
    p99 quiet.localhost >>"$T/idle"
    BERTH_TOKEN=$ta "$B" run:detached noisy -- "$load" >"$T/run.out" 2>&1 ||
        { echo "  run:detached failed: $(tail -2 "$T/run.out" | tr '\n' ' ')"; exit 0; }
    dyno=$(grep -oE 'run\.[0-9]+' "$T/run.out" | head -1)
    sleep 2
    p99 quiet.localhost >>"$T/busy"
    BERTH_TOKEN=$ta "$B" ps:stop noisy "$dyno" >/dev/null 2>&1 || { echo "  ps:stop $dyno failed"; exit 0; }
    for _ in $(seq 1 100); do running "$dyno" || break; sleep 0.1; done
    if running "$dyno"; then echo "  $dyno did not stop within 10 s"; exit 0; fi
    sleep 1
done
i=$(median <"$T/idle")
b=$(median <"$T/busy")
r=$(ratio "$b" "$i")
# Each round's own busy/idle too: the pairs saw the host minutes apart no more.
pairs=$(paste -d' ' "$T/busy" "$T/idle" | awk '{printf "%.2f ", ($2 > 0 ? $1 / $2 : 0)}')
printf '  tenant B p99: idle %s ms, A busy %s ms; ratio %s (goal <= 1.2: %s)   rounds idle: %s busy: %s ratio: %s\n' \
    "$i" "$b" "$r" "$(awk -v r="$r" 'BEGIN {print (r > 0 && r <= 1.2 ? "met" : "NOT met")}')" \
    "$(tr '\n' ' ' <"$T/idle")" "$(tr '\n' ' ' <"$T/busy")" "$pairs"
