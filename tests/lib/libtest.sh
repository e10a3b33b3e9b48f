# SPDX-License-Identifier: GPL-2.0-or-later
#
# Shared helpers for berth's shell integration tests (bubblewrap's libtest.sh
# idea): TAP output, a temporary directory removed on exit, assertions that
# say what they expected, and starting/stopping a real `berth serve` on free
# loopback ports. Source it from a test after `set -euo pipefail`.

BERTH=${BERTH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/berth}
SRCDIR=${SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
. "$(dirname "${BASH_SOURCE[0]}")/subid-rm.sh"
TEST_DIR=$(mktemp -d /tmp/berth-test.XXXXXX)
chmod 0755 "$TEST_DIR"
tap_n=0
tap_failed=0
serve_pid=

cleanup() {
    local rc=$?
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$serve_pid" 2>/dev/null || true
    fi
    if [ "${KEEP_TEST_DIR:-}" = 1 ]; then
        echo "# kept $TEST_DIR"
    else
        subid_rm_rf "$TEST_DIR"   # slugs hold files of the tenants' ids
    fi
    exit $rc
}
trap cleanup EXIT

ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
contains() { grep -qF -- "$2" "$1"; }
not_contains() { ! grep -qF -- "$2" "$1"; }
lacks_object() { ! git --git-dir="$1" cat-file -e "$2" 2>/dev/null; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'; }
diag() { sed 's/^/# /' "$@" >&2 || true; }
# settles SECS command...: true once the command succeeds, trying every 0.05 s for up to SECS
# seconds (what `berth container run` leaves to a detached child, its cgroup's removal, ends
# a moment after the command does).
settles() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.05; done
}
done_testing() { echo "1..$tap_n"; [ "$tap_failed" -eq 0 ]; }

# Skips the whole test, or fails it when CI says everything must run.
skip_all() {
    if [ "${BERTH_MUST_WORK:-}" = 1 ]; then
        echo "not ok 1 - cannot run: $*"; echo "1..1"; exit 1
    fi
    echo "1..0 # SKIP $*"; exit 0
}

require_rootless() {
    [ "$(id -u)" != 0 ] || skip_all "run as an unprivileged user (make test does this as root)"
    grep -q "^$(id -un):" /etc/subuid || skip_all "no subordinate ids for $(id -un): run 'berth setup --user $(id -un)' as root"
    [ -x "$BERTH" ] || skip_all "no berth binary at $BERTH"
}

# start_berth HOME [extra serve options]: starts `berth serve` on free ports
# and sets HTTP_PORT, CONTROL_PORT, BERTH_URL and BERTH_TOKEN.
start_berth() {
    local home=$1; shift
    berth_home=$home
    # A daemon killed with -9 leaves its serve.json: wait for the new one's.
    rm -f "$home/run/serve.json"
    "$BERTH" serve --home "$home" --http 127.0.0.1:0 --control 127.0.0.1:0 "$@" \
        >"$TEST_DIR/serve.log" 2>&1 &
    serve_pid=$!
    serve_ready "$home" "$TEST_DIR/serve.log"
}

# serve_ready HOME LOG: waits for the `berth serve` $serve_pid (logging to LOG) to write
# HOME/run/serve.json, then sets HTTP_PORT, CONTROL_PORT, BERTH_URL and BERTH_TOKEN.
serve_ready() {
    local home=$1
    for _ in $(seq 1 300); do
        [ -s "$home/run/serve.json" ] && break
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -s "$home/run/serve.json" ]; then
        echo "# berth serve did not start:" >&2; diag "$2"; return 1
    fi
    HTTP_PORT=$(sed -n 's/.*"http_port": *\([0-9]*\).*/\1/p' "$home/run/serve.json")
    CONTROL_PORT=$(sed -n 's/.*"control_port": *\([0-9]*\).*/\1/p' "$home/run/serve.json")
    BERTH_URL="http://127.0.0.1:$CONTROL_PORT"
    BERTH_TOKEN=$(cat "$home/admin.token")
    export BERTH_URL BERTH_TOKEN
}

# serve_for_test: what a server test starts with: a `berth serve` with its
# home in $TEST_DIR/home (sets $home), git never prompting.
serve_for_test() {
    require_rootless
    export GIT_TERMINAL_PROMPT=0
    home=$TEST_DIR/home
    if start_berth "$home"; then ok "berth serve started (router :$HTTP_PORT, control :$CONTROL_PORT)"; else
        not_ok "berth serve started"; done_testing; exit 1; fi
}

stop_berth() {
    [ -n "$serve_pid" ] || return 0
    kill -TERM "$serve_pid" 2>/dev/null || true
    local i
    for i in $(seq 1 300); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$serve_pid" 2>/dev/null; then kill -KILL "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=; return 1; fi
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=
}

# A git work tree with one commit, from a directory of files.
make_repo() { # make_repo SRC DEST
    cp -a "$1" "$2"
    git -C "$2" init -q -b main
    git -C "$2" -c user.email=t@example.com -c user.name=test add -A
    git -C "$2" -c user.email=t@example.com -c user.name=test commit -qm "initial"
}

commit_all() { # commit_all DIR MESSAGE
    git -C "$1" -c user.email=t@example.com -c user.name=test add -A
    git -C "$1" -c user.email=t@example.com -c user.name=test commit -qm "$2"
}

# curl through the router with a Host header: body to stdout.
router_get() { # router_get HOST PATH
    curl -sS --max-time 10 -H "Host: $1" "http://127.0.0.1:$HTTP_PORT$2"
}

# push_app DIR APP OUT [git push options...]: pushes work tree DIR's main to
# APP over smart HTTP with the admin token; git's output goes to OUT.
push_app() {
    local dir=$1 app=$2 out=$3; shift 3
    git -C "$dir" push --progress "$@" "http://berth:$BERTH_TOKEN@127.0.0.1:$CONTROL_PORT/$app.git" main >"$out" 2>&1
}

# A fresh work tree DIR holding the given files: make_tree DIR NAME CONTENT [NAME CONTENT]...
make_tree() {
    local dir=$1; shift
    mkdir -p "$dir"
    while [ $# -ge 2 ]; do
        mkdir -p "$(dirname "$dir/$1")"
        printf '%s' "$2" >"$dir/$1"
        shift 2
    done
    git -C "$dir" init -q -b main
    commit_all "$dir" "initial"
}

# A git repository at DIR holding a buildpack whose bin/ scripts are given:
# make_buildpack DIR DETECT COMPILE [RELEASE]. Usable as file://DIR.
make_buildpack() {
    local dir=$1
    mkdir -p "$dir/bin"
    printf '#!/usr/bin/env bash\n%s\n' "$2" >"$dir/bin/detect"
    printf '#!/usr/bin/env bash\n%s\n' "$3" >"$dir/bin/compile"
    [ -z "${4:-}" ] || printf '#!/usr/bin/env bash\n%s\n' "$4" >"$dir/bin/release"
    chmod 0755 "$dir"/bin/*
    git -C "$dir" init -q -b main
    commit_all "$dir" "buildpack"
}

# wait_body HOST PATH TEXT [SECONDS]: polls the router until the body holds TEXT.
wait_body() {
    local i
    for i in $(seq 1 $((${4:-10} * 10))); do
        router_get "$1" "$2" 2>/dev/null | grep -qF -- "$3" && return 0
        sleep 0.1
    done
    return 1
}

# run CMD...: the CLI's stdout in $out, its stderr in $err, its exit code in $rc.
out=$TEST_DIR/out
err=$TEST_DIR/err
run() { rc=0; "$BERTH" "$@" >"$out" 2>"$err" || rc=$?; }
# api METHOD PATH [BODY]: the answer's status in $status, its body in $out;
# with the token $TOKEN, else $BERTH_TOKEN.
api() {
    status=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${TOKEN:-$BERTH_TOKEN}" \
        ${3:+-H 'Content-Type: application/json' --data "$3"} "$BERTH_URL$2")
}

# What a build leaves when it fails: nothing in run/builds, no new slug.
slug_count() { find "$1/layers" -mindepth 2 -maxdepth 2 -type d ! -path '*/stacks/*' 2>/dev/null | wc -l; }
builds_left() { find "$1/run/builds" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# tenant_cgroup TENANT [HOME]: the name of the tenant's cgroup, "TENANT@KEY" (control/model.h), KEY
# the first 8 hex digits of the SHA-256 of the real path of HOME (default: the last start_berth's).
tenant_cgroup() {
    echo "$1@$(printf %s "$(realpath "${2:-$berth_home}")" | sha256sum | cut -c1-8)"
}
# berth_cgroup CTRL REL: the directory of berth's cgroup REL (below berth-<user>, which `berth
# setup` delegates below our own cgroup) in hierarchy CTRL (memory, pids, cpu; cgroup v2: the one
# tree). REL's first part is a tenant of the last start_berth's home (tenant_cgroup), or
# `containers` (`berth container run`'s, the same for every home).
berth_cgroup() {
    local p rel=$2
    case $rel in containers | containers/*) ;; *) rel=$(tenant_cgroup "${rel%%/*}")${rel#"${rel%%/*}"} ;; esac
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        p=$(awk -F: '$1 == 0 {print $3}' /proc/self/cgroup)
        echo "/sys/fs/cgroup${p%/}/berth-$(id -un)/$rel"
    else
        p=$(awk -F: -v c="$1" '{n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3}' /proc/self/cgroup)
        echo "/sys/fs/cgroup/$1${p%/}/berth-$(id -un)/$rel"
    fi
}
# remove_tenant_cgroups TENANT...: what a test's tenants left in every hierarchy (after stop_berth),
# retried while the kernel still drops the last processes' references.
remove_tenant_cgroups() {
    local i c t d
    for i in 1 2 3 4 5; do
        for c in memory pids cpu; do for t in "$@"; do
            d=$(berth_cgroup $c "$t")
            [ ! -d "$d" ] || find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done; done
        for t in "$@"; do [ ! -d "$(berth_cgroup pids "$t")" ] || { sleep 0.1; continue 2; }; done
        return 0
    done
}

# watch_host HOST: curls HOST through the router until $TEST_DIR/stop appears, then writes
# "failed/total" to $TEST_DIR/fail.HOST (a request fails unless it answers 200 within 5 s).
watch_host() {
    local n=0 f=0 code
    while [ ! -e "$TEST_DIR/stop" ]; do
        code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$HTTP_PORT/") || true
        n=$((n + 1)); [ "$code" = 200 ] || f=$((f + 1))
        sleep 0.05
    done
    echo "$f/$n" >"$TEST_DIR/fail.$1"
}
