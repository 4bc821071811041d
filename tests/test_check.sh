#!/usr/bin/env bash
# kith-check (spec/check.md) can pass and can fail: a short run of the normal build passes,
# with every check made; and the default run catches each deliberately broken library
# (KITH_CHECK_BREAK=merge: a wrong LWW rule; =ack: a commit acknowledged and lost), built in
# a scratch directory (only the library and kith-check); a seed replays its faults.
# proves CHECK-1 to CHECK-6
#   KITH_CHECK_TIME (default 20s) sets the normal run's length.
set -euo pipefail
build=${KITH_BUILD_DIR:?set by ctest}
src=${KITH_SOURCE_DIR:?set by ctest}
check=$build/kith-check
case "${KITH_SANITIZE:-OFF}" in ON|1|TRUE|on|true) sanitized=1 ;; *) sanitized=0 ;; esac
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAILED: $1"; }
field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2" | head -n 1; }

# usage errors are exit status 2, help is 0
set +e
"$check" --replicas 1 >/dev/null 2>&1; [ $? -eq 2 ] && ok "--replicas 1 is a usage error" ||
    bad "--replicas 1 is a usage error"
"$check" --time soon >/dev/null 2>&1; [ $? -eq 2 ] && ok "--time soon is a usage error" ||
    bad "--time soon is a usage error"
"$check" --help >/dev/null 2>&1; [ $? -eq 0 ] && ok "--help" || bad "--help"
set -e

# CHECK-1: the normal build passes a short run with every fault class of the default set
out=$("$check" --time "${KITH_CHECK_TIME:-20s}" --no-shrink --json) && rc=0 || rc=$?
echo "normal build: $out"
if [ "$rc" = 0 ] && grep -q '"verdict":"pass"' <<<"$out" &&
    [ "$(field acked_checked "$out")" -gt 0 ] && [ "$(field registers_checked "$out")" -gt 0 ]; then
    ok "normal build passes ($(field transactions "$out") transactions, converged in $(field converge_ms "$out") ms)"
else
    bad "normal build: exit $rc"
fi

# CHECK-6: a seed replays its schedule: the same faults drawn at the same transactions, with
# the same replicas (whether each could happen then, a writer still running or a daemon still
# down, and the counts timing decides, are the run's, not the schedule's)
schedule_of() { sed -n 's/.*"schedule":{\([^}]*\)}.*/\1/p' <<<"$1"; }
one=$("$check" --seed 4242 --ops 150 --replicas 3 --no-shrink --json) || true
two=$("$check" --seed 4242 --ops 150 --replicas 3 --no-shrink --json) || true
if [ -n "$(schedule_of "$one")" ] && [ "$(schedule_of "$one")" = "$(schedule_of "$two")" ] &&
    grep -q '"verdict":"pass"' <<<"$one" && grep -q '"verdict":"pass"' <<<"$two"; then
    ok "--seed 4242 --ops 150 replays the same schedule: $(schedule_of "$one")"
else
    bad "replay: $(schedule_of "$one") then $(schedule_of "$two")"
    echo "first:  $one"
    echo "second: $two"
fi

# installed with kith
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
[ -x "$tmp/prefix/bin/kith-check" ] && ok "kith-check installed" || bad "kith-check installed"

if [ "$sanitized" = 1 ]; then
    echo "break variants skipped under the sanitizers (the plain build's run covers them)"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
fi

# CHECK-2, CHECK-3: each break switch is caught by the default run (a fresh seed each time)
for b in merge ack; do
    dir=$build/check-break-$b
    if ! { cmake -S "$src" -B "$dir" -DKITH_CHECK_BREAK=$b -DKITH_TESTS=OFF \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$dir.log" 2>&1 &&
        cmake --build "$dir" --target kith_check -j "$(nproc)" >>"$dir.log" 2>&1; }; then
        tail -20 "$dir.log"
        bad "build with KITH_CHECK_BREAK=$b"
        continue
    fi
    out=$("$dir/kith-check" --no-shrink --json) && rc=0 || rc=$?
    echo "break=$b: $out"
    if [ "$rc" = 1 ] && grep -q '"verdict":"fail"' <<<"$out"; then
        ok "break=$b caught in $(field run_ms "$out") ms (seed $(field seed "$out"))"
    else
        bad "break=$b not caught: exit $rc"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
