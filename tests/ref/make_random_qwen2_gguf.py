#!/usr/bin/python3
"""Write a random-weight Qwen2 GGUF that real llama.cpp loads, with llama.cpp's own gguf-py
(so the file layout is llama.cpp's, not ours), plus a random prompt of token ids.

  GGUF_PY=$LLAMA_REF_DIR/gguf-py /usr/bin/python3 tests/ref/make_random_qwen2_gguf.py -o MODEL.gguf \
      [--tied] [--seed 0] [--dtype f32|bf16|f16] [--prompt-out PROMPT.txt --n-prompt 16]
      [--hidden 64 --layers 2 --heads 4 --kv-heads 2 --ffn 128 --vocab 512]

Model: Qwen2 graph (q/k/v biases, RMSNorm eps 1e-6, rope theta 1e6, NEOX RoPE, unpermuted Q/K),
output head untied (output.weight) unless --tied. Weights from numpy's default_rng(seed): matrices
N(0, 1/fan_in) (q/k x1.5, embedding/output 2/sqrt(hidden) so logits spread ~ +-2), norms 1+0.1 N,
biases 0.1 N; 2-D tensors in --dtype, 1-D tensors F32 (as llama.cpp's converter does).

Vocabulary: a dummy byte-level BPE one that llama.cpp's gpt2/qwen2 tokenizer accepts: ids 0..255
are the 256 GPT-2 byte symbols (bytes_to_unicode), then merged tokens (" x" pairs, then letter
pairs) with their merges, up to vocab-22, then Qwen2.5's 22 added tokens in Qwen's order
(<|endoftext|> = BOS/PAD, <|im_end|> = EOS, tool_call tags USER_DEFINED, others CONTROL).
Prompt ids are drawn from the non-special ids [0, vocab-22).
"""
import argparse, importlib.util, os, sys, types
import numpy as np

# gguf/__init__ imports sentencepiece and yaml, which are not installed and not needed here.
for mod, attr in (("sentencepiece", "SentencePieceProcessor"), ("yaml", None)):
    if importlib.util.find_spec(mod) is None:
        stub = types.ModuleType(mod)
        if attr:
            setattr(stub, attr, None)
        sys.modules[mod] = stub
sys.path.insert(0, os.environ.get("GGUF_PY") or os.path.join(os.environ.get("LLAMA_REF_DIR", "/tmp/llama-ref"), "gguf-py"))
import gguf  # noqa: E402

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
                 "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                 "<|repo_name|>", "<|file_sep|>"]

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("-o", "--out", required=True)
ap.add_argument("--tied", action="store_true")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--dtype", choices=["f32", "bf16", "f16", "q4_k", "q6_k"], default="f32")
ap.add_argument("--prompt-out")
ap.add_argument("--n-prompt", type=int, default=16)
for k, v in (("hidden", 64), ("layers", 2), ("heads", 4), ("kv-heads", 2), ("ffn", 128), ("vocab", 512)):
    ap.add_argument("--" + k, type=int, default=v)
a = ap.parse_args()
E, L, H, KV, F, V = a.hidden, a.layers, a.heads, a.kv_heads, a.ffn, a.vocab
D = E // H
n_normal = V - len(QWEN_SPECIALS)
assert E % H == 0 and H % KV == 0 and n_normal >= 256

# ---- vocabulary -------------------------------------------------------------------------------
def bytes_to_unicode():  # GPT-2's printable stand-ins for the 256 byte values
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]
tokens = bytes_to_unicode()                                   # id = byte value
merges = []
letters = "etaoinshrdlucmfwypvbgkjqxz"
pairs = [("Ġ", c) for c in letters] + [(x, y) for x in letters for y in letters]  # Ġ = byte 0x20
for l, r in pairs:
    if len(tokens) >= n_normal:
        break
    merges.append(f"{l} {r}"); tokens.append(l + r)
while len(tokens) < n_normal:                                 # only if vocab is very large
    tokens.append(f"[PAD{len(tokens)}]")
types_ = [gguf.TokenType.NORMAL] * len(tokens)
for s in QWEN_SPECIALS:
    tokens.append(s)
    types_.append(gguf.TokenType.USER_DEFINED if "tool_call" in s else gguf.TokenType.CONTROL)
sid = {s: n_normal + i for i, s in enumerate(QWEN_SPECIALS)}

# ---- weights ----------------------------------------------------------------------------------
rng = np.random.default_rng(a.seed)
def mat(rows, cols, s=1.0):
    return (rng.standard_normal((rows, cols)) * (s / np.sqrt(cols))).astype(np.float32)
def vec(n, base, s):
    return (base + s * rng.standard_normal(n)).astype(np.float32)
Wt = {"token_embd.weight": mat(V, E, 2.0)}
for i in range(L):
    p = f"blk.{i}."
    Wt[p + "attn_norm.weight"] = vec(E, 1.0, 0.1)
    for n, rows, s in (("q", H * D, 1.5), ("k", KV * D, 1.5), ("v", KV * D, 1.0)):
        Wt[p + f"attn_{n}.weight"] = mat(rows, E, s)
        Wt[p + f"attn_{n}.bias"] = vec(rows, 0.0, 0.1)
    Wt[p + "attn_output.weight"] = mat(E, H * D)
    Wt[p + "ffn_norm.weight"] = vec(E, 1.0, 0.1)
    Wt[p + "ffn_gate.weight"] = mat(F, E)
    Wt[p + "ffn_up.weight"] = mat(F, E)
    Wt[p + "ffn_down.weight"] = mat(E, F)
Wt["output_norm.weight"] = vec(E, 1.0, 0.1)
if not a.tied:
    Wt["output.weight"] = mat(V, E, 2.0)

# ---- GGUF -------------------------------------------------------------------------------------
Q = gguf.GGMLQuantizationType
w = gguf.GGUFWriter(a.out, "qwen2")
w.add_name(f"tiny-qwen2-random-seed{a.seed}{'-tied' if a.tied else ''}")
w.add_context_length(4096)
w.add_embedding_length(E)
w.add_block_count(L)
w.add_feed_forward_length(F)
w.add_head_count(H)
w.add_head_count_kv(KV)
w.add_rope_freq_base(1e6)
w.add_layer_norm_rms_eps(1e-6)
w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
                 "f16": gguf.LlamaFileType.MOSTLY_F16, "q4_k": gguf.LlamaFileType.MOSTLY_Q4_K_M,
                 "q6_k": gguf.LlamaFileType.MOSTLY_Q6_K}[a.dtype])


def kquant_blocks(rows, cols, kind):
    """Random K-quant blocks (ggml's layouts) standing for a rows x cols matrix: gguf-py cannot
    quantize to K-quants, and any block bytes are a valid matrix once the f16 scales are finite;
    the scales are chosen so weights are ~N(0, 1/cols)-sized."""
    nb = cols // 256
    if kind == "q4_k":  # {f16 d, f16 dmin, u8 scales[12] (6-bit scales and mins), u8 qs[128]}
        b = rng.integers(0, 256, (rows, nb, 144), dtype=np.uint8)
        b[:, :, 0:2] = np.frombuffer(np.float16(0.3 / (63 * 15) / np.sqrt(cols / 256)).tobytes(), np.uint8)
        b[:, :, 2:4] = np.frombuffer(np.float16(0.15 / (63 * 15) / np.sqrt(cols / 256)).tobytes(), np.uint8)
        return b.reshape(rows, nb * 144), Q.Q4_K
    # q6_k: {u8 ql[128], u8 qh[64], i8 scales[16], f16 d}
    b = rng.integers(0, 256, (rows, nb, 210), dtype=np.uint8)
    b[:, :, 192:208] = rng.integers(-16, 17, (rows, nb, 16)).astype(np.int8).view(np.uint8)
    b[:, :, 208:210] = np.frombuffer(np.float16(2.0 / (16 * 32) / np.sqrt(cols)).tobytes(), np.uint8)
    return b.reshape(rows, nb * 210), Q.Q6_K
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("qwen2")
w.add_token_list(tokens)
w.add_token_types(types_)
w.add_token_merges(merges)
w.add_bos_token_id(sid["<|endoftext|>"])
w.add_eos_token_id(sid["<|im_end|>"])
w.add_pad_token_id(sid["<|endoftext|>"])
w.add_add_bos_token(False)
for name, x in Wt.items():
    if x.ndim == 2 and a.dtype == "f16":
        w.add_tensor(name, x.astype(np.float16))
    elif x.ndim == 2 and a.dtype in ("q4_k", "q6_k") and x.shape[1] % 256 == 0:
        q, t = kquant_blocks(x.shape[0], x.shape[1], a.dtype)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=t)
    elif x.ndim == 2 and a.dtype in ("q4_k", "q6_k"):
        w.add_tensor(name, x.astype(np.float16))  # rows not a multiple of 256: F16, as llama.cpp falls back
    elif x.ndim == 2 and a.dtype == "bf16":
        q = gguf.quants.quantize(x, Q.BF16)                   # round to nearest even
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=Q.BF16)
    else:
        w.add_tensor(name, x)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

prompt = np.random.default_rng([a.seed, 1]).integers(0, n_normal, a.n_prompt).tolist()
if a.prompt_out:
    with open(a.prompt_out, "w") as f:
        f.write(" ".join(map(str, prompt)) + "\n")
print(f"{a.out}: qwen2 {a.dtype} E{E} L{L} H{H}/{KV} ffn{F} V{V} ({len(merges)} merges, specials at "
      f"{n_normal}..{V - 1}) tied={a.tied} seed={a.seed}; prompt {len(prompt)} ids")
