"""The checkpoint format's readers on their own: which folder holds the weights, which checkpoint is newest, and a
one-line error for every mismatch. Writing and resuming are tested end to end in tests/train/test_trainer.py."""

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.checkpoint import PROJECTOR, load_state, newest_checkpoint, read_state, tuned_folder


def test_tuned_folder_is_final_of_a_run_or_the_folder_itself(tmp_path):
    for name in ("final", "checkpoint-4"):
        (tmp_path / name).mkdir()
        (tmp_path / name / PROJECTOR).write_bytes(b"")
    assert tuned_folder(tmp_path) == tmp_path / "final"
    assert tuned_folder(tmp_path / "checkpoint-4") == tmp_path / "checkpoint-4"
    with pytest.raises(ShardkitError, match=r"no projector.safetensors here or in final/; pass a `shardkit train"):
        tuned_folder(tmp_path / "elsewhere")


def test_newest_checkpoint_is_the_highest_complete_one(tmp_path):
    assert newest_checkpoint(tmp_path) is None
    for step, complete in ((5, True), (20, True), (100, False)):  # 100: killed while writing, no state.json
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "state.json").write_text(json.dumps({"step": step}))
    (tmp_path / "checkpoint-x").mkdir()
    assert newest_checkpoint(tmp_path) == tmp_path / "checkpoint-20"
    assert read_state(newest_checkpoint(tmp_path)) == {"step": 20}


def test_load_state_names_the_missing_or_misshapen_tensor(tmp_path):
    module = nn.Linear(3, 2)
    path = tmp_path / "w.safetensors"
    with pytest.raises(ShardkitError, match=r"w.safetensors: projector checkpoint not found"):
        load_state(module, path, "projector")
    save_file({"weight": torch.zeros(2, 3)}, str(path))
    with pytest.raises(ShardkitError, match=r"missing projector tensor 'bias'"):
        load_state(module, path, "projector")
    save_file({"weight": torch.zeros(3, 3), "bias": torch.zeros(2)}, str(path))
    with pytest.raises(ShardkitError, match=r"tensor 'weight' has shape \(3, 3\), model expects \(2, 3\)"):
        load_state(module, path, "projector")
    save_file({"weight": torch.ones(2, 3, dtype=torch.float64), "bias": torch.ones(2)}, str(path))
    load_state(module, path, "projector")
    assert module.weight.dtype == torch.float32 and torch.equal(module.weight, torch.ones(2, 3))
