#!/usr/bin/env bash
# Helper of test_q5x_llamacpp.c: the fixtures for a REAL llama.cpp (../shared/tools/llama-ref).
#
# usage: test_q5x_llamacpp_run.sh make OUTDIR
#   a random tiny qwen2 F32 GGUF (hidden 96, ffn 160: rows of 3 and 5 blocks of 32) + prompt.txt,
#   its Q4_1 / Q5_0 / Q5_1 copies written by llama.cpp's gguf-py (requant_gguf.py), and
#   S1C_Q5_K_M.gguf / S1C_Q4_K_M.gguf (`$S1C_BIN convert --type q5_k_m / q4_k_m` of it: rows that are
#   not whole 256-blocks fall back to Q5_1 / Q5_0, the head to Q8_0).
# llama.cpp's greedy logits come from test_convert_llamacpp_run.sh greedy.
# Exit 77 when node/npm, /usr/bin/python3 + numpy or llama-ref are unavailable.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="${LLAMA_REF_TOOLS:-$HERE/../../../shared/tools/llama-ref}"
export LLAMA_REF_DIR="${LLAMA_REF_DIR:-/tmp/llama-ref}"
export GGUF_PY="$LLAMA_REF_DIR/gguf-py"
PY=/usr/bin/python3
skip() { echo "test_q5x_llamacpp_run: SKIP: $*" >&2; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || skip "node/npm not found"
[ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null || skip "$PY with numpy not found"
[ -f "$TOOLS/setup.sh" ] && [ -f "$TOOLS/requant_gguf.py" ] || skip "llama-ref tools not found in $TOOLS"
bash "$TOOLS/setup.sh" >/tmp/llama_ref_setup.$$.log 2>&1 || { tail -n 20 /tmp/llama_ref_setup.$$.log >&2; skip "llama-ref setup.sh failed"; }
rm -f /tmp/llama_ref_setup.$$.log
case "${1:-}" in
make)
    OUT=$2; mkdir -p "$OUT"
    "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$OUT/f32.gguf" --prompt-out "$OUT/prompt.txt" --n-prompt 16 \
        --hidden 96 --heads 3 --kv-heads 1 --ffn 160 --layers 3 --seed 4 >/dev/null
    for t in Q4_1 Q5_0 Q5_1; do "$PY" "$TOOLS/requant_gguf.py" "$OUT/f32.gguf" "$OUT/$t.gguf" "$t" >/dev/null; done
    for t in q5_k_m q4_k_m; do "${S1C_BIN:?S1C_BIN is not set}" convert "$OUT/f32.gguf" "$OUT/S1C_${t^^}.gguf" --type "$t" 2>/dev/null; done ;;
*) echo "usage: $0 make OUTDIR" >&2; exit 2 ;;
esac
