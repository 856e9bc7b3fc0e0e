#!/usr/bin/python3
"""s1c bench --types with llama-quantize's mixtures and the 32-block types read in place, on the
tiny preset with --quick (seconds): each result names the type asked for (q4_k_m, not the q5_0
that most of its matrices fall back to at the tiny preset's 64-wide rows), carries numbers, and
an unknown type is a one-line error that lists the new ones."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN, TMP = os.environ["S1C_BIN"], os.environ["S1C_TMP"]
TYPES = ["q4_k_m", "q5_k_s", "q4_1", "q5_0", "q5_1"]

r = subprocess.run([BIN, "bench", "--preset", "tiny", "--quick", "--types", ",".join(TYPES), "--only", "prefill,decode",
                    "--json", "--tmp", TMP], capture_output=True, timeout=600)
out, err = r.stdout.decode(), r.stderr.decode("utf-8", "replace")
check("bench --types with mixtures exits 0", r.returncode == 0 and "Sanitizer" not in err, f"rc={r.returncode} {err!r}")
rows = [json.loads(line) for line in out.strip().split("\n") if line.startswith("{")]
got = [(x.get("type"), x.get("name")) for x in rows if x.get("name") != "machine"]
check("one prefill and one decode per type, named as asked", got == [(t, n) for t in TYPES for n in ("prefill", "decode")], got)
for x in rows:
    if x.get("name") in ("prefill", "decode"):
        check(f"{x['type']} {x['name']} measured", isinstance(x.get("tok_s"), (int, float)) and x["tok_s"] > 0
              and x.get("bytes_per_token", 0) > 0, x)

r = subprocess.run([BIN, "bench", "--preset", "tiny", "--quick", "--types", "q3_k_m"], capture_output=True, timeout=60)
lines = r.stderr.decode().strip().split("\n")
check("an unknown type is a one-line error listing the mixtures", r.returncode != 0 and len(lines) == 1
      and "q3_k_m" in lines[0] and "q4_k_m" in lines[0] and "q5_0" in lines[0], lines)
finish()
