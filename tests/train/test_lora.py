"""LoRA goes on the language model's q/v only, never on an audio tower; each mode trains exactly its parts."""

import pytest
import torch
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.audio_llm import AudioLLM
from shardkit.models.prompts import TEMPLATES, collate, encode
from shardkit.names import Placement
from shardkit.train.config import MODES
from shardkit.train.lora import LoraSettings, apply_mode, lm_targets
from shardkit.train.trainer import TrainStep
from tests.models.tiny import llama, tokenizer

N_A, D_IN, D_ENC, HIDDEN = 4, 8, 16, 32


class AttentionEncoder(nn.Module):
    """An audio tower whose attention uses the LM's names: a bare target list would adapt it too."""

    def __init__(self):
        super().__init__()
        self.q_proj, self.v_proj, self.out = nn.Linear(D_IN, D_IN), nn.Linear(D_IN, D_IN), nn.Linear(D_IN, D_ENC)

    def forward(self, x):  # [n, N_A, D_IN] → [n, N_A, D_ENC]
        return self.out(self.q_proj(x) + self.v_proj(x))


def tiny_model(encoder: nn.Module | None = None) -> AudioLLM:
    torch.manual_seed(0)
    tok = tokenizer()
    proj = nn.Sequential(nn.LayerNorm(D_ENC, elementwise_affine=False), nn.Linear(D_ENC, HIDDEN))
    return AudioLLM(encoder or AttentionEncoder(), proj, llama(len(tok), hidden=HIDDEN), tok, N_A,
                    TEMPLATES["plain"])


def test_lora_wraps_only_lm_q_and_v():
    model = tiny_model()
    t = apply_mode(model, "projector+lora")
    expected = tuple(f"lm.base_model.model.model.layers.{i}.self_attn.{m}_proj" for i in (0, 1) for m in "qv")
    assert t.adapted == expected
    assert isinstance(model.encoder.q_proj, nn.Linear) and type(model.encoder.q_proj) is nn.Linear
    assert not any("lora" in n for n, _ in model.encoder.named_parameters())
    assert not any(p.requires_grad for p in model.encoder.parameters())
    # r × (in + out) per adapted Linear: q 32→32, v 32→16 (2 KV heads of 8), two layers; projector 16→32
    assert t.by_part == {"encoder": 0, "projector": D_ENC * HIDDEN + HIDDEN, "lora": 2 * (8 * 64 + 8 * 48)}
    assert t.n_trainable == sum(p.numel() for p in model.parameters() if p.requires_grad) == 544 + 1792
    assert "LoRA on 4 LM modules" in t.summary() and "2,336 of" in t.summary()


def test_tower_inside_the_lm_is_never_a_target():
    lm = tiny_model().lm
    lm.audio_tower = AttentionEncoder()  # as Qwen2-Audio nests its tower inside the causal LM
    names = lm_targets(lm, ("q_proj", "v_proj"))
    assert names == [f"model.layers.{i}.self_attn.{m}_proj" for i in (0, 1) for m in "qv"]
    with pytest.raises(ShardkitError, match=r"match no Linear layer .* named .*down_proj.*q_proj"):
        lm_targets(lm, ("qkv",))


def test_projector_mode_leaves_the_lm_unwrapped():
    model = tiny_model()
    t = apply_mode(model, "projector")
    assert t.adapted == () and t.by_part == {"encoder": 0, "projector": 544, "lora": 0}
    assert type(model.lm).__name__ == "LlamaForCausalLM"


def test_encoder_mode_needs_an_encoder_with_weights():
    with pytest.raises(ShardkitError, match=r"encoder \(Identity\) has no parameters .*use --mode projector\+lora"):
        apply_mode(tiny_model(nn.Identity()), "encoder+projector+lora")
    with pytest.raises(ShardkitError, match="unknown training mode 'lora'; choose from projector, "):
        apply_mode(tiny_model(), "lora")


def test_an_lm_that_already_carries_lora_keeps_it():
    """LTU's loader wraps the LM with LTU's own LoRA; training continues that adapter, never a second one."""
    from peft import LoraConfig, get_peft_model

    model = tiny_model()
    model.lm = get_peft_model(model.lm, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    t = apply_mode(model, "projector+lora", LoraSettings(r=8))
    assert type(model.lm.base_model.model).__name__ == "LlamaForCausalLM"
    assert t.by_part["lora"] == 2 * (4 * 64 + 4 * 48) and len(t.adapted) == 4


@pytest.mark.parametrize("mode", MODES)
def test_gradients_only_where_the_mode_says(mode):
    model = tiny_model()
    apply_mode(model, mode)
    tok = model.tokenizer
    seqs = [encode(tok, "what is the sound <audio> ?", 1, N_A, Placement.INTERLEAVED, model.template, a)[0]
            for a in ("dog", "a cat")]
    b = collate(seqs, model.pad_id)
    step = TrainStep(model, encode=mode.startswith("encoder"))
    feats = torch.randn(2, N_A, D_IN)
    audio_in = feats if step.encode else model.encoder(feats).detach()
    step(**b, audio_in=audio_in).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("projector.") for n in with_grad)
    assert any(n.startswith("encoder.") for n in with_grad) == mode.startswith("encoder")
    assert any(".lora_" in n for n in with_grad) == ("lora" in mode)
    assert not any(n.startswith("lm.") and ".lora_" not in n for n in with_grad)  # the LM base stays frozen


def test_merged_lora_matches_the_adapter():
    model = tiny_model()
    apply_mode(model, "projector+lora")
    with torch.no_grad():
        for n, p in model.lm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)  # as if trained: B starts at zero
    model.eval()
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    before = model.lm(input_ids=ids).logits
    merged = model.lm.merge_and_unload()(input_ids=ids).logits
    assert torch.allclose(before, merged, atol=1e-5)
