#!/usr/bin/python3
"""s1c extract / s1c grade as a user runs them: JSONL on stdin, the same objects out (bytes
kept) with "answer" / "equal" added, in input order; the public grading data at 100 %;
malformed lines stop with an error naming the line (or are skipped with --skip-bad);
lines of any length; --help with examples; incomplete judge options are refused (the judge
itself is tested against a scripted server in test_net_judge.py)."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN = os.environ["S1C_BIN"]
G = os.path.join(os.environ["S1C_DATA"], "grading")



def run(args, data):
    r = subprocess.run([BIN] + args, input=data.encode() if isinstance(data, str) else data,
                       capture_output=True, timeout=300)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


# --- grade: all 141 public cases, in order, bytes of each input line kept
lines = open(os.path.join(G, "cases.jsonl")).read().splitlines()
# drop the expected label so the output field is appended, not replaced
inp = []
for l in lines:
    d = json.loads(l)
    inp.append(json.dumps({"gold": d["gold"], "pred": d["pred"], "want": d["equal"]}))
rc, out, err = run(["grade"], "\n".join(inp) + "\n")
outs = out.splitlines()
check("grade rc", rc == 0, err)
check("grade count", len(outs) == 141, len(outs))
right = 0
for i, (a, b) in enumerate(zip(inp, outs)):
    check(f"grade line {i + 1} keeps bytes", b.startswith(a[:-1] + ","), b[:200])
    d = json.loads(b)
    right += d["equal"] == d["want"] and not d.get("unsure")
check("grade cases 141/141", right == 141, f"{right}/141")
print(f"cases.jsonl via s1c grade: {right}/141")

# --- extract: every non-judge row of extraction.jsonl, by extractor
rows = [json.loads(l) for l in open(os.path.join(G, "extraction.jsonl"))]
ok = total = 0
for ex in ("s1_math", "s1_gpqa", "minerva_math"):
    sel = [r for r in rows if r["extractor"] == ex or (ex == "s1_gpqa" and r["extractor"] == "s1_gpqa_judge")]
    rc, out, err = run(["extract", "--extractor", ex], "".join(json.dumps({"text": r["text"]}) + "\n" for r in sel))
    check(f"extract {ex} rc", rc == 0, err)
    for r, o in zip(sel, out.splitlines()):
        o = json.loads(o)
        total += 1
        if r["extractor"] == "s1_gpqa_judge":
            ok += o.get("needs_judge") is True
        else:
            ok += o["answer"] == r["answer"] and "needs_judge" not in o
check("extract 107/107", ok == total == 107, f"{ok}/{total}")
print(f"extraction.jsonl via s1c extract: {ok}/{total}")

# --- an existing output field is replaced (object re-serialized), not duplicated
rc, out, _ = run(["extract"], '{"text":"\\\\boxed{7}","answer":"old"}\n')
check("replace field", json.loads(out) == {"text": "\\boxed{7}", "answer": "7"}, out)

# --- numbers as gold, blank lines skipped, empty object
rc, out, _ = run(["grade"], '{"gold":23,"pred":"023"}\n\n{"gold":"1/2","pred":0.5}\n')
got = [json.loads(l)["equal"] for l in out.splitlines()]
check("numbers", rc == 0 and got == [True, True], out)

# --- unsure is reported
rc, out, _ = run(["grade"], '{"gold":"\\\\sqrt{2}","pred":"1.414"}\n')
d = json.loads(out)
check("unsure", d.get("unsure") is True and d["equal"] is False, out)

# --- malformed line: error names the line, exit 1; --skip-bad goes on
bad = '{"gold":"1","pred":"1"}\nnot json\n{"gold":"2","pred":"3"}\n{"gold":"2"}\n'
rc, out, err = run(["grade"], bad)
check("bad line fails", rc == 1 and "line 2" in err and len(out.splitlines()) == 1, (rc, out, err))
rc, out, err = run(["grade", "--skip-bad"], bad)
check("skip-bad", rc == 0 and len(out.splitlines()) == 2 and "line 2" in err and "line 4" in err and "\"pred\"" in err,
      (rc, out, err))
rc, out, err = run(["extract"], '{"txt":"x"}\n')
check("extract missing field", rc == 1 and "line 1" in err and '"text"' in err, err)

# --- a 3 MB line, and many lines in order
big = "x" * 3_000_000 + "\\boxed{42}"
rc, out, err = run(["extract"], json.dumps({"text": big}) + "\n")
check("long line", rc == 0 and json.loads(out)["answer"] == "42", err)
many = "".join(json.dumps({"gold": str(i), "pred": str(i if i % 3 else i + 1)}) + "\n" for i in range(20000))
rc, out, err = run(["grade"], many)
res = [json.loads(l) for l in out.splitlines()]
check("many lines in order", rc == 0 and len(res) == 20000 and all(
    r["gold"] == str(i) and r["equal"] == bool(i % 3) for i, r in enumerate(res)), err)

# --- help, unknown extractor, judge options
for cmd in ("extract", "grade"):
    rc, out, _ = run([cmd, "--help"], "")
    check(f"{cmd} --help", rc == 0 and "examples:" in out, out)
rc, _, err = run(["extract", "--extractor", "nope"], "")
check("unknown extractor", rc == 1 and "nope" in err, err)
rc, _, err = run(["grade", "--judge-endpoint", "http://x"], "")
check("judge endpoint needs a model", rc == 1 and "judge" in err, err)

finish()
