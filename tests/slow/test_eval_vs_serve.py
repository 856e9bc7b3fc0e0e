#!/usr/bin/python3
"""s1c eval against a real s1c serve: with the server applying budget forcing (--remote-bf
server) every greedy sample equals the local run's (same thinking and answer text, the same
SPEC.md §8 accounting); with s1's loop run client-side through /v1/completions the budgets hold
and the Waits are injected. The other --methods go through the same paths: token- and
step-conditional prompts (no forcing) give the local run's samples through the server too,
class-conditional and rejection sampling run client-side. A tiny random Qwen2-shaped model with
the real Qwen2.5 tokenizer."""
import json, os, shutil, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, DATA, TMP, _counts, check, finish  # noqa: E402

work = os.path.join(TMP, "eval_vs_serve")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
model = os.path.join(work, "qtiny")
cfg = os.path.join(work, "config.json")
# a short context: the prompt-side controls force nothing, so their thinking runs until the context is full
json.dump({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 151936,
           "max_position_embeddings": 192, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True},
          open(cfg, "w"))
subprocess.run([BIN, "init", "--arch", "qwen2", "--config", cfg, "--tokenizer", os.path.join(DATA, "qwen2.5-tokenizer"), "--seed", "4",
                "--out", model], check=True, capture_output=True)
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

    # the prompt-side controls: the server answers the suffixed question exactly as the local engine does
    for method, budgets in (("token-conditional", "8,24"), ("step-conditional", "2,6")):
        args = ["--method", method, "--think-budgets", budgets, "--waits", "0,1", "--answer-max", "8", "--quiet", "--bench-file", bench]
        loc = os.path.join(work, "local-" + method)
        r1 = subprocess.run([BIN, "eval", "--model", model, "--out", loc, *args], capture_output=True, text=True, timeout=600)
        rem = os.path.join(work, "server-" + method)
        r2 = subprocess.run([BIN, "eval", "--endpoint", url, "--model", "qtiny", "--remote-bf", "server", "--concurrency", "4",
                             "--out", rem, *args], capture_output=True, text=True, timeout=600)
        check(f"{method}: local and through s1c serve", r1.returncode == 0 and r2.returncode == 0, (r1.stderr[-300:], r2.stderr[-300:]))
        if r1.returncode == 0 and r2.returncode == 0:
            def load_m(d):
                return {(x["id"], x.get("max_thinking_steps", x["max_thinking_tokens"]), x["num_waits"]): x
                        for x in map(json.loads, open(os.path.join(d, "samples.jsonl")))}
            a, b = load_m(loc), load_m(rem)
            fields = ("thinking_tokens", "answer_tokens", "waits", "stop_reason", "think_end_reason", "method", "thinking_steps")
            same = [k for k in a if k in b and all(a[k].get(f) == b[k].get(f) for f in fields) and a[k]["thinking"].strip() == b[k]["thinking"].strip()]
            check(f"{method}: every sample equals the local run's", len(a) == 16 and a.keys() == b.keys() and len(same) == len(a),
                  [(k, a[k]["thinking_tokens"], b.get(k, {}).get("thinking_tokens")) for k in a if k not in same][:3])
            sa, sb = (json.load(open(os.path.join(d, "summary.json"))) for d in (loc, rem))
            order = lambda pts: sorted(pts, key=lambda p: (p["num_waits"], p.get("max_thinking_steps") or p["max_thinking_tokens"]))
            check(f"{method}: the same summary", order(sa["points"]) == order(sb["points"]) and sa["control"] == sb["control"],
                  (order(sa["points"])[:1], order(sb["points"])[:1]))
    for method, extra in (("class-conditional", []), ("rejection", ["--think-budgets", "16", "--temperature", "1", "--seed", "5"])):
        out = os.path.join(work, "client-" + method)
        r = subprocess.run([BIN, "eval", "--endpoint", url, "--model", "qtiny", "--method", method, "--bench-file", bench, "--out", out,
                            "--answer-max", "8", "--remote-max-tokens", "96", "--quiet", *extra], capture_output=True, text=True, timeout=600)
        recs = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl"))] if r.returncode == 0 else []
        check(f"{method} client-side against s1c serve", r.returncode == 0 and len(recs) == (8 if method == "class-conditional" else 4)
              and all(x["method"] == method for x in recs), r.stderr[-300:])
        if method == "rejection":
            check("rejection: kept draws fit the budget", all(x["thinking_tokens"] <= 16 for x in recs),
                  [(x["thinking_tokens"], x["stop_reason"], x.get("tries")) for x in recs])
finally:
    srv.terminate()
    srv.wait(timeout=60)

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
