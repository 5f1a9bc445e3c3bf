"""Audio controls: the mismatched clip shares nothing with the clip it replaces, and silence is silence."""

import json

import numpy as np

from shardkit.eval.controls import mismatched_clips, silence_clip, split_condition


def _items(shard_dir):
    return [json.loads(line) for line in (shard_dir / "shard.jsonl").read_text().splitlines()]


def test_mismatched_clip_shares_no_label_and_no_top_category(shard, onto):
    items = _items(shard[0])
    swap = mismatched_clips(items, seed=0)
    clips = {i["clip"]["id"]: i["clip"] for i in items}
    assert set(swap) == set(clips)  # the bundled SHARD has a replacement for every clip

    def top(clip):
        return {m for mid in clip["labels"] for m in onto.ancestors(mid) | {mid} if not onto.classes[m].parents}

    for c, other in swap.items():
        assert other["id"] != c and not set(clips[c]["labels"]) & set(other["labels"])
        assert not top(clips[c]) & top(other), (c, other["id"])  # every class here has one from another category
    # fixed by the seed, per clip: a subset of the items keeps each clip's replacement
    assert mismatched_clips(items, seed=0) == swap
    assert mismatched_clips(items, seed=1) != swap
    some = [i for i in items if i["clip"]["id"] in sorted(clips)[:5]]
    assert {c: v["id"] for c, v in mismatched_clips(some + items, 0).items()} == {c: v["id"] for c, v in swap.items()}
    # and the replacements are spread over many clips, not one
    assert len({v["id"] for v in swap.values()}) > len(swap) / 3


def test_mismatched_needs_another_clip():
    clip = {"id": "a", "path": "a.wav", "available": True, "labels": ["/m/0bt9lr"]}
    same = {"id": "b", "path": "b.wav", "available": True, "labels": ["/m/0bt9lr"]}  # Dog again
    gone = {"id": "c", "path": "c.wav", "available": False, "labels": ["/m/01yrx"]}
    assert mismatched_clips([{"clip": clip}, {"clip": same}, {"clip": gone}], 0) == {}


def test_silence_clip_reads_as_ten_seconds_of_zeros(tmp_path):
    from shardkit.audio.io import load_audio

    clip = silence_clip(tmp_path)
    again = silence_clip(tmp_path)
    assert clip == again and clip["labels"] == []
    wave = load_audio(clip["path"])
    assert wave.shape == (160_000,) and not np.any(wave)


def test_condition_names():
    assert split_condition("prepended") == ("prepended", None)
    assert split_condition("interleaved-silence") == ("interleaved", "silence")
    assert split_condition("text") == ("text", None)
