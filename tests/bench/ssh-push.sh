#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# git push over ssh, the same commits as the smart-HTTP figure (run.sh
# passes them): berth serve's `berth git-shell` forced command (the session
# handed to the daemon over its unix socket) vs git-receive-pack itself,
# both behind one real sshd from Debian on a loopback port, each key its
# own line in one AuthorizedKeysFile. First push into an empty repository,
# then an incremental one; hyperfine medians, and berth/peer.
# Usage: ssh-push.sh BUILD SRC C1 C2
set -euo pipefail
build=$1 src=$2 c1=$3 c2=$4
sshd=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$sshd" ] || { echo "  (skipped: no sshd; apt-get install openssh-server)"; exit 0; }
T=$(mktemp -d /tmp/berth-bench-ssh.XXXXXX)
. "$(dirname "$0")/serve.sh"
sshd_pid=
cleanup() {
    [ -z "$sshd_pid" ] || kill "$sshd_pid" 2>/dev/null || true
    bench_serve_stop
}
trap cleanup EXIT

BERTH_AUTHORIZED_KEYS=$T/ak bench_serve_start "$build"
"$build/berth" apps:create sshbench >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$T/berthkey"
ssh-keygen -q -t ed25519 -N '' -f "$T/peerkey"
"$build/berth" keys:add "$T/berthkey.pub" >/dev/null
# The peer's key: no forced command, sshd runs git-receive-pack through the shell as git users do.
cat "$T/peerkey.pub" >>"$T/ak"
port=$(free_port)
cat >"$T/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $T/hostkey
PidFile $T/sshd.pid
AuthorizedKeysFile $T/ak
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CONF
"$sshd" -f "$T/sshd_config" -E "$T/sshd.log"
for _ in $(seq 1 50); do [ -s "$T/sshd.pid" ] && break; sleep 0.1; done
sshd_pid=$(cat "$T/sshd.pid")
me=$(id -un)
ssh_cmd() { echo "ssh -i $T/$1 -p $port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"; }
repo=$T/home/apps/sshbench/repo.git
peer=$T/peer/bench.git
git init -q --bare -b main "$peer"
# A branch other than main: stored without a build, so the figure is the transport and the receiver.
empty_berth="bash -c 'git --git-dir=$repo update-ref -d refs/heads/bench 2>/dev/null; rm -f $repo/objects/pack/pack-*; true'"
empty_peer="bash -c 'rm -rf $peer && git init -q --bare -b main $peer'"
export GIT_SSH_COMMAND; GIT_SSH_COMMAND=$(ssh_cmd berthkey)
bf=$(push_median sbf "$empty_berth" "git -C $src push -q ssh://$me@127.0.0.1/sshbench.git $c1:refs/heads/bench")
git -C "$src" push -q "ssh://$me@127.0.0.1/sshbench.git" "$c1:refs/heads/bench"
bi=$(push_median sbi "git --git-dir=$repo update-ref refs/heads/bench $c1" \
    "git -C $src push -q ssh://$me@127.0.0.1/sshbench.git $c2:refs/heads/bench")
GIT_SSH_COMMAND=$(ssh_cmd peerkey)
gf=$(push_median sgf "$empty_peer" "git -C $src push -q ssh://$me@127.0.0.1$peer $c1:refs/heads/bench")
git -C "$src" push -q "ssh://$me@127.0.0.1$peer" "$c1:refs/heads/bench"
gi=$(push_median sgi "git --git-dir=$peer update-ref refs/heads/bench $c1" \
    "git -C $src push -q ssh://$me@127.0.0.1$peer $c2:refs/heads/bench")
printf '  first push:       git-receive-pack %8s ms   berth %8s ms   berth/git %s\n' "$gf" "$bf" "$(ratio "$bf" "$gf")"
printf '  incremental push: git-receive-pack %8s ms   berth %8s ms   berth/git %s\n' "$gi" "$bi" "$(ratio "$bi" "$gi")"
