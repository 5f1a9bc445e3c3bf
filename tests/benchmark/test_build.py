import json
from collections import defaultdict
from pathlib import Path

from shardkit.benchmark.build import build
from shardkit.benchmark.config import BuildConfig
from shardkit.benchmark.relations import UNINFORMATIVE

KEYS = {"id", "task", "word", "mid", "synset", "candidate", "answer", "negative_kind", "depth", "aliases", "clip"}


def _items(out):
    return [json.loads(line) for line in (out / "shard.jsonl").read_text().splitlines()]


def test_outputs_and_schema(shard):
    out, meta = shard
    for name in ("shard.jsonl", "meta.json", "card.md", "hf/README.md"):
        assert (out / name).exists(), name
    items = _items(out)
    assert len(items) == meta["n_items"] > 300
    assert len({i["id"] for i in items}) == len(items)
    for i in items:
        assert set(i) == KEYS
        assert set(i["clip"]) >= {"id", "path", "start", "end"}
        if i["task"] == "identity":
            assert i["candidate"] is None and i["aliases"] and i["word"] in i["aliases"]
        else:
            assert i["answer"] in ("yes", "no")
            assert (i["negative_kind"] is None) == (i["answer"] == "yes")
    assert {i["task"] for i in items} == {"identity", "synonym", "hypernym"}
    assert len(meta["words_with_clips"]) >= 20


def test_same_seed_same_bytes_other_seed_differs(shard, tmp_path):
    out, meta = shard
    build(tmp_path / "a", BuildConfig(seed=0))
    assert (tmp_path / "a" / "shard.jsonl").read_bytes() == (out / "shard.jsonl").read_bytes()
    assert json.loads((tmp_path / "a" / "meta.json").read_text())["sha256"] == meta["sha256"]
    build(tmp_path / "b", BuildConfig(seed=1))
    assert (tmp_path / "b" / "shard.jsonl").read_bytes() != (out / "shard.jsonl").read_bytes()


def test_balanced_per_task(shard):
    items = _items(shard[0])
    for task in ("synonym", "hypernym"):
        yes = sum(i["answer"] == "yes" for i in items if i["task"] == task)
        no = sum(i["answer"] == "no" for i in items if i["task"] == task)
        assert yes > 0 and abs(yes - no) <= 0.1 * max(yes, no), (task, yes, no)
    kinds = {i["negative_kind"] for i in items if i["answer"] == "no" and i["task"] == "hypernym"}
    assert kinds == {"hard", "random"}


def test_every_candidate_is_as_often_yes_as_no(shard):
    """The balance that leaves candidate-only baselines at chance (benchmark/baselines.py)."""
    from collections import Counter

    yes, no = Counter(), Counter()
    for i in _items(shard[0]):
        if i["task"] != "identity":
            (yes if i["answer"] == "yes" else no)[(i["task"], i["candidate"].lower())] += 1
    assert yes == no
    assert len(yes) > 60


def test_no_candidate_is_both_positive_and_negative_for_a_word(shard):
    answers = defaultdict(set)
    for i in _items(shard[0]):
        if i["task"] != "identity":
            answers[(i["task"], i["synset"], i["candidate"].lower())].add(i["answer"])
    assert all(len(a) == 1 for a in answers.values())


def _hypernym_closure(s):
    return set(s.closure(lambda x: x.hypernyms() + x.instance_hypernyms()))


def test_negatives_are_unrelated_in_wordnet(shard, wn):
    """Checked independently of the builder, with nltk's own closure over every sense of the candidate."""
    for i in _items(shard[0]):
        if i["answer"] != "no":
            continue
        target = wn.synset(i["synset"])
        senses = wn.synsets(i["candidate"].replace(" ", "_"))
        assert senses, i["candidate"]
        word_senses = {s for lemma in target.lemma_names() for s in wn.synsets(lemma)}
        assert not set(senses) & word_senses, f"{i['candidate']!r} is a synonym of {i['word']!r} by some sense"
        above = _hypernym_closure(target)
        for s in senses:
            if s.pos() == "n":
                assert s not in above and s != target, f"{i['candidate']!r} is a hypernym of {i['word']!r}"
                assert target not in _hypernym_closure(s), f"{i['candidate']!r} is a hyponym of {i['word']!r}"


def test_positives_are_related_in_wordnet(shard, wn):
    for i in _items(shard[0]):
        if i["answer"] != "yes":
            continue
        target = wn.synset(i["synset"])
        if i["task"] == "synonym":
            lemmas = [x.replace("_", " ") for x in target.lemma_names()]
            assert i["candidate"] in lemmas and i["candidate"] != i["word"]
        else:
            matches = [s for s in _hypernym_closure(target)
                       if s.lemma_names()[0].replace("_", " ") == i["candidate"]]
            assert matches and all(s.name() not in UNINFORMATIVE for s in matches)
            assert 1 <= i["depth"] <= 6
            steps = [len(path) - 1 - path.index(s) for path in target.hypernym_paths() for s in matches if s in path]
            assert i["depth"] == min(steps)  # shortest upward distance over every hypernym path


def test_hard_synonym_negatives_are_cohyponyms(shard, wn):
    for i in _items(shard[0]):
        if i["task"] == "synonym" and i["negative_kind"] == "hard":
            target = wn.synset(i["synset"])
            sisters = {h for p in target.hypernyms() for h in p.hyponyms()} - {target}
            assert any(i["candidate"].replace(" ", "_") in s.lemma_names() for s in sisters)


def test_max_depth_and_per_task(tmp_path):
    meta = build(tmp_path, BuildConfig(max_depth=2, per_task=1))
    items = _items(tmp_path)
    assert max(i["depth"] for i in items if i["depth"] is not None) <= 2
    per_clip = defaultdict(int)
    for i in items:
        if i["answer"] == "yes":
            per_clip[(i["clip"]["id"], i["task"], i["mid"])] += 1
    assert max(per_clip.values()) == 1
    assert meta["config"]["max_depth"] == 2


def test_datasets_export_loads_offline_typed_and_movable(shard, tmp_path):
    """`datasets` reads every task with each column typed (nulls included), into a cache of the test's own; `audio`
    is relative to the audio root the README records, so the clip is found from wherever the root is."""
    import datasets

    folder, meta = shard
    ds = datasets.load_dataset(str(folder / "hf"), "hypernym", split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == meta["counts"]["hypernym"]["n"]
    assert ds.features["depth"].dtype == "int32" and ds.features["end"].dtype == "float64"
    ident = datasets.load_dataset(str(folder / "hf"), "identity", split="train", cache_dir=str(tmp_path / "cache"))
    assert ident.features["candidate"].dtype == "string" and ident[0]["candidate"] is None  # typed though all null
    row = ds[0]
    assert not Path(row["audio"]).is_absolute() and row["audio"].endswith(".wav")
    assert meta["audio_root"] in (folder / "hf" / "README.md").read_text()
    assert (Path(meta["audio_root"]) / row["audio"]).is_file() and row["start"] == 0.0


def test_two_builds_never_share_cached_rows(shard, tmp_path):
    """Each data file is named by its content: another SHARD, or a rebuild in place, loads its own rows even from
    a cache that has seen the first (datasets keys its cache on the README's file patterns)."""
    import datasets

    cache = str(tmp_path / "cache")
    first = datasets.load_dataset(str(shard[0] / "hf"), "synonym", split="train", cache_dir=cache)
    other = build(tmp_path / "other", BuildConfig(per_task=1))
    again = datasets.load_dataset(str(tmp_path / "other" / "hf"), "synonym", split="train", cache_dir=cache)
    assert len(first) == shard[1]["counts"]["synonym"]["n"] != len(again) == other["counts"]["synonym"]["n"]
    rebuilt = build(tmp_path / "other", BuildConfig(per_task=2))  # in place, another config
    third = datasets.load_dataset(str(tmp_path / "other" / "hf"), "synonym", split="train", cache_dir=cache)
    assert len(third) == rebuilt["counts"]["synonym"]["n"] != len(again)
    assert len(list((tmp_path / "other" / "hf").glob("synonym-*.jsonl"))) == 1  # the old file went


def test_card_documents_criteria(shard):
    card = (shard[0] / "card.md").read_text()
    for phrase in ("Criteria", "Licences", "Known limits", shard[1]["sha256"], "CC0", "When is \"no\" right?",
                   "exclusions.tsv", "aliases.tsv", "a reviewed exclusion"):
        assert phrase in card
