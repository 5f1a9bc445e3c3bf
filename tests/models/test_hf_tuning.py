"""Tuning a transformers audio LLM with shardkit's trainer (models/hf_tuning.py), on the tiny random families of
test_hf_audio: a training sample is tokenized exactly as the stock processor expands it, the view's forward is the
stock model's, and a LoRA run loads back through `tuned=` with the same outputs."""

import numpy as np
import pytest
import torch

from shardkit.audio.io import load_audio
from shardkit.models.adapter import Request
from shardkit.models.hf_audio import FAMILIES, load_hf_audio
from shardkit.models.prompts import AUDIO_ID
from shardkit.models.registry import load_model
from shardkit.names import Placement
from shardkit.train.config import TrainConfig
from shardkit.train.trainer import train
from tests.models.test_hf_audio import save_tiny
from tests.train.test_trainer import clips as tone_clips
from tests.train.test_trainer import identity_samples, write_data


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    return save_tiny(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return tone_clips(tmp_path_factory.mktemp("tones"))


def _processor_ids(adapter, text: str, refs) -> list[int]:
    waves = [adapter._load(r, {}) for r in refs]
    return [int(x) for x in adapter.processor(text=[text], audio=waves or None, sampling_rate=16000).input_ids[0]]


def test_a_sample_is_tokenized_as_the_processor_expands_it(family, tones):
    adapter = load_hf_audio(*family)
    refs = _refs(tones, 2)
    for prompt, placement in (("is the sound <audio> a dog or <audio> a cat ?", Placement.INTERLEAVED),
                              ("is the sound <audio> a dog or <audio> a cat ?", Placement.PREPENDED)):
        ids, n_prompt = adapter.encode_sample(prompt, "yes", placement, refs)
        text = adapter.render(Request(prompt, tuple(refs), placement))
        seen = [adapter.processor.audio_token_id if x == AUDIO_ID else x for x in ids]
        assert seen == _processor_ids(adapter, text + "yes" + adapter.tokenizer.eos_token, refs)
        assert n_prompt == len(_processor_ids(adapter, text, refs))


def _refs(tones, n):
    from shardkit.models.adapter import AudioRef

    return [AudioRef(p[0]) for p in list(tones.values())[:n]]


def test_the_views_forward_is_the_stock_models(family, tones):
    adapter = load_hf_audio(*family)
    view, refs = adapter.tunable, _refs(tones, 2)
    r = Request("is the sound <audio> a dog or <audio> a cat ?", tuple(refs))
    ids, _ = adapter.encode_sample(r.prompt, "yes", r.placement, refs)
    x = torch.tensor([ids])
    audio = torch.from_numpy(np.stack([adapter.features(a) for a in refs]))
    with torch.no_grad():
        got = view(x, torch.ones_like(x), torch.arange(x.shape[1])[None], audio).logits[0]
        inputs = adapter._inputs([adapter.render(r) + "yes" + adapter.tokenizer.eos_token],
                                 [load_audio(a.path) for a in refs])
        want = adapter.model(**inputs).logits[0]
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-4)


def test_lora_tuning_lowers_the_loss_and_loads_back_with_tuned(tmp_path, tones):
    name, path = save_tiny("af3", tmp_path / "af3")
    data = write_data(tmp_path / "data", identity_samples(tones))
    cfg = TrainConfig(model=f"{name}:path={path}", data=str(data), mode="projector+lora", lr=3e-2, max_steps=12,
                      batch_size=4, warmup_steps=0, log_every=1, save_every=0, max_length=64, lora_dropout=0.0)
    losses = train(cfg, tmp_path / "run")["losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.1, losses
    tuned = load_model(f"{name}:path={path},tuned={tmp_path / 'run'}")
    plain = load_model(f"{name}:path={path}")
    r = [Request("what is the sound <audio> ?", (_refs(tones, 1)[0],))]
    assert abs(tuned.yes_no(r)[0].value - plain.yes_no(r)[0].value) > 1e-4  # the tuning changed the model
    lora = {n: p for n, p in tuned.model.named_parameters() if "lora_B" in n}
    assert lora and all(float(p.abs().max()) > 0 for p in lora.values())  # LoRA on the language model only
    assert all(".language_model." in n and "audio_tower" not in n for n in lora)
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "run" / "final" / "projector.safetensors")
    own = tuned.model.model.multi_modal_projector.state_dict()
    assert saved.keys() == own.keys() and all(torch.equal(saved[k], own[k]) for k in saved)
