"""The machine's limit: batched yes/no scoring FLOPs per second against a measured matmul peak, in one run.

The peak is the best float32 `torch.matmul` rate of this process at a few square sizes (and at the model's own
widest shape), with the threads torch uses. Scoring is `adapter.yes_no` on real SHARD questions (interleaved,
every clip's audio already embedded, so no I/O), with and without the shared-prefix KV reuse, at several batch
sizes; its FLOPs are counted by torch's FlopCounterMode on the same call that is timed. Achieved / peak is the
fraction of the machine used.

    python -m benchmarks.limit
    python -m benchmarks.limit --batch-sizes 8 --repeat 1    # quick look
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._common import RESULTS, matmul_rate, quiet, save, shard_items, table
from shardkit.eval.scoring import PromptStyle, make_request


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-sizes", default="8,32,64")
    p.add_argument("--prompts", type=int, default=128, help="SHARD questions scored per timing")
    p.add_argument("--repeat", type=int, default=3, help="timings per batch size; the median is reported")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for limit.json")
    args = p.parse_args()
    quiet()

    from torch.utils.flop_counter import FlopCounterMode

    from shardkit.models.registry import load_model

    torch.manual_seed(0)
    peak = {f"{n}x{n}x{n}": matmul_rate(n, n, n) for n in (512, 1024, 2048)}
    adapter = load_model("tiny-ltu")
    cfg = adapter.model.lm.config
    peak[f"model MLP 512x{cfg.hidden_size}x{cfg.intermediate_size}"] = matmul_rate(512, cfg.hidden_size,
                                                                                cfg.intermediate_size)
    best_peak = max(peak.values())

    items, root = shard_items(Path(tempfile.mkdtemp(prefix="bench-limit-")) / "shard")
    items = [i for i in items if i["task"] in ("synonym", "hypernym") and i["clip"]["available"]][:args.prompts]
    requests = [make_request(i, "interleaved", "yesno", root, PromptStyle()) for i in items]
    adapter.yes_no(requests)  # warm: every clip's audio embedded and kept, so only the language model is timed

    rows, result = [], {"peak_gflops": peak, "best_peak_gflops": best_peak, "runs": {}}
    for share in (True, False):
        for bs in [int(x) for x in args.batch_sizes.split(",")]:
            adapter.batch_size, adapter.share_prefix = bs, share

            def score():
                adapter.yes_no(requests)

            with FlopCounterMode(display=False) as counter:
                score()
            flops = counter.get_total_flops()
            seconds = statistics.median(_timed(score) for _ in range(args.repeat))
            gflops = flops / seconds / 1e9
            name = f"{'shared prefix' if share else 'whole prompts'}, batch {bs}"
            per_item = flops / len(requests) / 1e9
            result["runs"][name] = {"share_prefix": share, "batch_size": bs, "seconds": seconds,
                                    "items_per_s": len(requests) / seconds, "gflop_per_item": per_item,
                                    "gflops": gflops, "fraction_of_peak": gflops / best_peak}
            rows.append([name, len(requests) / seconds, per_item, gflops, 100 * gflops / best_peak])
    table(f"yes/no scoring, {len(requests)} SHARD questions; peak float32 matmul: "
          f"{', '.join(f'{k} {v:.0f}' for k, v in peak.items())} GFLOP/s",
          ["scoring", "items/s", "GFLOP/item", "GFLOP/s", "% of peak"], rows)
    print(f"wrote {save('limit', {'prompts': len(requests), **result}, args.results)}")


if __name__ == "__main__":
    main()
