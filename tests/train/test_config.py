"""Train and data configs: defaults, every problem at once in one line, YAML round trips; the CLI's mix and size
strings."""

import pytest
import yaml

from shardkit.commands import parse_mix, parse_size
from shardkit.errors import ShardkitError
from shardkit.train.config import DataConfig, TrainConfig, load_config


def test_learning_rate_follows_the_mode():
    assert TrainConfig(data="d", mode="projector").lr == 1e-3  # LTU's projector-only stage
    assert TrainConfig(data="d").lr == 1e-4 and TrainConfig(data="d", lr=3e-4).lr == 3e-4


def test_config_problems_are_reported_at_once(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: d\nwarmup_step: 3\nbatch_size: 0\nlora_r: eight\nmode: lora\n")
    with pytest.raises(ShardkitError) as e:
        load_config(path)
    msg = str(e.value)
    assert "\n" not in msg
    for part in ("unknown key 'warmup_step' (did you mean 'warmup_steps'?)", "lora_r='eight': must be int",
                 "batch_size=0: must be >= 1", "mode='lora': must be projector or projector+lora or"):
        assert part in msg


@pytest.mark.parametrize("overrides", [{}, {"mode": "projector", "max_steps": 5, "lora_targets": "q_proj,k_proj"},
                                       {"lr": 1, "train_on_prompt": False, "dtype": "bfloat16"}])
def test_config_round_trips_through_yaml(tmp_path, overrides):
    c = load_config(None, {"data": "d", **overrides})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v for k, v in vars(c).items()}))
    again = load_config(path)
    assert again == c and again.hash() == c.hash()
    assert TrainConfig(**{**vars(c), "log_every": 99}).hash() == c.hash()  # run control is not the experiment


def test_bad_mix_and_size_are_one_line_errors():
    with pytest.raises(ShardkitError, match=r"unknown mix key 'synonim' \(did you mean 'synonym'\?\)"):
        DataConfig(mix={"identity": 0.5, "synonim": 0.5})
    with pytest.raises(ShardkitError, match=r"mix shares sum to 0\.9, not 1"):
        DataConfig(mix=parse_mix("identity=0.5,replay=0.4"))
    with pytest.raises(ShardkitError, match="replay=-0.1 is negative"):
        DataConfig(mix={"identity": 1.1, "replay": -0.1})
    with pytest.raises(ShardkitError, match="expected key=share"):
        parse_mix("identity:1")
    with pytest.raises(ShardkitError, match=r"did you mean 'shard_size'"):
        DataConfig.from_dict({"shard_sise": 10})
    assert DataConfig(mix=parse_mix("identity=0.5,replay=0.5")).mix["synonym"] == 0.0
    assert (parse_size("40k"), parse_size("1m"), parse_size("1234"), parse_size("2.5k")) == (40_000, 10**6, 1234, 2500)
    for text in ("4x", "0", "1.5"):
        with pytest.raises(ShardkitError, match="--size"):
            parse_size(text)
