"""Training memory: peak resident memory of `shardkit train` on tiny-ltu at batch 8, as a user runs it.

Each run is its own process (the command itself), one epoch over 64 samples, so it meets the longest batch of its
data; its peak RSS comes from the kernel's accounting of that child (wait4). Two kinds of data, the cpu-demo's:
stage 0 (prepended labeling, the projector alone) and FT-Large (interleaved instructions, LoRA on q/v); both with
LTU's loss on prompt and answer, where the most rows reach the LM head. Each once as it is and once with every
decoder layer recomputed in backward (`--set recompute=1`, which also hands freed big blocks back to the kernel),
trading a forward for the activations. The clips' YAMNet features are cached first, as they are after a study's
first stage (then no run opens onnxruntime). The weights alone (SmolLM2-135M in float32, with torch) are the
floor: the first line measures them.

    python -m benchmarks.train_memory
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import RESULTS, save, table

KINDS = {  # the cpu-demo's stage 0 and FT-Large data and modes
    "stage 0": ({"replay": 1.0}, "prepended", "projector"),
    "FT-Large": ({"identity": 0.3, "synonym": 0.25, "hypernym": 0.25, "description": 0.1, "replay": 0.1},
                 "interleaved", "projector+lora"),
}
FLOOR = ("import os, resource; os.environ['HF_HUB_OFFLINE'] = '1'; import torch; "
         "from shardkit.models.registry import load_model; a = load_model('tiny-ltu'); "
         "sum(float(p.sum()) for p in a.model.parameters())")  # every weight read in, as a forward reads it
WARM = ("import os, sys; os.environ['HF_HUB_OFFLINE'] = '1'; from pathlib import Path; "
        "from shardkit.models.registry import load_model; from shardkit.train.batches import read_data; "
        "from shardkit.train.config import TrainConfig; a = load_model('tiny-ltu'); "
        "[a.features(r) for f in sys.argv[1:] for r in read_data(Path(f), a, TrainConfig()).refs]")


def _child(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one command, from the kernel's record of that child alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:6])} failed:\n{err[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=64, help="samples per run (one epoch of batch --batch-size)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for train_memory.json")
    args = p.parse_args()

    from shardkit.train.config import DataConfig
    from shardkit.train.folder import make_data

    root = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    floor, _ = _child([sys.executable, "-c", FLOOR])
    rows, runs = [["weights alone (SmolLM2, float32)", "", round(floor), ""]], {}
    for kind, (mix, placement, mode) in KINDS.items():
        data = root / kind.replace(" ", "")
        make_data(data, DataConfig(size=args.samples, seed=0, mix=mix, placement=placement))
        _child([sys.executable, "-c", WARM, str(data)])  # features cached, as after a study's first stage
        for recompute in (0, 1):
            out = root / f"{data.name}-{recompute}"
            cmd = [sys.executable, "-m", "shardkit", "train", "--data", str(data), "--out", str(out), "--cpu",
                   "--mode", mode, "--batch-size", str(args.batch_size), "--save-every", "0",
                   f"--set=recompute={recompute}"]
            mb, seconds = _child(cmd)
            label = f"{kind}, {'recompute=1' if recompute else 'as is'}"
            runs[label] = {"peak_rss_mb": mb, "seconds": seconds, "mode": mode, "placement": placement}
            rows.append([kind, "every layer" if recompute else "none", round(mb), round(seconds, 1)])
    table(f"peak RSS of `shardkit train` on tiny-ltu, batch {args.batch_size}, one epoch of {args.samples} samples",
          ["data", "recomputed", "peak RSS MB", "seconds"], rows)
    payload = {"batch_size": args.batch_size, "samples": args.samples, "floor_mb": floor, "runs": runs}
    print(f"wrote {save('train_memory', payload, args.results)}")


if __name__ == "__main__":
    main()
