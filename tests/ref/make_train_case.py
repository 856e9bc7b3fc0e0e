#!/usr/bin/python3
"""Tiny random HF models and training batches for the trainer's reference tests.

  make_train_case.py --out DIR [--seed S]
writes DIR/<model>/{config.json,model.safetensors} for every entry of MODELS and
DIR/<model>/{batch.json,packed.json,steps.json,long.json} (see train_ref.py for the formats).

Weights are F32 with std ~0.1-0.35 (embeddings 2/sqrt(hidden), q/k 1.5/sqrt(fan_in), norms
1 + 0.1 N(0,1), biases 0.1 N(0,1)) so that activations are O(1), attention is visibly non-uniform
and no gradient is vanishingly small.
Batches: rows of different lengths, prompt masks (-100 at the start), padding (pad token, -100 at
the end), packed rows with `seg` (segments with their own masks, a segment without any target, a
padding segment) and a row without any target at all.
"""
import argparse, json, math, os, random, shutil, subprocess, sys
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_ref import write_safetensors  # noqa: E402

# name: (arch, hidden, layers, heads, kv heads, ffn, vocab, tied)
MODELS = {
    "qwen2_gqa_tied": ("qwen2", 32, 2, 4, 2, 48, 64, True),
    "qwen2_mqa_untied": ("qwen2", 24, 2, 4, 1, 40, 56, False),
    "llama_gqa_untied": ("llama", 32, 2, 4, 2, 48, 64, False),
}


def make_model(out, arch, E, L, H, KV, ffn, vocab, tied, seed=0, theta=10000.0, eps=1e-6):
    """Writes out/config.json + out/model.safetensors (F32, HF names)."""
    D = E // H
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    W = {"model.embed_tokens.weight": randn(vocab, E, std=2 / math.sqrt(E))}
    for i in range(L):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = 1 + 0.1 * randn(E)
        for n, rows, s in (("q", H * D, 1.5), ("k", KV * D, 1.5), ("v", KV * D, 1.0)):
            W[p + f"self_attn.{n}_proj.weight"] = randn(rows, E, std=s / math.sqrt(E))
            if arch == "qwen2":
                W[p + f"self_attn.{n}_proj.bias"] = 0.1 * randn(rows)
        W[p + "self_attn.o_proj.weight"] = randn(E, H * D, std=1 / math.sqrt(H * D))
        W[p + "post_attention_layernorm.weight"] = 1 + 0.1 * randn(E)
        W[p + "mlp.gate_proj.weight"] = randn(ffn, E, std=1 / math.sqrt(E))
        W[p + "mlp.up_proj.weight"] = randn(ffn, E, std=1 / math.sqrt(E))
        W[p + "mlp.down_proj.weight"] = randn(E, ffn, std=1 / math.sqrt(ffn))
    W["model.norm.weight"] = 1 + 0.1 * randn(E)
    if not tied:
        W["lm_head.weight"] = randn(vocab, E, std=2 / math.sqrt(E))
    cfg = {"architectures": ["Qwen2ForCausalLM" if arch == "qwen2" else "LlamaForCausalLM"],
           "model_type": arch, "hidden_act": "silu", "hidden_size": E, "intermediate_size": ffn,
           "num_attention_heads": H, "num_hidden_layers": L, "num_key_value_heads": KV,
           "rms_norm_eps": eps, "rope_theta": theta, "rope_scaling": None,
           "tie_word_embeddings": tied, "torch_dtype": "float32", "vocab_size": vocab,
           "max_position_embeddings": 4096, "bos_token_id": vocab - 2, "eos_token_id": vocab - 1}
    if arch == "llama":
        cfg.update(attention_bias=False, mlp_bias=False)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), W)
    return W


def sample(rng, vocab, n, prompt):
    """tokens, labels of one sequence of n tokens whose first `prompt` labels are masked."""
    toks = [rng.randrange(vocab - 1) for _ in range(n)]
    return toks, [-100] * prompt + toks[prompt:]


def plain_row(rng, vocab, n, prompt, pad):
    """One unpacked row: a sequence then `pad` padding tokens (id vocab-1, labels -100)."""
    toks, labs = sample(rng, vocab, n, prompt)
    return {"tokens": toks + [vocab - 1] * pad, "labels": labs + [-100] * pad}


def packed_row(rng, vocab, parts, pad):
    """One packed row: parts = [(n, prompt)], each its own segment, then a padding segment."""
    row = {"tokens": [], "labels": [], "seg": []}
    for s, (n, prompt) in enumerate(parts):
        toks, labs = sample(rng, vocab, n, prompt)
        row["tokens"] += toks
        row["labels"] += labs
        row["seg"] += [s] * n
    if pad:
        row["tokens"] += [vocab - 1] * pad
        row["labels"] += [-100] * pad
        row["seg"] += [len(parts)] * pad
    return row


def batches(vocab, seed=0):
    """(batch, packed, steps, long): an unpacked batch, a packed one, 20 steps of mixed batches,
    and a batch of long rows (several attention tiles)."""
    rng = random.Random(seed)
    batch = {"rows": [plain_row(rng, vocab, 20, 6, 0), plain_row(rng, vocab, 10, 3, 4),
                      plain_row(rng, vocab, 9, 0, 0), plain_row(rng, vocab, 5, 5, 2)]}  # last: no target
    packed = {"rows": [packed_row(rng, vocab, [(7, 2), (9, 0), (5, 1)], 3),
                       packed_row(rng, vocab, [(6, 6), (11, 0)], 0),   # first: no target; 2nd: label at its start
                       plain_row(rng, vocab, 8, 2, 0)]}
    steps = []
    for k in range(20):
        rows = []
        for _ in range(rng.randrange(1, 4)):
            n = rng.randrange(4, 24)
            if rng.random() < 0.3:
                a = rng.randrange(2, n - 1)
                rows.append(packed_row(rng, vocab, [(a, rng.randrange(0, a)), (n - a, 0)], rng.randrange(0, 3)))
            else:
                rows.append(plain_row(rng, vocab, n, rng.randrange(0, n - 1), rng.randrange(0, 4)))
        steps.append({"rows": rows})
    # rows longer than the C trainer's 64-token attention tiles, segments starting inside a tile
    long = {"rows": [packed_row(rng, vocab, [(70, 10), (50, 0), (61, 5)], 2),
                     plain_row(rng, vocab, 130, 40, 3)]}
    return batch, packed, {"steps": steps}, long


def make_all(out, seed=0):
    """Writes every model of MODELS with its batches under out/; returns {name: folder}."""
    dirs = {}
    for i, (name, spec) in enumerate(MODELS.items()):
        d = os.path.join(out, name)
        make_model(d, *spec, seed=seed + i)
        for fname, obj in zip(("batch.json", "packed.json", "steps.json", "long.json"), batches(spec[6], seed + i)):
            with open(os.path.join(d, fname), "w") as f:
                json.dump(obj, f)
        dirs[name] = d
    return dirs


# ---- helpers of the tests that run the C probe ------------------------------------------------------
def find_probe():
    """The C probe: $S1C_TRAIN_PROBE, else <dir of $S1C_BIN>/tests/train_probe; None if absent."""
    p = os.environ.get("S1C_TRAIN_PROBE") or \
        os.path.join(os.path.dirname(os.environ.get("S1C_BIN", "")), "tests", "train_probe")
    return p if os.path.isfile(p) and os.access(p, os.X_OK) else None


def run_probe(probe, args):
    """Runs the probe; returns (ok, one-line reason)."""
    r = subprocess.run([probe, *args], capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"exit {r.returncode}: {r.stderr.strip()[-400:]}"
    return True, ""


def compare_tensors(ref, got, rel_tol=None, abs_tol=None):
    """Per tensor of ref: (name, ||ref||, ||got - ref|| / ||ref||, max |got - ref|, ok) with ok
    judged by the relative norm error (rel_tol) or the largest absolute difference (abs_tol);
    a tensor that is missing from got or has another shape fails, and so does one got has in excess."""
    rows = []
    for name in sorted(ref):
        r = ref[name].double()
        g = got.get(name)
        if g is None or tuple(g.shape) != tuple(r.shape):
            why = " (missing)" if g is None else f" (shape {list(g.shape)})"
            rows.append((name + why, r.norm().item(), math.inf, math.inf, False))
            continue
        d = g.double() - r
        rel = (d.norm() / r.norm()).item() if r.norm() > 0 else (0.0 if d.norm() == 0 else math.inf)
        mx = d.abs().max().item() if d.numel() else 0.0
        ok = (rel_tol is None or rel <= rel_tol) and (abs_tol is None or mx <= abs_tol)
        rows.append((name, r.norm().item(), rel, mx, ok))
    for name in sorted(set(got) - set(ref)):
        rows.append((name + " (unexpected)", 0.0, math.inf, math.inf, False))
    return rows


def done(tmp, counts, skip):
    """Ends a test: removes its scratch folder unless something failed (kept to look at);
    exit 77 (skip) when the probe was missing and the self-test passed."""
    if counts["failed"]:
        print(f"inputs and outputs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    sys.exit(1 if counts["failed"] else 77 if skip else 0)


def table(rows):
    """The per-tensor comparison as printable lines."""
    lines = [f"{'tensor':<48} {'|ref|':>11} {'rel err':>10} {'max abs':>10}"]
    for name, n, rel, mx, ok in rows:
        lines.append(f"{name:<48} {n:11.4e} {rel:10.2e} {mx:10.2e}{'' if ok else '  <-- FAIL'}")
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    for name, d in make_all(a.out, a.seed).items():
        print(f"{name}: {d}")
