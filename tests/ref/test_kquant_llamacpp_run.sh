#!/usr/bin/env bash
# Helper of test_kquant_llamacpp.c: llama.cpp's OWN quantization code (the prebuilt libggml-base /
# libllama of ../shared/tools/llama-ref), driven by kq_llamacpp_harness.c.
#
# usage: test_kquant_llamacpp_run.sh build OUTDIR      compiles OUTDIR/kq_harness against llama-ref
#        test_kquant_llamacpp_run.sh models OUTDIR     random F32 qwen2 GGUFs (gguf-py):
#            a.gguf  hidden 256, 8 layers, FFN 320 (ffn_down rows of 320: not a multiple of 256), untied
#            b.gguf  hidden 80, 3 layers, FFN 256, tied (rows of 80: not even a multiple of 32)
#            c.gguf  hidden 64, 80 layers (llama.cpp's 70B rule); d.gguf the same shape as llama
#            (s1c init + s1c convert; needs $S1C_BIN)
#        test_kquant_llamacpp_run.sh rows HARNESS TYPE N_PER_ROW IN.f32 OUT.q OUT.deq
#        test_kquant_llamacpp_run.sh quantize HARNESS FTYPE IN.gguf OUT.gguf   (llama_model_quantize)
# Exit 77 when gcc, /usr/bin/python3 + numpy or llama-ref are unavailable.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS="${LLAMA_REF_TOOLS:-$HERE/../../../shared/tools/llama-ref}"
export LLAMA_REF_DIR="${LLAMA_REF_DIR:-/tmp/llama-ref}"
export GGUF_PY="$LLAMA_REF_DIR/gguf-py"
BINS="$LLAMA_REF_DIR/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
SRC="$LLAMA_REF_DIR/llama.cpp-src"
PY=/usr/bin/python3
skip() { echo "test_kquant_llamacpp_run: SKIP: $*" >&2; exit 77; }
case "${1:-}" in
build)
    command -v gcc >/dev/null || skip "gcc not found"
    if [ -f "$TOOLS/setup.sh" ] && command -v npm >/dev/null; then
        LLAMA_REF_NO_BENCH=1 bash "$TOOLS/setup.sh" >/tmp/kq_setup.$$.log 2>&1 || { tail -n 20 /tmp/kq_setup.$$.log >&2; rm -f /tmp/kq_setup.$$.log; skip "llama-ref setup.sh failed"; }
        rm -f /tmp/kq_setup.$$.log
    fi
    [ -f "$BINS/libggml-base.so" ] && [ -f "$BINS/libllama.v0.5.0.so" ] || skip "llama-ref libraries not found in $BINS"
    [ -f "$SRC/include/llama.h" ] && [ -f "$SRC/ggml/include/ggml.h" ] || skip "llama.cpp headers not found in $SRC"
    mkdir -p "$2"
    gcc -O2 -I"$SRC/include" -I"$SRC/ggml/include" "$HERE/kq_llamacpp_harness.c" -o "$2/kq_harness" \
        -L"$BINS" -l:libllama.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$BINS" ;;
models)
    [ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null || skip "$PY with numpy not found"
    [ -d "$GGUF_PY" ] || skip "gguf-py not found in $GGUF_PY"
    mkdir -p "$2"
    "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$2/a.gguf" --hidden 256 --layers 8 --heads 4 --kv-heads 2 --ffn 320 --seed 1 >/dev/null
    "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$2/b.gguf" --hidden 80 --layers 3 --heads 4 --kv-heads 2 --ffn 256 --tied --seed 2 >/dev/null
    # 80 layers: llama.cpp's "70B" rule (attn_v one step up); rows of 64, so the K-quants fall back
    "$PY" "$HERE/make_random_qwen2_gguf.py" -o "$2/c.gguf" --hidden 64 --layers 80 --heads 4 --kv-heads 2 --ffn 128 --seed 3 >/dev/null
    # a llama model (grouped KV heads, 80 layers), as s1c writes it to F32 GGUF
    rm -rf "$2/d_hf" && mkdir -p "$2/d_hf"
    cat > "$2/d_hf/config.json" <<'JSON'
{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
 "num_hidden_layers": 80, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
 "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false}
JSON
    "$S1C_BIN" init --arch llama --config "$2/d_hf/config.json" --seed 4 --out "$2/d_hf" >/dev/null 2>&1
    "$S1C_BIN" convert "$2/d_hf" "$2/d.gguf" --type f32 >/dev/null 2>&1 ;;
rows) "$2" rows "$3" "$4" "$5" "$6" "$7" ;;
quantize) "$2" model "$3" "$4" "$5" ;;
*) echo "usage: $0 build OUTDIR | models OUTDIR | rows HARNESS TYPE N IN OUTQ OUTDEQ | quantize HARNESS FTYPE IN OUT" >&2; exit 2 ;;
esac
