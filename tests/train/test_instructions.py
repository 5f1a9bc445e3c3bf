"""Instruction samples one at a time (train/instructions.py): exact task counts and the tuning frameworks' record.
Generation over real pools is tested through make-data in test_folder.py."""

from pathlib import Path

from shardkit.models.prompts import AUDIO
from shardkit.train.instructions import quotas, to_sharegpt


def test_quotas_are_exact_by_largest_remainder_ties_in_task_order():
    assert quotas({"identity": 1 / 3, "synonym": 1 / 3, "hypernym": 1 / 3}, 100) == {
        "identity": 34, "synonym": 33, "hypernym": 33, "description": 0, "replay": 0, "synonym_text": 0,
        "hypernym_text": 0}
    for size in (1, 7, 999):
        q = quotas({"identity": 0.3, "replay": 0.2, "synonym_text": 0.5}, size)
        assert sum(q.values()) == size and q["synonym"] == 0


def test_sharegpt_record_carries_one_marker_per_audio():
    """LLaMA-Factory and ms-swift count markers against audios: a prepended sample gets its markers at the start
    (interleaved at position 0 is prepended); an interleaved one is left as written."""
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is it?"},
            {"role": "assistant", "content": "Dog"}]
    prepended = {"messages": msgs, "audios": ["/a.wav"], "placement": "prepended", "task": "replay"}
    out = to_sharegpt(prepended)
    assert out["messages"][1]["content"] == f"{AUDIO}What is it?" and out["messages"][0] == msgs[0]
    assert msgs[1]["content"] == "What is it?"  # the sample itself is not changed
    inter = {"messages": [{"role": "user", "content": f"Is {AUDIO} a dog?"}, msgs[2]], "audios": ["/a.wav"],
             "placement": "interleaved"}
    assert to_sharegpt(inter) == {"messages": inter["messages"], "audios": ["/a.wav"]}
    assert to_sharegpt(inter, Path("/"))["audios"] == ["a.wav"]  # relative to a media root under which it lies
    assert to_sharegpt(inter, Path("/elsewhere"))["audios"] == ["/a.wav"]
