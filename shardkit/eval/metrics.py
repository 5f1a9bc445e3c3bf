"""SHARD metrics, declared: each is an aggregation over per-item arrays that says whether higher is better.

This is lm-eval's split — per-item scoring elsewhere, aggregation here — with every interval a clip-clustered
bootstrap of the same aggregation. Unparsed answers stay in every denominator; items whose audio failed
(`data["error"]`) are left out and counted, since the model never heard them. Identity's headline is class-balanced
(`identity_accuracy_balanced`, the mean over gold words of each word's accuracy): SHARD's clips are as unequal as
the manifest's, and a constant answer should score 1/k, not the share of the commonest class.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from shardkit.errors import ShardkitError
from shardkit.stats import (
    Data,
    MetricFn,
    auroc,
    balanced_mean,
    binary_metrics,
    cluster_bootstrap,
    holm,
    mcnemar_exact,
    mcnemar_mde,
    paired_bootstrap_diff,
    signflip_exact,
    weighted_mean,
)
from shardkit.suggest import choose_from

YES_NO, IDENTITY = "yes_no", "identity"
TASK_KINDS = {"synonym": YES_NO, "hypernym": YES_NO, "identity": IDENTITY}
NEEDS = {YES_NO: ("gold", "cluster"), IDENTITY: ("correct", "cluster")}  # yes/no decisions (pred) are optional
IDENTITY_HEADLINE = "identity_accuracy_balanced"


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn  # (data, weights None | [n] | [r, n]) -> float | [r]
    higher_is_better: bool
    kind: str  # YES_NO or IDENTITY: which tasks it applies to
    needs: tuple[str, ...]  # data keys it reads; a metric whose keys are absent is skipped


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def _binary(name: str, data: Data, weights: np.ndarray | None = None):
    return binary_metrics(data["gold"], data["pred"], weights)[name]


def _auroc(data: Data, weights: np.ndarray | None = None):
    return auroc(data["gold"], data["score"], weights)


def _mean(key: str, data: Data, weights: np.ndarray | None = None):
    return weighted_mean(data[key].astype(bool), weights)


for _name, _better in (("precision", True), ("recall", True), ("f1", True), ("accuracy", True),
                       ("unparsed_rate", False)):
    register(Metric(_name, partial(_binary, _name), _better, YES_NO, ("gold", "pred")))
register(Metric("auroc", _auroc, True, YES_NO, ("gold", "score")))
register(Metric("identity_accuracy", partial(_mean, "correct"), True, IDENTITY, ("correct",)))


def _balanced(data: Data, weights: np.ndarray | None = None):
    return balanced_mean(data["correct"].astype(bool), data["group"], weights)


register(Metric(IDENTITY_HEADLINE, _balanced, True, IDENTITY, ("correct", "group")))


def _kind(task: str) -> str:
    if task not in TASK_KINDS:
        raise ShardkitError(f"unknown SHARD task {task!r}{choose_from(task, TASK_KINDS)}")
    return TASK_KINDS[task]


def _metrics_for(task: str, data: Data, names: tuple[str, ...] | None) -> dict[str, Metric]:
    """The metrics that apply to the task and data; identity adds identity_accuracy_<x> per `correct_<x>` key."""
    kind = _kind(task)
    found = {m.name: m for m in METRICS.values() if m.kind == kind and all(k in data for k in m.needs)}
    if kind == IDENTITY:
        for key in sorted(k for k in data if k.startswith("correct_")):
            name = f"identity_accuracy_{key.removeprefix('correct_')}"
            found[name] = Metric(name, partial(_mean, key), True, IDENTITY, (key,))
    if names is None:
        return found
    for name in names:
        if name not in found:
            if name in METRICS and METRICS[name].kind == kind:
                raise ShardkitError(f"metric {name!r} needs data keys {', '.join(METRICS[name].needs)}")
            raise ShardkitError(f"metric {name!r} does not apply to {task}{choose_from(name, found)}")
    return {name: found[name] for name in names}


def _prepare(task: str, data: Data) -> tuple[Data, int]:
    """Validated item arrays with error items removed, and how many were removed."""
    need = NEEDS[_kind(task)]
    missing = [k for k in need if k not in data]
    if missing:
        raise ShardkitError(f"{task} data lacks {', '.join(missing)}; it needs {', '.join(need)}")
    arrays = {k: np.asarray(v) for k, v in data.items()}
    n = len(arrays["cluster"])
    for key, arr in arrays.items():
        if arr.ndim != 1 or len(arr) != n:
            raise ShardkitError(f"{task} data[{key!r}] has shape {arr.shape}; every array needs one value per "
                                f"item ({n}, as cluster has)")
    error = arrays.pop("error", np.zeros(n, dtype=bool)).astype(bool)
    return {k: v[~error] for k, v in arrays.items()}, int(error.sum())


def summarise(task: str, data: Data, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
              metrics: tuple[str, ...] | None = None) -> dict:
    """Every metric that applies (or those named) with a clip-clustered percentile CI.

    Returns {"n", "n_error", "n_clips", <metric>: {"value", "ci": [lo, hi], "higher_is_better"}, ...}; n counts
    items kept (unparsed answers included), n_error those left out for an error.
    """
    data, n_error = _prepare(task, data)
    out: dict = {"n": len(data["cluster"]), "n_error": n_error, "n_clips": len(np.unique(data["cluster"]))}
    for name, m in _metrics_for(task, data, metrics).items():
        lo, hi = cluster_bootstrap(m.fn, data, data["cluster"], n_boot, seed, alpha)
        out[name] = {"value": float(m.fn(data, None)), "ci": [lo, hi], "higher_is_better": m.higher_is_better}
    return out


def _has_key(value) -> bool:
    return value is not None and value != "" and not (isinstance(value, float) and np.isnan(value))


def breakdown(data: Data, by: np.ndarray, task: str, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
              metrics: tuple[str, ...] | None = None) -> dict:
    """summarise() per value of `by` (word, depth, negative kind), over the items that have one.

    Items whose key is None, "" or NaN are left out, so a negative-kind breakdown covers negatives only and
    its meaningful metric is accuracy (ask for metrics=("accuracy", "unparsed_rate")).
    """
    by = np.asarray(by, dtype=object)
    if by.shape != (len(data["cluster"]),):
        raise ShardkitError(f"breakdown key has shape {by.shape}; expected one value per item "
                            f"({len(data['cluster'])})")
    has = np.array([_has_key(v) for v in by], dtype=bool)
    keys = sorted({v.item() if isinstance(v, np.generic) else v for v in by[has]})
    return {key: summarise(task, {k: np.asarray(v)[has & (by == key)] for k, v in data.items()}, n_boot, seed,
                           alpha, metrics) for key in keys}


def conditioned_on_identity(reasoning_correct: np.ndarray, clip_of_item: np.ndarray,
                            identity_correct_by_clip: Mapping | np.ndarray, n_boot: int = 1000, seed: int = 0,
                            alpha: float = 0.05) -> dict:
    """Reasoning accuracy on items whose clip was identified correctly vs not, with clip-clustered CIs.

    `identity_correct_by_clip` maps clip index → bool (an array is indexed by clip); items whose clip has no
    identity result (absent, None or NaN) are counted in n_unknown. Returns {"identified": {"accuracy", "ci", "n",
    "n_clips"}, "not_identified": {...}, "n_unknown"}.
    """
    correct, clip = np.asarray(reasoning_correct, dtype=bool), np.asarray(clip_of_item)
    if correct.shape != clip.shape or correct.ndim != 1:
        raise ShardkitError(f"reasoning_correct has shape {correct.shape} and clip_of_item {clip.shape}; "
                            "expected equal 1-d arrays")
    by_clip = identity_correct_by_clip
    if not isinstance(by_clip, Mapping):
        by_clip = dict(enumerate(np.asarray(by_clip).tolist()))
    known = np.array([_has_key(by_clip.get(int(c))) for c in clip], dtype=bool)
    identified = np.array([bool(by_clip.get(int(c))) for c in clip], dtype=bool)
    out: dict = {"n_unknown": int((~known).sum())}
    for name, mask in (("identified", known & identified), ("not_identified", known & ~identified)):
        data = {"correct": correct[mask], "cluster": clip[mask]}
        fn = partial(_mean, "correct")
        lo, hi = cluster_bootstrap(fn, data, data["cluster"], n_boot, seed, alpha)
        out[name] = {"accuracy": float(fn(data, None)), "ci": [lo, hi], "n": int(mask.sum()),
                     "n_clips": len(np.unique(data["cluster"]))}
    return out


def _correct(kind: str, data: Data, identity_key: str = "correct") -> np.ndarray:
    """Per-item correctness: pred == gold for yes/no (unparsed is wrong), data[identity_key] for identity."""
    if kind == YES_NO:
        return np.asarray(data["pred"], dtype=np.float64) == np.asarray(data["gold"], dtype=bool)
    return data[identity_key if identity_key in data else "correct"].astype(bool)


def _paired_test(kind: str, a: Data, b: Data, diffs: dict, identity_key: str) -> dict:
    """The test of B against A on the headline: exact McNemar on yes/no decisions; for identity with word groups,
    the class-balanced sign-flip test (McNemar when the classes are equal); for yes/no scores without decisions
    (cloze), the paired clip-bootstrap p of the AUROC difference. McNemar adds `mde_accuracy`, the accuracy
    difference it could detect at 80% power given the observed share of discordant items."""
    if kind == YES_NO and "pred" not in a:
        p = diffs["auroc"]["p"] if "auroc" in diffs else float("nan")
        return {"b": None, "c": None, "right_to_wrong": None, "wrong_to_right": None, "n": len(a["cluster"]), "p": p,
                "method": "paired clip bootstrap of AUROC"}
    ca, cb = _correct(kind, a, identity_key), _correct(kind, b, identity_key)
    if kind == IDENTITY and "group" in a and identity_key == "correct":
        _, g, size = np.unique(a["group"], return_inverse=True, return_counts=True)
        return signflip_exact(ca, cb, 1.0 / size[g])
    m = mcnemar_exact(ca, cb)
    return {**m, "method": "McNemar, exact", "mde_accuracy": mcnemar_mde(m["n"], m["b"] + m["c"])}


def compare(data_a: Data, data_b: Data, task: str, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
            metrics: tuple[str, ...] | None = None, identity_key: str = "correct") -> dict:
    """Condition B against A on the same items: per metric diff B − A with a paired clustered CI, and McNemar.

    Items are paired by position and must share clips (and gold answers); an item with an error in either
    condition is left out of both. McNemar reads identity correctness from `identity_key` ("correct": the string
    match; "correct_embedding": the embedding match) when the data have it. Returns {"n", "n_error", <metric>:
    {"diff", "ci", "higher_is_better"}, ...,
    "mcnemar": the paired test of the headline (`_paired_test`: {"b", "c", "right_to_wrong", "wrong_to_right", "n",
    "p", "method"})}; see apply_holm for the family.
    """
    kind = _kind(task)
    a, _ = _prepare(task, {k: v for k, v in data_a.items() if k != "error"})
    b, _ = _prepare(task, {k: v for k, v in data_b.items() if k != "error"})
    if len(a["cluster"]) != len(b["cluster"]) or not np.array_equal(a["cluster"], b["cluster"]):
        raise ShardkitError(f"{task}: conditions A and B do not hold the same items in the same order "
                            "(cluster arrays differ); align them by item key first")
    if kind == YES_NO and ("pred" in a) != ("pred" in b):
        raise ShardkitError(f"{task}: one condition has yes/no decisions and the other only scores (cloze); "
                            "compare runs of the same scoring")
    if kind == YES_NO and not np.array_equal(a["gold"].astype(bool), b["gold"].astype(bool)):
        raise ShardkitError(f"{task}: conditions A and B have different gold answers; align them by item key first")
    n = len(a["cluster"])
    error = np.zeros(n, dtype=bool)
    for name, d in (("A", data_a), ("B", data_b)):
        if "error" in d:
            err = np.asarray(d["error"], dtype=bool)
            if err.shape != (n,):
                raise ShardkitError(f"{task}: condition {name}'s error array has shape {err.shape}; expected ({n},)")
            error |= err
    a, b = ({k: v[~error] for k, v in d.items()} for d in (a, b))
    cluster = a["cluster"]
    out: dict = {"n": int((~error).sum()), "n_error": int(error.sum())}
    both = {k: v for k, v in a.items() if k in b}
    for name, m in _metrics_for(task, both, metrics).items():
        r = paired_bootstrap_diff(m.fn, a, b, cluster, n_boot, seed, alpha)
        out[name] = {"diff": r["diff"], "ci": [r["lo"], r["hi"]], "p": r["p"], "mde": r["mde"],
                     "higher_is_better": m.higher_is_better}
    out["mcnemar"] = _paired_test(kind, a, b, out, identity_key)
    return out


def as_test(task: str, r: dict) -> dict:
    """A `compare` result as results.json stores a test: {"task", "n", "n_error", "diffs": {metric: {"value", "ci",
    "p", "higher_is_better"}}, "mcnemar"}."""
    return {"task": task, "n": r["n"], "n_error": r["n_error"],
            "diffs": {k: {"value": v["diff"], "ci": v["ci"], "p": v["p"], "mde": v["mde"],
                          "higher_is_better": v["higher_is_better"]}
                      for k, v in r.items() if isinstance(v, dict) and "diff" in v},
            "mcnemar": r["mcnemar"]}


def apply_holm(comparisons: list[dict]) -> None:
    """Add Holm-adjusted `p_holm` to each comparison's test entry, the list being one family of tests; a test
    without a p (NaN) stays out of the family."""
    ps = [c["mcnemar"]["p"] for c in comparisons]
    keep = [k for k, p in enumerate(ps) if p is not None and not np.isnan(p)]
    adjusted = dict(zip(keep, holm([ps[k] for k in keep]), strict=True))
    for k, c in enumerate(comparisons):
        c["mcnemar"]["p_holm"] = adjusted.get(k, float("nan"))
