import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from shardkit.benchmark.baselines import candidate_only, candidate_prior, generality, shortness
from shardkit.stats import auroc


def _item(task, candidate, answer):
    return {"task": task, "candidate": candidate, "answer": answer}


def test_auroc_matches_sklearn():
    rng = np.random.default_rng(0)
    gold = rng.random(200) < 0.4
    score = rng.integers(0, 5, 200).astype(float)  # many ties
    assert auroc(gold, score) == pytest.approx(roc_auc_score(gold, score), abs=1e-12)
    assert np.isnan(auroc(np.ones(3, bool), np.arange(3.0)))


def test_baselines_see_a_generality_shortcut():
    """Drawn the old way (yes candidates general, no candidates specific), every baseline finds the answers."""
    items = [_item("hypernym", c, "yes") for c in ("animal", "organism", "device", "artifact")] + \
            [_item("hypernym", c, "no") for c in ("cetacean", "anseriform bird", "keyboard instrument", "sousaphone")]
    gold = np.array([i["answer"] == "yes" for i in items])
    assert auroc(gold, generality(items)) == 1.0
    assert auroc(gold, shortness(items)) > 0.9
    assert auroc(gold, candidate_prior(items)) == 1.0


def test_a_balanced_set_leaves_every_candidate_only_baseline_at_chance():
    items = [_item("hypernym", c, a) for c in ("animal", "device", "keyboard instrument") for a in ("yes", "no")]
    result = candidate_only(items)["hypernym"]
    assert result == {"prior": 0.5, "generality": 0.5, "shortness": 0.5}


def test_bundled_shard_gives_nothing_away(shard):
    """Done-when of the review: candidate-only AUROC ≤ 0.55 on the bundled SHARD (in-sample prior: an upper bound)."""
    meta = shard[1]
    for task in ("synonym", "hypernym"):
        for name, value in meta["candidate_only"][task].items():
            assert value <= 0.55, (task, name, value)
