"""BuildConfig: its defaults, and every problem at once in one line, made directly or through the config loader."""

import pytest

from shardkit.benchmark.config import SPLITS, BuildConfig
from shardkit.config import load_fields
from shardkit.errors import ShardkitError


def test_bad_config():
    with pytest.raises(ShardkitError, match="max_depth"):
        BuildConfig(max_depth=0)
    with pytest.raises(ShardkitError, match="split"):
        BuildConfig(split="dev")


def test_defaults_and_splits():
    assert BuildConfig() == BuildConfig(seed=0, max_depth=6, per_task=4, split="auto")
    assert SPLITS == ("auto", "test", "train", "all")
    assert [BuildConfig(split=s).split for s in SPLITS] == list(SPLITS)


def test_every_problem_in_one_line():
    with pytest.raises(ShardkitError) as e:
        BuildConfig(max_depth=0, per_task=-1, split="dev")
    assert str(e.value) == ("max_depth must be >= 1, got 0; per_task must be >= 1, got -1; "
                            "split must be auto, train, test or all, got 'dev'")


def test_loaded_config_names_unknown_keys_bad_types_and_bad_values_at_once():
    with pytest.raises(ShardkitError) as e:
        load_fields(BuildConfig, {"per_tsak": 2, "seed": "x", "max_depth": 0}, "build")
    assert str(e.value) == ("build: unknown key 'per_tsak' (did you mean 'per_task'?); seed='x': must be int; "
                            "max_depth must be >= 1, got 0")
    assert load_fields(BuildConfig, {"seed": 3, "split": "test"}, "build") == BuildConfig(seed=3, split="test")
