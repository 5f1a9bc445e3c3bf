"""`shardkit export` (eval/export.py): a run in lm-eval's and lmms-eval's files, read back the way their code reads
them (file names, "metric,none" keys, per-sample fields and hashes)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shardkit.errors import ShardkitError
from shardkit.eval.export import export_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(shard, tmp_path_factory):
    """A finished eval run's files, written by hand over the built SHARD: two synonym records, one identity."""
    folder, _ = shard
    items = [json.loads(x) for x in (folder / "shard.jsonl").read_text().splitlines()]
    syn = [i for i in items if i["task"] == "synonym"][:2]
    ident = [i for i in items if i["task"] == "identity"][:1]
    out = tmp_path_factory.mktemp("run")
    (out / "samples" / "interleaved").mkdir(parents=True)

    def rec(i, score, parsed, correct, raw=None):
        return {"key": i["id"][:8], "item_id": i["id"], "condition": "interleaved", "task": i["task"],
                "scoring": "yesno", "gold": i["answer"], "candidate": i["candidate"], "prompt": f"is it {i['word']}?",
                "raw": raw, "parsed": parsed, "score": score, "correct": correct}

    (out / "samples" / "interleaved" / "synonym.jsonl").write_text(
        "".join(json.dumps(rec(i, s, p, c)) + "\n" for i, s, p, c in zip(syn, (1.5, -0.5), ("yes", "no"),
                                                                        (True, False), strict=True)))
    (out / "samples" / "interleaved" / "identity.jsonl").write_text(
        json.dumps(rec(ident[0], None, "Dog", False, raw="a dog")) + "\n")
    metrics = {"interleaved": {"synonym": {"n": 2, "f1": {"value": 0.5, "ci": [0.2, 0.6], "higher_is_better": True},
                                           "auroc": {"value": 0.7, "ci": [None, None], "higher_is_better": True}},
                               "identity": {"identity_accuracy": {"value": 0.0, "ci": [0.0, 0.0]}}}}
    (out / "results.json").write_text(json.dumps({
        "config": {"model": "tiny-ltu:ckpt=/runs/ft", "shard": str(folder), "scoring": "yesno", "batch_size": 32,
                   "device": "cpu"}, "shard_sha256": "abc", "metrics": metrics}))
    return out, syn


def test_lm_eval_files_and_fields(run, tmp_path):
    out, syn = run
    files = export_run(out, tmp_path / "x", "lm-eval")
    folder = tmp_path / "x" / "tiny-ltu__ckpt=__runs__ft"
    assert all(f.parent == folder for f in files)
    results = json.loads(files[0].read_text())
    name = "shard_synonym_interleaved"
    assert files[0].name.startswith("results_") and files[0].suffix == ".json"
    samples = next(f for f in files if name in f.name)
    # lm-eval's own parsers (lm_eval/utils.py): task between the first and the last "_", date after the last
    stem = samples.name
    assert stem[stem.find("_") + 1: stem.rfind("_")] == name
    assert stem[stem.rfind("_") + 1:].replace(".jsonl", "") == files[0].stem.removeprefix("results_")
    r = results["results"][name]
    assert r["alias"] == name and r["f1,none"] == 0.5 and r["f1_stderr,none"] == pytest.approx(0.4 / 3.92)
    assert r["auroc_stderr,none"] == "N/A" and "n,none" not in r
    assert results["n-samples"][name] == {"original": 2, "effective": 2} and results["versions"][name] == 1.0
    assert results["higher_is_better"][name] == {"f1": True, "auroc": True}
    assert results["config"]["model_args"] == "tiny-ltu:ckpt=/runs/ft"
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    first = rows[0]
    assert set(first) >= {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash",
                          "prompt_hash", "target_hash"}
    assert first["doc"]["id"] == syn[0]["id"] and Path(first["doc"]["audio"]).is_file()
    assert first["arguments"] == {"gen_args_0": {"arg_0": f"is it {syn[0]['word']}?"}}
    assert first["resps"] == [[1.5]] and first["filtered_resps"] == ["yes"] and first["acc"] == 1.0
    sha = hashlib.sha256
    assert first["doc_hash"] == sha(json.dumps(first["doc"], indent=2, ensure_ascii=False).encode()).hexdigest()
    assert first["target_hash"] == sha(first["target"].encode()).hexdigest()
    want = sha("".join(x["doc_hash"] + x["prompt_hash"] + x["target_hash"] for x in rows).encode()).hexdigest()
    assert results["task_hashes"][name] == want
    ident = json.loads(next(f for f in files if "identity" in f.name).read_text())
    assert ident["resps"] == [["a dog"]] and "input_media" not in ident


def test_lmms_eval_names_and_media(run, tmp_path):
    out, _ = run
    files = export_run(out, tmp_path / "x", "lmms-eval")
    assert files[0].name.endswith("_results.json") and all("_samples_shard_" in f.name for f in files[1:])
    row = json.loads(files[1].read_text().splitlines()[0])
    assert row["input_media"] == [row["doc"]["audio"]]


def test_the_command_and_its_errors(run, tmp_path):
    out, _ = run
    r = subprocess.run([sys.executable, "-m", "shardkit", "export", str(out), "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "wrote" in r.stdout, r.stderr
    with pytest.raises(ShardkitError, match="pass --shard DIR"):
        export_run(out, tmp_path / "y", shard=tmp_path)
    with pytest.raises(ShardkitError, match="choose from lm-eval, lmms-eval"):
        export_run(out, tmp_path / "y", "csv")
