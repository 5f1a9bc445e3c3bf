"""`shardkit attention` (eval/attention.py): clip-bootstrap summaries by hand, and a real run of tiny-ltu over SHARD
items whose numbers add up (every query's weight lands on some role) and whose paired difference is the difference
of the two placements' means."""

import json

import numpy as np
import pytest

from shardkit.errors import ShardkitError
from shardkit.eval.attention import mean_ci
from shardkit.eval.config import AttentionConfig
from shardkit.stats import cluster_bootstrap, weighted_mean


def test_summarise_is_the_mean_with_a_clip_bootstrap_ci_and_skips_nan():
    values = np.array([[0.1, np.nan], [0.3, 0.5], [0.5, 0.7], [0.9, 0.2]])  # [items, 2]
    cluster = np.array([0, 0, 1, 2])
    got = mean_ci(values, cluster, 500, 0)
    assert np.allclose(got["mean"], [0.45, (0.5 + 0.7 + 0.2) / 3])
    lo, hi = cluster_bootstrap(lambda d, w: weighted_mean(d["x"], w), {"x": values[:, 0]}, cluster, 500, 0)
    assert np.isclose(got["lo"][0], lo) and np.isclose(got["hi"][0], hi)  # the same draws as every other CI
    assert got["lo"][1] <= got["mean"][1] <= got["hi"][1]


def test_config_reports_every_problem_in_one_line():
    with pytest.raises(ShardkitError) as e:
        AttentionConfig(placements=("sideways",), tasks=("identity",), position="top", limit=0, dtype="int8")
    msg = str(e.value)
    assert all(x in msg for x in ("'sideways'", "'identity'", "position", "limit", "dtype"))


@pytest.mark.heavy  # 42 s on 2 cores; the study test still measures attention end to end, and the hook ≡ full-map
# tests (tests/models/test_attention.py) stay in the default suite
def test_a_run_over_shard_items(shard, tmp_path):
    from shardkit.eval.attention import measure

    folder, _ = shard
    cfg = AttentionConfig(shard=str(folder), limit=3, n_boot=200, layers=(0, 14, 29))
    ticks = []
    result = measure(cfg, tmp_path, progress=lambda done, total: ticks.append((done, total)))
    assert ticks[-1] == (12, 12)  # 2 tasks × 3 items × 2 placements
    assert json.loads((tmp_path / "attention.json").read_text())["n_items"] == 6
    for p in result["placements"].values():
        assert p["n"] == 6 and p["errors"] == 0 and p["layers"] == [0, 14, 29]
        for q in ("answer", "candidate"):
            total = np.sum([p[q][r]["mean"] for r in result["roles"]], axis=0)  # per layer
            assert np.allclose(total, 1, atol=1e-4)
    assert result["placements"]["prepended"]["answer"]["before"]["mean"] == [0.0, 0.0, 0.0]  # audio first
    diff = result["audio_share_difference"]
    want = (np.array(result["placements"]["interleaved"]["answer"]["audio"]["mean"])
            - np.array(result["placements"]["prepended"]["answer"]["audio"]["mean"]))
    assert (diff["a"], diff["b"], diff["n"]) == ("prepended", "interleaved", 6)
    assert np.allclose(diff["answer"]["mean"], want, atol=1e-6)
    assert (tmp_path / "plots" / "audio_by_layer.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "plots" / "roles.png").read_bytes()[:4] == b"\x89PNG"
