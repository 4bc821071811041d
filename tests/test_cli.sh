#!/usr/bin/env bash
# The kith command end to end: every command of spec/cli.md with its good and bad paths,
# run against real replicas in a temporary directory. Checks exit codes (0 ok, 1 failure,
# 2 usage), that refused input leaves the replica byte-identical in `kith export`, that every
# --json output parses and holds its documented keys, and that two replicas converge through
# bundles (and through `kith sync` when the daemon is built).
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-cli.XXXXXX)
serve_pid=""
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
unset KITH_DIR XDG_DATA_HOME NO_COLOR
export HOME="$tmp/home"
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
# json_keys NAME FILTER KEY... : the value FILTER selects in $tmp/out has every KEY
json_keys() {
    local name=$1 filter=$2 k
    shift 2
    if ! jq -e . "$tmp/out" >/dev/null 2>&1; then
        bad "$name: output is not JSON"
        return
    fi
    for k in "$@"; do
        if ! jq -e "$filter | has(\"$k\")" "$tmp/out" >/dev/null 2>&1; then
            bad "$name: no key '$k'"
            return
        fi
    done
    ok
}
same_export() { # same_export NAME FILE1 FILE2 : equal bytes, else show how they differ
    if cmp -s "$2" "$3"; then
        ok
    else
        bad "$1"
        diff <(jq -S . "$2" 2>/dev/null) <(jq -S . "$3" 2>/dev/null) | head -10 | sed 's/^/    /'
    fi
}
jq_ok() { jq -e "$@" >/dev/null 2>&1; }
snap() { "$KITH" --dir "$1" export >"$tmp/snap.$2" || true; }
same_snap() { # same_snap NAME DIR TAG : export of DIR still equals the snapshot TAG
    "$KITH" --dir "$2" export >"$tmp/snap.now" || true
    if cmp -s "$tmp/snap.$3" "$tmp/snap.now"; then ok; else bad "$1: replica changed"; fi
}

A=$tmp/a B=$tmp/b C=$tmp/c D2=$tmp/d2

# ---- global options and usage errors (CLI-1, CLI-3, CLI-4) ---------------------------------------
run 2 "no command is a usage error" 
check "usage line on stderr" err_has "usage:"
run 2 "unknown command" --dir "$A" frobnicate
check "unknown command named" err_has "frobnicate"
run 2 "unknown global option" --bogus status
run 2 "--dir needs a value" --dir
run 0 "help" help
check "help lists contact add" out_has "contact add"
run 0 "--help" --help
run 0 "--version" --version
check "--version prints a version" out_has "kith "
run 2 "unknown subcommand" --dir "$A" contact frob
run 2 "group without subcommand" --dir "$A" contact
run 0 "command --help" --dir "$A" contact add --help
check "command --help prints usage" out_has "usage: kith contact add"
check "command --help says what it does" out_has "add a contact"
run 0 "group --help" --dir "$A" contact --help
check "group --help lists its commands" out_has "usage: kith contact ls"
run 0 "help COMMAND" help contact
check "help COMMAND lists that command only" bash -c "grep -q 'contact show' '$tmp/out' && ! grep -q 'reminder' '$tmp/out'"
run 0 "help COMMAND SUB" help contact add
check "help COMMAND SUB prints its usage" out_has "usage: kith contact add"
run 0 "help of a single-word command" help status
check "help status prints its usage" out_has "usage: kith status"
run 2 "help of no such command" help contcat
check "help suggests the closest command" err_has "did you mean 'contact'"
run 2 "a typo of a command" --dir "$A" stauts
check "a typo gets a suggestion" err_has "did you mean 'status'"
run 2 "a typo of a subcommand" --dir "$A" contact lss
check "a subcommand typo gets a suggestion" err_has "did you mean 'contact ls'"
run 2 "nothing close" --dir "$A" frobnicate
check "no suggestion when nothing is close" bash -c "! grep -q 'did you mean' '$tmp/err'"

# ---- before init (CLI-2) -------------------------------------------------------------------------
run 1 "status without a replica" --dir "$A" status
check "no-replica message says run init" err_has "kith init"
check "no replica created by a read" test ! -e "$A"

# ---- init and id ---------------------------------------------------------------------------------
run 0 "init A" --dir "$A" init
check "init prints an id" out_has '^id  *[0-9a-f]\{16\}$'
check "init prints a public key" out_has '^pubkey  *[0-9a-f]\{64\}$'
run 0 "init again is harmless" --dir "$A" init
run 0 "id --json" --dir "$A" id --json
json_keys "id --json" . id pubkey dir
A_ID=$(jq -r .id "$tmp/out")
A_PK=$(jq -r .pubkey "$tmp/out")
check "id is 16 hex" grep -qE '^[0-9a-f]{16}$' <<<"$A_ID"
check "pubkey is 64 hex" grep -qE '^[0-9a-f]{64}$' <<<"$A_PK"
run 2 "id takes no operand" --dir "$A" id extra
run 2 "id unknown option" --dir "$A" id --bogus
run 0 "init B" --dir "$B" init
B_PK=$("$KITH" --dir "$B" id --json | jq -r .pubkey) || true
B_ID=$("$KITH" --dir "$B" id --json | jq -r .id) || true
run 0 "init C" --dir "$C" init

# ---- where the replica lives: --dir > KITH_DIR > XDG_DATA_HOME > HOME (CLI-2) --------------------
got=$(KITH_DIR="$A" "$KITH" id --json | jq -r .id) || true
check "KITH_DIR picks the replica" test "$got" = "$A_ID"
got=$(KITH_DIR="$A" "$KITH" --dir "$B" id --json | jq -r .id) || true
check "--dir wins over KITH_DIR" test "$got" = "$B_ID"
mkdir -p "$tmp/xdg"
XDG_DATA_HOME="$tmp/xdg" "$KITH" init >/dev/null 2>&1 || true
check "XDG_DATA_HOME/kith is the default" test -d "$tmp/xdg/kith"
got=$(XDG_DATA_HOME="$tmp/xdg" "$KITH" id --json | jq -r .dir) || true
check "XDG_DATA_HOME replica used" test "$got" = "$tmp/xdg/kith"
got=$(KITH_DIR="$A" XDG_DATA_HOME="$tmp/xdg" "$KITH" id --json | jq -r .id) || true
check "KITH_DIR wins over XDG_DATA_HOME" test "$got" = "$A_ID"
"$KITH" init >/dev/null 2>&1 || true
check "HOME/.local/share/kith is the fallback" test -d "$HOME/.local/share/kith"

# ---- contact add (CLI-5, CLI-7) ------------------------------------------------------------------
run 0 "contact add" --dir "$A" contact add --name "Zed Zimmer" --email zed@example.com \
    --phone "+44 1" --company Acme --notes "met at a conference" --birthday 1990-04-01 \
    --tag friend --tag work
ZED=$(out)
check "contact add prints a 32-hex id" grep -qE '^[0-9a-f]{32}$' <<<"$ZED"
check "contact id starts with the origin" test "${ZED:0:16}" = "$A_ID"
run 0 "contact add, name only" --dir "$A" contact add --name "Ada Lovelace"
ADA=$(out)
run 0 "contact add, no-year birthday" --dir "$A" contact add --name "Bo" --birthday --12-24
BO=$(out)
snap "$A" a0
run 2 "contact add without --name" --dir "$A" contact add --email x@example.com
check "missing --name explained" err_has "name"
run 2 "contact add unknown option" --dir "$A" contact add --name X --colour red
run 2 "contact add option without value" --dir "$A" contact add --name
run 2 "contact add stray operand" --dir "$A" contact add --name X extra
run 2 "-- ends the options" --dir "$A" contact add --name X -- --phone 1
run 1 "contact add bad birthday" --dir "$A" contact add --name X --birthday 1990-13-45
check "bad birthday names the field" err_has "birthday"
run 1 "contact add bad email" --dir "$A" contact add --name X --email not-an-address
check "bad email names the field" err_has "email"
run 1 "contact add name not UTF-8" --dir "$A" contact add --name $'bad\xff\xfename'
check "not UTF-8 named" err_has "UTF-8"
run 1 "contact add email not UTF-8" --dir "$A" contact add --name X --email $'a\xff@b.c'
run 1 "contact add empty tag" --dir "$A" contact add --name X --tag ""
run 1 "contact add empty name" --dir "$A" contact add --name ""
run 1 "contact add name too long" --dir "$A" contact add --name "$(head -c 70000 /dev/zero | tr '\0' x)"
check "too long explained" err_has "long"
same_snap "refused contact adds" "$A" a0

# ---- contact ls / show (CLI-6, CLI-9, CLI-10) ----------------------------------------------------
run 0 "contact ls" --dir "$A" contact ls
check "contact ls has a header" out_has "NAME"
names=$(awk 'NR > 1 { print $2 }' "$tmp/out" | tr '\n' ' ')
check "contact ls is in name order ($names)" test "$names" = "Ada Bo Zed "
run 0 "contact ls --json" --dir "$A" contact ls --json
json_keys "contact ls --json" . contacts
json_keys "contact ls --json element" '.contacts[0]' id name email phone company notes birthday tags
check "contact ls --json in name order" \
    test "$(jq -r '[.contacts[].name] | join(",")' "$tmp/out")" = "Ada Lovelace,Bo,Zed Zimmer"
run 0 "contact show" --dir "$A" contact show "$ZED"
check "contact show has the email" out_has "zed@example.com"
run 0 "contact show --json" --dir "$A" contact show "$ZED" --json
json_keys "contact show --json" . id name email phone company notes birthday tags
check "show --json values" test "$(jq -r '[.name,.birthday,(.tags|join("+"))] | join("|")' \
    "$tmp/out")" = "Zed Zimmer|1990-04-01|friend+work"
check "unset field is null" test "$("$KITH" --dir "$A" contact show "$ADA" --json | jq -r .phone)" = null
run 0 "contact show by upper-case id" --dir "$A" contact show "${ZED^^}"
run 1 "contact show ambiguous prefix" --dir "$A" contact show "${ZED:0:16}"
check "ambiguity explained" err_has "ambiguous"
run 1 "contact show short prefix" --dir "$A" contact show "${ZED:0:5}"
run 1 "contact show not hex" --dir "$A" contact show "xyzxyzxyz"
run 1 "contact show unknown id" --dir "$A" contact show 00000000000000000000000000000000
run 2 "contact show no id" --dir "$A" contact show

# ---- contact set (CLI-5) -------------------------------------------------------------------------
run 0 "contact set" --dir "$A" contact set "$ADA" phone=+44-2 "company=Analytical Engines"
check "contact set wrote" test "$("$KITH" --dir "$A" contact show "$ADA" --json | jq -r .company)" = "Analytical Engines"
run 0 "contact set value with = and leading dash" --dir "$A" contact set "$ADA" "notes=-a=b"
check "value kept whole" test "$("$KITH" --dir "$A" contact show "$ADA" --json | jq -r .notes)" = "-a=b"
run 0 "contact set clears with empty value" --dir "$A" contact set "$ZED" birthday=
check "cleared field is null" test "$("$KITH" --dir "$A" contact show "$ZED" --json | jq -r .birthday)" = null
snap "$A" a1
run 1 "contact set required field empty" --dir "$A" contact set "$ADA" name=
run 1 "contact set unknown field" --dir "$A" contact set "$ADA" shoe=42
run 1 "contact set bad date" --dir "$A" contact set "$ADA" birthday=yesterday
run 1 "contact set bad email" --dir "$A" contact set "$ADA" email=@@
run 1 "contact set not UTF-8" --dir "$A" contact set "$ADA" $'notes=\xc3'
run 1 "contact set tags is refused" --dir "$A" contact set "$ADA" tags=x
run 1 "contact set all or nothing" --dir "$A" contact set "$ADA" phone=999 birthday=bad
run 2 "contact set without =" --dir "$A" contact set "$ADA" phone
run 2 "contact set nothing to set" --dir "$A" contact set "$ADA"
run 1 "contact set unknown id" --dir "$A" contact set 0000000000000000000000000000000f phone=1
same_snap "refused contact sets" "$A" a1

# ---- contact tag: +TAG and -TAG after the ID are values (CLI-1, CLI-5) ---------------------------
run 0 "contact tag +x -friend" --dir "$A" contact tag "$ZED" +vip -friend plain
check "tags after +/-" test "$("$KITH" --dir "$A" contact show "$ZED" --json | jq -r '.tags|join(",")')" = "plain,vip,work"
run 0 "contact tag -- ID -tag" --dir "$A" contact tag -- "$ZED" -vip
check "-- then -tag" test "$("$KITH" --dir "$A" contact show "$ZED" --json | jq -r '.tags|join(",")')" = "plain,work"
run 0 "removing an absent tag is fine" --dir "$A" contact tag "$ZED" -absent
snap "$A" a2
run 2 "contact tag without tags" --dir "$A" contact tag "$ZED"
run 1 "contact tag empty tag" --dir "$A" contact tag "$ZED" +
run 1 "contact tag not UTF-8" --dir "$A" contact tag "$ZED" $'+\xff'
run 1 "contact tag unknown id" --dir "$A" contact tag 000000000000000000000000000000ff +x
same_snap "refused tags" "$A" a2

# ---- interactions (CLI-5, CLI-10) ----------------------------------------------------------------
run 0 "interaction add" --dir "$A" interaction add "$ZED" --kind call --at 2026-03-02T10:00:00Z \
    --summary "second call" --with "$ADA"
I2=$(out)
check "interaction id" grep -qE '^[0-9a-f]{32}$' <<<"$I2"
run 0 "interaction add, earlier" --dir "$A" interaction add "$ZED" --kind meeting \
    --at 2026-03-01T09:30:00.250+01:00 --summary "first meeting"
I1=$(out)
run 0 "interaction add, default time" --dir "$A" interaction add "$ADA" --kind note
snap "$A" a3
run 2 "interaction add without --kind" --dir "$A" interaction add "$ZED"
run 2 "interaction add without contact" --dir "$A" interaction add --kind call
run 2 "interaction add unknown option" --dir "$A" interaction add "$ZED" --kind call --when now
run 1 "interaction add bad kind" --dir "$A" interaction add "$ZED" --kind telepathy
run 1 "interaction add bad time" --dir "$A" interaction add "$ZED" --kind call --at 2026-02-30T00:00:00Z
run 1 "interaction add unknown contact" --dir "$A" interaction add 0000000000000000000000000000aaaa --kind call
run 1 "interaction add unknown --with" --dir "$A" interaction add "$ZED" --kind call --with 0000000000000000000000000000aaaa
same_snap "refused interactions" "$A" a3
run 0 "interaction ls --contact" --dir "$A" interaction ls --contact "$ZED" --json
json_keys "interaction ls --json" . interactions
json_keys "interaction element" '.interactions[0]' id contact kind at summary participants
check "interactions of a contact by time" \
    test "$(jq -r '[.interactions[].id] | join(",")' "$tmp/out")" = "$I1,$I2"
check "time is ISO 8601 UTC with ms" \
    test "$(jq -r '.interactions[0].at' "$tmp/out")" = "2026-03-01T08:30:00.250Z"
check "participants are contact ids" \
    test "$(jq -r '.interactions[1].participants[0]' "$tmp/out")" = "$ADA"
run 0 "interaction ls" --dir "$A" interaction ls --json
check "all interactions" test "$(jq '.interactions | length' "$tmp/out")" = 3
run 0 "interaction ls human" --dir "$A" interaction ls
check "interaction table shows the contact's name" out_has "Zed Zimmer"
run 1 "interaction ls unknown contact" --dir "$A" interaction ls --contact 0000000000000000000000000000aaaa

# ---- reminders -----------------------------------------------------------------------------------
run 0 "reminder add" --dir "$A" reminder add "$ZED" --due 2026-05-01T09:00:00Z --text "send the draft"
R2=$(out)
run 0 "reminder add, earlier" --dir "$A" reminder add "$ADA" --due 2026-04-01 --text "birthday card"
R1=$(out)
snap "$A" a4
run 2 "reminder add without --due" --dir "$A" reminder add "$ZED" --text x
run 2 "reminder add without --text" --dir "$A" reminder add "$ZED" --due 2026-01-01
run 1 "reminder add bad due" --dir "$A" reminder add "$ZED" --due "next tuesday" --text x
run 1 "reminder add unknown contact" --dir "$A" reminder add 0000000000000000000000000000aaaa --due 2026-01-01 --text x
same_snap "refused reminders" "$A" a4
run 0 "reminder ls --json" --dir "$A" reminder ls --json
json_keys "reminder ls --json" . reminders
json_keys "reminder element" '.reminders[0]' id contact due text done
check "reminders by due" test "$(jq -r '[.reminders[].id] | join(",")' "$tmp/out")" = "$R1,$R2"
run 0 "reminder ls --due-before" --dir "$A" reminder ls --due-before 2026-04-15 --json
check "due-before filters" test "$(jq -r '[.reminders[].id] | join(",")' "$tmp/out")" = "$R1"
run 1 "reminder ls bad --due-before" --dir "$A" reminder ls --due-before soon
run 0 "reminder done" --dir "$A" reminder done "$R1"
check "reminder is done" test "$("$KITH" --dir "$A" reminder ls --json | jq -r '.reminders[0].done')" = true
run 1 "reminder done unknown" --dir "$A" reminder done 0000000000000000000000000000aaaa
run 1 "reminder done with a contact's id" --dir "$A" reminder done "$ZED"
run 1 "contact show with an interaction's id" --dir "$A" contact show "$I1"
run 0 "contact show summarises activity" --dir "$A" contact show "$ZED"
check "show counts interactions" out_has "^interactions  *2, latest 2026-03-02T10:00:00.000Z call"
check "show names the next reminder" out_has "^reminders  *1 open, next 2026-05-01T09:00:00.000Z"
run 0 "reminder ls human" --dir "$A" reminder ls
check "reminder table" out_has "send the draft"

# ---- status, log, export -------------------------------------------------------------------------
run 0 "status" --dir "$A" status
check "status names the replica" out_has "$A_ID"
run 0 "status --json" --dir "$A" status --json
json_keys "status --json" . id pubkey vv vv_text hlc clock ops_logged pending_ops open_conflicts collections peers
check "status counts contacts" test "$(jq .collections.contacts "$tmp/out")" = 3
check "vv has this origin" test "$(jq -r --arg o "$A_ID" '.vv[$o] > 0' "$tmp/out")" = true
run 0 "log" --dir "$A" log
check "log shows field sets" out_has "field_set"
run 0 "log --json" --dir "$A" log --json
json_keys "log --json" . entries
json_keys "log entry" '.entries[0]' origin seq hlc time op collection doc field value replaced commit_end chain applied
check "log is by seq" test "$(jq '[.entries[].seq] == ([.entries[].seq] | sort)' "$tmp/out")" = true
nlog=$(jq '.entries | length' "$tmp/out")
check "log counts every op" test "$nlog" = "$("$KITH" --dir "$A" status --json | jq .ops_logged)"
run 0 "log --limit" --dir "$A" log --limit 2 --json
check "log --limit 2" test "$(jq '.entries | length' "$tmp/out")" = 2
run 0 "log --origin" --dir "$A" log --origin "$A_ID" --json
check "log --origin keeps that origin" test "$(jq -r '[.entries[].origin] | unique | join(",")' "$tmp/out")" = "$A_ID"
run 0 "log --origin other" --dir "$A" log --origin "$B_ID" --json
check "log of an origin never seen is empty" test "$(jq '.entries | length' "$tmp/out")" = 0
run 2 "log --origin bad" --dir "$A" log --origin nothex
run 2 "log --limit bad" --dir "$A" log --limit -3
run 0 "export" --dir "$A" export
check "export is JSON" jq -e . "$tmp/out" >/dev/null
"$KITH" --dir "$A" export >"$tmp/e1" || true
"$KITH" --dir "$A" export >"$tmp/e2" || true
check "export is deterministic" cmp -s "$tmp/e1" "$tmp/e2"
run 2 "export takes no operand" --dir "$A" export now

# ---- contact rm ----------------------------------------------------------------------------------
run 0 "contact rm" --dir "$A" contact rm "$BO"
run 1 "show removed contact" --dir "$A" contact show "$BO"
run 1 "rm twice" --dir "$A" contact rm "$BO"
check "removed contact gone from ls" test "$("$KITH" --dir "$A" contact ls --json | jq '.contacts | length')" = 2

# ---- trust ---------------------------------------------------------------------------------------
snap "$A" a5
run 1 "trust a bad key" --dir "$A" trust 1234
run 1 "trust own key" --dir "$A" trust "$A_PK"
run 2 "trust without key" --dir "$A" trust
run 2 "trust --list with a key" --dir "$A" trust --list "$B_PK"
run 0 "trust B on A" --dir "$A" trust "$B_PK" --name laptop --addr tcp://127.0.0.1:1
check "trust names the id" out_has "$B_ID"
run 0 "trust A on B" --dir "$B" trust "$A_PK" --name phone
run 0 "trust --list" --dir "$A" trust --list
check "trust --list shows the peer" out_has "laptop"
run 0 "trust --list --json" --dir "$A" trust --list --json
json_keys "trust --list --json" . peers
json_keys "peer element" '.peers[0]' id pubkey name addr trusted forked acked pending_ops last_sync failures last_error
check "trusted peer" test "$(jq -r '.peers[0].trusted' "$tmp/out")" = true
run 0 "peers" --dir "$A" peers
run 0 "peers --json" --dir "$A" peers --json
json_keys "peers --json" . peers
same_snap "trust does not touch the replicated state" "$A" a5

# ---- bundles: A -> B (CLI-5) ---------------------------------------------------------------------
run 0 "bundle create" --dir "$A" bundle create -o "$tmp/ab.bundle"
check "bundle file written" test -s "$tmp/ab.bundle"
check "bundle create reports ops" err_has "ops"
run 0 "bundle create to stdout (pipe)" --dir "$A" bundle create
check "stdout bundle is the same bytes" cmp -s "$tmp/out" "$tmp/ab.bundle"
run 1 "bundle create bad --since" --dir "$A" bundle create -o "$tmp/x.bundle" --since "zz:1"
run 2 "bundle create stray operand" --dir "$A" bundle create "$tmp/x.bundle"
snap "$B" b0
run 1 "bundle apply missing file" --dir "$B" bundle apply "$tmp/nope.bundle"
# damaged copies: a flipped byte in the middle, a truncated file, garbage
size=$(stat -c %s "$tmp/ab.bundle" 2>/dev/null || echo 100)
cp "$tmp/ab.bundle" "$tmp/tampered.bundle" 2>/dev/null || head -c 100 /dev/zero >"$tmp/tampered.bundle"
printf '\x5a' | dd of="$tmp/tampered.bundle" bs=1 seek=$((size / 2)) conv=notrunc status=none
head -c $((size - 7)) "$tmp/ab.bundle" >"$tmp/truncated.bundle" 2>/dev/null || true
head -c 40 /dev/urandom >"$tmp/garbage.bundle"
: >"$tmp/empty.bundle"
for kind in tampered truncated garbage empty; do
    run 1 "$kind bundle refused" --dir "$B" bundle apply "$tmp/$kind.bundle"
    check "$kind bundle: says refused" err_has "refused"
done
same_snap "damaged bundles change nothing" "$B" b0
snap "$C" c0
run 1 "untrusted bundle refused" --dir "$C" bundle apply "$tmp/ab.bundle"
check "untrusted explained" err_has "trust"
same_snap "untrusted bundle changes nothing" "$C" c0
run 0 "bundle apply" --dir "$B" bundle apply "$tmp/ab.bundle" --json
json_keys "bundle apply --json" . ops_new ops_known ops_applied ops_pending conflicts
check "ops were new" test "$(jq '.ops_new > 0' "$tmp/out")" = true
run 0 "bundle apply again" --dir "$B" bundle apply "$tmp/ab.bundle"
check "second apply: nothing new" out_has "^0 new ops"
"$KITH" --dir "$A" export >"$tmp/ea" || true
"$KITH" --dir "$B" export >"$tmp/eb" || true
same_export "B holds A's state" "$tmp/ea" "$tmp/eb"
# ids begin with their origin: on B, B's only contact is found by B's origin as a prefix
run 0 "contact add on B" --dir "$B" contact add --name "Bea"
BEA=$(out)
run 0 "contact show by unique prefix" --dir "$B" contact show "${BEA:0:16}"
check "prefix finds the contact" out_has "Bea"
run 0 "six-digit prefix" --dir "$B" contact show "${BEA:0:6}"
run 1 "prefix shared by A's contacts" --dir "$B" contact show "${ZED:0:16}"
run 0 "bundle B -> A" --dir "$B" bundle create -o "$tmp/ba.bundle"
run 0 "A applies B's contact" --dir "$A" bundle apply "$tmp/ba.bundle"
E=$tmp/e
"$KITH" --dir "$E" init >/dev/null || true
"$KITH" --dir "$E" trust "$A_PK" >/dev/null || true
"$KITH" --dir "$E" trust "$B_PK" >/dev/null || true
"$KITH" --dir "$A" bundle create 2>/dev/null | "$KITH" --dir "$E" bundle apply - >"$tmp/out" 2>"$tmp/err" &&
    ok || bad "bundle through a pipe"
"$KITH" --dir "$A" export >"$tmp/ea" || true
"$KITH" --dir "$E" export >"$tmp/ee" || true
same_export "bundle through a pipe carries everything" "$tmp/ea" "$tmp/ee"
run 0 "trust --remove by id" --dir "$E" trust --remove "$B_ID"
run 0 "trust --list after --remove" --dir "$E" trust --list --json
check "B no longer in the trust set" \
    test "$(jq -r --arg b "$B_ID" '[.peers[] | select(.id == $b)] | length' "$tmp/out")" = 0
run 1 "trust --remove again" --dir "$E" trust --remove "$B_ID"
run 1 "trust --remove not an id" --dir "$E" trust --remove xyz
run 2 "trust --remove with --list" --dir "$E" trust --remove "$B_ID" --list
"$KITH" --dir "$B" contact add --name "Only on B" >/dev/null || true
"$KITH" --dir "$B" bundle create -o "$tmp/b-only.bundle" 2>/dev/null || true
snap "$E" e0
run 1 "bundle from a revoked replica refused" --dir "$E" bundle apply "$tmp/b-only.bundle"
same_snap "revoked replica's bundle changes nothing" "$E" e0
run 0 "trust --remove by public key" --dir "$E" trust --remove "$A_PK"
vv=$("$KITH" --dir "$B" status --json | jq -r .vv_text) || true
run 0 "bundle create --since" --dir "$A" bundle create -o "$tmp/since.bundle" --since "$vv"
check "--since B's vector: nothing to send" err_has "^kith: bundle: 0 ops"

# ---- concurrent edits, both ways, conflicts ------------------------------------------------------
run 0 "edit phone on A" --dir "$A" contact set "$ZED" "phone=+44 20 7946 0001"
run 0 "edit phone on B" --dir "$B" contact set "$ZED" "phone=+44 20 7946 0002"
"$KITH" --dir "$A" bundle create -o "$tmp/a.bundle" 2>/dev/null || true
"$KITH" --dir "$B" bundle create -o "$tmp/b.bundle" 2>/dev/null || true
run 0 "A applies B's bundle" --dir "$A" bundle apply "$tmp/b.bundle"
run 0 "B applies A's bundle" --dir "$B" bundle apply "$tmp/a.bundle"
"$KITH" --dir "$A" export >"$tmp/ea" || true
"$KITH" --dir "$B" export >"$tmp/eb" || true
same_export "replicas converge byte for byte" "$tmp/ea" "$tmp/eb"
pa=$("$KITH" --dir "$A" contact show "$ZED" --json | jq -r .phone) || true
pb=$("$KITH" --dir "$B" contact show "$ZED" --json | jq -r .phone) || true
check "same phone on both ($pa)" test "$pa" = "$pb"
run 0 "conflicts --json on A" --dir "$A" conflicts --json
json_keys "conflicts --json" . conflicts
json_keys "conflict element" '.conflicts[0]' id collection doc field winner loser recorded resolved
json_keys "conflict side" '.conflicts[0].winner' origin seq hlc time value
check "one conflict on phone" test "$(jq -r '[.conflicts[].field] | join(",")' "$tmp/out")" = phone
check "winner is the current value" test "$(jq -r '.conflicts[0].winner.value' "$tmp/out")" = "$pa"
loser=$(jq -r '.conflicts[0].loser.value' "$tmp/out")
check "loser is the other edit" test "$loser" != "$pa"
CID=$(jq -r '.conflicts[0].id' "$tmp/out")
run 0 "conflicts --json on B" --dir "$B" conflicts --json
check "B recorded it too" test "$(jq '.conflicts | length' "$tmp/out")" = 1
run 0 "conflicts human" --dir "$A" conflicts
check "conflicts shows winner and loser" grep -q "winner" "$tmp/out"
check "conflicts shows the losing value" out_has "$loser"
run 1 "conflicts restore unknown" --dir "$A" conflicts restore 999
run 1 "conflicts restore not a number" --dir "$A" conflicts restore abc
run 2 "conflicts restore without id" --dir "$A" conflicts restore
run 0 "conflicts restore" --dir "$A" conflicts restore "$CID"
check "loser is current again" test "$("$KITH" --dir "$A" contact show "$ZED" --json | jq -r .phone)" = "$loser"
run 0 "conflicts after restore" --dir "$A" conflicts --json
check "no open conflict left" test "$(jq '.conflicts | length' "$tmp/out")" = 0
run 0 "conflicts --all" --dir "$A" conflicts --all --json
check "--all keeps the resolved record" test "$(jq '.conflicts[0].resolved' "$tmp/out")" = true
"$KITH" --dir "$A" bundle create -o "$tmp/a2.bundle" 2>/dev/null || true
run 0 "restore replicates" --dir "$B" bundle apply "$tmp/a2.bundle"
check "B has the restored value" test "$("$KITH" --dir "$B" contact show "$ZED" --json | jq -r .phone)" = "$loser"

# a delete concurrent with an edit: the edit wins, the document lives, a record says so
X=$("$KITH" --dir "$A" contact add --name "Xavier" 2>/dev/null) || true
"$KITH" --dir "$A" bundle create -o "$tmp/x1.bundle" 2>/dev/null || true
"$KITH" --dir "$B" bundle apply "$tmp/x1.bundle" >/dev/null 2>&1 || true
run 0 "delete on A" --dir "$A" contact rm "$X"
run 0 "concurrent edit on B" --dir "$B" contact set "$X" phone=5
"$KITH" --dir "$A" bundle create -o "$tmp/x2.bundle" 2>/dev/null || true
"$KITH" --dir "$B" bundle create -o "$tmp/x3.bundle" 2>/dev/null || true
run 0 "A gets the edit" --dir "$A" bundle apply "$tmp/x3.bundle"
run 0 "B gets the delete" --dir "$B" bundle apply "$tmp/x2.bundle"
run 0 "edited contact survives the delete" --dir "$A" contact show "$X" --json
check "it has the edit" test "$(jq -r .phone "$tmp/out")" = 5
run 0 "conflicts lists the overruled delete" --dir "$A" conflicts --json
check "overruled delete has field null" \
    test "$(jq --arg x "$X" '[.conflicts[] | select(.doc == $x and .field == null)] | length' "$tmp/out")" = 1
run 0 "conflicts human, overruled delete" --dir "$A" conflicts
check "says the delete was overruled" out_has "delete overruled by an edit"
"$KITH" --dir "$A" export >"$tmp/ea" || true
"$KITH" --dir "$B" export >"$tmp/eb" || true
same_export "converged after delete and edit" "$tmp/ea" "$tmp/eb"

# ---- verify --------------------------------------------------------------------------------------
run 0 "verify" --dir "$A" verify
check "verify says ok" out_has "^ok"
run 0 "verify --json" --dir "$A" verify --json
json_keys "verify --json" . ok commits_checked ops_checked signatures_checked problems first_problem
check "verify ok true" test "$(jq .ok "$tmp/out")" = true
# damage: flip the bytes of a value the log and the state both hold
D=$tmp/damaged
cp -r "$A" "$D"
offsets=$(grep -obaF "Zed Zimmer" "$D/data.mdb" | cut -d: -f1 || true)
check "found the value in data.mdb" test -n "$offsets"
for o in $offsets; do
    printf 'Q' | dd of="$D/data.mdb" bs=1 seek="$o" conv=notrunc status=none
done
run 1 "verify after a flipped byte" --dir "$D" verify
check "damage reported" err_has "damaged\|corrupt\|problem"
T=$tmp/truncated
cp -r "$A" "$T"
truncate -s 8192 "$T/data.mdb"
run 1 "verify after truncation" --dir "$T" verify

# ---- colour: never when not a terminal, never with NO_COLOR (CLI-8) ------------------------------
"$KITH" --dir "$A" contact ls >"$tmp/plain" 2>&1 || true
check "no escape codes into a pipe" bash -c "! grep -q $'\033' '$tmp/plain'"
# stored text cannot drive the terminal: control characters print as '?'
if "$KITH" --dir "$D2" init >/dev/null 2>&1 &&
    "$KITH" --dir "$D2" contact add --name $'Eve\033[2J\rx' >/dev/null 2>&1; then
    "$KITH" --dir "$D2" contact ls >"$tmp/plain" 2>&1 || true
    check "control characters in a name are filtered" \
        bash -c "! grep -q $'\033' '$tmp/plain' && grep -q 'Eve?\[2J?x' '$tmp/plain'"
    "$KITH" --dir "$D2" contact ls --json >"$tmp/out" 2>&1 || true
    check "JSON keeps the name exactly" test "$(jq -r '.contacts[0].name' "$tmp/out")" = $'Eve\033[2J\rx'
fi
if script -qec "true" /dev/null >/dev/null 2>&1; then
    script -qec "'$KITH' --dir '$A' contact ls" /dev/null >"$tmp/tty" 2>&1 || true
    check "colour on a terminal" grep -q $'\033' "$tmp/tty"
    NO_COLOR=1 script -qec "'$KITH' --dir '$A' contact ls" /dev/null >"$tmp/tty" 2>&1 || true
    check "NO_COLOR turns colour off" bash -c "! grep -q $'\033' '$tmp/tty'"
    script -qec "'$KITH' --dir '$A' bundle create" /dev/null >"$tmp/tty" 2>&1 && rc=0 || rc=$?
    check "bundle create refuses a terminal" grep -q "terminal" "$tmp/tty"
fi

# ---- sync and serve ------------------------------------------------------------------------------
run 2 "sync without endpoint" --dir "$A" sync
run 2 "sync bad timeout" --dir "$A" sync tcp://127.0.0.1:9 --timeout soon
run 2 "serve bad interval" --dir "$A" serve --interval never
run 2 "serve unknown option" --dir "$A" serve --bogus
run 2 "peers takes no operand" --dir "$A" peers x
"$KITH" --dir "$B" contact add --name "From B" >/dev/null || true
# B serves on a port the kernel picks ("*"), and says which in its log
listening_port() { # listening_port LOG : the port a daemon logged it listens on, after ≤ 10 s
    local p
    for _ in $(seq 1 100); do
        p=$(sed -n 's/.*listening on tcp:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1
    done
    return 1
}
"$KITH" --dir "$B" serve --listen "tcp://127.0.0.1:*" --interval 1h 2>"$tmp/serve.log" &
serve_pid=$!
port=$(listening_port "$tmp/serve.log") || { kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; serve_pid=""; port=9; }
check "kith serve starts" test -n "$serve_pid"
run 1 "sync to an address no trusted peer has" --dir "$A" sync "tcp://127.0.0.1:$port" --timeout 1s
check "sync says how to record the address" err_has "trust"
run 0 "record B's address" --dir "$A" trust "$B_PK" --addr "tcp://127.0.0.1:$port"
synced=0
for _ in $(seq 1 20); do
    if "$KITH" --dir "$A" sync "tcp://127.0.0.1:$port" --timeout 2s --json >"$tmp/out" 2>"$tmp/err"; then
        synced=1
        break
    fi
    [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
done
check "kith sync converges with a served replica" test "$synced" = 1
if [ "$synced" = 1 ]; then
    json_keys "sync --json" . peer endpoint ops_sent ops_received batches_sent batches_received converged
    "$KITH" --dir "$A" export >"$tmp/ea" || true
    "$KITH" --dir "$B" export >"$tmp/eb" || true
    same_export "synced replicas export the same bytes" "$tmp/ea" "$tmp/eb"
    "$KITH" --dir "$A" peers --json >"$tmp/out" || true
    check "peers records the last sync" \
        test "$(jq -r --arg b "$B_ID" '.peers[] | select(.id == $b) | .last_sync != null' "$tmp/out")" = true
    json_keys "peer element (schema)" '.peers[0]' schema_version schema_digest
    check "peers records the schema B told in the handshake" \
        test "$(jq -r --arg b "$B_ID" '.peers[] | select(.id == $b) | .schema_digest | length' "$tmp/out")" = 64
    "$KITH" --dir "$A" peers >"$tmp/out" || true
    check "peers table has a SCHEMA column" out_has "SCHEMA"
fi
"$KITH" --dir "$C" trust "$B_PK" --addr "tcp://127.0.0.1:$port" >/dev/null || true
snap "$C" c1
run 1 "sync refused by a replica that does not trust us" --dir "$C" sync "tcp://127.0.0.1:$port" --timeout 1s
same_snap "refused sync changes nothing" "$C" c1
[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
src=0
[ -n "$serve_pid" ] && { wait "$serve_pid" 2>/dev/null || src=$?; }
serve_pid=""
check "serve stops cleanly on SIGTERM (exit $src)" test "$src" = 0
run 1 "sync with nobody listening" --dir "$A" sync "tcp://127.0.0.1:$port" --timeout 1s
# --log-json: every line the daemon writes is a JSON object with a level and a message
"$KITH" --dir "$A" serve --listen "tcp://127.0.0.1:*" --log-json -v 2>"$tmp/serve.json" &
serve_pid=$!
listening_port "$tmp/serve.json" >/dev/null || true
kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
serve_pid=""
check "serve --log-json logs something" test -s "$tmp/serve.json"
check "serve --log-json lines are JSON" jq_ok 'has("level") and has("msg")' "$tmp/serve.json"

# ---- failing peers and held ops: new keys beside the old ones ------------------------------------
run 2 "serve --failing-after 0 is a usage error" --dir "$A" serve --failing-after 0
run 2 "serve --failing-after abc is a usage error" --dir "$A" serve --failing-after abc
"$KITH" help >"$tmp/out" 2>&1 || true
check "help lists --failing-after" out_has "--failing-after"
# B no longer answers: after KITH_FAILING_AFTER (5) failed syncs in a row, A shows it failing
for _ in 1 2 3 4 5; do
    "$KITH" --dir "$A" sync "tcp://127.0.0.1:$port" --timeout 200ms >/dev/null 2>&1 || true
done
run 0 "peers --json after failed syncs" --dir "$A" peers --json
json_keys "peer element (failing, held)" '.peers[0]' id pubkey name addr trusted forked acked \
    pending_ops last_sync failures last_error failing held_ops held_ahead_ms
check "B is failing after 5 failed syncs" \
    test "$(jq -r --arg b "$B_ID" '.peers[] | select(.id == $b) | .failing' "$tmp/out")" = true
check "a failing peer keeps its last error" \
    test "$(jq -r --arg b "$B_ID" '.peers[] | select(.id == $b) | .last_error != null' "$tmp/out")" = true
run 0 "peers shows failing" --dir "$A" peers
check "peers table says failing" out_has "failing"
run 0 "status shows failing" --dir "$A" status
check "status says FAILING" out_has "FAILING"
run 0 "status --json has holds" --dir "$A" status --json
json_keys "status --json (holds)" . pending_ops holds
json_keys "status --json (schema)" . schema_version schema_digest
check "status: nothing held" test "$(jq '.holds | length' "$tmp/out")" = 0
"$KITH" --dir "$B" bundle create -o "$tmp/held.bundle" 2>/dev/null || true
run 0 "bundle apply --json has holds" --dir "$A" bundle apply "$tmp/held.bundle" --json
json_keys "bundle apply --json (holds)" . ops_new ops_known ops_applied ops_pending conflicts holds

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
