"""The report's audio-use readings (study/audio_use.py): the wrong audio, the cascade, and the clips a condition
names right, and `verdicts.named_right`, which the last of these reads."""

import numpy as np

from shardkit.study.audio_use import named_notes, named_section
from shardkit.study.preset import load_preset
from shardkit.study.stages import Row
from shardkit.study.verdicts import named_right


def test_audio_warnings_name_every_score_the_wrong_audio_leaves_standing():
    from shardkit.study.audio_use import audio_warnings

    def t(task, key, value, p_holm):
        return {"a": "original", "b": "original · mismatched", "task": task,
                "diffs": {key: {"value": value, "ci": [value - 0.05, value + 0.05]}}, "mcnemar": {"p_holm": p_holm}}

    tests = [t("synonym", "auroc", -0.2, 0.01),  # dropped, significant: the audio is used
             t("hypernym", "auroc", -0.02, 0.6),  # no significant drop
             t("identity", "identity_accuracy_balanced", 0.01, 0.9),  # rose, not significantly: not from the audio
             t("hypernym", "auroc", 0.12, 0.008)]  # rose significantly: the audio steers it, the wrong way
    w = audio_warnings(tests)
    assert len(w) == 3
    assert w[0].startswith("original, hypernym: AUROC is not shown to drop with mismatched audio") and "0.6" in w[0]
    assert w[1].startswith("original, identity: identity is not shown to drop") and "not shown to use the audio" in w[1]
    assert w[2].startswith("original, hypernym: AUROC rises with mismatched audio") and "serves them worse" in w[2]


def test_cascade_notes_say_where_the_own_label_beats_the_audio():
    from shardkit.study.audio_use import cascade_notes

    def t(task, value, p_holm):
        return {"a": "original", "b": "original · cascade", "task": task,
                "diffs": {"auroc": {"value": value, "ci": [value - 0.05, value + 0.05]}}, "mcnemar": {"p_holm": p_holm}}

    notes = cascade_notes([t("synonym", 0.2, 0.01), t("hypernym", 0.1, 0.3), t("synonym", -0.1, 0.01)])
    assert len(notes) == 1 and notes[0].startswith("original, synonym: with its own identity answer")
    assert "+0.20" in notes[0] and "does not reach what it heard" in notes[0]


ROWS = [Row("original", "condition", None, "", "e", "prepended"),
        *(Row(f"original · {c}", "control", "original", "", "e", f"prepended-{c}")
          for c in ("mismatched", "silence", "cascade")),
        Row("control (original)", "control", "original", "", "t", "text")]


def _records(seed: int = 0) -> dict:
    """20 clips, the first 10 named right. On every clip the audio, the wrong audio and silence score at random; the
    own answer in words ranks yes above no on the named clips only; the gold label in words on every clip."""
    rng = np.random.default_rng(seed)
    clips = [f"c{k:02d}" for k in range(20)]

    def yesno(task, row, clip, k, gold):
        good = row == "control (original)" or (row.endswith("cascade") and int(clip[1:]) < 10)
        score = (1.0 if gold == "yes" else -1.0) + 0.1 * rng.standard_normal() if good else rng.standard_normal()
        return {"item_id": f"{task}:{clip}:{k}", "clip_id": clip, "task": task, "gold": gold, "score": float(score),
                "parsed": "yes" if score > 0 else "no", "error": None, "word": "dog"}

    out = {}
    for r in ROWS:
        out[r.name] = {t: [yesno(t, r.name, c, k, g) for c in clips for k, g in enumerate(("yes", "no", "yes", "no"))]
                       for t in ("synonym", "hypernym")}
        if r.name == "original":
            out[r.name]["identity"] = [{"item_id": f"identity:{c}", "clip_id": c, "task": "identity", "word": "dog",
                                        "correct": int(c[1:]) < 10, "error": None} for c in clips]
    return out


def _named():
    cfg = load_preset("cpu-demo")  # n_boot 1000: a Holm p of 8 bootstrap tests can reach 0.016
    return named_right(cfg, ROWS, _records())


def test_named_notes_say_where_the_reasoning_stops():
    named = _named()
    notes = named_notes(named)
    assert len(notes) == 1 and notes[0].startswith("original: on the 10 of 20 clips it names right")
    assert "synonym 1.00" in notes[0] and "does not reach what it heard" in notes[0]
    # the model that reasons from the audio too: the own answer no longer beats it
    for block in named:
        for t in block["tests"]:
            t["mcnemar"]["p_holm"] = 0.5
    assert named_notes(named) == []


def test_named_section_tables_every_source_and_seed():
    named = _named()
    lines = named_section({"named": named})
    text = "\n".join(lines)
    assert "**original** names 10 of 20 clips right." in text
    for source in ("the audio", "mismatched audio", "silence", "its own identity answer in words",
                   "the gold label in words (text control)"):
        assert f"| {source} | " in text
    assert "Per training seed" not in text
    seeded = named_section({"named": named, "seeds": {"train": [0, 1], "more": {"1": {"named": named}}}})
    assert sum(line.startswith("| original | ") for line in seeded) == 2
    assert named_section({"named": []}) == []


def test_named_right_splits_by_the_clips_a_condition_names_right():
    cfg = load_preset("cpu-demo")  # n_boot 1000: a Holm p of 8 bootstrap tests can reach 0.016
    (block,) = named_right(cfg, ROWS, _records())
    assert (block["condition"], block["right"], block["clips"]) == ("original", 10, 20)
    level = {(x["row"], x["task"]): x for x in block["levels"]}
    assert level[("original · cascade", "synonym")]["right"]["auroc"]["value"] == 1.0  # separable on named clips
    assert level[("original · cascade", "synonym")]["right"]["n"] == 40  # 10 clips × 4 items
    assert abs(level[("original · cascade", "synonym")]["rest"]["auroc"]["value"] - 0.5) < 0.2
    assert level[("control (original)", "hypernym")]["rest"]["auroc"]["value"] == 1.0
    tests = {(t["b"], t["task"]): t for t in block["tests"]}
    assert len(tests) == 8 and all(t["a"] == "original" and t["n"] == 40 for t in tests.values())  # named clips only
    assert tests[("original · cascade", "synonym")]["mcnemar"]["p_holm"] < 0.05
    # no cascade asked: nothing to split by
    assert named_right(cfg, [r for r in ROWS if not r.name.endswith("cascade")], _records()) == []
