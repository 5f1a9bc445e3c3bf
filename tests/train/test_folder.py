"""Instruction data (train/folder.py, train/instructions.py): determinism, the mix, markers, the leakage guard,
splits, shards, exports and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shardkit.errors import ShardkitError
from shardkit.models.prompts import AUDIO
from shardkit.train.config import DEFAULT_MIX, DataConfig
from shardkit.train.folder import iter_samples, make_data, validate_sample
from shardkit.train.instructions import to_sharegpt


def _manifest_rows() -> list[dict]:
    from shardkit.resources.samples import build_samples

    return [json.loads(line) for line in build_samples(0).read_text().splitlines()]


def _read(folder: Path) -> list[dict]:
    return list(iter_samples(folder))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """N=2000 from the bundled samples with every default but the size."""
    out = tmp_path_factory.mktemp("data")
    meta = make_data(out, DataConfig(size=2000))
    return out, meta, _read(out)


@pytest.fixture(scope="module")
def sharded_runs(tmp_path_factory):
    """N=1000 in shards of 300: seed 0 twice and seed 1 once."""
    outs = []
    for seed in (0, 0, 1):
        out = tmp_path_factory.mktemp(f"seed{seed}")
        make_data(out, DataConfig(size=1000, seed=seed, shard_size=300))
        outs.append(out)
    return outs


def _shard_bytes(out: Path) -> list[bytes]:
    files = sorted(out.glob("data-*.jsonl")) + sorted((out / "sharegpt" / "data").glob("data-*.jsonl"))
    return [f.read_bytes() for f in files]


def test_same_seed_same_bytes_other_seed_differs(sharded_runs):
    a, b, c = sharded_runs
    assert _shard_bytes(a) == _shard_bytes(b)
    assert _shard_bytes(a) != _shard_bytes(c)
    meta_a, meta_b = (json.loads((x / "meta.json").read_text()) for x in (a, b))
    assert meta_a["shards"] == meta_b["shards"]


def test_shards_of_300_on_1000_make_4_files_and_read_back_in_order(sharded_runs):
    out = sharded_runs[0]
    files = sorted(out.glob("data-*.jsonl"))
    meta = json.loads((out / "meta.json").read_text())
    assert [f.name for f in files] == [f"data-0000{i}-{x['sha256'][:12]}.jsonl" for i, x in enumerate(meta["shards"])]
    assert [len(f.read_text().splitlines()) for f in files] == [300, 300, 300, 100]
    assert len(list((out / "sharegpt" / "data").glob("data-*.jsonl"))) == 4
    samples = _read(out)
    assert [s["id"] for s in samples] == [f"{i:08d}" for i in range(1000)]
    assert next(iter_samples(out, start=650))["id"] == f"{650:08d}"  # resume skips whole shards unread


def test_mix_is_realised_within_a_few_percent(default_run):
    _, meta, samples = default_run
    for task, share in DEFAULT_MIX.items():
        realised = sum(s["task"] == task for s in samples) / len(samples)
        assert abs(realised - share) < 0.02, (task, realised)
        assert meta["mix"][task]["realised"] == round(realised * len(samples))


def test_markers_match_audios_and_replay_is_prepended(default_run):
    out, _, samples = default_run
    placements = set()
    for k, s in enumerate(samples):
        validate_sample(s, f"sample {k}")
        markers = sum(m["content"].count(AUDIO) for m in s["messages"])
        placements.add((s["task"], s["placement"]))
        if s["placement"] == "interleaved":
            assert markers == len(s["audios"]) == len(s["clip_ids"]) == 1
        else:
            assert s["task"] == "replay" and markers == 0 and len(s["audios"]) == 1
    assert ("replay", "prepended") in placements and ("identity", "interleaved") in placements
    positions = {("start" if t.startswith(AUDIO) else "end" if t.endswith(AUDIO) else "middle")
                 for t in (s["messages"][0]["content"] for s in samples if s["placement"] == "interleaved")}
    assert positions == {"start", "middle", "end"}
    assert all(Path(s["audios"][0]).is_absolute() and Path(s["audios"][0]).is_file() for s in samples[:50])


def test_an_ltu_style_base_mix_prepended_audio_and_text_only_questions(tmp_path):
    """The base stage's data: every audio question prepended (no marker), text-only WordNet questions without audio,
    all trainable as written, and no text question about a SHARD word."""
    mix = {"replay": 0.2, "synonym": 0.15, "hypernym": 0.15, "synonym_text": 0.2, "hypernym_text": 0.3}
    meta = make_data(tmp_path, DataConfig(size=400, mix=mix, placement="prepended"))
    samples = _read(tmp_path)
    assert {t: m["realised"] for t, m in meta["mix"].items() if m["realised"]} == {
        "replay": 80, "synonym": 60, "hypernym": 60, "synonym_text": 80, "hypernym_text": 120}
    assert meta["text_questions"]["subjects"] > 3000
    words = _shard_vocabulary().words
    for k, s in enumerate(samples):
        validate_sample(s, f"sample {k}")
        text = s["messages"][0]["content"]
        assert AUDIO not in text
        if s["task"].endswith("_text"):
            assert s["audios"] == [] and s["clip_ids"] == [] and s["facts"]["word"].lower() not in words
        else:
            assert s["placement"] == "prepended" and len(s["audios"]) == 1
    assert {s["messages"][1]["content"] for s in samples if s["task"].endswith("_text")} == {"Yes", "No"}
    with pytest.raises(ShardkitError, match="placement must be interleaved or prepended"):
        DataConfig(placement="before")


def _shard_vocabulary():
    from shardkit.benchmark.relations import Guard
    from shardkit.benchmark.senses import load_senses
    from shardkit.resources.ontology import ontology

    return Guard.from_senses(load_senses(ontology()))


def test_leakage_guard_keeps_shard_out_of_wordnet_questions_by_default(default_run):
    _, meta, samples = default_run
    guard = _shard_vocabulary()
    asked = [s for s in samples if s["task"] in ("synonym", "hypernym")]
    assert asked
    for s in asked:
        f = s["facts"]
        assert f["synset"] not in guard.synsets and f["candidate"].lower() not in guard.words, s
        assert guard.candidate(f["candidate"]) is None, s  # no SHARD fact: the candidate is above no SHARD word
        assert f["candidate"] in s["messages"][0]["content"]
    ov = meta["overlap"]
    assert not ov["allow_overlap"] and ov["samples_touching_shard"] == 0
    assert ov["labels"]["n"] > 0 and "Telephone (telephone.n.01, SHARD synset)" in ov["labels"]["examples"]
    assert ov["candidates"]["synonym"]["words"]["n"] > 0
    assert "train-split recordings" in ov["identity"]["note"]
    # identity on train-split recordings of SHARD words is allowed
    assert any(s["task"] == "identity" and s["facts"]["synset"] in guard.synsets for s in samples)


def test_allow_overlap_lets_shard_words_in_and_says_so(tmp_path):
    meta = make_data(tmp_path, DataConfig(size=1000, allow_overlap=True))
    guard = _shard_vocabulary()
    touched = [s for s in _read(tmp_path) if s["task"] in ("synonym", "hypernym") and s["facts"]["overlap"]]
    assert touched and any(s["facts"]["synset"] in guard.synsets for s in touched)
    assert meta["overlap"]["allow_overlap"] and meta["overlap"]["action"] == "included"
    assert meta["overlap"]["samples_touching_shard"] == len(touched)


def test_negatives_are_true_for_every_label_of_the_clip(default_run, wn, onto):
    """Checked with nltk's own closures: a "no" relates to no other label of the clip that names a source."""
    _, meta, samples = default_run
    rows = {r["id"]: r for r in _manifest_rows()}
    mapping = meta["labels"]["mapping"]

    def up(x):
        return set(x.closure(lambda y: y.hypernyms() + y.instance_hypernyms()))
    nos = [s for s in samples if s["task"] in ("synonym", "hypernym") and s["messages"][1]["content"] == "No"]
    assert nos
    for s in nos:
        labels = rows[s["clip_ids"][0]]["labels"]
        implied = {a for m in labels for a in onto.ancestors(m)}
        for mid in labels:
            syn = mapping[mid]["synset"]
            if syn is None or mid == s["facts"]["label"] or mid in implied:
                continue
            target = wn.synset(syn)
            for c in wn.synsets(s["facts"]["candidate"].replace(" ", "_"), "n"):
                assert c != target and c not in up(target) and target not in up(c), (s["facts"], mid)


def test_shard_clips_are_left_out_by_id_and_by_audio(tmp_path, shard):
    """Even from the same manifest and every split, no SHARD clip reaches tuning data (sha256 catches a copy)."""
    import shutil

    rows = _manifest_rows()
    root = Path(__import__("shardkit.resources.samples", fromlist=["x"]).build_samples(0)).parent
    shard_items = [json.loads(line) for line in (shard[0] / "shard.jsonl").read_text().splitlines()]
    held = {i["clip"]["id"] for i in shard_items}
    copy = next(r for r in rows if r["id"] in held)
    shutil.copy(root / copy["path"], tmp_path / "copy.wav")  # the same recording under another id and path
    manifest = tmp_path / "clips.jsonl"
    extra = {**copy, "id": "a-copy", "path": str(tmp_path / "copy.wav"), "split": "train"}
    manifest.write_text("".join(json.dumps({**r, "path": str(root / r["path"])}) + "\n" for r in rows)
                        + json.dumps(extra) + "\n")
    meta = make_data(tmp_path / "out", DataConfig(size=300, split="all"), manifest=manifest, exclude=shard[0])
    used = {c for smp in _read(tmp_path / "out") for c in smp["clip_ids"]}
    assert not used & (held | {"a-copy"})
    assert meta["clips"]["excluded_shard"]["clips"] == len(held) + 1


def test_only_train_split_clips(default_run):
    _, meta, samples = default_run
    split = {r["id"]: r["split"] for r in _manifest_rows()}
    used = {c for s in samples for c in s["clip_ids"]}
    assert used and all(split[c] == "train" for c in used)
    assert meta["clips"]["left_out_by_split"] == sum(v == "test" for v in split.values())


def test_sharegpt_export_loads_with_datasets_offline(default_run, tmp_path):
    from datasets import load_dataset

    out, meta, samples = default_run
    files = sorted(str(p) for p in (out / "sharegpt" / "data").glob("data-*.jsonl"))
    ds = load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert ds.column_names == ["messages", "audios"] and len(ds) == len(samples)
    for row, s in zip(ds.select(range(200)), samples[:200], strict=True):
        assert sum(m["content"].count(AUDIO) for m in row["messages"]) == len(row["audios"])  # replay included
        assert row == to_sharegpt(s, Path(meta["audio_root"]))
        # movable: relative to the audio root, as LLaMA-Factory joins media_dir with each path
        assert all(not Path(a).is_absolute() and (Path(meta["audio_root"]) / a).is_file() for a in row["audios"])
    info = json.loads((out / "sharegpt" / "dataset_info.json").read_text())["shardkit_instruct"]
    assert info["formatting"] == "sharegpt" and info["file_name"] == "data"
    assert info["columns"] == {"messages": "messages", "audios": "audios"}
    assert info["tags"]["user_tag"] == "user" and info["tags"]["assistant_tag"] == "assistant"


def test_the_folder_itself_loads_with_datasets(default_run, tmp_path):
    """`load_dataset(out)` reads the samples (never meta.json), and `load_dataset(out, "sharegpt")` the export, into
    a cache of the test's own."""
    from datasets import load_dataset

    out, _, samples = default_run
    ds = load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == len(samples) and ds[0]["id"] == samples[0]["id"] and "messages" in ds.column_names
    share = load_dataset(str(out), "sharegpt", split="train", cache_dir=str(tmp_path / "cache"))
    assert share.column_names == ["messages", "audios"] and len(share) == len(samples)


def test_a_moved_folder_still_finds_every_clip(default_run, tmp_path):
    """Copied to another path, the folder loads and every audio path resolves: the samples' absolute paths, and the
    export's paths under the audio root meta.json records."""
    import shutil

    from datasets import load_dataset

    out, meta, _ = default_run
    moved = shutil.copytree(out, tmp_path / "elsewhere" / "data")
    main = load_dataset(str(moved), split="train", cache_dir=str(tmp_path / "cache"))
    share = load_dataset(str(moved), "sharegpt", split="train", cache_dir=str(tmp_path / "cache"))
    root = Path(json.loads((moved / "meta.json").read_text())["audio_root"])
    assert all(Path(a).is_file() for row in main.select(range(300)) for a in row["audios"])
    assert all((root / a).is_file() for row in share.select(range(300)) for a in row["audios"])


def test_validate_sample_rejects_mismatch_and_malformed_messages():
    good = {"messages": [{"role": "user", "content": f"What is {AUDIO}?"}, {"role": "assistant", "content": "Dog"}],
            "audios": ["/a.wav"], "placement": "interleaved"}
    validate_sample(good, "x")
    validate_sample({**good, "placement": "prepended", "messages": [
        {"role": "user", "content": "What is it?"}, {"role": "assistant", "content": "Dog"}]}, "x")
    bad = [({**good, "audios": ["/a.wav", "/b.wav"]}, "1 <audio> marker(s) but 2 audio"),
           ({**good, "messages": [{"role": "user", "content": "hi"}]}, "at least a user and an assistant"),
           ({**good, "messages": [{"role": "bot", "content": "x"}, good["messages"][1]]}, "messages[0]"),
           ({**good, "messages": good["messages"][::-1]}, "end with the assistant"),
           ({**good, "audios": "/a.wav"}, "list of audio file paths"),
           ({**good, "placement": "prepended", "audios": ["/a.wav", "/b.wav"]}, "use none")]
    for sample, text in bad:
        with pytest.raises(ShardkitError, match="^shard-3.jsonl:7: ") as e:
            validate_sample(sample, "shard-3.jsonl:7")
        assert text in str(e.value) and "\n" not in str(e.value)


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_manifest_unreadable_clips_and_empty_result(tmp_path):
    root = _manifest_rows()
    from shardkit.resources.samples import build_samples

    audio_dir = build_samples(0).parent
    rows = [{"id": r["id"], "path": str(audio_dir / r["path"]), "labels": r["labels"]} for r in root[:20]]
    (tmp_path / "broken.wav").write_text("not audio")
    broken = {"id": "broken", "path": str(tmp_path / "broken.wav"), "labels": ["/m/0bt9lr"]}

    bad = _write_manifest(tmp_path / "bad.jsonl", [*rows[:3], {**rows[3], "labels": ["/m/nope"]}])
    with pytest.raises(ShardkitError, match=r"bad\.jsonl:4: unknown AudioSet label"):
        make_data(tmp_path / "o1", DataConfig(size=10), manifest=bad)

    mixed = _write_manifest(tmp_path / "mixed.jsonl", [*rows, broken])  # no splits: every clip is used
    meta = make_data(tmp_path / "o2", DataConfig(size=200, mix={"identity": 0.5, "replay": 0.5}), manifest=mixed)
    assert meta["clips"]["used"] == 20 and meta["clips"]["unavailable"]["n"] == 1
    assert meta["clips"]["unavailable"]["examples"][0].startswith("broken: unreadable audio")
    assert "no train/test split" in meta["overlap"]["identity"]["note"]
    assert "broken" not in {c for s in iter_samples(tmp_path / "o2") for c in s["clip_ids"]}

    only_broken = _write_manifest(tmp_path / "empty.jsonl", [broken])
    with pytest.raises(ShardkitError, match="no usable clip"):
        make_data(tmp_path / "o3", DataConfig(size=10), manifest=only_broken)


def test_iter_samples_needs_a_complete_folder(tmp_path):
    with pytest.raises(ShardkitError, match="no meta.json"):
        next(iter_samples(tmp_path))


def test_cli_make_data(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "shardkit", "make-data", "--out", str(tmp_path / "d"), "--shard-size", "200"]
    r = subprocess.run([*cmd, "--size", "500"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "replay" in out and "prepended" in out and "overlap with SHARD" in out and "samples touching SHARD: 0" in out
    assert len(list((tmp_path / "d").glob("data-*.jsonl"))) == 3
    r = subprocess.run([*cmd, "--size", "500", "--mix", "identity=0.6,hypernim=0.4"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "shardkit make-data: error: unknown mix key 'hypernim' (did you mean 'hypernym'?) (known: identity, synonym, "
        "hypernym, description, replay, synonym_text, hypernym_text)"]
