#!/usr/bin/python3
"""s1c train overfits 8 s1-format samples (loss < 0.05), and s1c generate then writes the
memorized thinking trace and answer for each question — the trainer's format, mask and
weights agree with the generator's prompt end to end."""
import json, os, shutil, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import bytetok  # noqa: E402
from s1ctest import BIN, TMP, _counts, check, finish  # noqa: E402

work = os.path.join(TMP, "train_overfit")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
tok = os.path.join(work, "tok")
vocab = bytetok.write(tok)
base = os.path.join(work, "base")
r = subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", str(vocab), "--tokenizer", tok,
                    "--seed", "1", "--out", base], capture_output=True, text=True)
check("init", r.returncode == 0, r.stderr)

samples = []
for i in range(8):
    a, b = 3 + i, 7 + 2 * i
    samples.append({"question": f"What is {a}+{b}?", "thinking_trajectories": [f"{a}+{b}: {a}+{b - 1}={a + b - 1}, plus 1 is {a + b}."],
                    "attempt": f"{a + b}"})
data = os.path.join(work, "data.jsonl")
with open(data, "w") as f:
    for s in samples:
        f.write(json.dumps(s) + "\n")
out = os.path.join(work, "run")
r = subprocess.run([BIN, "train", "--model", base, "--data", data, "--out", out, "--epochs", "250", "--batch", "8",
                    "--lr", "5e-3", "--warmup-ratio", "0.02"], capture_output=True, text=True)
check("train", r.returncode == 0, r.stderr[-600:])
log = [json.loads(l) for l in open(os.path.join(out, "log.jsonl"))]
check("final loss < 0.05", log[-1]["loss"] < 0.05, log[-1])

for s in samples:
    r = subprocess.run([BIN, "generate", "--model", out, "--prompt", s["question"], "--think-max", "200",
                        "--max-tokens", "120", "--json"], capture_output=True, text=True)
    if not check(f"generate {s['question']}", r.returncode == 0, r.stderr):
        continue
    g = json.loads(r.stdout)
    check(f"{s['question']}: memorized trace", g["thinking"].strip() == s["thinking_trajectories"][0], repr(g["thinking"]))
    check(f"{s['question']}: memorized answer", g["answer"].strip() == "Answer: " + s["attempt"], repr(g["answer"]))

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
