"""A "no" must be false under every reading: checked here independently of the builder, with nltk's own closures."""

import pytest

from shardkit.benchmark.build import build_items
from shardkit.benchmark.config import BuildConfig
from shardkit.benchmark.manifest import Clip
from shardkit.benchmark.relations import (
    Guard,
    Readings,
    WordFacts,
    load_exclusions,
    readings,
)
from shardkit.benchmark.senses import load_aliases
from shardkit.errors import ShardkitError

MALE, FEMALE, SPEECH = "/m/05zppz", "/m/02zsn", "/m/09x0r"
CAR, BUS, TRUCK, DOG, CAT = "/m/0k4j", "/m/01bjv", "/m/07r04", "/m/0bt9lr", "/m/01yrx"
WIND, RAIN, DRUM, PIANO = "/m/03m9d0z", "/m/06mb1", "/m/026t6", "/m/05r5c"
MULTI = [(MALE, FEMALE, SPEECH), (CAR, BUS, TRUCK), (DOG, CAT), (WIND, RAIN), (DRUM, PIANO)]


def _up(s):
    return set(s.closure(lambda x: x.hypernyms() + x.instance_hypernyms()))


def _related(candidate: str, synsets, wn) -> bool:
    """True if some noun sense of the candidate is, is above or is below one of `synsets` (nltk closures)."""
    for c in wn.synsets(candidate.replace(" ", "_"), "n"):
        for s in synsets:
            if c == s or c in _up(s) or s in _up(c):
                return True
    return False


def _senses_of(sense, wn):
    """Every noun sense of a SHARD word: its chosen synset and every synset its word can mean."""
    return {wn.synset(sense.synset), *wn.synsets(sense.word.replace(" ", "_"), "n")}


def _ancestor_synsets(mid, onto, wn):
    """WordNet senses of the names of a label's ontology ancestors: each comma part, else its last word."""
    out = set()
    for m in onto.ancestors(mid):
        for part in onto.classes[m].name.split(","):
            part = part.split("(")[0].strip()
            if not part:
                continue
            found = wn.synsets("_".join(part.split()), "n") or wn.synsets(part.split()[-1], "n")
            out |= set(found)
    return out


@pytest.fixture(scope="module")
def exclusions():
    return load_exclusions()


@pytest.fixture(scope="module")
def pools(senses, onto, exclusions):
    """Every one of the 78 words' facts, with pools drawn against all the other words (as the builder does)."""
    out = {}
    for s in senses:
        own = readings(s, s.name, s.mid, onto, exclusions)
        out[s.mid] = WordFacts(s, [o for o in senses if o.mid != s.mid], 6, own)
    return out


def _negatives(f):
    return [*f.syn_hard, *f.syn_random, *f.hyp_hard, *f.hyp_random]


def test_every_pool_negative_is_false_under_every_sense_and_ontology_ancestor(senses, pools, onto, wn):
    by_mid = {s.mid: s for s in senses}
    bad = []
    for mid, f in pools.items():
        mine = _senses_of(by_mid[mid], wn)
        above = _ancestor_synsets(mid, onto, wn)
        for c in _negatives(f):
            if _related(c, mine, wn):
                bad.append((f.word, c, "a sense of the word"))
            elif any(s in above or s in set().union(*(_up(a) for a in above)) for s in wn.synsets(c.replace(" ", "_"),
                                                                                              "n")):
                bad.append((f.word, c, "an ontology ancestor"))
    assert not bad, bad[:10]
    assert sum(len(_negatives(f)) for f in pools.values()) > 10_000  # the pools are not emptied to pass


# Facts WordNet lacks that the review named (issue: bus → vehicle, man → animal, bell → percussion instrument, ...).
GAPS = {
    "bus": ["vehicle", "motor vehicle", "wheeled vehicle", "self-propelled vehicle"],
    "man": ["animal", "mammal", "placental", "vertebrate", "chordate"],
    "woman": ["animal", "mammal", "placental", "vertebrate", "chordate"],
    "child": ["animal", "mammal", "placental", "vertebrate", "chordate"],
    "baby": ["animal", "mammal", "placental", "vertebrate", "chordate"],
    "bell": ["percussion instrument", "musical instrument"],
    "telephone": ["device"],
    "buzzer": ["acoustic device"],
    "dog": ["female", "male"],
    "cattle": ["Brahman"],
    "drum": ["kettledrum"],
}


def test_reviewed_gaps_never_become_negatives(pools):
    by_word = {f.word: f for f in pools.values()}
    for word, candidates in GAPS.items():
        negatives = {c.lower() for c in _negatives(by_word[word])}
        assert not negatives & {c.lower() for c in candidates}, (word, negatives & set(candidates))


def test_removals_are_counted_by_reason(pools):
    removed = {}
    for f in pools.values():
        for reason, cands in f.removed.items():
            removed[reason] = removed.get(reason, 0) + len(cands)
    assert removed["another sense of the word"] > 50 and removed["a reviewed exclusion"] > 50
    assert removed["an ontology ancestor"] > 20


@pytest.fixture(scope="module")
def multi_items(senses, onto):
    """SHARD items for clips that each carry several SHARD labels (no audio needed to build items)."""
    clips = [Clip(id=f"c{k}-{n}", path=f"c{k}-{n}.wav", labels=labels) for k, labels in enumerate(MULTI)
             for n in range(4)]
    items, _ = build_items(clips, senses, onto, BuildConfig(per_task=6), load_aliases(onto, senses))
    return items


def test_no_negative_is_true_of_another_label_of_the_clip(multi_items, senses, onto, wn):
    by_mid = {s.mid: s for s in senses}
    nos = [i for i in multi_items if i["answer"] == "no"]
    assert len(nos) > 60
    bad = []
    for i in nos:
        labels = i["clip"]["labels"]
        implied = {a for m in labels for a in onto.ancestors(m)}
        for m in labels:
            if m == i["mid"] or m in implied or m not in by_mid:
                continue
            if _related(i["candidate"], _senses_of(by_mid[m], wn), wn):
                bad.append((i["word"], i["candidate"], by_mid[m].name))
    assert not bad, bad


def test_the_reviewed_co_label_cases(senses, onto, exclusions):
    """The review's seven: each candidate is true of another label of the clip, so it can never be a "no"."""
    by_mid = {s.mid: s for s in senses}

    def truth(word_mid, other_mid):
        w, o = by_mid[word_mid], by_mid[other_mid]
        return readings(w, w.name, w.mid, onto, exclusions) + readings(o, o.name, o.mid, onto, exclusions,
                                                                       co_label=True)
    for word, other, candidate in [(FEMALE, MALE, "male"), (BUS, CAR, "motor vehicle"), (CAT, DOG, "canine"),
                                   (WIND, RAIN, "precipitation"), (DRUM, PIANO, "keyboard instrument"),
                                   (CAR, BUS, "autobus")]:
        assert truth(word, other).why_not(candidate) is not None, (word, candidate)
    assert Readings().why_not("canine") is None  # nothing known: "no" stands


def test_exclusions_file_is_checked(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("word\tcandidate\treason\nman\tanimul.n.01\ttypo\n")
    with pytest.raises(ShardkitError, match=r"x.tsv:2: .*synset"):
        load_exclusions(path)
    path.write_text("word\tcandidate\nman\tanimal.n.01\n")
    with pytest.raises(ShardkitError, match="header"):
        load_exclusions(path)


def test_guard_blocks_shard_facts(senses):
    guard = Guard.from_senses(senses)
    assert guard.candidate("dog") == "SHARD word"
    # "person" is above man and woman: a training question asking it would teach a SHARD answer
    for c in ("person", "organism", "living thing", "animal", "device", "musical instrument"):
        assert guard.candidate(c) == "SHARD fact", c
    assert guard.candidate("mineral") is None and guard.candidate("furniture") is None
