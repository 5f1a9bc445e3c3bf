"""Model families by name: a dict and a decorator. A model is named by a short spec, `family:key=value,...`.

`tiny-ltu`, `tiny-ltu:projector=runs/stage0/projector.safetensors`, `ltu:ckpt=ltu_ori_paper.bin,llm=vicuna_ltu`,
`qwen2-audio:path=Qwen2-Audio-7B-Instruct`, `af3:path=audio-flamingo-3-hf`. Unknown families and keys are errors
with suggestions; builders do the I/O, never the registry.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch

from shardkit.errors import ShardkitError
from shardkit.names import DTYPES
from shardkit.suggest import choose_from

TORCH_DTYPES = {name: getattr(torch, name) for name in DTYPES}


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    options: dict[str, str]  # key -> help
    required: tuple[str, ...]
    build: Callable[..., object]  # (options: dict, device: str, dtype: torch.dtype) -> adapter
    tuned_key: str | None = None  # the option that loads a `shardkit train` output; None: not trainable here
    base_key: str | None = None  # the option that merges a `shardkit train` output into the base weights
    tested: str = ""  # what the test suite runs it on, and checks


FAMILIES: dict[str, Family] = {}


def register(name: str, description: str, options: dict[str, str] | None = None, required: tuple[str, ...] = (),
             tuned_key: str | None = None, base_key: str | None = None, tested: str = ""):
    def wrap(fn):
        if name in FAMILIES:
            raise ValueError(f"model family {name!r} is already registered")
        FAMILIES[name] = Family(name, description, options or {}, required, fn, tuned_key, base_key, tested)
        return fn
    return wrap


def parse_spec(spec: str) -> tuple[Family, dict[str, str]]:
    """`family:key=value,...` → (family, options), validated against the family's declared keys."""
    name, _, rest = spec.partition(":")
    if name not in FAMILIES:
        raise ShardkitError(f"unknown model family {name!r} in --model {spec!r}{choose_from(name, FAMILIES)}")
    fam = FAMILIES[name]
    opts: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not value:
            raise ShardkitError(f"--model {spec!r}: expected key=value, got {part!r}")
        if key not in fam.options:
            raise ShardkitError(f"--model {spec!r}: {name} has no option {key!r}{choose_from(key, fam.options)}")
        opts[key] = value
    missing = [k for k in fam.required if k not in opts]
    if missing:
        raise ShardkitError(f"--model {spec!r}: {name} needs {', '.join(f'{k}=...' for k in missing)}")
    return fam, opts


def load_model(spec: str, device: str = "cpu", dtype: str = "float32"):
    """Build the adapter a spec names, on `device` in `dtype` (float32, bfloat16, float16)."""
    fam, opts = parse_spec(spec)
    if dtype not in TORCH_DTYPES:
        raise ShardkitError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ShardkitError(f"--device {device}: no CUDA device here; use --device cpu")
    return fam.build(opts, device, TORCH_DTYPES[dtype])


def with_tuned(spec: str, folder: str) -> str:
    """The spec of `spec`'s model with the weights of a `shardkit train` run in `folder` loaded on top."""
    return _with(spec, folder, "tuned_key", "tuned by shardkit")


def trained_spec(spec: str, folder: str) -> str | None:
    """The spec that loads what `shardkit train` started from `spec` wrote into `folder`: `spec` with its family's
    tuned-weights key set to `folder` (replacing a start checkpoint, whose weights the output holds again); None
    for a family with no such key."""
    fam, opts = parse_spec(spec)
    if fam.tuned_key is None:
        return None
    opts = {k: v for k, v in opts.items() if k != fam.tuned_key}
    return with_tuned(f"{fam.name}:" + ",".join(f"{k}={v}" for k, v in opts.items()) if opts else fam.name, folder)


def with_base(spec: str, folder: str) -> str:
    """The spec of `spec`'s model with a `shardkit train` run in `folder` merged into its weights: its new base."""
    return _with(spec, folder, "base_key", "given a merged base by shardkit")


def _with(spec: str, folder: str, field: str, what: str) -> str:
    fam, opts = parse_spec(spec)
    key = getattr(fam, field)
    if key is None:
        raise ShardkitError(f"{fam.name} models cannot be {what} (families that can: "
                            f"{', '.join(n for n, f in FAMILIES.items() if getattr(f, field))})")
    if key in opts:
        raise ShardkitError(f"--model {spec!r} already has {key}=...: start from the base model")
    return f"{spec}{',' if ':' in spec else ':'}{key}={folder}"


INTRUDERS = ("λ in [0, 1]: the tuned LoRA's intruder dimensions (top singular directions foreign to the base "
             "weight, tied to forgetting) scaled by λ, through peft's reduce_intruder_dimension, without retraining")


@register("tiny-ltu", "CPU default: frozen YAMNet → 32 tokens → projector → SmolLM2-135M-Instruct (pip packages)",
          {"projector": "safetensors file of a trained projector (default: the untrained, seeded one)",
           "base": "`shardkit train` output to build on: its projector, and its LoRA merged into the LM (as LTU's "
                   "merge=1), so a tuning from this spec adds a fresh LoRA",
           "ckpt": "`shardkit train` output (OUT, OUT/final or OUT/checkpoint-N): its projector and LoRA adapter",
           "start": "`shardkit train` output the ckpt's tuning started from (e.g. stage 0), for scale=",
           "scale": "α in [0, 1]: the ckpt interpolated toward where its tuning started (base=, then start=), "
                    "without retraining: projector start + α × (tuned − start), LoRA delta × α",
           "intruders": INTRUDERS},
          tuned_key="ckpt", base_key="base",
          tested="the real model (weights from pip): every scoring mode, tuning, resume, the studies")
def _tiny_ltu(opts, device, dtype):
    from pathlib import Path

    from shardkit.models.tiny_ltu import build_tiny_ltu

    if "projector" in opts and ("ckpt" in opts or "base" in opts):
        raise ShardkitError("tiny-ltu: give projector=... or ckpt=.../base=..., not both (a checkpoint holds its "
                            "projector)")
    path = Path(opts["projector"]) if "projector" in opts else None
    ckpt = Path(opts["ckpt"]) if "ckpt" in opts else None
    base = Path(opts["base"]) if "base" in opts else None
    start = Path(opts["start"]) if "start" in opts else None
    if ("scale" in opts or "intruders" in opts or start is not None) and ckpt is None:
        raise ShardkitError("tiny-ltu: scale=, intruders= and start= change a ckpt=...; give one")
    return build_tiny_ltu(projector_path=path, device=device, dtype=dtype, ckpt=ckpt, base=base, start=start,
                          scale=_number(opts, "scale", 1.0), intruders=_number(opts, "intruders", None))


def _number(opts: dict, key: str, default: float | None) -> float | None:
    try:
        return float(opts[key]) if key in opts else default
    except ValueError:
        raise ShardkitError(f"{key}={opts[key]!r}: give a number in [0, 1]") from None


@register("ltu", "LTU: CAV-MAE → 32 tokens → LLaMA/Vicuna with LoRA, from ltu_ori_paper.bin and a local Vicuna folder",
          {"ckpt": "LTU checkpoint (encoder + projector + LoRA), e.g. ltu_ori_paper.bin",
           "llm": "local Vicuna/LLaMA folder LTU was trained on (config.json, weights, tokenizer)",
           "merge": "1 to merge LTU's LoRA into the base weights (faster; tuning then adds a fresh LoRA)",
           "tuned": "`shardkit train` output started from this spec: its projector, encoder and LoRA on top",
           "scale": "α in [0, 1]: the tuned run interpolated toward LTU (needs merge=1): weights start + α × "
                    "(tuned − start), LoRA delta × α",
           "intruders": INTRUDERS + " (needs merge=1)"},
          required=("ckpt", "llm"), tuned_key="tuned",
          tested="a tiny random LTU in LTU's checkpoint layout: key map, splice ≡ LTU's concatenation, merge=1, "
                 "tuned=, the ltu-paper study at micro scale")
def _ltu(opts, device, dtype):
    from pathlib import Path

    from shardkit.audio.features import ltu_fbank
    from shardkit.models.adapter import SpliceAdapter
    from shardkit.models.checkpoint import load_tuned
    from shardkit.models.ltu import load_ltu

    if ("scale" in opts or "intruders" in opts) and "tuned" not in opts:  # before loading 7B parameters
        raise ShardkitError("ltu: scale= and intruders= change a tuned=... run; give one")
    model = load_ltu(Path(opts["ckpt"]), Path(opts["llm"]), device=device, dtype=dtype,
                     merge_lora=opts.get("merge") == "1")
    if "tuned" in opts:
        load_tuned(model, Path(opts["tuned"]), _number(opts, "scale", 1.0), _number(opts, "intruders", None))
        model = model.to(device, dtype).eval()
    # fbank is cheap to recompute: no disk cache; encoder outputs are kept in memory per clip by the adapter
    return SpliceAdapter(model, ltu_fbank, "ltu-fbank", window_seconds=10.24, device=device, dtype=dtype)


def _hf_audio(name: str, title: str, hub: str):
    def build(opts, device, dtype):
        from shardkit.models.hf_audio import load_hf_audio

        return load_hf_audio(name, opts["path"], device=device, dtype=dtype, tuned=opts.get("tuned"))

    register(name, f"{title} from a local directory (e.g. --model {name}:path=/models/{hub.split('/')[1]}, "
                   f"a save of {hub}), through transformers' own classes",
             {"path": "local folder with the model and processor files",
              "tuned": "`shardkit train` output started from this spec: its projector and LoRA on top"},
             required=("path",), tuned_key="tuned",
             tested="a tiny random model: placement ids, batched ≡ alone, yes/no, generate, cloze, attention; "
                    "LoRA tuning, tuned= loading back")(build)


HF_AUDIO = {"qwen2-audio": ("Qwen2-Audio(-Instruct)", "Qwen/Qwen2-Audio-7B-Instruct"),  # models/hf_audio.py
            "af3": ("Audio Flamingo 3", "nvidia/audio-flamingo-3-hf"),
            "music-flamingo": ("Music Flamingo", "nvidia/music-flamingo-2601-hf"),
            "glm-asr": ("GLM-ASR", "zai-org/GLM-ASR-Nano-2512")}
for name, (title, hub) in HF_AUDIO.items():
    _hf_audio(name, title, hub)
