"""LTU family: token pooling, tower shapes, and the checkpoint loader against LTU's real key names (tiny sizes)."""

import logging

import numpy as np
import pytest
import torch
from peft import PeftModel

from shardkit.audio.features import ltu_fbank
from shardkit.errors import ShardkitError
from shardkit.models.encoders.cavmae import CavMaeConfig
from shardkit.models.ltu import LtuAudioTower, LtuConfig, load_ltu, map_ltu_keys, pool_tokens
from shardkit.models.prompts import collate, encode
from shardkit.names import Placement
from tests.models.tiny import llama, tokenizer

TINY = LtuConfig(encoder=CavMaeConfig(dim=16, depth_a=2, depth_u=1, heads=2))  # full 1024 × 128 input, 512 tokens
HIDDEN, LAYERS, HEADS, KV_HEADS = 32, 2, 4, 2  # tests/models/tiny.llama
PREFIX = "base_model.model.model."  # LTU saves a PEFT-wrapped LlamaForCausalLM


def test_pooling_by_hand():
    """[b, 512, d] frequency-major → mean over the 8 rows → pairs in time → / 50."""
    idx = torch.arange(512)
    x = ((idx // 64) * 1000.0 + idx % 64)[None, :, None].expand(2, 512, 3)  # value encodes (f, t)
    out = pool_tokens(x, rows=8, pool_time=2, scale=50.0)
    j = torch.arange(32, dtype=torch.float32)
    expected = (3500.0 + 2 * j + 0.5) / 50  # mean f = 3.5 → 3500; mean of t = 2j, 2j+1
    assert out.shape == (2, 32, 3)
    assert torch.allclose(out, expected[None, :, None].expand(2, 32, 3))


def test_full_size_cavmae_and_tower_shapes():
    torch.manual_seed(0)
    tower = LtuAudioTower().eval()
    with torch.no_grad():
        fb = torch.randn(1, 1024, 128)
        assert tower.cavmae(fb).shape == (1, 512, 768)
        assert tower(fb).shape == (1, 32, 768)
    assert sum(p.numel() for p in tower.parameters()) == 85_721_088


# ---------------------------------------------------------------- checkpoint loader


def ltu_state(cfg: LtuConfig, default: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """A synthetic LTU checkpoint, named from LTU's modeling_llama.py (not from our modules), random values."""
    e, g = cfg.encoder, torch.Generator().manual_seed(seed)
    d, h = e.dim, int(e.dim * e.mlp_ratio)
    shapes = {"audio_encoder.patch_embed_a.proj.weight": (d, 1, e.patch, e.patch),
              "audio_encoder.patch_embed_a.proj.bias": (d,),
              "audio_encoder.pos_embed_a": (1, e.grid[0] * e.grid[1], d), "audio_encoder.modality_a": (1, 1, d),
              "audio_encoder.norm_a.weight": (d,), "audio_encoder.norm_a.bias": (d,),
              "audio_proj.1.weight": (HIDDEN, d), "audio_proj.1.bias": (HIDDEN,)}
    blocks = [f"blocks_a.{i}" for i in range(e.depth_a)] + [f"blocks_u.{i}" for i in range(e.depth_u)]
    for b in blocks:
        for norm in ("norm1", "norm2", "norm1_a", "norm2_a", "norm1_v", "norm2_v"):
            shapes |= {f"audio_encoder.{b}.{norm}.weight": (d,), f"audio_encoder.{b}.{norm}.bias": (d,)}
        for lin, (o, i) in {"attn.qkv": (3 * d, d), "attn.proj": (d, d), "mlp.fc1": (h, d), "mlp.fc2": (d, h)}.items():
            shapes |= {f"audio_encoder.{b}.{lin}.weight": (o, i), f"audio_encoder.{b}.{lin}.bias": (o,)}
    ad = ".default" if default else ""
    out = {"q": HIDDEN, "v": KV_HEADS * HIDDEN // HEADS}
    for n in range(LAYERS):
        for qv in "qv":
            shapes[f"layers.{n}.self_attn.{qv}_proj.lora_A{ad}.weight"] = (cfg.lora_r, HIDDEN)
            shapes[f"layers.{n}.self_attn.{qv}_proj.lora_B{ad}.weight"] = (out[qv], cfg.lora_r)
    return {PREFIX + k: torch.randn(s, generator=g) for k, s in shapes.items()}


def ours(model, key: str) -> torch.Tensor:
    """Our tensor for an LTU key, found by walking modules (independent of map_ltu_keys)."""
    rest = key.removeprefix(PREFIX)
    if rest.startswith("audio_encoder."):
        return model.encoder.cavmae.get_parameter(rest.removeprefix("audio_encoder."))
    if rest.startswith("audio_proj."):
        return model.projector.get_parameter(rest.removeprefix("audio_proj."))
    layer, _, qv_proj, ab = rest.split(".")[1:5]
    proj = getattr(model.lm.base_model.model.model.layers[int(layer)].self_attn, qv_proj)
    return getattr(proj, ab)["default"].weight


@pytest.fixture(scope="module")
def vicuna(tmp_path_factory):
    """A tiny LLaMA + tokenizer saved like a Vicuna directory."""
    path = tmp_path_factory.mktemp("vicuna")
    tok = tokenizer()
    llama(len(tok), hidden=HIDDEN, layers=LAYERS).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save(tmp_path, state, name="ltu.bin"):
    torch.save(state, tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("default", [True, False], ids=["with-default", "without-default"])
def test_loader_puts_every_tensor_in_place(vicuna, tmp_path, default):
    state = ltu_state(TINY, default)
    model = load_ltu(save(tmp_path, state), vicuna, cfg=TINY)
    for key, value in state.items():
        assert torch.equal(ours(model, key), value), key
    assert model.load_report.unmatched == () and model.load_report.lora
    assert model.load_report.loaded == len(state)
    assert model.tokenizer.pad_token_id == 0 and model.tokenizer.padding_side == "left"


def test_missing_encoder_weight_is_refused_by_name(vicuna, tmp_path):
    state = ltu_state(TINY)
    del state[PREFIX + "audio_encoder.blocks_a.1.attn.qkv.weight"]
    with pytest.raises(ShardkitError, match=r"encoder\.cavmae\.blocks_a\.1\.attn\.qkv\.weight .*\(1 in all\)") as e:
        load_ltu(save(tmp_path, state), vicuna, cfg=TINY)
    assert "\n" not in str(e.value)


def test_wrong_shape_names_tensor_and_both_shapes(vicuna, tmp_path):
    state = ltu_state(TINY)
    state[PREFIX + "audio_proj.1.weight"] = torch.zeros(HIDDEN, 17)
    with pytest.raises(ShardkitError, match=r"projector\.1\.weight has shape \[32, 17\] .* but \[32, 16\]"):
        load_ltu(save(tmp_path, state), vicuna, cfg=TINY)


def test_partial_lora_is_refused(vicuna, tmp_path):
    state = ltu_state(TINY)
    del state[PREFIX + "layers.1.self_attn.v_proj.lora_B.default.weight"]
    with pytest.raises(ShardkitError, match=r"1 of 8 LoRA weights missing"):
        load_ltu(save(tmp_path, state), vicuna, cfg=TINY)


def test_unknown_key_is_listed_as_unmatched(vicuna, tmp_path, caplog):
    extra = {PREFIX + "audio_encoder_extra.weight": torch.zeros(2), "lm_head.lora_A.weight": torch.zeros(1)}
    state = ltu_state(TINY) | extra
    with caplog.at_level(logging.WARNING, logger="shardkit.models.ltu"):
        model = load_ltu(save(tmp_path, state), vicuna, cfg=TINY)
    assert set(model.load_report.unmatched) == set(extra)
    assert "audio_encoder_extra.weight" in caplog.text


def test_key_prefixes_are_optional():
    v = torch.zeros(1)
    mapped, unmatched = map_ltu_keys({"model.audio_proj.1.bias": v, "audio_encoder.norm_a.bias": v,
                                      "base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight": v,
                                      "layers.0.self_attn.k_proj.lora_A.weight": v})
    assert set(mapped) == {"projector.1.bias", "encoder.cavmae.norm_a.bias",
                           "lm.base_model.model.model.layers.3.self_attn.v_proj.lora_B.default.weight"}
    assert unmatched == ["layers.0.self_attn.k_proj.lora_A.weight"]


def ask(model, feats, instruction="is the sound a kind of animal ?"):
    ids, _ = encode(model.tokenizer, instruction, 1, model.n_audio_tokens, Placement.PREPENDED, model.template)
    b = collate([ids], model.pad_id)
    return model.yes_no(b["input_ids"], b["attention_mask"], b["position_ids"], model.encode_audio(feats))


def test_real_wave_through_fbank_tower_and_splice(vicuna, tmp_path):
    """ltu_fbank of a real recording → LTU tower → projector → yes/no through the splice; merged LoRA agrees."""
    from shardkit.audio.io import load_audio
    from shardkit.resources.samples import package_recordings

    path = next(p for rid, p, *_ in package_recordings() if rid == "animal-dog")
    feats = torch.from_numpy(ltu_fbank(load_audio(path)))[None]  # [1, 1024, 128]
    ckpt = save(tmp_path, {k: v * 0.1 for k, v in ltu_state(TINY).items()})
    model = load_ltu(ckpt, vicuna, cfg=TINY)
    with torch.no_grad():
        audio = model.encode_audio(feats)
    assert audio.shape == (1, 32, HIDDEN) and torch.isfinite(audio).all()
    score = ask(model, feats)
    assert score.shape == (1,) and torch.isfinite(score).all()
    assert not torch.allclose(ask(model, torch.zeros_like(feats)), score, atol=1e-4)  # the audio reaches the LM
    with model.lm.disable_adapter():
        assert not torch.allclose(ask(model, feats), score, atol=1e-4)  # and so does the LoRA
    merged = load_ltu(ckpt, vicuna, cfg=TINY, merge_lora=True)
    assert not isinstance(merged.lm, PeftModel)
    assert torch.allclose(ask(merged, feats), score, atol=1e-4)
    np.testing.assert_array_equal(ltu_fbank(load_audio(path)), feats[0].numpy())  # deterministic front end


@pytest.mark.parametrize("merge", [True, False])
def test_tuned_weights_load_back(vicuna, tmp_path, merge):
    """What `ltu:...,tuned=OUT` does: a `shardkit train` output (projector + LoRA) on top of LTU, merged (fresh
    LoRA) or not (LTU's own LoRA trained further), gives the tuned model's scores."""
    from shardkit.models.checkpoint import load_tuned, save_weights
    from shardkit.train.lora import apply_mode

    ckpt = save(tmp_path, {k: v * 0.1 for k, v in ltu_state(TINY).items()})
    feats = torch.randn(1, 1024, 128)
    tuned = load_ltu(ckpt, vicuna, cfg=TINY, merge_lora=merge)
    apply_mode(tuned, "projector+lora")
    with torch.no_grad():
        for p in tuned.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))  # stands in for training
    (tmp_path / "out").mkdir()
    save_weights(tuned, tmp_path / "out", "projector+lora")
    fresh = load_ltu(ckpt, vicuna, cfg=TINY, merge_lora=merge)
    before = ask(fresh.eval(), feats)
    load_tuned(fresh, tmp_path / "out")
    assert isinstance(fresh.lm, PeftModel)
    assert torch.allclose(ask(fresh.eval(), feats), ask(tuned.eval(), feats), atol=1e-5)
    assert not torch.allclose(before, ask(fresh, feats), atol=1e-4)


def test_sizes_are_read_off_the_checkpoint(vicuna, tmp_path):
    """A smaller LTU in LTU's own layout loads without a config: width, blocks, MLP ratio and LoRA rank from the
    shapes, heads from ViT's head width of 64."""
    from shardkit.models.ltu import config_of

    small = LtuConfig(encoder=CavMaeConfig(dim=64, depth_a=2, depth_u=1, heads=1, mlp_ratio=2.0), lora_r=4)
    state = ltu_state(small)
    assert config_of(state) == small
    assert config_of({}) == LtuConfig()  # nothing to read: LTU's own sizes
    model = load_ltu(save(tmp_path, state), vicuna)
    assert model.load_report.lora and model.encoder.cfg == small
