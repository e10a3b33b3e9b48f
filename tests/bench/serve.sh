# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sourced by the benchmarks that need a `berth serve` of their own
# (real-path.sh, deploy.sh, neighbour.sh), for bench_init_memory (start.sh)
# and for bench_mem_ask and the steal figures (run.sh). bench_serve_start BUILD_DIR starts one
# with its home in $T (the caller's temporary directory) on free loopback
# ports and sets serve (its pid), http, control, BERTH_URL and BERTH_TOKEN.
# bench_serve_stop stops it and removes $T; what the containers left there
# belongs to subordinate ids and is removed from a user namespace
# (tests/lib/subid-rm.sh). Also the helpers the scripts share: free_port,
# ratio, median, median_col, wrk_stats, push_median and nginx_conf (run.sh's peers, and
# nginx beside the router in real-path.sh).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/subid-rm.sh"
serve=
free_port() { # a free loopback port, from the kernel
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; } # ratio A B: A/B, 2 decimals
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; } # median < NUMBERS: the middle one
median_col() { awk -v c="$2" '{print $c}' "$1" | median; } # median_col FILE N: the median of column N
# push_median NAME PREPARE COMMAND: hyperfine's median of COMMAND in ms
# (PREPARE before each run, PUSH_RUNS runs, the JSON kept as $T/NAME.json).
push_median() {
    hyperfine -N --runs "${PUSH_RUNS:-20}" --prepare "$2" --export-json "$T/$1.json" "$3" >/dev/null 2>&1 &&
        python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$T/$1.json"
}
# wrk_stats WRK-ARGS...: "req/s p50-ms p99-ms bad" of one wrk run (--latency
# gives the percentiles; bad is 1 when wrk counted non-2xx answers or socket errors).
wrk_stats() {
    wrk --latency "$@" 2>/dev/null | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ {r = $2} $1 == "50%" {p50 = ms($2)} $1 == "99%" {p99 = ms($2)}
        /Non-2xx|Socket errors/ {bad = 1}
        END {printf "%s %.3f %.3f %d\n", r, p50, p99, bad}'
}
nginx_conf() { # nginx_conf DIR BODY [WORKERS]: DIR/nginx.conf, in the foreground, its files in DIR; 1 worker unless WORKERS
    mkdir -p "$1"
    cat >"$1/nginx.conf" <<CONF
worker_processes ${3:-1};
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
# bench_steal_mark remembers the machine's CPU counters (/proc/stat);
# bench_steal_print then prints the share of the CPU time since the mark
# that the hypervisor took from this VM (steal, idle time included), which
# moves every figure of a part on a shared machine (run.sh prints it after
# each measurement of its first three parts).
bench_steal=
bench_steal_mark() { bench_steal=$(awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat); }
bench_steal_print() {
    awk -v m="$bench_steal" '/^cpu / {split(m, a, " "); t = 0; for (i = 2; i <= 9; i++) t += $i; d = t - a[2]
        printf "  (hypervisor steal during this part: %.0f%% of the CPU time)\n", (d > 0 ? 100 * ($9 - a[1]) / d : 0)}' /proc/stat
}
bench_serve_start() {
    "$1/berth" serve --home "$T/home" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$T/serve.log" 2>&1 &
    serve=$!
    for _ in $(seq 1 100); do [ -s "$T/home/run/serve.json" ] && break; sleep 0.1; done
    http=$(sed -n 's/.*"http_port": *\([0-9]*\).*/\1/p' "$T/home/run/serve.json")
    control=$(sed -n 's/.*"control_port": *\([0-9]*\).*/\1/p' "$T/home/run/serve.json")
    BERTH_URL=http://127.0.0.1:$control
    BERTH_TOKEN=$(cat "$T/home/admin.token")
    export BERTH_URL BERTH_TOKEN
}
bench_serve_stop() {
    [ -z "$serve" ] || { kill "$serve" 2>/dev/null; wait "$serve" 2>/dev/null || true; }
    subid_rm_rf "$T"
}
# bench_mem_ask REQUEST: the answer of run.sh's memory reader, which stays
# root (tests/bench/tree-mem.py --serve; its FIFOs are open on fds 9, the
# questions, and 8, the answers): "RSS PSS USS TREE-USS" in kB for "PID"
# (the tree) or "one PID". Fails when there is no reader (a script run
# alone, or make bench not as root).
bench_mem_ask() {
    local answer
    { [ -n "${BERTH_BENCH_MEM:-}" ] && true >&9 && true <&8; } 2>/dev/null || return 1
    echo "$*" >&9
    read -r answer <&8 && echo "$answer"
}
# bench_init_memory PID: the memory of a container's init (which also serves
# the port agent) against issue 9's goal of a USS <= 400 kB. The init is not
# dumpable and runs as the container's root: only root reads its smaps (the
# reader above, or tree-mem.py when this script runs as root). Its
# /proc/PID/status is open to all: the anonymous resident memory there
# bounds the USS from above (pages it still shares copy-on-write with its
# parent count too), and its file pages are libc's, shared.
bench_init_memory() {
    local rss pss uss anon file
    read -r rss pss uss _ < <(bench_mem_ask one "$1" ||
        python3 "$(dirname "${BASH_SOURCE[0]}")/tree-mem.py" one "$1") || true
    # "- ..." from a reader that refused; no RSS where the smaps were not ours to read.
    if [ "${rss:--}" != - ] && [ "$rss" -gt 0 ]; then
        echo "init $1: RSS $rss kB, PSS $pss kB, USS $uss kB (goal <= 400 kB: $( [ "$uss" -le 400 ] && echo met || echo NOT met))"
    else
        read -r anon file < <(awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f = $2} END {print a, f}' "/proc/$1/status")
        echo "init $1: RssAnon $anon kB (>= USS; goal <= 400 kB: $( [ "$anon" -le 400 ] && echo met || echo NOT met))," \
            "RssFile $file kB (shared); as root the exact USS"
    fi
}
