#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Integration test of the receiver over smart HTTP with the real git client:
# receiver-test-server (an MHD thread-per-connection daemon with a deploy
# callback that streams progress and rejects trees containing REJECT) on
# 127.0.0.1, pushed to with `git push` and poked with raw curl requests.
# Prints TAP.
set -euo pipefail

SERVER=${RECEIVER_TEST_SERVER:-$(dirname "$0")/../../build/receiver/receiver-test-server}
T=$(mktemp -d /tmp/receiver-test.XXXXXX)
SERVER_PID=

cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT

n=0
failed=0
ok() {   # ok <description> <command...>: one TAP line from a command's status
    local what=$1; shift
    n=$((n + 1))
    if "$@"; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what"
        failed=$((failed + 1))
    fi
}

for tool in git curl gzip; do
    if ! command -v "$tool" >/dev/null; then
        if [ -n "${BERTH_MUST_WORK:-}" ]; then
            echo "Bail out! $tool missing"; exit 1
        fi
        echo "1..0 # SKIP $tool not installed"; exit 0
    fi
done

export GIT_CONFIG_NOSYSTEM=1 HOME=$T/home GIT_TERMINAL_PROMPT=0
# Only matters in a -Db_sanitize build: a known libgit2 leak, see lsan.supp.
# The slow unwinder is needed to see through libgit2's frames (built without
# frame pointers) up to the git_indexer_append frame the suppression names.
export LSAN_OPTIONS="suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
mkdir -p "$T/home" "$T/repos"
git config --global user.email test@example.com
git config --global user.name test
git config --global init.defaultBranch main

# 8 MiB body cap: the large push below stays under it, the raw oversize POST goes over.
"$SERVER" --deploy --max-bytes 8388608 "$T/repos" >"$T/port" 2>"$T/server.log" &
SERVER_PID=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT=$(head -n1 "$T/port")
URL=http://127.0.0.1:$PORT/app.git
BARE=$T/repos/app.git

server_ref() { git -C "$BARE" rev-parse -q --verify "$1" 2>/dev/null || echo none; }
pack_count() { find "$BARE/objects/pack" -name '*.pack' | wc -l; }
no_leftovers() {
    [ -z "$(find "$BARE" -maxdepth 2 \( -name 'incoming-*' -o -name 'receive-body-*' \))" ]
}
# Prefixes each output line with a nanosecond timestamp as it arrives.
stamp() { while IFS= read -r line; do printf '%s %s\n' "$(date +%s%N)" "$line"; done; }
line_time() { grep -m1 -F -- "$2" "$1" | cut -d' ' -f1; }

# 1. empty-repo advertisement over GET
curl -s -D "$T/adv.h" -o "$T/adv.b" "$URL/info/refs?service=git-receive-pack"
ok "advertisement starts with the service header" \
    bash -c "head -c 35 '$T/adv.b' | cmp -s - <(printf '001f# service=git-receive-pack\n0000')"
ok "empty repository advertises capabilities^{}" grep -aq 'capabilities^{}' "$T/adv.b"
ok "advertisement lists side-band-64k and report-status" \
    grep -aq 'report-status delete-refs side-band-64k quiet atomic ofs-delta push-options' "$T/adv.b"
ok "advertisement content type" grep -qi '^Content-Type: application/x-git-receive-pack-advertisement' "$T/adv.h"
ok "advertisement is not cached" grep -qi '^Cache-Control: no-cache' "$T/adv.h"

# 2. first push, with progress streamed while the deploy runs
git init -q "$T/work"
cd "$T/work"
echo hello >README
git add README
git commit -qm one
git push --progress "$URL" main 2>&1 | stamp >"$T/push1.log" || true
ok "first push creates the branch" grep -q '\* \[new branch\] *main -> main' "$T/push1.log"
ok "server ref is the pushed commit" test "$(server_ref refs/heads/main)" = "$(git rev-parse HEAD)"
ok "server repository passes fsck --full --strict" git -C "$BARE" fsck --full --strict --no-progress --no-dangling
ok "deploy progress reaches the client as remote: lines" \
    grep -q 'remote: -----> exported .* (README present)' "$T/push1.log"
ok "the deploy's settled hook runs after the ref moved, and its lines reach the client" \
    grep -q "remote: -----> settled ok, main at $(git rev-parse HEAD)" "$T/push1.log"
t_first=$(line_time "$T/push1.log" 'remote: -----> deploy starting')
t_last=$(line_time "$T/push1.log" 'remote: -----> building')
ok "progress is streamed during the deploy, not at its end (gap $(( (t_last - t_first) / 1000000 )) ms)" \
    test $((t_last - t_first)) -ge 700000000
ok "HEAD of the bare repository is main" test "$(git -C "$BARE" symbolic-ref HEAD)" = refs/heads/main

# 3. fast-forward push
echo more >>README
git commit -qam two
git push -q "$URL" main 2>"$T/push2.log" || true
ok "fast-forward push updates the ref" test "$(server_ref refs/heads/main)" = "$(git rev-parse HEAD)"
GOOD=$(git rev-parse HEAD)

# 4. a forced non-fast-forward push is accepted, as on Heroku (git's own default)
git reset -q --hard HEAD~1
echo other >other
git add other
git commit -qm diverged
if git push -f "$URL" main >"$T/push3.log" 2>&1; then r=0; else r=$?; fi
ok "forced non-fast-forward push succeeds" test "$r" -eq 0
ok "git says forced update" grep -q 'forced update' "$T/push3.log"
ok "the ref is the forced commit" test "$(server_ref refs/heads/main)" = "$(git rev-parse HEAD)"
git reset -q --hard "$GOOD"
ok "forcing the old commit back works too" git push -q -f "$URL" main
ok "... and the ref is back" test "$(server_ref refs/heads/main)" = "$GOOD"

# 5. deploy rejects a tree with REJECT
echo no >REJECT
git add REJECT
git commit -qm reject
packs=$(pack_count)
if git push --progress "$URL" main >"$T/push4.log" 2>&1; then r=0; else r=$?; fi
ok "push rejected by the deploy fails" test "$r" -ne 0
ok "deploy's reason is shown" grep -q 'deploy failed: REJECT present' "$T/push4.log"
ok "a push the deploy rejected is never settled" sh -c "! grep -q 'settled' '$T/push4.log'"
ok "ref unchanged after the deploy rejected" test "$(server_ref refs/heads/main)" = "$GOOD"
ok "no new pack in objects/pack" test "$(pack_count)" = "$packs"
ok "no quarantine or spool file left" no_leftovers
ok "rejected objects are not in the repository" \
    bash -c "! git -C '$BARE' cat-file -e $(git rev-parse HEAD) 2>/dev/null"
git reset -q --hard "$GOOD"

# 6. large push: chunked upload after the 4-byte probe
head -c 3000000 /dev/urandom >big.bin
git add big.bin
git commit -qm big
GIT_TRACE_CURL="$T/curl.trace" GIT_TRACE_CURL_NO_DATA=1 \
    git -c http.postBuffer=65536 push "$URL" main >"$T/push5.log" 2>&1 || true
ok "large push succeeds" test "$(server_ref refs/heads/main)" = "$(git rev-parse HEAD)"
ok "large push used chunked transfer encoding" grep -qi 'Transfer-Encoding: chunked' "$T/curl.trace"
ok "large push was preceded by the probe" grep -qi 'Content-Length: 4\b' "$T/curl.trace"
ok "fsck after the large push" git -C "$BARE" fsck --full --strict --no-progress --no-dangling
GOOD=$(git rev-parse HEAD)

# 7. atomic push of two refs with push options, then delete one
git push -q --atomic -o ci.skip -o foo=bar "$URL" main:refs/heads/a1 main:refs/heads/a2 2>"$T/push6.log" || true
ok "atomic push with push options creates both refs" \
    test "$(server_ref refs/heads/a1) $(server_ref refs/heads/a2)" = "$GOOD $GOOD"
git push "$URL" :a1 >"$T/push7.log" 2>&1 || true
ok "delete reports [deleted]" grep -q '\[deleted\] *a1' "$T/push7.log"
ok "deleted ref is gone" test "$(server_ref refs/heads/a1)" = none
ok "advertisement lists the remaining refs" \
    bash -c "curl -s '$URL/info/refs?service=git-receive-pack' | grep -aq 'refs/heads/a2'"

# 8. raw malformed requests store nothing
packs=$(pack_count)
post() {  # post <body-file> [curl args...]: prints the HTTP status
    local body=$1; shift
    curl -s -o "$T/resp" -w '%{http_code}' -H 'Content-Type: application/x-git-receive-pack-request' \
        --data-binary @"$body" "$@" "$URL/git-receive-pack"
}
printf 'this is not a pkt-line at all' >"$T/garbage"
ok "garbage body gets 400" test "$(post "$T/garbage")" = 400
ok "the 400 says why" grep -q 'bad pkt-line length' "$T/resp"
printf 'ffff%s' "$(head -c 100 /dev/zero | tr '\0' x)" >"$T/oversized"
ok "pkt-line longer than 65520 gets 400" test "$(post "$T/oversized")" = 400
printf '0032%s' "$(head -c 10 /dev/zero | tr '\0' x)" >"$T/truncated"
ok "truncated pkt-line gets 400" test "$(post "$T/truncated")" = 400
Z=0000000000000000000000000000000000000000
# cmd <old> <new> <ref> [caps]: one command pkt-line; caps only on the first of a list.
cmd() {
    local s="$1 $2 $3" caps=${4-}
    if [ -n "$caps" ]; then
        printf '%04x%s\0%s\n' $(( ${#s} + ${#caps} + 6 )) "$s" "$caps"
    else
        printf '%04x%s\n' $(( ${#s} + 5 )) "$s"
    fi
}
{ cmd "$GOOD" 1111111111111111111111111111111111111111 refs/heads/main report-status; printf '0000PACKgarbage'; } >"$T/badpack"
ok "bad pack: request accepted as protocol" test "$(post "$T/badpack")" = 200
ok "bad pack: report carries the unpack error" \
    bash -c "grep -a 'unpack ' '$T/resp' | grep -avq 'unpack ok'"
ok "bad pack: ref is ng" grep -aq 'ng refs/heads/main' "$T/resp"
ok "bad pack: ref unchanged" test "$(server_ref refs/heads/main)" = "$GOOD"
head -c 9000000 /dev/zero >"$T/huge"
ok "body over the cap gets 413" test "$(post "$T/huge")" = 413
# Without a length to check up front, the server drops the connection at the cap;
# curl then reports no final status (000, or the 100 Continue it saw).
code=$(post "$T/huge" -H 'Transfer-Encoding: chunked' -H 'Expect:' || true)
ok "chunked body over the cap is cut off (status '$code')" bash -c "[[ '$code' =~ ^(000|100)$ ]]"
ok "wrong content type gets 415" \
    test "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/garbage" "$URL/git-receive-pack")" = 415
ok "nothing stored by the malformed requests" test "$(pack_count)" = "$packs"
ok "no quarantine or spool file left after malformed requests" no_leftovers
printf '0000' >"$T/probe"
ok "probe 0000 gets 200" test "$(post "$T/probe")" = 200
ok "probe result is empty" test ! -s "$T/resp"

# 9. gzip request body (git does not gzip pushes, other clients may)
{ cmd $Z "$GOOD" refs/heads/gz report-status; printf '0000'; git pack-objects -q --stdout </dev/null; } | gzip >"$T/gz"
ok "gzip body accepted" test "$(post "$T/gz" -H 'Content-Encoding: gzip')" = 200
ok "gzip push reports ok" grep -aq 'ok refs/heads/gz' "$T/resp"
ok "gzip push created the ref" test "$(server_ref refs/heads/gz)" = "$GOOD"
ok "empty pack was not stored" test "$(pack_count)" = "$packs"
printf 'not gzip' >"$T/notgz"
ok "corrupt gzip body gets 400" test "$(post "$T/notgz" -H 'Content-Encoding: gzip')" = 400

# 10. atomic push where one ref is stale: nothing moves, both are ng
A2=$(server_ref refs/heads/a2)
{ cmd $Z "$GOOD" refs/heads/at1 "report-status atomic"; cmd "$Z" "$GOOD" refs/heads/a2; printf '0000'
  git pack-objects -q --stdout </dev/null; } >"$T/atomic"
ok "atomic push with a stale ref is answered" test "$(post "$T/atomic")" = 200
ok "the stale ref is ng (already exists)" grep -aq 'ng refs/heads/a2 already exists' "$T/resp"
ok "the good ref is ng too (atomic push failure)" grep -aq 'ng refs/heads/at1 atomic push failure' "$T/resp"
ok "no ref moved in the failed atomic push" \
    test "$(server_ref refs/heads/at1) $(server_ref refs/heads/a2)" = "none $A2"

# 11. side-band report framing on a raw request, and a non-branch ref
{ cmd $Z "$GOOD" refs/tags/v1 "report-status side-band-64k quiet"; printf '0000'
  git pack-objects -q --stdout </dev/null; } >"$T/tag"
post "$T/tag" >/dev/null
ok "side-band report is inside band 1 and ends with a flush" \
    bash -c "head -c 5 '$T/resp' | tail -c 1 | od -An -tx1 | grep -q 01 && tail -c 4 '$T/resp' | grep -q 0000"
ok "refs outside refs/heads/ are refused" grep -aq 'ng refs/tags/v1 funny refname' "$T/resp"

# 12. a client that disconnects during the deploy does not hurt the server
echo later >>README
git commit -qam later
timeout 0.5 git push "$URL" main:refs/heads/gone >/dev/null 2>&1 || true
sleep 2
ok "server survives a client disconnecting mid-deploy" kill -0 "$SERVER_PID"
ok "no quarantine or spool file left after the disconnect" no_leftovers
ok "the next push still works" bash -c "git push -q '$URL' main:refs/heads/after 2>/dev/null"

# 13. a deploy silent for longer than the keepalive interval: empty band-1 packets keep the line busy
echo slow >SLOW
git add SLOW
git commit -qm slow
NEW=$(git rev-parse HEAD)
{ cmd $Z "$NEW" refs/heads/slow "report-status side-band-64k"; printf '0000'
  printf '%s\n^%s\n' "$NEW" "$GOOD" | git pack-objects -q --revs --stdout; } >"$T/slow"
ok "slow deploy push is answered" test "$(post "$T/slow")" = 200
ok "keepalive packets were sent during the silence" grep -aqF $'0005\x01' "$T/resp"
ok "the report after the keepalives is intact" grep -aq 'ok refs/heads/slow' "$T/resp"
ok "slow ref created" test "$(server_ref refs/heads/slow)" = "$NEW"

# 13. two pushes to one branch at once: one wins, the other is refused as
# stale, and no release could have deployed without its ref moving
git push -q "$URL" "$GOOD:refs/heads/race" 2>/dev/null || true
git checkout -q -b r1 "$GOOD"; echo one >race1; git add race1; git commit -qm race1
git checkout -q -b r2 "$GOOD"; echo two >race2; git add race2; git commit -qm race2
git push --progress "$URL" r1:race >"$T/race1.log" 2>&1 & race1=$!
git push --progress "$URL" r2:race >"$T/race2.log" 2>&1 & race2=$!
r1=0; wait "$race1" || r1=$?
r2=0; wait "$race2" || r2=$?
ok "of two concurrent pushes exactly one succeeds ($r1, $r2)" \
    bash -c "[ \$(( ($r1 == 0) + ($r2 == 0) )) -eq 1 ]"
ok "the loser waited for the winner and was refused as stale" \
    bash -c "cat '$T/race1.log' '$T/race2.log' | grep -q 'Waiting for another push' &&
             cat '$T/race1.log' '$T/race2.log' | grep -q 'stale info'"
winner=r1; [ "$r1" -eq 0 ] || winner=r2
ok "the branch holds the winner's commit" test "$(server_ref refs/heads/race)" = "$(git rev-parse $winner)"
git checkout -q main 2>/dev/null || git checkout -q -

# 13b. housekeeping: libgit2 adds a pack per push; git gc --auto folds them
# once there are more than gc.autoPackLimit (lowered here from 50 to 3).
# git runs after the client has its report, so each count is polled for.
git -C "$BARE" config gc.autoPackLimit 3
git checkout -q -b gc "$(server_ref refs/heads/main)"
before=$(pack_count); counts=
for i in 1 2 3 4 5; do
    echo "gc $i" >"gc$i"; git add "gc$i"; git commit -qm "gc $i"
    git push -q "$URL" gc 2>>"$T/gc.log" || echo "push $i failed" >>"$T/gc.log"
    for _ in $(seq 100); do [ "$(pack_count)" -le 3 ] && break; sleep 0.1; done
    counts="$counts $(pack_count)"
done
ok "the earlier sections left more than 3 packs ($before)" test "$before" -gt 3
ok "with gc.autoPackLimit=3, packs stay at 3 or fewer after each of five pushes:$counts" \
    bash -c "for c in $counts; do [ \$c -le 3 ] || exit 1; done"
ok "... every push succeeded" bash -c "! grep -q failed '$T/gc.log'"
ok "... the branch holds the last commit" test "$(server_ref refs/heads/gc)" = "$(git rev-parse HEAD)"
ok "... and the repository passes fsck --full --strict" git -C "$BARE" fsck --full --strict --no-progress --no-dangling
echo "gc 6" >gc6; git add gc6; git commit -qm "gc 6"
ok "a push after the housekeeping succeeds" git push -q "$URL" gc
git checkout -q main 2>/dev/null || git checkout -q -

# 13b. a large file is exported whole, streamed rather than read into memory
head -c $((6 << 20)) /dev/urandom >BIG
git add BIG; git commit -qm big
git push "$URL" main >"$T/big.log" 2>&1 || true
ok "a push with a 6 MiB file deploys" test "$(server_ref refs/heads/main)" = "$(git rev-parse HEAD)"
ok "... and the exported file is the pushed one, byte for byte" \
    grep -q "remote: -----> BIG $((6 << 20)) $(sha256sum BIG | cut -d' ' -f1)" "$T/big.log"
git rm -q BIG; git commit -qm "no big"; git push -q "$URL" main 2>/dev/null || true

# 14. clone and fetch back (upload-pack)
curl -s -D "$T/uadv.h" -o "$T/uadv.b" "$URL/info/refs?service=git-upload-pack"
ok "upload-pack advertisement starts with its service header" \
    bash -c "head -c 34 '$T/uadv.b' | cmp -s - <(printf '001e# service=git-upload-pack\n0000')"
ok "upload-pack advertisement content type" grep -qi '^Content-Type: application/x-git-upload-pack-advertisement' "$T/uadv.h"
ok "git clone works" git clone -q "$URL" "$T/clone"
ok "the clone's main is the server's" test "$(git -C "$T/clone" rev-parse HEAD)" = "$(server_ref refs/heads/main)"
ok "the clone passes fsck --full --strict" git -C "$T/clone" fsck --full --strict --no-progress --no-dangling
echo fetched >fetched; git add fetched; git commit -qm fetched
git push -q "$URL" main
ok "git fetch brings the new commit" git -C "$T/clone" fetch -q origin
ok "... and origin/main is it" test "$(git -C "$T/clone" rev-parse origin/main)" = "$(git rev-parse HEAD)"
ok "a want that is no branch tip is refused" bash -c \
    "printf '0032want %040d\n00000009done\n' 7 | curl -s -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @- '$URL/git-upload-pack' | grep -aq 'ERR upload-pack: not our ref'"

# The last push's housekeeping (git gc under the push lock) may still run.
flock "$BARE/berth-push.lock" true
ok "final fsck --full --strict" git -C "$BARE" fsck --full --strict --no-progress --no-dangling
# 15. a tip that is not a commit is refused from the object's header: a
# 128 MiB blob of zeros (a pack of ~130 KB) never reaches the server's memory
big_blob=$(head -c $((128 << 20)) /dev/zero | git hash-object -w --stdin)
{ cmd $Z "$big_blob" refs/heads/blobtip report-status; printf '0000'
  echo "$big_blob" | git pack-objects -q --stdout; } >"$T/blobtip"
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"; }
hwm_before=$(hwm)
post "$T/blobtip" >/dev/null
hwm_after=$(hwm)
ok "a big blob as a branch tip is refused (not a commit)" grep -aq 'ng refs/heads/blobtip not a commit' "$T/resp"
ok "... and the server's peak RSS stays small ($hwm_before -> $hwm_after KiB)" \
    test "$hwm_after" -lt $((hwm_before + 64 * 1024))
ok "... and no ref was made" test "$(server_ref refs/heads/blobtip)" = none

# 16. names that clash as file and directory (git's rule), with a fresh repository
DF_URL=http://127.0.0.1:$PORT/df.git DF_BARE=$T/repos/df.git
df_ref() { git --git-dir="$DF_BARE" rev-parse -q --verify "$1" 2>/dev/null || echo none; }
# A small history of its own: this one's large files would go over the 8 MiB cap.
git init -q -b main "$T/dfw"; cd "$T/dfw"
echo hello >README; git add README; git commit -qm df0
git push -q "$DF_URL" main main:refs/heads/feature 2>/dev/null
echo df >df; git add df; git commit -qm df
git push "$DF_URL" main HEAD:refs/heads/feature/x >"$T/df1.log" 2>&1 || true
ok "non-atomic push: main lands although feature/x clashes with feature" \
    test "$(df_ref refs/heads/main)" = "$(git rev-parse HEAD)"
ok "... feature/x is refused before anything is written" \
    grep -q "feature/x ('refs/heads/feature' exists; cannot create 'refs/heads/feature/x')" "$T/df1.log"
ok "... and the deploy settles with main landed" grep -q "remote: -----> settled ok, main at $(git rev-parse HEAD), main landed" "$T/df1.log"
DF_MAIN=$(df_ref refs/heads/main)
echo df2 >df; git commit -qam df2
rc=0; git push --atomic "$DF_URL" main HEAD:refs/heads/q HEAD:refs/heads/q/r >"$T/df2.log" 2>&1 || rc=$?
ok "atomic push of q and q/r (clashing with each other) fails" test "$rc" -ne 0
ok "... and no ref moved: main, q and q/r as before" \
    test "$(df_ref refs/heads/main) $(df_ref refs/heads/q) $(df_ref refs/heads/q/r)" = "$DF_MAIN none none"
ok "... q and q/r say why" grep -q "cannot update 'refs/heads/q' and 'refs/heads/q/r' in one push" "$T/df2.log"
ok "... and the deploy never ran" sh -c "! grep -q 'deploy starting' '$T/df2.log'"
git push "$DF_URL" main HEAD:refs/heads/q HEAD:refs/heads/q/r >"$T/df3.log" 2>&1 || true
ok "non-atomic: main lands, neither q nor q/r is created" \
    test "$(df_ref refs/heads/main) $(df_ref refs/heads/q) $(df_ref refs/heads/q/r)" = "$(git rev-parse HEAD) none none"

# 17. main lands and another ref fails at its write (a stale lock file):
# the settled hook learns main's own outcome, not just "not all landed"
echo df3 >df; git commit -qam df3
touch "$DF_BARE/refs/heads/locked.lock"
git push "$DF_URL" main HEAD:refs/heads/locked >"$T/df4.log" 2>&1 || true
ok "main lands while 'locked' fails to write" \
    test "$(df_ref refs/heads/main) $(df_ref refs/heads/locked)" = "$(git rev-parse HEAD) none"
ok "... settled says not all landed, and main landed" \
    grep -q "remote: -----> settled failed, main at $(git rev-parse HEAD), main landed" "$T/df4.log"
echo df4 >df; git commit -qam df4
rc=0; git push --atomic "$DF_URL" main HEAD:refs/heads/locked >"$T/df5.log" 2>&1 || rc=$?
ok "an atomic push with the lock in the way fails and moves nothing" \
    test "$rc:$(df_ref refs/heads/main)" = "1:$(git rev-parse HEAD~1)"
ok "... and settled says main did not land" grep -q "settled failed, main at $(git rev-parse HEAD~1), main not landed" "$T/df5.log"
rm -f "$DF_BARE/refs/heads/locked.lock"
cd - >/dev/null

# 18. objects over the caps (push.h), each pushed by the real git client to
# a branch of its own (the server deploys every branch): refused with a
# clear message, no branch made, the server's peak RSS hardly moved, and
# the next good push deploys. The packs stay small (zeros and repeated
# entries compress), far under the 8 MiB cap.
git init -q -b main "$T/caps"; cd "$T/caps"
echo caps >README; git add README; git commit -qm caps0
CAPS_URL=http://127.0.0.1:$PORT/caps.git CAPS_BARE=$T/repos/caps.git
caps_ref() { git --git-dir="$CAPS_BARE" rev-parse -q --verify "refs/heads/$1" 2>/dev/null || echo none; }
git push -q "$CAPS_URL" main 2>/dev/null
# bad_push <name> <expected message> <commit>: pushes the commit (never
# checked out: some of these trees hold a billion files) to a new branch.
caps_n=0
bad_push() {
    local name=$1 msg=$2 commit=$3 h0 h1 rc=0
    caps_n=$((caps_n + 1))
    h0=$(hwm)
    timeout 120 git push "$CAPS_URL" "$commit:refs/heads/bad$caps_n" >"$T/caps-$caps_n.log" 2>&1 || rc=$?
    h1=$(hwm)
    ok "$name: the push is refused" test "$rc" -ne 0
    ok "$name: ... saying why" grep -qF -- "$msg" "$T/caps-$caps_n.log"
    ok "$name: ... no branch made" test "$(caps_ref "bad$caps_n")" = none
    ok "$name: ... the server's peak RSS grew by under 64 MiB ($h0 -> $h1 KiB)" test "$h1" -lt $((h0 + 64 * 1024))
    echo "after $name" >>README; git commit -qam "after $name"
    ok "$name: ... and the next good push deploys" git push -q "$CAPS_URL" main
}
head -c $((5 << 20)) /dev/zero | tr '\0' m >"$T/msg"
bad_push "a commit of 5 MiB" "bytes is over the limit of 4194304 bytes" \
    "$(git commit-tree -p HEAD -F "$T/msg" HEAD^{tree})"
blob=$(git rev-parse HEAD:README)
# 80,000 entries with 200-byte names: 228 bytes each
tree=$(seq 0 79999 | awk -v b="$blob" '{ printf "100644 blob %s\tf%07d%0192d\n", b, $1, 0 }' | git mktree)
bad_push "a tree of 18 MB" "a tree of 18240000 bytes is over the limit of 16777216 bytes" \
    "$(git commit-tree -p HEAD -m "a big tree" "$tree")"
head -c $((120 << 20)) /dev/zero >z1; { cat z1; echo x; } >z2; git add z1 z2; git commit -qm "two big files"
big=$(git rev-parse HEAD); git reset -q --hard HEAD~1; rm -f z1 z2
bad_push "a 120 MiB file deltified against another" "over the limit of 100 MiB for a deltified object" "$big"
t=$(printf '100644 blob %s\tf\n' "$blob" | git mktree)
for _ in 1 2 3; do t=$(for i in $(seq -w 0 999); do printf '040000 tree %s\td%s\n' "$t" "$i"; done | git mktree); done
bad_push "a tree of a billion files (four small trees)" "the tree holds more than 1000000 files and directories" \
    "$(git commit-tree -p HEAD -m "a tree bomb" "$t")"
cd - >/dev/null

ok "server is still running" kill -0 "$SERVER_PID"

# The server stops cleanly on SIGTERM; under -Db_sanitize=address it also
# reports leaks and memory errors into its log here.
kill -TERM "$SERVER_PID"
if wait "$SERVER_PID"; then r=0; else r=$?; fi
SERVER_PID=
ok "server exits 0 on SIGTERM" test "$r" -eq 0
ok "server log has no sanitizer report" bash -c "! grep -Eq 'Sanitizer|runtime error' '$T/server.log'"
if [ "$failed" -ne 0 ]; then
    sed 's/^/# server: /' "$T/server.log" | head -n 200
fi

echo "1..$n"
[ "$failed" -eq 0 ]
