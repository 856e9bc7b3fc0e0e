#!/usr/bin/env bash
# Cross-check fixture from a REAL llama.cpp (prebuilt CPU build via node-llama-cpp, see
# shared/tools/llama-ref/README.md): a random tiny Qwen2 GGUF, a prompt, llama.cpp's 8 greedy
# tokens and its raw logits at those 8 positions.
#
# usage: bash tests/ref/llama_ref_qwen2.sh OUTDIR [--tied] [--seed N] [--dtype f32|bf16|f16]
#
# writes OUTDIR/
#   model.gguf          qwen2, hidden 64, 2 layers, 4 heads / 2 KV heads, FFN 128, vocab 512,
#                       q/k/v biases, output.weight unless --tied (tests/ref/make_random_qwen2_gguf.py)
#   prompt.txt          the prompt token ids, space separated, one line (no BOS)
#   greedy_tokens.txt   the 8 ids llama.cpp generated greedily after the prompt, one line
#   logits.f32          raw little-endian float32 [8, 512] row-major: row i = llama.cpp's logits at
#                       position len(prompt)-1+i, i.e. for the sequence prompt + greedy[:i]; its
#                       argmax is greedy[i] (checked here)
#   greedy.json         greedy.mjs --json output (versions, timings, top1 logits)
#   check.txt           llama.cpp vs shared/tools/llama-ref/np_forward.py (float64 numpy) on them
# llama.cpp runs with 2 threads, F32 KV cache, no flash attention. With F32 weights its logits
# match a float64 forward to ~1e-6 relative (checked below: fails above 1e-4); BF16/F16 weights
# differ by ~1e-3..1e-2 because llama.cpp rounds matmul inputs to the weight type.
#
# Exit 77 (skip) when node/npm, /usr/bin/python3 + numpy or the llama-ref tools are missing, or
# llama-ref's setup.sh fails (it installs to $LLAMA_REF_DIR, default /tmp/llama-ref, ~15 s once).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TOOLS="${LLAMA_REF_TOOLS:-$REPO/../shared/tools/llama-ref}"
export LLAMA_REF_DIR="${LLAMA_REF_DIR:-/tmp/llama-ref}"
export GGUF_PY="$LLAMA_REF_DIR/gguf-py"
PY=/usr/bin/python3
NGEN=8

skip() { echo "llama_ref_qwen2: SKIP: $*" >&2; exit 77; }
usage() { echo "usage: $0 OUTDIR [--tied] [--seed N] [--dtype f32|bf16|f16]" >&2; exit 2; }

[ $# -ge 1 ] || usage
OUT=$1; shift
GENARGS=()
DTYPE=f32
while [ $# -gt 0 ]; do
    case "$1" in
        --tied) GENARGS+=(--tied) ;;
        --seed|--dtype) [ $# -ge 2 ] || usage; GENARGS+=("$1" "$2"); [ "$1" = --dtype ] && DTYPE=$2; shift ;;
        *) usage ;;
    esac
    shift
done

command -v node >/dev/null && command -v npm >/dev/null || skip "node/npm not found"
[ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null || skip "$PY with numpy not found"
[ -f "$TOOLS/setup.sh" ] && [ -f "$TOOLS/greedy.mjs" ] || skip "llama-ref tools not found in $TOOLS"
mkdir -p "$OUT"
if ! bash "$TOOLS/setup.sh" >"$OUT/setup.log" 2>&1; then
    tail -n 20 "$OUT/setup.log" >&2
    skip "llama-ref setup.sh failed (log: $OUT/setup.log)"
fi

"$PY" "$HERE/make_random_qwen2_gguf.py" -o "$OUT/model.gguf" --prompt-out "$OUT/prompt.txt" --n-prompt 16 "${GENARGS[@]}"

node "$TOOLS/greedy.mjs" "$OUT/model.gguf" "$(cat "$OUT/prompt.txt")" "$NGEN" --ids \
    --logits "$OUT/logits.npy" --logits-steps "$NGEN" --json > "$OUT/greedy.json"

# .npy -> raw float32, ids -> text; check the rows are consistent with the greedy tokens.
"$PY" - "$OUT" "$NGEN" <<'EOF'
import json, sys, numpy as np
out, n = sys.argv[1], int(sys.argv[2])
g = json.load(open(f"{out}/greedy.json"))
prompt = [int(x) for x in open(f"{out}/prompt.txt").read().split()]
assert g["prompt_tokens"] == prompt, "greedy.mjs used a different prompt"
gen = g["tokens"]
lg = np.load(f"{out}/logits.npy")
assert lg.dtype == np.float32 and lg.shape[0] == n == len(gen), (lg.shape, gen)
assert (lg.argmax(-1) == np.array(gen)).all(), "logits argmax != greedy tokens"
lg.astype("<f4").tofile(f"{out}/logits.f32")
open(f"{out}/greedy_tokens.txt", "w").write(" ".join(map(str, gen)) + "\n")
EOF

# Independent float64 forward over prompt + greedy[:-1]; its last NGEN rows are llama.cpp's rows.
SEQ="$(cat "$OUT/prompt.txt") $(cut -d' ' -f1-$((NGEN - 1)) "$OUT/greedy_tokens.txt")"
"$PY" "$TOOLS/np_forward.py" "$OUT/model.gguf" --tokens "$SEQ" --out "$OUT/np_logits.npy" >/dev/null
"$PY" - "$OUT" "$NGEN" "$DTYPE" <<'EOF' | tee "$OUT/check.txt"
import sys, numpy as np
out, n, dtype = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ll = np.fromfile(f"{out}/logits.f32", "<f4").reshape(n, -1).astype(np.float64)
ref = np.load(f"{out}/np_logits.npy").astype(np.float64)[-n:]
d = np.abs(ll - ref).max(); rel = d / np.abs(ref).max()
print(f"llama_ref_qwen2: {out} ({dtype}): prompt {open(f'{out}/prompt.txt').read().strip()} -> greedy "
      f"{open(f'{out}/greedy_tokens.txt').read().strip()}; llama.cpp vs float64 numpy forward: "
      f"max|diff| {d:.2e}, rel {rel:.2e}, argmax equal {bool((ll.argmax(-1) == ref.argmax(-1)).all())}")
# F32 weights must agree tightly; BF16/F16 differ by ~1e-3 (llama.cpp rounds matmul inputs).
sys.exit(1 if dtype == "f32" and rel > 1e-4 else 0)
EOF
rm -f "$OUT/np_logits.npy" "$OUT/logits.npy"
