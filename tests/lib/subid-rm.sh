# SPDX-License-Identifier: GPL-2.0-or-later
#
# subid_rm_rf DIR: removes a test's or benchmark's directory, whose slugs
# and container layers hold files owned by the tenants' subordinate ids.
# Only a user namespace that maps those ids may remove them, and a tenant's
# ids may lie in any of the user's /etc/subuid entries: `berth setup` adds
# one beside the 65536 ids useradd gave, and `unshare --map-auto` maps the
# first entry alone. So this maps the user's own id to 0 and every entry
# after it, with newuidmap and newgidmap, in a namespace a `sleep` holds
# while `nsenter` runs rm there. Sourced by tests/lib/libtest.sh and
# tests/bench/serve.sh; subid_rm_rf never fails (what it cannot remove
# stays); tests/subid-rm.sh tests it.

# subid_map FILE ID NAME: "0 ID 1" then "INNER START COUNT" for each of
# FILE's entries for NAME (or ID), the inner ids counted on from 1.
subid_map() {
    local name start count next=1 map="0 $2 1"
    while IFS=: read -r name start count; do
        [ "$name" = "$3" ] || [ "$name" = "$2" ] || continue
        map="$map $next $start $count"
        next=$((next + count))
    done <"$1"
    echo "$map"
}

# subid_ns_run CMD...: runs CMD as root of such a namespace; fails when
# the maps are refused (no subordinate ids, no newuidmap) or CMD fails.
subid_ns_run() {
    local holder own rc=0
    unshare --user sleep 60 & holder=$!
    own=$(readlink /proc/self/ns/user)
    for _ in $(seq 1 100); do
        [ "$(readlink "/proc/$holder/ns/user" 2>/dev/null)" != "$own" ] && break
        sleep 0.01
    done
    # shellcheck disable=SC2046 # the maps are lists of numbers, split on purpose
    newuidmap "$holder" $(subid_map /etc/subuid "$(id -u)" "$(id -un)") 2>/dev/null &&
        newgidmap "$holder" $(subid_map /etc/subgid "$(id -g)" "$(id -un)") 2>/dev/null &&
        nsenter --user --target "$holder" "$@" || rc=1
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null || true
    return $rc
}

subid_rm_rf() {
    rm -rf "$1" 2>/dev/null || subid_ns_run rm -rf "$1" 2>/dev/null || true
}
