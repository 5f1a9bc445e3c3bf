"""The study's attention branch (study/attention.py): stages planned for the conditions asked, results read back,
each condition paired with the original item by item, and the report's table and plot."""

import json

import numpy as np

from shardkit.study.attention import attention_of, attention_section
from shardkit.study.preset import load_preset
from shardkit.study.report import write_report
from shardkit.study.stages import plan_study

ROLES = ["sink", "before", "audio", "after"]


def _run(folder, placement, audio_answer: list[float], ids=None):
    """An attention.json as `shardkit attention` writes it, for one placement: per item, the answer's and the
    candidate's shares over layers (audio as given, the rest spread evenly), two layers."""
    ids = ids or [f"synonym:c{k}:m:w" for k in range(len(audio_answer))]
    over = [[[(1 - a) / 3, (1 - a) / 3, a, (1 - a) / 3], [0.25] * 4] for a in audio_answer]
    mean = float(np.mean(audio_answer))
    by_role = {r: {"mean": [mean, mean] if r == "audio" else [0.1, 0.1], "lo": [0, 0], "hi": [1, 1]} for r in ROLES}
    summary = {"n": len(ids), "errors": 0, "layers": [0, 1], "answer": by_role, "candidate": by_role,
               "over_layers": {q: {r: {"mean": mean, "lo": mean - 0.1, "hi": mean + 0.1} for r in ROLES}
                               for q in ("answer", "candidate")},
               "items": {"ids": ids, "clips": [i.split(":")[1] for i in ids], "over_layers": over}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "attention.json").write_text(json.dumps({"roles": ROLES, "placements": {placement: summary}}))
    return folder


def test_plan_adds_one_attention_stage_per_condition_and_renames_nothing():
    plain = plan_study(load_preset("cpu-demo"))
    cfg = load_preset("cpu-demo", {"ablations": {"attention": ["original", "ft-small"]}})
    p = plan_study(cfg)
    assert set(plain.stages) < set(p.stages) and len(p.stages) == len(plain.stages) + 2
    assert list(p.attention) == ["original", "FT-Small"]
    original, small = (p.stages[p.attention[n]] for n in ("original", "FT-Small"))
    assert (original.kind, original.config.placements, small.config.placements) == (
        "attention", ("prepended",), ("interleaved",))
    assert small.inputs["model"] == next(s for s in p.stages.values() if s.kind == "train" and s.name == "FT-Small").id
    assert original.config.n_boot == cfg.eval.n_boot and original.config.position == cfg.eval.position


def test_each_condition_is_paired_with_the_original_on_its_items(tmp_path):
    cfg = load_preset("cpu-demo")
    a = [0.1, 0.2, 0.3, 0.4, 0.2, 0.1]
    b = [0.3, 0.3, 0.5, 0.6, 0.2, 0.4]
    att = attention_of(cfg, {"original": _run(tmp_path / "o", "prepended", a),
                             "FT-Small": _run(tmp_path / "s", "interleaved", b)})
    assert att["conditions"]["FT-Small"]["placement"] == "interleaved"
    (answer, candidate) = att["tests"]
    assert (answer["a"], answer["b"], answer["query"], answer["n"]) == ("original", "FT-Small", "answer", 6)
    assert np.isclose(answer["diffs"]["audio"]["value"], np.mean(b) - np.mean(a))
    assert answer["diffs"]["audio"]["ci"][0] > 0 and answer["mcnemar"]["p_holm"] < 0.05  # every item rose or held
    assert candidate["diffs"]["audio"]["value"] == 0  # the candidate's shares are equal in both
    md = "\n".join(attention_section({"attention": att}))
    assert "| FT-Small | interleaved | " in md and "points (" in md
    # here the sink's share (as every role's, the item mean) is 21.7% prepended and 38.3% interleaved: said
    assert "the answer position gives the sink 21.7% (original) against 38.3% interleaved (FT-Small)" in md
    near = attention_of(cfg, {"original": _run(tmp_path / "o2", "prepended", a),
                              "FT-Small": _run(tmp_path / "s2", "interleaved", [x + 0.05 for x in a])})
    assert "attention sink is" not in "\n".join(attention_section({"attention": near}))  # 5 points apart: not
    assert attention_of(cfg, {}) is None and attention_section({}) == []


def test_the_report_draws_the_attention_plot(tmp_path):
    from tests.study.test_report import make_study

    cfg = load_preset("cpu-demo")
    study = make_study()
    study["attention"] = attention_of(cfg, {"original": _run(tmp_path / "o", "prepended", [0.1, 0.2]),
                                            "zero-shot interleaved": _run(tmp_path / "z", "interleaved", [0.2, 0.3])})
    write_report(tmp_path / "run", study)
    assert (tmp_path / "run" / "plots" / "attention.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Where attention goes" in (tmp_path / "run" / "report.md").read_text()
    del study["attention"]
    write_report(tmp_path / "run", study)
    assert not (tmp_path / "run" / "plots" / "attention.png").exists()  # no stale plot from an earlier report
