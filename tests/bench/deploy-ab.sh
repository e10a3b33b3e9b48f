#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Two builds of berth side by side on one deploy: each build serves its own
# home, and their code-only redeploys of the same app alternate, so that
# both see the host in the same mood (a deploy's time drifts by a tenth of
# a second from minute to minute on a shared VM, more than most changes
# to it are worth). Prints each build's median, push to the first answer
# through the router, and every figure. Run as the berth user:
#   tests/bench/deploy-ab.sh BUILD_A BUILD_B [ROUNDS] [APP_DIR]
# APP_DIR defaults to a dependency-free Python app (an empty
# requirements.txt, http.server), the shape of the buildpacks issue's
# 0.5 s goal. Both builds the same tells the harness's own noise.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/subid-rm.sh"
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD_A BUILD_B [ROUNDS] [APP_DIR]" >&2; exit 2; }
builds=("$(cd "$1" && pwd)" "$(cd "$2" && pwd)")
rounds=${3:-12}
app_dir=${4:-}
T=$(mktemp -d /tmp/berth-deploy-ab.XXXXXX)
pids=()
cleanup() {
    [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    # The homes hold what containers wrote, owned by subordinate ids.
    subid_rm_rf "$T"
}
trap cleanup EXIT

if [ -z "$app_dir" ]; then
    app_dir=$T/app
    mkdir -p "$app_dir"
    cat >"$app_dir/app.py" <<'PY'
import http.server, os

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
PY
    : >"$app_dir/requirements.txt"
    echo 'web: python3 -u app.py' >"$app_dir/Procfile"
fi

now() { date +%s.%N; }
git_q() { git -C "$1" -c user.email=b@b -c user.name=b "${@:2}"; }
ctl=() http=() token=() src=()
for i in 0 1; do
    home=$T/home$i
    "${builds[$i]}/berth" serve --home "$home" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$T/serve$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do [ -s "$home/run/serve.json" ] && break; sleep 0.1; done
    http[i]=$(sed -n 's/.*"http_port": *\([0-9]*\).*/\1/p' "$home/run/serve.json")
    ctl[i]=$(sed -n 's/.*"control_port": *\([0-9]*\).*/\1/p' "$home/run/serve.json")
    token[i]=$(cat "$home/admin.token")
    BERTH_URL=http://127.0.0.1:${ctl[i]} BERTH_TOKEN=${token[i]} "${builds[$i]}/berth" apps:create "ab$i" >/dev/null
    src[i]=$T/src$i
    cp -a "$app_dir" "${src[i]}"
    chmod -R u+w "${src[i]}"
    git -C "${src[i]}" init -q -b main
    git_q "${src[i]}" add -A
    git_q "${src[i]}" commit -qm 0
    git -C "${src[i]}" push -q "http://x:${token[i]}@127.0.0.1:${ctl[i]}/ab$i.git" main >"$T/push.out" 2>&1 ||
        { echo "the first push to build $i failed:" >&2; tail -5 "$T/push.out" >&2; exit 1; }
    : >"$T/times$i"
done

# A comment line appended to every tracked top-level file is no change to
# what the app depends on; it is one to its code, as a user's edit is.
touch_code() {
    local f
    for f in "$1"/*.py "$1"/*.js "$1"/*.php "$1"/*.go "$1"/*.html; do
        [ -f "$f" ] || continue
        case $f in *.html) echo "<!-- ab-$2 -->" ;; *.py) echo "# ab-$2" ;; *) echo "// ab-$2" ;; esac >>"$f"
        return 0
    done
    echo "ab-$2" >>"$1/README.ab"
}

for r in $(seq 1 "$rounds"); do
    for i in 0 1; do
        touch_code "${src[i]}" "$r"
        git_q "${src[i]}" add -A
        git_q "${src[i]}" commit -qm "$r"
        t0=$(now)
        git -C "${src[i]}" push -q "http://x:${token[i]}@127.0.0.1:${ctl[i]}/ab$i.git" main >"$T/push.out" 2>&1 ||
            { echo "push $r to build $i failed:" >&2; tail -5 "$T/push.out" >&2; exit 1; }
        curl -s -m 5 -o /dev/null -H "Host: ab$i.localhost" "http://127.0.0.1:${http[i]}/"
        awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }' >>"$T/times$i"
    done
done
for i in 0 1; do
    printf '%s: median %s s of %s: %s\n' "${builds[$i]}" \
        "$(sort -n "$T/times$i" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')" \
        "$(wc -l <"$T/times$i")" "$(sort -n "$T/times$i" | tr '\n' ' ')"
done
