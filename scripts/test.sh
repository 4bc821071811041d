#!/usr/bin/env bash
# The whole test suite: install what is missing, build with -Werror and run every test through
# ctest (Criterion), then a run of the convergence checker; then again with AddressSanitizer
# and UndefinedBehaviorSanitizer; then a short run of each fuzz target and a smoke run of the
# bench.
#   KITH_CASES=N scales the generated tests; KITH_SEED=S replays one seed.
#   KITH_SKIP_SANITIZE=1 skips the sanitizer pass (quick local runs).
#   KITH_CHECK_TIME=10m makes the convergence checker's run longer (default 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
scripts/check-banned.sh
scripts/check-format.sh

echo "== build (-Werror) =="
scripts/build.sh build -DKITH_WERROR=ON
echo "== tests =="
(cd build && ctest --output-on-failure -j "$jobs")

echo "== convergence check (KITH_CHECK_TIME=${KITH_CHECK_TIME:-30s}; longer: KITH_CHECK_TIME=10m) =="
build/kith-check --time "${KITH_CHECK_TIME:-30s}"

if [ "${KITH_SKIP_SANITIZE:-0}" != 1 ]; then
    echo "== build (ASan + UBSan) =="
    scripts/build.sh build-asan -DKITH_WERROR=ON -DKITH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    echo "== tests under ASan + UBSan =="
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j "$jobs")
fi

if ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
    echo "== fuzz (short runs) =="
    CC=clang scripts/build.sh build-fuzz -DKITH_FUZZ=ON -DKITH_TESTS=OFF
    for f in build-fuzz/fuzz_*; do
        name=$(basename "$f")
        corpus=tests/fuzz/corpus/${name#fuzz_}
        mkdir -p "build-fuzz/corpus-$name"
        args=("build-fuzz/corpus-$name")
        [ -d "$corpus" ] && args+=("$corpus")
        "$f" -max_total_time="${KITH_FUZZ_SECONDS:-20}" -rss_limit_mb=1024 -print_final_stats=0 \
            "${args[@]}" >"build-fuzz/$name.log" 2>&1 || { tail -40 "build-fuzz/$name.log"; exit 1; }
        echo "$name: $(grep -c . "build-fuzz/$name.log") log lines, no crash"
    done
fi

if [ -x build/kith-bench ]; then
    echo "== bench smoke (tiny sizes, asserts nothing about speed) =="
    build/kith-bench --smoke >/dev/null
    echo "bench smoke ok"
fi
echo "== all tests passed =="
