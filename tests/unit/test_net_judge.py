#!/usr/bin/python3
"""s1c grade with the LLM judge against a scripted OpenAI-compatible server on 127.0.0.1
(ephemeral port, loopback only, the whole test bounded by an alarm): unsure pairs go to the
judge and get "judge": true; the verdict cache stops a second request; retries on 500, 429
with Retry-After, a slow response (timeout) and a refused connection; errors that are not
retried (malformed JSON, a reply that is not Yes/No) and the one-line judge_error with URL,
HTTP status and tries; the API key header; option errors."""
import http.server, json, os, signal, socketserver, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN = os.environ["S1C_BIN"]
TMP = os.environ.get("S1C_TMP") or "/tmp"
signal.alarm(180)  # a hung server or client fails the test instead of blocking ctest

LOCK = threading.Lock()
REQUESTS = []  # (model, gold, pred, authorization header)
SEEN = {}      # (model, gold, pred) -> times asked


def parse_pair(prompt):
    """The last Reference:/Attempt: lines of the judge prompt."""
    lines = prompt.splitlines()
    gold = [l for l in lines if l.startswith("Reference: ")][-1][len("Reference: "):]
    pred = [l for l in lines if l.startswith("Attempt: ")][-1][len("Attempt: "):]
    return gold, pred


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n))
        model = req["model"]
        gold, pred = parse_pair(req["messages"][-1]["content"])
        with LOCK:
            REQUESTS.append((model, gold, pred, self.headers.get("Authorization")))
            k = (model, gold, pred)
            SEEN[k] = SEEN.get(k, 0) + 1
            nth = SEEN[k]
        if self.path != "/v1/chat/completions":
            return self.reply(404, '{"error":{"message":"no such path"}}')
        # the rule: equivalent when the two answers have the same length
        answer = "Yes" if len(gold.strip()) == len(pred.strip()) else "No"
        if model == "flaky" and nth == 1:
            return self.reply(500, '{"error":{"message":"internal hiccup"}}')
        if model == "ratelimit" and nth == 1:
            return self.reply(429, '{"error":{"message":"slow down"}}', [("Retry-After", "1")])
        if model == "slow" and nth == 1:
            time.sleep(2.5)
        if model == "down":
            return self.reply(503, '{"error":{"message":"overloaded\\nplease retry"}}')
        if model == "badjson":
            return self.reply(200, '{"choices": [ {"message": ')
        if model == "maybe":
            answer = "Maybe, it depends"
        if model == "auth" and self.headers.get("Authorization") != "Bearer sekrit":
            return self.reply(401, '{"error":{"message":"bad key"}}')
        msg = {"role": "assistant", "content": answer}
        if model == "reasoner":
            msg = {"role": "assistant", "content": "<think>compare lengths</think>\n**" + answer + ".**",
                   "reasoning_content": "hmm"}
        self.reply(200, json.dumps({"id": "x", "object": "chat.completion", "model": model,
                                    "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                                    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{srv.server_address[1]}/v1"


def count(model):
    with LOCK:
        return sum(1 for r in REQUESTS if r[0] == model)


def grade(args, data, env_extra=None):
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env["S1C_NET_BACKOFF"] = "0.05"
    env.update(env_extra or {})
    t = time.time()
    r = subprocess.run([BIN, "grade"] + args, input=data.encode(), capture_output=True, timeout=120, env=env)
    return r.returncode, r.stdout.decode(), r.stderr.decode(), time.time() - t


def judge_args(model, *extra):
    return ["--judge-endpoint", URL, "--judge-model", model] + list(extra)


SURE = {"gold": "1/2", "pred": "0.5"}
YES = {"gold": "\\int x", "pred": "\\sum y"}    # unsure for the grader; same length -> Yes
NO = {"gold": "\\int x", "pred": "\\sum yy"}    # unsure; different length -> No
lines = [json.dumps(d) for d in (SURE, YES, NO)]
inp = "\n".join(lines) + "\n"

# --- the pairs really are unsure without a judge
rc, out, err, _ = grade([], inp)
outs = [json.loads(l) for l in out.splitlines()]
check("no judge: rc", rc == 0, err)
check("no judge: unsure pairs", [o.get("unsure", False) for o in outs] == [False, True, True], out)

# --- the judge decides the unsure pairs, the sure one is never sent
cache = os.path.join(TMP, "net_judge_cache.jsonl")
if os.path.exists(cache):
    os.remove(cache)
rc, out, err, _ = grade(judge_args("judge", "--judge-cache", cache), inp)
outs = out.splitlines()
check("judge: rc", rc == 0, err)
check("judge: 3 lines", len(outs) == 3, out)
if len(outs) == 3:
    for a, b in zip(lines, outs):
        check("judge: bytes kept", b.startswith(a[:-1] + ","), b)
    o = [json.loads(l) for l in outs]
    check("judge: sure line untouched", o[0]["equal"] is True and "judge" not in o[0] and "unsure" not in o[0], outs[0])
    check("judge: yes", o[1]["equal"] is True and o[1].get("judge") is True and "unsure" not in o[1], outs[1])
    check("judge: no", o[2]["equal"] is False and o[2].get("judge") is True and "unsure" not in o[2], outs[2])
check("judge: 2 requests", count("judge") == 2, REQUESTS)
check("judge: no warning", "warning" not in err, err)
check("judge: no key header", all(r[3] is None for r in REQUESTS), REQUESTS)
clines = open(cache).read().splitlines()
check("cache: 2 lines", len(clines) == 2, clines)
check("cache: content", {(c["gold"], c["pred"], c["equal"]) for c in map(json.loads, clines)} ==
      {(YES["gold"], YES["pred"], True), (NO["gold"], NO["pred"], False)}, clines)

# --- a second run with the cache asks nothing and gives the same output
rc2, out2, err2, _ = grade(judge_args("judge", "--judge-cache", cache), inp)
check("cache: rc", rc2 == 0, err2)
check("cache: same output", out2 == out, out2)
check("cache: no new request", count("judge") == 2, REQUESTS)

# --- a torn last line in the cache is ignored, the next verdict starts on a new line
with open(cache, "a") as f:
    f.write('{"model":"judge","gold":"torn')
new = json.dumps({"gold": "\\int z", "pred": "\\oint w"})
rc, out, err, _ = grade(judge_args("judge", "--judge-cache", cache), inp + new + "\n")
check("torn cache: rc", rc == 0, err)
check("torn cache: one new request", count("judge") == 3, REQUESTS)
clines = open(cache).read().splitlines()
check("torn cache: appended on its own line", len(clines) == 4 and json.loads(clines[-1])["pred"] == "\\oint w", clines)
# the cache is keyed by model too: another model asks again
rc, out, err, _ = grade(judge_args("reasoner", "--judge-cache", cache), lines[1] + "\n")
check("cache keyed by model", rc == 0 and count("reasoner") == 1 and json.loads(out)["equal"] is True, out + err)

# --- 500 then 200: retried
rc, out, err, t = grade(judge_args("flaky"), lines[1] + "\n")
check("500 retried: verdict", rc == 0 and json.loads(out).get("judge") is True and json.loads(out)["equal"] is True, out + err)
check("500 retried: 2 requests", count("flaky") == 2, REQUESTS)

# --- 429 with Retry-After: 1 -> waits about a second, then succeeds
rc, out, err, t = grade(judge_args("ratelimit"), lines[2] + "\n")
check("429 retried: verdict", rc == 0 and json.loads(out).get("judge") is True and json.loads(out)["equal"] is False, out + err)
check("429 retried: 2 requests", count("ratelimit") == 2, REQUESTS)
check("429 retried: Retry-After honoured", t >= 0.9, t)

# --- a slow first response: the 1 s timeout fires, the retry succeeds
rc, out, err, t = grade(judge_args("slow", "--judge-timeout", "1"), lines[1] + "\n")
check("timeout retried: verdict", rc == 0 and json.loads(out).get("judge") is True, out + err)
check("timeout retried: 2 requests", count("slow") == 2, REQUESTS)

# --- always 503: after 1 + 2 tries the best guess stays, unsure, with a one-line error
rc, out, err, t = grade(judge_args("down", "--judge-retries", "2"), inp)
o = [json.loads(l) for l in out.splitlines()]
check("down: rc 0", rc == 0, err)
check("down: 3 tries per pair", count("down") == 6, REQUESTS)
if len(o) == 3:
    je = o[1].get("judge_error", "")
    check("down: unsure kept", o[1].get("unsure") is True and "judge" not in o[1] and o[1]["equal"] is False, o[1])
    check("down: error names URL, status, tries",
          URL + "/chat/completions" in je and "HTTP 503" in je and "after 3 tries" in je and "overloaded" in je, je)
    check("down: one line", "\n" not in je, je)
    check("down: sure line untouched", "judge_error" not in o[0], o[0])
check("down: warning with the count", "warning" in err and "failed on 2 of 2" in err, err)

# --- not retried: malformed JSON, a reply that is not Yes/No, a 401
rc, out, err, _ = grade(judge_args("badjson"), lines[1] + "\n")
je = json.loads(out).get("judge_error", "") if rc == 0 else ""
check("bad json: reported", rc == 0 and "not a JSON object" in je and json.loads(out).get("unsure") is True, out + err)
check("bad json: not retried", count("badjson") == 1, REQUESTS)
rc, out, err, _ = grade(judge_args("maybe"), lines[1] + "\n")
je = json.loads(out).get("judge_error", "") if rc == 0 else ""
check("maybe: reported", "answered 'Maybe, it depends'" in je and "Yes or No" in je, out + err)
rc, out, err, _ = grade(judge_args("auth"), lines[1] + "\n")
je = json.loads(out).get("judge_error", "") if rc == 0 else ""
check("401: reported, not retried", "HTTP 401" in je and "bad key" in je and count("auth") == 1, out + err)

# --- the API key: flag, then $OPENAI_API_KEY
rc, out, err, _ = grade(judge_args("auth", "--judge-key", "sekrit"), lines[1] + "\n")
check("key flag", rc == 0 and json.loads(out).get("judge") is True, out + err)
rc, out, err, _ = grade(judge_args("auth"), lines[2] + "\n", {"OPENAI_API_KEY": "sekrit"})
check("key env", rc == 0 and json.loads(out).get("judge") is True, out + err)

# --- connection refused: retried, then reported
srv2 = Server(("127.0.0.1", 0), Handler)
dead = f"http://127.0.0.1:{srv2.server_address[1]}/v1"
srv2.server_close()
rc, out, err, _ = grade(["--judge-endpoint", dead, "--judge-model", "judge", "--judge-retries", "1"], lines[1] + "\n")
je = json.loads(out).get("judge_error", "") if rc == 0 else ""
check("refused: reported", dead in je and "after 2 tries" in je, out + err)

# --- option errors
for args, what in ((["--judge-endpoint", URL], "together"), (["--judge-model", "m"], "together"),
                   (["--judge-cache", cache], "need"), (judge_args("judge", "--judge-retries", "x"), "retries"),
                   (["--judge-endpoint", "ftp://x", "--judge-model", "m"], "http")):
    rc, out, err, _ = grade(args, lines[1] + "\n")
    check(f"option error {args[0]} {what}", rc == 1 and what in err and out == "", err)

srv.shutdown()
finish()
