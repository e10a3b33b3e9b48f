#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The router's real path, measured: wrk -> `berth serve`'s router -> the
# port agent -> nginx in a container (examples/static, served by the static
# buildpack's nginx with keep-alive), at -c64 and -c1; req/s, p50 and p99,
# median of ROUNDS runs of SECS seconds. The access log is on, as it is in
# production. Beside it, in alternating rounds, the peer as issue 10's
# acceptance check sets it up: nginx as the proxy (a worker per CPU, as the
# router has a loop per CPU; keep-alive to its upstream) in front of nginx
# serving the same files on the host, and the berth/nginx ratios. Before that, the memory of the instance's init (and port
# agent) once idle. Then the concurrency sweep: busybox httpd (no keep-alive,
# listen backlog 9) as a Procfile app, through the router and, beside it,
# the same busybox on the host with the same files ("direct"), and nginx
# as the proxy in front of that host busybox (the peer: what a proxy hop
# costs it), wrk -d3s at 1 to 256 clients: req/s and p99 of each, the
# router/direct and nginx/direct ratios, and the SYNs the app's accept queue
# dropped during the router's run (tests/router-load.sh checks the same
# sweep for errors and collapse).
# Run by tests/bench/run.sh as the berth user, or alone:
#   tests/bench/real-path.sh BUILD_DIR [ROUNDS] [SECS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
rounds=${2:-3}
secs=${3:-5}
top=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/berth-real-path.XXXXXX)
. "$top/tests/bench/serve.sh"
direct= proxy= origin= peer=
cleanup() {
    local p
    # (|| true: under set -e a failed kill, of a server that died, would skip the stop below)
    for p in $direct $proxy $origin $peer; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    bench_serve_stop
}
trap cleanup EXIT
bench_serve_start "$build"
cp -a "$top/examples/static" "$T/src"
git -C "$T/src" init -q -b main
git -C "$T/src" add -A && git -C "$T/src" -c user.email=b@b -c user.name=b commit -qm 0
"$build/berth" apps:create real >/dev/null
git -C "$T/src" push -q "http://x:$BERTH_TOKEN@127.0.0.1:$control/real.git" main >"$T/push.out" 2>&1 ||
    { echo "  push failed: $(tail -3 "$T/push.out" | tr '\n' ' ')"; exit 0; }
ngx=$(PATH=$PATH:/usr/sbin command -v nginx || true)
oport=$(free_port) kport=$(free_port)
if [ -n "$ngx" ]; then
    # The origin runs the very nginx.conf the static buildpack writes for the
    # app (its one worker, its Cache-Control map, dot-file location and file
    # cache), on the same files, so it does the app's work per request; only
    # the host paths differ (loopback, and its pid and temp files in $T).
    mkdir -p "$T/origin"
    cp -a "$T/src" "$T/osrc"
    "$top/buildpacks/static/bin/compile" "$T/osrc" "$T/origin" "$T/origin" >/dev/null
    sed -e "s|listen @PORT@|listen 127.0.0.1:$oport|; s|/tmp/berth-nginx.pid|$T/origin/nginx.pid|" \
        -e "s|/tmp/nginx-|$T/origin/|g" "$T/osrc/.berth/static/nginx.conf" >"$T/origin/nginx.conf"
    nginx_conf "$T/peer" "upstream o { server 127.0.0.1:$oport; keepalive 64; }
    server { listen 127.0.0.1:$kport; location / { proxy_pass http://o; proxy_http_version 1.1;
        proxy_set_header Connection \"\"; proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }" auto
    "$ngx" -p "$T/origin" -c "$T/origin/nginx.conf" -e "$T/origin/error.log" &
    origin=$!
    "$ngx" -p "$T/peer" -c "$T/peer/nginx.conf" -e "$T/peer/error.log" &
    peer=$!
else
    echo "  nginx: not installed (the Debian package nginx-light, in tools/packages.txt): no peer column"
fi
spawner=$(pgrep -P "$serve" -x berth-spawner | head -1 || true)
init=$( [ -z "$spawner" ] || pgrep -P "$spawner" -x berth-init | head -1 || true)
[ -z "$init" ] || echo "  the instance's init (and port agent), idle: $(bench_init_memory "$init")"
sleep 0.5
for conc in "-t2 -c64" "-t1 -c1"; do
    : >"$T/r"; : >"$T/k"
    for _ in $(seq 1 "$rounds"); do
        wrk_stats $conc -d"${secs}s" -H 'Host: real.localhost' "http://127.0.0.1:$http/" >>"$T/r"
        [ -z "$peer" ] || wrk_stats $conc -d"${secs}s" -H 'Host: real.localhost' "http://127.0.0.1:$kport/" >>"$T/k"
    done
    printf '  wrk %-5s berth %9s req/s  p50 %6sms  p99 %6sms%s\n' "${conc#-t? }" \
        "$(median_col "$T/r" 1)" "$(median_col "$T/r" 2)" "$(median_col "$T/r" 3)" "$(awk '$4 {e = 1} END {if (e) print "  (errors!)"}' "$T/r")"
    [ -z "$peer" ] || printf '  wrk %-5s nginx %9s req/s  p50 %6sms  p99 %6sms%s  berth/nginx %s, p99 %s\n' \
        "${conc#-t? }" "$(median_col "$T/k" 1)" "$(median_col "$T/k" 2)" "$(median_col "$T/k" 3)" \
        "$(awk '$4 {e = 1} END {if (e) print "  (errors!)"}' "$T/k")" \
        "$(ratio "$(median_col "$T/r" 1)" "$(median_col "$T/k" 1)")" "$(ratio "$(median_col "$T/r" 3)" "$(median_col "$T/k" 3)")"
done
for p in $origin $peer; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
origin= peer=

echo "  concurrency sweep, busybox httpd (closes every connection, backlog 9): router vs direct, wrk -d3s"
mkdir -p "$T/bb/site"
cp "$top"/examples/static/*.html "$top"/examples/static/*.css "$T/bb/site/"
printf 'web: exec busybox httpd -f -p $PORT -h site\n' >"$T/bb/Procfile"
git -C "$T/bb" init -q -b main
git -C "$T/bb" add -A && git -C "$T/bb" -c user.email=b@b -c user.name=b commit -qm 0
"$build/berth" apps:create bb >/dev/null
git -C "$T/bb" push -q "http://x:$BERTH_TOKEN@127.0.0.1:$control/bb.git" main >"$T/bb.out" 2>&1 ||
    { echo "  push failed: $(tail -3 "$T/bb.out" | tr '\n' ' ')"; exit 0; }
dport=$(free_port)
busybox httpd -f -p "127.0.0.1:$dport" -h "$T/bb/site" &
direct=$!
# The peer: nginx as the proxy in front of that same busybox on the host
# (nginx cannot reach into the container's network namespace; busybox
# there costs about a tenth more CPU per request than on the host).
pport=$(free_port)
nginx_conf "$T/px" "upstream u { server 127.0.0.1:$dport; }
    server { listen 127.0.0.1:$pport; location / { proxy_pass http://u; proxy_http_version 1.1; } }"
if [ -n "$ngx" ]; then
    "$ngx" -p "$T/px" -c "$T/px/nginx.conf" -e "$T/px/error.log" &
    proxy=$!
fi
sleep 0.5
sweep_stats() { wrk_stats "$@" | awk '{printf "%.0f %.2f %d\n", $1, $3, $4}'; } # "req/s p99-ms bad", rounded
# The SYNs the app's full accept queue dropped (its network namespace's
# ListenOverflows) during each router run: what the router's admission
# cap (router/connect.c) keeps down.
app_pid=$(pgrep -f -- '-p [0-9]+ -h site$' | grep -vx "$direct" | head -1 || true)
overflows() {
    awk '/^TcpExt:/ { if (!h) { split($0, n); h = 1 } else { split($0, v); for (i in n) if (n[i] == "ListenOverflows") print v[i] } }' \
        "/proc/$app_pid/net/netstat" 2>/dev/null || echo "?"
}
printf '  %8s %22s %22s %22s %16s %16s %10s\n' clients "router req/s  p99 ms" "nginx req/s  p99 ms" \
    "direct req/s  p99 ms" "router/direct" "nginx/direct" "lost SYNs"
for c in 1 8 16 32 64 256; do
    t=2; [ "$c" -lt 2 ] && t=1
    o0=$(overflows)
    read -r rr rp rbad < <(sweep_stats -t$t -c$c -d3s --timeout 5s -H 'Host: bb.localhost' "http://127.0.0.1:$http/")
    o1=$(overflows) lost='?'
    [ -z "$app_pid" ] || [ "$o0" = '?' ] || [ "$o1" = '?' ] || lost=$((o1 - o0))
    nr=0 np=0 nbad=0
    [ -z "$proxy" ] || read -r nr np nbad < <(sweep_stats -t$t -c$c -d3s --timeout 5s "http://127.0.0.1:$pport/")
    read -r dr dp dbad < <(sweep_stats -t$t -c$c -d3s --timeout 5s "http://127.0.0.1:$dport/")
    printf '  %8s %12s %9s %12s %9s %12s %9s %8s %7s %8s %7s %10s%s\n' "$c" "$rr" "$rp" "$nr" "$np" "$dr" "$dp" \
        "$(ratio "$rr" "$dr")" "$(ratio "$rp" "$dp")" "$(ratio "$nr" "$dr")" "$(ratio "$np" "$dp")" "$lost" \
        "$( [ "$rbad$dbad" = 00 ] || echo '  (errors through the router or direct!)')$( [ "$nbad" = 0 ] || echo '  (nginx: errors)')"
done
