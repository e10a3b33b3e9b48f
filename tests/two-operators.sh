#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Host setup for any operator (issue 9), as root with real users: the berth
# user and a second one that does not exist yet are set up one after the
# other, each runs `berth serve` and deploys, the first deploys again, and
# `berth doctor` passes for both. Then the host is broken on purpose
# (a missing subordinate id range, a cgroup of the subtree owned by another
# user, /dev/net/tun unusable): doctor names each fix, serve refuses to
# start, and re-running setup repairs. A `berth serve` started as root must
# not follow a symlink its user planted in its home or on the way to its
# --home, and refuses a home others may write; nor may `berth setup --ssh`
# follow one in ~/.ssh. `berth setup --systemd` writes a unit systemd-analyze
# accepts; `berth setup --remove` undoes setup. tests/run-tests.sh runs this
# in its root phase.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root (it creates a user)"
user1=${BERTH_TEST_USER:-berth}
user2=berthtwo
tun_mode=$(stat -c %a /dev/net/tun 2>/dev/null || echo "")
serve2_pid=

# The checkout may sit where the users cannot read (/root): they run copies.
# berth is a light front that runs berth-core, found beside it, for most commands.
install -m 0755 "$BERTH" "$TEST_DIR/berth"
install -m 0755 "$(dirname "$BERTH")/berth-core" "$TEST_DIR/berth-core"
cp -r "$SRCDIR/buildpacks" "$TEST_DIR/bp"
chmod -R a+rX "$TEST_DIR/bp"
B=$TEST_DIR/berth
export BERTH_BUILDPACKS=$TEST_DIR/bp GIT_TERMINAL_PROMPT=0

finish() {
    [ -z "$serve2_pid" ] || kill -TERM "$serve2_pid" 2>/dev/null || true
    [ -z "$tun_mode" ] || chmod "$tun_mode" /dev/net/tun
    [ ! -f "$TEST_DIR/subuid" ] || cp "$TEST_DIR/subuid" /etc/subuid
    if id "$user2" >/dev/null 2>&1; then
        sleep 1
        "$B" setup --remove --purge --user "$user2" >/dev/null 2>&1 || userdel -r "$user2" 2>/dev/null || true
    fi
    cleanup
}
trap finish EXIT

# as USER CMD...: runs CMD as USER with a clean environment (runuser passes a SIGTERM on to CMD).
as() {
    local u=$1; shift
    runuser -u "$u" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$(getent passwd "$u" | cut -d: -f6)" \
        USER="$u" LANG=C.UTF-8 BERTH_BUILDPACKS="$BERTH_BUILDPACKS" "$@"
}
# serve_as USER HOME LOG: starts berth serve as USER; sets serve_pid, the ports, BERTH_URL and BERTH_TOKEN.
serve_as() {
    local u=$1 home=$2 log=$3
    rm -f "$home/run/serve.json"
    runuser -u "$u" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$(getent passwd "$u" | cut -d: -f6)" \
        USER="$u" LANG=C.UTF-8 BERTH_BUILDPACKS="$BERTH_BUILDPACKS" \
        "$B" serve --home "$home" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$log" 2>&1 &
    serve_pid=$!
    serve_ready "$home" "$log"
}
# deploy APP MARKER: creates APP, pushes a static site saying MARKER, waits until it is served.
deploy() {
    local app=$1 marker=$2 tree=$TEST_DIR/src-$1
    "$B" apps:create "$app" >/dev/null 2>&1 || true
    if [ -d "$tree" ]; then
        printf '<p>%s</p>' "$marker" >"$tree/index.html"; commit_all "$tree" "$marker"
    else
        make_tree "$tree" .static "" index.html "<p>$marker</p>"
    fi
    push_app "$tree" "$app" "$TEST_DIR/push-$app-$marker" && wait_body "$app.localhost" / "$marker" 60
}
# cg USER CTRL: the memory (or other) hierarchy's delegated subtree of USER (this process's cgroup).
cg() {
    local p
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        p=$(awk -F: '$1 == 0 {print $3}' /proc/self/cgroup); echo "/sys/fs/cgroup${p%/}/berth-$1"
    else
        p=$(awk -F: -v c="$2" '{n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3}' /proc/self/cgroup)
        echo "/sys/fs/cgroup/$2${p%/}/berth-$1"
    fi
}

# A leftover of an earlier run that died: start from a user that does not exist.
if id "$user2" >/dev/null 2>&1; then "$B" setup --remove --purge --user "$user2" >/dev/null 2>&1 || userdel -r "$user2" || true; fi

# --- the first operator ---
"$B" setup --user "$user1" >"$TEST_DIR/setup1" 2>&1 && ok "setup for $user1" || { not_ok "setup for $user1"; diag "$TEST_DIR/setup1"; }
mkdir -p "$TEST_DIR/h1" && chown "$user1:" "$TEST_DIR/h1" && chmod 0700 "$TEST_DIR/h1"
if serve_as "$user1" "$TEST_DIR/h1" "$TEST_DIR/serve1.log"; then ok "$user1's berth serve starts"; else
    not_ok "$user1's berth serve starts"; done_testing; exit 1; fi
serve1_pid=$serve_pid; port1=$HTTP_PORT; ctl1=$CONTROL_PORT; tok1=$BERTH_TOKEN
check "$user1 deploys an app" deploy first one-1

# --- a second operator that does not exist yet ---
"$B" setup --user "$user2" >"$TEST_DIR/setup2" 2>&1 && ok "setup creates and prepares $user2" ||
    { not_ok "setup creates and prepares $user2"; diag "$TEST_DIR/setup2"; }
check "$user2 has subordinate ids" grep -q "^$user2:" /etc/subuid
check "$user2 has a cgroup subtree of its own" [ "$(stat -c %U "$(cg "$user2" memory)")" = "$user2" ]
check "$user1's subtree still belongs to $user1" [ "$(stat -c %U "$(cg "$user1" memory)")" = "$user1" ]
h2=$TEST_DIR/h2
mkdir -p "$h2" && chown "$user2:" "$h2" && chmod 0700 "$h2"
if serve_as "$user2" "$h2" "$TEST_DIR/serve2.log"; then ok "$user2's berth serve starts"; else
    not_ok "$user2's berth serve starts"; done_testing; exit 1; fi
serve2_pid=$serve_pid
check "$user2 deploys an app" deploy second two-1
check "$user2's app runs in $user2's cgroups" \
    [ -n "$(find "$(cg "$user2" memory)" -mindepth 2 -maxdepth 2 -type d -name second -user "$user2")" ]

# --- the first operator again ---
HTTP_PORT=$port1; CONTROL_PORT=$ctl1; BERTH_URL=http://127.0.0.1:$ctl1; BERTH_TOKEN=$tok1
check "$user1 deploys again after $user2's setup" deploy first one-2
as "$user1" "$B" doctor >"$TEST_DIR/doc1" 2>&1 && ok "berth doctor passes for $user1" || { not_ok "berth doctor passes for $user1"; diag "$TEST_DIR/doc1"; }
as "$user2" "$B" doctor >"$TEST_DIR/doc2" 2>&1 && ok "berth doctor passes for $user2" || { not_ok "berth doctor passes for $user2"; diag "$TEST_DIR/doc2"; }
check "... one line per check" [ "$(grep -c '^ok ' "$TEST_DIR/doc2")" -ge 8 ]
"$B" apps:destroy first --confirm first >/dev/null 2>&1 || true
app1=$(find "$(cg "$user1" memory)" -mindepth 2 -maxdepth 2 -type d -name first)
check "destroying an app removes its cgroups" [ -z "$app1" ]
kill -TERM "$serve1_pid"; wait "$serve1_pid" 2>/dev/null || true

# --- broken on purpose ---
kill -TERM "$serve2_pid"; wait "$serve2_pid" 2>/dev/null || true; serve2_pid=
check "$user2's berth serve stopped" [ -z "$(pgrep -u "$user2" -f 'berth serve')" ]
check "$user2's instance cgroups are gone once its serve stopped" \
    [ -z "$(find "$(cg "$user2" memory)" -mindepth 3 -type d)" ]
cp /etc/subuid "$TEST_DIR/subuid"
sed -i "/^$user2:/d" /etc/subuid
r=0; "$B" doctor --user "$user2" >"$TEST_DIR/doc3" 2>&1 || r=$?
check "doctor fails without a subuid range (exit $r)" [ "$r" = 1 ]
check "... naming the fix" grep -q "^FAIL subordinate ids: .*run 'berth setup --user $user2' as root" "$TEST_DIR/doc3"
r=0; as "$user2" "$B" serve --home "$h2" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$TEST_DIR/serve3.log" 2>&1 || r=$?
check "serve refuses to start without it (exit $r), with the same message" \
    grep -q "subordinate ids: user '$user2' has no range" "$TEST_DIR/serve3.log"
cp "$TEST_DIR/subuid" /etc/subuid; rm -f "$TEST_DIR/subuid"

mkdir "$(cg "$user2" memory)/stray"
r=0; "$B" doctor --user "$user2" >"$TEST_DIR/doc4" 2>&1 || r=$?
check "doctor fails on a cgroup of the subtree owned by root (exit $r)" [ "$r" = 1 ]
check "... naming it and the fix" \
    grep -q "^FAIL cgroup subtree ownership: '.*/berth-$user2/stray' belongs to user root .*berth setup --user $user2" "$TEST_DIR/doc4"
r=0; as "$user2" "$B" serve --home "$h2" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$TEST_DIR/serve4.log" 2>&1 || r=$?
check "serve refuses to start then (exit $r)" grep -q "cgroup subtree ownership: .*stray' belongs to user root" "$TEST_DIR/serve4.log"
"$B" setup --user "$user2" >/dev/null 2>&1
check "setup again repairs the ownership of the whole subtree" [ "$(stat -c %U "$(cg "$user2" memory)/stray/cgroup.procs")" = "$user2" ]
as "$user2" "$B" doctor >"$TEST_DIR/doc5" 2>&1 && ok "doctor passes after the repair" || { not_ok "doctor passes after the repair"; diag "$TEST_DIR/doc5"; }
rmdir "$(cg "$user2" memory)/stray"

chmod 0600 /dev/net/tun
r=0; "$B" doctor --user "$user2" >"$TEST_DIR/doc6" 2>&1 || r=$?
chmod "$tun_mode" /dev/net/tun
check "doctor fails when /dev/net/tun is unusable (exit $r)" [ "$r" = 1 ]
check "... naming the fix" grep -q "^FAIL outbound network.*/dev/net/tun' is not usable by uid $(id -u "$user2"); run 'berth setup'" "$TEST_DIR/doc6"

r=0; "$B" doctor --user nosuchuser-9 >"$TEST_DIR/doc7" 2>&1 || r=$?
check "doctor for a user that does not exist fails (exit $r)" [ "$r" = 1 ]
r=0; as "$user2" "$B" doctor --user "$user1" >"$TEST_DIR/doc8" 2>&1 || r=$?
check "doctor --user for someone else is root's (exit $r)" [ "$r" = 2 ]

# --- root-run safety ---
victim=$TEST_DIR/victim
mkdir -m 0755 "$victim"; before=$(stat -c '%U %a' "$victim")
home2=$(getent passwd "$user2" | cut -d: -f6)
rm -rf "$home2/.local"
runuser -u "$user2" -- ln -s "$victim" "$home2/.local"
"$B" serve --user "$user2" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$TEST_DIR/serve5.log" 2>&1 &
p=$!
for _ in $(seq 1 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
kill -TERM $p 2>/dev/null || true; wait $p 2>/dev/null || true
check "a symlink planted in the home leads root nowhere (nothing made in its target)" \
    [ -z "$(ls -A "$victim")" ]
check "... nor its target's owner or mode changed" [ "$(stat -c '%U %a' "$victim")" = "$before" ]
check "... and the serve says why it stopped" grep -q "mkdir '$home2/.local/share'.*Permission denied" "$TEST_DIR/serve5.log"
rm -f "$home2/.local"
mkdir -m 0775 "$TEST_DIR/gw"; chown "$user2:" "$TEST_DIR/gw"; chmod 0775 "$TEST_DIR/gw"
r=0; "$B" serve --user "$user2" --home "$TEST_DIR/gw" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$TEST_DIR/serve6.log" 2>&1 || r=$?
check "a group-writable --home is refused (exit $r)" [ "$r" = 1 ]
check "... saying so" grep -q "the home '$TEST_DIR/gw' is writable by its group (mode 775)" "$TEST_DIR/serve6.log"
check "... and nothing was written into it" [ -z "$(ls -A "$TEST_DIR/gw")" ]
check "... and no staged buildpacks are left in /tmp by the refused starts" \
    [ -z "$(find /tmp -maxdepth 1 -name 'berth-buildpacks-*' -user "$user2")" ]

# An explicit --home in a tree the user owns: a symlink it swapped in for a
# directory on the way must not lead root's mkdir or chown (to /etc, say).
# root_serve HOME LOG: a serve started as root for user2 with --home HOME; r is its exit code.
root_serve() {
    r=0; timeout 60 "$B" serve --user "$user2" --home "$1" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$2" 2>&1 || r=$?
}
tree=$TEST_DIR/tree
victim2=$TEST_DIR/victim2
install -d -o "$user2" -g "$user2" -m 0755 "$tree"
mkdir -m 0755 "$victim2"
runuser -u "$user2" -- ln -s "$victim2" "$tree/state"
root_serve "$tree/state/berth" "$TEST_DIR/serve7.log"
check "a --home below a symlink the user planted is refused (exit $r)" [ "$r" = 1 ]
check "... naming the symlink" grep -q "'$tree/state' is a symlink: root follows none" "$TEST_DIR/serve7.log"
check "... and nothing is made in its target, nor its owner or mode changed" \
    sh -c "[ -z \"\$(ls -A '$victim2')\" ] && [ \"\$(stat -c '%U %a' '$victim2')\" = 'root 755' ]"
mkdir -m 0755 "$victim2/berth"
root_serve "$tree/state/berth" "$TEST_DIR/serve8.log"
check "... nor is root's directory of that name there handed over (exit $r)" \
    [ "$r" = 1 -a "$(stat -c '%U %a' "$victim2/berth")" = "root 755" ]
install -d -o "$user1" -g "$user1" -m 0755 "$TEST_DIR/other"
root_serve "$TEST_DIR/other/berth" "$TEST_DIR/serve9.log"
check "a --home in a directory of another user ($user1) is refused (exit $r)" \
    [ "$r" = 1 -a -z "$(ls -A "$TEST_DIR/other")" ]
check "... saying so" grep -q "is in a directory of uid $(id -u "$user1"), neither root's nor the berth user's" \
    "$TEST_DIR/serve9.log"
runuser -u "$user2" -- rm "$tree/state"
runuser -u "$user2" -- mkdir "$tree/state"
"$B" serve --user "$user2" --home "$tree/state/a/berth" --http 127.0.0.1:0 --control 127.0.0.1:0 \
    >"$TEST_DIR/serve10.log" 2>&1 &
serve_pid=$!
serve_ready "$tree/state/a/berth" "$TEST_DIR/serve10.log" && ok "a missing --home in the user's own tree is made" ||
    not_ok "a missing --home in the user's own tree is made"
stop_berth || true
check "... the home the user's, mode 0700" [ "$(stat -c '%U %a' "$tree/state/a/berth")" = "$user2 700" ]

# Root's own symlinks in root's own directories (Debian's /var/run -> /run)
# are followed, absolute or relative; one through '..' is not.
links=$TEST_DIR/rootlinks
mkdir -m 0755 "$links" "$links/real"
ln -s "$links/real" "$links/abs"
ln -s real "$links/rel"
ln -s ../rootlinks/real "$links/up"
for via in abs rel; do
    "$B" serve --user "$user2" --home "$links/$via/$via-berth" --http 127.0.0.1:0 --control 127.0.0.1:0 \
        >"$TEST_DIR/serve-$via.log" 2>&1 &
    serve_pid=$!
    serve_ready "$links/real/$via-berth" "$TEST_DIR/serve-$via.log" &&
        ok "a --home past root's own $via symlink in root's directory is made" ||
        not_ok "a --home past root's own $via symlink in root's directory is made"
    stop_berth || true
    check "... where the link leads, the user's, mode 0700" \
        [ "$(stat -c '%U %a' "$links/real/$via-berth")" = "$user2 700" ]
done
root_serve "$links/up/berth" "$TEST_DIR/serve-up.log"
check "root's symlink through '..' is refused (exit $r)" \
    sh -c "[ $r = 1 ] && grep -q \"'$links/up' leads through '..'\" '$TEST_DIR/serve-up.log' && [ ! -e '$links/real/berth' ]"

# `berth setup --ssh`: ~/.ssh is made by a child dropped to the user, so a
# symlink or a hard link planted there leads root's chmod or chown nowhere.
# (A hard link to a file of root's needs fs.protected_hardlinks=0: root makes it here.)
victim3=$TEST_DIR/victim3
mkdir -m 0755 "$victim3"
printf 'root:secret\n' >"$victim3/file"; chmod 0644 "$victim3/file"
rm -rf "$home2/.ssh"
runuser -u "$user2" -- ln -s "$victim3" "$home2/.ssh"
r=0; "$B" setup --user "$user2" --ssh >"$TEST_DIR/ssh1" 2>&1 || r=$?
check "setup --ssh refuses a ~/.ssh that is a symlink (exit $r)" [ "$r" = 1 ]
check "... saying so" grep -q "'$home2/.ssh' is a symlink" "$TEST_DIR/ssh1"
check "... and its target is untouched (owner, mode, nothing made)" \
    [ "$(stat -c '%U %a' "$victim3")" = "root 755" -a "$(ls -A "$victim3")" = file ]
rm "$home2/.ssh"
"$B" setup --user "$user2" --ssh >"$TEST_DIR/ssh2" 2>&1 && ok "setup --ssh makes ~/.ssh" ||
    { not_ok "setup --ssh makes ~/.ssh"; diag "$TEST_DIR/ssh2"; }
check "... the user's, mode 0700, with authorized_keys the user's, mode 0600" \
    [ "$(stat -c '%U %a' "$home2/.ssh") $(stat -c '%U %a' "$home2/.ssh/authorized_keys")" = "$user2 700 $user2 600" ]
rm "$home2/.ssh/authorized_keys"
ln "$victim3/file" "$home2/.ssh/authorized_keys"
r=0; "$B" setup --user "$user2" --ssh >"$TEST_DIR/ssh3" 2>&1 || r=$?
check "setup --ssh refuses an authorized_keys hard-linked to root's file (exit $r)" [ "$r" = 1 ]
check "... saying so" grep -q "authorized_keys' belongs to uid 0, not to '$user2'" "$TEST_DIR/ssh3"
check "... and the file keeps its owner and mode" [ "$(stat -c '%U %a' "$victim3/file")" = "root 644" ]
rm "$home2/.ssh/authorized_keys"
runuser -u "$user2" -- ln -s "$victim3/file" "$home2/.ssh/authorized_keys"
r=0; "$B" setup --user "$user2" --ssh >"$TEST_DIR/ssh4" 2>&1 || r=$?
check "setup --ssh refuses an authorized_keys that is a symlink (exit $r)" \
    sh -c "[ $r = 1 ] && grep -q 'authorized_keys. is a symlink' '$TEST_DIR/ssh4'"
check "... and its target keeps its owner and mode" [ "$(stat -c '%U %a' "$victim3/file")" = "root 644" ]

# --- systemd ---
mkdir "$TEST_DIR/units"
"$B" setup --systemd --user "$user2" --unit-dir "$TEST_DIR/units" >"$TEST_DIR/setup3" 2>&1 && ok "setup --systemd writes a unit" ||
    { not_ok "setup --systemd writes a unit"; diag "$TEST_DIR/setup3"; }
unit=$TEST_DIR/units/berth.service
check "the unit runs berth serve as $user2, delegated, restarted on failure" \
    grep -qx "User=$user2" "$unit"
check "... with Delegate=yes and Restart=on-failure" sh -c "grep -qx Delegate=yes '$unit' && grep -qx Restart=on-failure '$unit'"
if command -v systemd-analyze >/dev/null; then
    r=0; SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$unit" >"$TEST_DIR/verify" 2>&1 || r=$?
    check "systemd-analyze verify accepts it (exit $r)" [ "$r" = 0 ]
    [ "$r" = 0 ] || diag "$TEST_DIR/verify"
else
    not_ok "systemd-analyze is installed (tools/packages.txt: systemd)"
fi

# --- bad input and removal ---
r=0; "$B" setup --purge --user "$user2" >/dev/null 2>&1 || r=$?
check "setup --purge without --remove is a usage error (exit $r)" [ "$r" = 2 ]
r=0; "$B" setup --remove --user nosuchuser-9 >"$TEST_DIR/rm0" 2>&1 || r=$?
check "setup --remove of a missing user fails clearly (exit $r)" sh -c "[ $r = 1 ] && grep -q \"no user 'nosuchuser-9'\" '$TEST_DIR/rm0'"
"$B" setup --remove --user "$user2" >"$TEST_DIR/rm1" 2>&1 && ok "setup --remove for $user2" || { not_ok "setup --remove for $user2"; diag "$TEST_DIR/rm1"; }
check "... removes its cgroup subtree" [ ! -e "$(cg "$user2" memory)" ]
check "... and setup's id ranges" sh -c "! grep -q '^$user2:.*:1048576\$' /etc/subuid /etc/subgid"
check "... keeps the user and its home" sh -c "id '$user2' >/dev/null && [ -d '$home2' ]"
r=0; "$B" doctor --user "$user2" >"$TEST_DIR/doc9" 2>&1 || r=$?
check "doctor fails once cgroups are not delegated (exit $r)" [ "$r" = 1 ]
check "... naming the fix" grep -q "^FAIL cgroups delegated: .*berth-$user2' does not exist: cgroups are not delegated; run 'berth setup --user $user2' as root" "$TEST_DIR/doc9"
check "... leaves $user1's subtree alone" [ "$(stat -c %U "$(cg "$user1" memory)")" = "$user1" ]
"$B" setup --remove --purge --user "$user2" >"$TEST_DIR/rm2" 2>&1 && ok "setup --remove --purge" || { not_ok "setup --remove --purge"; diag "$TEST_DIR/rm2"; }
check "... deletes the user and its home" sh -c "! id '$user2' >/dev/null 2>&1 && [ ! -d '$home2' ]"

done_testing
