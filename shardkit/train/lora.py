"""Which parts of an AudioLLM train, in LTU's three modes, and LoRA on the language model only.

LTU first trains its projector alone, then LoRA on the LLM's q/v projections (with or without the audio tower).
A bare `target_modules=["q_proj", "v_proj"]` also matches attention inside an audio encoder that uses those
names, so peft only ever sees `model.lm`, its targets are an explicit list of module paths inside it (any audio or
vision tower the LM carries is left out), and the adapted paths are logged.
"""

import logging
import re
from dataclasses import dataclass

from torch import nn

from shardkit.errors import ShardkitError
from shardkit.train.config import MODES, TrainConfig

log = logging.getLogger(__name__)

_TOWER = re.compile(r"(^|\.)(audio|vision|visual|speech)[^.]*(\.|$)|tower")  # paths inside an LM never adapted


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8  # LTU finetune.py and LLaMA-Factory's default rank
    alpha: int = 16  # 2 × r, as both use
    dropout: float = 0.05  # LTU
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # leaf names of Linear layers inside the LM

    @classmethod
    def of(cls, cfg: TrainConfig) -> "LoraSettings":
        return cls(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, tuple(cfg.lora_targets))


@dataclass(frozen=True)
class Trainable:
    """What `apply_mode` made trainable; `adapted` are full module paths in the AudioLLM."""

    mode: str
    adapted: tuple[str, ...]
    n_trainable: int
    n_total: int
    by_part: dict  # "encoder" | "projector" | "lora" -> trainable parameter count

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v:,}" for k, v in self.by_part.items() if v)
        lora = f"; LoRA on {len(self.adapted)} LM modules ({_short(self.adapted)})" if self.adapted else ""
        return (f"mode {self.mode}: {self.n_trainable:,} of {self.n_total:,} parameters trainable "
                f"({100 * self.n_trainable / max(self.n_total, 1):.2f}%: {parts}){lora}")


def _short(names: tuple[str, ...], k: int = 2) -> str:
    return ", ".join(names[:k]) + (f", … {names[-1]}" if len(names) > k else "")


def lm_targets(lm: nn.Module, targets: tuple[str, ...]) -> list[str]:
    """Paths (relative to the LM) of the Linear layers whose last name is a target, outside any audio tower."""
    names = [name for name, mod in lm.named_modules()
             if name.rsplit(".", 1)[-1] in targets and isinstance(mod, nn.Linear) and not _TOWER.search(name)]
    if not names:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in lm.named_modules() if isinstance(m, nn.Linear)})
        raise ShardkitError(f"LoRA targets {', '.join(targets)} match no Linear layer of the language model "
                            f"({type(lm).__name__}); its Linear layers are named {', '.join(linear)}")
    return names


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def apply_mode(model: nn.Module, mode: str, lora: LoraSettings = LoraSettings()) -> Trainable:
    """Freeze everything, then make trainable what `mode` says; wrap `model.lm` with peft LoRA if needed.

    An LM that is already a PeftModel (LTU's loader wraps it with LTU's own LoRA) keeps its adapter, which trains.
    Raises ShardkitError for an unknown mode, or for a mode that trains an encoder without parameters.
    """
    from peft import LoraConfig, PeftModel, get_peft_model

    if mode not in MODES:
        raise ShardkitError(f"unknown training mode {mode!r}; choose from {', '.join(MODES)}")
    if mode.startswith("encoder") and not _has_params(model.encoder):
        raise ShardkitError(f"mode {mode} trains the audio encoder, but this model's encoder "
                            f"({type(model.encoder).__name__}) has no parameters (tiny-ltu's YAMNet is a frozen ONNX "
                            f"front end); use --mode projector+lora")
    if "lora" in mode and not isinstance(model.lm, PeftModel):
        targets = lm_targets(model.lm, lora.targets)
        causal = hasattr(model.lm, "prepare_inputs_for_generation")  # a transformers family's LM body has no head
        model.lm = get_peft_model(model.lm, LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets, bias="none",
            task_type="CAUSAL_LM" if causal else None))
    model.requires_grad_(False)
    model.projector.requires_grad_(True)
    if mode.startswith("encoder"):
        model.encoder.requires_grad_(True)
    if "lora" in mode:
        for name, p in model.lm.named_parameters():
            if ".lora_" in name:
                p.requires_grad_(True)
    adapted = tuple(f"lm.{name}" for name, mod in model.lm.named_modules()
                    if "lora" in mode and hasattr(mod, "lora_A") and len(getattr(mod, "lora_A", ())))
    by_part = {
        "encoder": sum(p.numel() for p in model.encoder.parameters() if p.requires_grad),
        "projector": sum(p.numel() for p in model.projector.parameters() if p.requires_grad),
        "lora": sum(p.numel() for n, p in model.lm.named_parameters() if p.requires_grad),
    }
    out = Trainable(mode, adapted, sum(by_part.values()), sum(p.numel() for p in model.parameters()), by_part)
    log.info("%s", out.summary())
    if adapted:
        log.info("LoRA adapted modules: %s", ", ".join(adapted))
    return out
