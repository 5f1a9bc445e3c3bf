"""WordNet facts about a sound's source: which candidates are true of it, and which are false under every reading.

SHARD asks "is the source of this sound a kind of X?" and "is it also known as X?". A "no" is right only if X is
false of every source in the clip under every reading: WordNet's chosen synset is one sense among several (a bus
is also a busbar), a clip can hold several sources (a dog and a cat), the AudioSet ontology states facts of its
own (a bus is a motor vehicle), and WordNet misses facts everybody knows (a man is an animal), which a reviewed
file (`exclusions.tsv`) supplies. `Readings` holds all of that for one clip; `WordFacts` holds the positives and
negative pools of one SHARD word. The instruction-data generator and its leakage guard use the same facts.
"""

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shardkit.benchmark.senses import Sense
from shardkit.errors import ShardkitError
from shardkit.resources.ontology import Ontology
from shardkit.resources.wordnet import wordnet

# Nodes too general to make a question ("is the sound's source a kind of entity?") or WordNet-internal jargon.
UNINFORMATIVE = frozenset({
    "entity.n.01", "physical_entity.n.01", "abstraction.n.06", "object.n.01", "whole.n.02", "thing.n.12",
    "matter.n.03", "causal_agent.n.01", "psychological_feature.n.01", "event.n.01", "attribute.n.02",
    "relation.n.01", "group.n.01", "measure.n.02", "communication.n.02", "instrumentality.n.03", "unit.n.05",
    "physical_phenomenon.n.01", "process.n.06", "natural_phenomenon.n.01", "act.n.02", "part.n.02",
})
HARD_DEPTH = 2  # a hypernym negative is hard when it meets the word's own hypernyms within this many steps
EXCLUSIONS_PATH = Path(__file__).with_name("exclusions.tsv")
EXCLUSIONS_HEADER = ["word", "candidate", "reason"]
# WordNet lexicographer files whose nouns never make a sound (alarm.n.01 is the feeling, hum's first sense a state)
NOT_A_SOURCE = frozenset({"noun.state", "noun.feeling", "noun.time", "noun.location", "noun.quantity", "noun.relation",
                          "noun.cognition", "noun.motive", "noun.shape", "noun.group", "noun.possession",
                          "noun.attribute"})
# Why a candidate cannot be a "no", in the order they are checked (the card counts removals by the first that applies)
REASONS = ("the chosen sense", "another sense of the word", "an ontology ancestor", "a reviewed exclusion",
           "another label of the clip", "not a WordNet noun")


def text(lemma: str) -> str:
    return lemma.replace("_", " ")


def dedup(items: Iterable[str]) -> list[str]:
    """First spelling of each case-insensitively distinct string, in order."""
    seen, out = set(), []
    for x in items:
        if x.lower() not in seen:
            seen.add(x.lower())
            out.append(x)
    return out


@functools.cache
def _closure(name: str) -> dict:
    wn = wordnet()
    depth, frontier = {}, [wn.synset(name)]
    for d in range(1, 64):
        frontier = [h for s in frontier for h in s.hypernyms() + s.instance_hypernyms() if h not in depth]
        if not frontier:
            break
        for h in frontier:
            depth.setdefault(h, d)
    return depth


def closure(synset) -> dict:
    """Every hypernym (incl. instance hypernyms) of `synset` with its shortest distance in steps (cached)."""
    return _closure(synset.name())


@functools.cache
def noun_senses(phrase: str) -> tuple:
    """Every noun synset of a word or phrase ("motor vehicle" → motor_vehicle.n.01), morphy-folded by nltk.

    Hyphens are kept where WordNet has them (even-toed_ungulate), else read as spaces (Tick-tock → tick_tock).
    """
    wn = wordnet()
    return tuple(wn.synsets("_".join(phrase.split()), pos="n")
                 or wn.synsets("_".join(phrase.replace("-", " ").split()), pos="n"))


def _parts(name: str) -> list[str]:
    return [p.strip() for p in re.sub(r"\([^)]*\)", " ", name).split(",") if p.strip()]


def name_senses(name: str) -> tuple:
    """Every noun sense an AudioSet class name can mean: each comma part as a phrase, else its head noun.

    "Bee, wasp, etc." → senses of bee and of wasp; "Male speech, man speaking" → senses of speech. Parenthesised
    notes are left out ("Wind noise (microphone)" is no microphone).
    """
    out: list = []
    for part in _parts(name):
        senses = noun_senses(part) or noun_senses(part.replace("-", " ").split()[-1])
        out += [s for s in senses if s not in out]
    return tuple(out)


def auto_synset(name: str) -> tuple[str, str, str] | None:
    """(synset, matched lemma, how) for an AudioSet display name, or None when no part of it is a WordNet noun.

    The whole name, else each comma part, as a noun (`Dial tone` → dial_tone.n.01); else the head noun (last word)
    of each part. Of its noun senses, the first whose lexicographer file can hold a sound or its source (see
    NOT_A_SOURCE: `hum` → hum.n.03, a humming noise, not busyness.n.01), else the first. Parenthesised notes
    (`Wind noise (microphone)`) are ignored.
    """
    wn = wordnet()
    parts = _parts(name)

    def first_sense(phrase: str):
        key = "_".join(phrase.lower().replace("-", " ").split())
        for k in dict.fromkeys((key, key.replace("_", ""))):  # Tick-tock → ticktock
            senses = wn.synsets(k, pos="n")
            if senses:
                best = next((s for s in senses if s.lexname() not in NOT_A_SOURCE), senses[0])
                base = wn.morphy(k, "n") or k
                lemma = next((x for x in best.lemma_names() if x.lower() == base), best.lemma_names()[0])
                return best.name(), text(lemma)
        return None

    for how, phrases in (("name", parts), ("head noun", [p.replace("-", " ").split()[-1] for p in parts])):
        for phrase in phrases:
            found = first_sense(phrase)
            if found:
                return found[0], found[1], how
    return None


# ---------------------------------------------------------------- reviewed exclusions


_SYNSET = re.compile(r"[^\s]+\.n\.\d\d")
KINDS_OF = "kinds of "


@dataclass(frozen=True)
class Exclusion:
    """A world fact WordNet lacks, about `word`: a SHARD word, an AudioSet label's display name (for labels that
    are no SHARD word, such as Speech synthesizer), or a synset (every SHARD word at or below it).

    `candidate` is one of: a synset name (`animal.n.01`: the word is one, so it and everything above it are true);
    `kinds of <synset>` (the source may be any kind of it: a man may be a liberal, a bus an express); plain text
    (that candidate only).
    """

    word: str
    candidate: str
    reason: str

    def _synset(self, name: str):
        return wordnet().synset(name) if _SYNSET.fullmatch(name) else None

    @property
    def scope(self):
        """The synset whose SHARD words this applies to, or None when `word` is a word."""
        return self._synset(self.word)

    @property
    def above(self):
        """The synset this fact makes true with all its hypernyms, if the candidate is a synset name."""
        return self._synset(self.candidate)

    @property
    def below(self):
        """The synset any kind of which may be true, for a `kinds of` candidate."""
        name = self.candidate.removeprefix(KINDS_OF)
        return self._synset(name) if self.candidate.startswith(KINDS_OF) else None

    def applies_to(self, sense: Sense | None, name: str) -> bool:
        """Whether this fact is about a labelled source: its SHARD word, its AudioSet display name, or a synset at
        or above the word's."""
        scope = self.scope
        if scope is None:
            return self.word.lower() in {name.lower(), *([sense.word.lower()] if sense else [])}
        if sense is None:
            return False
        target = wordnet().synset(sense.synset)
        return target == scope or scope in closure(target)


def load_exclusions(path: Path = EXCLUSIONS_PATH) -> list[Exclusion]:
    """The reviewed exclusions, validated (synset names must exist); every problem raises with `file:line`."""
    from nltk.corpus.reader.wordnet import WordNetError

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ShardkitError(f"{path}: cannot read exclusions file ({e.strerror})") from e
    if not lines or lines[0].split("\t") != EXCLUSIONS_HEADER:
        raise ShardkitError(f"{path}:1: header must be {'<TAB>'.join(EXCLUSIONS_HEADER)}")
    out: list[Exclusion] = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 3 or not all(fields):
            raise ShardkitError(f"{path}:{n}: expected 3 non-empty tab-separated fields (word, candidate, reason)")
        ex = Exclusion(*fields)
        try:
            ex.scope, ex.above, ex.below  # noqa: B018 - validates synset names now, not at build time
        except (WordNetError, ValueError) as e:
            raise ShardkitError(f"{path}:{n}: {e}; use a WordNet 3.0 noun synset name such as animal.n.01") from e
        out.append(ex)
    return out


# ---------------------------------------------------------------- what may be true of a clip's sources


@dataclass(frozen=True)
class _Facts:
    synsets: frozenset
    up: frozenset  # the synsets and every hypernym of them
    lemmas: frozenset  # every lemma of the synsets, lower case with spaces
    reason: str

    @classmethod
    def of(cls, synsets: Iterable, reason: str) -> "_Facts":
        synsets = frozenset(synsets)
        up = synsets.union(*(closure(s).keys() for s in synsets))
        return cls(synsets, up, frozenset(text(x).lower() for s in synsets for x in s.lemma_names()), reason)


@dataclass(frozen=True)
class Readings:
    """What may be true of the sources in a clip, checked by `why_not`.

    `exact`: synsets a source may be (every sense of its words): a candidate sharing one, above one or below one
    may be true. `upward`: synsets a source is known to be (ontology ancestors, reviewed facts): a candidate naming
    one or anything above it is true; one below it need not be (a dog is an animal, not every animal). `below`:
    synsets any kind of which the source may be (reviewed: a man may be a liberal). `texts`: reviewed candidate
    strings. Each carries the reason reported when it rules a candidate out.
    """

    exact: tuple[_Facts, ...] = ()
    upward: tuple[_Facts, ...] = ()
    below: tuple[_Facts, ...] = ()
    texts: tuple[tuple[frozenset, str], ...] = ()

    def __add__(self, other: "Readings") -> "Readings":
        return Readings(self.exact + other.exact, self.upward + other.upward, self.below + other.below,
                        self.texts + other.texts)

    def why_not(self, candidate: str) -> str | None:
        """Why `candidate` may be true of a source here (one of REASONS), or None when "no" is right."""
        senses = noun_senses(candidate)
        key = candidate.lower()
        for f in self.exact:
            if key in f.lemmas:
                return f.reason
            if any(s in f.up or f.synsets & closure(s).keys() for s in senses):  # same, above or below
                return f.reason
        for f in self.upward:
            if any(s in f.up for s in senses):  # the known fact or anything above it
                return f.reason
        for f in self.below:
            if any(f.synsets & closure(s).keys() for s in senses):
                return f.reason
        for strings, reason in self.texts:
            if key in strings:
                return reason
        return None if senses else "not a WordNet noun"


def readings(sense: Sense | None, name: str, mid: str, onto: Ontology, exclusions: list[Exclusion],
             co_label: bool = False) -> Readings:
    """Everything one labelled source may be: its chosen synset, every sense of its word and name, its ontology
    ancestors (upward only) and the reviewed facts about its word. For another label of the same clip
    (`co_label`), every reason is "another label of the clip"."""
    chosen_reason, other_reason, ancestor_reason, fact_reason = (REASONS[4],) * 4 if co_label else REASONS[:4]
    exact = []
    if sense is not None:
        exact.append(_Facts.of([wordnet().synset(sense.synset)], chosen_reason))
    words = {sense.word} if sense is not None else set()
    exact.append(_Facts.of({s for w in words for s in noun_senses(w)} | set(name_senses(name)), other_reason))
    ancestors = {s for m in onto.ancestors(mid) for s in name_senses(onto.classes[m].name)}
    facts = [e for e in exclusions if e.applies_to(sense, name)]
    upward = (_Facts.of(ancestors, ancestor_reason), _Facts.of([e.above for e in facts if e.above], fact_reason))
    below = (_Facts(frozenset(e.below for e in facts if e.below), frozenset(), frozenset(), fact_reason),)
    texts = ((frozenset(e.candidate.lower() for e in facts if not (e.above or e.below)), fact_reason),)
    return Readings(tuple(exact), upward, below, texts)


# ---------------------------------------------------------------- one word's questions


class WordFacts:
    """The questions one SHARD word can be asked: positives true of its chosen synset, and pools of negatives
    false under every reading of the word (`own`). A clip's other labels narrow the pools further, per clip.

    Synonym negatives are lemmas of co-hyponyms (hard) or of other SHARD synsets (random). Hypernym negatives are
    hypernyms of other SHARD words within `max_depth` steps; hard when they meet one of the word's own hypernyms
    within HARD_DEPTH steps (a sibling branch). `generality` maps every candidate to its synset's depth below the
    WordNet root, which negatives are matched on; `removed` counts, per reason, the pool candidates ruled out.
    """

    def __init__(self, sense: Sense, others: list[Sense], max_depth: int, own: Readings):
        wn = wordnet()
        self.sense, self.word, self.target = sense, sense.word, wn.synset(sense.synset)
        self.above = closure(self.target)
        self.own = own
        self.removed: dict[str, set[str]] = {}
        self.generality: dict[str, int] = {}

        lemmas = [text(x) for x in self.target.lemma_names()]
        self.synonyms = dedup(x for x in lemmas if x.lower() != self.word.lower())
        self._note(self.synonyms, self.target)
        cohyponyms = sorted({h for p in self.target.hypernyms() for h in p.hyponyms() if h != self.target}, key=str)
        self.syn_hard = self._keep((text(x), s) for s in cohyponyms for x in s.lemma_names())
        others_syn = [wn.synset(o.synset) for o in others]
        self.syn_random = [c for c in self._keep((text(x), s) for s in others_syn for x in s.lemma_names())
                           if c.lower() not in {h.lower() for h in self.syn_hard}]

        positive = {s: d for s, d in self.above.items() if d <= max_depth and s.name() not in UNINFORMATIVE}
        self.hypernyms: dict[str, int] = {}  # candidate text -> steps above the word
        for s, d in sorted(positive.items(), key=lambda kv: (kv[1], kv[0].name())):
            c = text(s.lemma_names()[0])
            if c not in self.hypernyms:
                self.hypernyms[c] = d
                self._note([c], s)
        pool = sorted({s for o in others_syn for s, d in closure(o).items()
                       if d <= max_depth and s.name() not in UNINFORMATIVE and s not in self.above
                       and s != self.target}, key=lambda s: s.name())
        hard, rand = [], []
        for s in pool:
            c = text(s.lemma_names()[0])
            if c in self.hypernyms or not self._keep([(c, s)]):
                continue
            meets = any(positive.get(a, HARD_DEPTH + 1) <= HARD_DEPTH for a in closure(s))
            (hard if meets else rand).append(c)
        self.hyp_hard, self.hyp_random = dedup(hard), dedup(rand)

    def _note(self, candidates, synset) -> None:
        for c in candidates:
            self.generality.setdefault(c, synset.min_depth())

    def _keep(self, pairs) -> list[str]:
        """Candidates (text, source synset) that are false under every reading of the word, deduplicated."""
        out = []
        for c, s in pairs:
            why = self.own.why_not(c)
            if why:
                self.removed.setdefault(why, set()).add(c.lower())
            else:
                out.append(c)
                self._note([c], s)
        return dedup(out)


# ---------------------------------------------------------------- the instruction data's leakage guard


@dataclass(frozen=True)
class Guard:
    """What tuning data must never teach: SHARD's words and synsets, and every fact SHARD asks about.

    A SHARD fact is a (word, candidate) relation; its closure is the candidate's synset and everything above it.
    So the guard holds every SHARD synset with all its hypernyms and the synsets of its co-hyponyms (the hard
    negatives): a training question whose candidate has a noun sense among them could teach a SHARD answer ("a
    speech synthesizer is a kind of person" teaches the "person" that SHARD asks about man and woman).
    """

    synsets: frozenset[str]  # SHARD synset names
    words: frozenset[str]  # every lemma of them, lower case with spaces
    facts: frozenset  # synsets no training candidate may name

    @classmethod
    def from_senses(cls, senses: list[Sense]) -> "Guard":
        wn = wordnet()
        targets = [wn.synset(s.synset) for s in senses]
        words = {s.word.lower() for s in senses} | {text(x).lower() for t in targets for x in t.lemma_names()}
        facts = set(targets)
        for t in targets:
            facts |= closure(t).keys()
            facts |= {h for p in t.hypernyms() for h in p.hyponyms()}
        return cls(frozenset(s.synset for s in senses), frozenset(words), frozenset(facts))

    def subject(self, sense: Sense) -> str | None:
        """Why questions about this label's synset would overlap SHARD, or None."""
        if sense.synset in self.synsets:
            return "SHARD synset"
        if sense.word.lower() in self.words:
            return "SHARD word"
        return None

    def candidate(self, candidate: str) -> str | None:
        """Why a training question may not ask about this candidate, or None."""
        if candidate.lower() in self.words:
            return "SHARD word"
        if any(s in self.facts for s in noun_senses(candidate)):
            return "SHARD fact"
        return None
