#!/usr/bin/env bash
# `kith watch` end to end (spec/cli.md CLI-18, CLI-19; spec/storage.md FEED-n), with real
# processes: A watches a replica while B, other processes, write to it; A is killed (SIGKILL,
# as a crash) partway and restarted with --since and the last cursor it printed; every commit
# then appears exactly once, in order, as the feed of the whole replica lists it. The same
# with a daemon (`kith serve` on 127.0.0.1, port "*") applying what another replica syncs into
# it: A sees the daemon's applies, as remote commits of the right origin. Also: the text
# form, --no-follow, stopping cleanly on SIGTERM and SIGINT (exit 0), and on a reader that
# goes away (EPIPE, or a pipe closed while idle).
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v jq >/dev/null || { echo "jq is needed (scripts/deps.sh installs it)"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-watch.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
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
}
check() { # check NAME CONDITION-COMMAND...
    local name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}
# wait_for SECONDS COMMAND... : until COMMAND succeeds, for at most SECONDS
wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.05
    done
}
# The complete JSON lines of a watch's output (a line cut short by SIGKILL is left out).
good_lines() { jq -R -c 'fromjson? // empty' "$1" 2>/dev/null; }
count_good() { good_lines "$1" | grep -c . || true; }
has_lines() { [ "$(count_good "$1")" -ge "$2" ]; }
last_cursor() { good_lines "$1" | tail -n 1 | jq -r .cursor; }
end_cursor() { "$KITH" --dir "$1" watch --since 0 --no-follow --json | tail -n 1 | jq -r '.cursor // 0'; }
jq_ok() { jq -e "$@" >/dev/null 2>&1; }
has_text() { grep -qs . "$1"; }
reached() { [ "$(last_cursor "$1")" = "$2" ]; }
stopped=0
stop() { # stop SIGNAL PID : stop the process and wait for it; its exit status in $stopped
    stopped=0
    kill "-$1" "$2" 2>/dev/null || true
    wait "$2" 2>/dev/null || stopped=$?
}

R=$tmp/r
"$KITH" --dir "$R" init >/dev/null
R_ID=$("$KITH" --dir "$R" id --json | jq -r .id)

# ---- the command line -------------------------------------------------------------------------
"$KITH" help watch >"$tmp/out"
check "help watch prints its usage" grep -q "usage: kith watch" "$tmp/out"
rc=0; "$KITH" --dir "$R" watch --since abc 2>/dev/null || rc=$?
check "a bad --since is a usage error (exit $rc)" test "$rc" = 2
rc=0; "$KITH" --dir "$R" watch --since 99 2>"$tmp/err" || rc=$?
check "a cursor past the end is exit 1 (exit $rc)" test "$rc" = 1
check "and says so" grep -q "past" "$tmp/err"
rc=0; "$KITH" --dir "$tmp/none" watch 2>/dev/null || rc=$?
check "no replica is exit 1" test "$rc" = 1
"$KITH" --dir "$R" watch --since 0 --no-follow >"$tmp/out"
check "--no-follow on an empty replica prints nothing" test ! -s "$tmp/out"

# ---- A watches, B writes, A is killed and restarted ---------------------------------------------
"$KITH" --dir "$R" watch --json --since 0 >"$tmp/a1" 2>"$tmp/a1.err" &
a1=$!
pids+=("$a1")
# B: separate processes, one commit each (creations, edits, tags, a batch of fields)
(
    ids=("$("$KITH" --dir "$R" contact add --name c1)" "$("$KITH" --dir "$R" contact add --name c2)")
    for i in $(seq 3 40); do
        case $((i % 4)) in
        0 | 1) ids+=("$("$KITH" --dir "$R" contact add --name "c$i")") ;;
        2) "$KITH" --dir "$R" contact set "${ids[0]}" phone="p$i" notes="n$i" ;;
        3) "$KITH" --dir "$R" contact tag "${ids[1]}" "+t$i" ;;
        esac
    done
) >/dev/null 2>"$tmp/b.err" &
b=$!
pids+=("$b")
check "A sees B's first commits" wait_for 30 has_lines "$tmp/a1" 10
stop KILL "$a1"
check "A is killed (SIGKILL) (exit $stopped)" test "$stopped" = 137
since=$(last_cursor "$tmp/a1")
check "A printed a cursor to resume from ($since)" test -n "$since"
"$KITH" --dir "$R" watch --json --since "$since" >"$tmp/a2" 2>"$tmp/a2.err" &
a2=$!
pids+=("$a2")
brc=0
wait "$b" || brc=$?
check "B wrote its 40 commits (exit $brc)" test "$brc" = 0
end=$(end_cursor "$R")
check "the replica holds 40 commits ($end)" test "$end" = 40
check "restarted A catches up" wait_for 30 reached "$tmp/a2" "$end"
stop TERM "$a2"
check "A stops on SIGTERM with exit 0 (exit $stopped)" test "$stopped" = 0
"$KITH" --dir "$R" watch --since 0 --no-follow --json >"$tmp/ref"
{ good_lines "$tmp/a1"; good_lines "$tmp/a2"; } >"$tmp/seen"
same_lines() { # same_lines NAME SEEN REF : equal, else show where they differ
    if cmp -s "$2" "$3"; then ok; else
        bad "$1"
        diff <(jq -c '[.cursor, .first_seq]' "$2") <(jq -c '[.cursor, .first_seq]' "$3") | head -5 | sed 's/^/    /'
    fi
}
same_lines "every commit exactly once, in order, across the restart" "$tmp/seen" "$tmp/ref"
check "cursors 1..40" test "$(jq -r .cursor "$tmp/seen" | tr '\n' ' ')" = "$(seq -s ' ' 1 40) "
check "all local, of this replica" test "$(jq -r '[.source, .origin] | join(" ")' "$tmp/seen" | sort -u)" = "local $R_ID"
check "each line has the documented keys" \
    jq_ok -s 'all(.[]; has("cursor") and has("source") and has("origin") and has("first_seq")
                      and has("last_seq") and has("hlc") and has("time") and has("docs")
                      and (.docs | all(.[]; has("collection") and has("doc") and has("created")
                                          and has("deleted") and has("fields"))))' "$tmp/seen"
check "a tag edit lists the tags field" jq_ok -s 'any(.[]; .docs[0].fields == ["tags"])' "$tmp/seen"
check "two fields in one commit are one event" jq_ok -s 'any(.[]; .docs[0].fields == ["notes", "phone"])' "$tmp/seen"

# ---- the text form, --no-follow, and stopping -------------------------------------------------
"$KITH" --dir "$R" watch --since 38 --no-follow >"$tmp/out"
check "text: one line per document after the cursor" test "$(grep -c . "$tmp/out")" = 2
check "text: cursor source origin collection doc what fields" \
    grep -qE "^39 local $R_ID contacts [0-9a-f]{32} (created|changed) [a-z,]+\$" "$tmp/out"
"$KITH" --dir "$R" watch --since 0 2>"$tmp/err" | head -n 1 >"$tmp/out"
check "a reader that stops reading ends watch (EPIPE), exit 0" test "${PIPESTATUS[0]}" = 0
check "nothing said on stderr after EPIPE" test ! -s "$tmp/err"
rm -f "$tmp/idle.rc"
("$KITH" --dir "$R" watch 2>/dev/null; echo $? >"$tmp/idle.rc") | true
check "a pipe closed while idle ends watch" wait_for 10 test -s "$tmp/idle.rc"
check "... with exit 0" test "$(cat "$tmp/idle.rc" 2>/dev/null)" = 0
"$KITH" --dir "$R" watch --since 0 >"$tmp/int" &
w=$!
pids+=("$w")
check "a watcher to interrupt prints the backlog" wait_for 30 has_text "$tmp/int"
stop INT "$w"
check "watch stops on SIGINT with exit 0 (exit $stopped)" test "$stopped" = 0

# ---- the daemon applies, A watches ------------------------------------------------------------
D=$tmp/d E=$tmp/e
"$KITH" --dir "$D" init >/dev/null
"$KITH" --dir "$E" init >/dev/null
D_PK=$("$KITH" --dir "$D" id --json | jq -r .pubkey)
E_PK=$("$KITH" --dir "$E" id --json | jq -r .pubkey)
E_ID=$("$KITH" --dir "$E" id --json | jq -r .id)
"$KITH" --dir "$D" trust "$E_PK" --name e >/dev/null
"$KITH" --dir "$D" contact add --name "d's own" >/dev/null
listening_port() { # listening_port LOG : the port a daemon logged it listens on, after ≤ 10 s
    local p
    for _ in $(seq 1 200); do
        p=$(sed -n 's/.*listening on tcp:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.05
    done
    return 1
}
"$KITH" --dir "$D" serve --listen "tcp://127.0.0.1:*" --interval 1h 2>"$tmp/serve.log" &
serve=$!
pids+=("$serve")
port=$(listening_port "$tmp/serve.log") || port=""
check "the daemon listens" test -n "$port"
"$KITH" --dir "$E" trust "$D_PK" --name d --addr "tcp://127.0.0.1:$port" >/dev/null
"$KITH" --dir "$D" watch --json --since 0 >"$tmp/d1" 2>/dev/null &
d1=$!
pids+=("$d1")
check "A sees d's own commit" wait_for 30 has_lines "$tmp/d1" 1
push() { # E writes one commit and syncs it into D's daemon
    "$KITH" --dir "$E" contact add --name "$1" >/dev/null
    "$KITH" --dir "$E" sync "tcp://127.0.0.1:$port" --timeout 10s >/dev/null 2>>"$tmp/sync.err"
}
synced=0
for i in $(seq 1 10); do push "e$i" && synced=$((synced + 1)); done
check "A sees the daemon's first applies" wait_for 30 has_lines "$tmp/d1" 6
stop KILL "$d1"
check "A is killed (SIGKILL) while syncs go on (exit $stopped)" test "$stopped" = 137
since=$(last_cursor "$tmp/d1")
for i in $(seq 11 20); do push "e$i" && synced=$((synced + 1)); done
"$KITH" --dir "$D" watch --json --since "$since" >"$tmp/d2" 2>/dev/null &
d2=$!
pids+=("$d2")
for i in $(seq 21 25); do push "e$i" && synced=$((synced + 1)); done
check "25 syncs went through ($synced)" test "$synced" = 25
end=$(end_cursor "$D")
check "D applied d's commit and E's 25 ($end)" test "$end" = 26
check "restarted A catches up with the daemon" wait_for 30 reached "$tmp/d2" "$end"
stop TERM "$d2"
check "A stops on SIGTERM with exit 0 (daemon) (exit $stopped)" test "$stopped" = 0
stop TERM "$serve"
check "the daemon stops cleanly (exit $stopped)" test "$stopped" = 0
"$KITH" --dir "$D" watch --since 0 --no-follow --json >"$tmp/ref"
{ good_lines "$tmp/d1"; good_lines "$tmp/d2"; } >"$tmp/seen"
same_lines "every apply exactly once, in order, across the restart" "$tmp/seen" "$tmp/ref"
check "the daemon's applies are remote, of E" \
    test "$(jq -r 'select(.cursor > 1) | [.source, .origin] | join(" ")' "$tmp/seen" | sort -u)" = "remote $E_ID"
check "E's commits in E's seq order" \
    test "$(jq -r 'select(.cursor > 1) | .first_seq' "$tmp/seen" | tr '\n' ' ')" = "$(seq -s ' ' 1 2 49) "

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
