"""Summary of bench/side_by_side.sh: medians over rounds of s1c's workloads (tok/s and fraction
of the limit measured in the same invocation) and llama-bench's pp512 / tg128, with the ratios.

usage: side_by_side_summary.py S1C.jsonl LLAMA.jsonl [BASE.jsonl]   (prints Markdown tables; BASE:
the same workloads from another s1c binary, shown as "before" with the speed-ups)
"""
import json
import statistics
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def table(s1c, llama, title):
    types = []
    for r in s1c:
        t = r.get("file_type")
        if t and t not in types:
            types.append(t)
    print(title)
    print()
    print("| type | " + " | ".join(f"{w} tok/s (of limit)" for w in WORK) +
          " | llama pp512 | llama tg128 | llama tg128@d512 | prefill / pp512 | decode / tg128 | decode / tg128@d512 |")
    print("|---|" + "---|" * (len(WORK) + 6))
    out = {}
    for t in types:
        cells = []
        vals = {}
        for w in WORK:
            rs = [r for r in s1c if r.get("file_type") == t and r.get("name") == w]
            if not rs:
                cells.append("–")
                continue
            v, fr = med([r["tok_s"] for r in rs]), med([r["fraction"] for r in rs])
            vals[w] = v
            cells.append(f"{v:.1f} ({fr:.2f})")
        out[t] = vals
        ls = [r for r in llama if r.get("file_type") == t.replace("exact", "")]
        pp = med([r["pp_tok_s"] for r in ls if r.get("pp_tok_s")])
        tg = med([r["tg_tok_s"] for r in ls if r.get("tg_tok_s")])
        tgd = med([r["tg_d512_tok_s"] for r in ls if r.get("tg_d512_tok_s")])
        dec = vals.get("decode", float("nan"))
        print(f"| {t} | " + " | ".join(cells) + f" | {pp:.1f} | {tg:.1f} | {tgd:.1f} | {vals.get('prefill', float('nan')) / pp:.2f} | "
              f"{dec / tg:.2f} | {dec / tgd:.2f} |")
    print()
    return out


WORK = ["prefill", "decode", "decode_ctx8k", "batch8", "batch32", "batch8_ctx8k"]


def main():
    s1c, llama = load(sys.argv[1]), load(sys.argv[2])
    base = load(sys.argv[3]) if len(sys.argv) > 3 else []
    machine = [r for r in s1c if r.get("name") == "machine"]
    rounds = len({r["round"] for r in s1c}) if s1c else 0
    print(f"rounds: {rounds}; machine limits measured in each s1c run (medians): "
          f"read {med([m['read_gb_s'] for m in machine]):.1f} GB/s, f32 {med([m['f32_gflops'] for m in machine]):.0f} GFLOP/s, "
          f"bf16 {med([m['bf16_gflops'] for m in machine]):.0f} GFLOP/s, int8 {med([m['int8_gops'] for m in machine]):.0f} GOP/s")
    print()
    after = table(s1c, llama, "**s1c (this build)** vs llama.cpp, medians over rounds:")
    if base:
        before = table(base, llama, "**s1c before** (S1C_BASE) vs llama.cpp:")
        print("speed-up after / before:")
        print()
        print("| type | " + " | ".join(WORK) + " |")
        print("|---|" + "---|" * len(WORK))
        for t, vals in before.items():
            a = after.get(t, {})
            print(f"| {t} | " + " | ".join(f"{a[w] / vals[w]:.2f}" if w in a and w in vals and vals[w] else "–" for w in WORK) + " |")


if __name__ == "__main__":
    main()
