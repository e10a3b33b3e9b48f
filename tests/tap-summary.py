#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Reads meson's testlog.json files and prints the closing line of `make test`:
# `N passed, N failed, N skipped`, counting TAP cases (a test that failed
# without a `not ok` line, e.g. a crash or a timeout, counts as one failure).
# Exits non-zero when anything failed.
import json
import re
import sys

passed = failed = skipped = 0
def tests_in(path):
    """meson's testlog.json (one JSON object a line), or a raw TAP file."""
    with open(path) as f:
        if path.endswith(".tap"):
            out = f.read()
            # meson checks the plan of its own tests; here we do: a missing
            # plan, or fewer cases than planned, is a crash part way.
            plan = re.search(r"^1\.\.(\d+)", out, re.M)
            cases = len(re.findall(r"^(not )?ok\b", out, re.M))
            bad = not plan or cases != int(plan.group(1))
            yield {"name": path, "stdout": out, "result": "ERROR" if bad else "OK"}
            return
        for line in f:
            yield json.loads(line)


for path in sys.argv[1:]:
    for t in tests_in(path):
        out = t.get("stdout") or ""
        p = fl = s = 0
        for l in out.splitlines():
            if re.match(r"^ok\b", l):
                if re.search(r"#\s*SKIP", l, re.I):
                    s += 1
                else:
                    p += 1
            elif re.match(r"^not ok\b", l):
                if re.search(r"#\s*TODO", l, re.I):
                    continue
                fl += 1
            elif re.match(r"^1\.\.0\b.*#\s*SKIP", l, re.I):
                s += 1
        result = t.get("result", "")
        if result not in ("OK", "SKIP", "EXPECTEDFAIL") and fl == 0:
            fl = 1
            print("# %s: %s without a failing TAP case" % (t.get("name"), result), file=sys.stderr)
        if fl:
            print("# FAILED: %s (%s)" % (t.get("name"), path), file=sys.stderr)
            # What failed, and the end of what it said: CI keeps only this output.
            for l in out.splitlines():
                if re.match(r"^not ok\b", l):
                    print("#   " + l, file=sys.stderr)
            for l in (t.get("stderr") or out).splitlines()[-15:]:
                print("#   | " + l, file=sys.stderr)
        passed += p
        failed += fl
        skipped += s
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
