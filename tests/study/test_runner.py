"""`shardkit study` end to end on tiny-ltu at micro scale: report, caching, resume, one branch rerun."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MICRO = """base: cpu-demo
name: micro
stage0: {data: {size: 16}, train: {warmup_steps: 1}}
tuning: {small: 16, large: 32, train: {warmup_steps: 1}}
eval: {limit: 3, n_boot: 50, max_new_tokens: 6}
ablations: {position: [start], replay: [0.0], control: [original, zero-shot], audio_control: [original],
            attention: [original, ft-small], interpolate: [0.5], cue: false}
"""


def study(preset: Path, out: Path, *extra: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "shardkit", "study", "--preset", str(preset), "--out", str(out),
                        *extra], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((out / "study.json").read_text())


def ran(result: dict) -> list[str]:
    return [s["name"] for s in result["stages"] if not s["cached"]]


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    (folder / "micro.yaml").write_text(MICRO)
    return folder / "micro.yaml", folder / "run", study(folder / "micro.yaml", folder / "run")


def test_report_of_a_study(micro):
    _, out, result = micro
    names = [r["name"] for r in result["rows"]]
    assert names == ["original", "zero-shot interleaved", "FT-Small", "FT-Large", "original · mismatched",
                     "original · silence", "original · cascade", "position=start", "replay=0", "FT-Large ×0.5",
                     "control (original)", "control (zero-shot interleaved)"]
    assert all(len(r["metrics"]["synonym"]) > 3 and r["metrics"]["synonym"]["n"] == 3 for r in result["rows"])
    assert "identity" not in result["rows"][-1]["metrics"]  # the text control asks no identity question
    # claims: 3 × 3; the cascade asks the two yes/no tasks only
    assert [len(result["tests"][k]) for k in ("claims", "audio", "cascade", "ablations")] == [9, 6, 2, 13]
    assert {t["mcnemar"]["method"] for k in ("audio", "cascade") for t in result["tests"][k]
            if t["task"] != "identity"} == {"paired clip bootstrap of AUROC"}
    cascade = next(r for r in result["rows"] if r["name"] == "original · cascade")
    assert set(cascade["metrics"]) == {"synonym", "hypernym"} and cascade["metrics"]["synonym"]["n"] == 3
    assert {t["mcnemar"]["method"] for t in result["tests"]["claims"] if t["task"] == "identity"} <= {
        "sign-flip", "sign-flip, exact"}
    assert set(result["baselines"]) == {"synonym", "hypernym", "identity"}
    assert all("p_holm" in t["mcnemar"] for fam in result["tests"].values() for t in fam)
    assert [x["name"] for x in result["losses"]] == ["stage 0", "FT-Small", "FT-Large", "replay=0"]
    assert result["scale"]["steps"] == {"stage 0": 2, "FT-Small": 2, "FT-Large": 4, "replay=0": 2}
    assert result["reference"][0]["paper"] == "+17.73 points" and result["reference"][0]["ours"] is not None
    # one eval stage serves both controls (same model); every stage once, each marked done
    assert len(ran(result)) == len(result["stages"]) == len({s["id"] for s in result["stages"]}) == 19
    assert all((out / "stages" / s["id"] / "done.json").is_file() for s in result["stages"])
    report = (out / "report.md").read_text()
    assert "## The paper's table" in report and "| FT-Large |" in report and "+17.73 points" in report
    assert "## Does the model use the audio?" in report
    assert "## Does the reasoning reach what the model heard?" in report
    (named,) = result["named"]  # split by the clips the original names right: its cascade was asked
    assert named["condition"] == "original" and named["clips"] == 3 and 0 <= named["right"] <= 3
    assert {x["row"] for x in named["levels"]} == {"original", "original · mismatched", "original · silence",
                                                   "original · cascade", "control (original)"}
    assert "## Where the reasoning stops: the clips each condition names right" in report
    for png in ("bars", "tradeoff", "pr", "loss", "attention"):
        assert (out / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    att = result["attention"]  # measured on each condition's own model and placement, paired with the original
    assert {n: c["placement"] for n, c in att["conditions"].items()} == {"original": "prepended",
                                                                        "FT-Small": "interleaved"}
    assert [(t["b"], t["query"]) for t in att["tests"]] == [("FT-Small", "answer"), ("FT-Small", "candidate")]
    assert "## Where attention goes" in report
    # FT-Large moved halfway back to stage 0 in weight space: its own eval stage, a row of the forgetting table
    half = next(s for s in result["stages"] if s["name"] == "FT-Large ×0.5")
    spec = json.loads((out / "stages" / half["id"] / "config.json").read_text())["config"]["model"]
    assert spec.startswith("tiny-ltu:scale=0.5,start=") and ",ckpt=" in spec
    assert "## Forgetting and its mitigations" in report and "| FT-Large ×0.5 |" in report
    replay = next(s["id"] for s in result["stages"] if s["name"] == "replay=0" and s["kind"] == "train")
    setup = json.loads((out / "stages" / replay / "setup.json").read_text())  # the stage's config is what trained
    from shardkit.config import identity
    from shardkit.train.config import TrainConfig

    assert identity(setup["config"], TrainConfig) == {
        **json.loads((out / "stages" / replay / "done.json").read_text())["config"], "model": setup["config"]["model"],
        "data": setup["config"]["data"]}  # the stage id leaves out options at their default that came later (ewc)
    ft_small = next(s for s in result["stages"] if s["name"] == "FT-Small" and s["kind"] == "eval")
    cfg = json.loads((out / "stages" / ft_small["id"] / "config.json").read_text())["config"]
    assert "ckpt=" in cfg["model"] and cfg["placements"] == ["interleaved"]


def test_rerun_resume_and_one_branch(micro):
    preset, out, first = micro
    assert ran(study(preset, out)) == []  # finished: nothing reruns
    by_name = {(s["kind"], s["name"]): s["id"] for s in first["stages"]}
    # an interrupted evaluation (no done.json, half its records) resumes alone
    (out / "stages" / by_name[("eval", "FT-Large")] / "done.json").unlink()
    (out / "stages" / by_name[("eval", "FT-Large")] / "results.json").unlink()
    assert ran(study(preset, out)) == ["FT-Large"]
    # changing one ablation reruns only its branch
    again = study(preset, out, "--set", "ablations.position=[end]")
    assert ran(again) == ["position=end"]
    assert [r["name"] for r in again["rows"]][7] == "position=end"


def test_jobs_two_runs_stages_side_by_side_and_gives_the_serial_study(micro, tmp_path):
    """--jobs 2: ready stages run two at a time (one thread each, or both when alone); the same stages, byte-equal
    weights, equal rows."""
    preset, out, first = micro
    second = study(preset, tmp_path / "run", "--jobs", "2")
    assert [s["id"] for s in second["stages"]] == [s["id"] for s in first["stages"]]
    assert second["rows"] == first["rows"]
    trained = [s["id"] for s in first["stages"] if s["kind"] == "train"]
    for sid in trained:
        files = sorted((out / "stages" / sid / "final").rglob("*.safetensors"))
        assert files and all(f.read_bytes() == (tmp_path / "run" / f.relative_to(out)).read_bytes() for f in files)
    r = subprocess.run([sys.executable, "-m", "shardkit", "study", "--preset", str(preset), "--out", str(out),
                        "--jobs", "0"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "--jobs 0: must be 1 or more" in r.stderr


@pytest.mark.heavy  # 134 s on 2 cores (a second seed's 4 tunings and 7 evaluations): `make test-all`
def test_training_seeds_rerun_only_the_tunings_and_check_each_verdict(micro):
    preset, out, first = micro
    result = study(preset, out, "--set", "train_seeds=[0,1]")  # seed 0 is the finished single-seed study
    assert sorted(ran(result)) == sorted(f"{n} · seed 1" for n in ("stage 0", "FT-Small", "FT-Large", "original",
                                                                   "zero-shot interleaved", "FT-Small", "FT-Large",
                                                                   "control (original)"))
    assert [r["name"] for r in result["rows"]] == [r["name"] for r in first["rows"]]
    stages = {(s["kind"], s["name"]): s["id"] for s in result["stages"]}
    setup = {k: json.loads((out / "stages" / stages[("train", k)] / "setup.json").read_text())
             for k in ("stage 0", "stage 0 · seed 1")}
    assert setup["stage 0"]["config"]["seed"] == 0 and setup["stage 0 · seed 1"]["config"]["seed"] == 1
    assert setup["stage 0"]["config"]["data"] == setup["stage 0 · seed 1"]["config"]["data"]
    seeds = result["seeds"]
    assert seeds["train"] == [0, 1] and list(seeds["more"]) == ["1"]
    assert set(seeds["spread"]) == {"original", "zero-shot interleaved", "FT-Small", "FT-Large",
                                    "original · mismatched", "original · silence", "original · cascade",
                                    "control (original)",
                                    "control (zero-shot interleaved)"}  # ablations are the first seed's only
    original = next(r for r in result["rows"] if r["name"] == "original")
    cell = seeds["spread"]["original"]["synonym auroc"]
    assert cell["values"][0] == original["metrics"]["synonym"]["auroc"]["value"] and len(cell["values"]) == 2
    for ref in result["reference"]:
        assert set(ref["by_seed"]) == {"0", "1"}
        assert ref["verdict"] == (ref["by_seed"]["0"] if len(set(ref["by_seed"].values())) == 1 else "undetermined")
    report = (out / "report.md").read_text()
    assert "## Across training seeds" in report and "| original | synonym AUROC |" in report


def test_a_folder_takes_a_preset_built_on_its_own_and_refuses_another(tmp_path):
    """cpu-mechanism on a cpu-reasoning folder runs only its own branches (its seed-0 stages are cpu-reasoning's);
    a user's preset file built on a shipped one is taken by that one's folders too."""
    from dataclasses import asdict

    from shardkit.errors import ShardkitError
    from shardkit.study.preset import load_preset
    from shardkit.study.runner import _check_run

    mech, reasoning = load_preset("cpu-mechanism"), load_preset("cpu-reasoning")
    assert mech.bases == ("cpu-reasoning", "cpu-demo") and load_preset("cpu-demo").bases == ()
    (tmp_path / "preset.json").write_text(json.dumps(asdict(reasoning)))
    _check_run(tmp_path, mech, rank=0)
    assert json.loads((tmp_path / "preset.json").read_text())["name"] == "cpu-mechanism"
    _check_run(tmp_path, reasoning, rank=0)  # and back: the folder's preset is built on it
    (tmp_path / "mine.yaml").write_text("base: cpu-reasoning\nname: mine\n")
    _check_run(tmp_path, load_preset(str(tmp_path / "mine.yaml")), rank=0)
    (tmp_path / "preset.json").write_text(json.dumps({"name": "micro"}))
    with pytest.raises(ShardkitError, match="holds study 'micro', not 'cpu-reasoning' \\(nor a preset built on"):
        _check_run(tmp_path, reasoning, rank=0)
    with pytest.raises(ShardkitError, match="bases: set by the `base:` chain"):
        load_preset("cpu-demo", {"bases": ["cpu-reasoning"]})
