"""`shardkit train`: tune an audio-LLM on instruction data, LTU's way, resumably and data-parallel.

A plain script over builders (torchtune's LoRA recipe, nanoGPT's train.py): each `_setup_*` builds one object,
`train` calls them in order and runs a loop of forward, loss, backward, step, log. The loss is the token mean
over the whole global batch (batch_size × grad_accum × processes), so one process with accumulation and K
processes give the same update. Each epoch reads a permutation drawn from (seed, epoch); step k always reads the
same samples, so a run resumed from a checkpoint (weights, optimizer, scheduler, RNG, data position) continues
exactly where an uninterrupted one would be.
"""

import dataclasses
import hashlib
import json
import logging
import os
import time
import typing
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shardkit import __version__
from shardkit.config import read_mapping
from shardkit.errors import ShardkitError
from shardkit.models.adapter import AudioRef
from shardkit.models.checkpoint import STATE, newest_checkpoint, read_state, restore_checkpoint, save_checkpoint
from shardkit.models.prompts import AUDIO_ID, IGNORE, collate, encode, truncate
from shardkit.suggest import did_you_mean
from shardkit.train.lora import MODES, LoraSettings, Trainable, apply_mode

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")
RUN_CONTROL = ("log_every", "save_every")  # may change on resume: they do not change the weights


# ---------------------------------------------------------------- config


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tiny-ltu"  # registry spec; stage 1 starts from stage 0 with tiny-ltu:ckpt=STAGE0_OUT
    data: str = ""  # a `shardkit make-data` folder (meta.json + data-*.jsonl)
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

    def __post_init__(self):
        if self.lr is None and self.mode in MODES:
            object.__setattr__(self, "lr", 1e-3 if self.mode == "projector" else 1e-4)
        problems = []

        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                problems.append(f"{name}={getattr(self, name)!r}: must be {allowed}")

        need(self.mode in MODES, "mode", " or ".join(MODES))
        need(bool(self.model), "model", "a model spec (see `shardkit models`)")
        need(bool(self.data), "data", "a `shardkit make-data` folder")
        need(self.lr is None or self.lr > 0, "lr", "> 0")
        for name in ("epochs", "batch_size", "grad_accum", "lora_r", "max_length", "log_every"):
            need(getattr(self, name) >= 1, name, ">= 1")
        need(self.max_steps is None or self.max_steps >= 1, "max_steps", ">= 1 or null")
        for name in ("warmup_steps", "save_every", "weight_decay", "max_grad_norm"):
            need(getattr(self, name) >= 0, name, ">= 0")
        need(self.lora_alpha > 0, "lora_alpha", "> 0")
        need(0 <= self.lora_dropout < 1, "lora_dropout", "in [0, 1)")
        need(len(self.lora_targets) > 0, "lora_targets", "one or more Linear layer names, e.g. q_proj,v_proj")
        need(self.dtype in DTYPES, "dtype", " or ".join(DTYPES))
        if problems:
            raise ShardkitError("train config: " + "; ".join(problems))

    @property
    def lora(self) -> LoraSettings:
        return LoraSettings(self.lora_r, self.lora_alpha, self.lora_dropout, tuple(self.lora_targets))

    def hash(self) -> str:
        """sha256 of everything that changes the weights (not `log_every`, `save_every`)."""
        values = {k: v for k, v in asdict(self).items() if k not in RUN_CONTROL}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _coerce(name: str, value, kind) -> tuple[object, str | None]:
    """A YAML/CLI value as the field's type, or a problem naming the field, the value and what is allowed."""
    optional = type(None) in typing.get_args(kind)
    base = next((a for a in typing.get_args(kind) if a is not type(None)), kind) if optional else kind
    if value is None:
        return (None, None) if optional else (value, f"{name}: null is not allowed")
    if typing.get_origin(base) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list | tuple) and all(isinstance(x, str) and x.strip() for x in items):
            return tuple(x.strip() for x in items), None
        return value, f"{name}={value!r}: must be a list of names"
    if base is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if base in (bool, str) and isinstance(value, base):
        return value, None
    return value, f"{name}={value!r}: must be {'a number' if base is float else base.__name__}"


def load_config(path: Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults < YAML file < overrides; every problem (unknown key, type, value) reported at once, in one line."""
    values = read_mapping(path, "train config") if path is not None else {}
    values = {**values, **(overrides or {})}
    kinds = {f.name: f.type for f in fields(TrainConfig)}
    problems, clean = [], {}
    for key, value in values.items():
        if key not in kinds:
            problems.append(f"unknown key {key!r}" + (did_you_mean(key, kinds, cutoff=0.5)
                                                      or f" (known: {', '.join(kinds)})"))
            continue
        value, problem = _coerce(key, value, kinds[key])
        if problem:
            problems.append(problem)
        else:
            clean[key] = value
    try:  # value checks on what parsed, so every problem is reported at once
        cfg = TrainConfig(**clean)
    except ShardkitError as e:
        problems.append(str(e).removeprefix("train config: "))
    if problems:
        raise ShardkitError(f"train config{f' {path}' if path else ''}: " + "; ".join(problems))
    return cfg


# ---------------------------------------------------------------- data


@dataclass
class TrainData:
    """Tokenized samples kept flat (bounded memory at 1M samples): sample k is tokens[offsets[k]:offsets[k + 1]]."""

    tokens: np.ndarray  # int32, AUDIO_ID in audio slots
    offsets: np.ndarray  # int64 [n + 1]
    n_prompt: np.ndarray  # int32 [n]: prompt length (labels before it are ignored when not training on prompts)
    n_targets: np.ndarray  # int32 [n]: tokens the loss counts
    clips: np.ndarray  # int32: indices into refs, in reading order
    clip_offsets: np.ndarray  # int64 [n + 1]
    refs: list[AudioRef]
    n_read: int  # samples in the folder
    bad_clips: dict[str, str]  # unreadable audio path -> reason; its samples are skipped

    def __len__(self) -> int:
        return len(self.n_prompt)

    def batch(self, rows, pad_id: int, train_on_prompt: bool) -> tuple[dict[str, torch.Tensor], list[AudioRef]]:
        """A left-padded batch of rows and their clips in reading order (row-major)."""
        seqs = [self.tokens[self.offsets[k]:self.offsets[k + 1]].tolist() for k in rows]
        b = collate(seqs, pad_id, [int(self.n_prompt[k]) for k in rows], train_on_prompt)
        refs = [self.refs[c] for k in rows for c in self.clips[self.clip_offsets[k]:self.clip_offsets[k + 1]]]
        return b, refs


def _turns(sample: dict, where: str) -> tuple[str, str]:
    """(instruction, answer): the system/user turns joined, and the final assistant turn."""
    *ask, answer = sample["messages"]
    if any(m["role"] == "assistant" for m in ask):
        raise ShardkitError(f"{where}: multi-turn conversations are not supported; one user turn, then the answer")
    return "\n\n".join(m["content"] for m in ask), answer["content"]


def read_data(folder: Path, adapter, cfg: TrainConfig) -> TrainData:
    """Validate and tokenize every sample before training starts; check each clip once.

    A sample whose markers and clips disagree, or whose audio would be cut by `max_length`, is an error naming it.
    A clip that cannot be read skips its samples (counted, logged); no usable sample at all is an error.
    """
    from shardkit.train.data import iter_samples, validate_sample

    model = adapter.model
    tokens, n_prompt, n_targets, clips = array("i"), array("i"), array("i"), array("i")
    offsets, clip_offsets = array("q", [0]), array("q", [0])
    clip_index: dict[AudioRef, int] = {}
    refs: list[AudioRef] = []
    bad: dict[str, str] = {}
    n_read = 0
    for k, sample in enumerate(iter_samples(folder)):
        n_read += 1
        where = f"{folder} sample {k}" + (f" (id {sample.get('id')!r})" if isinstance(sample, dict) else "")
        validate_sample(sample, where)
        instruction, answer = _turns(sample, where)
        try:
            ids, n_p = encode(model.tokenizer, instruction, len(sample["audios"]), model.n_audio_tokens,
                              sample.get("placement", "interleaved"), model.template, answer)
            ids = truncate(ids, cfg.max_length)
        except ShardkitError as e:
            raise ShardkitError(f"{where}: {e}") from None
        sample_refs = [AudioRef(p if Path(p).is_absolute() else str(Path(folder) / p)) for p in sample["audios"]]
        for r in sample_refs:
            if r not in clip_index and r.path not in bad:
                try:
                    adapter.features(r)  # computed once here (on-disk cache); training reads it back
                    clip_index[r] = len(refs)
                    refs.append(r)
                except ShardkitError as e:
                    bad[r.path] = str(e)
        if any(r.path in bad for r in sample_refs):
            continue
        counted = np.asarray(ids) != AUDIO_ID
        counted[0] = False  # nothing predicts the first token
        if not cfg.train_on_prompt:
            counted[:n_p] = False
        tokens.extend(ids)
        offsets.append(len(tokens))
        n_prompt.append(n_p)
        n_targets.append(int(counted.sum()))
        clips.extend(clip_index[r] for r in sample_refs)
        clip_offsets.append(len(clips))
    if n_read == 0:
        raise ShardkitError(f"{folder}: the dataset has no samples; generate some with `shardkit make-data`")
    n = len(n_prompt)
    if bad:
        first = next(iter(bad.values()))
        log.warning("%s: skipped %d of %d samples whose audio could not be read (%d clips; first: %s)",
                    folder, n_read - n, n_read, len(bad), first)
    if n == 0:
        raise ShardkitError(f"{folder}: all {n_read} samples were skipped because their audio could not be read "
                            f"({len(bad)} clips; first: {next(iter(bad.values()))})")
    as_np = {"i": np.int32, "q": np.int64}
    return TrainData(*(np.frombuffer(a, dtype=as_np[a.typecode]).copy() for a in
                       (tokens, offsets, n_prompt, n_targets, clips, clip_offsets)), refs, n_read, bad)


GROUP = 32  # global batches sorted together when grouping by length (HF's LengthGroupedSampler sorts 50)


@dataclass(frozen=True)
class Plan:
    """Which samples each optimizer step reads. Epoch e's order is drawn from (seed, e) and cut into global batches
    (an incomplete last one is dropped, so every rank does equal work); process r takes the r-th slice of each
    global batch and splits it into grad_accum micro-batches. With `lengths`, the batches group similar lengths
    (see `order`). Either way step k reads the same rows for any number of processes and after any resume."""

    n: int
    batch_size: int
    grad_accum: int
    world: int
    seed: int
    total: int  # optimizer steps in the run
    lengths: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)  # tokens per sample
    _orders: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)  # epoch -> order, last two

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.grad_accum * self.world

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.global_batch

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, index of the first sample of `step` in that epoch's order)."""
        return step // self.steps_per_epoch, (step % self.steps_per_epoch) * self.global_batch

    def order(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`'s rows, global batch after global batch (the usable ones only when grouping).

        Grouped: the epoch's permutation is cut into windows of GROUP global batches; each window is sorted longest
        first (stable, so ties keep the random order) and cut into global batches, and the epoch's batches are then
        shuffled by the same generator, so a batch holds similar lengths but the batch order stays random and is a
        function of (seed, epoch, lengths) alone."""
        if epoch not in self._orders:
            if len(self._orders) >= 2:  # a step reads one epoch, a resume check the one before: keep two
                self._orders.pop(next(iter(self._orders)))
            self._orders[epoch] = _order(self.seed, epoch, self.n, self.global_batch, self.lengths)
        return self._orders[epoch]

    def global_rows(self, step: int) -> np.ndarray:
        epoch, index = self.position(step)
        return self.order(epoch)[index:index + self.global_batch]

    def micro_batches(self, rows: np.ndarray, rank: int) -> list[np.ndarray]:
        mine = rows[rank * self.batch_size * self.grad_accum:(rank + 1) * self.batch_size * self.grad_accum]
        return [mine[a * self.batch_size:(a + 1) * self.batch_size] for a in range(self.grad_accum)]

    def padding(self, lengths: np.ndarray) -> float:
        """Share of the padded tokens that are padding over epoch 0's micro-batches (what the forwards compute)."""
        rows = self.order(0)[:self.steps_per_epoch * self.global_batch].reshape(-1, self.batch_size)
        batch = lengths[rows]  # [micro-batches, batch_size]
        return float(1 - batch.sum() / (batch.max(axis=1).sum() * self.batch_size))


def _order(seed: int, epoch: int, n: int, group: int, size: np.ndarray | None) -> np.ndarray:
    """See `Plan.order`; `group` is the global batch, `size` the tokens per sample (None: plain random order)."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n)
    if size is None:
        return perm
    usable = perm[:n // group * group]
    windows = [usable[a:a + GROUP * group] for a in range(0, len(usable), GROUP * group)]
    batches = np.concatenate([w[np.argsort(-size[w], kind="stable")] for w in windows]).reshape(-1, group)
    return batches[rng.permutation(len(batches))].reshape(-1)


def make_plan(cfg: TrainConfig, n: int, world: int, lengths: np.ndarray | None = None) -> Plan:
    """The run's plan; `lengths` (tokens per sample) groups batches by length when the config asks for it."""
    g = cfg.batch_size * cfg.grad_accum * world
    if n < g:
        raise ShardkitError(f"{n} usable samples is fewer than one global batch of {g} (batch_size {cfg.batch_size} "
                            f"× grad_accum {cfg.grad_accum} × {world} processes); lower batch_size or add data")
    total = cfg.max_steps or cfg.epochs * (n // g)
    grouped = np.asarray(lengths, dtype=np.int64) if cfg.group_by_length and lengths is not None else None
    return Plan(n, cfg.batch_size, cfg.grad_accum, world, cfg.seed, total, grouped)


# ---------------------------------------------------------------- model pieces


class TrainStep(nn.Module):
    """The one module DDP/DeepSpeed wrap: (encoder →) projector → splice → LM → summed token loss."""

    def __init__(self, model: nn.Module, encode: bool):
        super().__init__()
        self.model, self.encode = model, encode

    def forward(self, input_ids, attention_mask, position_ids, labels, audio_in=None) -> torch.Tensor:
        """Sum of next-token cross-entropies; a target right after padding is not counted, and the LM head runs only
        at positions whose target counts (the same sum as full logits, without their memory).

        Shapes: input_ids, attention_mask, position_ids, labels [b, s]; audio_in [n, ...] encoder input
        (trained encoder) or [n, n_a, d_enc] encoder output (frozen) → scalar.
        """
        audio = None
        if audio_in is not None:
            audio = (self.model.encode_audio if self.encode else self.model.project)(audio_in)  # [n, n_a, d]
        target = labels[:, 1:].masked_fill(attention_mask[:, :-1] == 0, IGNORE)  # [b, s - 1]
        counted = target != IGNORE
        # the vocabulary-sized logits only where a target counts (on the answer alone, a few per sample)
        keep = F.pad(counted, (0, 1))  # [b, s]: position t predicts token t + 1
        logits = self.model(input_ids, attention_mask, position_ids, audio, logits_to_keep=keep).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target[counted], reduction="sum")
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
    trainable = apply_mode(adapter.model, cfg.mode, cfg.lora)
    for p in adapter.model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    return adapter, trainable


def _setup_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)  # LTU: AdamW via HF Trainer


def _setup_scheduler(cfg: TrainConfig, optimizer, total: int):
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, total)


# ---------------------------------------------------------------- resume


def _config_diffs(saved: dict, cfg: TrainConfig) -> list[str]:
    now = json.loads(json.dumps(asdict(cfg)))
    return [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in now
            if k not in RUN_CONTROL and saved.get(k) != now[k]]


def _restore(acc, folder: Path, cfg: TrainConfig, plan: Plan, model: nn.Module, optimizer, scheduler) -> int:
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
          progress: Callable[[int, int, float, float], None] | None = None,
          announce: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) training into `out`; returns a summary. `progress(step, total, loss, samples_per_s)` and
    `announce(message)` are called on the main process only."""
    from accelerate.utils import set_seed

    out, data_dir = Path(out), Path(cfg.data)
    if not data_dir.is_dir():
        raise ShardkitError(f"{data_dir}: data folder not found; create one with `shardkit make-data --out DIR`")
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
    optimizer = _setup_optimizer(cfg, adapter.model)
    scheduler = _setup_scheduler(cfg, optimizer, plan.total)  # stepped by us, once per optimizer step
    step_fn, optimizer = acc.prepare(TrainStep(adapter.model, cfg.mode.startswith("encoder")), optimizer)
    model = acc.unwrap_model(step_fn).model
    audio = AudioInputs(adapter, model, frozen=not cfg.mode.startswith("encoder"), device=acc.device)
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
                acc.backward(loss * (plan.world * cfg.grad_accum / n_targets))  # accelerate ÷ accum, DDP ÷ world
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


def _state(cfg: TrainConfig, plan: Plan, step: int) -> dict:
    import peft
    import transformers

    epoch, index = plan.position(step)
    return {"step": step, "total_steps": plan.total, "epoch": epoch, "index": index, "seed": cfg.seed,
            "world_size": plan.world, "global_batch": plan.global_batch, "n_samples": plan.n,
            "config": asdict(cfg), "config_hash": cfg.hash(),
            "versions": {"shardkit": __version__, "torch": torch.__version__,
                         "transformers": transformers.__version__, "peft": peft.__version__}}


def _write_setup(out: Path, cfg: TrainConfig, trainable: Trainable, data: TrainData, plan: Plan,
                 padding: float) -> None:
    info = {"config": asdict(cfg), "config_hash": cfg.hash(), "trainable": dataclasses.asdict(trainable),
            "samples": {"read": data.n_read, "used": len(data), "skipped": data.n_read - len(data),
                        "unreadable_clips": data.bad_clips},
            "plan": {"global_batch": plan.global_batch, "steps_per_epoch": plan.steps_per_epoch,
                     "total_steps": plan.total, "processes": plan.world,
                     "padding": round(padding, 4)}}
    (out / "setup.json").write_text(json.dumps(info, indent=2) + "\n")
