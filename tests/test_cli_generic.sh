#!/usr/bin/env bash
# The generic commands end to end (spec/cli.md "Schemas and documents of any collection"):
# `kith schema show|apply` and `kith put|get|ls|rm` on an app's own collections, declared from
# a schema document. Every field kind (register, set, counter, flag) and type (string, integer,
# time, date, boolean, bytes, enum, ref) is written and read back; every refusal exits 1 (2 for
# usage) with a message that names the problem, and leaves `kith export` byte-identical; and a
# replica that never declared the collection, or declared an older version of it, shows what
# it receives by bundle with `get` and `ls` and exports the same bytes as its peer.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-generic.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
unset KITH_DIR XDG_DATA_HOME
export HOME="$tmp/home" NO_COLOR=1
mkdir -p "$HOME"

pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAILED: $1"
    if [ -s "$tmp/err" ]; then sed 's/^/    stderr: /' "$tmp/err" | head -5; fi
}
check() { # check NAME CONDITION-COMMAND...
    local name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}
# run EXPECTED_RC NAME ARGS... : run kith, keep stdout in $tmp/out and stderr in $tmp/err
run() {
    local want=$1 name=$2 rc=0
    shift 2
    "$KITH" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$? || true
    if [ "$rc" = "$want" ]; then ok; else bad "$name (exit $rc, wanted $want)"; fi
}
out() { cat "$tmp/out"; }
err_has() { grep -q -- "$1" "$tmp/err"; }
out_has() { grep -q -- "$1" "$tmp/out"; }
jq_is() { # jq_is NAME FILTER EXPECTED : the filter's raw output on $tmp/out
    local got
    got=$(jq -r "$2" "$tmp/out" 2>/dev/null) || got="(not JSON)"
    if [ "$got" = "$3" ]; then ok; else bad "$1: got '$got', wanted '$3'"; fi
}
snap() { "$KITH" --dir "$1" export >"$tmp/snap.$2" || true; }
same_snap() { # same_snap NAME DIR TAG : export of DIR still equals the snapshot TAG
    "$KITH" --dir "$2" export >"$tmp/snap.now" || true
    if cmp -s "$tmp/snap.$3" "$tmp/snap.now"; then ok; else bad "$1: replica changed"; fi
}
# refused RC NAME MESSAGE ARGS... : exit RC, stderr holds MESSAGE, and A's export is unchanged
refused() {
    local want=$1 name=$2 msg=$3
    shift 3
    snap "$A" refused
    run "$want" "$name" --dir "$A" "$@"
    check "$name: message names the problem ('$msg')" err_has "$msg"
    same_snap "$name" "$A" refused
}

A=$tmp/a B=$tmp/b
"$KITH" --dir "$A" init >/dev/null
"$KITH" --dir "$B" init >/dev/null
A_PK=$("$KITH" --dir "$A" id --json | jq -r .pubkey)
B_PK=$("$KITH" --dir "$B" id --json | jq -r .pubkey)
"$KITH" --dir "$A" trust "$B_PK" >/dev/null
"$KITH" --dir "$B" trust "$A_PK" >/dev/null

cat >"$tmp/deals.json" <<'EOF'
{"collections": {
  "deals": {
    "fields": {
      "title":   {"type": "string", "required": true, "max": 200},
      "amount":  {"type": "integer", "min": 0},
      "stage":   {"type": "enum", "values": ["lead", "won", "lost"]},
      "contact": {"type": "ref", "to": "contacts"},
      "closes":  {"type": "time"},
      "labels":  {"type": "string", "crdt": "set"},
      "views":   {"type": "integer", "crdt": "counter"},
      "starred": {"type": "boolean", "crdt": "flag"}},
    "indexes": {"by_contact": ["contact", "closes"]}}}}
EOF
# the types and set element types deals lacks
cat >"$tmp/notes.json" <<'EOF'
{"collections": {
  "notes": {
    "fields": {
      "body":    {"type": "string"},
      "blob":    {"type": "bytes", "max": 8},
      "day":     {"type": "date"},
      "done":    {"type": "boolean"},
      "moods":   {"type": "enum", "values": ["calm", "busy"], "crdt": "set"},
      "people":  {"type": "ref", "to": "contacts", "crdt": "set"},
      "dates":   {"type": "date", "crdt": "set"}},
    "indexes": {"by_day": ["day"]}}}}
EOF
# version 2 of deals: a field and an index on it
cat >"$tmp/deals2.json" <<'EOF'
{"collections": {"deals": {
  "fields": {"probability": {"type": "integer", "min": 0, "max": 100}},
  "indexes": {"by_probability": ["probability"]}}}}
EOF

# ---- help and typos -------------------------------------------------------------------------------
run 0 "help" help
for cmd in "schema show" "schema apply" "put COLL" "get COLL" "ls COLL" "rm COLL"; do
    check "help lists $cmd" out_has "kith $cmd"
done
run 0 "put --help" put --help
check "put --help prints its usage" out_has "usage: kith put COLL \[ID\]"
run 0 "ls --help" ls --help
check "ls --help names --index" out_has "--index"
run 0 "help get" help get
check "help get prints its usage" out_has "usage: kith get COLL ID"
run 0 "schema --help" schema --help
check "schema --help lists apply" out_has "usage: kith schema apply FILE"
run 0 "help schema apply" help schema apply
check "help schema apply" out_has "usage: kith schema apply FILE"
run 2 "a typo of ls" --dir "$A" lss deals
check "ls is suggested" err_has "did you mean 'ls'"
run 2 "a typo of put" --dir "$A" pt deals
check "put is suggested" err_has "did you mean 'put'"
run 2 "a typo of schema show" --dir "$A" schema shwo
check "schema show is suggested" err_has "did you mean 'schema show'"
run 2 "schema without subcommand" --dir "$A" schema

# ---- schema apply and show (CLI-13) --------------------------------------------------------------
run 0 "schema show before" --dir "$A" schema show --json
jq_is "the CRM is version 1" .version 1
run 0 "schema apply deals" --dir "$A" schema apply "$tmp/deals.json"
check "apply says the new version" out_has "^schema version 2$"
run 0 "schema apply deals again" --dir "$A" schema apply "$tmp/deals.json"
check "apply again changes nothing" out_has "^unchanged, version 2$"
run 0 "schema apply from stdin" --dir "$A" schema apply - <"$tmp/notes.json"
check "stdin applied" out_has "^schema version 3$"
run 0 "schema show --json" --dir "$A" schema show --json
check "show --json is one line, the canonical form" test "$(wc -l <"$tmp/out")" = 1
jq_is "version in the JSON" .version 3
jq_is "views is a counter" .collections.deals.fields.views.crdt counter
jq_is "index by_contact" '.collections.deals.indexes.by_contact | join(",")' contact,closes
jq_is "the CRM is there too" '.collections.contacts.fields.name.required' true
cp "$tmp/out" "$tmp/schema.json"
run 0 "the canonical form applies as it is" --dir "$A" schema apply "$tmp/schema.json"
check "the canonical form changes nothing" out_has "unchanged, version 3"
run 0 "schema show" --dir "$A" schema show
check "show has the version" out_has "^version  3$"
check "show has a digest" grep -qE '^digest   [0-9a-f]{64}$' "$tmp/out"
check "show names the collection" out_has "^deals$"
check "show gives a field's type, kind and constraints" \
    grep -qE '^  title +string +lww +required, max 200$' "$tmp/out"
check "show gives a counter" grep -qE '^  views +integer +counter$' "$tmp/out"
check "show gives an enum's values" out_has "values lead|won|lost"
check "show gives a ref's collection" out_has "to contacts"
check "show gives the indexes" out_has "index by_contact: contact, closes"
digest=$("$KITH" --dir "$A" status --json | jq -r .schema_digest)
check "show's digest is status's" out_has "$digest"
run 2 "schema show takes no operand" --dir "$A" schema show x
run 2 "schema apply needs FILE" --dir "$A" schema apply

# ---- put and get: every type and kind (CLI-14, CLI-16) -------------------------------------------
ADA=$("$KITH" --dir "$A" contact add --name Ada)
BOB=$("$KITH" --dir "$A" contact add --name Bob)
# Cy is made on B: the only contact of B's origin, so 16 hex digits name it in A (CLI-6)
CY=$("$KITH" --dir "$B" contact add --name Cy)
"$KITH" --dir "$B" bundle create -o "$tmp/cy.bundle" 2>/dev/null
"$KITH" --dir "$A" bundle apply "$tmp/cy.bundle" >/dev/null
run 0 "put creates" --dir "$A" put deals title="Big" amount=1200 views+=1 stage=lead \
    contact="$ADA" closes=2026-03-01T09:30:00Z labels+=hot labels+=q1 starred=true
D1=$(out)
check "put prints a 32-hex id" grep -qE '^[0-9a-f]{32}$' <<<"$D1"
run 0 "get --json" --dir "$A" get deals "$D1" --json
jq_is "id" .id "$D1"
jq_is "string" .title Big
jq_is "integer is a number" '.amount | type' number
jq_is "integer" .amount 1200
jq_is "enum" .stage lead
jq_is "ref" .contact "$ADA"
jq_is "time is ISO 8601" .closes 2026-03-01T09:30:00.000Z
jq_is "set is an array" '.labels | join(",")' hot,q1
jq_is "counter is a number" '.views | type' number
jq_is "counter" .views 1
jq_is "flag is a boolean" .starred true
jq_is "every declared field is a key" 'keys | join(",")' \
    amount,closes,contact,id,labels,stage,starred,title,views
run 0 "get" --dir "$A" get deals "${D1:0:20}"
check "get by prefix, id first" grep -qE "^id +$D1$" "$tmp/out"
check "get shows a set's elements" grep -qE '^labels +hot, q1$' "$tmp/out"
check "get shows a counter" grep -qE '^views +1$' "$tmp/out"
check "get shows a flag" grep -qE '^starred +yes$' "$tmp/out"

run 0 "counter += and -=, set += and -=, flag false" --dir "$A" put deals "$D1" views+=5 \
    views-=2 labels-=q1 labels+=big starred=false
run 0 "get after" --dir "$A" get deals "$D1" --json
jq_is "counter added up" .views 4
jq_is "set changed" '.labels | join(",")' big,hot
jq_is "flag cleared" .starred false
run 0 "negative increments and flag again" --dir "$A" put deals "$D1" views+=-10 starred=true
run 0 "get" --dir "$A" get deals "$D1" --json
jq_is "counter below zero" .views -6
jq_is "flag set again" .starred true
run 0 "clear registers" --dir "$A" put deals "$D1" amount= stage= closes=
run 0 "get after clearing" --dir "$A" get deals "$D1" --json
jq_is "cleared registers are null" '[.amount, .stage, .closes] | map(tostring) | join(",")' \
    null,null,null
run 0 "a value with = and a leading dash" --dir "$A" put deals "$D1" "title=-a=b"
check "value kept whole" test "$("$KITH" --dir "$A" get deals "$D1" --json | jq -r .title)" = "-a=b"
run 0 "ref by prefix" --dir "$A" put deals "$D1" title=Big contact="${CY:0:16}"
check "prefix resolved to the full id" \
    test "$("$KITH" --dir "$A" get deals "$D1" --json | jq -r .contact)" = "$CY"
run 0 "ref in capitals" --dir "$A" put deals "$D1" contact="${BOB^^}"
check "capitals resolved" test "$("$KITH" --dir "$A" get deals "$D1" --json | jq -r .contact)" = "$BOB"
run 1 "ambiguous ref prefix" --dir "$A" put deals "$D1" contact="${ADA:0:20}"
check "ambiguity names the field" err_has "put: contact: id prefix .* is ambiguous"

run 0 "put notes" --dir "$A" put notes body=hello blob=00FF10 day=--05-17 done=true \
    moods+=calm people+="$ADA" people+="${CY:0:16}" dates+=2026-01-31
N1=$(out)
run 0 "get notes --json" --dir "$A" get notes "$N1" --json
jq_is "bytes as lowercase hex" .blob 00ff10
jq_is "date without a year" .day --05-17
jq_is "lww boolean" .done true
jq_is "enum set" '.moods | join(",")' calm
jq_is "ref set, ids sorted" '.people | join(",")' "$(printf '%s\n' "$ADA" "$CY" | sort | paste -sd,)"
jq_is "date set" '.dates | join(",")' 2026-01-31
run 0 "get notes" --dir "$A" get notes "$N1"
check "lww boolean for people" grep -qE '^done +yes$' "$tmp/out"
run 0 "remove a ref element by full id" --dir "$A" put notes "$N1" people-="$CY" done=false
check "element removed" \
    test "$("$KITH" --dir "$A" get notes "$N1" --json | jq -r '.people | join(",")')" = "$ADA"
run 0 "an empty document" --dir "$A" put notes
N2=$(out)
run 0 "get the empty document" --dir "$A" get notes "$N2" --json
jq_is "absent values by kind" '[.body, .moods, .done] | map(tostring) | join(" ")' "null [] null"

# ---- refusals change nothing (CLI-5, CLI-14, CLI-15) ---------------------------------------------
refused 1 "put to an undeclared collection" "no collection nope is declared" put nope a=1
check "says how to declare it" err_has "kith schema apply FILE"
refused 1 "put to an undeclared field" "no field shoe is declared in deals" put deals "$D1" shoe=1
check "says how to declare it" err_has "kith schema apply FILE"
refused 1 "= on a counter" "views: a counter takes views+=N or views-=N, not =" \
    put deals "$D1" views=3
refused 1 "= on a set" "labels: a set takes labels+=ELEMENT or labels-=ELEMENT, not =" \
    put deals "$D1" labels=x
refused 1 "+= on a register" "title: a string field takes title=VALUE, not +=" \
    put deals "$D1" title+=x
refused 1 "-= on a flag" "starred: a flag takes starred=true or starred=false, not -=" \
    put deals "$D1" starred-=x
refused 1 "flag not a boolean" "starred: not a boolean" put deals "$D1" starred=yes
refused 1 "integer not a number" "amount: not a decimal integer" put deals "$D1" amount=12x
refused 1 "counter not a number" "views: not a decimal integer" put deals "$D1" views+=many
refused 1 "time not a time" "closes: not a time" put deals "$D1" closes=tomorrow
refused 1 "date not a date" "day: 2023-02-29 is not a date" put notes "$N1" day=2023-02-29
refused 1 "bytes not hex" "blob: not bytes in hex" put notes "$N1" blob=0g
refused 1 "bytes too long" "blob" put notes "$N1" blob=000102030405060708
refused 1 "enum not in values" "stage: must be one of lead, won, lost" put deals "$D1" stage=maybe
refused 1 "enum set element not in values" "moods" put notes "$N1" moods+=angry
refused 1 "integer below min" "amount: must be at least 0" put deals "$D1" amount=-1
refused 1 "string too long" "title: longer than 200 bytes" \
    put deals "$D1" title="$(head -c 201 /dev/zero | tr '\0' x)"
refused 1 "required field cleared" "title: is required" put deals "$D1" title=
refused 1 "new document without a required field" "title: required" put deals amount=5
refused 1 "ref to a missing document" "contact: no contact with id 0000000000000000000000000000abcd" \
    put deals "$D1" contact=0000000000000000000000000000abcd
refused 1 "ref not an id" "contact" put deals "$D1" contact=xyz
refused 1 "ref set element to a missing document" "people: no contact" \
    put notes "$N1" people+=00000000000000000000000000000001
refused 1 "empty set element" "labels" put deals "$D1" labels+=
refused 1 "all or nothing: the last assignment fails" "title: longer than 200 bytes" \
    put deals "$D1" views+=100 labels+=new amount=9 title="$(head -c 300 /dev/zero | tr '\0' x)"
refused 1 "all or nothing on create" "stage: must be one of" put deals title=Ghost stage=nope
refused 1 "put with a bad ID" "not a document id" put deals zzzzzz title=x
refused 1 "put with an unknown ID" "no deal with an id starting 000000" put deals 000000 title=x
refused 1 "put with an ID of another collection" "no deal with id $ADA" put deals "$ADA" title=x
refused 2 "put with nothing to change" "nothing to change" put deals "$D1"
refused 2 "put without =" "expected FIELD=VALUE" put deals "$D1" title=x amount
refused 2 "put without a field name" "no field name before '+='" put deals "$D1" +=3
refused 2 "put one register twice" "title given twice" put deals "$D1" title=a title=b
refused 2 "put without COLL" "missing COLL" put
refused 1 "get an unknown collection" "no collection nope" get nope 000000
refused 1 "get with a bad ID" "not a document id" get deals 12
refused 2 "get without ID" "missing argument" get deals
refused 1 "rm with an unknown ID" "no deal with an id starting 000000" rm deals 000000
refused 2 "rm without ID" "missing argument" rm deals
refused 1 "schema apply: malformed" "malformed JSON" schema apply - <<<'{"collections": {"x":'
refused 1 "schema apply: incompatible" "deals.amount: declared as integer lww, now string lww" \
    schema apply - <<<'{"collections":{"deals":{"fields":{"amount":{"type":"string"}}}}}'
refused 1 "schema apply: counter of strings" "counter" \
    schema apply - <<<'{"collections":{"y":{"fields":{"a":{"type":"string","crdt":"counter"}}}}}'
refused 1 "schema apply: ref to nowhere" "nowhere" \
    schema apply - <<<'{"collections":{"y":{"fields":{"a":{"type":"ref","to":"nowhere"}}}}}'
refused 1 "schema apply: missing file" "no such file" schema apply "$tmp/nope.json"
check "a refused schema keeps the version" \
    test "$("$KITH" --dir "$A" schema show --json | jq -r .version)" = 3
run 0 "schema unchanged by refusals" --dir "$A" schema show --json
check "schema bytes unchanged by refusals" cmp -s "$tmp/out" "$tmp/schema.json"

# ---- ls, by id and through an index (CLI-17) -----------------------------------------------------
run 0 "put deal 2" --dir "$A" put deals title=Two contact="$ADA" closes=2026-01-10 amount=20
D2=$(out)
run 0 "put deal 3" --dir "$A" put deals title=Three contact="$ADA" closes=2026-02-10 amount=30
D3=$(out)
run 0 "put deal 4" --dir "$A" put deals title=Four contact="$BOB" closes=2026-01-20 amount=40
D4=$(out)
run 0 "put deal 5, no contact" --dir "$A" put deals title=Five
D5=$(out)
run 0 "ls" --dir "$A" ls deals
check "ls header: ID and the declared fields by name" \
    grep -qE '^ID +AMOUNT +CLOSES +CONTACT +LABELS +STAGE +STARRED +TITLE +VIEWS$' "$tmp/out"
ids=$(awk 'NR > 1 { print $1 }' "$tmp/out" | paste -sd,)
check "ls is in id order" test "$ids" = "$(printf '%s\n' "$D1" "$D2" "$D3" "$D4" "$D5" | sort | paste -sd,)"
check "ls shows a set's elements and a counter" grep -qE "^$D1 .* big, hot .* Big +-6$" "$tmp/out"
run 0 "ls --json" --dir "$A" ls deals --json
jq_is "ls --json is keyed by the collection" '.deals | length' 5
jq_is "ls --json elements are get's objects" '.deals[0] | keys | join(",")' \
    amount,closes,contact,id,labels,stage,starred,title,views
check "ls --json element equals get --json" test \
    "$(jq -c '.deals[] | select(.id == "'"$D1"'")' "$tmp/out")" = \
    "$("$KITH" --dir "$A" get deals "$D1" --json | jq -c .)"
run 0 "ls --limit 2" --dir "$A" ls deals --limit 2 --json
jq_is "limit" '.deals | length' 2
run 0 "ls --limit 0" --dir "$A" ls deals --limit 0 --json
jq_is "limit 0 is an empty list" '.deals | length' 0
run 0 "ls through an index" --dir "$A" ls deals --index by_contact --json
jq_is "index order: by contact, then time; no entry without both" '[.deals[].title] | join(",")' \
    "$(if [[ "$ADA" < "$BOB" ]]; then echo Two,Three,Four; else echo Four,Two,Three; fi)"
run 0 "--eq fixes the contact" --dir "$A" ls deals --index by_contact --eq "${ADA^^}" --json
jq_is "Ada's deals by closing time" '[.deals[].title] | join(",")' Two,Three
run 0 "--from and --to bound the time" --dir "$A" ls deals --index deals.by_contact \
    --eq "$ADA" --from 2026-01-10 --to 2026-02-10 --json
jq_is "from inclusive, to exclusive" '[.deals[].title] | join(",")' Two
run 0 "bounds without --eq" --dir "$A" ls deals --index by_contact --from 2026-01-15 --json
jq_is "every contact's deals from then" '[.deals[].title] | sort | join(",")' Four,Three
run 0 "index and --limit" --dir "$A" ls deals --index by_contact --eq "$ADA" --limit 1 --json
jq_is "limit through an index" '[.deals[].title] | join(",")' Two
run 0 "a date index with bounds" --dir "$A" ls notes --index by_day --from --01-01 --to --12-31
check "the table through an index" out_has "$N1"
run 0 "ls a collection with no documents" --dir "$A" ls reminders --json
jq_is "an empty list" '.reminders | length' 0
refused 2 "ls --limit not a number" "--limit: 'abc' is not a number" ls deals --limit abc
refused 2 "ls --limit negative" "--limit: '-1' is not a number" ls deals --limit -1
refused 2 "ls --from without --index" "--from bounds an index" ls deals --from 1
refused 2 "ls without COLL" "missing COLL" ls
refused 1 "ls an unknown index" "no index nope is declared in deals (its indexes: by_contact)" \
    ls deals --index nope
refused 1 "ls a bound of the wrong type" "--from (closes): not a time" \
    ls deals --index by_contact --from soon
refused 1 "ls --eq on a one-field index" "--eq: index by_day is on one field" \
    ls notes --index by_day --eq 2026-01-01
refused 1 "ls an unknown collection" "no collection nope" ls nope

# ---- rm ------------------------------------------------------------------------------------------
run 0 "rm" --dir "$A" rm deals "${D5^^}"
run 0 "ls after rm" --dir "$A" ls deals --json
jq_is "the deleted document is gone" '[.deals[].id] | index("'"$D5"'")' null
run 1 "get a deleted document" --dir "$A" get deals "$D5"
check "says it is not there" err_has "no deal with id $D5"
run 1 "rm twice" --dir "$A" rm deals "$D5"

# ---- a replica without the declaration, and one with an older version (CLI-16) ------------------
"$KITH" --dir "$A" bundle create -o "$tmp/ab1.bundle" 2>/dev/null
run 0 "B applies A's bundle" --dir "$B" bundle apply "$tmp/ab1.bundle"
run 0 "B's schema does not have deals" --dir "$B" schema show --json
jq_is "B declared the CRM only" '.collections | keys | join(",")' contacts,interactions,reminders
run 0 "B gets an undeclared document" --dir "$B" get deals "$D1" --json
jq_is "the held fields, as A shows them" \
    '[.title, .views, (.labels | join("+")), .starred, .contact] | map(tostring) | join(" ")' \
    "Big -6 big+hot true $BOB"
jq_is "only the fields held" 'keys | join(",")' contact,id,labels,starred,title,views
run 0 "B gets it for people" --dir "$B" get deals "$D1"
check "B shows the counter" grep -qE '^views +-6$' "$tmp/out"
run 0 "B lists the undeclared collection" --dir "$B" ls deals
check "columns are the fields held, by name" \
    grep -qE '^ID +AMOUNT +CLOSES +CONTACT +LABELS +STARRED +TITLE +VIEWS$' "$tmp/out"
check "B lists every live deal" test "$(awk 'NR > 1' "$tmp/out" | wc -l)" = 4
run 0 "B lists it as JSON" --dir "$B" ls deals --json
jq_is "B's list" '[.deals[].title] | sort | join(",")' Big,Four,Three,Two
"$KITH" --dir "$A" export >"$tmp/ea"
"$KITH" --dir "$B" export >"$tmp/eb"
check "A and B export the same bytes" cmp -s "$tmp/ea" "$tmp/eb"
snap "$B" b0
run 1 "B cannot write an undeclared collection" --dir "$B" put deals "$D1" views+=1
check "B is told to declare it" err_has "kith schema apply FILE"
run 1 "B cannot delete in an undeclared collection" --dir "$B" rm deals "$D1"
run 1 "B has no index of it" --dir "$B" ls deals --index by_contact
same_snap "B refused, nothing changed" "$B" b0

# B declares version 1, A goes on to version 2 and writes the new field
run 0 "B declares deals" --dir "$B" schema apply "$tmp/deals.json"
run 0 "B's index is built from what it holds" --dir "$B" ls deals --index by_contact --eq "$ADA" --json
jq_is "B's index" '[.deals[].title] | join(",")' Two,Three
run 0 "A declares version 2" --dir "$A" schema apply "$tmp/deals2.json"
check "A is at version 4" out_has "schema version 4"
run 0 "A writes the new field" --dir "$A" put deals "$D2" probability=70 views+=2
run 1 "above its max" --dir "$A" put deals "$D3" probability=101
check "max named" err_has "probability: must be at most 100"
run 0 "B writes a counter concurrently" --dir "$B" put deals "$D2" views+=3 labels+=fromb
"$KITH" --dir "$A" bundle create -o "$tmp/ab2.bundle" 2>/dev/null
"$KITH" --dir "$B" bundle create -o "$tmp/ba2.bundle" 2>/dev/null
run 0 "B applies A's" --dir "$B" bundle apply "$tmp/ab2.bundle"
run 0 "A applies B's" --dir "$A" bundle apply "$tmp/ba2.bundle"
run 0 "B gets a field it has not declared" --dir "$B" get deals "$D2" --json
jq_is "the v2 field on the v1 replica" .probability 70
jq_is "concurrent increments add up" .views 5
jq_is "B's element arrived" '.labels | join(",")' fromb
run 0 "B lists it" --dir "$B" ls deals
check "B's table has the undeclared field after the declared ones" \
    grep -qE '^ID +AMOUNT +CLOSES +CONTACT +LABELS +STAGE +STARRED +TITLE +VIEWS +PROBABILITY$' \
    "$tmp/out"
run 0 "A lists through the new index" --dir "$A" ls deals --index by_probability --from 50 --json
jq_is "A's new index" '[.deals[].title] | join(",")' Two
run 1 "B has no such index" --dir "$B" ls deals --index by_probability
check "B lists its indexes" err_has "its indexes: by_contact"
"$KITH" --dir "$A" export >"$tmp/ea"
"$KITH" --dir "$B" export >"$tmp/eb"
check "A and B still export the same bytes" cmp -s "$tmp/ea" "$tmp/eb"
run 0 "A verifies" --dir "$A" verify
run 0 "B verifies" --dir "$B" verify

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
