"""`shardkit train`: tune an audio-LLM on instruction data, LTU's way, resumably and data-parallel.

A plain script over builders (torchtune's LoRA recipe, nanoGPT's train.py): each `_setup_*` builds one object,
`train` calls them in order and runs a loop of forward, loss, backward, step, log. The loss is the token mean
over the whole global batch (batch_size × grad_accum × processes), so one process with accumulation and K
processes give the same update. Each epoch reads a permutation drawn from (seed, epoch); step k always reads the
same samples, so a run resumed from a checkpoint (weights, optimizer, scheduler, RNG, data position) continues
exactly where an uninterrupted one would be.
"""

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shardkit import __version__
from shardkit.config import identity
from shardkit.errors import ShardkitError
from shardkit.models.adapter import AudioRef
from shardkit.models.checkpoint import STATE, newest_checkpoint, read_state, restore_checkpoint, save_checkpoint
from shardkit.models.prompts import IGNORE
from shardkit.train.batches import BatchPlan, TrainData, make_plan, read_data
from shardkit.train.config import RUN_CONTROL, TrainConfig
from shardkit.train.ewc import setup_ewc
from shardkit.train.lora import LoraSettings, Trainable, apply_mode
from shardkit.train.loss import head_loss

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- model pieces


class TrainStep(nn.Module):
    """The one module DDP/DeepSpeed wrap: (encoder →) projector → splice → LM → summed token loss."""

    def __init__(self, model: nn.Module, encode: bool):
        super().__init__()
        self.model, self.encode = model, encode

    def forward(self, input_ids, attention_mask, position_ids, labels, audio_in=None) -> torch.Tensor:
        """Sum of next-token cross-entropies; a target right after padding is not counted, and the LM head runs only
        at positions whose target counts, a chunk of rows at a time (train/loss.py: the same sum and gradients as
        full logits, without their memory).

        Shapes: input_ids, attention_mask, position_ids, labels [b, s]; audio_in [n, ...] encoder input
        (trained encoder) or [n, n_a, d_enc] encoder output (frozen) → scalar.
        """
        audio = None
        if audio_in is not None:
            audio = (self.model.encode_audio if self.encode else self.model.project)(audio_in)  # [n, n_a, d]
        target = labels[:, 1:].masked_fill(attention_mask[:, :-1] == 0, IGNORE)  # [b, s - 1]
        counted = target != IGNORE
        hidden = self.model.hidden_states(input_ids, attention_mask, position_ids, audio)  # [b, s, d]
        loss = head_loss(hidden[:, :-1][counted], self.model.head, target[counted])  # position t predicts t + 1
        if audio is None:  # keep the projector in the graph: DDP expects a gradient for every trained weight
            loss = loss + 0.0 * sum(p.sum() for p in self.model.projector.parameters())
        return loss


class AudioInputs:
    """Encoder inputs per clip. A frozen encoder runs once per clip (outputs kept in memory, reused every epoch);
    a trained one gets the front-end features, which the adapter reads back from its on-disk cache."""

    def __init__(self, adapter, model: nn.Module, frozen: bool, device: torch.device):
        self.adapter, self.model, self.frozen, self.device = adapter, model, frozen, device
        self.memo: dict[AudioRef, torch.Tensor] = {}

    def _features(self, refs: list[AudioRef]) -> torch.Tensor:
        p = next(self.model.encoder.parameters(), None)
        dtype = p.dtype if p is not None else torch.float32
        return torch.from_numpy(np.stack([self.adapter.features(r) for r in refs])).to(self.device, dtype)

    def __call__(self, refs: list[AudioRef]) -> torch.Tensor | None:
        if not refs:
            return None
        if not self.frozen:
            return self._features(refs)
        new = list(dict.fromkeys(r for r in refs if r not in self.memo))
        if new:
            training = self.model.encoder.training
            with torch.no_grad():
                out = self.model.encoder.eval()(self._features(new))  # [n, n_a, d_enc]; no dropout, once per clip
            self.model.encoder.train(training)
            self.memo.update(zip(new, out, strict=True))
        return torch.stack([self.memo[r] for r in refs])  # [n, n_a, d_enc]


# ---------------------------------------------------------------- setup (each builds one object)


def _setup_accelerator(cfg: TrainConfig, cpu: bool):
    from accelerate import Accelerator
    from accelerate.utils import DistributedType

    acc = Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=cpu)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and acc.num_processes == 1:  # e.g. a GPU launch config on a machine without GPUs
        raise ShardkitError(f"launched as {launched} processes, but accelerate found no backend to join them; "
                            f"on CPU add --cpu to `shardkit train`")
    if acc.distributed_type == DistributedType.DEEPSPEED:  # no prepared DataLoader to infer "auto" from
        acc.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.batch_size
    return acc


def _setup_model(cfg: TrainConfig):
    """The adapter (frozen front end + AudioLLM) with the mode's parameters trainable, kept in float32."""
    from shardkit.models.registry import load_model

    adapter = load_model(cfg.model, device="cpu", dtype=cfg.dtype)
    trainable = apply_mode(adapter.tunable, cfg.mode, LoraSettings.of(cfg))
    for p in adapter.tunable.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    if cfg.recompute:  # non-reentrant: the spliced embeddings need not require grad, the RNG (dropout) replays
        adapter.tunable.lm.activation_checkpointing_enable({"use_reentrant": False}, every_n_layers=cfg.recompute)
        _return_big_blocks()
    return adapter, trainable


def _return_big_blocks(threshold: int = 1 << 20) -> None:
    """With recompute (the low-memory mode), hand every block ≥ 1 MB back to the kernel when it is freed.

    glibc raises its mmap threshold to 32 MB as big blocks are freed, so a step's activations come from the heap,
    and the holes the steps before left in it stay resident: recomputed FT-Large on tiny-ltu (64 samples, batch 8)
    peaked at 1.58-1.61 GB without this and 1.43 GB with it, about 5% slower (page faults on each fresh block;
    README, "Training memory"). Not glibc: nothing to do.
    """
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(-3, threshold)  # M_MMAP_THRESHOLD (malloc.h)
    except (OSError, AttributeError, TypeError):
        log.debug("no glibc mallopt here: freed blocks stay with the allocator")


def _setup_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)  # LTU: AdamW via HF Trainer


def _setup_scheduler(cfg: TrainConfig, optimizer, total: int):
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, total)


# ---------------------------------------------------------------- resume


def _config_diffs(saved: dict, cfg: TrainConfig) -> list[str]:
    now, saved = json.loads(json.dumps(identity(cfg))), identity(saved, TrainConfig)
    return [f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in sorted(now.keys() | saved.keys())
            if k not in RUN_CONTROL and saved.get(k) != now.get(k)]


def _restore(acc, folder: Path, cfg: TrainConfig, plan: BatchPlan, model: nn.Module, optimizer, scheduler) -> int:
    """Load a checkpoint into the prepared objects; refuse (listing the values) if the run would differ."""
    state = read_state(folder)
    diffs = _config_diffs(state["config"], cfg)
    if state["world_size"] != plan.world:
        diffs.append(f"processes: checkpoint {state['world_size']}, now {plan.world}")
    if state["n_samples"] != plan.n:
        diffs.append(f"usable samples: checkpoint {state['n_samples']}, now {plan.n}")
    if diffs:
        raise ShardkitError(f"{folder}: cannot resume, this run differs from the checkpoint's (config hash "
                            f"{state['config_hash']}, now {cfg.hash()}): {'; '.join(diffs)}; use the checkpoint's "
                            f"values or train into a new --out")
    return restore_checkpoint(acc, folder, model, optimizer, scheduler)


# ---------------------------------------------------------------- logs


class TrainLog:
    """`log.jsonl`: one line per `every` optimizer steps (mean loss over them, lr, samples/s); `loss.png`."""

    def __init__(self, out: Path, every: int, keep_until: int, main: bool):
        self.path, self.every, self.main, self.window = Path(out) / "log.jsonl", every, main, []
        if main:  # a resumed run drops lines past its checkpoint (and a line cut by a kill): no step twice
            old = self.path.read_text().splitlines() if self.path.exists() else []
            kept = [line for line in old if line.endswith("}") and json.loads(line)["step"] <= keep_until]
            self.path.write_text("".join(line + "\n" for line in kept))

    def record(self, step: int, epoch: int, loss: float, lr: float, rate: float, last: bool) -> None:
        self.window.append((loss, rate))
        if self.main and (step % self.every == 0 or last):
            losses, rates = zip(*self.window, strict=True)
            row = {"step": step, "epoch": epoch, "loss": round(float(np.mean(losses)), 6), "lr": lr,
                   "samples_per_s": round(float(np.mean(rates)), 3)}
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            self.window = []

    def plot(self) -> None:
        if not self.main or not self.path.exists():
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
        ax.set(xlabel="optimizer step", ylabel="token cross-entropy", title="training loss")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.path.with_name(".loss.png.tmp"), format="png", dpi=100)
        plt.close(fig)
        self.path.with_name(".loss.png.tmp").replace(self.path.with_name("loss.png"))


# ---------------------------------------------------------------- the run


def _check_out(out: Path, cfg: TrainConfig, resume: bool) -> tuple[Path | None, dict | None]:
    """(newest checkpoint, final state if the run already finished); cheap, before anything heavy."""
    found, final = newest_checkpoint(out), out / "final" / STATE
    if not resume and (found or final.is_file()):
        raise ShardkitError(f"{out} already holds {'a finished run' if final.is_file() else found.name}; pass "
                            f"--resume to continue it or choose a new --out")
    if not final.is_file():
        if resume and not found:
            log.warning("%s: no checkpoint to resume from; starting at step 0", out)
        return found, None
    state = json.loads(final.read_text())
    diffs = _config_diffs(state["config"], cfg)
    if diffs:
        raise ShardkitError(f"{out} holds a finished run with another config ({'; '.join(diffs)}); choose a new --out")
    return found, state


def train(cfg: TrainConfig, out: Path, resume: bool = False, cpu: bool = False,
          progress: Callable[..., None] | None = None, announce: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) training into `out`; returns a summary. `progress(step, total, loss, samples_per_s)` after
    each step (and `progress(done, total)` while an EWC Fisher is estimated) and `announce(message)` are called on
    the main process only."""
    from accelerate.utils import set_seed

    out, data_dir = Path(out), Path(cfg.data)
    if not cfg.data:
        raise ShardkitError("train config: data: give a `shardkit make-data` folder (--data DIR)")
    if cfg.ewc and not cfg.ewc_data:
        raise ShardkitError("train config: ewc > 0 needs ewc_data: a make-data folder of the prompts whose answers "
                            "the Fisher keeps (e.g. prepended labeling, mix replay=1)")
    for folder, what in ((data_dir, "data"), *(((Path(cfg.ewc_data), "ewc_data"),) if cfg.ewc else ())):
        if not folder.is_dir():
            raise ShardkitError(f"{folder}: {what} folder not found; create one with `shardkit make-data --out DIR`")
    ckpt, finished = _check_out(out, cfg, resume)
    if finished:
        (announce or (lambda m: None))(f"{out} already finished ({finished['step']} steps); nothing to do")
        return {"out": str(out), "steps": finished["step"], "started_at": finished["step"], "losses": [],
                "samples": finished["n_samples"], "skipped": None, "trainable": None}
    acc = _setup_accelerator(cfg, cpu)  # first: it knows the device, the rank and the number of processes
    say = (announce or (lambda m: None)) if acc.is_main_process else (lambda m: None)
    set_seed(cfg.seed)  # before the model: LoRA's initial weights come from it, equal on every rank
    adapter, trainable = _setup_model(cfg)
    say(trainable.summary())
    with acc.main_process_first():  # rank 0 fills the on-disk feature cache; the others read it back
        data = read_data(data_dir, adapter, cfg)  # every sample checked before step 0
    lengths = np.diff(data.offsets)  # tokens per sample
    plan = make_plan(cfg, len(data), acc.num_processes, lengths)
    padding = plan.padding(lengths)
    say(f"{len(data)} samples ({data.n_read - len(data)} skipped: unreadable audio), {len(data.refs)} clips; "
        f"global batch {plan.global_batch}, {plan.steps_per_epoch} steps per epoch, {plan.total} steps, "
        f"{padding:.1%} of batch tokens padding")
    optimizer = _setup_optimizer(cfg, adapter.tunable)
    scheduler = _setup_scheduler(cfg, optimizer, plan.total)  # stepped by us, once per optimizer step
    step_fn, optimizer = acc.prepare(TrainStep(adapter.tunable, cfg.mode.startswith("encoder")), optimizer)
    model = acc.unwrap_model(step_fn).model
    audio = AudioInputs(adapter, model, frozen=not cfg.mode.startswith("encoder"), device=acc.device)
    ewc = None
    if cfg.ewc:  # θ₀ is the model as it starts: before a checkpoint is restored
        with acc.main_process_first():  # rank 0 estimates and caches the Fisher; the others read it back
            kept = read_data(Path(cfg.ewc_data), adapter, cfg)
            ewc = setup_ewc(cfg, acc.unwrap_model(step_fn), kept, audio, model.pad_id,
                            progress if acc.is_main_process else None)
        say(ewc.summary())
    start = 0
    if ckpt is not None:
        start = _restore(acc, ckpt, cfg, plan, model, optimizer, scheduler)
        say(f"resumed from {ckpt} at step {start}")
    else:
        set_seed(cfg.seed + acc.process_index)  # dropout differs across ranks, as it would across samples
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        _write_setup(out, cfg, trainable, data, plan, padding)
    logbook = TrainLog(out, cfg.log_every, start, acc.is_main_process)
    trained = [p for p in step_fn.parameters() if p.requires_grad]
    step_fn.train()
    losses = []
    for step in range(start, plan.total):
        t0, rows = time.perf_counter(), plan.global_rows(step)
        n_targets = max(int(data.n_targets[rows].sum()), 1)  # token mean over the global batch, on every rank
        summed = torch.zeros((), device=acc.device)
        for micro in plan.micro_batches(rows, acc.process_index):
            with acc.accumulate(step_fn):
                batch, refs = data.batch(micro, model.pad_id, cfg.train_on_prompt)
                loss = step_fn(**{k: v.to(acc.device) for k, v in batch.items()}, audio_in=audio(refs))
                objective = loss * (plan.world * cfg.grad_accum / n_targets)  # accelerate ÷ accum, DDP ÷ world
                acc.backward(objective + ewc.penalty() if ewc else objective)  # the penalty once per step in all
                if acc.sync_gradients and cfg.max_grad_norm:
                    acc.clip_grad_norm_(trained, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            summed += loss.detach()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        losses.append(acc.reduce(summed, "sum").item() / n_targets)
        rate = plan.global_batch / (time.perf_counter() - t0)
        logbook.record(step + 1, plan.position(step)[0], losses[-1], lr, rate, last=step + 1 == plan.total)
        if progress and acc.is_main_process:
            progress(step + 1, plan.total, losses[-1], rate)
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < plan.total:
            save_checkpoint(acc, model, optimizer, scheduler, out / f"checkpoint-{step + 1}",
                            _state(cfg, plan, step + 1), full=True)
            logbook.plot()
    save_checkpoint(acc, model, optimizer, scheduler, out / "final", _state(cfg, plan, plan.total), full=False)
    logbook.plot()
    return {"out": str(out), "steps": plan.total, "started_at": start, "losses": losses, "samples": len(data),
            "skipped": data.n_read - len(data), "trainable": trainable.n_trainable}


def _state(cfg: TrainConfig, plan: BatchPlan, step: int) -> dict:
    import peft
    import transformers

    epoch, index = plan.position(step)
    return {"step": step, "total_steps": plan.total, "epoch": epoch, "index": index, "seed": cfg.seed,
            "world_size": plan.world, "global_batch": plan.global_batch, "n_samples": plan.n,
            "config": asdict(cfg), "config_hash": cfg.hash(),
            "versions": {"shardkit": __version__, "torch": torch.__version__,
                         "transformers": transformers.__version__, "peft": peft.__version__}}


def _write_setup(out: Path, cfg: TrainConfig, trainable: Trainable, data: TrainData, plan: BatchPlan,
                 padding: float) -> None:
    info = {"config": asdict(cfg), "config_hash": cfg.hash(), "trainable": dataclasses.asdict(trainable),
            "samples": {"read": data.n_read, "used": len(data), "skipped": data.n_read - len(data),
                        "unreadable_clips": data.bad_clips},
            "plan": {"global_batch": plan.global_batch, "steps_per_epoch": plan.steps_per_epoch,
                     "total_steps": plan.total, "processes": plan.world,
                     "padding": round(padding, 4)}}
    (out / "setup.json").write_text(json.dumps(info, indent=2) + "\n")
