"""What the study concludes: the paired tests of each claim (four families, each Holm-corrected on its own), the
seed paper's claims with a verdict each, and — with several training seeds — the spread between seeds and the
verdicts that every seed reaches. Read from the gathered rows and per-item records; nothing here runs a model."""

from shardkit.eval.controls import AUDIO_CONTROLS, CASCADE, CONTROL, split_condition
from shardkit.names import TASKS, YES_NO
from shardkit.study.preset import CONDITIONS, StudyConfig


def tests_of(cfg: StudyConfig, rows: list, records: dict) -> dict[str, list[dict]]:
    """Paired tests in four families, each Holm-corrected on its own: the paper's claims (original against zero-shot
    interleaved, FT-Small and FT-Large, on synonym, hypernym and identity), the audio controls (each condition
    against itself over mismatched audio or silence, yes/no tested on AUROC, free of the yes/no bias), the cascade
    (each condition against its own label in words, on AUROC) and each ablation or text control against the row it
    varies. Identity is tested on its strict, class-balanced
    headline."""
    original = CONDITIONS["original"]
    conditions = [r.name for r in rows if r.group == "condition"]
    audio = [r for r in rows if split_condition(r.condition)[1] in AUDIO_CONTROLS]
    cascade = [r for r in rows if split_condition(r.condition)[1] == CASCADE]
    return {
        "claims": _family(cfg, records, [(original, c) for c in conditions if c != original], TASKS),
        "audio": _family(cfg, records, [(r.base, r.name) for r in audio], TASKS, on_auroc=True),
        "cascade": _family(cfg, records, [(r.base, r.name) for r in cascade], TASKS, on_auroc=True),
        "ablations": _family(cfg, records, [(r.base, r.name) for r in rows
                                            if r.group != "condition" and r not in audio + cascade], TASKS),
    }


def _family(cfg: StudyConfig, records: dict, pairs: list[tuple[str, str]], tasks: tuple[str, ...],
            on_auroc: bool = False) -> list[dict]:
    """B against A for each pair and task both rows hold, Holm-corrected as one family; `on_auroc` tests the AUROC
    difference (the bias-free question: ranking) instead of McNemar on yes/no decisions."""
    from shardkit.eval import metrics
    from shardkit.eval.compare import paired_test

    cloze = cfg.eval.scoring == "cloze"
    out = []
    for a, b in pairs:
        for task in tasks:
            if task in records[a] and task in records[b]:
                t = paired_test(records[a][task], records[b][task], task, cloze, cloze, cfg.eval.n_boot, cfg.seed)
                if t is not None and on_auroc and "auroc" in t["diffs"]:
                    t["mcnemar"] = {**t["mcnemar"], "p": t["diffs"]["auroc"]["p"],
                                    "method": "paired clip bootstrap of AUROC"}
                if t is not None:
                    out.append({"a": a, "b": b, **t})
    if out:
        metrics.apply_holm(out)
    return out


def named_right(cfg: StudyConfig, rows: list, records: dict) -> list[dict]:
    """Where the reasoning stops: for each condition asked with the cascade, its yes/no AUROC on the clips it names
    right (strict identity) and on the rest, from the audio, from the wrong audio or silence, from its own answer
    in words and from the gold label in words (text control), each with a clip-bootstrap CI; on the named clips,
    each source paired-tested against the audio (AUROC, Holm within the condition).

    On clips it names right the model has heard the sound, and its own word shows it can reason about that name;
    if the audio scores there no better than silence, its reasoning does not reach what it heard in one pass."""
    from shardkit.eval import metrics
    from shardkit.eval.results import arrays

    cloze = cfg.eval.scoring == "cloze"
    out = []
    for c in (r for r in rows if r.group == "condition"):
        sources = [r for r in rows if r.base == c.name and (r.condition == CONTROL or split_condition(r.condition)[1]
                                                            in (*AUDIO_CONTROLS, CASCADE))]
        if not any(split_condition(r.condition)[1] == CASCADE for r in sources) or "identity" not in records[c.name]:
            continue
        right = {x["clip_id"] for x in records[c.name]["identity"] if x["correct"] and x["error"] is None}
        clips = {x["clip_id"] for x in records[c.name]["identity"]}
        named = {r.name: {t: [x for x in recs if x["clip_id"] in right] for t, recs in records[r.name].items()
                          if t in YES_NO} for r in (c, *sources)}
        levels = []
        for r in (c, *sources):
            for task in YES_NO:
                recs = records[r.name].get(task) or []
                if not recs or any(x["score"] is None for x in recs):
                    continue
                level = {"row": r.name, "task": task}
                for part, keep in (("right", True), ("rest", False)):
                    sub = [x for x in recs if (x["clip_id"] in right) == keep]
                    index = {k: i for i, k in enumerate(sorted({x["clip_id"] for x in sub}))}
                    level[part] = (metrics.summarise(task, arrays(sub, index, cloze), cfg.eval.n_boot, cfg.seed,
                                                     metrics=("auroc",)) if sub else None)
                levels.append(level)
        out.append({"condition": c.name, "clips": len(clips), "right": len(right), "levels": levels,
                    "tests": _family(cfg, named, [(c.name, r.name) for r in sources], YES_NO, on_auroc=True)})
    return out


def _find(tests: list[dict], a: str, b: str, task: str) -> dict | None:
    return next((t for t in tests if t["a"] == a and t["b"] == b and t["task"] == task), None)


def _metric(rows: list[dict], name: str, task: str, key: str) -> dict | None:
    row = next((r for r in rows if r["name"] == name), None)
    m = ((row or {}).get("metrics", {}).get(task) or {}).get(key)
    return m if m and m.get("value") is not None else None


def balance_of(cfg: StudyConfig, records: dict, names: list[str]) -> dict:
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
    cloze = cfg.eval.scoring == "cloze"
    clips = {c: k for k, c in enumerate(sorted({r["clip_id"] for n in names for t in tasks for r in records[n][t]}))}
    first = records[names[0]]
    cluster = np.concatenate([[clips[r["clip_id"]] for r in first[t]] for t in tasks])
    w = cluster_weights(cluster, cfg.eval.n_boot, cfg.seed)  # [r, n over the three tasks]
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


def reference_of(rows: list[dict], tests: dict, balance: dict) -> list[dict]:
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
    mde = None if mde is not None and mde != mde else mde  # NaN (in memory) is null (in study.json): no variance
    size = (f"; the design detects {100 * mde:.1f} points at 80% power" if mde is not None
            else "; the two never differ on any item, so the design's power cannot be judged" if lo == hi == 0
            else "")
    if p is not None and p < alpha and lo is not None and hi is not None:
        if (lo > 0 if sign > 0 else hi < 0):
            return "supported", f"{test.get('method', 'paired test')} Holm p {p:.3g}, CI on the paper's side"
        if (hi < 0 if sign > 0 else lo > 0):
            return "contradicted", f"{test.get('method', 'paired test')} Holm p {p:.3g}, CI on the other side"
    ci = "" if lo is None or hi is None else f", CI {100 * lo:.1f} to {100 * hi:.1f} points"
    return "undetermined", f"Holm p {'–' if p is None else f'{p:.3g}'}{ci}{size}"


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
