#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/lib/subid-rm.sh, which every test and benchmark uses to remove its
# directory: the maps it builds from /etc/subuid-style files, and a tree
# whose files belong to the user's own id, to an id of its first
# subordinate entry and to one past the first 65536 (where `berth setup`'s
# slices go when useradd gave the user a first entry) removed whole. Run
# as the berth user by meson (CI gives it one entry of its own; this
# machine's users have two). Prints TAP.
set -euo pipefail
. "$(dirname "$0")/lib/libtest.sh"

printf '%s\n' 'alice:100000:65536' 'bob:200000:65536' 'alice:165536:1048576' '1234:900000:10' >"$TEST_DIR/subuid"
check "maps: own id to 0, then each entry of the user (by name or id) in order" \
    [ "$(subid_map "$TEST_DIR/subuid" 1234 alice)" = "0 1234 1 1 100000 65536 65537 165536 1048576 1114113 900000 10" ]
check "maps: a user without entries gets its own id alone" [ "$(subid_map "$TEST_DIR/subuid" 77 carol)" = "0 77 1" ]
: >"$TEST_DIR/empty"
check "maps: an empty file" [ "$(subid_map "$TEST_DIR/empty" 5 dave)" = "0 5 1" ]

[ "$(id -u)" != 0 ] || { echo "# as root, plain rm removes everything"; done_testing; exit; }

# The ids to give files: the last id the maps cover, and one in the first entry.
read -r -a map <<<"$(subid_map /etc/subuid "$(id -u)" "$(id -un)")"
last=$(( map[${#map[@]} - 3] + map[${#map[@]} - 1] - 1 ))
[ "${#map[@]}" -ge 6 ] || skip_all "no subordinate ids for $(id -un): run 'berth setup --user $(id -un)' as root"
tree=$TEST_DIR/tree
mkdir -p "$tree/a/b"
echo x >"$tree/a/b/file"
echo y >"$tree/a/own"
subid_ns_run chown -R 1:1 "$tree/a" && subid_ns_run chown "$last:$last" "$tree/a/b/file" "$tree/a/b"
outer=$(stat -c %u "$tree/a/b/file")
check "a file now belongs to the last subordinate id ($last inside, $outer outside)" [ "$outer" != "$(id -u)" ]
check "plain rm cannot remove the tree" bash -c "! rm -rf '$tree' 2>/dev/null"
subid_rm_rf "$tree"
check "subid_rm_rf removes it whole" [ ! -e "$tree" ]
check "subid_rm_rf of a missing directory succeeds quietly" subid_rm_rf "$TEST_DIR/missing"
done_testing
