"""The study's plots (study/plots.py): the precision–recall curve drawn from every item's score, and a row's metric
lookup. The PNGs themselves are checked through write_report in test_report.py."""

import numpy as np

from shardkit.study.plots import pr_curve, row_metric


def test_pr_curve():
    recall, precision = pr_curve([True, False, True, True], [0.9, 0.8, None, -1.0])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(precision, [1.0, 0.5, 2 / 3])


def test_metric_is_none_where_not_measured():
    row = {"metrics": {"synonym": {"f1": {"value": 0.5}, "auroc": {"value": None}}}}
    assert row_metric(row, "synonym", "f1") == {"value": 0.5}
    assert row_metric(row, "synonym", "auroc") is None and row_metric(row, "identity", "f1") is None
    assert row_metric({}, "x", "y") is None
