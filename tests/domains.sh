#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Custom domains, TLS certificates and per-app router settings through the
# `berth` CLI and the control API, with a real `berth serve`: domains:add,
# domains:remove and the listing, names refused, one app per name across
# tenants (409, never naming the other app), certs:add with certificates
# made by openssl (valid, mismatched key, expired, encrypted key, a
# certificate for none of the app's names), the store's files and modes,
# certs:remove, and router:set with its bounds. What the router does with
# all this (routing by domain, TLS by SNI, the redirects) is tested in
# router/tests. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
command -v openssl >/dev/null || skip_all "openssl is needed to make certificates"
require_rootless
home=$TEST_DIR/home
# Nothing here runs a container, so cgroup limits do not matter.
if start_berth "$home" --https 127.0.0.1:0 --allow-no-limits; then ok "berth serve --https started"; else
    not_ok "berth serve --https started"; done_testing; exit 1; fi
out=$TEST_DIR/out
err=$TEST_DIR/err

# run CMD...: the CLI's stdout in $out, stderr in $err, the exit code in $rc.
run() { rc=0; "$BERTH" "$@" >"$out" 2>"$err" || rc=$?; }
api() { # api METHOD PATH [BODY]: the answer's status in $status, its body in $out
    status=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${TOKEN:-$BERTH_TOKEN}" \
        ${3:+-H 'Content-Type: application/json' --data "$3"} "$BERTH_URL$2")
}

"$BERTH" apps:create hello >/dev/null
"$BERTH" apps:create other >/dev/null

# ---------------------------------------------------------------- domains
run domains hello
check "domains lists the default name" contains "$out" "hello.localhost (default)"
check "... under a Heroku-style header" contains "$out" "=== hello Domains"
run domains:add hello www.example.com
check "domains:add says what it does" contains "$out" "Adding www.example.com to hello... done"
run domains:add hello WWW.Example.ORG.:8080
check "a name is stored lower-cased, without its trailing dot and port" \
    contains "$out" "Adding WWW.Example.ORG.:8080 to hello... done (as www.example.org)"
run domains:add hello '*.wild.example.net'
check "a wildcard domain is added" contains "$out" "done"
run domains:add hello api.hello.localhost
check "a name below the app's own default name is fine" test "$rc" = 0
run domains hello
check "domains lists them" grep -qx 'www.example.org' "$out"
check "... the wildcard too" grep -qxF '*.wild.example.net' "$out"
check "with an HTTPS listener, domains without a certificate are pointed out" \
    contains "$err" "Warning: no certificate of hello serves www.example.com, www.example.org"
run domains hello --json
check "domains --json gives the API's answer" grep -q '"default": "hello.localhost"' "$out"
run apps:info hello
check "apps:info shows the domains" contains "$out" "Domains:     www.example.com"

run domains:add other www.example.com
check "a name another app holds is refused" test "$rc" = 1
check "... with a 409 that says so" contains "$err" "domain 'www.example.com' is already used by another app (HTTP 409)"
check "... and the failure is said on stdout too" contains "$out" "Adding www.example.com to other... failed"
run domains:add hello www.example.com
check "adding a name twice is a conflict" contains "$err" "is already a domain of 'hello' (HTTP 409)"
run domains:add other other.localhost
check "the app's own default name is refused" contains "$err" "already the default name of 'other' (HTTP 400)"
run domains:add other hello.localhost
check "another app's default name is refused" contains "$err" "may only add names below 'other.localhost'"
bad_ok=true
for bad in 'bad_name.example.com' '*.com' 'localhost' '1.2.3.4' 'www.*.example.com' '-x.example.com' \
    'a..example.com' 'example.com:port' "$(printf 'a%.0s' $(seq 1 64)).com"; do
    run domains:add other "$bad"
    if [ "$rc" != 1 ] || ! grep -q "(HTTP 400)" "$err"; then bad_ok=false; echo "# '$bad' was not refused" >&2; fi
done
check "invalid names are refused with 400" $bad_ok

# Another tenant: its token, its app, the same names.
token2=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '{"name": "second", "slice": 1, "token_sha256": ["%s"]}\n' \
    "$(printf '%s' "$token2" | sha256sum | cut -d' ' -f1)" >"$home/tenants/second.json"
BERTH_TOKEN=$token2 "$BERTH" apps:create theirs >/dev/null
BERTH_TOKEN=$token2 run domains:add theirs www.example.com
check "another tenant gets the same 409" contains "$err" "domain 'www.example.com' is already used by another app (HTTP 409)"
check "... which names no app" not_contains "$err" "hello"
BERTH_TOKEN=$token2 run domains:add theirs x.wild.example.net
check "another tenant may not take a name below a wildcard it does not hold" contains "$err" "(HTTP 409)"
BERTH_TOKEN=$token2 run domains hello
check "another tenant's app is not found" contains "$err" "app 'hello' does not exist (HTTP 404)"
BERTH_TOKEN=$token2 run domains:add theirs shop.example.com
check "... and a free name is theirs" contains "$out" "done"

run domains:remove hello WWW.EXAMPLE.ORG
check "domains:remove says what it does (the name normalised)" contains "$out" "Removing WWW.EXAMPLE.ORG from hello... done"
run domains:remove hello '*.wild.example.net'
check "a wildcard is removed (percent-encoded in the URL)" contains "$out" "done"
run domains:remove hello www.example.org
check "removing a name the app does not have is a 404" contains "$err" "domain 'www.example.org' is not a domain of 'hello' (HTTP 404)"
run domains hello
check "the list no longer has them" not_contains "$out" "www.example.org"
check "the app's record has the rest" contains "$home/apps/hello/app.json" '"www.example.com"'

# ---------------------------------------------------------------- certificates
certs=$TEST_DIR/certs
mkdir -p "$certs"
mkcert() { # mkcert NAME SAN... : a self-signed EC pair NAME.pem, NAME.key
    local name=$1; shift
    local san
    san=$(printf 'DNS:%s,' "$@")
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj "/CN=$1" \
        -addext "subjectAltName=${san%,}" -keyout "$certs/$name.key" -out "$certs/$name.pem" 2>/dev/null
}
mkcert www www.example.com example.com
mkcert stranger www.stranger.test
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$certs/other.key" 2>/dev/null
openssl pkey -in "$certs/www.key" -aes256 -passout pass:secret -out "$certs/encrypted.key" 2>/dev/null
# An expired one: openssl ca is the tool that takes explicit dates.
mkdir -p "$certs/ca" && : >"$certs/ca/index.txt" && echo 01 >"$certs/ca/serial"
printf '[ca]\ndefault_ca = old\n[old]\ndir = %s\ndatabase = $dir/index.txt\nnew_certs_dir = $dir\nserial = $dir/serial\ndefault_md = sha256\npolicy = any\ncopy_extensions = copy\n[any]\ncommonName = supplied\n' \
    "$certs/ca" >"$certs/ca/ca.cnf"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=www.example.com \
    -addext "subjectAltName=DNS:www.example.com" -keyout "$certs/old.key" -out "$certs/old.csr" 2>/dev/null
openssl ca -batch -config "$certs/ca/ca.cnf" -selfsign -keyfile "$certs/old.key" -in "$certs/old.csr" \
    -out "$certs/old.pem" -startdate 20200101000000Z -enddate 20210101000000Z >/dev/null 2>&1

run certs hello
check "certs says when there are none" contains "$out" "hello has no SSL certificates."
run certs:add hello "$certs/www.pem" "$certs/www.key"
check "certs:add says what it does" contains "$out" "Adding SSL certificate to hello... done"
check "... and shows the names" contains "$out" "Common Name(s): www.example.com, example.com"
check "... which it serves" contains "$out" "Serves:         www.example.com"
check "... and that it is self-signed" contains "$out" "Trusted:        false (self-signed)"
check "a name of the certificate the app lacks is pointed out" \
    contains "$err" "Warning: example.com is not a domain of hello"
id=$(sed -n 's/^Id: *//p' "$out")
check "the certificate has a 16-hex id" grep -qE '^[0-9a-f]{16}$' <<<"$id"
check "the chain is stored" test -s "$home/certs/hello/$id.pem"
check "the key is stored with mode 0600" test "$(stat -c %a "$home/certs/hello/$id.key" 2>/dev/null)" = 600
check "the record is in app.json" contains "$home/apps/hello/app.json" "\"id\": \"$id\""
check "... without the key" not_contains "$home/apps/hello/app.json" "PRIVATE KEY"
check "the default certificate exists, mode 0600" \
    test "$(stat -c %a "$home/certs/default.key" 2>/dev/null)" = 600 -a -s "$home/certs/default.pem"
run certs hello
check "certs shows a table" grep -qE "^Id +Common Name\(s\) +Expires +Trusted +Domains" "$out"
check "... with the certificate, its expiry and the domains it serves" \
    grep -qE "^$id +www.example.com, example.com +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{5} UTC +false +www.example.com$" "$out"
run domains hello
check "the domain with a certificate is no longer pointed out" not_contains "$err" "www.example.com"
api GET /apps/hello/certs
check "the API never shows the key" not_contains "$out" "PRIVATE"
run certs:add hello "$certs/www.pem" "$certs/www.key"
check "the same certificate twice is a conflict" contains "$err" "certificate '$id' is already on 'hello' (HTTP 409)"
run certs:add hello "$certs/www.pem" "$certs/other.key"
check "a key of another certificate is refused" contains "$err" "the key does not match the certificate (HTTP 400)"
run certs:add hello "$certs/old.pem" "$certs/old.key"
check "an expired certificate is refused" contains "$err" "the certificate expired on 2021-01-01T00:00:00Z (HTTP 400)"
run certs:add hello "$certs/www.pem" "$certs/encrypted.key"
check "an encrypted key is refused with a clear message" contains "$err" "the key is encrypted"
run certs:add hello "$certs/stranger.pem" "$certs/stranger.key"
check "a certificate for none of the app's names is refused" contains "$err" "none of which is a name of 'hello'"
run certs:add hello "$certs/www.key" "$certs/www.key"
check "a key given as the certificate is refused" contains "$err" "the certificate is not in PEM form"
run certs:add hello "$certs/missing.pem" "$certs/www.key"
check "a missing file is said before any request" contains "$err" "missing.pem"
BERTH_TOKEN=$token2 run certs:remove hello "$id"
check "another tenant cannot remove it" contains "$err" "(HTTP 404)"
run certs:remove hello "$id"
check "certs:remove says what it does" contains "$out" "Removing SSL certificate $id from hello... done"
check "... and the files are gone" test ! -e "$home/certs/hello/$id.key" -a ! -e "$home/certs/hello/$id.pem"
check "... and the record" not_contains "$home/apps/hello/app.json" "$id"
run certs:remove hello "$id"
check "removing it again is a 404" contains "$err" "certificate '$id' is not on 'hello' (HTTP 404)"

# ---------------------------------------------------------------- router settings
run router hello
check "router shows the defaults" contains "$out" "timeout:         30s (default)"
check "... and https_only" contains "$out" "https_only:      off"
run router:set hello timeout=120 idle_timeout=5m https_only=on
check "router:set says what it does" contains "$out" "Setting timeout, idle_timeout, https_only on hello... done"
check "... and shows the result" contains "$out" "timeout:         120s"
check "... durations in seconds" contains "$out" "idle_timeout:    300s"
check "... https_only on" contains "$out" "https_only:      on"
check "the settings are in app.json" contains "$home/apps/hello/app.json" '"timeout": 120'
bounds_ok=true
for bad in timeout=3601 timeout=0 connect_timeout=61 idle_timeout=3601 timeout=-1 timeout=soon https_only=maybe; do
    run router:set hello "$bad"
    if [ "$rc" != 1 ] || ! grep -q "(HTTP 400)" "$err"; then bounds_ok=false; echo "# '$bad' was not refused" >&2; fi
done
check "values out of bounds are refused with 400" $bounds_ok
run router:set hello timeout=3600 connect_timeout=60 idle_timeout=1
check "the bounds themselves are fine" test "$rc" = 0
run router:set hello retries=3
check "an unknown setting is refused" contains "$err" "unknown router setting 'retries'"
run router:set hello timeout=
check "an empty value goes back to the default" contains "$out" "timeout:         30s (default)"
run router hello --json
check "router --json gives the API's answer" grep -q '"connect_timeout": 60' "$out"
api PATCH /apps/hello/router '{"https_only": null, "idle_timeout": null, "connect_timeout": null}'
check "null resets over the API" grep -q '"router":{}' "$out"

# ---------------------------------------------------------------- without an HTTPS listener
stop_berth
start_berth "$home" --allow-no-limits || { not_ok "berth serve restarted"; done_testing; exit 1; }
run router:set hello https_only=on
check "https_only needs an HTTPS listener" contains "$err" "this server has no HTTPS listener"
check "... which is a 409" contains "$err" "(HTTP 409)"
run domains hello
check "without one, missing certificates are not pointed out" not_contains "$err" "Warning"
done_testing
