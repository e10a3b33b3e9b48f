#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The receiver through a real `berth serve` and the real git client, over
# both transports: smart HTTP, and SSH through a real sshd from Debian on
# a loopback port (its own host key and config, AuthorizedKeysFile the file
# berth writes, $BERTH_AUTHORIZED_KEYS). Covers pushes to a branch other
# than the deploy branch (stored, no build), clone and fetch back (tree
# identical, fsck --strict clean), `berth git:clone`, force pushes,
# deletes, --atomic (all or nothing, server side), -o push options, a real
# deploy over ssh (and the deploy branch's delete refused), keys (add,
# one key one tenant, list, remove), berth commands over ssh, and
# cross-tenant refusals. Bad input: malformed and oversized pkt-lines, a
# truncated pack, invalid ref names, a stale old value, a client gone in
# the middle of the pack (HTTP and ssh), a commit over its size cap and a
# tree bomb (with berth serve's peak memory), an unknown key, shell
# metacharacters: each refused with a clear message, the refs as they
# were, no quarantine left. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$SSHD" ] || skip_all "sshd is needed (the Debian package openssh-server, in tools/packages.txt)"
command -v ssh-keygen >/dev/null || skip_all "ssh is needed (openssh-client)"
export BERTH_AUTHORIZED_KEYS=$TEST_DIR/authorized_keys
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
serve_for_test
sshd_pid=
stop_sshd() { [ -z "$sshd_pid" ] || kill "$sshd_pid" 2>/dev/null || true; }
# cleanup (libtest.sh) exits with the status it finds in $?.
trap 'st=$?; stop_sshd; (exit $st); cleanup' EXIT

"$BERTH" apps:create recv >/dev/null
URL="http://x:$BERTH_TOKEN@127.0.0.1:$CONTROL_PORT/recv.git"
BARE=$home/apps/recv/repo.git
refs() { git ls-remote "$URL" 2>/dev/null | sort; }
no_quarantine() { [ -z "$(find "$BARE" -maxdepth 2 \( -name 'incoming-*' -o -name 'receive-body-*' \))" ]; }

src=$TEST_DIR/src
mkdir -p "$src"
for d in 0 1 2 3; do mkdir -p "$src/d$d"; for f in 0 1 2 3 4 5 6 7 8 9; do seq "$d$f" 400 >"$src/d$d/f$f"; done; done
git -C "$src" init -q -b main
commit_all "$src" c1

# ---------------------------------------------------------------- HTTP
run_git() { rc=0; "$@" >"$out" 2>&1 || rc=$?; }
run_git git -C "$src" push "$URL" main:refs/heads/store
check "a push to branch 'store' is accepted" test "$rc" = 0
check "... stored without a deploy, and git is told so" contains "$out" "Storing branch 'store'"
check "... and nothing was built (no release)" bash -c "! '$BERTH' releases recv 2>/dev/null | grep -q '^v1'"
run_git git clone -q -b store "$URL" "$TEST_DIR/clone"
check "git clone -b store over HTTP" test "$rc" = 0
check "... the cloned tree is the pushed tree" \
    test "$(git -C "$TEST_DIR/clone" rev-parse 'HEAD^{tree}')" = "$(git -C "$src" rev-parse 'HEAD^{tree}')"
check "... and passes fsck --full --strict" git -C "$TEST_DIR/clone" fsck --full --strict --no-progress
run git:clone recv "$TEST_DIR/clone2"
check "berth git:clone APP DIR" test "$rc" = 0 -a -f "$TEST_DIR/clone2/.git/config"
check "... the clone has branch store" git -C "$TEST_DIR/clone2" rev-parse -q --verify berth/store
check "... and no token in its config" not_contains "$TEST_DIR/clone2/.git/config" "$BERTH_TOKEN"

echo more >>"$src/d1/f1"; commit_all "$src" c2
git -C "$src" push -q "$URL" main:refs/heads/store 2>/dev/null
run_git git -C "$TEST_DIR/clone" fetch origin
check "git fetch brings the new commit" \
    test "$(git -C "$TEST_DIR/clone" rev-parse origin/store)" = "$(git -C "$src" rev-parse HEAD)"
check "... and the repository is still fsck-clean" git -C "$TEST_DIR/clone" fsck --full --strict --no-progress

git -C "$src" checkout -q -b side HEAD~1
echo side >"$src/side"; commit_all "$src" side
run_git git -C "$src" push -f "$URL" side:refs/heads/store
check "a forced non-fast-forward push is accepted" test "$rc" = 0
check "... and git says forced update" contains "$out" "forced update"
check "... the branch is the forced commit" test "$(git --git-dir="$BARE" rev-parse store)" = "$(git -C "$src" rev-parse side)"
git -C "$src" checkout -q main

run_git git -C "$src" push -o checks=skip -o foo=bar "$URL" main:refs/heads/opts
check "push options are taken (-o checks=skip -o foo=bar)" test "$rc" = 0
run_git git -C "$src" push "$URL" :refs/heads/opts
check "deleting a branch other than the deploy branch works" test "$rc" = 0
check "... and it is gone" bash -c "! git --git-dir='$BARE' rev-parse -q --verify refs/heads/opts"

# Raw requests: COMMANDS (one per line), then a pack from stdin; the answer in $out.
raw_push() { # raw_push CAPS CMD... < pack
    local caps=$1 first=1 c; shift
    {
        for c in "$@"; do
            if [ $first = 1 ]; then
                printf '%04x%s\0%s\n' $((${#c} + ${#caps} + 6)) "$c" "$caps"; first=0
            else
                printf '%04x%s\n' $((${#c} + 5)) "$c"
            fi
        done
        printf 0000
        cat
    } >"$TEST_DIR/raw.req"
    status=$(curl -s -m 30 -o "$out" -w '%{http_code}' -H 'Content-Type: application/x-git-receive-pack-request' \
        --data-binary @"$TEST_DIR/raw.req" "$URL/git-receive-pack")
}
Z=0000000000000000000000000000000000000000
S=$(git --git-dir="$BARE" rev-parse store)
empty_pack() { git -C "$src" pack-objects -q --stdout </dev/null; }
before=$(refs)
empty_pack | raw_push "report-status atomic" "$Z $S refs/heads/atomic1" "$Z $S refs/heads/store"
check "--atomic: one update fails (store exists), so none is made" \
    bash -c "grep -aq 'ng refs/heads/atomic1 atomic push failure' '$out' && grep -aq 'ng refs/heads/store' '$out'"
check "... the refs are as they were" test "$(refs)" = "$before"
empty_pack | raw_push "report-status" "$Z $S refs/heads/plain1" "$Z $S refs/heads/store"
check "without --atomic the good update is made and the bad one refused" \
    bash -c "grep -aq 'ok refs/heads/plain1' '$out' && grep -aq 'ng refs/heads/store already exists' '$out'"
git -C "$src" push -q "$URL" :refs/heads/plain1 2>/dev/null
before=$(refs)
for name in 'refs/heads/a..b' 'refs/heads/../x' "refs/heads/x$(printf '\001')y" 'refs/tags/t1' 'HEAD'; do
    empty_pack | raw_push "report-status" "$Z $S $name"
    check "invalid ref name '$(printf '%q' "$name")' is refused" grep -aq "ng .* funny refname" "$out"
done
check "... and no ref was made" test "$(refs)" = "$before"
M=$(git -C "$src" rev-parse main)
empty_pack | raw_push "report-status" "$M $S refs/heads/store"
check "a stale old value is refused (stale info)" grep -aq 'ng refs/heads/store stale info' "$out"
printf '%s\n^%s\n' "$M" "$S" | git -C "$src" pack-objects -q --revs --stdout >"$TEST_DIR/pack"
head -c 40 "$TEST_DIR/pack" | raw_push "report-status side-band-64k" "$S $M refs/heads/store"
check "a truncated pack is refused with an unpack error" bash -c "! grep -aq 'unpack ok' '$out' && grep -aq 'unpack ' '$out'"
printf 'PACK\0\0\0\2\0\0\0\1' | raw_push "report-status" "$S $M refs/heads/store"
check "a pack announcing an object it lacks is refused" bash -c "! grep -aq 'unpack ok' '$out'"
# A whole pack that leaves out a blob the new commit's tree needs.
echo missing >"$src/missing.txt"; commit_all "$src" "with a blob left out of the pack"
Mx=$(git -C "$src" rev-parse HEAD)
gone=$(git -C "$src" rev-parse HEAD:missing.txt)
git -C "$src" rev-list --objects "$Mx" --not "$S" | grep -v "^$gone" | cut -d' ' -f1 |
    git -C "$src" pack-objects -q --stdout >"$TEST_DIR/holey"
raw_push "report-status" "$S $Mx refs/heads/store" <"$TEST_DIR/holey"
check "a pack missing an object the commit needs is refused" bash -c "grep -aq 'ng refs/heads/store' '$out'"
check "... and the branch did not move" test "$(git --git-dir="$BARE" rev-parse store)" = "$S"
git -C "$src" reset -q --hard HEAD~1
status=$(printf 'zzzz' | curl -s -o "$out" -w '%{http_code}' -H 'Content-Type: application/x-git-receive-pack-request' \
    --data-binary @- "$URL/git-receive-pack")
check "a malformed pkt-line length gets 400 ($status)" test "$status" = 400
check "... saying so" contains "$out" "bad pkt-line length"
status=$(printf 'fff0xxxx' | curl -s -o "$out" -w '%{http_code}' -H 'Content-Type: application/x-git-receive-pack-request' \
    --data-binary @- "$URL/git-receive-pack")
check "an oversized pkt-line gets 400 ($status)" test "$status" = 400
# A client that goes away in the middle of its body: the request never runs.
python3 - "$CONTROL_PORT" "$BERTH_TOKEN" <<'EOF'
import base64, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
auth = base64.b64encode(b"x:" + sys.argv[2].encode()).decode()
s.sendall(("POST /recv.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
           "Content-Type: application/x-git-receive-pack-request\r\nContent-Length: 100000\r\n\r\n" % auth).encode())
s.sendall(b"0000" + b"PACK" + b"\0" * 100)
time.sleep(0.3)
s.close()
EOF
sleep 0.5
# Objects over the receiver's caps (receiver/push.h), by the real git client:
# a commit of 5 MiB (refused as the pack streams in) and, to the deploy
# branch, a tree naming a billion files through four small trees (refused
# by the export, before anything is built or written): each refused with a
# clear message while berth serve's peak memory hardly moves.
serve_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$serve_pid/status"; }
hwm0=$(serve_hwm)
head -c $((5 << 20)) /dev/zero | tr '\0' m >"$TEST_DIR/msg"
id_git() { git -C "$src" -c user.email=t@example.com -c user.name=test "$@"; }
run_git git -C "$src" push "$URL" "$(id_git commit-tree -p main -F "$TEST_DIR/msg" 'main^{tree}'):refs/heads/big"
check "a commit of 5 MiB is refused" test "$rc" != 0
check "... saying why" contains "$out" "is over the limit of 4194304 bytes"
t=$(printf '100644 blob %s\tf\n' "$(git -C "$src" rev-parse main:d0/f0)" | git -C "$src" mktree)
for _ in 1 2 3; do t=$(for i in $(seq -w 0 999); do printf '040000 tree %s\td%s\n' "$t" "$i"; done | git -C "$src" mktree); done
run_git timeout 120 git -C "$src" push "$URL" "$(id_git commit-tree -p main -m bomb "$t"):refs/heads/main"
check "a tree of a billion files pushed to the deploy branch is refused" test "$rc" != 0
check "... saying why" contains "$out" "the tree holds more than 1000000 files and directories"
check "... and berth serve's peak RSS grew by under 64 MiB ($hwm0 -> $(serve_hwm) KiB)" \
    test "$(serve_hwm)" -lt $((hwm0 + 64 * 1024))
check "after every bad push the refs are as they were" test "$(refs)" = "$before"
check "... and no quarantine or spooled body is left" no_quarantine
check "... and the repository passes fsck --strict" git --git-dir="$BARE" fsck --strict --no-progress
code=$(curl -s -o /dev/null -w '%{http_code}' "http://x:wrong@127.0.0.1:$CONTROL_PORT/recv.git/info/refs?service=git-upload-pack")
check "a clone with a wrong token gets 401" test "$code" = 401

# ---------------------------------------------------------------- slow clients
# 300 connections to the control port, each sending one byte every 2 s and
# never a whole request: the guard keeps 64 anonymous ones per address and
# cuts each at 10 s; meanwhile the API and a push answer promptly.
python3 - "$CONTROL_PORT" >"$TEST_DIR/slow.out" <<'EOF2' &
import socket, sys, time
port = int(sys.argv[1]); socks = []
for _ in range(300):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5); s.setblocking(False); socks.append(s)
    except OSError:
        pass
start = time.time(); closed_at = {}
while time.time() - start < 16 and len(closed_at) < len(socks):
    for i, s in enumerate(socks):
        if i in closed_at:
            continue
        try:
            s.send(b"G")
            if s.recv(1) == b"":
                closed_at[i] = time.time() - start
        except BlockingIOError:
            pass
        except OSError:
            closed_at[i] = time.time() - start
    time.sleep(2)
early = sum(1 for t in closed_at.values() if t < 3)
print(len(socks), len(closed_at), early, max(closed_at.values() or [0]))
EOF2
slow_pid=$!
sleep 2
t0=$(date +%s%N)
run apps:list
t1=$(date +%s%N)
check "with 300 trickling connections open, apps:list answers ($(( (t1 - t0) / 1000000 )) ms)" \
    bash -c "[ $rc = 0 ] && [ $(( (t1 - t0) / 1000000 )) -lt 3000 ] && grep -q recv '$out'"
echo slow >"$src/slow.txt"; commit_all "$src" slow
t0=$(date +%s%N)
run_git git -C "$src" push "$URL" main:refs/heads/during-slow
t1=$(date +%s%N)
check "... and a push goes through ($(( (t1 - t0) / 1000000 )) ms)" bash -c "[ $rc = 0 ] && [ $(( (t1 - t0) / 1000000 )) -lt 10000 ]"
wait $slow_pid || true
read -r opened closed early last <"$TEST_DIR/slow.out" || true
check "... the server closed every trickling connection ($closed of $opened; $early within 3 s, the last at ${last%.*} s)" \
    test "${closed:-0}" = "${opened:-x}" -a "${early:-0}" -ge 200
git -C "$src" reset -q --hard HEAD~1

# ---------------------------------------------------------------- SSH
run tenants:create acme; T_ACME=$(grep -oE '[a-f0-9]{64}' "$out" | tail -1)
run tenants:create rival; T_RIVAL=$(grep -oE '[a-f0-9]{64}' "$out" | tail -1)
ssh-keygen -q -t ed25519 -N '' -C acme-key -f "$TEST_DIR/acme"
ssh-keygen -q -t ed25519 -N '' -f "$TEST_DIR/rival"
ssh-keygen -q -t ed25519 -N '' -f "$TEST_DIR/stranger"
ssh-keygen -q -t ed25519 -N '' -f "$TEST_DIR/hostkey"
run keys:add acme "$TEST_DIR/acme.pub"
check "keys:add TENANT KEYFILE (admin)" test "$rc" = 0
check "... names the key's fingerprint as ssh-keygen does" \
    contains "$out" "$(ssh-keygen -lf "$TEST_DIR/acme.pub" | awk '{print $2}')"
run keys:add rival "$TEST_DIR/acme.pub"
check "the same key for another tenant is refused (exit 1)" test "$rc" = 1
check "... saying one key, one tenant" contains "$err" "one key, one tenant"
rc=0; BERTH_TOKEN=$T_RIVAL "$BERTH" keys:add "$TEST_DIR/rival.pub" >"$out" 2>"$err" || rc=$?
check "a tenant adds its own key" test "$rc" = 0
rc=0; BERTH_TOKEN=$T_RIVAL "$BERTH" keys:add acme "$TEST_DIR/stranger.pub" >"$out" 2>"$err" || rc=$?
check "a tenant cannot add a key for another tenant (exit 1)" test "$rc" = 1
echo "ssh-ed25519 notbase64!!" >"$TEST_DIR/bad.pub"
run keys:add acme "$TEST_DIR/bad.pub"
check "a file that is no public key is refused" test "$rc" = 1 -a -s "$err"
check "authorized_keys has one forced-command line per key, restricted" \
    test "$(grep -c "git-shell --socket '.*' '[a-z]*'\",restrict ssh-ed25519" "$BERTH_AUTHORIZED_KEYS")" = 2
check "... and the key file is 0600" test "$(stat -c %a "$BERTH_AUTHORIZED_KEYS")" = 600
rc=0; BERTH_TOKEN=$T_RIVAL "$BERTH" keys >"$out" 2>&1 || rc=$?
check "keys lists a tenant's own keys only" bash -c "grep -q rival '$out' && ! grep -q acme '$out'"
rc=0; BERTH_TOKEN=$T_ACME "$BERTH" apps:create acmeapp >/dev/null 2>&1 || rc=$?
rc=0; BERTH_TOKEN=$T_RIVAL "$BERTH" apps:create rivalapp >/dev/null 2>&1 || rc=$?

SSH_PORT=$(free_port)
cat >"$TEST_DIR/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $TEST_DIR/hostkey
PidFile $TEST_DIR/sshd.pid
AuthorizedKeysFile $BERTH_AUTHORIZED_KEYS
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
EOF
"$SSHD" -f "$TEST_DIR/sshd_config" -E "$TEST_DIR/sshd.log"
for _ in $(seq 50); do [ -s "$TEST_DIR/sshd.pid" ] && break; sleep 0.1; done
sshd_pid=$(cat "$TEST_DIR/sshd.pid" 2>/dev/null || true)
check "a real sshd listens on 127.0.0.1:$SSH_PORT" test -n "$sshd_pid"
ME=$(id -un)
sshopts() { echo "ssh -i $TEST_DIR/$1 -p $SSH_PORT -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"; }
as() { local key=$1; shift; rc=0; $(sshopts "$key") "$ME@127.0.0.1" "$@" >"$out" 2>"$err" </dev/null || rc=$?; }
git_as() { local key=$1; shift; rc=0; GIT_SSH_COMMAND=$(sshopts "$key") "$@" >"$out" 2>&1 || rc=$?; }
SSH_URL="ssh://$ME@127.0.0.1/acmeapp.git"

git_as acme git -C "$src" push "$SSH_URL" main:refs/heads/store
check "git push over ssh to another branch (ssh://USER@HOST/APP.git)" test "$rc" = 0
check "... stored without a deploy, said through the ssh session" contains "$out" "Storing branch 'store'"
git_as acme git -C "$src" push -f "$ME@127.0.0.1:acmeapp.git" side:refs/heads/store
check "a forced push over ssh (USER@HOST:APP.git)" test "$rc" = 0
git_as acme git clone -q -b store "$SSH_URL" "$TEST_DIR/sclone"
check "git clone over ssh" test "$rc" = 0
check "... the tree is the pushed one" \
    test "$(git -C "$TEST_DIR/sclone" rev-parse 'HEAD^{tree}')" = "$(git -C "$src" rev-parse 'side^{tree}')"
check "... and passes fsck --full --strict" git -C "$TEST_DIR/sclone" fsck --full --strict --no-progress
git_as acme git -C "$src" push "$SSH_URL" main:refs/heads/more
git_as acme git -C "$TEST_DIR/sclone" fetch origin
check "git fetch over ssh brings a new branch" \
    test "$(git -C "$TEST_DIR/sclone" rev-parse origin/more 2>/dev/null)" = "$(git -C "$src" rev-parse main)"
git_as acme git -C "$src" push --atomic "$SSH_URL" main:refs/heads/at1 main:refs/heads/at2
check "an --atomic push over ssh" test "$rc" = 0 -a "$(git --git-dir="$home/apps/acmeapp/repo.git" rev-parse at2)" = "$M"
git_as acme git -C "$src" push "$SSH_URL" :refs/heads/at1
check "a delete over ssh" bash -c "! git --git-dir='$home/apps/acmeapp/repo.git' rev-parse -q --verify at1"

# a real deploy over ssh, with a push option
greet=$TEST_DIR/greet
make_repo "$SRCDIR/tests/apps/greet" "$greet"
git_as acme git -C "$greet" push -o checks=skip -o color=blue "$SSH_URL" main
check "a push of main over ssh deploys" test "$rc" = 0
check "... its build output reaches git through ssh" contains "$out" "Released v1"
check "... an unknown push option is named as ignored" contains "$out" "push option 'color=blue' ignored"
check "... the app serves" wait_body acmeapp.localhost / "greeting" 20
git_as acme git -C "$greet" push "$SSH_URL" :main
check "deleting the deploy branch is refused" test "$rc" != 0
check "... saying why" contains "$out" "deploy branch"

# commands over ssh
as acme apps:list
check "ssh USER@HOST apps:list runs as the key's tenant" bash -c "grep -q acmeapp '$out' && ! grep -q rivalapp '$out' && ! grep -q recv '$out'"
as acme config:set acmeapp --no-restart COLOR=green
check "ssh USER@HOST config:set APP K=V" test "$rc" = 0
as acme config:get acmeapp COLOR
check "... and config:get reads it back" grep -qx green "$out"
as acme 'apps:list; id'
check "a command with a shell metacharacter is refused (exit 2)" test "$rc" = 2
check "... saying berth runs no shell" contains "$err" "runs no shell"
as acme 'apps:list $(id)'
check "... so is \$(...)" test "$rc" = 2
as acme
check "a login without a command gets a greeting, no shell" contains "$out" "berth has no shell here"
as acme certs:add acmeapp /etc/passwd /etc/passwd
check "a command reading the server's files is refused over ssh" test "$rc" = 2

# cross-tenant
before_r=$(git --git-dir="$home/apps/rivalapp/repo.git" for-each-ref | sort)
git_as acme git -C "$src" push "ssh://$ME@127.0.0.1/rivalapp.git" main:refs/heads/x
check "acme's key cannot push to rival's app" test "$rc" != 0
check "... which 'does not exist' for it" contains "$out" "app 'rivalapp' does not exist"
check "... and rival's repository is unchanged" test "$(git --git-dir="$home/apps/rivalapp/repo.git" for-each-ref | sort)" = "$before_r"
git_as acme git clone -q "ssh://$ME@127.0.0.1/rivalapp.git" "$TEST_DIR/stolen"
check "acme's key cannot clone rival's app" test "$rc" != 0
as acme apps:info rivalapp
check "acme's key cannot run commands on rival's app" test "$rc" = 1
as acme "git-upload-pack '../rivalapp.git'"
check "a path that is no app name is refused" contains "$err" "is not an app's repository"
git_as rival git -C "$src" push "ssh://$ME@127.0.0.1/recv.git" main:refs/heads/x
check "rival's key cannot push to the admin's app" test "$rc" != 0
as stranger apps:list
check "an unknown key is refused by sshd" test "$rc" = 255

# a client gone in the middle of the pack over ssh
A=$home/apps/acmeapp/repo.git
before_a=$(git --git-dir="$A" for-each-ref | sort)
St=$(git --git-dir="$A" rev-parse store)
{
    c="$St $M refs/heads/store"; caps="report-status side-band-64k"
    printf '%04x%s\0%s\n0000' $((${#c} + ${#caps} + 6)) "$c" "$caps"
    printf '%s\n^%s\n' "$M" "$St" | git -C "$src" pack-objects -q --revs --stdout >"$TEST_DIR/pack2"
    head -c 30 "$TEST_DIR/pack2"
} >"$TEST_DIR/cut"
rc=0; $(sshopts acme) "$ME@127.0.0.1" "git-receive-pack 'acmeapp.git'" <"$TEST_DIR/cut" >"$out" 2>"$err" || rc=$?
check "a pack cut short over ssh is refused" bash -c "! grep -aq 'unpack ok' '$out'"
check "... the refs are as they were" test "$(git --git-dir="$A" for-each-ref | sort)" = "$before_a"
check "... and no quarantine is left" test -z "$(find "$A/objects" -maxdepth 1 -name 'incoming-*')"

# bounded concurrent builds (berth.json builds.concurrent, read at each build)
python3 -c 'import json,os,sys; p=sys.argv[1]; d=json.load(open(p)) if os.path.exists(p) else {}; d.setdefault("builds", {})["concurrent"]=1; json.dump(d, open(p,"w"))' "$home/berth.json"
make_buildpack "$TEST_DIR/slowbp" 'echo Slow' 'sleep 3; echo "-----> slow build done"; exit 7'
for q in q1 q2; do
    "$BERTH" apps:create $q >/dev/null
    make_tree "$TEST_DIR/$q" .buildpacks "file://$TEST_DIR/slowbp"
done
push_app "$TEST_DIR/q1" q1 "$TEST_DIR/q1.out" & qpid=$!
sleep 1
push_app "$TEST_DIR/q2" q2 "$TEST_DIR/q2.out" || true
wait $qpid || true
check "with builds.concurrent 1, a second build waits for the slot and says so" \
    contains "$TEST_DIR/q2.out" "Waiting for a build slot (0 ahead)"
check "... both builds ran, one after the other" \
    bash -c "grep -q 'slow build done' '$TEST_DIR/q1.out' && grep -q 'slow build done' '$TEST_DIR/q2.out'"
check "... and the first did not wait" not_contains "$TEST_DIR/q1.out" "Waiting for a build slot"
python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d["builds"].pop("concurrent"); json.dump(d, open(p,"w"))' "$home/berth.json"

# limits (berth.json "git", read at each push)
settings() { python3 - "$home/berth.json" "$1" <<'PY'
import json, os, sys
p, git = sys.argv[1], json.loads(sys.argv[2])
d = json.load(open(p)) if os.path.exists(p) else {}
if git: d["git"] = git
else: d.pop("git", None)
json.dump(d, open(p, "w"))
PY
}
settings '{"max_push": "64K", "max_objects": 8}'
git -C "$src" checkout -q -b limits
head -c 200000 /dev/urandom >"$src/blob.bin"; commit_all "$src" "a 200 KB file"
before_a=$(git --git-dir="$A" for-each-ref | sort)
before_h=$(refs)
run_git git -C "$src" push "$URL" limits
check "a push over git.max_push (64K) over HTTP is refused" test "$rc" != 0
check "... with 413 (git shows no body of a failed POST)" contains "$out" "413"
status=$(curl -s -o "$TEST_DIR/413" -w '%{http_code}' -H 'Content-Type: application/x-git-receive-pack-request' \
    --data-binary @"$src/blob.bin" "$URL/git-receive-pack")
check "... whose body names the limit" contains "$TEST_DIR/413" "at most 65536 bytes"
git_as acme git -C "$src" push "$SSH_URL" limits
check "... and over ssh" test "$rc" != 0
check "... naming the limit" contains "$out" "over the limit of 65536 bytes"
git -C "$src" reset -q --hard HEAD~1
for i in 1 2 3 4 5 6 7 8 9 10; do echo "$i" >"$src/many$i"; done; commit_all "$src" "ten small files"
git_as acme git -C "$src" push "$SSH_URL" limits
check "a push over git.max_objects (8) is refused" test "$rc" != 0
check "... naming the limit" contains "$out" "over the limit of 8 objects"
check "... the refs are as they were (both apps)" \
    test "$(git --git-dir="$A" for-each-ref | sort)" = "$before_a" -a "$(refs)" = "$before_h"
check "... and no quarantine is left" test -z "$(find "$A/objects" "$BARE/objects" -maxdepth 1 -name 'incoming-*')"
settings 'null'
git_as acme git -C "$src" push "$SSH_URL" limits
check "without the limits the same push goes through" test "$rc" = 0
git -C "$src" checkout -q main

# a key added over ssh, from stdin
rc=0; $(sshopts rival) "$ME@127.0.0.1" keys:add - <"$TEST_DIR/stranger.pub" >"$out" 2>"$err" || rc=$?
check "ssh USER@HOST keys:add - < KEY.pub adds a key for the session's tenant" test "$rc" = 0
as stranger apps:list
check "... which then logs in as that tenant" bash -c "[ $rc = 0 ] && grep -q rivalapp '$out'"
as rival keys:add /etc/passwd
check "... while keys:add with a file of the server is refused over ssh" test "$rc" = 2

# removing a key
fp=$(ssh-keygen -lf "$TEST_DIR/acme.pub" | awk '{print $2}')
run keys:remove "$fp"
check "keys:remove FINGERPRINT" test "$rc" = 0
as acme apps:list
check "... and the key no longer logs in" test "$rc" = 255
check "... while the other tenant's still does" bash -c "$(sshopts rival) $ME@127.0.0.1 apps:list </dev/null | grep -q rivalapp"
run keys:remove "$fp"
check "removing it again is an error (exit 1)" test "$rc" = 1

stop_sshd
done_testing
