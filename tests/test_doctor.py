"""`shardkit doctor` as a user runs it: every offline resource found, and a missing one named with its fix."""

import os
import subprocess
import sys


def run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "shardkit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def test_doctor_all_present():
    r = run("doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    for text in ("117,659 synsets", "632 classes", "527-label index", "78 SHARD words", "recordings readable"):
        assert text in r.stdout, text


def test_doctor_names_a_missing_resource_and_its_fix(tmp_path):
    # Shadow the epanns package (which holds the 527-label index) with an empty one, as a broken install would.
    (tmp_path / "epanns").mkdir()
    (tmp_path / "epanns" / "__init__.py").write_text("")
    r = run("doctor", env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert r.returncode == 1
    out = " ".join(r.stdout.split())
    assert "MISSING" in out and "audioset_labels.csv" in out and "requirements-resources.txt" in out
    assert "Traceback" not in r.stdout + r.stderr
