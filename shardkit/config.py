"""Config files and config classes: a YAML mapping read from disk, and the one loader that turns a mapping into any
config dataclass (`BuildConfig`, `DataConfig`, `TrainConfig`, `EvalConfig`, the study's sections), with one-line
errors that name the file or section, every problem at once.
"""

import collections.abc
import typing
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import TypeVar

from shardkit.errors import ShardkitError
from shardkit.suggest import did_you_mean

T = TypeVar("T")

WHEN_SET = {"id": "when set"}  # field metadata: part of a config's identity only when it differs from its default


def identity(config, cls: type | None = None) -> dict:
    """A config (or, with `cls`, a saved mapping of one) as it is hashed and compared: every field, except those
    marked WHEN_SET that hold their default. An option added later then renames no finished stage and refuses no
    resume of a run made before it existed."""
    values = asdict(config) if cls is None else dict(config)
    skip = {f.name: f.default for f in fields(cls or type(config)) if f.metadata.get("id") == "when set"}
    return {k: v for k, v in values.items() if not (k in skip and v == skip[k])}


def read_mapping(path: Path, what: str) -> dict:
    """The mapping in a YAML file (empty file: {}); a missing file, bad YAML or a non-mapping is one line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ShardkitError(f"{path}: {what} not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ShardkitError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(values, dict):
        raise ShardkitError(f"{path}: a {what} is a mapping of keys to values")
    return values


def coerce(name: str, value, kind) -> tuple[object, str | None]:
    """A YAML/CLI value as a dataclass field's type, or a problem naming the field, the value and what is allowed.

    Numbers stay numbers (an int is a valid float, a bool is neither); `tuple[X, ...]` takes a list or a
    comma-separated string; a mapping field takes a mapping; anything else is left to the class's own checks.
    """
    optional = type(None) in typing.get_args(kind)
    base = next((a for a in typing.get_args(kind) if a is not type(None)), kind) if optional else kind
    if value is None:
        return (None, None) if optional else (value, f"{name}: null is not allowed")
    origin = typing.get_origin(base)
    if origin is tuple:
        item = typing.get_args(base)[0]
        items = [x.strip() for x in value.split(",")] if isinstance(value, str) else value
        if isinstance(items, list | tuple):
            out = [coerce(name, x, item) for x in items]
            if all(problem is None for _, problem in out):
                parsed = tuple(x.strip() if item is str else x for x, _ in out)
                if item is not str or all(parsed):
                    return parsed, None
        what = "names" if item is str else "numbers" if item is float else f"{item.__name__}s"
        return value, f"{name}={value!r}: must be a list of {what}"
    if origin in (dict, Mapping, collections.abc.Mapping) or base is dict:
        return (dict(value), None) if isinstance(value, Mapping) else (value, f"{name}={value!r}: must be a mapping")
    if base is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if base in (bool, str) and isinstance(value, base):
        return value, None
    if base in (bool, str, int, float):
        return value, f"{name}={value!r}: must be {'a number' if base is float else base.__name__}"
    return value, None


def unknown_keys(keys, known) -> list[str]:
    """"unknown key 'x' (did you mean 'y'?)" for each key not among `known` (listing them when none is close)."""
    return [f"unknown key {k!r}" + (did_you_mean(k, known, cutoff=0.5) or f" (known: {', '.join(known)})")
            for k in keys if k not in known]


def load_fields(cls: type[T], values: Mapping, what: str) -> T:
    """A config dataclass from a mapping (a YAML section, `--set` pairs): unknown keys named with a suggestion, every
    value coerced to its field's type, then the class's own value checks on what parsed, so that every problem is
    reported at once, in one line: `what: problem; problem`. The one loader of every config class."""
    kinds = {f.name: f.type for f in fields(cls)}
    problems, clean = unknown_keys(values, kinds), {}
    for key, value in values.items():
        if key not in kinds:
            continue
        value, problem = coerce(key, value, kinds[key])
        if problem:
            problems.append(problem)
        else:
            clean[key] = value
    try:
        made = cls(**clean)
    except ShardkitError as e:
        problems.append(str(e).removeprefix(f"{what}: "))
    except TypeError as e:  # a required field is missing
        problems.append(str(e).split(".", 1)[-1].removeprefix("__init__() "))
    if problems:
        raise ShardkitError(f"{what}: " + "; ".join(problems))
    return made
