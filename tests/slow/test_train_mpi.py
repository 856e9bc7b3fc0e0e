#!/usr/bin/python3
"""s1c train over MPI: `mpirun -np 2 s1c train` gives the weights and optimizer state of one
process with the same global batch (to f32 all-reduce rounding), rank 0 alone writes, and a
run resumed under mpirun continues exactly. Skipped when this build or machine has no MPI."""
import json, os, shutil, struct, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import bytetok  # noqa: E402
from s1ctest import BIN, TMP, _counts, check, finish  # noqa: E402

import numpy as np  # noqa: E402

if not shutil.which("mpirun"):
    print("mpirun not installed: skipped")
    sys.exit(77)
if "MPI enabled" not in subprocess.run([BIN, "train", "--help"], capture_output=True, text=True).stdout:
    print("s1c built without MPI: skipped")
    sys.exit(77)

work = os.path.join(TMP, "train_mpi")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", S1C_THREADS="1",
           OMPI_MCA_rmaps_base_oversubscribe="1")
tok = os.path.join(work, "tok")
vocab = bytetok.write(tok)
base = os.path.join(work, "base")
subprocess.run([BIN, "init", "--arch", "qwen2", "--preset", "tiny", "--vocab", str(vocab), "--tokenizer", tok,
                "--seed", "5", "--out", base], check=True, capture_output=True)
data = os.path.join(work, "data.jsonl")
with open(data, "w") as f:
    for i in range(12):
        f.write(json.dumps({"question": f"Q{i}: what is {i}*{i + 2}?", "thinking_trajectories": [f"{i}*{i + 2} = {i * (i + 2)}" * (1 + i % 3)],
                            "attempt": str(i * (i + 2))}) + "\n")
args = ["train", "--model", base, "--data", data, "--epochs", "3", "--batch", "4", "--lr", "2e-3"]


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32)
            for k, v in h.items() if k != "__metadata__"}


def compare(a_dir, b_dir, what):
    for f in ("model", "adam_m", "adam_v"):
        a, b = load(os.path.join(a_dir, "latest", f + ".safetensors")), load(os.path.join(b_dir, "latest", f + ".safetensors"))
        worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
        check(f"{what}: {f} within 1e-5 of one process", worst <= 1e-5 and a.keys() == b.keys(), worst)


single = os.path.join(work, "single")
r = subprocess.run([BIN, *args, "--out", single], capture_output=True, text=True, env=env)
check("one process", r.returncode == 0, r.stderr[-500:])
mpi = os.path.join(work, "mpi")
r = subprocess.run(["mpirun", "-np", "2", BIN, *args, "--out", mpi, "--save-every", "3"], capture_output=True, text=True,
                   env=env, timeout=600)
check("mpirun -np 2", r.returncode == 0, r.stdout[-300:] + r.stderr[-800:])
check("the run says it is data parallel", "data parallel over 2 ranks" in r.stderr, r.stderr[:500])
if r.returncode == 0:
    compare(mpi, single, "2 ranks")
    log = [json.loads(l) for l in open(os.path.join(mpi, "log.jsonl"))]
    check("one log line per step (rank 0 alone writes)", [l["step"] for l in log] == list(range(1, 10)), len(log))
    slog = [json.loads(l) for l in open(os.path.join(single, "log.jsonl"))]
    check("the same losses as one process", all(abs(a["loss"] - b["loss"]) <= 1e-5 * abs(b["loss"]) for a, b in zip(log, slog)))

# a run capped at 5 steps, resumed under mpirun to the end, equals the straight one
part = os.path.join(work, "part")
r = subprocess.run(["mpirun", "-np", "2", BIN, *args, "--out", part, "--steps", "5"], capture_output=True, text=True, env=env,
                   timeout=600)
check("mpirun, first 5 steps", r.returncode == 0, r.stderr[-500:])
r = subprocess.run(["mpirun", "-np", "2", BIN, "train", "--resume", part, "--steps", "9"], capture_output=True, text=True,
                   env=env, timeout=600)
check("mpirun --resume to the end", r.returncode == 0, r.stderr[-500:])
if r.returncode == 0:
    compare(part, single, "5 steps + resume, 2 ranks")

if _counts["failed"] == 0:
    shutil.rmtree(work, ignore_errors=True)
finish()
