"""The pre-training comparison (study/pretrain.py): each condition from the prepended base beside the same condition
from each re-pre-trained base, with the paired difference and Holm p of the ablation tests."""

from shardkit.study.pretrain import pretrain_finding, pretrain_section


def _row(name, group="condition", base=None, f1=0.5):
    m = {"value": f1, "ci": [f1 - 0.1, f1 + 0.1]}
    return {"name": name, "group": group, "base": base,
            "metrics": {"synonym": {"f1": m, "auroc": {"value": 0.6, "ci": [0.5, 0.7]}},
                        "hypernym": {"f1": m, "auroc": {"value": 0.7, "ci": [0.6, 0.8]}},
                        "identity": {"identity_accuracy_balanced": {"value": 0.3, "ci": [0.2, 0.4]}}}}


def test_each_condition_beside_its_counterpart_from_each_base():
    rows = [_row("original"), _row("FT-Large", f1=0.6), _row("replay=0", "ablation", "FT-Small"),
            _row("original · interleaved base", "ablation", "original", 0.7),
            _row("FT-Large · interleaved base", "ablation", "FT-Large", 0.4),
            _row("original · mixed base", "ablation", "original", 0.55)]
    tests = [{"a": "original", "b": "original · interleaved base", "task": "synonym",
              "diffs": {"f1": {"value": 0.2, "ci": [0.05, 0.35]}}, "mcnemar": {"p_holm": 0.012}},
             {"a": "FT-Large", "b": "FT-Large · interleaved base", "task": "identity",
              "diffs": {"identity_accuracy_balanced": {"value": -0.1, "ci": [-0.2, 0.0]}}, "mcnemar": {"p_holm": 0.5}}]
    md = pretrain_section(rows, tests)
    body = [line for line in md if line.startswith("| ") and not line.startswith("| condition")]
    assert [line.split(" | ")[:2] for line in body] == [
        ["| original", "prepended"], ["| original", "interleaved"], ["| original", "mixed"],
        ["| FT-Large", "prepended"], ["| FT-Large", "interleaved"]]  # replay=0 is no pre-training row
    assert "+20.0 [5.0, 35.0] (0.012)" in body[1] and "-10.0 [-20.0, 0.0] (0.5)" in body[4]
    assert body[0].endswith("| – | – | – |")  # the prepended base is what the others are measured against
    assert pretrain_section(rows[:3], tests) == []  # no ablations.pretrain: no section


def test_the_headline_line_counts_where_each_base_names_more_and_reasons_above_chance():
    rows = [_row("original"), _row("FT-Large"),
            _row("original · interleaved base", "ablation", "original"),
            _row("FT-Large · interleaved base", "ablation", "FT-Large"),
            _row("original · mixed base", "ablation", "original")]
    def identity(a, b, value, p):
        return {"a": a, "b": b, "task": "identity", "mcnemar": {"p_holm": p},
                "diffs": {"identity_accuracy_balanced": {"value": value, "ci": [value - 0.1, value + 0.1]}}}

    tests = [identity("original", "original · interleaved base", -0.3, 0.001),
             identity("FT-Large", "FT-Large · interleaved base", 0.3, 0.001),
             identity("original", "original · mixed base", 0.05, 0.4)]  # not significant: not counted
    line = pretrain_finding(rows, tests)
    assert ("from the interleaved base, FT-Large names more and original less; 2 of its 4 reasoning AUROCs exceed "
            "0.5 outside their CI; from the mixed base, no condition names more; 1 of its 2") in line
    assert pretrain_finding(rows[:2], tests) is None
