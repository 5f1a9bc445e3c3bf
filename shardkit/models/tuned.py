"""Weights a `shardkit train` run wrote, put back into the model family it was trained from.

A run saves only what trained: `projector.safetensors`, `encoder.safetensors` (when the encoder trained) and a
peft `adapter/`. Every family built on the splice loads them the same way, so the registry's `ckpt=` (tiny-ltu)
and `tuned=` (ltu) options both end here.
"""

from pathlib import Path

from torch import nn

from shardkit.errors import ShardkitError


def tuned_folder(path: Path) -> Path:
    """The folder holding the weights: OUT/final for a finished run OUT, or a checkpoint-N / final folder itself."""
    path = Path(path)
    if not (path / "projector.safetensors").is_file() and (path / "final" / "projector.safetensors").is_file():
        path = path / "final"
    if not (path / "projector.safetensors").is_file():
        raise ShardkitError(f"{path}: no projector.safetensors here or in final/; pass a `shardkit train --out` "
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


def load_tuned(model: nn.Module, path: Path) -> None:
    """Projector, encoder (if trained) and LoRA adapter (if any) of a training run, loaded into an AudioLLM.

    An LM that already carries an adapter (LTU's own, unmerged) gets that adapter's weights replaced, which is
    what training it further produced; a plain LM is wrapped with the saved adapter.
    """
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = tuned_folder(path)
    load_state(model.projector, folder / "projector.safetensors", "projector")
    if (folder / "encoder.safetensors").is_file():
        load_state(model.encoder, folder / "encoder.safetensors", "encoder")
    if not (folder / "adapter" / "adapter_config.json").is_file():
        return
    if isinstance(model.lm, PeftModel):
        result = set_peft_model_state_dict(model.lm, load_file(str(folder / "adapter" / "adapter_model.safetensors")))
        if result.unexpected_keys:
            raise ShardkitError(f"{folder}/adapter: tensors the model's adapter has no place for (another rank or "
                                f"targets?): {', '.join(result.unexpected_keys[:3])}")
    else:
        dtype = next(model.lm.parameters()).dtype
        model.lm = PeftModel.from_pretrained(model.lm, folder / "adapter").to(dtype)


def merge_tuned(model: nn.Module, path: Path) -> None:
    """A training run's weights made part of the model: loaded as `load_tuned` does, then its LoRA merged into the
    LM (peft's merge_and_unload), so that a later tuning trains a fresh adapter on top, as on LTU with merge=1."""
    from peft import PeftModel

    load_tuned(model, path)
    if isinstance(model.lm, PeftModel):
        model.lm = model.lm.merge_and_unload()
