import pytest

from shardkit.errors import ShardkitError
from shardkit.models.registry import FAMILIES, load_model, parse_spec, register


def test_parse_spec():
    fam, opts = parse_spec("tiny-ltu:projector=runs/p.safetensors")
    assert fam.name == "tiny-ltu" and opts == {"projector": "runs/p.safetensors"}
    assert parse_spec("tiny-ltu")[1] == {}


@pytest.mark.parametrize("spec, message", [
    ("tiny-lt", "unknown model family 'tiny-lt'.*did you mean tiny-ltu"),
    ("tiny-ltu:proj=x", "no option 'proj'.*did you mean projector"),
    ("tiny-ltu:projector", "expected key=value"),
])
def test_bad_specs(spec, message):
    with pytest.raises(ShardkitError, match=message):
        parse_spec(spec)


def test_bad_dtype_and_device():
    with pytest.raises(ShardkitError, match="unknown dtype"):
        load_model("tiny-ltu", dtype="int8")
    with pytest.raises(ShardkitError, match="no CUDA device"):
        load_model("tiny-ltu", device="cuda")


def test_names_are_taken_once():
    with pytest.raises(ValueError, match="already registered"):
        register("tiny-ltu", "dup")(lambda *a: None)
    assert "tiny-ltu" in FAMILIES


def test_ltu_needs_both_paths():
    with pytest.raises(ShardkitError, match=r"ltu needs llm=\.\.\."):
        parse_spec("ltu:ckpt=ltu_ori_paper.bin")
    with pytest.raises(ShardkitError, match="LTU checkpoint not found"):
        load_model("ltu:ckpt=/nonexistent/ltu.bin,llm=/nonexistent/vicuna")


def test_training_hint_names_the_spec_that_loads_its_output():
    """The line `shardkit train` ends with must be a spec the family accepts, its other options kept."""
    from shardkit.models.registry import parse_spec, trained_spec

    assert trained_spec("tiny-ltu:ckpt=runs/stage0", "runs/ft") == "tiny-ltu:ckpt=runs/ft"
    spec = trained_spec("ltu:ckpt=/m/ltu.bin,llm=/m/vicuna,merge=1", "runs/ft")
    assert spec == "ltu:ckpt=/m/ltu.bin,llm=/m/vicuna,merge=1,tuned=runs/ft"
    assert parse_spec(spec)[1]["tuned"] == "runs/ft"


@pytest.mark.parametrize("spec, message", [
    ("tiny-ltu:scale=0.5", "tiny-ltu: scale=, intruders= and start= change a ckpt=...; give one"),
    ("tiny-ltu:start=/runs/stage0", "tiny-ltu: scale=, intruders= and start= change a ckpt=...; give one"),
    ("tiny-ltu:intruders=0.5", "tiny-ltu: scale=, intruders= and start= change a ckpt=...; give one"),
    ("tiny-ltu:ckpt=/runs/ft,scale=half", "scale='half': give a number in [0, 1]"),
    ("tiny-ltu:ckpt=/runs/ft,intruders=most", "intruders='most': give a number in [0, 1]"),
    ("ltu:ckpt=/m/ltu.bin,llm=/m/v,scale=0.5", "ltu: scale= and intruders= change a tuned=... run; give one"),
    ("ltu:ckpt=/m/ltu.bin,llm=/m/v,intruders=0.5", "ltu: scale= and intruders= change a tuned=... run; give one"),
])
def test_interpolation_options_need_a_tuned_run(spec, message):
    with pytest.raises(ShardkitError) as e:
        load_model(spec)
    assert str(e.value) == message
