#!/usr/bin/python3
"""Reference logits for random tiny Qwen2 (or Llama) models: an independent float64 PyTorch
re-implementation of Hugging Face `Qwen2ForCausalLM` inference (transformers is not used).

  /usr/bin/python3 tests/ref/qwen2_ref.py --out DIR --seed S --hidden 64 --layers 2 --heads 4 \
      --kv-heads 2 --ffn 128 --vocab 256 [--head-dim D] [--tied 0|1] [--bias 1|0] \
      [--rope-theta 1e6] [--eps 1e-6] [--n-tokens 36] [--arch qwen2|llama] [--dtype f32|bf16|f16]

Writes (all little-endian):
  DIR/hf/config.json, DIR/hf/model.safetensors  HF layout, Linear weights [out, in], in --dtype
  DIR/model.gguf      GGUF v3, llama.cpp tensor names; 2-D tensors in --dtype, 1-D in F32;
                      llama: Q/K rows permuted for adjacent-pair RoPE (as convert_hf_to_gguf.py)
  DIR/tokens.txt      the n_tokens input ids, space separated, one line
  DIR/logits.f32      raw float32 [n_tokens, vocab] row-major: logits at every position
  DIR/meta.json       arguments, shapes, tokens, logit statistics
The maths runs in float64 on exactly the stored (dtype-rounded) values, and is checked against
a second, token-by-token KV-cache implementation (agreement to 1e-9 is asserted).
Needs Debian's /usr/bin/python3 (torch + numpy).
"""
import argparse, json, math, os, struct
import numpy as np
import torch

f64 = torch.float64
TDT = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
ST_NAME = {"f32": "F32", "bf16": "BF16", "f16": "F16"}        # safetensors dtype strings
GGML_TYPE = {"f32": 0, "f16": 1, "bf16": 30}                   # ggml_type enum values
HF_DTYPE = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=0)
for k, v in (("hidden", 64), ("layers", 2), ("heads", 4), ("kv-heads", 2), ("ffn", 128),
             ("vocab", 256), ("head-dim", 0), ("tied", 0), ("bias", 1), ("n-tokens", 36)):
    ap.add_argument("--" + k, type=int, default=v)
ap.add_argument("--rope-theta", type=float, default=1e6)
ap.add_argument("--eps", type=float, default=1e-6)
ap.add_argument("--arch", choices=["qwen2", "llama"], default="qwen2")
ap.add_argument("--dtype", choices=list(TDT), default="f32")
a = ap.parse_args()
H, KV, E, L = a.heads, a.kv_heads, a.hidden, a.layers
D = a.head_dim or E // H
bias = bool(a.bias) and a.arch == "qwen2"                      # Llama has no q/k/v biases
assert H % KV == 0 and D % 2 == 0 and (a.head_dim or E % H == 0)

# ---- 1. random weights, HF names ---------------------------------------------------------------
# Drawn in float32 in a fixed order from one generator, then rounded once to --dtype: the same
# seed gives the same underlying model for every dtype. std ~ 1/sqrt(fan_in) keeps activations
# O(1); the embedding/lm_head get 2/sqrt(hidden) so that logits (after the final RMSNorm) have a
# standard deviation ~2, and q/k get 1.5x so that attention is visibly non-uniform.
g = torch.Generator().manual_seed(a.seed)
def randn(*shape, std=1.0):
    return torch.randn(*shape, generator=g) * std
W = {"model.embed_tokens.weight": randn(a.vocab, E, std=2 / math.sqrt(E))}
for i in range(L):
    p = f"model.layers.{i}."
    W[p + "input_layernorm.weight"] = 1 + 0.1 * randn(E)
    for n, rows, s in (("q", H * D, 1.5), ("k", KV * D, 1.5), ("v", KV * D, 1.0)):
        W[p + f"self_attn.{n}_proj.weight"] = randn(rows, E, std=s / math.sqrt(E))
        if bias:
            W[p + f"self_attn.{n}_proj.bias"] = 0.1 * randn(rows)
    W[p + "self_attn.o_proj.weight"] = randn(E, H * D, std=1 / math.sqrt(H * D))
    W[p + "post_attention_layernorm.weight"] = 1 + 0.1 * randn(E)
    W[p + "mlp.gate_proj.weight"] = randn(a.ffn, E, std=1 / math.sqrt(E))
    W[p + "mlp.up_proj.weight"] = randn(a.ffn, E, std=1 / math.sqrt(E))
    W[p + "mlp.down_proj.weight"] = randn(E, a.ffn, std=1 / math.sqrt(a.ffn))
W["model.norm.weight"] = 1 + 0.1 * randn(E)
if not a.tied:
    W["lm_head.weight"] = randn(a.vocab, E, std=2 / math.sqrt(E))
W = {k: v.to(TDT[a.dtype]) for k, v in W.items()}             # the values actually stored
W64 = {k: v.to(f64) for k, v in W.items()}                     # exact upcast for the maths
# Tokens from their own generator with the same seed: they depend only on (seed, vocab, n).
toks = torch.randint(0, a.vocab, (a.n_tokens,), generator=torch.Generator().manual_seed(a.seed)).tolist()

def raw_bytes(t):   # little-endian bytes of a tensor in its own dtype (bf16 via its int16 bits)
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    return t.contiguous().numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()

# ---- 2. HF folder: config.json + model.safetensors ---------------------------------------------
os.makedirs(os.path.join(a.out, "hf"), exist_ok=True)
cfg = {"architectures": ["Qwen2ForCausalLM" if a.arch == "qwen2" else "LlamaForCausalLM"],
       "model_type": a.arch, "attention_dropout": 0.0, "bos_token_id": a.vocab - 2,
       "eos_token_id": a.vocab - 1, "hidden_act": "silu", "hidden_size": E, "initializer_range": 0.02,
       "intermediate_size": a.ffn, "max_position_embeddings": 4096, "num_attention_heads": H,
       "num_hidden_layers": L, "num_key_value_heads": KV, "rms_norm_eps": a.eps, "rope_scaling": None,
       "rope_theta": a.rope_theta, "tie_word_embeddings": bool(a.tied), "torch_dtype": HF_DTYPE[a.dtype],
       "use_cache": True, "vocab_size": a.vocab}
if a.arch == "qwen2":
    cfg.update(max_window_layers=L, sliding_window=4096, use_sliding_window=False)
else:
    cfg.update(attention_bias=False, mlp_bias=False, pretraining_tp=1)
if D != E // H or E % H:
    cfg["head_dim"] = D
with open(os.path.join(a.out, "hf", "config.json"), "w") as f:
    json.dump(cfg, f, indent=2)

def write_safetensors(path, tensors):
    # u64 header length, JSON header (offsets relative to the data start), raw data.
    hdr, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        b = raw_bytes(tensors[name])
        hdr[name] = {"dtype": ST_NAME[a.dtype], "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)                                  # pad with spaces to a multiple of 8
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
write_safetensors(os.path.join(a.out, "hf", "model.safetensors"), W)

# ---- 3. GGUF v3 ---------------------------------------------------------------------------------
U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9               # gguf_type values used here
def gstr(s):
    b = s.encode(); return struct.pack("<Q", len(b)) + b
def gval(t, v):
    if t == STR: return gstr(v)
    if t == ARR:
        et, items = v; return struct.pack("<IQ", et, len(items)) + b"".join(gval(et, x) for x in items)
    return struct.pack({U32: "<I", I32: "<i", F32: "<f", BOOL: "<?"}[t], v)

def permute_rows(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute: rotate-half (i, i+D/2) -> adjacent (2i, 2i+1)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

GG_NAMES = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
            "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
            "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
            "mlp.down_proj": "ffn_down"}
def gguf_name(hf):
    if hf == "model.embed_tokens.weight": return "token_embd.weight"
    if hf == "model.norm.weight": return "output_norm.weight"
    if hf == "lm_head.weight": return "output.weight"
    _, _, i, rest = hf.split(".", 3)
    mod, kind = rest.rsplit(".", 1)
    return f"blk.{i}.{GG_NAMES[mod]}.{kind}"

def write_gguf(path):
    ar = a.arch
    kvs = [("general.architecture", STR, ar), ("general.name", STR, f"random-{ar}-seed{a.seed}"),
           (f"{ar}.context_length", U32, 4096), (f"{ar}.embedding_length", U32, E),
           (f"{ar}.block_count", U32, L), (f"{ar}.feed_forward_length", U32, a.ffn),
           (f"{ar}.attention.head_count", U32, H), (f"{ar}.attention.head_count_kv", U32, KV),
           (f"{ar}.rope.freq_base", F32, a.rope_theta), (f"{ar}.attention.layer_norm_rms_epsilon", F32, a.eps)]
    if ar == "llama":
        kvs.append((f"{ar}.rope.dimension_count", U32, D))
    if "head_dim" in cfg:
        kvs += [(f"{ar}.attention.key_length", U32, D), (f"{ar}.attention.value_length", U32, D)]
    kvs += [("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, "qwen2"),
            ("tokenizer.ggml.tokens", ARR, (STR, [f"t{i}" for i in range(a.vocab)])),
            ("tokenizer.ggml.token_type", ARR, (I32, [1] * a.vocab)),
            ("tokenizer.ggml.merges", ARR, (STR, [])),
            ("tokenizer.ggml.bos_token_id", U32, a.vocab - 2), ("tokenizer.ggml.eos_token_id", U32, a.vocab - 1),
            ("tokenizer.ggml.add_bos_token", BOOL, False)]
    infos, blobs, off = b"", [], 0
    order = ["model.embed_tokens.weight"] + [k for k in W if k.startswith("model.layers.")] + \
            ["model.norm.weight"] + (["lm_head.weight"] if not a.tied else [])
    for hf in order:
        t, name = W[hf], gguf_name(hf)
        if a.arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            t = permute_rows(t, H if "attn_q" in name else KV)
        if t.dim() == 1:
            t = t.to(torch.float32)                            # exact: every dtype fits in f32
        gtype = 0 if t.dtype == torch.float32 else GGML_TYPE[a.dtype]
        infos += gstr(name) + struct.pack("<I", t.dim()) + b"".join(struct.pack("<Q", n) for n in reversed(t.shape))
        infos += struct.pack("<IQ", gtype, off)                # dims innermost first; offset in data
        b = raw_bytes(t); b += b"\0" * (-len(b) % 32)           # each tensor starts 32-aligned
        blobs.append(b); off += len(b)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(order), len(kvs))
    head += b"".join(gstr(k) + struct.pack("<I", t) + gval(t, v) for k, t, v in kvs) + infos
    head += b"\0" * (-len(head) % 32)                          # default general.alignment = 32
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))
write_gguf(os.path.join(a.out, "model.gguf"))

# ---- 5. reference forward, whole sequence at once (HF Qwen2 maths in float64) -------------------
def rmsnorm(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + a.eps) * w
def rotate_half(x):
    return torch.cat([-x[..., D // 2:], x[..., : D // 2]], -1)
inv_freq = a.rope_theta ** (-torch.arange(0, D, 2, dtype=f64) / D)   # [D/2]
def lin(x, p):  # x @ W^T (+ b)
    return x @ W64[p + ".weight"].T + (W64[p + ".bias"] if p + ".bias" in W64 else 0)
head_w = W64["model.embed_tokens.weight" if a.tied else "lm_head.weight"]

def forward_full(tokens):
    T = len(tokens)
    x = W64["model.embed_tokens.weight"][tokens]                     # [T, E]
    ang = torch.arange(T, dtype=f64)[:, None] * inv_freq[None]       # [T, D/2]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    mask = torch.full((T, T), -math.inf, dtype=f64).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rmsnorm(x, W64[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj").view(T, H, D).transpose(0, 1)    # [H, T, D]
        k = lin(h, p + "self_attn.k_proj").view(T, KV, D).transpose(0, 1)   # [KV, T, D]
        v = lin(h, p + "self_attn.v_proj").view(T, KV, D).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)  # GQA
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D) + mask, -1)
        x = x + lin((att @ v).transpose(0, 1).reshape(T, H * D), p + "self_attn.o_proj")
        h = rmsnorm(x, W64[p + "post_attention_layernorm.weight"])
        x = x + lin(torch.nn.functional.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    return rmsnorm(x, W64["model.norm.weight"]) @ head_w.T           # [T, vocab]

# ---- 6. second implementation: one token at a time with an explicit KV cache --------------------
# Different code path on purpose: RoPE as a complex rotation of (x[:D/2] + i x[D/2:]), per-head
# loops with kv = h // (H/KV), hand-written softmax, SiLU as g / (1 + exp(-g)).
def rope_complex(x, pos):  # x [n, D]
    z = torch.complex(x[:, : D // 2], x[:, D // 2:]) * torch.polar(torch.ones_like(inv_freq), pos * inv_freq)
    return torch.cat([z.real, z.imag], -1)

def forward_incremental(tokens):
    kc = [[] for _ in range(L)]; vc = [[] for _ in range(L)]
    out = []
    for pos, t in enumerate(tokens):
        x = W64["model.embed_tokens.weight"][t].clone()
        for i in range(L):
            p = f"model.layers.{i}."
            h = rmsnorm(x, W64[p + "input_layernorm.weight"])
            q = rope_complex(lin(h, p + "self_attn.q_proj").view(H, D), float(pos))
            kc[i].append(rope_complex(lin(h, p + "self_attn.k_proj").view(KV, D), float(pos)))
            vc[i].append(lin(h, p + "self_attn.v_proj").view(KV, D))
            K, V = torch.stack(kc[i]), torch.stack(vc[i])            # [pos+1, KV, D]
            o = torch.empty(H, D, dtype=f64)
            for hh in range(H):
                kv = hh // (H // KV)
                s = K[:, kv] @ q[hh] / math.sqrt(D)
                e = torch.exp(s - s.max())
                o[hh] = (e / e.sum()) @ V[:, kv]
            x = x + lin(o.reshape(-1), p + "self_attn.o_proj")
            h = rmsnorm(x, W64[p + "post_attention_layernorm.weight"])
            gt = lin(h, p + "mlp.gate_proj")
            x = x + lin(gt / (1 + torch.exp(-gt)) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        out.append(rmsnorm(x, W64["model.norm.weight"]) @ head_w.T)
    return torch.stack(out)

logits = forward_full(toks)
diff = (logits - forward_incremental(toks)).abs().max().item()
assert diff < 1e-9, f"reference self-check failed: full vs incremental max|diff| = {diff}"

with open(os.path.join(a.out, "tokens.txt"), "w") as f:
    f.write(" ".join(map(str, toks)) + "\n")
logits.numpy().astype("<f4").tofile(os.path.join(a.out, "logits.f32"))
meta = {"args": vars(a), "arch": a.arch, "head_dim": D, "bias": bias, "n_tokens": len(toks),
        "tokens": toks, "logits_shape": [len(toks), a.vocab], "logits_dtype": "float32 little-endian",
        "logits_std": logits.std().item(), "logits_absmax": logits.abs().max().item(),
        "argmax": logits.argmax(-1).tolist(), "selfcheck_max_abs_diff": diff,
        "tensors": {k: {"shape": list(v.shape), "gguf": gguf_name(k)} for k, v in W.items()}}
with open(os.path.join(a.out, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)
print(f"qwen2_ref: {a.arch} {a.dtype} E{E} L{L} H{H}/{KV} D{D} ffn{a.ffn} V{a.vocab} tied{a.tied} "
      f"bias{int(bias)} T{len(toks)} -> {a.out}: logits std {logits.std():.3f} absmax "
      f"{logits.abs().max():.3f}, full vs kv-cache max|diff| {diff:.1e}")
