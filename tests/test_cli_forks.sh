#!/usr/bin/env bash
# `kith forks` and the forks of `kith status` (spec/cli.md CLI-23, spec/data-model.md FORK-4..9)
# end to end with the real CLI: A is copied, key included, to A2; each writes a contact of its
# own; B takes A's bundle and then A2's, finds the fork and keeps a proof of it. The listing
# names the origin, where it was seen, the proof and the winner, and which branch B holds; A2,
# given A's bundle, holds the other branch.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kith-test-forks.XXXXXX")
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

A=$tmp/a A2=$tmp/a2 B=$tmp/b
"$KITH" --dir "$A" init >/dev/null
"$KITH" --dir "$B" init >/dev/null
A_PK=$("$KITH" --dir "$A" id --json | jq -r .pubkey)
A_ID=$("$KITH" --dir "$A" id --json | jq -r .id)
"$KITH" --dir "$B" trust "$A_PK" --name a >/dev/null
"$KITH" --dir "$A" contact add --name Ada >/dev/null
cp -r "$A" "$A2"
"$KITH" --dir "$A" contact add --name Grace >/dev/null
"$KITH" --dir "$A2" contact add --name Hedy >/dev/null
"$KITH" --dir "$A" bundle create -o "$tmp/a.bundle" --quiet
"$KITH" --dir "$A2" bundle create -o "$tmp/a2.bundle" --quiet

check "no forks before" test "$("$KITH" --dir "$B" forks)" = "no forks"
"$KITH" --dir "$B" forks --json >"$tmp/out"
check "no forks before, JSON" jq_true '.forks == []' "$tmp/out"
"$KITH" --dir "$B" bundle apply "$tmp/a.bundle" --quiet >/dev/null
"$KITH" --dir "$B" bundle apply "$tmp/a2.bundle" --quiet >/dev/null 2>"$tmp/err"
check "bundle apply warns of the fork" grep -q "forked at seq" "$tmp/err"

"$KITH" --dir "$B" forks >"$tmp/out"
check "table header" grep -q "^ORIGIN *SEQ *SOURCE *PROOF *WINNER *HOLDS" "$tmp/out"
check "one row: origin, batch, proof from seq 3" \
    grep -Eq "^$A_ID +[0-9]+ +batch +from seq 3 +[0-9a-f]{16} +(winner|loser)$" "$tmp/out"
"$KITH" --dir "$B" forks --json >"$tmp/out"
check "JSON: one fork with a proof" jq_true --arg id "$A_ID" \
    '(.forks | length) == 1 and .forks[0].origin == $id and .forks[0].source == "batch"
     and .forks[0].proof.common_seq == 2 and (.forks[0].proof.winner | length) == 64
     and (.forks[0].proof.holds == "winner" or .forks[0].proof.holds == "loser")
     and .forks[0].proof.winner < .forks[0].proof.loser' "$tmp/out"
B_HOLDS=$(jq -r '.forks[0].proof.holds' "$tmp/out")
WINNER=$(jq -r '.forks[0].proof.winner' "$tmp/out")
"$KITH" --dir "$B" status --json >"$tmp/out"
check "status --json lists the proof" jq_true --arg w "$WINNER" '.forks[0].proof.winner == $w' \
    "$tmp/out"
"$KITH" --dir "$B" status >"$tmp/out"
check "status says which branch wins" grep -q "proof held: the branch from seq 3 with chain ${WINNER:0:16} wins, this replica holds the $([ "$B_HOLDS" = winner ] && echo winning || echo losing) branch" "$tmp/out"

# A2 takes A's bundle: the other side of the same fork, the same winner
"$KITH" --dir "$A2" bundle apply "$tmp/a.bundle" --quiet >/dev/null 2>&1
"$KITH" --dir "$A2" forks --json >"$tmp/out"
check "the copy holds the other branch, same winner" jq_true --arg w "$WINNER" --arg h "$B_HOLDS" \
    '.forks[0].proof.winner == $w and .forks[0].proof.holds != $h
     and .forks[0].proof.holds != "neither"' "$tmp/out"
check "forks takes no operand" test "$("$KITH" --dir "$B" forks extra >/dev/null 2>&1; echo $?)" = 2

echo "test_cli_forks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
