#!/usr/bin/env bash
# Smoke test of build/kith-bench: every scenario runs at tiny sizes, exits 0, and prints its
# rows, in the table and as JSON lines. It asserts nothing about speed (a loaded CI machine
# would fail any such check); the figures themselves are bench/README.md's business.
set -euo pipefail
bench=${KITH_BENCH:-$(dirname "$0")/../build/kith-bench}
if [ ! -x "$bench" ]; then
    echo "test_bench: $bench is not built" >&2
    exit 1
fi
tmp=$(mktemp -d /tmp/kith-test-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

"$bench" --smoke --dir "$tmp" >"$tmp/table" 2>"$tmp/err" || {
    echo "test_bench: kith-bench --smoke failed" >&2
    cat "$tmp/err" "$tmp/table" >&2
    exit 1
}
# Every scenario's section and at least one row of each.
for section in "the machine" "core merge in memory" "durable apply" "local writes" \
               "two-peer sync" "change feed" "verification" "encode/decode" "scaling"; do
    grep -q "== $section" "$tmp/table" || { echo "test_bench: no section '$section'" >&2; exit 1; }
done
for row in lmdb.c1000.nosync lmdb.c1000.durable lmdb.one_txn.durable lmdb.c100.durable \
           lmdb.c1.durable blake2b.100B ed25519.verify zmq.push zmq.rtt cpu.lww_loop \
           merge.lww merge.orset merge.concurrent apply.durable apply.nosync \
           local.txn1.durable local.txn100.durable sync.push sync.pull sync.latency.p50 \
           sync.latency.p99 feed.latency.p50 feed.latency.p99 feed.read verify.c1 verify.c10 verify.c100 codec.decode.c1 batch.encode.c100 \
           scale.apply.flatness scale.sync.flatness; do
    grep -q "^$row " "$tmp/table" || { echo "test_bench: no row '$row'" >&2; cat "$tmp/table" >&2; exit 1; }
done
grep -q "== targets of issue #4" "$tmp/table" || { echo "test_bench: no targets summary" >&2; exit 1; }

# --json: every stdout line is one JSON object with a name; --only picks scenarios.
"$bench" --smoke --json --only codec --dir "$tmp" >"$tmp/json" 2>"$tmp/err"
lines=$(grep -c . "$tmp/json")
[ "$lines" -gt 10 ] || { echo "test_bench: only $lines JSON lines" >&2; exit 1; }
if grep -v '^{"' "$tmp/json" | grep -q .; then
    echo "test_bench: a --json line is not an object" >&2
    exit 1
fi
grep -q '"name":"codec.decode.c10"' "$tmp/json" || { echo "test_bench: no codec row in JSON" >&2; exit 1; }
if grep -q '"name":"merge.lww"' "$tmp/json"; then
    echo "test_bench: --only codec ran merge" >&2
    exit 1
fi

# Usage errors exit 2; the temporary directory is removed.
set +e
"$bench" --reps 0 >/dev/null 2>&1; [ $? -eq 2 ] || { echo "test_bench: --reps 0 not refused" >&2; exit 1; }
"$bench" --only nosuch >/dev/null 2>&1; [ $? -eq 2 ] || { echo "test_bench: --only nosuch not refused" >&2; exit 1; }
set -e
left=$(find "$tmp" -maxdepth 1 -name 'kith-bench.*' | wc -l)
[ "$left" -eq 0 ] || { echo "test_bench: $left temporary directories left behind" >&2; exit 1; }
echo "test_bench: ok"
