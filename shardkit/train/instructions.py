"""Instruction samples, one at a time: questions about labelled clips (identity, synonym, hypernym, description,
prepended replay) and text-only WordNet relation questions, from small pools built once.

Tuning a model on interleaved prompts needs many of them, built from the clips we have and the WordNet facts
SHARD tests, without teaching it SHARD's answers. So generation streams sample by sample from one seeded RNG
over small precomputed pools (1,000,000 samples in bounded memory, same seed → same bytes), keeps SHARD's words
and synsets out of synonym/hypernym questions unless asked (the guard in `benchmark/relations.py`), and mixes in
a share of prepended (LTU-style) identity prompts as replay against forgetting. `train/folder.py` writes them.
"""

import math
import random
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shardkit.benchmark.labels import label_senses
from shardkit.benchmark.manifest import Clip
from shardkit.benchmark.relations import Guard, Readings, WordFacts, load_exclusions, readings
from shardkit.benchmark.senses import Sense
from shardkit.models.prompts import AUDIO, SUBJECT, place_marker
from shardkit.names import POSITIONS, Placement
from shardkit.resources.ontology import Ontology
from shardkit.train.config import TASKS, TEXT_TASKS, DataConfig
from shardkit.train.wordnet_text import TextQuestions

MAX_OTHERS = 48  # labels whose lemmas and hypernyms feed one label's negatives: bounds pool building on big manifests
ANSWER = {True: "Yes", False: "No"}

# ---------------------------------------------------------------- templates ({subject} takes the marker)

IDENTITY = (
    "What is the source of {subject}? Answer in a few words.",
    "What can be heard in {subject}?",
    "Name the sound source in {subject}.",
    "Which sound class best describes {subject}?",
    "What is making {subject}?",
    "Identify {subject} with a short label.",
)
LABELING = (  # answer: every label of the clip, main first
    "List every sound class present in {subject}, separated by semicolons.",
    "Which AudioSet labels apply to {subject}? Separate them with semicolons.",
    "Tag {subject} with all the sound classes you hear, separated by semicolons.",
)
SYNONYM = (  # the first is SHARD's own question (eval/scoring.py)
    'Answer yes or no: is the source of {subject} also known as "{candidate}"?',
    'Could the source of {subject} also be called "{candidate}"? Answer yes or no.',
    'Does "{candidate}" name the same thing as the source of {subject}? Reply with yes or no.',
    'Listen to {subject}. Is "{candidate}" a synonym for what makes this sound? Answer yes or no.',
)
HYPERNYM = (
    "Answer yes or no: is the source of {subject} a kind of {candidate}?",
    'Does the source of {subject} belong to the category "{candidate}"? Reply with yes or no.',
    "Is what makes {subject} a type of {candidate}? Answer yes or no.",
    'Listen to {subject}. Is the thing making this sound a kind of "{candidate}"? Answer yes or no.',
)
DESCRIPTION = (  # the first asks for one sentence, so its answer never adds a second
    "Describe {subject} in one sentence.",
    "Briefly describe {subject}.",
    "What does {subject} sound like? Describe it briefly.",
    "Give a short description of {subject}.",
)
LEADS = ("This recording features", "The clip contains", "What you hear is", "You can hear")


# ---------------------------------------------------------------- pools, computed once

@dataclass
class _Label:
    mid: str
    name: str  # display name: the identity answer
    text: str  # for descriptions: first comma part, lower-cased unless an acronym
    desc: str  # first sentence of the ontology description, no final period
    sense: Sense | None = None
    how: str = "none"
    overlap: str | None = None  # why this label, as a question's subject, overlaps SHARD
    readings: Readings | None = None  # what this label may be, to keep a "no" true for every label of a clip
    syn: tuple[list[str], ...] = field(default_factory=lambda: ([], [], []))  # positives, hard and random negatives
    hyp: tuple[list[str], ...] = field(default_factory=lambda: ([], [], []))
    clips: list = field(default_factory=list)


@dataclass(frozen=True)
class _Clip:
    id: str
    audio: str  # absolute path
    labels: tuple[_Label, ...]  # main first
    above: tuple[_Label, ...]  # other labels that are ontology ancestors of the main one (Dial tone → Telephone)
    beside: tuple[_Label, ...]  # the rest
    sources: tuple[_Label, ...] = ()  # labels that name a source of their own (not an ontology ancestor of another)


def _lower(name: str) -> str:
    text = name.split(",")[0].strip()
    return text if len(text) > 1 and text[1].isupper() else text[:1].lower() + text[1:]


def _first_sentence(desc: str) -> str:
    return re.split(r"(?<=\.)\s", " ".join(desc.split()), maxsplit=1)[0].rstrip(".").strip()


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def build_pools(clips: list[Clip], root: Path, onto: Ontology, senses: list[Sense], cfg: DataConfig):
    """Per-label WordNet question pools after the leakage guard, per-clip records, and the overlap report."""
    guard = Guard.from_senses(senses)
    mids = list(dict.fromkeys(m for c in clips for m in c.labels))
    mapped = label_senses(mids, onto, senses)
    labels: dict[str, _Label] = {}
    for mid in mids:
        name = onto.name(mid)
        sense, how = mapped[mid]
        labels[mid] = _Label(mid=mid, name=name, text=_lower(name), desc=_first_sentence(onto.classes[mid].description),
                             sense=sense, how=how)
    with_sense = [lb.sense for lb in labels.values() if lb.sense is not None]
    exclusions = load_exclusions()
    report = {"subjects": [], "candidates": {"synonym": [], "hypernym": []}}
    for lb in labels.values():
        lb.readings = readings(lb.sense, lb.name, lb.mid, onto, exclusions, co_label=True)
        if lb.sense is None:
            continue
        lb.overlap = guard.subject(lb.sense)
        if lb.overlap:
            report["subjects"].append(f"{lb.name} ({lb.sense.synset}, {lb.overlap})")
            if not cfg.allow_overlap:
                continue
        others = sorted((s for s in with_sense if s.synset != lb.sense.synset), key=lambda s: s.mid)
        others = list({s.synset: s for s in others}.values())  # one per synset: labels may share a sense
        if len(others) > MAX_OTHERS:
            others = random.Random(lb.mid).sample(others, MAX_OTHERS)
        own = readings(lb.sense, lb.name, lb.mid, onto, exclusions)
        facts = WordFacts(lb.sense, others, cfg.max_depth, own)
        for task, lists in (("synonym", (facts.synonyms, facts.syn_hard, facts.syn_random)),
                            ("hypernym", (list(facts.hypernyms), facts.hyp_hard, facts.hyp_random))):
            hits = sorted({c.lower() for xs in lists for c in xs if guard.candidate(c)})
            report["candidates"][task] += [(lb.name, c) for c in hits]
            if not cfg.allow_overlap:
                lists = tuple([c for c in xs if not guard.candidate(c)] for xs in lists)
            setattr(lb, task[:3], lists)
    recs = []
    for c in clips:
        up = onto.ancestors(c.labels[0])
        rest = [labels[m] for m in c.labels[1:]]
        implied = {a for m in c.labels for a in onto.ancestors(m)}  # AudioSet adds ancestors: they name no source
        rec = _Clip(id=c.id, audio=str((root / c.path).resolve()), labels=tuple(labels[m] for m in c.labels),
                    above=tuple(lb for lb in rest if lb.mid in up), beside=tuple(lb for lb in rest if lb.mid not in up),
                    sources=tuple(labels[m] for m in c.labels if m not in implied))
        for lb in rec.labels:
            lb.clips.append(rec)
        recs.append(rec)
    return labels, recs, guard, report


def eligible(labels: dict[str, _Label], task: str) -> list[_Label]:
    """Labels with at least one positive and one negative for a yes/no task."""
    out = []
    for lb in labels.values():
        pos, hard, rand = getattr(lb, task[:3])
        if pos and (hard or rand):
            out.append(lb)
    return out


# ---------------------------------------------------------------- one sample at a time

class Generator:
    """Draws samples from the pools; every random choice comes from the one RNG, in a fixed order."""

    def __init__(self, rng: random.Random, clips: list[_Clip], syn: list[_Label], hyp: list[_Label], guard: Guard,
                 placement: str = Placement.INTERLEAVED.value, text: Iterable | None = None):
        self.rng, self.clips, self.pools, self.guard = rng, clips, {"synonym": syn, "hypernym": hyp}, guard
        self.placement = Placement(placement)
        self.text = None if text is None else TextQuestions(rng, list(text))  # the held-out nouns, if asked for
        self._unrelated: dict[tuple[str, str], bool] = {}  # (mid, candidate) → no sense of it relates to the label

    def _true_no(self, clip: _Clip, asked: _Label, candidate: str) -> bool:
        """A negative drawn for one label must be false of every other source in the clip, under every reading (a
        synthesized-speech clip is labelled Speech synthesizer too: "device" is no "no" for its voice)."""
        for lb in clip.sources:
            if lb is asked or lb.readings is None:
                continue
            key = (lb.mid, candidate)
            if key not in self._unrelated:
                self._unrelated[key] = lb.readings.why_not(candidate) is None
            if not self._unrelated[key]:
                return False
        return True

    def _question(self, template: str) -> str:
        if self.placement == Placement.PREPENDED:  # LTU's way: the subject in words, the audio before everything
            return template.replace("{subject}", SUBJECT[self.rng.random() < 0.5])
        return place_marker(template, self.rng.choice(POSITIONS), self.rng.random() < 0.5)

    def identity(self, replay: bool) -> tuple[str, str, _Clip, dict]:
        rng = self.rng
        clip = rng.choice(self.clips)
        main = clip.labels[0]
        if rng.random() < 0.75:
            template, answer = rng.choice(IDENTITY), main.name
        else:
            template, answer = rng.choice(LABELING), "; ".join(lb.name for lb in clip.labels)
        if replay:  # always prepended, whatever the data's placement
            text = template.replace("{subject}", SUBJECT[rng.random() < 0.5])
        else:
            text = self._question(template)
        return text, answer, clip, self._facts(main)

    def yes_no(self, task: str) -> tuple[str, str, _Clip, dict]:
        rng = self.rng
        lb = rng.choice(self.pools[task])  # label-uniform: a common label does not crowd out rare facts
        clip = rng.choice(lb.clips)
        pos, hard, rand = getattr(lb, task[:3])
        yes, cand, kind = rng.random() < 0.5, None, None
        if not yes:
            for _ in range(8):
                kind = "hard" if hard and (not rand or rng.random() < 0.5) else "random"
                cand = rng.choice(hard if kind == "hard" else rand)
                if self._true_no(clip, lb, cand):
                    break
            else:  # every draw relates to another label of this clip: ask a positive instead
                yes = True
        if yes:
            cand, kind = rng.choice(pos), None
        template = rng.choice(SYNONYM if task == "synonym" else HYPERNYM)
        text = self._question(template.replace("{candidate}", cand))
        overlap = bool(lb.overlap) or bool(self.guard.candidate(cand))
        return text, ANSWER[yes], clip, self._facts(lb, cand, kind, overlap)

    def description(self) -> tuple[str, str, _Clip, dict]:
        rng = self.rng
        clip = rng.choice(self.clips)
        k = rng.randrange(len(DESCRIPTION))
        main, above, beside = clip.labels[0], clip.above, clip.beside
        text = f"{rng.choice(LEADS)} {main.text}"
        if above:
            text += f" ({_article(above[0].text)} {above[0].text} sound)"
        if beside:
            names = [lb.text for lb in beside]
            text += " together with " + (names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}")
        desc = main.desc
        if desc and re.match(r"(A|An|The) ", desc):  # an appositive keeps it one sentence
            text += f", {desc[0].lower()}{desc[1:]}."
        elif desc and k != 0:
            text += f". {desc}."
        else:
            text += "."
        return self._question(DESCRIPTION[k]), text, clip, self._facts(main)

    @staticmethod
    def _facts(lb: _Label, candidate=None, negative=None, overlap=False) -> dict:
        return {"label": lb.mid, "synset": lb.sense.synset if lb.sense else None, "candidate": candidate,
                "negative": negative, "overlap": overlap}


def quotas(mix: Mapping[str, float], size: int) -> dict[str, int]:
    """Exact sample counts per task: largest remainder, ties in TASKS order."""
    raw = {t: mix.get(t, 0.0) * size for t in TASKS}
    out = {t: math.floor(v) for t, v in raw.items()}
    for t in sorted(TASKS, key=lambda t: (-(raw[t] - out[t]), TASKS.index(t)))[: size - sum(out.values())]:
        out[t] += 1
    return out


def generate(gen: Generator, counts: dict[str, int]) -> Iterator[dict]:
    """Samples in a random interleaving of the tasks that realises `counts` exactly (drawn without replacement)."""
    left = [counts[t] for t in TASKS]
    total = sum(left)
    rng = gen.rng
    for i in range(total):
        r = rng.randrange(total - i)
        k = 0
        while r >= left[k]:
            r -= left[k]
            k += 1
        left[k] -= 1
        task = TASKS[k]
        placement = Placement.PREPENDED if task == "replay" else gen.placement
        clip = None
        if task in TEXT_TASKS:
            text, answer, facts = gen.text.question(task)
            placement = Placement.INTERLEAVED  # no audio, no marker: the placement is moot
        elif task in ("identity", "replay"):
            text, answer, clip, facts = gen.identity(task == "replay")
        elif task == "description":
            text, answer, clip, facts = gen.description()
        else:
            text, answer, clip, facts = gen.yes_no(task)
        yield {"id": f"{i:08d}", "messages": [{"role": "user", "content": text},
                                              {"role": "assistant", "content": answer}],
               "audios": [clip.audio] if clip else [], "task": task, "placement": placement.value,
               "clip_ids": [clip.id] if clip else [], "facts": facts}


def to_sharegpt(sample: dict, root: Path | None = None) -> dict:
    """The LLaMA-Factory / ms-swift record: messages + audios, one marker per audio (prepended: at the start); with
    `root`, each audio path under it is written relative to it (LLaMA-Factory's `media_dir`), so the export moves."""
    messages = sample["messages"]
    if sample.get("placement") == Placement.PREPENDED:
        first = next(i for i, m in enumerate(messages) if m["role"] == "user")
        messages = [dict(m) for m in messages]
        messages[first]["content"] = AUDIO * len(sample["audios"]) + messages[first]["content"]
    audios = sample["audios"]
    if root is not None:
        audios = [str(Path(a).relative_to(root)) if Path(a).is_relative_to(root) else a for a in audios]
    return {"messages": messages, "audios": audios}
