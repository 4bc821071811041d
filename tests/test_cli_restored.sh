#!/usr/bin/env bash
# `kith restored`, `kith status` and `kith sync` on a replica restored from a copy of itself
# (spec/data-model.md RESTORE-1..5, spec/cli.md), end to end with real processes: A is copied
# as a backup, writes on and syncs to B's daemon (127.0.0.1, port "*"), then the backup is put
# back. A clean restore takes its own ops back in one sync; a restore that wrote before it
# synced is a fork of its own origin, refuses writes until `kith restored --accept`, and honest
# ops still flow.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-restored.XXXXXX)
serve=""
cleanup() {
    if [ -n "$serve" ]; then
        kill -KILL "$serve" 2>/dev/null || true
        wait "$serve" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
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
listening_port() { # listening_port LOG : the port a daemon logged it listens on, after ≤ 10 s
    local p
    for _ in $(seq 1 200); do
        p=$(sed -n 's/.*listening on tcp:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    return 1
}
jq_true() { jq -e "$@" >/dev/null; }
names() { "$KITH" --dir "$1" contact ls --json | jq -r '[.contacts[].name] | sort | join(",")'; }

A=$tmp/a B=$tmp/b
"$KITH" --dir "$A" init >/dev/null
"$KITH" --dir "$B" init >/dev/null
A_PK=$("$KITH" --dir "$A" id --json | jq -r .pubkey)
B_PK=$("$KITH" --dir "$B" id --json | jq -r .pubkey)
"$KITH" --dir "$B" trust "$A_PK" --name a >/dev/null
"$KITH" --dir "$B" serve --listen "tcp://127.0.0.1:*" --interval 1h 2>"$tmp/serve.log" &
serve=$!
port=$(listening_port "$tmp/serve.log") || port=""
check "B's daemon listens" test -n "$port"
EP="tcp://127.0.0.1:$port"
"$KITH" --dir "$A" trust "$B_PK" --name b --addr "$EP"

# ---- a clean restore -------------------------------------------------------------------------
"$KITH" --dir "$A" contact add --name a1 >/dev/null
check "A syncs a1" test "$(exit_of "$KITH" --dir "$A" sync "$EP")" = 0
cp -a "$A" "$tmp/backup"
"$KITH" --dir "$A" contact add --name a2 >/dev/null
"$KITH" --dir "$A" contact add --name a3 >/dev/null
check "A syncs a2, a3" test "$(exit_of "$KITH" --dir "$A" sync "$EP")" = 0
rm -rf "$A"
cp -a "$tmp/backup" "$A"
check "the restored copy lacks a2, a3" test "$(names "$A")" = a1
check "not marked before it meets a peer" test "$(exit_of "$KITH" --dir "$A" restored)" = 0
check "one sync converges (exit 0)" test "$(exit_of "$KITH" --dir "$A" sync "$EP" --json)" = 0
check "sync says it took its own ops back" jq_true '.restored_seq > 0' "$tmp/out"
check "the restored replica has its own ops back" test "$(names "$A")" = a1,a2,a3
check "and is no longer marked" test "$(exit_of "$KITH" --dir "$A" restored --json)" = 0
check "restored --json says so" jq_true '.restored == false' "$tmp/out"
check "writes work again" test "$(exit_of "$KITH" --dir "$A" contact add --name a4)" = 0
check "a4 syncs (exit 0)" test "$(exit_of "$KITH" --dir "$A" sync "$EP")" = 0
"$KITH" --dir "$A" export >"$tmp/a.json"
"$KITH" --dir "$B" export >"$tmp/b.json"
check "A and B export the same bytes" cmp -s "$tmp/a.json" "$tmp/b.json"
check "A verifies clean" test "$(exit_of "$KITH" --dir "$A" verify)" = 0

# ---- a restore that wrote (less) before it synced -----------------------------------------------------
cp -a "$A" "$tmp/backup2"
"$KITH" --dir "$A" contact add --name a5 >/dev/null
"$KITH" --dir "$A" contact add --name a5b >/dev/null
check "A syncs a5, a5b" test "$(exit_of "$KITH" --dir "$A" sync "$EP")" = 0
rm -rf "$A"
cp -a "$tmp/backup2" "$A"
"$KITH" --dir "$A" contact add --name "a5 again"
"$KITH" --dir "$B" contact add --name b1 >/dev/null
rc=$(exit_of "$KITH" --dir "$A" sync "$EP")
check "the sync does not converge (exit $rc)" test "$rc" = 1
check "B's own ops still flow to A" grep -q b1 <<<"$(names "$A")"
check "restored exits 1 while writes are refused" test "$(exit_of "$KITH" --dir "$A" restored)" = 1
rc=$(exit_of "$KITH" --dir "$A" contact add --name refused)
check "a write is refused (exit $rc)" test "$rc" = 1
check "and the message says the replica was restored" grep -qi restored "$tmp/err"
check "the refused write left nothing" test "$(names "$A" | grep -c refused || true)" = 0
check "status --json shows the mark" test "$(exit_of "$KITH" --dir "$A" status --json)" = 0
check "with the seq to reach" jq_true '.restored.seq > 0' "$tmp/out"
check "restored --accept (exit 0)" test "$(exit_of "$KITH" --dir "$A" restored --accept)" = 0
check "writes go on after --accept" test "$(exit_of "$KITH" --dir "$A" contact add --name a6)" = 0
check "A reports a fork of its own origin" test "$(exit_of "$KITH" --dir "$A" status --json)" = 0
A_ID=$("$KITH" --dir "$A" id --json | jq -r .id)
check "the fork is A's own origin" jq_true --arg id "$A_ID" '[.forks[].origin] | index($id) != null' "$tmp/out"

kill -TERM "$serve"
rc=0
wait "$serve" || rc=$?
serve=""
check "B's daemon stops cleanly (exit $rc)" test "$rc" = 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
