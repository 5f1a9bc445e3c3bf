import numpy as np
import pytest

from shardkit.eval.report import fmt
from shardkit.study.report import write_report

CONDITIONS = ["original", "zero-shot interleaved", "FT-Small", "FT-Large"]


def _m(rng, value=None):
    v = float(rng.uniform(0.1, 0.9)) if value is None else value
    return {"value": v, "ci": [v - 0.05, min(1.0, v + 0.07)], "higher_is_better": True}


def _yesno(rng):
    out = {"n": 40, "n_error": 0, "n_clips": 12}
    out.update({k: _m(rng) for k in ("precision", "recall", "f1", "accuracy", "auroc")})
    out["unparsed_rate"] = _m(rng, 0.0)
    return out


def _row(rng, name, group, base=None, identity=True, pr=True):
    metrics = {t: _yesno(rng) for t in ("synonym", "hypernym")}
    if identity:
        metrics["identity"] = {"n": 12, "n_error": 0, "n_clips": 12, "identity_accuracy": _m(rng),
                               "identity_accuracy_balanced": _m(rng), "identity_accuracy_lenient": _m(rng)}
    scores = {}
    if pr:
        for t in ("synonym", "hypernym"):
            gold = [bool(g) for g in rng.integers(0, 2, 40)]
            score = [float(s) + g for s, g in zip(rng.normal(size=40), gold, strict=True)]
            scores[t] = {"gold": gold, "score": score}
        scores["synonym"]["score"][3] = None  # an unscored item
    return {"name": name, "group": group, "base": base, "description": f"{name} varies", "metrics": metrics,
            "pr": scores, "condition": "text" if group == "control" else "interleaved"}


def _test(a, b, task, p):
    keys = ("identity_accuracy", "identity_accuracy_balanced") if task == "identity" else ("f1", "precision")
    diffs = {k: {"value": -0.031, "ci": [-0.08, 0.02], "p": 0.3, "higher_is_better": True} for k in keys}
    method = "sign-flip, exact" if task == "identity" else "McNemar, exact"
    return {"a": a, "b": b, "task": task, "n": 40, "n_error": 0, "diffs": diffs,
            "mcnemar": {"b": 3, "c": 7, "right_to_wrong": 3, "wrong_to_right": 7, "n": 40, "p": p, "p_holm": 2 * p,
                        "method": method}}


def _baselines():
    yes = {k: {"value": v, "ci": [v - 0.05, v + 0.05]} for k, v in (("f1", 0.667), ("precision", 0.5),
                                                                    ("recall", 1.0))}
    chance = {"auroc": {"value": 0.5, "ci": [0.45, 0.55]}}
    task = {"always_yes": yes, "candidate_prior": chance, "candidate_generality": chance,
            "candidate_shortness": chance}
    return {"synonym": task, "hypernym": task,
            "identity": {"best_constant": {"answer": "Cowbell", "balanced": 0.0909, "micro": 0.0746, "n_tried": 582}}}


def make_study(losses=True) -> dict:
    rng = np.random.default_rng(0)
    rows = [_row(rng, n, "condition", pr=n != "FT-Large") for n in CONDITIONS]
    rows += [_row(rng, "position=start", "ablation", "FT-Small"), _row(rng, "replay=0", "ablation", "FT-Large")]
    rows += [_row(rng, "control (original)", "control", "original", identity=False)]
    rows[3]["metrics"]["hypernym"]["precision"] = {"value": None, "ci": [None, None], "higher_is_better": True}
    del rows[5]["pr"]["hypernym"]
    log = [{"step": s, "epoch": 0, "loss": 3.0 / s, "lr": 1e-3, "samples_per_s": 4.0} for s in range(1, 30)]
    return {
        "name": "unit", "description": "A synthetic study.", "command": "shardkit study --preset unit --out x",
        "model": "tiny-ltu", "device": "cpu", "dtype": "float32", "scoring": "yesno",
        "shard": {"sha256": "f325a376" * 8, "n_items": 741, "n_clips": 67},
        "scale": {"small": 128, "large": 1280, "paper_small": 40000, "paper_large": 1000000,
                  "steps": {"stage 0": 120, "FT-Small": 16, "FT-Large": 160}, "lr": 0.0005, "lora_r": 8,
                  "lora_alpha": 16, "note": "CPU budget."},
        "rows": rows,
        "tests": {"claims": [_test("original", b, t, 0.01234) for b in CONDITIONS[1:]
                             for t in ("synonym", "hypernym", "identity")],
                  "ablations": [_test("FT-Small", "position=start", "synonym", 0.5)]},
        "baselines": _baselines(),
        "reference": [{"what": "synonym F1, zero-shot interleaved − original", "paper": "+17.73 points",
                       "ours": {"value": 0.031, "ci": [-0.02, 0.08]}, "unit": "points",
                       "test": {"method": "McNemar, exact", "p": 0.01234, "p_holm": 0.0247}},
                      {"what": "hypernym F1", "paper": "+5 points", "ours": None, "unit": "points", "test": None,
                       "verdict": "undetermined", "why": "not measured"},
                      {"what": "identity accuracy, FT-Large", "paper": "48.45% → 28.75%",
                       "a": {"value": 0.134, "ci": [0.06, 0.2]}, "b": {"value": 0.09, "ci": [0.03, 0.15]},
                       "ours": {"value": -0.044, "ci": [-0.1, 0.01]}, "unit": "points",
                       "test": {"method": "sign-flip, exact", "p": 0.2, "p_holm": 0.4}},
                      {"what": "best balance", "paper": "FT-Small", "best": "original",
                       "balance": {"original": {"value": 0.4, "ci": [0.3, 0.5]},
                                   "FT-Small": {"value": 0.35, "ci": [0.25, 0.45]}},
                       "vs_ft_small": {"value": 0.05, "ci": [-0.02, 0.12], "p": 0.2}}],
        "losses": [{"name": "stage 0", "global_batch": 8, "log": log},
                   {"name": "FT-Small", "global_batch": 8, "log": log[:3]}] if losses else [],
        "stages": [{"id": "train-ft-small-3fa2c1d0e9", "kind": "train", "name": "FT-Small", "seconds": 41.25,
                    "cached": False},
                   {"id": "eval-original-00aa", "kind": "eval", "name": "original", "seconds": 3.0, "cached": True}],
        "seconds": 1234.5,
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    write_report(out, make_study())
    first = (out / "report.md").read_bytes()
    write_report(out, make_study())
    return out, first


def _line(md: str, start: str) -> str:
    hits = [x for x in md.splitlines() if x.startswith(start)]
    assert hits, start
    return hits[0]


def test_header_and_scale(written):
    md = (written[0] / "report.md").read_text()
    assert md.startswith("# SHARD study: unit\n")
    assert "shardkit study --preset unit --out x" in md
    assert "`f325a376f325a376…`, 741 items over 67 clips" in md
    assert "128 samples against the paper's 40K" in md and "1,280 against its 1M" in md
    assert "10× FT-Small's data (the paper: 25×)" in md
    assert "stage 0 120, FT-Small 16, FT-Large 160" in md and "CPU budget." in md
    assert "paper's scale" not in md


def test_tables_hold_every_row(written):
    md = (written[0] / "report.md").read_text()
    study = make_study()
    for r in study["rows"]:
        assert f"| {r['name']} |" in md
    original = _line(md, "| original |")
    f1 = study["rows"][0]["metrics"]["synonym"]["f1"]
    assert f"{100 * f1['value']:.1f} [{100 * f1['ci'][0]:.1f}, {100 * f1['ci'][1]:.1f}]" in original
    assert original.count(" [") == 9
    assert _line(md, "| FT-Large |").split(" | ")[4] == "–"  # hypernym precision is undefined
    control = _line(md, "| control (original) | original |")
    assert control.endswith("| – | – | – |")  # controls have no identity
    auroc = study["rows"][0]["metrics"]["hypernym"]["auroc"]
    section = md.split("## Discrimination, free of the yes/no bias")[1].split("##")[0]
    cell = f"{auroc['value']:.2f} [{auroc['ci'][0]:.2f}, {auroc['ci'][1]:.2f}] |"
    assert _line(section, "| original |").endswith(cell)


def test_reference_and_tests(written):
    md = (written[0] / "report.md").read_text()
    assert "seed paper (reference figure, not reproduced)" in md
    assert ("| synonym F1, zero-shot interleaved − original | +17.73 points | +3.1 [-2.0, 8.0] points | McNemar, "
            "exact: p 0.0123, Holm 0.0247 |") in md
    assert "| hypernym F1 | +5 points | – | – |" in md
    assert "| 48.45% → 28.75% | 13.4 [6.0, 20.0] → 9.0 [3.0, 15.0] (original → FT-Large); Δ -4.4 [-10.0, 1.0]" in md
    assert "original 40.0 [30.0, 50.0]; FT-Small 35.0 [25.0, 45.0] — best: original" in md
    assert ("| synonym | original → zero-shot interleaved | -3.1 [-8.0, 2.0] | – | McNemar, exact | 0.0123 | 0.0247 "
            "| 3 | 7 |") in md
    assert ("| identity | original → FT-Large | -3.1 [-8.0, 2.0] | – | sign-flip, exact | 0.0123 | 0.0247 "
            "| 3 | 7 |") in md
    assert "| synonym | FT-Small → position=start | -3.1 [-8.0, 2.0] | – | McNemar, exact | 0.5 | 1 |" in md
    assert "## The paper's claims" in md and "## Ablations and controls vs their base" in md
    assert "| FT-Small | train | `train-ft-small-3fa2c1d0e9` | 41.2 | no |" in md
    assert "| original | eval | `eval-original-00aa` | 3.0 | yes |" in md
    assert "All stages together: 0.7 min." in md
    assert "1234.5 s" in md


def test_findings_open_the_report(written):
    md = (written[0] / "report.md").read_text()
    assert md.index("## What this study found") < md.index("## Read this first") < md.index("## The paper's table")
    assert "- **undetermined** — hypernym F1 (paper: +5 points): not measured." in md
    assert _line(md, "| hypernym F1 |").endswith("| undetermined |")


def test_one_minute_opens_the_findings(written):
    md = (written[0] / "report.md").read_text()
    found = md.split("## What this study found")[1].split("Each claim of the seed paper")[0]
    lines = [x for x in found.splitlines() if x]
    assert [x.split("**")[1] for x in lines] == ["Reasoning in words.", "Hearing.", "Reasoning from the audio.",
                                                 "The paper's claims."]
    text = make_study()["rows"][-1]["metrics"]
    assert all(fmt(text[t]["auroc"], pct=False) in lines[0] for t in ("synonym", "hypernym"))
    assert 'the best constant answer "Cowbell" (9.1 %)' in lines[1]
    assert " of 8 condition × task reasoning AUROCs exceed 0.5 outside their CI" in lines[2]
    assert lines[3] == ("- **The paper's claims.** 0 supported, 0 contradicted, 4 undetermined, each below with its "
                        "test.")


def test_baselines_come_first(written):
    md = (written[0] / "report.md").read_text()
    first = md.split("## Read this first")[1].split("## The paper's table")[0]
    assert ('| identity | best constant answer "Cowbell" (of 582 tried) | 9.1 (strict, balanced); 7.5 (strict) |'
            in first)
    assert "| synonym | always yes | F1 66.7 [61.7, 71.7]" in first
    assert "| hypernym | candidate only: prior | AUROC 0.50 [0.45, 0.55] |" in first


def test_baseline_warnings():
    from shardkit.study.report import baseline_warnings

    base = _baselines()
    row = {"name": "zs", "metrics": {
        "synonym": {"f1": {"value": 0.66, "ci": [0.6, 0.7]}, "auroc": {"value": 0.7, "ci": [0.62, 0.78]}},
        "hypernym": {"f1": {"value": 0.3, "ci": [0.2, 0.4]}, "auroc": {"value": 0.52, "ci": [0.45, 0.6]}},
        "identity": {"identity_accuracy_balanced": {"value": 0.12, "ci": [0.05, 0.2]}}}}
    w = baseline_warnings([row], base)
    assert len(w) == 3
    assert "synonym: F1" in w[0] and "always yes" in w[0]
    assert "hypernym: AUROC" in w[1] and "coin" in w[1]
    assert "identity" in w[2] and "best constant" in w[2]
    yes_man = {"name": "FT-Large", "metrics": {"synonym": {"f1": {"value": 0.667, "ci": [0.667, 0.667]},
                                                           "auroc": {"value": 0.51, "ci": [0.45, 0.56]}}}}
    w = baseline_warnings([yes_man], base)  # at chance AND answering yes to everything: both are said
    assert len(w) == 2 and "coin" in w[0] and "always yes" in w[1]


def test_plots_and_determinism(written):
    out, first = written
    for name in ("bars", "tradeoff", "pr", "loss"):
        assert (out / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG"), name
        assert f"](plots/{name}.png)" in first.decode()
    assert (out / "report.md").read_bytes() == first
    assert not [p for p in (out / "plots").iterdir() if p.name.startswith(".")]  # no temp files left


def test_no_losses_no_loss_plot(tmp_path):
    write_report(tmp_path, make_study(losses=False))
    md = (tmp_path / "report.md").read_text()
    assert not (tmp_path / "plots" / "loss.png").exists()
    assert "loss" not in md.lower()
    assert md.count("![") == 4  # bars, trade-off, precision-recall, forgetting (the study has an FT-Large ablation)
    assert (tmp_path / "plots" / "forgetting.png").read_bytes()[:4] == b"\x89PNG"


def test_generate_scoring_at_paper_scale(tmp_path):
    study = make_study()
    study["scale"].update(small=40000, large=1000000, note="")
    for r in study["rows"]:
        r["pr"] = {}
    write_report(tmp_path, study)
    md = (tmp_path / "report.md").read_text()
    assert "This is the paper's scale." in md and "25× FT-Small's data (the paper: 25×)" in md
    assert (tmp_path / "plots" / "pr.png").read_bytes().startswith(b"\x89PNG")


def test_across_seeds_section(tmp_path):
    """The seeds section (otherwise reached only by a whole multi-seed study): each condition's headline per seed
    beside the first seed's CI, the between-seed SD, and each claim's verdict per seed."""
    from shardkit.study.verdicts import spread

    study = make_study()
    other = [{"name": r["name"], "metrics": r["metrics"]} for r in study["rows"] if r["group"] == "condition"]
    study["seeds"] = {"train": [0, 1], "more": {"1": {"rows": other, "tests": {}, "reference": []}},
                      "spread": spread(study["rows"], {"1": {"rows": other}})}
    study["reference"][1] = {**study["reference"][1], "by_seed": {"0": "undetermined", "1": "supported"}}
    write_report(tmp_path, study)
    md = (tmp_path / "report.md").read_text()
    assert "## Across training seeds" in md and "| row | metric | seed 0 [95% CI] | seed 1 | between-seed SD |" in md
    orig = next(r for r in study["rows"] if r["name"] == "original")
    ci = fmt(orig["metrics"]["synonym"]["f1"])
    assert f"| original | synonym F1 | {ci} | " in md and "| 0.0 points |" in md  # same values: SD 0
    assert "| hypernym F1 | undetermined | supported |" in md
