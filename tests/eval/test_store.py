"""Append-only records (eval/store.py): what a SIGKILL leaves is read back up to the torn line, every process's part
file counts, and merging writes each key once in the plan's order, whatever the number of writers."""

import json

import pytest

from shardkit.errors import ShardkitError
from shardkit.eval.store import RecordStore


def rec(key: str, score: float = 0.0) -> dict:
    return {"key": key, "score": score}


def test_records_are_on_disk_after_each_append(tmp_path):
    store = RecordStore(tmp_path)
    store.append("interleaved", "synonym", rec("a"))
    part = tmp_path / "samples" / "interleaved" / "synonym.part0.jsonl"
    assert json.loads(part.read_text()) == rec("a")  # flushed, not buffered until close
    store.close()


def test_a_torn_last_line_is_cut_and_its_item_rescored(tmp_path):
    part = tmp_path / "samples" / "prepended" / "hypernym.part0.jsonl"
    part.parent.mkdir(parents=True)
    part.write_text(json.dumps(rec("a")) + "\n" + '{"key": "b", "sco')  # killed while writing b
    store = RecordStore(tmp_path)
    assert set(store.existing()) == {"a"}
    store.append("prepended", "hypernym", rec("b", 1.0))
    store.close()
    assert [json.loads(x)["key"] for x in part.read_text().splitlines()] == ["a", "b"]


def test_merge_keeps_each_key_once_in_plan_order_from_every_process(tmp_path):
    one, two = RecordStore(tmp_path, rank=0), RecordStore(tmp_path, rank=1)
    one.append("text", "synonym", rec("c"))
    one.append("text", "synonym", rec("a"))
    two.append("text", "synonym", rec("b"))
    two.append("text", "synonym", rec("a", 9.0))  # a key written twice (a rerun after a kill): the first one stays
    two.close()
    merged = one.merge({("text", "synonym"): ["a", "b", "c"]})
    assert [r["key"] for r in merged[("text", "synonym")]] == ["a", "b", "c"]
    final = tmp_path / "samples" / "text" / "synonym.jsonl"
    assert [json.loads(x) for x in final.read_text().splitlines()] == merged[("text", "synonym")]
    assert not list((tmp_path / "samples").glob("*/*.part*"))
    assert RecordStore(tmp_path).existing().keys() == {"a", "b", "c"}  # the merged file is read back too


def test_merge_refuses_a_missing_record(tmp_path):
    store = RecordStore(tmp_path)
    store.append("text", "synonym", rec("a"))
    with pytest.raises(ShardkitError, match=r"1 synonym records missing \(e.g. b\); rerun the same command"):
        store.merge({("text", "synonym"): ["a", "b"]})
