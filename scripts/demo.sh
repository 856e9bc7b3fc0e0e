#!/usr/bin/env bash
# The main job, for now: build s1c and tell a story with the shipped stories260K model
# (greedy, llama2.c's settings). `s1c demo` (the whole s1 recipe in miniature) replaces it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
M=../shared/data/models/stories260K
./build/s1c generate --model "$M/stories260K.bin" --tokenizer "$M/tok512.bin" \
    --prompt "${1:-Once upon a time}" --temperature 0 --steps 200
