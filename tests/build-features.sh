#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The classic buildpack API end to end, with the real git client and a real
# `berth serve`: several buildpacks in order with the `export` file between
# them (from a `.buildpacks` file, BUILDPACK_URL and `berth
# buildpacks:set`), custom buildpacks fetched from git URLs with #ref,
# .slugignore, an app in a subdirectory, the release phase (success and
# failure), bin/release's config_vars, the build budget (a build over its
# memory limit is killed while a running app keeps answering), a build
# cannot reach the host's loopback or its own addresses, slugs are owned by
# the tenant's ids and writable at run time, and an app's outbound network
# setting. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
bp=$TEST_DIR/bp
mkdir -p "$bp"

# A web process any test app can use: python's http.server on /app/www.
web_release='cat <<"YAML"
---
default_process_types:
  web: python3 -m http.server $PORT --directory /app/www
YAML'

# ---------------------------------------------------------------- several buildpacks, export
make_buildpack "$bp/alpha" 'echo Alpha' \
    'set -e; mkdir -p "$1/.alpha" "$1/www"; echo "from alpha" >"$1/.alpha/note"
     echo "export ALPHA_HOME=/app/.alpha" >"$(dirname "$0")/../export"
     echo "-----> alpha compiled"'
make_buildpack "$bp/beta" 'echo Beta' \
    'set -e; echo "-----> beta sees ALPHA_HOME=${ALPHA_HOME:-unset}"
     echo "beta saw ${ALPHA_HOME:-unset}: $(cat "${ALPHA_HOME:-/nonexistent}/note")" >"$1/www/index.html"' \
    "$web_release"
"$BERTH" apps:create multi >/dev/null
make_tree "$TEST_DIR/multi" .buildpacks "file://$bp/alpha
# a comment, then the primary buildpack last, as Heroku advises
file://$bp/beta
" README "two buildpacks"
push_app "$TEST_DIR/multi" multi "$TEST_DIR/multi.out" && ok "push with a .buildpacks file" ||
    { not_ok "push with a .buildpacks file"; diag "$TEST_DIR/multi.out"; }
check "the list and where it came from are shown" contains "$TEST_DIR/multi.out" "-----> Using buildpacks (from .buildpacks):"
check "each buildpack is fetched from its git URL" contains "$TEST_DIR/multi.out" "-----> Fetching buildpack file://$bp/alpha"
check "... at a commit" contains "$TEST_DIR/multi.out" "       at commit $(git -C "$bp/alpha" rev-parse --short=7 HEAD)"
check "both detect, in order" grep -Pzq 'Alpha app detected(.|\n)*alpha compiled(.|\n)*Beta app detected' "$TEST_DIR/multi.out"
check "the second buildpack sees the first one's export" contains "$TEST_DIR/multi.out" "beta sees ALPHA_HOME=/app/.alpha"
check "the last buildpack's bin/release gives the process types" contains "$TEST_DIR/multi.out" "Default types for buildpack -> web"
wait_body multi.localhost / "beta saw /app/.alpha: from alpha" && ok "the app built by both serves" ||
    not_ok "the app built by both serves ($(router_get multi.localhost / 2>&1 | head -c 200))"

# #ref: a branch of the buildpack, and a commit
git -C "$bp/beta" checkout -q -b v2
sed -i 's/beta sees/beta v2 sees/' "$bp/beta/bin/compile"
commit_all "$bp/beta" "v2"
v2=$(git -C "$bp/beta" rev-parse HEAD)
git -C "$bp/beta" checkout -q main
printf 'file://%s/alpha\nfile://%s/beta#v2\n' "$bp" "$bp" >"$TEST_DIR/multi/.buildpacks"
commit_all "$TEST_DIR/multi" "beta v2"
push_app "$TEST_DIR/multi" multi "$TEST_DIR/multi2.out" || diag "$TEST_DIR/multi2.out"
check "a #branch picks that branch of the buildpack" contains "$TEST_DIR/multi2.out" "beta v2 sees ALPHA_HOME=/app/.alpha"
check "... and says which commit" contains "$TEST_DIR/multi2.out" "at commit ${v2:0:7}"
printf 'file://%s/alpha\nfile://%s/beta#%s\n' "$bp" "$bp" "${v2:0:10}" >"$TEST_DIR/multi/.buildpacks"
commit_all "$TEST_DIR/multi" "beta by commit"
push_app "$TEST_DIR/multi" multi "$TEST_DIR/multi3.out" || diag "$TEST_DIR/multi3.out"
check "a #commit picks that commit" contains "$TEST_DIR/multi3.out" "beta v2 sees"

# BUILDPACK_URL wins over .buildpacks; the app's own list wins over both.
"$BERTH" config:set multi "BUILDPACK_URL=file://$bp/beta" >"$TEST_DIR/cfg.out" 2>&1 || diag "$TEST_DIR/cfg.out"
echo "change" >>"$TEST_DIR/multi/README"
commit_all "$TEST_DIR/multi" "by BUILDPACK_URL"
push_app "$TEST_DIR/multi" multi "$TEST_DIR/multi4.out" || true
check "BUILDPACK_URL is used over .buildpacks" contains "$TEST_DIR/multi4.out" "-----> Using buildpacks (from BUILDPACK_URL):"
check "... so beta alone runs, without alpha's export" contains "$TEST_DIR/multi4.out" "beta sees ALPHA_HOME=unset"
"$BERTH" buildpacks:set multi "file://$bp/alpha" "file://$bp/beta#v2" >"$TEST_DIR/bpset.out" 2>&1 || diag "$TEST_DIR/bpset.out"
check "buildpacks:set prints the list" contains "$TEST_DIR/bpset.out" "2. file://$bp/beta#v2"
"$BERTH" buildpacks multi >"$TEST_DIR/bps.out" 2>&1 || true
check "buildpacks shows it" contains "$TEST_DIR/bps.out" "1. file://$bp/alpha"
echo "change" >>"$TEST_DIR/multi/README"
commit_all "$TEST_DIR/multi" "by the app's list"
push_app "$TEST_DIR/multi" multi "$TEST_DIR/multi5.out" || true
check "the app's own list wins" contains "$TEST_DIR/multi5.out" "-----> Using buildpacks (from the app's buildpacks):"
check "... and runs" contains "$TEST_DIR/multi5.out" "beta v2 sees ALPHA_HOME=/app/.alpha"
"$BERTH" buildpacks:set multi "https://example.com/x y" >"$TEST_DIR/bpbad.out" 2>&1 && not_ok "a bad buildpack URL is refused" ||
    ok "a bad buildpack URL is refused"
check "... saying why" contains "$TEST_DIR/bpbad.out" "contains a space or a control character"
"$BERTH" buildpacks:set multi heroku-community/apt >"$TEST_DIR/bpreg.out" 2>&1 || true
check "a registry name is refused, naming the problem" contains "$TEST_DIR/bpreg.out" "buildpack registry"
"$BERTH" buildpacks:clear multi >/dev/null 2>&1 || true
"$BERTH" buildpacks multi >"$TEST_DIR/bps2.out" 2>&1 || true
check "buildpacks:clear goes back to detection" contains "$TEST_DIR/bps2.out" "has no buildpacks set"

# A list the app names runs its bin/detect scripts one after the other, in
# its order (as Heroku's multi-buildpack does): the second detect passes
# only on what the first left, which, run at once, it would look for 0.1 s
# before the first wrote it. (Detection over the built-ins runs theirs at
# once: they only look at files.)
make_buildpack "$bp/first" 'sleep 0.3; : >"$1/.first-detected"; echo First' 'echo "first compiled"'
make_buildpack "$bp/second" 'sleep 0.2; [ -e "$1/.first-detected" ] && echo Second' \
    'mkdir -p "$1/www"; echo ordered >"$1/www/index.html"' "$web_release"
"$BERTH" apps:create ordered >/dev/null
make_tree "$TEST_DIR/ordered" .buildpacks "$(printf 'file://%s/first\nfile://%s/second' "$bp" "$bp")" README ordered
push_app "$TEST_DIR/ordered" ordered "$TEST_DIR/ordered.out" && ok "a named list's detects run in its order" ||
    { not_ok "a named list's detects run in its order"; diag "$TEST_DIR/ordered.out"; }

# ---------------------------------------------------------------- .slugignore, subdirectory, writes, ownership
"$BERTH" apps:create mono >/dev/null
make_tree "$TEST_DIR/mono" \
    services/api/Procfile 'web: mkdir -p /app/www && cd /app/www && python3 -m http.server $PORT' \
    services/api/.slugignore '# design sources and scratch
*.psd
/docs
tmp/
' \
    services/api/www/index.html 'api-home' \
    services/api/www/art.psd 'big' \
    services/api/www/nested/deep.psd 'big' \
    services/api/docs/guide.txt 'docs' \
    services/api/www/docs/keep.txt 'kept: not at the root' \
    services/api/tmp/scratch 'tmp' \
    services/api/www/tmp 'a file named tmp is kept' \
    web/index.html 'the other service'
"$BERTH" builds:set mono dir=services/api >"$TEST_DIR/dir.out" 2>&1 || diag "$TEST_DIR/dir.out"
check "builds:set dir= prints the setting" contains "$TEST_DIR/dir.out" "dir: services/api"
push_app "$TEST_DIR/mono" mono "$TEST_DIR/mono.out" && ok "push of a monorepo with an app in services/api" ||
    { not_ok "push of a monorepo with an app in services/api"; diag "$TEST_DIR/mono.out"; }
check "the Procfile of the subdirectory is used" contains "$TEST_DIR/mono.out" "Procfile declares types -> web"
check ".slugignore reports what it removed" contains "$TEST_DIR/mono.out" ".slugignore: removed 4 paths"
wait_body mono.localhost / api-home && ok "the subdirectory's app serves" || not_ok "the subdirectory's app serves"
code() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$HTTP_PORT$2"; }
check "*.psd is gone at any depth" [ "$(code mono.localhost /art.psd)$(code mono.localhost /nested/deep.psd)" = 404404 ]
check "an anchored /docs only removes the top one" [ "$(code mono.localhost /docs/keep.txt)" = 200 ]
check "a dir/ pattern keeps a file of that name" [ "$(code mono.localhost /tmp)" = 200 ]
slug=$home/layers/admin/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["slug"])' "$home/apps/mono/releases/1.json")
check "slugs are kept per tenant (layers/admin/<sha256>)" sh -c "[ -n '$slug' ] && [ -d '$slug/app' ]"
check "the slug holds only the subdirectory" \
    sh -c "[ -f '$slug/app/Procfile' ] && [ ! -e '$slug/app/services' ] && [ ! -e '$slug/app/web' ]"
sub_base=$(awk -F: -v u="$(id -un)" '$1 == u { print $2; exit }' /etc/subuid)
check "the slug's files belong to the tenant's build user (host uid $((sub_base + 1000)))" \
    [ "$(stat -c %u "$slug/app" "$slug/app/Procfile" | sort -u)" = "$((sub_base + 1000))" ]
check "... and carry no extended attributes" \
    python3 -c 'import os,sys; sys.exit(any(os.listxattr(os.path.join(d, f), follow_symlinks=False) for d, _, fs in os.walk(sys.argv[1]) for f in fs + ["."]))' "$slug/app"
"$BERTH" builds:set mono dir=../etc >"$TEST_DIR/dirbad.out" 2>&1 && not_ok "dir=../etc is refused" || ok "dir=../etc is refused"
check "... saying why" contains "$TEST_DIR/dirbad.out" "may not contain '.' or '..'"
"$BERTH" builds:set mono dir=services/nope >/dev/null 2>&1 || true
echo more >>"$TEST_DIR/mono/web/index.html"; commit_all "$TEST_DIR/mono" "missing dir"
push_app "$TEST_DIR/mono" mono "$TEST_DIR/mono2.out" && not_ok "a push whose app dir is missing is rejected" ||
    ok "a push whose app dir is missing is rejected"
check "... naming the directory" contains "$TEST_DIR/mono2.out" "the app directory 'services/nope' is not in the pushed tree"
check "... and the app still serves" wait_body mono.localhost / api-home
"$BERTH" builds:set mono dir= >/dev/null 2>&1 || true

# A running app may write under /app (Heroku's ephemeral filesystem).
"$BERTH" apps:create scribe >/dev/null
make_tree "$TEST_DIR/scribe" Procfile 'web: python3 app.py' app.py '
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            with open("/app/notes.txt", "a") as f: f.write("x")
            os.makedirs("/app/cache/sessions", exist_ok=True)
            open("/app/cache/sessions/s1", "w").write("s")
            body = ("wrote %d" % os.path.getsize("/app/notes.txt")).encode()
        except OSError as e:
            body = ("error %s" % e).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
' cache/.keep ''
push_app "$TEST_DIR/scribe" scribe "$TEST_DIR/scribe.out" || diag "$TEST_DIR/scribe.out"
wait_body scribe.localhost / "wrote 1" && ok "an app can write files under /app" ||
    not_ok "an app can write files under /app ($(router_get scribe.localhost / 2>&1 | head -c 200))"
check "... and keeps them while it runs" wait_body scribe.localhost / "wrote 2"
"$BERTH" config:set scribe RESTART=1 >/dev/null 2>&1 || true
check "... and they vanish on restart (a new release starts from the slug)" wait_body scribe.localhost / "wrote 1"

# ---------------------------------------------------------------- the build's mount table
# A build's containers mount berth's own directories (the source, the slug,
# the cache, the buildpacks, /env); their mount table names none of them
# (the runner mounts each as an overlay of its own: a bind would show its
# host path). bin/detect (the first step's container) leaves its table in
# the app, and bin/compile prints both, with the cache written twice.
make_buildpack "$bp/mounts" 'cat /proc/self/mountinfo >"$1/mounts-detect"; echo Mounts' \
    'set -e; sed "s/^/MI detect: /" "$1/mounts-detect"; sed "s/^/MI compile: /" /proc/self/mountinfo
     echo "cached $(cat "$2/n" 2>/dev/null || echo 0)"; echo $(( $(cat "$2/n" 2>/dev/null || echo 0) + 1 )) >"$2/n"
     mkdir -p "$1/www"; echo mounts >"$1/www/index.html"' "$web_release"
"$BERTH" apps:create mounts >/dev/null
"$BERTH" buildpacks:set mounts "file://$bp/mounts" >/dev/null 2>&1 || true
make_tree "$TEST_DIR/mounts" README "mounts"
push_app "$TEST_DIR/mounts" mounts "$TEST_DIR/mounts.out" && ok "a build that prints its mount table" ||
    { not_ok "a build that prints its mount table"; diag "$TEST_DIR/mounts.out"; }
for m in detect:/src detect:/berth/slug 'detect:/berth/bpsrc/[[:alnum:]._-]+' compile:/app compile:/cache compile:/env \
    compile:/buildpacks compile:/berth/out; do
    check "bin/${m%%:*}'s table has ${m#*:}, an overlay" \
        grep -Eq "MI ${m%%:*}: [0-9]+ [0-9]+ [0-9:]+ / ${m#*:} [^ ]+ .*- overlay " "$TEST_DIR/mounts.out"
done
grep '^remote: MI ' "$TEST_DIR/mounts.out" >"$TEST_DIR/mounts.mi" || true
check "no line of either names a path of the host's test directory (berth's home, the buildpack's)" \
    not_contains "$TEST_DIR/mounts.mi" "$TEST_DIR"
check "... nor any part of berth's home layout (the build's own resolv.conf included)" \
    not_contains "$TEST_DIR/mounts.mi" "/builds/"
check "... where the build has its resolv.conf, from a tmpfs of its own" \
    grep -Eq 'MI compile: [0-9]+ [0-9]+ [0-9:]+ /resolv.conf /etc/resolv.conf ro,.* - tmpfs ' "$TEST_DIR/mounts.mi"
echo "again" >>"$TEST_DIR/mounts/README"
commit_all "$TEST_DIR/mounts" "again"
push_app "$TEST_DIR/mounts" mounts "$TEST_DIR/mounts2.out" || diag "$TEST_DIR/mounts2.out"
check "what the build wrote in /cache is there at the next build" contains "$TEST_DIR/mounts2.out" "cached 1"
wait_body mounts.localhost / mounts && ok "the app built that way serves" || not_ok "the app built that way serves"

# ---------------------------------------------------------------- a buildpack that downloads nothing
# A buildpack with a berth-offline file at its root compiles without
# outbound network: only lo in its namespace, where its twin without the
# file sees pasta's interface too. The built-in static and Procfile
# buildpacks carry the file.
net_compile='set -e; sed -n "s/^ *\([^:]*\):.*/IF \1/p" /proc/net/dev
    mkdir -p "$1/www"; echo net >"$1/www/index.html"'
make_buildpack "$bp/online" 'echo Online' "$net_compile" "$web_release"
mkdir -p "$bp/offline"
echo "This buildpack downloads nothing." >"$bp/offline/berth-offline"
make_buildpack "$bp/offline" 'echo Offline' "$net_compile" "$web_release"
for kind in online offline; do
    "$BERTH" apps:create "$kind" >/dev/null
    make_tree "$TEST_DIR/$kind" .buildpacks "file://$bp/$kind" README "$kind"
    push_app "$TEST_DIR/$kind" "$kind" "$TEST_DIR/$kind.out" && ok "a build with the $kind buildpack" ||
        { not_ok "a build with the $kind buildpack"; diag "$TEST_DIR/$kind.out"; }
    # The interfaces its compile saw, one line, as git shows them (padded with blanks).
    sed -n 's/^remote: IF \([^ ]*\) *$/\1/p' "$TEST_DIR/$kind.out" | sort | tr '\n' ' ' >"$TEST_DIR/$kind.ifs"
done
check "without berth-offline the compile has an interface besides lo ($(cat "$TEST_DIR/online.ifs"))" \
    grep -Eq '^lo [^ ]+ $|^[^ ]+ lo $' "$TEST_DIR/online.ifs"
check "with berth-offline it has lo only ($(cat "$TEST_DIR/offline.ifs"))" [ "$(cat "$TEST_DIR/offline.ifs")" = "lo " ]
wait_body offline.localhost / net && ok "the app built offline serves" || not_ok "the app built offline serves"
for b in static null; do
    check "the built-in $b buildpack carries berth-offline" [ -f "$SRCDIR/buildpacks/$b/berth-offline" ]
done

# A buildpack that downloads nothing for some apps says so per app with
# bin/berth-offline (exit 0: none for this one), run after its detect: the
# app that has no-downloads compiles with lo alone, saying so, the one
# without gets the network. In a list only the first buildpack's answer
# counts (a later one compiles what the ones before it left): there the
# second compile has the network though its hook says no too.
ifs_of() { sed -n "s/^remote: $2 \([^ ]*\) *$/\1/p" "$1" | sort | tr '\n' ' '; }
for b in asks asks2; do
    mkdir -p "$bp/$b/bin"
    printf '#!/bin/bash\n[ -f "$1/no-downloads" ]\n' >"$bp/$b/bin/berth-offline"
done
make_buildpack "$bp/asks" 'echo Asks' "$net_compile" "$web_release"
make_buildpack "$bp/asks2" 'echo Asks2' 'set -e; sed -n "s/^ *\([^:]*\):.*/IF2 \1/p" /proc/net/dev' "$web_release"
"$BERTH" apps:create hookon >/dev/null
make_tree "$TEST_DIR/hookon" .buildpacks "file://$bp/asks" README on
"$BERTH" apps:create hookoff >/dev/null
make_tree "$TEST_DIR/hookoff" .buildpacks "file://$bp/asks" no-downloads ""
"$BERTH" apps:create hooklist >/dev/null
make_tree "$TEST_DIR/hooklist" .buildpacks "file://$bp/asks
file://$bp/asks2" no-downloads ""
for app in hookon hookoff hooklist; do
    push_app "$TEST_DIR/$app" "$app" "$TEST_DIR/$app.out" && ok "a build of $app with the asking buildpack" ||
        { not_ok "a build of $app with the asking buildpack"; diag "$TEST_DIR/$app.out"; }
done
check "bin/berth-offline exit 1: the compile has an interface besides lo ($(ifs_of "$TEST_DIR/hookon.out" IF))" \
    grep -Eq '^lo [^ ]+ $|^[^ ]+ lo $' <(ifs_of "$TEST_DIR/hookon.out" IF)
check "bin/berth-offline exit 0: lo only ($(ifs_of "$TEST_DIR/hookoff.out" IF))" \
    [ "$(ifs_of "$TEST_DIR/hookoff.out" IF)" = "lo " ]
check "... saying so" contains "$TEST_DIR/hookoff.out" "Nothing to download for this app: compiling without network"
check "in a list, the first compile has lo only ($(ifs_of "$TEST_DIR/hooklist.out" IF))" \
    [ "$(ifs_of "$TEST_DIR/hooklist.out" IF)" = "lo " ]
check "... the second the network, whatever its hook says ($(ifs_of "$TEST_DIR/hooklist.out" IF2))" \
    grep -Eq '^lo [^ ]+ $|^[^ ]+ lo $' <(ifs_of "$TEST_DIR/hooklist.out" IF2)
check "the built-in python buildpack carries bin/berth-offline" [ -x "$SRCDIR/buildpacks/python/bin/berth-offline" ]

# ---------------------------------------------------------------- release phase and config_vars
"$BERTH" apps:create phased >/dev/null
make_buildpack "$bp/defaults" 'echo Defaults' 'mkdir -p "$1/www"; echo ok >"$1/www/index.html"' \
    'cat <<"YAML"
---
addons: []
config_vars:
  GREETING: from-the-buildpack
  COLOUR: blue
default_process_types:
  web: sh -c "echo $GREETING-$COLOUR > /app/www/env.txt; exec python3 -m http.server $PORT --directory /app/www"
YAML'
make_tree "$TEST_DIR/phased" .buildpacks "file://$bp/defaults" Procfile \
    'release: echo "migrating $GREETING"; echo done >/tmp/marker
web: sh -c "echo $GREETING-$COLOUR > /app/www/env.txt; exec python3 -m http.server $PORT --directory /app/www"'
"$BERTH" config:set phased COLOUR=green >/dev/null 2>&1 || true
push_app "$TEST_DIR/phased" phased "$TEST_DIR/phased.out" && ok "push with a release process" ||
    { not_ok "push with a release process"; diag "$TEST_DIR/phased.out"; }
check "the release command runs before launch" grep -Pzq 'Running release command `echo(.|\n)*migrating from-the-buildpack(.|\n)*Launching v1' "$TEST_DIR/phased.out"
check "bin/release config_vars are defaults the app's config overrides" wait_body phased.localhost /env.txt "from-the-buildpack-green"
check "the release phase is logged like a dyno" grep -q 'app\[release.1\]: migrating' "$home/apps/phased/logs/app.log"
good=$(git --git-dir="$home/apps/phased/repo.git" rev-parse refs/heads/main)
sed -i 's/^release: .*/release: echo "migration failed"; exit 3/' "$TEST_DIR/phased/Procfile"
sed -i 's/echo \$GREETING/echo v2-$GREETING/' "$TEST_DIR/phased/Procfile"
commit_all "$TEST_DIR/phased" "failing release"
push_app "$TEST_DIR/phased" phased "$TEST_DIR/phased2.out" && not_ok "a failing release command rejects the push" ||
    ok "a failing release command rejects the push"
check "... with its output" contains "$TEST_DIR/phased2.out" "migration failed"
check "... and its status" contains "$TEST_DIR/phased2.out" "the release command failed with exit status 3"
check "... the ref does not move" [ "$(git --git-dir="$home/apps/phased/repo.git" rev-parse refs/heads/main)" = "$good" ]
check "... and the previous release keeps serving" wait_body phased.localhost /env.txt "from-the-buildpack-green"
check "... with no new release recorded" [ ! -e "$home/apps/phased/releases/2.json" ]

# ---------------------------------------------------------------- the build budget
"$BERTH" apps:create hog >/dev/null
make_buildpack "$bp/hog" 'echo Hog' \
    'set -e; echo "-----> allocating"; python3 -c "import time; b = bytearray(300 << 20); time.sleep(1)"; echo survived'
make_tree "$TEST_DIR/hog" .buildpacks "file://$bp/hog" README hog
"$BERTH" builds:set hog memory=100M >"$TEST_DIR/mem.out" 2>&1 || diag "$TEST_DIR/mem.out"
check "builds:set memory= is taken from the operator" contains "$TEST_DIR/mem.out" "memory: 104857600"
( for _ in $(seq 1 100); do router_get mono.localhost / >>"$TEST_DIR/during.txt" 2>/dev/null || echo FAILED >>"$TEST_DIR/during.txt"; echo >>"$TEST_DIR/during.txt"; sleep 0.05; done ) &
during=$!
push_app "$TEST_DIR/hog" hog "$TEST_DIR/hog.out" && not_ok "a build over its memory limit is rejected" ||
    ok "a build over its memory limit is rejected"
wait "$during" || true
check "... the message names the limit" contains "$TEST_DIR/hog.out" "the build went over its memory limit of 100 MiB"
check "... it never got past the allocation" not_contains "$TEST_DIR/hog.out" "survived"
check "... while a running app kept answering every request" \
    [ "$(grep -c api-home "$TEST_DIR/during.txt")" = 100 ]
check "... and nothing of it is left" [ "$(builds_left "$home")" = 0 ]
# A buildpack that carries on after the OOM killer took one of its processes still fails.
make_buildpack "$bp/hog2" 'echo Hog' \
    'python3 -c "b = bytearray(300 << 20)"; echo "carried on"; mkdir -p "$1/www"' "$web_release"
printf 'file://%s/hog2\n' "$bp" >"$TEST_DIR/hog/.buildpacks"
commit_all "$TEST_DIR/hog" "hog2"
push_app "$TEST_DIR/hog" hog "$TEST_DIR/hog2.out" && not_ok "a build that ignores an OOM kill is rejected too" ||
    ok "a build that ignores an OOM kill is rejected too"
check "... naming the limit" contains "$TEST_DIR/hog2.out" "the build went over its memory limit of 100 MiB"
make_buildpack "$bp/filler" 'echo Filler' \
    'echo "-----> filling"; dd if=/dev/zero of="$1/big" bs=1M count=64 status=none; echo "dd exit $?"; exit 1'
make_tree "$TEST_DIR/filler" .buildpacks "file://$bp/filler" README filler
"$BERTH" apps:create filler >/dev/null
"$BERTH" builds:set filler disk=20M >/dev/null 2>&1 || true
push_app "$TEST_DIR/filler" filler "$TEST_DIR/filler.out" && not_ok "a build that fills its disk allowance is rejected" ||
    ok "a build that fills its disk allowance is rejected"
check "... the message names the allowance" contains "$TEST_DIR/filler.out" "the build went over its disk allowance of 20 MiB"
check "... and nothing of it is left" [ "$(builds_left "$home")" = 0 ]

make_buildpack "$bp/sleeper" 'echo Sleeper' 'echo "-----> sleeping"; sleep 30; echo woke'
make_tree "$TEST_DIR/sleeper" .buildpacks "file://$bp/sleeper" README sleeper
"$BERTH" apps:create sleeper >/dev/null
"$BERTH" builds:set sleeper timeout=3s >/dev/null 2>&1 || true
started=$(date +%s)
push_app "$TEST_DIR/sleeper" sleeper "$TEST_DIR/sleeper.out" && not_ok "a build over its time limit is rejected" ||
    ok "a build over its time limit is rejected"
check "... in about that time ($(( $(date +%s) - started )) s)" [ $(( $(date +%s) - started )) -lt 15 ]
check "... naming the limit" contains "$TEST_DIR/sleeper.out" "the build went over its time limit of 3 seconds"
check "... and nothing of it is left" [ "$(builds_left "$home")" = 0 ]

# ---------------------------------------------------------------- network
# The host's own services: one on loopback, one on every address.
lo_port=$(free_port)
python3 -m http.server "$lo_port" --bind 127.0.0.1 --directory "$TEST_DIR" >/dev/null 2>&1 &
lo_srv=$!
any_port=$(free_port)
python3 -m http.server "$any_port" --bind 0.0.0.0 --directory "$TEST_DIR" >/dev/null 2>&1 &
any_srv=$!
sleep 0.5
host_ips=$(ip -o addr show 2>/dev/null | awk '$3 == "inet" && $4 !~ /^127\./ {split($4, a, "/"); print a[1]}' | tr '\n' ' ')
make_buildpack "$bp/prober" 'echo Prober' "
try() { if timeout 3 bash -c \"exec 3<>/dev/tcp/\$1/\$2\" 2>/dev/null; then echo \"reached \$1:\$2\"; else echo \"blocked \$1:\$2\"; fi; }
try 127.0.0.1 $lo_port
for ip in $host_ips; do try \$ip $any_port; done
if getent hosts registry.npmjs.org >/dev/null; then try registry.npmjs.org 443; else echo 'no dns'; fi
mkdir -p \$1/www; echo probe >\$1/www/index.html" "$web_release"
"$BERTH" apps:create prober >/dev/null
make_tree "$TEST_DIR/prober" .buildpacks "file://$bp/prober" README prober
push_app "$TEST_DIR/prober" prober "$TEST_DIR/prober.out" || diag "$TEST_DIR/prober.out"
check "a build cannot reach the host's loopback services" contains "$TEST_DIR/prober.out" "blocked 127.0.0.1:$lo_port"
check "... nor the host's own addresses" not_contains "$TEST_DIR/prober.out" "reached ${host_ips%% *}"
if curl -s -m 5 -o /dev/null https://registry.npmjs.org/; then
    check "... but reaches the npm registry (outbound network)" contains "$TEST_DIR/prober.out" "reached registry.npmjs.org:443"
else
    skip "the host itself cannot reach registry.npmjs.org"
fi
kill "$lo_srv" "$any_srv" 2>/dev/null || true

# An app's own outbound network: off by default, on with net:set.
"$BERTH" apps:create caller >/dev/null
make_tree "$TEST_DIR/caller" Procfile 'web: python3 app.py' app.py '
import http.server, os, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            socket.create_connection(("registry.npmjs.org", 443), timeout=3).close(); body = b"online"
        except OSError as e:
            body = ("offline %s" % e).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
'
push_app "$TEST_DIR/caller" caller "$TEST_DIR/caller.out" || diag "$TEST_DIR/caller.out"
check "an app has no outbound network by default" wait_body caller.localhost / offline
"$BERTH" net caller >"$TEST_DIR/net.out" 2>&1 || true
check "net shows it" contains "$TEST_DIR/net.out" "outbound=off"
"$BERTH" net:set caller outbound=on >"$TEST_DIR/neton.out" 2>&1 || diag "$TEST_DIR/neton.out"
check "net:set outbound=on restarts the app" contains "$TEST_DIR/neton.out" "done"
if curl -s -m 5 -o /dev/null https://registry.npmjs.org/; then
    check "... which then reaches the outside" wait_body caller.localhost / online 15
else
    skip "the host itself cannot reach registry.npmjs.org"
fi
"$BERTH" net:set caller outbound=maybe >/dev/null 2>&1 && not_ok "net:set with a bad value is refused" ||
    ok "net:set with a bad value is refused"

stop_berth || true
done_testing
