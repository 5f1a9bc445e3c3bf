"""`shardkit eval` as a user runs it: the run directory, kill-and-resume, and two processes ≡ one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shardkit.errors import ShardkitError
from shardkit.eval.config import EvalConfig
from shardkit.eval.controls import own_label
from shardkit.eval.runner import plan_cascade, run_eval
from shardkit.eval.scoring import PromptStyle, make_request, parse_yes_no
from shardkit.models.adapter import AudioRef

ROOT = Path(__file__).resolve().parents[2]
# Bytes are equal at equal threads per process: BLAS may sum in another order with another thread count (the
# last digits of a score), and `accelerate launch` gives each process one thread unless told otherwise.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}
# Small enough for the four runs of this file to stay short: 4 items a task, 6 identity tokens (a label), one audio
# control (silence is asked in the micro study, tests/study/test_runner.py)
ARGS = ["--limit", "4", "--n-boot", "100", "--batch-size", "1", "--tasks", "synonym,hypernym,identity",
        "--max-new-tokens", "6", "--audio-controls", "mismatched"]


def eval_cmd(shard, out, *extra):
    return [sys.executable, "-m", "shardkit", "eval", "--shard", str(shard), "--out", str(out), *ARGS, *extra]


@pytest.fixture(scope="module")
def reference(shard, tmp_path_factory):
    """An uninterrupted run: the yardstick for resume and for two processes."""
    out = tmp_path_factory.mktemp("ref") / "run"
    r = subprocess.run(eval_cmd(shard[0], out), capture_output=True, text=True, timeout=600, cwd=ROOT, env=ONE_THREAD)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def samples(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted((run / "samples").glob("*/*.jsonl"))}


def test_run_directory(reference):
    results = json.loads((reference / "results.json").read_text())
    audio = {f"{p}-mismatched" for p in ("prepended", "interleaved")}
    cascade = {"prepended-cascade", "interleaved-cascade"}
    assert set(results["metrics"]) == {"prepended", "interleaved", "text"} | audio | cascade
    assert set(results["metrics"]["interleaved"]) == {"synonym", "hypernym", "identity"}
    assert "identity" not in results["metrics"]["text"]  # naming the label is no control for identity
    syn = results["metrics"]["interleaved"]["synonym"]
    assert syn["n"] == 4 and {"precision", "recall", "f1", "accuracy", "auroc", "unparsed_rate"} <= set(syn)
    assert syn["f1"]["ci"] is not None and "higher_is_better" in syn["f1"]
    ident = results["metrics"]["prepended"]["identity"]
    assert {"identity_accuracy", "identity_accuracy_embedding"} <= set(ident)
    assert results["versions"]["git_commit"] and results["shard_sha256"]
    assert {(t["a"], t["b"]) for t in results["tests"] if t["task"] == "synonym"} == {
        ("prepended", "interleaved"), ("prepended", "text"), ("interleaved", "text"),
        *((c.split("-")[0], c) for c in audio | cascade)}  # a control against its own placement only
    assert all("p_holm" in t["mcnemar"] for t in results["tests"])
    vs = results["baselines"]["hypernym"]["vs_candidate_prior"]  # every condition's AUROC paired with the prior's
    assert set(vs) == set(results["metrics"]) and all(0 < v["p"] <= 1 for v in vs.values() if v["p"] is not None)
    assert set(results["breakdowns"]["interleaved"]["hypernym"]) == {"word", "depth", "negative_kind"}
    assert len(samples(reference)) == 18  # 3 tasks × 2 placements × (itself, mismatched) + 2 text tasks
    #                                        + 2 yes/no tasks × 2 cascades
    heard = {}  # what each audio condition played for one item: the clip, another class's clip
    for cond in ("interleaved", "interleaved-mismatched"):
        rows = [json.loads(x) for x in (reference / f"samples/{cond}/hypernym.jsonl").read_text().splitlines()]
        assert [r["error"] for r in rows] == [None] * 4
        heard[cond] = [r["score"] for r in rows]
    assert heard["interleaved"] != heard["interleaved-mismatched"]
    rows = [json.loads(x) for x in (reference / "samples/interleaved/hypernym.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and len({r["item_id"] for r in rows}) == 4
    assert all(r["prompt"].count("<audio>") == 1 and isinstance(r["score"], float) for r in rows)
    named = {r["clip_id"]: r["raw"] for r in map(json.loads, (reference / "samples/interleaved/identity.jsonl")
                                                                .read_text().splitlines())}
    for r in map(json.loads, (reference / "samples/interleaved-cascade/hypernym.jsonl").read_text().splitlines()):
        assert "<audio>" not in r["prompt"] and r["error"] is None  # the model's own label, in words, no audio
        assert f'the sound of "{own_label(named[r["clip_id"]])}"' in r["prompt"]
    for name in ("report.md", "plots/metrics.png", "plots/pr.png", "plots/words.png", "config.json"):
        assert (reference / name).is_file(), name
    assert not list((reference / "samples").glob("*/*.part*"))


def test_sigkill_then_rerun_resumes_to_identical_results(shard, reference, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(eval_cmd(shard[0], out), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=ONE_THREAD)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until some, but not all, records are on disk
        written = sum(len(p.read_text().splitlines()) for p in out.glob("samples/*/*.part*.jsonl"))
        if written >= 8:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists(), "the run finished before it could be killed"
    partial = sum(len(p.read_text().splitlines()) for p in out.glob("samples/*/*.part*.jsonl"))
    assert 0 < partial < 40
    r = subprocess.run(eval_cmd(shard[0], out), capture_output=True, text=True, timeout=600, cwd=ROOT, env=ONE_THREAD)
    assert r.returncode == 0, r.stderr[-2000:]
    assert samples(out) == samples(reference)
    assert (out / "results.json").read_bytes() == (reference / "results.json").read_bytes()


def test_two_processes_equal_one(shard, reference, tmp_path):
    out = tmp_path / "run"
    accelerate = Path(sys.executable).with_name("accelerate")
    # `--cpu` would make accelerate 1.15 start ONE process; --multi_gpu starts two that join over gloo on CPU,
    # each with one thread, as the reference (ONE_THREAD)
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "-m", "shardkit", "-v", "eval",
           "--shard", str(shard[0]), "--out", str(out), *ARGS]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "process 1 of 2" in r.stderr and "process 2 of 2" in r.stderr  # really two processes
    assert samples(out) == samples(reference)
    assert (out / "results.json").read_bytes() == (reference / "results.json").read_bytes()


def test_resuming_with_other_settings_is_refused(shard, reference):
    cfg = EvalConfig(shard=str(shard[0]), tasks=("synonym",), scoring="generate", limit=6)
    with pytest.raises(ShardkitError, match="holds a run with"):
        run_eval(cfg, reference)


def test_resume_guard_compares_everything_but_how_the_run_is_carried_out(tmp_path):
    """dtype or device change the numbers (a float32 record must not be labelled bfloat16); batch size, bootstrap
    replicates and seed do not change what a record measures."""
    from dataclasses import replace

    from shardkit.eval.runner import _check_same_config

    meta = {"sha256": "abc"}
    cfg = EvalConfig(shard="s")
    _check_same_config(tmp_path, cfg, meta)
    _check_same_config(tmp_path, replace(cfg, batch_size=4, n_boot=10, seed=3), meta)
    for change in ({"dtype": "bfloat16"}, {"device": "cuda"}, {"cascade": False}, {"position": "end"}):
        with pytest.raises(ShardkitError, match=f"holds a run with {next(iter(change))}="):
            _check_same_config(tmp_path, replace(cfg, **change), meta)


def test_unavailable_audio_is_an_excluded_error(tmp_path):
    import numpy as np
    import soundfile as sf

    from shardkit.benchmark.build import build
    from shardkit.benchmark.config import BuildConfig

    sf.write(tmp_path / "dog.wav", 0.2 * np.sin(np.arange(16000) / 3), 16000)
    (tmp_path / "clips.jsonl").write_text(
        '{"id": "dog", "path": "dog.wav", "labels": ["/m/0bt9lr"]}\n'
        '{"id": "gone", "path": "gone.wav", "labels": ["/m/01yrx"]}\n')
    build(tmp_path / "shard", BuildConfig(per_task=1), manifest=tmp_path / "clips.jsonl")
    cfg = EvalConfig(shard=str(tmp_path / "shard"), tasks=("hypernym",), control=False, n_boot=50,
                     placements=("interleaved",))
    results = run_eval(cfg, tmp_path / "run")
    m = results["metrics"]["interleaved"]["hypernym"]
    assert m["n"] == 2 and m["n_error"] == 2
    rows = [json.loads(x) for x in (tmp_path / "run/samples/interleaved/hypernym.jsonl").read_text().splitlines()]
    assert [r["error"] for r in rows if r["clip_id"] == "gone"] == ["audio unavailable: gone"] * 2


def test_parse_yes_no_strict_and_lenient():
    assert parse_yes_no("Yes, it is.") == ("yes", "yes")
    assert parse_yes_no("No.") == ("no", "no")
    assert parse_yes_no("I think so. Yes") == (None, "yes")
    assert parse_yes_no("Yes... actually no") == ("yes", "yes")  # lenient: the first one wins
    assert parse_yes_no("It is a dog.") == (None, None)
    assert parse_yes_no("Yesterday") == (None, None) and parse_yes_no("") == (None, None)


def test_requests_per_condition():
    item = {"task": "hypernym", "candidate": "animal", "word": "dog", "id": "x",
            "clip": {"id": "c", "path": "a/c.wav", "start": 0.0, "end": None}}
    style = PromptStyle("middle", True)
    inter = make_request(item, "interleaved", "yesno", "/root", style)
    assert inter.prompt == "Answer yes or no: is the source of the sound in this audio clip <audio> a kind of animal?"
    assert inter.audio[0].path == "/root/a/c.wav"
    text = make_request(item, "text", "yesno", "/root", style)
    assert text.audio == () and '"dog"' in text.prompt and "<audio>" not in text.prompt
    cloze = make_request(item, "prepended", "cloze", "/root", style)
    assert cloze.continuations == (" animal",) and cloze.prompt.endswith("is a kind of")
    other = {"id": "d", "path": "/elsewhere/d.wav", "start": 1.0, "end": 2.0}
    mismatched = make_request(item, "prepended-mismatched", "yesno", "/root", style, clip=other)
    assert mismatched.prompt == make_request(item, "prepended", "yesno", "/root", style).prompt
    assert mismatched.audio[0] == AudioRef("/elsewhere/d.wav", 1.0, 2.0) and mismatched.placement == "prepended"


@pytest.mark.parametrize("scoring", ["yesno", "generate"])
def test_batches_do_not_depend_on_where_the_model_lives(shard, tmp_path, scoring):
    """A study names a tuned model by its folder; the same model in another folder (another clone, another stage id)
    must meet the same batches, or its scores differ in the last digits and a tie can flip a metric."""
    from dataclasses import replace

    from shardkit.benchmark.build import load_shard
    from shardkit.eval.runner import plan, select

    items, meta = load_shard(shard[0])
    cfg = EvalConfig(shard=str(shard[0]), model="tiny-ltu:ckpt=/a/stages/train-1", scoring=scoring, limit=40)
    chosen = select(items, cfg.tasks, cfg.limit)

    def batches(c):
        return [[(j[1], j[2]["id"]) for j in b] for b in plan(c, chosen, meta["audio_root"], tmp_path, items)[1]]
    assert batches(cfg) == batches(replace(cfg, model="tiny-ltu:ckpt=/elsewhere/stages/train-2"))


@pytest.mark.parametrize("scoring", ["generate", "cloze"])
def test_other_scorings_run(shard, tmp_path, scoring):
    cfg = EvalConfig(shard=str(shard[0]), placements=("interleaved",), tasks=("synonym", "identity"), control=False,
                     audio_controls=(), cascade=False, limit=2, n_boot=50, scoring=scoring, max_new_tokens=6)
    results = run_eval(cfg, tmp_path / "run")
    syn = results["metrics"]["interleaved"]["synonym"]
    assert syn["n"] == 2
    if scoring == "generate":
        assert "f1" in syn and "lenient" in syn and "unparsed_rate" in syn
    else:  # cloze likelihoods are ranked, never cut at a threshold fitted on the test items
        assert "auroc" in syn and "f1" not in syn
        assert results["metrics"]["interleaved"]["identity"]["n"] == 2


def test_cascade_writes_the_own_label_or_an_error(shard):
    """The cascade asks each yes/no question with the clip's identity answer under its placement; a clip whose
    answer failed or is empty gets an error record, and a clip's label is its first identity answer's."""
    from shardkit.benchmark.build import load_shard

    items, _ = load_shard(shard[0])
    cfg = EvalConfig(shard=str(shard[0]), placements=("prepended",), tasks=("hypernym", "identity"))
    assert cfg.conditions[-2:] == ("prepended-cascade", "text")
    assert EvalConfig(tasks=("identity",)).cascades == () and EvalConfig(cascade=False).cascades == ()
    hyp = [i for i in items if i["task"] == "hypernym"][:12]
    clips = sorted({i["clip"]["id"] for i in hyp})
    ident = [{"clip_id": c, "raw": raw, "parsed": None, "error": err}
             for c, (raw, err) in zip(clips, [("Dog barking.\nIt is loud", None), ("", None), (None, "boom")] * 9,
                                      strict=False)]
    records = {f"k{n}": r for n, r in enumerate(ident)}
    order, batches, unavailable = plan_cascade(cfg, {"hypernym": hyp}, {("prepended", "identity"): list(records)},
                                               records)
    asked = {j[2]["id"]: j[3] for b in batches for j in b}
    failed = {u[2]["id"] for u in unavailable}
    assert len(order[("prepended-cascade", "hypernym")]) == len(hyp) and asked.keys() | failed == {i["id"] for i in hyp}
    by_clip = dict(zip(clips, ["Dog barking", None, None] * 9, strict=False))
    for i in hyp:
        label = by_clip[i["clip"]["id"]]
        if label is None:
            assert i["id"] in failed
        else:
            req = asked[i["id"]]
            assert req.audio == () and f'the sound of "{label}"' in req.prompt and i["candidate"] in req.prompt
