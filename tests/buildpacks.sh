#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The built-in buildpacks, through the real thing: each example app in
# examples/ (node, python, go, php, static, procfile) is pushed with the real
# git client to a real `berth serve`, its detection line checked, its page
# fetched through the router; then a code-only change is pushed, which must
# skip the dependency step (the cache-hit line) and serve the change. Then
# what each buildpack promises beyond its example: the node buildpack's
# default processes, build scripts and devDependency pruning, engines
# warnings; python's requirements from the stack, pyproject projects, the
# cache key of --find-links directories;
# php's .htaccess rewrites, hidden files, sessions, Composer with a path
# repository; go's modules through a proxy, vendor/, module-less apps; the
# static site's headers, caching, MIME types and 404 page. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test

# deploy NAME SRC_DIR: creates app NAME and pushes a work tree copied from SRC_DIR.
deploy() {
    "$BERTH" apps:create "$1" >/dev/null 2>&1 || true
    rm -rf "$TEST_DIR/src-$1"
    make_repo "$2" "$TEST_DIR/src-$1"
    push_app "$TEST_DIR/src-$1" "$1" "$TEST_DIR/$1.out"
}
# redeploy NAME FILE: a code-only change (a comment line at the end of FILE), pushed.
redeploy() {
    local f=$TEST_DIR/src-$1/$2
    case $2 in
        *.html) echo '<!-- changed -->' ;;
        *.go|*.js|*.php) echo '// changed' ;;
        *) echo '# changed' ;;
    esac >>"$f"
    commit_all "$TEST_DIR/src-$1" "code change"
    push_app "$TEST_DIR/src-$1" "$1" "$TEST_DIR/$1.2.out"
}
body() { router_get "$1.localhost" "${2:-/}" 2>/dev/null; }
code() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1.localhost" "http://127.0.0.1:$HTTP_PORT$2"; }

# ---------------------------------------------------------------- the examples
# example NAME DETECTED BODY FILE CACHE_LINE: the common path.
example() {
    local name=$1 detected=$2 want=$3 file=$4 cache=$5
    if deploy "$name" "$SRCDIR/examples/$name"; then ok "examples/$name deploys"; else
        not_ok "examples/$name deploys"; diag "$TEST_DIR/$name.out"; fi
    check "examples/$name: '-----> $detected app detected'" contains "$TEST_DIR/$name.out" "-----> $detected app detected"
    check "examples/$name: no other buildpack detected it" not_contains "$TEST_DIR/$name.out" "Multiple default buildpacks"
    wait_body "$name.localhost" / "$want" && ok "examples/$name answers '$want'" ||
        not_ok "examples/$name answers '$want' (got '$(body "$name" | head -c 200)')"
    if redeploy "$name" "$file"; then ok "examples/$name: a code-only change deploys"; else
        not_ok "examples/$name: a code-only change deploys"; diag "$TEST_DIR/$name.2.out"; fi
    if [ -n "$cache" ]; then
        check "examples/$name: ... skipping the dependency step ('$cache')" contains "$TEST_DIR/$name.2.out" "$cache"
    fi
    check "examples/$name: ... and serving the new release" contains "$TEST_DIR/$name.2.out" "Released v2"
    check "examples/$name: ... which answers" wait_body "$name.localhost" / "$want"
}

example node Node.js "Hello from berth's Node.js example (ms 2.1.3)" server.js \
    "       Using cached node_modules (package.json, package-lock.json and node version unchanged)"
check "node: the first build ran npm ci, production only" contains "$TEST_DIR/node.out" "Running npm ci --omit=dev"
check "node: the default web process is npm start" contains "$TEST_DIR/node.out" 'Starting process with command `npm start`'
check "node: the second build ran no npm" not_contains "$TEST_DIR/node.2.out" "Running npm"
check "node: NODE_ENV is production at run time" grep -q 'NODE_ENV=production' "$home/apps/node/logs/app.log"
# Heroku's builds:cache:purge (Dokku's repo:purge-cache): the next build starts from nothing.
"$BERTH" builds:cache:purge node >"$TEST_DIR/purge.out" 2>&1 && rc=0 || rc=$?
check "node: builds:cache:purge empties the build cache (exit $rc)" \
    sh -c "[ $rc = 0 ] && grep -q 'Purging the build cache of node... done (' '$TEST_DIR/purge.out' && [ -d '$home/apps/node/cache' ] && [ -z \"\$(ls -A '$home/apps/node/cache')\" ]"
check "... in the audit log" sh -c "'$BERTH' events --json | grep -q 'Purged the build cache'"
echo "// purged" >>"$TEST_DIR/src-node/server.js"
commit_all "$TEST_DIR/src-node" "after the purge"
push_app "$TEST_DIR/src-node" node "$TEST_DIR/node.3.out" || diag "$TEST_DIR/node.3.out"
check "node: the next build runs npm ci again" \
    sh -c "grep -q 'Running npm ci --omit=dev' '$TEST_DIR/node.3.out' && grep -q 'Released v3' '$TEST_DIR/node.3.out'"
check "... and serves" wait_body node.localhost / "Hello from berth's Node.js example (ms 2.1.3)"
"$BERTH" repo:purge-cache nope >"$TEST_DIR/purge2.out" 2>&1 && rc=0 || rc=$?
check "repo:purge-cache of an app that does not exist: 404, exit 1" \
    sh -c "[ $rc = 1 ] && grep -q \"app 'nope' does not exist\" '$TEST_DIR/purge2.out'"

example python Python "Hello from berth's Python example (tabulate 0.8.9)" app.py \
    "       Using cached virtualenv (requirements.txt and the files it names unchanged)"
check "python: the vendored wheel was installed without an index" \
    contains "$TEST_DIR/python.out" "Processing ./vendor/wheels/tabulate-0.8.9-py3-none-any.whl"
check "python: the app imports it from the venv" wait_body python.localhost /table "tabulate"
# pip reads a --find-links directory's own entries only: what lies deeper is no input of the venv.
mkdir -p "$TEST_DIR/src-python/vendor/wheels/old"
echo "an old note" >"$TEST_DIR/src-python/vendor/wheels/old/notes.txt"
commit_all "$TEST_DIR/src-python" "a file below vendor/wheels"
push_app "$TEST_DIR/src-python" python "$TEST_DIR/python.3.out" || diag "$TEST_DIR/python.3.out"
check "python: a file below a --find-links directory's entries keeps the cached virtualenv" \
    contains "$TEST_DIR/python.3.out" "       Using cached virtualenv (requirements.txt and the files it names unchanged)"

example go Go "Hello from berth's Go example" main.go "       Using cached build results (GOCACHE from earlier builds)"
check "go: the binary is bin/hello, the default web process" contains "$TEST_DIR/go.out" 'Starting process with command `bin/hello`'
check "go: built by the stack's Go" wait_body go.localhost /version "go1."

example php PHP "Hello from berth's PHP example (SAPI apache2handler, uid 1000)" index.php ""
check "php: served by Apache's mod_php, never PHP's development server" not_contains "$TEST_DIR/php.out" "cli-server"
check "php: the .htaccess RewriteRule serves /hello/<name>" \
    wait_body php.localhost /hello/berth "Hello, berth! (SAPI apache2handler, uid 1000)"
check "php: dot-files are not served" [ "$(code php /.htaccess)" = 403 ]
check "php: berth's own files are not served" [ "$(code php /.berth/php/httpd.conf)" = 403 ]
check "php: a missing file is a 404" [ "$(code php /no-such-file)" = 404 ]

example static Static "<h1>Hello from berth</h1>" index.html ""
check "static: the build moves the site into public/" contains "$TEST_DIR/static.out" "Moved 3 top-level entries into public/"
check "static: ... counts it" contains "$TEST_DIR/static.out" "Site: 3 files, 2 KiB"
check "static: ... and names the web server after checking its configuration" \
    grep -Eq 'Web server: nginx/[0-9.]+ \(/usr/sbin/nginx\)' "$TEST_DIR/static.out"
# builtins_only FILE...: there are files, and none runs sed or env (a process each, at every start).
builtins_only() { [ -f "$1" ] && ! grep -Eq 'sed|/usr/bin/env' "$@"; }
check "static: the start script is bash's alone up to nginx (no sed, no env)" \
    builtins_only "$home"/layers/*/*/app/.berth/static/bin/berth-static-nginx
curl -s -D "$TEST_DIR/static.h" -o /dev/null -H 'Host: static.localhost' "http://127.0.0.1:$HTTP_PORT/"
tr -d '\r' <"$TEST_DIR/static.h" >"$TEST_DIR/static.hdr"
check "static: served by nginx" grep -qi '^server: nginx' "$TEST_DIR/static.hdr"
check "static: HTML is text/html; charset=utf-8" grep -qix 'content-type: text/html; charset=utf-8' "$TEST_DIR/static.hdr"
check "static: HTML is revalidated (Cache-Control: no-cache)" grep -qix 'cache-control: no-cache' "$TEST_DIR/static.hdr"
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: //p' "$TEST_DIR/static.hdr")
check "static: with an ETag and Last-Modified" sh -c "[ -n '$etag' ] && grep -qi '^last-modified:' '$TEST_DIR/static.hdr'"
check "static: a matching If-None-Match is a 304" [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: static.localhost' \
    -H "If-None-Match: $etag" "http://127.0.0.1:$HTTP_PORT/")" = 304 ]
check "static: style.css is text/css" [ "$(curl -s -o /dev/null -w '%{content_type}' -H 'Host: static.localhost' \
    "http://127.0.0.1:$HTTP_PORT/style.css")" = "text/css; charset=utf-8" ]
curl -s -o "$TEST_DIR/static404" -w '%{http_code}' -H 'Host: static.localhost' "http://127.0.0.1:$HTTP_PORT/nope" >"$TEST_DIR/static404.code"
check "static: a missing page is a 404 with the site's own 404.html" \
    sh -c "[ \"\$(cat '$TEST_DIR/static404.code')\" = 404 ] && cmp -s '$TEST_DIR/static404' '$SRCDIR/examples/static/404.html'"
# nginx keeps files open and remembers misses (open_file_cache): never across releases.
check "static: a missing page asked twice is a 404 both times" \
    [ "$(code static /later.html)$(code static /later.html)" = 404404 ]
printf '<p>added later</p>\n' >"$TEST_DIR/src-static/later.html"
commit_all "$TEST_DIR/src-static" "a page added"
push_app "$TEST_DIR/src-static" static "$TEST_DIR/static.3.out" || diag "$TEST_DIR/static.3.out"
check "static: the next release serves that page" wait_body static.localhost /later.html "added later"

example procfile Procfile "Hello from berth's Procfile example" server.py ""
check "procfile: nothing was built" contains "$TEST_DIR/procfile.out" "-----> Nothing to build: the app runs as pushed"
check "procfile: the Procfile's command runs" contains "$TEST_DIR/procfile.out" 'Starting process with command `python3 server.py`'

# ---------------------------------------------------------------- node beyond its example
mkdir -p "$TEST_DIR/t/nodeplain"
printf '{"name": "plain", "version": "1.0.0", "engines": {"node": ">=99"}}\n' >"$TEST_DIR/t/nodeplain/package.json"
printf 'require("http").createServer((q, s) => s.end("plain node " + process.env.NODE_ENV + "\\n")).listen(process.env.PORT)\n' \
    >"$TEST_DIR/t/nodeplain/server.js"
deploy nodeplain "$TEST_DIR/t/nodeplain" || diag "$TEST_DIR/nodeplain.out"
check "node: no dependencies, no npm" contains "$TEST_DIR/nodeplain.out" "       No dependencies in package.json: nothing to install"
check "node: ... and compiles without network, as its bin/berth-offline says" \
    contains "$TEST_DIR/nodeplain.out" "Nothing to download for this app: compiling without network"
check "node: engines.node the stack lacks is a warning, not a failure" \
    grep -qE 'package.json asks for node >=99 \(engines.node\), the stack has v[0-9.]+: building with it anyway' "$TEST_DIR/nodeplain.out"
check "node: without a start script, server.js is the web process" wait_body nodeplain.localhost / "plain node production"

mkdir -p "$TEST_DIR/t/nodebuild"
cat >"$TEST_DIR/t/nodebuild/package.json" <<'JSON'
{
  "name": "with-build",
  "version": "1.0.0",
  "scripts": {
    "build": "node -e \"require('fs').writeFileSync('built.txt', require('ms')('1h') + '\\n')\"",
    "start": "node -e \"require('http').createServer((q, s) => { let p; try { require.resolve('ms'); p = 'present' } catch (e) { p = 'pruned' } s.end(require('fs').readFileSync('built.txt', 'utf8').trim() + ' ' + p + '\\n') }).listen(process.env.PORT)\""
  },
  "devDependencies": {"ms": "2.1.3"}
}
JSON
deploy nodebuild "$TEST_DIR/t/nodebuild" || diag "$TEST_DIR/nodebuild.out"
check "node: the build script runs with the devDependencies, which are then pruned" \
    wait_body nodebuild.localhost / "3600000 pruned"
check "node: ... saying so" contains "$TEST_DIR/nodebuild.out" "-----> Pruning devDependencies"
check "node: an app with dependencies and a build script compiles with its network" \
    not_contains "$TEST_DIR/nodebuild.out" "compiling without network"

# ---------------------------------------------------------------- python beyond its example
mkdir -p "$TEST_DIR/t/pystack"
printf 'six\n' >"$TEST_DIR/t/pystack/requirements.txt"
printf 'web: python3 -c "import http.server, os, six; h = type(\\"H\\", (http.server.BaseHTTPRequestHandler,), {\\"do_GET\\": lambda s: (s.send_response(200), s.end_headers(), s.wfile.write(b\\"six from the stack\\"))}); http.server.HTTPServer((\\"\\", int(os.environ[\\"PORT\\"])), h).serve_forever()"\n' \
    >"$TEST_DIR/t/pystack/Procfile"
if python3 -c 'import six' 2>/dev/null; then
    deploy pystack "$TEST_DIR/t/pystack" || diag "$TEST_DIR/pystack.out"
    check "python: a requirement the stack's Debian packages satisfy needs no index" \
        contains "$TEST_DIR/pystack.out" "Requirement already satisfied: six"
    check "python: ... and an app with requirements compiles with its network" \
        not_contains "$TEST_DIR/pystack.out" "compiling without network"
    check "python: ... and the app imports it" wait_body pystack.localhost / "six from the stack"
else
    skip "python3-six is not installed on this host"
fi
mkdir -p "$TEST_DIR/t/pyempty"
: >"$TEST_DIR/t/pyempty/requirements.txt"
printf 'web: python3 -m http.server $PORT\n' >"$TEST_DIR/t/pyempty/Procfile"
deploy pyempty "$TEST_DIR/t/pyempty" || diag "$TEST_DIR/pyempty.out"
check "python: an empty requirements.txt runs no pip" contains "$TEST_DIR/pyempty.out" "No requirements in requirements.txt: nothing to install"
check "python: ... and compiles without network, as its bin/berth-offline says" \
    contains "$TEST_DIR/pyempty.out" "Nothing to download for this app: compiling without network"
# Its virtualenv is made once and kept in the build cache; the next build
# copies it (python3 -m venv is most of such a build), and the app runs in it.
kept=$home/apps/pyempty/cache/python/app-empty.id
check "python: ... and keeps its empty virtualenv in the build cache" [ -f "$kept" ]
made=$(stat -c %y "$kept" 2>/dev/null || true)
printf 'web: python3 -c "import http.server, os, sys; h = type(\\"H\\", (http.server.BaseHTTPRequestHandler,), {\\"do_GET\\": lambda s: (s.send_response(200), s.end_headers(), s.wfile.write((\\"prefix \\" + sys.prefix + \\" \\" + os.environ.get(\\"GREET\\", \\"none\\")).encode()))}); http.server.HTTPServer((\\"\\", int(os.environ[\\"PORT\\"])), h).serve_forever()"\n' \
    >"$TEST_DIR/src-pyempty/Procfile"
# The app's own .profile.d: the kept virtualenv's copy merges with it.
mkdir -p "$TEST_DIR/src-pyempty/.profile.d"
echo 'export GREET=own-profile' >"$TEST_DIR/src-pyempty/.profile.d/greet.sh"
commit_all "$TEST_DIR/src-pyempty" "print the prefix"
push_app "$TEST_DIR/src-pyempty" pyempty "$TEST_DIR/pyempty.2.out" || diag "$TEST_DIR/pyempty.2.out"
check "python: the next build takes the kept virtualenv rather than making one" \
    [ "${made:-none}" = "$(stat -c %y "$kept" 2>/dev/null || echo missing)" ]
check "python: ... and the app runs in it, its own .profile.d script sourced beside berth's" \
    wait_body pyempty.localhost / "prefix /app/.venv own-profile"
mkdir -p "$TEST_DIR/t/pyproject/hello"
printf '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "hello"\nversion = "1.0"\n\n[project.scripts]\nhello-web = "hello:main"\n' \
    >"$TEST_DIR/t/pyproject/pyproject.toml"
printf 'import http.server, os\n\ndef main():\n    class H(http.server.BaseHTTPRequestHandler):\n        def do_GET(self):\n            self.send_response(200); self.end_headers(); self.wfile.write(b"hello from a pyproject app\\n")\n    http.server.HTTPServer(("", int(os.environ["PORT"])), H).serve_forever()\n' \
    >"$TEST_DIR/t/pyproject/hello/__init__.py"
printf 'web: hello-web\n' >"$TEST_DIR/t/pyproject/Procfile"
deploy pyproject "$TEST_DIR/t/pyproject" || diag "$TEST_DIR/pyproject.out"
check "python: a pyproject.toml project installs with pip install ." contains "$TEST_DIR/pyproject.out" "Running pip install ."
check "python: ... and its console script runs from the venv" wait_body pyproject.localhost / "hello from a pyproject app"

# ---------------------------------------------------------------- php beyond its example
mkdir -p "$TEST_DIR/t/phpsess"
cat >"$TEST_DIR/t/phpsess/index.php" <<'PHP'
<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
file_put_contents(__DIR__ . '/cache.txt', 'cached');
$db = new SQLite3(__DIR__ . '/app.sqlite');
$db->exec('CREATE TABLE IF NOT EXISTS hits (at INTEGER)');
$db->exec('INSERT INTO hits VALUES (1)');
echo session_save_path(), ' n=', $_SESSION['n'], ' cache=', file_get_contents(__DIR__ . '/cache.txt'),
     ' sessions=', count(glob('/tmp/sess_*')), ' rows=', $db->querySingle('SELECT COUNT(*) FROM hits'), "\n";
PHP
deploy phpsess "$TEST_DIR/t/phpsess" || diag "$TEST_DIR/phpsess.out"
curl -s -c "$TEST_DIR/jar" -b "$TEST_DIR/jar" -H 'Host: phpsess.localhost' "http://127.0.0.1:$HTTP_PORT/" >/dev/null || true
curl -s -c "$TEST_DIR/jar" -b "$TEST_DIR/jar" -H 'Host: phpsess.localhost' "http://127.0.0.1:$HTTP_PORT/" >"$TEST_DIR/phpsess.body" || true
check "php: sessions live under /tmp and persist between requests" grep -q '^/tmp n=2' "$TEST_DIR/phpsess.body"
check "php: files and SQLite databases in the app directory just work" \
    grep -q 'cache=cached sessions=1 rows=2' "$TEST_DIR/phpsess.body"

if command -v composer >/dev/null; then
    mkdir -p "$TEST_DIR/t/phpcomposer/packages/greeter/src" "$TEST_DIR/t/phpcomposer/public"
    printf '{"name": "berth/greeter", "version": "1.2.3", "autoload": {"psr-4": {"Berth\\\\Greeter\\\\": "src/"}}}\n' \
        >"$TEST_DIR/t/phpcomposer/packages/greeter/composer.json"
    printf '<?php\nnamespace Berth\\Greeter;\nfinal class Greeter { public static function hello(): string { return "greeted by composer"; } }\n' \
        >"$TEST_DIR/t/phpcomposer/packages/greeter/src/Greeter.php"
    printf '{"require": {"php": ">=8.1", "berth/greeter": "*"}, "repositories": [{"type": "path", "url": "packages/*"}, {"packagist.org": false}], "minimum-stability": "dev"}\n' \
        >"$TEST_DIR/t/phpcomposer/composer.json"
    printf '<?php\nrequire __DIR__ . "/../vendor/autoload.php";\necho \\Berth\\Greeter\\Greeter::hello(), "\\n";\n' \
        >"$TEST_DIR/t/phpcomposer/public/index.php"
    deploy phpcomposer "$TEST_DIR/t/phpcomposer" || diag "$TEST_DIR/phpcomposer.out"
    check "php: composer installs from a path repository, offline" contains "$TEST_DIR/phpcomposer.out" "Running composer install"
    check "php: public/ is the document root when only public/index.php exists" \
        wait_body phpcomposer.localhost / "greeted by composer"
    redeploy phpcomposer public/index.php || diag "$TEST_DIR/phpcomposer.2.out"
    check "php: an unchanged composer.json reuses vendor/" contains "$TEST_DIR/phpcomposer.2.out" "Using cached vendor/"
else
    not_ok "composer (the Debian package composer) is installed"
fi

# ---------------------------------------------------------------- go beyond its example
mkdir -p "$TEST_DIR/t/gonomod"
printf 'package main\n\nimport (\n\t"fmt"\n\t"net/http"\n\t"os"\n)\n\nfunc main() {\n\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "no module") })\n\thttp.ListenAndServe(":"+os.Getenv("PORT"), nil)\n}\n' \
    >"$TEST_DIR/t/gonomod/main.go"
deploy gonomod "$TEST_DIR/t/gonomod" || diag "$TEST_DIR/gonomod.out"
check "go: .go files without go.mod build and serve" wait_body gonomod.localhost / "no module"
mkdir -p "$TEST_DIR/t/govendor/vendor/example.com/greet"
printf 'module example.com/web/v2\n\ngo 1.19\n\nrequire example.com/greet v1.0.0\n' >"$TEST_DIR/t/govendor/go.mod"
printf 'module example.com/greet\n\ngo 1.19\n' >"$TEST_DIR/t/govendor/vendor/example.com/greet/go.mod"
printf 'package greet\n\nfunc Hello() string { return "greeted by a vendored module" }\n' >"$TEST_DIR/t/govendor/vendor/example.com/greet/greet.go"
printf '# example.com/greet v1.0.0\n## explicit\nexample.com/greet\n' >"$TEST_DIR/t/govendor/vendor/modules.txt"
printf 'package main\n\nimport (\n\t"fmt"\n\t"net/http"\n\t"os"\n\n\t"example.com/greet"\n)\n\nfunc main() {\n\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, greet.Hello()) })\n\thttp.ListenAndServe(":"+os.Getenv("PORT"), nil)\n}\n' \
    >"$TEST_DIR/t/govendor/main.go"
deploy govendor "$TEST_DIR/t/govendor" || diag "$TEST_DIR/govendor.out"
check "go: vendor/ is used offline" contains "$TEST_DIR/govendor.out" "Using vendor/ (GOFLAGS=-mod=vendor, GOPROXY=off)"
check "go: ... the binary is named after the module (bin/web)" wait_body govendor.localhost / "greeted by a vendored module"
mkdir -p "$TEST_DIR/t/gonewer"
cp "$SRCDIR/examples/go/main.go" "$TEST_DIR/t/gonewer/"
printf 'module example.com/hello\n\ngo 1.99\n' >"$TEST_DIR/t/gonewer/go.mod"
deploy gonewer "$TEST_DIR/t/gonewer" || diag "$TEST_DIR/gonewer.out"
check "go: a go directive newer than the stack's Go is a warning" \
    grep -qE 'go.mod asks for Go 1.99, the stack has go[0-9.]+: trying the build anyway' "$TEST_DIR/gonewer.out"
check "go: ... and the build is tried" wait_body gonewer.localhost / "Hello from berth's Go example"

stop_berth || true
done_testing
