"""Model-free baselines: what SHARD's yes/no items give away without audio and without the word.

A benchmark is only as good as the shortcuts it closes. Each baseline here scores an item from its candidate
alone, with no parameter fitted on anything but (for the prior) the items themselves, so it bounds what a model
could get from the candidate: how general it is (WordNet depth of its first noun sense), how short it is, and
how often it is a "yes" in this very build (the in-sample prior, an upper bound for any candidate-only predictor).
AUROC 0.5 means the candidate tells nothing. The evaluation reports these beside every score, with CIs.
"""

from collections import Counter

import numpy as np

from shardkit.names import YES_NO
from shardkit.stats import auroc


def candidate_prior(items: list[dict]) -> np.ndarray:
    """P(yes | task, candidate) over the items themselves (in-sample): one score per item."""
    yes, seen = Counter(), Counter()
    for i in items:
        key = (i["task"], i["candidate"].lower())
        seen[key] += 1
        yes[key] += i["answer"] == "yes"
    return np.array([yes[(i["task"], i["candidate"].lower())] / seen[(i["task"], i["candidate"].lower())]
                     for i in items])


def generality(items: list[dict]) -> np.ndarray:
    """Minus the WordNet depth of the candidate's first noun sense: general candidates ("animal") score high."""
    from shardkit.benchmark.relations import noun_senses

    return np.array([-(s[0].min_depth() if (s := noun_senses(i["candidate"])) else 20) for i in items], dtype=float)


def shortness(items: list[dict]) -> np.ndarray:
    """Minus the candidate's length in characters: short, common words score high."""
    return np.array([-len(i["candidate"]) for i in items], dtype=float)


CANDIDATE_ONLY = {"prior": candidate_prior, "generality": generality, "shortness": shortness}


def candidate_only(items: list[dict]) -> dict[str, dict[str, float]]:
    """AUROC of each candidate-only baseline per yes/no task: {task: {baseline: auroc}}."""
    out = {}
    for task in YES_NO:
        its = [i for i in items if i["task"] == task]
        gold = np.array([i["answer"] == "yes" for i in its])
        out[task] = {name: auroc(gold, fn(its)) for name, fn in CANDIDATE_ONLY.items()} if its else {}
    return out
