#!/usr/bin/python3
"""s1c generate with budget forcing, as a user runs it: the s1 layout around --prompt, the
JSON fields of SPEC.md §8, budgets on a Qwen2-shaped model with the real Qwen2.5 tokenizer,
waits on stories260K with "." as the end of thinking, and bad options."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN, DATA, TMP = os.environ["S1C_BIN"], os.environ["S1C_DATA"], os.environ["S1C_TMP"]


def gen(*args):
    r = subprocess.run([BIN, "generate", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr

qwen = os.path.join(TMP, "bf_qwen_tiny")
if not os.path.exists(os.path.join(qwen, "model.safetensors")):
    subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", "151936", "--tokenizer",
                    f"{DATA}/qwen2.5-tokenizer", "--seed", "4", "--out", qwen], check=True, capture_output=True)

FIELDS = ("text", "thinking", "answer", "thinking_tokens", "answer_tokens", "waits", "stop_reason", "timings", "think_end_reason")
for budget in (0, 1, 7, 30):
    rc, out, err = gen("--model", qwen, "--prompt", "What is 2+2?", "--think-max", str(budget), "--answer-max", "4", "--json")
    d = json.loads(out) if rc == 0 else {}
    check(f"budget {budget}: fields", all(k in d for k in FIELDS), err + out[:200])
    if not d:
        continue
    check(f"budget {budget}: invariant", d["thinking_tokens"] <= budget, d["thinking_tokens"])
    # the random model never ends thinking by itself: the end is forced at the budget
    check(f"budget {budget}: forced", d["think_end_reason"] == "budget" and d["thinking_tokens"] == budget, str(d["think_end_reason"]))
    check(f"budget {budget}: suffix", "<|im_start|>answer\nFinal Answer:" in d["text"], repr(d["text"][-60:]))
    check(f"budget {budget}: answer limit", d["answer_tokens"] == 4 and d["stop_reason"] == "answer_limit", d["stop_reason"])
    pt = d["prompt_tokens"]
    check(f"budget {budget}: s1 layout", pt[:1] == [151644] and pt[-2:] == [151644, 26865], pt[-4:])  # ...<|im_start|>think

# auto = context - prompt - forced end ("\n<|im_start|>answer\nFinal Answer:" = 7 tokens) - 100
rc, out, err = gen("--model", qwen, "--prompt", "Q", "--think-max", "auto", "--answer-max", "0", "--json", "--ctx", "300")
d = json.loads(out) if rc == 0 else {}
check("auto budget", rc == 0 and d["max_thinking_tokens"] == 300 - len(d["prompt_tokens"]) - 7 - 100 and d["stop_reason"] == "budget",
      err + str({k: d.get(k) for k in ("max_thinking_tokens", "stop_reason")}))
rc, out, err = gen("--model", qwen, "--prompt", "Q", "--think-max", "5", "--answer-prefix", "So:", "--answer-max", "0", "--json")
d = json.loads(out) if rc == 0 else {}
check("answer prefix", rc == 0 and d["text"].endswith("<|im_start|>answer\nSo:"), repr(d.get("text", "")[-40:]))
rc, out, err = gen("--model", qwen, "--prompt", "Q", "--think-max", "9", "--answer-max", "3")
check("plain text streams the continuation", rc == 0 and "<|im_start|>answer\nFinal Answer:" in out, out[-80:] + err)

st = f"{DATA}/models/stories260K/stories260K.gguf"
rc, out, err = gen("--model", st, "--raw", "--prompt", "Once upon a time", "--think-start", "", "--think-end", ".",
                   "--wait-str", " Then", "--waits", "2", "--answer-max", "12", "--json")
d = json.loads(out) if rc == 0 else {}
check("stories waits", rc == 0 and d["waits"] == 2 and d["thinking"].count(" Then") == 2, err + str(d.get("thinking")))
check("thinking steps counted", d.get("thinking_steps") == 1, str(d.get("thinking_steps")))
check("stories answer", d.get("answer_tokens") == 12 and d.get("think_end_reason") == "think_end", str(d.get("answer_tokens")))
rc, out, err = gen("--model", st, "--raw", "--prompt", "Once upon a time", "--think-start", "", "--think-end", ".",
                   "--think-min", "40", "--think-max", "60", "--answer-max", "5", "--json")
d = json.loads(out) if rc == 0 else {}
check("stories min/max", rc == 0 and 40 <= d["thinking_tokens"] <= 60, err + str(d.get("thinking_tokens")))
rc, out, err = gen("--model", st, "--raw", "--prompt", "Once upon a time", "--think-start", "", "--think-end", ".",
                   "--waits", "1", "--think-max", "20", "--bf-compat", "s1-eval", "--answer-max", "3", "--json")
d = json.loads(out) if rc == 0 else {}
check("s1-eval compat runs", rc == 0 and d["thinking_tokens"] <= 20, err)

# rejection sampling: redraw until the thinking fits; tries reported
rc, out, err = gen("--model", st, "--raw", "--prompt", "Once upon a time", "--think-start", "", "--think-end", ".",
                   "--think-max", "12", "--reject", "50", "--temperature", "0.9", "--seed", "1", "--answer-max", "3", "--json")
d = json.loads(out) if rc == 0 else {}
check("reject: fits", rc == 0 and d["thinking_tokens"] <= 12 and d["think_end_reason"] == "think_end" and d["tries"] >= 1, err + str(d.get("tries")))
rc, out, err = gen("--model", st, "--raw", "--prompt", "Once upon a time", "--think-start", "", "--think-end", ".",
                   "--think-max", "1", "--reject", "3", "--temperature", "0.9", "--json")
d = json.loads(out) if rc == 0 else {}
check("reject: gives up", rc == 0 and d["stop_reason"] == "rejected" and d["tries"] == 3, err + str(d.get("stop_reason")))
# the paper's other controls are question suffixes
rc, out, err = gen("--model", qwen, "--prompt", "2+2?", "--control", "tokens", "--think-max", "50", "--answer-max", "0", "--json")
d = json.loads(out) if rc == 0 else {}
check("control tokens runs", rc == 0, err)
r = subprocess.run([BIN, "tokenize", "--tokenizer", qwen, "--decode"], input=" ".join(map(str, d.get("prompt_tokens", []))), capture_output=True, text=True)
check("control tokens suffix", "2+2?\n\nThink for up to 50 tokens.<|im_end|>" in r.stdout, r.stdout[-120:])
rc, out, err = gen("--model", qwen, "--prompt", "2+2?", "--control", "long", "--answer-max", "0", "--think-max", "3", "--json")
d = json.loads(out) if rc == 0 else {}
r = subprocess.run([BIN, "tokenize", "--tokenizer", qwen, "--decode"], input=" ".join(map(str, d.get("prompt_tokens", []))), capture_output=True, text=True)
check("control long suffix", "Answer after a long amount of thinking." in r.stdout, r.stdout[-200:])

def refused(name, *args, needle=""):
    rc, out, err = gen(*args)
    lines = err.strip().split("\n")
    check(name, rc != 0 and len(lines) == 1 and lines[0].startswith("s1c: ") and needle in lines[0], err)

refused("negative budget", "--model", qwen, "--prompt", "Q", "--think-max", "-3", needle="--think-max")
refused("min above max", "--model", qwen, "--prompt", "Q", "--think-max", "5", "--think-min", "9", needle="min_thinking_tokens")
refused("bad compat", "--model", qwen, "--prompt", "Q", "--bf-compat", "vllm", needle="s1-eval")
refused("ids need --raw", "--model", qwen, "--prompt-ids", "1,2", "--waits", "1", needle="--raw")
refused("empty think end", "--model", qwen, "--prompt", "Q", "--think-end", "", needle="think_end")
refused("reject needs a budget", "--model", qwen, "--prompt", "Q", "--reject", "3", needle="--think-max")
refused("bad control", "--model", qwen, "--prompt", "Q", "--control", "medium", needle="--control")

finish()
