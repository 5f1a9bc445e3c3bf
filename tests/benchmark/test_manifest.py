import json

import numpy as np
import pytest
import soundfile as sf

from shardkit.benchmark.build import build
from shardkit.benchmark.config import BuildConfig
from shardkit.benchmark.manifest import read_manifest
from shardkit.errors import ShardkitError

DOG, CAT, SIREN = "/m/0bt9lr", "/m/01yrx", "/m/03kmc9"


def _wav(path, seconds=1.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.sin(np.arange(int(16000 * seconds)) / 5) * 0.3, 16000)
    return path


def _jsonl(tmp_path, rows):
    path = tmp_path / "clips.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_good(tmp_path, onto):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "sub" / "b.wav")
    m = _jsonl(tmp_path, [{"id": "a", "path": "a.wav", "labels": [DOG]},
                          {"id": "b", "path": "sub/b.wav", "labels": [SIREN, CAT], "split": "test", "start": 0.2}])
    clips = read_manifest(m, None, onto)
    assert [c.id for c in clips] == ["a", "b"]
    assert clips[1].labels == (SIREN, CAT) and clips[1].start == 0.2 and clips[1].split == "test"
    assert all(c.available and len(c.sha256) == 64 for c in clips)


def test_audioset_csv_finds_segments_by_common_names(tmp_path, onto):
    root = tmp_path / "audio"
    _wav(root / "Yabc123.wav")
    _wav(root / "nested" / "def456_30.000_40.000.flac")
    csv = tmp_path / "eval_segments.csv"
    csv.write_text("# Segments csv created Sun Mar  5 10:54:31 2017\n"
                   "# YTID, start_seconds, end_seconds, positive_labels\n"
                   f'abc123, 0.000, 10.000, "{DOG},{CAT}"\n'
                   f'def456, 30.000, 40.000, "{SIREN}"\n'
                   f'gone789, 5.000, 15.000, "{DOG}"\n')
    clips = read_manifest(csv, root, onto)
    assert [c.id for c in clips] == ["abc123_0.000", "def456_30.000", "gone789_5.000"]
    assert clips[0].path == "Yabc123.wav" and clips[0].labels == (DOG, CAT)
    assert clips[1].path == "nested/def456_30.000_40.000.flac"
    assert not clips[2].available and "not found" in clips[2].problem


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ('{"id": "x", "labels": ["/m/0bt9lr"]}', "missing field(s) path"),
    ('{"id": "x", "path": "a.wav", "labels": "/m/0bt9lr"}', "non-empty list of AudioSet mids"),
    ('{"id": "x", "path": "a.wav", "labels": ["/m/nope"]}', "unknown AudioSet label id '/m/nope'"),
    ('{"id": "x", "path": "a.wav", "labels": ["/m/0bt9lr"], "start": "soon"}', "start/end must be numbers"),
    ('{"id": "x", "path": "a.wav", "labels": ["/m/0bt9lr"], "split": "dev"}', "split must be"),
    ('{"id": "a", "path": "a.wav", "labels": ["/m/0bt9lr"]}', "clip id 'a' already used on line 1"),
])
def test_jsonl_bad_row_names_file_and_line(tmp_path, onto, line, message):
    _wav(tmp_path / "a.wav")
    m = _jsonl(tmp_path, [{"id": "a", "path": "a.wav", "labels": [DOG]}, line])
    with pytest.raises(ShardkitError) as e:
        read_manifest(m, None, onto)
    assert str(e.value).startswith(f"{m}:2: ") and message in str(e.value)


@pytest.mark.parametrize("row, message", [
    ("abc, 0.0, 10.0", "expected 4 fields"),
    ('abc, zero, 10.0, "/m/0bt9lr"', "start/end must be numbers"),
    ('abc, 10.0, 5.0, "/m/0bt9lr"', "need 0 <= start < end"),
    ('abc, 0.0, 10.0, "/m/0bt9lr,/m/xyz"', "unknown AudioSet label id '/m/xyz'"),
    ('abc, 0.0, 10.0, ""', "no positive_labels"),
])
def test_csv_bad_row_names_file_and_line(tmp_path, onto, row, message):
    csv = tmp_path / "segments.csv"
    csv.write_text(f"# header\n{row}\n")
    with pytest.raises(ShardkitError) as e:
        read_manifest(csv, tmp_path, onto)
    assert str(e.value).startswith(f"{csv}:2: ") and message in str(e.value)


def test_unreadable_and_missing_audio_become_unavailable_not_dropped(tmp_path, onto):
    _wav(tmp_path / "good.wav")
    (tmp_path / "garbage.wav").write_bytes(b"RIFF....this is not audio" * 10)
    (tmp_path / "empty.wav").write_bytes(b"")
    m = _jsonl(tmp_path, [{"id": "good", "path": "good.wav", "labels": [DOG]},
                          {"id": "garbage", "path": "garbage.wav", "labels": [DOG]},
                          {"id": "empty", "path": "empty.wav", "labels": [CAT]},
                          {"id": "missing", "path": "nowhere.wav", "labels": [SIREN]}])
    meta = build(tmp_path / "out", BuildConfig(), manifest=m)
    reasons = {u["id"]: u["reason"] for u in meta["unavailable"]}
    assert set(reasons) == {"garbage", "empty", "missing"}
    assert "unreadable" in reasons["garbage"] and "not found" in reasons["missing"]
    items = [json.loads(x) for x in (tmp_path / "out" / "shard.jsonl").read_text().splitlines()]
    assert {i["clip"]["id"] for i in items} == {"good", "garbage", "empty", "missing"}  # same benchmark for all
    assert {i["clip"]["id"] for i in items if not i["clip"]["available"]} == set(reasons)
    assert meta["n_clips"] == 4


def test_manifest_without_shard_words_is_an_error(tmp_path):
    _wav(tmp_path / "a.wav")
    m = _jsonl(tmp_path, [{"id": "a", "path": "a.wav", "labels": ["/m/09x0r"]}])  # Speech: not a SHARD word
    with pytest.raises(ShardkitError, match="no clip in split 'auto' carries any of the 78 SHARD labels"):
        build(tmp_path / "out", BuildConfig(), manifest=m)


def test_other_errors(tmp_path, onto):
    with pytest.raises(ShardkitError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl", None, onto)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ShardkitError, match="unknown manifest format"):
        read_manifest(tmp_path / "x.txt", None, onto)
    with pytest.raises(ShardkitError, match="--audio-root needs --manifest"):
        build(tmp_path / "out", BuildConfig(), audio_root=tmp_path)
