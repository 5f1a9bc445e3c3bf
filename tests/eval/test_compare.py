"""`shardkit compare RUN_A RUN_B` (eval/compare.py): two finished runs read from disk, paired item by item, tested
B − A with flip counts in the right direction and Holm across the family, and refused with a one-line error where
the items cannot be paired. Every item of the written runs sits on one clip, so each bootstrap replicate is the
data itself and the intervals in the table are exact."""

import json

import pytest

from shardkit.errors import ShardkitError
from shardkit.eval.compare import compare_runs, load_run, paired_test

SHA = "ab" * 32


def yes_no(item_id, gold, parsed, clip="c1", task="synonym", score=None):
    return {"item_id": item_id, "clip_id": clip, "task": task, "word": "dog", "gold": gold, "parsed": parsed,
            "parsed_lenient": parsed, "score": score, "correct": parsed == gold, "error": None}


def named(item_id, word, correct, clip="c1", **ways):
    return {"item_id": item_id, "clip_id": clip, "task": "identity", "word": word, "correct": correct,
            "error": None, **ways}


def write_run(run, samples: dict, scoring="yesno", sha=SHA):
    """A finished run folder as `shardkit eval` leaves it: results.json and samples/<condition>/<task>.jsonl."""
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"shard_sha256": sha, "config": {"scoring": scoring}}))
    for (cond, task), rows in samples.items():
        f = run / "samples" / cond / f"{task}.jsonl"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


GOLD = ("yes", "no", "yes", "no", "yes", "no")


def run_a_samples():
    """A: synonym right on s1 only (tp 1, fp 3, fn 2: F1 2/7, accuracy 1/6); identity names dog, not bell."""
    answers = ("yes", "yes", "no", "yes", "no", "yes")
    synonym = [yes_no(f"s{k}", g, p) for k, (g, p) in enumerate(zip(GOLD, answers, strict=True), 1)]
    return {("prepended", "synonym"): synonym,
            ("prepended", "identity"): [named("i1", "dog", True), named("i2", "bell", False)]}


def run_b_samples():
    """B: every answer right; plus a task A never ran, which has nothing to pair with."""
    return {("prepended", "synonym"): [yes_no(f"s{k}", g, g) for k, g in enumerate(GOLD, 1)],
            ("prepended", "identity"): [named("i1", "dog", True), named("i2", "bell", True)],
            ("prepended", "hypernym"): [yes_no("h1", "yes", "yes", task="hypernym")]}


def test_load_run_reads_results_and_merged_records_but_not_part_files(tmp_path):
    rows = [yes_no("s1", "yes", "yes"), yes_no("s2", "no", None)]
    run = write_run(tmp_path / "run", {("prepended", "synonym"): rows})
    part = run / "samples" / "interleaved" / "synonym.part0.jsonl"  # a process's unmerged part: not a result
    part.parent.mkdir()
    part.write_text(json.dumps(yes_no("s9", "yes", "no")) + "\n")
    results, merged = load_run(run)
    assert results == {"shard_sha256": SHA, "config": {"scoring": "yesno"}}
    assert merged == {("prepended", "synonym"): rows}


def test_load_run_refuses_an_unfinished_run_in_one_line(tmp_path):
    (tmp_path / "run" / "samples").mkdir(parents=True)
    with pytest.raises(ShardkitError, match=r"run: no results\.json \(is the run finished\? rerun its `shardkit "
                                            r"eval` to resume\)") as e:
        load_run(tmp_path / "run")
    assert "\n" not in str(e.value)


def test_paired_test_pairs_by_item_id_and_counts_flips_from_a_to_b():
    # A right on a1, a4; B right on a1, a2, a3 (and lists them in another order, with an item A never asked)
    a = [yes_no("a1", "yes", "yes"), yes_no("a2", "no", "yes", clip="c2"), yes_no("a3", "yes", "no", clip="c2"),
         yes_no("a4", "no", "no", clip="c3"), yes_no("a5", "yes", "no", clip="c3")]
    b = [yes_no("x9", "yes", "no", clip="c9"), yes_no("a4", "no", "yes", clip="c3"),
         yes_no("a3", "yes", "yes", clip="c2"), yes_no("a2", "no", "no", clip="c2"), yes_no("a1", "yes", "yes")]
    t = paired_test(a, b, "synonym", False, False, n_boot=200)
    assert (t["task"], t["n"], t["n_error"]) == ("synonym", 4, 0)  # a5 and x9 have no partner
    m = t["mcnemar"]
    assert (m["right_to_wrong"], m["wrong_to_right"], m["method"]) == (1, 2, "McNemar, exact")
    assert m["p"] == pytest.approx(1.0)  # 1 vs 2 discordant: two-sided binomial p = 1
    # accuracy 2/4 → 3/4; F1: A tp 1, fp 1, fn 1 (1/2), B tp 2, fp 1, fn 0 (4/5)
    assert t["diffs"]["accuracy"]["value"] == pytest.approx(0.25)
    assert t["diffs"]["f1"]["value"] == pytest.approx(0.3)
    assert set(t["diffs"]) == {"precision", "recall", "f1", "accuracy", "unparsed_rate"}  # no scores, no AUROC


def test_paired_test_is_none_without_a_common_item():
    assert paired_test([yes_no("a1", "yes", "yes")], [yes_no("b1", "yes", "yes")], "synonym", False, False) is None


def test_paired_identity_uses_the_balanced_sign_flip_or_mcnemar_on_another_verdict():
    a = [named("i1", "dog", True, correct_string=True), named("i2", "bell", False, clip="c2", correct_string=False),
         named("i3", "bell", False, clip="c3", correct_string=False)]
    b = [named("i1", "dog", True, correct_string=False), named("i2", "bell", True, clip="c2", correct_string=True),
         named("i3", "bell", True, clip="c3", correct_string=True)]
    strict = paired_test(a, b, "identity", False, False, n_boot=200)
    # both gains are bell's (weight 1/2 each): |±½ ± ½| reaches 1 in 2 of 4 sign patterns
    assert (strict["mcnemar"]["method"], strict["mcnemar"]["p"]) == ("sign-flip, exact", 0.5)
    assert strict["diffs"]["identity_accuracy_balanced"]["value"] == pytest.approx(0.5)  # (1 + 0)/2 → (1 + 1)/2
    string = paired_test(a, b, "identity", False, False, n_boot=200, identity_key="correct_string")
    m = string["mcnemar"]
    assert (m["method"], m["right_to_wrong"], m["wrong_to_right"]) == ("McNemar, exact", 1, 2)


def test_paired_yes_no_refuses_cloze_scores_against_decisions():
    a = [yes_no("a1", "yes", None, score=1.0), yes_no("a2", "no", None, score=-1.0)]
    b = [yes_no("a1", "yes", "yes", score=1.0), yes_no("a2", "no", "no", score=-1.0)]
    with pytest.raises(ShardkitError, match=r"^synonym: one condition has yes/no decisions and the other only scores "
                                            r"\(cloze\); compare runs of the same scoring$"):
        paired_test(a, b, "synonym", True, False)


def test_compare_runs_writes_the_holm_corrected_table_and_json(tmp_path):
    run_a = write_run(tmp_path / "A", run_a_samples())
    run_b = write_run(tmp_path / "B", run_b_samples())
    table = compare_runs(run_a, run_b, n_boot=200)
    # synonym: 5 wrong → right, exact p = 2 · 0.5⁵; identity: one gain, p 1. Holm: 2 · 0.0625, then max(1, ·)
    assert table.splitlines() == [
        f"# {run_b} (B) vs {run_a} (A)", "",
        "| condition | task | n | ΔF1 [CI] | Δaccuracy [CI] | McNemar p | Holm p | right→wrong | wrong→right |",
        "|---|---|---|---|---|---|---|---|---|",
        "| prepended | identity | 2 | – | 50.0 [50.0, 50.0] | 1 | 1 | 0 | 1 |",
        "| prepended | synonym | 6 | 71.4 [71.4, 71.4] | 83.3 [83.3, 83.3] | 0.0625 | 0.125 | 0 | 5 |",
    ]
    written = json.loads((run_b / "compare_A.json").read_text())
    assert [(t["condition"], t["task"]) for t in written] == [("prepended", "identity"), ("prepended", "synonym")]
    assert [t["mcnemar"]["p_holm"] for t in written] == pytest.approx([1.0, 0.125])
    assert written[1]["diffs"]["f1"]["value"] == pytest.approx(5 / 7)


def test_compare_runs_flags_mixed_scoring_kinds_in_the_heading(tmp_path):
    run_a = write_run(tmp_path / "A", {("prepended", "identity"): run_a_samples()[("prepended", "identity")]},
                      scoring="cloze")
    run_b = write_run(tmp_path / "B", run_b_samples())
    heading = compare_runs(run_a, run_b, n_boot=200).splitlines()[0]
    assert heading == f"# {run_b} (B) vs {run_a} (A) — mixed scoring kinds!"


def test_compare_runs_refuses_runs_of_different_shard_builds(tmp_path):
    run_a = write_run(tmp_path / "A", run_a_samples())
    run_b = write_run(tmp_path / "B", run_b_samples(), sha="cd" * 32)
    with pytest.raises(ShardkitError, match=r"were evaluated on different SHARD builds: items cannot be paired$"):
        compare_runs(run_a, run_b)
    assert not (run_b / "compare_A.json").exists()


def test_compare_runs_refuses_runs_with_nothing_in_common(tmp_path):
    run_a = write_run(tmp_path / "A", {("interleaved", "synonym"): [yes_no("s1", "yes", "yes")],
                                       ("prepended", "synonym"): [yes_no("old", "yes", "yes")]})
    run_b = write_run(tmp_path / "B", run_b_samples())  # interleaved never ran in B; prepended shares no item
    with pytest.raises(ShardkitError, match=r"share no condition × task with common items$"):
        compare_runs(run_a, run_b)
