"""Statistics shared by the benchmark's baselines and the evaluation: binary metrics, AUROC, clip-clustered
bootstrap CIs and paired tests (the ground floor: it imports nothing above errors).

Several items share one clip, so items are not independent; resampling clips (all of a clip's items move
together) keeps the intervals honest. Every metric takes optional item weights of shape [n] or [r, n], so a
bootstrap is one multinomial draw per clip and replicate followed by a few matrix products, not a Python loop.
An unparsed yes/no answer is never credited: it is wrong in every binary metric, as if the model had given the
wrong label (a miss on a positive, a false positive on a negative), so not answering cannot raise a score.
"""

import logging
from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binomtest, norm

from shardkit.errors import ShardkitError

logger = logging.getLogger(__name__)

Data = dict[str, np.ndarray]
# fn(data, weights): weights None → float; weights [r, n] → array [r] (one value per replicate).
MetricFn = Callable[[Data, np.ndarray | None], float | np.ndarray]

_CHUNK = 4_000_000  # replicate rows × items per block of weights (32 MB of float64) in the bootstrap


def _wsum(x: np.ndarray, weights: np.ndarray | None) -> float | np.ndarray:
    """Weighted count of a 0/1 vector: a float, or one per replicate when weights are [r, n]."""
    x = x.astype(np.float64)
    return float(x.sum()) if weights is None else weights @ x


def _ratio(num, den):
    """num / den with 0/0 (and x/0) → NaN, elementwise, as a float when both are scalars."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(np.asarray(den) > 0, np.asarray(num, dtype=np.float64) / den, np.nan)
    return float(out) if out.ndim == 0 else out


def weighted_mean(x: np.ndarray, weights: np.ndarray | None = None) -> float | np.ndarray:
    """Mean of a 0/1 (or real) vector under item weights; NaN for no items. [n] or None → float; [r, n] → [r]."""
    x = np.asarray(x, dtype=np.float64)
    weights = _check_weights(weights, len(x))
    if weights is None:
        return _ratio(x.sum(), len(x))
    return _ratio(weights @ x, weights.sum(axis=-1))


def _check_weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim not in (1, 2) or weights.shape[-1] != n:
        raise ShardkitError(f"weights have shape {weights.shape}; expected ({n},) or (replicates, {n})")
    return weights


def _check_pred(gold: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gold, pred = np.asarray(gold, dtype=bool), np.asarray(pred, dtype=np.float64)
    if gold.shape != pred.shape or gold.ndim != 1:
        raise ShardkitError(f"gold has shape {gold.shape} and pred {pred.shape}; expected two equal 1-d arrays")
    bad = ~(np.isnan(pred) | (pred == 0) | (pred == 1))
    if bad.any():
        raise ShardkitError(f"pred holds {pred[bad][0]!r} at item {np.flatnonzero(bad)[0]}; use 1.0 yes, "
                            "0.0 no, NaN unparsed")
    return gold, pred


def binary_counts(gold: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """(Weighted) counts of a yes/no table in which unparsed answers (NaN) stay in.

    tp: yes on a positive; fp: yes on a negative (unparsed negatives not included); fn: a positive not answered
    yes (unparsed positives included); tn: no on a negative; unparsed_pos, unparsed_neg: NaN answers on a
    positive, on a negative; unparsed: their sum; n: all items, so tp + fp + fn + tn + unparsed_neg = n.
    `binary_metrics` adds unparsed_neg to fp. Values are floats, or arrays [r] for weights [r, n].
    """
    gold, pred = _check_pred(gold, pred)
    weights = _check_weights(weights, len(gold))
    yes, no, nan = pred == 1, pred == 0, np.isnan(pred)
    return {
        "tp": _wsum(gold & yes, weights),
        "fp": _wsum(~gold & yes, weights),
        "fn": _wsum(gold & ~yes, weights),
        "tn": _wsum(~gold & no, weights),
        "unparsed_pos": _wsum(gold & nan, weights),
        "unparsed_neg": _wsum(~gold & nan, weights),
        "unparsed": _wsum(nan, weights),
        "n": _wsum(np.ones(len(gold), dtype=bool), weights),
    }


def binary_metrics(gold: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """precision, recall, f1, accuracy, unparsed_rate and n, with an unparsed answer wrong in every metric.

    An unparsed answer scores as the wrong label, so a model cannot gain by not answering: on a positive it is a
    miss (in fn), on a negative a false positive. With FP = fp + unparsed_neg: precision = tp / (tp + FP), NaN
    when nothing was answered yes or left unparsed on a negative; recall = tp / (tp + fn), NaN with no
    positives; f1 = 2tp / (2tp + FP + fn), 0 (not NaN) when tp = 0 and anything else is there, NaN only with no
    positives and FP = 0; accuracy = (tp + tn) / n; unparsed_rate = unparsed / n. These equal the usual
    metrics of the predictions with each unparsed answer replaced by the wrong label.
    """
    c = binary_counts(gold, pred, weights)
    tp, fn, tn, n = c["tp"], c["fn"], c["tn"], c["n"]
    fp = c["fp"] + c["unparsed_neg"]
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, n),
        "unparsed_rate": _ratio(c["unparsed"], n),
        "n": n,
    }


def auroc(gold: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> float | np.ndarray:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

    The Mann–Whitney U over all (positive, negative) pairs, each pair weighted by the product of its items'
    weights, so integer weights give exactly the AUROC of the data with items repeated. NaN when a class is
    absent (or has zero weight). One sort serves every replicate; the per-replicate work is a cumulative sum.
    Shapes: weights None or [n] → float; [r, n] → [r].
    """
    gold, score = np.asarray(gold, dtype=bool), np.asarray(score, dtype=np.float64)
    if gold.shape != score.shape or gold.ndim != 1:
        raise ShardkitError(f"gold has shape {gold.shape} and score {score.shape}; expected two equal 1-d arrays")
    if np.isnan(score).any():
        raise ShardkitError(f"score has {int(np.isnan(score).sum())} NaN values; AUROC needs a score for every item")
    weights = _check_weights(weights, len(gold))
    w = np.ones((1, len(gold))) if weights is None else np.atleast_2d(weights)  # [r, n]
    order = np.argsort(score, kind="stable")
    s, pos = score[order], gold[order]
    w = w[:, order]  # [r, n], items by ascending score
    new = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, dtype=bool)
    group = np.cumsum(new) - 1  # [n] tie group of each sorted item
    starts = np.flatnonzero(new)  # [g] first sorted index of each group
    ends = np.r_[starts[1:], len(s)]  # [g] one past the last
    neg_cum = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w * ~pos, axis=1)], axis=1)  # [r, n + 1]
    pg = group[pos]  # [n_pos]
    below = neg_cum[:, starts[pg]]  # [r, n_pos] negative weight strictly below each positive
    tied = neg_cum[:, ends[pg]] - below  # [r, n_pos] negative weight tied with it
    u = (w[:, pos] * (below + 0.5 * tied)).sum(axis=1)  # [r]
    out = _ratio(u, w[:, pos].sum(axis=1) * w[:, ~pos].sum(axis=1))
    return float(out[0]) if weights is None or weights.ndim == 1 else out


def _cluster_counts(cluster: np.ndarray, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw counts [n_boot, k] of k clusters resampled with replacement, and each item's cluster index [n]."""
    cluster = np.asarray(cluster)
    if cluster.ndim != 1:
        raise ShardkitError(f"cluster has shape {cluster.shape}; expected one clip index per item")
    if n_boot < 1:
        raise ShardkitError(f"n_boot={n_boot}; use at least 1 replicate (1000 for reported intervals)")
    _, inverse = np.unique(cluster, return_inverse=True)
    k = int(inverse.max()) + 1 if len(inverse) else 0
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot) if k else np.zeros((n_boot, 0), dtype=np.int64)
    return counts, inverse


def cluster_weights(cluster: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Item weights [n_boot, n] of a clip-clustered bootstrap: how often each item's clip was drawn.

    The same (cluster, n_boot, seed) gives the same weights as `cluster_bootstrap` and `paired_bootstrap_diff` use.
    """
    counts, inverse = _cluster_counts(cluster, n_boot, seed)
    return counts[:, inverse].astype(np.float64)


def _replicates(fn: MetricFn, datas: list[Data], cluster: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """fn on each data under the same clustered resamples, in blocks of replicates to bound memory."""
    counts, inverse = _cluster_counts(cluster, n_boot, seed)
    for data in datas:
        for key, arr in data.items():
            if len(arr) != len(inverse):
                raise ShardkitError(f"data[{key!r}] has {len(arr)} items but cluster has {len(inverse)}")
    step = max(1, _CHUNK // max(1, len(inverse)))
    out: list[list[np.ndarray]] = [[] for _ in datas]
    for lo in range(0, n_boot, step):
        w = counts[lo:lo + step][:, inverse].astype(np.float64)  # [block, n]
        for vals, data in zip(out, datas, strict=True):
            v = np.asarray(fn(data, w), dtype=np.float64)
            if v.shape != (len(w),):
                raise ShardkitError(f"metric function returned shape {v.shape} for weights {w.shape}; "
                                    f"expected ({len(w)},)")
            vals.append(v)
    return [np.concatenate(v) for v in out]


def _percentile_ci(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval over the replicates where the metric is defined.

    If more than alpha/2 of the replicates are undefined (NaN, e.g. no positives drawn), both bounds are NaN:
    dropped replicates that many could make up a whole tail, so the interval would not mean what it says.
    """
    bad = np.isnan(values)
    if bad.mean() > alpha / 2:
        logger.debug("metric undefined in %d of %d replicates; CI set to NaN", bad.sum(), len(values))
        return float("nan"), float("nan")
    lo, hi = np.quantile(values[~bad], [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ShardkitError(f"alpha={alpha}; expected a level between 0 and 1 (0.05 for a 95% interval)")


def cluster_bootstrap(fn: MetricFn, data: Data, cluster: np.ndarray, n_boot: int = 1000, seed: int = 0,
                      alpha: float = 0.05) -> tuple[float, float]:
    """Percentile (1 − alpha) CI of fn(data) when clips are resampled with replacement.

    `fn(data, weights)` must accept weights [r, n] and return [r]; NaN bounds where the metric is undefined
    in more than alpha/2 of the replicates (or in the data itself).
    """
    _check_alpha(alpha)
    if np.isnan(fn(data, None)):
        return float("nan"), float("nan")
    (vals,) = _replicates(fn, [data], cluster, n_boot, seed)
    return _percentile_ci(vals, alpha)


def paired_bootstrap_diff(fn: MetricFn, data_a: Data, data_b: Data, cluster: np.ndarray, n_boot: int = 1000,
                          seed: int = 0, alpha: float = 0.05) -> dict:
    """fn(B) − fn(A) with a percentile CI, both conditions resampled with the same clip draws.

    Items are paired by position (same item, same clip in A and B). Returns {"diff", "lo", "hi", "p", "se", "mde"}:
    p the two-sided bootstrap p of the difference (`bootstrap_p`), se the replicates' standard deviation and mde
    the minimum difference detectable at 80% power (`mde_normal`); NaN when A and B never differ in any replicate
    (as `mcnemar_mde` without discordance: a design with no variance has no power to judge by, not a power of 0).
    """
    _check_alpha(alpha)
    diff = float(fn(data_b, None) - fn(data_a, None))
    if np.isnan(diff):
        return {"diff": diff, "lo": float("nan"), "hi": float("nan"), "p": float("nan"), "se": float("nan"),
                "mde": float("nan")}
    a, b = _replicates(fn, [data_a, data_b], cluster, n_boot, seed)
    lo, hi = _percentile_ci(b - a, alpha)
    d = (b - a)[~np.isnan(b - a)]
    se = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
    mde = mde_normal(se, alpha) if se > 0 else float("nan")
    return {"diff": diff, "lo": lo, "hi": hi, "p": bootstrap_p(b - a), "se": se, "mde": mde}


def mde_normal(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable difference of an estimate with standard error `se`: (z_{1-α/2} + z_power) · se, the
    smallest true difference a two-sided test at `alpha` finds with probability `power` (2.80 · se by default)."""
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se)


def mcnemar_mde(n: int, discordant: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable accuracy difference |p10 − p01| of a McNemar test on `n` pairs, given the observed share
    of discordant pairs ψ = discordant / n (Connor 1987's normal approximation, solved for the difference):
    n·δ² = (z_{1-α/2}·√ψ + z_power·√(ψ − δ²))². NaN when no pair is discordant (the design has no variance to
    judge by) or when even δ = ψ (every discordant pair one way) would not be detected."""
    if n < 1 or discordant < 1:
        return float("nan")
    psi, za, zb = discordant / n, norm.ppf(1 - alpha / 2), norm.ppf(power)

    def gap(delta: float) -> float:
        return n * delta ** 2 - (za * np.sqrt(psi) + zb * np.sqrt(max(psi - delta ** 2, 0.0))) ** 2

    return float(brentq(gap, 0.0, psi)) if gap(psi) > 0 else float("nan")


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test on paired correctness: two-sided binomial p of b vs c discordant pairs.

    b = right_to_wrong (A right, B wrong), c = wrong_to_right (A wrong, B right); p = 1.0 with no discordant
    pairs. Items are paired by position.
    """
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1:
        raise ShardkitError(f"correct_a has shape {a.shape} and correct_b {b_.shape}; expected equal 1-d arrays")
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "right_to_wrong": b, "wrong_to_right": c, "n": len(a), "p": p}


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values in input order: step-down, made monotone, capped at 1."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ShardkitError(f"holm needs a list of p-values in [0, 1], got {list(pvalues)!r}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out.tolist()


def balanced_mean(x: np.ndarray, group: np.ndarray, weights: np.ndarray | None = None) -> float | np.ndarray:
    """Mean over groups of each group's mean: class-balanced accuracy when x is correctness and group the class.

    A constant answer then scores 1/k with k classes, however unequal their sizes. Groups with no weight in a
    replicate are left out of that replicate's mean. Shapes: weights None or [n] → float; [r, n] → [r].
    """
    x = np.asarray(x, dtype=np.float64)
    _, g = np.unique(np.asarray(group), return_inverse=True)
    onehot = np.eye(int(g.max()) + 1 if len(g) else 0)[g]  # [n, k]
    weights = _check_weights(weights, len(x))
    w = np.ones((1, len(x))) if weights is None else np.atleast_2d(weights)  # [r, n]
    num, den = (w * x) @ onehot, w @ onehot  # [r, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(den > 0, num / den, np.nan)
        out = np.where((den > 0).any(axis=1), np.nansum(per, axis=1) / (den > 0).sum(axis=1), np.nan)  # [r]
    return float(out[0]) if weights is None or weights.ndim == 1 else out


def signflip_exact(correct_a: np.ndarray, correct_b: np.ndarray, item_weights: np.ndarray | None = None,
                   n_draws: int = 200_000, seed: int = 0) -> dict:
    """Paired test of a weighted accuracy difference: under H0 each discordant item is equally likely to favour
    A or B, so the statistic sum(w · (b − a)) is compared with its sign-flip distribution, two-sided.

    With equal weights this is the exact McNemar test (the same p as `mcnemar_exact`); with class-balancing weights
    (1 / class size) it tests the class-balanced accuracy. Exact enumeration for up to 20 discordant items, else
    `n_draws` seeded random flips (p = (1 + hits) / (1 + draws)). Returns {"b", "c", "right_to_wrong",
    "wrong_to_right", "n", "p", "method"}.
    """
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape or a.ndim != 1:
        raise ShardkitError(f"correct_a has shape {a.shape} and correct_b {b_.shape}; expected equal 1-d arrays")
    w = np.ones(len(a)) if item_weights is None else np.asarray(item_weights, dtype=np.float64)
    if w.shape != a.shape:
        raise ShardkitError(f"item_weights has shape {w.shape}; expected {a.shape}")
    d = b_.astype(float) - a.astype(float)
    disc = d != 0
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    out = {"b": b, "c": c, "right_to_wrong": b, "wrong_to_right": c, "n": len(a)}
    if not disc.any():
        return {**out, "p": 1.0, "method": "sign-flip"}
    wd = w[disc] * d[disc]  # [m]
    observed = abs(wd.sum()) - 1e-12 * np.abs(wd).sum()  # ties with the observed value count as extreme
    m = len(wd)
    if m <= 20:
        signs = 1 - 2 * ((np.arange(2**m)[:, None] >> np.arange(m)) & 1)  # [2^m, m], every sign pattern
        p = float((np.abs(signs @ np.abs(wd)) >= observed).mean())
        return {**out, "p": min(1.0, p), "method": "sign-flip, exact"}
    rng = np.random.default_rng(seed)
    hits = 0
    for lo in range(0, n_draws, 20_000):
        signs = rng.choice((-1.0, 1.0), size=(min(20_000, n_draws - lo), m))
        hits += int((np.abs(signs @ np.abs(wd)) >= observed).sum())
    return {**out, "p": min(1.0, (1 + hits) / (1 + n_draws)), "method": f"sign-flip, {n_draws} draws"}


def bootstrap_p(diffs: np.ndarray) -> float:
    """Two-sided p of a paired bootstrap difference: twice the smaller share of replicates on either side of 0,
    counted as (1 + k) / (1 + r) so that r replicates can never claim p = 0 (the least is 2 / (1 + r))."""
    diffs = np.asarray(diffs, dtype=np.float64)
    diffs = diffs[~np.isnan(diffs)]
    if not len(diffs):
        return float("nan")
    k = min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))
    return float(min(1.0, 2 * (1 + k) / (1 + len(diffs))))
