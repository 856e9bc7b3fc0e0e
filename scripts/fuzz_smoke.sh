#!/usr/bin/env bash
# Fuzz smoke run: builds the libFuzzer targets (tests/fuzz) with clang + ASan/UBSan in a
# separate build folder, makes seed corpora from the shared stories260K model and from
# models written by `s1c init`, runs each fuzzer for FUZZ_SECONDS (default 30) and fails on
# any crash, leak, sanitizer report or timeout. One summary line per fuzzer.
#
#   scripts/fuzz_smoke.sh                 # 30 s per fuzzer
#   FUZZ_SECONDS=300 scripts/fuzz_smoke.sh
#
# Environment: FUZZ_SECONDS, FUZZ_BUILD_DIR (default build-fuzz), S1C_DATA (default
# ../shared/data next to the repository), FUZZ_MAX_LEN (largest generated input, default
# 65536: small inputs keep the run fast; the full-size seeds are also run once as they are).
# On a fresh Debian 12 run as root, missing tools (clang 14, its libFuzzer runtime, cmake,
# pkg-config, and the -dev packages of the libraries CMakeLists.txt asks pkg-config for)
# are installed with apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECS=${FUZZ_SECONDS:-30}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
DATA=${S1C_DATA:-$ROOT/../shared/data}
STORIES=$DATA/models/stories260K/stories260K.gguf
FUZZERS=(fuzz_gguf fuzz_safetensors fuzz_tokenizer_gguf fuzz_grade fuzz_bpe_roundtrip fuzz_pool fuzz_serve_request)

die() { echo "fuzz_smoke: $*" >&2; exit 1; }

# ------------------------------------------------------------------ tools

# True if clang can link a libFuzzer binary (clang present and its fuzzer runtime installed).
can_build_fuzzer() {
    local tmp
    tmp=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' >"$tmp/t.c"
    clang -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

# The pkg-config modules the top-level CMakeLists requires (libcjson, ...), and the Debian
# package of each: mostly the module name + "-dev".
pkg_modules() { sed -n 's/.*pkg_check_modules(.*IMPORTED_TARGET \([^ )]*\).*/\1/p' "$ROOT/CMakeLists.txt"; }
debian_dev_package() {
    case $1 in
    libpcre2-8) echo libpcre2-dev ;;
    *) echo "$1-dev" ;;
    esac
}

missing_modules() {
    local m
    for m in $(pkg_modules); do pkg-config --exists "$m" 2>/dev/null || echo "$m"; done
}

ensure_tools() {
    local have_all=1 m pkgs=(clang libclang-rt-14-dev cmake make pkg-config)
    command -v clang >/dev/null && can_build_fuzzer || have_all=0
    command -v cmake >/dev/null || have_all=0
    command -v pkg-config >/dev/null && [ -z "$(missing_modules)" ] || have_all=0
    [ "$have_all" = 1 ] && return 0
    for m in $(pkg_modules); do pkgs+=("$(debian_dev_package "$m")"); done
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "fuzz_smoke: installing ${pkgs[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    fi
    command -v clang >/dev/null || die "clang not found (Debian: apt-get install clang)"
    can_build_fuzzer || die "clang cannot link -fsanitize=fuzzer (Debian 12: apt-get install libclang-rt-14-dev)"
    command -v cmake >/dev/null || die "cmake not found"
    command -v pkg-config >/dev/null || die "pkg-config not found"
    [ -z "$(missing_modules)" ] || die "missing libraries: $(missing_modules | tr '\n' ' ')(Debian: apt-get install ${pkgs[*]})"
}

build() {
    mkdir -p "$BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DS1C_FUZZ=ON -DS1C_TESTS=OFF >"$BUILD/fuzz-configure.log" 2>&1 ||
        { cat "$BUILD/fuzz-configure.log" >&2; die "cmake configure failed"; }
    cmake --build "$BUILD" -j"$(nproc)" --target "${FUZZERS[@]}" s1c >"$BUILD/fuzz-build.log" 2>&1 ||
        { tail -40 "$BUILD/fuzz-build.log" >&2; die "build failed"; }
}

# ------------------------------------------------------------------ seeds

# Writes the 8-byte little-endian value $3 at byte offset $2 of file $1.
patch_u64() {
    local hex bytes="" i
    hex=$(printf '%016x' "$3")
    for i in 14 12 10 8 6 4 2 0; do bytes+="\\x${hex:$i:2}"; done
    printf "$bytes" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# Small GGUFs cut out of stories260K.gguf, so mutations start from inputs that parse: the
# full file is 1.2 MB, too slow to mutate. The offsets are those of that file (metadata ends
# at 11347, the first tensor info, token_embd.weight [512,64] f32, ends at 11404, data starts
# at 14176); they are checked before use.
make_gguf_seeds() {
    local dir=$1 meta=11347 info_end=11404 data=14176
    cp "$STORIES" "$dir/stories260K.gguf"
    chmod u+w "$dir/stories260K.gguf" # the shared copy may be read-only
    if [ "$(dd if="$STORIES" bs=1 skip=$((meta + 8)) count=17 status=none)" != token_embd.weight ]; then
        echo "fuzz_smoke: warning: $STORIES has an unexpected layout; using it as the only GGUF seed" >&2
        return 0
    fi
    # metadata (tokenizer included) and no tensors
    head -c $meta "$STORIES" >"$dir/meta_only.gguf"
    patch_u64 "$dir/meta_only.gguf" 8 0
    # one tensor, cut to 64 elements: n_tensors = 1, its outer dimension 512 -> 1
    local one=$dir/one_tensor.gguf
    head -c $info_end "$STORIES" >"$one"
    patch_u64 "$one" 8 1
    patch_u64 "$one" $((meta + 8 + 17 + 4 + 8)) 1
    head -c $(((info_end + 31) / 32 * 32 - info_end)) /dev/zero >>"$one" # pad to the 32-byte alignment
    dd if="$STORIES" bs=1 skip=$data count=256 status=none >>"$one"
    # the same tensor without the metadata: a 352-byte file where most mutations hit the
    # tensor info and the data
    local bare=$dir/tensor_only.gguf
    head -c 24 "$STORIES" >"$bare"
    patch_u64 "$bare" 8 1
    patch_u64 "$bare" 16 0
    tail -c +$((meta + 1)) "$one" | head -c $((info_end - meta)) >>"$bare" # the tensor info
    head -c $((96 - 24 - (info_end - meta))) /dev/zero >>"$bare"
    tail -c 256 "$one" >>"$bare"
}

make_st_seeds() {
    local dir=$1 tmp=$2
    "$BUILD/s1c" init --arch qwen2 --preset tiny --out "$tmp/qwen2_tiny" 2>/dev/null || die "s1c init (qwen2 tiny) failed"
    cp "$tmp/qwen2_tiny/model.safetensors" "$dir/qwen2_tiny.safetensors"
    # a few-KB model in each stored dtype, so mutations are cheap
    printf '%s\n' '{"model_type": "llama", "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,' \
        '"num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16, "tie_word_embeddings": false}' \
        >"$tmp/micro.json"
    local dt
    for dt in f32 bf16; do
        "$BUILD/s1c" init --config "$tmp/micro.json" --dtype $dt --out "$tmp/micro_$dt" 2>/dev/null ||
            die "s1c init ($tmp/micro.json, $dt) failed"
        cp "$tmp/micro_$dt/model.safetensors" "$dir/micro_$dt.safetensors"
    done
}

# Grader seeds: every labelled pair of the public grading data as gold NUL pred (the
# harness splits there), and every extraction text as it is.
make_grade_seeds() {
    local dir=$1
    /usr/bin/python3 - "$DATA/grading" "$dir" <<'PY' || die "cannot write the grader seeds"
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
k = 0
for name, fields in (("cases.jsonl", ("gold", "pred")), ("extraction.jsonl", ("text",))):
    for line in open(os.path.join(src, name), encoding="utf-8"):
        o = json.loads(line)
        data = b"\0".join(str(o[f]).encode() for f in fields)
        open(os.path.join(out, f"seed{k:04d}"), "wb").write(data)
        k += 1
PY
}

# Pool seeds: s1K-style lines (good and bad), teacher replies, the MSC list.
make_pool_seeds() {
    local dir=$1
    cp "$ROOT/data/msc/msc.json" "$dir/msc.json"
    printf '%s\n' '{"id":"a","question":"Find x if x^2 = 4. **5**","solution":"\\boxed{2}","source":"aime","thinking_trajectories":["step 1","step 2"],"attempt":"2"}' \
        '{"id":"a","question":"dup [asy] draw(); [/asy]"}' 'not json' '{"question":"Compute 2+2.","thinking_trajectories":"t"}' >"$dir/pool.jsonl"
    printf '%s' '<think>Let me see, 05 or 11</think>Code: 05' >"$dir/reply.txt"
    printf '%s\n' '{"id":1,"question":"caf\u00e9 p{i}. ![Image](x)","domain":"05","ref_correct":[false,true]}' >"$dir/pool2.jsonl"
}

# s1c serve request bodies: the first byte picks chat (even) or completions (odd), bit 1 a
# server-wide stop string, bit 2 budget forcing by default; the rest is the JSON body.
make_serve_seeds() {
    local dir=$1 k=0 b
    local bodies=(
        'h{"messages":[{"role":"user","content":"What is 2+2?"}],"max_tokens":8,"temperature":0}'
        'a{"prompt":"Once upon a time","max_tokens":5,"stream":true,"stream_options":{"include_usage":true},"logprobs":2,"echo":true}'
        'b{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":"<|im_start|>think\nx<|im_start|>answer\ny"},{"role":"user","content":"z"}],"n":3,"seed":7,"stop":["\n","END"]}'
        'f{"messages":[{"role":"user","content":"q"}],"max_thinking_tokens":500,"min_thinking_tokens":10,"num_waits":2,"wait_str":" Wait","answer_prefix":"So:","think_start":"<think>","think_end":"</think>","max_answer_tokens":20}'
        'd{"messages":[{"role":"developer","content":"q"}],"thinking_budget":5,"thinking_token_budget":5,"thinking":{"type":"enabled","budget_tokens":5},"num_ignore":1,"reasoning_effort":"high","logprobs":true,"top_logprobs":3}'
        'h{"messages":[{"role":"user","content":"q"}],"reasoning_budget_tokens":"auto","thinking_budget_tokens":"auto","thinking_n_ignore":2,"enable_thinking":false,"max_completion_tokens":9}'
        'c{"prompt":[[1,2,3],"two",[4]],"n":2,"top_p":0.5,"top_k":4,"min_p":0.1,"repetition_penalty":1.1,"stop":"x"}'
        'b{"messages":[{"role":"user","content":"\u00e9\ud83d\ude00<|im_end|>"}],"max_tokens":1e2,"temperature":2,"seed":-1}'
    )
    for b in "${bodies[@]}"; do printf '%s' "$b" >"$dir/seed$k.json"; k=$((k + 1)); done
}

# ------------------------------------------------------------------ running

# Runs one fuzzer over a fresh copy of its seeds; prints its summary line; returns non-zero
# on a crash (libFuzzer's exit status) and leaves the log and the crashing input behind.
run_fuzzer() {
    local name=$1 seeds=$2 out=$BUILD/fuzz-out/$1
    local bin=$BUILD/tests/fuzz/$name
    rm -rf "$out"
    mkdir -p "$out/corpus" "$out/artifacts"
    cp "$seeds"/* "$out/corpus/"
    # every seed once at full size (the corpus run below may cut them to MAX_LEN)
    if ! "$bin" "$seeds"/* >"$out/seeds.log" 2>&1; then
        echo "$name: CRASH on a seed input; see $out/seeds.log"
        return 1
    fi
    local rc=0
    "$bin" "$out/corpus" -max_total_time="$SECS" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/" >"$out/fuzz.log" 2>&1 || rc=$?
    local execs rate
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/fuzz.log" | tail -1)
    if [ "$rc" != 0 ]; then
        echo "$name: CRASH (exit $rc) after ${execs:-?} execs; input and log in $out"
        grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$out/fuzz.log" || true
        return 1
    fi
    echo "$name: ok, ${execs:-?} execs in ${SECS} s (${rate:-?} exec/s), corpus $(ls "$out/corpus" | wc -l) inputs"
}

main() {
    [ -f "$STORIES" ] || die "$STORIES not found (set S1C_DATA to the shared data folder)"
    ensure_tools
    build
    local seeds=$BUILD/fuzz-seeds
    rm -rf "$seeds"
    mkdir -p "$seeds/gguf" "$seeds/safetensors" "$seeds/grade" "$seeds/pool" "$seeds/serve" "$seeds/tmp"
    make_gguf_seeds "$seeds/gguf"
    make_st_seeds "$seeds/safetensors" "$seeds/tmp"
    make_grade_seeds "$seeds/grade"
    make_pool_seeds "$seeds/pool"
    make_serve_seeds "$seeds/serve"
    local failed=0
    run_fuzzer fuzz_gguf "$seeds/gguf" || failed=1
    run_fuzzer fuzz_safetensors "$seeds/safetensors" || failed=1
    run_fuzzer fuzz_tokenizer_gguf "$seeds/gguf" || failed=1
    run_fuzzer fuzz_grade "$seeds/grade" || failed=1
    S1C_DATA=$DATA run_fuzzer fuzz_bpe_roundtrip "$seeds/grade" || failed=1 # answers and texts: mixed-script seeds
    run_fuzzer fuzz_pool "$seeds/pool" || failed=1
    S1C_DATA=$DATA run_fuzzer fuzz_serve_request "$seeds/serve" || failed=1
    [ "$failed" = 0 ] || die "at least one fuzzer crashed"
}

main "$@"
