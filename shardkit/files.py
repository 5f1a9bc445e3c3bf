"""Files written whole, and read without C-library noise: the ground floor every stage writes through.

A result, a cache entry or a report is written to a temporary name beside its target and renamed over it, so a
reader (or a rerun after a kill) sees the old file or the whole new one, never half of one.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, with its suffix (writers that infer a format from it keep working): write
    it inside the block; on success it replaces `path` in one rename, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)  # atomic on one filesystem; no fsync: a killed process is the risk, not power loss
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` (text or bytes) to `path` so that readers never see half a file."""
    with replacing(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence C-level stderr (libmpg123 warns about the ID3 tag of one shipped mp3 on every read)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
