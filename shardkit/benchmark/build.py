"""Build SHARD: yes/no synonym and hypernym questions and an identity question, bound to audio clips.

Every clip whose labels include a SHARD word (see senses.tsv) gets one identity item, and for each of its SHARD
words up to `per_task` positive synonym and hypernym questions with as many negatives, half of them hard.
A negative is never related to the word in WordNet by *any* sense of the candidate (shared synset, hypernym or
hyponym), so "no" is always right. Sampling is seeded per clip, so the same seed gives the same bytes.
"""

import hashlib
import json
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from shardkit import __version__
from shardkit.benchmark.manifest import Clip
from shardkit.benchmark.senses import Sense
from shardkit.errors import ShardkitError
from shardkit.resources.ontology import Ontology
from shardkit.resources.wordnet import wordnet

TASKS = ("identity", "synonym", "hypernym")
# Nodes too general to make a question ("is the sound's source a kind of entity?") or WordNet-internal jargon.
UNINFORMATIVE = frozenset({
    "entity.n.01", "physical_entity.n.01", "abstraction.n.06", "object.n.01", "whole.n.02", "thing.n.12",
    "matter.n.03", "causal_agent.n.01", "psychological_feature.n.01", "event.n.01", "attribute.n.02",
    "relation.n.01", "group.n.01", "measure.n.02", "communication.n.02", "instrumentality.n.03", "unit.n.05",
    "physical_phenomenon.n.01", "process.n.06", "natural_phenomenon.n.01", "act.n.02", "part.n.02",
})

HARD_DEPTH = 2


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    max_depth: int = 6  # hypernym positives up to this many steps above the word: deeper ones get vague
    per_task: int = 4  # positives per clip, word and task (as many negatives): keeps common words from dominating
    split: str = "auto"  # clips of this split; "auto" = "test" when the manifest has splits, else all

    def __post_init__(self):
        if self.max_depth < 1:
            raise ShardkitError(f"max_depth must be >= 1, got {self.max_depth}")
        if self.per_task < 1:
            raise ShardkitError(f"per_task must be >= 1, got {self.per_task}")
        if self.split not in ("auto", "train", "test", "all"):
            raise ShardkitError(f"split must be auto, train, test or all, got {self.split!r}")


def _text(lemma: str) -> str:
    return lemma.replace("_", " ")


def closure(synset) -> dict:
    """Every hypernym (incl. instance hypernyms) of `synset` with its shortest distance in steps."""
    depth, frontier = {}, [synset]
    for d in range(1, 64):
        frontier = [h for s in frontier for h in s.hypernyms() + s.instance_hypernyms() if h not in depth]
        if not frontier:
            break
        for h in frontier:
            depth.setdefault(h, d)
    return depth


class Relations:
    """WordNet facts about one SHARD word, computed once, from which its questions are drawn."""

    def __init__(self, sense: Sense, others: list[Sense], max_depth: int):
        wn = wordnet()
        self.sense, self.target = sense, wn.synset(sense.synset)
        self.word = sense.word
        self.above = closure(self.target)
        lemma_senses = {s for lemma in self.target.lemma_names() for s in wn.synsets(lemma)}
        self._lemma_senses = lemma_senses  # any synset that any of the word's lemmas can mean

        self.synonyms = _dedup(_text(x) for x in self.target.lemma_names() if _text(x).lower() != self.word.lower())
        cohyponyms = {h for p in self.target.hypernyms() for h in p.hyponyms() if h != self.target}
        hard = _dedup(_text(x) for s in sorted(cohyponyms, key=str) for x in s.lemma_names())
        self.syn_hard = [c for c in hard if self.unrelated(c)]
        rand = _dedup(_text(x) for o in others for x in wn.synset(o.synset).lemma_names())
        self.syn_random = [c for c in rand if c not in self.syn_hard and self.unrelated(c)]

        self.positive = {s: d for s, d in self.above.items() if d <= max_depth and s.name() not in UNINFORMATIVE}
        self.hypernyms = {}  # candidate text -> depth
        for s, d in sorted(self.positive.items(), key=lambda kv: (kv[1], kv[0].name())):
            self.hypernyms.setdefault(_text(s.lemma_names()[0]), d)
        self.hyp_hard, self.hyp_random = [], []
        pool = {s for o in others for s, d in closure(wordnet().synset(o.synset)).items()
                if d <= max_depth and s.name() not in UNINFORMATIVE and s not in self.above and s != self.target}
        for s in sorted(pool, key=lambda s: s.name()):
            cand = _text(s.lemma_names()[0])
            if cand in self.hypernyms or not self.unrelated(cand):
                continue
            # hard: a sibling branch, meeting the word's own hypernyms within HARD_DEPTH steps of the word
            hard = any(self.positive.get(a, HARD_DEPTH + 1) <= HARD_DEPTH for a in closure(s))
            (self.hyp_hard if hard else self.hyp_random).append(cand)
        self.hyp_hard, self.hyp_random = _dedup(self.hyp_hard), _dedup(self.hyp_random)

    def unrelated(self, candidate: str) -> bool:
        """True if no sense of `candidate` is a synonym, hypernym or hyponym of the word, or the word itself."""
        wn = wordnet()
        if candidate.lower() in {_text(x).lower() for x in self.target.lemma_names()}:
            return False
        senses = wn.synsets(candidate.replace(" ", "_"))
        if not senses:
            return False  # not a WordNet word at all: cannot vouch for it
        if set(senses) & self._lemma_senses:
            return False
        for s in senses:
            if s.pos() != "n":
                continue
            if s in self.above or self.target in closure(s):
                return False
        return True


def _dedup(items) -> list[str]:
    seen, out = set(), []
    for x in items:
        if x.lower() not in seen:
            seen.add(x.lower())
            out.append(x)
    return out


def aliases(sense: Sense, onto: Ontology) -> list[str]:
    """Answers accepted for identity: the display name, its comma parts, the ontology name, the synset's lemmas."""
    parts = [sense.name, *[p.strip() for p in sense.name.split(",")], onto.classes[sense.mid].name]
    return _dedup([*parts, *(_text(x) for x in wordnet().synset(sense.synset).lemma_names())])


def _item(task, rel: Relations, clip_dict, candidate, answer, kind=None, depth=None, alias=()):
    return {
        "id": f"{task}:{clip_dict['id']}:{rel.sense.mid}:{candidate or ''}",
        "task": task, "word": rel.word, "mid": rel.sense.mid, "synset": rel.sense.synset, "candidate": candidate,
        "answer": answer, "negative_kind": kind, "depth": depth, "aliases": list(alias), "clip": clip_dict,
    }


def _balanced(rng: random.Random, positives: list[str], hard: list[str], rand: list[str], k: int):
    """Up to k positives and exactly as many negatives, half hard where the hard pool allows."""
    n = min(k, len(positives), len(hard) + len(rand))
    n_hard = min(math.ceil(n / 2), len(hard))
    n_rand = min(n - n_hard, len(rand))
    n_hard = min(n - n_rand, len(hard))
    pos = rng.sample(positives, n)
    return pos, rng.sample(hard, n_hard), rng.sample(rand, n_rand)


def clip_record(clip: Clip) -> dict:
    return {"id": clip.id, "path": clip.path, "start": clip.start, "end": clip.end, "labels": list(clip.labels),
            "sha256": clip.sha256, "available": clip.available}


def build_items(clips: list[Clip], senses: list[Sense], onto: Ontology, cfg: BuildConfig) -> list[dict]:
    """All SHARD items for the clips, in manifest order; deterministic given cfg.seed."""
    by_mid = {s.mid: s for s in senses}
    rels: dict[str, Relations] = {}
    items = []
    for clip in clips:
        words = [by_mid[m] for m in clip.labels if m in by_mid]
        if not words:
            continue
        cd = clip_record(clip)
        for i, sense in enumerate(words):
            if sense.mid not in rels:
                rels[sense.mid] = Relations(sense, [o for o in senses if o.mid != sense.mid], cfg.max_depth)
            rel = rels[sense.mid]
            if i == 0:  # one identity question per clip, about its main source
                items.append(_item("identity", rel, cd, None, sense.name, alias=aliases(sense, onto)))
            rng = random.Random(f"{cfg.seed}:{clip.id}:{sense.mid}")
            pos, hard, rand = _balanced(rng, rel.synonyms, rel.syn_hard, rel.syn_random, cfg.per_task)
            items += [_item("synonym", rel, cd, c, "yes") for c in pos]
            items += [_item("synonym", rel, cd, c, "no", "hard") for c in hard]
            items += [_item("synonym", rel, cd, c, "no", "random") for c in rand]
            pos, hard, rand = _balanced(rng, list(rel.hypernyms), rel.hyp_hard, rel.hyp_random, cfg.per_task)
            items += [_item("hypernym", rel, cd, c, "yes", depth=rel.hypernyms[c]) for c in pos]
            items += [_item("hypernym", rel, cd, c, "no", "hard") for c in hard]
            items += [_item("hypernym", rel, cd, c, "no", "random") for c in rand]
    return items


def select_clips(clips: list[Clip], split: str) -> list[Clip]:
    if split == "auto":
        split = "test" if any(c.split for c in clips) else "all"
    return clips if split == "all" else [c for c in clips if c.split == split]


def counts(items: list[dict]) -> dict:
    out: dict = {}
    for task in TASKS:
        its = [i for i in items if i["task"] == task]
        c = Counter(i["answer"] for i in its) if task != "identity" else Counter()
        kinds = Counter(i["negative_kind"] for i in its if i["negative_kind"])
        out[task] = {"n": len(its), **({"yes": c["yes"], "no": c["no"], **kinds} if task != "identity" else {})}
    return out


def write(out: Path, items: list[dict], clips: list[Clip], senses: list[Sense], cfg: BuildConfig,
          audio_root: Path, manifest: Path) -> dict:
    """Write shard.jsonl, meta.json and the datasets export; return the meta dict."""
    out.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items).encode()
    (out / "shard.jsonl").write_bytes(data)
    used = {i["clip"]["id"] for i in items}
    words = Counter(i["word"] for i in items if i["task"] == "identity")
    shard_mids, item_mids = {s.mid for s in senses}, {i["mid"] for i in items}
    meta = {
        "shardkit_version": __version__,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "sha256": hashlib.sha256(data).hexdigest(),
        "n_items": len(items),
        "counts": counts(items),
        "n_clips": len(used),
        "n_clips_without_shard_word": sum(1 for c in clips if not shard_mids & set(c.labels)),
        "words_with_clips": dict(sorted(words.items())),
        "words_without_clips": sorted(s.name for s in senses if s.mid not in item_mids),
        "unavailable": [{"id": c.id, "reason": c.problem} for c in clips if c.id in used and not c.available],
        "manifest": {"path": str(manifest), "sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()},
        "audio_root": str(audio_root.resolve()),
        "wordnet": "3.0",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    _export_datasets(out / "hf", items, audio_root)
    return meta


def _export_datasets(folder: Path, items: list[dict], audio_root: Path) -> None:
    """One JSONL per task plus a README whose `configs` let `datasets.load_dataset(folder, task)` read it.

    Audio stays a path string (absolute), so nothing decodes it: torchcodec does not import everywhere.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        with (folder / f"{task}.jsonl").open("w") as f:
            for i in items:
                if i["task"] == task:
                    p = i["clip"]["path"]
                    audio = None if p is None else str((audio_root / p).resolve())
                    row = {k: v for k, v in i.items() if k != "clip"} | {
                        "clip_id": i["clip"]["id"], "audio": audio, "start": i["clip"]["start"],
                        "end": i["clip"]["end"], "available": i["clip"]["available"],
                    }
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    configs = "".join(f"- config_name: {t}\n  data_files: {t}.jsonl\n" for t in TASKS)
    (folder / "README.md").write_text(
        f"---\nconfigs:\n{configs}---\n# SHARD (datasets export)\n\n"
        "`datasets.load_dataset(\"<this folder>\", \"synonym\")`; `audio` is a file path, not decoded.\n"
    )


def build(out: Path, cfg: BuildConfig, manifest: Path | None = None, audio_root: Path | None = None,
          senses_path: Path | None = None, progress=None) -> dict:
    """Build SHARD into `out` from a manifest, or from the bundled sample audio when none is given."""
    from shardkit.benchmark import card
    from shardkit.benchmark.manifest import read_manifest
    from shardkit.benchmark.senses import SENSES_PATH, load_senses
    from shardkit.resources.ontology import ontology
    from shardkit.resources.samples import build_samples

    if manifest is None and audio_root is not None:
        raise ShardkitError("--audio-root needs --manifest (the bundled samples know where their audio is)")
    onto = ontology()
    senses = load_senses(onto, senses_path or SENSES_PATH)
    bundled = manifest is None
    if bundled:
        manifest = build_samples(progress=progress)
    clips = read_manifest(manifest, audio_root, onto)
    root = audio_root or manifest.parent
    selected = select_clips(clips, cfg.split)
    items = build_items(selected, senses, onto, cfg)
    if not items:
        raise ShardkitError(f"{manifest}: no clip in split {cfg.split!r} carries any of the {len(senses)} SHARD "
                            f"labels (see shardkit/benchmark/senses.tsv)")
    meta = write(out, items, selected, senses, cfg, root, manifest)
    sources = None
    if bundled:
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        sources = {r["source"]: r["licence"] for r in rows}
    (out / "card.md").write_text(card.render(meta, len(senses), sources))
    return meta
