#!/usr/bin/env bash
# s1c and llama.cpp's llama-bench on the same GGUF files, in the same run, interleaved.
#
#   bench/side_by_side.sh [ROUNDS=3] [TYPES="f32 bf16 bf16exact q8_0 q4_0"]
#
# bf16: s1c's default arithmetic for BF16 (bf16 dot products on bf16-rounded activations where the
# CPU has AVX512_BF16: llama.cpp's arithmetic); bf16exact: the same file with S1C_BF16_MATH=exact
# (weights widened to f32, f32 activations). llama-bench runs once per file, so bf16exact is
# compared with bf16's run.
# Each round runs, for every type: `s1c bench --model FILE` (prefill of 512 tokens, decode of
# 128 after it, decode at 8K context, batched decode of 8 and 32 sequences, each also as a
# fraction of the machine limits it measures in the same invocation), then llama-bench on the
# same file (pp512 / tg128, 2 threads, F16 KV cache, no flash attention: shared/tools/llama-ref's
# bench.mjs). Rounds interleave the two programs so that load from other users of a shared
# machine falls on both; the summary prints medians over rounds and the ratios s1c / llama.cpp
# (prefill vs pp512, decode vs tg128). llama-bench also runs tg128 at depth 512 (`-d 512`: 128
# tokens decoded after a 512-token context, as s1c's decode is), the like-for-like decode figure.
#
# Needs: the s1c binary ($S1C, default build/s1c), shared/tools/llama-ref set up
# (`bash ../shared/tools/llama-ref/setup.sh`) and the 0.5B files in $LLAMA_REF_DIR/models
# (qwen05b-random-TYPE.gguf: make_models.sh, or tests/ref/make_random_qwen2_gguf.py with the
# 0.5B shape and --tied, then requant_gguf.py for Q8_0 / Q4_0).
# $S1C_KV_TYPE: s1c's KV cache type (auto by default, as s1c: bf16 for BF16/quantized files, f16 for them
# with S1C_ISA=avx2|avxvnni (the avx2 kernels), f32 for F32;
# f16 is llama-bench's cache type).
# $S1C_BASE: a second s1c binary (e.g. one built from an earlier commit), run in the same rounds
# for a before/after table.
# $S1C_ISA=avx2: both programs on their AVX2 code, as on a machine without AVX-512 (most laptops):
# s1c with S1C_KERNELS=avx2 S1C_AVXVNNI=0, llama-bench with llama.cpp's haswell CPU variant (AVX2,
# FMA, F16C), the only libggml-cpu-*.so in the folder it runs from; pp512 / tg128 then come from
# llama-bench itself rather than bench.mjs (node-llama-cpp picks its own variant).
# $S1C_ISA=avxvnni: the same with AVX-VNNI as well (Alder Lake and later Intel laptops): s1c with
# S1C_KERNELS=avx2 (its packed Q8_0/Q4_0 tiles then use vpdpbusd on ymm), llama.cpp's alderlake
# variant. Both need a CPU that has AVX-VNNI.
# Output: $OUT (default /tmp/s1c-side-by-side) holds s1c.jsonl, llama.jsonl (base.jsonl) and
# summary.txt.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ROUNDS="${1:-3}"
TYPES="${2:-f32 bf16 bf16exact q8_0 q4_0}"
S1C="${S1C:-$ROOT/build/s1c}"
export LLAMA_REF_DIR="${LLAMA_REF_DIR:-/tmp/llama-ref}"
REF="${LLAMA_REF_TOOLS:-$ROOT/../shared/tools/llama-ref}"
MODELS="$LLAMA_REF_DIR/models"
OUT="${OUT:-/tmp/s1c-side-by-side}"
WORK="${S1C_BENCH_WORKLOADS:-prefill,decode,decode_ctx8k,batch8,batch32}"
export S1C_THREADS="${S1C_THREADS:-2}"
KV="${S1C_KV_TYPE:-auto}"
LLAMA_BENCH="$LLAMA_REF_DIR/bin/llama-bench"
LLAMA_LIBS="$LLAMA_REF_DIR/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
ISA="${S1C_ISA:-native}"
# the CPU backend variants (libggml-cpu-*.so) are looked up in the folder llama-bench runs from
LLAMA_CWD="$LLAMA_LIBS"
if [ "$ISA" = avx2 ] || [ "$ISA" = avxvnni ]; then
    export S1C_KERNELS=avx2
    variant=alderlake
    if [ "$ISA" = avx2 ]; then export S1C_AVXVNNI=0; variant=haswell; fi
    LLAMA_CWD="$(mktemp -d)"
    trap 'rm -rf "$LLAMA_CWD"' EXIT
    ln -s "$LLAMA_LIBS/libggml-cpu-$variant.so" "$LLAMA_CWD/"
elif [ "$ISA" != native ]; then
    echo "side_by_side: S1C_ISA=$ISA: native, avx2 or avxvnni" >&2
    exit 1
fi

[ -x "$S1C" ] || { echo "side_by_side: no s1c binary at $S1C (build first, or set S1C)" >&2; exit 1; }
[ -f "$REF/bench.mjs" ] || { echo "side_by_side: no llama-ref tools at $REF" >&2; exit 1; }
file_of() { echo "$MODELS/qwen05b-random-${1%exact}.gguf"; }
for t in $TYPES; do
    [ -s "$(file_of "$t")" ] || { echo "side_by_side: missing $(file_of "$t")" >&2; exit 1; }
done
mkdir -p "$OUT"
: > "$OUT/s1c.jsonl"
: > "$OUT/llama.jsonl"
: > "$OUT/base.jsonl"
for r in $(seq 1 "$ROUNDS"); do
    for t in $TYPES; do
        f="$(file_of "$t")"
        math=
        [ "$t" = bf16exact ] && math=exact
        echo "round $r/$ROUNDS $t: s1c" >&2
        S1C_BF16_MATH=$math "$S1C" bench --model "$f" --only "$WORK" --repeats 1 --json --kv-type "$KV" 2>/dev/null |
            sed "s/^{/{\"round\":$r,\"file_type\":\"$t\",/" >> "$OUT/s1c.jsonl"
        [ "$t" = bf16exact ] && continue
        if [ -n "${S1C_BASE:-}" ]; then
            echo "round $r/$ROUNDS $t: s1c before ($S1C_BASE)" >&2
            "$S1C_BASE" bench --model "$f" --only "$WORK" --repeats 1 --json 2>/dev/null |
                sed "s/^{/{\"round\":$r,\"file_type\":\"$t\",/" >> "$OUT/base.jsonl"
        fi
        echo "round $r/$ROUNDS $t: llama-bench" >&2
        if [ "$ISA" != native ]; then
            (cd "$LLAMA_CWD" && "$LLAMA_BENCH" -m "$f" -t 2 -p 512 -n 128 -r 1 -fa 0 -ctk f16 -ctv f16 -o json 2>/dev/null) |
                python3 -c 'import json,sys; rs=json.load(sys.stdin); v=lambda k: [r["avg_ts"] for r in rs if r[k] > 0][0]
print(json.dumps({"round":int(sys.argv[1]),"file_type":sys.argv[2],"pp_tok_s":v("n_prompt"),"tg_tok_s":v("n_gen")}))' "$r" "$t" \
                >> "$OUT/llama.jsonl" || echo "side_by_side: llama-bench failed for $t" >&2
        else
            node "$REF/bench.mjs" "$f" --engine llama-bench --threads 2 --reps 1 2>/dev/null | tail -1 |
                sed "s/^{/{\"round\":$r,\"file_type\":\"$t\",/" >> "$OUT/llama.jsonl"
        fi
        echo "round $r/$ROUNDS $t: llama-bench tg128 at depth 512" >&2
        (cd "$LLAMA_CWD" && "$LLAMA_BENCH" -m "$f" -t 2 -p 0 -n 128 -d 512 -r 1 -fa 0 -ctk f16 -ctv f16 -o json 2>/dev/null) |
            python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; print(json.dumps({"round":int(sys.argv[1]),"file_type":sys.argv[2],"tg_d512_tok_s":r["avg_ts"]}))' "$r" "$t" \
            >> "$OUT/llama.jsonl" || echo "side_by_side: llama-bench -d 512 failed for $t" >&2
    done
done
python3 "$HERE/side_by_side_summary.py" "$OUT/s1c.jsonl" "$OUT/llama.jsonl" "$OUT/base.jsonl" | tee "$OUT/summary.txt"
