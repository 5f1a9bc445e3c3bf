"""The study plan: stages named by their config hash, so changing one thing reruns only what depends on it."""

from dataclasses import replace

from shardkit.study.preset import load_preset
from shardkit.study.stages import _replay_mix, plan_study
from shardkit.train.config import DEFAULT_MIX


def ids(overrides=None) -> dict[tuple[str, str], str]:
    plan = plan_study(load_preset("cpu-demo", overrides))
    return {(s.kind, s.name): sid for sid, s in plan.stages.items()}


def changed(overrides) -> set[tuple[str, str]]:
    a, b = ids(), ids(overrides)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def test_plan_of_the_demo():
    plan = plan_study(load_preset("cpu-demo"))
    names = [r.name for r in plan.rows]
    assert names[:4] == ["original", "zero-shot interleaved", "FT-Small", "FT-Large"]
    assert {"position=start", "position=end", "replay=0", "control (original)"} <= set(names)
    assert [r.condition for r in plan.rows[:4]] == ["prepended", "interleaved", "interleaved", "interleaved"]
    seen = set()
    for sid, stage in plan.stages.items():  # every input runs before the stage that reads it
        assert all(i is None or i in seen for i in stage.inputs.values()), stage.name
        seen.add(sid)
    assert plan.rows[0].eval != plan.rows[1].eval and list(plan.tunings) == ["stage 0", "FT-Small", "FT-Large",
                                                                               "replay=0"]
    assert ids() == ids()  # deterministic


def test_a_default_written_out_renames_nothing():
    """Stage ids hash the resolved configs, not the preset's words: spelling out a default is the same study."""
    assert ids({"eval": {"limit": None, "tasks": ["synonym", "hypernym", "identity"]},
                "tuning": {"train": {"lora_dropout": 0.05, "max_length": 140}, "data": {"split": "train"}},
                "shard": {"split": "auto"}}) == ids()


def test_one_change_one_branch():
    assert changed({"ablations": {"replay": [0.05]}}) == {("data", "replay=0"), ("train", "replay=0"),
                                                          ("eval", "replay=0"), ("data", "replay=0.05"),
                                                          ("train", "replay=0.05"), ("eval", "replay=0.05")}
    assert changed({"tuning": {"large": 2560}}) == {("data", "FT-Large"), ("train", "FT-Large"),
                                                    ("eval", "FT-Large")}
    assert changed({"ablations": {"position": ["start"]}}) == {("eval", "position=end")}
    evals_only = changed({"eval": {"n_boot": 200}})
    assert evals_only and all(kind == "eval" for kind, _ in evals_only)
    stage0 = changed({"stage0": {"train": {"lr": 0.003}}})  # everything downstream of stage 0, but not SHARD/data
    assert ("train", "stage 0") in stage0 and ("eval", "original") in stage0 and ("train", "FT-Small") in stage0
    assert not any(kind in ("shard", "data") for kind, _ in stage0)


def test_equal_stages_run_once():
    plan = plan_study(load_preset("cpu-demo", {"ablations": {"control": ["original", "zero-shot"]}}))
    controls = [r for r in plan.rows if r.group == "control" and r.condition == "text"]
    assert len(controls) == 2 and controls[0].eval == controls[1].eval  # same model, same questions


def test_replay_mix():
    mix = _replay_mix(DEFAULT_MIX, 0.0)
    assert "replay" not in mix and abs(sum(mix.values()) - 1) < 1e-9
    assert abs(mix["identity"] / mix["synonym"] - 0.3 / 0.25) < 1e-9
    assert abs(_replay_mix(DEFAULT_MIX, 0.2)["replay"] - 0.2) < 1e-9


def test_training_seeds_replicate_the_tunings_and_conditions_only():
    one = plan_study(load_preset("cpu-reasoning", {"train_seeds": [0]}))
    three = plan_study(load_preset("cpu-reasoning", {"train_seeds": [0, 1, 2]}))
    assert list(three.stages)[:len(one.stages)] == list(one.stages)  # seed 0 is the single-seed study, run first
    assert three.rows == one.rows and list(three.replicates) == [1, 2]
    conditions = ["original", "zero-shot interleaved", "FT-Small", "FT-Large", "original · mismatched",
                  "original · silence", "original · cascade", "control (original)"]
    assert all([r.name for r in rows] == conditions for rows in three.replicates.values())
    extra = [s for sid, s in three.stages.items() if sid not in one.stages]
    assert {s.kind for s in extra} == {"train", "eval"}  # the same data and SHARD for every seed
    trains = [s for s in extra if s.kind == "train"]
    assert [s.name for s in trains] == [f"{n} · seed {k}" for k in (1, 2) for n in ("stage 0", "instruct",
                                                                                    "FT-Small", "FT-Large")]
    assert [s.config.seed for s in trains] == [1] * 4 + [2] * 4
    assert all(s.config.seed == 0 for s in extra if s.kind == "eval")  # same mismatch draws, same bootstrap
    instruct = {s.config.seed: sid for sid, s in three.stages.items()
                if s.kind == "train" and s.name.startswith("instruct")}
    for seed, rows in three.replicates.items():  # each seed's conditions stand on that seed's instruct base
        assert all(three.stages[r.eval].inputs["base"] == instruct[seed] for r in rows)


def test_a_lora_rank_ablation_trains_with_its_rank():
    plan = plan_study(load_preset("cpu-demo", {"ablations": {"lora_rank": [4]}}))
    lora = plan.stages[plan.tunings["LoRA r=4"]]
    ft = plan.stages[plan.tunings["FT-Small"]]
    assert (lora.config.lora_r, lora.config.lora_alpha) == (4, 8)
    assert replace(lora.config, lora_r=ft.config.lora_r, lora_alpha=ft.config.lora_alpha) == ft.config
    assert lora.inputs == ft.inputs  # same data, same start: only the rank differs


def test_forgetting_remedies_vary_ft_large_only():
    """EWC retunes FT-Large from the same data and start with a Fisher over a labeling data stage; intruders
    re-reads FT-Large's weights; neither renames a stage of the study without them."""
    assert changed({"ablations": {"ewc": [100], "intruders": [0.5]}}) == {
        ("data", "EWC labeling"), ("train", "FT-Large EWC λ=100"), ("eval", "FT-Large EWC λ=100"),
        ("eval", "FT-Large intruders×0.5")}
    plan = plan_study(load_preset("cpu-demo", {"ablations": {"ewc": [100], "intruders": [0.5]}}))
    ewc, large = plan.stages[plan.tunings["FT-Large EWC λ=100"]], plan.stages[plan.tunings["FT-Large"]]
    assert replace(ewc.config, ewc=0.0) == large.config and ewc.config.ewc == 100.0
    assert {k: v for k, v in ewc.inputs.items() if k != "fisher"} == large.inputs
    kept = plan.stages[ewc.inputs["fisher"]].config
    assert kept.mix["replay"] == 1.0 and kept.size == ewc.config.ewc_samples
    rows = {r.name: r for r in plan.rows}
    cut = plan.stages[rows["FT-Large intruders×0.5"].eval]
    assert cut.config.model == "tiny-ltu:intruders=0.5" and cut.inputs["model"] == plan.tunings["FT-Large"]
    assert rows["FT-Large EWC λ=100"].base == rows["FT-Large intruders×0.5"].base == "FT-Large"
