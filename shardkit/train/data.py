"""Interleaved instruction data: questions whose `<audio>` marker stands inside the text, from labelled clips.

Tuning a model on interleaved prompts needs many of them, built from the clips we have and the WordNet facts
SHARD tests, without teaching it SHARD's answers. So generation streams sample by sample from one seeded RNG
over small precomputed pools (1,000,000 samples in bounded memory, same seed → same bytes), keeps SHARD's words
and synsets out of synonym/hypernym questions unless asked, and mixes in a share of prepended (LTU-style)
identity prompts as replay against forgetting.

Output of `make_data(out, cfg)`:

- `out/data-00000.jsonl`, ... — `cfg.shard_size` records each, one JSON object a line:
  `{"id", "messages": [{"role": "user", "content": "... <audio> ..."}, {"role": "assistant", "content": ...}],
  "audios": ["/abs/clip.wav", ...], "task": identity|synonym|hypernym|description|replay,
  "placement": "interleaved"|"prepended", "clip_ids": [...], "facts": {"label", "synset", "candidate",
  "negative", "overlap"}}`. Interleaved: one `<audio>` marker per entry of `audios`, in order. Prepended (replay):
  no marker in the text; the audio goes before everything, as in LTU. `facts` says what the question is about.
- `out/meta.json` — written last, so its presence marks a complete folder: size, seed, config, the mix (requested
  and realised counts per task), the leakage (overlap) report, clips and labels used, the WordNet synset chosen
  for every label, and sha256 and record count of every shard.
- `out/sharegpt/` — the LLaMA-Factory / ms-swift format: `data/data-00000.jsonl`, ... holding only `messages`
  and `audios`, and `dataset_info.json` (entry `shardkit_instruct`: `formatting: sharegpt`, `columns` and `tags`).
  Those tools need one marker per audio in every sample, so replay samples carry their markers at the very start
  of the user message there (interleaved-at-position-0 is prepended, see `models/prompts.py`).
- `out/README.md` — this description, for whoever finds the folder.

Labels that are SHARD words take their audited synset from `benchmark/senses.tsv`. Every other label is mapped
automatically and without review: the whole display name, else a comma-separated part of it, as a WordNet noun
(`Dial tone` → dial_tone.n.01), else the head noun (the part's last word) — in each case the first noun sense,
skipping senses that cannot be a sound or its source (states, feelings, places, ...: `hum` is hum.n.03, not
busyness.n.01). Unreviewed senses are sometimes wrong for sounds (`Speech` → address.n.03, a formal speech),
which is why SHARD itself uses the audited table; the mapping of every label is listed in `meta.json` for
review. Labels with no noun sense (`Rapping`) get identity and description questions only.
"""

import hashlib
import json
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shardkit import __version__
from shardkit.benchmark.manifest import Clip
from shardkit.benchmark.relations import Guard, Readings, WordFacts, auto_synset, load_exclusions, readings
from shardkit.benchmark.senses import Sense
from shardkit.errors import ShardkitError
from shardkit.models.prompts import AUDIO, POSITIONS, SUBJECT, Placement, place_marker
from shardkit.resources.ontology import Ontology
from shardkit.suggest import did_you_mean
from shardkit.train.wordnet_text import TextQuestions
from shardkit.train.wordnet_text import held_out as held_out_subjects

log = logging.getLogger(__name__)

TASKS = ("identity", "synonym", "hypernym", "description", "replay", "synonym_text", "hypernym_text")
TEXT_TASKS = ("synonym_text", "hypernym_text")  # no audio: WordNet relations over held-out nouns (wordnet_text.py)
DEFAULT_MIX = {"identity": 0.3, "synonym": 0.25, "hypernym": 0.25, "description": 0.1, "replay": 0.1}
SIZES = {"40k": 40_000, "1m": 1_000_000}
SPLITS = ("train", "all")
MAX_OTHERS = 48  # labels whose lemmas and hypernyms feed one label's negatives: bounds pool building on big manifests
DATASET_NAME = "shardkit_instruct"  # the LLaMA-Factory dataset_info.json key
ROLES = ("system", "user", "assistant")
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
ANSWER = {True: "Yes", False: "No"}


# ---------------------------------------------------------------- config

@dataclass(frozen=True)
class DataConfig:
    size: int = 40_000  # the paper's small scale; 1,000,000 is the large one
    seed: int = 0  # one RNG stream drives every choice: same seed, same bytes
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))  # share per task; missing keys are 0
    allow_overlap: bool = False  # SHARD's words/synsets stay out of synonym/hypernym questions unless asked for
    shard_size: int = 100_000  # records per JSONL file: ~30 MB, small enough to stream, few enough to list
    split: str = "train"  # SHARD is built from the test split; "all" ignores splits (identity then shares recordings)
    max_depth: int = 6  # deepest hypernym asked about, as in SHARD: higher ones get vague
    placement: str = "interleaved"  # where the audio goes in identity/synonym/hypernym/description (replay: prepended)

    def __post_init__(self):
        problems = []
        for name in ("size", "shard_size", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            problems.append(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.allow_overlap, bool):
            problems.append(f"allow_overlap must be true or false, got {self.allow_overlap!r}")
        if self.placement not in (Placement.INTERLEAVED.value, Placement.PREPENDED.value):
            problems.append(f"placement must be interleaved or prepended, got {self.placement!r}")
        if self.split not in SPLITS:
            problems.append(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        problems += _mix_problems(self.mix)
        if problems:
            raise ShardkitError("; ".join(problems))
        object.__setattr__(self, "mix", {t: float(self.mix.get(t, 0.0)) for t in TASKS})

    @classmethod
    def from_dict(cls, values: Mapping) -> "DataConfig":
        """Build from a parsed YAML/JSON mapping; an unknown key is an error with a suggestion."""
        known = [f for f in cls.__dataclass_fields__]
        unknown = [f"unknown data config key {k!r}{did_you_mean(k, known)}" for k in values if k not in known]
        if unknown:
            raise ShardkitError("; ".join(unknown) + f" (known: {', '.join(known)})")
        return cls(**values)


def _mix_problems(mix) -> list[str]:
    if not isinstance(mix, Mapping):
        return [f"mix must map task names to shares, got {mix!r}"]
    problems, total = [], 0.0
    for key, share in mix.items():
        if key not in TASKS:
            problems.append(f"unknown mix key {key!r}{did_you_mean(key, TASKS)} (known: {', '.join(TASKS)})")
        elif isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share):
            problems.append(f"mix share {key}={share!r} is not a number")
        elif share < 0:
            problems.append(f"mix share {key}={share:g} is negative")
        else:
            total += share
    if not problems and abs(total - 1.0) > 1e-6:
        shares = ",".join(f"{k}={v:g}" for k, v in mix.items())
        problems.append(f"mix shares sum to {total:g}, not 1 ({shares})")
    return problems


def parse_mix(text: str) -> dict[str, float]:
    """`identity=0.3,replay=0.1,...` → {task: share}; keys and sums are checked by DataConfig."""
    mix: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ShardkitError(f"--mix: expected key=share pairs like identity=0.3,replay=0.1, got {part!r}")
        if key in mix:
            raise ShardkitError(f"--mix: {key!r} given twice")
        try:
            mix[key] = float(value)
        except ValueError as e:
            raise ShardkitError(f"--mix: share for {key!r} must be a number, got {value.strip()!r}") from e
    if not mix:
        raise ShardkitError("--mix is empty; give key=share pairs like identity=0.5,replay=0.5")
    return mix


def parse_size(text: str | int) -> int:
    """`40k`, `1m`, `2.5k` or a plain integer (underscores allowed) → a positive number of samples."""
    if isinstance(text, int):
        n = text
    else:
        m = re.fullmatch(r"\s*(\d[\d_]*(?:\.\d+)?)\s*([kKmM]?)\s*", str(text))
        if not m:
            raise ShardkitError(f"--size must be 40k, 1m or a whole number of samples, got {text!r}")
        value = float(m.group(1).replace("_", "")) * {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
        if value != int(value):
            raise ShardkitError(f"--size {text!r} is not a whole number of samples")
        n = int(value)
    if n < 1:
        raise ShardkitError(f"--size must be at least 1, got {text!r}")
    return n


# ---------------------------------------------------------------- labels → WordNet, and the leakage guard

@dataclass(frozen=True)
class AutoSense(Sense):
    """A label mapped to WordNet automatically (not reviewed); `lemma` is the word that matched."""

    lemma: str = ""

    @property
    def word(self) -> str:
        return self.lemma


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


def _label_senses(mids: list[str], onto: Ontology, senses: list[Sense]) -> dict[str, tuple[Sense | None, str]]:
    audited = {s.mid: s for s in senses}
    out: dict[str, tuple[Sense | None, str]] = {}
    for mid in mids:
        if mid in audited:
            out[mid] = (audited[mid], "senses.tsv")
            continue
        name = onto.name(mid)
        found = auto_synset(name)
        if found is None:
            out[mid] = (None, "none")
        else:
            syn, lemma, how = found
            out[mid] = (AutoSense(mid=mid, name=name, synset=syn, reason=f"automatic ({how})", lemma=lemma),
                        f"automatic ({how})")
    return out


def _build_pools(clips: list[Clip], root: Path, onto: Ontology, senses: list[Sense], cfg: DataConfig):
    """Per-label WordNet question pools after the leakage guard, per-clip records, and the overlap report."""
    guard = Guard.from_senses(senses)
    mids = list(dict.fromkeys(m for c in clips for m in c.labels))
    mapped = _label_senses(mids, onto, senses)
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


def _eligible(labels: dict[str, _Label], task: str) -> list[_Label]:
    """Labels with at least one positive and one negative for a yes/no task."""
    out = []
    for lb in labels.values():
        pos, hard, rand = getattr(lb, task[:3])
        if pos and (hard or rand):
            out.append(lb)
    return out


# ---------------------------------------------------------------- one sample at a time

class _Generator:
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


def generate(gen: _Generator, counts: dict[str, int]) -> Iterator[dict]:
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


def to_sharegpt(sample: dict) -> dict:
    """The LLaMA-Factory / ms-swift record: messages + audios, one marker per audio (prepended: at the start)."""
    messages = sample["messages"]
    if sample.get("placement") == Placement.PREPENDED:
        first = next(i for i, m in enumerate(messages) if m["role"] == "user")
        messages = [dict(m) for m in messages]
        messages[first]["content"] = AUDIO * len(sample["audios"]) + messages[first]["content"]
    return {"messages": messages, "audios": sample["audios"]}


# ---------------------------------------------------------------- writing

class _ShardWriter:
    """Writes lines into `prefix-00000.jsonl`, ... of `size` lines each, hashing as it goes."""

    def __init__(self, folder: Path, size: int, prefix: str = "data"):
        self.folder, self.size, self.prefix = folder, size, prefix
        self.shards: list[dict] = []
        self._f = None

    def write(self, line: str) -> None:
        if self._f is None or self.shards[-1]["n"] == self.size:
            self._close_one()
            name = f"{self.prefix}-{len(self.shards):05d}.jsonl"
            self._f, self._h = (self.folder / name).open("wb"), hashlib.sha256()
            self.shards.append({"file": name, "n": 0, "sha256": None})
        data = line.encode("utf-8")
        self._f.write(data)
        self._h.update(data)
        self.shards[-1]["n"] += 1

    def _close_one(self) -> None:
        if self._f is not None:
            self._f.close()
            self.shards[-1]["sha256"] = self._h.hexdigest()
            self._f = None

    def close(self) -> list[dict]:
        self._close_one()
        return self.shards


def _clear(out: Path) -> None:
    """Remove what an earlier make-data left in `out`, meta.json first (it marks a complete folder)."""
    (out / "meta.json").unlink(missing_ok=True)
    for pattern, folder in (("data-*.jsonl", out), ("data-*.jsonl", out / "sharegpt" / "data")):
        for old in sorted(folder.glob(pattern)) if folder.is_dir() else []:
            old.unlink()


def _select(clips: list[Clip], split: str) -> list[Clip]:
    if split == "all" or not any(c.split for c in clips):
        return clips
    return [c for c in clips if c.split == split]


def _shard_clips(folder: Path) -> tuple[set[str], set[str]]:
    """Clip ids and audio sha256s of a built SHARD, to keep out of tuning data."""
    from shardkit.benchmark.build import load_shard

    items, _ = load_shard(Path(folder))
    return {i["clip"]["id"] for i in items}, {i["clip"]["sha256"] for i in items if i["clip"].get("sha256")}


def _examples(items: list[str], k: int = 8) -> dict:
    return {"n": len(items), "examples": items[:k]}


def make_data(out: Path, cfg: DataConfig, manifest: Path | None = None, audio_root: Path | None = None,
              progress: Callable[[int, int], None] | None = None, exclude: Path | None = None) -> dict:
    """Generate `cfg.size` instruction samples into `out` (see the module docstring); return the meta dict.

    `exclude` is a built SHARD folder: every clip it holds is left out, by id and by the sha256 of its audio, so
    tuning never hears a test clip even when both come from one manifest. Raises ShardkitError for a bad manifest
    (file:line), no usable clip, or a task with a share but no questions.
    """
    from shardkit.benchmark.manifest import read_manifest
    from shardkit.benchmark.senses import load_senses
    from shardkit.resources.ontology import ontology
    from shardkit.resources.samples import build_samples

    if manifest is None and audio_root is not None:
        raise ShardkitError("--audio-root needs --manifest (the bundled samples know where their audio is)")
    onto = ontology()
    senses = load_senses(onto)
    manifest = manifest or build_samples(0)
    clips = read_manifest(manifest, audio_root, onto)
    root = audio_root or manifest.parent
    selected = _select(clips, cfg.split)
    held_out = _shard_clips(exclude) if exclude is not None else (set(), set())
    kept = [c for c in selected if c.id not in held_out[0] and (c.sha256 is None or c.sha256 not in held_out[1])]
    excluded = len(selected) - len(kept)
    if excluded:
        log.warning("%d clips are SHARD's (%s) and are left out", excluded, exclude)
    selected = kept
    usable = [c for c in selected if c.available]
    unavailable = [f"{c.id}: {c.problem}" for c in selected if not c.available]
    if not usable:
        raise ShardkitError(f"{manifest}: no usable clip ({len(clips)} in the manifest, {len(selected)} in split "
                            f"{cfg.split!r}, {len(unavailable)} of those unavailable); check the split and audio paths")
    if unavailable:
        log.warning("%d clips have unreadable or missing audio and are skipped (e.g. %s)", len(unavailable),
                    unavailable[0])
    labels, recs, guard, report = _build_pools(usable, root, onto, senses, cfg)
    syn, hyp = _eligible(labels, "synonym"), _eligible(labels, "hypernym")
    counts = quotas(cfg.mix, cfg.size)
    for task, pool in (("synonym", syn), ("hypernym", hyp)):
        if counts[task] and not pool:
            hint = "" if cfg.allow_overlap else " after the leakage guard; pass --allow-overlap to include SHARD words,"
            raise ShardkitError(f"mix asks for {task}={cfg.mix[task]:g} but none of the {len(labels)} labels has a "
                                f"{task} question with a yes and a no answer{hint} or set {task}=0 in --mix")
    spans = sum(1 for c in usable if c.start or c.end is not None)
    if spans:
        log.warning("%d clips are segments of longer files; `audios` names the whole file (clip_ids and the "
                    "manifest give the times)", spans)

    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    (out / "sharegpt" / "data").mkdir(parents=True, exist_ok=True)
    main = _ShardWriter(out, cfg.shard_size)
    export = _ShardWriter(out / "sharegpt" / "data", cfg.shard_size)
    subjects = held_out_subjects(guard, cfg.max_depth) if any(counts[t] for t in TEXT_TASKS) else None
    gen = _Generator(random.Random(cfg.seed), recs, syn, hyp, guard, cfg.placement, subjects)
    realised = dict.fromkeys(TASKS, 0)
    overlapping = 0
    try:
        for i, sample in enumerate(generate(gen, counts)):
            main.write(json.dumps(sample, ensure_ascii=False) + "\n")
            export.write(json.dumps(to_sharegpt(sample), ensure_ascii=False) + "\n")
            realised[sample["task"]] += 1
            overlapping += sample["facts"]["overlap"]
            if progress and (i + 1) % 1000 == 0:
                progress(i + 1, cfg.size)
    finally:
        shards, exported = main.close(), export.close()
    if progress:
        progress(cfg.size, cfg.size)

    shard_clips = [c for c in recs if any(lb.sense and lb.sense.synset in guard.synsets for lb in c.labels)]
    n_sense = sum(1 for lb in labels.values() if lb.sense)
    meta = {
        "shardkit_version": __version__,
        "size": cfg.size,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "mix": {t: {"requested_share": cfg.mix[t], "requested": counts[t], "realised": realised[t],
                    "realised_share": round(realised[t] / cfg.size, 6)} for t in TASKS},
        "overlap": {
            "allow_overlap": cfg.allow_overlap,
            "action": "included" if cfg.allow_overlap else "excluded from synonym/hypernym questions",
            "shard": {"senses": len(guard.synsets), "words": len(guard.words), "fact_synsets": len(guard.facts)},
            "labels": _examples(report["subjects"]),
            "candidates": {t: {"words": _examples(sorted({c for _, c in v})), "label_word_pairs": len(v)}
                           for t, v in report["candidates"].items()},
            "samples_touching_shard": overlapping,
            "identity": {
                "clips_with_shard_label": len(shard_clips),
                "note": ("identity, labeling, description and replay questions on clips with SHARD labels are kept: "
                         + ("they are train-split recordings, not SHARD's test clips" if cfg.split == "train" and
                            any(c.split for c in clips) else "the manifest has no train/test split, so if SHARD was "
                            "built from it these clips may be SHARD's own")),
            },
        },
        "text_questions": None if gen.text is None else {
            "subjects": len(gen.text.subjects), "with_synonyms": len(gen.text.with_synonyms),
            "note": "text-only WordNet relations over everyday nouns outside SHARD's words, synsets and facts"},
        "clips": {"manifest": len(clips), "selected": len(selected), "split": cfg.split,
                  "excluded_shard": {"shard": str(exclude) if exclude else None, "clips": excluded},
                  "left_out_by_split": len(clips) - len(selected), "used": len(usable),
                  "unavailable": _examples(unavailable), "segments": spans},
        "labels": {
            "n": len(labels), "with_synset": n_sense,
            "audited": sum(1 for lb in labels.values() if lb.how == "senses.tsv"),
            "automatic": sum(1 for lb in labels.values() if lb.how.startswith("automatic")),
            "without_synset": [lb.name for lb in labels.values() if lb.sense is None],
            "synonym_pool": len(syn), "hypernym_pool": len(hyp),
            "mapping": {lb.mid: {"name": lb.name, "synset": lb.sense.synset if lb.sense else None, "how": lb.how,
                                 "overlap": lb.overlap} for lb in labels.values()},
        },
        "shards": shards,
        "sharegpt": {"dataset_info": "sharegpt/dataset_info.json", "shards": exported},
        "manifest": {"path": str(manifest), "sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()},
        "audio_root": str(root.resolve()),
    }
    info = {DATASET_NAME: {
        "file_name": "data", "formatting": "sharegpt",
        "columns": {"messages": "messages", "audios": "audios"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }}
    (out / "sharegpt" / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "README.md").write_text("# shardkit instruction data\n\nWritten by `shardkit make-data` "
                                   f"(shardkit {__version__}, seed {cfg.seed}, {cfg.size} samples).\n\n"
                                   + (__doc__ or "").split("\n\n", 1)[-1])
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    log.info("wrote %d samples in %d shards to %s", cfg.size, len(shards), out)
    return meta


# ---------------------------------------------------------------- reading (the trainer's side)

def iter_samples(folder: Path, start: int = 0) -> Iterator[dict]:
    """Samples of a make-data folder in order, from sample `start` (whole shards before it are not read)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise ShardkitError(f"{folder}: no meta.json, so not a complete `shardkit make-data` output; rerun make-data")
    try:
        shards = json.loads(meta_path.read_text())["shards"]
    except (ValueError, KeyError) as e:
        raise ShardkitError(f"{meta_path}: not a make-data meta.json ({e}); rerun make-data") from e
    skip = start
    for shard in shards:
        path = folder / shard["file"]
        if not path.is_file():
            raise ShardkitError(f"{path}: shard listed in meta.json is missing; rerun make-data")
        if skip >= shard["n"]:
            skip -= shard["n"]
            continue
        with path.open(encoding="utf-8") as f:
            for line, text in enumerate(f, start=1):
                if skip:
                    skip -= 1
                    continue
                try:
                    sample = json.loads(text)
                except ValueError as e:
                    raise ShardkitError(f"{path}:{line}: not valid JSON ({e.msg})") from e
                yield sample


def validate_sample(sample, where: str) -> None:
    """Raise a one-line ShardkitError if a sample cannot be trained on as written.

    Checks: messages is a list of {role, content} with a user turn and an assistant turn last; audios is a list of
    paths; an interleaved sample has exactly one `<audio>` marker per audio; a prepended one has none (or one per
    audio, which the prompt builder drops). A sample without `placement` (the sharegpt export) is interleaved.
    """
    if not isinstance(sample, dict):
        raise ShardkitError(f"{where}: a sample must be a JSON object, got {type(sample).__name__}")
    messages, audios = sample.get("messages"), sample.get("audios")
    if not isinstance(messages, list) or len(messages) < 2:
        raise ShardkitError(f"{where}: 'messages' must be a list of at least a user and an assistant message")
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ShardkitError(f"{where}: messages[{k}] must be {{'role': system|user|assistant, 'content': str}}, "
                                f"got {m!r:.80}")
    if not any(m["role"] == "user" for m in messages) or messages[-1]["role"] != "assistant":
        raise ShardkitError(f"{where}: messages need a user turn and must end with the assistant's answer")
    if not isinstance(audios, list) or not all(isinstance(a, str) and a for a in audios):
        raise ShardkitError(f"{where}: 'audios' must be a list of audio file paths")
    placement = sample.get("placement", Placement.INTERLEAVED.value)
    if placement not in (Placement.INTERLEAVED.value, Placement.PREPENDED.value):
        raise ShardkitError(f"{where}: placement must be interleaved or prepended, got {placement!r}")
    markers = sum(m["content"].count(AUDIO) for m in messages)
    if placement == Placement.INTERLEAVED.value and markers != len(audios):
        raise ShardkitError(f"{where}: {markers} {AUDIO} marker(s) but {len(audios)} audio file(s) in an interleaved "
                            f"sample; put one marker where each clip goes")
    if placement == Placement.PREPENDED.value and markers not in (0, len(audios)):
        raise ShardkitError(f"{where}: prepended sample has {markers} {AUDIO} marker(s) for {len(audios)} audio "
                            f"file(s); use none")
    if "clip_ids" in sample and len(sample["clip_ids"]) != len(audios):
        raise ShardkitError(f"{where}: {len(sample['clip_ids'])} clip_ids for {len(audios)} audio file(s)")
