"""Study presets: the shipped ones load, say what the issue asks of them, and every problem is reported at once."""

import pytest

from shardkit.errors import ShardkitError
from shardkit.study.preset import load_preset, merge, parse_sets, preset_names


def test_shipped_presets():
    assert {"cpu-demo", "ltu-paper"} <= set(preset_names())
    demo = load_preset("cpu-demo")
    assert demo.model == "tiny-ltu" and demo.device == "cpu" and demo.stage0 is not None
    assert demo.large >= 10 * demo.small  # FT-Large at least 10× FT-Small, as the paper's 1M vs 40K
    assert demo.ablations.position and demo.ablations.replay and demo.ablations.control
    paper = load_preset("ltu-paper", {"model": "ltu:ckpt=/m/ltu.bin,llm=/m/vicuna,merge=1"})
    assert (paper.small, paper.large) == (40_000, 1_000_000) and paper.stage0 is None
    assert paper.ablations.lora_rank == (4, 16, 32) and paper.ablations.cue
    assert paper.tuning.train.lora_r == 8 and paper.tuning.train.lora_alpha == 16


def test_reasoning_preset_is_the_demo_with_an_instruct_base():
    """cpu-reasoning changes nothing of cpu-demo but the instruct stage, the training seeds, the attention branch and
    FT-Large's forgetting remedies; the instruct stage with the recipe under which SmolLM2 learnt to answer held-out
    relation questions while still naming clips: every linear layer, the answer's loss only, 600 steps, prepended
    audio, 30% of them labeling."""
    from dataclasses import replace

    demo, reasoning = load_preset("cpu-demo"), load_preset("cpu-reasoning")
    assert demo.instruct is None and reasoning.instruct is not None
    differ = ("name", "description", "instruct", "train_seeds", "ablations", "bases")
    assert {k: v for k, v in vars(reasoning).items() if k not in differ} == \
        {k: v for k, v in vars(demo).items() if k not in differ}
    assert reasoning.ablations == replace(demo.ablations, attention=("original", "zero-shot", "ft-small", "ft-large"),
                                          interpolate=(0.25, 0.5, 0.75), large_replay=(0.3,), intruders=(0.75, 0.25),
                                          ewc=(1000.0,))
    assert demo.seeds == (0,) and reasoning.seeds == (0, 1, 2)
    train, data = reasoning.instruct.train, reasoning.instruct.data
    assert not train.train_on_prompt and len(train.lora_targets) == 7
    assert data.placement == "prepended" and data.size // train.batch_size == 600
    assert data.mix["replay"] == 0.3 and abs(sum(data.mix.values()) - 1) < 1e-9


def test_mechanism_preset_is_reasonings_first_seed_with_every_branch():
    """cpu-mechanism = cpu-reasoning's seed 0 plus the pre-training branches; its seed-0 stages are cpu-reasoning's,
    so it resumes a cpu-reasoning run folder."""
    from dataclasses import replace

    from shardkit.study.stages import plan_study

    reasoning, mechanism = load_preset("cpu-reasoning"), load_preset("cpu-mechanism")
    differ = ("name", "description", "train_seeds", "ablations", "bases")
    assert {k: v for k, v in vars(mechanism).items() if k not in differ} == \
        {k: v for k, v in vars(reasoning).items() if k not in differ}
    assert mechanism.seeds == (0,) and mechanism.ablations == replace(reasoning.ablations,
                                                                      pretrain=("interleaved", "mixed"))
    first = plan_study(load_preset("cpu-reasoning", {"train_seeds": [0]})).stages
    assert set(first) < set(plan_study(mechanism).stages)


def test_paper_preset_needs_the_model():
    with pytest.raises(ShardkitError, match=r"preset ltu-paper: model: give the base model spec"):
        load_preset("ltu-paper")


def test_every_problem_at_once():
    bad = {"tuning": {"smal": 3, "train": {"lora_rr": 3, "model": "x"}}, "eval": {"scoring": "foo", "shard": "s"},
           "ablations": {"condition": "ft", "positon": ["start"]}, "shard": {"per_task": 0}, "train_seeds": [0, 0]}
    with pytest.raises(ShardkitError) as e:
        load_preset("cpu-demo", bad)
    msg = str(e.value)
    for part in ("tuning: unknown key 'smal' (did you mean 'small'?)", "tuning.train.model: set by the study",
                 "tuning.train: unknown key 'lora_rr' (did you mean 'lora_r'?)", "scoring must be one of",
                 "eval.shard: set by", "ablations: unknown key 'positon' (did you mean 'position'?)",
                 "ablations: unknown key 'positon' (did you mean 'position'?); condition='ft'",
                 "per_task must be >= 1", "train_seeds=[0, 0]: a list of distinct integers"):
        assert part in msg, part
    assert "\n" not in msg


def test_a_typo_in_the_shard_or_eval_section_is_named_with_a_suggestion():
    with pytest.raises(ShardkitError) as e:
        load_preset("cpu-demo", {"eval": {"scorng": "yesno"}, "shard": {"per_tsk": 3}})
    msg = str(e.value)
    assert "eval: unknown key 'scorng' (did you mean 'scoring'?)" in msg
    assert "shard: unknown key 'per_tsk' (did you mean 'per_task'?)" in msg and "unexpected keyword" not in msg


def test_ablations_must_fit_their_condition():
    with pytest.raises(ShardkitError, match="position and cue ablations need an interleaved condition"):
        load_preset("cpu-demo", {"ablations": {"condition": "original", "replay": []}})
    with pytest.raises(ShardkitError, match="replay and lora_rank retrain a tuning"):
        load_preset("cpu-demo", {"ablations": {"condition": "zero-shot", "position": []}})


def test_base_chain_and_sets(tmp_path):
    (tmp_path / "mine.yaml").write_text("base: cpu-demo\nname: mine\ntuning: {large: 2560}\n")
    cfg = load_preset(str(tmp_path / "mine.yaml"), parse_sets(["ablations.lora_rank=[4, 16]", "eval.limit=5"]))
    assert cfg.name == "mine" and cfg.large == 2560 and cfg.small == 128  # merged under the base
    assert cfg.ablations.lora_rank == (4, 16) and cfg.eval.limit == 5 and cfg.eval.scoring == "yesno"
    (tmp_path / "loop.yaml").write_text(f"base: {tmp_path / 'loop.yaml'}\nname: loop\n")
    with pytest.raises(ShardkitError, match="base chain loops"):
        load_preset(str(tmp_path / "loop.yaml"))
    with pytest.raises(ShardkitError, match="did you mean 'cpu-demo'"):
        load_preset("cpu-dem")
    with pytest.raises(ShardkitError, match="expected section.key=value"):
        parse_sets(["tuning.large"])
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


def test_cli_plan_and_one_line_errors(tmp_path):
    import subprocess
    import sys

    run = [sys.executable, "-m", "shardkit", "study", "--out", str(tmp_path / "run")]
    r = subprocess.run([*run, "--preset", "cpu-demo", "--plan"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "FT-Large" in r.stdout and "to run" in r.stdout and not (tmp_path / "run").exists()
    r = subprocess.run([*run, "--preset", "cpu-demo", "--set", "tuning.large=oops"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tuning.large='oops'" in r.stderr


def test_tuning_never_takes_shards_clips():
    """The review's leakage path: with only shard.manifest set, tuning used to fill its data from SHARD's manifest."""
    spec = {"model": "ltu:ckpt=/m/ltu.bin,llm=/m/vicuna,merge=1", "shard": {"manifest": "/d/eval_segments.csv"}}
    with pytest.raises(ShardkitError, match="tuning.data.manifest: SHARD is built from shard.manifest"):
        load_preset("ltu-paper", spec)
    own = load_preset("ltu-paper", merge(spec, {"tuning": {"data": {"manifest": "/d/balanced_train.csv"}}}))
    from shardkit.study.stages import plan_study

    plan = plan_study(own)
    shard = next(sid for sid, st in plan.stages.items() if st.kind == "shard")
    data = [st for st in plan.stages.values() if st.kind == "data"]
    assert data and all(st.clips.manifest == "/d/balanced_train.csv" for st in data)
    assert all(st.inputs["shard"] == shard for st in data)  # make-data leaves SHARD's clips out


def test_an_instruct_stage_is_merged_into_every_condition():
    """`instruct:` trains after stage 0 and becomes the base: conditions evaluate base=INSTRUCT, tunings start from
    it with a fresh LoRA (no ckpt= start), and the audio controls ride in their condition's own evaluation."""
    from shardkit.study.stages import plan_study

    cfg = load_preset("cpu-demo", {"instruct": {"data": {"size": 64, "placement": "prepended",
                                                         "mix": {"replay": 0.5, "hypernym_text": 0.5}},
                                                "train": {"mode": "projector+lora"}},
                                   "ablations": {"audio_control": ["original"]}})
    plan = plan_study(cfg)
    stage0, instruct = plan.tunings["stage 0"], plan.tunings["instruct"]
    assert plan.stages[instruct].inputs == {"data": plan.stages[instruct].inputs["data"], "start": stage0}
    for name in ("FT-Small", "FT-Large"):
        assert plan.stages[plan.tunings[name]].inputs["base"] == instruct
        assert plan.stages[plan.tunings[name]].inputs["start"] is None
    rows = {r.name: r for r in plan.rows}
    assert plan.stages[rows["original"].eval].inputs == {"shard": plan.stages[rows["original"].eval].inputs["shard"],
                                                         "model": None, "base": instruct}
    assert rows["original · mismatched"].eval == rows["original"].eval
    assert rows["original · mismatched"].condition == "prepended-mismatched"
    assert plan.stages[rows["original"].eval].config.audio_controls == ("mismatched", "silence")
    assert plan.stages[rows["zero-shot interleaved"].eval].config.audio_controls == ()
    with pytest.raises(ShardkitError, match="instruct: ltu cannot take a merged base"):
        load_preset("ltu-paper", {"model": "ltu:ckpt=/m/ltu.bin,llm=/m/vicuna", "instruct": {"data": {}}})
    with pytest.raises(ShardkitError, match="ablations: audio_control: 'orignal' is not one of"):
        load_preset("cpu-demo", {"ablations": {"audio_control": ["orignal"]}})
