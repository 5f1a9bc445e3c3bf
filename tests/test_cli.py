"""The command as a user runs it: a subprocess, its exit status, and what it prints."""

import json
import os
import subprocess
import sys


def run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "shardkit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def test_help_lists_commands():
    r = run("--help")
    assert r.returncode == 0 and "build" in r.stdout and "doctor" in r.stdout
    r = run("build", "--help")
    assert r.returncode == 0 and "--manifest" in r.stdout and "--audio-root" in r.stdout and "default: 0" in r.stdout


def test_build_error_is_one_line(tmp_path):
    bad = tmp_path / "clips.jsonl"
    bad.write_text('{"id": "a", "path": "a.wav", "labels": ["/m/unknown"]}\n')
    r = run("build", "--out", str(tmp_path / "out"), "--manifest", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shardkit build: error:") and f"{bad}:1:" in lines[0]


def test_build_prints_summary_and_writes_outputs(tmp_path):
    r = run("build", "--out", str(tmp_path / "s"), "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "synonym" in r.stdout and "hypernym" in r.stdout and "sha256" in r.stdout
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["seed"] == 3 and meta["sha256"] in r.stdout


def test_bad_senses_file_is_one_line_with_file_and_line(tmp_path):
    senses = tmp_path / "senses.tsv"
    senses.write_text("mid\tdisplay_name\tsynset\treason\n/m/0bt9lr\tDog\tdog.n.42\tno such sense\n")
    r = run("build", "--out", str(tmp_path / "out"), "--senses", str(senses))
    assert r.returncode == 2
    assert r.stderr.strip() == (f"shardkit build: error: {senses}:2: synset 'dog.n.42' does not exist in WordNet 3.0")


def test_training_hint_names_the_spec_that_loads_its_output():
    """The line `shardkit train` ends with must be a spec the family accepts, its other options kept."""
    from shardkit.models.registry import parse_spec, trained_spec

    assert trained_spec("tiny-ltu:ckpt=runs/stage0", "runs/ft") == "tiny-ltu:ckpt=runs/ft"
    spec = trained_spec("ltu:ckpt=/m/ltu.bin,llm=/m/vicuna,merge=1", "runs/ft")
    assert spec == "ltu:ckpt=/m/ltu.bin,llm=/m/vicuna,merge=1,tuned=runs/ft"
    assert parse_spec(spec)[1]["tuned"] == "runs/ft"
