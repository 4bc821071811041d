#!/usr/bin/env bash
# `kith invite` and `kith join` end to end with the real binary and a real daemon on
# 127.0.0.1 (spec/cli.md CLI-27, CLI-28; spec/protocol.md NET-30): the code is the last line
# of `kith invite` (and .code with --json), --qr draws it; a fresh replica joins with it, is
# in the inviter's group and holds its contacts; the used code, a code with a flipped
# character (refused before connecting) and bad options fail with exit 1 or 2 and a message.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-invite.XXXXXX)
serve_pid=""
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
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

A=$tmp/a B=$tmp/b C=$tmp/c
"$KITH" --dir "$A" init >/dev/null
"$KITH" --dir "$B" init >/dev/null
"$KITH" --dir "$C" init >/dev/null
"$KITH" --dir "$A" contact add --name "Ada from A" >/dev/null

# ---- bad command lines
check "invite --expires never is a usage error" \
    test "$(exit_of "$KITH" --dir "$A" invite --expires never)" = 2
check "invite takes no operand" test "$(exit_of "$KITH" --dir "$A" invite x)" = 2
check "join without CODE is a usage error" test "$(exit_of "$KITH" --dir "$B" join)" = 2
check "invite before the daemon ever listened, without --addr, fails" \
    test "$(exit_of "$KITH" --dir "$A" invite)" = 1
check "and says to give an address" grep -q -- "--addr" "$tmp/err"

# ---- A serves on a port the kernel picks, and says which in its log
"$KITH" --dir "$A" serve --listen "tcp://127.0.0.1:*" --interval 1h 2>"$tmp/serve.log" &
serve_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on tcp:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/serve.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
check "kith serve listens" test -n "$port"

# ---- the code is the last line; --qr draws it above; --json has it as .code
check "invite --qr (exit 0)" test "$(exit_of "$KITH" --dir "$A" invite --qr)" = 0
CODE=$(tail -n 1 "$tmp/out")
check "the last line is a code in groups of five" \
    grep -qE '^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{1,5})+$' <<<"$CODE"
check "the QR code is drawn with half blocks" grep -q "▀" "$tmp/out"
check "the text says how to join" grep -q "kith join $CODE" "$tmp/out"
check "invite --json (exit 0)" test "$(exit_of "$KITH" --dir "$A" invite --json --expires 1h)" = 0
check "the code is .code" test "$(jq -r '.code | test("^[0-9A-Z-]+$")' "$tmp/out")" = true
check "and the group is in it" test "$(jq -r '.group.in_group' "$tmp/out")" = true

# ---- a flipped character is refused before any connection
first=${CODE:0:1}
[ "$first" = 0 ] && other=1 || other=0
BAD="$other${CODE:1}"
check "join with a mistyped code fails (exit 1)" \
    test "$(exit_of "$KITH" --dir "$B" join "$BAD" --name phone)" = 1
check "and says it is mistyped" grep -q "mistyped" "$tmp/err"
check "and B is in no group" grep -q "in no group" <("$KITH" --dir "$B" group)

# ---- join, lower case and with spaces as a person types it
TYPED=$(tr 'A-Z-' 'a-z ' <<<"$CODE")
check "join (exit 0)" test "$(exit_of "$KITH" --dir "$B" join $TYPED --name phone)" = 0
check "says it joined and synced" grep -q "joined group .*synced" "$tmp/out"
check "B holds A's contact" grep -q "Ada from A" <("$KITH" --dir "$B" contact ls)
check "A lists B as a device" grep -q "phone" <("$KITH" --dir "$A" devices)
check "B is in A's group" test "$("$KITH" --dir "$A" group --json | jq -r .id)" = \
    "$("$KITH" --dir "$B" group --json | jq -r .id)"

# ---- the same code again: used (another invite is open, so the door is open)
check "join with a used code fails (exit 1)" \
    test "$(exit_of "$KITH" --dir "$C" join "$CODE" --name tablet)" = 1
check "and says it was used" grep -q "used already" "$tmp/err"

kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
serve_pid=""

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
