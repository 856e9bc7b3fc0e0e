#!/usr/bin/python3
"""s1c curate end to end: decontamination of a pool holding all of MATH500 (every one removed,
novel questions kept) and a user evaluation file; bad pool lines reported with line numbers;
difficulty through two reference models and an LLM judge, and MSC domain classification, against
a scripted OpenAI-compatible server on 127.0.0.1 (500s, a model that stays down, garbage
classifier replies: recorded as drops with reasons, never a crash); journals make a rerun ask
only what failed; the same seed gives the same selection; summary, stats and curate.svg; option
errors."""
import http.server, json, os, shutil, signal, socket, socketserver, subprocess, sys, threading, xml.etree.ElementTree as ET
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN = os.environ["S1C_BIN"]
SRC = os.environ["S1C_SRC"]
TMP = os.path.join(os.environ.get("S1C_TMP") or "/tmp", "curate_cli")
shutil.rmtree(TMP, ignore_errors=True)
os.makedirs(TMP)
signal.alarm(240)

LOCK = threading.Lock()
ASKED = {}  # (model, question) -> times


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def ok(self, content):
        self.reply(200, json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}))

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        model, q = req["model"], req["messages"][-1]["content"]
        with LOCK:
            ASKED[(model, q)] = ASKED.get((model, q), 0) + 1
            nth = ASKED[(model, q)]
        if model == "judge":  # s1c's judge prompt: equal when the two answers have the same length
            lines = q.splitlines()
            gold = [l for l in lines if l.startswith("Reference: ")][-1][11:]
            pred = [l for l in lines if l.startswith("Attempt: ")][-1][9:]
            return self.ok("Yes" if len(gold.strip()) == len(pred.strip()) else "No")
        if model == "msc":
            question = q.split("Question:\n", 1)[1]
            if "garbage" in question:
                return self.ok("banana")
            return self.ok("<think>maybe 03?</think>Code: 05" if "comb" in question else "It is 11 (Number theory)")
        if "[flaky]" in q and nth == 1:
            return self.reply(500, '{"error":{"message":"hiccup"}}')
        if "[ratelimited]" in q and nth == 1:
            return self.reply(429, '{"error":{"message":"slow down"}}', [("Retry-After", "1")])
        if "[drop]" in q and nth == 1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if "[refdown]" in q and model == "strong":
            return self.reply(503, '{"error":{"message":"down"}}')
        gold = q.split("gold=")[1].split()[0] if "gold=" in q else "0"
        if model == "weak":
            return self.ok("\\boxed{%s}" % (gold if "easy-weak" in q else "1234567"))
        if "unsure-yes" in q:
            return self.ok("<think>hmm 7</think>The answer is \\boxed{\\sum y}")
        if "unsure-no" in q:
            return self.ok("\\boxed{\\sum yy}")
        return self.ok("<think>\\boxed{%s}</think>\\boxed{%s}" % (gold, gold if "easy-strong" in q else "7654321"))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{srv.server_address[1]}/v1"


def run(args):
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env["S1C_NET_BACKOFF"] = "0.05"
    r = subprocess.run([BIN, "curate"] + args, capture_output=True, timeout=180, env=env)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def write(path, lines):
    with open(path, "wb") as f:
        for l in lines:
            f.write(l if isinstance(l, bytes) else (json.dumps(l) + "\n").encode())


def rec(i, q, **kw):
    r = {"id": f"q{i}", "question": q, "solution": "\\boxed{%d}" % (100 + i), "source": "synthetic",
         "thinking_trajectories": ["step " * (20 + 7 * i)], "attempt": "%d" % (100 + i), "extra": {"n": i}}
    r.update(kw)
    return r


# ---------------------------------------------------------------- decontamination through the CLI
math500 = read_jsonl(os.path.join(SRC, "data/benchmarks/math500.jsonl"))
words = "apple river stone cloud seven garden lemon paper violin tiger window orange silver basket rocket".split()
novel = [rec(i, " ".join(words[(i * 7 + j * 3) % 15] for j in range(12)) + f" number {i}?", domain="05") for i in range(40)]
pool = novel + [{"id": f"m{i}", "question": p["problem"], "thinking_trajectories": ["t"], "domain": "26"} for i, p in enumerate(math500)]
gpqa = os.path.join(TMP, "gpqa.jsonl")
write(gpqa, [{"Question": "A spin-half particle is in a linear superposition of its spin-up and spin-down states, what is the expectation value?"}])
pool.append(rec(99, "Consider this: a spin-half particle is in a linear superposition of its spin-up and spin-down states; compute it.", domain="81"))
pp = os.path.join(TMP, "pool_decontam.jsonl")
write(pp, pool)
out = os.path.join(TMP, "dec")
rc, so, se = run(["--pool", pp, "--out", out, "--k", "1000", "--no-difficulty", "--decontam-file", gpqa + ":Question"])
check("decontam: rc 0", rc == 0, se)
dropped = read_jsonl(os.path.join(out, "1-decontam.dropped.jsonl"))
ids = {d["id"] for d in dropped}
check("decontam: all 500 MATH500 problems removed", all(f"m{i}" in ids for i in range(500)), len(ids))
check("decontam: the GPQA-file question removed", "q99" in ids and any(gpqa in d["drop_reason"] for d in dropped if d["id"] == "q99"), "")
check("decontam: novel questions kept", len(ids) == 501 and len(read_jsonl(os.path.join(out, "1-decontam.kept.jsonl"))) == 40, len(ids))
check("decontam: reason names the set", all("math500" in d["drop_reason"] for d in dropped if d["id"].startswith("m")), dropped[0])
s1k = read_jsonl(os.path.join(out, "s1k.jsonl"))
check("decontam: --k honoured up to what remains (40)", len(s1k) == 40, len(s1k))
check("decontam: warning when fewer than k remain", "only 40 question(s) survived" in se, se)
# --max-year: a question dated after it goes, whatever its words
yp = os.path.join(TMP, "years.jsonl")
write(yp, [rec(0, "an old AIME question", domain="05", year=2019), rec(1, "a new AIME question", domain="05", year="2024"),
           rec(2, "an undated question", domain="05")])
rc, so, se = run(["--pool", yp, "--out", os.path.join(TMP, "years"), "--no-difficulty", "--max-year", "2021"])
yd = read_jsonl(os.path.join(TMP, "years", "1-decontam.dropped.jsonl"))
check("--max-year: only the 2024 question dropped", rc == 0 and [d["id"] for d in yd] == ["q1"] and yd[0]["drop_kind"] == "too_recent"
      and "2024" in yd[0]["drop_reason"], yd)
rc, so, se = run(["--pool", pp, "--out", os.path.join(TMP, "dec2"), "--k", "10", "--no-difficulty", "--no-decontam"])
st2 = read_jsonl(os.path.join(TMP, "dec2", "stats.jsonl"))
check("--no-decontam: nothing dropped there", rc == 0 and st2[1]["dropped"] == 0, se)
check("--no-difficulty: nothing dropped there (not even questions without a solution)", st2[3]["stage"] == "difficulty" and st2[3]["dropped"] == 0, st2)

# ---------------------------------------------------------------- difficulty + domain through the API
qs = [
    rec(0, "easy-weak comb gold=100 question"),
    rec(1, "easy-strong nt gold=101 question"),
    rec(2, "hard comb gold=102 question", domain="05"),
    rec(3, "hard nt gold=103 question"),
    rec(4, "[flaky] hard comb gold=104 question"),
    rec(5, "[refdown] hard nt gold=105 question"),
    rec(6, "unsure-yes comb question", solution="\\boxed{\\int x}"),
    rec(7, "unsure-no comb question", solution="\\boxed{\\int x}"),
    rec(8, "hard garbage gold=108 question"),
    rec(9, "hard nt gold=109 question precomputed", ref_correct=False),
    rec(10, "easy nt gold=110 question precomputed", ref_correct=[False, True]),
    rec(11, "hard comb gold=111 [asy] draw(circle); [/asy]"),
    rec(18, "hard nt gold=118 [asy] draw(square); [/asy] from AIME", source_type="qq8933/AIME_1983_2024", domain="11"),
    rec(12, "hard comb gold=112 question", thinking_trajectories=[]),
    rec(13, "hard comb gold=113 question", distill_error="HTTP 500 after 5 tries"),
    rec(14, "HARD   comb gold=102 QUESTION"),  # an exact duplicate of q2 up to case/space
    rec(15, "hard nt gold=115 question", solution=None),
    rec(16, "hard comb gold=116 question with a long enough trace"),
    rec(19, "[ratelimited] hard nt gold=119 question", domain="11"),
    rec(20, "[drop] hard nt gold=120 question", domain="11"),
    rec(17, "hard nt gold=117 question with a short trace", thinking_trajectories=["tiny"]),
]
byid = {r["id"]: r for r in qs}
del byid["q15"]["solution"]
del byid["q18"]["source"]  # only s1K's source_type says AIME
lines = qs + [b"{broken json\n", {"id": "q3", "question": "dup"}, b'{"id":"bad","question":"\xff"}\n']
pp = os.path.join(TMP, "pool_api.jsonl")
write(pp, lines)
out = os.path.join(TMP, "api")
args = ["--pool", pp, "--out", out, "--k", "3", "--seed", "7", "--ref-endpoint", URL, "--ref-model", "weak", "--ref-model", "strong",
        "--judge-endpoint", URL, "--judge-model", "judge", "--domain-endpoint", URL, "--domain-model", "msc",
        "--retries", "1", "--concurrency", "3", "--min-trace-tokens", "5"]
rc, so, se = run(args)
check("api: rc 0", rc == 0, se)
stats = read_jsonl(os.path.join(out, "stats.jsonl"))
check("api: one stats line per stage", [s["stage"] for s in stats] == ["load", "decontam", "quality", "difficulty", "domain", "diversity"], stats)
st = {s["stage"]: s for s in stats}
check("load: reasons", st["load"]["reasons"] == {"not_json": 1, "duplicate_id": 1, "invalid_utf8": 1}, st["load"])
check("quality: reasons", st["quality"]["reasons"] == {"format": 1, "empty_trace": 1, "teacher_failed": 1, "exact_duplicate": 1}, st["quality"])
dd = {d["id"]: d for d in read_jsonl(os.path.join(out, "3-difficulty.dropped.jsonl"))}
check("difficulty: solved by weak", "q0" in dd and "solved by weak" in dd["q0"]["drop_reason"], dd.get("q0"))
check("difficulty: solved by strong", "q1" in dd and "solved by strong" in dd["q1"]["drop_reason"], dd.get("q1"))
check("difficulty: judge said equal", "q6" in dd and dd["q6"]["drop_kind"] == "solved", dd.get("q6"))
check("difficulty: judge said not equal -> kept", "q7" not in dd, dd.get("q7"))
check("difficulty: precomputed true", "q10" in dd and dd["q10"]["drop_reason"] == "solved by a reference model (precomputed ref_correct)", dd.get("q10"))
check("difficulty: a model that stays down -> ref_error with the reason", "q5" in dd and dd["q5"]["drop_kind"] == "ref_error"
      and "HTTP 503" in dd["q5"]["drop_reason"] and "after 2 tries" in dd["q5"]["drop_reason"], dd.get("q5"))
check("difficulty: no solution", "q15" in dd and dd["q15"]["drop_kind"] == "no_solution", dd.get("q15"))
check("difficulty: short trace", "q17" in dd and dd["q17"]["drop_kind"] == "short_trace", dd.get("q17"))
check("difficulty: flaky recovered", "q4" not in dd, dd.get("q4"))
for qid in ("q19", "q20"):
    qq = byid[qid]["question"]
    check(f"difficulty: {qid} (429 / dropped connection) retried", qid not in dd and ASKED.get(("weak", qq)) == 2
          and ASKED.get(("strong", qq)) == 2, (dd.get(qid), ASKED.get(("weak", qq)), ASKED.get(("strong", qq))))
check("difficulty: reasoning in <think> is not graded", "q3" not in dd, dd.get("q3"))
kept = {r["id"]: r for r in read_jsonl(os.path.join(out, "3-difficulty.kept.jsonl"))}
check("difficulty: kept ids (AIME keeps its [asy])", set(kept) == {"q2", "q3", "q4", "q7", "q8", "q9", "q16", "q18", "q19", "q20"}, sorted(kept))
check("difficulty: answers recorded", kept.get("q3", {}).get("ref_answers") == {"weak": "1234567", "strong": "7654321"}
      and kept["q3"].get("ref_correct") is False, kept.get("q3"))
check("difficulty: trace tokens recorded", all(isinstance(r.get("trace_tokens"), int) and r["trace_tokens"] > 5 for r in kept.values()), "")
domd = {d["id"]: d for d in read_jsonl(os.path.join(out, "4-domain.dropped.jsonl"))}
check("domain: garbage reply -> domain_error", set(domd) == {"q8"} and "banana" in domd["q8"]["drop_reason"], domd)
dk = {r["id"]: r for r in read_jsonl(os.path.join(out, "4-domain.kept.jsonl"))}
check("domain: classified (last code of the reply after <think>)", dk.get("q4", {}).get("domain") == "05" and dk["q4"].get("domain_title") == "Combinatorics"
      and dk.get("q3", {}).get("domain") == "11", dk.get("q4"))
check("domain: present domains not asked", ("msc", "q2") not in {(m, q[:2]) for m, q in ASKED} and not any("hard comb gold=102" in q for m, q in ASKED if m == "msc"), "")
s1k = read_jsonl(os.path.join(out, "s1k.jsonl"))
check("s1k: k records", len(s1k) == 3, len(s1k))
check("s1k: fields for s1c train", all(isinstance(r["thinking_trajectories"], list) and r["question"] and r["solution"] and r["attempt"]
                                       and r["domain"] and r["extra"]["n"] >= 0 for r in s1k), s1k)
summ = json.load(open(os.path.join(out, "summary.json")))
check("summary: counts", summ["selected"] == 3 and summ["pool"] == 24 and [s["stage"] for s in summ["stages"]][-1] == "diversity", summ)
check("summary: domain histogram", sum(summ["domains"].values()) == 3 and set(summ["domains"]) <= {"05", "11"}, summ["domains"])
check("summary: length histogram", sum(summ["trace_tokens"]["histogram"]["selected"]) == 3
      and sum(summ["trace_tokens"]["histogram"]["candidates"]) == 9, summ["trace_tokens"])
try:
    root = ET.parse(os.path.join(out, "curate.svg")).getroot()
    check("curate.svg: an svg with bars", root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}rect")) > 10, root.tag)
except ET.ParseError as e:
    check("curate.svg parses", False, e)

# s1k.jsonl is what s1c train reads: one step on a tiny Qwen2-shaped model takes all 3 samples
QTOK = os.path.join(os.environ.get("S1C_DATA", ""), "qwen2.5-tokenizer")
if os.path.isdir(QTOK):
    tiny = os.path.join(TMP, "tiny")
    r = subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", "151936", "--tokenizer", QTOK, "--out", tiny],
                       capture_output=True, timeout=120)
    t = subprocess.run([BIN, "train", "--model", tiny, "--data", os.path.join(out, "s1k.jsonl"), "--out", os.path.join(TMP, "train"),
                        "--steps", "1", "--batch", "3", "--block-size", "1024"], capture_output=True, timeout=180)
    check("s1k.jsonl trains with s1c train", r.returncode == 0 and t.returncode == 0 and b"3 samples" in t.stderr + t.stdout
          and b"0 skipped" in t.stderr + t.stdout, (r.stderr[-300:], t.stderr[-500:]))

# ---------------------------------------------------------------- rerun: journals answer, only failures are asked again
before = dict(ASKED)
rc, so, se = run(args)
again = sorted({(m, q) for (m, q), n in ASKED.items() if before.get((m, q)) != n})
check("rerun: rc 0", rc == 0, se)
check("rerun: only the failed calls are asked again", all(("[refdown]" in q and m == "strong") or ("garbage" in q and m == "msc") for m, q in again)
      and len(again) == 2, [(m, q[-60:]) for m, q in again])
s1k2 = read_jsonl(os.path.join(out, "s1k.jsonl"))
check("rerun: same selection (same seed)", s1k2 == s1k, "")
rc, so, se = run(args[:-2] + ["--seed", "8", "--k", "6", "--out", os.path.join(TMP, "api8")])
check("another seed and k: rc 0, more picked", rc == 0 and len(read_jsonl(os.path.join(TMP, "api8", "s1k.jsonl"))) == 6, se)

# ---------------------------------------------------------------- a local reference model through the engine
DATA = os.environ.get("S1C_DATA", "")
model = os.path.join(DATA, "models/stories260K/stories260K.bin")
tokf = os.path.join(DATA, "models/stories260K/tok512.bin")
if os.path.exists(model):
    stories = ["Once upon a time", "The little dog", "Lily went to the park"]
    lp = os.path.join(TMP, "local.jsonl")
    write(lp, [rec(i, q, domain="05") for i, q in enumerate(stories)])
    largs = ["--ref-local", model, "--ref-local-tokenizer", tokf, "--ref-max-tokens", "40", "--k", "3"]
    rc, so, se = run(["--pool", lp, "--out", os.path.join(TMP, "local")] + largs)
    kept = read_jsonl(os.path.join(TMP, "local", "3-difficulty.kept.jsonl"))
    check("local: rc 0, nothing solved", rc == 0 and len(kept) == 3, se)
    g = subprocess.run([BIN, "generate", "--model", model, "--tokenizer", tokf, "--prompt", stories[0], "--max-tokens", "40",
                        "--temperature", "0", "--no-echo"], capture_output=True, timeout=60)
    ans = kept[0]["ref_answers"].get("local:stories260K.bin") if kept else None
    check("local: the answer is s1c generate's greedy text", ans is not None and ans == g.stdout.decode().strip(), (ans, g.stdout))
    # a pool whose gold is that very text: solved by the local model
    write(lp, [rec(0, stories[0], domain="05", solution=ans or "x"), rec(1, stories[1], domain="05")])
    rc, so, se = run(["--pool", lp, "--out", os.path.join(TMP, "local2")] + largs)
    dd = read_jsonl(os.path.join(TMP, "local2", "3-difficulty.dropped.jsonl"))
    check("local: solved when its answer is the gold", rc == 0 and [d["id"] for d in dd] == ["q0"] and "local:stories260K.bin" in dd[0]["drop_reason"], dd)

# ---------------------------------------------------------------- errors
noref = os.path.join(TMP, "noref.jsonl")
write(noref, [rec(0, "q one", domain="05"), rec(1, "q two", domain="05")])
for a, what in ((["--pool", noref, "--out", os.path.join(TMP, "e1")], "no ref_correct"),
                (["--pool", noref, "--out", os.path.join(TMP, "e2"), "--no-difficulty", "--ref-model", "x"], "needs a --ref-endpoint"),
                (["--pool", noref, "--out", os.path.join(TMP, "e3"), "--no-difficulty", "--judge-model", "x"], "go together"),
                (["--pool", "/nonexistent/pool.jsonl", "--out", os.path.join(TMP, "e4"), "--no-difficulty"], "nonexistent"),
                (["--pool", noref, "--out", os.path.join(TMP, "e5"), "--no-difficulty", "--decontam-bench", "aime99"], "aime99"),
                (["--pool", noref, "--out", os.path.join(TMP, "e6"), "--no-difficulty", "--decontam-file", "/nonexistent.jsonl"], "nonexistent"),
                (["--pool", noref, "--out", os.path.join(TMP, "e7"), "--ref-endpoint", "ftp://x", "--ref-model", "m"], "http"),
                (["--pool", noref], "required"), (["--bogus"], "unknown option")):
    rc, so, se = run(a)
    check(f"error: {what}", rc == 1 and what in se and len(se.strip().splitlines()[-1:]) == 1 and se.strip().splitlines()[-1].startswith("s1c: "), se)
nodom = os.path.join(TMP, "nodom.jsonl")
write(nodom, [rec(0, "q one"), rec(1, "q two")])
rc, so, se = run(["--pool", nodom, "--out", os.path.join(TMP, "e8"), "--no-difficulty"])
check("error: no domain and no classifier", rc == 1 and "no classifier" in se, se)

srv.shutdown()
finish()
