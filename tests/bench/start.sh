#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Container start to exit of /bin/true, side by side in one hyperfine run
# per round, as the same unprivileged user (issue 9's goals in brackets):
#   berth  `berth container run EMPTY_DIR -- /bin/true`: the whole command,
#          its exec included (overlay root, /proc, /dev, cgroup, seccomp,
#          berth's init, the cleanup)                          [<= 1.0x bwrap]
#   bwrap  bubblewrap with every namespace, /usr, /proc and /dev
#   crun   `crun run` of an equivalent rootless bundle (/usr bound
#          read-only, /proc, /dev), where crun runs here; on a hybrid
#          host that crun refuses, in tests/bench/cgroup-v1-view, whose
#          own cost is measured beside it and taken off; else why not
#                                                              [<= 0.4x crun]
# then the same with the runs interleaved one by one (tests/bench/interleave),
# then the spawner's own start (tests/bench/start-bench: berth serve's path,
# in process, no exec), and the USS of an idle container's init, which also
# serves the port agent                                       [<= 0.4 MB].
# Medians of ROUNDS rounds of RUNS runs each. Run by tests/bench/run.sh as
# the berth user, or alone: tests/bench/start.sh BUILD_DIR [RUNS] [ROUNDS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
runs=${2:-60}
rounds=${3:-3}
T=$(mktemp -d /tmp/berth-start.XXXXXX)
. "$(dirname "$0")/serve.sh"
chmod 755 "$T"
bg=
cleanup() {
    [ -z "$bg" ] || { kill "$bg" 2>/dev/null; wait "$bg" 2>/dev/null || true; }
    subid_rm_rf "$T"
}
trap cleanup EXIT
export BERTH_HOME=$T/home
mkdir "$T/empty"
# goal VALUE LIMIT: "met" or "NOT met" for VALUE <= LIMIT.
goal() { awk -v v="$1" -v l="$2" 'BEGIN {print (v > 0 && v <= l ? "met" : "NOT met")}'; }

berth="$build/berth container run $T/empty -- /bin/true"
bwrap="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin --proc /proc --dev /dev /bin/true"
if ! $berth >"$T/berth.out" 2>&1; then
    echo "  berth container run failed: $(tail -2 "$T/berth.out" | tr '\n' ' ')"
    exit 0
fi

# crun: a rootless bundle of the same shape, or the reason it does not run here.
crun=
view_true=
why_not_crun=
if ! command -v crun >/dev/null; then
    why_not_crun="crun is not installed (Debian package crun)"
else
    b=$T/crun
    mkdir -p "$b/rootfs/usr" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/tmp"
    for l in bin lib lib64; do ln -s "usr/$l" "$b/rootfs/$l"; done
    (cd "$b" && crun spec --rootless)
    python3 - "$b/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/true"]
c["process"]["terminal"] = False
c["root"] = {"path": "rootfs", "readonly": True}
c["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                    "options": ["rbind", "ro", "nosuid", "nodev"]})
c["linux"].pop("resources", None)
json.dump(c, open(sys.argv[1], "w"))
PY
    crun="crun --root $T/crun-state --cgroup-manager=disabled run -b $b bench"
    crun_ok=1
    $crun >"$T/crun.out" 2>&1 || crun_ok=0
    # crun 1.8 refuses a hybrid host whose v2 mount holds a controller;
    # cgroup-v1-view runs it where that mount is out of sight, and its own
    # cost (view_true minus true) comes off crun's figure below.
    if [ "$crun_ok" = 0 ] && grep -q 'hybrid mode not supported' "$T/crun.out"; then
        crun="$build/tests/bench/cgroup-v1-view $crun"
        view_true="$build/tests/bench/cgroup-v1-view /bin/true"
        crun_ok=1
        $crun >"$T/crun.out" 2>&1 || crun_ok=0
    fi
    if [ "$crun_ok" = 0 ]; then
        why_not_crun="crun cannot run rootless here: $(tail -1 "$T/crun.out")"
        crun=
        view_true=
    fi
fi

echo "== container start -> exit of /bin/true (hyperfine -N, median of $rounds rounds of $runs runs)"
# Each round starts with another command: hyperfine measures the first of a
# run a few percent slower (seen both ways with the same two binaries).
: >"$T/m"
cmds=("$berth" "$bwrap")
[ -z "$crun" ] || cmds+=("$crun")
[ -z "$view_true" ] || cmds+=("$view_true" /bin/true)
for r in $(seq 0 $((rounds - 1))); do
    k=$((r % ${#cmds[@]}))
    order=("${cmds[@]:k}" "${cmds[@]:0:k}")
    hyperfine -N --warmup 5 --runs "$runs" --export-json "$T/hf.json" "${order[@]}" >/dev/null 2>&1 ||
        { echo "  hyperfine failed"; exit 0; }
    # One line per round, in the order of cmds whatever order it ran in.
    python3 -c 'import json,sys
m = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
print(" ".join("%.3f" % m[c] for c in sys.argv[2:]))' "$T/hf.json" "${cmds[@]}" >>"$T/m"
done
b=$(awk '{print $1}' "$T/m" | median)
w=$(awk '{print $2}' "$T/m" | median)
printf '  berth %7s ms  bwrap %7s ms  berth/bwrap %s (goal <= 1.0: %s)   rounds: %s\n' "$b" "$w" \
    "$(ratio "$b" "$w")" "$(goal "$(ratio "$b" "$w")" 1.0)" "$(awk '{printf "%s/%s ", $1, $2}' "$T/m")"
# crun_figure RAW VIEW_TRUE TRUE: crun's time, less cgroup-v1-view's own cost when it ran in one.
crun_figure() {
    if [ -z "$view_true" ]; then echo "$1"; else awk -v c="$1" -v v="$2" -v t="$3" 'BEGIN {printf "%.3f", c - (v - t)}'; fi
}
# crun_how RAW VIEW_TRUE TRUE: how crun ran, for its line.
crun_how() {
    [ -z "$view_true" ] || printf '  (run in cgroup-v1-view, as crun refuses this hybrid host: %s ms less its own %s ms)' \
        "$1" "$(awk -v v="$2" -v t="$3" 'BEGIN {printf "%.3f", v - t}')"
}
if [ -n "$crun" ]; then
    cr=$(awk '{print $3}' "$T/m" | median)
    vt=$(awk '{print $4}' "$T/m" | median)
    tt=$(awk '{print $5}' "$T/m" | median)
    c=$(crun_figure "$cr" "$vt" "$tt")
    printf '  crun  %7s ms  berth/crun %s (goal <= 0.4: %s)%s\n' "$c" "$(ratio "$b" "$c")" \
        "$(goal "$(ratio "$b" "$c")" 0.4)" "$(crun_how "$cr" "$vt" "$tt")"
else
    echo "  crun: not measured: $why_not_crun"
fi
# The same commands with their runs interleaved one by one (interleave.c says why).
# (The command lines split on spaces: their paths have none.)
# shellcheck disable=SC2086
if il=$("$build/tests/bench/interleave" "$((runs * rounds))" $berth :: $bwrap ${crun:+:: $crun} \
    ${view_true:+:: $view_true :: /bin/true}); then
    read -r ib iw icr ivt itt <<<"$il"
    ic=${icr:+$(crun_figure "$icr" "$ivt" "$itt")}
    printf '  interleaved (%s runs each): berth %s ms  bwrap %s ms  berth/bwrap %s (goal <= 1.0: %s)%s\n' \
        "$((runs * rounds))" "$ib" "$iw" "$(ratio "$ib" "$iw")" "$(goal "$(ratio "$ib" "$iw")" 1.0)" \
        "${ic:+  crun $ic ms  berth/crun $(ratio "$ib" "$ic")}"
else
    echo "  interleaved: a run failed"
fi
if grep -q "^$(id -un):" /etc/subuid; then
    mkdir -p "$T/sb"
    echo "  berth serve's spawner, in process (tests/bench/start-bench, $runs runs): $("$build/tests/bench/start-bench" "$T/sb" "$runs" | sed 's/median \([0-9.]*\) p90 \([0-9.]*\)/median \1 ms, p90 \2 ms/')"
fi

echo "== an idle container's init (it also serves the port agent): USS, after 1 s idle"
"$build/berth" container run "$T/empty" -- /bin/sleep 60 >/dev/null 2>&1 &
bg=$!
init=
for _ in $(seq 1 50); do init=$(pgrep -P "$bg" -x berth-init || true); [ -n "$init" ] && break; sleep 0.1; done
sleep 1
if [ -n "$init" ]; then
    echo "  $(bench_init_memory "$init")"
else
    echo "  no berth-init found under berth container run"
fi
