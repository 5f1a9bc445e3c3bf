import os
from pathlib import Path

import pytest

# Offline always; derived resources go to the checkout's .cache (git-ignored), shared with `make demo`.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("SHARDKIT_CACHE", str(Path(__file__).resolve().parents[1] / ".cache"))


@pytest.fixture(scope="session")
def onto():
    from shardkit.resources.ontology import ontology

    return ontology()


@pytest.fixture(scope="session")
def wn():
    from shardkit.resources.wordnet import wordnet

    return wordnet()


@pytest.fixture(scope="session")
def senses(onto):
    from shardkit.benchmark.senses import load_senses

    return load_senses(onto)


@pytest.fixture(scope="session")
def shard(tmp_path_factory):
    """SHARD built once from the bundled sample audio with the default config."""
    from shardkit.benchmark.build import build
    from shardkit.benchmark.config import BuildConfig

    out = tmp_path_factory.mktemp("shard")
    meta = build(out, BuildConfig())
    return out, meta
