"""Eval throughput: shardkit's scoring against an LTU-style loop, same model, same items, same machine.

The baseline does what LTU's inference scripts do for every question: read the clip from disk, run the audio
front end and encoder, build one prompt, `generate` an answer (batch 1, greedy here, at shardkit's answer length;
LTU samples up to 400 tokens, which would only be slower) and parse yes/no from the text. shardkit scores the
same questions through its adapter (batched, length-sorted, encoder once per clip, yes/no read from the next-token
logits, each clip's shared question prefix run once and its KV cache reused), starting from an empty feature
cache; "no prefix reuse" scores every prompt whole, to measure what the reuse gives. Runs alternate (baseline,
yesno, ..., baseline, ...), and each ratio is between medians of the same run. Identity by cloze (every SHARD
word as a continuation of each prompt) runs with each prompt once and every continuation from its KV cache, and
whole: candidates per second, both.

    python -m benchmarks.eval_throughput                        # CPU, tiny-ltu, 96 questions, 2 rounds
    python -m benchmarks.eval_throughput --items 16 --rounds 1  # quick look
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._common import RESULTS, peak_rss_mb, quiet, save, shard_items, table
from shardkit.audio.cache import FeatureCache
from shardkit.eval.scoring import PromptStyle, make_request, parse_yes_no
from shardkit.models.prompts import collate, encode


class Counting:
    """Wraps the front end to count how often it runs."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, wave):
        self.calls += 1
        return self.fn(wave)


def ltu_style(adapter, requests, max_new_tokens: int, lengths: list[int] | None = None) -> list[str | None]:
    """One question at a time, LTU's way: load, featurize, encode, generate, parse; nothing reused."""
    from shardkit.audio.io import load_audio

    model, out = adapter.model, []
    for r in requests:
        ref = r.audio[0]
        wave = load_audio(ref.path, ref.start, ref.end, max_seconds=adapter.window_seconds)
        feats = torch.from_numpy(adapter.featurize(wave))[None].to(adapter.device, adapter.dtype)
        with torch.no_grad():
            audio = model.encode_audio(feats)  # [1, n_a, d]
        ids, _ = encode(model.tokenizer, r.prompt, 1, model.n_audio_tokens, r.placement, model.template)
        b = collate([ids], model.pad_id)
        new = model.generate(b["input_ids"], b["attention_mask"], audio, max_new_tokens=max_new_tokens,
                             do_sample=False)
        out.append(parse_yes_no(model.tokenizer.decode(new[0], skip_special_tokens=True))[0])
        if lengths is not None:
            lengths.append(new.shape[1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=96, help="interleaved yes/no questions (SHARD file order)")
    p.add_argument("--cloze-items", type=int, default=24,
                   help="interleaved identity prompts scored by cloze, one continuation per SHARD word")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; medians are reported")
    p.add_argument("--batch-size", type=int, default=32, help="shardkit eval's default")
    p.add_argument("--max-new-tokens", type=int, default=24, help="answer length for generate (shardkit's default)")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for eval_throughput.json")
    args = p.parse_args()
    quiet()

    from shardkit.models.registry import load_model

    work = Path(tempfile.mkdtemp(prefix="bench-eval-"))
    items, root = shard_items(work / "shard")
    words = tuple(sorted({i["word"] for i in items if i["task"] == "identity"}))
    named = [i for i in items if i["task"] == "identity" and i["clip"]["available"]][:args.cloze_items]
    cloze = [make_request(i, "interleaved", "cloze", root, PromptStyle(), words) for i in named]
    items = [i for i in items if i["task"] in ("synonym", "hypernym") and i["clip"]["available"]][:args.items]
    requests = [make_request(i, "interleaved", "yesno", root, PromptStyle()) for i in items]
    n_clips = len({r.audio[0] for r in requests})
    adapter = load_model("tiny-ltu")
    adapter.batch_size = args.batch_size
    counter = adapter.featurize = Counting(adapter.featurize)

    def shardkit(kind: str, share_prefix: bool = True):
        def run():
            adapter.forget_audio()  # cold: empty in-memory embeddings and an empty on-disk feature cache
            adapter.cache = FeatureCache(Path(tempfile.mkdtemp(dir=work)), adapter.feature_id)
            adapter.share_prefix = share_prefix
            if kind == "yesno":
                return adapter.yes_no(requests)
            if kind == "cloze":
                return adapter.cloze(cloze, per_token=True)
            return adapter.generate(requests, max_new_tokens=args.max_new_tokens)
        return run

    lengths: list[int] = []  # tokens the baseline generates per question: its cost depends on them
    runs = {"LTU-style loop": lambda: ltu_style(adapter, requests, args.max_new_tokens, lengths),
            "shardkit yesno": shardkit("yesno"), "shardkit yesno, no prefix reuse": shardkit("yesno", False),
            "shardkit generate": shardkit("generate"), "shardkit cloze (identity)": shardkit("cloze"),
            "shardkit cloze, no prefix reuse": shardkit("cloze", False)}
    candidates = sum(len(r.continuations) for r in cloze)
    times: dict[str, list[float]] = {k: [] for k in runs}
    encoder_runs: dict[str, int] = {}
    ltu_style(adapter, requests[:2], 4)  # warm-up: first-call costs (threads, allocator) out of every timing
    for _ in range(args.rounds):
        for name, fn in runs.items():
            counter.calls = 0
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            encoder_runs[name] = counter.calls
    base = statistics.median(times["LTU-style loop"])
    rows, result = [], {}
    for name, ts in times.items():
        med = statistics.median(ts)
        if "cloze" in name:  # identity prompts × every word: candidates per second, compared with each other
            result[name] = {"seconds": ts, "median_s": med, "candidates_per_s": candidates / med,
                            "encoder_runs": encoder_runs[name]}
            continue
        result[name] = {"seconds": ts, "median_s": med, "items_per_s": len(requests) / med,
                        "speedup_vs_ltu_style": base / med, "encoder_runs": encoder_runs[name]}
        rows.append([name, len(requests) / med, base / med, encoder_runs[name], ", ".join(f"{t:.1f}" for t in ts)])
    reuse = result["shardkit cloze (identity)"]["candidates_per_s"] / \
        result["shardkit cloze, no prefix reuse"]["candidates_per_s"]
    table(f"eval throughput: {len(requests)} questions over {n_clips} clips, tiny-ltu, batch {args.batch_size}",
          ["path", "items/s", "× LTU-style", "encoder runs", "seconds per round"], rows)
    print(f"cloze identity: {len(cloze)} prompts × {len(words)} words = {candidates} candidates; "
          f"{result['shardkit cloze (identity)']['candidates_per_s']:.1f} candidates/s with each prompt run once, "
          f"{result['shardkit cloze, no prefix reuse']['candidates_per_s']:.1f} whole: {reuse:.1f}×")
    print(f"LTU-style loop generated {statistics.mean(lengths):.1f} tokens per question on average "
          f"(at most {args.max_new_tokens}, greedy; LTU samples up to 400)")
    path = save("eval_throughput", {"items": len(requests), "clips": n_clips, "batch_size": args.batch_size,
                                    "cloze_prompts": len(cloze), "cloze_candidates": candidates,
                                    "cloze_reuse_speedup": reuse,
                                    "baseline_new_tokens_mean": statistics.mean(lengths),
                                    "max_new_tokens": args.max_new_tokens, "rounds": args.rounds, "runs": result,
                                    "peak_rss_mb": peak_rss_mb()}, args.results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
