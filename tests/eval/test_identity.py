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
    strip_negated,
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


DOG_ALIASES = ["dog", "domestic dog", "Canis familiaris"]
ALARM_ALIASES = ["smoke detector", "smoke alarm"]


@pytest.mark.parametrize("output, aliases, hit", [
    ("Dog", DOG_ALIASES, True),
    ("A dog.", DOG_ALIASES, True),
    ("the sound of a dog barking", DOG_ALIASES, True),
    ("Several DOGS are barking!", DOG_ALIASES, True),
    ("a domestic cat", ["domestic dog"], False),
    ("canis familiaris, probably", DOG_ALIASES, True),
    ("a hotdog vendor", DOG_ALIASES, False),
    ("dogged persistence", DOG_ALIASES, False),
    ("a cat meowing", DOG_ALIASES, False),
    ("the smoke alarm is beeping", ALARM_ALIASES, True),
    ("smoke rising from an alarm clock", ALARM_ALIASES, False),
    ("not a dog", DOG_ALIASES, False),  # a negated mention never counts
    ("It is not a dog, it is a cat", DOG_ALIASES, False),
    ("no dog but a cat", DOG_ALIASES, False),
    ("not a cat, a dog", DOG_ALIASES, True),  # the negation ends at the comma
    ("it isn't a cat but a dog", DOG_ALIASES, True),
    ("", DOG_ALIASES, False),
    ("   ", DOG_ALIASES, False),
])
def test_string_match(output, aliases, hit):
    assert string_match(output, aliases) is hit


def test_string_match_ignores_empty_aliases():
    assert not string_match("a cat", ["", "the", "..."])
    assert string_match("a cat and a mouse", ["", "the", "cat and mouse"])


@pytest.mark.parametrize("text, kept", [
    ("not a dog", ""), ("It is not a dog, it is a cat", "It is , it is a cat"), ("no dog but a cat", "but a cat"),
    ("a dog", "a dog"), ("Nothing here.", "."),
])
def test_strip_negated(text, kept):
    assert " ".join(strip_negated(text).split()) == kept


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


def _identity_item(mid, word, aliases, labels):
    return {"mid": mid, "word": word, "aliases": aliases, "clip": {"labels": labels}}


def test_judge_strict_and_lenient(embedder):
    from shardkit.eval.identity import judge

    dog = _identity_item(DOG, "dog", DOG_ALIASES, [DOG, HELICOPTER])
    v = judge(["a dog barking", "barking", "helicopter", "Animal", "not a dog"], [dog] * 5, embedder)
    assert [x["correct"] for x in v] == [True, True, False, False, False]  # Bark is below Dog: strict accepts it
    assert v[0]["correct_string"] and not v[1]["correct_string"] and v[1]["correct_embedding"]
    assert v[2]["correct_lenient"] and not v[2]["correct"]  # another label of the clip: lenient only
    assert not v[3]["correct_lenient"]  # a class above the gold is no answer, even leniently
    assert not v[4]["correct_lenient"]


def test_best_constant_answer_on_the_bundled_shard(shard, embedder):
    """Done-when of the review: no answer given to every clip scores over 10% under the headline."""
    import json

    from shardkit.eval.identity import best_constant

    items = [json.loads(line) for line in (shard[0] / "shard.jsonl").read_text().splitlines()]
    identity = [i for i in items if i["task"] == "identity"]
    best = best_constant(identity, embedder)
    assert best["n_tried"] > 527
    assert best["balanced"] <= 0.10, best
    words = {i["word"] for i in identity}
    # right on one word's clips and wrong on every other, except where the ontology puts one class below two words
    # (Cowbell lies under Bell and under Cattle): 2/22 on the bundled build
    assert best["balanced"] <= 2 / len(words) + 1e-12
    # "Animal" scored 25.4% under the old matching (any label of the clip accepted)
    from shardkit.eval.identity import judge

    assert not any(j["correct"] for j in judge(["Animal"] * len(identity), identity, embedder))
