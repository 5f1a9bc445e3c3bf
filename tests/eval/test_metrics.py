import math

import numpy as np
import pytest

from shardkit.errors import ShardkitError
from shardkit.eval.metrics import (
    METRICS,
    Metric,
    apply_holm,
    breakdown,
    compare,
    conditioned_on_identity,
    register,
    summarise,
)
from shardkit.stats import binary_metrics, holm

NAN = float("nan")


def _yes_no(seed: int = 0, n_clips: int = 40, per_clip: int = 5, score: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clips), per_clip)
    gold = rng.random(len(cluster)) < 0.5
    s = np.where(gold, 1.0, -1.0) + rng.normal(0, 1, len(cluster))
    pred = (s > 0).astype(float)
    pred[rng.random(len(cluster)) < 0.05] = NAN
    data = {"gold": gold, "pred": pred, "cluster": cluster}
    if score:
        data["score"] = s
    return data


def test_table_states_direction():
    assert {n: m.higher_is_better for n, m in METRICS.items()} == {
        "precision": True, "recall": True, "f1": True, "accuracy": True, "unparsed_rate": False, "auroc": True,
        "identity_accuracy": True, "identity_accuracy_balanced": True,
    }
    with pytest.raises(ValueError, match="already registered"):
        register(Metric("f1", METRICS["f1"].fn, True, "yes_no", ("gold", "pred")))


def test_summarise_yes_no_excludes_errors_but_keeps_unparsed():
    d = _yes_no()
    d["error"] = np.zeros(len(d["gold"]), dtype=bool)
    d["error"][:7] = True
    s = summarise("synonym", d, n_boot=200, seed=0)
    kept = ~d["error"]
    ref = binary_metrics(d["gold"][kept], d["pred"][kept])
    assert (s["n"], s["n_error"], s["n_clips"]) == (193, 7, 39)  # clip 0's five items and two of clip 1 out
    for name in ("precision", "recall", "f1", "accuracy", "unparsed_rate"):
        assert s[name]["value"] == ref[name]
        lo, hi = s[name]["ci"]
        assert lo <= s[name]["value"] <= hi
    assert s["unparsed_rate"]["value"] > 0 and s["unparsed_rate"]["higher_is_better"] is False
    assert 0.5 < s["auroc"]["value"] <= 1 and s["auroc"]["higher_is_better"] is True
    assert summarise("synonym", d, n_boot=200, seed=0) == s  # seeded
    assert "auroc" not in summarise("hypernym", _yes_no(score=False), n_boot=20)


def test_summarise_identity_adds_one_metric_per_correct_key():
    correct = np.array([1, 0, 1, 1, 0, 1], dtype=bool)
    d = {"correct": correct, "correct_embedding": ~correct, "cluster": np.arange(6),
         "error": np.array([0, 0, 0, 0, 0, 1], dtype=bool)}
    s = summarise("identity", d, n_boot=50)
    assert s["n"] == 5 and s["n_error"] == 1
    assert s["identity_accuracy"]["value"] == pytest.approx(3 / 5)
    assert s["identity_accuracy_embedding"]["value"] == pytest.approx(2 / 5)
    assert "f1" not in s


def test_user_errors_are_one_line_with_suggestions():
    d = _yes_no()
    with pytest.raises(ShardkitError, match="did you mean hypernym"):
        summarise("hypernim", d)
    with pytest.raises(ShardkitError, match="lacks gold"):
        summarise("synonym", {"pred": d["pred"], "cluster": d["cluster"]})
    with pytest.raises(ShardkitError, match="did you mean accuracy"):
        summarise("synonym", d, metrics=("acuracy",))
    with pytest.raises(ShardkitError, match="needs data keys gold, score"):
        summarise("synonym", _yes_no(score=False), metrics=("auroc",))
    with pytest.raises(ShardkitError, match="one value per item"):
        summarise("synonym", dict(d, pred=d["pred"][:-1]))


def test_breakdown_by_negative_kind_covers_negatives_only():
    gold = np.array([1, 1, 0, 0, 0, 0, 0], dtype=bool)
    pred = np.array([1, 0, 0, 1, NAN, 0, 0], dtype=float)
    kind = np.array([None, "", "hard", "hard", "hard", "random", "random"], dtype=object)
    d = {"gold": gold, "pred": pred, "cluster": np.array([0, 0, 1, 1, 2, 3, 4])}
    b = breakdown(d, kind, "synonym", n_boot=50, metrics=("accuracy", "unparsed_rate"))
    assert list(b) == ["hard", "random"]
    assert b["hard"]["n"] == 3 and b["hard"]["accuracy"]["value"] == pytest.approx(1 / 3)  # unparsed is wrong
    assert b["hard"]["unparsed_rate"]["value"] == pytest.approx(1 / 3)
    assert b["random"]["accuracy"]["value"] == 1.0 and set(b["random"]) == {"n", "n_error", "n_clips", "accuracy",
                                                                           "unparsed_rate"}


def test_breakdown_by_integer_depth():
    d = _yes_no()
    depth = np.where(d["gold"], np.arange(len(d["gold"])) % 3 + 1, -1).astype(object)
    depth[~d["gold"]] = None
    b = breakdown(d, depth, "hypernym", n_boot=20, metrics=("recall",))
    assert list(b) == [1, 2, 3] and all(isinstance(k, int) for k in b)
    assert sum(v["n"] for v in b.values()) == d["gold"].sum()


def test_conditioned_on_identity():
    reasoning = np.array([1, 1, 0, 0, 1, 0, 1], dtype=bool)
    clip = np.array([0, 0, 1, 1, 2, 2, 3])
    r = conditioned_on_identity(reasoning, clip, {0: True, 1: False, 2: True}, n_boot=50)
    assert r["identified"]["n"] == 4 and r["identified"]["accuracy"] == pytest.approx(3 / 4)
    assert r["identified"]["n_clips"] == 2
    assert r["not_identified"]["n"] == 2 and r["not_identified"]["accuracy"] == 0.0
    assert r["n_unknown"] == 1  # clip 3 has no identity result
    same = conditioned_on_identity(reasoning, clip, np.array([True, False, True]), n_boot=50)
    assert same["identified"]["accuracy"] == r["identified"]["accuracy"] and same["n_unknown"] == 1


def test_compare_paired_diff_mcnemar_and_errors():
    a = _yes_no(seed=1)
    b = dict(a, pred=a["gold"].astype(float))  # B always right
    b["pred"][:3] = 1 - a["gold"][:3]  # ...except three items
    a["error"] = np.zeros(len(a["gold"]), dtype=bool)
    a["error"][-1] = True  # an error in either condition removes the item from both
    c = compare(a, b, "synonym", n_boot=200, seed=0)
    keep = slice(0, -1)
    acc = lambda d: binary_metrics(d["gold"][keep], d["pred"][keep])["accuracy"]  # noqa: E731
    assert c["n"] == len(a["gold"]) - 1 and c["n_error"] == 1
    assert c["accuracy"]["diff"] == pytest.approx(acc(b) - acc(a))
    assert c["accuracy"]["ci"][0] <= c["accuracy"]["diff"] <= c["accuracy"]["ci"][1]
    right_a = (a["pred"] == a["gold"])[keep]
    right_b = (b["pred"] == b["gold"])[keep]
    m = c["mcnemar"]
    assert m["right_to_wrong"] == (right_a & ~right_b).sum() and m["wrong_to_right"] == (~right_a & right_b).sum()
    assert c["unparsed_rate"]["diff"] < 0 and c["unparsed_rate"]["higher_is_better"] is False


def test_compare_refuses_unaligned_items():
    a = _yes_no()
    with pytest.raises(ShardkitError, match="same items"):
        compare(a, dict(a, cluster=a["cluster"][::-1]), "synonym", n_boot=10)
    with pytest.raises(ShardkitError, match="gold"):
        compare(a, dict(a, gold=~a["gold"]), "synonym", n_boot=10)


def test_apply_holm_adds_adjusted_p_to_each_mcnemar():
    base = _yes_no(seed=3)
    comps = []
    for flips in (0, 4, 12):
        b = dict(base, pred=base["pred"].copy())
        b["pred"][:flips] = base["gold"][:flips].astype(float)
        comps.append(compare(base, b, "synonym", n_boot=10))
    apply_holm(comps)
    assert [c["mcnemar"]["p_holm"] for c in comps] == holm([c["mcnemar"]["p"] for c in comps])
    assert comps[0]["mcnemar"]["p_holm"] == 1.0 and not math.isnan(comps[2]["mcnemar"]["p_holm"])
