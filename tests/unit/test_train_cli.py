#!/usr/bin/python3
"""s1c train from the command line: checkpoints, exact resume after a real SIGKILL, the log,
and bad input (malformed lines, empty data, long samples, changed options or data on resume,
NaN weights, a full disk while saving)."""
import filecmp, json, os, resource, shutil, signal, struct, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import bytetok  # noqa: E402
from s1ctest import BIN, TMP, _counts, check, finish  # noqa: E402

work = os.path.join(TMP, "train_cli")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)


def run(*args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, **kw)


def write_data(path, n, start=0):
    with open(path, "w") as f:
        for i in range(start, start + n):
            a, b = 3 + i, 7 + 2 * i
            f.write(json.dumps({"question": f"What is {a}+{b}?",
                                "thinking_trajectories": [f"{a}+{b}: {a}+{b - 1}={a + b - 1},", f"plus 1 is {a + b}."],
                                "attempt": f"{a + b}"}) + "\n")


tok = os.path.join(work, "tok")
vocab = bytetok.write(tok)
base = os.path.join(work, "base")
r = run("init", "--arch", "qwen2", "--preset", "tiny", "--vocab", str(vocab), "--tokenizer", tok, "--seed", "3", "--out", base)
check("init a tiny model", r.returncode == 0, r.stderr)
data = os.path.join(work, "data.jsonl")
write_data(data, 8)
common = ["--model", base, "--data", data, "--epochs", "8", "--batch", "2", "--lr", "2e-3"]

# ---- a straight run: checkpoints, log, the HF directory at the top level
straight = os.path.join(work, "straight")
r = run("train", *common, "--out", straight, "--save-every", "4", "--keep", "3")
check("straight run succeeds", r.returncode == 0, r.stderr[-800:])
check("the plan is reported", "8 samples" in r.stderr and "32 steps" in r.stderr, r.stderr[:400])
log = [json.loads(l) for l in open(os.path.join(straight, "log.jsonl"))]
check("log has one line per step", [l["step"] for l in log] == list(range(1, 33)), [l["step"] for l in log])
check("log lines have loss, lr, grad_norm, tokens_per_s",
      all(all(k in l for k in ("loss", "lr", "grad_norm", "tokens_per_s")) for l in log), log[0])
check("first step's lr is 0 (HF warm-up starts at 0)", log[0]["lr"] == 0, log[0])
check("loss goes down", log[-1]["loss"] < log[0]["loss"] * 0.8, (log[0]["loss"], log[-1]["loss"]))
steps = sorted(d for d in os.listdir(straight) if d.startswith("step-"))
check("--keep 3 keeps the newest three checkpoints", steps == ["step-24", "step-28", "step-32"], steps)
check("latest points at the last step", os.readlink(os.path.join(straight, "latest")) == "step-32")
for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
    check(f"top-level {f} resolves", os.path.exists(os.path.join(straight, f)))
state = json.load(open(os.path.join(straight, "latest", "trainer_state.json")))
check("trainer state records step and total", state["step"] == 32 and state["total_steps"] == 32, state)
r = run("generate", "--model", straight, "--prompt", "What is 3+7?", "--think-max", "40", "--max-tokens", "60")
check("the run directory loads in s1c generate", r.returncode == 0, r.stderr)

# ---- a BF16 base model: BF16 model file, f32 master weights beside it; validation loss
bf = os.path.join(work, "base_bf16")
run("init", "--arch", "qwen2", "--preset", "tiny", "--vocab", str(vocab), "--tokenizer", tok, "--seed", "3", "--dtype", "bf16", "--out", bf)
bfrun = os.path.join(work, "bfrun")
r = run("train", "--model", bf, "--data", data, "--out", bfrun, "--epochs", "1", "--batch", "4", "--val-data", data, "--val-every", "1")
check("train from a BF16 model", r.returncode == 0, r.stderr[-500:])
with open(os.path.join(bfrun, "model.safetensors"), "rb") as f:
    hdr = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
check("the model file keeps the base's BF16", hdr["model.norm.weight"]["dtype"] == "BF16", hdr["model.norm.weight"])
check("f32 master weights are kept beside it", os.path.exists(os.path.join(bfrun, "latest", "master.safetensors")))
vlog = [json.loads(l) for l in open(os.path.join(bfrun, "log.jsonl"))]
check("--val-every 1 logs a validation loss each step", all("val_loss" in l for l in vlog) and len(vlog) == 2, vlog)

# ---- a sharded model file (as transformers writes them above --shard-mb), loadable from the run directory
sh = os.path.join(work, "sharded")
r = run("train", *common, "--out", sh, "--steps", "2", "--shard-size", "200KB")
check("train with a 200 KB shard size", r.returncode == 0, r.stderr[-400:])
index = json.load(open(os.path.join(sh, "model.safetensors.index.json")))
shards = sorted(set(index["weight_map"].values()))
check("the model is written as shards with an index", len(shards) > 1 and os.path.exists(os.path.join(sh, shards[0])), shards)
r = run("generate", "--model", sh, "--prompt", "What is 3+7?", "--think-max", "8", "--max-tokens", "16")
check("the sharded run directory loads", r.returncode == 0, r.stderr)
r = run("train", "--resume", sh, "--steps", "3", "--shard-size", "200KB")
check("a sharded run resumes", r.returncode == 0, r.stderr[-300:])

# ---- k steps, SIGKILL, resume: the same bits as the straight run
killed = os.path.join(work, "killed")
p = subprocess.Popen([BIN, "train", *common, "--out", killed, "--save-every", "1"], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
log_path = os.path.join(killed, "log.jsonl")
deadline = time.time() + 120
while time.time() < deadline and p.poll() is None:
    if os.path.exists(log_path) and sum(1 for _ in open(log_path)) >= 9:
        break
    time.sleep(0.005)
p.send_signal(signal.SIGKILL)
p.wait()
done = json.load(open(os.path.join(killed, "latest", "trainer_state.json")))["step"]
check("the run was killed part-way", 0 < done < 32, done)
r = run("train", "--resume", killed, "--save-every", "4", "--keep", "3")
check("resume succeeds", r.returncode == 0, r.stderr[-800:])
for f in ("model.safetensors", "adam_m.safetensors", "adam_v.safetensors"):
    same = filecmp.cmp(os.path.join(straight, "step-32", f), os.path.join(killed, "step-32", f), shallow=False)
    check(f"killed at step {done} + resumed: {f} bit-identical to the straight run", same)
klog = [json.loads(l) for l in open(log_path)]
check("resumed log has each step once", [l["step"] for l in klog] == list(range(1, 33)), [l["step"] for l in klog])
check("resumed log's losses equal the straight run's", [l["loss"] for l in klog] == [l["loss"] for l in log])
r = run("train", "--resume", killed)
check("resuming a finished run says so", r.returncode != 0 and "complete" in r.stderr, r.stderr)

# ---- resuming with other options or other data is refused, naming the difference
r = run("train", "--resume", killed, "--lr", "1e-3")
check("resume with another --lr is refused", r.returncode != 0 and "--lr" in r.stderr, r.stderr)
part = os.path.join(work, "part")
r = run("train", *common, "--out", part, "--steps", "3")
check("--steps caps a run", r.returncode == 0 and json.load(open(os.path.join(part, "latest", "trainer_state.json")))["step"] == 3, r.stderr)
data2 = os.path.join(work, "data2.jsonl")
shutil.copy(data, data2)
r = run("train", *common[:2], "--data", data2, *common[4:], "--out", os.path.join(work, "d2"), "--steps", "2")
with open(data2, "a") as f:
    f.write(json.dumps({"question": "q", "thinking_trajectories": "t", "attempt": "a"}) + "\n")
r = run("train", "--resume", os.path.join(work, "d2"), "--steps", "4")
check("resume after the data changed is refused", r.returncode != 0 and "changed" in r.stderr, r.stderr)
r = run("train", *common, "--out", part)
check("starting over an existing run is refused", r.returncode != 0 and "--resume" in r.stderr, r.stderr)

# ---- bad data
bad = os.path.join(work, "bad.jsonl")
with open(bad, "w") as f:
    f.write(open(data).readline())
    f.write('{"question": "x", "attempt": 3\n')
    f.write(json.dumps({"question": "q2", "attempt": "a"}) + "\n")
    f.write(open(data).readlines()[1])
r = run("train", "--model", base, "--data", bad, "--out", os.path.join(work, "bad1"))
check("a malformed line stops the run with its line number", r.returncode != 0 and "bad.jsonl:2:" in r.stderr, r.stderr)
r = run("train", "--model", base, "--data", bad, "--out", os.path.join(work, "bad2"), "--skip-bad", "--steps", "1")
check("--skip-bad skips and lists the bad lines", r.returncode == 0 and "bad.jsonl:2" in r.stderr
      and "bad.jsonl:3" in r.stderr and "thinking_trajectories" in r.stderr, r.stderr)
empty = os.path.join(work, "empty.jsonl")
open(empty, "w").close()
r = run("train", "--model", base, "--data", empty, "--out", os.path.join(work, "bad3"))
check("empty data is an error", r.returncode != 0 and "no usable sample" in r.stderr, r.stderr)
longd = os.path.join(work, "long.jsonl")
shutil.copy(data, longd)
with open(longd, "a") as f:
    f.write(json.dumps({"question": "Long?", "thinking_trajectories": ["step " * 60], "attempt": "1"}) + "\n")
r = run("train", "--model", base, "--data", longd, "--out", os.path.join(work, "long"), "--block-size", "200", "--steps", "1")
check("samples over the block size are listed", r.returncode == 0 and "long.jsonl:9" in r.stderr
      and "longer than the block size 200" in r.stderr, r.stderr)
r = run("train", "--model", base, "--data", data, "--out", os.path.join(work, "long2"), "--block-size", "16")
check("no sample fitting is an error", r.returncode != 0 and "no usable sample" in r.stderr, r.stderr)
r = run("train", "--model", os.path.join(base, "model.safetensors"), "--data", data, "--out", os.path.join(work, "x"))
check("a model that is not a directory is refused", r.returncode != 0 and "directory" in r.stderr, r.stderr)

# ---- NaN weights: a clear stop, nothing saved
nanm = os.path.join(work, "nanmodel")
shutil.copytree(base, nanm)
st = os.path.join(nanm, "model.safetensors")
with open(st, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    off = header["model.norm.weight"]["data_offsets"][0]
    f.seek(8 + n + off)
    f.write(struct.pack("<f", float("nan")))
r = run("train", "--model", nanm, "--data", data, "--out", os.path.join(work, "nanrun"))
check("NaN loss stops with a clear message", r.returncode != 0 and "NaN" in r.stderr, r.stderr)
check("no checkpoint after a NaN stop", not os.path.exists(os.path.join(work, "nanrun", "latest")))

# ---- disk full while saving: the previous checkpoint survives
full = os.path.join(work, "full")
r = run("train", *common, "--out", full, "--save-every", "1", "--steps", "2")
size = os.path.getsize(os.path.join(full, "step-2", "model.safetensors"))


def small_disk():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))


r = subprocess.run([BIN, "train", "--resume", full, "--save-every", "1", "--steps", "4"], capture_output=True,
                   text=True, preexec_fn=small_disk)
check("a failed save is reported", r.returncode != 0 and "not saved" in r.stderr and "intact" in r.stderr, r.stderr)
check("latest still points at the last good checkpoint", os.readlink(os.path.join(full, "latest")) == "step-2")
check("no half-written checkpoint is left", not any(d.endswith(".tmp") for d in os.listdir(full)), os.listdir(full))
r = run("train", "--resume", full, "--steps", "4")
check("the run resumes after the disk has room again", r.returncode == 0, r.stderr[-500:])

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
