#!/usr/bin/python3
"""A Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14 heads, 2 KV heads, FFN 4864,
vocab 151936, tied; random weights from `s1c init`) loads with resident memory close to the
file size (weights are mmapped, not copied) and generates."""
import json, os, resource, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN, TMP = os.environ["S1C_BIN"], os.environ["S1C_TMP"]
out = os.path.join(TMP, "qwen05b")


for dtype in ("bf16", "f32"):
    d = f"{out}-{dtype}"
    r = subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "qwen2.5-0.5b", "--dtype", dtype, "--seed", "1", "--out", d],
                       capture_output=True, text=True)
    check(f"{dtype} init", r.returncode == 0, r.stderr)
    cfg = json.load(open(f"{d}/config.json"))
    check(f"{dtype} config", (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
                              cfg["intermediate_size"], cfg["vocab_size"], cfg["tie_word_embeddings"]) == (896, 24, 14, 2, 4864, 151936, True))
    size = os.path.getsize(f"{d}/model.safetensors")
    want_size = 494032768 * (2 if dtype == "bf16" else 4)
    check(f"{dtype} file size", abs(size - want_size) < 1 << 20, f"{size} vs {want_size}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([BIN, "generate", "--model", d, "--prompt-ids", "9707,11,1879,374", "--max-tokens", "3", "--json", "--ignore-eos"],
                       capture_output=True, text=True)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest child so far
    check(f"{dtype} generate", r.returncode == 0, r.stderr)
    if r.returncode == 0:
        obj = json.loads(r.stdout)
        check(f"{dtype} 3 tokens", len(obj["tokens"]) == 3 and all(0 <= t < 151936 for t in obj["tokens"]), str(obj["tokens"]))
        print(f"     {dtype}: file {size / 2**20:.0f} MiB, peak RSS {rss / 2**20:.0f} MiB, "
              f"prefill {obj['timings']['prefill_tok_s']:.2f} tok/s, decode {obj['timings']['decode_tok_s']:.2f} tok/s")
    # resident memory ~ the mapped file: at most 15 % + 96 MiB over it (activations, KV, logits)
    if before < rss:
        check(f"{dtype} RSS close to file size", 0.8 * size <= rss <= 1.15 * size + (96 << 20), f"RSS {rss} for a {size}-byte file")
    subprocess.run(["rm", "-rf", d])

finish()
