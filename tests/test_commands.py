"""What a subcommand does, run as a user runs it (a subprocess): its exit status, what it prints and writes."""

import json
import os
import subprocess
import sys


def run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "shardkit", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


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
