"""Append-only sample records: flushed per item while a run goes, merged into canonical order at the end.

Each process appends to its own part file (`samples/<condition>/<task>.part<rank>.jsonl`) and flushes after
every record, so a SIGKILL loses at most the line being written; on restart a torn last line is cut off and
every key already written is skipped. Merging reads all part files (whatever the number of processes that
wrote them), keeps each key once and writes `samples/<condition>/<task>.jsonl` atomically in item order.
"""

import json
from pathlib import Path

from shardkit.errors import ShardkitError
from shardkit.files import atomic_write


def _read_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            break  # a torn last line from a killed writer
    return out


def _repair(path: Path) -> None:
    """Cut a part file back to its last complete line."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


class RecordStore:
    def __init__(self, run_dir: Path, rank: int = 0):
        self.samples = Path(run_dir) / "samples"
        self.rank = rank
        self._files: dict[tuple[str, str], object] = {}

    def _part(self, condition: str, task: str, rank: int | None = None) -> Path:
        return self.samples / condition / f"{task}.part{self.rank if rank is None else rank}.jsonl"

    def existing(self) -> dict[str, dict]:
        """Every record already written by any process, by key (final files and part files)."""
        records: dict[str, dict] = {}
        if not self.samples.exists():
            return records
        for path in sorted(self.samples.glob("*/*.jsonl")):
            for r in _read_lines(path):
                records.setdefault(r["key"], r)
        return records

    def append(self, condition: str, task: str, record: dict) -> None:
        f = self._files.get((condition, task))
        if f is None:
            path = self._part(condition, task)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                _repair(path)
            f = self._files[(condition, task)] = path.open("a")
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def merge(self, order: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], list[dict]]:
        """Write each (condition, task) file in the given key order, each key once; drop the part files."""
        self.close()
        records = self.existing()
        merged = {}
        for (condition, task), keys in order.items():
            missing = [k for k in keys if k not in records]
            if missing:
                raise ShardkitError(f"{self.samples / condition}: {len(missing)} {task} records missing (e.g. "
                                    f"{missing[0]}); rerun the same command to score them")
            rows = [records[k] for k in keys]
            folder = self.samples / condition
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / f"{task}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            merged[(condition, task)] = rows
        for path in self.samples.glob("*/*.part*.jsonl"):
            path.unlink()
        return merged
