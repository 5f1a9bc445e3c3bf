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
from dataclasses import asdict
from pathlib import Path

from shardkit.config import load_fields
from shardkit.errors import ShardkitError
from shardkit.eval.controls import AUDIO_CONTROLS, CASCADE, split_condition
from shardkit.eval.results import json_safe
from shardkit.files import atomic_write
from shardkit.study.preset import CONDITIONS, PAPER_SIZES, StudyConfig
from shardkit.study.stages import Plan, Stage, plan_study
from shardkit.tasks import TASKS, YES_NO

log = logging.getLogger(__name__)

Progress = Callable[[Stage, int, int, str], None]  # (stage, done, total, extra text)


def stage_dir(out: Path, stage_id: str) -> Path:
    return Path(out) / "stages" / stage_id


def is_done(out: Path, stage_id: str) -> bool:
    return (stage_dir(out, stage_id) / "done.json").is_file()


def _spec(out: Path, model: str, tuned: str | None, base: str | None = None) -> str:
    """The model spec of a stage: the preset's model, the instruct stage merged in, a tuning on top."""
    from shardkit.models.registry import with_base, with_tuned

    if base:
        model = with_base(model, str(stage_dir(out, base).resolve()))
    return with_tuned(model, str(stage_dir(out, tuned).resolve())) if tuned else model


def _run_stage(stage: Stage, out: Path, progress: Progress, rank: int, world: int, barrier) -> None:
    """Run one stage into its folder through its command's library function (which resumes by itself)."""
    folder, c, inputs = stage_dir(out, stage.id), stage.config, stage.inputs

    def tick(done: int, total: int, *extra) -> None:  # training also reports (loss, samples/s)
        progress(stage, done, total, _extra(extra))
    if stage.kind == "shard":
        from shardkit.benchmark.build import BuildConfig, build

        if rank == 0:
            opts = {k: v for k, v in c.items() if k not in ("manifest", "audio_root")}
            build(folder, load_fields(BuildConfig, opts, "shard"), manifest=_path(c.get("manifest")),
                  audio_root=_path(c.get("audio_root")), progress=tick)
    elif stage.kind == "data":
        from shardkit.train.config import DataConfig
        from shardkit.train.folder import make_data

        if rank == 0:
            opts = {k: v for k, v in c.items() if k not in ("manifest", "audio_root", "inputs")}
            make_data(folder, DataConfig.from_dict(opts), manifest=_path(c.get("manifest")),
                      audio_root=_path(c.get("audio_root")), progress=tick,
                      exclude=stage_dir(out, inputs["shard"]))
    elif stage.kind == "train":
        from shardkit.models.checkpoint import newest_checkpoint
        from shardkit.train.config import load_config
        from shardkit.train.trainer import train

        cfg = load_config(overrides={**c["train"], "model": _spec(out, c["model"], inputs["start"], inputs.get("base")),
                                     "data": str(stage_dir(out, inputs["data"]))})
        train(cfg, folder, resume=newest_checkpoint(folder) is not None, cpu=c["device"] == "cpu", progress=tick)
    elif stage.kind == "eval":
        from shardkit.eval.runner import EvalConfig, run_eval

        e = c["eval"]
        cfg = load_fields(EvalConfig, {**e, "model": _spec(out, c["model"], inputs["model"], inputs.get("base")),
                                       "shard": str(stage_dir(out, inputs["shard"])), "device": c["device"],
                                       "dtype": c["dtype"]}, "eval")
        run_eval(cfg, folder, progress=tick, rank=rank, world=world, barrier=barrier)
    else:
        raise ShardkitError(f"unknown stage kind {stage.kind!r}")


def _extra(values: tuple) -> str:
    """Training reports (loss, samples/s) after (step, total): shown beside the bar."""
    return f"loss {values[0]:.3f}, {values[1]:.1f} samples/s" if len(values) == 2 else ""


def _path(value) -> Path | None:
    return None if value in (None, "") else Path(value)


def run_study(cfg: StudyConfig, out: Path, progress: Progress | None = None,
              announce: Callable[[str], None] | None = None, rank: int = 0, world: int = 1,
              barrier: Callable[[], None] = lambda: None) -> dict | None:
    """Run every unfinished stage of the preset into `out`, then (rank 0) write study.json, report.md and plots."""
    from shardkit.study.report import write_report

    t0, out = time.perf_counter(), Path(out)
    plan = plan_study(cfg)
    say = announce if announce and rank == 0 else (lambda m: None)
    progress = progress or (lambda *a: None)
    _check_run(out, cfg, rank)
    timings = []
    for n, stage in enumerate(plan.stages.values(), 1):
        if is_done(out, stage.id):
            timings.append({"id": stage.id, "kind": stage.kind, "name": stage.name, "cached": True,
                            "seconds": json.loads((stage_dir(out, stage.id) / "done.json").read_text())["seconds"]})
            continue
        say(f"[{n}/{len(plan.stages)}] {stage.kind} {stage.name} → {stage_dir(out, stage.id)}")
        start = time.perf_counter()
        _run_stage(stage, out, progress, rank, world, barrier)
        barrier()
        seconds = round(time.perf_counter() - start, 1)
        if rank == 0:
            atomic_write(stage_dir(out, stage.id) / "done.json", json.dumps(
                {"id": stage.id, "kind": stage.kind, "name": stage.name, "config": stage.config,
                 "seconds": seconds}, indent=2) + "\n")
        timings.append({"id": stage.id, "kind": stage.kind, "name": stage.name, "cached": False, "seconds": seconds})
    if rank != 0:
        return None
    study = gather(cfg, plan, out)
    study["stages"], study["seconds"] = timings, round(time.perf_counter() - t0, 1)
    study = json_safe(study)  # strict JSON: an undefined number (NaN) is null
    atomic_write(out / "study.json", json.dumps(study, indent=1, ensure_ascii=False) + "\n")
    write_report(out, study)
    return study


def _check_run(out: Path, cfg: StudyConfig, rank: int) -> None:
    """A study folder belongs to one preset name; its stages may be shared, but its report is one study's."""
    path = out / "preset.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old["name"] != cfg.name:
            raise ShardkitError(f"{out} holds study {old['name']!r}, not {cfg.name!r}: use another --out")
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
    scoring = cfg.eval.get("scoring", "yesno")
    rows, records = _rows(plan.rows, runs)
    tests = _tests(cfg, plan.rows, records)
    conditions = [r.name for r in plan.rows if r.group == "condition"]
    reference = _reference(rows, tests, _balance(cfg, records, conditions))
    seeds = {}
    for seed, reps in plan.replicates.items():
        r_rows, r_records = _rows(reps, runs)
        r_tests = _tests(cfg, reps, r_records)
        seeds[str(seed)] = {"rows": [{"name": r["name"], "metrics": r["metrics"]} for r in r_rows], "tests": r_tests,
                       "reference": _reference(r_rows, r_tests, _balance(cfg, r_records, conditions))}
    shard_id = next(sid for sid, st in plan.stages.items() if st.kind == "shard")
    shard_meta = json.loads((stage_dir(out, shard_id) / "meta.json").read_text())
    tuning = _train_config(cfg.tuning)
    losses = [_losses(name, stage_dir(out, sid)) for name, sid in plan.tunings.items()]  # one setup.json read each
    return {
        "name": cfg.name, "description": " ".join(cfg.description.split()),
        "command": f"shardkit study --preset {cfg.name} --out {out}", "model": cfg.model, "device": cfg.device,
        "dtype": cfg.dtype, "scoring": scoring,
        "shard": {"sha256": shard_meta["sha256"], "n_items": shard_meta["n_items"], "n_clips": shard_meta["n_clips"],
                  "limit": cfg.eval.get("limit")},
        "scale": {"small": cfg.small, "large": cfg.large, "paper_small": PAPER_SIZES["small"],
                  "paper_large": PAPER_SIZES["large"], "steps": {x["name"]: x["steps"] for x in losses},
                  "lr": tuning.lr, "lora_r": tuning.lora_r, "lora_alpha": tuning.lora_alpha,
                  "note": " ".join(cfg.note.split())},
        "rows": rows, "tests": tests, "baselines": runs[plan.rows[0].eval][0].get("baselines") or {},
        "reference": across_seeds(reference, {s: v["reference"] for s, v in seeds.items()}, cfg.seeds[0]),
        "seeds": {"train": list(cfg.seeds), "more": seeds, "spread": spread(rows, seeds)} if seeds else None,
        "losses": losses,
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


SPREAD = (("synonym", "f1"), ("hypernym", "f1"), ("synonym", "auroc"), ("hypernym", "auroc"),
          ("identity", "identity_accuracy_balanced"), ("identity", "identity_accuracy"))


def spread(rows: list[dict], more: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """Row name → "task metric" → the value in each training seed (first seed first), their range and SD."""
    import numpy as np

    out = {}
    for r in rows:
        others = [next((x for x in m["rows"] if x["name"] == r["name"]), None) for m in more.values()]
        if any(o is None for o in others):
            continue  # an ablation: first seed only
        cells = {}
        for task, key in SPREAD:
            vals = [((x["metrics"].get(task) or {}).get(key) or {}).get("value") for x in (r, *others)]
            if all(v is not None for v in vals):
                cells[f"{task} {key}"] = {"values": vals, "min": min(vals), "max": max(vals),
                                          "sd": float(np.std(vals, ddof=1))}
        out[r["name"]] = cells
    return out


def across_seeds(reference: list[dict], more: dict[str, list[dict]], first: int) -> list[dict]:
    """The first seed's verdicts, each kept only if every further training seed reaches the same one; otherwise
    undetermined, naming each seed's verdict."""
    if not more:
        return reference
    out = []
    for k, r in enumerate(reference):
        by_seed = {str(first): r.get("verdict", "undetermined"),
                   **{s: ref[k].get("verdict", "undetermined") for s, ref in more.items()}}
        listed = ", ".join(f"seed {s} {v}" for s, v in by_seed.items())
        if len(set(by_seed.values())) == 1:
            r = {**r, "why": f"{r.get('why', '')}; the same in every training seed ({listed})"}
        else:
            r = {**r, "verdict": "undetermined", "why": f"the training seeds disagree ({listed}); first seed: "
                                                        f"{r.get('why', '')}"}
        out.append({**r, "by_seed": by_seed})
    return out


def _train_config(section: dict):
    from shardkit.train.config import load_config

    return load_config(overrides=section.get("train") or {})


def _losses(name: str, folder: Path) -> dict:
    setup = json.loads((folder / "setup.json").read_text())
    log_path = folder / "log.jsonl"
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.exists() else []
    return {"name": name, "global_batch": setup["plan"]["global_batch"], "steps": setup["plan"]["total_steps"],
            "log": rows}


def _tests(cfg: StudyConfig, rows: list, records: dict) -> dict[str, list[dict]]:
    """Paired tests in four families, each Holm-corrected on its own: the paper's claims (original against zero-shot
    interleaved, FT-Small and FT-Large, on synonym, hypernym and identity), the audio controls (each condition
    against itself over mismatched audio or silence, yes/no tested on AUROC, free of the yes/no bias), the cascade
    (each condition against its own label in words, on AUROC) and each ablation or text control against the row it
    varies. Identity is tested on its strict, class-balanced
    headline."""
    from shardkit.eval import metrics
    from shardkit.eval.compare import paired_test

    cloze = cfg.eval.get("scoring") == "cloze"
    n_boot, seed = cfg.eval.get("n_boot", 1000), cfg.seed

    def family(pairs: list[tuple[str, str]], tasks: tuple[str, ...], on_auroc: bool = False) -> list[dict]:
        out = []
        for a, b in pairs:
            for task in tasks:
                if task in records[a] and task in records[b]:
                    t = paired_test(records[a][task], records[b][task], task, cloze, cloze, n_boot, seed)
                    if t is not None and on_auroc and "auroc" in t["diffs"]:  # the bias-free question: ranking
                        t["mcnemar"] = {**t["mcnemar"], "p": t["diffs"]["auroc"]["p"],
                                        "method": "paired clip bootstrap of AUROC"}
                    if t is not None:
                        out.append({"a": a, "b": b, **t})
        if out:
            metrics.apply_holm(out)
        return out

    original = CONDITIONS["original"]
    conditions = [r.name for r in rows if r.group == "condition"]
    audio = [r for r in rows if split_condition(r.condition)[1] in AUDIO_CONTROLS]
    cascade = [r for r in rows if split_condition(r.condition)[1] == CASCADE]
    return {
        "claims": family([(original, c) for c in conditions if c != original], TASKS),
        "audio": family([(r.base, r.name) for r in audio], TASKS, on_auroc=True),
        "cascade": family([(r.base, r.name) for r in cascade], TASKS, on_auroc=True),
        "ablations": family([(r.base, r.name) for r in rows if r.group != "condition" and r not in audio + cascade],
                            TASKS),
    }


def _find(tests: list[dict], a: str, b: str, task: str) -> dict | None:
    return next((t for t in tests if t["a"] == a and t["b"] == b and t["task"] == task), None)


def _metric(rows: list[dict], name: str, task: str, key: str) -> dict | None:
    row = next((r for r in rows if r["name"] == name), None)
    m = ((row or {}).get("metrics", {}).get(task) or {}).get(key)
    return m if m and m.get("value") is not None else None


def _balance(cfg: StudyConfig, records: dict, names: list[str]) -> dict:
    """The paper's "best balance" score per condition — (identity + mean of the two F1) / 2, identity on its
    headline — with a clip-bootstrap CI, every condition resampled with the same clip draws, and the paired
    difference of the best against each other condition."""
    import numpy as np

    from shardkit.eval import metrics
    from shardkit.eval.results import arrays
    from shardkit.stats import bootstrap_p, cluster_weights

    tasks = TASKS
    names = [n for n in names if all(t in records[n] for t in tasks)]
    if not names:
        return {}
    cloze = cfg.eval.get("scoring") == "cloze"
    clips = {c: k for k, c in enumerate(sorted({r["clip_id"] for n in names for t in tasks for r in records[n][t]}))}
    first = records[names[0]]
    cluster = np.concatenate([[clips[r["clip_id"]] for r in first[t]] for t in tasks])
    w = cluster_weights(cluster, cfg.eval.get("n_boot", 1000), cfg.seed)  # [r, n over the three tasks]
    cuts = np.cumsum([0, *(len(first[t]) for t in tasks)])
    fns = {"synonym": metrics.METRICS["f1"].fn, "hypernym": metrics.METRICS["f1"].fn,
           "identity": metrics.METRICS["identity_accuracy_balanced"].fn}
    values, reps = {}, {}
    for n in names:
        got = {}
        for k, t in enumerate(tasks):
            d = arrays(records[n][t], clips, cloze)
            d.pop("error")  # an item whose audio failed stays in, as wrong: the draws must cover every condition alike
            if t != "identity" and "pred" not in d:
                return {}  # cloze: no F1, so no balance
            got[t] = (fns[t](d, None), fns[t](d, w[:, cuts[k]:cuts[k + 1]]))
        values[n] = (got["identity"][0] + (got["synonym"][0] + got["hypernym"][0]) / 2) / 2
        reps[n] = (got["identity"][1] + (got["synonym"][1] + got["hypernym"][1]) / 2) / 2
    best = max(values, key=values.get)
    out = {"best": best, "rows": {}}
    for n in names:
        lo, hi = np.nanquantile(reps[n], [0.025, 0.975])
        entry = {"value": float(values[n]), "ci": [float(lo), float(hi)]}
        if n != best:
            diff = reps[best] - reps[n]
            dlo, dhi = np.nanquantile(diff, [0.025, 0.975])
            entry["best_minus_this"] = {"value": float(values[best] - values[n]), "ci": [float(dlo), float(dhi)],
                                        "p": bootstrap_p(diff)}
        out["rows"][n] = entry
    return out


def _reference(rows: list[dict], tests: dict, balance: dict) -> list[dict]:
    """The seed paper's reported figures (shared/reference/ltu.md) beside this run's, each with its CI and test."""
    orig, zs, fts, ftl = (CONDITIONS[k] for k in ("original", "zero-shot", "ft-small", "ft-large"))
    out = []
    for task, paper in (("synonym", "+17.73"), ("hypernym", "+18.15")):
        t = _find(tests["claims"], orig, zs, task)
        out.append({"what": f"{task} F1, zero-shot interleaved − original", "paper": f"{paper} points",
                    "ours": t["diffs"].get("f1") if t else None, "test": t and t["mcnemar"], "unit": "points"})
    t = _find(tests["claims"], orig, zs, "identity")
    out.append({"what": "identity accuracy, zero-shot interleaved − original", "paper": "−9.12 points",
                "ours": t["diffs"].get("identity_accuracy_balanced") if t else None, "test": t and t["mcnemar"],
                "unit": "points"})
    for task, key, what, paper in (("identity", "identity_accuracy_balanced", "identity accuracy, FT-Large",
                                    "48.45% → 28.75%"),
                                   ("synonym", "recall", "synonym recall, FT-Large", "44.40% → 6.31%")):
        t = _find(tests["claims"], orig, ftl, task)
        out.append({"what": what, "paper": paper, "a": _metric(rows, orig, task, key),
                    "b": _metric(rows, ftl, task, key), "ours": t["diffs"].get(key) if t else None,
                    "test": t and t["mcnemar"], "unit": "points"})
    for r, sign in zip(out, (1, 1, -1, -1, -1), strict=True):
        r["verdict"], r["why"] = verdict(r["ours"], r["test"], sign)
    if balance:
        fts_row = balance["rows"].get(fts, {})
        entry = {"what": "best balance of labeling and reasoning ((identity + mean F1) / 2)", "paper": "FT-Small",
                 "best": balance["best"], "balance": balance["rows"], "vs_ft_small": fts_row.get("best_minus_this")}
        others = [v.get("best_minus_this") for n, v in balance["rows"].items() if n != balance["best"]]
        apart = all(d and d["ci"][0] is not None and d["ci"][0] > 0 for d in others)
        if balance["best"] == fts and apart:
            entry["verdict"], entry["why"] = "supported", "FT-Small is best, its CI of the gap to every other above 0"
        elif balance["best"] != fts and entry["vs_ft_small"] and (entry["vs_ft_small"]["ci"][0] or 0) > 0:
            entry["verdict"], entry["why"] = "contradicted", f"{balance['best']} beats FT-Small, CI of the gap above 0"
        else:
            entry["verdict"], entry["why"] = "undetermined", "the best condition's lead is within its CI"
        out.append(entry)
    return out


def verdict(diff: dict | None, test: dict | None, sign: int, alpha: float = 0.05) -> tuple[str, str]:
    """A claim of the paper against this run: supported when the paired test passes Holm at `alpha` and the
    difference's CI lies on the paper's side of 0; contradicted when both hold on the other side; undetermined
    otherwise, saying how large a difference the design could have found (MDE)."""
    if not diff or diff.get("value") is None or not test:
        return "undetermined", "not measured"
    lo, hi = diff["ci"]
    p = test.get("p_holm")
    mde = diff.get("mde")
    size = f"; the design detects {100 * mde:.1f} points at 80% power" if mde is not None else ""
    if p is not None and p < alpha and lo is not None and hi is not None:
        if (lo > 0 if sign > 0 else hi < 0):
            return "supported", f"{test.get('method', 'paired test')} Holm p {p:.3g}, CI on the paper's side"
        if (hi < 0 if sign > 0 else lo > 0):
            return "contradicted", f"{test.get('method', 'paired test')} Holm p {p:.3g}, CI on the other side"
    ci = "" if lo is None or hi is None else f", CI {100 * lo:.1f} to {100 * hi:.1f} points"
    return "undetermined", f"Holm p {'–' if p is None else f'{p:.3g}'}{ci}{size}"
