"""The batch plan (train/batches.py): every usable row once per epoch, lengths grouped, and a function of (seed,
epoch, lengths) alone — what exact resume and K processes ≡ 1 rest on (tested end to end in test_trainer.py)."""

import dataclasses

import numpy as np
import pytest

from shardkit.train.batches import make_plan
from shardkit.train.config import TrainConfig


def _lengths(n: int = 1000) -> np.ndarray:
    """Two humps, as text-only questions (about 30 tokens) beside audio ones (about 65)."""
    rng = np.random.default_rng(7)
    return np.where(rng.random(n) < 0.7, rng.integers(24, 40, n), rng.integers(49, 75, n))


@pytest.mark.parametrize("world", [1, 2])
def test_grouped_plan_reads_every_usable_row_once_per_epoch_in_similar_lengths(world):
    lengths = _lengths()
    c = TrainConfig(batch_size=4, grad_accum=2, epochs=2, seed=3)
    plan, plain = make_plan(c, 1000, world, lengths), make_plan(c, 1000, world)
    for epoch in (0, 1):
        rows = np.concatenate([plan.global_rows(s) for s in range(epoch * plan.steps_per_epoch,
                                                                  (epoch + 1) * plan.steps_per_epoch)])
        usable = plain.order(epoch)[:plan.steps_per_epoch * plan.global_batch]  # the same rows as plain batches
        assert sorted(rows.tolist()) == sorted(usable.tolist())
    assert plain.padding(lengths) > 0.2 and plan.padding(lengths) < 0.05, (plain.padding(lengths),
                                                                            plan.padding(lengths))
    first = [plan.global_rows(s)[0] for s in range(plan.steps_per_epoch)]
    assert np.corrcoef(np.arange(len(first)), lengths[first])[0, 1] ** 2 < 0.1  # batch order not sorted by length


def test_plan_is_a_function_of_seed_epoch_and_lengths_alone():
    lengths = _lengths()
    c = TrainConfig(batch_size=8, max_steps=300, seed=5)
    a, b = make_plan(c, 1000, 1, lengths), make_plan(c, 1000, 1, lengths.copy())
    assert all(np.array_equal(a.global_rows(s), b.global_rows(s)) for s in (0, 7, 124, 125, 299))
    assert not np.array_equal(a.global_rows(0), make_plan(dataclasses.replace(c, seed=6), 1000, 1,
                                                          lengths).global_rows(0))
    two = make_plan(dataclasses.replace(c, batch_size=4), 1000, 2, lengths)  # the same global batch of 8
    assert all(np.array_equal(a.global_rows(s), two.global_rows(s)) for s in (0, 200))
    off = make_plan(dataclasses.replace(c, group_by_length=False), 1000, 1, lengths)  # LTU's plain batches
    assert np.array_equal(off.order(1), np.random.default_rng([5, 1]).permutation(1000))
