#!/usr/bin/python3
"""s1c serve as clients use it: the official `openai` npm client (tests/node/test_openai.mjs:
chat, completions, streaming, n > 1, budget fields and aliases, usage, logprobs, outputs equal
to s1c generate), then raw HTTP for what a client library hides: bad input of every kind gets
its 4xx and a JSON error, the API key, /metrics, a disconnect cancels its request, 429 when
the queue is full, waits on stories260K, and SIGTERM lets a running request finish and exits 0.
Exit 77 only when npm cannot fetch the client (after the raw checks passed)."""
import atexit, http.client, json, os, re, signal, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish, _counts  # noqa: E402

BIN, DATA, TMP, SRC = os.environ["S1C_BIN"], os.environ["S1C_DATA"], os.environ["S1C_TMP"], os.environ["S1C_SRC"]
KEY = "test-key"

qwen = os.path.join(TMP, "serve_qwen_tiny")
if not os.path.exists(os.path.join(qwen, "model.safetensors")):
    subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", "151936", "--tokenizer",
                    f"{DATA}/qwen2.5-tokenizer", "--seed", "4", "--out", qwen], check=True, capture_output=True)


started = []


@atexit.register
def stop_all():
    """No server outlives the test, whatever failed."""
    for p in started:
        if p.poll() is None:
            p.kill()


def start(*args):
    """Starts a server on a free port; returns (process, port)."""
    p = subprocess.Popen([BIN, "serve", "--port", "0", "--quiet", *args], stderr=subprocess.PIPE, text=True)
    started.append(p)
    line = p.stderr.readline()
    m = re.search(r"http://[^:]+:(\d+)", line)
    if not m:
        p.kill()
        raise SystemExit(f"server did not start: {line}{p.stderr.read()}")
    return p, int(m.group(1))


def request(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Authorization": f"Bearer {KEY}", **(headers or {})}
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    out = r.status, r.read().decode("utf-8", "replace"), dict(r.getheaders())
    c.close()
    return out


def error_ok(status, text, want):
    try:
        e = json.loads(text)["error"]
        return status == want and isinstance(e["message"], str) and e["type"] and "param" in e
    except (ValueError, KeyError, TypeError):
        return False


def metric(port, name):
    _, text, _ = request(port, "GET", "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


# ---- the command line refuses what cannot work, with one line that says why
for args, what in [([], "--model is required"), (["--model", qwen, "--port", "70000"], "--port"),
                   (["--model", qwen, "--effort-budgets", "1,2"], "--effort-budgets"), (["--model", qwen, "--bogus"], "unknown option"),
                   (["--model", f"{DATA}/models/stories260K/stories260K.bin"], "tokenizer"), (["--model", qwen, "--host", "not-an-address"], "--host")]:
    r = subprocess.run([BIN, "serve", *args], capture_output=True, text=True, timeout=60)
    check(f"cli: {what}", r.returncode != 0 and what in r.stderr and r.stderr.count("\n") == 1, r.stderr)

srv, port = start("--model", qwen, "--api-key", KEY, "--effort-budgets", "3,6,9", "--max-body", "65536")
try:
    r = subprocess.run([BIN, "serve", "--model", qwen, "--port", str(port)], capture_output=True, text=True, timeout=60)
    check("cli: port in use", r.returncode == 1 and "cannot listen" in r.stderr, r.stderr)
except subprocess.TimeoutExpired:
    check("cli: port in use", False, "a second server started on the same port")
user = [{"role": "user", "content": "What is 2+2?"}]
chat = "/v1/chat/completions"

# ---- bad input: every one a 4xx with an OpenAI error object, and the server goes on
bad = [("not JSON", b"{", 400), ("array body", b"[1]", 400), ("empty body", b"", 400), ("NUL bytes", b"\0\0", 400),
       ("messages string", {"messages": "hi"}, 400), ("message not object", {"messages": [3]}, 400),
       ("content number", {"messages": [{"role": "user", "content": 5}]}, 400),
       ("image part", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400),
       ("max_tokens float", {"messages": user, "max_tokens": 1.5}, 400), ("max_tokens 0", {"messages": user, "max_tokens": 0}, 400),
       ("top_p 0", {"messages": user, "top_p": 0}, 400), ("stream string", {"messages": user, "stream": "yes"}, 400),
       ("stop number", {"messages": user, "stop": 5}, 400), ("stop empty", {"messages": user, "stop": [""]}, 400),
       ("seed string", {"messages": user, "seed": "1"}, 400), ("n 0", {"messages": user, "n": 0}, 400),
       ("logprobs int on chat", {"messages": user, "logprobs": 3}, 400), ("top_logprobs alone", {"messages": user, "top_logprobs": 2}, 400),
       ("budget string", {"messages": user, "max_thinking_tokens": "lots"}, 400), ("min > max", {"messages": user, "min_thinking_tokens": 9, "max_thinking_tokens": 3}, 400),
       ("aliases disagree", {"messages": user, "thinking_budget": 3, "reasoning_budget_tokens": 4}, 400),
       ("thinking not object", {"messages": user, "thinking": 5}, 400), ("effort unknown", {"messages": user, "reasoning_effort": "max"}, 400),
       ("waits negative", {"messages": user, "num_waits": -1}, 400), ("empty think_end", {"messages": user, "think_end": ""}, 400),
       ("wait_str too long", {"messages": user, "wait_str": "w" * 300}, 400), ("stream_options string", {"messages": user, "stream_options": "x"}, 400),
       ("context overflow", {"messages": user, "max_tokens": 5000}, 400), ("huge prompt", {"messages": [{"role": "user", "content": "a " * 30000}]}, 400),
       ("body over the limit", {"messages": [{"role": "user", "content": "a" * 70000}]}, 413)]
for name, body, want in bad:
    st, text, _ = request(port, "POST", chat, body)
    check(f"bad input: {name}", error_ok(st, text, want), f"{st} {text[:200]}")
st, text, _ = request(port, "POST", chat, {"messages": user, "max_tokens": 5000})
check("context error names the numbers", "4096" in text and "5000" in text, text)
st, text, _ = request(port, "POST", "/v1/completions", {"prompt": [[1, 2], "x", 3]})
check("completions: bad prompt list", error_ok(st, text, 400), text)
st, text, _ = request(port, "POST", "/v1/completions", {"prompt": [999999999]})
check("completions: token outside the vocabulary", error_ok(st, text, 400) and "vocabulary" in text, text)
check("unknown path 404", error_ok(*request(port, "GET", "/v2/x")[:2], 404))
check("wrong method 405", error_ok(*request(port, "GET", chat)[:2], 405))
st, text, _ = request(port, "POST", chat, {"messages": user, "max_tokens": 2}, headers={"Authorization": "Bearer nope"})
check("wrong key 401", error_ok(st, text, 401), text)
check("health needs no key", request(port, "GET", "/health", headers={"Authorization": ""})[0] == 200)
st, text, _ = request(port, "POST", chat, {"messages": user, "max_tokens": 3, "temperature": 0, "unknown_field": {"x": 1}})
check("unknown fields ignored", st == 200 and json.loads(text)["usage"]["completion_tokens"] == 3, text[:200])

# chunked upload over the limit (no Content-Length to refuse early)
s = socket.create_connection(("127.0.0.1", port))
s.sendall(f"POST {chat} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
try:
    for _ in range(40):
        s.sendall(b"1000\r\n" + b"a" * 4096 + b"\r\n")
    s.sendall(b"0\r\n\r\n")
except OSError:
    pass
s.settimeout(10)
resp = b""
try:
    while b"\r\n\r\n" not in resp:
        got = s.recv(4096)
        if not got:
            break
        resp += got
except OSError:
    pass
s.close()
check("chunked body over the limit: 413", resp.startswith(b"HTTP/1.1 413"), resp[:80])

# ---- a client that leaves mid-stream cancels its request
before = metric(port, "s1c_cancelled_total")
s = socket.create_connection(("127.0.0.1", port))
body = json.dumps({"messages": user, "max_tokens": 3000, "stream": True, "temperature": 0}).encode()
s.sendall(f"POST {chat} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
s.recv(100)
s.close()
deadline = time.time() + 10
while time.time() < deadline and (metric(port, "s1c_cancelled_total") or 0) <= (before or 0):
    time.sleep(0.1)
check("disconnect cancels", (metric(port, "s1c_cancelled_total") or 0) > (before or 0), metric(port, "s1c_cancelled_total"))
deadline = time.time() + 10
while time.time() < deadline and metric(port, "s1c_running_requests") != 0:
    time.sleep(0.1)
check("nothing left running", metric(port, "s1c_running_requests") == 0)
st, text, _ = request(port, "GET", "/metrics")
check("metrics text", st == 200 and 's1c_tokens_total{phase="reasoning"}' in text and "s1c_time_to_first_token_seconds_bucket" in text
      and 's1c_requests_total{endpoint="chat",status="400"}' in text, text[:300])

# ---- the openai npm client
node_rc = None
cache = os.path.join(TMP, "node_openai")
if not os.path.exists(os.path.join(cache, "node_modules", "openai", "package.json")):
    try:
        r = subprocess.run(["npm", "install", "--prefix", cache, "--no-audit", "--no-fund", "--fetch-retries=1", "--fetch-timeout=30000", "openai@4"],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            print("npm cannot install openai@4:", r.stderr[-300:])
    except (OSError, subprocess.TimeoutExpired) as e:
        print("npm cannot install openai@4:", e)
if os.path.exists(os.path.join(cache, "node_modules", "openai", "package.json")):
    env = dict(os.environ, BASE_URL=f"http://127.0.0.1:{port}", MODEL=qwen, API_KEY=KEY, OPENAI_DIR=cache)
    r = subprocess.run(["node", os.path.join(SRC, "tests", "node", "test_openai.mjs")], capture_output=True, text=True, env=env, timeout=600)
    print(r.stdout.strip())
    node_rc = r.returncode
    check("openai client tests", r.returncode == 0, r.stderr[-2000:])

# ---- SIGTERM: a running request finishes, then exit 0
s = socket.create_connection(("127.0.0.1", port))
body = json.dumps({"messages": user, "max_tokens": 200, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}).encode()
s.sendall(f"POST {chat} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
s.settimeout(60)
resp = b""
while b'"content":"' not in resp.split(b"\r\n\r\n", 1)[-1] or resp.count(b"data: ") < 3:  # running: tokens are arriving
    got = s.recv(65536)
    if not got:
        break
    resp += got
srv.send_signal(signal.SIGTERM)
while b"data: [DONE]" not in resp:
    try:
        got = s.recv(65536)
    except OSError:
        break
    if not got:
        break
    resp += got
s.close()
check("in-flight request finished on SIGTERM", resp.startswith(b"HTTP/1.1 200") and b'"completion_tokens":200' in resp and b"data: [DONE]" in resp, resp[-300:])
try:
    rc = srv.wait(timeout=30)
except subprocess.TimeoutExpired:
    srv.kill()
    rc = "hung"
check("SIGTERM exits 0", rc == 0, f"{rc} {srv.stderr.read()[-500:]}")

# ---- a full queue answers 429 with Retry-After
srv, port = start("--model", qwen, "--parallel", "1", "--queue", "0")
s = socket.create_connection(("127.0.0.1", port))
body = json.dumps({"messages": user, "max_tokens": 3000, "stream": True}).encode()
s.sendall(f"POST {chat} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
s.recv(100)
st, text, headers = request(port, "POST", chat, {"messages": user, "max_tokens": 2})
check("queue full: 429", error_ok(st, text, 429) and headers.get("Retry-After") == "1", f"{st} {headers}")
s.close()
time.sleep(0.3)
st, text, _ = request(port, "POST", chat, {"messages": user, "max_tokens": 2})
check("after the disconnect it serves again", st == 200, text[:200])
srv.send_signal(signal.SIGTERM)
check("second server exits 0", srv.wait(timeout=30) == 0)

# ---- waits on stories260K (the random Qwen never ends its thinking): the same as s1c generate
st_model = f"{DATA}/models/stories260K/stories260K.gguf"
srv, port = start("--model", st_model)
bf = {"think_start": "", "think_end": ".", "wait_str": " Then", "num_waits": 2, "max_answer_tokens": 12}
st, text, _ = request(port, "POST", "/v1/completions", {"prompt": "Once upon a time", "temperature": 0, **bf})
g = json.loads(subprocess.run([BIN, "generate", "--model", st_model, "--raw", "--prompt", "Once upon a time", "--think-start", "", "--think-end", ".",
                               "--wait-str", " Then", "--waits", "2", "--answer-max", "12", "--json"], capture_output=True, text=True).stdout)
d = json.loads(text) if st == 200 else {}
c = d.get("choices", [{}])[0]
check("stories: waits injected", c.get("budget_forcing", {}).get("waits") == 2, text[:300])
check("stories: text == generate", c.get("text") == g["text"] and d["usage"]["completion_tokens"] == len(g["tokens"]), [c.get("text"), g["text"]])
srv.send_signal(signal.SIGTERM)
srv.wait(timeout=30)

if node_rc is None and _counts["failed"] == 0:
    print(f"{_counts['passed']} passed, {_counts['failed']} failed (openai client not installable: skipped)")
    sys.exit(77)
finish()
