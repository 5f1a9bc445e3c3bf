"""The CPU default end to end on real bundled clips: SmolLM2 + YAMNet, through the same splice."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from shardkit.errors import ShardkitError
from shardkit.models.adapter import AudioRef, Request
from shardkit.names import Placement
from shardkit.resources.samples import build_samples


@pytest.fixture(scope="module")
def tiny():
    from shardkit.models.registry import load_model

    return load_model("tiny-ltu")


@pytest.fixture(scope="module")
def refs():
    manifest = build_samples(0)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    pick = [r for r in rows if r["id"].startswith(("animal-dog", "synth-siren-0", "espeak-en_f3-0"))]
    return [AudioRef(str(manifest.parent / r["path"])) for r in pick]


def test_shapes_and_batched_equals_alone(tiny, refs):
    emb = tiny.audio_embeds(refs)
    assert emb.shape == (len(refs), 32, tiny.model.lm.config.hidden_size)
    reqs = [Request("Is the sound <audio> made by an animal? Answer yes or no.", (refs[0],)),
            Request("What is <audio>?", (refs[1],)),
            Request("Is it a dog? Answer yes or no.", (refs[2],), Placement.PREPENDED)]
    together = tiny.yes_no(reqs)
    for r, t in zip(reqs, together, strict=True):
        assert abs(tiny.yes_no([r])[0].value - t.value) < 1e-4
    assert all(isinstance(g.value, str) for g in tiny.generate(reqs, max_new_tokens=3))


def test_audio_changes_the_answer(tiny, refs):
    """The splice is live: different clips give different scores for the same question."""
    q = "Is the sound <audio> a dog barking? Answer yes or no."
    scores = [r.value for r in tiny.yes_no([Request(q, (a,)) for a in refs])]
    assert len({round(s, 4) for s in scores}) == len(scores)


def test_projector_checkpoint_round_trip(tiny, tmp_path):
    from shardkit.models.checkpoint import load_state
    from shardkit.models.tiny_ltu import projector

    state = {k: v + 1.0 for k, v in tiny.model.projector.state_dict().items()}
    save_file(state, tmp_path / "p.safetensors")
    p = projector(1024, tiny.model.lm.config.hidden_size, seed=0)
    load_state(p, tmp_path / "p.safetensors", "projector")
    assert all(torch.equal(p.state_dict()[k], state[k]) for k in state)
    save_file({"1.weight": torch.zeros(3, 3), "1.bias": torch.zeros(3)}, tmp_path / "bad.safetensors")
    with pytest.raises(ShardkitError, match=r"tensor '1.weight' has shape \(3, 3\), model expects \(576, 1024\)"):
        load_state(p, tmp_path / "bad.safetensors", "projector")


def test_ask_cli(refs):
    r = subprocess.run([sys.executable, "-m", "shardkit", "ask", "--audio", refs[0].path, "--prompt",
                        "Is <audio> a dog? Answer yes or no.", "--max-new-tokens", "4"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("answer: ") and "yes/no log-odds: " in r.stdout


def test_two_processes_converting_smollm2_at_once_both_get_the_folder(tmp_path):
    """`study --jobs 2` on a fresh clone starts two stage-0 tunings together: both convert the GGUF (~25 s), the
    second's rename finds the first's folder; it must keep that one, not fail, and leave no partial folder."""
    import os

    env = {**os.environ, "SHARDKIT_CACHE": str(tmp_path)}
    code = "from shardkit.models.tiny_ltu import smollm2_dir; print(smollm2_dir())"
    runs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in runs]
    assert all(rc == 0 for rc, _, _ in results), [err[-500:] for _, _, err in results]
    made = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert made == ["smollm2-135m-instruct"], made
    assert sum("converting" in err for _, _, err in results) == 2  # both converted: the race was run


def test_the_yamnet_session_opens_only_for_a_clip_the_cache_lacks(tiny, refs, tmp_path):
    """A run on cached features (every training step after the first pass) never holds onnxruntime's ~200 MB."""
    from shardkit.audio.cache import FeatureCache
    from shardkit.models import tiny_ltu

    warm = tiny.features(refs[0])  # in the shared feature cache from here on
    tiny_ltu._yamnet.cache_clear()
    assert np.array_equal(tiny.features(refs[0]), warm)
    assert tiny_ltu._yamnet.cache_info().currsize == 0
    cold = dataclasses.replace(tiny, cache=FeatureCache(tmp_path, tiny.feature_id), _embeds={})
    assert np.array_equal(cold.features(refs[0]), warm)  # computed now, by the session it opened
    assert tiny_ltu._yamnet.cache_info().currsize == 1
