"""GPU smoke: a LLaMA-7B-shaped LTU AudioLLM with random weights, batched interleaved scoring and generation.

Checks that the splice runs at LTU's real shapes (CAV-MAE ViT-B, 32 audio tokens, hidden 4096, 32 layers,
vocab 32000) in bf16, and reports tokens/s and peak memory. Random weights: the numbers are speed and memory,
not answers. `--size tiny` runs the same path on CPU in seconds to check the script itself.

    python benchmarks/gpu_smoke.py --device cuda --dtype bfloat16            # on a GPU (~14 GB)
    python benchmarks/gpu_smoke.py --size tiny --device cpu --dtype float32  # dry run
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from shardkit.audio.features import ltu_fbank
from shardkit.models.encoders.cavmae import CavMaeConfig
from shardkit.models.ltu import LtuConfig, build_ltu
from shardkit.models.prompts import collate, encode
from shardkit.names import Placement

SIZES = {  # LLaMA-7B (LTU's Vicuna) vs a CPU-sized stand-in
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=32000),
}
QUESTIONS = ["Is the sound in this audio clip <audio> a kind of animal? Answer yes or no.",
             "<audio> Is the sound's source another word for dog? Answer yes or no.",
             "What is the sound? <audio>",
             "Compare <audio> with <audio>: is the first a kind of the second? Answer yes or no."]


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer with LLaMA's special ids (pad 0 <unk>, bos 1, eos 2) and a 32000-entry vocab."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for q in QUESTIONS for w in q.replace("<audio>", " ").split()} | {"yes", "no", "Yes", "No"})
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *words])}
    vocab.update({f"w{i}": i for i in range(len(vocab), vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<unk>",
                                   unk_token="<unk>")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=SIZES, default="7b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gpu_smoke.json")
    args = p.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    tok = word_tokenizer(SIZES[args.size]["vocab_size"])
    enc = CavMaeConfig() if args.size == "7b" else CavMaeConfig(dim=64, depth_a=1, heads=4)
    with torch.device(args.device):
        lm = LlamaForCausalLM(LlamaConfig(**SIZES[args.size], max_position_embeddings=2048, pad_token_id=0,
                                          bos_token_id=1, eos_token_id=2)).to(dtype)
        model = build_ltu(lm, tok, LtuConfig(encoder=enc)).to(args.device, dtype).eval()
    sync(args.device)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())

    # A batch of interleaved prompts with markers at mixed positions, one or two clips each.
    rng = np.random.default_rng(0)
    prompts = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.batch_size)]
    n_clips = [q.count("<audio>") for q in prompts]
    waves = [rng.standard_normal(int(16000 * 10.24)).astype(np.float32) * 0.1 for _ in range(sum(n_clips))]
    feats = torch.from_numpy(np.stack([ltu_fbank(w) for w in waves])).to(args.device, dtype)
    seqs = [encode(tok, q, n, model.n_audio_tokens, Placement.INTERLEAVED, model.template)[0]
            for q, n in zip(prompts, n_clips, strict=True)]
    b = {k: v.to(args.device) for k, v in collate(seqs, model.pad_id).items()}
    n_tokens = int(b["attention_mask"].sum())

    def timed(fn, repeat=3):
        fn()  # warm-up
        sync(args.device)
        t = time.perf_counter()
        for _ in range(repeat):
            out = fn()
        sync(args.device)
        return out, (time.perf_counter() - t) / repeat

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        audio, enc_s = timed(lambda: model.encode_audio(feats))
        scores, score_s = timed(lambda: model.yes_no(b["input_ids"], b["attention_mask"], b["position_ids"], audio))
        new, gen_s = timed(lambda: model.generate(b["input_ids"], b["attention_mask"], audio,
                                                  max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                                  do_sample=False), repeat=1)
        # batched ≡ one-by-one, in this dtype
        k, diffs = 0, []
        for i, n in enumerate(n_clips[:4]):
            one = {kk: v.to(args.device) for kk, v in collate([seqs[i]], model.pad_id).items()}
            alone = model.yes_no(one["input_ids"], one["attention_mask"], one["position_ids"], audio[k:k + n])
            diffs.append(abs(float(alone[0] - scores[i])))
            k += n
    result = {
        "size": args.size, "device": args.device, "dtype": args.dtype,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor(),
        "params_total": n_params, "batch_size": args.batch_size, "clips": sum(n_clips),
        "prompt_tokens": n_tokens, "build_s": round(build_s, 2),
        "encode_audio_s": round(enc_s, 4), "clips_per_s": round(sum(n_clips) / enc_s, 1),
        "yes_no_s": round(score_s, 4), "yes_no_tokens_per_s": round(n_tokens / score_s, 1),
        "yes_no_items_per_s": round(args.batch_size / score_s, 1),
        "generate_s": round(gen_s, 3), "new_tokens_per_s": round(args.batch_size * args.new_tokens / gen_s, 1),
        "new_tokens": list(new.shape),
        "batched_vs_alone_max_abs_logodds_diff": max(diffs),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if args.device.startswith("cuda")
        else None,
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:>40}: {value}")


if __name__ == "__main__":
    main()
