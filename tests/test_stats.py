import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from shardkit import stats
from shardkit.errors import ShardkitError
from shardkit.stats import (
    auroc,
    binary_counts,
    binary_metrics,
    cluster_bootstrap,
    cluster_weights,
    holm,
    mcnemar_exact,
    paired_bootstrap_diff,
    weighted_mean,
)

NAN = float("nan")


def _brute_auroc(gold, score) -> float:
    pos, neg = score[gold], score[~gold]
    if not len(pos) or not len(neg):
        return NAN
    u = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return u / (len(pos) * len(neg))


def _realistic(seed: int = 0, n_clips: int = 300, per_clip: int = 10):
    """n_clips clips × per_clip items; a clip-level effect makes items of one clip alike, ~3% unparsed."""
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clips), per_clip)
    gold = rng.random(len(cluster)) < 0.5
    clip_skill = rng.normal(1.5, 1.0, n_clips)[cluster]
    score = np.where(gold, 1, -1) * clip_skill + rng.normal(0, 1, len(cluster))
    pred = (score > 0).astype(float)
    pred[rng.random(len(cluster)) < 0.03] = NAN
    return {"gold": gold, "pred": pred, "score": score, "cluster": cluster}


def _f1(data, weights=None):
    return binary_metrics(data["gold"], data["pred"], weights)["f1"]


def _acc(data, weights=None):
    return binary_metrics(data["gold"], data["pred"], weights)["accuracy"]


def _recall(data, weights=None):
    return binary_metrics(data["gold"], data["pred"], weights)["recall"]


def _auc(data, weights=None):
    return auroc(data["gold"], data["score"], weights)


# --- binary metrics -------------------------------------------------------------------------------------------

def test_six_item_table_with_one_unparsed():
    gold = np.array([True, True, True, False, False, False])
    pred = np.array([1.0, 0.0, NAN, 1.0, 0.0, 0.0])
    c = binary_counts(gold, pred)
    assert (c["tp"], c["fp"], c["fn"], c["tn"], c["unparsed"], c["n"]) == (1, 1, 2, 2, 1, 6)
    assert (c["unparsed_pos"], c["unparsed_neg"]) == (1, 0)  # the unparsed positive is already in fn
    m = binary_metrics(gold, pred)
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["recall"] == pytest.approx(1 / 3)  # the unparsed positive is not recalled
    assert m["f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))  # 0.4
    assert m["accuracy"] == pytest.approx(3 / 6)  # the unparsed answer is wrong
    assert m["unparsed_rate"] == pytest.approx(1 / 6)


def test_unparsed_negative_is_a_false_positive_never_credited():
    # "yes" on every positive and no parse on every negative used to score P = R = F1 = 1.0 (issue finding 5).
    gold = np.array([True, True, False, False])
    pred = np.array([1.0, 1.0, NAN, NAN])
    c = binary_counts(gold, pred)
    assert (c["tp"], c["fp"], c["fn"], c["tn"], c["unparsed_pos"], c["unparsed_neg"]) == (2, 0, 0, 0, 0, 2)
    m = binary_metrics(gold, pred)
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["recall"] == 1.0
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(1 / 2)
    m = binary_metrics(np.array([True, False, False]), np.array([1.0, 0.0, NAN]))
    assert (m["precision"], m["recall"]) == (1 / 2, 1.0)
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(2 / 3)


def test_no_yes_answers_precision_nan_f1_zero():
    m = binary_metrics(np.array([True, False]), np.array([0.0, 0.0]))
    assert math.isnan(m["precision"]) and m["recall"] == 0.0 and m["f1"] == 0.0
    m = binary_metrics(np.array([True, False]), np.array([0.0, NAN]))  # the unparsed negative is a false positive
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    m = binary_metrics(np.array([False, False]), np.array([0.0, 0.0]))
    assert math.isnan(m["precision"]) and math.isnan(m["recall"]) and math.isnan(m["f1"])
    assert m["accuracy"] == 1.0


def test_pred_outside_yes_no_nan_is_an_error():
    with pytest.raises(ShardkitError, match="0.5"):
        binary_metrics(np.array([True]), np.array([0.5]))


def test_integer_weights_equal_repeated_items_and_rows_are_replicates():
    d = _realistic(n_clips=20, per_clip=5)
    rng = np.random.default_rng(1)
    w = rng.integers(0, 4, size=(6, len(d["gold"]))).astype(float)
    batch = binary_metrics(d["gold"], d["pred"], w)
    for r in range(len(w)):
        idx = np.repeat(np.arange(len(w[r])), w[r].astype(int))
        ref = binary_metrics(d["gold"][idx], d["pred"][idx])
        one = binary_metrics(d["gold"], d["pred"], w[r])
        for k in ("precision", "recall", "f1", "accuracy", "unparsed_rate"):
            assert batch[k][r] == ref[k] == one[k]


def _sklearn_binary(gold, pred, weights=None) -> dict:
    """sklearn's metrics of the predictions with each unparsed answer replaced by the wrong label."""
    y = np.where(np.isnan(pred), ~gold, pred == 1)
    kw = {"sample_weight": weights, "zero_division": np.nan}
    return {"precision": precision_score(gold, y, **kw), "recall": recall_score(gold, y, **kw),
            "f1": f1_score(gold, y, **kw), "accuracy": accuracy_score(gold, y, sample_weight=weights)}


def _random_table(seed: int, unparsed: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.random(80) < 0.4
    pred = (rng.random(80) < np.where(gold, 0.7, 0.3)).astype(float)
    pred[rng.random(80) < unparsed] = NAN
    return gold, pred, rng.integers(0, 4, size=(3, 80)).astype(float)  # weights with zeros


@pytest.mark.parametrize("unparsed", [0.0, 0.15, 0.6])
@pytest.mark.parametrize("seed", range(4))
def test_binary_metrics_equal_sklearn_with_unparsed_as_the_wrong_label(seed, unparsed):
    gold, pred, w = _random_table(seed, unparsed)
    assert (np.isnan(pred).any() and np.isnan(pred[~gold]).any()) == (unparsed > 0)
    batch = binary_metrics(gold, pred, w)
    for weights in (None, *w):
        ours, ref = binary_metrics(gold, pred, weights), _sklearn_binary(gold, pred, weights)
        for k, v in ref.items():
            assert ours[k] == pytest.approx(v, abs=1e-12), k
    for r in range(len(w)):
        for k, v in _sklearn_binary(gold, pred, w[r]).items():
            assert batch[k][r] == pytest.approx(v, abs=1e-12), k


@pytest.mark.parametrize(("gold", "pred"), [
    ([True, False], [0.0, NAN]),  # tp = 0, the only "yes" is an unparsed negative: P = R = F1 = 0
    ([False, False], [NAN, 0.0]),  # no positives: recall NaN, F1 0 (an error was made), precision 0
    ([False, False], [0.0, 0.0]),  # nothing to count: P, R, F1 NaN
    ([True, True], [NAN, NAN]),  # every positive unparsed: P NaN, R = F1 = 0
])
def test_binary_metrics_equal_sklearn_at_zero_denominators(gold, pred):
    gold, pred = np.array(gold), np.array(pred)
    ours, ref = binary_metrics(gold, pred), _sklearn_binary(gold, pred)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v, nan_ok=True), k


# --- AUROC ----------------------------------------------------------------------------------------------------

def test_auroc_hand_case_with_tie():
    gold = np.array([True, True, False, False])
    score = np.array([0.9, 0.5, 0.5, 0.1])
    assert auroc(gold, score) == 3.5 / 4


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_brute_force_pairs_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    gold = rng.random(60) < 0.4
    score = rng.integers(0, 5, 60).astype(float)  # five levels: ties everywhere
    assert auroc(gold, score) == pytest.approx(_brute_auroc(gold, score), abs=1e-15)


def test_auroc_weighted_equals_repeated_and_nan_without_a_class():
    rng = np.random.default_rng(3)
    gold, score = rng.random(30) < 0.5, rng.integers(0, 4, 30).astype(float)
    w = rng.integers(0, 3, size=(4, 30)).astype(float)
    batch = auroc(gold, score, w)
    for r in range(4):
        idx = np.repeat(np.arange(30), w[r].astype(int))
        assert batch[r] == _brute_auroc(gold[idx], score[idx])
    assert math.isnan(auroc(np.array([True, True]), np.array([0.1, 0.2])))
    with pytest.raises(ShardkitError, match="NaN"):
        auroc(np.array([True, False]), np.array([0.1, NAN]))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_sklearn_with_ties_and_integer_weights(seed):
    rng = np.random.default_rng(seed)
    gold, score = rng.random(70) < 0.4, rng.integers(0, 6, 70).astype(float)  # six levels: ties everywhere
    w = rng.integers(0, 4, size=(3, 70)).astype(float)
    assert auroc(gold, score) == pytest.approx(roc_auc_score(gold, score), abs=1e-12)
    batch = auroc(gold, score, w)
    for r in range(len(w)):
        ref = roc_auc_score(gold, score, sample_weight=w[r])
        assert auroc(gold, score, w[r]) == pytest.approx(ref, abs=1e-12)
        assert batch[r] == pytest.approx(ref, abs=1e-12)


# --- McNemar and Holm -----------------------------------------------------------------------------------------

def test_mcnemar_against_hand_binomial():
    # 7 items A right → B wrong, 1 item A wrong → B right, 5 both right, 3 both wrong.
    a = np.array([1] * 7 + [0] + [1] * 5 + [0] * 3, dtype=bool)
    b = np.array([0] * 7 + [1] + [1] * 5 + [0] * 3, dtype=bool)
    r = mcnemar_exact(a, b)
    assert (r["b"], r["c"], r["right_to_wrong"], r["wrong_to_right"], r["n"]) == (7, 1, 7, 1, 16)
    assert r["p"] == pytest.approx(2 * (1 + 8) / 2**8)  # two-sided: 2 · P(X ≤ 1), X ~ Bin(8, 1/2)
    assert mcnemar_exact(a, a)["p"] == 1.0


def test_holm_hand_example_and_cap():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([]) == []
    with pytest.raises(ShardkitError):
        holm([0.1, NAN])


# Fixtures from statsmodels 0.15.0 (numpy 2.4.6, scipy 1.17.1), computed outside the repo:
#   statsmodels.stats.contingency_tables.mcnemar(table, exact=True).pvalue with
#   table = [[both right, A right B wrong], [A wrong B right, both wrong]] from the arrays below, and
#   statsmodels.stats.multitest.multipletests(p, method="holm")[1].
MCNEMAR_STATSMODELS = [  # (A correct, B correct, table, p)
    ("1111111011111000", "0000000111111000", [[5, 7], [1, 3]], 0.0703125),
    ("110100", "110100", [[3, 0], [0, 3]], 1.0),
    ("101101100110", "011100101011", [[4, 3], [3, 2]], 1.0),
    ("0010110011100111100101", "1111110111110111111101", [[12, 0], [7, 3]], 0.015625),
    ("11111111111111010110100010", "01000101100001010110101010", [[10, 9], [1, 6]], 0.021484375),
]
HOLM_STATSMODELS = [  # (p, adjusted)
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
    ([0.02, 0.02, 0.5, 0.001], [0.06, 0.06, 0.5, 0.004]),
    ([0.001, 0.013, 0.0125, 0.9, 0.04], [0.005, 0.05, 0.05, 0.9, 0.08]),
    ([0.3], [0.3]),
    ([0.3, 0.6, 0.2], [0.6000000000000001, 0.6000000000000001, 0.6000000000000001]),
]


@pytest.mark.parametrize(("a", "b", "table", "p"), MCNEMAR_STATSMODELS)
def test_mcnemar_equals_statsmodels_exact(a, b, table, p):
    a, b = np.array([c == "1" for c in a]), np.array([c == "1" for c in b])
    r = mcnemar_exact(a, b)
    assert (r["right_to_wrong"], r["wrong_to_right"], r["n"]) == (table[0][1], table[1][0], sum(map(sum, table)))
    assert r["p"] == pytest.approx(p, abs=1e-12)


@pytest.mark.parametrize(("p", "adjusted"), HOLM_STATSMODELS)
def test_holm_equals_statsmodels(p, adjusted):
    assert holm(p) == pytest.approx(adjusted, abs=1e-12)


# --- bootstrap ------------------------------------------------------------------------------------------------

def test_cluster_weights_move_clips_together():
    cluster = np.array([5, 5, 9, 2, 2, 2, 9])
    w = cluster_weights(cluster, n_boot=50, seed=0)
    assert w.shape == (50, 7)
    for c in np.unique(cluster):
        assert (w[:, cluster == c] == w[:, cluster == c][:, :1]).all()
    first = w[:, [0, 2, 3]]  # one item per clip
    assert (first.sum(axis=1) == 3).all()  # three clips drawn per replicate


def test_bootstrap_contains_estimate_and_is_seeded():
    d = _realistic()
    for fn in (_f1, _acc, _auc):
        lo, hi = cluster_bootstrap(fn, d, d["cluster"], n_boot=300, seed=0)
        assert lo < fn(d) < hi
        assert cluster_bootstrap(fn, d, d["cluster"], n_boot=300, seed=0) == (lo, hi)
        assert cluster_bootstrap(fn, d, d["cluster"], n_boot=300, seed=1) != (lo, hi)


def test_bootstrap_is_wider_when_items_are_clustered():
    base = _realistic(n_clips=200, per_clip=1)
    dup = {k: np.repeat(v, 5) for k, v in base.items()}  # each clip's item 5×: same point estimates
    clustered = cluster_bootstrap(_acc, dup, dup["cluster"], n_boot=500, seed=0)
    independent = cluster_bootstrap(_acc, dup, np.arange(len(dup["cluster"])), n_boot=500, seed=0)
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(clustered) > 1.8 * width(independent)  # ≈ √5 in expectation


def test_vectorised_bootstrap_equals_loop_over_replicates(monkeypatch):
    d = _realistic(seed=4, n_clips=12, per_clip=4)
    d["score"] = np.round(d["score"])  # ties
    n_boot, alpha = 200, 0.1
    w = cluster_weights(d["cluster"], n_boot, seed=7)
    for fn, ref in ((_f1, lambda g, p, s: binary_metrics(g, p)["f1"]),
                    (_acc, lambda g, p, s: binary_metrics(g, p)["accuracy"]),
                    (_auc, lambda g, p, s: _brute_auroc(g, s))):
        vals = []
        for r in range(n_boot):
            idx = np.repeat(np.arange(len(d["gold"])), w[r].astype(int))
            vals.append(ref(d["gold"][idx], d["pred"][idx], d["score"][idx]))
        vals = np.array(vals)
        assert not np.isnan(vals).any()
        expected = tuple(np.quantile(vals, [alpha / 2, 1 - alpha / 2]))
        assert cluster_bootstrap(fn, d, d["cluster"], n_boot, seed=7, alpha=alpha) == expected
        monkeypatch.setattr(stats, "_CHUNK", 7 * len(d["gold"]))  # blocks of 7 replicates: same answer
        assert cluster_bootstrap(fn, d, d["cluster"], n_boot, seed=7, alpha=alpha) == expected
        monkeypatch.undo()


def test_bootstrap_nan_when_metric_often_undefined():
    cluster = np.arange(30)
    gold = cluster == 0  # one positive clip: most replicates draw no positive, recall undefined
    d = {"gold": gold, "pred": gold.astype(float), "cluster": cluster}
    lo, hi = cluster_bootstrap(_recall, d, cluster, n_boot=200, seed=0)
    assert math.isnan(lo) and math.isnan(hi)
    d["gold"] = np.zeros(30, dtype=bool)  # undefined in the data itself
    assert all(math.isnan(x) for x in cluster_bootstrap(_recall, d, cluster, n_boot=10))


def test_paired_diff_uses_the_same_resamples():
    a = _realistic(seed=2)
    r = paired_bootstrap_diff(_acc, a, a, a["cluster"], n_boot=200, seed=0)
    mde = r.pop("mde")
    assert r == {"diff": 0.0, "lo": 0.0, "hi": 0.0, "p": 1.0, "se": 0.0} and math.isnan(mde)  # no variance: no MDE
    b = dict(a, pred=np.where(np.isnan(a["pred"]), a["gold"].astype(float), a["pred"]))  # unparsed → right
    r = paired_bootstrap_diff(_acc, a, b, a["cluster"], n_boot=200, seed=0)
    assert r["diff"] == pytest.approx(np.isnan(a["pred"]).mean())
    assert 0 < r["lo"] <= r["diff"] <= r["hi"]
    w = cluster_weights(a["cluster"], 200, seed=0)
    expected = np.quantile(_acc(b, w) - _acc(a, w), [0.025, 0.975])
    assert (r["lo"], r["hi"]) == tuple(expected)


def test_length_mismatch_is_an_error():
    d = _realistic(n_clips=5, per_clip=2)
    with pytest.raises(ShardkitError, match="cluster"):
        cluster_bootstrap(_acc, d, d["cluster"][:-1], n_boot=10)


def test_cluster_bootstrap_with_one_item_per_clip_is_the_iid_bootstrap():
    rng = np.random.default_rng(5)
    x = (rng.random(400) < 0.3).astype(float)
    ours = cluster_bootstrap(lambda d, w: weighted_mean(d["x"], w), {"x": x}, np.arange(400), n_boot=2000, seed=0)
    means = x[np.random.default_rng(99).integers(0, 400, size=(2000, 400))].mean(axis=1)
    iid = np.quantile(means, [0.025, 0.975])
    assert ours == pytest.approx(tuple(iid), abs=0.02)


def test_balanced_mean_weights_each_class_equally():
    from shardkit.stats import balanced_mean

    x = np.array([1, 1, 1, 1, 0, 0], dtype=float)
    g = np.array(["a", "a", "a", "a", "b", "c"])
    assert balanced_mean(x, g) == pytest.approx(1 / 3)
    w = np.array([[1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1], [2, 0, 0, 0, 0, 1]], dtype=float)
    np.testing.assert_allclose(balanced_mean(x, g, w), [1 / 3, 0.0, 0.5])


def test_signflip_equals_exact_mcnemar_with_equal_weights():
    from shardkit.stats import mcnemar_exact, signflip_exact

    rng = np.random.default_rng(3)
    for n_disc in (5, 12, 40):
        a = rng.random(60) < 0.5
        b = a.copy()
        flip = rng.choice(60, n_disc, replace=False)
        b[flip] = ~b[flip]
        ref = mcnemar_exact(a, b)["p"]
        got = signflip_exact(a, b)["p"]
        assert got == pytest.approx(ref, abs=1e-12 if n_disc <= 20 else 0.01), n_disc


def test_signflip_balanced_weights_tests_the_balanced_difference():
    from shardkit.stats import signflip_exact

    # 10 items of class a all improve; 2 items of class b both get worse: plain counts say 10 vs 2, but with
    # class-balanced weights the two classes move by +1 and -1: no balanced difference at all
    a = np.array([0] * 10 + [1, 1], dtype=bool)
    b = np.array([1] * 10 + [0, 0], dtype=bool)
    w = np.array([1 / 10] * 10 + [1 / 2] * 2)
    assert signflip_exact(a, b)["p"] < 0.05
    assert signflip_exact(a, b, w)["p"] == 1.0


def test_mcnemar_mde_is_the_difference_found_with_80_percent_power():
    from shardkit.stats import mcnemar_mde

    n, disc = 400, 80
    delta = mcnemar_mde(n, disc)
    psi = disc / n
    # Connor's sample size at that difference gives back n
    za, zb = 1.959964, 0.841621
    assert (za * psi ** 0.5 + zb * (psi - delta ** 2) ** 0.5) ** 2 / delta ** 2 == pytest.approx(n, rel=1e-6)
    # and the exact test, simulated at it, has about 80% power (the normal approximation is close at 80 pairs)
    rng = np.random.default_rng(0)
    p10, p01 = (psi + delta) / 2, (psi - delta) / 2
    cells = rng.multinomial(n, [p10, p01, 1 - psi], size=2000)
    power = np.mean([mcnemar_exact(np.r_[np.ones(b), np.zeros(c + r)] > 0,
                                   np.r_[np.zeros(b), np.ones(c), np.zeros(r)] > 0)["p"] < 0.05
                     for b, c, r in cells])
    assert 0.72 < power < 0.88
    assert mcnemar_mde(n, 0) != mcnemar_mde(n, 0)  # NaN: no discordance, nothing to judge by
    assert mcnemar_mde(4, 1) != mcnemar_mde(4, 1)  # NaN: not even one-way discordance would be detected
    assert mcnemar_mde(800, 160) == pytest.approx(delta / 2 ** 0.5, rel=0.02)  # shrinks as 1/sqrt(n)


def test_mde_normal_is_2_8_standard_errors():
    from shardkit.stats import mde_normal

    assert mde_normal(0.01) == pytest.approx(0.028016, abs=1e-6)
    assert mde_normal(0.01, alpha=0.05, power=0.5) == pytest.approx(0.0195996, abs=1e-6)
