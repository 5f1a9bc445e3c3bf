"""Benchmark scripts stay runnable: each runs at its smallest size here, ceilings under `make test-all` (speed is
measured, not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def run_module(name: str, tmp_path: Path, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--results", str(tmp_path), *args],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((tmp_path / f"{name}.json").read_text())


@pytest.mark.heavy  # 43 s on 2 cores; `make bench` runs it in full, `make test-all` at its smallest
def test_eval_throughput_smallest(tmp_path):
    result = run_module("eval_throughput", tmp_path, "--items", "4", "--cloze-items", "2", "--rounds", "1",
                        "--max-new-tokens", "2")
    runs = result["runs"]
    assert runs["LTU-style loop"]["encoder_runs"] == 4  # the baseline re-runs the front end per question
    assert runs["shardkit yesno"]["encoder_runs"] == result["clips"] < 4  # shardkit: once per clip
    assert all(r["items_per_s"] > 0 for n, r in runs.items() if "cloze" not in n)
    assert result["cloze_prompts"] == 2 and result["cloze_candidates"] > 2 and result["cloze_reuse_speedup"] > 0
    cloze = ("shardkit cloze (identity)", "shardkit cloze, no prefix reuse")
    assert all(runs[n]["candidates_per_s"] > 0 for n in cloze)


@pytest.mark.heavy  # 29 s on 2 cores; `make bench` runs it in full, `make test-all` at its smallest
def test_limit_smallest(tmp_path):
    result = run_module("limit", tmp_path, "--batch-sizes", "2", "--prompts", "4", "--repeat", "1")
    shared, whole = result["runs"]["shared prefix, batch 2"], result["runs"]["whole prompts, batch 2"]
    assert 0 < shared["gflop_per_item"] < whole["gflop_per_item"]  # the reuse saves work, measurably
    assert 0 < whole["fraction_of_peak"] < 2 and result["best_peak_gflops"] > 0


@pytest.mark.heavy  # 60 s on 2 cores; `make bench` runs it in full, `make test-all` at its smallest
def test_train_step_smallest(tmp_path):
    result = run_module("train_step", tmp_path, "--steps", "1", "--batch-size", "4", "--samples", "64")
    plain, grouped = result["runs"]["random batches"], result["runs"]["length-grouped"]
    assert grouped["epoch_padding"] < plain["epoch_padding"]  # text and audio questions differ in length
    assert 0 < grouped["useful_gflops"] <= grouped["gflops"] and result["peak_rss_mb"] > 100
    assert result["runs"]["length-grouped, LoRA dropout off"]["padding"] == grouped["padding"]  # the same batches


@pytest.mark.heavy  # four short trainings and the weights' floor; `make bench` runs it with 64 samples
def test_train_memory_smallest(tmp_path):
    result = run_module("train_memory", tmp_path, "--samples", "8", "--batch-size", "4")
    runs = result["runs"]
    assert len(runs) == 4 and all(r["peak_rss_mb"] > result["floor_mb"] > 300 for r in runs.values())


def test_make_data_smallest(tmp_path):
    result = run_module("make_data", tmp_path, "--size", "200")
    assert result["samples"] == 200  # the fresh process wrote every sample asked for
    assert result["peak_rss_mb"] > 50 and result["disk_mb"] > 0


@pytest.mark.heavy  # about 3 minutes on 2 cores even at its smallest (SmolLM2 over every SHARD question): test-all
def test_ceilings_smallest(tmp_path):
    """The bundled animals are single recordings, all in the test split: no tuned tiny-ltu can name them."""
    result = run_module("ceilings", tmp_path, "--n-train", "64", "--layers", "20")
    ident = result["identity"]
    assert ident["covered"] < ident["items"] and "Dog" in ident["classes_without_train_clip"]
    assert 0 < ident["best_constant_strict"] < ident["covered"] / ident["items"]
    probe = ident["probe_l2=0.01"]
    assert 0 <= probe["strict_balanced"] <= ident["covered_balanced"]  # a probe names only classes it was fitted on
    assert set(result["reasoning"]) == {"train_questions", "subjects", "synonym/layer20", "hypernym/layer20"}
