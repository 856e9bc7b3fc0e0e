#!/usr/bin/python3
"""s1c serve under load on loopback: 64 concurrent streaming clients (budget forcing, greedy,
each answer checked against the same request run alone) while 1,000 malformed requests arrive
(bad JSON, wrong types, huge bodies, slowloris partial sends, abrupt disconnects). Checks: no
crash, every valid request answered correctly, every malformed one answered with its 4xx (or
dropped when the client left), nothing left running, resident memory back to its baseline,
clean exit on SIGTERM. Prints the measured numbers as one JSON line."""
import atexit, http.client, json, os, random, re, signal, socket, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN, DATA, TMP = os.environ["S1C_BIN"], os.environ["S1C_DATA"], os.environ["S1C_TMP"]
qwen = os.path.join(TMP, "serve_qwen_tiny")
if not os.path.exists(os.path.join(qwen, "model.safetensors")):
    subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", "151936", "--tokenizer",
                    f"{DATA}/qwen2.5-tokenizer", "--seed", "4", "--out", qwen], check=True, capture_output=True)

srv = subprocess.Popen([BIN, "serve", "--model", qwen, "--port", "0", "--quiet", "--parallel", "16", "--timeout", "3",
                        "--max-body", "65536", "--queue", "512"], stderr=subprocess.PIPE, text=True)
atexit.register(lambda: srv.poll() is None and srv.kill())  # no server outlives the test
port = int(re.search(r":(\d+) ", srv.stderr.readline()).group(1))
CHAT = "/v1/chat/completions"


def rss_kib():
    for line in open(f"/proc/{srv.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def post(body, stream=False, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", CHAT, body=body if isinstance(body, (bytes, str)) else json.dumps(body))
    r = c.getresponse()
    if not stream:
        out = r.status, r.read()
        c.close()
        return out
    reasoning, content, finish_reason, usage = "", "", None, None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        d = json.loads(line[6:])
        if d.get("usage"):
            usage = d["usage"]
        for ch in d.get("choices", []):
            reasoning += ch["delta"].get("reasoning_content") or ""
            content += ch["delta"].get("content") or ""
            finish_reason = ch.get("finish_reason") or finish_reason
    c.close()
    return r.status, (reasoning, content, finish_reason, usage)


def valid(i):
    return {"messages": [{"role": "user", "content": f"Question {i % 8}: what is {i % 8} + 1?"}], "temperature": 0,
            "max_thinking_tokens": 12 + i % 8, "max_answer_tokens": 6, "stream": True, "stream_options": {"include_usage": True}}


# references: each distinct request alone, then the memory baseline
ref = {}
for k in range(8):
    body = dict(valid(k), stream=False)
    st, text = post(body)
    d = json.loads(text)
    m = d["choices"][0]["message"]
    ref[k] = (m["reasoning_content"], m["content"], d["choices"][0]["finish_reason"], d["usage"]["completion_tokens"])
time.sleep(0.5)
rss_base = rss_kib()

results, bad_results, lock = [], [], threading.Lock()


def client(i):
    for rnd in range(2):
        try:
            st, (r, c, f, u) = post(valid(i + rnd), stream=True)
            want = ref[(i + rnd) % 8]
            ok = st == 200 and (r, c, f) == want[:3] and u and u["completion_tokens"] == want[3]
            if not ok:
                ok = f"request {i + rnd}: got {(st, r, c, f, u and u['completion_tokens'])}, alone {want}"
        except Exception as e:  # noqa: BLE001
            ok = f"exception {e!r}"
        with lock:
            results.append(ok)


def raw(data, close_early=False, read=True):
    """Sends bytes; returns the status code of the answer (None when there is none)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(data)
        if close_early:
            s.close()
            return None
        resp = b""
        while read and b"\r\n" not in resp:
            got = s.recv(4096)
            if not got:
                break
            resp += got
        m = re.match(rb"HTTP/1\.[01] (\d+)", resp)
        return int(m.group(1)) if m else None
    except OSError:
        return None
    finally:
        s.close()


def req_bytes(body, extra=""):
    if isinstance(body, str):
        body = body.encode()
    return f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def malformed(k, rng):
    kind = k % 6
    if kind == 0:  # bad JSON
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        return "bad json", raw(req_bytes(junk)), 400
    if kind == 1:  # wrong types
        field, value = rng.choice([("messages", 5), ("temperature", "x"), ("max_tokens", -3), ("n", 1.5), ("stream", 1),
                                   ("max_thinking_tokens", []), ("stop", {}), ("num_waits", "2"), ("thinking", 3), ("logprobs", "yes")])
        body = {"messages": [{"role": "user", "content": "hi"}], field: value}
        return f"wrong type {field}", raw(req_bytes(json.dumps(body))), 400
    if kind == 2:  # huge body (declared, then sent)
        body = b'{"messages":"' + b"a" * 100000 + b'"}'
        return "huge body", raw(req_bytes(body)), 413
    if kind == 3:  # huge declared length, nothing sent
        return "huge declared", raw(f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n".encode()), 413
    if kind == 4:  # abrupt disconnect: a valid request, the client gone at once
        return "disconnect", raw(req_bytes(json.dumps(dict(valid(k), stream=bool(k % 2)))), close_early=True), None
    # half a request, then gone
    return "half request", raw(req_bytes(json.dumps(valid(k)))[:40 + k % 60], close_early=True), None


def bad_worker(w, n):
    rng = random.Random(w)
    for k in range(n):
        name, got, want = malformed(w * n + k, rng)
        with lock:
            bad_results.append((name, got, want))


slow_socks = []


def slowloris(n):
    """Partial headers, a byte now and then: the server's timeout must end them."""
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        slow_socks.append(s)
    for _ in range(3):
        time.sleep(1)
        for s in slow_socks:
            try:
                s.sendall(b"X")
            except OSError:
                pass


def load_round():
    """64 streaming clients, 1,000 malformed requests and 50 slowloris connections at once."""
    results.clear()
    bad_results.clear()
    t0 = time.time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    threads += [threading.Thread(target=bad_worker, args=(w, 125)) for w in range(8)]
    threads.append(threading.Thread(target=slowloris, args=(50,)))
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads) and time.time() - t0 < 300:
        peak = max(peak, rss_kib())
        time.sleep(0.2)
    for t in threads:
        t.join(timeout=1)
    for s in slow_socks:
        s.close()
    slow_socks.clear()
    return time.time() - t0, peak


def settle():
    """Waits until nothing runs or waits and the slowloris connections have timed out."""
    deadline = time.time() + 20
    text = ""
    while time.time() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        if re.search(r"^s1c_running_requests 0$", text, re.M) and re.search(r"^s1c_queue_depth 0$", text, re.M):
            break
        time.sleep(0.2)
    time.sleep(4)  # slowloris connections time out after 3 s
    return text


# a first round brings the server to its working set (KV blocks touched, thread stacks cached,
# malloc arenas made); the second must leave memory where the first left it
elapsed1, peak1 = load_round()
settle()
rss_warm = rss_kib()
elapsed, peak = load_round()
check("server alive", srv.poll() is None, srv.poll())
check("64 clients x 2 requests answered", len(results) == 128, len(results))
wrong = [r for r in results if r is not True]
check("every valid request answered correctly", not wrong, wrong[:3])
check("1000 malformed requests sent", len(bad_results) == 1000, len(bad_results))
wrong_bad = [b for b in bad_results if b[2] is not None and b[1] != b[2]]
check("every malformed request got its 4xx", not wrong_bad, wrong_bad[:5])
st, _ = post({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0})
check("still serving", st == 200, st)

text = settle()
check("nothing running or queued", "s1c_running_requests 0" in text and "s1c_queue_depth 0" in text, text[-400:])
rss_after = rss_kib()
check("resident memory back to its level after the first round (within 2 MiB)", rss_after - rss_warm < 2048,
      f"first request {rss_base} KiB, after round 1 {rss_warm} KiB, after round 2 {rss_after} KiB")
srv.send_signal(signal.SIGTERM)
try:
    rc = srv.wait(timeout=60)
except subprocess.TimeoutExpired:
    srv.kill()
    rc = "hung"
check("clean exit", rc == 0, rc)
print(json.dumps({"rounds": 2, "valid_requests_per_round": len(results), "malformed_requests_per_round": len(bad_results), "slowloris_per_round": 50,
                  "seconds_per_round": [round(elapsed1, 1), round(elapsed, 1)], "rss_kib_before_load": rss_base, "rss_kib_after_round1": rss_warm,
                  "rss_kib_after_round2": rss_after, "rss_kib_peak": max(peak1, peak)}))
finish()
