"""Text-only WordNet questions: held-out subjects, true answers, candidates that give nothing away."""

import random

import numpy as np
import pytest

from shardkit.benchmark.relations import Guard, closure, noun_senses
from shardkit.eval.scoring import QUESTIONS
from shardkit.train.wordnet_text import HYPERNYM, SYNONYM, TextQuestions, held_out


@pytest.fixture(scope="module")
def guard(senses):
    return Guard.from_senses(senses)


@pytest.fixture(scope="module")
def subjects(guard):
    return held_out(guard)


def test_subjects_are_everyday_nouns_outside_shard(subjects, guard, wn):
    assert 3000 < len(subjects) < 8000  # about the 6,000 of the quick check
    shard = {wn.synset(s) for s in guard.synsets}
    for sub in subjects:
        assert sub.synset.name() not in guard.facts  # no SHARD synset, hypernym or co-hyponym
        assert not shard & set(closure(sub.synset))  # no kind of one (a poodle is a dog)
        assert not {x.lower().replace("_", " ") for x in sub.synset.lemma_names()} & guard.words
        assert sub.word == sub.word.lower() and sub.hypernyms


def test_answers_are_true_and_negatives_unrelated_under_every_sense(subjects):
    gen = TextQuestions(random.Random(0), subjects)
    by_synset = {s.synset.name(): s for s in subjects}
    for k in range(1500):
        task = ("synonym_text", "hypernym_text")[k % 2]
        q, answer, facts = gen.question(task)
        sub, cand = by_synset[facts["synset"]], facts["candidate"]
        assert facts["word"] == sub.word and f"{sub.word}" in q and cand in q
        if answer == "Yes":
            truth = sub.synonyms if task == "synonym_text" else [c for c, _ in sub.hypernyms]
            assert cand in truth, q
        else:  # no noun sense of the candidate is a sense of the word, above one or below one
            for w in noun_senses(sub.word):
                for c in noun_senses(cand):
                    assert c != w and c not in closure(w) and w not in closure(c), q


def test_candidates_are_equally_general_for_yes_and_no(subjects):
    """A "no" candidate is a positive of another subject at the same depth: the candidate alone tells nothing."""
    from shardkit.benchmark.baselines import generality, shortness
    from shardkit.stats import auroc

    gen = TextQuestions(random.Random(1), subjects)
    items = []
    for _ in range(3000):
        _, answer, facts = gen.question("hypernym_text")
        items.append({"candidate": facts["candidate"], "answer": answer.lower()})
    gold = np.array([i["answer"] == "yes" for i in items])
    assert 0.45 < gold.mean() < 0.55
    assert abs(auroc(gold, generality(items)) - 0.5) < 0.05
    assert abs(auroc(gold, shortness(items)) - 0.5) < 0.05


def test_first_templates_are_shards_text_control():
    for task, templates in (("hypernym", HYPERNYM), ("synonym", SYNONYM)):
        control = QUESTIONS[task].replace("{subject}", 'the sound of "{word}"')
        assert templates[0] == control
