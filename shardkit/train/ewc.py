"""EWC (Kirkpatrick et al., 2017) against FT-Large's forgetting: tuning pays λ/2 · Σ F·(θ − θ₀)² for moving the
weights that the starting model's answers to some prompts (the study: its labeling prompts) depend on.

F is the diagonal empirical Fisher of the trained weights at their start θ₀: the mean over samples of the squared
gradient of the sample's answer-token mean cross-entropy, one sample per backward (a batch's gradient squared would
be another quantity). Only what trains has a Fisher: under LoRA, B starts at zero, so A's gradient and Fisher are
zero there and the penalty holds the delta B·A through B. The Fisher is computed once per (start weights, prompts,
samples) and cached as safetensors under the shardkit cache, so FT-Large's seeds and a resumed run reuse it.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shardkit.models.prompts import IGNORE
from shardkit.paths import cache_dir

log = logging.getLogger(__name__)


@dataclass
class Ewc:
    """The penalty of one run: Fisher and start value per trained parameter (same names as `params`)."""

    lam: float
    fisher: dict[str, torch.Tensor]
    anchor: dict[str, torch.Tensor]
    params: dict[str, nn.Parameter]
    key: str  # cache key of the Fisher
    cached: bool  # read from the cache, not computed

    def penalty(self) -> torch.Tensor:
        """λ/2 · Σ F·(θ − θ₀)² over the trained weights (a scalar in the graph of `params`)."""
        total = sum(((p - self.anchor[n]) ** 2 * self.fisher[n]).sum() for n, p in self.params.items())
        return 0.5 * self.lam * total

    def summary(self) -> str:
        mass = sum(float(f.sum()) for f in self.fisher.values())
        return (f"EWC λ={self.lam:g}: Fisher of {len(self.fisher)} trained tensors, total {mass:.3g} "
                f"({'cached' if self.cached else 'computed'}, {self.key})")


def fisher_key(model_spec: str, params: dict[str, torch.Tensor], data_dir: Path, n: int) -> str:
    """What the Fisher depends on: the start's spec and trained weights (bytes), the prompts' folder (its meta.json,
    which holds the data config and the files' hashes) and the number of samples."""
    h = hashlib.sha256(json.dumps({"model": model_spec, "n": n}).encode())
    meta = Path(data_dir) / "meta.json"
    h.update(meta.read_bytes() if meta.is_file() else str(Path(data_dir).resolve()).encode())
    for name in sorted(params):
        h.update(name.encode())
        h.update(params[name].detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def estimate_fisher(step, data, audio, pad_id: int, params: dict[str, nn.Parameter], n: int,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher over `n` samples spread evenly through `data` (deterministic), in eval mode (no
    dropout). `step` is the trainer's TrainStep (summed token loss), `audio` its AudioInputs; the loss counts the
    answer only, the knowledge to keep. `progress(done, total)` after each sample (minutes on a CPU)."""
    rows = np.unique(np.linspace(0, len(data) - 1, min(n, len(data))).round().astype(int))
    fisher = {k: torch.zeros_like(p, dtype=torch.float32) for k, p in params.items()}
    names, tensors = list(params), list(params.values())
    training = step.training
    step.eval()
    device = tensors[0].device
    for done, row in enumerate(rows, 1):
        batch, refs = data.batch([int(row)], pad_id, train_on_prompt=False)
        n_targets = int((batch["labels"][:, 1:] != IGNORE).sum())
        loss = step(**{k: v.to(device) for k, v in batch.items()}, audio_in=audio(refs)) / max(n_targets, 1)
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for name, g in zip(names, grads, strict=True):
            if g is not None:
                fisher[name] += g.detach().float() ** 2
        if progress:
            progress(done, len(rows))
    step.train(training)
    return {k: v / len(rows) for k, v in fisher.items()}


def setup_ewc(cfg, step, data, audio, pad_id: int, progress: Callable[[int, int], None] | None = None) -> Ewc | None:
    """The run's EWC penalty (None when cfg.ewc is 0), from the cache or estimated now (reporting to `progress`),
    before any step: θ₀ is the model as it starts. `data` is the `ewc_data` folder read like the training data."""
    from safetensors.torch import load_file, save_file

    if not cfg.ewc:
        return None
    params = {n: p for n, p in step.model.named_parameters() if p.requires_grad}
    key = fisher_key(cfg.model, params, Path(cfg.ewc_data), cfg.ewc_samples)
    path = cache_dir("fisher") / f"{key}.safetensors"
    cached = path.is_file()
    if cached:
        fisher = load_file(str(path))
    else:
        fisher = estimate_fisher(step, data, audio, pad_id, params, cfg.ewc_samples, progress)
        tmp = path.with_suffix(".tmp")
        save_file({k: v.contiguous() for k, v in fisher.items()}, str(tmp))
        tmp.replace(path)
    device = next(iter(params.values())).device
    anchor = {n: p.detach().clone() for n, p in params.items()}
    return Ewc(cfg.ewc, {k: fisher[k].to(device) for k in params}, anchor, params, key, cached)
