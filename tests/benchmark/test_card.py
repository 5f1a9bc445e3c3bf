"""The dataset card (benchmark/card.py): every number of a hand-written meta.json lands in its sentence or table cell,
absent counts and baselines show as such, and the bundled-audio licences appear only for the bundled samples. The
card of a real build is checked for its criteria in test_build.py."""

from shardkit.benchmark.card import render
from shardkit.benchmark.relations import HARD_DEPTH, UNINFORMATIVE


def meta(**kw) -> dict:
    """meta.json as `build.write` returns it, for a build of three clips."""
    base = {
        "shardkit_version": "9.9.9", "seed": 7, "config": {"seed": 7, "max_depth": 3, "per_task": 2, "split": "test"},
        "sha256": "5" * 64, "n_items": 15, "n_clips": 3, "n_words": 40, "wordnet": "3.0",
        "counts": {"synonym": {"n": 4, "yes": 2, "no": 2, "hard": 1, "random": 1},
                   "hypernym": {"n": 8, "yes": 4, "no": 4, "random": 4},
                   "identity": {"n": 3}},
        "words_with_clips": {"bell": 1, "dog": 2},
        "words_with_items": {"bell": 2, "dog": 4},
        "negatives_removed": {"1 shares a sense": 5, "4 true of another source in the clip": 2},
        "candidate_only": {"synonym": {"prior": 1.0, "generality": 0.25, "shortness": 0.5},
                           "hypernym": {"prior": 0.5, "shortness": 0.4999}},
        "unavailable": [{"id": "c3", "reason": "file not found"}],
    }
    return {**base, **kw}


def test_card_states_the_build_it_describes():
    card = render(meta(), 41, None)
    assert card.startswith("# SHARD — Synonym and Hypernym Audio Reasoning Dataset\n")
    assert ("- seed 7; max hypernym depth 3; at most 2 positives per clip and\n  task; split `test`; shardkit 9.9.9; "
            "WordNet 3.0\n") in card
    assert ("- 15 items over 3 clips, 2 of 40 words;\n  sha256 of `shard.jsonl`: `" + "5" * 64 + "`\n") in card
    assert "- clips whose audio is unavailable: 1 (listed in `meta.json`" in card
    assert "**Words.** 41 AudioSet labels" in card  # the senses given, not meta's n_words
    assert "Words with clips (identity items): bell (1), dog (2).\n" in card
    assert "ancestors of the synset (hypernyms and instance hypernyms) up to\n3 steps" in card


def test_card_counts_table_shows_a_dash_where_a_task_has_no_such_items():
    card = render(meta(), 41, None)
    assert ("| task | items | yes | no | hard negatives | random negatives |\n|---|---|---|---|---|---|\n"
            "| identity | 3 | – | – | – | – |\n"
            "| synonym | 4 | 2 | 2 | 1 | 1 |\n"
            "| hypernym | 8 | 4 | 4 | – | 4 |\n") in card


def test_card_tables_removed_negatives_and_candidate_only_baselines():
    card = render(meta(), 41, None)
    assert "| rule | candidates removed |\n|---|---|\n| 1 shares a sense | 5 |\n| 4 true of another source in the " \
           "clip | 2 |\n" in card
    # hypernym's generality baseline was not computed: nan, not a made-up number
    assert "| synonym | 1.000 | 0.250 | 0.500 |\n| hypernym | 0.500 | nan | 0.500 |\n" in card


def test_card_names_the_uninformative_tops_and_the_hard_negative_depth():
    card = render(meta(), 41, None)
    assert f"excluding uninformative top nodes ({', '.join(sorted(UNINFORMATIVE))})" in card
    assert f"meets one of the word's own hypernyms within {HARD_DEPTH} steps of the word" in card


def test_bundled_sample_licences_are_listed_sorted_and_only_for_the_bundled_samples():
    sources = {"espeak-ng synthesis": "GPL-3.0 program, output CC0", "Freesound": "CC0", "ESC-50": "CC BY-NC 3.0"}
    card = render(meta(), 41, sources)
    block = ("### Bundled sample audio\n\n- ESC-50: CC BY-NC 3.0\n- Freesound: CC0\n"
             "- espeak-ng synthesis: GPL-3.0 program, output CC0\n")
    assert card.count(block) == 1
    assert card.index("- Audio: as given by the manifest's source.") < card.index(block) < card.index("## Known limits")
    for none in (None, {}):
        plain = render(meta(), 41, none)
        assert "Bundled sample audio" not in plain
        assert "- Audio: as given by the manifest's source.\n\n## Known limits" in plain


def test_a_build_without_identity_items_or_unavailable_clips_says_so():
    card = render(meta(words_with_clips={}, unavailable=[], negatives_removed={}), 41, None)
    assert "Words with clips (identity items): none.\n" in card
    assert "- clips whose audio is unavailable: 0 (listed" in card
    assert "| rule | candidates removed |\n|---|---|\n\n" in card  # an empty table, not a missing section


def test_the_same_meta_gives_the_same_card():
    assert render(meta(), 41, {"Freesound": "CC0"}) == render(meta(), 41, {"Freesound": "CC0"})
