#!/usr/bin/python3
"""s1c bench as a user runs it, on the tiny preset with --quick (seconds): the JSON lines
(the machine's limits, then name/type/tok_s/limit_tok_s/fraction for every workload and
type, fraction = tok_s / limit_tok_s, the training step reported as skipped), the text
table, --types, --model on files of two types, the temporary models removed afterwards,
and bad options as one-line errors."""
import json, os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN, TMP = os.environ["S1C_BIN"], os.environ["S1C_TMP"]
WORK = os.path.join(TMP, "bench_cli")
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
NAMES = ["prefill", "decode", "decode_ctx8k", "batch8", "batch32", "batch8_ctx8k", "train_step"]


def run(*args):
    r = subprocess.run([BIN, *args], capture_output=True, timeout=600)
    return r.returncode, r.stdout.decode(), r.stderr.decode("utf-8", "replace")


def one_line_error(name, rc, err, must_contain):
    lines = err.strip().split("\n")
    check(name, rc != 0 and len(lines) == 1 and lines[0].startswith("s1c: ") and must_contain in lines[0]
          and "Sanitizer" not in err, f"rc={rc} stderr={err!r}")


def parse(out):
    try:
        return [json.loads(line) for line in out.strip().split("\n")]
    except ValueError as e:
        check("JSON lines parse", False, f"{e}: {out!r}")
        return []


def check_results(label, rows, types):
    """rows: the result objects (the machine line removed); types: the types expected, in order."""
    want = [(t, n) for t in types for n in NAMES]
    got = [(r.get("type"), r.get("name")) for r in rows]
    check(f"{label}: every workload of every type, in order", got == want, f"{got}")
    for r in rows:
        what = f"{label}: {r.get('type')} {r.get('name')}"
        if r.get("name") == "train_step" and r.get("type") != types[0]:
            # the trainer keeps f32 master weights whatever the file's type: measured once per run
            check(f"{what} skipped after the first type", r.get("skipped") is True and r.get("reason")
                  and r.get("tok_s") is None, r)
            continue
        if r.get("name") == "train_step":
            ok = all(isinstance(r.get(k), (int, float)) for k in ("tok_s", "limit_tok_s", "fraction"))
            check(f"{what} measured against the f32 peak", ok and r["tok_s"] > 0 and r.get("bound") == "compute"
                  and r.get("flops_per_token", 0) > 0 and abs(r["fraction"] - r["tok_s"] / r["limit_tok_s"]) <= 1e-4, r)
            continue
        ok = all(isinstance(r.get(k), (int, float)) for k in ("tok_s", "limit_tok_s", "fraction"))
        check(f"{what} has numbers", ok, r)
        if not ok:
            continue
        check(f"{what} positive", r["tok_s"] > 0 and r["limit_tok_s"] > 0 and r["fraction"] > 0, r)
        # printed with 6 significant digits and 5 decimals
        check(f"{what} fraction = tok_s / limit_tok_s",
              abs(r["fraction"] - r["tok_s"] / r["limit_tok_s"]) <= 1e-5 + 1e-5 * r["fraction"], r)
        check(f"{what} bound", r.get("bound") in ("bandwidth", "compute"), r)
        seqs = {"batch8": 8, "batch32": 32, "batch8_ctx8k": 8}.get(r["name"], 1)
        check(f"{what} sequences", r.get("seqs") == seqs, r)
        check(f"{what} costs", r.get("flops_per_token", 0) > 0 and r.get("bytes_per_token", 0) > 0, r)
    for t in types:
        # the same 8 sequences, each at the long context: more FLOPs and more K/V bytes per token
        by = {r.get("name"): r for r in rows if r.get("type") == t}
        short, long_ = by.get("batch8", {}), by.get("batch8_ctx8k", {})
        check(f"{label}: {t} batch8_ctx8k at decode_ctx8k's context, its K/V counted",
              long_.get("ctx") == by.get("decode_ctx8k", {}).get("ctx") and long_.get("ctx", 0) > short.get("ctx", 0)
              and long_.get("flops_per_token", 0) > short.get("flops_per_token", 0)
              and long_.get("bytes_per_token", 0) > short.get("bytes_per_token", 0), (short, long_))


# the full type list, as JSON
tmp = os.path.join(WORK, "tmp")
os.makedirs(tmp)
rc, out, err = run("bench", "--preset", "tiny", "--quick", "--json", "--tmp", tmp)
check("bench --json runs", rc == 0 and "Sanitizer" not in err, err)
rows = parse(out)
if rows:
    m = rows[0]
    check("machine line first", m.get("name") == "machine" and m.get("threads", 0) >= 1, m)
    check("machine limits measured", m.get("read_gb_s", 0) > 0 and m.get("f32_gflops", 0) > 0
          and m.get("bf16_gflops", -1) >= 0 and m.get("int8_gops", -1) >= 0 and m.get("amx_bf16_gflops", -1) >= 0
          and m.get("amx_int8_gops", -1) >= 0, m)
    # the machine measured again before each later type: a line only where a limit grew, the best so far
    again = [r for r in rows[1:] if r.get("name") == "machine"]
    limits = ("read_gb_s", "f32_gflops", "bf16_gflops", "int8_gops", "amx_bf16_gflops", "amx_int8_gops")
    prev = m
    for a in again:
        check("machine again: the best so far", a.get("best_so_far") is True
              and all(a[k] >= prev[k] for k in limits) and any(a[k] > prev[k] for k in limits), (prev, a))
        prev = a
    results = [r for r in rows[1:] if r.get("name") != "machine"]
    # BF16's default arithmetic is bf16 dot products where the CPU has them, else exact
    bf16 = [r.get("type") for r in results if r.get("type", "").startswith("bf16")]
    check("bf16 named by its arithmetic", bf16 and set(bf16) <= {"bf16", "bf16_exact"}, bf16)
    check_results("all types", [dict(r, type="bf16") if r.get("type") == "bf16_exact" else r for r in results], ["f32", "bf16", "q8_0", "q4_0"])
check("temporary models removed", os.listdir(tmp) == [], os.listdir(tmp))

# one type; text output
rc, out, err = run("bench", "--preset", "tiny", "--quick", "--types", "bf16", "--tmp", tmp)
check("bench (text) runs", rc == 0, err)
lines = out.strip().split("\n")
check("text: machine line, header, one row per workload", lines[0].startswith("machine: ") and "tok/s" in lines[1]
      and len(lines) == 2 + len(NAMES) and all(f" {n} " in l for n, l in zip(NAMES, lines[2:])), out)
check("text: the training step shows a figure", "train_step" in lines[-1] and "%" in lines[-1], out)

# --model: a float HF folder and a q8_0 GGUF
hf, gguf = os.path.join(WORK, "hf"), os.path.join(WORK, "m.gguf")
rc, _, err = run("init", "--arch", "qwen2", "--preset", "tiny", "--out", hf)
check("init", rc == 0, err)
rc, _, err = run("convert", hf, gguf, "--type", "q8_0")
check("convert to q8_0", rc == 0, err)
for path, typ in ((hf, "f32"), (gguf, "q8_0")):
    rc, out, err = run("bench", "--model", path, "--quick", "--json", "--repeats", "2")
    check(f"--model {typ} runs", rc == 0, err)
    rows = parse(out)
    if rows:
        check_results(f"--model {typ}", rows[1:], [typ])

# --only: just those workloads, in the usual order (the prompt's prefill still runs, untimed)
rc, out, err = run("bench", "--preset", "tiny", "--quick", "--json", "--types", "q4_0", "--only", "batch8,decode", "--tmp", tmp)
rows = parse(out) if rc == 0 else []
check("--only", rc == 0 and [(r.get("name"), r.get("type")) for r in rows[1:]] == [("decode", "q4_0"), ("batch8", "q4_0")], out + err)

# K-quant types: written directly as random super-blocks; tiny's rows (64, 176) are not whole
# 256-blocks, so its matrices fall back to q8_0/f32, said on stderr and in the reported type
rc, out, err = run("bench", "--preset", "tiny", "--quick", "--json", "--types", "q4_k", "--only", "decode", "--tmp", tmp)
rows = parse(out) if rc == 0 else []
check("--types q4_k on tiny", rc == 0 and [(r.get("name"), r.get("type")) for r in rows[1:]] == [("decode", "q8_0")]
      and "not all whole 256-blocks" in err, out + err)
# --bf16-math exact: BF16 widened to f32, its own type name in the results
rc, out, err = run("bench", "--preset", "tiny", "--quick", "--json", "--types", "bf16", "--bf16-math", "exact", "--only", "prefill", "--tmp", tmp)
rows = parse(out) if rc == 0 else []
check("--bf16-math exact", rc == 0 and [(r.get("name"), r.get("type")) for r in rows[1:]] == [("prefill", "bf16_exact")], out + err)
rc, out, err = run("bench", "--preset", "tiny", "--quick", "--json", "--types", "bf16", "--bf16-math", "dot", "--only", "prefill", "--tmp", tmp)
rows = parse(out) if rc == 0 else []
check("--bf16-math dot", rc == 0 and [(r.get("name"), r.get("type")) for r in rows[1:]] == [("prefill", "bf16")], out + err)
one_line_error("bad --bf16-math", *run("bench", "--bf16-math", "fast")[::2], "exact or dot")
# --kv-type auto (the default): bf16 for 16-bit/quantized weights under bf16 dot products, f16
# for them otherwise with the avx2 kernels (else f32), f32 for f32 weights; an explicit type is
# what runs
kv_of, kernels = {}, None
for typ, math in (("q8_0", "dot"), ("bf16", "exact"), ("f32", "dot")):
    rc, out, err = run("bench", "--preset", "tiny", "--quick", "--json", "--types", typ, "--bf16-math", math, "--only", "decode", "--tmp", tmp)
    rows = parse(out) if rc == 0 else []
    kv_of[typ] = rows[1].get("kv") if len(rows) > 1 else None
    kernels = rows[0].get("kernels") if rows else None
exact_kv = "f16" if kernels == "avx2" else "f32"
check("--kv-type auto", kv_of in ({"q8_0": "bf16", "bf16": exact_kv, "f32": "f32"}, {"q8_0": exact_kv, "bf16": exact_kv, "f32": "f32"}), (kernels, kv_of))
rc, out, err = run("bench", "--preset", "tiny", "--quick", "--json", "--types", "q8_0", "--kv-type", "f16", "--only", "decode", "--tmp", tmp)
rows = parse(out) if rc == 0 else []
check("--kv-type f16", rc == 0 and len(rows) > 1 and rows[1].get("kv") == "f16", out + err)
rc, _, err = run("bench", "--types", "q7_k")
check("unknown type lists the K-quants", rc != 0 and "q4_k, q5_k, q6_k" in err, err)

# bad input: one line, no crash
one_line_error("unknown type", *run("bench", "--types", "f99")[::2], "f99")
one_line_error("missing model", *run("bench", "--model", os.path.join(WORK, "nope"), "--quick")[::2], "nope")
one_line_error("bad repeats", *run("bench", "--repeats", "0")[::2], "--repeats")
one_line_error("unknown preset", *run("bench", "--preset", "huge", "--quick")[::2], "huge")
one_line_error("unknown option", *run("bench", "--fast")[::2], "--fast")
one_line_error("unknown workload", *run("bench", "--only", "decode,warp")[::2], "warp")
rc, out, _ = run("bench", "--help")
check("--help", rc == 0 and "--quick" in out and "--json" in out, out)

shutil.rmtree(WORK, ignore_errors=True)
finish()
