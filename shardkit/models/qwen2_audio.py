"""Qwen2-Audio through transformers' own classes, behind the same request-level interface as `SpliceAdapter`.

Qwen2-Audio already lets audio stand anywhere in the text: its processor expands each `<|AUDIO|>` token into one
placeholder per encoder frame (about 25 per second) and the model writes its Whisper-encoder rows there. So this
file only renders our placements as chat text and batches requests; features, splice, scoring heads and decoding
are stock `Qwen2AudioProcessor` and `Qwen2AudioForConditionalGeneration`, with no forked modeling code.

The text the model sees, one string (the system turn is the one the Instruct chat template adds by default):

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
    <|im_start|>user\\n{user}<|im_end|>\\n<|im_start|>assistant\\n

    interleaved  {user} = the prompt, each `<audio>` replaced by `<|audio_bos|><|AUDIO|><|audio_eos|>` in place
    prepended    {user} = `Audio k: <|audio_bos|><|AUDIO|><|audio_eos|>\\n` for k = 1..n, then the prompt with its
                 markers removed: byte for byte what the model's own chat template renders for [audio..., text]

Prepended keeps the template's `Audio k:` labels so that it is the stock Instruct prompt every public example uses;
a bare run before the text (the base model's eval format) is the interleaved prompt `<audio>...`, so both stay
expressible without a switch.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from shardkit.errors import ShardkitError
from shardkit.models.adapter import AudioRef, Request, Result
from shardkit.models.audio_llm import NO, YES, answer_token_ids
from shardkit.models.prompts import AUDIO
from shardkit.names import Placement

if TYPE_CHECKING:
    from transformers import Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

log = logging.getLogger(__name__)

SR = 16_000
WINDOW_SECONDS = 30.0  # Whisper's window: the feature extractor pads or cuts every clip to 30 s
# A clip under 7 feature frames gives a single <|AUDIO|> token, and a batch without two adjacent audio tokens sends
# transformers down its legacy expand-inside-the-model path; 0.1 s of zero padding guarantees 2 tokens.
MIN_SAMPLES = 1_600
SYSTEM = "You are a helpful assistant."  # the system turn Qwen2-Audio-Instruct's chat template adds by default
AUDIO_TOKEN, AUDIO_BOS, AUDIO_EOS = "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"
CLIP = f"{AUDIO_BOS}{AUDIO_TOKEN}{AUDIO_EOS}"


def audio_tokens(n_samples: int) -> int:
    """How many `<|AUDIO|>` positions the processor gives a clip of n_samples at 16 kHz (30 s: 750)."""
    frames = min(-(-n_samples // 160), 3000)  # Whisper hop of 10 ms, window of 3000 frames
    return (((frames - 1) // 2 + 1) - 2) // 2 + 1  # conv stride 2, then average pooling by 2


@dataclass
class Qwen2AudioAdapter:
    """Scores requests with a stock Qwen2-Audio model; results come back in request order.

    Each distinct clip is read once per call; a clip that fails to load, or a prompt whose markers do not match
    its clips, becomes an error for that item only.
    """

    model: "Qwen2AudioForConditionalGeneration"
    processor: "Qwen2AudioProcessor"
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    batch_size: int = 8
    system: str | None = SYSTEM  # None: no system turn
    _yn: tuple[list[int], list[int]] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ text

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def render(self, request: Request) -> str:
        """The chat text of one request, with one `<|AUDIO|>` per clip (the processor expands each)."""
        prompt, n_clips, n_markers = request.prompt, len(request.audio), request.prompt.count(AUDIO)
        placement = Placement(request.placement)
        if n_markers != n_clips and (placement is Placement.INTERLEAVED or n_markers != 0):
            raise ShardkitError(f"prompt has {n_markers} {AUDIO} marker(s) but {n_clips} clip(s): {prompt!r}")
        for reserved in (AUDIO_TOKEN, AUDIO_BOS, AUDIO_EOS):
            if reserved in prompt:
                raise ShardkitError(f"prompt contains Qwen2-Audio's reserved token {reserved}; write {AUDIO} for "
                                    f"a clip instead: {prompt!r}")
        if placement is Placement.INTERLEAVED:
            user = prompt.replace(AUDIO, CLIP)
        else:
            text = " ".join(prompt.replace(AUDIO, " ").split()) if n_markers else prompt
            user = "".join(f"Audio {k}: {CLIP}\n" for k in range(1, n_clips + 1)) + text
        system = f"<|im_start|>system\n{self.system}<|im_end|>\n" if self.system is not None else ""
        return f"{system}<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    # ------------------------------------------------------------------ batching

    def _load(self, ref: AudioRef, waves: dict) -> np.ndarray:
        """One clip as float32 at 16 kHz (at most 30 s, at least 0.1 s); read once per call, failures too."""
        from shardkit.audio.io import load_audio

        if ref not in waves:
            try:
                x = load_audio(ref.path, ref.start, ref.end, max_seconds=WINDOW_SECONDS)
                waves[ref] = np.pad(x, (0, max(0, MIN_SAMPLES - len(x))))  # [n >= MIN_SAMPLES]
            except ShardkitError as e:
                waves[ref] = e
        if isinstance(waves[ref], ShardkitError):
            raise waves[ref]
        return waves[ref]

    def _prepare(self, requests: Sequence[Request], cloze: bool = False):
        """Per item: rows of (text, continuation tokens), or an error; and the order that sorts items by length."""
        waves: dict[AudioRef, np.ndarray | ShardkitError] = {}
        errors: dict[int, str] = {}
        rows: dict[int, list[tuple[str, int]]] = {}
        length: dict[int, int] = {}
        for i, r in enumerate(requests):
            try:
                text = self.render(r)
                n_audio = sum(audio_tokens(len(self._load(a, waves))) - 1 for a in r.audio)
                rows[i] = [(text, 0)] if not cloze else self._cloze_rows(r, text)
                length[i] = len(self._ids(text)) + n_audio + max(n for _, n in rows[i])
            except ShardkitError as e:
                errors[i] = str(e)
        return waves, errors, rows, sorted(rows, key=length.__getitem__)

    def _cloze_rows(self, r: Request, text: str) -> list[tuple[str, int]]:
        """Prompt + each continuation, checked to tokenize as the continuation alone does (no merge at the seam)."""
        if not r.continuations:
            raise ShardkitError(f"cloze request without continuations: {r.prompt!r}")
        out = []
        for c in r.continuations:
            cont = self._ids(c)
            if not cont:
                raise ShardkitError(f"cloze continuation {c!r} has no tokens: {r.prompt!r}")
            if self._ids(text + c)[-len(cont):] != cont:
                raise ShardkitError(f"cloze continuation {c!r} tokenizes differently after the prompt; "
                                    f"start it with a space or newline: {r.prompt!r}")
            out.append((text + c, len(cont)))
        return out

    def _chunks(self, items: list):
        for k in range(0, len(items), self.batch_size):
            yield items[k:k + self.batch_size]

    def _inputs(self, texts: list[str], clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Processor output for one left-padded batch, plus position ids that count real tokens only.

        Shapes: input_ids, attention_mask, position_ids [b, s]; input_features [n_clips, 128, 3000] and
        feature_attention_mask [n_clips, 3000], clips in reading order (absent without audio).
        """
        enc = self.processor(text=texts, audio=clips or None, sampling_rate=SR, padding=True, padding_side="left",
                             return_tensors="pt")
        enc["position_ids"] = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)  # [b, s]
        return {k: v.to(self.device) for k, v in enc.items()}

    def _hidden(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last hidden states of the language model after the stock audio merge: [b, s, d]."""
        return self.model.model(**inputs, use_cache=False).last_hidden_state

    # ------------------------------------------------------------------ scoring

    @torch.no_grad()
    def yes_no(self, requests: Sequence[Request]) -> list[Result]:
        """log P(yes) − log P(no) at the next token, summed over every spelling of each that can follow the prompt."""
        if self._yn is None:
            prompt = self.render(Request("Q"))  # the chat text up to the assistant turn, as every row ends
            self._yn = (answer_token_ids(self.tokenizer, YES, prompt), answer_token_ids(self.tokenizer, NO, prompt))
        yes, no = self._yn
        waves, errors, rows, order = self._prepare(requests)
        out = {i: Result(None, e) for i, e in errors.items()}
        for chunk in self._chunks(order):
            inputs = self._inputs([rows[i][0][0] for i in chunk], [waves[a] for i in chunk for a in requests[i].audio])
            h = self._hidden(inputs)[:, -1]  # [b, d]: left padding puts every prompt's end last
            logp = self.model.get_output_embeddings()(h).float().log_softmax(-1)  # [b, vocab]
            scores = logp[:, yes].logsumexp(-1) - logp[:, no].logsumexp(-1)  # [b]
            out.update({i: Result(float(s)) for i, s in zip(chunk, scores, strict=True)})
        return [out[i] for i in range(len(requests))]

    @torch.no_grad()
    def generate(self, requests: Sequence[Request], max_new_tokens: int = 32, **gen) -> list[Result]:
        """Decoded text after each prompt through the model's stock `generate`; greedy unless told otherwise."""
        gen.setdefault("do_sample", False)
        gen.setdefault("pad_token_id", self.pad_id)
        waves, errors, rows, order = self._prepare(requests)
        out = {i: Result(None, e) for i, e in errors.items()}
        for chunk in self._chunks(order):
            inputs = self._inputs([rows[i][0][0] for i in chunk], [waves[a] for i in chunk for a in requests[i].audio])
            inputs.pop("position_ids")  # generate derives them from the mask, step by step
            seqs = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **gen)  # [b, s + t]
            new = seqs[:, inputs["input_ids"].shape[1]:]  # [b, t]
            texts = self.processor.batch_decode(new, skip_special_tokens=True)
            out.update({i: Result(t.strip()) for i, t in zip(chunk, texts, strict=True)})
        return [out[i] for i in range(len(requests))]

    @torch.no_grad()
    def cloze(self, requests: Sequence[Request], per_token: bool = False) -> list[Result]:
        """Summed log-probability of each continuation after the prompt (or its mean per token, `per_token`, so
        that length alone does not rank continuations): one list of floats per request."""
        waves, errors, rows, order = self._prepare(requests, cloze=True)
        out = {i: Result(None, e) for i, e in errors.items()}
        flat = [(i, j) for i in order for j in range(len(rows[i]))]
        scores = {i: [0.0] * len(rows[i]) for i in order}
        head = self.model.get_output_embeddings()
        for chunk in self._chunks(flat):
            inputs = self._inputs([rows[i][j][0] for i, j in chunk],
                                  [waves[a] for i, _ in chunk for a in requests[i].audio])
            h = self._hidden(inputs)  # [b, s, d]
            ids, s = inputs["input_ids"], inputs["input_ids"].shape[1]
            for k, (i, j) in enumerate(chunk):
                n = rows[i][j][1]
                logits = head(h[k, s - n - 1: s - 1]).float()  # [n, vocab]: the positions that predict the tail
                total = float(logits.log_softmax(-1).gather(-1, ids[k, s - n:, None]).sum())
                scores[i][j] = total / n if per_token else total
        out.update({i: Result(scores[i]) for i in order})
        return [out[i] for i in range(len(requests))]


    @torch.no_grad()
    def attention(self, requests: Sequence[Request], words: Sequence[str | None],
                  layers: Sequence[int] | None = None) -> list[Result]:
        """`SpliceAdapter.attention` for Qwen2-Audio: the share of attention that the answer position and the tokens
        of `words[i]` give to the sink (the first token), the text before the audio, the `<|AUDIO|>` positions
        and the text after them, per layer and head of the language model: [layers, heads, 2, roles] as lists."""
        from shardkit.models.attention import AttentionShares, answer_and_word, token_roles

        audio_id = self.processor.audio_token_id
        waves, errors, rows, order = self._prepare(requests)
        out = {i: Result(None, e) for i, e in errors.items()}
        at: dict[int, list[int]] = {}  # positions of the word in the expanded ids, counted from the row's start
        for i in list(order):
            try:
                at[i] = self._word_positions(rows[i][0][0], words[i], [waves[a] for a in requests[i].audio])
            except ShardkitError as e:
                out[i] = Result(None, str(e))
                order.remove(i)
        with AttentionShares(self.model, layers=layers) as shares:
            for chunk in self._chunks(order):
                inputs = self._inputs([rows[i][0][0] for i in chunk],
                                      [waves[a] for i in chunk for a in requests[i].audio])
                ids, mask = inputs["input_ids"], inputs["attention_mask"]
                shares.set_batch(token_roles(ids, mask, audio_id=audio_id),
                                 answer_and_word(mask.cpu(), [at[i] for i in chunk]))
                self.model.model(**inputs, use_cache=False)
                got = shares.result()  # [layers, b, heads, 2, roles]
                out.update({i: Result(got[:, row].tolist()) for row, i in enumerate(chunk)})
        return [out[i] for i in range(len(requests))]

    def _word_positions(self, text: str, word: str | None, waves: list[np.ndarray]) -> list[int]:
        """Positions of the tokens of `word` (its last occurrence in the chat text) in the ids the processor makes,
        where each `<|AUDIO|>` becomes one position per encoder frame."""
        if word is None:
            return []
        start = text.rfind(word)
        if start < 0:
            raise ShardkitError(f"{word!r} is not in the prompt {text!r}")
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        audio_id, extra, out = self.processor.audio_token_id, iter(audio_tokens(len(w)) - 1 for w in waves), []
        shift = 0
        for k, (tid, (a, b)) in enumerate(zip(enc.input_ids, enc.offset_mapping, strict=True)):
            if a < start + len(word) and b > start:
                out.append(k + shift)
            if tid == audio_id:
                shift += next(extra)
        return out


def load_qwen2_audio(path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
                     batch_size: int = 8) -> Qwen2AudioAdapter:
    """Model and processor from a local checkpoint folder (as `save_pretrained` writes it); never the hub.

    Raises ShardkitError when the folder is missing, cannot be loaded, or its processor and model disagree on
    the `<|AUDIO|>` token id.
    """
    from transformers import Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

    path = Path(path)
    if not path.is_dir():
        raise ShardkitError(f"{path}: no such folder; qwen2-audio needs path= a local folder with the model and "
                            f"processor files")
    try:
        processor = Qwen2AudioProcessor.from_pretrained(path, local_files_only=True)
        model = Qwen2AudioForConditionalGeneration.from_pretrained(path, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise ShardkitError(f"{path}: cannot load Qwen2-Audio ({' '.join(str(e).split())[:300]})") from e
    if processor.audio_token_id != model.config.audio_token_id:
        raise ShardkitError(f"{path}: processor's {AUDIO_TOKEN} is id {processor.audio_token_id} but the model "
                            f"expects {model.config.audio_token_id}; the folder mixes two checkpoints")
    log.info("Qwen2-Audio from %s: %.2fB parameters, %s on %s", path, model.num_parameters() / 1e9, dtype, device)
    return Qwen2AudioAdapter(model.to(device).eval(), processor, device, dtype, batch_size)
