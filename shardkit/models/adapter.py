"""Request-level scoring for every AudioLLM family: the part that knows about files, batches and caches.

Callers hand in a list of small frozen requests and get results back in the same order (lm-eval's model
contract). The adapter loads each clip once, keeps its front-end features in the on-disk cache and its
projected audio embeddings in memory, sorts requests by length into batches, and turns a clip that fails
to load into a per-item error instead of a crash.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from shardkit.errors import ShardkitError
from shardkit.models.audio_llm import AudioLLM
from shardkit.models.prompts import AUDIO_ID, collate, encode, encode_spans, rendered
from shardkit.names import Placement

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioRef:
    """One clip: a file and the seconds of it to use (end None: to the end of the file)."""

    path: str
    start: float = 0.0
    end: float | None = None


@dataclass(frozen=True)
class Request:
    prompt: str  # instruction text with one <audio> marker per clip (markers are dropped when prepended)
    audio: tuple[AudioRef, ...] = ()
    placement: Placement = Placement.INTERLEAVED
    continuations: tuple[str, ...] = ()  # cloze candidates, appended as written (include a leading space)


@dataclass(frozen=True)
class Result:
    value: float | str | list[float] | None
    error: str | None = None


@dataclass
class SpliceAdapter:
    """Scores requests with an AudioLLM whose audio goes through `featurize` (a 16 kHz wave → features).

    `featurize` is the frozen front end (Kaldi fbank for LTU, YAMNet embeddings for tiny-ltu); its output is
    cached on disk per clip under `feature_id` when a cache is given.
    """

    model: AudioLLM
    featurize: Callable[[np.ndarray], np.ndarray]
    feature_id: str
    window_seconds: float
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    batch_size: int = 8
    cache: object | None = None  # shardkit.audio.cache.FeatureCache
    share_prefix: bool = True  # yes_no: each clip's shared question prefix once; cloze: each prompt once (False:
    #                            every prompt whole, for every continuation)
    _embeds: dict = field(default_factory=dict, repr=False)  # AudioRef -> [n_a, d], valid while weights are fixed

    # ------------------------------------------------------------------ audio

    @property
    def tunable(self) -> AudioLLM:
        """What `shardkit train` trains: the AudioLLM itself."""
        return self.model

    def encode_sample(self, instruction: str, answer: str, placement: str, refs) -> tuple[list[int], int]:
        """(ids with AUDIO_ID slots, prompt length) of a training sample."""
        m = self.model
        return encode(m.tokenizer, instruction, len(refs), m.n_audio_tokens, placement, m.template, answer)

    def features(self, ref: AudioRef) -> np.ndarray:
        """Front-end features of one clip (cached on disk); raises ShardkitError for unusable audio."""
        from shardkit.audio.cache import clip_key
        from shardkit.audio.io import load_audio

        def compute() -> np.ndarray:
            return self.featurize(load_audio(ref.path, ref.start, ref.end, max_seconds=self.window_seconds))

        if self.cache is None:
            return compute()
        return self.cache.get_or_compute(clip_key(Path(ref.path), ref.start, ref.end), compute)

    @torch.no_grad()
    def audio_embeds(self, refs: Sequence[AudioRef]) -> torch.Tensor | None:
        """Projected audio embeddings of clips in order: [n, n_a, d]; encoder runs once per distinct clip."""
        todo = [r for r in dict.fromkeys(refs) if r not in self._embeds]
        if todo:
            feats = torch.from_numpy(np.stack([self.features(r) for r in todo])).to(self.device, self.dtype)
            for r, e in zip(todo, self.model.encode_audio(feats), strict=True):
                self._embeds[r] = e
        if not refs:
            return None
        return torch.stack([self._embeds[r] for r in refs])

    def forget_audio(self) -> None:
        """Drop in-memory embeddings (call after the encoder or projector changes)."""
        self._embeds.clear()

    # ------------------------------------------------------------------ scoring

    def _batches(self, requests: Sequence[Request],
                 extra: Callable[[Request, list[int]], list[list[int]]] | None = None):
        """Yield (indices, sequences, refs) batches sorted by length; failed items come back as errors."""
        errors: dict[int, str] = {}
        seqs: dict[int, list[list[int]]] = {}
        for i, r in enumerate(requests):
            try:
                self.audio_embeds(r.audio)  # load + cache now, so a bad clip fails only its own item
                ids, _ = encode(self.model.tokenizer, r.prompt, len(r.audio), self.model.n_audio_tokens,
                                r.placement, self.model.template)
                seqs[i] = extra(r, ids) if extra else [ids]
            except ShardkitError as e:
                errors[i] = str(e)
        order = sorted(seqs, key=lambda i: max(len(s) for s in seqs[i]))
        return errors, seqs, order

    def _chunks(self, order):
        for k in range(0, len(order), self.batch_size):
            yield order[k:k + self.batch_size]

    def _whole(self, order: list[int], sizes: list[int]):
        """Consecutive requests whose rows (sizes) fit in a batch; a request larger than a batch goes alone. Each
        request's rows stay in one chunk, so that its prompt runs once."""
        chunk, rows = [], 0
        for i, n in zip(order, sizes, strict=True):
            if chunk and rows + n > self.batch_size:
                yield chunk
                chunk, rows = [], 0
            chunk.append(i)
            rows += n
        if chunk:
            yield chunk

    def yes_no(self, requests: Sequence[Request]) -> list[Result]:
        """log P(yes) − log P(no) for the next token after each prompt.

        Questions whose tokens up to the end of their audio are the same (one clip, one question form) share those
        tokens and whatever else they have in common after them: that prefix runs once and each question continues
        from its KV cache (`AudioLLM.yes_no_prefixed`).
        """
        errors, seqs, order = self._batches(requests)
        out: dict[int, Result] = {i: Result(None, e) for i, e in errors.items()}
        groups: dict[tuple, list[int]] = {}  # (clips, prefix ids) -> requests, in length order
        plain = []
        for i in order:
            ids = seqs[i][0]
            cut = max((k for k, x in enumerate(ids) if x == AUDIO_ID), default=len(ids) - 1) + 1
            if cut < len(ids) and self.share_prefix:
                groups.setdefault((requests[i].audio, tuple(ids[:cut])), []).append(i)
            else:  # no audio, or audio at the very end: nothing to share
                plain.append(i)
        for chunk in self._chunks(plain):
            b = self._to_device(collate([seqs[i][0] for i in chunk], self.model.pad_id))
            audio = self.audio_embeds([a for i in chunk for a in requests[i].audio])
            scores = self.model.yes_no(b["input_ids"], b["attention_mask"], b["position_ids"], audio)
            out.update({i: Result(float(s)) for i, s in zip(chunk, scores, strict=True)})
        rows = []
        for (clips, _), members in groups.items():  # share what the group's questions have in common, past the audio
            first = seqs[members[0]][0]
            n = min(len(seqs[i][0]) for i in members) - 1  # each question keeps at least one token of its own
            lcp = next((k for k in range(n) if any(seqs[i][0][k] != first[k] for i in members)), n)
            rows += [((clips, tuple(first[:lcp])), i) for i in members]
        for chunk in self._chunks(rows):
            keys = list(dict.fromkeys(key for key, _ in chunk))
            prefix = self._to_device(collate([list(ids) for _, ids in keys], self.model.pad_id))
            audio = self.audio_embeds([a for clips, _ in keys for a in clips])
            suffixes = [seqs[i][0][len(key[1]):] for key, i in chunk]
            t = max(map(len, suffixes))
            suffix = torch.tensor([x + [self.model.pad_id] * (t - len(x)) for x in suffixes], device=self.device)
            mask = torch.tensor([[1] * len(x) + [0] * (t - len(x)) for x in suffixes], device=self.device)
            owner = torch.tensor([keys.index(key) for key, _ in chunk], device=self.device)
            scores = self.model.yes_no_prefixed(prefix, audio, suffix, mask, owner)
            out.update({i: Result(float(s)) for (_, i), s in zip(chunk, scores, strict=True)})
        return [out[i] for i in range(len(requests))]

    def generate(self, requests: Sequence[Request], max_new_tokens: int = 32, **gen) -> list[Result]:
        """Decoded text after each prompt; greedy unless sampling options are given."""
        gen.setdefault("do_sample", False)
        errors, seqs, order = self._batches(requests)
        out: dict[int, Result] = {i: Result(None, e) for i, e in errors.items()}
        for chunk in self._chunks(order):
            b = self._to_device(collate([seqs[i][0] for i in chunk], self.model.pad_id))
            audio = self.audio_embeds([a for i in chunk for a in requests[i].audio])
            new = self.model.generate(b["input_ids"], b["attention_mask"], audio, max_new_tokens=max_new_tokens,
                                      **gen)
            texts = self.model.tokenizer.batch_decode(new, skip_special_tokens=True)
            out.update({i: Result(t.strip()) for i, t in zip(chunk, texts, strict=True)})
        return [out[i] for i in range(len(requests))]

    def cloze(self, requests: Sequence[Request], per_token: bool = False) -> list[Result]:
        """Log-likelihood of each continuation given the prompt (or its mean per token, `per_token`, so that
        length alone does not rank continuations): one list of floats per request."""
        tok = self.model.tokenizer

        def with_continuations(r: Request, ids: list[int]) -> list[list[int]]:
            if not r.continuations:
                raise ShardkitError(f"cloze request without continuations: {r.prompt!r}")
            conts = [tok(c, add_special_tokens=False).input_ids for c in r.continuations]
            if not all(conts):
                raise ShardkitError(f"cloze continuation {r.continuations[conts.index([])]!r} has no tokens")
            return [ids + c for c in conts]

        errors, seqs, order = self._batches(requests, with_continuations)
        out: dict[int, Result] = {i: Result(None, e) for i, e in errors.items()}
        flat = [(i, j) for i in order for j in range(len(seqs[i]))]
        scores: dict[int, list[float]] = {i: [0.0] * len(seqs[i]) for i in order}
        if self.share_prefix:  # each prompt once, every continuation from its KV cache
            conts = {i: [tok(c, add_special_tokens=False).input_ids for c in requests[i].continuations] for i in order}
            for keys in self._whole(order, [len(conts[i]) for i in order]):
                chunk = [(i, j) for i in keys for j in range(len(conts[i]))]
                prefix = self._to_device(collate([seqs[i][0][:len(seqs[i][0]) - len(conts[i][0])] for i in keys],
                                                 self.model.pad_id))
                audio = self.audio_embeds([a for i in keys for a in requests[i].audio])
                rows = [conts[i][j] for i, j in chunk]
                t = max(map(len, rows))
                ids = torch.tensor([x + [self.model.pad_id] * (t - len(x)) for x in rows], device=self.device)
                mask = torch.tensor([[1] * len(x) + [0] * (t - len(x)) for x in rows], device=self.device)
                owner = torch.tensor([keys.index(i) for i, _ in chunk], device=self.device)
                lp = self.model.continuation_logprob_prefixed(prefix, audio, ids, mask, owner)
                for (i, j), v, x in zip(chunk, lp, rows, strict=True):
                    scores[i][j] = float(v) / len(x) if per_token else float(v)
            out.update({i: Result(scores[i]) for i in order})
            return [out[i] for i in range(len(requests))]
        for chunk in self._chunks(flat):
            rows = [seqs[i][j] for i, j in chunk]
            b = self._to_device(collate(rows, self.model.pad_id))
            audio = self.audio_embeds([a for i, _ in chunk for a in requests[i].audio])
            n_cont = [len(tok(requests[i].continuations[j], add_special_tokens=False).input_ids) for i, j in chunk]
            lp = self.model.continuation_logprob(b["input_ids"], b["attention_mask"], b["position_ids"], n_cont,
                                                 audio)
            for (i, j), v, n in zip(chunk, lp, n_cont, strict=True):
                scores[i][j] = float(v) / n if per_token else float(v)
        out.update({i: Result(scores[i]) for i in order})
        return [out[i] for i in range(len(requests))]

    @torch.no_grad()
    def attention(self, requests: Sequence[Request], words: Sequence[str | None],
                  layers: Sequence[int] | None = None) -> list[Result]:
        """Where each prompt's attention goes (`models/attention.py`): the share of attention that its answer
        position (the last token, where yes/no is read) and the tokens of `words[i]` (its last occurrence in the
        prompt; None: the answer position only, the word's set NaN) give to the sink (the first token and BOS),
        the text before the audio, the audio and the text after it. Result.value is [layers, heads, 2 (answer,
        word), roles] as lists.

        Every prompt runs whole (no shared prefix), the LM in eager attention; one layer's weights exist at a time.
        """
        from shardkit.models.attention import AttentionShares, answer_and_word, token_roles

        out: dict[int, Result] = {}
        rows: dict[int, tuple[list[int], list[int]]] = {}  # request -> (ids, positions of its word)
        for i, (r, word) in enumerate(zip(requests, words, strict=True)):
            try:
                self.audio_embeds(r.audio)
                ids, _, spans = encode_spans(self.model.tokenizer, r.prompt, len(r.audio), self.model.n_audio_tokens,
                                             r.placement, self.model.template)
                at: list[int] = []
                if word is not None:
                    start = rendered(r.prompt, r.placement, self.model.template).rfind(word)
                    if start < 0:
                        raise ShardkitError(f"{word!r} is not in the prompt {r.prompt!r}")
                    at = [k for k, (a, b) in enumerate(spans) if a < start + len(word) and b > start]
                rows[i] = ids, at
            except ShardkitError as e:
                out[i] = Result(None, str(e))
        order = sorted(rows, key=lambda i: len(rows[i][0]))
        with AttentionShares(self.model.lm, layers=layers) as shares:
            for chunk in self._chunks(order):
                b = collate([rows[i][0] for i in chunk], self.model.pad_id)
                roles = token_roles(b["input_ids"], b["attention_mask"], self.model.tokenizer.bos_token_id)
                words_at = answer_and_word(b["attention_mask"], [rows[i][1] for i in chunk])
                shares.set_batch(roles.to(self.device), words_at)
                b = self._to_device(b)
                audio = self.audio_embeds([a for i in chunk for a in requests[i].audio])
                self.model(b["input_ids"], b["attention_mask"], b["position_ids"], audio)
                got = shares.result()  # [layers, b, heads, 2, roles]
                out.update({i: Result(got[:, row].tolist()) for row, i in enumerate(chunk)})
        return [out[i] for i in range(len(requests))]

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in batch.items()}
