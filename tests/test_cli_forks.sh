#!/usr/bin/env bash
# `kith forks` and the forks of `kith status` (spec/cli.md CLI-29, spec/data-model.md FORK-4..9)
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
    grep -Eq "^$A_ID +[0-9]+ +batch +from seq 3 +[0-9a-f]{16} +(winner|neither)$" "$tmp/out"
"$KITH" --dir "$B" forks --json >"$tmp/out"
check "JSON: one fork with a proof" jq_true --arg id "$A_ID" \
    '(.forks | length) == 1 and .forks[0].origin == $id and .forks[0].source == "batch"
     and .forks[0].proof.common_seq == 2 and (.forks[0].proof.winner | length) == 64
     and (.forks[0].proof.holds == "winner" or .forks[0].proof.holds == "neither")
     and .forks[0].proof.winner < .forks[0].proof.loser' "$tmp/out"
B_HOLDS=$(jq -r '.forks[0].proof.holds' "$tmp/out")
WINNER=$(jq -r '.forks[0].proof.winner' "$tmp/out")
"$KITH" --dir "$B" status --json >"$tmp/out"
check "status --json lists the proof" jq_true --arg w "$WINNER" '.forks[0].proof.winner == $w' \
    "$tmp/out"
"$KITH" --dir "$B" status >"$tmp/out"
check "status says which branch wins" grep -q "proof held: the branch from seq 3 with chain ${WINNER:0:16} wins and is kept, the other set aside (kith journal); this replica holds $([ "$B_HOLDS" = winner ] && echo "the winning branch" || echo neither)" "$tmp/out"

# settled (FORK-10): where A's branch lost, B set it aside to its journal, took A2's, and can
# write Grace again as its own
"$KITH" --dir "$B" bundle apply "$tmp/a2.bundle" --quiet >/dev/null 2>&1
"$KITH" --dir "$B" export >"$tmp/exp"
if [ "$B_HOLDS" = winner ]; then
    check "the kept branch stays" grep -q Grace "$tmp/exp"
    check "the other is never taken" test "$(grep -c Hedy "$tmp/exp")" = 0
    check "nothing set aside" test "$("$KITH" --dir "$B" journal)" = "the journal is empty"
else
    check "the lost branch left the state" test "$(grep -c Grace "$tmp/exp")" = 0
    check "the kept branch was taken" grep -q Hedy "$tmp/exp"
    "$KITH" --dir "$B" journal --json >"$tmp/out"
    check "the journal holds the lost contact" jq_true \
        '(.ops | length) == 2 and .ops[0].restored == false and .ops[1].value == "Grace"' "$tmp/out"
    check "journal restore --all" grep -q "restored 1 commit" \
        <("$KITH" --dir "$B" journal restore --all)
    "$KITH" --dir "$B" export >"$tmp/exp"
    check "Grace is back, written by B" grep -q Grace "$tmp/exp"
    check "restored twice: nothing to do" grep -q "nothing to restore" \
        <("$KITH" --dir "$B" journal restore --all)
    check "a bad commit name is refused" \
        test "$("$KITH" --dir "$B" journal restore nonsense >/dev/null 2>&1; echo $?)" = 1
fi
"$KITH" --dir "$B" verify --quiet >/dev/null
check "verify is clean after settling" test $? = 0

# A2 takes A's bundle: the other side of the same fork, the same winner; its own origin
# forked, so it keeps its branch (FORK-10: it waits for a new key)
"$KITH" --dir "$A2" bundle apply "$tmp/a.bundle" --quiet >/dev/null 2>&1
"$KITH" --dir "$A2" forks --json >"$tmp/out"
check "the copy holds the other branch, same winner" jq_true --arg w "$WINNER" \
    --arg h "$([ "$B_HOLDS" = winner ] && echo loser || echo winner)" \
    '.forks[0].proof.winner == $w and .forks[0].proof.holds == $h' "$tmp/out"
check "forks takes no operand" test "$("$KITH" --dir "$B" forks extra >/dev/null 2>&1; echo $?)" = 2

echo "test_cli_forks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
