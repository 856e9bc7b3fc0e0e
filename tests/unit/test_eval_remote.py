#!/usr/bin/python3
"""s1c eval against OpenAI-compatible servers: two scripted /v1/completions servers on
localhost stand in for a fleet. Their "model" thinks in words (one word = one token) and
answers correctly only after 8 thinking words, and writes more after an appended "Wait".
Checked: s1's client-side loop (budgets never exceeded, Waits injected and counted, the forced
end with the answer prefix), accuracy rising with the budget, requests spread over both
endpoints, transient 500s retried, the progress lines (a log gets plain lines; a failed sample
counts as an error, never as wrong), failures (a problem the servers always fail on becomes an
error record, the others are graded, the exit status says so, a rerun retries only it and the
newest record wins; --regrade leaves error records alone; a dead endpoint of a fleet costs
little; all endpoints dead stop the run early), and every --method through the same loop: the
prompt-side controls send their suffix and force nothing, step-conditional counts the model's
"N steps left" markers, rejection sampling redraws with new seeds until the thinking fits."""
import http.server, json, os, re, shutil, socket, socketserver, subprocess, sys, threading, time

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
        m = re.search(r"Think for up to (\d+) steps\.", prompt)
        if m and "<|im_start|>answer" not in prompt.split("<|im_start|>think")[-1]:
            # a step-conditional model: 4 steps of 3 words, each after its countdown marker (6 tokens a step)
            words = []
            for k in range(4, 0, -1):
                words += [f"\n{k}", " steps", " left\n"] + [f" w{k}{x}" for x in "abc"]
            return words + ["<|im_start|>answer"]
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
            fail = srv.fail_next > 0 or (srv.fail_if is not None and srv.fail_if in str(req.get("prompt", req.get("messages")))) \
                or req.get("seed") in srv.fail_seeds
            if srv.fail_next > 0:
                srv.fail_next -= 1
            broken = srv.broken
            srv.log.append((str(req.get("prompt", req.get("messages"))), fail or broken))
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
        with srv.lock:
            srv.seen.append((prompt, req.get("seed")))
        if srv.long_unless_seed is not None and req.get("seed") != srv.long_unless_seed and "<|im_start|>answer" not in prompt.split("<|im_start|>think")[-1]:
            # rejection sampling: every draw but one seed's thinks far too long
            out = [f" x{i}" for i in range(min(maxt, 40))]
            body = json.dumps({"choices": [{"index": 0, "text": "".join(out), "finish_reason": "length" if len(out) == maxt else "stop"}],
                               "usage": {"prompt_tokens": count_tokens(prompt), "completion_tokens": len(out),
                                         "total_tokens": count_tokens(prompt) + len(out)}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
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
        self.fail_if = None  # a 500 for every request whose prompt holds this text
        self.fail_seeds = set()  # a 500 for every request with one of these seeds
        self.log = []  # (prompt, failed) of every request
        self.seen, self.long_unless_seed = [], None


def dead_url():
    """An endpoint nobody listens on: connections are refused at once."""
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


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


def run_eval(out, *extra, quiet=True, budgets="4,8,none", waits="0,1", endpoints=None):
    args = [BIN, "eval", "--model", "scripted", "--bench-file", bench, "--out", out, "--think-budgets", budgets,
            "--waits", waits, "--answer-max", "4"] + (["--quiet"] if quiet else [])
    for u in endpoints or urls:
        args += ["--endpoint", u]
    return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=300)


def records(out):
    path = os.path.join(out, "samples.jsonl")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


FAST = ("--retries", "1", "--retry-backoff", "0.01")  # failures in milliseconds, not the default seconds


BAR = re.compile(r"^\[[#.]{20}\] (\d+)/(\d+) samples  acc (?:-|([\d.]+)% \(\u00b1([\d.]+)\))  ([\d.]+) samples/s  ETA (\S+)(?:  (\d+) errors?)?$")


def bars(stderr):
    """The progress lines of a run's stderr (not a terminal: one plain line per update)."""
    return [m for m in (BAR.match(l) for l in stderr.split("\n")) if m]


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

# the progress lines of a log: plain lines, every 5% at most (plus the last), the final one complete
r = run_eval(os.path.join(work, "run_progress"), "--concurrency", "2", quiet=False)
b = bars(r.stderr)
check("progress: plain lines in a log", r.returncode == 0 and len(b) >= 2, r.stderr[-600:])
if b:
    last = b[-1]
    check("progress: the last line is complete with the run's accuracy", last.group(1) == "36" and last.group(2) == "36"
          and abs(float(last.group(3)) - 100.0 * sum(x["correct"] for x in recs) / 36) < 0.06 and last.group(4) is not None, last.group(0))
    check("progress: at most a line per 5% (and the last)", len(b) <= 22, len(b))
    check("progress: counts only grow", all(int(x.group(1)) <= int(y.group(1)) for x, y in zip(b, b[1:])), [x.group(1) for x in b])
    check("progress: \"no errors\" is not shown", all(x.group(7) is None for x in b), b[-1].group(0))
r = run_eval(os.path.join(work, "run_quiet"), "--concurrency", "2")
check("--quiet: no progress lines", r.returncode == 0 and not bars(r.stderr), r.stderr[-300:])

# a request that still fails after its retries, on every endpoint, is an error record; the run goes on
for sv in servers:
    sv.fail_if = "What is the answer 3?"
    sv.log.clear()
out_e = os.path.join(work, "errors")
r = run_eval(out_e, *FAST, quiet=False, budgets="8", waits="0")
recs_e = records(out_e)
errs = [x for x in recs_e if "error" in x]
check("a failing problem: the run goes on and ends non-zero", r.returncode != 0 and len(recs_e) == 6, (r.returncode, len(recs_e), r.stderr[-400:]))
check("a failing problem: no sanitizer report (the exit status alone would hide one)",
      "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr[-1500:])
check("the failing problem is one error record", len(errs) == 1 and errs[0]["id"] == "p3" and errs[0]["correct"] is None
      and "extracted" not in errs[0] and "thinking" not in errs[0] and errs[0]["max_thinking_tokens"] == 8, errs)
e = errs[0]["error"] if errs else ""
check("the error names what failed, each endpoint, the HTTP status and the tries",
      "thinking request" in e and "HTTP 500" in e and all(u + "/completions" in e for u in urls) and e.count("(after 2 tries)") == 2
      and "\n" not in e, e)
check("the other problems are graded", all(x["correct"] is True for x in recs_e if "error" not in x), [x.get("correct") for x in recs_e])
check("each endpoint tried the failing sample twice (--retries 1)",
      all(sum(1 for p, f in sv.log if f and "answer 3?" in p) == 2 for sv in servers), [[f for p, f in sv.log] for sv in servers])
se = json.load(open(os.path.join(out_e, "summary.json"))) if os.path.exists(os.path.join(out_e, "summary.json")) else {}
pt = (se.get("points") or [{}])[0]
check("summary: errors counted apart, accuracy over the graded rest",
      se.get("errors") == 1 and pt.get("errors") == 1 and pt.get("samples") == 5 and pt.get("accuracy") == 1.0
      and se.get("performance") == 1.0, se)
try:
    printed = json.loads(r.stdout)
except ValueError:
    printed = {}
check("the summary is still printed on stdout", printed == se, r.stdout[-200:])
check("the message says how many and that a rerun retries them",
      "1 sample ended in error" in r.stderr and "HTTP 500" in r.stderr and "again to retry" in r.stderr, r.stderr[-500:])
b = bars(r.stderr)
check("progress: the error is shown apart from the graded samples",
      b and b[-1].group(7) == "1" and b[-1].group(1) == "5" and b[-1].group(3) == "100.0", b[-1].group(0) if b else r.stderr[-300:])
html = open(os.path.join(out_e, "report.html")).read() if os.path.exists(os.path.join(out_e, "report.html")) else ""
check("report: the error count and an error filter in the trace viewer",
      'id="errors">1 sample ended in error' in html and 'data-f="error"' in html and "filter==='error'" in html, html[:200])

# the report in a real browser: the error row, the counts, and the "error" filter (picked by the page's fragment)
chromium = shutil.which("chromium")
if chromium and html:
    def dom(fragment):
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={TMP}/chromium-profile",
                            "--dump-dom", "file://" + os.path.join(out_e, "report.html") + fragment], capture_output=True, text=True, timeout=120)
        return r.stdout
    d = dom("")
    check("report: every sample listed, the error as an error row with its message",
          d.count('<tr class="ok">') == 5 and d.count('<tr class="err">') == 1 and "6 of 6 samples" in d and "HTTP 500" in d, d[-500:])
    check("report: the points table shows the error apart", re.search(r"<td>8</td><td>0</td><td>5</td><td>5</td><td>100\.0%</td>.*"
                                                                      r"<td class=\"errors\">1</td>", d) is not None, d[:1500])
    d = dom("#error")
    check("report: the error filter lists only the error", d.count('<tr class="err">') == 1 and d.count('<tr class="ok">') == 0
          and "1 of 6 samples" in d, d[-500:])
    d = dom("#wrong")
    check("report: an error is not wrong", "0 of 6 samples" in d and '<tr class="err">' not in d, d[-300:])
else:
    print("chromium not installed: browser check skipped")

# --regrade leaves error records alone
out_g = os.path.join(work, "errors_regraded")
shutil.copytree(out_e, out_g)
r = subprocess.run([BIN, "eval", "--regrade", out_g], capture_output=True, text=True)
recs_g = records(out_g)
check("--regrade keeps the error record as it is", r.returncode == 0 and
      [x for x in recs_g if "error" in x] == errs and json.load(open(os.path.join(out_g, "summary.json")))["errors"] == 1, r.stderr[-300:])

# --compare: the error's problem has no verdict; the table says how many samples failed
r = subprocess.run([BIN, "eval", "--compare", out_e, out_g], capture_output=True, text=True)
rows = [l.split() for l in r.stdout.strip().split("\n")[1:]]
check("--compare counts errors apart", r.returncode == 0 and len(rows) == 1 and rows[0][3] == "5" and rows[0][6] == "1/1", r.stdout + r.stderr)

# a rerun against healthy servers retries only the error record; the newest record of a sample wins
for sv in servers:
    sv.fail_if = None
    sv.log.clear()
r = run_eval(out_e, *FAST, quiet=False, budgets="8", waits="0")
asked = {re.search(r"answer (\d)\?", p).group(1) for sv in servers for p, _ in sv.log}
check("the rerun succeeds (exit 0)", r.returncode == 0, r.stderr[-400:])
check("the rerun retries only the error record", asked == {"3"} and "1 to run (5 already in" in r.stderr
      and "1 error record retried" in r.stderr, (asked, r.stderr[:300]))
b = bars(r.stderr)
check("progress: the rerun starts at the graded samples", b and b[0].group(1) in ("5", "6") and b[0].group(2) == "6"
      and b[-1].group(1) == "6" and b[-1].group(7) is None, [x.group(0) for x in b])
se = json.load(open(os.path.join(out_e, "summary.json")))
check("after the rerun: errors=0, all six graded from the newest records",
      se["errors"] == 0 and se["sample_records"] == 6 and se["points"][0]["samples"] == 6 and se["points"][0]["errors"] == 0
      and se["points"][0]["accuracy"] == 1.0 and len(records(out_e)) == 7, se)
r = run_eval(out_e, *FAST, quiet=False, budgets="8", waits="0")
check("a third run finds everything done", r.returncode == 0 and "0 to run (6 already in" in r.stderr, r.stderr[:300])
r = subprocess.run([BIN, "eval", "--regrade", out_e], capture_output=True, text=True)
recs_e = records(out_e)
check("--regrade keeps the newest record of each sample", r.returncode == 0 and len(recs_e) == 6 and not any("error" in x for x in recs_e),
      len(recs_e))

# majority votes use only graded samples: two of three samples fail, the one left decides
for sv in servers:
    sv.fail_seeds = {101, 102}
out_v = os.path.join(work, "votes")
r = run_eval(out_v, *FAST, "--samples", "3", "--temperature", "1", "--seed", "100", "--stop-after-failures", "100", budgets="8", waits="0")
sv_ = json.load(open(os.path.join(out_v, "summary.json"))) if os.path.exists(os.path.join(out_v, "summary.json")) else {}
pt = (sv_.get("points") or [{}])[0]
check("votes over graded samples only: 1 right + 2 errors is right, not outvoted",
      r.returncode != 0 and pt.get("samples") == 6 and pt.get("errors") == 12 and pt.get("accuracy") == 1.0 and sv_.get("errors") == 12, sv_)
for sv in servers:
    sv.fail_seeds = set()

# a fleet of one live and one dead endpoint: the dead one's samples move to the live one
live, dead = urls[0], dead_url()
out_f = os.path.join(work, "fleet")
t0 = time.time()
r = run_eval(out_f, *FAST, "--concurrency", "4", endpoints=[live, dead])
took = time.time() - t0
recs_f = records(out_f)
sf = json.load(open(os.path.join(out_f, "summary.json"))) if r.returncode == 0 else {}
check("one dead endpoint of two: every sample graded on the live one, errors=0, exit 0",
      r.returncode == 0 and len(recs_f) == 36 and sf.get("errors") == 0 and {x["endpoint"] for x in recs_f} == {live},
      (r.returncode, r.stderr[-400:]))
check("one dead endpoint costs little", took < 20, took)

# every endpoint dead: the run stops early with a clear message, in seconds
out_d = os.path.join(work, "dead")
t0 = time.time()
r = run_eval(out_d, *FAST, "--concurrency", "2", quiet=False, endpoints=[dead_url(), dead_url()])
took = time.time() - t0
recs_d = records(out_d)
check("all endpoints dead: an early stop with a clear message", r.returncode != 0 and "stopped early" in r.stderr
      and "on every endpoint (2)" in r.stderr and "run the same command" in r.stderr and "Sanitizer" not in r.stderr, r.stderr[-500:])
check("all endpoints dead: stopped after --stop-after-failures (16) requests, not after all 36 samples",
      len(recs_d) < 36 and all("error" in x for x in recs_d) and took < 20, (len(recs_d), took))
r = run_eval(out_d, *FAST, "--stop-after-failures", "3", "--concurrency", "1", endpoints=[dead_url()])
check("--stop-after-failures N", r.returncode != 0 and "the last 3 requests failed" in r.stderr and len(records(out_d)) < 36,
      r.stderr[-300:])

# every method through the same client-side loop
for s in servers:
    s.seen.clear()
out_t = os.path.join(work, "tok")
r = run_eval(out_t, "--method", "token-conditional", budgets="4,8", waits="0")
recs_t = [json.loads(l) for l in open(os.path.join(out_t, "samples.jsonl"))] if r.returncode == 0 else []
prompts = [p for s in servers for p, _ in s.seen]
check("token-conditional over --endpoint", r.returncode == 0 and len(recs_t) == 12, r.stderr[-400:])
check("token-conditional: the question asks for the budget", any("Think for up to 4 tokens." in p for p in prompts)
      and any("Think for up to 8 tokens." in p for p in prompts), prompts[:1])
check("token-conditional: no forcing (12 thinking tokens whatever the budget, natural end)",
      all(x["thinking_tokens"] == 12 and x["think_end_reason"] == "think_end" and x["method"] == "token-conditional" for x in recs_t),
      [(x["max_thinking_tokens"], x["thinking_tokens"]) for x in recs_t][:4])
st = json.load(open(os.path.join(out_t, "summary.json"))) if r.returncode == 0 else {}
check("token-conditional: Control in tokens (12 > 4 and > 8)", st.get("control") == 0 and
      all(p["budget_unit"] == "tokens" for p in st.get("points", [])), st)

out_s = os.path.join(work, "steps")
r = run_eval(out_s, "--method", "step-conditional", budgets="5,20", waits="0")
recs_s = [json.loads(l) for l in open(os.path.join(out_s, "samples.jsonl"))] if r.returncode == 0 else []
check("step-conditional over --endpoint", r.returncode == 0 and len(recs_s) == 12, r.stderr[-400:])
check("step-conditional: records count the model's steps, budgets in steps",
      all(x["thinking_steps"] == 4 and x["thinking_tokens"] == 24 and x["max_thinking_tokens"] is None and x["max_thinking_steps"] in (5, 20)
          for x in recs_s), recs_s[:1])
ss = json.load(open(os.path.join(out_s, "summary.json"))) if r.returncode == 0 else {}
pts = {p.get("max_thinking_steps"): p for p in ss.get("points", [])}
check("step-conditional: points in steps", set(pts) == {5, 20} and all(p["budget_unit"] == "steps" and p["avg_thinking_steps"] == 4
                                                                     and p["max_thinking_tokens"] is None for p in pts.values()), ss.get("points"))
check("step-conditional: Control in steps (4 steps fit 5 and 20; their 24 tokens would not)",
      ss.get("control") == 1 and all(p["control"] == 1 for p in pts.values()) and "steps" in ss.get("control_unit", "")
      and "steps left" in ss.get("step_definition", ""), (ss.get("control"), ss.get("control_unit")))
r = run_eval(out_s, "--method", "step-conditional", budgets="5,20", waits="0", quiet=False)
check("step-conditional: a rerun finds every sample done", r.returncode == 0 and "0 to run (12 already in" in r.stderr, r.stderr[-300:])

for s in servers:
    s.seen.clear()
out_c = os.path.join(work, "cls")
r = run_eval(out_c, "--method", "class-conditional", budgets="none", waits="0")
recs_c = [json.loads(l) for l in open(os.path.join(out_c, "samples.jsonl"))] if r.returncode == 0 else []
prompts = [p for s in servers for p, _ in s.seen]
check("class-conditional over --endpoint: a short and a long sample per problem", r.returncode == 0 and
      sorted(x["class"] for x in recs_c) == ["long"] * 6 + ["short"] * 6, r.stderr[-400:])
check("class-conditional: both suffixes sent", any("short amount of thinking" in p for p in prompts)
      and any("long amount of thinking" in p for p in prompts), prompts[:1])

# rejection: the scripted model thinks 40 words under every seed but 1003; budget 12 accepts only that one
for s in servers:
    s.seen.clear()
    s.long_unless_seed = 1003
out_r = os.path.join(work, "rej")
r = run_eval(out_r, "--method", "rejection", "--temperature", "1", "--seed", "1000", "--reject-tries", "6", budgets="12", waits="0")
recs_r = [json.loads(l) for l in open(os.path.join(out_r, "samples.jsonl"))] if r.returncode == 0 else []
seeds = sorted({sd for s in servers for _, sd in s.seen})
check("rejection over --endpoint", r.returncode == 0 and len(recs_r) == 6, r.stderr[-400:])
check("rejection: drawn with seeds 1000, 1001, ... until the thinking fits (the 4th draw)",
      all(x["tries"] == 4 and x["stop_reason"] != "rejected" and x["thinking_tokens"] <= 12 for x in recs_r) and seeds == [1000, 1001, 1002, 1003],
      ([(x.get("tries"), x["stop_reason"], x["thinking_tokens"]) for x in recs_r][:3], seeds))
out_r2 = os.path.join(work, "rej2")
r = run_eval(out_r2, "--method", "rejection", "--temperature", "1", "--seed", "1000", "--reject-tries", "3", budgets="12", waits="0")
recs_r2 = [json.loads(l) for l in open(os.path.join(out_r2, "samples.jsonl"))] if r.returncode == 0 else []
check("rejection: still too long after --reject-tries draws is recorded as rejected, within the budget's count",
      len(recs_r2) == 6 and all(x["tries"] == 3 and x["stop_reason"] == "rejected" and x["thinking_tokens"] == 12 for x in recs_r2),
      [(x.get("tries"), x["stop_reason"], x["thinking_tokens"]) for x in recs_r2][:3])
for s in servers:
    s.long_unless_seed = None
r = run_eval(os.path.join(work, "run3"), "--remote-bf", "server")
check("--remote-bf server against a plain server is a clear error", r.returncode != 0 and "budget" in r.stderr, r.stderr[-300:])

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
