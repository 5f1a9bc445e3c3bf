"""The checkpoint format: what `shardkit train` writes, and every reader of it (resume, `ckpt=`, `tuned=`, `base=`).

A run folder OUT holds `checkpoint-N/` (resumable) and `final/` (weights only). Each holds only what trained —
`projector.safetensors`, `encoder.safetensors` (when the encoder trained), a peft `adapter/` (when LoRA trained) —
and `state.json` (step, plan, config, versions). A resumable one adds `optimizer.pt` (`optimizer-RANK.pt` under
DeepSpeed ZeRO, which shards it), `scheduler.pt` and `rng-RANK.pt`. A folder appears whole or not at all: it is
written under a temporary name and renamed into place. It sits under models/ because the model registry loads it;
the trainer above only decides when to write and whether a resume matches.
"""

import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shardkit.errors import ShardkitError

log = logging.getLogger(__name__)

STATE = "state.json"
PROJECTOR, ENCODER, ADAPTER = "projector.safetensors", "encoder.safetensors", "adapter"


# ---------------------------------------------------------------- weights


def save_weights(model: nn.Module, folder: Path, mode: str) -> None:
    """What `mode` trains: the projector always, the encoder when trained, the LoRA adapter in peft's format."""
    from safetensors.torch import save_file

    def tensors(m: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()}

    save_file(tensors(model.projector), str(folder / PROJECTOR))
    if mode.startswith("encoder"):
        save_file(tensors(model.encoder), str(folder / ENCODER))
    if "lora" in mode:
        model.lm.save_pretrained(str(folder / ADAPTER))


def tuned_folder(path: Path) -> Path:
    """The folder holding the weights: OUT/final for a finished run OUT, or a checkpoint-N / final folder itself."""
    path = Path(path)
    if not (path / PROJECTOR).is_file() and (path / "final" / PROJECTOR).is_file():
        path = path / "final"
    if not (path / PROJECTOR).is_file():
        raise ShardkitError(f"{path}: no {PROJECTOR} here or in final/; pass a `shardkit train --out` "
                            f"folder or one of its checkpoint-N folders")
    return path


def load_state(module: nn.Module, path: Path, what: str) -> None:
    """A module's weights from a safetensors file; a missing key or wrong shape is a one-line error."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise ShardkitError(f"{path}: {what} checkpoint not found")
    state, own = load_file(str(path)), module.state_dict()
    for k, v in own.items():
        if k not in state:
            raise ShardkitError(f"{path}: missing {what} tensor {k!r}")
        if state[k].shape != v.shape:
            raise ShardkitError(f"{path}: {what} tensor {k!r} has shape {tuple(state[k].shape)}, model expects "
                                f"{tuple(v.shape)}")
    module.load_state_dict({k: state[k].to(v.dtype) for k, v in own.items()})


def load_tuned(model: nn.Module, path: Path, scale: float = 1.0, intruders: float | None = None) -> None:
    """Projector, encoder (if trained) and LoRA adapter (if any) of a training run, loaded into an AudioLLM.

    An LM that already carries an adapter (LTU's own, unmerged, or the one a resumed run trains) gets that
    adapter's weights replaced, which is what training it further produced; a plain LM is wrapped with the saved
    adapter. `scale` < 1 interpolates the run toward where it started, in weight space and without retraining (a
    forgetting mitigation): the projector and encoder become start + scale × (tuned − start), the model's own
    weights before this call being the start, and the LoRA's delta B·A is scaled by `scale` (its lora_B), which
    needs a plain LM underneath (no adapter of its own to start from). `intruders` (λ in [0, 1]) then applies peft's
    intruder-dimension mitigation to that LoRA (another forgetting remedy without retraining, `_reduce_intruders`).
    """
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = tuned_folder(path)
    for name, value, what in (("scale", scale, "interpolation toward the start"),
                              ("intruders", 1.0 if intruders is None else intruders, "the intruders' share kept")):
        if not 0 <= value <= 1:
            raise ShardkitError(f"{name}={value}: {what} takes a value in [0, 1]")
    if (scale != 1.0 or intruders is not None) and isinstance(model.lm, PeftModel):
        raise ShardkitError(f"{'scale' if scale != 1.0 else 'intruders'} needs a plain LM under the tuned LoRA "
                            f"(merge the start's own adapter first, e.g. ltu:...,merge=1)")
    if scale != 1.0:
        trained = [model.projector] + ([model.encoder] if (folder / ENCODER).is_file() else [])  # what loads below
        starts = {m: {k: v.detach().clone() for k, v in m.state_dict().items()} for m in trained}
    load_state(model.projector, folder / PROJECTOR, "projector")
    if (folder / ENCODER).is_file():
        load_state(model.encoder, folder / ENCODER, "encoder")
    if not (folder / ADAPTER / "adapter_config.json").is_file():
        return
    if isinstance(model.lm, PeftModel):
        result = set_peft_model_state_dict(model.lm, load_file(str(folder / ADAPTER / "adapter_model.safetensors")))
        if result.unexpected_keys:
            raise ShardkitError(f"{folder}/{ADAPTER}: tensors the model's adapter has no place for (another rank "
                                f"or targets?): {', '.join(result.unexpected_keys[:3])}")
    else:
        dtype = next(model.lm.parameters()).dtype
        model.lm = PeftModel.from_pretrained(model.lm, folder / ADAPTER).to(dtype)
    if scale != 1.0:
        _interpolate(model, starts, scale)
    if intruders is not None:
        _reduce_intruders(model, intruders)


def _interpolate(model: nn.Module, starts: dict, scale: float) -> None:
    """Projector and encoder to start + scale × (now − start); every LoRA delta B·A to scale × B·A."""
    with torch.no_grad():
        for module, start in starts.items():
            module.load_state_dict({k: start[k] + scale * (v - start[k]) if v.is_floating_point() else v
                                    for k, v in module.state_dict().items()})
        for name, p in model.lm.named_parameters():
            if "lora_B" in name:
                p.mul_(scale)


def _reduce_intruders(model: nn.Module, lam: float) -> None:
    """peft's intruder-dimension mitigation (Shuttleworth et al., 2024, "LoRA vs Full Fine-tuning: An Illusion of
    Equivalence"): in each adapted layer, the top singular directions of W + ΔW that match none of W's own (intruder
    dimensions, which the paper ties to forgetting) are scaled by λ, and ΔW is refactored at the adapter's rank into
    a new, active adapter. λ = 1 changes nothing; 0 removes them."""
    from peft.tuners.lora import LoraLayer
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    with torch.no_grad():
        reduce_intruder_dimension(model.lm, mitigation_lambda=lam, logging_sink=log.debug)
    # a small LoRA may leave every top singular direction in place: peft then copies the adapter unchanged, λ changes
    # nothing, and the user should know
    layers = [m for m in model.lm.modules() if isinstance(m, LoraLayer) and "intruder_reduced" in m.lora_A]
    changed = sum(not torch.equal(m.lora_B["intruder_reduced"].weight, m.lora_B["default"].weight) for m in layers)
    log.info("intruder dimensions (peft: top 10 directions, cosine < 0.5) in %d of %d adapted layers%s", changed,
             len(layers), "" if changed else ": this model is the tuned one unchanged")


def merge_tuned(model: nn.Module, path: Path) -> None:
    """A training run's weights made part of the model: loaded as `load_tuned` does, then its LoRA merged into the
    LM (peft's merge_and_unload), so that a later tuning trains a fresh adapter on top, as on LTU with merge=1."""
    from peft import PeftModel

    load_tuned(model, path)
    if isinstance(model.lm, PeftModel):
        model.lm = model.lm.merge_and_unload()


# ---------------------------------------------------------------- run folders


def newest_checkpoint(out: Path) -> Path | None:
    """The highest complete checkpoint-N in a run folder (one with its state.json), or None."""
    done = [p for p in Path(out).glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and (p / STATE).is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def read_state(folder: Path) -> dict:
    return json.loads((Path(folder) / STATE).read_text())


def _rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                    cached), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _sharded(acc) -> bool:
    from accelerate.utils import DistributedType

    return acc.distributed_type == DistributedType.DEEPSPEED  # ZeRO-2: each rank keeps its part of the optimizer


def save_checkpoint(acc, model: nn.Module, optimizer, scheduler, folder: Path, state: dict, full: bool) -> None:
    """Write `folder` whole (all ranks take part): weights and state.json, plus the optimizer, scheduler and every
    rank's RNG when `full` (a resumable checkpoint-N rather than final/)."""
    tmp, main = folder.with_name(f".{folder.name}.tmp"), acc.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    if full:
        torch.save(_rng_state(), tmp / f"rng-{acc.process_index}.pt")
        if _sharded(acc):
            torch.save(optimizer.state_dict(), tmp / f"optimizer-{acc.process_index}.pt")
    if main:
        save_weights(model, tmp, state["config"]["mode"])
        if full:
            if not _sharded(acc):
                torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / STATE).write_text(json.dumps(state, indent=2) + "\n")
    acc.wait_for_everyone()
    if main:
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def restore_checkpoint(acc, folder: Path, model: nn.Module, optimizer, scheduler) -> int:
    """Weights, optimizer, scheduler and this rank's RNG from a resumable checkpoint; returns its step. Whether the
    run matches the checkpoint is the caller's question (it reads `read_state` first)."""
    load_tuned(model, folder)
    name = f"optimizer-{acc.process_index}.pt" if _sharded(acc) else "optimizer.pt"
    optimizer.load_state_dict(torch.load(folder / name, map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt", weights_only=True))
    _set_rng_state(torch.load(folder / f"rng-{acc.process_index}.pt", weights_only=True))
    return read_state(folder)["step"]
