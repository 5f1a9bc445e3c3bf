"""Training: useful work per second of the trainer's step, with plain random batches and with length-grouped ones.

The data is the cpu-reasoning instruct stage's kind (text-only WordNet questions, about 30 tokens, beside
prepended audio questions and labeling prompts, about 65), where padding costs most. Both variants run the
trainer's own step (forward, summed token loss on the answer, backward, AdamW) over the first global batches of
their own plan (`make_plan` with and without lengths), alternating, so each figure is read against the other of
the same run. Useful FLOPs count non-padding tokens only: each step's FLOPs (torch's FlopCounterMode, on an
untimed rerun of the same batch) times its share of real tokens. The matmul peak is measured in the same process.
A third variant reruns the length-grouped batches with LoRA's dropout off (p 0.05 → 0, not the recipe): the
masks are drawn by the CPU's generator element by element, and what that costs is the gap to the matmul peak
that the recipe, not the trainer, owns.
Then the whole `shardkit train` command trains on the same data and plan (steps timed from its log.jsonl), once as
one process using every core and once as one process per core (data-parallel over gloo, one thread each): on a
small model much of a step is elementwise work and small matmuls that one thread per process runs better.

    python -m benchmarks.train_step
    python -m benchmarks.train_step --steps 2 --batch-size 4    # quick look
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import RESULTS, matmul_rate, peak_rss_mb, quiet, save, table

MIX = {"replay": 0.2, "synonym": 0.05, "hypernym": 0.05, "synonym_text": 0.35, "hypernym_text": 0.35}  # cpu-reasoning
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CORES = os.cpu_count() or 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=12, help="timed steps per variant (alternating)")
    p.add_argument("--batch-size", type=int, default=16, help="the instruct stage's 16")
    p.add_argument("--samples", type=int, default=1024, help="instruction samples the plans draw from")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for train_step.json")
    args = p.parse_args()
    quiet()

    from torch.utils.flop_counter import FlopCounterMode

    from shardkit.models.registry import load_model
    from shardkit.train.batches import make_plan, read_data
    from shardkit.train.config import DataConfig, TrainConfig
    from shardkit.train.folder import make_data
    from shardkit.train.lora import LoraSettings, apply_mode
    from shardkit.train.trainer import AudioInputs, TrainStep

    torch.manual_seed(0)
    adapter = load_model("tiny-ltu")
    hidden, inner = adapter.model.lm.config.hidden_size, adapter.model.lm.config.intermediate_size
    peak = {"1024x1024x1024": matmul_rate(1024, 1024, 1024), "2048x2048x2048": matmul_rate(2048, 2048, 2048),
            f"model MLP 512x{hidden}x{inner}": matmul_rate(512, hidden, inner)}
    best_peak = max(peak.values())

    folder = Path(tempfile.mkdtemp(prefix="bench-train-")) / "data"
    make_data(folder, DataConfig(size=args.samples, seed=0, mix=MIX))
    cfg = TrainConfig(data=str(folder), batch_size=args.batch_size, train_on_prompt=False, lora_targets=TARGETS)
    apply_mode(adapter.model, cfg.mode, LoraSettings.of(cfg))
    data = read_data(folder, adapter, cfg)
    lengths = np.diff(data.offsets)
    grouped = make_plan(cfg, len(data), 1, lengths)
    plans = {"random batches": make_plan(cfg, len(data), 1), "length-grouped": grouped,
             "length-grouped, LoRA dropout off": grouped}  # not the recipe: what its dropout masks cost
    lora_dropouts = [m for n, m in adapter.model.named_modules() if "lora_dropout" in n and hasattr(m, "p")]
    step_fn = TrainStep(adapter.model, encode=False).train()
    optimizer = torch.optim.AdamW([q for q in adapter.model.parameters() if q.requires_grad], lr=1e-4)
    audio = AudioInputs(adapter, adapter.model, frozen=True, device=torch.device("cpu"))
    audio(data.refs)  # every clip's encoder output in memory before timing, as in training

    def step(rows, dropout: float = cfg.lora_dropout) -> None:
        for m in lora_dropouts:
            m.p = dropout
        batch, refs = data.batch(rows, adapter.model.pad_id, cfg.train_on_prompt)
        loss = step_fn(**batch, audio_in=audio(refs))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(plans["random batches"].global_rows(args.steps))  # warm-up, untimed
    seconds = {name: 0.0 for name in plans}
    for k in range(args.steps):
        for name, plan in plans.items():
            t0 = time.perf_counter()
            step(plan.global_rows(k), 0.0 if "dropout off" in name else cfg.lora_dropout)
            seconds[name] += time.perf_counter() - t0
    rows, result, useful_at = [], {}, {}
    base = args.steps * args.batch_size / seconds["random batches"]
    for name, plan in plans.items():
        flops = useful = real = padded = 0
        for k in range(args.steps + (name == "length-grouped")):  # the CLI runs below time steps 1..steps
            batch_rows = plan.global_rows(k)
            with FlopCounterMode(display=False) as counter:
                step(batch_rows)
            n_real, n_all = int(lengths[batch_rows].sum()), int(lengths[batch_rows].max()) * len(batch_rows)
            useful_at[name, k] = counter.get_total_flops() * n_real / n_all
            if k == args.steps:
                break
            flops += counter.get_total_flops()
            useful += useful_at[name, k]
            real, padded = real + n_real, padded + n_all
        rate = args.steps * args.batch_size / seconds[name]
        result[name] = {"seconds": seconds[name], "samples_per_s": rate, "speedup": rate / base,
                        "padding": 1 - real / padded, "real_tokens_per_s": real / seconds[name],
                        "gflops": flops / seconds[name] / 1e9, "useful_gflops": useful / seconds[name] / 1e9,
                        "useful_fraction_of_peak": useful / seconds[name] / 1e9 / best_peak,
                        "epoch_padding": plan.padding(lengths)}
        rows.append([name, rate, rate / base, 100 * (1 - real / padded), real / seconds[name],
                     useful / seconds[name] / 1e9, 100 * useful / seconds[name] / 1e9 / best_peak])
    for procs in (1, 2):  # the whole `shardkit train` command, one process on every core or one per core
        name = f"shardkit train, {procs} process{'es' * (procs > 1)} × {CORES // procs} thread{'s' * (CORES > procs)}"
        step_seconds = _cli_steps(folder, args.batch_size, args.steps, procs)
        total, useful = sum(step_seconds), sum(useful_at["length-grouped", k] for k in range(1, args.steps + 1))
        rate = args.steps * args.batch_size / total
        result[name] = {"seconds": total, "samples_per_s": rate, "speedup": rate / base, "processes": procs,
                        "threads": CORES // procs, "useful_gflops": useful / total / 1e9,
                        "useful_fraction_of_peak": useful / total / 1e9 / best_peak}
        rows.append([name, rate, rate / base, "", "", useful / total / 1e9, 100 * useful / total / 1e9 / best_peak])
    table(f"training step (projector + all-linear LoRA, answer-only loss), tiny-ltu, batch {args.batch_size}, "
          f"{args.steps} steps each; peak float32 matmul {best_peak:.0f} GFLOP/s ({torch.get_num_threads()} threads)",
          ["batches", "samples/s", "× random", "% padding", "real tok/s", "useful GFLOP/s", "% of peak"], rows)
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    payload = {"batch_size": args.batch_size, "steps": args.steps, "samples": len(data), "mix": MIX,
               "peak_gflops": peak, "best_peak_gflops": best_peak, "runs": result, "peak_rss_mb": peak_rss_mb()}
    print(f"wrote {save('train_step', payload, args.results)}")


def _cli_steps(data: Path, batch_size: int, steps: int, procs: int) -> list[float]:
    """Seconds of steps 2..steps+1 of the length-grouped plan (the first warms up), as `shardkit train` logs them,
    run as `procs` data-parallel processes (gloo) sharing the cores; the global batch stays `batch_size`."""
    out = Path(tempfile.mkdtemp(prefix="bench-train-cli-")) / "run"
    train = ["-m", "shardkit", "train", "--cpu", "--data", str(data), "--out", str(out), "--lr", "1e-4",
             "--batch-size", str(batch_size // procs), "--max-steps", str(steps + 1), "--log-every", "1",
             "--save-every", "0", "--set=warmup_steps=0", "--set=train_on_prompt=false",
             f"--set=lora_targets={','.join(TARGETS)}"]
    launch = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes",
              str(procs)] if procs > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": str(CORES // procs), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run(launch + train, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"shardkit train ({procs} processes) failed:\n{r.stderr[-2000:]}")
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()][1:]
    return [batch_size / row["samples_per_s"] for row in logged]


if __name__ == "__main__":
    main()
