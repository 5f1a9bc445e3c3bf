"""Interleaved instruction data: questions whose `<audio>` marker stands inside the text, from labelled clips.

Tuning a model on interleaved prompts needs many of them, built from the clips we have and the WordNet facts
SHARD tests, without teaching it SHARD's answers. So generation streams sample by sample from one seeded RNG
over small precomputed pools (1,000,000 samples in bounded memory, same seed → same bytes), keeps SHARD's words
and synsets out of synonym/hypernym questions unless asked, and mixes in a share of prepended (LTU-style)
identity prompts as replay against forgetting.

Output of `make_data(out, cfg)`:

- `out/data-00000-<sha256[:12]>.jsonl`, ... — `cfg.shard_size` records each, one JSON object a line (each file
  named by its content):
  `{"id", "messages": [{"role": "user", "content": "... <audio> ..."}, {"role": "assistant", "content": ...}],
  "audios": ["/abs/clip.wav", ...], "task": identity|synonym|hypernym|description|replay,
  "placement": "interleaved"|"prepended", "clip_ids": [...], "facts": {"label", "synset", "candidate",
  "negative", "overlap"}}`. Interleaved: one `<audio>` marker per entry of `audios`, in order. Prepended (replay):
  no marker in the text; the audio goes before everything, as in LTU. `facts` says what the question is about.
- `out/meta.json` — written last, so its presence marks a complete folder: size, seed, config, the mix (requested
  and realised counts per task), the leakage (overlap) report, clips and labels used, the WordNet synset chosen
  for every label, and sha256 and record count of every shard.
- `out/sharegpt/` — the LLaMA-Factory / ms-swift format: `data/data-00000-<sha>.jsonl`, ... holding only `messages`
  and `audios` (paths relative to the audio root, meta.json's `audio_root`: LLaMA-Factory's `media_dir`), and
  `dataset_info.json` (entry `shardkit_instruct`: `formatting: sharegpt`, `columns` and `tags`).
  Those tools need one marker per audio in every sample, so replay samples carry their markers at the very start
  of the user message there (interleaved-at-position-0 is prepended, see `models/prompts.py`).
- `out/README.md` — this description, for whoever finds the folder, headed by the `configs` that let
  `datasets.load_dataset(out)` read the samples (config `sharegpt`: the export) and never meta.json.

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
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from shardkit import __version__
from shardkit.benchmark.manifest import Clip
from shardkit.errors import ShardkitError
from shardkit.models.prompts import AUDIO
from shardkit.names import Placement
from shardkit.train.config import TASKS, TEXT_TASKS, DataConfig
from shardkit.train.instructions import Generator, build_pools, eligible, generate, quotas, to_sharegpt
from shardkit.train.wordnet_text import held_out as held_out_subjects

log = logging.getLogger(__name__)

DATASET_NAME = "shardkit_instruct"  # the LLaMA-Factory dataset_info.json key
ROLES = ("system", "user", "assistant")


# ---------------------------------------------------------------- writing

class _ShardWriter:
    """Writes lines into `prefix-00000-<sha256[:12]>.jsonl`, ... of `size` lines each, hashing as it goes; each file
    is named by its content once closed, so that `datasets`' cache (keyed on file names) never mixes two builds."""

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
            shard = self.shards[-1]
            shard["sha256"] = self._h.hexdigest()
            named = f"{shard['file'].removesuffix('.jsonl')}-{shard['sha256'][:12]}.jsonl"
            (self.folder / shard["file"]).replace(self.folder / named)
            shard["file"] = named
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
    labels, recs, guard, report = build_pools(usable, root, onto, senses, cfg)
    syn, hyp = eligible(labels, "synonym"), eligible(labels, "hypernym")
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
    media = root.resolve()  # the sharegpt export's audios are relative to it: LLaMA-Factory's media_dir
    main = _ShardWriter(out, cfg.shard_size)
    export = _ShardWriter(out / "sharegpt" / "data", cfg.shard_size)
    subjects = held_out_subjects(guard, cfg.max_depth) if any(counts[t] for t in TEXT_TASKS) else None
    gen = Generator(random.Random(cfg.seed), recs, syn, hyp, guard, cfg.placement, subjects)
    realised = dict.fromkeys(TASKS, 0)
    overlapping = 0
    try:
        for i, sample in enumerate(generate(gen, counts)):
            main.write(json.dumps(sample, ensure_ascii=False) + "\n")
            export.write(json.dumps(to_sharegpt(sample, media), ensure_ascii=False) + "\n")
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
    configs = "".join(f"- config_name: {name}\n  data_files:\n" + "".join(f"  - {f}\n" for f in files)
                      for name, files in (("default", [x["file"] for x in shards]),
                                          ("sharegpt", [f"sharegpt/data/{x['file']}" for x in exported])))
    (out / "README.md").write_text(f"---\nconfigs:\n{configs}---\n"  # datasets.load_dataset(out[, "sharegpt"])
                                   "# shardkit instruction data\n\nWritten by `shardkit make-data` "
                                   f"(shardkit {__version__}, seed {cfg.seed}, {cfg.size} samples).\n\n"
                                   + (__doc__ or "").split("\n\n", 1)[-1])
    (out / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    log.info("wrote %d samples in %d shards to %s", cfg.size, len(shards), out)
    return meta


def summary(meta: dict) -> list[str]:
    """What a make-data folder holds, in a few lines read from its meta.json: clips, labels, the SHARD overlap."""
    clips, labels, ov = meta["clips"], meta["labels"], meta["overlap"]
    out = []
    out.append(f"clips: {clips['used']} used ({clips['split']} split; {clips['left_out_by_split']} left out by split, "
               f"{clips['excluded_shard']['clips']} SHARD clips left out, {clips['unavailable']['n']} unreadable "
               f"skipped)")
    out.append(f"labels: {labels['n']}, with a WordNet synset {labels['with_synset']} ({labels['audited']} audited in "
               f"senses.tsv, {labels['automatic']} automatic); with synonym questions {labels['synonym_pool']}, "
               f"hypernym questions {labels['hypernym_pool']}")
    verb = "INCLUDED (--allow-overlap)" if ov["allow_overlap"] else "excluded from synonym/hypernym questions"
    cands = ov["candidates"]
    out.append(f"overlap with SHARD ({ov['shard']['senses']} senses, {ov['shard']['words']} words), {verb}: "
               f"{ov['labels']['n']} labels, {cands['synonym']['words']['n']} synonym and "
               f"{cands['hypernym']['words']['n']} hypernym candidate words; samples touching SHARD: "
               f"{ov['samples_touching_shard']}")
    if ov["labels"]["examples"]:
        out.append("  labels: " + "; ".join(ov["labels"]["examples"][:4]))
    words = sorted(set(cands["synonym"]["words"]["examples"] + cands["hypernym"]["words"]["examples"]))
    if words:
        out.append("  words: " + ", ".join(words[:10]))
    out.append(f"  {ov['identity']['note']} ({ov['identity']['clips_with_shard_label']} clips)")
    return out


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
