"""Request-level scoring: same answers batched or alone, encoder once per clip, a bad clip fails only its item."""

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from shardkit.audio.cache import FeatureCache
from shardkit.models.adapter import AudioRef, Request, SpliceAdapter
from shardkit.models.audio_llm import AudioLLM
from shardkit.models.prompts import TEMPLATES
from shardkit.names import Placement
from tests.models.tiny import MeanPoolEncoder, assert_batched_equals_alone, llama, tokenizer

N_A = 4


class CountingFrontEnd:
    """A frozen front end: 10 frames of band energies; counts calls to prove features are cached."""

    def __init__(self):
        self.calls = 0

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        self.calls += 1
        frames = np.array_split(np.pad(wave, (0, max(0, 1600 - len(wave)))), 10)
        return np.stack([[np.abs(np.fft.rfft(f))[k::6].mean() for k in range(6)] for f in frames]).astype(np.float32)


@pytest.fixture
def clips(tmp_path):
    paths = []
    for k, f in enumerate((220, 440, 880)):
        p = tmp_path / f"tone{k}.wav"
        sf.write(p, 0.3 * np.sin(2 * np.pi * f * np.arange(8000) / 16000), 16000)
        paths.append(AudioRef(str(p)))
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 20)
    return paths, AudioRef(str(tmp_path / "bad.wav"))


@pytest.fixture
def adapter(tmp_path):
    tok = tokenizer()
    torch.manual_seed(0)
    model = AudioLLM(MeanPoolEncoder(6, 8, N_A), nn.Linear(8, 32), llama(len(tok)), tok, N_A,
                     TEMPLATES["alpaca_short"]).eval()
    return SpliceAdapter(model, CountingFrontEnd(), "counting", window_seconds=10.24, batch_size=2,
                         cache=FeatureCache(tmp_path / "features", "counting"))


def requests(refs):
    a, b, c = refs
    return [Request("<audio> is it a dog ?", (a,)), Request("is <audio> a cat or <audio> a bird ?", (b, c)),
            Request("is it a dog ?", (c,), Placement.PREPENDED), Request("what is it ? <audio>", (a,))]


def test_batched_equals_one_by_one(adapter, clips):
    assert_batched_equals_alone(adapter, requests(clips[0]))


def test_front_end_runs_once_per_clip(adapter, clips):
    reqs = requests(clips[0]) * 3
    adapter.yes_no(reqs)
    adapter.generate(reqs, max_new_tokens=2)
    assert adapter.featurize.calls == 3  # three distinct clips, twelve questions, two scoring kinds
    adapter.forget_audio()
    adapter.yes_no(reqs)
    assert adapter.featurize.calls == 3 and adapter.cache.hits >= 3  # recomputed embeddings, cached features


def test_bad_clip_is_an_item_error(adapter, clips):
    good, bad = clips
    reqs = [Request("<audio> is it a dog ?", (good[0],)), Request("<audio> is it a dog ?", (bad,)),
            Request("<audio> <audio> ?", (good[1],))]
    out = adapter.yes_no(reqs)
    assert out[0].error is None and isinstance(out[0].value, float)
    assert out[1].value is None and "bad.wav" in out[1].error
    assert out[2].value is None and "2 <audio> marker(s) but 1 clip" in out[2].error
    assert out[0].value == adapter.yes_no(reqs[:1])[0].value


def test_questions_sharing_a_prefix_score_as_whole_prompts(adapter, clips):
    """yes_no runs a shared prefix (one clip, same words up to its audio) once; each answer equals scoring the
    whole prompt on its own, interleaved and prepended."""
    from shardkit.models.prompts import collate, encode

    a, b, _ = clips[0]
    reqs = [Request("is the sound <audio> a dog ?", (a,)), Request("is the sound <audio> a kind of animal ?", (a,)),
            Request("is the sound <audio> a cat ?", (b,)), Request("is it a dog ?", (a,), Placement.PREPENDED),
            Request("is it a bird or a cat ?", (a,), Placement.PREPENDED)]
    adapter.batch_size = 8
    got = adapter.yes_no(reqs)
    m = adapter.model
    for r, g in zip(reqs, got, strict=True):
        one = collate([encode(m.tokenizer, r.prompt, 1, N_A, r.placement, m.template)[0]], m.pad_id)
        want = m.yes_no(one["input_ids"], one["attention_mask"], one["position_ids"], adapter.audio_embeds(r.audio))
        assert abs(g.value - float(want[0])) < 1e-4


def test_cloze_from_each_prompts_cache_equals_whole_rows(adapter, clips):
    """cloze runs each prompt once and every continuation from its KV cache; the scores equal scoring each prompt +
    continuation whole (continuations of 1 to 3 tokens, several per prompt, both placements, per token too), and an
    empty continuation fails its item only."""
    a, b, _ = clips[0]
    conts = (" dog", " cat or bird", " yes", " a kind of animal")
    reqs = [Request("what is <audio> ?", (a,), continuations=conts),
            Request("is it <audio> a dog or <audio> ?", (b, a), continuations=conts[:2]),
            Request("what is it ?", (b,), Placement.PREPENDED, continuations=conts[1:]),
            Request("what is <audio> ?", (a,), continuations=(" dog", ""))]
    adapter.batch_size = 3  # a prompt's continuations cross chunk boundaries
    try:
        shared = adapter.cloze(reqs)
        adapter.share_prefix = False
        whole = adapter.cloze(reqs)
        per_token = adapter.cloze(reqs[:1], per_token=True)
        adapter.share_prefix = True
        assert np.allclose(adapter.cloze(reqs[:1], per_token=True)[0].value, per_token[0].value, atol=1e-4)
    finally:
        adapter.share_prefix, adapter.batch_size = True, 8
    for x, y in zip(shared[:3], whole[:3], strict=True):
        assert x.error is None and len(x.value) == len(y.value) and np.allclose(x.value, y.value, atol=1e-4)
    assert shared[3].value is None and "has no tokens" in shared[3].error and whole[3].error == shared[3].error


def test_attention_batched_equals_alone_and_finds_the_word(adapter, clips):
    reqs = requests(clips[0])
    words = ["dog", "bird", None, "what"]
    together = adapter.attention(reqs, words)
    alone = [adapter.attention([r], [w])[0] for r, w in zip(reqs, words, strict=True)]
    for x, y in zip(together, alone, strict=True):
        assert x.error is None and np.allclose(x.value, y.value, atol=1e-5, equal_nan=True)
    got = np.array(together[0].value)  # [layers, heads, (answer, word), roles]
    assert got.shape == (2, 4, 2, 4) and np.allclose(got.sum(-1), 1, atol=1e-5)
    assert np.isnan(np.array(together[2].value)[:, :, 1]).all()  # no word asked: only the answer position
    # prepended: the audio runs before BOS, so its first slot is the sink and no text comes before the audio
    assert np.array(together[2].value)[:, :, 0, 1].max() == 0 and np.array(together[0].value)[:, :, 0, 1].min() > 0
    assert "'cow' is not in the prompt" in adapter.attention([reqs[0], reqs[1]], ["cow", "bird"])[0].error
    bad = adapter.attention([Request("<audio> is it a dog ?", (clips[1],))], ["dog"])[0]
    assert bad.value is None and bad.error
