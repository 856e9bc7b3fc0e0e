#!/usr/bin/python3
"""s1c demo --quick runs every stage with the real subcommands and leaves the files a user
looks at: the pool and test set, curate's selection, the trained models (HF directories), eval
summaries with one point per budget x waits setting, the report links, and the table; a second
run reuses every stage; one directory never mixes a quick run with another kind. When the
build embeds data/demo's models, plain `s1c demo` evaluates them without training."""
import json, os, shutil, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, TMP, _counts, check, finish  # noqa: E402

out = os.path.join(TMP, "demo_quick")
shutil.rmtree(out, ignore_errors=True)
r = subprocess.run([BIN, "demo", "--quick", "--out", out, "--seed", "2"], capture_output=True, text=True, timeout=1500)
check("s1c demo --quick succeeds", r.returncode == 0, r.stderr[-1500:])
pool = [json.loads(l) for l in open(os.path.join(out, "pool.jsonl"))]
check("pool records in s1K's layout", all(k in pool[0] for k in ("id", "question", "solution", "thinking_trajectories", "attempt", "domain")), pool[0])
check("five domains in the pool", len({p["domain"] for p in pool}) == 5)
check("the teacher checks its result after Wait", any("Wait, again from" in p["thinking_trajectories"][0] for p in pool))
check("checks catch slips: a pass that differs, then a repeat",
      any(" differs." in p["thinking_trajectories"][0] and p["thinking_trajectories"][0].endswith(" again.") for p in pool))
check("difficulty is the length of the list", {p["difficulty"]: p["terms"] for p in pool if p["terms"] <= 3}.keys() == {1})
sel = [json.loads(l) for l in open(os.path.join(out, "curate", "s1k.jsonl"))]
check("curate selected k=300", len(sel) == 300, len(sel))
test_q = {json.loads(l)["question"] for l in open(os.path.join(out, "test.jsonl"))}
check("no test question in the SFT set", not any(s["question"] in test_q for s in sel))
for m in ("pretrain", "sft", "sft-random"):
    check(f"{m} is an HF directory", all(os.path.exists(os.path.join(out, m, f)) for f in ("config.json", "model.safetensors", "tokenizer.json")))
summary = json.load(open(os.path.join(out, "summary.json")))
pts = summary.get("points", [])
check("8 settings (4 budgets x 2 waits) in the SFT eval", len(pts) == 8, len(pts))
check("points carry method, budget, waits, accuracy",
      all(all(k in p for k in ("method", "max_thinking_tokens", "num_waits", "accuracy")) for p in pts), pts[:1])
for f in ("report.html", "scaling.svg"):
    check(f"{f} at the top level", os.path.exists(os.path.join(out, f)))
check("the table is printed", "SFT on curated set" in r.stdout and "before SFT" in r.stdout, r.stdout[-800:])
r2 = subprocess.run([BIN, "demo", "--quick", "--out", out, "--seed", "2"], capture_output=True, text=True, timeout=600)
check("a second run reuses every finished stage", r2.returncode == 0 and "s1c train" not in r2.stderr, r2.stderr[-500:])
r3 = subprocess.run([BIN, "demo", "--out", out], capture_output=True, text=True, timeout=600)
check("a quick run's directory refuses another kind of run", r3.returncode != 0 and "quick run" in r3.stderr, r3.stderr[-300:])

src = os.environ.get("S1C_SRC", "")
if src and os.path.exists(os.path.join(src, "data", "demo", "sft", "model.safetensors")):
    emb = os.path.join(TMP, "demo_embedded")
    shutil.rmtree(emb, ignore_errors=True)
    r = subprocess.run([BIN, "demo", "--out", emb], capture_output=True, text=True, timeout=900)
    check("plain s1c demo evaluates the shipped models", r.returncode == 0 and "s1c train" not in r.stderr, r.stderr[-800:])
    pts = json.load(open(os.path.join(emb, "summary.json"))).get("points", []) if r.returncode == 0 else []
    check("its summary has the full sweep (budgets x 0/1/2/4 waits)", len(pts) >= 16 and {p["num_waits"] for p in pts} == {0, 1, 2, 4}, len(pts))
    pre = json.load(open(os.path.join(emb, "eval-pretrain", "summary.json"))).get("points", []) if r.returncode == 0 else []
    best = max((p["accuracy"] for p in pre), default=0)
    check("the shipped base model solves most problems with ample budget (README: 96.7%)", best > 0.9, best)
    check("scaling.svg has a line per model", r.returncode == 0 and open(os.path.join(emb, "scaling.svg")).read().count("<polyline") == 7)
    if _counts["failed"] == 0:
        shutil.rmtree(emb, ignore_errors=True)
if _counts["failed"] == 0:
    shutil.rmtree(out, ignore_errors=True)
finish()
