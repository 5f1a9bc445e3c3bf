"""Audio LLMs through stock transformers (Qwen2-Audio, Audio Flamingo 3, Music Flamingo, GLM-ASR): audio tokens sit
where the placement says, batching changes nothing.

For each family a tiny random model (1–2-layer encoder and decoder, width 32) with a word-level tokenizer is built
here, saved and loaded back through `load_hf_audio`, so the real processor, merge and `generate` run with no hub.
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from shardkit.audio.io import load_audio
from shardkit.errors import ShardkitError
from shardkit.models.adapter import AudioRef, Request
from shardkit.models.hf_audio import (
    FAMILIES,
    MIN_SAMPLES,
    SYSTEM,
    HfAudioAdapter,
    glm_tokens,
    load_hf_audio,
    whisper_tokens,
)
from shardkit.models.registry import load_model, parse_spec
from shardkit.names import Placement
from tests.models.tiny import assert_batched_equals_alone

SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<sound>",
           "<|sound_bos|>", "<|sound_eos|>", "<|pad|>", "<|begin_of_audio|>", "<|end_of_audio|>", "<|user|>",
           "<|assistant|>")
WORDS = "system user assistant You are a helpful . Audio 1 2 : is the sound it dog cat bird or what ? yes no Yes No"
TEXT = {"model_type": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512}
ENCODER = {"d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
           "num_mel_bins": 128}


def tiny_processor(name: str):
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor

    vocab = {w: i for i, w in enumerate(["<unk>", *SPECIAL, *dict.fromkeys(WORDS.split())])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>",
                                  eos_token="<|im_end|>", additional_special_tokens=list(SPECIAL[1:]))
    return getattr(transformers, FAMILIES[name].processor_class)(WhisperFeatureExtractor(feature_size=128), tok)


def tiny_model(name: str, tok):
    import transformers

    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL}
    text = {**TEXT, "vocab_size": len(tok)}
    torch.manual_seed(0)
    if name == "qwen2-audio":
        cfg = transformers.Qwen2AudioConfig(audio_config={"model_type": "qwen2_audio_encoder", **ENCODER},
                                            text_config=text, audio_token_index=ids["<|AUDIO|>"])
    elif name == "af3":
        cfg = transformers.AudioFlamingo3Config(audio_config={"model_type": "audioflamingo3_encoder", **ENCODER},
                                                text_config=text, audio_token_id=ids["<sound>"])
    elif name == "glm-asr":  # its encoder merges 4 frames: intermediate_size = 4 × hidden_size
        cfg = transformers.GlmAsrConfig(audio_config={"model_type": "glmasr_encoder", "hidden_size": 16,
                                                      "intermediate_size": 64, "num_hidden_layers": 1,
                                                      "num_attention_heads": 2, "num_mel_bins": 128},
                                        text_config={**text, "model_type": "llama"}, audio_token_id=ids["<|pad|>"])
    else:
        cfg = transformers.MusicFlamingoConfig(audio_config={"model_type": "audioflamingo3_encoder", **ENCODER},
                                               text_config=text, audio_token_id=ids["<sound>"],
                                               audio_bos_token_id=ids["<|sound_bos|>"],
                                               audio_eos_token_id=ids["<|sound_eos|>"])
    return getattr(transformers, FAMILIES[name].model_class)(cfg).eval()


def save_tiny(name: str, path):
    """A tiny random checkpoint folder of family `name`, as `save_pretrained` writes model and processor."""
    processor = tiny_processor(name)
    tiny_model(name, processor.tokenizer).save_pretrained(path)
    processor.save_pretrained(path)
    return name, path


@pytest.fixture(scope="module", params=list(FAMILIES))
def checkpoint(request, tmp_path_factory):
    return save_tiny(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def adapter(checkpoint) -> HfAudioAdapter:
    return load_hf_audio(*checkpoint, batch_size=2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    refs = []
    for k, (f, seconds) in enumerate(((220, 2.0), (440, 2.5), (880, 3.0))):
        p = root / f"tone{k}.wav"
        sf.write(p, 0.3 * np.sin(2 * np.pi * f * np.arange(int(seconds * 16000)) / 16000), 16000)
        refs.append(AudioRef(str(p)))
    (root / "bad.wav").write_bytes(b"not audio at all" * 20)
    return refs, AudioRef(str(root / "bad.wav"))


def ids_seen(adapter, request):
    """The expanded ids the model gets for one request, as the stock processor makes them."""
    waves = [load_audio(a.path) for a in request.audio]
    ids = adapter.processor(text=[adapter.render(request)], audio=waves or None, sampling_rate=16000).input_ids[0]
    return [int(x) for x in ids]


def run(adapter, n: int) -> list[int]:
    """The ids one clip of n audio positions becomes, bos and eos included where the family has them."""
    a = adapter.processor.audio_token_id
    ends = {"qwen2-audio": ("<|audio_bos|>", "<|audio_eos|>"), "music-flamingo": ("<|sound_bos|>", "<|sound_eos|>"),
            "glm-asr": ("<|begin_of_audio|>", "<|end_of_audio|>")}.get(adapter.family.name)
    if ends is None:
        return [a] * n
    bos, eos = (adapter.tokenizer.convert_tokens_to_ids(t) for t in ends)
    return [bos] + [a] * n + [eos]


def test_audio_tokens_sit_at_the_marker_or_first(adapter, clips):
    """The placement check: the ids the model gets hold each clip's run at its marker (interleaved) or before the
    text (prepended), exactly as requested, for every family."""
    (a, b, _), _ = clips
    enc, fam = adapter._ids, adapter.family
    assert (whisper_tokens(32000), whisper_tokens(40000), whisper_tokens(480000)) == (50, 62, 750)
    assert (glm_tokens(32000), glm_tokens(40000), glm_tokens(480000)) == (25, 31, 375)  # 12.5 per second
    n_a, n_b = fam.tokens(32000), fam.tokens(40000)
    system_turn, user_turn = fam.turns
    head = (system_turn.format(SYSTEM) if system_turn else "") + user_turn.split("{}")[0]
    tail = user_turn.split("{}")[1]

    inter = Request("is the sound <audio> a dog or <audio> a cat ?", (a, b))
    assert ids_seen(adapter, inter) == (enc(head + "is the sound ") + run(adapter, n_a) + enc(" a dog or ")
                                        + run(adapter, n_b) + enc(" a cat ?" + tail))

    pre = Request("is the sound <audio> a dog or <audio> a cat ?", (a, b), Placement.PREPENDED)
    text = enc("is the sound a dog or a cat ?" + tail)
    before = {"qwen2-audio": (enc(head + "Audio 1: "), enc("\nAudio 2: "), enc("\n")),
              "glm-asr": (enc(head), enc("\n"), enc("\n"))}.get(fam.name, (enc(head), [], []))
    want = before[0] + run(adapter, n_a) + before[1] + run(adapter, n_b) + before[2] + text
    assert ids_seen(adapter, pre) == want
    if fam.name == "qwen2-audio":  # prepended is what the model's own chat template renders
        content = [{"type": "audio", "audio": a.path}, {"type": "audio", "audio": b.path},
                   {"type": "text", "text": "is the sound a dog or a cat ?"}]
        assert adapter.render(pre) == adapter.processor.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)


def mixed(refs) -> list[Request]:
    a, b, c = refs
    return [Request("<audio> is it a dog ?", (a,)), Request("is <audio> a cat or <audio> a bird ?", (b, c)),
            Request("is it a dog ?", (c,), Placement.PREPENDED), Request("what is it ?"),
            Request("what is it ? <audio>", (a,))]


def test_batched_equals_one_by_one(adapter, clips):
    assert_batched_equals_alone(adapter, mixed(clips[0]))


def test_placement_is_live(adapter, clips):
    (a, _, _), _ = clips
    inter, pre = (Request("is the sound <audio> a dog ?", (a,), p) for p in Placement)
    x, y = (r.value for r in adapter.yes_no([inter, pre]))
    assert abs(x - y) > 1e-5  # identical ids (placement ignored) would give exactly 0


def test_a_very_short_clip_still_gets_an_audio_run(adapter, tmp_path, monkeypatch):
    p = tmp_path / "click.wav"
    sf.write(p, np.full(80, 0.5), 16000)  # 5 ms: 0 audio tokens as read; padded to 0.1 s it gets 2
    seen = []
    forward = adapter.model.model.forward
    monkeypatch.setattr(adapter.model.model, "forward", lambda **kw: seen.append(kw["input_ids"]) or forward(**kw))
    out = adapter.yes_no([Request("<audio> is it a dog ?", (AudioRef(str(p)),))])
    assert out[0].error is None and np.isfinite(out[0].value)
    n = int((seen[0] == adapter.model.config.audio_token_id).sum())
    assert n == adapter.family.tokens(MIN_SAMPLES) >= 1  # Whisper families: 2, a run (Qwen2-Audio: no legacy path)


def test_bad_items_are_item_errors(adapter, clips):
    good, bad = clips
    reqs = [Request("<audio> is it a dog ?", (good[0],)), Request("<audio> is it a dog ?", (bad,)),
            Request("<audio> <audio> ?", (good[1],)), Request("<audio> <audio> ?", (good[1],), Placement.PREPENDED),
            Request(f"is it {adapter.family.reserved[0]} ?", ())]
    alone = adapter.yes_no(reqs[:1])[0].value
    for kind in (adapter.yes_no, lambda r: adapter.generate(r, max_new_tokens=2),
                 lambda r: adapter.cloze([Request(x.prompt, x.audio, x.placement, (" yes",)) for x in r])):
        out = kind(reqs)
        assert out[0].error is None and out[0].value is not None
        assert out[1].value is None and "bad.wav" in out[1].error
        assert out[2].error.startswith("prompt has 2 <audio> marker(s) but 1 clip(s)") and out[3].value is None
        assert f"reserved token {adapter.family.reserved[0]}" in out[4].error
        assert all("\n" not in o.error for o in out[1:])
    assert adapter.yes_no(reqs)[0].value == pytest.approx(alone, abs=1e-4)


def test_registry_builds_it(checkpoint, tmp_path):
    name, path = checkpoint
    model = load_model(f"{name}:path={path}")
    assert isinstance(model, HfAudioAdapter) and model.family.name == name
    assert model.dtype == torch.float32 and model.device == "cpu"
    with pytest.raises(ShardkitError, match=rf"{name} needs path=\.\.\.$"):
        parse_spec(name)
    with pytest.raises(ShardkitError, match="no such folder"):
        load_model(f"{name}:path={tmp_path / 'missing'}")


def test_attention_reads_the_right_positions_batched_or_alone(adapter, clips):
    (a, b, _), bad = clips
    reqs = [Request("is the sound <audio> a dog ?", (a,)), Request("what is <audio> or <audio> ?", (b, a)),
            Request("is the sound a cat ?", (b,), Placement.PREPENDED), Request("is it <audio> a bird ?", (bad,))]
    words = ["dog", "what", "cat", "bird"]
    together = adapter.attention(reqs, words)
    alone = [adapter.attention([r], [w])[0] for r, w in zip(reqs, words, strict=True)]
    assert together[3].value is None and together[3].error  # a bad clip fails its item only
    for x, y in zip(together[:3], alone[:3], strict=True):
        assert x.error is None and np.allclose(x.value, y.value, atol=1e-5)
        got = np.array(x.value)  # [layers, heads, (answer, word), roles]
        assert got.shape == (2, 4, 2, 4) and np.allclose(got.sum(-1), 1, atol=1e-5)
    # the word's positions are where the processor's ids hold it, past each clip's expanded audio
    waves = [load_audio(a.path)]
    seen = ids_seen(adapter, reqs[0])
    at = adapter._word_positions(adapter.render(reqs[0]), "dog", waves)
    assert [seen[k] for k in at] == [adapter.tokenizer.convert_tokens_to_ids("dog")]
    assert "'cow' is not in the prompt" in adapter.attention(reqs[:1], ["cow"])[0].error
    assert np.array(together[2].value)[:, :, :, 1].min() > 0  # prepended: the system and user turns come first


def test_attention_hooks_equal_the_full_maps(adapter, clips):
    """The hooks' sums are the sums over `output_attentions` of the same forward, for the stock Qwen2 decoder."""
    from shardkit.models.attention import ROLES, token_roles

    (a, _, _), _ = clips
    r = Request("is the sound <audio> a dog ?", (a,))
    got = np.array(adapter.attention([r], [None])[0].value)[:, :, 0]  # answer position: [layers, heads, roles]
    inputs = adapter._inputs([adapter.render(r)], [load_audio(a.path)])
    impl = adapter.model.config._attn_implementation
    adapter.model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            maps = adapter.model.model(**inputs, use_cache=False, output_attentions=True).attentions
    finally:
        adapter.model.set_attn_implementation(impl)
    roles = token_roles(inputs["input_ids"], inputs["attention_mask"], audio_id=adapter.processor.audio_token_id)[0]
    for layer, w in enumerate(maps):  # [1, heads, s, s]
        want = np.stack([w[0, :, -1][:, roles == k].sum(-1).numpy() for k in range(len(ROLES))], -1)
        assert np.allclose(got[layer], want, atol=1e-5), layer
