#!/usr/bin/env bash
# The main job: build s1c and run `s1c demo` — the whole s1 recipe in miniature (synthetic pool
# with a teacher, curate, train, budget-forcing eval with baselines, report). Extra arguments go to
# s1c demo (e.g. --quick, --out DIR, --seed S, --from-scratch).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
./build/s1c demo "$@"
