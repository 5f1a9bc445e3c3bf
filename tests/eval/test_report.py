"""The human side of a run (eval/report.py): each number of a hand-written results dict lands in the right cell,
formatted as percentages (AUROC as a fraction) with '–' wherever it is undefined, `report.md` holds every table, the
plots are written, and a failing plot costs the plots only, never the report. One test feeds it the results.json that
`build_results` writes for a one-clip run, whose intervals are exact (every replicate is the data)."""

import json
import logging

from shardkit.eval.config import EvalConfig
from shardkit.eval.report import baselines_table, fmt, fmt_mde, main_table, write_report
from shardkit.eval.report import tests_table as paired_tests_table  # as `tests_table`, pytest would collect it
from shardkit.eval.results import build_results

PNG = b"\x89PNG\r\n\x1a\n"


def m(value, lo=None, hi=None):
    return {"value": value, "ci": [lo, hi], "higher_is_better": True}


def results() -> dict:
    """A results.json as the runner writes it, after JSON (undefined numbers are null)."""
    return {
        "config": {"model": "tiny-ltu", "scoring": "yesno", "seed": 3, "n_boot": 200},
        "shard_sha256": "0123456789abcdef" + "f" * 48, "n_items": 9, "n_clips": 3,
        "metrics": {
            "prepended": {
                "hypernym": {"n": 6, "n_error": 1, "precision": m(0.5, 0.25, 0.75), "recall": m(2 / 3),
                             "f1": m(None), "unparsed_rate": m(0.0, 0.0, 0.0), "auroc": m(5 / 9, 0.3, 0.8)},
                "identity": {"n": 3, "n_error": 0, "identity_accuracy_balanced": m(0.75, 0.5, 1.0),
                             "identity_accuracy": m(2 / 3, 1 / 3, 1.0)}},
        },
        "baselines": {
            "hypernym": {"always_yes": {"f1": m(2 / 3, 0.5, 0.8), "accuracy": m(0.5, 0.4, 0.6)},
                         "candidate_prior": {"auroc": m(0.5, 0.4, 0.6)},
                         "candidate_shortness": {"auroc": m(0.625, 0.5, 0.75)},
                         "vs_candidate_prior": {"prepended": {"diff": 0.5, "ci": [0.25, 0.75], "p": 0.004,
                                                              "mde": 0.3}}},
            "identity": {"best_constant": {"answer": "dog", "n_tried": 2, "balanced": 0.5, "micro": 2 / 3}},
        },
        "tests": [
            {"task": "synonym", "a": "prepended", "b": "interleaved",  # cloze: ranked only, no flips
             "diffs": {"auroc": {"value": 0.1, "ci": [-0.05, 0.25], "mde": None}},
             "mcnemar": {"b": None, "c": None, "right_to_wrong": None, "wrong_to_right": None, "n": 6, "p": 0.3,
                         "method": "paired clip bootstrap of AUROC", "p_holm": None}},
            {"task": "hypernym", "a": "prepended", "b": "interleaved",
             "diffs": {"f1": m(3 / 7, 0.1, 0.7), "accuracy": m(0.5, 0.25, 0.75),
                       "auroc": {**m(4 / 9, 0.2, 0.6), "mde": 0.35}},
             "mcnemar": {"right_to_wrong": 0, "wrong_to_right": 3, "p": 0.25, "p_holm": 0.5,
                         "method": "McNemar, exact", "mde_accuracy": 0.4567}},
            {"task": "identity", "a": "prepended", "b": "interleaved",
             "diffs": {"identity_accuracy": m(0.0, -1 / 3, 1 / 3), "identity_accuracy_balanced": m(-0.25, -0.5, 0.0)},
             "mcnemar": {"right_to_wrong": 1, "wrong_to_right": 1, "p": 1.0, "p_holm": 1.0,
                         "method": "sign-flip, exact"}},
        ],
        "conditioned": {"prepended": {"hypernym": {
            "identified": {"accuracy": 0.75, "ci": [0.5, 1.0], "n": 4, "n_clips": 2},
            "not_identified": {"accuracy": None, "ci": [None, None], "n": 0, "n_clips": 0}, "n_unknown": 0}}},
    }


def merged() -> dict:
    """The records behind the plots: scores for the precision–recall curves, words for the heat map."""
    def rec(gold, score, word, correct, error=None):
        return {"gold": gold, "score": score, "word": word, "correct": correct, "error": error}

    return {("prepended", "hypernym"): [rec("yes", 2.0, "dog", True), rec("no", 1.0, "dog", False),
                                        rec("yes", -1.0, "dog", False), rec("no", -0.5, "bell", True),
                                        rec("yes", None, "bell", None, error="audio: missing file")],
            ("prepended", "identity"): [rec("dog", None, "dog", True), rec("bell", None, "bell", False)]}


def test_fmt_writes_percent_or_fraction_with_the_interval_and_a_dash_when_undefined():
    assert fmt({"value": 0.5, "ci": [0.25, 0.755]}) == "50.0 [25.0, 75.5]"
    assert fmt({"value": 0.5, "ci": [0.25, 0.755]}, pct=False) == "0.50 [0.25, 0.76]"
    assert fmt({"value": 0.0, "ci": [0.0, 0.0]}) == "0.0 [0.0, 0.0]"  # zero is a value, not undefined
    assert fmt({"value": -0.25, "ci": [-0.5, 0.0]}) == "-25.0 [-50.0, 0.0]"
    assert fmt({"value": 2 / 3, "ci": [None, None]}) == "66.7"  # an undefined interval (JSON null) is left out
    assert fmt({"value": 2 / 3}) == "66.7"
    assert fmt({"value": None, "ci": [None, None]}) == fmt(None) == fmt({}) == "–"
    assert fmt({"value": float("nan"), "ci": [float("nan"), float("nan")]}) == "–"  # AUROC of one answer only


def test_fmt_mde_writes_points_or_auroc_units_and_a_dash_without_a_design():
    assert fmt_mde(0.1234) == "12.3"
    assert fmt_mde(0.1234, pct=False) == "0.12"
    assert fmt_mde(None) == fmt_mde(float("nan")) == "–"
    assert fmt_mde(0.0) == "0.0"


def test_main_table_puts_each_metric_in_its_column():
    lines = main_table(results()).splitlines()
    assert lines[0] == ("| condition | task | n | errors | precision | recall | f1 | accuracy | auroc | unparsed_rate "
                        "| identity (strict, class-balanced) | identity (strict) | identity (lenient) |")
    assert lines[1] == "|" + "---|" * 13
    assert lines[2] == ("| prepended | hypernym | 6 | 1 | 50.0 [25.0, 75.0] | 66.7 | – | – | 0.56 [0.30, 0.80] | "
                        "0.0 [0.0, 0.0] | – | – | – |")
    assert lines[3] == ("| prepended | identity | 3 | 0 | – | – | – | – | – | – | 75.0 [50.0, 100.0] | "
                        "66.7 [33.3, 100.0] | – |")
    assert len(lines) == 4


def test_baselines_table_lists_what_a_score_must_beat():
    assert baselines_table(results()).splitlines() == [
        "| task | baseline | what it sees | score [95% CI] |", "|---|---|---|---|",
        "| hypernym | always yes | nothing | F1 66.7 [50.0, 80.0], accuracy 50.0 [40.0, 60.0] |",
        "| hypernym | candidate prior | the candidate's yes-rate in this SHARD (in-sample: an upper bound) | "
        "AUROC 0.50 [0.40, 0.60] |",
        "| hypernym | candidate generality | the candidate's WordNet depth | AUROC – |",  # not in results: a dash
        "| hypernym | candidate shortness | the candidate's length | AUROC 0.62 [0.50, 0.75] |",
        "| hypernym | prepended − candidate prior | the model, paired on the same items | ΔAUROC 0.50 [0.25, 0.75], "
        "bootstrap p 0.004, MDE 0.30 |",
        '| identity | best constant answer ("dog", of 2 tried) | nothing | 50.0 class-balanced, 66.7 plain |',
    ]  # synonym has no baselines: no rows


def test_baselines_table_is_only_the_header_without_baselines_or_a_constant_answer():
    r = {**results(), "baselines": {"identity": {"best_constant": {"answer": None}}}}
    assert baselines_table(r).splitlines() == ["| task | baseline | what it sees | score [95% CI] |",
                                               "|---|---|---|---|"]
    assert baselines_table({k: v for k, v in results().items() if k != "baselines"}) == baselines_table(r)


def test_tests_table_writes_each_test_with_dashes_where_it_has_no_flips():
    lines = paired_tests_table(results()).splitlines()
    assert len(lines) == 5
    assert lines[2] == ("| synonym | prepended → interleaved | – | – | 0.10 [-0.05, 0.25] (–) | "
                        "paired clip bootstrap of AUROC | 0.3 | – | – | – | – |")
    assert lines[3] == ("| hypernym | prepended → interleaved | 42.9 [10.0, 70.0] | 50.0 [25.0, 75.0] | "
                        "0.44 [0.20, 0.60] (0.35) | McNemar, exact | 0.25 | 0.5 | 0 | 3 | 45.7 |")
    # identity's accuracy column is the class-balanced headline, not plain accuracy
    assert lines[4] == ("| identity | prepended → interleaved | – | -25.0 [-50.0, 0.0] | – | sign-flip, exact | 1 | 1 "
                        "| 1 | 1 | – |")


def test_write_report_writes_every_table_and_the_plots(tmp_path):
    r = results()
    write_report(tmp_path, r, merged())
    text = (tmp_path / "report.md").read_text()
    assert text.startswith("# SHARD evaluation: tiny-ltu\n")
    assert ("SHARD sha256 `0123456789abcdef…`, scoring `yesno`, conditions prepended, 9 records over 3 clips, "
            "seed 3, 200 clip-clustered bootstrap replicates") in text
    for table in (main_table(r), baselines_table(r), paired_tests_table(r)):
        assert f"\n{table}\n" in text
    assert "## Reasoning accuracy given correct identification of the same clip" in text
    assert "| prepended | hypernym | 75.0 [50.0, 100.0] (4) | – |" in text  # no clip left unidentified: a dash
    for name in ("metrics", "pr", "words"):
        assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:8] == PNG
        assert f"(plots/{name}.png)" in text


def test_write_report_leaves_out_the_conditioned_section_when_there_is_none(tmp_path):
    write_report(tmp_path, {**results(), "conditioned": {}}, merged())
    text = (tmp_path / "report.md").read_text()
    assert "Reasoning accuracy given correct identification" not in text and "## Plots" in text


def test_a_failing_plot_is_logged_and_the_report_is_kept(tmp_path, caplog):
    broken = {k: [{kk: v for kk, v in rec.items() if kk != "word"} for rec in rows] for k, rows in merged().items()}
    with caplog.at_level(logging.WARNING, logger="shardkit.eval.report"):
        write_report(tmp_path, results(), broken)  # the per-word heat map needs each record's word
    assert [rec.getMessage() for rec in caplog.records] == ["plots failed: 'word'"]
    assert (tmp_path / "report.md").read_text().startswith("# SHARD evaluation: tiny-ltu")
    assert not (tmp_path / "plots" / "words.png").exists()


def test_the_report_reads_what_build_results_writes(tmp_path):
    """Four items on one clip: tp 1 (2.0), fp 1 (1.0), fn 1 (−1.0), tn 1 (−2.0), so precision, recall, F1 and
    accuracy are 1/2, and AUROC 3/4 (the positive at −1.0 beats only −2.0)."""
    rows = [{"item_id": f"h{k}", "clip_id": "c1", "task": "hypernym", "word": "dog", "gold": g, "depth": 1,
             "negative_kind": None if g == "yes" else "random", "score": s, "parsed": "yes" if s > 0 else "no",
             "parsed_lenient": None, "correct": (s > 0) == (g == "yes"), "error": None}
            for k, (g, s) in enumerate((("yes", 2.0), ("no", 1.0), ("yes", -1.0), ("no", -2.0)))]
    cfg = EvalConfig(placements=("prepended",), tasks=("hypernym",), audio_controls=(), cascade=False,
                     control=False, n_boot=50)
    res = json.loads(json.dumps(build_results(cfg, {("prepended", "hypernym"): rows}, {"sha256": "ab" * 32}, {})))
    write_report(tmp_path, res, {("prepended", "hypernym"): rows})
    text = (tmp_path / "report.md").read_text()
    assert ("| prepended | hypernym | 4 | 0 | 50.0 [50.0, 50.0] | 50.0 [50.0, 50.0] | 50.0 [50.0, 50.0] | "
            "50.0 [50.0, 50.0] | 0.75 [0.75, 0.75] | 0.0 [0.0, 0.0] | – | – | – |") in text.splitlines()
    assert "## Reasoning accuracy" not in text  # identity was not asked
    assert (tmp_path / "plots" / "pr.png").read_bytes()[:8] == PNG



def test_fmt_diff_signs_a_difference_and_fmt_p_rounds_a_p():
    from shardkit.eval.report import fmt_diff, fmt_n, fmt_p

    assert fmt_diff({"value": 0.125, "ci": [0.05, 0.2]}) == "+12.5 [5.0, 20.0]"
    assert fmt_diff({"value": -0.1, "ci": [-0.2, 0.0]}, pct=False) == "-0.10 [-0.20, 0.00]"
    assert fmt_diff(None) == "–"
    assert (fmt_p(0.0123456), fmt_p(None), fmt_n(3), fmt_n(None)) == ("0.0123", "–", "3", "–")
