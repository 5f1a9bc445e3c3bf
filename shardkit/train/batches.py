"""The training data in memory and the order it is read in: tokenised samples and the batch plan.

Every sample is checked and tokenised before step 0 (an error names the sample); the plan says which samples
each optimizer step reads, as a function of (seed, epoch, lengths) alone, so that a resumed run and K processes
read exactly what one uninterrupted process would.
"""

import dataclasses
import logging
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shardkit.errors import ShardkitError
from shardkit.models.adapter import AudioRef
from shardkit.models.prompts import AUDIO_ID, collate, truncate
from shardkit.train.config import TrainConfig
from shardkit.train.folder import iter_samples, validate_sample

log = logging.getLogger(__name__)


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
        try:
            ids, n_p = adapter.encode_sample(instruction, answer, sample.get("placement", "interleaved"), sample_refs)
            ids = truncate(ids, cfg.max_length)
        except ShardkitError as e:
            raise ShardkitError(f"{where}: {e}") from None
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
class BatchPlan:
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
    """See `BatchPlan.order`; `group` is the global batch, `size` the tokens per sample (None: plain random order)."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n)
    if size is None:
        return perm
    usable = perm[:n // group * group]
    windows = [usable[a:a + GROUP * group] for a in range(0, len(usable), GROUP * group)]
    batches = np.concatenate([w[np.argsort(-size[w], kind="stable")] for w in windows]).reshape(-1, group)
    return batches[rng.permutation(len(batches))].reshape(-1)


def make_plan(cfg: TrainConfig, n: int, world: int, lengths: np.ndarray | None = None) -> BatchPlan:
    """The run's plan; `lengths` (tokens per sample) groups batches by length when the config asks for it."""
    g = cfg.batch_size * cfg.grad_accum * world
    if n < g:
        raise ShardkitError(f"{n} usable samples is fewer than one global batch of {g} (batch_size {cfg.batch_size} "
                            f"× grad_accum {cfg.grad_accum} × {world} processes); lower batch_size or add data")
    total = cfg.max_steps or cfg.epochs * (n // g)
    grouped = np.asarray(lengths, dtype=np.int64) if cfg.group_by_length and lengths is not None else None
    return BatchPlan(n, cfg.batch_size, cfg.grad_accum, world, cfg.seed, total, grouped)
