#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Where a container start's time goes, phase by phase, berth beside bwrap.

start.sh says how the whole start compares; this says where the difference
is. As root (perf needs the tracepoints): it runs `berth container run
EMPTY -- /bin/true` and the same bwrap line as start.sh, RUNS times each, as
USER, taking turns, under `perf record` of the scheduler's exec, fork and exit events and
a few syscalls, and prints the median of each phase (milliseconds):

  exec->fork     the command's exec to the namespaces' clone
  fork->mount1   the clone to the child's first mount
  mount1->pivot  the child's mounts, up to pivot_root
  pivot->appfork the init's setup, to the app's fork
  appfork->exec  the app's setup (privileges, seccomp) and its execve
  exec->exit     /bin/true itself
  exit->done     the app's exit to the command's (teardown, cleanup)

Usage: tests/bench/start-phases.py BUILD_DIR [USER] [RUNS]
"""
import os
import statistics
import subprocess
import sys
import tempfile

EVENTS = ["sched:sched_process_exec", "sched:sched_process_fork", "sched:sched_process_exit",
          "syscalls:sys_enter_mount", "syscalls:sys_enter_pivot_root"]
PHASES = ["exec", "fork", "mount1", "pivot", "appfork", "texec", "texit", "done"]


def record(cmds, user, runs, data):
    """The commands take turns, so that both see the host in the same mood."""
    loop = "for i in $(seq %d); do %s; done" % (runs, "; ".join(c + " >/dev/null 2>&1" for c in cmds))
    args = ["perf", "record", "-q", "-a", "-o", data]
    for e in EVENTS:
        args += ["-e", e]
    subprocess.run(args + ["--", "runuser", "-u", user, "--", "bash", "-c", loop],
                   check=True, stderr=subprocess.DEVNULL)


def events(data):
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,time,event"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4:
            yield f[0], int(f[1]), float(f[2].rstrip(":")), f[3].rstrip(":")


def runs_of(data, front_comm):
    """One dict of phase times per start: the front is the exec'd command,
    its first fork the container's child, whose fork is the app's."""
    runs, cur = [], None
    for comm, pid, t, ev in events(data):
        if ev == "sched:sched_process_exec" and comm == front_comm:
            cur = {"front": pid, "exec": t}
            runs.append(cur)
            continue
        if cur is None:
            continue
        if pid == cur["front"]:
            if ev == "sched:sched_process_fork" and "fork" not in cur:
                cur["fork"] = t
                cur["child"] = pid + 1
            elif ev == "sched:sched_process_exit":
                cur["done"] = t
                cur = None
        elif pid == cur.get("child"):
            if ev == "syscalls:sys_enter_mount" and "mount1" not in cur:
                cur["mount1"] = t
            elif ev == "syscalls:sys_enter_pivot_root":
                cur["pivot"] = t
            elif ev == "sched:sched_process_fork" and "appfork" not in cur:
                cur["appfork"] = t
        elif comm == "true":
            if ev == "sched:sched_process_exec":
                cur["texec"] = t
            elif ev == "sched:sched_process_exit":
                cur["texit"] = t
    return [r for r in runs if all(k in r for k in PHASES)]


def medians(runs):
    res = {}
    for a, b in zip(PHASES, PHASES[1:]):
        res[a + "->" + b] = statistics.median((r[b] - r[a]) * 1000 for r in runs)
    res["total"] = statistics.median((r["done"] - r["exec"]) * 1000 for r in runs)
    return res


def main():
    if len(sys.argv) < 2 or os.geteuid() != 0:
        sys.exit("usage (as root): start-phases.py BUILD_DIR [USER] [RUNS]")
    build = os.path.abspath(sys.argv[1])
    user = sys.argv[2] if len(sys.argv) > 2 else "berth"
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    with tempfile.TemporaryDirectory(prefix="berth-phases.") as tmp:
        os.chmod(tmp, 0o755)
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        os.chmod(empty, 0o755)
        cmds = {
            "berth": ("berth", "%s/berth container run %s -- /bin/true" % (build, empty)),
            "bwrap": ("bwrap", "bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr "
                               "--symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin "
                               "--proc /proc --dev /dev /bin/true"),
        }
        data = os.path.join(tmp, "perf.data")
        record([cmd for _, cmd in cmds.values()], user, runs, data)
        table = {}
        for name, (comm, _) in cmds.items():
            got = runs_of(data, comm)
            if not got:
                sys.exit("%s: no complete run in the trace" % name)
            table[name] = (medians(got), len(got))
    print("phase (ms, medians)   berth    bwrap")
    for key in table["berth"][0]:
        print("  %-18s %7.3f  %7.3f" % (key, table["berth"][0][key], table["bwrap"][0][key]))
    print("  runs               %7d  %7d" % (table["berth"][1], table["bwrap"][1]))


if __name__ == "__main__":
    main()
