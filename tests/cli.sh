#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The `berth` command line without a server: `berth help` lists every
# command by group with the exit codes; `berth help COMMAND` and `berth
# COMMAND --help` print its usage and description for every command the
# listing names (so a command added later is covered too); and the exit
# codes hold: 2 for every usage error (an unknown command, missing or extra
# arguments, a malformed flag or value), 1 for an error (the API cannot be
# reached: BERTH_URL points at a closed port, so a command that wrongly
# takes bad arguments to the API exits 1, not 2), 0 for help. Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"
[ -x "$BERTH" ] || skip_all "no berth binary at $BERTH"
export BERTH_URL="http://127.0.0.1:$(free_port)" BERTH_TOKEN=not-a-token BERTH_HOME=$TEST_DIR/home
# usage_error ARGS...: exits 2 and says the usage (or what is wrong) on stderr, nothing on stdout.
usage_error() {
    run "$@"
    [ "$rc" = 2 ] && [ -s "$err" ] && [ ! -s "$out" ] || { echo "# berth $*: exit $rc, stderr: $(head -c 200 "$err")"; return 1; }
}

run help
check "help exits 0" test "$rc" = 0
check "... lists the commands by group" grep -q '^Apps:$' "$out"
check "... with the server's own commands" grep -Eq '^  serve +run berth' "$out"
check "... and the exit codes" grep -q '^Exit status: 0 success; 1 error' "$out"
check "... with 2 for usage errors" contains "$out" "2 usage error"
cp "$out" "$TEST_DIR/help"
run
check "berth with no command prints the same" cmp -s "$out" "$TEST_DIR/help"
# Every command the listing names: "  name[, alias]...  description" lines.
names=$(sed -n 's/^  \([a-z][a-z:-]*\(, [a-z][a-z:-]*\)*\)  .*/\1/p' "$TEST_DIR/help" | tr -d ',' | tr ' ' '\n' | grep .)
check "the listing names at least 30 commands" test "$(echo "$names" | wc -l)" -ge 30
bad_help=; bad_flag=; bad_missing=; bad_extra=
for name in $names; do
    run help "$name"
    if [ "$rc" != 0 ] || ! grep -q "^usage: berth $name\\b" "$out" || [ "$(wc -l <"$out")" -lt 4 ]; then
        bad_help="$bad_help $name"; continue
    fi
    usage=$(sed -n 's/^usage: berth //p' "$out")
    case $name in serve|setup|help|version) continue ;; esac
    cp "$out" "$TEST_DIR/one"
    run "$name" --help
    { [ "$rc" = 0 ] && cmp -s "$out" "$TEST_DIR/one"; } || bad_flag="$bad_flag $name"
    set -- $usage
    # A first argument not in brackets is required: without it, a usage error.
    if [ $# -gt 1 ] && [ "${2:0:1}" != "[" ]; then
        usage_error "$name" >/dev/null || bad_missing="$bad_missing $name"
        grep -q "usage: berth $name" "$err" || bad_missing="$bad_missing $name(no usage line)"
    fi
    # With no "..." in the usage, twelve arguments are too many.
    case $usage in *...*) ;; *) usage_error "$name" a b c d e f g h i j k l >/dev/null || bad_extra="$bad_extra $name" ;; esac
done
check "help COMMAND prints usage and description for every command${bad_help:+ (not:$bad_help)}" test -z "$bad_help"
check "COMMAND --help prints the same, exit 0${bad_flag:+ (not:$bad_flag)}" test -z "$bad_flag"
check "a missing argument is a usage error, exit 2${bad_missing:+ (not:$bad_missing)}" test -z "$bad_missing"
check "extra arguments are a usage error, exit 2${bad_extra:+ (not:$bad_extra)}" test -z "$bad_extra"

run help no-such-command
check "help of an unknown command exits 2" test "$rc" = 2
check "... saying so" contains "$err" "unknown command 'no-such-command'"
check "an unknown command exits 2" usage_error no-such-command
check "help with two commands exits 2" usage_error help apps cron
run -h
check "-h is help" cmp -s "$out" "$TEST_DIR/help"
run cron -h
check "COMMAND -h is its help" test "$rc" = 0
check "... its usage" contains "$out" "usage: berth cron APP [--json]"

# Arguments each command checks itself.
check "releases APP --yaml: exit 2" usage_error releases app --yaml
check "cron APP --yaml: exit 2" usage_error cron app --yaml
check "domains APP --yaml: exit 2" usage_error domains app --yaml
check "certs APP --yaml: exit 2" usage_error certs app --yaml
check "router APP --yaml: exit 2" usage_error router app --yaml
check "events with two apps: exit 2" usage_error events a b
check "gc --bogus: exit 2" usage_error gc --bogus
check "gc --keep 0: exit 2" usage_error gc --keep 0
check "gc --keep without N: exit 2" usage_error gc --keep
check "rollback APP vx: exit 2" usage_error rollback app vx
check "ps:grace APP abc: exit 2" usage_error ps:grace app abc
check "net:set APP outbound=maybe: exit 2" usage_error net:set app outbound=maybe
check "config:set APP NOVALUE: exit 2" usage_error config:set app NOVALUE
check "config:set APP --no-restart alone: exit 2" usage_error config:set app --no-restart
check "builds:set APP nokey: exit 2" usage_error builds:set app nokey
check "router:set APP nokey: exit 2" usage_error router:set app nokey
check "serve --bogus: exit 2" usage_error serve --bogus
check "serve with an extra argument: exit 2" usage_error serve extra
check "setup --bogus: exit 2" usage_error setup --bogus
check "setup with an extra argument: exit 2" usage_error setup extra
if echo "$names" | grep -qx run; then
    run run app -- true --help
    check "run APP -- CMD --help passes --help on (no help, the API is asked: exit 1)" test "$rc" = 1
fi

# Errors that are not usage errors: exit 1.
run apps
check "apps with the API unreachable exits 1" test "$rc" = 1
check "... saying it cannot reach it" contains "$err" "cannot reach the berth API"
run cron app
check "cron APP with the API unreachable exits 1" test "$rc" = 1
run version
check "version exits 0" test "$rc" = 0
done_testing
