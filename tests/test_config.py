"""The one config loader: every config class is read through `load_fields`, so the rules are tested once here."""

from dataclasses import dataclass, field

import pytest

from shardkit.config import WHEN_SET, coerce, identity, load_fields, read_mapping
from shardkit.errors import ShardkitError


@dataclass(frozen=True)
class Toy:
    name: str
    rate: float = 0.5
    steps: int | None = None
    names: tuple[str, ...] = ("a",)
    shares: tuple[float, ...] = ()
    mix: dict = field(default_factory=dict)
    on: bool = True

    def __post_init__(self):
        if self.rate > 1:
            raise ShardkitError(f"toy: rate must be <= 1, got {self.rate}")


def test_values_are_coerced_to_the_field_types():
    t = load_fields(Toy, {"name": "x", "rate": 1, "steps": None, "names": "q, v", "shares": [0, 0.5],
                          "mix": {"a": 1}}, "toy")
    assert t == Toy("x", 1.0, None, ("q", "v"), (0.0, 0.5), {"a": 1})
    assert isinstance(t.rate, float) and isinstance(t.shares[0], float)
    assert coerce("n", True, int)[1] == "n=True: must be int"  # a bool is no number
    assert coerce("r", "1e-3", float)[1] == "r='1e-3': must be a number"
    assert coerce("xs", ["a", ""], tuple[str, ...])[1] == "xs=['a', '']: must be a list of names"
    assert coerce("xs", [1, "b"], tuple[int, ...])[1] == "xs=[1, 'b']: must be a list of ints"


def test_every_problem_at_once_in_one_line():
    with pytest.raises(ShardkitError) as e:
        load_fields(Toy, {"name": "x", "nmaes": ["a"], "steps": "ten", "mix": [1], "rate": 2}, "toy")
    msg = str(e.value)
    assert msg.startswith("toy: ") and "\n" not in msg
    for part in ("unknown key 'nmaes' (did you mean 'names'?)", "steps='ten': must be int",
                 "mix=[1]: must be a mapping", "rate must be <= 1, got 2.0"):  # the class's own check ran too
        assert part in msg, part
    assert "toy: toy:" not in msg


def test_a_missing_required_field_is_named():
    with pytest.raises(ShardkitError, match=r"^toy: missing 1 required positional argument: 'name'$"):
        load_fields(Toy, {}, "toy")


def test_read_mapping_errors_name_the_file(tmp_path):
    with pytest.raises(ShardkitError, match="c.yaml: train config not found"):
        read_mapping(tmp_path / "c.yaml", "train config")
    (tmp_path / "c.yaml").write_text("- a\n- b\n")
    with pytest.raises(ShardkitError, match="a train config is a mapping"):
        read_mapping(tmp_path / "c.yaml", "train config")
    (tmp_path / "c.yaml").write_text("a: [1\n")
    with pytest.raises(ShardkitError, match="not valid YAML"):
        read_mapping(tmp_path / "c.yaml", "train config")


def test_identity_leaves_out_a_when_set_field_at_its_default():
    """An option added later (marked WHEN_SET) is not part of a config's identity until it is set: hashes of older
    configs, and saved mappings that predate it, stay equal."""
    @dataclass(frozen=True)
    class Old:
        lr: float = 0.1

    @dataclass(frozen=True)
    class New:
        lr: float = 0.1
        ewc: float = field(default=0.0, metadata=WHEN_SET)

    assert identity(New()) == identity(Old()) == {"lr": 0.1}
    assert identity(New(ewc=2.0)) == {"lr": 0.1, "ewc": 2.0}
    assert identity({"lr": 0.1, "ewc": 0.0}, New) == {"lr": 0.1}  # a saved mapping, read back
