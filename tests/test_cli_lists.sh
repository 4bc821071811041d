#!/usr/bin/env bash
# Every listing of the kith command, byte for byte: each list command of spec/cli.md runs
# against the checked-in format-1 replica (tests/data/v1/replica-a, copied first) and its
# stdout must equal the file of the same name in tests/data/lists/, recorded from it (CLI-8,
# CLI-9: how a list is produced may change, its bytes may not). Also checks that each --json
# output is one object holding one array, and the shape of empty lists on a fresh replica.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
#   KITH_LISTS_WRITE=1   write the expected files instead of comparing (after a deliberate
#                        change of the human format; never for --json, whose bytes are kept)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
want=$here/tests/data/lists
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-lists.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset KITH_DIR XDG_DATA_HOME
export HOME="$tmp/home" NO_COLOR=1
mkdir -p "$HOME"
cp -r "$here/tests/data/v1/replica-a" "$tmp/a"

ADA=5628dc8a768295050000000000000001
B_ID=85bcb696feef9192
# name|arguments: one listing each, the expected stdout in tests/data/lists/<name>
cases="contact-ls|contact ls
contact-ls.json|contact ls --json
interaction-ls|interaction ls
interaction-ls.json|interaction ls --json
interaction-ls-contact.json|interaction ls --contact $ADA --json
reminder-ls|reminder ls
reminder-ls.json|reminder ls --json
reminder-ls-none|reminder ls --due-before 2000-01-01
reminder-ls-none.json|reminder ls --due-before 2000-01-01 --json
conflicts|conflicts
conflicts.json|conflicts --json
conflicts-all.json|conflicts --all --json
log|log
log.json|log --json
log-limit.json|log --limit 3 --json
log-limit-none.json|log --limit 0 --json
log-origin.json|log --origin $B_ID --json
peers|peers
peers.json|peers --json
trust-list|trust --list
trust-list.json|trust --list --json"

pass=0 fail=0
bad() {
    fail=$((fail + 1))
    echo "FAILED: $1"
}
while IFS='|' read -r name args; do
    rc=0
    # shellcheck disable=SC2086 # the arguments are words
    "$KITH" --dir "$tmp/a" $args >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [ "$rc" != 0 ]; then
        bad "$args: exit $rc"
        sed 's/^/    stderr: /' "$tmp/err" | head -5
        continue
    fi
    if [ "${KITH_LISTS_WRITE:-}" = 1 ]; then
        cp "$tmp/out" "$want/$name"
    elif ! cmp -s "$want/$name" "$tmp/out"; then
        bad "$args: output differs from tests/data/lists/$name"
        { diff "$want/$name" "$tmp/out" || true; } | head -10 | sed 's/^/    /'
        continue
    fi
    case $name in
    *.json)
        if ! jq -e 'type == "object" and length == 1 and (.[] | type == "array")' \
            "$tmp/out" >/dev/null 2>&1; then
            bad "$args: not one JSON object holding one array"
            continue
        fi ;;
    esac
    pass=$((pass + 1))
done <<<"$cases"

# A fresh replica: every list is empty, as {"<key>": []} and as a lone header row.
"$KITH" --dir "$tmp/e" init >/dev/null
for l in "contacts|contact ls" "interactions|interaction ls" "reminders|reminder ls" \
         "conflicts|conflicts" "entries|log" "peers|peers" "peers|trust --list"; do
    key=${l%%|*} args=${l#*|}
    # shellcheck disable=SC2086
    got=$("$KITH" --dir "$tmp/e" $args --json) || { bad "$args --json on an empty replica"; continue; }
    if [ "$got" != "$(printf '{\n  "%s": []\n}' "$key")" ]; then
        bad "$args --json on an empty replica: $got"
        continue
    fi
    pass=$((pass + 1))
done
for args in "contact ls" "interaction ls" "reminder ls" "log" "peers" "trust --list"; do
    # shellcheck disable=SC2086
    n=$("$KITH" --dir "$tmp/e" $args | wc -l) || true
    if [ "$n" != 1 ]; then bad "$args on an empty replica: $n lines, not the header alone"; continue; fi
    pass=$((pass + 1))
done

echo "test_cli_lists: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
