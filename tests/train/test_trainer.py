"""`shardkit train` on a tiny random LLaMA: config checks, bad data, logs, exact resume after SIGKILL, 2 processes.

Run as a script (`python tests/train/test_trainer.py train ...`), this file is the CLI with the tiny model family
registered, so subprocess and `accelerate launch` runs train the same tiny model as the in-process ones.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `tests.models.tiny` when run as a script

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from torch import nn  # noqa: E402

from shardkit.errors import ShardkitError  # noqa: E402
from shardkit.models.checkpoint import newest_checkpoint  # noqa: E402
from shardkit.train.config import TrainConfig  # noqa: E402
from shardkit.train.trainer import train  # noqa: E402
from tests.models.tiny import MeanPoolEncoder, llama, tokenizer  # noqa: E402

SR, SECONDS, FRAMES, D_IN, N_A = 16_000, 0.25, 8, 8, 4
LABELS = {"dog": 300.0, "cat": 700.0, "bird": 1500.0, "siren": 3000.0}  # label -> tone (Hz)


# ---------------------------------------------------------------- the tiny family and its data


def featurize(wave: np.ndarray) -> np.ndarray:
    """[n] at 16 kHz → [8 frames, 8 bands] log spectrum: enough for a tiny model to tell tones apart."""
    x = np.zeros(int(SR * SECONDS), np.float32)
    x[: min(len(x), len(wave))] = wave[: len(x)]
    spec = np.abs(np.fft.rfft(x.reshape(FRAMES, -1), axis=1))[:, :248]  # [8, 248]
    return np.log1p(spec.reshape(FRAMES, D_IN, -1).mean(-1)).astype(np.float32)  # [8, 8]


def build_tiny(opts, device, dtype):
    from shardkit.models.adapter import SpliceAdapter
    from shardkit.models.audio_llm import AudioLLM
    from shardkit.models.prompts import TEMPLATES

    tok = tokenizer()
    lm = llama(len(tok), hidden=32, layers=2, seed=0)
    torch.manual_seed(1)
    encoder = MeanPoolEncoder(D_IN, 16, N_A)
    projector = nn.Sequential(nn.LayerNorm(16, elementwise_affine=False), nn.Linear(16, 32))
    if os.environ.get("TINY_SLOW"):  # lets a test kill a run between checkpoints; numerics unchanged
        lm.register_forward_pre_hook(lambda *_: time.sleep(float(os.environ["TINY_SLOW"])))
    model = AudioLLM(encoder, projector, lm, tok, N_A, TEMPLATES["alpaca_short"]).to(device, dtype)
    return SpliceAdapter(model, featurize, "tiny-test", window_seconds=SECONDS, device=device, dtype=dtype)


def register_tiny() -> None:
    from shardkit.models.registry import FAMILIES, register

    if "tiny-test" not in FAMILIES:
        register("tiny-test", "tests: random 2-layer LLaMA, mean-pool encoder, tone features")(build_tiny)


def write_data(folder: Path, samples: list[dict]) -> Path:
    """A make-data-shaped folder: meta.json listing one JSONL shard."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data-00000.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (folder / "meta.json").write_text(json.dumps({"shards": [{"file": "data-00000.jsonl", "n": len(samples)}]}))
    return folder


def clips(folder: Path) -> dict[str, list[str]]:
    """Two tones per label (different loudness), as WAV files."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    t = np.arange(int(SR * SECONDS)) / SR
    for label, hz in LABELS.items():
        out[label] = []
        for k, amp in enumerate((0.3, 0.6)):
            path = folder / f"{label}-{k}.wav"
            sf.write(path, amp * np.sin(2 * np.pi * hz * t), SR)
            out[label].append(str(path))
    return out


def identity_samples(paths: dict[str, list[str]], n: int = 32) -> list[dict]:
    questions = ("what is the sound <audio> ?", "<audio> what is it ?", "is this audio clip a dog ? <audio>")
    rows = []
    for k in range(n):
        label = list(LABELS)[k % 4]
        rows.append({"id": f"s{k}", "task": "identity", "placement": "prepended" if k % 5 == 4 else "interleaved",
                     "messages": [{"role": "user", "content": questions[k % 3]},
                                  {"role": "assistant", "content": label}],
                     "audios": [paths[label][(k // 4) % 2]], "clip_ids": [f"{label}-{(k // 4) % 2}"]})
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    register_tiny()
    root = tmp_path_factory.mktemp("train-data")
    return write_data(root / "data", identity_samples(clips(root / "clips")))


def cfg(data: Path, **kw) -> TrainConfig:
    base = {"model": "tiny-test", "data": str(data), "mode": "projector+lora", "lr": 1e-2, "max_steps": 6,
            "batch_size": 4, "warmup_steps": 0, "log_every": 1, "save_every": 0, "max_length": 64}
    return TrainConfig(**{**base, **kw})


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {f"projector.{k}": v for k, v in load_file(folder / "projector.safetensors").items()}
    if (folder / "adapter").is_dir():
        out.update({f"lora.{k}": v for k, v in load_file(folder / "adapter" / "adapter_model.safetensors").items()})
    if (folder / "encoder.safetensors").is_file():
        out.update({f"encoder.{k}": v for k, v in load_file(folder / "encoder.safetensors").items()})
    return out


def assert_same(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= atol, f"largest difference {worst:.3g} > {atol}"


def cli(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__)), "train", *args]


def cli_args(c: TrainConfig, out: Path) -> list[str]:
    sets = [f"--set={k}={json.dumps(v) if not isinstance(v, tuple) else ','.join(v)}"
            for k, v in vars(c).items() if k not in ("model", "data")]
    return ["--model", c.model, "--data", c.data, "--out", str(out), "--cpu", *sets]


# ---------------------------------------------------------------- config


def test_cli_reports_a_bad_key_before_loading_anything(tmp_path, capsys, monkeypatch):
    from shardkit.cli import main
    from shardkit.models import registry

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the config was checked")

    monkeypatch.setattr(registry, "load_model", load_model)
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "lr_warmup=3"]) == 2
    assert "unknown key 'lr_warmup'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("rows", [2, 64])
def test_loss_on_kept_positions_equals_the_full_logits_loss(monkeypatch, rows):
    """The LM head runs only where a target counts, a chunk of rows at a time; the summed loss and every gradient
    match full logits."""
    import torch.nn.functional as F

    from shardkit.models.prompts import IGNORE
    from shardkit.train import loss as loss_mod
    from shardkit.train.trainer import TrainStep

    register_tiny()
    model = build_tiny({}, "cpu", torch.float32).model
    monkeypatch.setattr(loss_mod, "CHUNK_BYTES", rows * 4 * model.lm.config.vocab_size)  # 15 rows: chunks of 2, or one
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.lm.config.vocab_size, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # right padding
    mask[2, 6:] = 0
    labels = ids.masked_fill(mask == 0, IGNORE)
    labels[0, :7], labels[1, :4] = IGNORE, IGNORE  # answer-only on two rows, every token on the third
    pos = (mask.cumsum(1) - 1).clamp(min=0)

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return {n: p.grad.clone() for n, p in model.lm.named_parameters() if p.grad is not None}

    kept = TrainStep(model, encode=False)(ids, mask, pos, labels)
    got = grads(kept)
    logits = model(ids, mask, pos).logits
    target = labels[:, 1:].masked_fill(mask[:, :-1] == 0, IGNORE)
    full = F.cross_entropy(logits[:, :-1].flatten(0, 1), target.flatten(), ignore_index=IGNORE, reduction="sum")
    want = grads(full)
    assert int((target != IGNORE).sum()) == 5 + 5 + 5  # of 33: the head runs at these alone
    torch.testing.assert_close(kept, full, rtol=1e-6, atol=1e-5)
    assert got.keys() == want.keys()
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=1e-6)


def test_recomputed_activations_give_the_same_weights(data, tmp_path):
    """recompute=1 keeps each layer's input alone and replays the layer in backward, dropout included: the same
    run."""
    from shardkit.train.trainer import _setup_model

    train(cfg(data, max_steps=3, lora_dropout=0.2), tmp_path / "kept")
    train(cfg(data, max_steps=3, lora_dropout=0.2, recompute=1), tmp_path / "recomputed")
    assert_same(weights(tmp_path / "recomputed" / "final"), weights(tmp_path / "kept" / "final"), atol=1e-6)
    assert cfg(data, recompute=1).hash() == cfg(data).hash()  # a run may resume either way
    for n, runs in ((0, 1), (1, 2)):  # and it did recompute: layer 0's attention runs again in backward
        adapter, _ = _setup_model(cfg(data, recompute=n))
        layer, seen = adapter.tunable.lm.get_decoder().layers[0].self_attn, []  # inside the checkpoint: re-run
        layer.register_forward_hook(lambda *a, seen=seen: seen.append(1))
        adapter.tunable.train()
        ids = torch.randint(5, adapter.tunable.lm.config.vocab_size, (2, 6))
        h = adapter.tunable.hidden_states(ids, torch.ones_like(ids), torch.arange(6).expand(2, 6))
        h.sum().backward()
        assert len(seen) == runs


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the kernel's resident-memory count")
def test_recompute_hands_a_freed_big_block_back_to_the_kernel():
    """glibc keeps a freed 8 MB block once an earlier one raised its threshold; the low-memory mode returns it."""
    code = """
import sys, torch
from shardkit.train.trainer import _return_big_blocks
if sys.argv[1] == "1":
    _return_big_blocks()
def anon():
    return int(next(line for line in open("/proc/self/status") if line.startswith("RssAnon")).split()[1]) // 1024
x = torch.ones(1 << 21); del x
before = anon(); x = torch.ones(1 << 21); held = anon(); del x
print(held - before, anon() - before)
"""
    def run(flag: str) -> list[int]:
        out = subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, check=True)
        return [int(v) for v in out.stdout.split()]

    held, kept = run("0")
    assert held >= 7 and kept >= 7  # glibc's default: the block stays resident after del
    held, kept = run("1")
    assert held >= 7 and kept <= 1


def test_a_few_steps_lower_the_loss_and_write_logs(data, tmp_path):
    out = tmp_path / "run"
    c = cfg(data, max_steps=16, save_every=8, lr=3e-2, group_by_length=False)  # golden values of LTU's plain order
    summary = train(c, out)
    losses = summary["losses"]
    assert len(losses) == 16 and np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.1
    assert (losses[0], losses[-1]) == pytest.approx((3.5671, 3.3535), abs=1e-3)  # golden: tiny LLaMA, seed 0
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 17))
    assert set(rows[0]) == {"step", "epoch", "loss", "lr", "samples_per_s"} and rows[-1]["epoch"] == 1
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-8", "final", "log.jsonl", "loss.png", "setup.json"]
    assert {p.name for p in (out / "checkpoint-8").iterdir()} == {
        "adapter", "projector.safetensors", "optimizer.pt", "scheduler.pt", "rng-0.pt", "state.json"}
    state = json.loads((out / "final" / "state.json").read_text())
    assert state["step"] == 16 and state["config_hash"] == c.hash()
    setup = json.loads((out / "setup.json").read_text())
    assert len(setup["trainable"]["adapted"]) == 4 and setup["plan"]["steps_per_epoch"] == 8


@pytest.mark.parametrize("mode,files", [("projector", {"projector.safetensors"}),
                                        ("encoder+projector+lora", {"projector.safetensors", "encoder.safetensors",
                                                                    "adapter"})])
def test_final_weights_hold_what_the_mode_trains(data, tmp_path, mode, files):
    train(cfg(data, mode=mode, max_steps=2), tmp_path / "run")
    assert {p.name for p in (tmp_path / "run" / "final").iterdir()} == files | {"state.json"}


def test_an_existing_run_needs_resume_and_the_same_config(data, tmp_path):
    out = tmp_path / "run"
    train(cfg(data, save_every=3), out)
    with pytest.raises(ShardkitError, match="already holds a finished run; pass --resume"):
        train(cfg(data, save_every=3), out)
    assert train(cfg(data, save_every=3), out, resume=True)["losses"] == []  # finished: nothing to do
    (out / "final" / "state.json").unlink()
    with pytest.raises(ShardkitError, match=r"cannot resume, .*lr: checkpoint 0\.01, now 0\.02; "):
        train(cfg(data, save_every=3, lr=0.02), out, resume=True)


def test_checkpoint_loads_back_onto_a_fresh_model(data, tmp_path):
    """What `tiny-ltu:ckpt=OUT` and `ltu:...,tuned=OUT` do (models/checkpoint.py), on the tiny model: the same
    logits whether the LM already carries an adapter (resume, LTU unmerged) or gets the saved one wrapped on."""
    from shardkit.models.checkpoint import load_tuned
    from shardkit.train.lora import apply_mode

    out = tmp_path / "run"
    train(cfg(data, max_steps=3), out)
    trained = build_tiny({}, "cpu", torch.float32).model
    apply_mode(trained, "projector+lora")
    load_tuned(trained, out / "final")
    fresh = build_tiny({}, "cpu", torch.float32).model
    load_tuned(fresh, out)
    ids, mask = torch.tensor([[1, 5, 6, -1, -1, -1, -1, 7]]), torch.ones(1, 8, dtype=torch.long)
    feats = torch.randn(1, N_A, 16)
    logits = [m.eval()(ids, mask, torch.arange(8)[None], m.projector(feats)).logits for m in (trained, fresh)]
    assert torch.allclose(logits[0], logits[1], atol=1e-6)
    assert not torch.allclose(logits[0], build_tiny({}, "cpu", torch.float32).model.eval()(
        ids, mask, torch.arange(8)[None], fresh.projector(feats)).logits, atol=1e-3)  # the adapter matters


# ---------------------------------------------------------------- bad input


def test_marker_count_mismatch_is_an_error_before_training(data, tmp_path):
    rows = identity_samples(clips(tmp_path / "c"), 8)
    rows[5]["messages"][0]["content"] = "what is <audio> and <audio> ?"
    with pytest.raises(ShardkitError, match=r"sample 5 \(id 's5'\): 2 <audio> marker\(s\) but 1 audio file"):
        train(cfg(write_data(tmp_path / "d", rows)), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_truncation_through_audio_is_an_error(data, tmp_path):
    with pytest.raises(ShardkitError, match=r"sample 0 .*would cut audio tokens; raise max_length"):
        train(cfg(data, max_length=6), tmp_path / "run")


def test_unreadable_clip_is_skipped_and_counted(tmp_path):
    register_tiny()
    rows = identity_samples(clips(tmp_path / "c"), 8)
    rows[3]["audios"] = [str(tmp_path / "gone.wav")]
    (tmp_path / "broken.wav").write_bytes(b"RIFF not audio")
    rows[6]["audios"] = [str(tmp_path / "broken.wav")]
    summary = train(cfg(write_data(tmp_path / "d", rows), max_steps=1), tmp_path / "run")
    assert summary["samples"] == 6 and summary["skipped"] == 2
    bad = json.loads((tmp_path / "run" / "setup.json").read_text())["samples"]["unreadable_clips"]
    assert set(bad) == {str(tmp_path / "gone.wav"), str(tmp_path / "broken.wav")}
    assert "file not found" in bad[str(tmp_path / "gone.wav")]


def test_empty_dataset_is_an_error(tmp_path):
    register_tiny()
    with pytest.raises(ShardkitError, match="the dataset has no samples; generate some with `shardkit make-data`"):
        train(cfg(write_data(tmp_path / "d", [])), tmp_path / "run")
    with pytest.raises(ShardkitError, match="data folder not found"):
        train(cfg(tmp_path / "nowhere"), tmp_path / "run")


def test_fewer_samples_than_a_global_batch_is_an_error(data, tmp_path):
    with pytest.raises(ShardkitError, match=r"32 usable samples is fewer than one global batch of 64"):
        train(cfg(data, batch_size=16, grad_accum=4), tmp_path / "run")


# ---------------------------------------------------------------- exactness: resume, processes


def test_resume_after_sigkill_reaches_the_same_weights(data, tmp_path):
    c = cfg(data, max_steps=12, save_every=3, lora_dropout=0.1)  # dropout: the RNG state must resume too
    train(c, tmp_path / "ref")
    out = tmp_path / "run"
    env = {**os.environ, "TINY_SLOW": "0.1"}
    proc = subprocess.Popen(cli(*cli_args(c, out)), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while newest_checkpoint(out) is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert newest_checkpoint(out) is not None, err.decode()[-2000:]
    assert not (out / "final").exists(), "the run finished before it could be killed"
    r = subprocess.run(cli(*cli_args(c, out), "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_same(weights(out / "final"), weights(tmp_path / "ref" / "final"), atol=1e-6)
    logged = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 13))  # no step logged twice


def test_two_processes_match_one(data, tmp_path):
    one = cfg(data, max_steps=4, batch_size=4, grad_accum=2, lora_dropout=0.0)  # global batch 8
    train(one, tmp_path / "one")
    two = cfg(data, max_steps=4, batch_size=4, grad_accum=1, lora_dropout=0.0)  # 4 × 2 processes
    # `accelerate launch --cpu --num_processes 2` starts ONE process unless MPI is set up (accelerate 1.15's
    # simple launcher); --multi_gpu launches through torchrun, and `train --cpu` makes that gloo on the CPU.
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", str(Path(__file__)), "train",
           *cli_args(two, tmp_path / "two")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "final" / "state.json").read_text())["world_size"] == 2
    assert_same(weights(tmp_path / "two" / "final"), weights(tmp_path / "one" / "final"), atol=1e-5)


def _train_on_bundled_clips(tmp_path: Path, n: int, steps: int) -> None:
    """`steps` of projector+LoRA on tiny-ltu over the first `n` bundled clips (prepended labeling) → tmp_path/run."""
    from shardkit.resources.samples import build_samples

    manifest = build_samples(0)
    rows = [json.loads(x) for x in manifest.read_text().splitlines()][:n]
    samples = [{"id": r["id"], "placement": "prepended", "audios": [str(manifest.parent / r["path"])],
                "messages": [{"role": "user", "content": "What is the source of the sound?"},
                             {"role": "assistant", "content": r["id"].split("-")[1]}]} for r in rows]
    c = TrainConfig(data=str(write_data(tmp_path / "d", samples)), mode="projector+lora", max_steps=steps,
                    batch_size=4, warmup_steps=0, save_every=0)
    train(c, tmp_path / "run")


@pytest.mark.heavy
def test_tiny_ltu_checkpoint_loads_through_the_registry(tmp_path):
    """Stage 0 on the real CPU default for two steps, then `tiny-ltu:ckpt=OUT` gives the trained projector."""
    from shardkit.models.registry import load_model

    _train_on_bundled_clips(tmp_path, n=8, steps=2)
    adapter = load_model(f"tiny-ltu:ckpt={tmp_path / 'run'}")
    saved = load_file(tmp_path / "run" / "final" / "projector.safetensors")
    assert all(torch.equal(adapter.model.projector.state_dict()[k], v) for k, v in saved.items())
    assert type(adapter.model.lm).__name__ == "PeftModelForCausalLM"


def test_a_merged_base_equals_its_adapter_and_takes_a_fresh_one(tmp_path):
    """`tiny-ltu:base=OUT` merges OUT's LoRA into SmolLM2: the same logits as `ckpt=OUT` (whatever the adapter
    holds), a plain LM underneath, and a tuning from it names both: base=OUT,ckpt=NEW."""
    from safetensors.torch import save_file

    from shardkit.models.registry import load_model, with_tuned

    _train_on_bundled_clips(tmp_path, n=4, steps=1)
    path = tmp_path / "run" / "final" / "adapter" / "adapter_model.safetensors"
    g = torch.Generator().manual_seed(0)  # an adapter that changes the logits visibly: one step barely moves B
    state = {k: (0.05 * torch.randn(v.shape, generator=g) if "lora_B" in k else v) for k, v in load_file(path).items()}
    save_file(state, path)
    unmerged, merged = (load_model(f"tiny-ltu:{k}={tmp_path / 'run'}").model for k in ("ckpt", "base"))
    assert type(merged.lm).__name__ == "LlamaForCausalLM"
    ids = torch.tensor([[1, 504, 2143, 314, 260, 1345, 47]])
    mask, pos = torch.ones_like(ids), torch.arange(ids.shape[1])[None]
    a, b = (m(ids, mask, pos, None).logits for m in (unmerged, merged))
    plain = load_model("tiny-ltu").model(ids, mask, pos, None).logits
    assert torch.allclose(a, b, atol=1e-4) and not torch.allclose(a, plain, atol=1e-2)
    assert with_tuned(f"tiny-ltu:base={tmp_path}", "OUT") == f"tiny-ltu:base={tmp_path},ckpt=OUT"


if __name__ == "__main__":
    from shardkit.cli import main

    register_tiny()
    sys.exit(main(sys.argv[1:]))
