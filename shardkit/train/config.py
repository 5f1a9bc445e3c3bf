"""What a tuning run and its instruction data are asked to be: `TrainConfig` and `DataConfig`, checked on creation.

Both are frozen dataclasses whose fields are the YAML / `--set` keys; `load_config` reads a train config file with
every problem reported at once. Defaults are LTU's where LTU has one (its fine-tuning script and HF Trainer's).
"""

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shardkit.config import WHEN_SET, identity, load_fields, read_mapping
from shardkit.errors import ShardkitError
from shardkit.names import DTYPES, Placement
from shardkit.suggest import did_you_mean

TASKS = ("identity", "synonym", "hypernym", "description", "replay", "synonym_text", "hypernym_text")
TEXT_TASKS = ("synonym_text", "hypernym_text")  # no audio: WordNet relations over held-out nouns (wordnet_text.py)
DEFAULT_MIX = {"identity": 0.3, "synonym": 0.25, "hypernym": 0.25, "description": 0.1, "replay": 0.1}
SPLITS = ("train", "all")
MODES = ("projector", "projector+lora", "encoder+projector+lora")  # what trains: LTU's stage 0, `proj`, `all`
RUN_CONTROL = ("log_every", "save_every", "recompute")  # may change on resume: they do not change the weights


# ---------------------------------------------------------------- instruction data (`shardkit make-data`)

@dataclass(frozen=True)
class DataConfig:
    size: int = 40_000  # the paper's small scale; 1,000,000 is the large one
    seed: int = 0  # one RNG stream drives every choice: same seed, same bytes
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))  # share per task; missing keys are 0
    allow_overlap: bool = False  # SHARD's words/synsets stay out of synonym/hypernym questions unless asked for
    shard_size: int = 100_000  # records per JSONL file: ~30 MB, small enough to stream, few enough to list
    split: str = "train"  # SHARD is built from the test split; "all" ignores splits (identity then shares recordings)
    max_depth: int = 6  # deepest hypernym asked about, as in SHARD: higher ones get vague
    placement: str = "interleaved"  # where the audio goes in identity/synonym/hypernym/description (replay: prepended)

    def __post_init__(self):
        problems = []
        for name in ("size", "shard_size", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            problems.append(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.allow_overlap, bool):
            problems.append(f"allow_overlap must be true or false, got {self.allow_overlap!r}")
        if self.placement not in (Placement.INTERLEAVED.value, Placement.PREPENDED.value):
            problems.append(f"placement must be interleaved or prepended, got {self.placement!r}")
        if self.split not in SPLITS:
            problems.append(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        problems += _mix_problems(self.mix)
        if problems:
            raise ShardkitError("; ".join(problems))
        object.__setattr__(self, "mix", {t: float(self.mix.get(t, 0.0)) for t in TASKS})

    @classmethod
    def from_dict(cls, values: Mapping) -> "DataConfig":
        """Build from a parsed YAML/JSON mapping (see `config.load_fields`)."""
        return load_fields(cls, values, "data config")


def _mix_problems(mix) -> list[str]:
    if not isinstance(mix, Mapping):
        return [f"mix must map task names to shares, got {mix!r}"]
    problems, total = [], 0.0
    for key, share in mix.items():
        if key not in TASKS:
            problems.append(f"unknown mix key {key!r}{did_you_mean(key, TASKS)} (known: {', '.join(TASKS)})")
        elif isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share):
            problems.append(f"mix share {key}={share!r} is not a number")
        elif share < 0:
            problems.append(f"mix share {key}={share:g} is negative")
        else:
            total += share
    if not problems and abs(total - 1.0) > 1e-6:
        shares = ",".join(f"{k}={v:g}" for k, v in mix.items())
        problems.append(f"mix shares sum to {total:g}, not 1 ({shares})")
    return problems


# ---------------------------------------------------------------- a training run (`shardkit train`)


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tiny-ltu"  # registry spec; stage 1 starts from stage 0 with tiny-ltu:ckpt=STAGE0_OUT
    data: str = ""  # a `shardkit make-data` folder (meta.json + data-*.jsonl); a study sets it per stage
    mode: str = "projector+lora"  # LTU's options: projector (stage 0), projector+lora, encoder+projector+lora
    lr: float | None = None  # None: LTU's 1e-3 for the projector alone, 1e-4 once LoRA trains
    epochs: int = 1  # passes over the data, each in a fresh (seed, epoch) order
    max_steps: int | None = None  # optimizer steps; set, it replaces epochs (and may cross epoch boundaries)
    group_by_length: bool = True  # batches of similar length (less padding); false: plain random batches, as LTU
    batch_size: int = 8  # per process and micro-step; LTU's global 256 = 8 × grad_accum 8 × 4 GPUs
    grad_accum: int = 1  # micro-steps per optimizer step
    warmup_steps: int = 100  # LTU; linear warm-up, then linear decay to 0 (HF Trainer's default schedule)
    weight_decay: float = 0.0  # HF Trainer's default, which LTU kept
    max_grad_norm: float = 1.0  # HF Trainer's default clipping; 0 turns it off
    lora_r: int = 8  # LTU / LLaMA-Factory
    lora_alpha: int = 16  # 2 × r
    lora_dropout: float = 0.05  # LTU
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")  # LM Linear layers only; never the audio tower
    max_length: int = 140  # LTU's cutoff of 108 text tokens + 32 audio tokens; a cut through audio is an error
    train_on_prompt: bool = True  # LTU's train_on_inputs=True: loss on prompt and answer
    dtype: str = "float32"  # frozen weights; bfloat16 halves a 7B LM's memory (trainable weights stay float32)
    seed: int = 0  # model init (LoRA), data order, dropout
    log_every: int = 10  # optimizer steps per log.jsonl line (mean loss over them)
    save_every: int = 100  # optimizer steps per checkpoint; 0: only the final weights
    # every n-th decoder layer keeps only its input and is recomputed in backward (HF's activation checkpointing;
    # the RNG replays, so the same weights): less activation memory for up to one more forward per step; 0: off
    recompute: int = field(default=0, metadata=WHEN_SET)
    # EWC (a forgetting mitigation): λ/2 · Σ F·(θ − θ₀)² added to the loss, F a diagonal Fisher of the trained
    # weights estimated at their start θ₀ on prompts whose answers should survive (train/ewc.py); 0: off
    ewc: float = field(default=0.0, metadata=WHEN_SET)  # λ
    ewc_data: str = field(default="", metadata=WHEN_SET)  # make-data folder of those prompts (a study: labeling)
    ewc_samples: int = field(default=256, metadata=WHEN_SET)  # samples the Fisher is estimated from

    def __post_init__(self):
        if self.lr is None and self.mode in MODES:
            object.__setattr__(self, "lr", 1e-3 if self.mode == "projector" else 1e-4)
        problems = []

        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                problems.append(f"{name}={getattr(self, name)!r}: must be {allowed}")

        need(self.mode in MODES, "mode", " or ".join(MODES))
        need(bool(self.model), "model", "a model spec (see `shardkit models`)")
        need(self.lr is None or self.lr > 0, "lr", "> 0")
        for name in ("epochs", "batch_size", "grad_accum", "lora_r", "max_length", "log_every"):
            need(getattr(self, name) >= 1, name, ">= 1")
        need(self.max_steps is None or self.max_steps >= 1, "max_steps", ">= 1 or null")
        for name in ("warmup_steps", "save_every", "weight_decay", "max_grad_norm", "recompute"):
            need(getattr(self, name) >= 0, name, ">= 0")
        need(self.lora_alpha > 0, "lora_alpha", "> 0")
        need(0 <= self.lora_dropout < 1, "lora_dropout", "in [0, 1)")
        need(len(self.lora_targets) > 0, "lora_targets", "one or more Linear layer names, e.g. q_proj,v_proj")
        need(self.dtype in DTYPES, "dtype", " or ".join(DTYPES))
        need(self.ewc >= 0, "ewc", ">= 0 (EWC's λ; 0: off)")
        need(self.ewc_samples >= 1, "ewc_samples", ">= 1")
        if problems:
            raise ShardkitError("train config: " + "; ".join(problems))

    def hash(self) -> str:
        """sha256 of everything that changes the weights (not `log_every`, `save_every`)."""
        values = {k: v for k, v in identity(self).items() if k not in RUN_CONTROL}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults < YAML file < overrides; every problem (unknown key, type, value) reported at once, in one line."""
    values = read_mapping(path, "train config") if path is not None else {}
    return load_fields(TrainConfig, {**values, **(overrides or {})}, f"train config{f' {path}' if path else ''}")
