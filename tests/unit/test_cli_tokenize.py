#!/usr/bin/python3
"""s1c tokenize as a user runs it: llama.cpp's 46 Qwen2 vectors through the CLI, --decode back
to the text, --special, the stories tok512.bin and GGUF vocabularies, and bad input (invalid
UTF-8, corrupt or truncated tokenizer files) with one-line errors."""
import json, os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from s1ctest import check, finish  # noqa: E402

BIN, DATA, TMP = os.environ["S1C_BIN"], os.environ["S1C_DATA"], os.environ["S1C_TMP"]
QWEN = f"{DATA}/qwen2.5-tokenizer"


def tok(args, data):
    r = subprocess.run([BIN, "tokenize", *args], input=data, capture_output=True, timeout=120)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")

def one_line_error(name, rc, err, must_contain):
    lines = err.strip().split("\n")
    check(name, rc != 0 and len(lines) == 1 and lines[0].startswith("s1c: ") and must_contain in lines[0]
          and "Sanitizer" not in err, f"rc={rc} stderr={err!r}")

vt = f"{DATA}/llama.cpp-qwen2-vocab-test"
texts = open(f"{vt}/ggml-vocab-qwen2.gguf.inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")[:46]
wants = open(f"{vt}/ggml-vocab-qwen2.gguf.out").read().split("\n")[:46]
for i, (text, want) in enumerate(zip(texts, wants)):
    rc, out, err = tok(["--tokenizer", QWEN], text.encode())
    got = out.decode().rstrip("\n")
    check(f"vector {i}", rc == 0 and got == want.strip(), f"{got!r} != {want.strip()!r} {err}")
    if rc == 0 and got:
        rc, back, _ = tok(["--tokenizer", QWEN, "--decode"], out)
        check(f"decode {i}", back.decode() == text, f"{back!r}")

rc, out, _ = tok(["--tokenizer", QWEN, "--special"], b"<|im_start|>user\nHi<|im_end|>")
ids = out.split()
check("--special", rc == 0 and ids[0] == b"151644" and ids[-1] == b"151645", out)
rc, out, _ = tok(["--tokenizer", QWEN], b"<|im_start|>")
check("no --special: plain text", rc == 0 and b"151644" not in out.split(), out)

st = f"{DATA}/models/stories260K"
for p in (f"{st}/tok512.bin", f"{st}/stories260K.gguf"):
    rc, out, err = tok(["--tokenizer", p, "--bos"], b"Sam and Lily went")
    check(f"spm {os.path.basename(p)}", out.split() == [b"1", b"301", b"314", b"269", b"317", b"263", b"377"], out + err.encode())

rc, out, err = tok(["--tokenizer", QWEN], b"ok \xff\xfe bad")
one_line_error("invalid UTF-8", rc, err, "UTF-8")
rc, out, err = tok(["--tokenizer", QWEN, "--decode"], b"12 abc")
one_line_error("bad id", rc, err, "abc")
rc, out, err = tok(["--tokenizer", QWEN, "--decode"], b"999999")
one_line_error("id out of range", rc, err, "999999")
rc, out, err = tok(["--tokenizer", QWEN], "a\0b".encode())
check("NUL byte encodes", rc == 0 and len(out.split()) == 3, out + err.encode())

# a long line without spaces: bounded time (linear-ish merging), right length after decoding
big = ("abcdefghij" * 100000).encode()
rc, out, err = tok(["--tokenizer", QWEN], big)
check("1 MB without spaces", rc == 0, err)
rc, back, _ = tok(["--tokenizer", QWEN, "--decode"], out)
check("1 MB round trip", back == big, f"{len(back)} bytes")

# corrupt tokenizer folders: each a one-line error naming the file
def broken(name, edit):
    d = os.path.join(TMP, "tok_" + name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(QWEN, d)
    edit(d)
    return d

def truncate(path, n):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:n])

cases = [
    ("vocab_truncated", lambda d: truncate(f"{d}/vocab.json", 100000), "vocab.json"),
    ("vocab_not_object", lambda d: open(f"{d}/vocab.json", "w").write("[1,2,3]"), "vocab"),
    ("merges_missing", lambda d: os.remove(f"{d}/merges.txt"), "merges.txt"),
    ("merges_garbage", lambda d: open(f"{d}/merges.txt", "w").write("#version: 0.2\nabc\n"), "merges.txt:2"),
    ("config_truncated", lambda d: truncate(f"{d}/tokenizer_config.json", 50), "tokenizer_config.json"),
    ("byte_symbol_missing", lambda d: open(f"{d}/vocab.json", "w").write('{"a": 0, "b": 1}'), "byte"),
]
for name, edit, needle in cases:
    d = broken(name, edit)
    rc, out, err = tok(["--tokenizer", d], b"hello")
    one_line_error(name, rc, err, needle)
rc, out, err = tok(["--tokenizer", f"{TMP}/no/such/dir"], b"x")
one_line_error("missing tokenizer", rc, err, "no/such")
tj = os.path.join(TMP, "bad_tokenizer.json")
open(tj, "w").write('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [1]}}')
rc, out, err = tok(["--tokenizer", tj], b"a")
one_line_error("bad tokenizer.json", rc, err, "bad_tokenizer.json")
tj2 = os.path.join(TMP, "wp_tokenizer.json")
open(tj2, "w").write('{"model": {"type": "WordPiece", "vocab": {"a": 0}}}')
rc, out, err = tok(["--tokenizer", tj2], b"a")
one_line_error("unsupported model type", rc, err, "BPE")

finish()
