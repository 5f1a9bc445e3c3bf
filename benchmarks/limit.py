"""The machine's limit: batched yes/no scoring FLOPs per second against a measured matmul peak, in one run.

The peak is the best float32 `torch.matmul` rate of this process at a few square sizes (and at the model's own
widest shape), with the threads torch uses. Scoring is the language model's forward over real SHARD prompts
(interleaved, audio rows already projected, so no I/O), at several batch sizes; its FLOPs are counted by
torch's FlopCounterMode on the very call that is timed. Achieved / peak is the fraction of the machine used.

    python -m benchmarks.limit
    python -m benchmarks.limit --batch-sizes 8 --repeat 1    # quick look
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._common import RESULTS, save, shard_items, table
from shardkit.eval.scoring import PromptStyle, make_request
from shardkit.models.prompts import collate, encode


def matmul_rate(m: int, k: int, n: int, repeat: int = 5) -> float:
    """Best GFLOP/s of an [m, k] @ [k, n] float32 matmul."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2 * m * k * n / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-sizes", default="1,8,32,64")
    p.add_argument("--prompts", type=int, default=64, help="SHARD questions scored per timing")
    p.add_argument("--repeat", type=int, default=3, help="timings per batch size; the median is reported")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for limit.json")
    args = p.parse_args()

    from torch.utils.flop_counter import FlopCounterMode

    from shardkit.models.registry import load_model

    torch.manual_seed(0)
    peak = {f"{n}x{n}x{n}": matmul_rate(n, n, n) for n in (512, 1024, 2048)}
    model = load_model("tiny-ltu").model
    hidden, inter = model.lm.config.hidden_size, model.lm.config.intermediate_size
    peak[f"model MLP 512x{hidden}x{inter}"] = matmul_rate(512, hidden, inter)
    best_peak = max(peak.values())

    items, root = shard_items(Path(tempfile.mkdtemp(prefix="bench-limit-")) / "shard")
    items = [i for i in items if i["task"] in ("synonym", "hypernym")][:args.prompts]
    seqs = [encode(model.tokenizer, make_request(i, "interleaved", "yesno", root, PromptStyle()).prompt, 1,
                   model.n_audio_tokens, "interleaved", model.template)[0] for i in items]
    seqs.sort(key=len)  # as the runner batches: similar lengths together
    audio = torch.randn(len(seqs), model.n_audio_tokens, hidden)  # [n, n_a, d]: projected audio rows

    rows, result = [], {"peak_gflops": peak, "best_peak_gflops": best_peak, "batch_sizes": {}}
    for bs in [int(x) for x in args.batch_sizes.split(",")]:
        batches = [(collate(seqs[k:k + bs], model.pad_id), audio[k:k + bs]) for k in range(0, len(seqs), bs)]

        def score(batches=batches):
            for b, a in batches:
                model.yes_no(b["input_ids"], b["attention_mask"], b["position_ids"], a)

        with FlopCounterMode(display=False) as counter:
            score()
        flops = counter.get_total_flops()
        seconds = statistics.median(_timed(score) for _ in range(args.repeat))
        tokens = sum(int(b["attention_mask"].sum()) for b, _ in batches)
        padded = sum(b["attention_mask"].numel() for b, _ in batches)
        gflops = flops / seconds / 1e9
        result["batch_sizes"][bs] = {"seconds": seconds, "items_per_s": len(seqs) / seconds, "gflop": flops / 1e9,
                                     "gflops": gflops, "fraction_of_peak": gflops / best_peak,
                                     "tokens": tokens, "padded_tokens": padded}
        rows.append([str(bs), len(seqs) / seconds, flops / len(seqs) / 1e9, gflops, 100 * gflops / best_peak,
                     100 * (1 - tokens / padded)])
    table(f"peak float32 matmul: {', '.join(f'{k} {v:.0f}' for k, v in peak.items())} GFLOP/s",
          ["batch", "items/s", "GFLOP/item", "GFLOP/s", "% of peak", "% padding"], rows)
    print(f"wrote {save('limit', {'prompts': len(seqs), **result}, args.results)}")


if __name__ == "__main__":
    main()
