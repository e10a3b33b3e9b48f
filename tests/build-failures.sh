#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Bad input to the build, each pushed with the real git client on top of a
# good release: nothing a buildpack detects, a failing bin/compile,
# malformed bin/release YAML, Procfiles with duplicate or invalid types or
# merge-conflict markers, a .buildpacks URL that cannot be fetched, a
# package.json that is not JSON, a lock file out of sync, requirements
# files that include each other in a loop, requirements, Go modules and
# Composer packages that need an unreachable index, a static site without
# index.html, a Pipfile, a build that breaks the slug's layout. Each must
# be rejected with a message naming the cause and no path of the host's
# berth home (the tenant sees /app, /berth/slug, <build>...), leave nothing
# half-built on disk (no build directory, no new slug), leave the ref where
# it was, and the previous release serving. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
serve_for_test
bp=$TEST_DIR/bp
mkdir -p "$bp"

"$BERTH" apps:create victim >/dev/null
work=$TEST_DIR/victim
make_repo "$SRCDIR/examples/procfile" "$work"
push_app "$work" victim "$TEST_DIR/good.out" && ok "the good release deploys" ||
    { not_ok "the good release deploys"; diag "$TEST_DIR/good.out"; }
good_ref=$(git -C "$work" rev-parse HEAD)
good_body="Hello from berth's Procfile example"
n_case=0

# bad_push WHAT MESSAGE: replaces the tree with the files in $TEST_DIR/case
# (prepared by the caller), pushes, and checks the rejection and that
# nothing changed.
bad_push() {
    local what=$1 msg=$2 out slugs
    n_case=$((n_case + 1))
    out=$TEST_DIR/bad$n_case.out
    slugs=$(slug_count "$home")
    git -C "$work" rm -q -r --cached . >/dev/null
    find "$work" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
    cp -a "$TEST_DIR/case/." "$work/"
    commit_all "$work" "$what"
    if push_app "$work" victim "$out"; then
        not_ok "$what: the push is rejected"; diag "$out"
    else
        ok "$what: the push is rejected"
    fi
    check "$what: ... saying '$msg'" contains "$out" "$msg"
    check "$what: ... git reports the ref as rejected" contains "$out" "[remote rejected]"
    check "$what: ... naming no path of berth's home" not_contains "$out" "$home"
    check "$what: ... the ref did not move" \
        [ "$(git --git-dir="$home/apps/victim/repo.git" rev-parse refs/heads/main)" = "$good_ref" ]
    check "$what: ... no build directory is left" [ "$(builds_left "$home")" = 0 ]
    check "$what: ... no new slug" [ "$(slug_count "$home")" = "$slugs" ]
    check "$what: ... the previous release still serves" wait_body victim.localhost / "$good_body"
    git -C "$work" reset -q --hard "$good_ref"
    rm -rf "$TEST_DIR/case"
    mkdir -p "$TEST_DIR/case"
}
mkdir -p "$TEST_DIR/case"
put() { mkdir -p "$(dirname "$TEST_DIR/case/$1")"; printf '%s' "$2" >"$TEST_DIR/case/$1"; }

put README 'nothing to detect'
bad_push "no buildpack detects" "-----> Unable to select a buildpack"

make_buildpack "$bp/failing" 'echo Failing' 'echo "-----> about to fail"; echo " !     something broke" >&2; exit 7'
put .buildpacks "file://$bp/failing"
bad_push "bin/compile fails" " !     Push rejected, failed to compile Failing app."
check "... with the buildpack's own error" contains "$TEST_DIR/bad$n_case.out" " !     something broke"

# bin/detect runs with the slug writable (/berth/slug): a link planted there for the app must not
# lead compile's /app mount to the host, and nothing it leaves beside app/ may become the app's.
for link in / ../..; do
    make_buildpack "$bp/link${#link}" "rm -rf /berth/slug/app && ln -s $link /berth/slug/app && echo Linker" \
        '[ -e "$1/proc/1/cmdline" ] && echo "HOST-ROOT-SEEN"; true'
    put .buildpacks "file://$bp/link${#link}"
    bad_push "bin/detect makes the slug's app/ a link to $link" "is or passes through a symbolic link"
    check "... and compile never saw the host's root" not_contains "$TEST_DIR/bad$n_case.out" "HOST-ROOT-SEEN"
done
make_buildpack "$bp/beside" "mkdir -p /berth/slug/etc && ln -s /tmp /berth/slug/etc/ssl && echo Beside" 'true'
put .buildpacks "file://$bp/beside"
put Procfile 'web: sleep 600'
bad_push "bin/detect leaves a file beside the slug's app/" "the build left 'etc' beside the app in the slug"

# What the runner says of the slug names its host path: the pusher sees /app.
make_buildpack "$bp/appfile" "rm -rf /berth/slug/app && echo x >/berth/slug/app && echo AppFile" 'true'
put .buildpacks "file://$bp/appfile"
bad_push "bin/detect makes the slug's app/ a file" "onto '/app': Not a directory"

# Deeper than the walks measure: the build stops, and all of its tree is still removed from the host.
make_buildpack "$bp/deep" 'echo Deep' \
    'cd "$1" && i=0 && while [ $i -lt 300 ]; do mkdir d && cd d && i=$((i + 1)); done && echo bottom >f'
put .buildpacks "file://$bp/deep"
put Procfile 'web: sleep 600'
bad_push "bin/compile nests directories 300 levels deep" \
    " !     the build nested directories deeper than the 256 levels berth measures and keeps"

# What bin/detect leaves instead of its status file is named in the output, not only in git's reason.
make_buildpack "$bp/statuslink" \
    'd=$(basename "$(dirname "$(dirname "$0")")"); ln -s /tmp/elsewhere "/berth/out/detect-$d.status"; echo StatusLink' 'true'
put .buildpacks "file://$bp/statuslink"
bad_push "bin/detect makes its status file a link" \
    " !     buildpack 'file://$bp/statuslink': bin/detect's status is a symlink: it must be a regular file"

make_buildpack "$bp/badyaml" 'echo BadYAML' 'true' "printf -- '---\ndefault_process_types:\n  web: [unclosed\n    deeper: x\n'"
put .buildpacks "file://$bp/badyaml"
bad_push "bin/release prints malformed YAML" "bin/release output line 4:"

put Procfile $'web: python3 server.py\nworker: sleep 1\nweb: python3 other.py\n'
bad_push "a Procfile with a duplicate type" "Procfile line 3: duplicate process type 'web' (first declared on line 1)"
put Procfile $'web: python3 server.py\nmy web: python3 x.py\n'
bad_push "a Procfile with an invalid type" "Procfile line 2: invalid process type 'my web'"
put Procfile $'<<<<<<< HEAD\nweb: python3 server.py\n=======\nweb: python3 other.py\n>>>>>>> feature\n'
bad_push "a Procfile with merge-conflict markers" "Procfile line 1: merge conflict marker"
put Procfile 'worker: python3 server.py'
bad_push "a Procfile without web" "no web process type: add a Procfile with a 'web:' line"

put .buildpacks "file://$TEST_DIR/no-such-buildpack"
put README x
bad_push "a .buildpacks URL that cannot be fetched" "unable to fetch buildpack 'file://$TEST_DIR/no-such-buildpack'"
put .buildpacks "http://me:s3cret@127.0.0.1:9/bp.git"
bad_push "a .buildpacks URL with a token that cannot be fetched" "unable to fetch buildpack 'http://***@127.0.0.1:9/bp.git'"
check "... and the token is never shown" not_contains "$TEST_DIR/bad$n_case.out" "s3cret"
put .buildpacks "https://example.com/a buildpack.git"
bad_push "a .buildpacks line that is not a URL" ".buildpacks line 1: buildpack 'https://example.com/a buildpack.git' contains a space"

put package.json $'{\n  "name": "broken",\n  "dependencies": {\n    "ms": "^2.1.3",\n  }\n}\n'
bad_push "package.json that is not JSON" " !     package.json is not valid JSON:"
cp -a "$SRCDIR/examples/node/." "$TEST_DIR/case/"
sed -i 's/"ms": "[^"]*"/&,\n    "escape-html": "^1.0.3"/' "$TEST_DIR/case/package.json"
bad_push "a lock file out of sync with package.json" " !     package-lock.json is out of sync with package.json"
check "... telling what to do" contains "$TEST_DIR/bad$n_case.out" "run \`npm install\` locally and commit the updated package-lock.json"

put requirements.txt 'berth-no-such-requirement==1.0'
bad_push "a Python requirement neither in the stack nor vendored" \
    " !     pip could not install the requirement 'berth-no-such-requirement==1.0'"
# The loop would otherwise run until the build's time limit: a short one shows it.
"$BERTH" builds:set victim timeout=2m >/dev/null
put requirements.txt $'-r requirements.txt\nflask\n'
bad_push "a requirements.txt that includes itself" \
    " !     the requirement files include each other in a loop (-r or -c back to requirements.txt)"
"$BERTH" builds:set victim timeout= >/dev/null
put Pipfile $'[packages]\nflask = "*"\n'
put Pipfile.lock '{}'
bad_push "a Pipfile without requirements.txt" " !     Pipfile.lock needs pipenv, which is not in berth's stack"

put go.mod $'module example.com/web\n\ngo 1.19\n\nrequire example.com/greet v1.0.0\n'
put main.go $'package main\n\nimport "example.com/greet"\n\nfunc main() { println(greet.Hello()) }\n'
bad_push "a Go module that needs a download" " !     go mod download needs Go modules that are not in the module cache (example.com/greet@v1.0.0)"

put composer.json '{"require": {"psr/log": "^3.0"}}'
put index.php '<?php echo "hi";'
bad_push "a Composer package from Packagist (unreachable)" " !     composer could not download psr/log"
put composer.json '{"require": {"php": ">=8"},}'
put index.php '<?php echo "hi";'
bad_push "composer.json that is not JSON" " !     composer.json is not valid JSON:"

put .static ''
put about.html 'no index here'
bad_push "a static site without index.html" " !     no index.html in public/: a static site needs one at its root"

stop_berth || true
done_testing
