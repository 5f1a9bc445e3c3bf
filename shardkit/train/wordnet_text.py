"""Text-only WordNet relation questions about nouns SHARD never asks about.

LTU learnt its answer format, and how sound words relate, from closed-ended questions; a 135M LM prompted cold
cannot say whether a dog is an animal even when told it is a dog (SHARD's text control). These questions teach the
yes/no format and the synonym and hypernym relations on held-out words, so a model's base can reason before any
placement of the audio is compared. No subject is a SHARD word or synset, one of their hypernyms or co-hyponyms
(`relations.Guard.facts`), or a kind of one (a poodle is a dog): the base learns the relation, never SHARD's
answer. Candidates may be general words SHARD also uses ("animal"). A "no" candidate is drawn from the positives of
other held-out words at the same WordNet depth, so yes and no candidates are equally general and the candidate
alone predicts nothing; it is unrelated to every noun sense of the subject.
"""

import functools
import random
from collections import defaultdict

from shardkit.benchmark.relations import UNINFORMATIVE, Guard, closure, noun_senses, text

# Concrete things that can make or be a sound, or be named like one; abstract nouns teach little about sources.
LEXNAMES = frozenset({"noun.animal", "noun.artifact", "noun.person", "noun.plant", "noun.food", "noun.object",
                      "noun.substance", "noun.body", "noun.phenomenon", "noun.event"})
HYPERNYM = (  # the first is SHARD's text-control question (eval/scoring.py QUESTIONS with the word in quotes)
    'Answer yes or no: is the source of the sound of "{word}" a kind of {candidate}?',
    "Answer yes or no: is {a} {word} a kind of {candidate}?",
    "Is {a} {word} a type of {candidate}? Answer yes or no.",
)
SYNONYM = (
    'Answer yes or no: is the source of the sound of "{word}" also known as "{candidate}"?',
    'Answer yes or no: is "{candidate}" another word for {a} {word}?',
    'Could {a} {word} also be called "{candidate}"? Answer yes or no.',
)
TASKS = ("synonym_text", "hypernym_text")


def plain(word: str) -> bool:
    """An everyday word: lower case, one or two alphabetic words, no taxon ("genus Canis"), no name ("Gray")."""
    parts = word.split()
    return (word == word.lower() and 0 < len(parts) <= 2 and all(p.isalpha() for p in parts)
            and parts[0] not in ("genus", "family", "order", "class", "phylum", "subfamily", "suborder"))


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class Subject:
    """One held-out noun synset: the word asked about and its true candidates, each with its WordNet depth."""

    def __init__(self, synset, word: str, max_depth: int):
        self.synset, self.word = synset, word
        self.synonyms = [w for w in dict.fromkeys(text(x) for x in synset.lemma_names())
                         if w.lower() != word.lower() and plain(w)]
        self.hypernyms = [(text(h.lemma_names()[0]), h.min_depth()) for h, _ in
                          sorted(closure(synset).items(), key=lambda x: (x[1], x[0].name()))
                          if h.name() not in UNINFORMATIVE and h.min_depth() <= max_depth
                          and plain(text(h.lemma_names()[0]))]


@functools.cache
def _senses_and_closures(word: str) -> frozenset:
    """Every noun sense of a word and every synset above one of them."""
    out = set()
    for s in noun_senses(word):
        out |= {s, *closure(s)}
    return frozenset(out)


def related(word: str, candidate: str) -> bool:
    """True if some noun sense of `candidate` is a sense of `word`, above one, or below one (under any reading)."""
    mine = _senses_and_closures(word)
    for c in noun_senses(candidate):
        if c in mine or any(s in closure(c) for s in noun_senses(word)):
            return True
    return False


def held_out(guard: Guard, max_depth: int = 6) -> list[Subject]:
    """Every everyday, concrete WordNet noun synset SHARD's guard leaves free, with a true hypernym to ask about.

    The word asked about is the synset's most frequent plain lemma (SemCor count ≥ 1: a word people use); synsets
    with none, whose lemmas include a SHARD word, or whose word has another sense among SHARD's facts are left out,
    since the question would then be about SHARD's sense too.
    """
    from shardkit.resources.wordnet import sense_counts, wordnet

    counts = sense_counts()
    out = []
    for s in wordnet().all_synsets("n"):
        if s.lexname() not in LEXNAMES or s.name() in guard.facts:
            continue
        used = sorted((lm for lm in s.lemmas() if counts.get(lm.key(), 0) > 0 and plain(text(lm.name()))),
                      key=lambda lm: -counts[lm.key()])
        if not used or any(text(x).lower() in guard.words for x in s.lemma_names()):
            continue
        if any(h.name() in guard.synsets for h in closure(s)):
            continue  # a kind of a SHARD synset
        word = text(used[0].name())
        if any(n.name() in guard.facts for n in noun_senses(word)):
            continue
        sub = Subject(s, word, max_depth)
        if sub.hypernyms:
            out.append(sub)
    return out


class TextQuestions:
    """Draws text-only yes/no questions from held-out subjects; every choice comes from the caller's RNG."""

    def __init__(self, rng: random.Random, subjects: list[Subject]):
        self.rng = rng
        self.subjects = subjects
        self.with_synonyms = [s for s in subjects if s.synonyms]
        self.by_depth: dict[int, list[str]] = defaultdict(list)  # hypernym candidates by depth, as often as used
        for s in subjects:
            for cand, depth in s.hypernyms:
                self.by_depth[depth].append(cand)
        self.synonym_pool = [w for s in self.with_synonyms for w in s.synonyms]

    def question(self, task: str) -> tuple[str, str, dict]:
        """(question, "Yes"/"No", facts) for task synonym_text or hypernym_text."""
        rng = self.rng
        syn = task == "synonym_text"
        sub = rng.choice(self.with_synonyms if syn else self.subjects)
        yes = rng.random() < 0.5
        if syn:
            cand = rng.choice(sub.synonyms)
        else:
            cand, depth = rng.choice(sub.hypernyms)
        if not yes:
            pool = self.synonym_pool if syn else self.by_depth[depth]
            for _ in range(16):
                other = rng.choice(pool)
                if other.lower() != sub.word.lower() and not related(sub.word, other):
                    cand = other
                    break
            else:  # every draw relates to the subject: ask the positive instead
                yes = True
        template = rng.choice(SYNONYM if syn else HYPERNYM)
        q = template.format(word=sub.word, candidate=cand, a=_article(sub.word))
        facts = {"label": None, "synset": sub.synset.name(), "word": sub.word, "candidate": cand,
                 "negative": None if yes else "random", "overlap": False}
        return q, "Yes" if yes else "No", facts
