#!/usr/bin/env bash
# kith in two minutes: two replicas of one user's contacts (a phone and a laptop), a contact
# edited on both while they were apart, and a bundle carried each way. Prints every command
# it runs, the converged contact on both, the conflict that was recorded, the status of one
# replica, and proof that both export the same bytes.
#   scripts/demo.sh        (installs missing packages, builds into build/, needs no input)
#   KITH_BUILD_DIR=DIR     build there instead of build/
# Idempotent: everything happens in a temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

build=${KITH_BUILD_DIR:-build}
log=${TMPDIR:-/tmp}/kith-demo-build.log

scripts/deps.sh
echo "building kith into $build/ ..."
if ! scripts/build.sh "$build" >"$log" 2>&1; then
    # the demo needs only the kith command: say what failed, and try to build just that
    grep -m 5 -E 'error|Error' "$log" >&2 || true
    echo "demo: the full build failed (log: $log); building only the kith command" >&2
    if ! cmake --build "$build" --target kith_cli -j "$(nproc)" >>"$log" 2>&1; then
        tail -30 "$log" >&2
        echo "demo: building kith failed (log: $log)" >&2
        exit 1
    fi
fi
kith=$root/$build/kith

work=$(mktemp -d /tmp/kith-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'
if [ ! -t 1 ] || [ -n "${NO_COLOR:-}" ]; then bold="" dim="" off=""; fi
heading() { printf '\n%s== %s ==%s\n' "$bold" "$*" "$off"; }
say() { printf '%s\n' "$*"; }
# show a kith command as one would type it (the replicas are the directories phone/ and
# laptop/), then run it
show() {
    local line="$ kith" a
    for a in "$@"; do
        case $a in
        *[[:space:]]* | *[\'\"\$]* | "") line+=" \"$a\"" ;;
        *) line+=" $a" ;;
        esac
    done
    printf '%s%s%s\n' "$dim" "$line" "$off"
}
k() {
    show "$@"
    "$kith" "$@"
}
# run quietly, keeping only stdout
q() { "$kith" "$@" 2>/dev/null; }

heading "1. Two replicas: a phone and a laptop"
say "Each replica is a directory with an LMDB store and its own Ed25519 key pair."
k --dir phone init
k --dir laptop init

heading "2. Pair them: each trusts the other's public key"
phone_pk=$(q --dir phone id | awk '$1 == "pubkey" { print $2 }')
laptop_pk=$(q --dir laptop id | awk '$1 == "pubkey" { print $2 }')
k --dir phone trust "$laptop_pk" --name laptop
k --dir laptop trust "$phone_pk" --name phone

heading "3. Add a contact on the phone, carry it to the laptop in a bundle"
add=(--dir phone contact add --name "Ada Lovelace" --email ada@example.org
     --phone "+44 20 7946 0000" --tag friend)
show "${add[@]}"
ada=$("$kith" "${add[@]}")
say "$ada"
k --dir phone bundle create -o phone.bundle
k --dir laptop bundle apply phone.bundle

heading "4. While apart, both change Ada's phone number"
k --dir phone contact set "$ada" "phone=+44 20 7946 0001"
k --dir laptop contact set "$ada" "phone=+44 20 7946 0002"

heading "5. They meet again: bundles both ways"
k --dir phone bundle create -o phone.bundle
k --dir laptop bundle create -o laptop.bundle
k --dir laptop bundle apply phone.bundle
k --dir phone bundle apply laptop.bundle

heading "6. The converged contact, on each replica"
k --dir phone contact show "$ada"
k --dir laptop contact show "$ada"
q --dir phone contact show "$ada" --json >phone.show
q --dir laptop contact show "$ada" --json >laptop.show
if cmp -s phone.show laptop.show; then
    say "-> identical on both replicas"
else
    say "-> the replicas DIFFER" >&2
    exit 1
fi

heading "7. The conflict: one edit won, the other is kept (the phone has the same record)"
k --dir laptop conflicts

heading "8. Status of the phone"
k --dir phone status

heading "9. kith export: the whole replicated state, byte for byte"
q --dir phone export >phone.json
q --dir laptop export >laptop.json
say "phone:  $(sha256sum <phone.json | cut -c1-16)  $(wc -c <phone.json) bytes"
say "laptop: $(sha256sum <laptop.json | cut -c1-16)  $(wc -c <laptop.json) bytes"
if cmp -s phone.json laptop.json; then
    say "-> byte-identical: the replicas converged"
else
    say "-> exports DIFFER" >&2
    exit 1
fi
k --dir phone verify

printf '\n%sdemo finished: two replicas converged after a concurrent edit.%s\n' "$bold" "$off"
