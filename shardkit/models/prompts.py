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
    n_markers = instruction.count(AUDIO)
    placement = Placement(placement)
    if placement is Placement.INTERLEAVED and n_markers != n_clips:
        raise ShardkitError(f"prompt has {n_markers} {AUDIO} marker(s) but {n_clips} clip(s): {instruction!r}")
    if placement is Placement.PREPENDED and n_markers not in (0, n_clips):
        raise ShardkitError(f"prompt has {n_markers} {AUDIO} marker(s) but {n_clips} clip(s): {instruction!r}")
    bos = [tokenizer.bos_token_id] if template.add_bos and tokenizer.bos_token_id is not None else []
    run = [AUDIO_ID] * n_audio_tokens

    def tok(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids if text else []

    if placement is Placement.PREPENDED:
        text = " ".join(instruction.replace(AUDIO, " ").split()) if n_markers else instruction
        ids = run * n_clips + bos + tok(template.render(text))
    else:
        pieces = template.render(instruction).split(AUDIO)
        ids = (run if pieces[0] == "" else []) + bos + tok(pieces[0])
        for k, piece in enumerate(pieces[1:]):
            ids += ([] if k == 0 and pieces[0] == "" else run) + tok(piece)
    n_prompt = len(ids)
    if answer is not None:
        ids += tok(answer) + [tokenizer.eos_token_id]
    return ids, n_prompt


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
