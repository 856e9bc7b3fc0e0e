#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   1. installs missing Debian packages
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build, runs the `unit` and `ref` tests
#   3. libFuzzer smoke runs of the file parsers (FUZZ_SECONDS each, default 30)
#   4. Release build, runs every test (unit, ref, slow); its CTest summary ends the output
# Environment: JOBS (build parallelism), FUZZ_SECONDS, S1C_SKIP_ASAN=1, S1C_SKIP_FUZZ=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh test
JOBS="${JOBS:-$(nproc)}"
export OMP_WAIT_POLICY=PASSIVE

if [ "${S1C_SKIP_ASAN:-0}" != 1 ]; then
    echo "== sanitizer build (ASan + UBSan): unit and ref tests"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DS1C_SANITIZE=ON >/dev/null
    cmake --build build-asan -j "$JOBS" >/dev/null
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest -L 'unit|ref' --output-on-failure -j 2)
fi

if [ "${S1C_SKIP_FUZZ:-0}" != 1 ]; then
    echo "== fuzz smoke (${FUZZ_SECONDS:-30} s per parser)"
    bash scripts/fuzz_smoke.sh
fi

echo "== release build: all tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS" >/dev/null
cd build && ctest --output-on-failure
