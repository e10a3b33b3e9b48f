#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The walking skeleton, end to end and unmocked: as an unprivileged user,
# start `berth serve`, create an app, `git push` examples/static with the real
# git client, check the build output, fetch the page through the router with
# curl, push a change and see it served (also when another ref of the same
# push fails to land), prove the server ran in its own user
# and pid namespace, and check that bad input (unknown app, wrong token, no
# buildpack, unknown host) fails clearly and loses nothing.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
require_rootless

export GIT_TERMINAL_PROMPT=0
home=$TEST_DIR/home
start_berth "$home"
ok "berth serve started (router :$HTTP_PORT, control :$CONTROL_PORT)"
check "first start wrote admin.token with mode 0600" [ "$(stat -c %a "$home/admin.token")" = 600 ]
check "it prints a quick start with this server's git remote" \
    contains "$TEST_DIR/serve.log" "@127.0.0.1:$CONTROL_PORT/hello.git main"
token1=$(cat "$home/admin.token")

"$BERTH" apps:create hello >"$TEST_DIR/create.out" 2>&1 || true
check "apps:create hello" contains "$TEST_DIR/create.out" "Creating hello... done"
"$BERTH" apps:list >"$TEST_DIR/list.out" 2>&1 || true
check "apps:list shows hello" contains "$TEST_DIR/list.out" "hello"

remote="http://berth:$BERTH_TOKEN@127.0.0.1:$CONTROL_PORT/hello.git"
make_repo "$SRCDIR/examples/static" "$TEST_DIR/site"
git -C "$TEST_DIR/site" push --progress "$remote" main >"$TEST_DIR/push1.out" 2>&1 || { diag "$TEST_DIR/push1.out"; diag "$TEST_DIR/serve.log"; }
check "push: buildpack detected" contains "$TEST_DIR/push1.out" "remote: -----> Static app detected"
check "push: process types discovered" contains "$TEST_DIR/push1.out" "remote: -----> Discovering process types"
check "push: released v1" contains "$TEST_DIR/push1.out" "Released v1"
check "push: branch created" contains "$TEST_DIR/push1.out" "* [new branch]      main -> main"

router_get hello.localhost / >"$TEST_DIR/page1.html" 2>&1 || true
check "router serves the pushed page" contains "$TEST_DIR/page1.html" "Hello from berth"
router_get hello.localhost:$HTTP_PORT / >"$TEST_DIR/page1b.html" 2>&1 || true
check "Host with a port suffix routes too" contains "$TEST_DIR/page1b.html" "Hello from berth"
code=$(curl -s -o "$TEST_DIR/app404.html" -w '%{http_code}' -H 'Host: hello.localhost' "http://127.0.0.1:$HTTP_PORT/missing.html")
check "a missing file is a 404 ($code)" [ "$code" = 404 ]
check "... and it is the app's own 404 page, not the router's" not_contains "$TEST_DIR/app404.html" "No such app"
check "the router's access log names the dyno that served it" \
    grep -q 'host=hello.localhost request_id=[0-9a-f-]* fwd="127.0.0.1" dyno=web.1 .*status=200' "$TEST_DIR/serve.log"

# The web server must be running in its own user and pid namespace.
pid=$(pgrep -f 'nginx: master process .*berth-static-nginx.conf' | head -1 || true)
if [ -n "$pid" ]; then
    check "app runs in another user namespace" [ "$(readlink /proc/$pid/ns/user)" != "$(readlink /proc/self/ns/user)" ]
    check "app runs in another pid namespace" [ "$(readlink /proc/$pid/ns/pid)" != "$(readlink /proc/self/ns/pid)" ]
    check "app runs in another network namespace" [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]
    app_uid=$(stat -c %u /proc/$pid)
    check "app's host uid ($app_uid) is a subordinate id, not berth's ($(id -u))" [ "$app_uid" != "$(id -u)" ]
else
    not_ok "found the app's web server process"
fi

sed -i 's/Hello from berth/Hello again from berth/' "$TEST_DIR/site/index.html"
commit_all "$TEST_DIR/site" "second"
git -C "$TEST_DIR/site" push --progress "$remote" main >"$TEST_DIR/push2.out" 2>&1 || diag "$TEST_DIR/push2.out"
check "second push released v2" contains "$TEST_DIR/push2.out" "Released v2"
router_get hello.localhost / >"$TEST_DIR/page2.html" 2>&1 || true
check "router serves the new content" contains "$TEST_DIR/page2.html" "Hello again from berth"
good_ref=$(git --git-dir="$home/apps/hello/repo.git" rev-parse refs/heads/main 2>/dev/null || echo none)
check "server ref is the pushed commit" [ "$good_ref" = "$(git -C "$TEST_DIR/site" rev-parse HEAD)" ]

# A push that is not atomic in which main lands and another ref fails to be
# written (a stale lock file in its way): main's release goes live, as main
# now points at it, rather than being thrown away.
echo third >"$TEST_DIR/site/third.txt"
commit_all "$TEST_DIR/site" "third"
touch "$home/apps/hello/repo.git/refs/heads/other.lock"
git -C "$TEST_DIR/site" push --progress "$remote" main HEAD:refs/heads/other >"$TEST_DIR/push3.out" 2>&1 || true
rm -f "$home/apps/hello/repo.git/refs/heads/other.lock"
good_ref=$(git --git-dir="$home/apps/hello/repo.git" rev-parse refs/heads/main 2>/dev/null || echo none)
check "non-atomic push: main lands while 'other' fails" \
    [ "$good_ref:$(git --git-dir="$home/apps/hello/repo.git" rev-parse -q --verify refs/heads/other || echo none)" \
      = "$(git -C "$TEST_DIR/site" rev-parse HEAD):none" ]
check "... and main's release v3 goes live" contains "$TEST_DIR/push3.out" "Released v3"
router_get hello.localhost /third.txt >"$TEST_DIR/page3a.html" 2>&1 || true
check "... and serves" contains "$TEST_DIR/page3a.html" "third"

# Bad input 1: an app that does not exist.
if git -C "$TEST_DIR/site" push "http://berth:$BERTH_TOKEN@127.0.0.1:$CONTROL_PORT/nope.git" main >"$TEST_DIR/nope.out" 2>&1; then
    not_ok "push to a missing app fails"
else
    ok "push to a missing app fails"
fi
check "the error names the app" contains "$TEST_DIR/nope.out" "app 'nope' does not exist"
check "nothing was created for it" [ ! -e "$home/apps/nope" ]

# Bad input 2: a wrong token.
code=$(curl -s -o /dev/null -w '%{http_code}' -u "berth:wrong" \
       "http://127.0.0.1:$CONTROL_PORT/hello.git/info/refs?service=git-receive-pack")
check "wrong token on git endpoint is HTTP 401 ($code)" [ "$code" = 401 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" "http://127.0.0.1:$CONTROL_PORT/apps")
check "wrong token on the API is HTTP 401 ($code)" [ "$code" = 401 ]
echo "tamper" >>"$TEST_DIR/site/index.html"
commit_all "$TEST_DIR/site" "unauthorised"
if git -C "$TEST_DIR/site" push "http://berth:wrong@127.0.0.1:$CONTROL_PORT/hello.git" main >"$TEST_DIR/wrong.out" 2>&1; then
    not_ok "push with a wrong token fails"
else
    ok "push with a wrong token fails"
fi
check "nothing stored: ref unchanged" [ "$(git --git-dir="$home/apps/hello/repo.git" rev-parse refs/heads/main)" = "$good_ref" ]
check "nothing stored: the commit is not in the server repo" \
    lacks_object "$home/apps/hello/repo.git" "$(git -C "$TEST_DIR/site" rev-parse HEAD)"
git -C "$TEST_DIR/site" reset -q --hard HEAD~1

# Bad input 3: nothing a buildpack recognises.
mkdir "$TEST_DIR/plain"; echo "just a readme" >"$TEST_DIR/plain/README"
git -C "$TEST_DIR/site" rm -q -r . && cp "$TEST_DIR/plain/README" "$TEST_DIR/site/"
commit_all "$TEST_DIR/site" "no framework"
if git -C "$TEST_DIR/site" push --progress "$remote" main >"$TEST_DIR/nobp.out" 2>&1; then
    not_ok "push without a framework is rejected"
else
    ok "push without a framework is rejected"
fi
check "rejection says Unable to select a buildpack" contains "$TEST_DIR/nobp.out" "-----> Unable to select a buildpack"
check "git reports the ref as rejected" contains "$TEST_DIR/nobp.out" "[remote rejected]"
check "server ref still at the good release" [ "$(git --git-dir="$home/apps/hello/repo.git" rev-parse refs/heads/main)" = "$good_ref" ]
router_get hello.localhost / >"$TEST_DIR/page3.html" 2>&1 || true
check "the previous release still serves" contains "$TEST_DIR/page3.html" "Hello again from berth"

# Bad input 4: a host no app has.
code=$(curl -s -o "$TEST_DIR/404.html" -w '%{http_code}' -H 'Host: nosuch.localhost' "http://127.0.0.1:$HTTP_PORT/")
check "unknown host is 404 ($code)" [ "$code" = 404 ]
check "the 404 page names no app" not_contains "$TEST_DIR/404.html" "hello"

# This server's processes, found below it before it stops: other tests'
# servers run the same static nginx at the same time (CI once matched one).
# Each as PID:STATE:START (/proc/PID/stat's fields 3 and 22, after the name),
# so that a pid the kernel hands out again is not taken for ours.
proc_id() { awk -v p="$1" '{sub(/^.*\) /, ""); print p ":" $1 ":" $20}' "/proc/$1/stat" 2>/dev/null || true; }
tree_pids() { local p; for p in $(pgrep -P "$1" || true); do echo "$p"; tree_pids "$p"; done; }
ours=$(for p in $(tree_pids "$serve_pid"); do proc_id "$p"; done)
app_nginx=$(for id in $ours; do grep -qs 'berth-static-nginx.conf' "/proc/${id%%:*}/cmdline" && echo "${id%%:*}"; done) || true
check "the app's nginx runs below this server (pids $(echo $app_nginx))" [ -n "$app_nginx" ]
stop_berth && ok "berth serve stopped on SIGTERM" || not_ok "berth serve stopped on SIGTERM"
# Alive: the same process, and not a zombie (its parent gone too, init reaps it).
alive() {
    local id now
    for id in $ours; do
        now=$(proc_id "${id%%:*}")
        [ -n "$now" ] && [ "${now##*:}" = "${id##*:}" ] && case $now in *:Z:*) ;; *) echo "${id%%:*}" ;; esac
    done
    return 0
}
for _ in $(seq 1 50); do [ -z "$(alive)" ] && break; sleep 0.1; done
check "no process of the server's (its spawner, inits and apps) outlives it (left: $(alive | paste -sd' '))" \
    [ -z "$(alive)" ]

# Restart: the app comes back by itself.
start_berth "$home"
check "a restart keeps the admin token" [ "$(cat "$home/admin.token")" = "$token1" ]
router_get hello.localhost / >"$TEST_DIR/page4.html" 2>&1 || true
check "after a restart the current release serves again" contains "$TEST_DIR/page4.html" "Hello again from berth"
stop_berth || true

done_testing
