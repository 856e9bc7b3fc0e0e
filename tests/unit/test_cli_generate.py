#!/usr/bin/python3
"""s1c generate's behaviour as a user sees it (stories260K): --max-tokens, --steps, stop
strings (cut from the output, also when they span tokens), --no-echo, --json fields, seeded
sampling reproducible, streaming output equal to the JSON text."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN = os.environ["S1C_BIN"]
D = os.path.join(os.environ["S1C_DATA"], "models", "stories260K")
BASE = [BIN, "generate", "--model", f"{D}/stories260K.gguf", "--prompt", "Once upon a time"]


def run(*extra):
    r = subprocess.run(BASE + list(extra), capture_output=True)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

def js(*extra):
    rc, out, err = run(*extra, "--json")
    return json.loads(out) if rc == 0 else {"error": err}

g = js("--max-tokens", "50")
check("json fields", all(k in g for k in ("text", "prompt_tokens", "tokens", "stop_reason", "usage", "timings")), str(g)[:200])
check("max-tokens", len(g["tokens"]) == 50 and g["stop_reason"] == "max_tokens", str(len(g["tokens"])))
check("usage", g["usage"] == {"prompt_tokens": len(g["prompt_tokens"]), "completion_tokens": 50}, str(g["usage"]))
s = js("--steps", "20")
check("steps counts prompt positions", len(s["prompt_tokens"]) + len(s["tokens"]) == 21, f"{len(s['prompt_tokens'])}+{len(s['tokens'])}")
check("steps and max-tokens agree", s["tokens"] == g["tokens"][:len(s["tokens"])])

rc, out, _ = run("--max-tokens", "50", "--no-echo")
check("stream equals json text", rc == 0 and out == g["text"] + "\n", repr(out[:80]) + " vs " + repr(g["text"][:80]))
rc, out, _ = run("--max-tokens", "50")
check("echo prints the prompt first", out.startswith("Once upon a time") and out[len("Once upon a time"):] == g["text"] + "\n", repr(out[:60]))

# a stop string made of two words (several tokens), from the greedy text itself
words = g["text"].split()
stop = " ".join(words[3:5])
cut = g["text"].index(stop)
st = js("--max-tokens", "50", "--stop", stop)
check("stop string cut", st["text"] == g["text"][:cut] and st["stop_reason"] == "stop_string", repr(st["text"]) + " want " + repr(g["text"][:cut]))
rc, out, _ = run("--max-tokens", "50", "--stop", stop, "--no-echo")
check("stop string streamed", out == g["text"][:cut] + "\n", repr(out))
st2 = js("--max-tokens", "50", "--stop", "zzz-never", "--stop", stop)
check("second stop string", st2["text"] == g["text"][:cut])

a = js("--temperature", "1.0", "--seed", "7", "--max-tokens", "40")
b = js("--temperature", "1.0", "--seed", "7", "--max-tokens", "40")
c = js("--temperature", "1.0", "--seed", "8", "--max-tokens", "40")
check("seeded sampling reproducible", a["tokens"] == b["tokens"])
check("different seeds differ", a["tokens"] != c["tokens"])
t = js("--temperature", "0.8", "--top-k", "5", "--top-p", "0.9", "--min-p", "0.05", "--repeat-penalty", "1.1", "--seed", "3", "--max-tokens", "30")
check("all sampler flags", len(t.get("tokens", [])) == 30, str(t)[:200])

# --kv-type: 16-bit caches hold keys and values to 2^-8..2^-11 relative; stories260K's greedy text
# keeps its first 20 tokens
for kt in ("f16", "bf16"):
    h = js("--max-tokens", "50", "--kv-type", kt)
    check(f"kv-type {kt}", h.get("tokens", [])[:20] == g["tokens"][:20], str(h)[:200])
rc, _, err = run("--bf16-math", "fast")
check("bf16-math rejects other values", rc != 0 and "--bf16-math must be exact or dot" in err, err)
rc, _, err = run("--kv-type", "q8_0")
check("kv-type rejects other types", rc != 0 and "--kv-type must be auto, f32, f16 or bf16" in err, err)

# --prompts-file: every prompt through one engine, one JSON line each, input order, fields kept
TMP = os.environ["S1C_TMP"]
prompts = ["Once upon a time", "Sam and Lily went", "The little bird", "One day, Tom", "Lily saw a big"]
pf = os.path.join(TMP, "prompts.jsonl")
with open(pf, "w") as f:
    for i, p in enumerate(prompts):
        f.write(json.dumps({"prompt": p, "id": i, "meta": {"k": [i]}}) + "\n")
MODEL = ["--model", f"{D}/stories260K.gguf"]
r = subprocess.run([BIN, "generate", *MODEL, "--prompts-file", pf, "--max-tokens", "40", "--json"], capture_output=True, text=True)
lines = [json.loads(l) for l in r.stdout.splitlines()]
check("prompts-file: one line per prompt", r.returncode == 0 and len(lines) == len(prompts), r.stderr)
for i, (p, obj) in enumerate(zip(prompts, lines)):
    single = subprocess.run([BIN, "generate", *MODEL, "--prompt", p, "--max-tokens", "40", "--json"], capture_output=True, text=True)
    one = json.loads(single.stdout)
    check(f"prompts-file order and fields {i}", obj["id"] == i and obj["meta"] == {"k": [i]} and obj["prompt"] == p)
    check(f"prompts-file equals single run {i}", obj["tokens"] == one["tokens"] and obj["text"] == one["text"], f"{obj['text'][:50]!r} vs {one['text'][:50]!r}")
# the batch path with a 16-bit cache: each prompt as its single run with the same cache type
r = subprocess.run([BIN, "generate", *MODEL, "--prompts-file", pf, "--max-tokens", "40", "--json", "--kv-type", "f16"], capture_output=True, text=True)
half = [json.loads(l) for l in r.stdout.splitlines()]
single = subprocess.run([BIN, "generate", *MODEL, "--prompt", prompts[1], "--max-tokens", "40", "--json", "--kv-type", "f16"], capture_output=True, text=True)
check("prompts-file --kv-type f16 equals its single run", r.returncode == 0 and len(half) == len(prompts) and
      half[1]["tokens"] == json.loads(single.stdout)["tokens"], r.stderr)

# a KV cache too small for all prompts at once (1 MiB = 51 blocks of 16 positions here):
# sequences wait or are preempted and recomputed; the results do not change
r = subprocess.run([BIN, "generate", *MODEL, "--prompts-file", pf, "--max-tokens", "200", "--json"], capture_output=True, text=True)
roomy = [json.loads(l) for l in r.stdout.splitlines()]
r = subprocess.run([BIN, "generate", *MODEL, "--prompts-file", pf, "--max-tokens", "200", "--json", "--kv-mem", "1"], capture_output=True, text=True)
tight = [json.loads(l) for l in r.stdout.splitlines()]
check("--kv-mem: same results under memory pressure", r.returncode == 0 and [x["tokens"] for x in tight] == [x["tokens"] for x in roomy], r.stderr)

# --samples: k samples from one prefill, majority vote reported
r = subprocess.run([BIN, "generate", *MODEL, "--prompt", "Tim had", "--samples", "4", "--temperature", "0.8", "--seed", "5", "--max-tokens", "20", "--json"],
                   capture_output=True, text=True)
obj = json.loads(r.stdout) if r.returncode == 0 else {}
check("samples: 4", len(obj.get("samples", [])) == 4, r.stderr)
check("samples differ", len({tuple(s["tokens"]) for s in obj.get("samples", [])}) > 1)
check("vote fields", obj.get("vote", {}).get("n") == 4 and 1 <= obj["vote"]["votes"] <= 4)
# sample k is the run with seed + k
for k in range(4):
    one = json.loads(subprocess.run([BIN, "generate", *MODEL, "--prompt", "Tim had", "--temperature", "0.8", "--seed", str(5 + k), "--max-tokens", "20", "--json"],
                                    capture_output=True, text=True).stdout)
    check(f"sample {k} equals a run with seed+{k}", obj["samples"][k]["tokens"] == one["tokens"])
g = json.loads(subprocess.run([BIN, "generate", *MODEL, "--prompt", "Tim had", "--samples", "3", "--max-tokens", "10", "--json"], capture_output=True, text=True).stdout)
check("greedy samples agree", g["vote"]["agreement"] == 1.0 and g["vote"]["votes"] == 3)

bad = os.path.join(TMP, "bad_prompts.jsonl")
open(bad, "w").write('{"prompt": "ok"}\n{"nope": 1}\n')
r = subprocess.run([BIN, "generate", *MODEL, "--prompts-file", bad, "--json"], capture_output=True, text=True)
check("bad prompts line", r.returncode != 0 and "bad_prompts.jsonl:2" in r.stderr, r.stderr)
r = subprocess.run([BIN, "generate", *MODEL, "--prompt", "x", "--samples", "0"], capture_output=True, text=True)
check("samples 0 refused", r.returncode != 0 and "--samples" in r.stderr, r.stderr)

finish()
