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
from collections import Counter, deque
from dataclasses import asdict, dataclass
from pathlib import Path

from shardkit import __version__
from shardkit.benchmark.baselines import candidate_only
from shardkit.benchmark.config import BuildConfig
from shardkit.benchmark.manifest import Clip
from shardkit.benchmark.relations import REASONS, Readings, WordFacts, load_exclusions, readings
from shardkit.benchmark.senses import Sense
from shardkit.errors import ShardkitError
from shardkit.names import YES_NO
from shardkit.resources.ontology import Ontology

TASKS = ("identity", *YES_NO)  # the order of the files and of item generation


def aliases(sense: Sense, reviewed: dict[str, list[str]]) -> list[str]:
    """Answers accepted for identity: the reviewed aliases of the label (aliases.tsv)."""
    return reviewed[sense.mid]


def _item(task, facts: WordFacts, clip_dict, candidate, answer, kind=None, depth=None, alias=()):
    sense = facts.sense
    return {
        "id": f"{task}:{clip_dict['id']}:{sense.mid}:{candidate or ''}",
        "task": task, "word": facts.word, "mid": sense.mid, "synset": sense.synset, "candidate": candidate,
        "answer": answer, "negative_kind": kind, "depth": depth, "aliases": list(alias), "clip": clip_dict,
    }


def clip_record(clip: Clip) -> dict:
    return {"id": clip.id, "path": clip.path, "start": clip.start, "end": clip.end, "labels": list(clip.labels),
            "sha256": clip.sha256, "available": clip.available}


@dataclass
class _Slot:
    """One SHARD word in one clip: its positives per task and the negatives that are false for this clip."""

    clip: dict
    facts: WordFacts
    rng: random.Random
    positives: dict[str, list[str]]
    hard: dict[str, list[str]]  # negatives false for every label of the clip
    random: dict[str, list[str]]


def _key(task: str, candidate: str) -> tuple[str, str]:
    return task, candidate.lower()


def _choose_positives(slots: list[_Slot], task: str, per_task: int) -> None:
    """Up to `per_task` positives per slot, each one that can still be a "no" in another clip (`spare`: the slots
    where it is a valid negative, less its uses as a "yes" so far), so that a negative elsewhere can balance it;
    most spare first, ties at random (seeded). A positive nothing can balance is not asked ("artifact" is true of
    most SHARD words and false of few)."""
    spare: Counter = Counter(_key(task, c) for s in slots for c in s.hard[task] + s.random[task])
    for slot in slots:
        pool = list(slot.facts.synonyms if task == "synonym" else slot.facts.hypernyms)
        slot.rng.shuffle(pool)
        pool = [c for c in pool if spare[_key(task, c)] > 0]
        n = min(per_task, len(pool), len(slot.hard[task]) + len(slot.random[task]))
        chosen = set(sorted(pool, key=lambda c: -spare[_key(task, c)])[:n])
        slot.positives[task] = [c for c in pool if c in chosen]  # in shuffled order
        for c in chosen:
            spare[_key(task, c)] -= 1


def _rebalance(slots: list[_Slot], task: str, negatives: list[list[str]], balance: Counter) -> None:
    """Move negatives between candidates until no candidate that is a "yes" more often than a "no" can take the
    place of one that is a "no" more often than a "yes", directly or through a chain of swaps (a shortest
    augmenting path, breadth first). Each path lowers the total imbalance by two; per-slot counts never change."""
    where: dict[str, list[int]] = {}  # candidate (lower case) -> slots where it is a valid negative
    spelling: list[dict[str, str]] = []
    for k, slot in enumerate(slots):
        spelling.append({c.lower(): c for c in slot.hard[task] + slot.random[task]})
        for c in spelling[k]:
            where.setdefault(c, []).append(k)
    while True:
        sources = sorted(c for (t, c), b in balance.items() if t == task and b > 0)
        prev: dict[str, tuple[str, int, int] | None] = dict.fromkeys(sources)
        queue, found = deque(sources), None
        while queue and found is None:
            c = queue.popleft()
            for k in where.get(c, ()):
                chosen = [x.lower() for x in negatives[k]]
                if c in chosen:
                    continue
                for j, d in enumerate(chosen):
                    if d not in prev:
                        prev[d] = (c, k, j)
                        if balance[_key(task, d)] < 0:
                            found = d
                            break
                        queue.append(d)
                if found:
                    break
        if found is None:
            return
        d = found
        balance[_key(task, d)] += 1
        while prev[d] is not None:  # walk back: each candidate on the path takes its successor's place
            c, k, j = prev[d]
            negatives[k][j] = spelling[k][c]
            d = c
        balance[_key(task, d)] -= 1


def _choose_negatives(slot: _Slot, task: str, balance: Counter) -> list[str]:
    """As many negatives as positives, chosen so that a candidate alone tells nothing about the answer.

    Per positive, in order of preference: the candidate most often a "yes" elsewhere in SHARD and least often a
    "no" (`balance`: yes minus no so far), so that every candidate is as often right as wrong; then a hard negative
    while fewer than half are hard; then the one nearest the positive in generality (depth below the WordNet root).
    """
    hard, rand, gen = slot.hard[task], slot.random[task], slot.facts.generality
    pos = slot.positives[task]
    target = min(math.ceil(len(pos) / 2), len(hard))
    chosen: list[str] = []
    for p in pos:
        want_hard = sum(c in hard for c in chosen) < target
        options = [c for c in hard + rand if c not in chosen]
        best = max(options, key=lambda c: (balance[_key(task, c)], (c in hard) == want_hard,
                                           -abs(gen[c] - gen[p]), slot.rng.random()))
        chosen.append(best)
        balance[_key(task, best)] -= 1
    return chosen


def build_items(clips: list[Clip], senses: list[Sense], onto: Ontology, cfg: BuildConfig,
                reviewed_aliases: dict[str, list[str]], exclusions: list | None = None) -> tuple[list[dict], dict]:
    """All SHARD items for the clips, in manifest order, and what the truth checks removed; deterministic.

    Each clip's SHARD words get up to `per_task` positives per task and as many negatives, drawn from pools that
    every reading of the word and every other label of the clip leave false (`relations.py`). Which positives and
    negatives are drawn is balanced across the whole build: each candidate is as often a "yes" as a "no" where
    the pools allow, so that no candidate-only prior (generality, frequency, length) can tell the answers apart.
    """
    exclusions = load_exclusions() if exclusions is None else exclusions
    by_mid = {s.mid: s for s in senses}
    facts: dict[str, WordFacts] = {}
    labels: dict[str, Readings] = {}
    valid: dict[tuple, tuple[list[str], list[str]]] = {}
    by_label: set[tuple[str, str, str, str]] = set()  # (clip, word, task, candidate) ruled out by another label
    slots: list[_Slot] = []
    for clip in clips:
        cd = clip_record(clip)
        for sense in (by_mid[m] for m in clip.labels if m in by_mid):
            if sense.mid not in facts:
                own = readings(sense, sense.name, sense.mid, onto, exclusions)
                facts[sense.mid] = WordFacts(sense, [o for o in senses if o.mid != sense.mid], cfg.max_depth, own)
            f = facts[sense.mid]
            # another label may name another source; one that is an ontology ancestor of a label of the clip (AudioSet
            # labels carry their ancestors: Animal beside Chicken) names no source of its own
            implied = {a for m in clip.labels for a in onto.ancestors(m)}
            others = tuple(m for m in clip.labels if m != sense.mid and m not in implied)
            for m in others:
                if m not in labels:
                    labels[m] = readings(by_mid.get(m), onto.name(m), m, onto, exclusions, co_label=True)
            truth = sum((labels[m] for m in others), Readings())
            slot = _Slot(cd, f, random.Random(f"{cfg.seed}:{clip.id}:{sense.mid}"), {}, {}, {})
            for task, pools in (("synonym", (f.syn_hard, f.syn_random)), ("hypernym", (f.hyp_hard, f.hyp_random))):
                key = (sense.mid, task, others)
                if key not in valid:
                    valid[key] = tuple([c for c in pool if truth.why_not(c) is None] for pool in pools)
                slot.hard[task], slot.random[task] = valid[key]
                for c in (c for pool in pools for c in pool if c not in valid[key][0] + valid[key][1]):
                    by_label.add((clip.id, f.word, task, c.lower()))
            slots.append(slot)
    negatives: dict[str, list[list[str]]] = {}
    for task in YES_NO:
        _choose_positives(slots, task, cfg.per_task)
        balance: Counter = Counter(_key(task, c) for s in slots for c in s.positives[task])
        negatives[task] = [_choose_negatives(slot, task, balance) for slot in slots]
        _rebalance(slots, task, negatives[task], balance)
    items: list[dict] = []
    seen_clips: set[str] = set()
    for k, slot in enumerate(slots):
        f, cd = slot.facts, slot.clip
        if cd["id"] not in seen_clips:  # one identity question per clip, about its main source
            seen_clips.add(cd["id"])
            items.append(_item("identity", f, cd, None, f.sense.name, alias=aliases(f.sense, reviewed_aliases)))
        for task in YES_NO:
            hard = [c for c in negatives[task][k] if c in slot.hard[task]]
            rand = [c for c in negatives[task][k] if c not in slot.hard[task]]
            depth = f.hypernyms if task == "hypernym" else {}
            items += [_item(task, f, cd, c, "yes", depth=depth.get(c)) for c in slot.positives[task]]
            items += [_item(task, f, cd, c, "no", "hard") for c in hard]
            items += [_item(task, f, cd, c, "no", "random") for c in rand]
    removed = {r: 0 for r in REASONS}
    used = {i["mid"] for i in items}
    for f in facts.values():
        if f.sense.mid in used:
            for reason, cands in f.removed.items():
                removed[reason] += len(cands)
    removed["another label of the clip"] = len(by_label)
    return items, removed


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
          audio_root: Path, manifest: Path, removed: dict[str, int]) -> dict:
    """Write shard.jsonl, meta.json and the datasets export; return the meta dict."""
    out.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items).encode()
    (out / "shard.jsonl").write_bytes(data)
    used = {i["clip"]["id"] for i in items}
    words = Counter(i["word"] for i in items if i["task"] == "identity")
    shard_mids, item_mids = {s.mid for s in senses}, {i["mid"] for i in items}
    with_items = Counter(i["word"] for i in items if i["task"] != "identity" and i["answer"] == "yes")
    meta = {
        "shardkit_version": __version__,
        "seed": cfg.seed,
        "config": asdict(cfg),
        "sha256": hashlib.sha256(data).hexdigest(),
        "n_items": len(items),
        "counts": counts(items),
        "n_clips": len(used),
        "n_clips_without_shard_word": sum(1 for c in clips if not shard_mids & set(c.labels)),
        "n_words": len(senses),
        "words_with_clips": dict(sorted(words.items())),  # identity items per word (the clip's main SHARD word)
        "words_with_items": dict(sorted(with_items.items())),  # positive yes/no items per word, any label of a clip
        "words_without_clips": sorted(s.name for s in senses if s.mid not in item_mids),
        "negatives_removed": removed,  # pool candidates ruled out, by the first reason that applies
        "candidate_only": candidate_only(items),  # AUROC of model-free candidate-only baselines (0.5: chance)
        "unavailable": [{"id": c.id, "reason": c.problem} for c in clips if c.id in used and not c.available],
        "manifest": {"path": str(manifest), "sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()},
        "audio_root": str(audio_root.resolve()),
        "wordnet": "3.0",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    _export_datasets(out / "hf", items, audio_root)
    return meta


def load_shard(folder: Path) -> tuple[list[dict], dict]:
    """Items and meta of a built SHARD folder, checked against the sha256 it was written with."""
    folder = Path(folder)
    for name in ("shard.jsonl", "meta.json"):
        if not (folder / name).is_file():
            raise ShardkitError(f"{folder}: no {name}; build one with `shardkit build --out {folder}`")
    meta = json.loads((folder / "meta.json").read_text())
    data = (folder / "shard.jsonl").read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ShardkitError(f"{folder}/shard.jsonl does not match the sha256 in meta.json: rebuild it")
    return [json.loads(line) for line in data.decode().splitlines()], meta


FEATURES = {"id": "string", "task": "string", "word": "string", "mid": "string", "synset": "string",
            "candidate": "string", "answer": "string", "negative_kind": "string", "depth": "int32",
            "aliases": ["string"], "clip_id": "string", "audio": "string", "start": "float64", "end": "float64",
            "available": "bool", "audio_sha256": "string"}  # every column typed, even when all its values are null


def _features_yaml(config: str) -> str:
    lines = [f"- config_name: {config}", "  features:"]
    for name, dtype in FEATURES.items():
        lines += [f"  - name: {name}", f"    dtype: {dtype}"] if isinstance(dtype, str) else \
            [f"  - name: {name}", "    sequence: string"]
    return "\n".join(lines) + "\n"


def _export_datasets(folder: Path, items: list[dict], audio_root: Path) -> None:
    """One JSONL per task plus a README whose `configs` let `datasets.load_dataset(folder, task)` read it.

    Safe to move and to reload: `audio` is the clip's path relative to the audio root (recorded in the README and
    in SHARD's meta.json), every column is declared with its type, and each file is named by the hash of its content,
    so that `datasets`, which keys its cache on the README's file patterns, can never serve another build's rows.
    Audio stays a path string, not decoded: torchcodec does not import everywhere (the README gives a recipe).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):  # an earlier build's files: their names would still match nothing, but go
        old.unlink()
    names = {}
    for task in TASKS:
        rows = []
        for i in items:
            if i["task"] == task:
                c = i["clip"]
                rows.append({k: v for k, v in i.items() if k != "clip"} | {
                    "clip_id": c["id"], "audio": c["path"], "start": c["start"], "end": c["end"],
                    "available": c["available"], "audio_sha256": c.get("sha256")})
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        names[task] = f"{task}-{hashlib.sha256(data).hexdigest()[:12]}.jsonl"
        (folder / names[task]).write_bytes(data)
    configs = "".join(f"- config_name: {t}\n  data_files: {names[t]}\n" for t in TASKS)
    infos = "".join(_features_yaml(t) for t in TASKS)
    root = audio_root.resolve()
    (folder / "README.md").write_text(
        f"---\nconfigs:\n{configs}dataset_info:\n{infos}---\n# SHARD (datasets export)\n\n"
        f"```python\nimport datasets, os\nds = datasets.load_dataset(\"<this folder>\", \"synonym\", split=\"train\")\n"
        f"root = \"{root}\"  # the audio root of this build; after a move, wherever the clips are now\n"
        "ds = ds.map(lambda r: {\"path\": os.path.join(root, r[\"audio\"]) if r[\"audio\"] else None})\n```\n\n"
        "`audio` is each clip's path relative to the audio root (null: no audio file); `start` and `end` are the "
        "seconds of the file that make the clip (`end` null: to the end), `audio_sha256` its content hash. Audio is "
        "not decoded: `datasets.Audio()` needs torchcodec, which does not import everywhere; read a clip with "
        "soundfile instead: `wave, sr = soundfile.read(path, start=int(start * sr0), stop=...)` (sr0 from "
        "`soundfile.info(path).samplerate`), or cast the column with `ds.cast_column(\"path\", datasets.Audio())` "
        "where torchcodec works. Each data file is named by the hash of its content.\n"
    )


def build(out: Path, cfg: BuildConfig, manifest: Path | None = None, audio_root: Path | None = None,
          senses_path: Path | None = None, progress=None) -> dict:
    """Build SHARD into `out` from a manifest, or from the bundled sample audio when none is given."""
    from shardkit.benchmark import card
    from shardkit.benchmark.manifest import read_manifest
    from shardkit.benchmark.senses import SENSES_PATH, load_aliases, load_senses
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
    items, removed = build_items(selected, senses, onto, cfg, load_aliases(onto, senses))
    if not items:
        raise ShardkitError(f"{manifest}: no clip in split {cfg.split!r} carries any of the {len(senses)} SHARD "
                            f"labels (see shardkit/benchmark/senses.tsv)")
    meta = write(out, items, selected, senses, cfg, root, manifest, removed)
    sources = None
    if bundled:
        rows = [json.loads(line) for line in manifest.read_text().splitlines()]
        sources = {r["source"]: r["licence"] for r in rows}
    (out / "card.md").write_text(card.render(meta, len(senses), sources))
    return meta
