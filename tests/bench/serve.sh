# SPDX-License-Identifier: GPL-2.0-or-later
#
# Sourced by the benchmarks that need a `berth serve` of their own
# (real-path.sh, deploy.sh). bench_serve_start BUILD_DIR starts one with
# its home in $T (the caller's temporary directory) on free loopback ports
# and sets serve (its pid), http, control, BERTH_URL and BERTH_TOKEN.
# bench_serve_stop stops it and removes $T; what the containers left there
# belongs to subordinate ids and is removed from a user namespace.
serve=
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
    rm -rf "$T" 2>/dev/null || unshare --map-root-user --map-auto rm -rf "$T" 2>/dev/null || true
}
