#!/usr/bin/python3
"""s1c convert as a user runs it: HF directory -> GGUF -> HF directory keeps the model (greedy
tokens equal), quantized output loads and runs, and bad arguments get one-line errors."""
import json, os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, DATA, TMP, check, finish  # noqa: E402

hf = os.path.join(TMP, "conv_qwen_tiny")
if not os.path.exists(os.path.join(hf, "model.safetensors")):
    subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", "151936", "--tokenizer",
                    f"{DATA}/qwen2.5-tokenizer", "--seed", "8", "--out", hf], check=True, capture_output=True)

def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr

def greedy(model):
    rc, out, err = run("generate", "--model", model, "--prompt", "What is 2+2?", "--chat", "--max-tokens", "12", "--json")
    return json.loads(out)["tokens"] if rc == 0 else err

gguf = os.path.join(TMP, "conv.gguf")
back = os.path.join(TMP, "conv_back")
shutil.rmtree(back, ignore_errors=True)
rc, out, err = run("convert", hf, gguf)
check("HF -> GGUF", rc == 0 and os.path.getsize(gguf) > 0, err)
rc, out, err = run("convert", gguf, back)
check("GGUF -> HF", rc == 0 and os.path.exists(os.path.join(back, "config.json")), err)
base = greedy(hf)
check("GGUF generates the same tokens", greedy(gguf) == base, greedy(gguf))
check("round trip generates the same tokens", greedy(back) == base)
r1 = subprocess.run([BIN, "tokenize", "--tokenizer", gguf], input="Hello world, 数学 ✓", capture_output=True, text=True)
r2 = subprocess.run([BIN, "tokenize", "--tokenizer", f"{DATA}/qwen2.5-tokenizer"], input="Hello world, 数学 ✓", capture_output=True, text=True)
check("GGUF tokenizer encodes like the original", r1.returncode == 0 and r1.stdout == r2.stdout, r1.stdout + r1.stderr)
for t in ("bf16", "q8_0", "q4_0"):
    q = os.path.join(TMP, f"conv_{t}.gguf")
    rc, out, err = run("convert", hf, q, "--type", t)
    toks = greedy(q) if rc == 0 else err
    check(f"--type {t} loads and generates", rc == 0 and isinstance(toks, list) and len(toks) == 12, err + str(toks)[:200])
# export-ollama: GGUF + Modelfile (s1's layout as an Ollama template) + notes
od = os.path.join(TMP, "ollama_export")
shutil.rmtree(od, ignore_errors=True)
rc, out, err = run("export-ollama", hf, od, "--type", "q8_0", "--ctx", "8192")
mf = open(os.path.join(od, "Modelfile")).read() if rc == 0 else ""
check("export-ollama writes", rc == 0 and all(os.path.exists(os.path.join(od, f)) for f in ("model.gguf", "Modelfile", "README.md")), err)
check("Modelfile: model, template, stops, greedy, context", mf.startswith("FROM ./model.gguf\n") and
      "<|im_start|>assistant\n<|im_start|>think\"\"\"" in mf and 'PARAMETER stop "<|im_end|>"' in mf and
      "PARAMETER temperature 0" in mf and "PARAMETER num_ctx 8192" in mf and
      "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>" in mf, mf)
check("exported GGUF runs", isinstance(greedy(os.path.join(od, "model.gguf")), list))
rc, out, err = run("export-ollama", f"{DATA}/models/stories260K/stories260K.gguf", os.path.join(TMP, "ollama_stories"))
check("non-ChatML vocabulary refused", rc != 0 and "ChatML" in err, err)

rc, out, err = run("convert", hf, os.path.join(TMP, "x.gguf"), "--type", "q3")
check("bad type refused", rc != 0 and err.startswith("s1c: ") and len(err.strip().split("\n")) == 1, err)
rc, out, err = run("convert", os.path.join(TMP, "nope"), os.path.join(TMP, "y.gguf"))
check("missing input refused", rc != 0 and "nope" in err, err)
finish()
