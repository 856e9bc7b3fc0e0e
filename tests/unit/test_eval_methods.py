#!/usr/bin/python3
"""s1c eval --method: the paper's other test-time controls on a tiny random Qwen2-shaped model
with the real Qwen2.5 tokenizer: token- and step-conditional prompts (no forcing), the
class-conditional pair, and rejection sampling (redrawn until the thinking fits). Checks the
records (method, class, tries), the budgets each method does or does not enforce, and the
summary's points per setting."""
import json, os, shutil, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, DATA, TMP, _counts, check, finish  # noqa: E402

work = os.path.join(TMP, "eval_methods")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
cfg = os.path.join(work, "config.json")
json.dump({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 151936,
           "max_position_embeddings": 160, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True},
          open(cfg, "w"))
model = os.path.join(work, "m")
r = subprocess.run([BIN, "init", "--arch", "qwen2", "--config", cfg, "--tokenizer", os.path.join(DATA, "qwen2.5-tokenizer"),
                    "--seed", "2", "--out", model], capture_output=True, text=True)
check("init", r.returncode == 0, r.stderr)
bench = os.path.join(work, "b.jsonl")
with open(bench, "w") as f:
    for i in range(3):
        f.write(json.dumps({"id": f"q{i}", "question": f"What is {i}+1?", "answer": str(i + 1)}) + "\n")


def run(name, *args):
    out = os.path.join(work, name)
    r = subprocess.run([BIN, "eval", "--model", model, "--bench-file", bench, "--out", out, "--answer-max", "4", "--quiet", *args],
                       capture_output=True, text=True, timeout=600)
    recs = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl"))] if r.returncode == 0 else []
    summ = json.load(open(os.path.join(out, "summary.json"))) if r.returncode == 0 else {}
    return r, recs, summ


r, recs, summ = run("tok", "--method", "token-conditional", "--think-budgets", "8,16")
check("token-conditional runs", r.returncode == 0, r.stderr[-400:])
check("token-conditional records", len(recs) == 6 and all(x["method"] == "token-conditional" for x in recs), recs[:1])
check("token-conditional does not force the end at the budget", all(x["think_end_reason"] != "budget" for x in recs),
      [x["think_end_reason"] for x in recs])
check("points per budget with the method", sorted((p["method"], p["max_thinking_tokens"]) for p in summ.get("points", [])) ==
      [("token-conditional", 8), ("token-conditional", 16)], summ.get("points"))

def paragraphs(t):
    """eval_count_steps for a thinking without step markers: non-blank lines after a blank one."""
    n, inside = 0, False
    for line in t.split("\n"):
        blank = not line.strip(" \t\r")
        n += not blank and not inside
        inside = not blank
    return n


r, recs, summ = run("steps", "--method", "step-conditional", "--think-budgets", "2,50")
check("step-conditional runs", r.returncode == 0 and len(recs) == 6, r.stderr[-400:])
check("step-conditional records: a budget in steps, the steps counted",
      all(x["max_thinking_tokens"] is None and x["max_thinking_steps"] in (2, 50) and x["thinking_steps"] == paragraphs(x["thinking"])
          and "steps left" not in x["thinking"] for x in recs), [(x.get("max_thinking_steps"), x.get("thinking_steps")) for x in recs])
for p in summ.get("points", []):
    runs = [x for x in recs if x["max_thinking_steps"] == p["max_thinking_steps"]]
    check(f"step-conditional point {p['max_thinking_steps']}: steps, Control in steps", p["budget_unit"] == "steps"
          and abs(p["avg_thinking_steps"] - sum(x["thinking_steps"] for x in runs) / len(runs)) < 1e-9
          and abs(p["control"] - sum(x["thinking_steps"] <= p["max_thinking_steps"] for x in runs) / len(runs)) < 1e-9, (p, runs[:1]))
r = subprocess.run([BIN, "eval", "--model", model, "--bench-file", bench, "--out", os.path.join(work, "steps"), "--answer-max", "4",
                    "--method", "step-conditional", "--think-budgets", "2,50"], capture_output=True, text=True, timeout=600)
lines = [l for l in r.stderr.split("\n") if l.startswith("[") and " samples  acc " in l]
check("a resumed local run: nothing to redo, the progress line starts (and ends) at 6/6",
      r.returncode == 0 and "0 samples to run (6 already in" in r.stderr and lines and lines[-1].split("]")[1].split()[0] == "6/6",
      r.stderr[-400:])

r, recs, summ = run("cls", "--method", "class-conditional")
check("class-conditional runs", r.returncode == 0, r.stderr[-400:])
check("class-conditional: a short and a long point", sorted(p.get("class") for p in summ.get("points", [])) == ["long", "short"],
      summ.get("points"))

r, recs, summ = run("rej", "--method", "rejection", "--think-budgets", "12", "--temperature", "1", "--seed", "3", "--reject-tries", "6")
check("rejection runs", r.returncode == 0, r.stderr[-400:])
fit = [x for x in recs if x["stop_reason"] != "rejected"]
check("rejection: accepted draws fit the budget", all(x["thinking_tokens"] <= 12 for x in fit), [(x["thinking_tokens"], x["stop_reason"]) for x in recs])
check("rejection: a sample still too long was drawn --reject-tries times",
      all(x.get("tries") == 6 for x in recs if x["stop_reason"] == "rejected") and len(recs) == 3, [(x["stop_reason"], x.get("tries")) for x in recs])
r, _, _ = run("rej0", "--method", "rejection", "--think-budgets", "12")
check("rejection without temperature is refused", r.returncode != 0 and "temperature" in r.stderr, r.stderr)
r, _, _ = run("tok0", "--method", "token-conditional")
check("token-conditional needs numeric budgets", r.returncode != 0 and "numeric" in r.stderr, r.stderr)
r, _, _ = run("bad", "--method", "nope")
check("unknown method refused", r.returncode != 0 and "--method" in r.stderr, r.stderr)

# comparing runs: a run against itself has no discordant problem; runs without a shared setting are an error
r = subprocess.run([BIN, "eval", "--compare", os.path.join(work, "tok"), os.path.join(work, "tok")], capture_output=True, text=True)
rows = [l.split() for l in r.stdout.strip().split("\n")[1:]]
check("--compare: one row per shared setting, nothing only one run got right",
      r.returncode == 0 and len(rows) == 2 and all(x[-3] == "0" and x[-2] == "0" and float(x[-1]) == 1 for x in rows), r.stdout + r.stderr)
r = subprocess.run([BIN, "eval", "--compare", os.path.join(work, "tok"), os.path.join(work, "cls")], capture_output=True, text=True)
check("--compare without a shared setting is an error", r.returncode != 0 and "share no setting" in r.stderr, r.stderr)

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
