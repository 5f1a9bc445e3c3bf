"""results.json: the numbers of a run — per condition × task metrics with CIs, breakdowns, paired tests.

Turns merged records into the item arrays `metrics.py` aggregates (clip = cluster, unparsed = NaN prediction,
audio failure = error), then summarises, breaks down and compares. No timestamps: the same records give the
same bytes.
"""

from dataclasses import asdict
from itertools import combinations

import numpy as np

from shardkit.eval import metrics
from shardkit.eval.controls import CONTROL, split_condition
from shardkit.names import TASKS, YES_NO

IDENTITY_WAYS = ("correct_string", "correct_embedding", "correct_lenient")  # beside the strict headline `correct`


def arrays(rows: list[dict], clip_index: dict[str, int], cloze: bool, lenient: bool = False) -> dict:
    """Item arrays for one condition × task, in record order.

    Identity: `correct` (strict, the headline) and every `correct_<way>` the records carry, with `group` (the gold
    word) for the class-balanced headline. Yes/no: `gold`, `score` where every item has one, and `pred` (1 yes, 0
    no, NaN unparsed) except under cloze, whose likelihoods are ranked (AUROC) and never cut at a threshold fitted
    on the test items.
    """
    task = rows[0]["task"] if rows else "synonym"
    error = np.array([r["error"] is not None for r in rows], dtype=bool)
    data = {"cluster": np.array([clip_index[r["clip_id"]] for r in rows]), "error": error}
    if task == "identity":
        data["correct"] = np.array([bool(r["correct"]) for r in rows])
        data["group"] = np.array([r["word"] for r in rows])
        for key in IDENTITY_WAYS:
            if any(r.get(key) is not None for r in rows):
                data[key] = np.array([bool(r.get(key)) for r in rows])
        return data
    data["gold"] = np.array([r["gold"] == "yes" for r in rows])
    score = np.array([np.nan if r["score"] is None else r["score"] for r in rows], dtype=float)
    if not cloze:
        key = "parsed_lenient" if lenient else "parsed"
        data["pred"] = np.array([np.nan if r[key] is None else float(r[key] == "yes") for r in rows])
    if not np.isnan(score[~error]).any() and (~error).any():
        data["score"] = np.where(error, 0.0, score)
    return data


def baselines(merged: dict[tuple[str, str], list[dict]], clip_index: dict[str, int], items: dict[str, list[dict]],
              constant: dict | None, n_boot: int, seed: int) -> dict:
    """What a score is worth: model-free baselines on the same items, with the same clip-clustered CIs.

    Yes/no: always "yes" (its precision, recall, F1 and accuracy), the candidate-only baselines of
    `benchmark/baselines.py` as AUROC (0.5 when the candidate tells nothing), and each condition's AUROC paired
    against the in-sample candidate prior's (`vs_candidate_prior`: diff, CI, bootstrap p, MDE). Identity: the best
    constant answer.
    """
    from shardkit.benchmark.baselines import CANDIDATE_ONLY

    out: dict = {}
    for task in YES_NO:
        its = items.get(task) or []
        if not its:
            continue
        rows = [{"clip_id": i["clip"]["id"]} for i in its]
        data = {"cluster": np.array([clip_index.get(r["clip_id"], -1) for r in rows]),
                "gold": np.array([i["answer"] == "yes" for i in its])}
        yes = metrics.summarise(task, {**data, "pred": np.ones(len(its))}, n_boot, seed,
                                metrics=("precision", "recall", "f1", "accuracy"))
        out[task] = {"always_yes": yes}
        for name, fn in CANDIDATE_ONLY.items():
            out[task][f"candidate_{name}"] = metrics.summarise(task, {**data, "score": fn(its)}, n_boot, seed,
                                                               metrics=("auroc",))
        prior = dict(zip((i["id"] for i in its), CANDIDATE_ONLY["prior"](its), strict=True))
        vs = out[task]["vs_candidate_prior"] = {}
        for (cond, t), recs in merged.items():  # each condition's AUROC against the prior's, paired by clip
            if t == task and recs and all(r["score"] is not None or r["error"] for r in recs):
                model = {"cluster": np.array([clip_index[r["clip_id"]] for r in recs]),
                         "gold": np.array([r["gold"] == "yes" for r in recs]),
                         "error": np.array([r["error"] is not None for r in recs])}
                model["score"] = np.array([0.0 if r["score"] is None else r["score"] for r in recs])
                base = {**model, "score": np.array([prior[r["item_id"]] for r in recs])}
                r = metrics.compare(base, model, task, n_boot, seed, metrics=("auroc",))
                vs[cond] = {"diff": r["auroc"]["diff"], "ci": r["auroc"]["ci"], "p": r["auroc"]["p"],
                            "mde": r["auroc"]["mde"]}
    if constant is not None:
        out["identity"] = {"best_constant": constant}
    return out


def build_results(cfg, merged: dict[tuple[str, str], list[dict]], meta: dict, provenance: dict,
                  constant: dict | None = None, items: dict[str, list[dict]] | None = None) -> dict:
    """Every number of a run: metrics with CIs per condition × task, breakdowns, identification-conditioned
    reasoning, paired tests (Holm within the run) and the model-free baselines on the same items."""
    clips = sorted({r["clip_id"] for rows in merged.values() for r in rows})
    clip_index = {c: i for i, c in enumerate(clips)}
    cloze = cfg.scoring == "cloze"
    kw = {"n_boot": cfg.n_boot, "seed": cfg.seed}
    data = {key: arrays(rows, clip_index, cloze) for key, rows in merged.items()}
    out_metrics: dict = {}
    breakdowns: dict = {}
    for (cond, task), d in data.items():
        rows = merged[(cond, task)]
        out_metrics.setdefault(cond, {})[task] = s = metrics.summarise(task, d, **kw)
        if cfg.scoring == "generate" and task in YES_NO:
            s["lenient"] = metrics.summarise(task, arrays(rows, clip_index, cloze, lenient=True), **kw)
        if task in YES_NO and cloze:  # scores only: rank within each word
            breakdowns.setdefault(cond, {})[task] = {
                "word": metrics.breakdown(d, np.array([r["word"] for r in rows]), task, **kw, metrics=("auroc",))}
        elif task in YES_NO:
            breakdowns.setdefault(cond, {})[task] = {
                "word": metrics.breakdown(d, np.array([r["word"] for r in rows]), task, **kw,
                                          metrics=("accuracy",)),
                "depth": metrics.breakdown(d, np.array([r["depth"] if r["depth"] is not None else "" for r in rows],
                                                       dtype=object), task, **kw, metrics=("recall",)),
                "negative_kind": metrics.breakdown(d, np.array([r["negative_kind"] or "" for r in rows],
                                                               dtype=object), task, **kw,
                                                   metrics=("accuracy", "unparsed_rate")),
            }
    conditioned: dict = {}
    for cond in out_metrics if not cloze else ():  # cloze makes no yes/no decisions to condition
        # the cascade and the text control ask no identity question: condition them on their placement's
        # identification (the text control's: the last placement's)
        ident = (merged.get((cond, "identity")) or merged.get((split_condition(cond)[0], "identity"))
                 or (cfg.placements and merged.get((cfg.placements[-1], "identity"))))
        if not ident:
            continue
        by_clip = {clip_index[r["clip_id"]]: bool(r["correct"]) for r in ident if r["error"] is None}
        for task in YES_NO:
            rows = merged.get((cond, task))
            if rows:
                ok = [r["error"] is None for r in rows]
                correct = np.array([r["correct"] is True for r, k in zip(rows, ok, strict=True) if k])
                clip = np.array([clip_index[r["clip_id"]] for r, k in zip(rows, ok, strict=True) if k])
                conditioned.setdefault(cond, {})[task] = metrics.conditioned_on_identity(correct, clip, by_clip,
                                                                                         **kw)
    tests = []
    tasks = sorted({t for _, t in merged}, key=TASKS.index)
    for task in tasks:
        conds = [c for c in cfg.conditions if (c, task) in data]
        for a, b in combinations(conds, 2):
            if split_condition(a)[1] or (split_condition(b)[1] and split_condition(b)[0] != a):
                continue  # an audio control is tested against its own placement only
            r = metrics.compare(data[(a, task)], data[(b, task)], task, **kw)
            tests.append({"a": a, "b": b, **metrics.as_test(task, r)})
    metrics.apply_holm(tests)
    base = baselines(merged, clip_index, items or {}, constant, **kw)
    return json_safe({
        "config": asdict(cfg), "shard_sha256": meta["sha256"], "versions": provenance,
        "decoding": {"strategy": "greedy", "do_sample": False, "max_new_tokens": cfg.max_new_tokens,
                     "yes_no_threshold": ("none: cloze scores (mean log-probability per token) are ranked, AUROC "
                                          "only" if cloze else "log-odds 0" if cfg.scoring == "yesno" else
                                          "parsed answer")},
        "n_items": sum(len(rows) for rows in merged.values()), "n_clips": len(clips),
        "control": CONTROL if cfg.control else None,
        "metrics": out_metrics, "baselines": base, "breakdowns": breakdowns, "conditioned": conditioned,
        "tests": tests,
    })


def json_safe(x):
    """JSON-safe: NaN → None, numpy scalars → Python numbers, tuples → lists."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and np.isnan(x):
        return None
    return x
