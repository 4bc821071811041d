#!/usr/bin/env bash
# `kith rekey` and how `kith status` and `kith forks` show a re-key (spec/cli.md CLI-31,
# spec/data-model.md FORK-11..14) end to end with the real CLI. A replica in no group is
# refused and changes nothing; when its own origin lost a fork, `kith status` says what to do.
# A replica in a group takes a new key on demand: the old key admits it (two devices of the
# same name in `kith devices`), `kith id` names it, status and forks show old -> new, and the
# replica writes and verifies under it.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kith-test-rekey.XXXXXX")
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
jq_true() { jq -e "$@" >/dev/null; }

# ---- pairwise only: a fork of A's own key, proven at B; the losing copy cannot re-key
A=$tmp/a A2=$tmp/a2 B=$tmp/b
"$KITH" --dir "$A" init >/dev/null
"$KITH" --dir "$B" init >/dev/null
A_PK=$("$KITH" --dir "$A" id --json | jq -r .pubkey)
A_ID=$("$KITH" --dir "$A" id --json | jq -r .id)
B_PK=$("$KITH" --dir "$B" id --json | jq -r .pubkey)
"$KITH" --dir "$B" trust "$A_PK" --name a >/dev/null
"$KITH" --dir "$A" trust "$B_PK" --name b >/dev/null
"$KITH" --dir "$A" contact add --name Ada >/dev/null
cp -r "$A" "$A2"
"$KITH" --dir "$A" contact add --name Grace >/dev/null
"$KITH" --dir "$A2" contact add --name Hedy >/dev/null
"$KITH" --dir "$A" bundle create -o "$tmp/a.bundle" --quiet
"$KITH" --dir "$A2" bundle create -o "$tmp/a2.bundle" --quiet
"$KITH" --dir "$B" bundle apply "$tmp/a.bundle" --quiet >/dev/null
"$KITH" --dir "$B" bundle apply "$tmp/a2.bundle" --quiet >/dev/null 2>&1
"$KITH" --dir "$B" bundle create -o "$tmp/b.bundle" --quiet
"$KITH" --dir "$A" bundle apply "$tmp/b.bundle" --quiet >/dev/null 2>&1
"$KITH" --dir "$A2" bundle apply "$tmp/b.bundle" --quiet >/dev/null 2>&1
LOSER=
for d in "$A" "$A2"; do
    "$KITH" --dir "$d" forks --json >"$tmp/out"
    if jq_true '.forks[0].proof.holds == "loser"' "$tmp/out"; then LOSER=$d; fi
done
check "one copy holds the losing branch" test -n "$LOSER"
"$KITH" --dir "$LOSER" status >"$tmp/out"
check "status says what to do in no group" grep -q "in no device group, so its peers would not admit a new key" "$tmp/out"
"$KITH" --dir "$LOSER" status --json >"$tmp/out"
check "status --json: advice, no re-key" jq_true '.rekeyed == null and (.rekey_advice | test("kith join"))' "$tmp/out"
"$KITH" --dir "$LOSER" export >"$tmp/before"
rc=0
"$KITH" --dir "$LOSER" rekey >"$tmp/out" 2>"$tmp/err" || rc=$?
check "rekey in no group: exit 1" test "$rc" = 1
check "rekey in no group: says why" grep -q "no device group" "$tmp/err"
check "rekey in no group: same id" test "$("$KITH" --dir "$LOSER" id --json | jq -r .id)" = "$A_ID"
"$KITH" --dir "$LOSER" export >"$tmp/after"
check "rekey in no group: nothing changed" cmp -s "$tmp/before" "$tmp/after"
check "rekey in no group: no side file" test -z "$(ls "$LOSER" | grep '^key\.next\.' || true)"

# ---- in a group: a new key on demand
C=$tmp/c
"$KITH" --dir "$C" init >/dev/null
"$KITH" --dir "$C" group create home --device-name laptop >/dev/null
"$KITH" --dir "$C" contact add --name Ada >/dev/null
OLD=$("$KITH" --dir "$C" id --json | jq -r .id)
"$KITH" --dir "$C" rekey >"$tmp/out"
NEW=$("$KITH" --dir "$C" id --json | jq -r .id)
check "a new id" test "$NEW" != "$OLD"
check "rekey prints old -> new" grep -q "^re-keyed $OLD -> $NEW" "$tmp/out"
"$KITH" --dir "$C" status >"$tmp/out"
check "status shows the re-key" grep -q "^rekeyed *$OLD -> $NEW" "$tmp/out"
"$KITH" --dir "$C" status --json >"$tmp/out"
check "status --json: rekeyed" jq_true --arg o "$OLD" --arg n "$NEW" \
    '.id == $n and .rekeyed.old_id == $o and .rekeyed.new_id == $n and .rekeyed.lost_fork == false
     and .rekey_advice == null' "$tmp/out"
check "forks shows the re-key" grep -q "this replica re-keyed: $OLD -> $NEW" <("$KITH" --dir "$C" forks)
"$KITH" --dir "$C" devices --json >"$tmp/out"
check "the old key admitted the new one, same name" jq_true --arg o "$OLD" --arg n "$NEW" \
    '[.devices[] | select(.name == "laptop")] | length == 2' "$tmp/out"
"$KITH" --dir "$C" contact add --name Grace >/dev/null
"$KITH" --dir "$C" log --origin "$NEW" --json >"$tmp/out"
check "writes go under the new key" jq_true '(.entries | length) == 2' "$tmp/out"
"$KITH" --dir "$C" verify --quiet >/dev/null
check "verify is clean" test $? = 0
check "no side file left" test -z "$(ls "$C" | grep '^key\.next\.' || true)"
"$KITH" --dir "$C" rekey --json >"$tmp/out"
check "rekey --json, again" jq_true --arg n "$NEW" '.old_id == $n and .new_id != $n' "$tmp/out"
check "rekey takes no operand" test "$("$KITH" --dir "$C" rekey extra >/dev/null 2>&1; echo $?)" = 2

# ---- in a group: a copy of the founder writes too; the devices list shows the fork, and the
# losing copy re-keys by itself when the other's bundle brings the proof
D=$tmp/d D2=$tmp/d2
"$KITH" --dir "$D" init >/dev/null
"$KITH" --dir "$D" group create family --device-name phone >/dev/null
"$KITH" --dir "$D" contact add --name Ada >/dev/null
D_ID=$("$KITH" --dir "$D" id --json | jq -r .id)
cp -r "$D" "$D2"
"$KITH" --dir "$D" contact add --name Grace >/dev/null
"$KITH" --dir "$D2" contact add --name Hedy >/dev/null
"$KITH" --dir "$D" bundle create -o "$tmp/d.bundle" --quiet
"$KITH" --dir "$D2" bundle create -o "$tmp/d2.bundle" --quiet
"$KITH" --dir "$D2" bundle apply "$tmp/d.bundle" --quiet >/dev/null 2>&1 || true
"$KITH" --dir "$D" bundle apply "$tmp/d2.bundle" --quiet >/dev/null 2>&1 || true
WIN= LOSE=
for d in "$D" "$D2"; do
    if [ "$("$KITH" --dir "$d" id --json | jq -r .id)" = "$D_ID" ]; then WIN=$d; else LOSE=$d; fi
done
check "one copy kept the key, the other re-keyed" test -n "$WIN" -a -n "$LOSE"
"$KITH" --dir "$WIN" devices --json >"$tmp/out"
check "devices --json: the forked key, proven" jq_true --arg o "$D_ID" \
    '[.devices[] | select(.id == $o)][0].fork | .proven and .common_seq >= 1' "$tmp/out"
"$KITH" --dir "$WIN" devices >"$tmp/out"
check "devices: FORKED column" grep -q "from seq [0-9]*, proven" "$tmp/out"
"$KITH" --dir "$LOSE" bundle apply "$tmp/$(basename "$WIN").bundle" --quiet >/dev/null
"$KITH" --dir "$LOSE" bundle create -o "$tmp/lose.bundle" --quiet
"$KITH" --dir "$WIN" bundle apply "$tmp/lose.bundle" --quiet >/dev/null
check "both copies converge, no edit lost" cmp -s <("$KITH" --dir "$WIN" export) \
    <("$KITH" --dir "$LOSE" export)
check "every contact is there" test "$("$KITH" --dir "$WIN" export |
    jq '[.collections.contacts[].name] | sort == ["Ada", "Grace", "Hedy"]')" = true

echo "test_cli_rekey: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
