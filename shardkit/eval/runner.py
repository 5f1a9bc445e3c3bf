"""`shardkit eval`: a model and SHARD in, a run directory a reviewer would accept out.

Requests are built per condition (a placement, or the text-only control) and task, sorted by length (ties by item
id, never by the record key, which holds the model spec and so the folder a study runs in) and cut into batches
once, deterministically; process k of K takes every K-th batch, so a batch always holds the same
items whatever the number of processes and however often the run was resumed — which keeps scores bitwise
stable. Records are appended and flushed per item; rank 0 merges them, scores, tests and writes the run.
"""

import hashlib
import json
import logging
import platform
import subprocess
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from shardkit import __version__
from shardkit.benchmark.build import load_shard
from shardkit.errors import ShardkitError
from shardkit.eval.config import RUN_CONTROL, EvalConfig
from shardkit.eval.controls import (
    CASCADE,
    CONTROL,
    mismatched_clips,
    own_label,
    silence_clip,
    split_condition,
)
from shardkit.eval.scoring import PromptStyle, make_request, parse_yes_no
from shardkit.eval.store import RecordStore
from shardkit.files import atomic_write

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- inputs


def select(items: list[dict], tasks: tuple[str, ...], limit: int | None) -> dict[str, list[dict]]:
    by_task = {t: [i for i in items if i["task"] == t] for t in tasks}
    return {t: its[:limit] if limit else its for t, its in by_task.items()}


def record_key(cfg: EvalConfig, condition: str, item: dict, prompt: str, heard: str | None = None) -> str:
    """What determines a record; `heard` is the clip an audio control plays instead of the item's."""
    blob = json.dumps([cfg.scoring, cfg.model, condition, item["id"], prompt, cfg.max_new_tokens]
                      + ([heard] if heard else []))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# ---------------------------------------------------------------- scoring one batch


def _base_record(key: str, condition: str, item: dict, prompt: str, scoring: str) -> dict:
    return {
        "key": key, "item_id": item["id"], "condition": condition, "task": item["task"], "scoring": scoring,
        "clip_id": item["clip"]["id"], "word": item["word"], "mid": item["mid"], "candidate": item["candidate"],
        "gold": item["answer"], "negative_kind": item["negative_kind"], "depth": item["depth"], "prompt": prompt,
        "prompt_hash": hashlib.sha256(prompt.encode()).hexdigest()[:16], "raw": None, "parsed": None,
        "parsed_lenient": None, "score": None, "correct": None, "correct_lenient": None, "correct_string": None,
        "correct_embedding": None, "top1": None, "error": None,
    }


class _Identity:
    """Identity verdicts for generated labels (`identity.judge`), with the sentence embedder loaded on first use."""

    def __init__(self):
        self.embedder = None

    def load(self):
        from shardkit.eval.identity import LabelEmbedder

        if self.embedder is None:
            self.embedder = LabelEmbedder.load()
        return self.embedder

    def score(self, records: list[dict], items: list[dict]) -> None:
        from shardkit.eval.identity import judge

        for r, verdict in zip(records, judge([r["raw"] or "" for r in records], items, self.load()), strict=True):
            r["parsed"] = r["raw"]
            r.update(verdict)


def score_batch(adapter, cfg: EvalConfig, batch: list[tuple[str, str, dict, object, str]], identity: _Identity,
                words: tuple[str, ...]) -> list[dict]:
    """Run one batch of (key, condition, item, request, prompt) and return its records, in batch order."""
    task = batch[0][2]["task"]
    records = [_base_record(k, c, it, p, cfg.scoring) for k, c, it, _, p in batch]
    requests = [r for _, _, _, r, _ in batch]
    if cfg.scoring == "cloze":  # mean log-probability per token: length alone must not rank candidates
        results = adapter.cloze(requests, per_token=True)
        for rec, res in zip(records, results, strict=True):
            if res.error:
                rec["error"] = res.error
            elif task == "identity":
                best = int(np.argmax(res.value))
                rec["score"], rec["parsed"] = float(res.value[best]), words[best]
                rec["correct"] = words[best] == rec["word"]
            else:
                rec["score"] = res.value[0]  # ranked (AUROC), never thresholded: no cut is fit on test items
        return records
    if task != "identity" and cfg.scoring == "yesno":
        for rec, res in zip(records, adapter.yes_no(requests), strict=True):
            rec["error"] = res.error
            if res.value is not None:
                rec["score"] = round(res.value, 6)
                rec["parsed"] = "yes" if res.value > 0 else "no"
                rec["correct"] = rec["parsed"] == rec["gold"]
        return records
    results = adapter.generate(requests, max_new_tokens=cfg.max_new_tokens)
    ok = []
    for rec, res, (_, _, item, _, _) in zip(records, results, batch, strict=True):
        rec["error"], rec["raw"] = res.error, res.value
        if res.error:
            continue
        if task == "identity":
            ok.append((rec, item))
        else:
            rec["parsed"], rec["parsed_lenient"] = parse_yes_no(res.value)
            rec["correct"] = rec["parsed"] == rec["gold"]
            rec["correct_lenient"] = rec["parsed_lenient"] == rec["gold"]
    if ok:
        identity.score([r for r, _ in ok], [i for _, i in ok])
    return records


# ---------------------------------------------------------------- the run


def plan(cfg: EvalConfig, items: dict[str, list[dict]], audio_root: str, out: Path, pool: list[dict]):
    """Every (condition, task) as ordered keys, and the fixed list of batches over all of them. Audio controls
    hear another clip of `pool` (all of SHARD's items; `controls.mismatched_clips`) or silence (written into
    `out/controls/`) instead of the item's."""
    style = PromptStyle(cfg.position, cfg.cue)
    words = sorted({i["word"] for its in items.values() for i in its if i["task"] == "identity"})
    swaps = mismatched_clips(pool, cfg.seed) if "mismatched" in cfg.audio_controls else {}
    silence = silence_clip(Path(out) / "controls") if "silence" in cfg.audio_controls else None

    def heard(control: str | None, item: dict) -> dict | None:  # None: the item's own clip
        if control == "silence":
            return silence
        return swaps.get(item["clip"]["id"], {"path": None}) if control == "mismatched" else None

    order: dict[tuple[str, str], list[str]] = {}
    batches, unavailable = [], []
    for condition in cfg.conditions:
        control = split_condition(condition)[1]
        if control == CASCADE:
            continue  # asked once the placement's identity answers exist (plan_cascade)
        for task, its in items.items():
            if condition == CONTROL and task == "identity":
                continue  # naming the label and asking for it is no control
            jobs = []
            for item in its:
                clip = heard(control, item)
                req = make_request(item, condition, cfg.scoring, audio_root, style, tuple(words), clip)
                key = record_key(cfg, condition, item, req.prompt, clip and clip.get("id"))
                order.setdefault((condition, task), []).append(key)
                if condition != CONTROL and not item["clip"]["available"]:
                    unavailable.append((key, condition, item, req.prompt, f"audio unavailable: {item['clip']['id']}"))
                elif condition != CONTROL and not req.audio:
                    unavailable.append((key, condition, item, req.prompt, f"no clip to hear instead of "
                                                                          f"{item['clip']['id']} ({control})"))
                else:
                    jobs.append((key, condition, item, req, req.prompt))
            if cfg.scoring == "yesno" and condition != CONTROL:  # one clip's questions share a batch: and their
                jobs.sort(key=lambda j: (j[2]["clip"]["id"], len(j[4]), j[2]["id"]))  # prefix (adapter.yes_no)
            else:  # similar lengths share a batch; the item id breaks ties
                jobs.sort(key=lambda j: (len(j[4]), j[2]["id"]))
            batches += _cut(jobs, cfg.batch_size)
    return order, batches, unavailable, tuple(words)


def _cut(jobs: list, size: int) -> list[list]:
    return [jobs[k:k + size] for k in range(0, len(jobs), size)]


def plan_cascade(cfg: EvalConfig, items: dict[str, list[dict]], order: dict, records: dict[str, dict]):
    """The cascade's batches, from the identity answers the first pass wrote (`records` by key): each yes/no
    question asked with the model's own label for its clip, under that placement, written where the audio was.
    A clip whose identity answer failed or says nothing gets an error record, never a guessed label."""
    style = PromptStyle(cfg.position, cfg.cue)
    new_order: dict[tuple[str, str], list[str]] = {}
    batches, unavailable = [], []
    for condition in cfg.cascades:
        placement = split_condition(condition)[0]
        labels: dict[str, str | None] = {}
        for key in order.get((placement, "identity"), []):
            r = records[key]
            labels.setdefault(r["clip_id"], own_label(r["raw"] or r["parsed"]) if r["error"] is None else None)
        for task, its in items.items():
            if task == "identity":
                continue
            jobs = []
            for item in its:
                label = labels.get(item["clip"]["id"])
                req = make_request(item, condition, cfg.scoring, "", style, label=label or "(no label)")
                key = record_key(cfg, condition, item, req.prompt)
                new_order.setdefault((condition, task), []).append(key)
                if label is None:
                    unavailable.append((key, condition, item, req.prompt, f"no own label for {item['clip']['id']}: "
                                                                          f"its {placement} identity answer failed"))
                else:
                    jobs.append((key, condition, item, req, req.prompt))
            batches += _cut(sorted(jobs, key=lambda j: (len(j[4]), j[2]["id"])), cfg.batch_size)
    return new_order, batches, unavailable


def run_eval(cfg: EvalConfig, out: Path, progress: Callable[[int, int], None] | None = None, rank: int = 0,
             world: int = 1, barrier: Callable[[], None] = lambda: None) -> dict | None:
    """Evaluate (resuming whatever `out` already holds) and, on rank 0, write results; return them."""
    from shardkit.models.registry import load_model

    items, meta = load_shard(Path(cfg.shard))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_config(out, cfg, meta)
    selected = select(items, cfg.tasks, cfg.limit)
    order, batches, unavailable, words = plan(cfg, selected, meta["audio_root"], out, pool=items)
    store = RecordStore(out, rank)
    loaded: dict = {}

    def run(batches: list, unavailable: list, what: str, done: set[str]) -> None:
        """This process's share of `batches` not yet written (`done`: the keys on disk), and (rank 0) the error
        records of `unavailable`."""
        mine = [b for k, b in enumerate(batches) if k % world == rank]
        todo = [b for b in mine if not all(j[0] in done for j in b)]
        log.info("process %d of %d, %s: %d of %d batches to run (%d already done)", rank + 1, world, what, len(todo),
                 len(batches), len(mine) - len(todo))
        if rank == 0:
            for key, condition, item, prompt, why in unavailable:
                if key not in done:
                    rec = _base_record(key, condition, item, prompt, cfg.scoring)
                    rec["error"] = why
                    store.append(condition, item["task"], rec)
        if todo and not loaded:
            loaded["adapter"] = adapter = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
            adapter.batch_size, loaded["identity"] = cfg.batch_size, _Identity()
        for n, batch in enumerate(todo):
            for rec in score_batch(loaded["adapter"], cfg, batch, loaded["identity"], words):
                if rec["key"] not in done:
                    store.append(rec["condition"], rec["task"], rec)
            if progress:
                progress(n + 1, len(todo))
        store.close()
        barrier()

    run(batches, unavailable, "placements and controls", set(store.existing()))
    if cfg.cascades:  # every process reads every process's identity answers, so all plan the same batches
        records = store.existing()
        more, batches, unavailable = plan_cascade(cfg, selected, order, records)
        order = {**order, **more}
        run(batches, unavailable, "cascade", set(records))
    if rank != 0:
        return None
    merged = store.merge(order)
    from shardkit.eval.report import write_report
    from shardkit.eval.results import build_results

    results = build_results(cfg, merged, meta, provenance(), _constant(cfg, selected.get("identity") or []),
                            selected)
    atomic_write(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_report(out, results, merged)
    return results


def _constant(cfg: EvalConfig, items: list[dict]) -> dict | None:
    """The best constant identity answer under this run's scoring (every clip answered alike), or None."""
    if not items:
        return None
    if cfg.scoring == "cloze":  # the answer is one of SHARD's words: a constant word is right on its own clips only
        words = sorted({i["word"] for i in items})
        share = {w: sum(i["word"] == w for i in items) / len(items) for w in words}
        top = max(words, key=share.get)
        return {"answer": top, "balanced": 1 / len(words), "micro": share[top], "n_tried": len(words)}
    from shardkit.eval.identity import best_constant

    return best_constant(items, _Identity().load())


def _check_same_config(out: Path, cfg: EvalConfig, meta: dict) -> None:
    """Resuming into a folder written with other settings would mix experiments: refuse, naming the field."""
    path = out / "config.json"
    mine = {"config": asdict(cfg), "shard_sha256": meta["sha256"]}
    if path.exists():
        old = json.loads(path.read_text())
        for k in (k for k in mine["config"] if k not in RUN_CONTROL):
            a, b = old["config"].get(k), mine["config"].get(k)
            if json.dumps(a) != json.dumps(b):
                raise ShardkitError(f"{out} holds a run with {k}={a!r}, not {b!r}: use another --out to compare")
        if old["shard_sha256"] != mine["shard_sha256"]:
            raise ShardkitError(f"{out} holds a run on another SHARD build: use another --out")
    else:
        atomic_write(path, json.dumps(mine, indent=2) + "\n")


def provenance() -> dict:
    """Versions and git commit, stamped into results (no timestamps: reruns must be byte-identical)."""
    import torch
    import transformers

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        commit = None
    return {"shardkit": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "git_commit": commit}
