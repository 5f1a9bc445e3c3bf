"""Per-clip feature cache, so a frozen encoder runs once per clip and never once per question.

A SHARD clip is asked about many times (synonym, hypernym, identity, several candidates each) under every
placement; its frozen-encoder features are the same each time. Keys hash the audio bytes, not the path, so an
edited file gets fresh features; files are written atomically, so a killed run never leaves a half-written array.
"""

import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shardkit.errors import ShardkitError
from shardkit.files import replacing
from shardkit.paths import cache_dir

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]*")  # one path component, never hidden, never "..", no slashes


def clip_key(path: Path, start: float = 0.0, end: float | None = None) -> str:
    """sha256 (64 hex) of the file's bytes plus the selected span; a changed file or span gets a new key."""
    path = Path(path)
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        raise ShardkitError(f"{path}: file not found") from None
    except OSError as e:
        raise ShardkitError(f"{path}: cannot read file ({e.strerror})") from None
    h.update(f"|start={float(start)!r}|end={None if end is None else float(end)!r}".encode())
    return h.hexdigest()


class FeatureCache:
    """`.npy` arrays under `root/<encoder_id>/<key[:2]>/<key>.npy`; counts `hits` and `misses`."""

    def __init__(self, root: Path, encoder_id: str) -> None:
        if not _SAFE.fullmatch(encoder_id):
            raise ShardkitError(f"feature cache: encoder id {encoder_id!r} must be letters, digits and ._=+- only")
        self.root = Path(root)
        self.encoder_id = encoder_id
        self.hits = 0
        self.misses = 0

    @classmethod
    def default(cls, encoder_id: str) -> "FeatureCache":
        """The cache under the shardkit cache folder (`$SHARDKIT_CACHE/features`)."""
        return cls(cache_dir("features"), encoder_id)

    def path(self, key: str) -> Path:
        if not _SAFE.fullmatch(key) or len(key) < 3:
            raise ShardkitError(f"feature cache: key {key!r} must be 3+ characters of letters, digits and ._=+-")
        return self.root / self.encoder_id / key[:2] / f"{key}.npy"

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the stored array for `key`, or call `compute()` once, store its result and return it."""
        path = self.path(key)
        if path.exists():
            try:
                value = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as e:  # damaged by something outside shardkit: recompute
                log.warning("%s: unreadable cached features (%s); recomputing", path, e)
            else:
                self.hits += 1
                return value
        self.misses += 1
        value = np.asarray(compute())
        if value.dtype == object:
            raise ShardkitError(f"feature cache: compute() for key {key} returned an object array; expected numbers")
        self._write(path, value)
        return value

    def _write(self, path: Path, value: np.ndarray) -> None:
        with replacing(path) as tmp, open(tmp, "wb") as f:  # readers see the old state or the whole new file
            np.save(f, value, allow_pickle=False)
