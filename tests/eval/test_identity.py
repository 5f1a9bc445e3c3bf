import numpy as np
import pytest

from shardkit.errors import ShardkitError
from shardkit.eval.identity import (
    WIDTH,
    LabelEmbedder,
    embedding_match,
    embedding_top1,
    normalise,
    string_match,
)

DOG, BARK, HELICOPTER = "/m/0bt9lr", "/m/05tny_", "/m/09ct_"


@pytest.mark.parametrize("text, key", [
    ("A dog.", "dog"),
    ("  The   DOGS!! ", "dog"),
    ("Smoke detector, smoke alarm", "smoke detector smoke alarm"),
    ("an owl's hoot", "owl hoot"),
    ("Hi-hat", "hi hat"),
    ("horses, glasses, boxes, babies, churches, bees, buses", "horse glass box baby church bee bus"),
    ("bus glass tennis gas", "bus glass tennis gas"),  # a final s that is no plural stays
    ("Café", "cafe"),
    (" ... ", ""),
])
def test_normalise(text, key):
    assert normalise(text) == key


DOG_ALIASES = ["Dog", "domestic dog", "Canis familiaris"]
ALARM = "Smoke detector, smoke alarm"


@pytest.mark.parametrize("output, gold, aliases, hit", [
    ("Dog", "Dog", DOG_ALIASES, True),
    ("A dog.", "Dog", DOG_ALIASES, True),
    ("the sound of a dog barking", "Dog", DOG_ALIASES, True),
    ("Several DOGS are barking!", "Dog", DOG_ALIASES, True),
    ("It is a domestic dog", "Dog", [], True),  # the gold name alone is enough
    ("a domestic cat", "Dog", ["domestic dog"], False),
    ("canis familiaris, probably", "Dog", DOG_ALIASES, True),
    ("a hotdog vendor", "Dog", DOG_ALIASES, False),
    ("dogged persistence", "Dog", DOG_ALIASES, False),
    ("a cat meowing", "Dog", DOG_ALIASES, False),
    ("the smoke alarm is beeping", ALARM, [], True),  # a comma part of the gold name
    ("a smoke detector", ALARM, ["smoke detector", "smoke alarm"], True),
    ("smoke rising from an alarm clock", ALARM, ["smoke detector", "smoke alarm"], False),
    ("", "Dog", DOG_ALIASES, False),
    ("   ", "Dog", DOG_ALIASES, False),
])
def test_string_match(output, gold, aliases, hit):
    assert string_match(output, gold, aliases) is hit


def test_string_match_ignores_empty_aliases():
    assert not string_match("a cat", "Cat and mouse", ["", "the", "..."])
    assert string_match("a cat and a mouse", "Cat and mouse", ["", "the"])


@pytest.fixture(scope="module")
def embedder():
    return LabelEmbedder.load()


def test_constructor_does_no_io():
    e = LabelEmbedder(None, None, "/nonexistent")
    with pytest.raises(ShardkitError, match="LabelEmbedder.load"):
        e.embed(["dog"])


def test_embed_unit_deterministic(embedder):
    texts = ["a dog barking", "Dog", "Helicopter", "rain falling on a tin roof"]
    a = embedder.embed(texts)
    assert a.shape == (4, WIDTH) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, embedder.embed(texts))
    np.testing.assert_allclose(a, embedder.embed(texts, batch_size=1), atol=1e-5)  # padding does not leak in
    assert embedder.embed([]).shape == (0, WIDTH)
    sim = a @ a.T
    assert sim[0, 1] > sim[0, 2] + 0.1  # "a dog barking" is closer to Dog than to Helicopter


def test_embedding_top1(embedder, onto):
    top = embedding_top1(["a dog is barking", "police siren wailing", "", "  "], embedder)
    assert onto.labels[top[0]] in {"Dog", "Bark"}
    assert "siren" in onto.labels[top[1]].lower()
    assert top[2:] == [None, None]
    assert embedding_top1([], embedder) == []


def test_embedding_match(embedder):
    assert embedding_match("Dog", DOG, embedder)
    assert embedding_match("a dog is barking", {DOG, BARK}, embedder)  # lenient: any of the clip's labels
    assert not embedding_match("a dog is barking", HELICOPTER, embedder)
    assert not embedding_match("", {DOG, BARK}, embedder)
    with pytest.raises(ShardkitError, match="not among"):
        embedding_match("dog", "/m/nope", embedder)
    with pytest.raises(ShardkitError, match="empty"):
        embedding_match("dog", set(), embedder)


def test_label_cache_reused(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDKIT_CACHE", str(tmp_path))
    first = LabelEmbedder(embedder.model, embedder.tokenizer, embedder.model_path)
    vectors = first.label_vectors()
    assert vectors.shape == (527, WIDTH) and first.n_embedded == 527
    assert first.label_vectors() is vectors and first.n_embedded == 527  # memory
    assert first.cache_path().parent == tmp_path / "label-embeddings" and first.cache_path().exists()
    second = LabelEmbedder(embedder.model, embedder.tokenizer, embedder.model_path)
    np.testing.assert_array_equal(second.label_vectors(), vectors)
    assert second.n_embedded == 0  # disk
    assert not list((tmp_path / "label-embeddings").glob(".*.tmp"))


def test_label_cache_keyed_and_repaired(embedder, tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDKIT_CACHE", str(tmp_path))
    few = {DOG: "Dog", HELICOPTER: "Helicopter"}
    e = LabelEmbedder(embedder.model, embedder.tokenizer, embedder.model_path, labels=few)
    assert e.cache_path() != LabelEmbedder(None, None, embedder.model_path).cache_path()
    e.cache_path().write_bytes(b"not an npy file")
    assert e.label_vectors().shape == (2, WIDTH) and e.n_embedded == 2  # damaged file recomputed
    assert embedding_top1(["a puppy yapping", "rotor blades overhead"], e) == [DOG, HELICOPTER]
