#!/usr/bin/python3
"""s1c eval against OpenAI-compatible servers: two scripted /v1/completions servers on
localhost stand in for a fleet. Their "model" thinks in words (one word = one token) and
answers correctly only after 8 thinking words, and writes more after an appended "Wait".
Checked: s1's client-side loop (budgets never exceeded, Waits injected and counted, the forced
end with the answer prefix), accuracy rising with the budget, requests spread over both
endpoints, transient 500s retried, resume after a failure keeps finished samples."""
import http.server, json, os, shutil, socketserver, subprocess, sys, threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, TMP, _counts, check, finish  # noqa: E402

THINK = [f"step{i}" for i in range(1, 13)]  # 12 words, then the end of thinking
MORE = ["recheck1", "recheck2", "recheck3"]  # after a Wait
SPECIALS = ["<|im_start|>", "<|im_end|>"]


def count_tokens(text):
    n = 0
    for sp in SPECIALS:
        n += text.count(sp)
        text = text.replace(sp, " ")
    return n + len(text.split())


class Model:
    """What the scripted model writes after a prompt, as a list of words (the last may be a stop)."""

    @staticmethod
    def continuation(prompt):
        think_at = prompt.rfind("<|im_start|>think")
        after = prompt[think_at + len("<|im_start|>think"):]
        if "<|im_start|>answer" in after:  # answer phase: right only after >= 8 thinking words
            words = [w for w in after.split("<|im_start|>answer")[0].split() if w.startswith("step")]
            tail = after.split("<|im_start|>answer")[-1]
            lead = "" if tail.startswith("\n") else "\n"  # after a natural end the model writes the newline
            return [lead + ("42" if len(words) >= 8 else "7"), "<|im_end|>"]
        done = after.split()
        if after.endswith("Wait"):
            return [" " + w for w in MORE] + ["<|im_start|>answer"]
        written = [w for w in done if w.startswith("step")]
        return [" " + w for w in THINK[len(written):]] + ["<|im_start|>answer"]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("Content-Length", 0))
        req = json.loads(self.rfile.read(n))
        with srv.lock:
            srv.requests += 1
            fail = srv.fail_next > 0
            if fail:
                srv.fail_next -= 1
            broken = srv.broken
        if fail or broken:
            self.send_response(500 if fail else 400)
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "scripted failure"}}')
            return
        if self.path.endswith("/chat/completions"):  # a plain chat answer: no budget forcing here
            body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}, "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if not self.path.endswith("/completions"):
            self.send_response(404)
            self.end_headers()
            return
        prompt, stops, maxt = req["prompt"], req.get("stop", []), req.get("max_tokens", 10 ** 9)
        out, finish_reason = [], "length"
        for w in Model.continuation(prompt):
            if w.strip() in stops or w in stops:
                finish_reason = "stop"
                break
            if len(out) == maxt:
                break
            out.append(w)
        else:
            finish_reason = "stop"
        if len(out) == maxt and finish_reason != "stop":
            finish_reason = "length"
        body = json.dumps({"id": "x", "object": "text_completion", "model": req["model"],
                           "choices": [{"index": 0, "text": "".join(out), "finish_reason": finish_reason}],
                           "usage": {"prompt_tokens": count_tokens(prompt), "completion_tokens": len(out),
                                     "total_tokens": count_tokens(prompt) + len(out)}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests, self.fail_next, self.broken = 0, 0, False


servers = [Server(), Server()]
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
urls = [f"http://127.0.0.1:{s.server_address[1]}/v1" for s in servers]

work = os.path.join(TMP, "eval_remote")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
bench = os.path.join(work, "bench.jsonl")
with open(bench, "w") as f:
    for i in range(6):
        f.write(json.dumps({"id": f"p{i}", "question": f"What is the answer {i}?", "answer": "42"}) + "\n")


def run_eval(out, *extra):
    args = [BIN, "eval", "--model", "scripted", "--bench-file", bench, "--out", out, "--think-budgets", "4,8,none",
            "--waits", "0,1", "--answer-max", "4", "--quiet"]
    for u in urls:
        args += ["--endpoint", u]
    return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=300)


servers[0].fail_next = 2  # transient errors: retried
out = os.path.join(work, "run")
r = run_eval(out, "--concurrency", "4")
check("remote eval succeeds", r.returncode == 0, r.stderr[-800:])
recs = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl"))]
check("one record per problem x setting", len(recs) == 6 * 3 * 2, len(recs))
by = {}
for x in recs:
    by.setdefault((x["max_thinking_tokens"], x["num_waits"]), []).append(x)
check("budgets are never exceeded", all(x["thinking_tokens"] <= x["max_thinking_tokens"] for x in recs if x["max_thinking_tokens"] >= 0),
      [(x["max_thinking_tokens"], x["thinking_tokens"]) for x in recs][:6])
b4 = by[(4, 0)][0]
check("budget 4: thinking cut at 4 tokens", b4["thinking_tokens"] == 4 and b4["think_end_reason"] == "budget", b4)
check("budget 4: wrong (needs 8 thinking words)", not b4["correct"], b4)
b8 = by[(8, 0)][0]
check("budget 8: right", b8["correct"] and b8["thinking_tokens"] == 8, b8)
free0 = by[(-1, 0)][0]
check("no budget: 12 thinking tokens, natural end", free0["thinking_tokens"] == 12 and free0["think_end_reason"] == "think_end", free0)
free1 = by[(-1, 1)][0]
check("no budget, 1 wait: Wait injected and counted, thinking goes on",
      free1["waits"] == 1 and free1["thinking_tokens"] == 12 + 1 + 3 and "Wait recheck1" in free1["thinking"].replace("  ", " "), free1)
b8w = by[(8, 1)][0]
check("budget 8 with a wait: stays within the budget", b8w["thinking_tokens"] <= 8, b8w)
check("answers read as graded: 42", all(x["extracted"] == "42" for x in recs if x["correct"]))
check("both endpoints served requests", all(s.requests > 0 for s in servers), [s.requests for s in servers])
check("records name their endpoint", {x["endpoint"] for x in recs} == set(urls), {x["endpoint"] for x in recs})
summary = json.load(open(os.path.join(out, "summary.json")))
acc = {(p["max_thinking_tokens"], p["num_waits"]): p["accuracy"] for p in summary["points"]}
check("accuracy rises with the budget", acc[(4, 0)] == 0 and acc[(8, 0)] == 1 and acc[(None, 0)] == 1, acc)

# a permanent failure stops the run; what finished stays; a rerun completes it
out2 = os.path.join(work, "run2")
servers[1].broken = True
r = run_eval(out2, "--concurrency", "1")
check("a failing endpoint stops the run with its error", r.returncode != 0 and "HTTP 400" in r.stderr, r.stderr[-500:])
kept = sum(1 for _ in open(os.path.join(out2, "samples.jsonl"))) if os.path.exists(os.path.join(out2, "samples.jsonl")) else 0
servers[1].broken = False
r = run_eval(out2, "--concurrency", "3")
total = sum(1 for _ in open(os.path.join(out2, "samples.jsonl")))
check("the rerun completes the run without redoing finished samples", r.returncode == 0 and total == 36, (kept, total, r.stderr[-300:]))
r = run_eval(os.path.join(work, "run3"), "--remote-bf", "server")
check("--remote-bf server against a plain server is a clear error", r.returncode != 0 and "budget" in r.stderr, r.stderr[-300:])

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
