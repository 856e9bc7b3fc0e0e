#!/usr/bin/env bash
# Helper of test_convert_llamacpp.c: runs a REAL llama.cpp (../shared/tools/llama-ref) on a GGUF.
#
# usage: test_convert_llamacpp_run.sh make  OUTDIR          random tiny qwen2 F32 GGUF + its Q8_0/Q4_0/BF16, and Q4_K/Q6_K ones
#                                                          (requant_gguf.py) + prompt.txt, and S1C_Q4_K_M.gguf
#                                                          (`$S1C_BIN convert --type q4_k_m` of a 256-wide F32 model)
#        test_convert_llamacpp_run.sh make-q5x OUTDIR      (test_q5x_llamacpp) a random tiny qwen2 F32 GGUF (hidden 96,
#                                                          ffn 160: rows of 3 and 5 blocks of 32) + prompt.txt, its
#                                                          Q4_1/Q5_0/Q5_1 copies (requant_gguf.py), and S1C_Q5_K_M.gguf /
#                                                          S1C_Q4_K_M.gguf (`$S1C_BIN convert`: rows that are not whole
#                                                          256-blocks fall back to Q5_1 / Q5_0, the head to Q8_0)
#        test_convert_llamacpp_run.sh tokenize MODEL.gguf TEXTFILE OUT   llama.cpp's token ids
#        test_convert_llamacpp_run.sh greedy MODEL.gguf PROMPT_IDS OUTPREFIX N
#            writes OUTPREFIX.tokens (N greedy ids, one line) and OUTPREFIX.f32 (raw float32
#            [N, n_vocab], row i = logits for prompt + tokens[:i]); 2 threads, F32 KV cache
# Exit 77 when node/npm, /usr/bin/python3 + numpy or llama-ref are unavailable.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="${LLAMA_REF_TOOLS:-$HERE/../../../shared/tools/llama-ref}"
export LLAMA_REF_DIR="${LLAMA_REF_DIR:-/tmp/llama-ref}"
export GGUF_PY="$LLAMA_REF_DIR/gguf-py"
PY=/usr/bin/python3
skip() { echo "test_convert_llamacpp_run: SKIP: $*" >&2; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || skip "node/npm not found"
[ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null || skip "$PY with numpy not found"
[ -f "$TOOLS/setup.sh" ] && [ -f "$TOOLS/greedy.mjs" ] || skip "llama-ref tools not found in $TOOLS"
bash "$TOOLS/setup.sh" >/tmp/llama_ref_setup.$$.log 2>&1 || { tail -n 20 /tmp/llama_ref_setup.$$.log >&2; skip "llama-ref setup.sh failed"; }
rm -f /tmp/llama_ref_setup.$$.log
case "${1:-}" in
make)
    OUT=$2; mkdir -p "$OUT"
    "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$OUT/f32.gguf" --prompt-out "$OUT/prompt.txt" --n-prompt 16 >/dev/null
    for t in Q8_0 Q4_0 BF16; do "$PY" "$TOOLS/requant_gguf.py" "$OUT/f32.gguf" "$OUT/$t.gguf" "$t" >/dev/null; done
    # K-quants (what Ollama's Q4_K_M/Q6_K files hold): rows of 256, so a wider model
    for t in q4_k q6_k; do
        "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$OUT/${t^^}.gguf" --dtype "$t" --hidden 256 --ffn 512 >/dev/null
    done
    # s1c's own Q4_K_M (convert --type q4_k_m of an F32 file; ffn_down rows of 320 fall back to Q5_0/Q8_0)
    "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$OUT/f32_k.gguf" --hidden 256 --ffn 320 --layers 4 >/dev/null
    "${S1C_BIN:?S1C_BIN is not set}" convert "$OUT/f32_k.gguf" "$OUT/S1C_Q4_K_M.gguf" --type q4_k_m 2>/dev/null ;;
make-q5x)
    OUT=$2; mkdir -p "$OUT"
    "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$OUT/f32.gguf" --prompt-out "$OUT/prompt.txt" --n-prompt 16 \
        --hidden 96 --heads 3 --kv-heads 1 --ffn 160 --layers 3 --seed 4 >/dev/null
    for t in Q4_1 Q5_0 Q5_1; do "$PY" "$TOOLS/requant_gguf.py" "$OUT/f32.gguf" "$OUT/$t.gguf" "$t" >/dev/null; done
    for t in q5_k_m q4_k_m; do "${S1C_BIN:?S1C_BIN is not set}" convert "$OUT/f32.gguf" "$OUT/S1C_${t^^}.gguf" --type "$t" 2>/dev/null; done ;;
greedy)
    MODEL=$2 PROMPT=$3 PREFIX=$4 N=$5
    node "$TOOLS/greedy.mjs" "$MODEL" "$PROMPT" "$N" --ids --logits "$PREFIX.npy" --logits-steps "$N" --json > "$PREFIX.json"
    "$PY" - "$PREFIX" "$N" <<'PYEOF'
import json, sys, numpy as np
p, n = sys.argv[1], int(sys.argv[2])
g = json.load(open(p + ".json"))
lg = np.load(p + ".npy")
assert lg.dtype == np.float32 and lg.shape[0] == n == len(g["tokens"]), (lg.shape, g["tokens"])
lg.astype("<f4").tofile(p + ".f32")
open(p + ".tokens", "w").write(" ".join(map(str, g["tokens"])) + "\n")
PYEOF
    rm -f "$PREFIX.npy" ;;
tokenize)
    # llama.cpp's tokenizer on MODEL for TEXTFILE (special tokens parsed, no BOS) -> OUT (ids, one line)
    node "$TOOLS/tokenize.mjs" "$2" --special < "$3" > "$4" ;;
*) echo "usage: $0 make OUTDIR | make-q5x OUTDIR | greedy MODEL PROMPT_IDS OUTPREFIX N | tokenize MODEL TEXTFILE OUT" >&2; exit 2 ;;
esac
