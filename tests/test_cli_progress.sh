#!/usr/bin/env bash
# The progress line and Ctrl-C of the long commands (spec/cli.md CLI-21, CLI-22): bundle
# create, bundle apply, verify and sync draw a line on stderr only when it is a terminal (a
# pty from script(1) here), never with --json, --quiet or TERM=dumb, and erase it before the
# result; NO_COLOR does not hide it. A SIGINT during `bundle apply` exits 130 with nothing
# applied, and the bundle applies in full afterwards; a SIGINT during a `sync` that waits for
# its peer ends it at once with 130.
#
# The SIGINT is made deterministic with a FIFO as the bundle: the writer's open returns only
# once kith has opened it for reading, inside kith_bundle_apply, after its handler is set;
# the signal goes to kith's process group (parent and child) before the bundle's bytes are
# written, so it is pending before the apply can begin, whatever the scheduling.
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-progress.XXXXXX)
bg_pid=""
cleanup() {
    if [ -n "$bg_pid" ]; then kill -INT -- "-$bg_pid" 2>/dev/null || true; wait "$bg_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
unset KITH_DIR XDG_DATA_HOME NO_COLOR
export HOME="$tmp/home" TERM=xterm
mkdir -p "$HOME"

pass=0 fail=0 skipped=0
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
# run EXPECTED_RC NAME ARGS... : run kith, stdout in $tmp/out and stderr in $tmp/err
run() {
    local want=$1 name=$2 rc=0
    shift 2
    "$KITH" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [ "$rc" = "$want" ]; then ok; else bad "$name (exit $rc, wanted $want)"; fi
}
jq_ok() { jq -e "$@" >/dev/null 2>&1; }
no_line() { ! grep -q -e "$1" -e $'\r' "$tmp/err"; }

A=$tmp/a B=$tmp/b
"$KITH" --dir "$A" init >/dev/null
"$KITH" --dir "$B" init >/dev/null
A_PK=$("$KITH" --dir "$A" id --json | jq -r .pubkey)
B_PK=$("$KITH" --dir "$B" id --json | jq -r .pubkey)
"$KITH" --dir "$A" trust "$B_PK" >/dev/null
"$KITH" --dir "$B" trust "$A_PK" >/dev/null
for i in $(seq 1 40); do "$KITH" --dir "$A" contact add --name "contact $i" >/dev/null; done
"$KITH" --dir "$A" bundle create -o "$tmp/a.bundle" 2>/dev/null

# ---- no terminal: no line (CLI-21) ---------------------------------------------------------------
run 0 "bundle create to a file" --dir "$A" bundle create -o "$tmp/x.bundle"
check "bundle create: no line when stderr is not a terminal" no_line "writing bundle"
check "bundle create: its note is still there" grep -q "80 ops in 40 commits" "$tmp/err"
run 0 "bundle create --quiet" --dir "$A" bundle create -o "$tmp/x.bundle" --quiet
check "bundle create --quiet: nothing on stderr" test ! -s "$tmp/err"
run 0 "verify, stderr a file" --dir "$A" verify
check "verify: no line when stderr is not a terminal" no_line "verifying"
run 0 "verify --json" --dir "$A" verify --json
check "verify --json: no line" no_line "verifying"
check "verify --json: JSON as before" jq_ok '.ok == true' "$tmp/out"
run 2 "verify takes --quiet, not --loud" --dir "$A" verify --loud

# ---- a terminal: the line, erased before the result (CLI-21) -----------------------------------
# tty NAME ENV... -- ARGS... : run kith with stderr (and stdout) on a pty; the bytes in $tmp/tty
tty() {
    local name=$1
    shift
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    local cmd
    cmd=$(printf '%q ' env "${envs[@]}" "$KITH" "$@")
    if script -qec "$cmd" /dev/null </dev/null >"$tmp/tty" 2>&1; then ok; else bad "$name (exit $?)"; fi
}
if command -v script >/dev/null && script -qec true /dev/null </dev/null >/dev/null 2>&1; then
    tty "verify on a terminal" TERM=xterm -- --dir "$A" verify
    check "verify: the line is drawn" grep -q $'\rverifying  ' "$tmp/tty"
    check "verify: with done / total and a percentage" grep -qE 'verifying  [0-9,]+ / 160 ops  [0-9]+%' "$tmp/tty"
    check "verify: erased before the result" grep -q $'\r\033\\[Kok: 40 commits' "$tmp/tty"
    tty "verify NO_COLOR" TERM=xterm NO_COLOR=1 -- --dir "$A" verify
    check "NO_COLOR keeps the line (it has no colour)" grep -q $'\rverifying  ' "$tmp/tty"
    tty "verify TERM=dumb" TERM=dumb -- --dir "$A" verify
    check "TERM=dumb: no line" bash -c "! grep -q verifying '$tmp/tty'"
    tty "verify --quiet" TERM=xterm -- --dir "$A" verify --quiet
    check "--quiet: no line" bash -c "! grep -q verifying '$tmp/tty'"
    check "--quiet: the result still" grep -q "ok: 40 commits" "$tmp/tty"
    tty "verify --json on a terminal" TERM=xterm -- --dir "$A" verify --json
    check "--json: no line" bash -c "! grep -q verifying '$tmp/tty'"
    tty "bundle create on a terminal" TERM=xterm -- --dir "$A" bundle create -o "$tmp/y.bundle"
    check "bundle create: the line" grep -q $'\rwriting bundle  ' "$tmp/tty"
    check "bundle create: erased before the note" grep -q $'\r\033\\[Kkith: bundle: 80 ops' "$tmp/tty"
    cp -r "$B" "$tmp/b2"
    tty "bundle apply on a terminal" TERM=xterm -- --dir "$tmp/b2" bundle apply "$tmp/a.bundle"
    check "bundle apply: the line" grep -q $'\rapplying bundle  ' "$tmp/tty"
    check "bundle apply: erased before the result" grep -q $'\r\033\\[K80 new ops' "$tmp/tty"
    tty "bundle apply --json on a terminal" TERM=xterm -- --dir "$tmp/b2" bundle apply "$tmp/a.bundle" --json
    check "bundle apply --json: no line" bash -c "! grep -q 'applying bundle' '$tmp/tty'"
else
    echo "skipped: script(1) cannot make a pty here; the terminal cases are not run"
    skipped=$((skipped + 1))
fi

# ---- Ctrl-C during bundle apply: exit 130, nothing applied (CLI-22) ------------------------------
"$KITH" --dir "$B" export >"$tmp/b.before"
mkfifo "$tmp/fifo"
set -m # kith in a process group of its own, and SIGINT not ignored as in a plain background job
"$KITH" --dir "$B" bundle apply "$tmp/fifo" >"$tmp/out" 2>"$tmp/err" &
bg_pid=$!
set +m
exec 3>"$tmp/fifo" # returns once kith opened it, inside the apply
kill -INT -- "-$bg_pid"
cat "$tmp/a.bundle" >&3
exec 3>&-
rc=0
wait "$bg_pid" || rc=$?
bg_pid=""
check "SIGINT: exit 130 (got $rc)" test "$rc" = 130
check "SIGINT: says it was cancelled" grep -q "bundle apply: cancelled; nothing was half-applied" "$tmp/err"
check "SIGINT: no result printed" test ! -s "$tmp/out"
"$KITH" --dir "$B" export >"$tmp/b.after"
check "SIGINT: the export is as it was" cmp -s "$tmp/b.before" "$tmp/b.after"
check "SIGINT: nothing logged" test "$("$KITH" --dir "$B" status --json | jq .ops_logged)" = 0
run 0 "then the bundle applies in full" --dir "$B" bundle apply "$tmp/a.bundle" --json
check "all 80 ops new" jq_ok '.ops_new == 80' "$tmp/out"
"$KITH" --dir "$A" export >"$tmp/a.export"
"$KITH" --dir "$B" export >"$tmp/b.export"
check "and the two converge" cmp -s "$tmp/a.export" "$tmp/b.export"
run 0 "verify after" --dir "$B" verify

# ---- Ctrl-C during a sync that waits: ends at once with 130 (CLI-22) -----------------------------
# A listener that accepts and never answers: the sync would wait out its 60 s timeout. That it
# accepted tells that kith is inside kith_sync, its SIGINT handler set.
if command -v python3 >/dev/null; then
    coproc LISTENER { python3 -u -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print(s.getsockname()[1])
c, _ = s.accept()
print("accepted")
sys.stdin.read()  # hold the connection open until told
'; }
    port=""
    read -r -t 30 port <&"${LISTENER[0]}" || true
    "$KITH" --dir "$B" trust "$A_PK" --addr "tcp://127.0.0.1:$port" >/dev/null
    start=$(date +%s)
    set -m
    "$KITH" --dir "$B" sync "tcp://127.0.0.1:$port" --timeout 60s >"$tmp/out" 2>"$tmp/err" &
    bg_pid=$!
    set +m
    line=""
    read -r -t 30 line <&"${LISTENER[0]}" || true
    check "sync: connected to the listener" test "$line" = accepted
    kill -INT -- "-$bg_pid"
    rc=0
    wait "$bg_pid" || rc=$?
    bg_pid=""
    exec {LISTENER[1]}>&-
    wait "$LISTENER_PID" || true
    check "sync SIGINT: exit 130 (got $rc)" test "$rc" = 130
    check "sync SIGINT: says so" grep -q "sync: cancelled; every batch applied is whole" "$tmp/err"
    check "sync SIGINT: long before the timeout" test $(($(date +%s) - start)) -lt 30
    "$KITH" --dir "$B" peers --json >"$tmp/out"
    check "sync SIGINT: the record says cancelled, no failure" \
        jq_ok '.peers[0].last_error == "cancelled by the caller" and .peers[0].failures == 0' "$tmp/out"
else
    echo "skipped: no python3 to listen for the sync case"
    skipped=$((skipped + 1))
fi

echo "$pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
