#!/usr/bin/python3
"""PyTorch CPU baseline for `s1c train`: times one training step (forward + backward + clipping
+ AdamW) of a Qwen2/Llama-shaped model with random weights on random tokens.

  OMP_WAIT_POLICY=PASSIVE bench/torch_train_step.py [--preset qwen2.5-0.5b|small|tiny |
      --config config.json] [--seq 512] [--batch 1] [--threads N] [--repeats 3] [--warmup 1]
      [--types f32,bf16]

Prints JSON lines on stdout (diagnostics and warnings go to stderr):
  {"name": "torch_blas", "threads", "blas": [loaded BLAS libraries], "matmul_2048_gflops"}
  {"name": "torch_train_step", "type": "f32"|"bf16", "preset", "threads", "seq", "batch",
   "params", "matmul_params", "tok_s", "step_s" (best), "step_s_median", "repeats",
   "flops_per_token", "gflops" (flops_per_token * tok_s / 1e9)}
It is the baseline the C benchmark runs in the same process environment (same model shape, batch,
sequence and thread count) to report s1c's training speed as a ratio to PyTorch's.

The step is what a trainer does: zero_grad, forward (bf16: under torch.autocast("cpu",
torch.bfloat16), fp32 master weights), mean cross-entropy over every next-token target,
backward, clip_grad_norm_(1.0), AdamW (betas 0.9/0.95, eps 1e-8, wd 1e-4, foreach) and a
scheduler step. The model is batched (one GEMM per weight for all batch x seq tokens); attention
is the explicit masked-softmax form of HF's eager Qwen2 attention (torch 1.13 has no fused SDPA).

FLOPs per trained token (written down so the fraction of peak is reproducible):
  flops_per_token = 6 * N_matmul + 6 * L * H * D * (T + 1)
  N_matmul = the weights used in matrix products: per layer q, k, v, o, gate, up, down, plus
             the output head (the embedding matrix when tied); embedding lookup, norms and biases
             are not counted.
  attention: per layer, token and attended position, Q K^T and A V cost 2 H D FLOPs each;
             a causal token attends (T + 1) / 2 positions on average, so the forward costs
             2 H D (T + 1) per layer and token; training = 3 x forward (backward = 2 x forward).
             The dense implementation here also computes the masked half, which is not counted.
Runtime: a Qwen2.5-0.5B-shaped step at seq 512 took 15 s (fp32) and 9.5 s (bf16) on 2 cores of
the dev machine (the first, warm-up step ~35 s: first-touch of ~14 GB); the default run (1 warm-up
+ 3 repeats per type) takes ~2-3 minutes and peaks at ~14 GB resident. Use --preset small or tiny
for quick checks (seconds).
"""
import argparse, json, math, os, statistics, sys, time

PRESETS = {  # hidden, ffn, layers, heads, kv heads, vocab, tied
    "qwen2.5-0.5b": (896, 4864, 24, 14, 2, 151936, True),
    "small": (256, 1024, 4, 4, 2, 8192, True),
    "tiny": (64, 176, 2, 4, 2, 512, True),
}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=list(PRESETS), default="qwen2.5-0.5b")
    ap.add_argument("--config", help="an HF config.json to take the shape from (overrides --preset)")
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--types", default="f32,bf16")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.types = a.types.split(",")
    if any(t not in ("f32", "bf16") for t in a.types):
        ap.error("--types takes f32 and/or bf16")
    if min(a.seq, a.batch, a.threads, a.repeats) < 1 or a.warmup < 0:
        ap.error("--seq, --batch, --threads and --repeats must be positive")
    return a


a = parse_args()
# Before torch loads: OpenMP reads these at start-up. PASSIVE: idle OpenMP threads sleep instead of
# spinning, which PyTorch needs to run at its best next to other thread pools; OpenBLAS (pthread
# build) sizes its own pool from OPENBLAS_NUM_THREADS, not from torch.set_num_threads.
if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
    if "OMP_WAIT_POLICY" in os.environ:
        print(f"warning: OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, setting PASSIVE", file=sys.stderr)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
os.environ["OMP_NUM_THREADS"] = str(a.threads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(a.threads)


def shape():
    if a.config:
        with open(a.config, encoding="utf-8") as f:
            c = json.load(f)
        return (c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["num_attention_heads"],
                c.get("num_key_value_heads") or c["num_attention_heads"], c["vocab_size"],
                bool(c.get("tie_word_embeddings", False)), c.get("model_type", "qwen2") == "qwen2",
                c.get("rope_theta", 1e6), c.get("rms_norm_eps", 1e-6))
    return PRESETS[a.preset] + (True, 1e6, 1e-6)


E, FF, L, H, KV, V, TIED, BIAS, THETA, EPS = shape()
D = E // H


def blas_check():
    """Which BLAS torch loaded and how fast a 2048^2 f32 matmul runs (reference BLAS: ~1-2 GFLOP/s)."""
    x, y = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        torch.mm(x, y)
        best = min(best, time.perf_counter() - t)
    gflops = 2 * 2048 ** 3 / best / 1e9
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in os.path.basename(p).lower() or "openblas" in p.lower() or "mkl" in os.path.basename(p).lower():
                libs.add(os.path.realpath(p))
    print(json.dumps({"name": "torch_blas", "threads": a.threads, "blas": sorted(libs),
                      "matmul_2048_gflops": round(gflops, 2)}), flush=True)
    if not any("openblas" in p for p in libs) or gflops < 5 * a.threads:
        print(f"warning: torch looks like it runs on reference BLAS ({sorted(libs)}, {gflops:.1f} GFLOP/s "
              "for a 2048^2 matmul): install libopenblas0-pthread", file=sys.stderr)


def init_params():
    """Random weights (std 0.02, norms 1) as fp32 leaf tensors, HF names."""
    g = torch.Generator().manual_seed(a.seed)

    def w(*s):
        return (torch.randn(*s, generator=g) * 0.02).requires_grad_(True)
    P = {"embed": w(V, E), "norm": torch.ones(E, requires_grad=True)}
    for i in range(L):
        P.update({f"{i}.ln1": torch.ones(E, requires_grad=True), f"{i}.ln2": torch.ones(E, requires_grad=True),
                  f"{i}.q": w(H * D, E), f"{i}.k": w(KV * D, E), f"{i}.v": w(KV * D, E), f"{i}.o": w(E, H * D),
                  f"{i}.gate": w(FF, E), f"{i}.up": w(FF, E), f"{i}.down": w(E, FF)})
        if BIAS:
            P.update({f"{i}.q.bias": torch.zeros(H * D, requires_grad=True),
                      f"{i}.k.bias": torch.zeros(KV * D, requires_grad=True),
                      f"{i}.v.bias": torch.zeros(KV * D, requires_grad=True)})
    if not TIED:
        P["head"] = w(V, E)
    return P


def rmsnorm(x, w):
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + EPS) * w).to(x.dtype)


def rotate_half(x):
    return torch.cat([-x[..., D // 2:], x[..., :D // 2]], -1)


def forward_loss(P, tokens, labels, cos, sin, mask):
    """Mean next-token cross-entropy of a [B, T] batch (labels already shifted)."""
    B, T = tokens.shape
    x = P["embed"][tokens]
    for i in range(L):
        h = rmsnorm(x, P[f"{i}.ln1"])
        q = F.linear(h, P[f"{i}.q"], P.get(f"{i}.q.bias")).view(B, T, H, D).transpose(1, 2)
        k = F.linear(h, P[f"{i}.k"], P.get(f"{i}.k.bias")).view(B, T, KV, D).transpose(1, 2)
        v = F.linear(h, P[f"{i}.v"], P.get(f"{i}.v.bias")).view(B, T, KV, D).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        att = torch.softmax(torch.matmul(q, k.transpose(2, 3)) / math.sqrt(D) + mask, -1, dtype=torch.float32)
        o = torch.matmul(att.to(v.dtype), v).transpose(1, 2).reshape(B, T, H * D)
        x = x + F.linear(o, P[f"{i}.o"])
        h = rmsnorm(x, P[f"{i}.ln2"])
        x = x + F.linear(F.silu(F.linear(h, P[f"{i}.gate"])) * F.linear(h, P[f"{i}.up"]), P[f"{i}.down"])
    logits = F.linear(rmsnorm(x, P["norm"]), P["embed"] if TIED else P["head"])
    return F.cross_entropy(logits.float().view(-1, V), labels.view(-1))


def run(dtype):
    P = init_params()
    params = list(P.values())
    decay = [t for n, t in P.items() if not n.endswith(".bias")]
    nodecay = [t for n, t in P.items() if n.endswith(".bias")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-5, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    total = a.warmup + a.repeats
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / (total + 1))
    g = torch.Generator().manual_seed(a.seed + 1)
    seqs = torch.randint(0, V, (a.batch, a.seq + 1), generator=g)
    tokens, labels = seqs[:, :-1].contiguous(), seqs[:, 1:].contiguous()
    T = a.seq
    inv = THETA ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1).float(), torch.cat([ang.sin()] * 2, -1).float()
    mask = torch.full((T, T), -math.inf).triu(1)
    times = []
    for s in range(total):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = forward_loss(P, tokens, labels, cos, sin, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        dt = time.perf_counter() - t0
        print(f"[torch_train_step] {dtype} step {s + 1}/{total}: {dt:.2f} s, loss {loss.item():.4f}"
              f"{' (warm-up)' if s < a.warmup else ''}", file=sys.stderr, flush=True)
        if s >= a.warmup:
            times.append(dt)
    n_all = sum(t.numel() for t in params)
    return n_all, min(times), statistics.median(times)


def matmul_params():
    per_layer = E * H * D + 2 * E * KV * D + H * D * E + 3 * E * FF
    return L * per_layer + V * E


blas_check()
NM = matmul_params()
FPT = 6 * NM + 6 * L * H * D * (a.seq + 1)
for ty in a.types:
    n_all, best, med = run(ty)
    tok = a.batch * a.seq
    print(json.dumps({"name": "torch_train_step", "type": ty, "preset": a.config or a.preset, "threads": a.threads,
                      "seq": a.seq, "batch": a.batch, "params": n_all, "matmul_params": NM,
                      "tok_s": round(tok / best, 3), "step_s": round(best, 4), "step_s_median": round(med, 4),
                      "repeats": a.repeats, "flops_per_token": FPT,
                      "gflops": round(FPT * tok / best / 1e9, 3)}), flush=True)
