"""Audio controls: does the model use the audio it is given?

A condition's answers are compared with the same questions asked over the wrong audio — `mismatched` (each clip
replaced by a clip of another SHARD class, fixed by the seed) or `silence` (10 s of digital zeros). If reasoning
scores the same with the wrong audio, the score came from the text. The text-only control (`CONTROL`) asks
the complementary question: with the label in words, can the model reason at all? Between the two stands the
cascade (`<placement>-cascade`): the model's own identity answer for the clip, generated under that placement,
written in words where the audio was. It hears as well as the model hears and reasons in text, so cascade minus
the condition is what the audio-to-reasoning bridge loses — the gap interleaving is meant to close. A control
condition is named `<placement>-<control>` ("prepended-mismatched"), so its records sit beside its condition's and
pair with them item by item.
"""

import hashlib
from pathlib import Path

import numpy as np

from shardkit.files import replacing

AUDIO_CONTROLS = ("mismatched", "silence")
CONTROL = "text"  # the text-only condition: the gold label written where the audio would be
CASCADE = "cascade"  # the model's own label in words instead of the audio
LABEL_WORDS = 8  # an own label longer than this is cut: a label, not the explanation after it
SILENCE_SECONDS = 10.0
SILENCE_RATE = 16_000


def control_condition(placement: str, control: str) -> str:
    return f"{placement}-{control}"


def split_condition(condition: str) -> tuple[str, str | None]:
    """("prepended", None), ("prepended", "mismatched"), ... ; the text control is ("text", None)."""
    placement, _, control = condition.partition("-")
    return placement, control or None


def own_label(raw: str | None) -> str | None:
    """The label a generated identity answer gives, as the cascade writes it: its first line without the closing
    punctuation or quotes, at most LABEL_WORDS words; None when nothing is left."""
    line = (raw or "").strip().split("\n")[0]
    words = line.strip(" \t\"'`").split()[:LABEL_WORDS]
    label = " ".join(words).rstrip(".,;:!?\"'`").strip()
    return label or None


def _top_classes(labels: list[str], onto) -> set[str]:
    """The top-level AudioSet categories (Animal, Music, Sounds of things, ...) a clip's labels fall under."""
    out = set()
    for mid in labels:
        if mid in onto.classes:
            out |= {m for m in (onto.ancestors(mid) | {mid}) if not onto.classes[m].parents}
    return out


def mismatched_clips(items: list[dict], seed: int) -> dict[str, dict]:
    """For each clip of `items`, the clip that replaces it under the mismatched control.

    The replacement shares no label with the clip and, where SHARD has one, no top-level AudioSet category either
    (a dog is replaced by an engine, not by a cat, so a hypernym true of one is rarely true of the other). The
    choice is a hash of (seed, clip id), so a clip keeps its replacement whatever else is selected. Clips whose
    audio is unavailable neither get nor give one.
    """
    from shardkit.resources.ontology import ontology

    onto = ontology()
    clips = {i["clip"]["id"]: i["clip"] for i in items}
    usable = [c for c in sorted(clips) if clips[c]["available"] and clips[c]["path"] is not None]
    top = {c: _top_classes(clips[c]["labels"], onto) for c in clips}
    out = {}
    for c in usable:
        labels = set(clips[c]["labels"])
        pool = [d for d in usable if d != c and not labels & set(clips[d]["labels"])]
        far = [d for d in pool if not top[c] & top[d]]
        choose = far or pool
        if choose:
            h = int(hashlib.sha256(f"{seed}:{c}".encode()).hexdigest(), 16)
            out[c] = clips[choose[h % len(choose)]]
    return out


def silence_clip(folder: Path) -> dict:
    """A clip of 10 s of zeros at 16 kHz, written once into `folder` (same bytes on every process)."""
    import soundfile as sf

    path = Path(folder) / "silence-10s.wav"
    if not path.is_file():
        with replacing(path) as tmp:
            sf.write(tmp, np.zeros(int(SILENCE_SECONDS * SILENCE_RATE), dtype=np.float32), SILENCE_RATE,
                     subtype="PCM_16")
    return {"id": "silence", "path": str(path.resolve()), "start": 0.0, "end": None, "labels": [],
            "available": True}
