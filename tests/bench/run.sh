#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `make bench`: berth against the peers installed from Debian, measured side
# by side in one run, alternating, reporting ratios (absolute numbers drift
# by +-20% on shared machines; see PEERS.md). Every load is bounded in time
# and on loopback only.
#   1. router: berth's router vs nginx proxy_pass (keepalive upstream), both
#      in front of the same nginx upstream, wrk -t2 -c64 and -t1 -c1: req/s,
#      p50 and p99; then the real path (tests/bench/real-path.sh): berth
#      serve's router to an app in a container, beside nginx proxying to
#      nginx serving the same files on the host, and the concurrency sweep
#      to an app that closes every connection, beside the same server hit
#      directly and behind nginx;
#   2. idle memory (RSS, PSS, USS per process and of the tree as one: tests/bench/tree-mem.py): berth's router
#      vs nginx as the proxy;
#   3. container start to exit of /bin/true: `berth container run` vs
#      bwrap vs crun, and the idle init's memory (tests/bench/start.sh);
#      the noisy neighbour: one tenant's p99 while another runs a spinner,
#      a memory hog and a fork storm (tests/bench/neighbour.sh);
#   4. git push over smart HTTP (200 files x 10 KiB, then one line more):
#      berth's receiver vs nginx -> fcgiwrap -> git http-backend; and the
#      same over ssh: berth git-shell vs git-receive-pack behind one sshd
#      (tests/bench/ssh-push.sh);
#   5. deploy time of each example, push to serving, first push and
#      code-only change (tests/bench/deploy.sh; no peer: goals instead).
# In parts 1 to 3 it prints, after each measurement (the harness with the
# idle memory, the real path, the start, the neighbour), the share of the
# CPU time the hypervisor took meanwhile (steal): on a shared VM it moves
# every figure.
# Runs as an unprivileged user with subordinate ids (as root it re-runs
# itself as the berth user prepared by `berth setup`).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" = 0 ]; then
    "$build/berth" setup --user berth >/dev/null
    # The tree-unique memory (tree-mem.py) needs page frame numbers, which
    # only root reads: a reader stays root and answers the benchmark's
    # questions about the berth user's processes (and those running as its
    # subordinate ids, a container's init) over two FIFOs.
    mem=$(mktemp -d /tmp/berth-bench-mem.XXXXXX)
    mkfifo -m 600 "$mem/req" "$mem/rep"
    chown berth "$mem" "$mem/req" "$mem/rep"
    python3 "$top/tests/bench/tree-mem.py" --serve "$mem" "$(id -u berth)" &
    reader=$!
    rc=0
    BERTH_BENCH_MEM=$mem runuser -u berth -- bash "$0" "$build" || rc=$?
    kill "$reader" 2>/dev/null || true
    wait "$reader" 2>/dev/null || true
    rm -rf "$mem"
    exit "$rc"
fi
T=$(mktemp -d /tmp/berth-bench.XXXXXX)
pids=()
# stop PIDS: the servers and their children (left running, fcgiwrap's
# workers keep our stdout open, and `make bench | tail` would never end).
stop() { for p in "$@"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
# fcgiwrap's workers outlive their parent (they end up under init), so they
# are found by the socket they serve, which is ours alone.
cleanup() { stop "${pids[@]}"; pkill -u "$(id -u)" -f "fcgiwrap .*$T/" 2>/dev/null || true; rm -rf "$T" 2>/dev/null || true; }
trap cleanup EXIT
rounds=${BENCH_ROUNDS:-3}
secs=${BENCH_SECONDS:-5}

# mem_tree PID: "RSS PSS USS TREE-USS" in kB over PID and its descendants
# (tests/bench/tree-mem.py says what each counts), through the root reader
# when run.sh started as root, else directly (TREE-USS is then "-").
# The FIFOs stay open on fds 9 (questions) and 8 (answers), in the order the
# reader opens them; the sub-scripts (start.sh, real-path.sh) inherit both
# and ask through serve.sh's bench_mem_ask too.
if [ -n "${BERTH_BENCH_MEM:-}" ]; then exec 9>"$BERTH_BENCH_MEM/req" 8<"$BERTH_BENCH_MEM/rep"; fi
. "$top/tests/bench/serve.sh"
mem_tree() { bench_mem_ask "$1" || python3 "$top/tests/bench/tree-mem.py" "$1"; }

bench_steal_mark
echo "== router: berth vs nginx proxy_pass (same upstream, wrk on loopback, ${rounds}x${secs}s each, alternating)"
up=$(free_port); px=$(free_port); rb=$(free_port)
nginx_conf "$T/up" "server { listen 127.0.0.1:$up; location / { return 200 \"hello\"; } }"
nginx_conf "$T/px" "upstream u { server 127.0.0.1:$up; keepalive 64; }
    server { listen 127.0.0.1:$px; location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
nginx -p "$T/up" -c "$T/up/nginx.conf" -e "$T/up/error.log" & pids+=($!)
nginx -p "$T/px" -c "$T/px/nginx.conf" -e "$T/px/error.log" & pids+=($!)
BERTH_ROUTER_ACCESS_LOG=0 "$build/tests/bench/router-bench" "$rb" "$up" a.test >"$T/rb.out" & pids+=($!)
sleep 1
printf '  %-9s %21s  %21s  %s\n' "" "nginx req/s p50 p99" "berth req/s p50 p99" "berth/nginx req/s, p99"
for conc in "-t2 -c64" "-t1 -c1"; do
    : >"$T/n"; : >"$T/b"
    for i in $(seq 1 "$rounds"); do
        wrk_stats $conc -d"${secs}s" -H 'Host: a.test' "http://127.0.0.1:$px/" >>"$T/n"
        wrk_stats $conc -d"${secs}s" -H 'Host: a.test' "http://127.0.0.1:$rb/" >>"$T/b"
    done
    n=$(median_col "$T/n" 1); np50=$(median_col "$T/n" 2); np99=$(median_col "$T/n" 3)
    b=$(median_col "$T/b" 1); bp50=$(median_col "$T/b" 2); bp99=$(median_col "$T/b" 3)
    printf '  wrk %-5s %9s %5sms %5sms  %9s %5sms %5sms  %s, %s\n' "${conc#-t? }" "$n" "$np50" "$np99" \
        "$b" "$bp50" "$bp99" "$(ratio "$b" "$n")" "$(ratio "$bp99" "$np99")"
done
sleep 2   # idle: both have had a quiet moment to settle after the load
echo "== idle memory after the load, kB over the process tree (RSS, PSS, USS summed per process, USS of the tree)"
read -r nr np nu nt < <(mem_tree "${pids[1]}")
read -r br bp bu bt < <(mem_tree "${pids[2]}")
echo "  nginx proxy (master + worker): $nr $np $nu $nt"
echo "  berth router:                  $br $bp $bu $bt"
if [ "$nt" != - ] && [ "$bt" != - ]; then
    echo "  berth/nginx USS of the tree: $(ratio "$bt" "$nt") (goal <= 1.0)"
else
    echo "  berth/nginx USS summed per process: $(ratio "$bu" "$nu") (the USS of the tree needs root: run make bench as root)"
fi
stop "${pids[@]}"; pids=()
bench_steal_print

# The real path: wrk -> berth serve's router -> the port agent -> nginx in a
# container (the static example), beside the harness figure above.
echo "== router, the real path: wrk -> berth serve -> port agent -> examples/static in a container, beside nginx -> nginx on the host (median of ${rounds})"
bench_steal_mark
bash "$top/tests/bench/real-path.sh" "$build" "$rounds" "$secs"
bench_steal_print

bench_steal_mark
bash "$top/tests/bench/start.sh" "$build" "${BENCH_RUNS:-60}" "$rounds"
bench_steal_print
bench_steal_mark
echo "== noisy neighbour: tenant B's router p99 while tenant A runs a spinner, a memory hog and a fork storm"
bash "$top/tests/bench/neighbour.sh" "$build" "$rounds" "$secs"
bench_steal_print

echo "== git push over smart HTTP, 200 files x 10 KiB (hyperfine, ${PUSH_RUNS:-20} runs each, median ms)"
rs=$T/rs; gs=$T/gs; mkdir -p "$rs" "$gs"
"$build/receiver/receiver-test-server" "$rs" >"$T/rts.port" 2>"$T/rts.log" & pids+=($!)
fcgiwrap -c 2 -s "unix:$T/fcgi.sock" & pids+=($!)
gp=$(free_port)
nginx_conf "$T/gh" "server { listen 127.0.0.1:$gp; client_max_body_size 0;
        location / { fastcgi_pass unix:$T/fcgi.sock; include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
            fastcgi_param GIT_PROJECT_ROOT $gs; fastcgi_param GIT_HTTP_EXPORT_ALL \"\";
            fastcgi_param PATH_INFO \$uri; fastcgi_param REMOTE_USER bench; } }"
nginx -p "$T/gh" -c "$T/gh/nginx.conf" -e "$T/gh/error.log" & pids+=($!)
for _ in $(seq 1 50); do [ -s "$T/rts.port" ] && [ -S "$T/fcgi.sock" ] && break; sleep 0.1; done
bp=$(head -1 "$T/rts.port")
src=$T/src; mkdir -p "$src"
for i in $(seq 1 200); do head -c 7680 /dev/urandom | base64 -w 0 >"$src/f$i.txt"; done
git -C "$src" init -q -b main
git -C "$src" -c user.email=b@b -c user.name=b add -A
git -C "$src" -c user.email=b@b -c user.name=b commit -qm one
c1=$(git -C "$src" rev-parse HEAD)
echo more >>"$src/f1.txt"
git -C "$src" -c user.email=b@b -c user.name=b commit -qam two
c2=$(git -C "$src" rev-parse HEAD)
fresh() { echo "rm -rf $1/bench.git && git init -q --bare -b main $1/bench.git && git --git-dir=$1/bench.git config http.receivepack true"; }
bf=$(push_median bf "bash -c '$(fresh "$rs")'" "git -C $src push -q http://127.0.0.1:$bp/bench.git $c1:refs/heads/main")
gf=$(push_median gf "bash -c '$(fresh "$gs")'" "git -C $src push -q http://127.0.0.1:$gp/bench.git $c1:refs/heads/main")
bi=$(push_median bi "git --git-dir=$rs/bench.git update-ref refs/heads/main $c1" "git -C $src push -q http://127.0.0.1:$bp/bench.git $c2:refs/heads/main")
gi=$(push_median gi "git --git-dir=$gs/bench.git update-ref refs/heads/main $c1" "git -C $src push -q http://127.0.0.1:$gp/bench.git $c2:refs/heads/main")
printf '  first push:       http-backend %8s ms   berth %8s ms   berth/http-backend %s\n' "$gf" "$bf" "$(ratio "$bf" "$gf")"
printf '  incremental push: http-backend %8s ms   berth %8s ms   berth/http-backend %s\n' "$gi" "$bi" "$(ratio "$bi" "$gi")"

echo "== git push over ssh, the same commits, behind one sshd: berth git-shell vs git-receive-pack (median ms)"
bash "$top/tests/bench/ssh-push.sh" "$build" "$src" "$c1" "$c2"

echo "== deploy: git push to the new release answering through the router (median of ${DEPLOY_RUNS:-5} code changes)"
bash "$top/tests/bench/deploy.sh" "$build" "${DEPLOY_RUNS:-5}"
