#!/usr/bin/python3
"""stories260K against llama2.c's run.c: every line of greedy_reference.jsonl, through the
CLI exactly as a user runs it, with the llama2.c .bin + tok512.bin and with the GGUF alone.
stdout must equal run.c's stdout (prompt echoed, minus run.c's final newline) byte for byte,
and --json must report the same token ids run.c walked."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN = os.environ["S1C_BIN"]
D = os.path.join(os.environ["S1C_DATA"], "models", "stories260K")
MODELS = {
    "bin": ["--model", f"{D}/stories260K.bin", "--tokenizer", f"{D}/tok512.bin"],
    "gguf": ["--model", f"{D}/stories260K.gguf"],
}


for line in open(f"{D}/greedy_reference.jsonl", encoding="utf-8"):
    ref = json.loads(line)
    for kind, margs in MODELS.items():
        args = [BIN, "generate", *margs, "--prompt", ref["prompt"], "--temperature", "0", "--steps", str(ref["steps"])]
        out = subprocess.run(args, capture_output=True)
        text = out.stdout.decode("utf-8", "replace")
        check(f"{kind} {ref['prompt']!r} exit", out.returncode == 0, out.stderr.decode())
        check(f"{kind} {ref['prompt']!r} text", text.endswith("\n") and text[:-1] == ref["output"],
              f"\n got: {text[:120]!r}\nwant: {ref['output'][:120]!r}")
        js = subprocess.run(args + ["--json"], capture_output=True)
        obj = json.loads(js.stdout)
        check(f"{kind} {ref['prompt']!r} prompt ids", obj["prompt_tokens"] == ref["prompt_tokens"],
              f"{obj['prompt_tokens']} != {ref['prompt_tokens']}")
        check(f"{kind} {ref['prompt']!r} tokens", obj["prompt_tokens"] + obj["tokens"] == ref["tokens"],
              "token sequences differ")
        gen_text = ref["output"][len(ref["prompt"]):]
        check(f"{kind} {ref['prompt']!r} json text", obj["text"] == gen_text, f"{obj['text'][:80]!r}")

# llama2.c's empty prompt: BOS alone; its output starts as in llama2.c's test_all.py
for kind, margs in MODELS.items():
    out = subprocess.run([BIN, "generate", *margs, "--prompt", "", "--temperature", "0", "--steps", "40"], capture_output=True)
    check(f"{kind} empty prompt", out.returncode == 0 and out.stdout.decode().startswith("Once upon a time, there was a little girl named Lily."),
          out.stdout.decode()[:80] + out.stderr.decode())

finish()
