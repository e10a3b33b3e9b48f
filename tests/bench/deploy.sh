#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Deploy time, `git push` to the new release answering through the router,
# for each example app: the first push (cold caches), then code-only changes
# (dependencies unchanged, so the buildpack's cache skips the install step).
# Prints a table; the goals on a 2-CPU machine are a code-only change of a
# dependency-free app in at most 0.5 s and of the Node app with its cache
# warm in at most 2 s. Run by tests/bench/run.sh as the berth user, or alone:
#   tests/bench/deploy.sh BUILD_DIR [RUNS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
runs=${2:-${DEPLOY_RUNS:-5}}
top=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/berth-deploy-bench.XXXXXX)
. "$top/tests/bench/serve.sh"
trap bench_serve_stop EXIT
bench_serve_start "$build"

now() { date +%s.%N; }
# deploy_once APP DIR: pushes DIR and checks the router then answers for APP;
# prints the seconds from the push's start to that answer. berth moves the
# ref only once the new release serves, so the push's end is the release's
# start; the request after it proves it.
deploy_once() {
    local t0 code
    t0=$(now)
    git -C "$2" push -q "http://x:$BERTH_TOKEN@127.0.0.1:$control/$1.git" main >"$T/push.out" 2>&1 ||
        { echo "push of $1 failed:" >&2; tail -5 "$T/push.out" >&2; return 1; }
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: $1.localhost" "http://127.0.0.1:$http/")
    case $code in 2*|3*) ;; *) echo "$1 answered $code after its push" >&2; return 1 ;; esac
    awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'
}

# example and the file a code-only change touches (a comment line, rewritten each run)
apps=("static index.html" "procfile server.py" "python app.py" "go main.go" "php index.php" "node server.js")
# A comment line at the end: nothing before the first statement changes (PHP's declare()).
comment() { case $1 in *.html) echo "<!-- bench-$2 -->" ;; *.go|*.js|*.php) echo "// bench-$2" ;;
                      *) echo "# bench-$2" ;; esac; }
printf '  %-9s %12s %14s %8s\n' app "first push" "code change" goal
for entry in "${apps[@]}"; do
    read -r app file <<<"$entry"
    dir=$T/src-$app
    cp -a "$top/examples/$app" "$dir"
    { cat "$top/examples/$app/$file"; comment "$file" 0; } >"$dir/$file"
    git -C "$dir" init -q -b main
    git -C "$dir" add -A && git -C "$dir" -c user.email=b@b -c user.name=b commit -qm 0
    "$build/berth" apps:create "b$app" >/dev/null
    first=$(deploy_once "b$app" "$dir") || { printf '  %-9s %12s\n' "$app" failed; continue; }
    : >"$T/times"
    for i in $(seq 1 "$runs"); do
        { cat "$top/examples/$app/$file"; comment "$file" "$i"; } >"$dir/$file"
        git -C "$dir" -c user.email=b@b -c user.name=b commit -qam "$i"
        deploy_once "b$app" "$dir" >>"$T/times" || break
    done
    goal=0.5
    [ "$app" = node ] && goal=2.0
    printf '  %-9s %10.2f s %12.2f s %6s s\n' "$app" "$first" "$(median <"$T/times")" "$goal"
done
