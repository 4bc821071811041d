#!/usr/bin/env bash
# `kith group create`, `kith group`, `kith devices`, `kith devices rm` and the group line of
# `kith status` (spec/cli.md CLI-40..CLI-43, spec/groups.md GRP-16..GRP-20), end to end with
# the real binary: a fresh replica founds a group; a copy of the format-1 fixture (which
# trusts one peer) converts its trust set to a group at its first writable open, removes that
# peer, and refuses what must be refused with exit 1 and a message.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }
V1=$here/tests/data/v1

tmp=$(mktemp -d /tmp/kith-test-groups.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset KITH_DIR XDG_DATA_HOME
export HOME="$tmp/home"
mkdir -p "$HOME"

pass=0 fail=0
check() { # check NAME COMMAND... : COMMAND must succeed
    local name=$1
    shift
    if "$@"; then pass=$((pass + 1)); else
        fail=$((fail + 1))
        echo "FAILED: $name"
    fi
}
exit_of() { # exit_of COMMAND... : its exit status on stdout, its output in $tmp/out, $tmp/err
    local rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    echo "$rc"
}
jq_true() { # jq_true [jq options] FILTER FILE : the filter gives true on FILE
    test "$(jq "$@")" = true
}

# ---- a fresh replica founds a group
F=$tmp/f
"$KITH" --dir "$F" init >/dev/null
check "group on a replica in none (exit 0)" test "$(exit_of "$KITH" --dir "$F" group)" = 0
check "says it is in no group" grep -q "in no group" "$tmp/out"
check "group --json: in_group false" test "$(exit_of "$KITH" --dir "$F" group --json)" = 0
check "in_group is false" jq_true '.in_group == false and .id == null' "$tmp/out"
check "group create without NAME is a usage error" \
    test "$(exit_of "$KITH" --dir "$F" group create)" = 2
check "group create with an empty name fails" \
    test "$(exit_of "$KITH" --dir "$F" group create "")" = 1
check "and says what a name is" grep -q "1 to 63 bytes" "$tmp/err"
check "group create (exit 0)" \
    test "$(exit_of "$KITH" --dir "$F" group create home --device-name laptop --json)" = 0
check "the new group has one member" jq_true '.in_group and .name == "home" and .members == 1' \
    "$tmp/out"
GID=$(jq -r .id "$tmp/out")
check "its id is 32 hex digits" test "${#GID}" = 32
check "group create again fails" \
    test "$(exit_of "$KITH" --dir "$F" group create other)" = 1
check "naming the group it is in" grep -q "$GID" "$tmp/err"
check "devices (exit 0)" test "$(exit_of "$KITH" --dir "$F" devices)" = 0
check "the table has the header" grep -q "^NAME *ID *ADDED BY *ADDED *LAST SEEN *REMOVED" "$tmp/out"
check "and the founder" grep -q "^laptop .*(founder).*(this replica)" "$tmp/out"
check "devices --json" test "$(exit_of "$KITH" --dir "$F" devices --json)" = 0
F_ID=$("$KITH" --dir "$F" id --json | jq -r .id)
check "one device, this one" jq_true --arg id "$F_ID" \
    '.devices | length == 1 and .[0].id == $id and .[0].self and (.[0].removed | not)' "$tmp/out"
check "status shows the group" test "$(exit_of "$KITH" --dir "$F" status)" = 0
check "with its member count" grep -q "^group .*home ($GID), 1 member" "$tmp/out"
check "status --json too" test "$(exit_of "$KITH" --dir "$F" status --json)" = 0
check "group.members is 1" jq_true --arg g "$GID" '.group.id == $g and .group.members == 1' \
    "$tmp/out"
check "devices rm of a bad id is refused" test "$(exit_of "$KITH" --dir "$F" devices rm xyz)" = 1
check "naming the bad id" grep -q "not a device id" "$tmp/err"
check "devices rm of an unknown id fails" \
    test "$(exit_of "$KITH" --dir "$F" devices rm 0123456789abcdef)" = 1
check "saying no member has it" grep -q "no member of the group has id" "$tmp/err"
check "devices --help" test "$(exit_of "$KITH" --dir "$F" devices --help)" = 0
check "prints the usage" grep -q "usage: kith devices" "$tmp/out"
check "a contact before retiring" test "$(exit_of "$KITH" --dir "$F" contact add --name kept)" = 0
check "devices rm of its own id retires its key" \
    test "$(exit_of "$KITH" --dir "$F" devices rm "$F_ID")" = 0
check "then a write fails" test "$(exit_of "$KITH" --dir "$F" contact add --name refused)" = 1
check "saying it was removed" grep -q "removed from group $GID" "$tmp/err"
check "status says so" test "$(exit_of "$KITH" --dir "$F" status)" = 0
check "on the group line" grep -q "THIS REPLICA WAS REMOVED" "$tmp/out"
check "devices says so" test "$(exit_of "$KITH" --dir "$F" devices)" = 0
check "under the table" grep -q "this replica was removed from the group" "$tmp/out"
check "group --json says so" test "$(exit_of "$KITH" --dir "$F" group --json)" = 0
check "with the cut-off" jq_true '.self_removed and .self_cutoff >= 1 and .members == 0' "$tmp/out"

# ---- a format-1 replica that trusts b converts to a group at its first writable open
A=$tmp/a
mkdir -p "$A"
cp "$V1/replica-a/data.mdb" "$V1/replica-a/key" "$A/"
chmod 600 "$A/key" "$A/data.mdb"
B_PK=$(cat "$V1/b.pub")
check "read-only, it is in no group yet" test "$(exit_of "$KITH" --dir "$A" group --json)" = 0
check "in_group false" jq_true '.in_group == false' "$tmp/out"
check "a writable command (trust b again)" test "$(exit_of "$KITH" --dir "$A" trust "$B_PK" --name b)" = 0
check "now the group holds a and b" test "$(exit_of "$KITH" --dir "$A" devices --json)" = 0
check "two devices, b named b" jq_true --arg pk "$B_PK" \
    '.devices | length == 2 and (map(select(.pubkey == $pk and .name == "b")) | length == 1)' \
    "$tmp/out"
B_ID=$(jq -r --arg pk "$B_PK" '.devices[] | select(.pubkey == $pk) | .id' "$tmp/out")
check "devices rm b (exit 0)" test "$(exit_of "$KITH" --dir "$A" devices rm "$B_ID")" = 0
check "says removed" grep -q "^removed: $B_ID" "$tmp/out"
check "devices shows it removed" test "$(exit_of "$KITH" --dir "$A" devices --json)" = 0
check "with its cut-off" jq_true --arg id "$B_ID" \
    '.devices[] | select(.id == $id) | .removed and .cutoff > 0' "$tmp/out"
check "the table says after which seq" test "$(exit_of "$KITH" --dir "$A" devices)" = 0
check "in the REMOVED column" grep -q "^b .*after seq [0-9]" "$tmp/out"
check "removing it again fails" test "$(exit_of "$KITH" --dir "$A" devices rm "$B_ID")" = 1
check "saying it was removed already" grep -q "removed already" "$tmp/err"
check "group --json after the removal" \
    test "$(exit_of "$KITH" --dir "$A" group --json)" = 0
check "the group has one member and one removed" jq_true '.members == 1 and .removed == 1' \
    "$tmp/out"
check "the state is what format 1 wrote" test "$(exit_of "$KITH" --dir "$A" export)" = 0
check "byte for byte" cmp -s "$tmp/out" "$V1/export.json"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
