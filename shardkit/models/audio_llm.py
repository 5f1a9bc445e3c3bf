"""THE splice: audio embeddings written into the placeholder slots of a prompt, fed to any Hugging Face causal LM.

AudioLLM = encoder → projector → stock causal LM via `inputs_embeds`. Only text positions are embedded by the
LM's table; audio rows are written into the AUDIO_ID slots in one masked write (as transformers' LLaVA and
torchtune's fusion models do), so the same code serves audio before BOS (LTU) and audio at any marker.
Scoring reads logits only at the positions it needs; generation hands the spliced embeddings to `generate`.
"""

import logging

import torch
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.prompts import AUDIO_ID, Template

log = logging.getLogger(__name__)

YES = ("yes", "Yes", "YES", " yes", " Yes", " YES")
NO = ("no", "No", "NO", " no", " No", " NO")


def answer_token_ids(tokenizer, words: tuple[str, ...], prompt_text: str) -> list[int]:
    """Ids the model would emit first for an answer word right after `prompt_text`, over all its spellings.

    Each spelling is tokenised after the rendered prompt, not alone: a SentencePiece tokenizer (LLaMA) gives "Yes"
    alone its dummy-prefix form `▁Yes`, but after "### Response:\n" the answer is `Yes`, a different id. A spelling
    counts only if the prompt's own tokens stay unchanged and its first new token is the whole word, not a
    fragment such as "Y".

    Raises ShardkitError when no spelling gives a whole-word token after the prompt.
    """
    base = tokenizer(prompt_text, add_special_tokens=False).input_ids
    ids = set()
    for w in words:
        full = tokenizer(prompt_text + w, add_special_tokens=False).input_ids
        if len(full) > len(base) and full[: len(base)] == base:  # the answer continues the prompt's tokens
            first = full[len(base)]
            if tokenizer.decode([first]).strip(" ▁").lower() == w.strip().lower():
                ids.add(first)
    if not ids:
        raise ShardkitError(f"no spelling of {words[0]!r} is a single whole-word token after the prompt "
                            f"{prompt_text[-40:]!r}; the tokenizer splits the answer word")
    return sorted(ids)


class AudioLLM(nn.Module):
    """Audio encoder → projector → causal LM, joined by `splice`.

    `encoder` maps front-end features of each clip to `[n_a, d_enc]` tokens (pooling included); `projector` maps
    them to the LM width. Either may be frozen; the LM is a stock `transformers` model, never modified.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, lm: nn.Module, tokenizer, n_audio_tokens: int,
                 template: Template):
        super().__init__()
        self.encoder, self.projector, self.lm = encoder, projector, lm
        self.tokenizer, self.n_audio_tokens, self.template = tokenizer, n_audio_tokens, template
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode_audio(self, feats: torch.Tensor) -> torch.Tensor:
        """Front-end features of n clips → audio embeddings in the LM's space.

        Shapes: feats [n, ...] (family-specific) → [n, n_a, d].
        """
        return self.project(self.encoder(feats))

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Encoder outputs of n clips → audio embeddings, in the projector's dtype (float32 while it trains over a
        bfloat16 model). Training calls it alone when the encoder is frozen and its outputs are kept per clip.

        Shapes: tokens [n, n_a, d_enc] → [n, n_a, d].
        """
        if tokens.shape[1] != self.n_audio_tokens:
            raise ShardkitError(f"encoder gave {tokens.shape[1]} audio tokens per clip, model expects "
                                f"{self.n_audio_tokens}")
        weight = next(self.projector.parameters(), None)
        return self.projector(tokens if weight is None else tokens.to(weight.dtype))  # [n, n_a, d]

    def splice(self, input_ids: torch.Tensor, audio: torch.Tensor | None) -> torch.Tensor:
        """Embed text positions with the LM's table and write audio rows into the AUDIO_ID slots, in order.

        Shapes: input_ids [b, s]; audio [n_clips, n_a, d] (clips in reading order, row-major over the batch)
        → inputs_embeds [b, s, d].
        """
        slots = input_ids == AUDIO_ID  # [b, s]
        n_slots = int(slots.sum())
        n_rows = 0 if audio is None else audio.shape[0] * audio.shape[1]
        if n_slots != n_rows:
            raise ShardkitError(f"{n_slots} audio slots in the prompts but {n_rows} audio rows "
                                f"({0 if audio is None else audio.shape[0]} clips × {self.n_audio_tokens} tokens)")
        embeds = self.lm.get_input_embeddings()(input_ids.masked_fill(slots, self.pad_id))  # [b, s, d]
        if n_rows:
            embeds = embeds.masked_scatter(slots.unsqueeze(-1), audio.reshape(-1, audio.shape[-1]).to(embeds.dtype))
        return embeds

    def forward(self, input_ids, attention_mask, position_ids, audio=None, labels=None, logits_to_keep=0):
        """Causal LM output on a spliced batch. `audio` is [n_clips, n_a, d] (already projected) or None."""
        embeds = self.splice(input_ids, audio)
        return self.lm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids,
                       labels=labels, logits_to_keep=logits_to_keep, use_cache=False)

    def hidden_states(self, input_ids, attention_mask, position_ids, audio=None) -> torch.Tensor:
        """Last hidden states of the LM body, before the head: [b, s, d]."""
        embeds = self.splice(input_ids, audio)
        out = self.lm.get_decoder()(inputs_embeds=embeds, attention_mask=attention_mask,
                                    position_ids=position_ids, use_cache=False)
        return out.last_hidden_state

    @property
    def head(self) -> nn.Module:
        """The LM head (vocabulary logits from last hidden states)."""
        return self.lm.get_output_embeddings()

    @torch.no_grad()
    def yes_no(self, input_ids, attention_mask, position_ids, audio=None) -> torch.Tensor:
        """log P(yes) − log P(no) at the next token, summed over every spelling of each: [b]."""
        logits = self.forward(input_ids, attention_mask, position_ids, audio, logits_to_keep=1).logits[:, -1]
        return self._log_odds(logits)

    @torch.no_grad()
    def yes_no_prefixed(self, prefix: dict[str, torch.Tensor], audio: torch.Tensor | None, suffix_ids: torch.Tensor,
                        suffix_mask: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """yes_no for rows that share prefixes: each prefix (its text and audio) runs once, and every row's own
        suffix continues from that prefix's KV cache. Questions about one clip share everything up to the audio.

        Shapes: prefix = collate(...) of g prefixes [g, p] (left-padded); audio [n_clips, n_a, d] for the prefixes;
        suffix_ids, suffix_mask [b, t] right-padded; owner [b] (prefix index of each row) → [b].
        """
        mask, pos = prefix["attention_mask"], prefix["position_ids"]
        embeds = self.splice(prefix["input_ids"], audio)  # [g, p, d]
        cache = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True,
                        logits_to_keep=1).cache
        cache.reorder_cache(owner)  # [b, ...]: row i continues from prefix owner[i]
        b, t = suffix_ids.shape
        start = mask.sum(-1)[owner]  # [b]: real tokens before each row's suffix
        h = self.lm.get_decoder()(
            inputs_embeds=self.lm.get_input_embeddings()(suffix_ids), cache=cache, use_cache=True,
            attention_mask=torch.cat([mask[owner], suffix_mask], dim=1),  # [b, p + t]
            position_ids=start[:, None] + torch.arange(t, device=suffix_ids.device),  # [b, t]
        ).last_hidden_state  # [b, t, d]
        last = h[torch.arange(b, device=h.device), suffix_mask.sum(-1) - 1]  # [b, d]: each row's last real token
        return self._log_odds(self.lm.get_output_embeddings()(last))

    def _log_odds(self, logits: torch.Tensor) -> torch.Tensor:
        """log P(yes) − log P(no) from next-token logits [b, vocab], every spelling of each summed: [b]."""
        logp = logits.float().log_softmax(-1)  # [b, vocab]
        yes, no = self._yes_no_ids()
        return logp[:, yes].logsumexp(-1) - logp[:, no].logsumexp(-1)

    def _yes_no_ids(self) -> tuple[list[int], list[int]]:
        """Answer ids as they follow this template's end (the assistant prefix); the question does not matter."""
        if not hasattr(self, "_yn"):
            prompt = self.template.render("Q")
            self._yn = (answer_token_ids(self.tokenizer, YES, prompt), answer_token_ids(self.tokenizer, NO, prompt))
        return self._yn

    @torch.no_grad()
    def continuation_logprob(self, input_ids, attention_mask, position_ids, n_continuation: list[int],
                             audio=None) -> torch.Tensor:
        """Sum of log-probabilities of the last n_continuation[i] tokens of each left-padded row: [b].

        The head runs only at the positions that predict those tokens.
        """
        h = self.hidden_states(input_ids, attention_mask, position_ids, audio)  # [b, s, d]
        s = input_ids.shape[1]
        out = []
        for i, n in enumerate(n_continuation):
            if n < 1:
                raise ShardkitError("a cloze continuation must have at least one token")
            logits = self.lm.get_output_embeddings()(h[i, s - n - 1: s - 1]).float()  # [n, vocab]
            target = input_ids[i, s - n:]  # [n]
            out.append(logits.log_softmax(-1).gather(-1, target[:, None]).sum())
        return torch.stack(out)

    @torch.no_grad()
    def continuation_logprob_prefixed(self, prefix: dict[str, torch.Tensor], audio: torch.Tensor | None,
                                      cont_ids: torch.Tensor, cont_mask: torch.Tensor,
                                      owner: torch.Tensor) -> torch.Tensor:
        """continuation_logprob for rows that share a prompt: each prompt (text and audio) runs once, and every
        continuation of it runs from its KV cache; the first continuation token is read off the prompt's last
        position, each later one off the continuation's own hidden states.

        Shapes: prefix = collate(...) of g prompts [g, p] (left-padded); audio [n_clips, n_a, d] for them;
        cont_ids, cont_mask [b, t] right-padded; owner [b] (prompt index of each row) → [b].
        """
        mask, pos = prefix["attention_mask"], prefix["position_ids"]
        embeds = self.splice(prefix["input_ids"], audio)  # [g, p, d]
        out = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
        first = out.logits[:, -1].float().log_softmax(-1)[owner].gather(-1, cont_ids[:, :1])[:, 0]  # [b]
        cache = out.cache
        cache.reorder_cache(owner)  # [b, ...]: row i continues from prompt owner[i]
        b, t = cont_ids.shape
        if t == 1:
            return first
        start = mask.sum(-1)[owner]  # [b]: real tokens before each continuation
        h = self.lm.get_decoder()(
            inputs_embeds=self.lm.get_input_embeddings()(cont_ids[:, :-1]), cache=cache, use_cache=True,
            attention_mask=torch.cat([mask[owner], cont_mask[:, :-1]], dim=1),  # [b, p + t - 1]
            position_ids=start[:, None] + torch.arange(t - 1, device=cont_ids.device),  # [b, t - 1]
        ).last_hidden_state  # [b, t - 1, d]: position k predicts continuation token k + 1
        logp = self.lm.get_output_embeddings()(h).float().log_softmax(-1)  # [b, t - 1, vocab]
        rest = logp.gather(-1, cont_ids[:, 1:, None])[..., 0] * cont_mask[:, 1:]  # [b, t - 1]
        return first + rest.sum(-1)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, audio=None, **gen) -> torch.Tensor:
        """Stock `generate` over the spliced embeddings (KV cache on); returns only the new tokens: [b, t]."""
        embeds = self.splice(input_ids, audio)
        gen.setdefault("pad_token_id", self.pad_id)
        return self.lm.generate(inputs_embeds=embeds, attention_mask=attention_mask, **gen)
