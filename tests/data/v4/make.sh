#!/usr/bin/env bash
# How the format-4 fixtures here were made (kith 0.5.0: store format 2 with the voids
# database, a re-keyed replica's meta `rekeyed`, its journal restored under the new key).
# Kept for the record: the files are checked in and must keep opening in every later version
# (tests/test_compat.c). Do not regenerate them after a format change: add a new vN/.
#   KITH=build/kith tests/data/v4/make.sh OUTDIR
# Replica a founds the group "home" and writes; its directory is copied, key included, and
# both copies write (a fork of a's origin). Each takes the other's bundle: both make the fork
# proof, and the copy whose history lost takes a new key (D-22), its lost edit written again
# under it, and then it takes the winning history. That copy's directory and a bundle of it (the group's records, with the ADD of the
# new key signed by the old one, and the proof) are the fixtures, with the state and the
# re-key it shows.
set -euo pipefail
k=${KITH:?path to the kith binary}
out=${1:?output directory}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
a() { "$k" --dir "$t/a" "$@"; }
a2() { "$k" --dir "$t/a2" "$@"; }
a init >/dev/null
a group create home --device-name laptop >/dev/null
a contact add --name "Ada Lovelace" --email ada@example.org --tag math >/dev/null
a id --json | jq -r .pubkey >"$out/old.pub"
cp -r "$t/a" "$t/a2"
a contact add --name "Grace Hopper" >/dev/null
a2 contact add --name "Hedy Lamarr" --tag film >/dev/null
a bundle create -o "$t/a.kb" --quiet
a2 bundle create -o "$t/a2.kb" --quiet
a2 bundle apply "$t/a.kb" --quiet >/dev/null 2>&1 || true
a bundle apply "$t/a2.kb" --quiet >/dev/null 2>&1 || true
loser=
for d in a a2; do
    if "$k" --dir "$t/$d" status --json | jq -e '.rekeyed != null' >/dev/null; then loser=$d; fi
done
[ -n "$loser" ] || { echo "neither copy re-keyed" >&2; exit 1; }
l() { "$k" --dir "$t/$loser" "$@"; }
# the loser set the winner's run aside while it held its own branch: it takes it now
if [ "$loser" = a ]; then l bundle apply "$t/a2.kb" --quiet >/dev/null; else l bundle apply "$t/a.kb" --quiet >/dev/null; fi
l contact add --name "Mary Somerville" >/dev/null
l bundle create -o "$out/l.kb" --quiet
mkdir -p "$out/replica-l"
cp "$t/$loser/data.mdb" "$t/$loser/key" "$out/replica-l/"
l status --json | jq '.rekeyed' >"$out/rekeyed.json"
l id --json | jq -r .pubkey >"$out/new.pub"
l export >"$out/export.json"
l forks --json >"$out/forks.json"
l journal --json >"$out/journal.json"
