#!/usr/bin/python3
"""Trainer optimizer steps: the C probe (train_probe steps) against the PyTorch reference
train_ref.py (torch.optim.AdamW + clip_grad_norm_ + LambdaLR with transformers' cosine lambda).

Self-test of the reference first (always runs):
  - the schedule: ceil(0.05 x total) warm-up steps, lr multiplier step/warmup then
    0.5 (1 + cos(pi progress)), written out independently; s1's 315 steps give 16 warm-up steps;
  - train_ref's torch AdamW steps equal a hand-written AdamW (decoupled decay on every weight but
    *.bias, bias-corrected moments, clip coefficient clip / (norm + 1e-6) as torch's) to 1e-12,
    with a weight decay large enough to show which tensors are decayed and a clip value that clips
    some steps and not others;
  - the first step has lr 0 and leaves the weights exactly as they were; 20 steps move them;
  - a float32 run of the reference stays within 1e-5 of float64 (the bar below is reachable).
Then, if the probe exists ($S1C_TRAIN_PROBE, else <dir of $S1C_BIN>/tests/train_probe; otherwise
exit 77 after the self-test): three tiny models x 20 steps of mixed batches (padding, masks,
packing), lr 1e-3 so that weights really move; every weight within 1e-5 absolute, and per step the
logged lr (1e-6 relative), grad_norm and loss (1e-4 relative) equal. Tables printed on failure."""
import json, math, os, sys, tempfile
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "common"))
from s1ctest import check, _counts  # noqa: E402
import train_ref as R  # noqa: E402
import make_train_case as M  # noqa: E402

TMP = tempfile.mkdtemp(dir=os.environ.get("S1C_TMP") or None, prefix="train_adamw_")
torch.set_num_threads(1)
dirs = M.make_all(os.path.join(TMP, "cases"))

# ---- 1. the schedule ------------------------------------------------------------------------------
# ceil of the double product, as HF: 100 x 0.07 = 7.000000000000001 -> 8 warm-up steps, not 7
check("warm-up steps: s1's 315 -> 16, 20 -> 1, 100 x 0.07 -> 8 (ceil of the double product, as HF)",
      (R.warmup_steps(315, 0.05), R.warmup_steps(20, 0.05), R.warmup_steps(100, 0.07)) == (16, 1, 8))
for W, T in ((16, 315), (1, 20), (4, 20), (0, 10)):
    f = R.cosine_lambda(W, T)
    want = [s / W if s < W else 0.5 * (1 + math.cos(math.pi * (s - W) / (T - W))) for s in range(T + 1)]
    got = [f(s) for s in range(T + 1)]
    check(f"cosine schedule warm-up {W} total {T}", max(abs(a - b) for a, b in zip(got, want)) < 1e-15
          and got[0] == (0.0 if W else 1.0) and abs(got[T]) < 1e-15, f"{got} vs {want}")


# ---- 2. torch AdamW in the reference against a hand-written one ------------------------------------
def manual_adamw(cfg, P, steps, lr, total, clip, wd, ratio):
    """Independent AdamW: returns the log as (lr, grad_norm) pairs; updates P in place."""
    f = R.cosine_lambda(R.warmup_steps(total, ratio), total)
    m = {n: torch.zeros_like(t) for n, t in P.items()}
    v = {n: torch.zeros_like(t) for n, t in P.items()}
    log = []
    for k, step in enumerate(steps):
        _, G = R.grads(cfg, P, step["rows"])
        norm = math.sqrt(sum((g.double() ** 2).sum().item() for g in G.values()))
        coef = min(1.0, clip / (norm + 1e-6))
        lr_k = lr * f(k)
        with torch.no_grad():
            for n, t in P.items():
                g = G[n] * coef
                t.mul_(1 - lr_k * (0.0 if n.endswith(".bias") else wd))
                m[n] = 0.9 * m[n] + 0.1 * g
                v[n] = 0.95 * v[n] + 0.05 * g * g
                mhat, vhat = m[n] / (1 - 0.9 ** (k + 1)), v[n] / (1 - 0.95 ** (k + 1))
                t.sub_(lr_k * mhat / (vhat.sqrt() + 1e-8))
        log.append((lr_k, norm))
    return log


d = dirs["qwen2_gqa_tied"]
steps = R.load_json(os.path.join(d, "steps.json"))["steps"]
cfg, P0 = R.load_model(d)
init = {n: t.detach().clone() for n, t in P0.items()}
cfg, P1 = R.load_model(d)
R.train_steps(cfg, P1, steps[:1], 1e-3, 20)
check("step 1 (lr 0) leaves every weight as it was", all(torch.equal(P1[n], init[n]) for n in init))

clip = 12.0
cfg, Pt = R.load_model(d)
log = R.train_steps(cfg, Pt, steps, 1e-3, 20, clip=clip, wd=0.05)
cfg, Pm = R.load_model(d)
mlog = manual_adamw(cfg, Pm, steps, 1e-3, 20, clip, 0.05, 0.05)
norms = [r["grad_norm"] for r in log]
check("the self-test clips some steps and not others", min(norms) < clip < max(norms), f"grad norms {norms}")
rows = M.compare_tensors(Pm, Pt, abs_tol=1e-12)
check("torch AdamW + clip + schedule == hand-written AdamW (1e-12)", all(r[4] for r in rows), "\n" + M.table(rows))
bad = [f"step {r['step']}: lr {r['lr']!r} vs {a!r}, grad_norm {r['grad_norm']!r} vs {b!r}" for r, (a, b) in zip(log, mlog)
       if abs(r["lr"] - a) > 1e-15 or abs(r["grad_norm"] - b) > 1e-10 * b]
check("logged lr and grad_norm == hand-written", not bad, "\n".join(bad))
moved = max((Pt[n] - init[n]).abs().max().item() for n in init)
check(f"20 steps at lr 1e-3 move the weights (max |change| {moved:.2e})", moved > 3e-3)
check("log: 20 lines, steps 1..20", [r["step"] for r in log] == list(range(1, 21)))

cfg, P32 = R.load_model(d, torch.float32)
R.train_steps(cfg, P32, steps, 1e-3, 20)
cfg, P64 = R.load_model(d)
R.train_steps(cfg, P64, steps, 1e-3, 20)
rows = M.compare_tensors(P64, P32, abs_tol=1e-5)
worst = max(r[3] for r in rows)
check(f"float32 reference within 1e-5 of float64 after 20 steps (worst {worst:.1e})", all(r[4] for r in rows), "\n" + M.table(rows))

# ---- 3. the C probe against the reference ---------------------------------------------------------
probe = M.find_probe()
if probe is None:
    print("train_probe not built: the C comparison is skipped (reference self-test only)")
    M.done(TMP, _counts, skip=True)
RUNS = {  # model: options beyond --lr/--total (defaults: clip 1, wd 1e-4, warm-up ratio 0.05)
    "qwen2_gqa_tied": ["--lr", "1e-3", "--total", "20"],
    "qwen2_mqa_untied": ["--lr", "1e-3", "--total", "20", "--clip", "12", "--wd", "0.01", "--warmup-ratio", "0.2"],
    "llama_gqa_untied": ["--lr", "2e-3", "--total", "30", "--wd", "0.01"],
}
for name, opts in RUNS.items():
    d = dirs[name]
    args = ["steps", "--model", d, "--batches", os.path.join(d, "steps.json"), *opts]
    R.main(args + ["--out", f"{d}/w.ref.safetensors", "--log", f"{d}/log.ref.jsonl"])
    ok, why = M.run_probe(probe, args + ["--out", f"{d}/w.c.safetensors", "--log", f"{d}/log.c.jsonl"])
    if not check(f"{name}: train_probe steps runs", ok, why):
        continue
    ref, got = R.read_safetensors(f"{d}/w.ref.safetensors"), R.read_safetensors(f"{d}/w.c.safetensors")
    rows = M.compare_tensors(ref, got, abs_tol=1e-5)
    check(f"{name}: every weight within 1e-5 after 20 steps", all(r[4] for r in rows), "\n" + M.table(rows))
    rlog = [json.loads(x) for x in open(f"{d}/log.ref.jsonl")]
    try:
        clog = [json.loads(x) for x in open(f"{d}/log.c.jsonl")]
    except (OSError, ValueError) as e:
        check(f"{name}: probe log readable", False, str(e))
        continue

    def close(a, b, tol):
        return isinstance(a, (int, float)) and abs(a - b) <= tol * max(abs(b), 1e-12)
    bad = [f"step {r['step']}: ref {r} / C {c}" for r, c in zip(rlog, clog)
           if c.get("step") != r["step"] or not close(c.get("lr"), r["lr"], 1e-6)
           or not close(c.get("grad_norm"), r["grad_norm"], 1e-4) or not close(c.get("loss"), r["loss"], 1e-4)]
    check(f"{name}: log lines (step, lr, grad_norm, loss) equal", len(clog) == len(rlog) and not bad,
          f"{len(clog)} lines, want {len(rlog)}\n" + "\n".join(bad))
M.done(TMP, _counts, skip=False)
