#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `--json` on the commands that show data, through a real `berth serve`:
# each prints the API's answer as it is (valid JSON, the keys the API
# documents), the plain form still prints text, and a wrong flag is a usage
# error (exit 2). Commands with their own tests (releases, domains, certs,
# router, events, ps, cron) are checked there. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
# json_has KEY...: $out is a JSON object with these keys.
json_has() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all(k in d for k in sys.argv[2:]), d' "$out" "$@"; }

"$BERTH" apps:create jay >/dev/null
"$BERTH" config:set jay --no-restart GREETING=hi >/dev/null

run apps --json
check "apps --json: the app list" python3 -c 'import json,sys; assert [a["name"] for a in json.load(open(sys.argv[1]))["apps"]] == ["jay"]' "$out"
run apps:list --json
check "apps:list --json too" json_has apps
run apps
check "apps without --json prints text" contains "$out" "=== Apps"
run apps:info jay --json
check "apps:info --json: the app's record" json_has name web_url git_url release buildpacks net
run buildpacks jay --json
check "buildpacks --json" json_has buildpacks
run config jay --json
check "config --json: the config vars" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["config"] == {"GREETING": "hi"}' "$out"
run config jay
check "config without --json prints text" contains "$out" "GREETING: hi"
run net jay --json
check "net --json: the app, with its network setting" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["net"]["outbound"] is False' "$out"
run checks jay --json
check "checks --json" python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"checks": "enabled"}' "$out"
run maintenance jay --json
check "maintenance --json: the router settings" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["router"].get("maintenance", d["defaults"]["maintenance"]) is False, d' "$out"
"$BERTH" maintenance:on jay >/dev/null
run maintenance jay --json
check "... which say when it is on" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["router"]["maintenance"] is True' "$out"
run ps:grace jay --json
check "ps:grace --json" python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"grace": 30, "default": True}' "$out"
run gc --dry-run --json
check "gc --dry-run --json" json_has dry_run keep removed bytes
for c in "apps --yaml" "apps:info jay --yaml" "buildpacks jay --yaml" "config jay --yaml" "net jay --yaml" \
         "checks jay --yaml" "maintenance jay --yaml" "gc --yaml"; do
    run $c
    check "$c: usage error, exit 2" test "$rc" = 2
done
run config nope --json
check "config --json of an unknown app: exit 1" test "$rc" = 1
done_testing
