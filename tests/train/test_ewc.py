"""EWC on the tiny random LLaMA of test_trainer: the Fisher is the mean of per-sample squared gradients, the penalty
holds the weights near their start, counts once per optimizer step, and the Fisher is cached."""

import json

import pytest
import torch

from shardkit.errors import ShardkitError
from shardkit.train.batches import read_data
from shardkit.train.ewc import estimate_fisher
from shardkit.train.lora import LoraSettings, apply_mode
from shardkit.train.trainer import AudioInputs, TrainStep, train
from tests.train.test_trainer import assert_same, cfg, clips, identity_samples, register_tiny, weights, write_data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    register_tiny()
    root = tmp_path_factory.mktemp("ewc-data")
    return write_data(root / "data", identity_samples(clips(root / "clips")))


def _pieces(data, **kw):
    """What the trainer holds before step 0: TrainStep, the data read back, audio inputs, trained parameters."""
    from shardkit.models.registry import load_model

    register_tiny()
    c = cfg(data, **kw)
    torch.manual_seed(0)
    adapter = load_model(c.model, device="cpu", dtype="float32")
    apply_mode(adapter.model, c.mode, LoraSettings.of(c))
    step = TrainStep(adapter.model, encode=False)
    rows = read_data(data, adapter, c)
    audio = AudioInputs(adapter, adapter.model, frozen=True, device=torch.device("cpu"))
    params = {n: p for n, p in adapter.model.named_parameters() if p.requires_grad}
    return step, rows, audio, adapter.model.pad_id, params


def test_fisher_is_the_mean_of_per_sample_squared_gradients(data):
    step, rows, audio, pad, params = _pieces(data)
    one = [estimate_fisher(step, _Only(rows, k), audio, pad, params, 1) for k in (0, 31)]
    both = estimate_fisher(step, _Only(rows, 0, 31), audio, pad, params, 2)
    assert_same(both, {k: (one[0][k] + one[1][k]) / 2 for k in both}, atol=1e-9)
    lora_a = [k for k in both if "lora_A" in k]
    lora_b = [k for k in both if "lora_B" in k]
    assert lora_a and all(float(both[k].abs().max()) == 0 for k in lora_a)  # B starts at 0: no gradient into A
    assert all(float(both[k].sum()) > 0 for k in lora_b) and float(both["projector.1.weight"].sum()) > 0


class _Only:
    """A TrainData showing only some of its rows (estimate_fisher spreads its samples over the whole)."""

    def __init__(self, rows, *keep):
        self.rows, self.keep = rows, keep

    def __len__(self):
        return len(self.keep)

    def batch(self, rows, pad_id, train_on_prompt):
        return self.rows.batch([self.keep[r] for r in rows], pad_id, train_on_prompt)


def test_the_penalty_holds_the_weights_near_their_start(data, tmp_path):
    step, rows, audio, pad, params = _pieces(data)
    start = {k: v.detach().clone() for k, v in params.items()}
    seen = []
    fisher = estimate_fisher(step, rows, audio, pad, params, 8, lambda done, total: seen.append((done, total)))
    assert seen == [(k, 8) for k in range(1, 9)]  # a bar for the minutes it takes (not tqdm under the study's)
    free = train(cfg(data), tmp_path / "free")
    held = train(cfg(data, ewc=1e4, ewc_data=str(data), ewc_samples=8), tmp_path / "held")
    names = {"projector.1.weight": "projector.1.weight"} | {k: "lora." + k.split("lm.", 1)[1].replace(
        ".default", "") for k in fisher if "lora_B" in k}

    def moved(run: str) -> float:  # Σ F·(θ − θ₀)² over the projector and every lora_B: what EWC penalises
        w = weights(tmp_path / run / "final")
        return sum(float((fisher[k] * (w[v] - start[k]) ** 2).sum()) for k, v in names.items())

    assert moved("held") < 0.1 * moved("free"), (moved("held"), moved("free"))
    assert held["losses"][0] == pytest.approx(free["losses"][0])  # the logged loss is the token loss alone


def test_the_penalty_counts_once_per_optimizer_step(data, tmp_path):
    kw = {"ewc": 30.0, "ewc_data": str(data), "ewc_samples": 8, "max_steps": 4, "lora_dropout": 0.0}
    train(cfg(data, batch_size=4, grad_accum=1, **kw), tmp_path / "one")
    train(cfg(data, batch_size=2, grad_accum=2, **kw), tmp_path / "accum")
    assert_same(weights(tmp_path / "accum" / "final"), weights(tmp_path / "one" / "final"), atol=1e-5)


def test_the_fisher_is_cached_by_what_it_depends_on(data, tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDKIT_CACHE", str(tmp_path / "cache"))
    said = []
    c = cfg(data, ewc=10.0, ewc_data=str(data), ewc_samples=8)
    train(c, tmp_path / "a", announce=said.append)
    train(c, tmp_path / "b", announce=said.append)
    train(cfg(data, ewc=10.0, ewc_data=str(data), ewc_samples=4), tmp_path / "c", announce=said.append)
    lines = [s for s in said if s.startswith("EWC")]
    assert ["computed" in lines[0], "cached" in lines[1], "computed" in lines[2]] == [True] * 3
    assert len(list((tmp_path / "cache" / "fisher").glob("*.safetensors"))) == 2
    assert_same(weights(tmp_path / "b" / "final"), weights(tmp_path / "a" / "final"), atol=0)


def test_ewc_needs_its_prompts(data, tmp_path):
    with pytest.raises(ShardkitError, match="ewc > 0 needs ewc_data"):
        train(cfg(data, ewc=1.0), tmp_path / "run")
    with pytest.raises(ShardkitError, match="ewc=-1.0: must be >= 0"):
        cfg(data, ewc=-1.0)
    with pytest.raises(ShardkitError, match="nowhere: ewc_data folder not found"):
        train(cfg(data, ewc=1.0, ewc_data=str(tmp_path / "nowhere")), tmp_path / "run")


def test_a_checkpoint_saved_before_ewc_existed_still_resumes(data, tmp_path):
    out = tmp_path / "run"
    train(cfg(data, max_steps=6, save_every=3), out)
    (out / "final" / "state.json").unlink()
    state = out / "checkpoint-3" / "state.json"
    saved = json.loads(state.read_text())
    saved["config"] = {k: v for k, v in saved["config"].items() if not k.startswith("ewc")}  # an older shardkit's
    state.write_text(json.dumps(saved))
    assert train(cfg(data, max_steps=6, save_every=3), out, resume=True)["started_at"] == 3
    (out / "final" / "state.json").unlink()
    with pytest.raises(ShardkitError, match=r"ewc: checkpoint None, now 5\.0"):
        train(cfg(data, max_steps=6, save_every=3, ewc=5.0, ewc_data=str(data)), out, resume=True)
