"""How a SHARD item becomes a model request, and how an answer becomes a prediction.

One question template per task, with a `{subject}` slot that `place_marker` fills with the audio marker (or,
for the text-only control, the gold label in words). Yes/no questions end with their candidate, so every
question about one clip shares all tokens up to it, which the adapter computes once (KV-cache reuse). Yes/no
answers are parsed two ways — strictly (the first word) and leniently (the first whole-word yes/no) — and an answer
that parses to neither stays unparsed: it is counted, never guessed. Cloze turns each task into a statement
whose continuation is the candidate.
"""

import re
from dataclasses import dataclass

from shardkit.eval.controls import CONTROL, split_condition
from shardkit.models.adapter import AudioRef, Request
from shardkit.models.prompts import place_marker
from shardkit.names import Placement

QUESTIONS = {
    "synonym": 'Answer yes or no: is the source of {subject} also known as "{candidate}"?',
    "hypernym": "Answer yes or no: is the source of {subject} a kind of {candidate}?",
    "identity": "What is the source of {subject}? Answer in a few words.",
}
STATEMENTS = {  # cloze: the candidate completes the statement
    "synonym": "Another word for the source of {subject} is",
    "hypernym": "The source of {subject} is a kind of",
    "identity": "The source of {subject} is a",
}


@dataclass(frozen=True)
class PromptStyle:
    position: str = "middle"  # where the marker stands: start | middle | end
    cue: bool = True  # name the modality ("the sound in this audio clip")


def _subject_prompt(template: str, item: dict, condition: str, style: PromptStyle, label: str | None = None) -> str:
    text = template.replace("{candidate}", item["candidate"] or "")
    if condition == CONTROL:  # the gold label in words instead of audio: did it fail to hear, or to reason?
        label = item["word"]
    if label is not None:  # a label in words (the gold one, or the model's own under the cascade)
        return text.replace("{subject}", f'the sound of "{label}"')
    return place_marker(text, style.position, style.cue)


def audio_ref(item: dict, audio_root: str) -> AudioRef:
    clip = item["clip"]
    path = clip["path"] if clip["path"].startswith("/") else f"{audio_root}/{clip['path']}"
    return AudioRef(path, clip["start"], clip["end"])


def make_request(item: dict, condition: str, scoring: str, audio_root: str, style: PromptStyle,
                 identity_candidates: tuple[str, ...] = (), clip: dict | None = None,
                 label: str | None = None) -> Request:
    """The request for one item under one condition: a placement, an audio control of one (`clip` is the audio
    heard instead of the item's: another class's clip, or silence), the cascade of one (`label`, the model's own
    name for the clip, in words instead of the audio), or the text-only control."""
    task = item["task"]
    cloze = scoring == "cloze"
    prompt = _subject_prompt((STATEMENTS if cloze else QUESTIONS)[task], item, condition, style, label)
    if condition == CONTROL or label is not None:
        audio, placement = (), Placement.INTERLEAVED
    else:  # an unavailable clip (no path) becomes an error record; its request is never sent
        heard = item if clip is None else {"clip": clip}
        audio = (audio_ref(heard, audio_root),) if heard["clip"]["path"] is not None else ()
        placement = Placement(split_condition(condition)[0])
    continuations = ()
    if cloze:
        continuations = identity_candidates if task == "identity" else (item["candidate"],)
        continuations = tuple(f" {c}" for c in continuations)
    return Request(prompt, audio, placement, continuations)


_YESNO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str | None) -> tuple[str | None, str | None]:
    """(strict, lenient) parse: strict = the first word is yes/no; lenient = the first whole-word yes/no anywhere.

    The first, not the last: an answer leads with its verdict ("Yes, there is no doubt"), and later yes/no words
    are usually part of the explanation.
    """
    if not text:
        return None, None
    first = re.match(r"\W*(\w+)", text)
    strict = first.group(1).lower() if first and first.group(1).lower() in ("yes", "no") else None
    found = _YESNO.search(text)
    return strict, (found.group(1).lower() if found else None)
