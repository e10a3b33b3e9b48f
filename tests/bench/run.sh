#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `make bench`: berth against the peers installed from Debian, measured side
# by side in one run, alternating, reporting ratios (absolute numbers drift
# by +-20% on shared machines; see PEERS.md). Every load is bounded in time
# and on loopback only.
#   1. router: berth's router vs nginx proxy_pass (keepalive upstream), both
#      in front of the same nginx upstream, wrk -t2 -c64 and -t1 -c1;
#   2. container start to exit of /bin/true: berth's runner vs bwrap.
# Runs as an unprivileged user with subordinate ids (as root it re-runs
# itself as the berth user prepared by `berth setup`).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" = 0 ]; then
    "$build/berth" setup --user berth >/dev/null
    exec runuser -u berth -- bash "$0" "$build"
fi
T=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T" 2>/dev/null || true; }
trap cleanup EXIT
rounds=${BENCH_ROUNDS:-3}
secs=${BENCH_SECONDS:-5}

free_port() { # a free loopback port, from the kernel
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
nginx_conf() { # nginx_conf DIR BODY
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $1/body; proxy_temp_path $1/proxy; fastcgi_temp_path $1/fcgi;
    uwsgi_temp_path $1/uwsgi; scgi_temp_path $1/scgi;
    $2
}
CONF
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rps() { wrk "$@" 2>/dev/null | awk '/Requests\/sec/ {print $2}'; }

echo "== router: berth vs nginx proxy_pass (same upstream, wrk on loopback, ${rounds}x${secs}s each, alternating)"
up=$(free_port); px=$(free_port); rb=$(free_port)
nginx_conf "$T/up" "server { listen 127.0.0.1:$up; location / { return 200 \"hello\"; } }"
nginx_conf "$T/px" "upstream u { server 127.0.0.1:$up; keepalive 64; }
    server { listen 127.0.0.1:$px; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
nginx -p "$T/up" -c "$T/up/nginx.conf" -e "$T/up/error.log" & pids+=($!)
nginx -p "$T/px" -c "$T/px/nginx.conf" -e "$T/px/error.log" & pids+=($!)
"$build/tests/bench/router-bench" "$rb" "$up" a.test >"$T/rb.out" & pids+=($!)
sleep 1
for conc in "-t2 -c64" "-t1 -c1"; do
    : >"$T/n"; : >"$T/b"
    for i in $(seq 1 "$rounds"); do
        rps $conc -d"${secs}s" -H 'Host: a.test' "http://127.0.0.1:$px/" >>"$T/n"
        rps $conc -d"${secs}s" -H 'Host: a.test' "http://127.0.0.1:$rb/" >>"$T/b"
    done
    n=$(median <"$T/n"); b=$(median <"$T/b")
    printf '  wrk %-8s nginx %10s req/s   berth %10s req/s   berth/nginx %.2f\n' "$conc" "$n" "$b" \
        "$(awk -v b="$b" -v n="$n" 'BEGIN {print (n > 0 ? b / n : 0)}')"
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=()
rss=$(ps -o rss= -C router-bench 2>/dev/null | head -1 || true)

echo "== container start -> exit of /bin/true (median of ${BENCH_RUNS:-200} runs)"
if grep -q "^$(id -un):" /etc/subuid; then
    mkdir -p "$T/start"
    b=$("$build/tests/bench/start-bench" "$T/start" "${BENCH_RUNS:-200}" | awk '{print $2}')
    bw=$(hyperfine -N --warmup 20 --runs "${BENCH_RUNS:-200}" --export-json "$T/bw.json" \
        "bwrap --unshare-user --unshare-pid --unshare-net --unshare-ipc --unshare-uts --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev /bin/true" \
        >/dev/null 2>&1 && python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$T/bw.json")
    printf '  bwrap %8s ms   berth %8s ms   berth/bwrap %.2f (berth includes overlay root, /dev, seccomp, port agent)\n' \
        "$bw" "$b" "$(awk -v b="$b" -v w="$bw" 'BEGIN {print (w > 0 ? b / w : 0)}')"
else
    echo "  skipped: $(id -un) has no subordinate ids (run berth setup)"
fi
