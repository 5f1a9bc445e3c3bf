"""Ceilings: what the bundled clips and the small LM allow any tiny-ltu to reach, measured without tuning it.

    python -m benchmarks.ceilings            # about 4 minutes on 2 cores; writes benchmarks/results/ceilings.json

Two questions a reviewer asks before trusting a tiny-ltu score, each answered with a linear probe (L2 logistic
regression, full batch) on frozen features, so no training recipe can be blamed:

- identity: how many of SHARD's identity items name a class that some train-split clip carries (a model tuned on
  the train split can name nothing else), and how many a linear probe on tiny-ltu's own front end (YAMNet tokens,
  mean over the clip) names right under the strict rule (the gold class or one below it);
- reasoning: whether SmolLM2's hidden state at the answer position of SHARD's text-control question ("is the
  source of the sound of "dog" a kind of animal?") already holds the answer. The probe is fitted on text-only
  questions about held-out WordNet nouns (train/wordnet_text.py: never a SHARD word, synset or fact) and scored
  on SHARD's items, per layer. A high AUROC here and a low one from a tuned base means the recipe fails to read
  out what the LM knows; a low one here means no LoRA on this LM should be expected to do better.
"""

import argparse
import json
import random
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import RESULTS, quiet, save, shard_items, table

LAYERS = (10, 15, 20, 25, 30)  # SmolLM2-135M has 30 blocks; hidden_states[0] is the embedding


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 300) -> torch.nn.Linear:
    """Multinomial logistic regression on standardised features (mean/std folded into the returned layer)."""
    xt = torch.tensor(x, dtype=torch.float64)
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    xt = (xt - mu) / sd
    classes = int(y.max()) + 1
    lin = torch.nn.Linear(x.shape[1], classes, dtype=torch.float64)
    torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")
    yt = torch.tensor(y)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xt), yt) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():  # fold the standardisation in: lin(x) on raw features
        lin.weight /= sd
        lin.bias -= (lin.weight * mu).sum(1)
    return lin


def balanced(items: list[dict], correct: list[bool]) -> float:
    """Mean over gold classes of the share right: a class with many clips counts once, as in the study."""
    by = defaultdict(list)
    for i, ok in zip(items, correct, strict=True):
        by[i["mid"]].append(ok)
    return float(np.mean([np.mean(v) for v in by.values()]))


def identity_ceiling(items: list[dict], audio_root: str) -> dict:
    from shardkit.audio.cache import FeatureCache, clip_key
    from shardkit.audio.io import load_audio
    from shardkit.eval.scoring import audio_ref
    from shardkit.models.encoders.yamnet import YamnetEncoder
    from shardkit.paths import cache_dir
    from shardkit.resources.ontology import ontology
    from shardkit.resources.samples import build_samples

    onto = ontology()
    manifest = build_samples()
    clips = [json.loads(line) for line in manifest.read_text().splitlines()]
    train = [c for c in clips if c["split"] == "train"]
    yam = YamnetEncoder.load(n_tokens=32)
    cache = FeatureCache(cache_dir("features"), yam.id)

    def mean_tokens(path: Path) -> np.ndarray:  # the same cached tokens tiny-ltu reads
        feats = cache.get_or_compute(clip_key(path, 0.0, None),
                                     lambda: yam.embed(load_audio(path, 0.0, None, max_seconds=10.24)))
        return feats.mean(0)

    root = manifest.parent
    names = sorted({c["labels"][0] for c in train})
    x = np.stack([mean_tokens(root / c["path"]) for c in train])
    y = np.array([names.index(c["labels"][0]) for c in train])
    ident = [i for i in items if i["task"] == "identity"]
    trained = {m for c in train for m in c["labels"]}
    covered = [i["mid"] in trained or bool(onto.descendants(i["mid"]) & trained) for i in ident]
    out = {"items": len(ident), "classes": len({i["mid"] for i in ident}), "train_clips": len(train),
           "covered": int(sum(covered)),
           "classes_without_train_clip": sorted({onto.name(i["mid"]) for i, c in zip(ident, covered, strict=True)
                                                   if not c})}
    xs = np.stack([mean_tokens(Path(audio_ref(i, audio_root).path)) for i in ident])
    for l2 in (1e-3, 1e-2):
        probe = fit_probe(x, y, l2)
        with torch.no_grad():
            pred = probe(torch.tensor(xs, dtype=torch.float64)).argmax(1).numpy()
        ok = [names[p] == i["mid"] or names[p] in onto.descendants(i["mid"]) for p, i in zip(pred, ident, strict=True)]
        out[f"probe_l2={l2:g}"] = {"strict": float(np.mean(ok)), "strict_balanced": balanced(ident, ok)}
    out["covered_balanced"] = balanced(ident, covered)
    answers = defaultdict(int)
    for i in ident:
        answers[i["mid"]] += 1
    out["best_constant_strict"] = max(answers.values()) / len(ident)  # the most frequent gold class, said always
    return out


def reasoning_ceiling(items: list[dict], n_train: int, seed: int, layers: tuple[int, ...] = LAYERS) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shardkit.benchmark.relations import Guard
    from shardkit.benchmark.senses import load_senses
    from shardkit.eval.scoring import QUESTIONS
    from shardkit.models.prompts import TEMPLATES
    from shardkit.models.tiny_ltu import smollm2_dir
    from shardkit.resources.ontology import ontology
    from shardkit.stats import auroc
    from shardkit.train.wordnet_text import TextQuestions, held_out

    path = smollm2_dir()
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    chat = TEMPLATES["chatml"]

    @torch.no_grad()
    def hidden(questions: list[str]) -> dict[int, np.ndarray]:
        out = defaultdict(list)
        for k in range(0, len(questions), 64):
            enc = tok([chat.render(q) for q in questions[k:k + 64]], return_tensors="pt", padding=True,
                      add_special_tokens=False)
            states = lm(**enc, output_hidden_states=True).hidden_states
            for layer in layers:
                out[layer].append(states[layer][:, -1].numpy())
        return {layer: np.concatenate(v) for layer, v in out.items()}

    subjects = held_out(Guard.from_senses(load_senses(ontology())))
    draw = TextQuestions(random.Random(seed), subjects)
    train = [draw.question(("synonym_text", "hypernym_text")[k % 2]) for k in range(n_train)]
    x_train = hidden([q for q, _, _ in train])
    y_train = np.array([a == "Yes" for _, a, _ in train], dtype=np.int64)
    out = {"train_questions": n_train, "subjects": len(subjects)}
    for task in ("synonym", "hypernym"):
        its = [i for i in items if i["task"] == task]
        qs = [QUESTIONS[task].replace("{candidate}", i["candidate"]).replace("{subject}", f'the sound of "{i["word"]}"')
              for i in its]
        x = hidden(qs)
        gold = np.array([i["answer"] == "yes" for i in its])
        for layer in layers:
            probe = fit_probe(x_train[layer], y_train, l2=1e-2)
            with torch.no_grad():
                z = probe(torch.tensor(x[layer], dtype=torch.float64))
                fit = probe(torch.tensor(x_train[layer], dtype=torch.float64)).argmax(1).numpy()
            out[f"{task}/layer{layer}"] = {"shard_auroc": float(auroc(gold, (z[:, 1] - z[:, 0]).numpy())),
                                           "train_accuracy": float((fit == y_train).mean())}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=3000, help="held-out WordNet questions for the reasoning probe")
    p.add_argument("--layers", default=",".join(map(str, LAYERS)), help="SmolLM2 blocks to probe (0-30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for ceilings.json")
    args = p.parse_args()
    quiet()
    torch.manual_seed(args.seed)
    items, audio_root = shard_items(Path(tempfile.mkdtemp(prefix="bench-shard-")) / "shard")
    ident = identity_ceiling(items, audio_root)
    reason = reasoning_ceiling(items, args.n_train, args.seed, tuple(int(x) for x in args.layers.split(",")))
    table("identity (strict: the gold class or one below it)", ["measure", "value"],
          [["items", ident["items"]], ["covered by a train-split class", ident["covered"]],
           ["covered, class-balanced", ident["covered_balanced"]],
           ["best constant (most frequent gold class)", ident["best_constant_strict"]],
           *[[f"YAMNet linear probe {k[6:]} {m}", v[m]] for k, v in ident.items() if k.startswith("probe")
             for m in v]])
    table("reasoning: SmolLM2 hidden-state probe on SHARD's text-control questions", ["task/layer", "SHARD AUROC",
          "train acc"], [[k, v["shard_auroc"], v["train_accuracy"]] for k, v in reason.items() if "/" in k])
    print(save("ceilings", {"seed": args.seed, "identity": ident, "reasoning": reason}, args.results))


if __name__ == "__main__":
    main()
