#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# git's banned.h as a check: berth's C sources never call strcpy, strcat,
# strncpy, sprintf, vsprintf or strtok (each has a bounded or strbuf-based
# replacement), and every C file opens with its SPDX line.
set -euo pipefail
cd "${SRCDIR:-$(dirname "$0")/..}"
n=0; failed=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find common receiver runner router buildpacks control tests -name '*.[ch]')
hits=$(grep -nE '\b(strcpy|strcat|strncpy|sprintf|vsprintf|strtok)\s*\(' $files | grep -v 'common/banned.h' | grep -vE '\b(snprintf|vsnprintf|asprintf|vasprintf)\b' || true)
n=$((n + 1))
if [ -z "$hits" ]; then echo "ok $n - no banned functions"; else echo "not ok $n - banned functions used:"; echo "$hits" | sed 's/^/# /'; failed=1; fi
missing=$(for f in $files; do head -1 "$f" | grep -q 'SPDX-License-Identifier' || echo "$f"; done)
n=$((n + 1))
if [ -z "$missing" ]; then echo "ok $n - every C file has an SPDX line"; else echo "not ok $n - files without SPDX:"; echo "$missing" | sed 's/^/# /'; failed=1; fi
echo "1..$n"
exit $failed
