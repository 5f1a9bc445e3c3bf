"""The checkpoint format's readers on their own: which folder holds the weights, which checkpoint is newest, and a
one-line error for every mismatch. Writing and resuming are tested end to end in tests/train/test_trainer.py."""

import json
import logging

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


def _tiny_model(seed: int):
    from shardkit.models.audio_llm import AudioLLM
    from shardkit.models.prompts import TEMPLATES
    from tests.models.tiny import llama, tokenizer

    tok = tokenizer()
    torch.manual_seed(seed)
    return AudioLLM(nn.Identity(), nn.Linear(8, 32), llama(len(tok)), tok, 4, TEMPLATES["alpaca_short"]).eval()


def test_scale_interpolates_a_tuned_run_toward_its_start(tmp_path):
    """scale 0 is the start, 1 the tuned run, 0.5 the projector's midpoint and half of every LoRA delta."""
    from peft import LoraConfig, get_peft_model

    from shardkit.models.checkpoint import load_tuned, save_weights

    tuned = _tiny_model(0)
    tuned.lm = get_peft_model(tuned.lm, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            if "lora_B" in name or name.startswith("projector"):
                p.add_(torch.randn_like(p))
    (tmp_path / "run").mkdir()
    save_weights(tuned, tmp_path / "run", "projector+lora")
    ids = torch.tensor([[1, 5, 6, 7]])

    def loaded(scale: float):
        m = _tiny_model(1)  # the start: its own projector, a plain LM
        start = m.projector.weight.detach().clone()
        load_tuned(m, tmp_path / "run", scale)
        with torch.no_grad():
            return m, start, m.lm(input_ids=ids).logits

    plain = _tiny_model(1)
    with torch.no_grad():
        base_logits = plain.lm(input_ids=ids).logits
    m0, start, logits0 = loaded(0.0)
    assert torch.equal(m0.projector.weight, start) and torch.allclose(logits0, base_logits, atol=1e-6)
    m1, _, logits1 = loaded(1.0)
    assert torch.equal(m1.projector.weight, tuned.projector.weight) and not torch.allclose(logits1, base_logits)
    half, start, _ = loaded(0.5)
    assert torch.allclose(half.projector.weight, (start + tuned.projector.weight) / 2, atol=1e-6)
    b_half = {n: p for n, p in half.lm.named_parameters() if "lora_B" in n}
    b_full = {n: p for n, p in m1.lm.named_parameters() if "lora_B" in n}
    assert b_half and all(torch.allclose(b_half[n], b_full[n] / 2) for n in b_half)
    with pytest.raises(ShardkitError, match=r"scale=1.5: interpolation toward the start takes a value in \[0, 1\]"):
        load_tuned(_tiny_model(1), tmp_path / "run", 1.5)
    with pytest.raises(ShardkitError, match="scale needs a plain LM"):
        load_tuned(m1, tmp_path / "run", 0.5)  # m1 already carries an adapter


def test_intruders_reduces_the_tuned_lora_and_at_one_changes_nothing(tmp_path, caplog):
    """peft's intruder-dimension mitigation through load_tuned: λ = 1 gives the tuned run's outputs, λ = 0 shrinks
    the delta where its top directions are foreign to the base weight, and a model with its own adapter refuses."""
    from peft import LoraConfig, get_peft_model

    from shardkit.models.checkpoint import load_tuned, save_weights

    tuned = _tiny_model(0)
    tuned.lm = get_peft_model(tuned.lm, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            if "lora_B" in name:
                p.add_(3 * torch.randn_like(p))  # a delta large enough to own the top singular directions
    (tmp_path / "run").mkdir()
    save_weights(tuned, tmp_path / "run", "projector+lora")
    ids = torch.tensor([[1, 5, 6, 7]])

    def loaded(lam):
        m = _tiny_model(1)
        load_tuned(m, tmp_path / "run", intruders=lam)
        with torch.no_grad():
            return m, m.lm(input_ids=ids).logits

    plain, logits = loaded(None)
    same, logits1 = loaded(1.0)
    assert same.lm.active_adapter == "intruder_reduced" and torch.allclose(logits1, logits, atol=1e-5)
    with caplog.at_level(logging.INFO, logger="shardkit"):
        cut, logits0 = loaded(0.0)
    said = [r.getMessage() for r in caplog.records if "intruder dimensions" in r.getMessage()]
    assert len(said) == 1 and " in 0 of " not in said[0]  # the strong delta owns top directions: intruders found

    def deltas(m, name):
        return {n: mod.get_delta_weight(name).norm().item() for n, mod in m.lm.named_modules()
                if hasattr(mod, "lora_A") and name in mod.lora_A}

    before, after = deltas(cut, "default"), deltas(cut, "intruder_reduced")
    assert all(after[n] <= before[n] + 1e-5 for n in before) and any(after[n] < 0.9 * before[n] for n in before)
    assert not torch.allclose(logits0, logits, atol=1e-3)
    with pytest.raises(ShardkitError, match=r"intruders=2.0: the intruders' share kept takes a value in \[0, 1\]"):
        load_tuned(_tiny_model(1), tmp_path / "run", intruders=2.0)
    with pytest.raises(ShardkitError, match="intruders needs a plain LM"):
        load_tuned(plain, tmp_path / "run", intruders=0.5)
