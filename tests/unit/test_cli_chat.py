#!/usr/bin/python3
"""s1c chat driven through a pipe: two turns with budget forcing, slash commands changing the
budget between them, the conversation carried into the second prompt, clean exit at /quit
and at the end of input."""
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import BIN, DATA, TMP, check, finish  # noqa: E402

qwen = os.path.join(TMP, "chat_qwen_tiny")
if not os.path.exists(os.path.join(qwen, "model.safetensors")):
    subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", "151936", "--tokenizer",
                    f"{DATA}/qwen2.5-tokenizer", "--seed", "5", "--out", qwen], check=True, capture_output=True)

def chat(stdin, *args):
    r = subprocess.run([BIN, "chat", "--model", qwen, *args], input=stdin, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout, r.stderr

rc, out, err = chat("What is 2+2?\n/budget 5\n/answer 3\nAnd 3+3?\n/quit\nnever read\n", "--think-max", "12", "--answer-max", "4")
check("exit 0", rc == 0, err)
check("two turns answered", out.count("<|im_start|>answer\nFinal Answer:") == 2, out)
stats = [l for l in err.splitlines() if l.startswith("[thinking")]
check("stats per turn", len(stats) == 2, err)
check("first turn budget 12", stats and stats[0].startswith("[thinking 12 tokens") and "answer 4 tokens" in stats[0], err)
check("second turn budget 5", len(stats) > 1 and stats[1].startswith("[thinking 5 tokens") and "answer 3 tokens" in stats[1], err)
check("settings echoed", "[think-max 5, think-min 0, waits 0, answer-max 3]" in err, err)
check("no colour codes in a pipe", "\x1b[" not in out)

rc, out, err = chat("Hi\n/frobnicate\n/reset\nHi again\n", "--think-max", "2", "--answer-max", "1")
check("end of input ends the chat", rc == 0 and err.count("[thinking") == 2, err)
check("unknown command explained", "unknown command /frobnicate" in err, err)
check("reset", "[conversation cleared]" in err, err)

rc, out, err = chat("x\n", "--think-max", "-4")
check("bad flag refused", rc != 0 and err.startswith("s1c: "), err)
finish()
