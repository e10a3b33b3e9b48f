#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The router's libFuzzer targets (router/tests/fuzz-guard.c: the guard on
# every client byte; router/tests/fuzz-parse.c: Host, X-Request-Id, the
# forwarded-header rules, absolute-form targets, the response head parser,
# the chunked decoder) and the receiver's (receiver/tests/fuzz-commands.c:
# the pkt-line reader and receive-pack's command list; fuzz-upload.c:
# upload-pack's wants and haves), built with clang's libFuzzer and AddressSanitizer +
# UndefinedBehaviorSanitizer, each run for FUZZ_SECONDS (60) from its seed
# corpus. A finding fails the test and leaves the input in the work
# directory, named in the output (replay it with build/router/fuzz-*-replay).
# Without clang it skips, unless BERTH_MUST_WORK=1.
set -uo pipefail
src=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
secs=${FUZZ_SECONDS:-60}
n=0
if ! command -v clang >/dev/null; then
    if [ -n "${BERTH_MUST_WORK:-}" ]; then
        echo "not ok 1 - clang (with libFuzzer: libclang-rt-14-dev) is required"; echo "1..1"; exit 1
    fi
    echo "1..0 # SKIP clang not installed"; exit 0
fi
work=$(mktemp -d /tmp/berth-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
flags=(-g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$src"
       -DBERTH_FUZZ_LIBFUZZER)
fuzz() { # fuzz NAME CORPUS SOURCES...
    local name=$1 corpus=$2; shift 2
    local out="$work/$name.log"
    n=$((n + 1))
    if ! clang "${flags[@]}" "$@" -o "$work/$name" 2>"$out"; then
        echo "not ok $n - $name builds with clang -fsanitize=fuzzer"; sed 's/^/# /' "$out" | head -20; return
    fi
    echo "ok $n - $name builds with clang -fsanitize=fuzzer"
    n=$((n + 1))
    mkdir -p "$work/$name-corpus"
    if ASAN_OPTIONS=detect_leaks=1 "$work/$name" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$work/$name-" "$work/$name-corpus" "$corpus" >"$out" 2>&1; then
        echo "ok $n - $name: ${secs} s, $(awk '/stat::number_of_executed_units/ {print $2}' "$out") inputs, no finding"
    else
        echo "not ok $n - $name found a failing input"
        grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$out" | head -10 | sed 's/^/# /'
        # Keep the input for a human: copy it out of the work directory, which is removed.
        for f in "$work/$name"-crash-* "$work/$name"-leak-* "$work/$name"-timeout-*; do
            [ -e "$f" ] && cp "$f" /tmp/ && echo "# input kept: /tmp/$(basename "$f")"
        done
    fi
}
fuzz fuzz-guard "$src/router/tests/guard-corpus" "$src/router/guard.c" "$src/router/tests/fuzz-guard.c"
fuzz fuzz-parse "$src/router/tests/parse-corpus" "$src/router/parse.c" "$src/router/tests/fuzz-parse.c" \
    "$src/common/strbuf.c" "$src/common/xalloc.c"
# The receiver's: the pkt-line reader and receive-pack's command list, capabilities and push options.
fuzz fuzz-commands "$src/receiver/tests/commands-corpus" "$src/receiver/tests/fuzz-commands.c" \
    "$src/receiver/pktline.c" "$src/receiver/push.c" "$src/receiver/packscan.c" "$src/receiver/update.c" \
    "$src/receiver/repo.c" "$src/common/strbuf.c" "$src/common/xalloc.c" "$src/common/error.c" \
    "$src/common/fileio.c" -lgit2 -lz
# upload-pack's wants, haves and done against a one-commit repository (clone and fetch back).
fuzz fuzz-upload "$src/receiver/tests/upload-corpus" "$src/receiver/tests/fuzz-upload.c" "$src/receiver/upload.c" \
    "$src/receiver/pktline.c" "$src/receiver/push.c" "$src/receiver/packscan.c" "$src/receiver/update.c" \
    "$src/receiver/repo.c" "$src/common/strbuf.c" "$src/common/xalloc.c" "$src/common/error.c" \
    "$src/common/fileio.c" -lgit2 -lz
# The scan of a pushed pack (object and delta headers, the caps), fed in pieces of every size.
fuzz fuzz-packscan "$src/receiver/tests/packscan-corpus" "$src/receiver/tests/fuzz-packscan.c" \
    "$src/receiver/packscan.c" "$src/common/strbuf.c" "$src/common/xalloc.c" "$src/common/error.c" -lgit2 -lz
echo "1..$n"
