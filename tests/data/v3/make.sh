#!/usr/bin/env bash
# How the format-3 fixtures here were made (kith 0.4.0: store format 2 with the groups,
# proofs and journal databases; batch format 3 with group records and a fork proof). Kept for
# the record: the files are checked in and must keep opening in every later version
# (tests/test_compat.c). Do not regenerate them after a format change: add a new vN/.
#   KITH=build/kith tests/data/v3/make.sh OUTDIR
# Replica a founds the group "home"; its directory is copied, key included, and both copies
# write (a fork of a's origin). Replica b, in a group of its own ("office") and trusting a
# pairwise, takes both histories by bundle: it records the fork, keeps a proof, settles it
# (the losing history, whichever it is, goes to b's journal if b held it) and takes the kept
# one. b's directory and a bundle of b's (records and the proof inside) are the fixtures.
# The files here come from a run where a's own branch lost at b, so b's journal holds it
# (run again until journal.json lists ops to get such a run).
set -euo pipefail
k=${KITH:?path to the kith binary}
out=${1:?output directory}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
a() { "$k" --dir "$t/a" "$@"; }
a2() { "$k" --dir "$t/a2" "$@"; }
b() { "$k" --dir "$t/b" "$@"; }
a init >/dev/null
b init >/dev/null
a group create home --device-name laptop >/dev/null
b group create office --device-name desk >/dev/null
b trust "$(a id --json | jq -r .pubkey)" --name a >/dev/null
a contact add --name "Ada Lovelace" --email ada@example.org --tag math >/dev/null
cp -r "$t/a" "$t/a2"
a contact add --name "Grace Hopper" >/dev/null
a2 contact add --name "Hedy Lamarr" >/dev/null
a bundle create -o "$t/a.kb" --quiet
a2 bundle create -o "$t/a2.kb" --quiet
b bundle apply "$t/a.kb" --quiet >/dev/null
b bundle apply "$t/a2.kb" --quiet >/dev/null 2>&1
b bundle apply "$t/a.kb" --quiet >/dev/null 2>&1
b bundle apply "$t/a2.kb" --quiet >/dev/null 2>&1
b contact add --name "Mary Somerville" >/dev/null
b bundle create -o "$out/b.kb" --quiet
mkdir -p "$out/replica-b"
cp "$t/b/data.mdb" "$t/b/key" "$out/replica-b/"
a id --json | jq -r .pubkey >"$out/a.pub"
b id --json | jq -r .pubkey >"$out/b.pub"
b export >"$out/export.json"
b forks --json >"$out/forks.json"
b journal --json >"$out/journal.json"
