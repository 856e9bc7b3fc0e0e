#!/usr/bin/python3
"""s1c eval against a real s1c serve: with the server applying budget forcing (--remote-bf
server) every greedy sample equals the local run's (same thinking and answer text, the same
SPEC.md §8 accounting); with s1's loop run client-side through /v1/completions the budgets hold
and the Waits are injected. A tiny random Qwen2-shaped model with the real Qwen2.5 tokenizer."""
import json, os, shutil, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, DATA, TMP, _counts, check, finish  # noqa: E402

work = os.path.join(TMP, "eval_vs_serve")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
model = os.path.join(work, "qtiny")
subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", "151936", "--tokenizer",
                os.path.join(DATA, "qwen2.5-tokenizer"), "--seed", "4", "--out", model], check=True, capture_output=True)
bench = os.path.join(work, "bench.jsonl")
with open(bench, "w") as f:
    for i in range(4):
        f.write(json.dumps({"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n")
sweep = ["--think-budgets", "8,24", "--waits", "0,1", "--answer-max", "8", "--quiet"]

local = os.path.join(work, "local")
r = subprocess.run([BIN, "eval", "--model", model, "--bench-file", bench, "--out", local, *sweep], capture_output=True, text=True)
check("local eval", r.returncode == 0, r.stderr[-500:])

srv = subprocess.Popen([BIN, "serve", "--model", model, "--port", "0", "--quiet", "--parallel", "4", "--model-name", "qtiny"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
port = None
deadline = time.time() + 60
while time.time() < deadline and port is None:
    line = srv.stderr.readline() or srv.stdout.readline()
    for word in line.replace(":", " ").replace("/", " ").split():
        if word.isdigit() and 1024 < int(word) < 65536:
            port = int(word)
    if srv.poll() is not None:
        break
try:
    check("s1c serve started", port is not None)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except Exception:
            time.sleep(0.1)

    remote = os.path.join(work, "server_bf")
    r = subprocess.run([BIN, "eval", "--endpoint", url, "--model", "qtiny", "--remote-bf", "server", "--concurrency", "4",
                        "--bench-file", bench, "--out", remote, *sweep], capture_output=True, text=True, timeout=600)
    check("eval --remote-bf server against s1c serve", r.returncode == 0, r.stderr[-800:])

    def load(d):
        return {(x["id"], x["max_thinking_tokens"], x["num_waits"]): x for x in map(json.loads, open(os.path.join(d, "samples.jsonl")))}

    if r.returncode == 0:
        a, b = load(local), load(remote)
        check("the same samples", a.keys() == b.keys(), (len(a), len(b)))
        same = [k for k in a if k in b and all(a[k][f] == b[k][f] for f in ("thinking_tokens", "answer_tokens", "waits", "stop_reason", "think_end_reason"))]
        check("server-side budget forcing: every sample's accounting equals the local run's", len(same) == len(a),
              [(k, a[k]["thinking_tokens"], b[k]["thinking_tokens"]) for k in a if k not in same][:4])
        text_same = [k for k in a if k in b and a[k]["thinking"].strip() == b[k]["thinking"].strip() and a[k]["answer"].strip() == b[k]["answer"].strip()]
        check("... and the same thinking and answer text", len(text_same) == len(a),
              [(a[k]["thinking"][:60], b[k]["thinking"][:60]) for k in a if k not in text_same][:2])

    client = os.path.join(work, "client_bf")
    r = subprocess.run([BIN, "eval", "--endpoint", url, "--model", "qtiny", "--remote-bf", "client", "--bench-file", bench,
                        "--out", client, *sweep], capture_output=True, text=True, timeout=600)
    check("eval --remote-bf client against s1c serve's /v1/completions", r.returncode == 0, r.stderr[-800:])
    if r.returncode == 0:
        c = load(client)
        check("client-side: budgets hold", all(x["thinking_tokens"] <= x["max_thinking_tokens"] for x in c.values()),
              [(x["max_thinking_tokens"], x["thinking_tokens"]) for x in c.values()])
finally:
    srv.terminate()
    srv.wait(timeout=60)

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
