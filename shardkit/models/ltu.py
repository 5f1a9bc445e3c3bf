"""LTU (Listen, Think, and Understand): CAV-MAE audio tower, pooled to 32 tokens, projected into LLaMA/Vicuna.

shardkit runs LTU through the shared splice in `audio_llm.py`, so the family is only what is LTU-specific: the
token pooling (`LtuAudioTower`), the projector, and a loader that maps the public `ltu_ori_paper.bin` onto these
modules by an explicit key table, refusing rather than ignoring a checkpoint that leaves the audio path unset.
Read top to bottom: config, tower, projector, builder, checkpoint loader.
"""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.audio_llm import AudioLLM
from shardkit.models.encoders.cavmae import CavMae, CavMaeConfig
from shardkit.models.prompts import TEMPLATES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LtuConfig:
    encoder: CavMaeConfig = field(default_factory=CavMaeConfig)  # LTU: ViT-Base CAV-MAE, 11 + 1 blocks
    pool_time: int = 2  # LTU average-pools time columns in pairs: 64 → 32 tokens (~0.32 s each)
    audio_scale: float = 50.0  # LTU divides pooled tokens by 50 ("hard norm to 50") before the projector
    lora_r: int = 8  # LTU finetune.py defaults; the checkpoint's LoRA shapes depend on r
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    template: str = "alpaca_short"  # LTU's prompt template

    def __post_init__(self):
        cols = self.encoder.grid[1]
        if self.pool_time < 1 or cols % self.pool_time:
            raise ShardkitError(f"LtuConfig: pool_time={self.pool_time} must divide the {cols} time columns")
        if self.template not in TEMPLATES:
            raise ShardkitError(f"LtuConfig: template={self.template!r} is unknown; one of {', '.join(TEMPLATES)}")

    @property
    def n_audio_tokens(self) -> int:
        """Audio tokens per clip: 64 time columns / 2 = 32 for LTU."""
        return self.encoder.grid[1] // self.pool_time


def pool_tokens(x: torch.Tensor, rows: int, pool_time: int, scale: float) -> torch.Tensor:
    """LTU's token pooling: mean over frequency rows, average over `pool_time` adjacent time columns, / scale.

    Shapes: x [b, n, d] with n = rows · cols, frequency-major → [b, cols / pool_time, d]
    (LTU: [b, 512, 768] → [b, 8, 64, 768] → [b, 64, 768] → [b, 32, 768]).
    """
    b, n, d = x.shape
    x = x.reshape(b, rows, n // rows, d).mean(dim=1)  # [b, cols, d]
    x = x.reshape(b, -1, pool_time, d).mean(dim=2)  # [b, cols / pool_time, d]
    return x / scale


class LtuAudioTower(nn.Module):
    """CAV-MAE plus LTU's pooling: fbank [b, 1024, 128] → [b, 32, 768] audio tokens (before the projector)."""

    def __init__(self, cfg: LtuConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or LtuConfig()
        self.cavmae = CavMae(cfg.encoder)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """Shapes: fbank [b, f, m] → [b, n_a, d]."""
        return pool_tokens(self.cavmae(fbank), self.cfg.encoder.grid[0], self.cfg.pool_time, self.cfg.audio_scale)


def ltu_projector(width: int, hidden: int) -> nn.Sequential:
    """LTU's `audio_proj`: LayerNorm without affine parameters, then Linear; state-dict keys `1.weight`, `1.bias`."""
    return nn.Sequential(nn.LayerNorm(width, elementwise_affine=False), nn.Linear(width, hidden))


def build_ltu(lm: nn.Module, tokenizer, cfg: LtuConfig | None = None) -> AudioLLM:
    """An LTU AudioLLM around a (possibly PEFT-wrapped) causal LM; weights are random until a checkpoint loads."""
    cfg = cfg or LtuConfig()
    hidden = lm.get_input_embeddings().weight.shape[1]
    return AudioLLM(encoder=LtuAudioTower(cfg), projector=ltu_projector(cfg.encoder.dim, hidden), lm=lm,
                    tokenizer=tokenizer, n_audio_tokens=cfg.n_audio_tokens, template=TEMPLATES[cfg.template])


# ---------------------------------------------------------------- checkpoint loader

# Our LM is wrapped by the stock peft (adapter "default"), so its LoRA parameters live at this prefix.
LM_LORA = "lm.base_model.model.model."
_LORA = re.compile(r"layers\.(\d+)\.self_attn\.([qv])_proj\.lora_([AB])(?:\.default)?\.weight")


def map_ltu_keys(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename LTU checkpoint keys to our AudioLLM's parameter names; return (mapped, unmatched keys).

    LTU saves a PEFT-wrapped LlamaForCausalLM, so keys read `base_model.model.model.<rest>`; an unwrapped save
    reads `model.<rest>`. Both prefixes are optional. Then:

    - `audio_encoder.X` → `encoder.cavmae.X`;
    - `audio_proj.X` → `projector.X` (LayerNorm has no weights: only `audio_proj.1.weight`, `audio_proj.1.bias`);
    - `layers.N.self_attn.{q,v}_proj.lora_{A,B}[.default].weight` (the adapter name `.default` appears or not
      depending on the PEFT version that saved it) → `lm.base_model.model.model.layers.N.…lora_{A,B}.default.weight`;
    - anything else is unmatched.
    """
    mapped, unmatched = {}, []
    for key, value in state.items():
        rest = key.removeprefix("base_model.model.")
        rest = rest.removeprefix("model.")
        if rest.startswith("audio_encoder."):
            mapped["encoder.cavmae." + rest.removeprefix("audio_encoder.")] = value
        elif rest.startswith("audio_proj."):
            mapped["projector." + rest.removeprefix("audio_proj.")] = value
        elif m := _LORA.fullmatch(rest):
            layer, qv, ab = m.groups()
            mapped[f"{LM_LORA}layers.{layer}.self_attn.{qv}_proj.lora_{ab}.default.weight"] = value
        else:
            unmatched.append(key)
    return mapped, unmatched


@dataclass(frozen=True)
class LtuLoadReport:
    """What a checkpoint load did; attached to the model as `model.load_report`."""

    loaded: int  # tensors copied into the model
    unmatched: tuple[str, ...]  # checkpoint keys with no place in the model (logged as a warning)
    lora: bool  # whether LoRA tensors were found and loaded


def _names(keys: list[str], k: int = 5) -> str:
    return ", ".join(keys[:k]) + (f", … ({len(keys)} in all)" if len(keys) > k else f" ({len(keys)} in all)")


def load_ltu_state(model: AudioLLM, state: dict[str, torch.Tensor], where: str = "<state dict>") -> LtuLoadReport:
    """Copy an LTU state dict into an LTU AudioLLM whose LM is PEFT-wrapped; refuse any gap in the audio path.

    Raises ShardkitError when an encoder/projector parameter has no checkpoint key, when only part of the LoRA set
    is present, or when a tensor's shape differs from ours (naming the first such tensor and both shapes).
    """
    mapped, unmatched = map_ltu_keys(state)
    params = dict(model.named_parameters())
    unmatched += [k for k in mapped if k not in params]  # renamed but not ours (e.g. LoRA on a layer we lack)
    mapped = {k: v for k, v in mapped.items() if k in params}
    audio = [n for n in params if n.startswith(("encoder.", "projector."))]
    missing = [n for n in audio if n not in mapped]
    if missing:
        raise ShardkitError(f"{where}: {len(missing)} encoder/projector weight(s) missing from the checkpoint: "
                            f"{_names(missing)}; is this an LTU checkpoint with the audio tower?")
    lora = [n for n in params if ".lora_" in n]
    lora_missing = [n for n in lora if n not in mapped]
    if lora and len(lora_missing) < len(lora) and lora_missing:
        raise ShardkitError(f"{where}: {len(lora_missing)} of {len(lora)} LoRA weights missing: "
                            f"{_names(lora_missing)}; check the checkpoint's LoRA rank and target modules")
    for name, value in mapped.items():
        if tuple(value.shape) != tuple(params[name].shape):
            raise ShardkitError(f"{where}: tensor {name} has shape {list(value.shape)} in the checkpoint but "
                                f"{list(params[name].shape)} in the model; check LtuConfig and the LLM directory")
    with torch.no_grad():
        for name, value in mapped.items():
            params[name].copy_(value)
    if unmatched:
        log.warning("%s: %d checkpoint key(s) not used: %s", where, len(unmatched), ", ".join(unmatched))
    has_lora = bool(lora) and not lora_missing
    if lora and not has_lora:
        log.warning("%s: no LoRA weights in the checkpoint; the LM runs without LTU's adapter", where)
    return LtuLoadReport(loaded=len(mapped), unmatched=tuple(unmatched), lora=has_lora)


def config_of(state: dict[str, torch.Tensor]) -> LtuConfig:
    """LtuConfig read off a checkpoint's shapes: the CAV-MAE width, block counts and MLP ratio, and the LoRA rank, so
    that a smaller LTU in LTU's own layout loads as the public one does. Heads are not in the shapes: ViT's head
    width of 64 gives them (ViT-Base: 768 / 64 = 12 heads); anything it cannot read keeps LTU's value."""
    mapped, _ = map_ltu_keys(state)
    enc = {k.removeprefix("encoder.cavmae."): v for k, v in mapped.items() if k.startswith("encoder.cavmae.")}
    base, lora = CavMaeConfig(), LtuConfig()
    if "norm_a.weight" not in enc:
        return lora
    dim = enc["norm_a.weight"].shape[0]

    def blocks(kind: str) -> int:
        return len({k.split(".")[1] for k in enc if k.startswith(f"{kind}.")})

    fc1 = enc.get("blocks_a.0.mlp.fc1.weight")
    encoder = CavMaeConfig(dim=dim, depth_a=blocks("blocks_a") or base.depth_a, depth_u=blocks("blocks_u"),
                           heads=max(1, dim // 64), mlp_ratio=fc1.shape[0] / dim if fc1 is not None else base.mlp_ratio)
    ranks = {v.shape[0] for k, v in mapped.items() if ".lora_A." in k}
    return LtuConfig(encoder=encoder, lora_r=ranks.pop() if len(ranks) == 1 else lora.lora_r)


def load_ltu(ckpt: Path, llm_dir: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
             merge_lora: bool = False, cfg: LtuConfig | None = None) -> AudioLLM:
    """LTU from its checkpoint (`ltu_ori_paper.bin`: encoder + projector + LoRA) and a local Vicuna directory;
    `cfg` None reads the sizes off the checkpoint (`config_of`).

    The LLM and tokenizer come from `llm_dir` only (offline); the tokenizer is set as LTU sets it (pad id 0, left
    padding). The LM is wrapped with LTU's LoRA (peft), the checkpoint is mapped by `map_ltu_keys` and loaded;
    with `merge_lora` the adapter is merged into the base weights. The result carries `load_report`.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt, llm_dir = Path(ckpt), Path(llm_dir)
    if not ckpt.is_file():
        raise ShardkitError(f"{ckpt}: LTU checkpoint not found; download ltu_ori_paper.bin and pass its path")
    if not (llm_dir / "config.json").is_file():
        raise ShardkitError(f"{llm_dir}: no config.json; pass the local Vicuna directory LTU was trained on")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ShardkitError(f"{ckpt}: expected a state dict, found {type(state).__name__}")
    cfg = cfg or config_of(state)
    tokenizer = AutoTokenizer.from_pretrained(llm_dir, local_files_only=True)
    if tokenizer.pad_token_id != 0:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(0)  # LTU: pad id 0 (<unk>), distinct from EOS
    tokenizer.padding_side = "left"
    lm = AutoModelForCausalLM.from_pretrained(llm_dir, dtype=dtype, local_files_only=True)
    lm.config.pad_token_id = 0
    lm = get_peft_model(lm, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                       target_modules=list(cfg.lora_targets), bias="none", task_type="CAUSAL_LM"))
    model = build_ltu(lm, tokenizer, cfg)
    model.encoder.to(dtype)
    model.projector.to(dtype)
    report = load_ltu_state(model, state, str(ckpt))
    if merge_lora:
        model.lm = model.lm.merge_and_unload()
    model.load_report = report
    log.info("%s: loaded %d tensors (LoRA %s)", ckpt, report.loaded, "merged" if merge_lora else "kept")
    return model.to(device).eval()
