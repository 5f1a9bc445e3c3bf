"""`shardkit export RUN --format lm-eval|lmms-eval`: a finished `shardkit eval` run in the files those harnesses
write, so that their viewers, loggers and leaderboard parsers read it.

lm-eval (EleutherAI, `loggers/evaluation_tracker.py`) writes `<out>/<model_sanitized>/results_<date>.json` and one
`samples_<task>_<date>.jsonl` per task; lmms-eval names them `<date>_results.json` and `<date>_samples_<task>.jsonl`
and adds the media of each sample. A shardkit (condition, task) becomes one task, `shard_<task>_<condition>`.
Results are keyed "metric,none" with "metric_stderr,none"; shardkit's 95% clip-bootstrap CI gives the stderr as its
half-width / 1.96 ("N/A" where the CI is undefined). A sample keeps the SHARD item as `doc` (with the clip's audio
path), `target` the gold answer, `arguments` the prompt (and the candidate for cloze), `resps` shardkit's raw
response (yes/no log-odds, or the generated text), `filtered_resps` the parsed answer, the hashes lm-eval computes
(sha256 of the doc as indented JSON, of the prompt, of the target), and per-sample `acc`.
"""

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

from shardkit import __version__
from shardkit.errors import ShardkitError

FORMATS = ("lm-eval", "lmms-eval")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def task_name(condition: str, task: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"shard_{task}_{condition}")


def _results(metrics: dict) -> tuple[dict, dict]:
    """("metric,none" → value and stderr, metric → higher_is_better) of one condition × task."""
    out, better = {}, {}
    for name, m in metrics.items():
        if not isinstance(m, dict) or not isinstance(m.get("value"), int | float):
            continue
        lo, hi = m.get("ci") or (None, None)
        out[f"{name},none"] = m["value"]
        out[f"{name}_stderr,none"] = (hi - lo) / 3.92 if lo is not None and hi is not None else "N/A"
        better[name] = bool(m.get("higher_is_better", True))
    return out, better


def _sample(k: int, rec: dict, item: dict | None, audio_root: Path, media: bool) -> dict:
    clip = (item or {}).get("clip") or {}
    path = str(audio_root / clip["path"]) if clip.get("path") else None
    doc = {**{key: v for key, v in (item or {}).items() if key != "clip"}, "audio": path,
           "start": clip.get("start"), "end": clip.get("end"), "condition": rec["condition"]}
    gold = rec["gold"]
    args = {"gen_args_0": {"arg_0": rec["prompt"], **({"arg_1": rec["candidate"]} if rec["scoring"] == "cloze"
                                                        and rec.get("candidate") else {})}}
    raw = rec["raw"] if rec["raw"] is not None else rec["score"]
    out = {"doc_id": k, "doc": doc, "target": str(gold), "arguments": args, "resps": [[raw]],
           "filtered_resps": [rec["parsed"]], "filter": "none", "metrics": ["acc"],
           "doc_hash": _hash(json.dumps(doc, indent=2, ensure_ascii=False, default=str)),
           "prompt_hash": _hash(rec["prompt"]), "target_hash": _hash(str(gold)),
           "acc": None if rec["correct"] is None else float(rec["correct"])}
    if media:
        out["input_media"] = [path] if path else []
    return out


def _shard_of(run: Path, recorded: str, given: Path | None) -> Path:
    """The run's SHARD folder: `given`, else as recorded (relative to where the eval ran), else a sibling of the run
    (a study's stages)."""
    for folder in ([given] if given else [Path(recorded), run.parent / Path(recorded).name]):
        if (folder / "meta.json").is_file():
            return folder
    raise ShardkitError(f"{run}: its SHARD ({recorded}) is not found from here; pass --shard DIR")


def export_run(run: Path, out: Path, fmt: str = "lm-eval", shard: Path | None = None) -> list[Path]:
    """Write the run's results and samples in `fmt`'s files under `out`; returns the files written."""
    from shardkit.benchmark.build import load_shard
    from shardkit.eval.compare import load_run

    if fmt not in FORMATS:
        raise ShardkitError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    run = Path(run)
    results, records = load_run(run)
    cfg = results["config"]
    items, meta = load_shard(_shard_of(run, cfg["shard"], shard))
    by_id, root = {i["id"]: i for i in items}, Path(meta["audio_root"])
    model = cfg["model"]
    sanitized = re.sub(r"[\"<>:/|\\\\?*\[\]]+", "__", model)
    date = datetime.now(UTC).replace(tzinfo=None).isoformat().replace(":", "-")
    folder = Path(out) / sanitized
    folder.mkdir(parents=True, exist_ok=True)
    media = fmt == "lmms-eval"
    summary: dict = {"results": {}, "configs": {}, "versions": {}, "n-shot": {}, "higher_is_better": {},
                     "n-samples": {}, "task_hashes": {}}
    written = []
    for (condition, task), recs in sorted(records.items()):
        name = task_name(condition, task)
        values, better = _results(results["metrics"].get(condition, {}).get(task, {}))
        samples = [_sample(k, r, by_id.get(r["item_id"]), root, media) for k, r in enumerate(recs)]
        summary["results"][name] = {"alias": name, **values}
        summary["configs"][name] = {"task": name, "dataset_path": cfg["shard"], "test_split": "test",
                                    "output_type": "multiple_choice" if cfg["scoring"] != "generate" else
                                    "generate_until", "num_fewshot": 0,
                                    "metric_list": [{"metric": m, "higher_is_better": b} for m, b in better.items()],
                                    "metadata": {"shardkit_condition": condition, "shardkit_task": task,
                                                 "shard_sha256": results["shard_sha256"]}}
        summary["versions"][name] = 1.0
        summary["n-shot"][name] = 0
        summary["higher_is_better"][name] = better
        summary["n-samples"][name] = {"original": len(recs), "effective": len(recs)}
        summary["task_hashes"][name] = _hash("".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"]
                                                     for s in samples))
        path = folder / (f"{date}_samples_{name}.jsonl" if media else f"samples_{name}_{date}.jsonl")
        path.write_text("".join(json.dumps(s, ensure_ascii=False, default=str) + "\n" for s in samples))
        written.append(path)
    summary |= {"config": {"model": "shardkit", "model_args": model, "batch_size": cfg.get("batch_size"),
                           "device": cfg.get("device")},
                "date": datetime.now(UTC).timestamp(), "model_name": model, "model_name_sanitized": sanitized,
                "model_source": "shardkit", "shardkit_version": __version__, "shardkit_run": str(Path(run).resolve())}
    path = folder / (f"{date}_results.json" if media else f"results_{date}.json")
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    return [path, *written]
