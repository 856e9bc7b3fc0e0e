#!/usr/bin/python3
"""PyTorch reference for `s1c train`: gradients and AdamW steps of a Hugging Face Qwen2/Llama
model (config.json + model.safetensors), written from the maths (SPEC.md §4) and PyTorch autograd,
independently of the C trainer. The C probe `train_probe` implements the same two subcommands.

  train_ref.py grads --model DIR --batch B.json --out G.safetensors [--dtype float64|float32]
  train_ref.py steps --model DIR --batches S.json --lr 1e-5 --total N --out W.safetensors
                     --log L.jsonl [--clip 1.0] [--wd 1e-4] [--warmup-ratio 0.05] [--dtype ...]

Batches. B.json = {"rows": [{"tokens": [...], "labels": [...], "seg": [...]}, ...]};
S.json = {"steps": [{"rows": [...]}, ...]}, one entry per optimizer step.
  - tokens and labels have one length T per row (rows may differ); labels follow HF: -100 is
    ignored and the logits at position t predict labels[t+1] (labels[0] is never a target).
  - seg (optional, packing): a segment is a maximal run of equal consecutive seg values. Positions
    restart at 0 at each segment start; a position attends (causally) only within its segment; the
    target labels[t+1] is ignored when t+1 starts a new segment.
  - a sample is a (row, segment) pair. loss = mean over the samples that have >= 1 target of the
    sample's mean token cross-entropy: every sequence counts equally whatever its length (SPEC §4).

Outputs (safetensors, F32, HF names):
  grads: d loss / d parameter for every parameter (lm_head.weight only when the head is untied; a
         tied head's gradient is part of model.embed_tokens.weight) + `loss` of shape [1].
  steps: the weights after len(steps) optimizer steps; L.jsonl gets one line per step
         {"step": k (1-based), "loss", "lr" (the lr used by that step), "grad_norm" (before clipping)}.
Optimizer: torch.optim.AdamW, betas (0.9, 0.95), eps 1e-8, weight decay --wd on every parameter
except those named *.bias (RMSNorm weights are decayed); clip_grad_norm_(--clip) unless --clip <= 0;
LambdaLR with transformers' get_cosine_schedule_with_warmup lambda, warm-up ceil(total * ratio)
steps (so the first step has lr 0; its Adam step still counts for the bias correction).
Maths in float64 by default (--dtype float32 for the same in fp32). Needs Debian's /usr/bin/python3.
"""
import argparse, json, math, struct, sys
import numpy as np
import torch

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16}


class RefError(Exception):
    """Bad input: a one-line message naming what and where."""


# ---- safetensors without the `safetensors` package ---------------------------------------------
def read_safetensors(path):
    """Returns {name: float32 torch tensor} for every tensor in a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise RefError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise RefError(f"{path}: header length {n} runs past the end of the file")
    hdr = json.loads(raw[8:8 + n])
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        shape, dt = info["shape"], info["dtype"]
        if b > len(data):
            raise RefError(f"{path}: tensor {name} runs past the end of the file")
        if dt == "BF16":   # bf16 = the high 16 bits of an f32
            arr = (np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt in ST_DTYPES:
            arr = np.frombuffer(data[a:b], dtype=np.dtype(ST_DTYPES[dt]).newbyteorder("<")).astype(np.float32)
        else:
            raise RefError(f"{path}: tensor {name} has unsupported dtype {dt}")
        if arr.size != math.prod(shape):
            raise RefError(f"{path}: tensor {name}: {arr.size} values for shape {shape}")
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out


def write_safetensors(path, tensors):
    """Writes {name: tensor} as F32 safetensors (names sorted, header padded to 8 bytes)."""
    hdr, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        b = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        hdr[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- model --------------------------------------------------------------------------------------
class Config:
    """The hyperparameters of an HF Qwen2/Llama config.json."""

    def __init__(self, cfg, where="config.json"):
        try:
            self.arch = cfg.get("model_type", "qwen2")
            if self.arch not in ("qwen2", "llama"):
                raise RefError(f"{where}: model_type {self.arch!r} is not qwen2 or llama")
            self.E, self.L = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
            self.H = int(cfg["num_attention_heads"])
            self.KV = int(cfg.get("num_key_value_heads") or self.H)
            self.D = int(cfg.get("head_dim") or self.E // self.H)
            self.ffn, self.vocab = int(cfg["intermediate_size"]), int(cfg["vocab_size"])
            self.eps = float(cfg.get("rms_norm_eps", 1e-6))
            self.theta = float(cfg.get("rope_theta", 10000.0))
            self.tied = bool(cfg.get("tie_word_embeddings", False))
            self.bias = True if self.arch == "qwen2" else bool(cfg.get("attention_bias", False))
        except KeyError as e:
            raise RefError(f"{where}: missing key {e.args[0]}") from None
        if self.H % self.KV or self.D % 2:
            raise RefError(f"{where}: heads {self.H} / kv heads {self.KV} / head dim {self.D} do not fit")
        if cfg.get("rope_scaling"):
            raise RefError(f"{where}: rope_scaling is not supported by the reference")

    def param_shapes(self):
        """{HF name: shape} of every trainable parameter, in the model's order."""
        E, H, KV, D, F = self.E, self.H, self.KV, self.D, self.ffn
        s = {"model.embed_tokens.weight": (self.vocab, E)}
        for i in range(self.L):
            p = f"model.layers.{i}."
            s[p + "input_layernorm.weight"] = (E,)
            for n, rows in (("q", H * D), ("k", KV * D), ("v", KV * D)):
                s[p + f"self_attn.{n}_proj.weight"] = (rows, E)
                if self.bias:
                    s[p + f"self_attn.{n}_proj.bias"] = (rows,)
            s[p + "self_attn.o_proj.weight"] = (E, H * D)
            s[p + "post_attention_layernorm.weight"] = (E,)
            s[p + "mlp.gate_proj.weight"] = (F, E)
            s[p + "mlp.up_proj.weight"] = (F, E)
            s[p + "mlp.down_proj.weight"] = (E, F)
        s["model.norm.weight"] = (E,)
        if not self.tied:
            s["lm_head.weight"] = (self.vocab, E)
        return s


def load_model(mdir, dtype=torch.float64):
    """(Config, {name: leaf tensor with requires_grad}) from an HF model folder."""
    try:
        with open(f"{mdir}/config.json", encoding="utf-8") as f:
            cfg = Config(json.load(f), f"{mdir}/config.json")
        W = read_safetensors(f"{mdir}/model.safetensors")
    except OSError as e:
        raise RefError(f"{mdir}: {e.strerror}: {e.filename}") from None
    P = {}
    for name, shape in cfg.param_shapes().items():
        if name not in W:
            raise RefError(f"{mdir}/model.safetensors: missing tensor {name}")
        if tuple(W[name].shape) != shape:
            raise RefError(f"{mdir}/model.safetensors: {name} has shape {list(W[name].shape)}, want {list(shape)}")
        P[name] = W[name].to(dtype).requires_grad_(True)
    return cfg, P


def segments(seg, T):
    """(run index per position, position within its run): runs of equal consecutive seg values."""
    run, pos = [0] * T, [0] * T
    for t in range(1, T):
        new = seg is not None and seg[t] != seg[t - 1]
        run[t] = run[t - 1] + new
        pos[t] = 0 if new else pos[t - 1] + 1
    return run, pos


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat([-x[..., d:], x[..., :d]], -1)


def linear(x, P, name):
    b = P.get(name + ".bias")
    return torch.nn.functional.linear(x, P[name + ".weight"], b)


def row_logits(cfg, P, tokens, seg=None):
    """Logits [T, vocab] of one row: HF Qwen2/Llama maths, segments attending only to themselves."""
    T, H, KV, D = len(tokens), cfg.H, cfg.KV, cfg.D
    run, pos = segments(seg, T)
    dt = P["model.embed_tokens.weight"].dtype
    run_t = torch.tensor(run)
    allowed = (run_t[:, None] == run_t[None, :]) & torch.ones(T, T, dtype=torch.bool).tril()
    inv_freq = cfg.theta ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = torch.tensor(pos, dtype=torch.float64)[:, None] * inv_freq[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1).to(dt), torch.cat([ang.sin()] * 2, -1).to(dt)
    x = P["model.embed_tokens.weight"][torch.tensor(tokens)]
    for i in range(cfg.L):
        p = f"model.layers.{i}."
        h = rmsnorm(x, P[p + "input_layernorm.weight"], cfg.eps)
        q = linear(h, P, p + "self_attn.q_proj").view(T, H, D).transpose(0, 1)
        k = linear(h, P, p + "self_attn.k_proj").view(T, KV, D).transpose(0, 1)
        v = linear(h, P, p + "self_attn.v_proj").view(T, KV, D).transpose(0, 1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        s = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(D)
        att = torch.softmax(s.masked_fill(~allowed, -math.inf), -1)
        o = torch.matmul(att.to(v.dtype), v).transpose(0, 1).reshape(T, H * D)
        x = x + linear(o, P, p + "self_attn.o_proj")
        h = rmsnorm(x, P[p + "post_attention_layernorm.weight"], cfg.eps)
        g = torch.nn.functional.silu(linear(h, P, p + "mlp.gate_proj")) * linear(h, P, p + "mlp.up_proj")
        x = x + linear(g, P, p + "mlp.down_proj")
    head = P["model.embed_tokens.weight"] if cfg.tied else P["lm_head.weight"]
    return torch.nn.functional.linear(rmsnorm(x, P["model.norm.weight"], cfg.eps), head)


def check_rows(cfg, rows, where):
    """Raises RefError naming the first malformed row."""
    if not isinstance(rows, list) or not rows:
        raise RefError(f"{where}: \"rows\" must be a non-empty list")
    for r, row in enumerate(rows):
        w = f"{where}: row {r}"
        if not isinstance(row, dict) or "tokens" not in row or "labels" not in row:
            raise RefError(f"{w}: needs \"tokens\" and \"labels\"")
        T = len(row["tokens"])
        if T == 0 or len(row["labels"]) != T or ("seg" in row and len(row["seg"]) != T):
            raise RefError(f"{w}: tokens, labels (and seg) must have one non-zero length")
        for t, (tok, lab) in enumerate(zip(row["tokens"], row["labels"])):
            if not (isinstance(tok, int) and 0 <= tok < cfg.vocab):
                raise RefError(f"{w}: token {t} = {tok!r} is not an id below {cfg.vocab}")
            if not (isinstance(lab, int) and (lab == -100 or 0 <= lab < cfg.vocab)):
                raise RefError(f"{w}: label {t} = {lab!r} is neither -100 nor an id below {cfg.vocab}")


def batch_loss(cfg, P, rows, where="batch"):
    """The step loss of SPEC §4: mean over samples (row, segment) of their mean target CE.
    Returns (loss, number of samples with targets, number of targets)."""
    check_rows(cfg, rows, where)
    terms = []   # per row: (positions, targets, weights) with weights summing to 1 per sample
    samples = 0
    for row in rows:
        tokens, labels, seg = row["tokens"], row["labels"], row.get("seg")
        run, _ = segments(seg, len(tokens))
        by_sample = {}
        for t in range(len(tokens) - 1):
            if labels[t + 1] != -100 and run[t + 1] == run[t]:
                by_sample.setdefault(run[t], []).append(t)
        idx, tgt, wt = [], [], []
        for ts in by_sample.values():
            idx += ts
            tgt += [labels[t + 1] for t in ts]
            wt += [1.0 / len(ts)] * len(ts)
        samples += len(by_sample)
        terms.append((idx, tgt, wt))
    if samples == 0:
        raise RefError(f"{where}: no target in any row (a target is a label other than -100 at a position t >= 1 whose t - 1 is in the same segment)")
    dt = P["model.embed_tokens.weight"].dtype
    loss, n_targets = 0, 0
    for row, (idx, tgt, wt) in zip(rows, terms):
        if not idx:
            continue   # no targets: the row contributes nothing (and is not run)
        logits = row_logits(cfg, P, row["tokens"], row.get("seg"))[torch.tensor(idx)]
        nll = -torch.log_softmax(logits.to(dt), -1).gather(1, torch.tensor(tgt)[:, None])[:, 0]
        loss = loss + (nll * torch.tensor(wt, dtype=dt)).sum()
        n_targets += len(idx)
    return loss / samples, samples, n_targets


# ---- gradients and optimizer steps --------------------------------------------------------------
def grads(cfg, P, rows, where="batch"):
    """(loss, {name: gradient}) for one batch."""
    for t in P.values():
        t.grad = None
    loss, _, _ = batch_loss(cfg, P, rows, where)
    loss.backward()
    return loss.detach(), {n: (t.grad if t.grad is not None else torch.zeros_like(t)) for n, t in P.items()}


def warmup_steps(total, ratio):
    return math.ceil(total * ratio)   # as transformers' TrainingArguments.get_warmup_steps


def cosine_lambda(warmup, total):
    """transformers.get_cosine_schedule_with_warmup's multiplier (num_cycles 0.5)."""
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return f


def train_steps(cfg, P, steps, lr, total, clip=1.0, wd=1e-4, warmup_ratio=0.05, where="batches"):
    """Runs len(steps) AdamW steps on P in place; returns the log records."""
    decay = [t for n, t in P.items() if not n.endswith(".bias")]
    no_decay = [t for n, t in P.items() if n.endswith(".bias")]
    groups = [{"params": decay, "weight_decay": wd}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_lambda(warmup_steps(total, warmup_ratio), total))
    log = []
    for k, step in enumerate(steps):
        if not isinstance(step, dict) or "rows" not in step:
            raise RefError(f"{where}: step {k} needs \"rows\"")
        opt.zero_grad(set_to_none=True)
        loss, _, _ = batch_loss(cfg, P, step["rows"], f"{where}: step {k}")
        loss.backward()
        params = list(P.values())
        if clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]))
        used_lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        log.append({"step": k + 1, "loss": loss.item(), "lr": used_lr, "grad_norm": norm.item()})
    return log


# ---- command line -------------------------------------------------------------------------------
def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise RefError(f"{path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise RefError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grads", help="gradients of one batch")
    g.add_argument("--batch", required=True)
    s = sub.add_parser("steps", help="AdamW optimizer steps")
    s.add_argument("--batches", required=True)
    s.add_argument("--lr", type=float, default=1e-5)
    s.add_argument("--total", type=int, required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--clip", type=float, default=1.0)
    s.add_argument("--wd", type=float, default=1e-4)
    s.add_argument("--warmup-ratio", type=float, default=0.05)
    for p in (g, s):
        p.add_argument("--model", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    cfg, P = load_model(a.model, getattr(torch, a.dtype))
    if a.cmd == "grads":
        loss, G = grads(cfg, P, load_json(a.batch).get("rows"), a.batch)
        G["loss"] = loss.reshape(1)
        write_safetensors(a.out, G)
        return
    steps = load_json(a.batches).get("steps")
    if not isinstance(steps, list) or not steps:
        raise RefError(f"{a.batches}: \"steps\" must be a non-empty list")
    if a.total < len(steps):
        raise RefError(f"--total {a.total} is below the {len(steps)} steps in {a.batches}")
    log = train_steps(cfg, P, steps, a.lr, a.total, a.clip, a.wd, a.warmup_ratio, a.batches)
    write_safetensors(a.out, P)
    with open(a.log, "w", encoding="utf-8") as f:
        for rec in log:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    try:
        main()
    except RefError as e:
        sys.exit(f"train_ref: {e}")
