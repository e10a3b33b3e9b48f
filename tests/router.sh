#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The router's strict request handling, through a real `berth serve` to a
# real app in a container (tests/apps/echo: CPython's http.server, the
# parser the smuggling report was made with, threaded and keep-alive so the
# router pools its upstream connections). Issue 10's bad input, each sent
# raw (tests/lib/rawhttp.py): every malformed request gets exactly one
# status line (400, 405, 414, 431, 505), the connection is closed, an H26 line
# is logged, the app never sees a byte of it (its request count is the
# same before and after), and a canary request on a new connection right
# after it gets its own answer, never another request's, which proves no
# pooled upstream connection was desynchronised; then the report's own
# attack (`X-A: a\rContent-Length: 0` and a second Content-Length) followed
# by four ordinary clients. Then what a well-formed request gets: Host
# variants (case, trailing dot, port, absolute-form), headers only the
# router sets (X-Forwarded-*, X-Request-Start, X-Request-Id, Via, hop-by-hop
# ones dropped), a WebSocket tunnel, 100 MB uploads (Content-Length and
# chunked) to an app that reads slowly with the daemon's RSS bounded, 503
# H81 for an app never pushed and 503 H14 while an app boots after a
# restart, each with its log line. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test

RAW=$SRCDIR/tests/lib/rawhttp.py
LOG=$TEST_DIR/serve.log
H='Host: echo.localhost'

# The daemon's RSS bound while a 100 MB upload streams through it: it
# idles at about 13 MB and holds at most 64 KiB of an upload plus a
# response buffer per request (router/internal.h), so anything near the
# upload's size means the body was buffered. AddressSanitizer's shadow
# memory and its quarantine of freed blocks (256 MB by default) make a
# sanitized build larger, so it gets a looser bound.
RSS_BOUND_MB=64
if ldd "$BERTH" 2>/dev/null | grep -q libasan; then RSS_BOUND_MB=400; fi

# deploy NAME SRC_DIR: creates app NAME and pushes a work tree copied from SRC_DIR.
deploy() {
    "$BERTH" apps:create "$1" >/dev/null 2>&1 || true
    rm -rf "$TEST_DIR/src-$1"
    make_repo "$2" "$TEST_DIR/src-$1"
    push_app "$TEST_DIR/src-$1" "$1" "$TEST_DIR/$1.push"
}
app_count() { router_get echo.localhost /count 2>/dev/null || echo "?"; }
# canary: a new client connection asks for its own token; true when it gets exactly that back.
canary() {
    local t got
    t=canary$RANDOM$RANDOM
    got=$(router_get echo.localhost "/token?t=$t" 2>/dev/null || true)
    [ "$got" = "token=$t" ] && return 0
    echo "# canary sent $t, got '$(printf '%s' "$got" | head -c 200)'" >&2
    return 1
}
log_size() { stat -c %s "$LOG"; }
log_since() { tail -c +$(($1 + 1)) "$LOG"; }
# wait_log OFFSET TEXT: true once the log after OFFSET holds TEXT (within 2 s).
wait_log() {
    local i
    for i in $(seq 1 20); do
        log_since "$1" | grep -qaF -- "$2" && return 0
        sleep 0.1
    done
    return 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$serve_pid/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$serve_pid/status"; }

if deploy echo "$SRCDIR/tests/apps/echo"; then ok "tests/apps/echo deploys"; else
    not_ok "tests/apps/echo deploys"; diag "$TEST_DIR/echo.push"; done_testing; exit 1; fi
check "the echo app answers its tokens" canary
"$BERTH" apps:create blank >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: blank.localhost' "http://127.0.0.1:$HTTP_PORT/")
check "an app just created, never pushed, answers 503 at once, not 404 ($code)" [ "$code" = 503 ]
# An app whose web process binds its port 4 s after it starts (for H14 at
# the end); its deploy publishes the routes again, blank's included.
mkdir -p "$TEST_DIR/late"
cp "$SRCDIR/tests/apps/echo/app.py" "$TEST_DIR/late/"
printf 'web: sleep 4 && exec python3 app.py\n' >"$TEST_DIR/late/Procfile"
if deploy late "$TEST_DIR/late"; then ok "an app that boots in 4 s deploys"; else
    not_ok "an app that boots in 4 s deploys"; diag "$TEST_DIR/late.push"; fi

# ---------------------------------------------------------------- malformed requests
# bad NAME STATUS FORMAT: sends printf FORMAT raw; expects one STATUS head, the
# close, an H26 line, nothing at the app, and a canary that gets its own answer.
nbad=0
bad() {
    local name=$1 want=$2 fmt=$3 before after heads first end off cause
    nbad=$((nbad + 1))
    before=$(app_count)
    off=$(log_size)
    # shellcheck disable=SC2059
    printf "$fmt" | python3 "$RAW" "$HTTP_PORT" >"$TEST_DIR/raw.out" 2>"$TEST_DIR/raw.end" || true
    heads=$(tr -d '\r' <"$TEST_DIR/raw.out" | grep -ac '^HTTP/[0-9.]* [0-9][0-9][0-9]' || true)
    first=$(head -n 1 "$TEST_DIR/raw.out" | tr -d '\r')
    end=$(cat "$TEST_DIR/raw.end")
    if wait_log "$off" "at=error code=H26"; then
        cause=$(log_since "$off" | grep -a 'code=H26' | sed -n 's/.* cause="\([^"]*\)".*/\1/p' | head -n 1)
    else
        cause="NOT LOGGED"
    fi
    if [ "$heads" = 1 ] && [[ $first == "HTTP/1.1 $want "* ]] && [ "$end" = end=eof ] && [ "$cause" != "NOT LOGGED" ]; then
        ok "$name: one '$first', closed, H26 logged (cause \"$cause\")"
    else
        not_ok "$name: one 'HTTP/1.1 $want' (got $heads status lines, the first '$first'), closed ($end), H26 logged ($cause)"
        { tr -d '\r' <"$TEST_DIR/raw.out" | head -c 600; echo; } | diag
    fi
    after=$(app_count)
    if [ "$before" = "$after" ] && canary; then
        ok "$name: never reached the app ($before requests before and after), the next client gets its own answer"
    else
        not_ok "$name: never reached the app (requests before: $before, after: $after), the next client gets its own answer"
    fi
}

R="GET /token?t=bad HTTP/1.1\r\n$H\r\n"
P="POST /token?t=bad HTTP/1.1\r\n$H\r\n"
bad 'lone CR in a header value (X-A: a\rContent-Length: 9)' 400 \
    "${R}X-A: a\rContent-Length: 9\r\n\r\nGET /x HT"
bad 'lone CR injecting X-Forwarded-Proto' 400 "${R}X-A: a\rX-Forwarded-Proto: https\r\n\r\n"
bad 'space before the colon (Content-Length : 5)' 400 "${P}Content-Length : 5\r\n\r\nhello"
bad 'tab before the colon' 400 "${R}X-A\t: a\r\n\r\n"
bad 'obs-fold' 400 "${R}X-A: a\r\n b\r\n\r\n"
bad 'obs-fold as the first header line' 400 "GET / HTTP/1.1\r\n X-A: a\r\n$H\r\n\r\n"
bad 'two different Content-Length' 400 "${P}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
bad 'two equal Content-Length' 400 "${P}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
bad 'Content-Length with Transfer-Encoding' 400 "${P}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
bad 'Transfer-Encoding: gzip' 400 "${P}Transfer-Encoding: gzip\r\n\r\nhello"
bad 'Transfer-Encoding: chunked, gzip' 400 "${P}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"
bad 'two Transfer-Encoding' 400 "${P}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
bad 'Transfer-Encoding on HTTP/1.0' 400 "POST /token?t=bad HTTP/1.0\r\n$H\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
bad 'Content-Length: +5' 400 "${P}Content-Length: +5\r\n\r\nhello"
bad 'Content-Length: 5, 5' 400 "${P}Content-Length: 5, 5\r\n\r\nhello"
bad 'Content-Length: 0x5' 400 "${P}Content-Length: 0x5\r\n\r\nhello"
bad 'Content-Length: -1' 400 "${P}Content-Length: -1\r\n\r\nhello"
bad 'Content-Length: 5 (trailing space)' 400 "${P}Content-Length: 5 \r\n\r\nhello"
bad 'a chunk size that is not hex' 400 "${P}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
bad 'a bare LF after a chunk size' 400 "${P}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"
bad 'CR in the request-target' 400 "GET /token?t=a\rb HTTP/1.1\r\n$H\r\n\r\n"
bad 'a space in the request-target' 400 "GET /token?t=a b HTTP/1.1\r\n$H\r\n\r\n"
bad 'a fragment in the request-target' 400 "GET /token?t=a#b HTTP/1.1\r\n$H\r\n\r\n"
bad 'NUL in a header value' 400 "${R}X-A: a\0b\r\n\r\n"
bad '0x01 in a header value' 400 "${R}X-A: a\001b\r\n\r\n"
bad 'DEL in a header value' 400 "${R}X-A: a\177b\r\n\r\n"
bad 'a header name that is not a token (X(A))' 400 "${R}X(A): a\r\n\r\n"
bad 'an empty header name' 400 "${R}: a\r\n\r\n"
bad 'a header line without a colon' 400 "${R}X-A a\r\n\r\n"
bad 'missing Host on HTTP/1.1' 400 "GET /token?t=bad HTTP/1.1\r\nX-A: a\r\n\r\n"
bad 'empty Host' 400 "GET /token?t=bad HTTP/1.1\r\nHost: \r\n\r\n"
bad 'two Host headers' 400 "${R}Host: other.localhost\r\n\r\n"
bad 'a method that is not a token (G"T)' 400 "G\"T / HTTP/1.1\r\n$H\r\n\r\n"
bad 'HTTP/1.1 spelt http/1.1' 400 "GET / http/1.1\r\n$H\r\n\r\n"
bad 'CONNECT' 405 "CONNECT echo.localhost:80 HTTP/1.1\r\n$H\r\n\r\n"
bad 'HTTP/2.0 in a request line' 505 "GET / HTTP/2.0\r\n$H\r\n\r\n"
many="$R$(for i in $(seq 1 10000); do printf 'X-H%d: v\\r\\n' "$i"; done)\r\n"
bad '10,000 headers' 431 "$many"
long=$(printf 'a%.0s' $(seq 1 9000))
bad 'a 9000-byte request-target' 414 "GET /$long HTTP/1.1\r\n$H\r\n\r\n"
# A good request, then a bad one on the same keep-alive connection: the good
# one is answered, the bad one gets its 400 and the connection ends.
before=$(app_count)
good="GET /token?t=first HTTP/1.1\r\n$H\r\n\r\n"
printf "${good}GET /token?t=second HTTP/1.1\r\n$H\r\nX-A: a\rContent-Length: 0\r\n\r\n" |
    python3 "$RAW" "$HTTP_PORT" --split "$(printf "$good" | wc -c)" 2>"$TEST_DIR/ka.end" | tr -d '\r' >"$TEST_DIR/ka.out" || true
check "keep-alive, good then bad: the good one is answered" contains "$TEST_DIR/ka.out" "token=first"
check "... the bad one gets one 400, then the close" \
    [ "$(grep -ac '^HTTP/1.1 ' "$TEST_DIR/ka.out" || true)" = 2 -a "$(grep -ac '^HTTP/1.1 400 ' "$TEST_DIR/ka.out" || true)" = 1 \
      -a "$(cat "$TEST_DIR/ka.end")" = end=eof ]
check "... the app saw only the good one" [ "$(app_count)" = $((before + 1)) ]
# The same two pipelined in one segment: the guard refuses the whole read,
# so the good one may go unanswered; the bad one must still never reach the app.
before=$(app_count)
printf "${good}GET /token?t=second HTTP/1.1\r\n$H\r\nX-A: a\rContent-Length: 0\r\n\r\n" |
    python3 "$RAW" "$HTTP_PORT" 2>/dev/null | tr -d '\r' >"$TEST_DIR/pipe.out" || true
after=$(app_count)
echo "# pipelined in one segment, good then bad: $(grep -a '^HTTP/1.1 ' "$TEST_DIR/pipe.out" | tr '\n' ' ')(the app saw $((after - before)))"
check "pipelined good then bad: one 400, and the app never sees the bad one" \
    [ "$(grep -ac '^HTTP/1.1 400 ' "$TEST_DIR/pipe.out" || true)" = 1 -a $((after - before)) -le 1 ]

# ---------------------------------------------------------------- the smuggling report's attack
# One request whose lone CR hides a Content-Length: 0 from the router, and a
# second Content-Length whose body is another request: once the app's parser
# read it as two requests, the next clients each got the previous one's page.
smuggled="GET /token?t=smuggled HTTP/1.1\r\nHost: echo.localhost\r\n\r\n"
bad "the report's attack (X-A: a\\rContent-Length: 0, then Content-Length: 50 and a request as body)" 400 \
    "POST /token?t=attacker HTTP/1.1\r\n$H\r\nX-A: a\rContent-Length: 0\r\nContent-Length: 50\r\n\r\n$smuggled"
own=0
for i in 1 2 3 4; do canary && own=$((own + 1)); done
check "after the attack, 4 clients one after the other each get their own page ($own of 4)" [ "$own" = 4 ]
own=0
pids=()
for i in 1 2 3 4; do
    ( t=par$i$RANDOM; [ "$(router_get echo.localhost "/token?t=$t")" = "token=$t" ] ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" && own=$((own + 1)); done
check "... and 4 at once too ($own of 4)" [ "$own" = 4 ]
check "no response anywhere carried the smuggled token" not_contains "$TEST_DIR/raw.out" "token=smuggled"

# ---------------------------------------------------------------- Host and the request-target
host_routes() { # host_routes HOST: a request with that Host gets the echo app's own answer
    local t=host$RANDOM got
    got=$(curl -sS --max-time 10 -H "Host: $1" "http://127.0.0.1:$HTTP_PORT/token?t=$t" 2>&1 || true)
    [ "$got" = "token=$t" ] || { echo "# Host '$1' got '$got'" >&2; return 1; }
}
check "Host with a trailing dot routes (echo.localhost.)" host_routes echo.localhost.
check "Host in upper case routes (ECHO.LocalHost)" host_routes ECHO.LocalHost
check "Host with a port routes (echo.localhost:$HTTP_PORT)" host_routes "echo.localhost:$HTTP_PORT"
check "Host with all three routes (Echo.Localhost.:1)" host_routes Echo.Localhost.:1
code=$(curl -s -o "$TEST_DIR/nohost.html" -w '%{http_code}' -H 'Host: nosuch.localhost' "http://127.0.0.1:$HTTP_PORT/")
check "an unknown Host is a 404 ($code)" [ "$code" = 404 ]
check "... whose page names no app" not_contains "$TEST_DIR/nohost.html" "echo"

before=$(app_count)
printf "GET http://nosuch.example/token?t=abs HTTP/1.1\r\n$H\r\nConnection: close\r\n\r\n" |
    python3 "$RAW" "$HTTP_PORT" >"$TEST_DIR/abs1.out" 2>/dev/null || true
check "an absolute-form target naming another host is a 404, whatever Host says" \
    grep -qa '^HTTP/1.1 404 ' "$TEST_DIR/abs1.out"
check "... and never reaches the app" [ "$(app_count)" = "$before" ]
printf "GET http://blank.localhost/ HTTP/1.1\r\n$H\r\nConnection: close\r\n\r\n" |
    python3 "$RAW" "$HTTP_PORT" >"$TEST_DIR/abs2.out" 2>/dev/null || true
check "an absolute-form target naming a routed app goes to that app (blank: 503)" \
    grep -qa '^HTTP/1.1 503 ' "$TEST_DIR/abs2.out"
printf "GET HTTP://ECHO.localhost.:$HTTP_PORT/show?abs=1 HTTP/1.1\r\nHost: nosuch.example\r\nConnection: close\r\n\r\n" |
    python3 "$RAW" "$HTTP_PORT" 2>/dev/null | tr -d '\r' >"$TEST_DIR/abs3.out" || true
check "an absolute-form target naming the echo app reaches it" grep -qa '^HTTP/1.1 200 ' "$TEST_DIR/abs3.out"
check "... in origin-form (GET /show?abs=1 HTTP/1.1)" grep -qxF 'GET /show?abs=1 HTTP/1.1' "$TEST_DIR/abs3.out"
check "... with the target's host as its only Host" \
    [ "$(grep -aci '^host:' "$TEST_DIR/abs3.out" || true)" = 1 -a "$(grep -ai '^host:' "$TEST_DIR/abs3.out" || true)" = "Host: echo.localhost" ]
printf "GET /token?t=old HTTP/1.0\r\n\r\n" | python3 "$RAW" "$HTTP_PORT" >"$TEST_DIR/http10.out" 2>/dev/null || true
check "HTTP/1.0 without a Host is a 404 (no app named)" grep -qa '^HTTP/1.1 404 ' "$TEST_DIR/http10.out"

# ---------------------------------------------------------------- headers the router sets
show() { # show OUT [rawhttp options]: sends stdin raw, the echo app's listing of what it got in OUT
    local out=$1; shift
    python3 "$RAW" "$HTTP_PORT" "$@" 2>/dev/null | tr -d '\r' | sed '1,/^$/d' >"$out" || true
}
hcount() { grep -aci "^$2:" "$1" || true; }   # hcount FILE NAME: how many NAME header lines
hvalue() { grep -ai "^$2:" "$1" | head -n 1 | sed 's/^[^:]*: *//'; }

printf "GET /show HTTP/1.1\r\n$H\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-Proto: https\r\nx-forwarded-proto: https\r\nX_Forwarded_Proto: https\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Ssl: on\r\nX-Request-Start: 1\r\nx_request_start: 2\r\nForwarded: for=192.0.2.1;proto=https\r\nConnection: close\r\n\r\n" |
    show "$TEST_DIR/fwd.out" --source 127.0.0.2
check "X-Forwarded-For: the client's values, then the client's address (from 127.0.0.2)" \
    [ "$(hcount "$TEST_DIR/fwd.out" X-Forwarded-For)" = 1 -a \
      "$(hvalue "$TEST_DIR/fwd.out" X-Forwarded-For)" = "203.0.113.7, 198.51.100.1, 127.0.0.2" ]
check "X-Forwarded-Proto: the router's alone (once, http), every client variant removed" \
    [ "$(hcount "$TEST_DIR/fwd.out" X-Forwarded-Proto)" = 1 -a "$(hvalue "$TEST_DIR/fwd.out" X-Forwarded-Proto)" = http ]
check "X_Forwarded_Proto and x_request_start (underscores) are removed" \
    [ "$(hcount "$TEST_DIR/fwd.out" X_Forwarded_Proto)" = 0 -a "$(hcount "$TEST_DIR/fwd.out" x_request_start)" = 0 ]
check "X-Forwarded-Port: the router's listener port, once" \
    [ "$(hcount "$TEST_DIR/fwd.out" X-Forwarded-Port)" = 1 -a "$(hvalue "$TEST_DIR/fwd.out" X-Forwarded-Port)" = "$HTTP_PORT" ]
now_ms=$(($(date +%s) * 1000))
start_ms=$(hvalue "$TEST_DIR/fwd.out" X-Request-Start)
start_ok() {
    [ "$(hcount "$TEST_DIR/fwd.out" X-Request-Start)" = 1 ] && [[ $start_ms =~ ^[0-9]{13}$ ]] &&
        [ $((now_ms - start_ms)) -lt 60000 ] && [ $((start_ms - now_ms)) -lt 60000 ]
}
check "X-Request-Start: the router's, once, in milliseconds ($start_ms)" start_ok
check "X-Forwarded-Host, X-Forwarded-Ssl and Forwarded are removed" \
    [ "$(hcount "$TEST_DIR/fwd.out" X-Forwarded-Host)$(hcount "$TEST_DIR/fwd.out" X-Forwarded-Ssl)$(hcount "$TEST_DIR/fwd.out" Forwarded)" = 000 ]
check "Via: the router's, once (1.1 berth)" \
    [ "$(hcount "$TEST_DIR/fwd.out" Via)" = 1 -a "$(hvalue "$TEST_DIR/fwd.out" Via)" = "1.1 berth" ]
is_uuid() { [[ $1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]; }
rid=$(hvalue "$TEST_DIR/fwd.out" X-Request-Id)
check "without one, the app gets a new X-Request-Id (a UUID: $rid)" is_uuid "$rid"

printf "GET /show HTTP/1.1\r\n$H\r\nVia: 1.0 corp-proxy\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\nX-Kept: yes\r\n\r\n" |
    show "$TEST_DIR/hop.out"
check "a client's Via is kept, the router's appended (1.0 corp-proxy, 1.1 berth)" \
    [ "$(hvalue "$TEST_DIR/hop.out" Via)" = "1.0 corp-proxy, 1.1 berth" ]
no_hops() {
    [ "$(hcount "$TEST_DIR/hop.out" X-Hop)$(hcount "$TEST_DIR/hop.out" Keep-Alive)$(hcount "$TEST_DIR/hop.out" TE)" = 000 ] &&
        ! grep -qai '^connection:.*x-hop' "$TEST_DIR/hop.out"
}
check "hop-by-hop headers (Connection, the X-Hop it names, Keep-Alive, TE) are not passed on" no_hops
check "... an ordinary header is" [ "$(hvalue "$TEST_DIR/hop.out" X-Kept)" = yes ]
curl -sS -D "$TEST_DIR/via.h" -o /dev/null -H "$H" "http://127.0.0.1:$HTTP_PORT/token?t=via" || true
check "the client's response carries Via: 1.1 berth" grep -qix 'via: 1.1 berth' <(tr -d '\r' <"$TEST_DIR/via.h")

# request_id ID: the X-Request-Id the app gets when the client sends ID.
request_id() {
    printf "GET /show HTTP/1.1\r\n$H\r\nX-Request-Id: %s\r\nConnection: close\r\n\r\n" "$1" | show "$TEST_DIR/rid.out"
    hvalue "$TEST_DIR/rid.out" X-Request-Id
}
alnum=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=-
id20=${alnum:0:20}
id200=$(printf '%s' "$alnum$alnum$alnum$alnum" | head -c 200)
id201=${id200}x
off=$(log_size)
check "a valid X-Request-Id of 20 characters is kept" [ "$(request_id "$id20")" = "$id20" ]
check "... and it is the log line's request_id" wait_log "$off" "request_id=$id20 "
check "a valid X-Request-Id of 200 characters of [A-Za-z0-9+/=-] is kept" [ "$(request_id "$id200")" = "$id200" ]
got=$(request_id "${id20:0:19}")
check "one of 19 characters is replaced (by $got)" is_uuid "$got"
got=$(request_id "$id201")
check "one of 201 characters is replaced (by $got)" is_uuid "$got"
got=$(request_id "${id20}_x.y")
check "one with characters outside [A-Za-z0-9+/=-] is replaced (by $got)" is_uuid "$got"
got=$(request_id "")
check "an empty one is replaced (by $got)" is_uuid "$got"

# ---------------------------------------------------------------- WebSocket
cat >"$TEST_DIR/ws.py" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /ws HTTP/1.1\r\nHost: echo.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    got = s.recv(4096)
    if not got:
        break
    buf += got
head, _, rest = buf.partition(b"\r\n\r\n")
print(head.decode("latin-1").replace("\r", ""))
for msg in [b"hello through the tunnel", bytes(range(256)), b"x" * 1000000]:
    s.sendall(msg)
    got = rest
    while len(got) < len(msg):
        more = s.recv(65536)
        if not more:
            break
        got += more
    rest = got[len(msg):]
    print("echoed %d bytes: %s" % (len(msg), "same" if got == msg else "DIFFERENT"))
PY
python3 "$TEST_DIR/ws.py" "$HTTP_PORT" >"$TEST_DIR/ws.out" 2>&1 || true
check "a WebSocket upgrade gets the app's 101" grep -qa '^HTTP/1.1 101 ' "$TEST_DIR/ws.out"
check "... with its Sec-WebSocket-Accept" grep -qai '^Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=' "$TEST_DIR/ws.out"
check "... and raw bytes pass both ways (text, every byte value, 1 MB)" \
    [ "$(grep -c 'bytes: same' "$TEST_DIR/ws.out" || true)" = 3 ]

# ---------------------------------------------------------------- 100 MB uploads
head -c 100M /dev/zero >"$TEST_DIR/big"
rss0=$(rss_kb)
( while sleep 0.1; do rss_kb || break; done ) >"$TEST_DIR/rss.samples" 2>/dev/null &
sampler=$!
upload() { # upload NAME [curl options]: a 100 MB POST to /upload, which reads 64 KiB per ms
    local name=$1; shift
    curl -sS --max-time 120 -H "$H" "$@" --data-binary @"$TEST_DIR/big" \
        -w '\n%{http_code} %{time_total}s\n' "http://127.0.0.1:$HTTP_PORT/upload?delay_ms=1" \
        >"$TEST_DIR/up-$name.out" 2>&1 || true
}
upload length
upload chunked -H 'Transfer-Encoding: chunked'
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
peak=$(sort -n "$TEST_DIR/rss.samples" | tail -n 1)
hwm=$(hwm_kb)
echo "# 100 MB uploads: Content-Length $(tail -n 1 "$TEST_DIR/up-length.out"), chunked $(tail -n 1 "$TEST_DIR/up-chunked.out")"
echo "# berth serve RSS: $((rss0 / 1024)) MB before, $((peak / 1024)) MB peak sampled, VmHWM $((hwm / 1024)) MB; bound $RSS_BOUND_MB MB"
check "a 100 MB upload with a Content-Length arrives whole at an app that reads slowly" \
    grep -qx 'bytes=104857600' "$TEST_DIR/up-length.out"
check "a 100 MB chunked upload arrives whole" grep -qx 'bytes=104857600' "$TEST_DIR/up-chunked.out"
check "berth serve's RSS stayed under $RSS_BOUND_MB MB ($((peak / 1024)) MB peak, VmHWM $((hwm / 1024)) MB)" \
    [ "$peak" -lt $((RSS_BOUND_MB * 1024)) -a "$hwm" -lt $((RSS_BOUND_MB * 1024)) ]
rm -f "$TEST_DIR/big"

# ---------------------------------------------------------------- H81, and the log
off=$(log_size)
code=$(curl -s -o "$TEST_DIR/blank.html" -w '%{http_code}' -H 'Host: blank.localhost' "http://127.0.0.1:$HTTP_PORT/")
check "an app never pushed answers 503 once the routes were published again ($code)" [ "$code" = 503 ]
check "... with the 'Nothing deployed yet' page" contains "$TEST_DIR/blank.html" "Nothing deployed yet"
check "... and an H81 log line" wait_log "$off" 'code=H81 desc="Blank app" method=GET path="/" host=blank.localhost'
refusals=$(grep -ac 'at=error code=H26 desc="Request Error"' "$LOG" || true)
check "the router's log holds an H26 line for each refusal ($refusals for $nbad)" [ "$refusals" -ge "$nbad" ]
check "... each with its cause and the client's address" \
    grep -qa 'at=error code=H26 desc="Request Error" cause="lone CR in a header value" fwd="127.0.0.1" status=400' "$LOG"
check "... and no request line or header of a refused request is logged as served" \
    not_contains "$LOG" 't=attacker'

# ---------------------------------------------------------------- H14 while an app boots
# 'late' binds its port 4 s after it starts: after a restart, berth
# restores it before writing run/serve.json, and meanwhile its route has no
# backend: 503 H14, then its own answer once it booted.
port=$HTTP_PORT
stop_berth || true
: >"$TEST_DIR/late.codes"
(
    for _ in $(seq 1 300); do
        c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Host: late.localhost' "http://127.0.0.1:$port/token?t=late" || true)
        echo "$c" >>"$TEST_DIR/late.codes"
        [ "$c" = 200 ] && break
        sleep 0.05
    done
) &
prober=$!
if start_berth "$home" --http "127.0.0.1:$port" --control "127.0.0.1:$CONTROL_PORT"; then
    ok "berth serve restarted on the same ports"
else
    not_ok "berth serve restarted on the same ports"
fi
wait "$prober" || true
echo "# while 'late' booted the router answered: $(sort "$TEST_DIR/late.codes" | uniq -c | tr -s ' \n' ' ')"
check "while the app boots after a restart, the router answers 503" grep -qx 503 "$TEST_DIR/late.codes"
check "... logged as H14" wait_log 0 'at=error code=H14 desc="No web processes running" method=GET path="/token?t=late" host=late.localhost'
check "... and the app answers once it is up" wait_body late.localhost "/token?t=after" "token=after" 20
done_testing
