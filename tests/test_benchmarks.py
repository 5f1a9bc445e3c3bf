"""Benchmark scripts stay runnable: each runs at its smallest size here (speed is measured, not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_smoke_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "smoke.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_smoke.py"), "--size", "tiny", "--device",
                        "cpu", "--dtype", "float32", "--batch-size", "4", "--new-tokens", "4", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["new_tokens"] == [4, 4] and result["clips"] == 5
    assert result["batched_vs_alone_max_abs_logodds_diff"] < 1e-4
