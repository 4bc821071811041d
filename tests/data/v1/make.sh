#!/usr/bin/env bash
# How the format-1 fixtures here were made (kith 0.1.0, store format 1, batch format 1).
# Kept for the record: the files are checked in and must keep opening in every later version
# (tests/test_compat.c). Do not regenerate them after a format change — add a new vN/ instead.
#   KITH=build/kith tests/data/v1/make.sh OUTDIR
set -euo pipefail
k=${KITH:?path to the kith binary}
out=${1:?output directory}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
a() { "$k" --dir "$t/a" "$@"; }
b() { "$k" --dir "$t/b" "$@"; }
a init >/dev/null
b init >/dev/null
a trust "$(b id --json | jq -r .pubkey)" --name b
b trust "$(a id --json | jq -r .pubkey)" --name a
ada=$(a contact add --name "Ada Lovelace" --email ada@example.org --birthday 1815-12-10 --tag math)
bob=$(a contact add --name "Charles Babbage" --company "Analytical Engines")
a interaction add "$ada" --kind meeting --at 2026-11-20T10:00:00Z --summary "Notes on the engine" --with "$bob"
a reminder add "$ada" --due 2026-12-01T09:00:00Z --text "Send the translation" >/dev/null
a bundle create -o "$t/a.kb" 2>/dev/null
b bundle apply "$t/a.kb" >/dev/null
# apart: concurrent edits, a delete against an edit, tags both ways
a contact set "$ada" phone="+44 20 7946 0001"
b contact set "$ada" phone="+44 20 7946 0002"
a contact rm "$bob"
b contact set "$bob" notes="kept by the edit"
a contact tag "$ada" +friend -math
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
