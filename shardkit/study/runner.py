"""`shardkit study`: run a plan's stages in order, skipping finished ones, then gather and report.

Each stage runs in `RUN/stages/<id>/` through the same library function its command uses (`build`, `make_data`,
`train`, `run_eval`), and is marked finished by `done.json` only after that function returns. An interrupted
stage is resumed by that function itself (training from its last checkpoint, evaluation from its records), so a
rerun redoes only what is missing. Gathering reads the finished runs and writes `study.json` (every number the
report shows), `report.md` and `plots/`.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

from shardkit.errors import ShardkitError
from shardkit.eval.results import json_safe
from shardkit.files import atomic_write
from shardkit.names import TASKS, YES_NO
from shardkit.study.attention import attention_of
from shardkit.study.parallel import run_parallel
from shardkit.study.preset import PAPER_SIZES, Clips, StudyConfig
from shardkit.study.stages import Plan, Stage, plan_study
from shardkit.study.verdicts import across_seeds, balance_of, named_right, reference_of, spread, tests_of

log = logging.getLogger(__name__)

Progress = Callable[[Stage, int, int, str], None]  # (stage, done, total, extra text)


def stage_dir(out: Path, stage_id: str) -> Path:
    return Path(out) / "stages" / stage_id


def is_done(out: Path, stage_id: str) -> bool:
    return (stage_dir(out, stage_id) / "done.json").is_file()


def _spec(out: Path, model: str, tuned: str | None, base: str | None = None, start: str | None = None) -> str:
    """The model spec of a stage: the preset's model, the instruct stage merged in, a tuning on top (and, for a
    tuning interpolated toward its start, the run it started from)."""
    from shardkit.models.registry import with_base, with_tuned

    if base:
        model = with_base(model, str(stage_dir(out, base).resolve()))
    if start:
        model = f"{model}{',' if ':' in model else ':'}start={stage_dir(out, start).resolve()}"
    return with_tuned(model, str(stage_dir(out, tuned).resolve())) if tuned else model


def _run_stage(stage: Stage, out: Path, progress: Progress, rank: int, world: int, barrier) -> None:
    """Run one stage into its folder through its command's library function (which resumes by itself); the paths of
    the stages it reads are filled in here, where the study folder is known."""
    folder, cfg, inputs, clips = stage_dir(out, stage.id), stage.config, stage.inputs, stage.clips or Clips()
    manifest, audio_root = _path(clips.manifest), _path(clips.audio_root)

    def tick(done: int, total: int, *extra) -> None:  # training also reports (loss, samples/s)
        progress(stage, done, total, _extra(extra))
    if stage.kind == "shard":
        from shardkit.benchmark.build import build

        if rank == 0:
            build(folder, cfg, manifest=manifest, audio_root=audio_root, progress=tick)
    elif stage.kind == "data":
        from shardkit.train.folder import make_data

        if rank == 0:
            make_data(folder, cfg, manifest=manifest, audio_root=audio_root, progress=tick,
                      exclude=stage_dir(out, inputs["shard"]))
    elif stage.kind == "train":
        from shardkit.models.checkpoint import newest_checkpoint
        from shardkit.train.trainer import train

        cfg = replace(cfg, model=_spec(out, cfg.model, inputs["start"], inputs.get("base")),
                      data=str(stage_dir(out, inputs["data"])),
                      **({"ewc_data": str(stage_dir(out, inputs["fisher"]))} if "fisher" in inputs else {}))
        train(cfg, folder, resume=newest_checkpoint(folder) is not None, cpu=stage.device == "cpu", progress=tick)
    elif stage.kind in ("eval", "attention"):  # a model read over SHARD: the stage's model spec, its SHARD folder
        from shardkit.eval.attention import measure
        from shardkit.eval.runner import run_eval

        cfg = replace(cfg, model=_spec(out, cfg.model, inputs["model"], inputs.get("base"), inputs.get("start")),
                      shard=str(stage_dir(out, inputs["shard"])))
        if stage.kind == "eval":
            run_eval(cfg, folder, progress=tick, rank=rank, world=world, barrier=barrier)
        elif rank == 0:
            measure(cfg, folder, progress=tick)
    else:
        raise ShardkitError(f"unknown stage kind {stage.kind!r}")


def _extra(values: tuple) -> str:
    """Training reports (loss, samples/s) after (step, total): shown beside the bar (its EWC Fisher, nothing)."""
    return f"loss {values[0]:.3f}, {values[1]:.1f} samples/s" if len(values) == 2 else ""


def _path(value) -> Path | None:
    return None if value in (None, "") else Path(value)


def run_study(cfg: StudyConfig, out: Path, progress: Progress | None = None,
              announce: Callable[[str], None] | None = None, rank: int = 0, world: int = 1,
              barrier: Callable[[], None] = lambda: None, jobs: int = 1) -> dict | None:
    """Run every unfinished stage of the preset into `out` (`jobs` > 1: that many side by side, study/parallel.py),
    then (rank 0) write study.json, report.md and plots."""
    from shardkit.study.report import write_report

    t0, out = time.perf_counter(), Path(out)
    plan = plan_study(cfg)
    say = announce if announce and rank == 0 else (lambda m: None)
    progress = progress or (lambda *a: None)
    _check_run(out, cfg, rank)
    if jobs > 1 and world > 1:
        raise ShardkitError(f"--jobs {jobs} runs stages side by side in one launch; under `accelerate launch` "
                            f"({world} processes) each stage is already shared: use one or the other")
    timings, todo = {}, []
    for stage in plan.stages.values():
        if is_done(out, stage.id):
            timings[stage.id] = {"id": stage.id, "kind": stage.kind, "name": stage.name, "cached": True, "seconds":
                                 json.loads((stage_dir(out, stage.id) / "done.json").read_text())["seconds"]}
        else:
            todo.append(stage)

    def finished(stage: Stage, seconds: float) -> None:
        if rank == 0:
            atomic_write(stage_dir(out, stage.id) / "done.json", json.dumps(
                {"id": stage.id, "name": stage.name, **stage.describe(), "seconds": seconds}, indent=2) + "\n")
        timings[stage.id] = {"id": stage.id, "kind": stage.kind, "name": stage.name, "cached": False,
                             "seconds": seconds}

    if jobs > 1:
        run_parallel(plan, out, todo, jobs, _run_stage, partial(is_done, out), progress, say, finished)
    else:
        order = {sid: n for n, sid in enumerate(plan.stages, 1)}
        for stage in todo:
            say(f"[{order[stage.id]}/{len(plan.stages)}] {stage.kind} {stage.name} → {stage_dir(out, stage.id)}")
            start = time.perf_counter()
            _run_stage(stage, out, progress, rank, world, barrier)
            barrier()
            finished(stage, round(time.perf_counter() - start, 1))
    timings = [timings[sid] for sid in plan.stages]
    if rank != 0:
        return None
    study = gather(cfg, plan, out)
    study["stages"], study["seconds"] = timings, round(time.perf_counter() - t0, 1)
    study = json_safe(study)  # strict JSON: an undefined number (NaN) is null
    atomic_write(out / "study.json", json.dumps(study, indent=1, ensure_ascii=False) + "\n")
    write_report(out, study)
    return study


def _check_run(out: Path, cfg: StudyConfig, rank: int) -> None:
    """A study folder belongs to one preset and the presets built on it (cpu-mechanism on a cpu-reasoning folder
    runs only its own branches): their stages are shared, and the report is the last one run's."""
    path = out / "preset.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old["name"] != cfg.name and old["name"] not in cfg.bases and cfg.name not in old.get("bases", ()):
            raise ShardkitError(f"{out} holds study {old['name']!r}, not {cfg.name!r} (nor a preset built on either): "
                                "use another --out")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(asdict(cfg), indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- gathering


def gather(cfg: StudyConfig, plan: Plan, out: Path) -> dict:
    """Every number the report shows, from the finished stages: rows, paired tests, reference, losses, scale, and
    (with several training seeds) each further seed's conditions, the spread between seeds and seed-checked
    verdicts."""
    from shardkit.eval.compare import load_run

    every = plan.rows + [r for rows in plan.replicates.values() for r in rows]
    runs = {sid: load_run(stage_dir(out, sid)) for sid in {r.eval for r in every}}
    scoring = cfg.eval.scoring
    rows, records = _rows(plan.rows, runs)
    tests = tests_of(cfg, plan.rows, records)
    conditions = [r.name for r in plan.rows if r.group == "condition"]
    reference = reference_of(rows, tests, balance_of(cfg, records, conditions))
    seeds = {}
    for seed, reps in plan.replicates.items():
        r_rows, r_records = _rows(reps, runs)
        r_tests = tests_of(cfg, reps, r_records)
        seeds[str(seed)] = {"rows": [{"name": r["name"], "metrics": r["metrics"]} for r in r_rows], "tests": r_tests,
                            "reference": reference_of(r_rows, r_tests, balance_of(cfg, r_records, conditions)),
                            "named": named_right(cfg, reps, r_records)}
    shard_id = next(sid for sid, st in plan.stages.items() if st.kind == "shard")
    shard_meta = json.loads((stage_dir(out, shard_id) / "meta.json").read_text())
    tuning = cfg.tuning.train
    losses = [_losses(name, stage_dir(out, sid)) for name, sid in plan.tunings.items()]  # one setup.json read each
    return {
        "name": cfg.name, "description": " ".join(cfg.description.split()),
        "command": f"shardkit study --preset {cfg.name} --out {out}", "model": cfg.model, "device": cfg.device,
        "dtype": cfg.dtype, "scoring": scoring,
        "shard": {"sha256": shard_meta["sha256"], "n_items": shard_meta["n_items"], "n_clips": shard_meta["n_clips"],
                  "limit": cfg.eval.limit},
        "scale": {"small": cfg.small, "large": cfg.large, "paper_small": PAPER_SIZES["small"],
                  "paper_large": PAPER_SIZES["large"], "steps": {x["name"]: x["steps"] for x in losses},
                  "lr": tuning.lr, "lora_r": tuning.lora_r, "lora_alpha": tuning.lora_alpha,
                  "note": " ".join(cfg.note.split())},
        "rows": rows, "tests": tests, "named": named_right(cfg, plan.rows, records),
        "baselines": runs[plan.rows[0].eval][0].get("baselines") or {},
        "reference": across_seeds(reference, {s: v["reference"] for s, v in seeds.items()}, cfg.seeds[0]),
        "seeds": {"train": list(cfg.seeds), "more": seeds, "spread": spread(rows, seeds)} if seeds else None,
        "losses": losses,
        "attention": attention_of(cfg, {name: stage_dir(out, sid) for name, sid in plan.attention.items()}),
    }


def _rows(plan_rows: list, runs: dict) -> tuple[list[dict], dict]:
    """Report rows (metrics and precision–recall inputs) and per-row records by task, from finished eval runs."""
    rows, records = [], {}
    for r in plan_rows:
        results, merged = runs[r.eval]
        records[r.name] = {task: merged[(r.condition, task)] for task in TASKS
                           if (r.condition, task) in merged}
        pr = {t: {"gold": [x["gold"] == "yes" for x in recs], "score": [x["score"] for x in recs]}
              for t, recs in records[r.name].items() if t in YES_NO and any(x["score"] is not None for x in recs)}
        rows.append({**asdict(r), "metrics": results["metrics"][r.condition], "pr": pr})
    return rows, records


def _losses(name: str, folder: Path) -> dict:
    setup = json.loads((folder / "setup.json").read_text())
    log_path = folder / "log.jsonl"
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.exists() else []
    return {"name": name, "global_batch": setup["plan"]["global_batch"], "steps": setup["plan"]["total_steps"],
            "log": rows}
