"""Audio LLMs through transformers' own classes — Qwen2-Audio, Audio Flamingo 3, Music Flamingo, GLM-ASR — behind
the same request-level interface as `SpliceAdapter`.

Each of these processors expands an audio placeholder token, wherever it stands in the text, into one position per
encoder frame, and the model writes its encoder rows there. So a family here (`Family`) only says how our placements
are written as chat text; features, splice, scoring heads and decoding are the stock processor and model, with no
forked modeling code. The text a model sees is one string: its chat turns (ChatML with the default system turn of
the Instruct template, GLM-ASR's `<|user|>` / `<|assistant|>`) around the user text, which is

    interleaved  the prompt, each `<audio>` replaced by the family's clip text in place
    prepended    the clips first, as the family's own chat template renders [audio..., text], then the prompt with
                 its markers removed

    family          clip text (the processor expands the placeholder)          prepended, per clip
    qwen2-audio     <|audio_bos|><|AUDIO|><|audio_eos|>                         Audio k: {clip}\n
    af3             <sound>                                                     {clip}
    music-flamingo  <sound> (the processor adds <|sound_bos|>, <|sound_eos|>)   {clip}
    glm-asr         <|begin_of_audio|><|pad|><|end_of_audio|>                   {clip}\n

Prepended is the stock prompt public examples use; a bare run before the text is the interleaved prompt `<audio>...`,
so both stay expressible without a switch. No chat template here moves audio: what the placement says is what the
model gets (tests/models/test_hf_audio.py checks the ids for every family).
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from shardkit.audio.io import SR
from shardkit.errors import ShardkitError
from shardkit.models.adapter import AudioRef, Request, Result
from shardkit.models.audio_llm import NO, YES, answer_token_ids
from shardkit.models.prompts import AUDIO
from shardkit.names import Placement

log = logging.getLogger(__name__)

WINDOW_SECONDS = 30.0  # Whisper's window: the feature extractor pads or cuts every clip to 30 s (a clip is cut here)
# A clip under 7 feature frames gives a single audio token, and a Qwen2-Audio batch without two adjacent audio tokens
# goes down transformers' legacy expand-inside-the-model path (Audio Flamingo gives such a clip none): 0.1 s of zero
# padding guarantees 2 tokens.
MIN_SAMPLES = 1_600
SYSTEM = "You are a helpful assistant."  # the system turn each family's Instruct chat template adds by default


CHATML = ("<|im_start|>system\n{}<|im_end|>\n", "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n")


def whisper_tokens(n_samples: int) -> int:
    """Audio positions a Whisper-encoder family (Qwen2-Audio, Audio Flamingo) gives a clip of n_samples at 16 kHz."""
    frames = min(-(-n_samples // 160), 3000)  # Whisper hop of 10 ms, window of 3000 frames
    return (((frames - 1) // 2 + 1) - 2) // 2 + 1  # conv stride 2, then average pooling by 2 (30 s: 750)


def glm_tokens(n_samples: int) -> int:
    """GLM-ASR's positions for a clip: two convs (stride 1, then 2), then 4 frames merged into one (12.5 per second)."""
    frames = min(-(-n_samples // 160), 3000)
    return (((frames - 1) // 2 + 1) - 4) // 4 + 1


@dataclass(frozen=True)
class Family:
    """How one stock family writes audio into chat text; everything else is its processor and model."""

    name: str  # registry name
    title: str
    model_class: str  # in transformers
    processor_class: str
    placeholder: str  # the token its processor expands into one position per encoder frame
    clip: str  # one clip as written in the user turn
    reserved: tuple[str, ...]  # tokens a prompt may not contain
    prepended: str  # clip k before the text, as its chat template renders [audio..., text] ({k}, {clip})
    turns: tuple[str | None, str] = CHATML  # system turn (None: none) and user turn up to the answer, as formats
    tokens: Callable[[int], int] = whisper_tokens  # placeholder positions for a clip of n samples
    added: int = 0  # tokens the processor adds around each clip's run (Music Flamingo's bos and eos)
    one_per_row: bool = False  # the stock processor wants exactly one clip per text row (its model does not)

    def prepend(self, n_clips: int) -> str:
        return "".join(self.prepended.format(k=k, clip=self.clip) for k in range(1, n_clips + 1))


FAMILIES = {f.name: f for f in (
    Family("qwen2-audio", "Qwen2-Audio", "Qwen2AudioForConditionalGeneration", "Qwen2AudioProcessor", "<|AUDIO|>",
           "<|audio_bos|><|AUDIO|><|audio_eos|>", ("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"),
           "Audio {k}: {clip}\n"),
    Family("af3", "Audio Flamingo 3", "AudioFlamingo3ForConditionalGeneration", "AudioFlamingo3Processor",
           "<sound>", "<sound>", ("<sound>",), "{clip}", one_per_row=True),
    Family("music-flamingo", "Music Flamingo", "MusicFlamingoForConditionalGeneration", "MusicFlamingoProcessor",
           "<sound>", "<sound>", ("<sound>", "<|sound_bos|>", "<|sound_eos|>"), "{clip}", added=2,
           one_per_row=True),
    Family("glm-asr", "GLM-ASR", "GlmAsrForConditionalGeneration", "GlmAsrProcessor", "<|pad|>",
           "<|begin_of_audio|><|pad|><|end_of_audio|>", ("<|pad|>", "<|begin_of_audio|>", "<|end_of_audio|>"),
           "{clip}\n", turns=(None, "<|user|>\n{}<|assistant|>\n"), tokens=glm_tokens, one_per_row=True),
)}


@dataclass
class HfAudioAdapter:
    """Scores requests with a stock transformers audio LLM of one `Family`; results come back in request order.

    Each distinct clip is read once per call; a clip that fails to load, or a prompt whose markers do not match
    its clips, becomes an error for that item only.
    """

    model: object  # the family's ForConditionalGeneration
    processor: object  # the family's processor
    family: Family
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    batch_size: int = 8
    system: str | None = SYSTEM  # None: no system turn
    _yn: tuple[list[int], list[int]] | None = field(default=None, repr=False)
    _samples: dict = field(default_factory=dict, repr=False)  # clip -> samples read (tuning: one read per clip)

    # ------------------------------------------------------------------ text

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def render(self, request: Request) -> str:
        """The chat text of one request, with the family's clip text per clip (the processor expands each)."""
        prompt, n_clips, n_markers = request.prompt, len(request.audio), request.prompt.count(AUDIO)
        placement, fam = Placement(request.placement), self.family
        if n_markers != n_clips and (placement is Placement.INTERLEAVED or n_markers != 0):
            raise ShardkitError(f"prompt has {n_markers} {AUDIO} marker(s) but {n_clips} clip(s): {prompt!r}")
        for reserved in fam.reserved:
            if reserved in prompt:
                raise ShardkitError(f"prompt contains {fam.title}'s reserved token {reserved}; write {AUDIO} for "
                                    f"a clip instead: {prompt!r}")
        if placement is Placement.INTERLEAVED:
            user = prompt.replace(AUDIO, fam.clip)
        else:
            text = " ".join(prompt.replace(AUDIO, " ").split()) if n_markers else prompt
            user = fam.prepend(n_clips) + text
        system_turn, user_turn = fam.turns
        system = system_turn.format(self.system) if system_turn and self.system is not None else ""
        return system + user_turn.format(user)

    # ------------------------------------------------------------------ tuning (models/hf_tuning.py)

    @property
    def tunable(self):
        """What `shardkit train` trains: this model seen as an AudioLLM (`HfTuning`), made once."""
        from shardkit.models.hf_tuning import HfTuning

        if getattr(self, "_tunable", None) is None:
            self._tunable = HfTuning(self)
        return self._tunable

    def features(self, ref: AudioRef) -> np.ndarray:
        from shardkit.models.hf_tuning import clip_features

        return clip_features(self, ref)

    def encode_sample(self, instruction: str, answer: str, placement: str, refs) -> tuple[list[int], int]:
        from shardkit.models.hf_tuning import encode_sample

        return encode_sample(self, instruction, answer, placement, refs)

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
                n_audio = sum(self.family.tokens(len(self._load(a, waves))) - 1 + self.family.added for a in r.audio)
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
        # padding for the text only: each family's feature extractor pads every clip to its 30 s window itself
        enc = self.processor(text=texts, audio=clips or None, sampling_rate=SR, return_tensors="pt",
                             text_kwargs={"padding": True, "padding_side": "left"})
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
        """`SpliceAdapter.attention` for a stock family: the share of attention that the answer position and the
        tokens of `words[i]` give to the sink (the first token), the text before the audio, the audio positions
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
        where each placeholder becomes one position per encoder frame (and the tokens the family adds around it)."""
        if word is None:
            return []
        start = text.rfind(word)
        if start < 0:
            raise ShardkitError(f"{word!r} is not in the prompt {text!r}")
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        audio_id, out = self.processor.audio_token_id, []
        extra = iter(self.family.tokens(len(w)) - 1 + self.family.added for w in waves)
        shift = 0
        for k, (tid, (a, b)) in enumerate(zip(enc.input_ids, enc.offset_mapping, strict=True)):
            if a < start + len(word) and b > start:
                out.append(k + shift)
            if tid == audio_id:
                shift += next(extra)
        return out


def load_hf_audio(name: str, path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
                  batch_size: int = 8, tuned: str | Path | None = None) -> HfAudioAdapter:
    """Model and processor of family `name` from a local checkpoint folder (as `save_pretrained` writes it); never
    the hub. A processor that accepts one clip per text row only is loaded with that check relaxed to the stock
    one (as many clips as placeholders): its model merges any number per row.

    Raises ShardkitError when the folder is missing, cannot be loaded, or its processor and model disagree on
    the placeholder's token id.
    """
    import transformers
    from transformers import ProcessorMixin

    fam, path = FAMILIES[name], Path(path)
    if not path.is_dir():
        raise ShardkitError(f"{path}: no such folder; {name} needs path= a local folder with the model and "
                            f"processor files")
    processor_class = getattr(transformers, fam.processor_class)
    if fam.one_per_row:
        processor_class = type(fam.processor_class, (processor_class,),
                               {"validate_inputs": ProcessorMixin.validate_inputs})
    try:
        processor = processor_class.from_pretrained(path, local_files_only=True)
        model = getattr(transformers, fam.model_class).from_pretrained(path, dtype=dtype, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ShardkitError(f"{path}: cannot load {fam.title} ({' '.join(str(e).split())[:300]})") from e
    if processor.audio_token_id != model.config.audio_token_id:
        raise ShardkitError(f"{path}: processor's {fam.placeholder} is id {processor.audio_token_id} but the model "
                            f"expects {model.config.audio_token_id}; the folder mixes two checkpoints")
    log.info("%s from %s: %.2fB parameters, %s on %s", fam.title, path, model.num_parameters() / 1e9, dtype, device)
    adapter = HfAudioAdapter(model, processor, fam, device, dtype, batch_size)
    if tuned is not None:  # a `shardkit train` run from this model: its projector and LoRA on the language model
        from shardkit.models.checkpoint import load_tuned

        load_tuned(adapter.tunable, Path(tuned))
    adapter.model = adapter.model.to(device, dtype).eval()
    return adapter
