#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/bench/tree-mem.py, which `make bench` uses to compare the router's
# idle memory with nginx's (one process against a master and a worker),
# on a tree whose answer is known: a parent that wrote 16 MiB of anonymous
# memory and then forked a child, so the two share those pages copy-on-
# write and no other process maps them. Summed per process, USS leaves
# them out; the USS of the tree counts them once; the child alone, whose
# copy the parent (outside its tree) shares, has none of them. The tree
# figure needs root (page frame numbers); as a normal user it is "-" and
# the sums are still given. As root, also the reader make bench keeps as
# root (--serve): its answers, and its refusal for another user's
# processes. Run as the berth user by meson and as root by
# tests/run-tests.sh's root phase. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
tool=$SRCDIR/tests/bench/tree-mem.py

/usr/bin/python3 -c '
import os, sys, time
buf = bytearray(16 << 20)
for i in range(0, len(buf), 4096):
    buf[i] = 1
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
print(os.getpid(), child, flush=True)
time.sleep(60)
' >"$TEST_DIR/pids" &
holder=$!
for _ in $(seq 1 50); do [ -s "$TEST_DIR/pids" ] && break; sleep 0.1; done
read -r parent child <"$TEST_DIR/pids"
sleep 0.2   # the child is running its sleep, past the fork's last writes

between() { [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; } # between VALUE LOW HIGH: LOW <= VALUE < HIGH
read -r rss pss uss tree < <(/usr/bin/python3 "$tool" "$parent")
read -r crss cpss cuss ctree < <(/usr/bin/python3 "$tool" "$child")
echo "# tree: RSS $rss PSS $pss USS $uss tree-USS $tree; child alone: RSS $crss USS $cuss tree-USS $ctree"
check "the tree's RSS counts the shared 16 MiB in both processes ($rss kB)" [ "$rss" -ge 32768 ]
check "its PSS counts them once ($pss kB)" between "$pss" 16384 32768
check "USS summed per process leaves them out ($uss kB)" [ "$uss" -lt 16384 ]
if [ "$(id -u)" = 0 ]; then
    check "the USS of the tree counts them once ($tree kB)" between "$tree" 16384 32768
    check "the child alone shares them with its parent, outside its tree: none counted ($ctree kB)" \
        [ "$ctree" -lt 16384 ]
else
    check "without root the USS of the tree is not guessed: '-' ($tree)" [ "$tree" = - ]
fi

# The reader make bench keeps as root: it answers over two FIFOs, for one
# user's processes (and its subordinate ids') only.
if [ "$(id -u)" = 0 ]; then
    mkfifo "$TEST_DIR/req" "$TEST_DIR/rep"
    /usr/bin/python3 "$tool" --serve "$TEST_DIR" "$(id -u)" &
    reader=$!
    exec 8>"$TEST_DIR/req" 7<"$TEST_DIR/rep"
    ask() { local a; echo "$*" >&8; read -r a <&7 && echo "$a"; }
    read -r _ _ _ stree < <(ask "$parent")
    read -r _ _ suss sone < <(ask one "$parent")
    check "the reader gives the tree's USS as tree-mem.py does ($stree kB)" between "$stree" 16384 32768
    check "... and the parent alone when asked 'one PID' (USS $suss kB)" [ "$suss" -lt 16384 ]
    check "... whose 16 MiB, shared with its child, are not its own ($sone kB)" [ "$sone" -lt 16384 ]
    # Questions back to back: each gets its own answer (a FIFO opened afresh
    # per answer once let a question meet the last answer's writer and read
    # nothing, leaving the reader stuck on an answer nobody took).
    n=0
    for _ in $(seq 1 30); do [ "$(ask one "$child" | wc -w)" = 4 ] && n=$((n + 1)); done
    check "30 questions back to back, 30 answers ($n)" [ "$n" = 30 ]
    exec 8>&- 7<&-
    wait "$reader" 2>/dev/null || true
    check "the reader ends at the end of its input" [ ! -d "/proc/$reader" ]
    rm -f "$TEST_DIR/req" "$TEST_DIR/rep"
    mkfifo "$TEST_DIR/req" "$TEST_DIR/rep"
    /usr/bin/python3 "$tool" --serve "$TEST_DIR" 4242 &
    reader=$!
    exec 8>"$TEST_DIR/req" 7<"$TEST_DIR/rep"
    check "a reader for uid 4242 does not answer for root's processes" [ "$(ask "$parent")" = "- - - -" ]
    check "... nor for a request that is not a pid" [ "$(ask one x)" = "- - - -" ]
    exec 8>&- 7<&-
    wait "$reader" 2>/dev/null || true
fi

r=0
/usr/bin/python3 "$tool" >"$TEST_DIR/usage" 2>&1 || r=$?
check "no pid: a failure (exit $r)" [ "$r" != 0 ]
check "... with the usage line" contains "$TEST_DIR/usage" "usage: tree-mem.py"
r=0
/usr/bin/python3 "$tool" 999999999 >"$TEST_DIR/gone" 2>&1 || r=$?
check "a pid that does not exist: no trace (exit $r)" [ "$r" = 0 ]
check "... and zeros" grep -q '^0 0 0 ' "$TEST_DIR/gone"

kill "$child" "$parent" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
done_testing
