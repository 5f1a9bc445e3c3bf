"""A transformers audio LLM (`hf_audio.py`) as `shardkit train` sees an AudioLLM, so that one trainer, one LoRA setup
(`train/lora.py`) and one checkpoint format serve it: projector, adapter in peft's format, `tuned=` to load it back.

The stock model keeps its own splice: the audio tower and projector run inside its forward, where the placeholder
tokens stand. So the view's `encoder` and `project` pass features through unchanged (the tower's weights stay
reachable for freezing and for `encoder+projector+lora`), a clip's features are the processor's log-mel rows with
the frame mask as one more row, and a training sample is tokenized as the processor would expand it: each clip's
placeholder repeated once per encoder frame of that clip (AUDIO_ID slots, turned back into the placeholder here).
"""

import numpy as np
import torch
from torch import nn

from shardkit.audio.io import SR
from shardkit.models.prompts import AUDIO_ID


class _Inside(nn.Module):
    """The audio tower as the trainer holds it: its parameters, an identity forward (the stock model runs it)."""

    def __init__(self, tower: nn.Module):
        super().__init__()
        self.tower = tower

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class HfTuning(nn.Module):
    """The trainer's view of an HfAudioAdapter's model: `encoder`, `projector` and `lm` are the stock model's own
    modules (setting `lm`, as peft wrapping does, puts it back inside), `forward` the stock forward."""

    def __init__(self, adapter):
        super().__init__()
        self.hf, self.family = adapter.model, adapter.family
        self.encoder, self.projector = _Inside(self.hf.model.audio_tower), self.hf.model.multi_modal_projector
        self.tokenizer, self.pad_id = adapter.tokenizer, adapter.pad_id
        self.placeholder = adapter.processor.audio_token_id
        self.mask_key = "feature_attention_mask" if self.family.name == "qwen2-audio" else "input_features_mask"

    @property
    def lm(self) -> nn.Module:
        return self.hf.model.language_model

    def __setattr__(self, name: str, value) -> None:
        if name == "lm":  # peft's wrapper (or a merged LM) goes where the stock forward calls it
            self.hf.model.language_model = value
        else:
            super().__setattr__(name, value)

    def encode_audio(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def forward(self, input_ids, attention_mask, position_ids, audio=None):
        """The stock forward on AUDIO_ID-slotted ids; `audio` [n_clips, mel + 1, frames] (mask last). Training reads
        `hidden_states` and `head` instead (train/loss.py runs the head where a target counts)."""
        from transformers.modeling_outputs import CausalLMOutput

        return CausalLMOutput(logits=self.head(self.hidden_states(input_ids, attention_mask, position_ids, audio)))

    def hidden_states(self, input_ids, attention_mask, position_ids, audio=None) -> torch.Tensor:
        """The stock model's last hidden states, before the head: [b, s, d]."""
        ids = input_ids.masked_fill(input_ids == AUDIO_ID, self.placeholder)
        extra = {}
        if audio is not None:
            extra = {"input_features": audio[:, :-1], self.mask_key: audio[:, -1].round().long()}
        return self.hf.model(input_ids=ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=False, **extra).last_hidden_state

    @property
    def head(self) -> nn.Module:
        return self.hf.get_output_embeddings()


def clip_features(adapter, ref) -> np.ndarray:
    """One clip as the family's processor gives its features: [mel + 1, frames], the frame mask as the last row."""
    wave = adapter._load(ref, {})
    adapter._samples[ref] = len(wave)  # encode_sample reads the length back, not the file
    fe = adapter.processor.feature_extractor(wave, sampling_rate=SR, return_attention_mask=True, return_tensors="np")
    return np.concatenate([fe["input_features"][0], fe["attention_mask"][0][None].astype(np.float32)]).astype(
        np.float32)


def encode_sample(adapter, instruction: str, answer: str, placement: str, refs) -> tuple[list[int], int]:
    """(ids, prompt length) of a training sample: the family's chat text, each clip's placeholder expanded to its
    frame count as AUDIO_ID slots (with the tokens the processor adds around them), then the answer and the end of
    the turn."""
    from shardkit.models.adapter import Request

    fam = adapter.family
    text = adapter.render(Request(instruction, tuple(refs), placement))
    pieces = text.split(fam.placeholder)
    ids: list[int] = []
    for k, piece in enumerate(pieces):
        ids += adapter._ids(piece)
        if k < len(refs):
            n = adapter._samples.get(refs[k]) or len(adapter._load(refs[k], {}))  # features() read it already
            run = [AUDIO_ID] * fam.tokens(n)
            if fam.added:  # the processor writes bos and eos around the run (Music Flamingo)
                run = [adapter.processor.audio_bos_token_id, *run, adapter.processor.audio_eos_token_id]
            ids += run
    return ids + adapter._ids(answer + adapter.tokenizer.eos_token), len(ids)
