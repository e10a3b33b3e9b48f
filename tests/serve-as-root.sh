#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# What only root can test: `berth setup` prepares the host idempotently, and
# a `berth serve` started as root prepares the host itself and then drops to
# the unprivileged berth user for good (the server must not stay root).
# tests/run-tests.sh runs this in its root phase, before the unprivileged
# suites, and counts it in the closing line.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root"
user=${BERTH_TEST_USER:-berth}

# The state some hosts ship /dev/net/tun in, which setup must fix for pasta.
[ -c /dev/net/tun ] && chmod 0600 /dev/net/tun
"$BERTH" setup --user "$user" >"$TEST_DIR/setup1.out" 2>&1 && ok "berth setup succeeds" || not_ok "berth setup succeeds"
before=$(cat /etc/subuid /etc/subgid | md5sum)
"$BERTH" setup --user "$user" >"$TEST_DIR/setup2.out" 2>&1 && ok "berth setup runs again" || not_ok "berth setup runs again"
check "a second setup changes no id range" [ "$(cat /etc/subuid /etc/subgid | md5sum)" = "$before" ]
uid=$(id -u "$user"); gid=$(id -g "$user")
slices=$(awk -F: -v u="$user" '$1 == u { n += int($3 / 65536) } END { print n + 0 }' /etc/subuid)
check "the user has at least 16 tenant slices of subordinate uids ($slices)" [ "$slices" -ge 16 ]
runuser -u "$user" -- "$BERTH" setup --user "$user" >"$TEST_DIR/setup3.out" 2>&1 || true
check "setup as a normal user is refused with a clear message" contains "$TEST_DIR/setup3.out" "must run as root"

check "setup makes /dev/net/tun usable by the berth user (for pasta)" \
    runuser -u "$user" -- sh -c 'exec 3<>/dev/net/tun'
if [ -d /sys/fs/cgroup/memory ]; then
    own=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3; exit }' /proc/self/cgroup)
    dir=/sys/fs/cgroup/memory${own%/}
else
    own=$(awk -F: '$1 == 0 { print $3; exit }' /proc/self/cgroup)
    dir=/sys/fs/cgroup${own%/}
fi
check "setup hands the user a cgroup subtree of its own (berth-$user)" \
    [ "$(stat -c %U "$dir/berth-$user" 2>/dev/null)" = "$user" ]

# `make run` as a user root never prepared: told what to run, nothing started.
if id nobody >/dev/null 2>&1 && ! grep -q '^nobody:' /etc/subuid; then
    # A copy, since the checkout may sit where nobody cannot read (/root).
    install -m 0755 "$SRCDIR/tools/run.sh" "$TEST_DIR/run.sh"
    r=0
    (cd "$TEST_DIR" && runuser -u nobody -- bash "$TEST_DIR/run.sh" build) \
        >"$TEST_DIR/run.out" 2>&1 || r=$?
    check "make run's run.sh refuses a user without subordinate ids (exit $r)" [ "$r" = 1 ]
    check "... and names the one setup command to run" contains "$TEST_DIR/run.out" "sudo build/berth setup --user nobody"
else
    not_ok "a user 'nobody' without subordinate ids to run tools/run.sh as"
fi

home=$TEST_DIR/home
start_berth "$home" --user "$user"
ok "berth serve started as root"
status=/proc/$serve_pid/status
check "the server runs as $user (real, effective, saved, fs uid)" \
    [ "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "$status")" = "$uid $uid $uid $uid" ]
check "... and its gids are $user's" \
    [ "$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "$status")" = "$gid $gid $gid $gid" ]
check "... with no supplementary groups" [ -z "$(awk '/^Groups:/ { print $2 }' "$status")" ]
check "... and no capabilities" [ "$(awk '/^CapEff:/ { print $2 }' "$status")" = 0000000000000000 ]
check "the home belongs to $user" [ "$(stat -c %U "$home")" = "$user" ]
check "admin.token belongs to $user, mode 0600" [ "$(stat -c '%U %a' "$home/admin.token")" = "$user 600" ]
check "the buildpacks were installed for $user" [ "$(stat -c %U "$home/buildpacks/static/bin/detect")" = "$user" ]
"$BERTH" apps:create hello >"$TEST_DIR/create.out" 2>&1 || true
check "the API answers" contains "$TEST_DIR/create.out" "Creating hello... done"
check "records are written by $user" [ "$(stat -c %U "$home/apps/hello/app.json")" = "$user" ]
# A build runs in a container with network, which pasta joins through
# /proc/PID/ns: the drop from root had left the server and its children
# not dumpable, their /proc files root's, and every push failed.
check "the server is dumpable again after the drop ($user may open /proc/PID/ns/user)" \
    runuser -u "$user" -- readlink "/proc/$serve_pid/ns/user"
make_repo "$SRCDIR/examples/static" "$TEST_DIR/static"
push_app "$TEST_DIR/static" hello "$TEST_DIR/push.out" || true
check "a push to the server started as root deploys" contains "$TEST_DIR/push.out" "deployed to berth"
check "... and the router serves the app" wait_body hello.localhost / "berth static example"
stop_berth && ok "it stops on SIGTERM" || not_ok "it stops on SIGTERM"

# --- started as the user, handed CAP_NET_BIND_SERVICE as berth.service does ---
# (AmbientCapabilities=): the server binds a port under 1024 with it, and
# nothing it runs inherits it: it clears the ambient set at start, and with
# an empty ambient set execve() gives a program (git, pasta) no capability.
# cap_bits PID: "CapEff CapAmb" of PID, in hex.
cap_bits() { awk '/^CapEff:/ { e = $2 } /^CapAmb:/ { a = $2 } END { print e, a }' "/proc/$1/status"; }
low=$(python3 -c 'import socket
for p in range(600, 1024):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass')
home3=$TEST_DIR/home3
install -d -o "$user" -g "$gid" -m 0700 "$home3"
# Copies the user can read, wherever the checkout sits (/root, say).
install -d -m 0755 "$TEST_DIR/bin"
install -m 0755 "$(dirname "$BERTH")/berth" "$(dirname "$BERTH")/berth-core" "$TEST_DIR/bin/"
cp -r "$SRCDIR/buildpacks" "$TEST_DIR/bp" && chmod -R a+rX "$TEST_DIR/bp"
setpriv --reuid="$user" --regid="$gid" --init-groups --inh-caps=+net_bind_service \
    --ambient-caps=+net_bind_service -- env HOME="$home3" USER="$user" BERTH_BUILDPACKS="$TEST_DIR/bp" \
    "$TEST_DIR/bin/berth" serve --home "$home3" --http "127.0.0.1:$low" --control 127.0.0.1:0 \
    >"$TEST_DIR/serve3.log" 2>&1 &
serve_pid=$!
if serve_ready "$home3" "$TEST_DIR/serve3.log"; then
    check "a serve handed CAP_NET_BIND_SERVICE listens on port $low" [ "$HTTP_PORT" = "$low" ]
    check "... keeps the capability, out of its ambient set ($(cap_bits "$serve_pid"))" \
        [ "$(cap_bits "$serve_pid")" = "0000000000000400 0000000000000000" ]
    { "$BERTH" apps:create capped && "$BERTH" net:set capped outbound=on; } >"$TEST_DIR/create3.out" 2>&1 ||
        diag "$TEST_DIR/create3.out"
    push_app "$TEST_DIR/static" capped "$TEST_DIR/push3.out" || true
    check "an app with outbound network deploys on it" wait_body capped.localhost / "berth static example"
else
    not_ok "a serve handed CAP_NET_BIND_SERVICE starts on port $low"
fi
stop_berth || true
# Its stop removes the home's cgroups, the app's too: pasta, which dies 20-40
# ms after its container, used to keep the instance's, and so the app's, busy.
left=$(find /sys/fs/cgroup -maxdepth 7 -type d -name "$(tenant_cgroup '*' "$home3")" 2>/dev/null |
    sed "s|^/sys/fs/cgroup/||" | tr "\n" " ")
check "its stop leaves no cgroup of its home behind (left: ${left:-none})" [ -z "$left" ]
# Started as root, it binds after the drop, holding no capability.
r=0; timeout 60 "$BERTH" serve --user "$user" --home "$TEST_DIR/home4" --http "127.0.0.1:$low" \
    --control 127.0.0.1:0 >"$TEST_DIR/serve4.log" 2>&1 || r=$?
check "a serve started as root refuses port $low (exit $r)" [ "$r" = 1 ]
check "... naming the capability it would need" grep -q "needs CAP_NET_BIND_SERVICE" "$TEST_DIR/serve4.log"

done_testing
