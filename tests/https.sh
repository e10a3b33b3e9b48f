#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The router's HTTPS listener end to end, unmocked: a real `berth serve
# --https`, an app pushed with the real git client (python's http.server,
# answering with the forwarding headers it got), two custom domains and
# their certificates made by openssl, then curl, `openssl s_client` and
# python's ssl module against the listener: each name gets its own
# certificate by SNI, a name without one (and a client sending no SNI) gets
# berth's self-signed default, a wildcard covers one label, the app sees
# X-Forwarded-Proto/-Port of the listener it came through and an appended
# X-Forwarded-For, https_only redirects plain HTTP (301/308, the path and
# query kept), certificates removed and added are served at once without a
# restart, strict request parsing and the head deadline apply over TLS,
# certificates that cannot serve are refused without disturbing the live
# set, and the access log says protocol=https. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
command -v openssl >/dev/null || skip_all "openssl is needed to make certificates"
command -v curl >/dev/null || skip_all "curl is needed"
require_rootless
export GIT_TERMINAL_PROMPT=0
t0=$SECONDS
home=$TEST_DIR/home
log=$TEST_DIR/serve.log
# This suite runs an app, so it starts the server as push-to-deploy does: with limits.
if start_berth "$home" --https 127.0.0.1:0; then ok "berth serve --https started"; else
    not_ok "berth serve --https started"; done_testing; exit 1; fi
# serve.json names the HTTPS port when there is a listener.
HTTPS_PORT=$(sed -n 's/.*"https_port": *\([0-9]*\).*/\1/p' "$home/run/serve.json")
if [ -n "$HTTPS_PORT" ]; then ok "serve.json names the HTTPS port ($HTTPS_PORT; router :$HTTP_PORT)"; else
    not_ok "serve.json names the HTTPS port"; diag "$log"; done_testing; exit 1; fi

out=$TEST_DIR/out
err=$TEST_DIR/err
run() { rc=0; "$BERTH" "$@" >"$out" 2>"$err" || rc=$?; }
certs=$TEST_DIR/certs
mkdir -p "$certs"

# ---------------------------------------------------------------- the app
"$BERTH" apps:create hello >/dev/null
make_tree "$TEST_DIR/app" Procfile 'web: python3 app.py' app.py '
import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        seen = {"method": self.command, "path": self.path, "host": self.headers.get("Host"),
                "proto": self.headers.get("X-Forwarded-Proto"), "port": self.headers.get("X-Forwarded-Port"),
                "for": self.headers.get("X-Forwarded-For"),
                "n_for": len(self.headers.get_all("X-Forwarded-For") or []),
                "n_proto": len(self.headers.get_all("X-Forwarded-Proto") or []),
                "body": body.decode("latin-1")}
        data = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = do_PUT = answer
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
'
if push_app "$TEST_DIR/app" hello "$TEST_DIR/push.out"; then ok "the app is pushed with git"; else
    not_ok "the app is pushed with git"; diag "$TEST_DIR/push.out"; fi
check "... and released" contains "$TEST_DIR/push.out" "Released v1"
if wait_body hello.localhost / '"method": "GET"' 30; then ok "it answers over plain HTTP"; else
    not_ok "it answers over plain HTTP"; diag "$TEST_DIR/push.out"; diag "$log"; fi

# ---------------------------------------------------------------- domains and certificates
mkcert() { # mkcert FILE CN [SAN...]: a self-signed EC pair FILE.pem, FILE.key
    local name=$1 cn=$2; shift 2
    local san
    san=$(printf 'DNS:%s,' "$@")
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$cn" \
        -addext "subjectAltName=${san%,}" -keyout "$certs/$name.key" -out "$certs/$name.pem" 2>/dev/null
}
mkcert a a.example.test a.example.test
mkcert b b.example.test b.example.test
mkcert a2 a.example.test a.example.test
mkcert wild '*.w.example.test' '*.w.example.test'
mkcert stranger www.stranger.test www.stranger.test
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$certs/other.key" 2>/dev/null

for d in a.example.test b.example.test c.example.test '*.w.example.test'; do
    run domains:add hello "$d"
    [ "$rc" = 0 ] || { echo "# domains:add hello $d failed:" >&2; diag "$err"; }
done
run domains hello
check "the app has its four domains" test "$(grep -cE '^(a|b|c)\.example\.test$|^\*\.w\.example\.test$' "$out")" = 4
add_cert() { # add_cert NAME: certs:add of $certs/NAME.{pem,key}; its id in $id
    run certs:add hello "$certs/$1.pem" "$certs/$1.key"
    id=$(sed -n 's/^Id: *//p' "$out")
}
add_cert a; id_a=$id
check "certs:add takes a.example.test's certificate" test "$rc" = 0 -a -n "$id_a"
add_cert b; id_b=$id
check "certs:add takes b.example.test's certificate" test "$rc" = 0 -a -n "$id_b"
add_cert wild; id_wild=$id
check "certs:add takes the wildcard certificate" test "$rc" = 0 -a -n "$id_wild"
check "the default certificate exists" test -s "$home/certs/default.pem"

# ---------------------------------------------------------------- SNI
# served NAME: the subject and SHA-256 fingerprint of what the listener sends for SNI NAME ("" = no SNI).
served() {
    local sni=(-servername "$1")
    [ -n "$1" ] || sni=(-noservername)
    timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" "${sni[@]}" </dev/null 2>/dev/null |
        openssl x509 -noout -subject -fingerprint -sha256 2>/dev/null || true
}
fp() { openssl x509 -noout -fingerprint -sha256 -in "$1"; }
serves() { # serves SNI FILE: the listener sends FILE's certificate for SNI
    local got
    got=$(served "$1")
    grep -qxF "$(fp "$2")" <<<"$got" && return 0
    echo "# for SNI '$1' got: $(tr '\n' ' ' <<<"$got")" >&2
    return 1
}
default=$home/certs/default.pem
check "the default certificate's subject is CN berth default" \
    grep -q 'CN *= *berth default' <<<"$(openssl x509 -noout -subject -in "$default")"
check "a.example.test gets its own certificate" serves a.example.test "$certs/a.pem"
check "b.example.test gets its own certificate" serves b.example.test "$certs/b.pem"
check "... whatever the case of the name sent" serves B.Example.TEST "$certs/b.pem"
check "the app's default name hello.localhost gets berth's default" serves hello.localhost "$default"
check "a domain without a certificate (c.example.test) gets the default" serves c.example.test "$default"
check "a name no app has gets the default" serves nobody.example.test "$default"
check "a client sending no SNI gets the default" serves "" "$default"
check "... whose subject says CN = berth default" grep -q 'CN *= *berth default' <<<"$(served "")"
check "a wildcard certificate covers a name one label below" serves x.w.example.test "$certs/wild.pem"
check "... but not two labels below (RFC 6125)" serves y.x.w.example.test "$default"

# curl verifying against each name's own certificate.
https() { # https NAME PATH [curl options...]: body to stdout, verified with $certs/NAME's pair by default
    local name=$1 path=$2; shift 2
    curl -sS --max-time 10 --resolve "$name:$HTTPS_PORT:127.0.0.1" "$@" "https://$name:$HTTPS_PORT$path"
}
https a.example.test /ver --cacert "$certs/a.pem" >"$TEST_DIR/a.json" 2>"$TEST_DIR/a.err" || diag "$TEST_DIR/a.err"
check "curl verifies a.example.test against its certificate and gets the app" contains "$TEST_DIR/a.json" '"path": "/ver"'
https b.example.test /ver --cacert "$certs/b.pem" >"$TEST_DIR/b.json" 2>"$TEST_DIR/b.err" || diag "$TEST_DIR/b.err"
check "curl verifies b.example.test against its certificate and gets the app" contains "$TEST_DIR/b.json" '"path": "/ver"'
check "a.example.test does not verify against b's certificate" \
    eval '! https a.example.test / --cacert "$certs/b.pem" >/dev/null 2>&1'
https c.example.test /c -k >"$TEST_DIR/c.json" 2>&1 || true
check "a domain with the default certificate still reaches the app" contains "$TEST_DIR/c.json" '"path": "/c"'
https hello.localhost /d -k >"$TEST_DIR/d.json" 2>&1 || true
check "... and so does the app's default name" contains "$TEST_DIR/d.json" '"path": "/d"'

# ---------------------------------------------------------------- the head deadline over TLS (in the background)
cat >"$TEST_DIR/tls.py" <<'PY'
# tls.py MODE PORT SNI [REQUEST [FLAG]]: MODE silent (handshake, send nothing), send (REQUEST, in
# python escapes, then read to the end), notls (a TCP connection that never starts TLS), or twice
# (REQUEST on a keep-alive connection, its answer read, then once FLAG exists the same REQUEST
# again). Prints "elapsed=S end=eof|timeout|error" and what came back.
import os, socket, ssl, sys, time
mode, port, sni = sys.argv[1], int(sys.argv[2]), sys.argv[3]
req = sys.argv[4].encode("latin-1").decode("unicode_escape").encode("latin-1") if len(sys.argv) > 4 else b""
s = socket.create_connection(("127.0.0.1", port), timeout=20)
if mode != "notls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s, server_hostname=sni or None)
start = time.monotonic()
data, end = b"", "eof"
try:
    if mode == "twice":
        s.sendall(req)
        def more():
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionAbortedError("closed after the first answer")
            return chunk
        while b"\r\n\r\n" not in data:
            data += more()
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        n = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        while len(data.split(b"\r\n\r\n", 1)[1]) < n:
            data += more()
        sys.stdout.write(data.decode("latin-1") + "\n")
        sys.stdout.flush()
        data = b""
        while not os.path.exists(sys.argv[5]) and time.monotonic() - start < 15:
            time.sleep(0.05)
        req = req.replace(b"Connection: keep-alive", b"Connection: close")
    if mode in ("send", "twice"):
        s.sendall(req)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    end = "timeout"
except OSError as e:
    end = "error " + type(e).__name__
print("elapsed=%.1f end=%s" % (time.monotonic() - start, end))
sys.stdout.write(data.decode("latin-1"))
PY
python3 "$TEST_DIR/tls.py" silent "$HTTPS_PORT" a.example.test >"$TEST_DIR/silent.out" 2>&1 &
silent_pid=$!
python3 "$TEST_DIR/tls.py" notls "$HTTPS_PORT" "" >"$TEST_DIR/notls.out" 2>&1 &
notls_pid=$!
python3 "$TEST_DIR/tls.py" send "$HTTPS_PORT" a.example.test 'GET /slow HTTP/1.1\r\nHost: a.example.test\r\n' \
    >"$TEST_DIR/partial.out" 2>&1 &
partial_pid=$!

# ---------------------------------------------------------------- what the app sees
jget() { python3 -c 'import json,sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null; }
https a.example.test '/fwd?x=1' --cacert "$certs/a.pem" -H 'X-Forwarded-Proto: http' -H "X-Forwarded-Port: 1" \
    >"$TEST_DIR/fwd1.json" 2>&1 || diag "$TEST_DIR/fwd1.json"
check "over HTTPS the app sees X-Forwarded-Proto: https (the client's dropped)" \
    test "$(jget "$TEST_DIR/fwd1.json" proto)/$(jget "$TEST_DIR/fwd1.json" n_proto)" = https/1
check "... X-Forwarded-Port: the HTTPS port ($HTTPS_PORT)" test "$(jget "$TEST_DIR/fwd1.json" port)" = "$HTTPS_PORT"
check "... the Host the client sent" test "$(jget "$TEST_DIR/fwd1.json" host)" = "a.example.test:$HTTPS_PORT"
check "... X-Forwarded-For: the peer's address, when the client sent none" \
    test "$(jget "$TEST_DIR/fwd1.json" for)" = 127.0.0.1
https a.example.test /fwd --cacert "$certs/a.pem" -H 'X-Forwarded-For: 203.0.113.7' >"$TEST_DIR/fwd2.json" 2>&1 || true
check "... and the client's X-Forwarded-For with the peer's address appended" \
    test "$(jget "$TEST_DIR/fwd2.json" for)/$(jget "$TEST_DIR/fwd2.json" n_for)" = "203.0.113.7, 127.0.0.1/1"
curl -sS --max-time 10 -H 'Host: a.example.test' -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Port: 443' \
    -H 'X-Forwarded-For: 198.51.100.1' "http://127.0.0.1:$HTTP_PORT/plain" >"$TEST_DIR/fwd3.json" 2>&1 || true
check "over plain HTTP the app sees X-Forwarded-Proto: http (the client's dropped)" \
    test "$(jget "$TEST_DIR/fwd3.json" proto)/$(jget "$TEST_DIR/fwd3.json" n_proto)" = http/1
check "... X-Forwarded-Port: the HTTP port ($HTTP_PORT)" test "$(jget "$TEST_DIR/fwd3.json" port)" = "$HTTP_PORT"
check "... and X-Forwarded-For appended" test "$(jget "$TEST_DIR/fwd3.json" for)" = "198.51.100.1, 127.0.0.1"
https a.example.test /post --cacert "$certs/a.pem" --data-binary 'over-tls' >"$TEST_DIR/post.json" 2>&1 || true
check "a POST body crosses the TLS listener" test "$(jget "$TEST_DIR/post.json" body)" = over-tls

# ---------------------------------------------------------------- strict requests over TLS
python3 "$TEST_DIR/tls.py" send "$HTTPS_PORT" a.example.test \
    'GET /good HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n' >"$TEST_DIR/good.out" 2>&1 || true
check "a well-formed request written on the TLS socket gets 200" grep -q '^HTTP/1.1 200' "$TEST_DIR/good.out"
python3 "$TEST_DIR/tls.py" send "$HTTPS_PORT" a.example.test \
    'GET / HTTP/1.1\r\nHost: a.example.test\r\nX-A: a\rContent-Length: 9\r\n\r\n' >"$TEST_DIR/lonecr.out" 2>&1 || true
check "a lone CR in a header over TLS gets exactly one HTTP/1.1 400" \
    test "$(grep -c '^HTTP/1\.[01] ' "$TEST_DIR/lonecr.out")/$(grep -c '^HTTP/1.1 400' "$TEST_DIR/lonecr.out")" = 1/1
check "... and the connection is closed" grep -q 'end=eof' "$TEST_DIR/lonecr.out"
check "... and nothing reached the app" not_contains "$TEST_DIR/lonecr.out" '"method"'
python3 "$TEST_DIR/tls.py" send "$HTTPS_PORT" a.example.test \
    'POST / HTTP/1.1\r\nHost: a.example.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd' >"$TEST_DIR/twocl.out" 2>&1 || true
check "two Content-Lengths over TLS get exactly one HTTP/1.1 400" \
    test "$(grep -c '^HTTP/1\.[01] ' "$TEST_DIR/twocl.out")/$(grep -c '^HTTP/1.1 400' "$TEST_DIR/twocl.out")" = 1/1

# ---------------------------------------------------------------- https_only
run router:set hello https_only=on
check "router:set https_only=on" contains "$out" "https_only:      on"
plain() { # plain HOST PATH [curl options...]: the status in $code, the headers in $TEST_DIR/h
    code=$(curl -s --max-time 10 -o "$TEST_DIR/pbody" -D "$TEST_DIR/h" -w '%{http_code}' -H "Host: $1" "${@:3}" \
        "http://127.0.0.1:$HTTP_PORT$2") || true
}
location() { sed -n 's/^[Ll]ocation: *\(.*\)\r$/\1/p' "$TEST_DIR/h"; }
plain a.example.test '/some/path?q=1&r=two%20x'
check "a plain-HTTP GET gets 301 ($code)" test "$code" = 301
check "... to https://a.example.test:$HTTPS_PORT with the path and query kept ($(location))" \
    test "$(location)" = "https://a.example.test:$HTTPS_PORT/some/path?q=1&r=two%20x"
plain "A.Example.Test:$HTTP_PORT" '/p'
check "... the host normalised, the plain port replaced by the HTTPS one ($(location))" \
    test "$(location)" = "https://a.example.test:$HTTPS_PORT/p"
plain a.example.test '/head?h=1' -I
check "a plain-HTTP HEAD gets 301 ($code)" test "$code" = 301
plain a.example.test '/form?f=1' --data-binary 'kept'
check "a plain-HTTP POST gets 308 ($code)" test "$code" = 308
check "... to the same place ($(location))" test "$(location)" = "https://a.example.test:$HTTPS_PORT/form?f=1"
plain a.example.test '/put' -X PUT --data-binary 'x'
check "a plain-HTTP PUT gets 308 ($code)" test "$code" = 308
check "... with nothing reaching the app" not_contains "$TEST_DIR/pbody" '"method"'
plain hello.localhost '/dflt'
check "the app's default name is redirected too ($(location))" \
    test "$code/$(location)" = "301/https://hello.localhost:$HTTPS_PORT/dflt"
https a.example.test '/still?ok=1' --cacert "$certs/a.pem" -o "$TEST_DIR/still.json" -w '%{http_code}' \
    >"$TEST_DIR/still.code" 2>&1 || true
check "HTTPS still answers 200" test "$(cat "$TEST_DIR/still.code")" = 200
check "... from the app" test "$(jget "$TEST_DIR/still.json" path)" = "/still?ok=1"
code=$(curl -s --max-time 10 -o "$TEST_DIR/follow.json" -w '%{http_code}' -L --cacert "$certs/a.pem" \
    --resolve "a.example.test:$HTTPS_PORT:127.0.0.1" --resolve "a.example.test:$HTTP_PORT:127.0.0.1" \
    "http://a.example.test:$HTTP_PORT/followed?z=9") || true
check "curl -L follows the redirect to the app over HTTPS" \
    test "$code/$(jget "$TEST_DIR/follow.json" proto)/$(jget "$TEST_DIR/follow.json" path)" = "200/https//followed?z=9"
run router:set hello https_only=off
plain a.example.test '/again'
check "https_only=off serves plain HTTP again ($code)" test "$code" = 200
check "... from the app" contains "$TEST_DIR/pbody" '"proto": "http"'

# ---------------------------------------------------------------- bad certificates change nothing
run certs:add hello "$certs/a2.pem" "$certs/other.key"
check "a certificate with a key that is not its own is refused" test "$rc" = 1
check "... saying so" contains "$err" "the key does not match the certificate"
run certs:add hello "$certs/stranger.pem" "$certs/stranger.key"
check "a certificate for none of the app's domains is refused" test "$rc" = 1
check "... saying so" contains "$err" "none of which is a name of 'hello'"
check "after the refusals a.example.test keeps its certificate" serves a.example.test "$certs/a.pem"
check "... and b.example.test its own" serves b.example.test "$certs/b.pem"
check "... and www.stranger.test gets the default" serves www.stranger.test "$default"

# ---------------------------------------------------------------- removing and adding live
# A keep-alive session made with a.example.test's certificate, used again after it is removed.
python3 "$TEST_DIR/tls.py" twice "$HTTPS_PORT" a.example.test \
    'GET /session HTTP/1.1\r\nHost: a.example.test\r\nConnection: keep-alive\r\n\r\n' "$TEST_DIR/removed" \
    >"$TEST_DIR/session.out" 2>&1 &
session_pid=$!
for _ in $(seq 1 100); do grep -q '"path": "/session"' "$TEST_DIR/session.out" 2>/dev/null && break; sleep 0.05; done
pid_before=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$home/run/serve.json")
run certs:remove hello "$id_a"
check "certs:remove a.example.test's certificate" contains "$out" "Removing SSL certificate $id_a from hello... done"
check "a.example.test falls back to the default at once" serves a.example.test "$default"
check "... b.example.test keeps its own" serves b.example.test "$certs/b.pem"
check "... curl no longer verifies a.example.test" \
    eval '! https a.example.test / --cacert "$certs/a.pem" >/dev/null 2>&1'
add_cert a2; id_a2=$id
check "a new certificate for a.example.test is added" test "$rc" = 0 -a -n "$id_a2"
check "... and served at once" serves a.example.test "$certs/a2.pem"
https a.example.test /new --cacert "$certs/a2.pem" >"$TEST_DIR/new.json" 2>&1 || true
check "... curl verifies it and reaches the app" test "$(jget "$TEST_DIR/new.json" path)" = /new
touch "$TEST_DIR/removed"
wait "$session_pid" || true
check "a TLS session opened before its certificate was removed still serves its next request" \
    test "$(grep -c '^HTTP/1.1 200' "$TEST_DIR/session.out")/$(grep -c '"path": "/session"' "$TEST_DIR/session.out")" = 2/2
check "the server was not restarted for any of it" \
    test "$pid_before" = "$serve_pid" -a "$(grep -c 'serving: router' "$log")" = 1
run certs:remove hello "$id_wild"
check "removing the wildcard certificate: x.w.example.test gets the default" serves x.w.example.test "$default"

# ---------------------------------------------------------------- the head deadline, collected
wait "$silent_pid" || true
wait "$notls_pid" || true
elapsed_of() { sed -n 's/^elapsed=\([0-9]*\)\.[0-9]* end=.*/\1/p' "$1" | head -1; }
# closed_by_deadline OUT WHO: the client in OUT was closed 8 to 13 s in (the 10 s head deadline).
closed_by_deadline() {
    local e
    e=$(elapsed_of "$1")
    if [ -n "$e" ] && [ "$e" -ge 8 ] && [ "$e" -lt 13 ] && grep -q 'end=eof\|end=error' "$1"; then
        ok "$2 is closed after ${e}s (the 10 s head deadline)"
    else
        not_ok "$2 is closed within ~12 s"; diag "$1"
    fi
}
closed_by_deadline "$TEST_DIR/silent.out" "a TLS client that sends nothing after the handshake"
check "... with nothing but a 408 if anything" \
    test "$(grep -c '^HTTP/' "$TEST_DIR/silent.out")" = 0 -o "$(grep -c '^HTTP/1.1 408' "$TEST_DIR/silent.out")" = 1
wait "$partial_pid" || true
closed_by_deadline "$TEST_DIR/partial.out" "a TLS client that stalls inside its request head"
# Over plain HTTP that is a 408 page; over TLS the router sends none (router/clients.c, clients_scan()).
check "... with nothing but a 408 if anything, and never reaching the app" \
    test "$(grep -c '^HTTP/' "$TEST_DIR/partial.out")" = 0 -o "$(grep -c '^HTTP/1.1 408' "$TEST_DIR/partial.out")" = 1
check "the deadline is logged as H28" test "$(grep -c 'code=H28 .*cause="request head not received in time"' "$log")" -ge 3
e=$(elapsed_of "$TEST_DIR/notls.out")
if [ -n "$e" ] && [ "$e" -lt 13 ] && grep -q 'end=eof\|end=error' "$TEST_DIR/notls.out"; then
    ok "a TCP client that never starts the TLS handshake is closed too (after ${e}s)"
else
    not_ok "a TCP client that never starts the TLS handshake is closed within ~12 s"; diag "$TEST_DIR/notls.out"
fi

# ---------------------------------------------------------------- the access log
check "the access log has protocol=https for the HTTPS requests" \
    grep -q 'path="/ver" host=a.example.test .*status=200 .*protocol=https$' "$log"
check "... for b.example.test too" grep -q 'path="/ver" host=b.example.test .*protocol=https$' "$log"
check "... and protocol=http for the plain ones" grep -q 'path="/plain" host=a.example.test .*protocol=http$' "$log"
check "... the redirects logged as 301 over plain HTTP" \
    grep -q 'path="/some/path?q=1&r=two%20x" host=a.example.test .*status=301 .*protocol=http$' "$log"
# Refusals (H26, H28) are logged without protocol= (router/errors.c, access_log_refusal()).
check "... the 400s over TLS logged as H26 with their cause" \
    grep -q 'code=H26 .*cause="lone CR in a header value" fwd="127.0.0.1" status=400' "$log"

echo "# took $((SECONDS - t0))s" >&2
stop_berth && ok "berth serve stopped on SIGTERM" || not_ok "berth serve stopped on SIGTERM"
done_testing
