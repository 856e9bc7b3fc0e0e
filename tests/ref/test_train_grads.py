#!/usr/bin/python3
"""Trainer gradients: the C probe (train_probe grads) against the PyTorch reference train_ref.py.

Self-test of the reference first (always runs):
  - its forward equals qwen2_ref.py's logits (an independent implementation, checked there
    against a KV-cache decoder);
  - autograd equals central finite differences in float64 on random entries of every tensor
    (tiny qwen2 with tied head and biases; tiny llama with untied head), on a packed, masked batch;
  - its loss equals an independent formulation (HF-style cross_entropy on shifted logits, averaged
    over the rows that have targets) on an unpacked batch;
  - packing: a packed batch gives the same loss and gradients as its segments as separate rows;
    padding: stripping the padding changes nothing;
  - float32 reference within 1e-5 of float64 (so 1e-3 is a fair bar for an fp32 trainer).
Then, if the probe exists ($S1C_TRAIN_PROBE, else <dir of $S1C_BIN>/tests/train_probe; otherwise
exit 77 after the self-test): for three tiny models (qwen2 GQA tied, qwen2 MQA untied, llama GQA
untied) and two batches each (padding + prompt masks + rows of different lengths; packed with seg),
every parameter's gradient within 1e-3 relative (||g_c - g_ref|| / ||g_ref||) and the loss within
1e-5 relative; a per-tensor table is printed on failure."""
import math, os, random, sys, tempfile
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "common"))
from s1ctest import check, _counts  # noqa: E402
import train_ref as R  # noqa: E402
import make_train_case as M  # noqa: E402

TMP = tempfile.mkdtemp(dir=os.environ.get("S1C_TMP") or None, prefix="train_grads_")
torch.set_num_threads(1)


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def grads_of(mdir, rows, dtype=torch.float64):
    cfg, P = R.load_model(mdir, dtype)
    loss, G = R.grads(cfg, P, rows)
    return loss.item(), G


def same_grads(name, a, b, tol):
    """Checks two (loss, grads) pairs agree: loss and every tensor within tol relative."""
    (la, Ga), (lb, Gb) = a, b
    check(f"{name}: loss", abs(la - lb) <= tol * abs(lb), f"{la!r} vs {lb!r}")
    rows = M.compare_tensors(Gb, Ga, rel_tol=tol)
    check(f"{name}: gradients", all(r[4] for r in rows), "\n" + M.table(rows))


# ---- 1. forward against qwen2_ref.py --------------------------------------------------------------
for arch, extra in (("qwen2", []), ("llama", ["--tied", "1"])):
    out = os.path.join(TMP, f"fwd_{arch}")
    rc = os.system(f"/usr/bin/python3 {HERE}/qwen2_ref.py --out {out} --arch {arch} --n-tokens 24 "
                   f"--hidden 32 --ffn 48 --vocab 96 --seed 3 {' '.join(extra)} > {out}.log 2>&1")
    if not check(f"qwen2_ref.py {arch} runs", rc == 0, open(f"{out}.log").read()):
        continue
    cfg, P = R.load_model(os.path.join(out, "hf"))
    toks = [int(t) for t in open(os.path.join(out, "tokens.txt")).read().split()]
    want = torch.from_numpy(__import__("numpy").fromfile(os.path.join(out, "logits.f32"), dtype="<f4"))
    with torch.no_grad():
        got = R.row_logits(cfg, P, toks).reshape(-1)
    diff = (got - want.double()).abs().max().item()
    check(f"forward {arch} vs qwen2_ref.py", diff < 1e-5, f"max |diff| {diff:.2e}")

# ---- 2. autograd against finite differences -------------------------------------------------------
rng = random.Random(7)
for name, spec in (("fd_qwen2_tied", ("qwen2", 8, 2, 2, 1, 12, 16, True)),
                   ("fd_llama_untied", ("llama", 8, 2, 2, 1, 12, 16, False))):
    d = os.path.join(TMP, name)
    M.make_model(d, *spec, seed=11)
    rows = [M.packed_row(rng, 16, [(5, 1), (6, 2)], 2), M.plain_row(rng, 16, 7, 2, 2)]
    cfg, P = R.load_model(d)
    _, G = R.grads(cfg, P, rows)
    worst, bad = 0.0, []
    with torch.no_grad():
        for pname, t in P.items():
            for _ in range(3):
                i = rng.randrange(t.numel())
                old, h = t.view(-1)[i].item(), 1e-5
                t.view(-1)[i] = old + h
                lp = R.batch_loss(cfg, P, rows)[0].item()
                t.view(-1)[i] = old - h
                lm = R.batch_loss(cfg, P, rows)[0].item()
                t.view(-1)[i] = old
                fd, g = (lp - lm) / (2 * h), G[pname].view(-1)[i].item()
                err = abs(fd - g) / max(abs(g), 1e-3)
                worst = max(worst, err)
                if err > 1e-6:
                    bad.append(f"{pname}[{i}]: autograd {g:.9e} fd {fd:.9e}")
    check(f"{name}: autograd vs finite differences ({3 * len(P)} entries, worst {worst:.1e})",
          not bad, "\n".join(bad))

# ---- 3. the loss against an independent formulation, packing and padding invariance -------------
dirs = M.make_all(os.path.join(TMP, "cases"))
for name, d in dirs.items():
    batch = R.load_json(os.path.join(d, "batch.json"))["rows"]
    packed = R.load_json(os.path.join(d, "packed.json"))["rows"]
    cfg, P = R.load_model(d)
    with torch.no_grad():
        per_row = []
        for row in batch:
            lab = torch.tensor(row["labels"][1:])
            if (lab != -100).any():
                logits = R.row_logits(cfg, P, row["tokens"])[:-1]
                per_row.append(F.cross_entropy(logits, lab, ignore_index=-100))
        hf = torch.stack(per_row).mean().item()
        ours, samples, targets = R.batch_loss(cfg, P, batch)
    check(f"{name}: loss vs HF-style cross_entropy", abs(ours.item() - hf) <= 1e-12 * hf, f"{ours.item()!r} vs {hf!r}")
    check(f"{name}: sample count", samples == 3 and targets > 20, f"{samples} samples, {targets} targets")

    def split(row):   # a packed row as one unpacked row per segment
        run, _ = R.segments(row.get("seg"), len(row["tokens"]))
        out = {}
        for t, r in enumerate(run):
            out.setdefault(r, {"tokens": [], "labels": []})
            out[r]["tokens"].append(row["tokens"][t])
            out[r]["labels"].append(row["labels"][t])
        return list(out.values())
    split_rows = [s for row in packed for s in split(row)]
    same_grads(f"{name}: packed == segments as rows", grads_of(d, packed), grads_of(d, split_rows), 1e-10)

    def unpad(row):
        n = len(row["tokens"])
        while n > 1 and row["labels"][n - 1] == -100 and row["tokens"][n - 1] == cfg.vocab - 1:
            n -= 1
        return {"tokens": row["tokens"][:n], "labels": row["labels"][:n]}
    same_grads(f"{name}: padding changes nothing", grads_of(d, batch), grads_of(d, [unpad(r) for r in batch]), 1e-10)
    g32 = grads_of(d, batch, torch.float32)
    same_grads(f"{name}: float32 reference within 1e-5", g32, grads_of(d, batch), 1e-5)

# bad input: a clear error naming the row, not a traceback
cfg, P = R.load_model(dirs["qwen2_gqa_tied"])
try:
    R.batch_loss(cfg, P, [{"tokens": [1, 2, 999], "labels": [1, 2, 3]}], "b.json")
    check("bad token id rejected", False, "no error")
except R.RefError as e:
    check("bad token id rejected", "row 0: token 2" in str(e), str(e))

# ---- 4. the C probe against the reference ---------------------------------------------------------
probe = M.find_probe()
if probe is None:
    print("train_probe not built: the C comparison is skipped (reference self-test only)")
    M.done(TMP, _counts, skip=True)
for name, d in dirs.items():
    for bname in ("batch", "packed", "long"):
        bj, ref_out, c_out = (os.path.join(d, f"{bname}{s}") for s in (".json", ".ref.safetensors", ".c.safetensors"))
        R.main(["grads", "--model", d, "--batch", bj, "--out", ref_out])
        ok, why = M.run_probe(probe, ["grads", "--model", d, "--batch", bj, "--out", c_out])
        if not check(f"{name} {bname}: train_probe grads runs", ok, why):
            continue
        ref, got = R.read_safetensors(ref_out), R.read_safetensors(c_out)
        rl, cl = ref.pop("loss").item(), got.pop("loss", torch.tensor([math.nan])).item()
        check(f"{name} {bname}: loss", abs(cl - rl) <= 1e-5 * abs(rl), f"C {cl!r} vs ref {rl!r}")
        rows = M.compare_tensors(ref, got, rel_tol=1e-3)
        check(f"{name} {bname}: every gradient within 1e-3", all(r[4] for r in rows), "\n" + M.table(rows))
# ---- 4b. gradient checkpointing (each layer recomputed in the backward) gives the same gradients ------
for name, d in dirs.items():
    for bname in ("packed", "long"):
        bj, ref_out, c_out = (os.path.join(d, f"{bname}{s}") for s in (".json", ".ref.safetensors", ".recompute.safetensors"))
        ok, why = M.run_probe(probe, ["grads", "--model", d, "--batch", bj, "--out", c_out, "--recompute"])
        if not check(f"{name} {bname}: train_probe grads --recompute runs", ok, why):
            continue
        ref, got = R.read_safetensors(ref_out), R.read_safetensors(c_out)
        ref.pop("loss"), got.pop("loss", None)
        rows = M.compare_tensors(ref, got, rel_tol=1e-3)
        check(f"{name} {bname}: recomputed gradients within 1e-3", all(r[4] for r in rows), "\n" + M.table(rows))

# ---- 5. BF16 compute: the same gradients to bf16 rounding (inputs of every product rounded) -----------
for name, d in dirs.items():
    bj, ref_out, c_out = (os.path.join(d, f"batch{s}") for s in (".json", ".ref.safetensors", ".bf16.safetensors"))
    ok, why = M.run_probe(probe, ["grads", "--model", d, "--batch", bj, "--out", c_out, "--bf16"])
    if not check(f"{name}: train_probe grads --bf16 runs", ok, why):
        continue
    ref, got = R.read_safetensors(ref_out), R.read_safetensors(c_out)
    f32 = R.read_safetensors(os.path.join(d, "batch.c.safetensors"))
    for t in (ref, got, f32):
        t.pop("loss", None)
    rows = M.compare_tensors(ref, got, rel_tol=5e-2)
    check(f"{name}: bf16 gradients within 5e-2 (8-bit mantissas through every product)", all(r[4] for r in rows), "\n" + M.table(rows))
    check(f"{name}: bf16 compute really rounds (differs from f32)", any(not torch.equal(got[k], f32[k]) for k in got))
M.done(TMP, _counts, skip=False)
