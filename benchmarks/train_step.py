"""Training: samples/s of a LoRA step (projector + LoRA, tiny-ltu) with cached audio features vs recomputed ones.

Cached is what `shardkit train` does: the frozen front end and encoder run once per clip and their outputs stay
in memory. Recompute is the LTU-style collator: every sample's clip is read from disk and run through the front
end again at every step. Both run the trainer's own step (forward, summed token loss, backward, AdamW) on the same
batches of `make-data` samples, alternating, and the ratio is between medians of the same run.

    python -m benchmarks.train_step
    python -m benchmarks.train_step --steps 2    # quick look
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import RESULTS, peak_rss_mb, quiet, save, table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6, help="timed steps per variant (alternating)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for train_step.json")
    args = p.parse_args()
    quiet()

    from shardkit.audio.io import load_audio
    from shardkit.models.registry import load_model
    from shardkit.train.data import DataConfig, make_data
    from shardkit.train.lora import apply_mode
    from shardkit.train.trainer import AudioInputs, TrainConfig, TrainStep, read_data

    torch.manual_seed(0)
    folder = Path(tempfile.mkdtemp(prefix="bench-train-")) / "data"
    make_data(folder, DataConfig(size=args.batch_size * (2 * args.steps + 1), seed=0))
    cfg = TrainConfig(data=str(folder), batch_size=args.batch_size)
    adapter = load_model("tiny-ltu")
    apply_mode(adapter.model, cfg.mode, cfg.lora)
    data = read_data(folder, adapter, cfg)
    step_fn = TrainStep(adapter.model, encode=False).train()
    optimizer = torch.optim.AdamW([q for q in adapter.model.parameters() if q.requires_grad], lr=1e-4)
    cached = AudioInputs(adapter, adapter.model, frozen=True, device=torch.device("cpu"))

    def recompute(refs):
        feats = [adapter.featurize(load_audio(r.path, r.start, r.end, max_seconds=adapter.window_seconds))
                 for r in refs]
        with torch.no_grad():
            return adapter.model.encoder(torch.from_numpy(np.stack(feats)))  # [n, n_a, d_enc]

    def step(k: int, audio_fn) -> float:
        t0 = time.perf_counter()
        rows = list(range(k * args.batch_size, (k + 1) * args.batch_size))
        batch, refs = data.batch(rows, adapter.model.pad_id, cfg.train_on_prompt)
        loss = step_fn(**batch, audio_in=audio_fn(refs))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - t0

    cached(data.refs)  # cached means cached: every clip's encoder output is in memory before timing
    step(2 * args.steps, cached)  # warm-up step
    times = {"cached features": [], "recomputed features": []}
    for k in range(args.steps):
        times["cached features"].append(step(2 * k, cached))
        times["recomputed features"].append(step(2 * k + 1, recompute))
    base = statistics.median(times["recomputed features"])
    rows, result = [], {}
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = {"seconds": ts, "median_s": med, "samples_per_s": args.batch_size / med,
                        "speedup_vs_recompute": base / med}
        rows.append([name, args.batch_size / med, base / med, med])
    table(f"LoRA training step, tiny-ltu, batch {args.batch_size}, {len(data.refs)} clips",
          ["audio features", "samples/s", "× recompute", "s/step"], rows)
    print(f"peak RSS {peak_rss_mb():.0f} MB")
    payload = {"batch_size": args.batch_size, "steps": args.steps, "runs": result, "peak_rss_mb": peak_rss_mb()}
    print(f"wrote {save('train_step', payload, args.results)}")


if __name__ == "__main__":
    main()
