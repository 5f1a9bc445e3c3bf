"""Clip manifests: which audio exists, where it lies, and which AudioSet labels it carries.

Two formats users already have: AudioSet's segment CSV (`YTID, start_seconds, end_seconds, positive_labels`)
with a local audio root, and JSONL (`{"id", "path", "labels", ["split", "start", "end"]}`). A malformed row or an
unknown label stops the build with `file:line`; audio that is missing or unreadable does not — the clip is kept
and marked unavailable, so the benchmark is the same for everyone and only its availability list differs.
"""

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from shardkit.errors import ShardkitError
from shardkit.resources.ontology import Ontology

AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


@dataclass(frozen=True)
class Clip:
    id: str
    path: str | None  # relative to the audio root; None when no file was found
    labels: tuple[str, ...]  # AudioSet mids, main source first
    start: float = 0.0  # seconds into the file
    end: float | None = None  # None: to the end of the file
    split: str | None = None
    problem: str | None = None  # why the audio is unavailable, if it is
    sha256: str | None = None  # of the audio file, where present

    @property
    def available(self) -> bool:
        return self.problem is None


def read_manifest(path: Path, audio_root: Path | None, onto: Ontology) -> list[Clip]:
    """Parse a manifest (format chosen by extension) and check each clip's audio on disk."""
    if not path.is_file():
        raise ShardkitError(f"{path}: manifest not found")
    root = audio_root or path.parent
    if audio_root is not None and not audio_root.is_dir():
        raise ShardkitError(f"{audio_root}: audio root is not a folder")
    if path.suffix == ".jsonl":
        rows = list(_jsonl_rows(path))
        locate = _Direct(root)
    elif path.suffix in (".csv", ".tsv"):
        rows = list(_audioset_rows(path))
        locate = _Index(root)
    else:
        raise ShardkitError(f"{path}: unknown manifest format; use .jsonl (id/path/labels) or an AudioSet .csv")
    clips, seen = [], {}
    for line, row in rows:
        where = f"{path}:{line}"
        if row["id"] in seen:
            raise ShardkitError(f"{where}: clip id {row['id']!r} already used on line {seen[row['id']]}")
        seen[row["id"]] = line
        for mid in row["labels"]:
            if mid not in onto.classes:
                raise ShardkitError(f"{where}: unknown AudioSet label id {mid!r}")
        rel, problem = locate(row)
        clips.append(Clip(id=row["id"], path=rel, labels=tuple(row["labels"]), start=row["start"], end=row["end"],
                          split=row["split"], problem=problem or (rel and _probe(root / rel)),
                          sha256=None))
    return [_with_hash(c, root) for c in clips]


def _with_hash(clip: Clip, root: Path) -> Clip:
    if not clip.available:
        return clip
    digest = hashlib.sha256((root / clip.path).read_bytes()).hexdigest()
    return Clip(**{**clip.__dict__, "sha256": digest})


def _probe(path: Path) -> str | None:
    """None if the file decodes as audio with at least one frame, else the reason it does not."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        return f"unreadable audio: {str(e).splitlines()[0][:120]}"
    if info.frames <= 0:
        return "audio file has no samples"
    return None


def _jsonl_rows(path: Path):
    with path.open(encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            where = f"{path}:{line}"
            try:
                row = json.loads(text)
            except ValueError as e:
                raise ShardkitError(f"{where}: not valid JSON ({e.msg})") from e
            if not isinstance(row, dict):
                raise ShardkitError(f"{where}: expected a JSON object with id, path, labels")
            missing = [k for k in ("id", "path", "labels") if k not in row]
            if missing:
                raise ShardkitError(f"{where}: missing field(s) {', '.join(missing)}")
            if not isinstance(row["labels"], list) or not row["labels"] or not all(
                isinstance(m, str) for m in row["labels"]
            ):
                raise ShardkitError(f"{where}: 'labels' must be a non-empty list of AudioSet mids")
            if not isinstance(row["id"], str) or not row["id"] or not isinstance(row["path"], str):
                raise ShardkitError(f"{where}: 'id' and 'path' must be non-empty strings")
            start, end = _times(row.get("start", 0.0), row.get("end"), where)
            split = row.get("split")
            if split not in (None, "train", "test"):
                raise ShardkitError(f"{where}: split must be 'train' or 'test', got {split!r}")
            yield line, {"id": row["id"], "path": row["path"], "labels": row["labels"], "start": start,
                         "end": end, "split": split}


def _audioset_rows(path: Path):
    with path.open(encoding="utf-8", newline="") as f:
        for line, fields in enumerate(csv.reader(f, skipinitialspace=True), start=1):
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{path}:{line}"
            if len(fields) != 4:
                raise ShardkitError(f"{where}: expected 4 fields (YTID, start_seconds, end_seconds, positive_labels), "
                                    f"got {len(fields)}")
            ytid, start, end, labels = (x.strip() for x in fields)
            if not ytid:
                raise ShardkitError(f"{where}: empty YTID")
            start_s, end_s = _times(start, end, where)
            mids = [m.strip() for m in labels.split(",") if m.strip()]
            if not mids:
                raise ShardkitError(f"{where}: no positive_labels")
            # AudioSet download tools store just the segment, so the whole file is the clip.
            yield line, {"id": f"{ytid}_{start_s:.3f}", "ytid": ytid, "seg": (start_s, end_s), "labels": mids,
                         "start": 0.0, "end": None, "split": None}


def _times(start, end, where: str) -> tuple[float, float | None]:
    try:
        s = float(start)
        e = None if end is None else float(end)
    except (TypeError, ValueError) as err:
        raise ShardkitError(f"{where}: start/end must be numbers, got {start!r}, {end!r}") from err
    if s < 0 or (e is not None and e <= s):
        raise ShardkitError(f"{where}: need 0 <= start < end, got start={s}, end={e}")
    return s, e


class _Direct:
    """JSONL paths are given: relative to the audio root (or absolute)."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, row) -> tuple[str | None, str | None]:
        p = Path(row["path"])
        full = p if p.is_absolute() else self.root / p
        if not full.is_file():
            return None, f"audio not found: {full}"
        return (str(full) if p.is_absolute() else row["path"]), None


class _Index:
    """AudioSet CSVs name YouTube segments; find each under the root by the names download tools use."""

    def __init__(self, root: Path):
        self.root, self.by_stem = root, {}
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                stem, ext = os.path.splitext(name)
                if ext.lower() in AUDIO_EXTS:
                    rel = os.path.relpath(os.path.join(dirpath, name), root)
                    self.by_stem.setdefault(stem, rel)

    def __call__(self, row) -> tuple[str | None, str | None]:
        y, (s, e) = row["ytid"], row["seg"]
        names = [y, f"Y{y}", f"{y}_{s:.3f}", f"{y}_{s:.3f}_{e:.3f}", f"Y{y}_{s:.3f}_{e:.3f}",
                 f"{y}_{int(s)}", f"{y}_{int(s)}_{int(e)}", f"{y}_{int(s * 1000)}"]
        for name in names:
            if name in self.by_stem:
                return self.by_stem[name], None
        return None, f"audio not found under {self.root} (looked for {y}.*, Y{y}.*, {y}_{s:.3f}.*, ...)"
