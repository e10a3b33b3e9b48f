#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Tenants, scoped tokens and apps:destroy through a real `berth serve`,
# the real git client, curl and the `berth` CLI: the admin creates tenants
# (each token printed once, stored as a hash, each tenant in its own id
# slice); a tenant's app answers 404 to another tenant on every route of
# the API and on git, exactly as a missing app, while the admin reaches
# it (and a config change the admin makes runs with the owner's slug);
# scoped tokens (deploy: push and config, no apps or tokens; read: GET
# only, config names without values, no push; limited to one app: others
# 404); revoked, rotated-away and destroyed tenants' tokens answer 401;
# apps:create without a name picks a random DNS label; apps:destroy stops
# the app and removes its repository, records, certificates, cgroups and
# the slugs no other app of the tenant uses, and a push to it afterwards
# fails cleanly; tenants:destroy; no free id slice; two tenants in one
# slice stop `berth serve`; a destroy a crash interrupted is finished at
# the next start. Bad input each with its status, exit code and
# nothing changed. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
ADMIN=$BERTH_TOKEN
out=$TEST_DIR/out
err=$TEST_DIR/err
as() { # as TOKEN berth-args...: exit code in $rc, stdout in $out, stderr in $err
    local tok=$1; shift
    rc=0; BERTH_TOKEN=$tok "$BERTH" "$@" >"$out" 2>"$err" || rc=$?
}
api() { # api TOKEN METHOD PATH [BODY]: the status in $status, the body in $out
    status=$(curl -sS -o "$out" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
        ${4:+-H 'Content-Type: application/json' --data "$4"} "$BERTH_URL$3")
}
git_status() { # git_status TOKEN APP SERVICE: the status of the ref advertisement
    curl -s -o /dev/null -w '%{http_code}' "http://x:$1@127.0.0.1:$CONTROL_PORT/$2.git/info/refs?service=$3"
}
token_of() { tail -1 "$1" | grep -Ex '[0-9a-f]{64}'; }
has_token() { token_of "$1" >/dev/null; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$out"; }
tenant_count() { ls "$home/tenants" | wc -l; }
# The cgroup of "<tenant>/<app>" (the memory controller's on cgroup v1), below berth's delegated one.
app_cgroup() { berth_cgroup memory "$1"; }
push_as() { # push_as TOKEN DIR APP OUT
    git -C "$2" push --progress "http://x:$1@127.0.0.1:$CONTROL_PORT/$3.git" main >"$4" 2>&1
}

# ---------------------------------------------------------------- tenants:create
as "$ADMIN" tenants:create acme
check "tenants:create acme" test "$rc" = 0
check "... prints its token alone on the last line" has_token "$out"
A=$(token_of "$out")
check "... in id slice 1 (the admin holds 0)" contains "$out" "done, id slice 1"
check "... and stores only its hash" \
    bash -c "! grep -q '$A' '$home/tenants/acme.json' && grep -q \$(printf %s '$A' | sha256sum | cut -c1-64) '$home/tenants/acme.json'"
as "$ADMIN" tenants:create beta
B=$(token_of "$out" || true)
check "tenants:create beta: slice 2" test "$rc" = 0 -a -n "$B" -a "$(grep -c 'id slice 2' "$out")" = 1
as "$A" apps:list
check "acme's token authenticates" test "$rc" = 0
as "$ADMIN" tenants:list --json
check "tenants:list --json: admin, acme, beta with their slices" \
    test "$(json '[(t["name"], t["slice"]) for t in d["tenants"]]')" = "[('acme', 1), ('admin', 0), ('beta', 2)]"
as "$ADMIN" tenants:list
check "tenants:list" grep -Eq '^beta +slice 2 ' "$out"

n=$(tenant_count)
for bad in Bad_Name admin stacks 1abc "a.b" "$(printf 'x%.0s' {1..31})"; do
    as "$ADMIN" tenants:create "$bad"
    check "tenants:create '$bad' is refused (400, exit 1)" \
        test "$rc" = 1 -a "$(grep -c 'HTTP 400' "$err")" = 1
done
as "$ADMIN" tenants:create acme
check "a second tenant acme: 409, exit 1" test "$rc" = 1 -a "$(grep -c 'already exists (HTTP 409)' "$err")" = 1
as "$ADMIN" tenants:create
check "tenants:create without a name: usage, exit 2" test "$rc" = 2
as "$A" tenants:create evil
check "a tenant cannot create tenants: 403, exit 1" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$A" tenants:list
check "... nor list them (403)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$A" tenants:destroy beta --confirm beta
check "... nor destroy one (403)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
check "... and none of that changed the tenants" test "$(tenant_count)" = "$n" -a -f "$home/tenants/beta.json"
api nonsense GET /apps
check "an unknown token: 401" test "$status" = 401

# ---------------------------------------------------------------- one tenant's app
src=$TEST_DIR/src
cp -a "$SRCDIR/tests/apps/greet" "$src"
git -C "$src" init -q -b main
commit_all "$src" "greet"
as "$A" apps:create shop
check "acme creates shop" test "$rc" = 0
if push_as "$A" "$src" shop "$TEST_DIR/push"; then ok "acme pushes shop"; else
    not_ok "acme pushes shop"; diag "$TEST_DIR/push"; fi
check "shop serves" wait_body shop.localhost / "greeting=unset" 20
as "$A" config:set shop SECRET=hunter2 --no-restart
check "acme sets a config var on shop" test "$rc" = 0
as "$B" apps:create bapp
check "beta creates bapp" test "$rc" = 0

as "$B" apps:list
check "beta's apps:list has bapp, not shop" test "$(grep -c '^shop$' "$out")" = 0 -a "$(grep -c '^bapp$' "$out")" = 1
as "$ADMIN" apps:list
check "the admin's apps:list has both" test "$(grep -c '^shop$' "$out")" = 1 -a "$(grep -c '^bapp$' "$out")" = 1

# Every route of an app, as beta: the same 404 as an app that does not exist.
routes=(
    "GET /apps/%s" "DELETE /apps/%s?confirm=%s" "GET /apps/%s/buildpacks" "PUT /apps/%s/buildpacks"
    "PATCH /apps/%s/build" "PATCH /apps/%s/net" "GET /apps/%s/checks" "PATCH /apps/%s/checks"
    "GET /apps/%s/ps" "PATCH /apps/%s/ps" "GET /apps/%s/config" "PATCH /apps/%s/config"
    "GET /apps/%s/domains" "POST /apps/%s/domains" "DELETE /apps/%s/domains/www.example.com"
    "GET /apps/%s/certs" "POST /apps/%s/certs" "DELETE /apps/%s/certs/abc" "GET /apps/%s/router"
    "PATCH /apps/%s/router" "GET /apps/%s/releases" "POST /apps/%s/releases" "GET /apps/%s/formation"
    "GET /apps/%s/dynos" "GET /apps/%s/logs" "POST /apps/%s/run" "GET /events?app=%s"
)
bodies='{"name":"www.example.com","buildpacks":[],"GREETING":"pwned","rollback":1,"outbound":true}'
denied=0 same=0
for r in "${routes[@]}"; do
    method=${r%% *}
    # shellcheck disable=SC2059
    path=$(printf "${r#* }" shop shop)
    api "$B" "$method" "$path" "$bodies"
    body_shop=$(cat "$out")
    st_shop=$status
    # shellcheck disable=SC2059
    api "$B" "$method" "$(printf "${r#* }" nosuch nosuch)" "$bodies"
    if [ "$st_shop" = 404 ]; then denied=$((denied + 1)); else echo "# $method $path as beta: $st_shop $body_shop"; fi
    [ "$body_shop" = "$(sed 's/nosuch/shop/g' "$out")" ] && [ "$status" = 404 ] && same=$((same + 1))
done
check "beta gets 404 on every one of ${#routes[@]} routes of acme's shop" test "$denied" = "${#routes[@]}"
check "... with the very answer of an app that does not exist" test "$same" = "${#routes[@]}"
check "beta's git ref advertisement of shop: 404" test "$(git_status "$B" shop git-receive-pack)" = 404
check "... and for a fetch too" test "$(git_status "$B" shop git-upload-pack)" = 404
echo "by beta" >"$src/beta.txt"
commit_all "$src" "beta was here"
if push_as "$B" "$src" shop "$TEST_DIR/push"; then not_ok "beta cannot push to shop"; else
    check "beta cannot push to shop (not found)" contains "$TEST_DIR/push" "app 'shop' does not exist"; fi
as "$B" config shop
check "beta's berth config shop: exit 1, 'does not exist'" test "$rc" = 1 -a "$(grep -c "app 'shop' does not exist" "$err")" = 1
as "$B" events
check "beta's events show nothing of shop" not_contains "$out" "shop"
as "$A" config shop
check "shop's config is unchanged by beta" test "$(grep -c GREETING "$out")" = 0 -a "$(grep -c hunter2 "$out")" = 1
as "$A" domains shop --json
check "... and so are its domains" not_contains "$out" "www.example.com"
as "$A" releases shop --json
check "... and its releases (one)" test "$(json 'len(d["releases"])')" = 1
check "... and it still serves" wait_body shop.localhost / "greeting=unset" 5

# ---------------------------------------------------------------- the admin reaches every app
api "$ADMIN" GET /apps/shop
check "the admin reads acme's shop" test "$status" = 200
as "$ADMIN" config:set shop GREETING=from-admin
check "the admin changes shop's config: a new release" test "$rc" = 0 -a "$(grep -c 'done, v2' "$out")" = 1
check "... which serves, from acme's slug" wait_body shop.localhost / "greeting=from-admin" 20
check "... the slug stays in acme's layers" test "$(ls "$home/layers/admin" 2>/dev/null | wc -l)" = 0

# ---------------------------------------------------------------- scoped tokens
as "$A" apps:create other
as "$A" tokens:create --app shop --role deploy
check "tokens:create --app shop --role deploy" test "$rc" = 0
D=$(token_of "$out" || true)
D_ID=$(sed -n 's/.*done, id \([0-9a-f]*\)$/\1/p' "$out")
check "... prints the token and its id" test -n "$D" -a -n "$D_ID"
as "$A" tokens:create --role read --app shop
R=$(token_of "$out" || true)
as "$A" tokens:create --role read
RA=$(token_of "$out" || true)
check "a read token for shop and one for every app" test -n "$R" -a -n "$RA"
as "$A" tokens --json
check "tokens --json: three, with role and app" \
    test "$(json 'sorted((t["role"], t["app"] or "*") for t in d["tokens"])')" = "[('deploy', 'shop'), ('read', '*'), ('read', 'shop')]"
check "... never a token or a hash" bash -c "! grep -Eq '[0-9a-f]{64}' '$out'"
as "$A" tokens
check "tokens lists them" grep -Eq "^$D_ID +deploy +shop " "$out"
for bad in "--role admin" "--role owner" "--app shop" "--role" "--role deploy --bogus"; do
    # shellcheck disable=SC2086
    as "$A" tokens:create $bad
    check "tokens:create $bad: usage, exit 2" test "$rc" = 2
done
as "$A" tokens:create --app nosuch --role read
check "tokens:create for a missing app: 404, exit 1" test "$rc" = 1 -a "$(grep -c 'HTTP 404' "$err")" = 1
as "$A" tokens:create --app bapp --role read
check "... and for beta's app: the same 404" test "$rc" = 1 -a "$(grep -c "app 'bapp' does not exist (HTTP 404)" "$err")" = 1
as "$A" tokens --json
check "... nothing was created" test "$(json 'len(d["tokens"])')" = 3

# deploy, limited to shop
as "$D" apps:list
check "the deploy token's apps:list is just shop" test "$(grep -vc '^===' "$out")" = 1 -a "$(grep -c '^shop$' "$out")" = 1
git -C "$src" reset -q --hard HEAD~1
echo "v3" >"$src/v3.txt"
commit_all "$src" "deployed by CI"
if push_as "$D" "$src" shop "$TEST_DIR/push"; then ok "the deploy token pushes shop"; else
    not_ok "the deploy token pushes shop"; diag "$TEST_DIR/push"; fi
as "$D" config:set shop STAGE=ci
check "... sets its config" test "$rc" = 0
as "$D" config shop
check "... and reads the values" contains "$out" "hunter2"
as "$D" apps:create ci-made
check "... but cannot create apps (403, exit 1)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$D" apps:create
check "... not even with a random name" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$D" tokens:create --role deploy
check "... nor tokens (403)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$D" tokens
check "... nor list them (403)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$D" tokens:rotate
check "... nor rotate its tenant's token (403)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$D" apps:destroy shop --confirm shop
check "... nor destroy shop (403)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
api "$D" GET /apps/other
check "... and acme's other app is 404 to it" test "$status" = 404
check "... on git too" test "$(git_status "$D" other git-receive-pack)" = 404

# read
api "$R" GET /apps/shop
check "the read token GETs shop" test "$status" = 200
as "$R" config shop
check "... sees the config names" test "$rc" = 0 -a "$(grep -c '^SECRET: *(hidden)$' "$out")" = 1
check "... never their values" not_contains "$out" "hunter2"
api "$R" GET /apps/shop/config
check "... in the API too (values null, values_hidden)" \
    test "$(json '(d["values_hidden"], d["config"]["SECRET"])')" = "(True, None)"
as "$R" config:set shop STAGE=read
check "... cannot change config (403, exit 1)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
api "$R" PATCH /apps/shop/checks '{"checks":"skipped"}'
check "... nor settings (403)" test "$status" = 403
api "$R" POST /apps/shop/releases '{"rollback":1}'
check "... nor roll back (403)" test "$status" = 403
check "... its git push is refused: 403" test "$(git_status "$R" shop git-receive-pack)" = 403
echo "v4" >"$src/v4.txt"
commit_all "$src" "pushed with a read token"
if push_as "$R" "$src" shop "$TEST_DIR/push"; then not_ok "a read token cannot push"; else
    check "a read token cannot push ('its role is read')" contains "$TEST_DIR/push" "role is read"; fi
check "... but it may fetch: the upload-pack advertisement is 200" \
    test "$(git_status "$R" shop git-upload-pack)" = 200
api "$RA" GET /apps/other
check "the tenant-wide read token reads every app of acme" test "$status" = 200
api "$RA" GET /apps/bapp
check "... none of beta's" test "$status" = 404
as "$A" releases shop --json
check "shop is at v4 (push, config by admin, push, config by CI): nothing from the read token" \
    test "$(json 'd["current"]')" = 4

# revoke and rotate
as "$A" tokens:revoke "$D_ID"
check "tokens:revoke" test "$rc" = 0
api "$D" GET /apps
check "... the revoked token: 401" test "$status" = 401
check "... on git too" test "$(git_status "$D" shop git-receive-pack)" = 401
as "$A" tokens:revoke 0123456789ab
check "tokens:revoke of an unknown id: 404, exit 1" test "$rc" = 1 -a "$(grep -c 'HTTP 404' "$err")" = 1
as "$A" tokens:revoke '../x'
check "tokens:revoke of a malformed id: exit 1" test "$rc" = 1
as "$A" tokens:revoke
check "tokens:revoke without an id: usage, exit 2" test "$rc" = 2
as "$B" tokens:revoke "$(sed -n 's/.*"id": "\([0-9a-f]*\)".*/\1/p' "$home/tenants/acme.json" | head -1)"
check "beta cannot revoke acme's tokens (404)" test "$rc" = 1 -a "$(grep -c 'HTTP 404' "$err")" = 1
as "$A" tokens:rotate
A2=$(token_of "$out" || true)
check "tokens:rotate prints a new token" test "$rc" = 0 -a -n "$A2" -a "$A2" != "$A"
api "$A" GET /apps
check "... the old one: 401 at once" test "$status" = 401
api "$A2" GET /apps/shop
check "... the new one works" test "$status" = 200
api "$R" GET /apps/shop
check "... scoped tokens live on" test "$status" = 200
A=$A2

# ---------------------------------------------------------------- random names
as "$A" apps:create
n1=$(sed -n 's/^Creating app... done, \(.*\)$/\1/p' "$out")
check "apps:create without a name picks one (adjective-noun-NNNN)" \
    bash -c "[[ '$n1' =~ ^[a-z]+-[a-z]+-[0-9]{4}$ ]]"
as "$A" apps:create
n2=$(sed -n 's/^Creating app... done, \(.*\)$/\1/p' "$out")
check "... another one next time" test -n "$n2" -a "$n2" != "$n1"
api "$A" GET "/apps/$n1"
check "... and it is acme's" test "$status" = 200
api "$A" POST /apps '{"name":42}'
check "POST /apps with a name that is no string: 400" test "$status" = 400

# ---------------------------------------------------------------- apps:destroy
# twin is built from the same commit as shop's first release: the same slug.
twin_src=$TEST_DIR/twin
cp -a "$SRCDIR/tests/apps/greet" "$twin_src"
git -C "$twin_src" init -q -b main
commit_all "$twin_src" "greet"
as "$A" apps:create twin
if push_as "$A" "$twin_src" twin "$TEST_DIR/push"; then ok "acme pushes twin"; else
    not_ok "acme pushes twin"; diag "$TEST_DIR/push"; fi
slug_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["slug"])' "$home/apps/$1/releases/$2.json"; }
shared=$(slug_of twin 1)
own=$(slug_of shop 3)
check "twin's slug is shop's first one, shop's v3 has its own" test "$shared" = "$(slug_of shop 1)" -a "$own" != "$shared"
check "... both in acme's layers" test -d "$home/layers/acme/$shared" -a -d "$home/layers/acme/$own"
as "$A" apps:destroy shop
check "apps:destroy without --confirm: usage, exit 2" test "$rc" = 2 -a "$(grep -c 'confirm' "$err")" -ge 1
as "$A" apps:destroy shop --confirm shoq
check "... with another name: exit 1" test "$rc" = 1 -a "$(grep -c 'does not match' "$err")" = 1
api "$A" DELETE /apps/shop
check "... DELETE /apps/shop without ?confirm: 400" test "$status" = 400
api "$A" DELETE "/apps/shop?confirm=twin"
check "... with another confirm: 400" test "$status" = 400
check "... nothing was removed: shop serves" wait_body shop.localhost / "greeting=from-admin" 5
check "... its repository is there" test -d "$home/apps/shop/repo.git"
cg=$(app_cgroup acme/shop)
check "... and it runs, in its cgroup" test -n "$(cat "$cg"/*/cgroup.procs 2>/dev/null)"
as "$A" run:detached shop -- sleep 600
check "... with a one-off run in progress" test "$rc" = 0
for _ in $(seq 1 50); do [ "$(cat "$cg"/*/cgroup.procs 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.2; done
as "$A" apps:destroy shop --confirm shop
check "apps:destroy shop --confirm shop" test "$rc" = 0
check "... its records and repository are gone" test ! -e "$home/apps/shop"
check "... nothing is left in apps/ of it" test -z "$(ls -a "$home/apps" | grep shop || true)"
check "... its own slug is gone" test ! -e "$home/layers/acme/$own"
check "... the slug twin uses stays" test -d "$home/layers/acme/$shared"
check "... twin still serves" wait_body twin.localhost / "greeting=unset" 5
check "... shop's route is gone" bash -c "! curl -s -H 'Host: shop.localhost' http://127.0.0.1:$HTTP_PORT/ | grep -q greeting"
check "... its processes, the one-off's too, and cgroups are gone (the kernel removes no populated cgroup)" test ! -e "$cg"
check "... twin's are there" test -n "$(cat "$(app_cgroup acme/twin)"/*/cgroup.procs 2>/dev/null)"
api "$A" GET /apps/shop
check "... GET /apps/shop: 404" test "$status" = 404
as "$A" tokens --json
check "... the tokens limited to shop are revoked" test "$(json '[t["app"] for t in d["tokens"]]')" = "[None]"
echo "v5" >"$src/v5.txt"
commit_all "$src" "after the destroy"
if push_as "$A" "$src" shop "$TEST_DIR/push"; then not_ok "a push to a destroyed app fails"; else
    check "a push to a destroyed app fails: 'does not exist'" contains "$TEST_DIR/push" "app 'shop' does not exist"; fi
as "$A" apps:destroy shop --confirm shop
check "destroying it again: 404, exit 1" test "$rc" = 1 -a "$(grep -c 'HTTP 404' "$err")" = 1
as "$A" apps:create shop
check "the name is free again" test "$rc" = 0
# The name passes to another tenant: nothing of acme's app goes with it.
as "$ADMIN" tokens:create --app shop --role deploy
AD=$(token_of "$out" || true)
check "the admin makes a deploy token limited to acme's new shop" test "$rc" = 0 -a -n "$AD"
as "$A" config:set shop --no-restart ACME_ONLY=1
as "$A" apps:destroy shop --confirm shop
sleep 1   # the audit log's times are to the second
as "$B" apps:create shop
check "beta takes the name shop" test "$rc" = 0
api "$B" GET "/events?app=shop"
check "... its events of shop are its own app's, none of acme's before" python3 -c 'import json,sys
ev = json.load(open(sys.argv[1]))["events"]
assert ev and all(e["user"] == "beta" for e in ev) and not any("ACME_ONLY" in e["description"] for e in ev), ev' "$out"
api "$AD" GET /apps/shop/config
check "... the admin's token limited to acme's shop went with it: beta's shop refuses it (401)" test "$status" = 401
as "$B" apps:destroy shop --confirm shop
as "$ADMIN" apps:destroy "$n1" --confirm "$n1"
check "the admin destroys an app of acme" test "$rc" = 0 -a ! -e "$home/apps/$n1"

# A destroy during a deploy waits for it, then removes what it made.
slow=$TEST_DIR/slow
cp -a "$SRCDIR/tests/apps/greet" "$slow"
printf 'release: sleep 3\nweb: exec python3 -u app.py\n' >"$slow/Procfile"
git -C "$slow" init -q -b main
commit_all "$slow" "slow release phase"
as "$A" apps:create slow
push_as "$A" "$slow" slow "$TEST_DIR/slowpush" &
push_pid=$!
for _ in $(seq 1 100); do grep -q "Running release command" "$TEST_DIR/slowpush" 2>/dev/null && break; sleep 0.2; done
as "$A" apps:destroy slow --confirm slow
wait "$push_pid" && push_rc=0 || push_rc=$?
check "apps:destroy during a deploy: the deploy finishes, then the app is gone" \
    test "$rc" = 0 -a "$push_rc" = 0 -a ! -e "$home/apps/slow"
check "... and nothing of it runs" test ! -e "$(app_cgroup acme/slow)"

# ---------------------------------------------------------------- tenants:destroy
bsrc=$TEST_DIR/bsrc
cp -a "$SRCDIR/tests/apps/greet" "$bsrc"
echo beta >"$bsrc/beta.txt"
git -C "$bsrc" init -q -b main
commit_all "$bsrc" "beta's"
if push_as "$B" "$bsrc" bapp "$TEST_DIR/push"; then ok "beta pushes bapp"; else not_ok "beta pushes bapp"; diag "$TEST_DIR/push"; fi
as "$ADMIN" tenants:destroy beta
check "tenants:destroy without --confirm: usage, exit 2" test "$rc" = 2
as "$ADMIN" tenants:destroy beta --confirm acme
check "... with another name: exit 1" test "$rc" = 1
api "$ADMIN" DELETE /tenants/beta
check "... DELETE /tenants/beta without ?confirm: 400" test "$status" = 400
as "$ADMIN" tenants:destroy admin --confirm admin
check "the admin tenant cannot be destroyed (403, exit 1)" test "$rc" = 1 -a "$(grep -c 'HTTP 403' "$err")" = 1
as "$ADMIN" tenants:destroy nosuch --confirm nosuch
check "a tenant that does not exist: 404, exit 1" test "$rc" = 1 -a "$(grep -c 'HTTP 404' "$err")" = 1
check "... nothing changed: beta and bapp are there" test -f "$home/tenants/beta.json" -a -d "$home/apps/bapp"
api "$B" GET /apps/bapp
check "... beta's token works" test "$status" = 200
as "$ADMIN" tenants:destroy beta --confirm beta
check "tenants:destroy beta --confirm beta" test "$rc" = 0 -a "$(grep -c 'done, 1 apps destroyed' "$out")" = 1
api "$B" GET /apps
check "... beta's token: 401" test "$status" = 401
check "... on git too" test "$(git_status "$B" bapp git-receive-pack)" = 401
check "... its app, slugs, record and cgroups are gone" test ! -e "$home/apps/bapp" -a ! -e "$home/layers/beta" -a \
    ! -e "$home/tenants/beta.json" -a ! -e "$(app_cgroup beta)"
check "... bapp's route is gone" bash -c "! curl -s -H 'Host: bapp.localhost' http://127.0.0.1:$HTTP_PORT/ | grep -q greeting"
as "$ADMIN" tenants:create gamma
check "a new tenant takes the freed slice 2" test "$rc" = 0 -a "$(grep -c 'id slice 2' "$out")" = 1

# ---------------------------------------------------------------- no free slice
slices=$(awk -F: -v u="$(id -un)" -v id="$(id -u)" '$1 == u || $1 == id { n += int($3 / 65536) } END { print n }' /etc/subuid)
i=0
while [ "$(tenant_count)" -lt "$slices" ] && [ $i -lt 100 ]; do
    i=$((i + 1)); as "$ADMIN" tenants:create "filler$i" || break
done
n=$(tenant_count)
as "$ADMIN" tenants:create onetoomany
check "with all $slices slices taken, tenants:create fails: 409, exit 1, a clear message" \
    test "$rc" = 1 -a "$(grep -c 'no free subordinate id slice.*(HTTP 409)' "$err")" = 1
check "... nothing was created" test "$(tenant_count)" = "$n" -a ! -e "$home/tenants/onetoomany.json"

# ---------------------------------------------------------------- two tenants in one slice
stop_berth
python3 - "$home/tenants/gamma.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1])); t["slice"] = 1; json.dump(t, open(sys.argv[1], "w"))
EOF
rc=0; timeout 30 "$BERTH" serve --home "$home" --http 127.0.0.1:0 --control 127.0.0.1:0 >"$out" 2>&1 || rc=$?
check "two tenants in one slice: berth serve refuses to start" test "$rc" = 1
check "... naming both" grep -q "tenants 'acme' and 'gamma' both hold id slice 1" "$out"

# ---------------------------------------------------------------- a destroy a crash interrupted
python3 - "$home/tenants/gamma.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1])); t["slice"] = 2; json.dump(t, open(sys.argv[1], "w"))
EOF
# What apps:destroy leaves when berth dies right after its first step (the rename).
mv "$home/apps/twin" "$home/apps/.destroyed-twin-0badf00d"
if start_berth "$home"; then ok "with the slices fixed, berth serve starts again"; else not_ok "berth serve starts again"; fi
check "... and removes the tree of the interrupted destroy" test ! -e "$home/apps/.destroyed-twin-0badf00d"
as "$A" apps:list
check "... acme's apps no longer have twin" test "$rc" = 0 -a "$(grep -c '^twin$' "$out")" = 0

# ---------------------------------------------------------------- the admin's own token
as "$ADMIN" tokens:rotate
ADMIN2=$(token_of "$out" || true)
check "the admin rotates its token: admin.token follows" test -n "$ADMIN2" -a "$(cat "$home/admin.token")" = "$ADMIN2"
api "$ADMIN" GET /apps
check "... the old one: 401" test "$status" = 401
rc=0; BERTH_TOKEN='' BERTH_HOME=$home "$BERTH" tenants:list >"$out" 2>"$err" || rc=$?
check "... the CLI on the server's host reads the new one" test "$rc" = 0 -a "$(grep -c '^acme ' "$out")" = 1
done_testing
