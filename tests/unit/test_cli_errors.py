#!/usr/bin/python3
"""s1c on bad input, as a user sees it: missing and malformed model files, missing
tokenizers, empty prompts, bad flag values, unknown options and commands. Each must exit
non-zero (cleanly, not by a signal), print nothing on stdout, and print exactly one line on
stderr that starts with "s1c: " and names the file involved, with no sanitizer report."""
import os, shutil, subprocess, sys

BIN = os.environ["S1C_BIN"]
D = os.path.join(os.environ["S1C_DATA"], "models", "stories260K")
TMP = os.path.join(os.environ["S1C_TMP"], "cli_errors")
GGUF, BIN_MODEL, TOK = f"{D}/stories260K.gguf", f"{D}/stories260K.bin", f"{D}/tok512.bin"
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    passed, failed = passed + bool(ok), failed + (not ok)
    if not ok:
        print(f"FAIL {name}: {detail}")


def expect_error(name, args, names=None, says=None):
    """Runs s1c with args; `names` must appear in the error (a file), and so must `says`."""
    try:
        r = subprocess.run([BIN] + args, capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        check(name, False, "timed out")
        return
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    problems = []
    if not 0 < r.returncode < 128:  # negative: killed by a signal; >= 128: a shell-style crash code
        problems.append(f"exit status {r.returncode}")
    if "Sanitizer" in err or "runtime error" in err:
        problems.append("sanitizer report")
    if not (err.endswith("\n") and err.count("\n") == 1):
        problems.append(f"stderr is {err.count(chr(10))} lines, not one")
    if not err.startswith("s1c: "):
        problems.append('stderr does not start with "s1c: "')
    if out:
        problems.append(f"stdout not empty: {out[:80]!r}")
    for want in (names, says):
        if want and want not in err:
            problems.append(f"stderr does not contain {want!r}")
    check(name, not problems, "; ".join(problems) + f"\n  stderr: {err[:600]!r}")


def gen(model, *extra):
    return ["generate", "--model", model] + list(extra)


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def make_files():
    """Bad inputs built from the real stories260K files and from `s1c init`."""
    os.makedirs(TMP, exist_ok=True)
    files = {"empty_dir": os.path.join(TMP, "empty_dir"), "qwen2": os.path.join(TMP, "qwen2_tiny")}
    os.makedirs(files["empty_dir"], exist_ok=True)
    gguf, binm, tok = (open(p, "rb").read() for p in (GGUF, BIN_MODEL, TOK))
    files["trunc_gguf"] = write("truncated.gguf", gguf[:5000])
    files["trunc_gguf_data"] = write("truncated_data.gguf", gguf[: len(gguf) // 2])
    files["trunc_bin"] = write("truncated.bin", binm[: len(binm) // 2])
    files["trunc_tok"] = write("truncated_tok.bin", tok[:1000])
    files["garbage"] = write("garbage.bin", b"\x7f" * 100)
    shutil.rmtree(files["qwen2"], ignore_errors=True)
    r = subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--out", files["qwen2"]], capture_output=True)
    if r.returncode != 0:
        sys.exit(f"s1c init failed: {r.stderr.decode()}")
    # an HF directory whose weights are cut short
    bad_hf = os.path.join(TMP, "hf_truncated")
    os.makedirs(bad_hf, exist_ok=True)
    shutil.copy(os.path.join(files["qwen2"], "config.json"), bad_hf)
    st = open(os.path.join(files["qwen2"], "model.safetensors"), "rb").read()
    write("hf_truncated/model.safetensors", st[: len(st) // 2])
    files["hf_truncated"] = bad_hf
    return files


def main():
    for p in (GGUF, BIN_MODEL, TOK):
        if not os.path.exists(p):
            print(f"{p} not found: skipping")
            sys.exit(77)
    f = make_files()
    missing = os.path.join(TMP, "no_such_model.gguf")
    missing_tok, missing_cfg = os.path.join(TMP, "no_such_tokenizer.bin"), os.path.join(TMP, "no_such_config.json")

    # model files
    expect_error("missing model file", gen(missing, "--prompt", "x"), names=missing)
    expect_error("directory without config.json", gen(f["empty_dir"], "--prompt", "x"), names=f["empty_dir"], says="config.json")
    expect_error("truncated gguf (metadata)", gen(f["trunc_gguf"], "--prompt", "x"), names=f["trunc_gguf"])
    expect_error("truncated gguf (data)", gen(f["trunc_gguf_data"], "--prompt", "x"), names=f["trunc_gguf_data"], says="truncated")
    expect_error("truncated llama2.c model", gen(f["trunc_bin"], "--tokenizer", TOK, "--prompt", "x"), names=f["trunc_bin"], says="truncated")
    expect_error("not a model", gen(f["garbage"], "--tokenizer", TOK, "--prompt", "x"), names=f["garbage"])
    expect_error("truncated safetensors", gen(f["hf_truncated"], "--prompt-ids", "1"), names=f["hf_truncated"])

    # tokenizers and prompts
    expect_error(".bin without --tokenizer", gen(BIN_MODEL, "--prompt", "x"), names=BIN_MODEL, says="--tokenizer")
    expect_error("missing tokenizer file", gen(BIN_MODEL, "--tokenizer", missing_tok, "--prompt", "x"), names=missing_tok)
    expect_error("truncated tokenizer", gen(BIN_MODEL, "--tokenizer", f["trunc_tok"], "--prompt", "x"), names=f["trunc_tok"])
    expect_error("empty prompt, model without BOS", gen(f["qwen2"], "--prompt-ids", ""), says="prompt")
    expect_error("text prompt, model without tokenizer", gen(f["qwen2"], "--prompt", "hi"), names=f["qwen2"], says="tokenizer")
    expect_error("prompt id outside the vocabulary", gen(GGUF, "--prompt-ids", "1,512"), says="512")
    expect_error("prompt id not a number", gen(GGUF, "--prompt-ids", "1,x"), says="--prompt-ids")
    expect_error("no prompt", gen(GGUF), says="prompt")
    expect_error("no model", ["generate", "--prompt", "x"], says="--model")

    # flag values
    for flag, value in [("--temperature", "-1"), ("--temperature", "nan"), ("--steps", "abc"), ("--steps", "-5"),
                        ("--max-tokens", "1e3"), ("--top-p", "0"), ("--top-k", "-1"), ("--seed", "-3"),
                        ("--ctx", "0"), ("--repeat-penalty", "inf")]:
        expect_error(f"{flag} {value}", gen(GGUF, "--prompt", "x", flag, value), says=flag)
    expect_error("flag without its value", gen(GGUF, "--prompt", "x", "--steps"), says="--steps")
    expect_error("empty --stop", gen(GGUF, "--prompt", "x", "--stop", ""), says="--stop")
    expect_error("unknown option", gen(GGUF, "--prompt", "x", "--frobnicate"), says="--frobnicate")
    expect_error("unknown subcommand", ["frobnicate", "--model", GGUF], says="frobnicate")

    # init
    expect_error("init: unknown preset", ["init", "--arch", "qwen2", "--preset", "huge", "--out", os.path.join(TMP, "x")], says="huge")
    expect_error("init: unknown arch", ["init", "--arch", "gpt2", "--preset", "tiny", "--out", os.path.join(TMP, "x")], says="gpt2")
    expect_error("init: missing config", ["init", "--config", missing_cfg, "--out", os.path.join(TMP, "x")], names=missing_cfg)
    expect_error("init: no --out", ["init", "--arch", "qwen2", "--preset", "tiny"], says="--out")

    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
