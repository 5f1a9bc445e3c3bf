"""Prompts as token ids: where the `<audio>` markers go, and the ordinary functions of ids around them.

Each marker becomes a run of placeholder ids, one per audio token. The placeholder sits outside the vocabulary,
so the language model's embedding table is never resized; the splice in `audio_llm.py` writes audio rows into
those slots. `prepended` puts every run before BOS (LTU's original); `interleaved` leaves each run where its
marker stood, and a marker at the very start of the rendered prompt also goes before BOS, so interleaved-at-0 is
prepended by construction. Attention mask, positions, labels and truncation are plain functions of the ids.
"""

from dataclasses import dataclass

import torch

from shardkit.errors import ShardkitError
from shardkit.names import POSITIONS, Placement

AUDIO = "<audio>"
AUDIO_ID = -1  # placeholder id for one audio token; never an index into the embedding table
IGNORE = -100  # label ignored by the loss (audio, padding, and the prompt when not trained on)


@dataclass(frozen=True)
class Template:
    """How an instruction is wrapped for a given LM, and whether BOS is added by us."""

    name: str
    text: str  # contains "{instruction}"
    add_bos: bool = True

    def render(self, instruction: str) -> str:
        return self.text.replace("{instruction}", instruction)


TEMPLATES = {
    t.name: t
    for t in (
        Template("alpaca_short", "### Instruction:\n{instruction}\n\n### Response:\n"),  # LTU
        Template("chatml", "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n", add_bos=False),
        Template("plain", "{instruction}"),
    )
}

# Prompt variants for the ablations: where the marker stands, and whether the text names the modality.
SUBJECT = {True: "the sound in this audio clip", False: "the sound"}


def place_marker(question: str, position: str = "middle", cue: bool = True) -> str:
    """Put one `<audio>` marker into a question written with a `{subject}` slot.

    >>> place_marker("Is {subject} a kind of animal?", "middle", cue=False)
    'Is the sound <audio> a kind of animal?'
    """
    if position not in POSITIONS:
        raise ShardkitError(f"marker position must be one of {', '.join(POSITIONS)}, got {position!r}")
    if "{subject}" not in question:
        raise ShardkitError(f"question needs a {{subject}} slot: {question!r}")
    subject = SUBJECT[cue]
    if position == "middle":
        return question.replace("{subject}", f"{subject} {AUDIO}")
    text = question.replace("{subject}", subject)
    return f"{AUDIO} {text}" if position == "start" else f"{text} {AUDIO}"


def encode(tokenizer, instruction: str, n_clips: int, n_audio_tokens: int, placement: Placement,
           template: Template, answer: str | None = None) -> tuple[list[int], int]:
    """Token ids of one prompt (and answer + EOS if given), and the length of the prompt part.

    Interleaved needs exactly one marker per clip; prepended drops any markers from the text.
    """
    ids, n_prompt, _ = encode_spans(tokenizer, instruction, n_clips, n_audio_tokens, placement, template, answer)
    return ids, n_prompt


def encode_spans(tokenizer, instruction: str, n_clips: int, n_audio_tokens: int, placement: Placement,
                 template: Template, answer: str | None = None) -> tuple[list[int], int, list[tuple[int, int]]]:
    """`encode`, and where each token comes from: its character span in `rendered(instruction, placement,
    template)` ((-1, -1) for audio slots, BOS, the answer and EOS), so that a word of the question can be found
    among the ids (the candidate whose attention `shardkit attention` measures)."""
    n_markers = instruction.count(AUDIO)
    placement = Placement(placement)
    if placement is Placement.INTERLEAVED and n_markers != n_clips:
        raise ShardkitError(f"prompt has {n_markers} {AUDIO} marker(s) but {n_clips} clip(s): {instruction!r}")
    if placement is Placement.PREPENDED and n_markers not in (0, n_clips):
        raise ShardkitError(f"prompt has {n_markers} {AUDIO} marker(s) but {n_clips} clip(s): {instruction!r}")
    bos = [tokenizer.bos_token_id] if template.add_bos and tokenizer.bos_token_id is not None else []
    run = [AUDIO_ID] * n_audio_tokens
    none = (-1, -1)
    ids: list[int] = []
    spans: list[tuple[int, int]] = []

    def add(new: list[int], where: list[tuple[int, int]] | None = None) -> None:
        ids.extend(new)
        spans.extend(where if where is not None else [none] * len(new))

    def tok(text: str, at: int) -> None:
        if text:
            t = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            add(t.input_ids, [(at + a, at + b) for a, b in t.offset_mapping])

    text = rendered(instruction, placement, template)
    if placement is Placement.PREPENDED:
        add(run * n_clips + bos)
        tok(text, 0)
    else:
        pieces = text.split(AUDIO)
        add((run if pieces[0] == "" else []) + bos)
        tok(pieces[0], 0)
        at = len(pieces[0])
        for k, piece in enumerate(pieces[1:]):
            add([] if k == 0 and pieces[0] == "" else run)
            tok(piece, at + len(AUDIO))
            at += len(AUDIO) + len(piece)
    n_prompt = len(ids)
    if answer is not None:
        add(tokenizer(answer, add_special_tokens=False).input_ids + [tokenizer.eos_token_id])
    return ids, n_prompt, spans


def rendered(instruction: str, placement: Placement, template: Template) -> str:
    """The text the tokenizer reads: the template around the instruction, with its markers (interleaved) or with
    them removed and the spaces closed up (prepended)."""
    if Placement(placement) is Placement.PREPENDED and AUDIO in instruction:
        instruction = " ".join(instruction.replace(AUDIO, " ").split())
    return template.render(instruction)


def truncate(ids: list[int], max_length: int) -> list[int]:
    """Cut a training sequence to `max_length` from the right; refuse if the cut would reach an audio run."""
    if len(ids) <= max_length:
        return ids
    if AUDIO_ID in ids[max_length:]:
        raise ShardkitError(f"sequence of {len(ids)} tokens cut to {max_length} would cut audio tokens; "
                            f"raise max_length or shorten the prompt")
    return ids[:max_length]


def collate(seqs: list[list[int]], pad_id: int, n_prompt: list[int] | None = None, train_on_prompt: bool = True
            ) -> dict[str, torch.Tensor]:
    """Left-pad a batch: ids, attention mask, position ids (counting real tokens only) and labels.

    Shapes: input_ids, attention_mask, position_ids, labels [b, s]; audio slots keep AUDIO_ID in input_ids.
    """
    s = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), s), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), s), dtype=torch.long)
    labels = torch.full((len(seqs), s), IGNORE, dtype=torch.long)
    for i, x in enumerate(seqs):
        ids[i, s - len(x):] = torch.tensor(x, dtype=torch.long)
        mask[i, s - len(x):] = 1
        lab = torch.tensor(x, dtype=torch.long)
        lab[lab == AUDIO_ID] = IGNORE
        if n_prompt is not None and not train_on_prompt:
            lab[: n_prompt[i]] = IGNORE
        labels[i, s - len(x):] = lab
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # [b, s]: 0 at the first real token wherever padding ends
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "labels": labels}
