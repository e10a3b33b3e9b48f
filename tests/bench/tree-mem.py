#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The memory of a process tree, for tests/bench/run.sh's idle-memory
# comparison (berth's router, one process, against nginx's master and
# worker):
#   tree-mem.py PID     prints "RSS PSS USS TREE_USS" in kB over PID and
#                       all its descendants;
#   tree-mem.py one PID the same for PID alone.
# RSS, PSS and USS are the sums of each process's smaps_rollup (USS =
# Private_Clean + Private_Dirty). A sum of per-process USS undercounts a
# tree of several processes: a page that nginx's master and worker share,
# and no other process maps (the code of libcrypto and of nginx itself,
# the configuration the master parsed before forking), is private to
# neither, so it counts in neither, though it is the tree's alone and goes
# when the tree goes. TREE_USS counts each physical page the tree maps once
# and keeps those no process outside the tree maps: the USS of the tree as
# one program. It needs the page frame numbers of /proc/PID/pagemap and
# /proc/kpagecount, which only root reads; without them it prints "-".
#
# Run as root by run.sh's memory reader (serve mode, below) while the
# rest of the benchmark runs as the berth user:
#   tree-mem.py --serve DIR UID  answers, for each line "PID" (the tree) or
#                       "one PID" (that process alone) read from the FIFO
#                       DIR/req, one line on the FIFO DIR/rep; only for
#                       processes of UID or of its subordinate ids (a
#                       container's init runs as one, not dumpable, so only
#                       root reads its smaps); ends at end of input.
#                       Both FIFOs stay open for the whole session, req
#                       first (the asker opens them in the same order):
#                       a FIFO opened afresh per answer would let the next
#                       question's reader meet the last answer's writer
#                       still open and read nothing.
import os
import pwd
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1


def tree(pid):
    """PID and all its descendants, found through each task's children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rollup_sums(pids):
    kb = {"Rss": 0, "Pss": 0, "Private_Clean": 0, "Private_Dirty": 0}
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in kb:
                        kb[key] += int(rest.split()[0])
        except OSError:
            pass
    return kb["Rss"], kb["Pss"], kb["Private_Clean"] + kb["Private_Dirty"]


def mapped_frames(pid, counts):
    """Adds, per page frame pid maps, one to counts[frame]. False if the frames are hidden (not root)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pm:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if "[vsyscall]" in line:
                continue
            pm.seek(lo // PAGE * 8)
            data = pm.read((hi - lo) // PAGE * 8)
            for (entry,) in struct.iter_unpack("<Q", data):
                if not entry & PRESENT:
                    continue
                frame = entry & PFN_MASK
                if frame == 0:
                    return False
                counts[frame] = counts.get(frame, 0) + 1
    return True


def tree_uss_kb(pids):
    counts = {}
    try:
        for p in pids:
            if not mapped_frames(p, counts):
                return None
        unique = 0
        with open("/proc/kpagecount", "rb") as kc:
            for frame, in_tree in counts.items():
                kc.seek(frame * 8)
                (mapcount,) = struct.unpack("<Q", kc.read(8))
                if mapcount <= in_tree:
                    unique += 1
        return unique * PAGE // 1024
    except OSError:
        return None


def parse_request(words):
    """(pid, alone) from "PID" (the tree) or "one PID" (that process alone); ValueError otherwise."""
    if len(words) == 1:
        return int(words[0]), False
    if len(words) == 2 and words[0] == "one":
        return int(words[1]), True
    raise ValueError("not a request: " + " ".join(words))


def measure(pid, alone=False):
    pids = [pid] if alone else tree(pid)
    rss, pss, uss = rollup_sums(pids)
    t = tree_uss_kb(pids)
    return f"{rss} {pss} {uss} {'-' if t is None else t}"


def subordinate_uids(uid):
    """The ranges /etc/subuid gives uid (by name or number), as (first, count)."""
    names = {str(uid)}
    try:
        names.add(pwd.getpwuid(uid).pw_name)
    except KeyError:
        pass
    ranges = []
    try:
        with open("/etc/subuid") as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in names:
                    ranges.append((int(parts[1]), int(parts[2])))
    except OSError:
        pass
    return ranges


def serve(fifo_dir, uid):
    ranges = subordinate_uids(uid)

    def allowed(owner):
        return owner == uid or any(first <= owner < first + count for first, count in ranges)

    # Each open blocks until the benchmark opens the other end; req's end of input ends the reader.
    with open(os.path.join(fifo_dir, "req")) as req, open(os.path.join(fifo_dir, "rep"), "w") as rep:
        for line in req:
            try:
                pid, alone = parse_request(line.split())
                answer = measure(pid, alone) if allowed(os.stat(f"/proc/{pid}").st_uid) else "- - - -"
            except (ValueError, OSError):
                answer = "- - - -"
            rep.write(answer + "\n")
            rep.flush()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        try:
            print(measure(*parse_request(sys.argv[1:])))
        except ValueError:
            sys.exit("usage: tree-mem.py [one] PID | tree-mem.py --serve FIFO_DIR UID")
