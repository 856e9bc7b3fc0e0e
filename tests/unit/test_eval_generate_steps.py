#!/usr/bin/python3
"""s1c generate counts a thinking's steps as s1c eval does (both call eval_count_steps): s1's
"N steps left" markers when the thinking has them, else its paragraphs. The stories260K model
thinks up to a "." and each forced Wait injects the ignore string, so the markers and blank
lines in the thinking are ours."""
import json, os, re, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, DATA, check, finish  # noqa: E402

MODEL = os.path.join(DATA, "models", "stories260K", "stories260K.gguf")
if not os.path.exists(MODEL):
    print("stories260K not found: skipped")
    sys.exit(77)


def gen(wait, waits):
    r = subprocess.run([BIN, "generate", "--model", MODEL, "--raw", "--prompt", "Once upon a time", "--think-start", "",
                        "--think-end", ".", "--wait-str", wait, "--waits", str(waits), "--answer-max", "4", "--json"],
                       capture_output=True, text=True, timeout=120)
    return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr}


def paragraphs(t):
    """eval_count_steps without markers: a non-blank line after a blank one (or the start)."""
    n, in_par = 0, False
    for line in t.split("\n"):
        blank = line.strip(" \t\r") == ""
        n += not blank and not in_par
        in_par = not blank
    return n


# markers: two injected "9 steps left" lines, and no blank line (as paragraphs this would be 1)
d = gen("\n9 steps left\n", 2)
t = d.get("thinking", "")
check("markers in the thinking", t.count("\n9 steps left\n") == 2 and "\n\n" not in t, d)
check("generate counts s1's markers, as eval does", d.get("thinking_steps") == 2, (d.get("thinking_steps"), t))

# no markers: paragraphs, where a blank line may hold spaces (the old generate-only rule split on "\n\n" only)
d = gen("\n \nThen", 2)
t = d.get("thinking", "")
check("no markers: blank lines with a space in the thinking", t.count("\n \nThen") == 2 and not re.search(r"steps? left", t), d)
check("generate counts paragraphs as eval does", d.get("thinking_steps") == paragraphs(t) == 3, (d.get("thinking_steps"), t))

# where both definitions always agreed: paragraphs split by empty lines
d = gen("\n\nThen", 1)
t = d.get("thinking", "")
check("empty-line paragraphs", d.get("thinking_steps") == paragraphs(t) == 2, (d.get("thinking_steps"), t))
finish()
