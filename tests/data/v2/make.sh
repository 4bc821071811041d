#!/usr/bin/env bash
# How the format-2 fixtures here were made (kith 0.2.0, store format 2, commit and batch
# format 2). Kept for the record: the files are checked in and must keep opening in every later
# version (tests/test_compat.c). Do not regenerate them after a format change: add a new vN/.
#   KITH=build/kith tests/data/v2/make.sh OUTDIR
# Replica a declares the deals schema (deals.json) beside the built-in one; replica b does not,
# and holds and relays the deals all the same. Their edits run apart, then cross as bundles.
set -euo pipefail
k=${KITH:?path to the kith binary}
out=${1:?output directory}
here=$(cd "$(dirname "$0")" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
a() { "$k" --dir "$t/a" "$@"; }
b() { "$k" --dir "$t/b" "$@"; }
a init >/dev/null
b init >/dev/null
a schema apply "$here/deals.json" >/dev/null
a trust "$(b id --json | jq -r .pubkey)" --name b
b trust "$(a id --json | jq -r .pubkey)" --name a
ada=$(a contact add --name "Ada Lovelace" --email ada@example.org --tag math)
deal=$(a put deals title="Engines" amount=1200 stage=lead contact="$ada" \
    closes=2026-12-20T12:00:00Z labels+=hot views+=1 starred=true)
a reminder add "$ada" --due 2026-12-01T09:00:00Z --text "Send the translation" >/dev/null
a bundle create -o "$t/a.kb" 2>/dev/null
b bundle apply "$t/a.kb" >/dev/null
# apart: a edits the deal as declared; b, which has no declaration of deals, edits its contact
a put deals "$deal" stage=won views+=2 labels-=hot labels+=closed starred=false
a contact set "$ada" phone="+44 20 7946 0001"
b contact set "$ada" phone="+44 20 7946 0002"
b contact tag "$ada" +poet
a bundle create -o "$t/a.kb" 2>/dev/null
b bundle create -o "$t/b.kb" 2>/dev/null
a bundle apply "$t/b.kb" >/dev/null
b bundle apply "$t/a.kb" >/dev/null
b bundle create -o "$out/b.kb" 2>/dev/null
mkdir -p "$out/replica-a"
cp "$t/a/data.mdb" "$t/a/key" "$out/replica-a/"
a id --json | jq -r .pubkey >"$out/a.pub"
b id --json | jq -r .pubkey >"$out/b.pub"
a export >"$out/export.json"
cmp "$out/export.json" <(b export)
