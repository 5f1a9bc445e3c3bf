"""FT-Large's forgetting and its mitigations (study/forgetting.py): the Pareto front, the table, and the plan of the
weight-space interpolation branch."""

from shardkit.study.forgetting import draw_forgetting, forgetting_section, pareto
from shardkit.study.preset import load_preset
from shardkit.study.stages import plan_study


def test_pareto_front_keeps_what_nothing_beats_on_both():
    pts = {"a": (0.4, 0.5), "b": (0.2, 0.7), "c": (0.3, 0.4), "d": (0.4, 0.5), "e": (0.1, 0.1)}
    assert pareto(pts) == {"a", "b", "d"}  # c loses to a on both; ties do not beat each other


def _row(name, group, base, ident, f1):
    m = {"value": f1, "ci": [f1 - 0.1, f1 + 0.1]}
    return {"name": name, "group": group, "base": base,
            "metrics": {"synonym": {"f1": m, "auroc": {"value": 0.6, "ci": [0.5, 0.7]}},
                        "hypernym": {"f1": m, "auroc": {"value": 0.6, "ci": [0.5, 0.7]}},
                        "identity": {"identity_accuracy_balanced": {"value": ident, "ci": [0, 1]}}}}


def test_the_table_lists_ft_large_its_mitigations_and_the_original():
    rows = [_row("original", "condition", None, 0.4, 0.3), _row("FT-Large", "condition", None, 0.1, 0.6),
            _row("FT-Small", "condition", None, 0.3, 0.2), _row("FT-Large ×0.5", "ablation", "FT-Large", 0.3, 0.5),
            _row("FT-Large ×0.25", "ablation", "FT-Large", 0.05, 0.55), _row("replay=0", "ablation", "FT-Small", 0.5,
                                                                             0.5)]
    md = forgetting_section(rows)
    names = [line.split(" | ")[0][2:] for line in md if line.startswith("| ") and not line.startswith("| row")]
    assert names == ["original", "FT-Large", "FT-Large ×0.5", "FT-Large ×0.25"]  # not FT-Small's ablation
    star = {line.split(" | ")[0][2:]: line.endswith("| ★ |") for line in md if line.startswith("| ")}
    assert star == {"row": False, "original": True, "FT-Large": True, "FT-Large ×0.5": True,
                    "FT-Large ×0.25": False}  # ×0.25 labels and reasons worse than FT-Large itself
    assert forgetting_section(rows[:3]) == []  # no mitigation asked: no section
    assert "![forgetting](plots/forgetting.png)" in md
    assert not any("changed nothing" in line for line in md)
    # a remedy with nothing to act on (no intruder dimensions found) scores FT-Large's scores: the report says so
    same = forgetting_section(rows + [_row("FT-Large intruders×0.5", "ablation", "FT-Large", 0.1, 0.6)])
    assert "FT-Large intruders×0.5: every score and CI above equals FT-Large's, so this remedy changed nothing " \
           "measurable here." in same


def test_the_plot_stars_the_front_and_joins_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [_row("original", "condition", None, 0.4, 0.3), _row("FT-Large", "condition", None, 0.1, 0.6),
            _row("FT-Large ×0.5", "ablation", "FT-Large", 0.3, 0.5), _row("FT-Large ×0.25", "ablation", "FT-Large",
                                                                         0.05, 0.55)]
    fig, ax = plt.subplots()
    assert draw_forgetting(ax, rows)
    stars = [ln for ln in ax.lines if ln.get_marker() == "*"]
    assert sorted(float(ln.get_xdata()[0]) for ln in stars) == [10.0, 30.0, 40.0]  # original, ×0.5, FT-Large
    front = next(ln for ln in ax.lines if ln.get_linestyle() == "--")
    assert list(front.get_xdata()) == [10.0, 30.0, 40.0] and list(front.get_ydata()) == [60.0, 50.0, 30.0]
    plt.close(fig)
    fig, ax = plt.subplots()
    assert not draw_forgetting(ax, rows[:2])  # no mitigation: no plot
    plt.close(fig)


def test_interpolation_evaluates_ft_large_scaled_toward_its_start():
    demo = plan_study(load_preset("cpu-demo"))
    p = plan_study(load_preset("cpu-demo", {"ablations": {"interpolate": [0.25, 0.5]}}))
    assert set(demo.stages) < set(p.stages) and len(p.stages) == len(demo.stages) + 2
    rows = {r.name: r for r in p.rows}
    assert rows["FT-Large ×0.5"].base == "FT-Large" and rows["FT-Large ×0.5"].group == "ablation"
    stage = p.stages[rows["FT-Large ×0.5"].eval]
    train = {s.name: sid for sid, s in p.stages.items() if s.kind == "train"}
    assert stage.config.model == "tiny-ltu:scale=0.5" and stage.inputs["model"] == train["FT-Large"]
    assert stage.inputs["start"] == train["stage 0"]  # cpu-demo tunes from stage 0's projector
    reasoning = plan_study(load_preset("cpu-reasoning", {"ablations": {"interpolate": [0.5]}}))
    r = next(x for x in reasoning.rows if x.name == "FT-Large ×0.5")
    inputs = reasoning.stages[r.eval].inputs
    assert "start" not in inputs and inputs["base"]  # from the instruct base, which holds the projector


def test_a_replay_sweep_retunes_ft_large_with_each_share():
    demo = plan_study(load_preset("cpu-demo"))
    p = plan_study(load_preset("cpu-demo", {"ablations": {"large_replay": [0.3]}}))
    assert set(demo.stages) < set(p.stages) and len(p.stages) == len(demo.stages) + 3  # its data, tuning, eval
    row = next(r for r in p.rows if r.name == "FT-Large replay=0.3")
    assert (row.base, row.group) == ("FT-Large", "ablation")
    train = p.stages[p.tunings["FT-Large replay=0.3"]]
    data = p.stages[train.inputs["data"]].config
    assert data.size == 1280 and abs(data.mix["replay"] - 0.3) < 1e-12 and abs(sum(data.mix.values()) - 1) < 1e-9
    assert [r.name for r in p.rows if r.name.startswith("replay=")] == ["replay=0"]  # FT-Small's stays as it was


def test_a_base_pretrained_interleaved_gets_its_own_four_conditions():
    import pytest

    from shardkit.errors import ShardkitError

    demo = plan_study(load_preset("cpu-demo"))
    p = plan_study(load_preset("cpu-demo", {"ablations": {"pretrain": ["interleaved", "mixed"]}}))
    assert set(demo.stages) < set(p.stages)
    # per base: stage 0's data and tuning, FT-Small and FT-Large tunings, four evaluations (the tuning data is shared)
    assert len(p.stages) == len(demo.stages) + 2 * 8
    rows = {r.name: r for r in p.rows}
    for cond in ("original", "zero-shot interleaved", "FT-Small", "FT-Large"):
        r = rows[f"{cond} · interleaved base"]
        assert (r.base, r.group) == (cond, "ablation")
    s0 = p.stages[p.tunings["stage 0 · interleaved base"]]
    data = p.stages[s0.inputs["data"]].config
    def used(mix):
        return {k: v for k, v in mix.items() if v}

    assert data.placement == "interleaved" and used(data.mix) == {"identity": 1.0}  # every labeling prompt interleaved
    mixed = p.stages[p.stages[p.tunings["stage 0 · mixed base"]].inputs["data"]].config
    assert used(mixed.mix) == {"identity": 0.5, "replay": 0.5}
    small = p.stages[p.tunings["FT-Small · interleaved base"]]
    assert small.inputs["start"] == p.tunings["stage 0 · interleaved base"]
    assert small.inputs["data"] == p.stages[p.tunings["FT-Small"]].inputs["data"]
    other = [n for n in rows if n.endswith(" base")]
    assert len(other) == 8 and not any(w in n for n in other for w in ("mismatched", "cascade", "control"))
    with pytest.raises(ShardkitError, match="ablations.pretrain varies how the base is pre-trained"):
        plan_study(load_preset("ltu-paper", {"model": "ltu:ckpt=/m/ltu.bin,llm=/m/v,merge=1",
                                             "ablations": {"pretrain": ["interleaved"]}}))
