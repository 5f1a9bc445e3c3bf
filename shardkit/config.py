"""Config files: a YAML mapping read from disk, with one-line errors that name the file.

Train configs and study presets are both YAML mappings; what they may hold is checked by their own dataclasses.
"""

from pathlib import Path

from shardkit.errors import ShardkitError


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
