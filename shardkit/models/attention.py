"""Where attention goes: the share that chosen query positions give to each role of key token, per layer and head.

The seed paper explains interleaving by attention ("audio tokens attend to preceding text, rather than only to other
audio tokens"). To look, every key position gets a role — the first real token (the attention sink), text before
the audio, the audio, text after it — and `AttentionShares` sums each layer's attention probabilities over the keys
of each role while the forward runs: a forward hook on the layer's attention module reads its weights, reduces them
to [batch, heads, roles] for the query positions asked about, and lets them go. Nothing of size sequence² outlives
one layer's call; what is kept is [layers, batch, heads, roles] (see `AttentionShares`).

Only eager attention hands its probabilities to the module's output, so the LM runs eager inside the context
(the layers share one config, so all of them do) and goes back to its own implementation after. Works on any
transformers decoder whose attention modules return `(output, weights)` — LLaMA (LTU, tiny-ltu's SmolLM2) and
Qwen2 (Qwen2-Audio's LM) among them.
"""

from contextlib import AbstractContextManager

import torch
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.prompts import AUDIO_ID

ROLES = ("sink", "before", "audio", "after")  # first token and BOS; text before the first audio slot; audio; after
PAD = -1  # role of a padding position: no query gives it weight


def token_roles(input_ids: torch.Tensor, attention_mask: torch.Tensor, bos_id: int | None = None,
                audio_id: int = AUDIO_ID) -> torch.Tensor:
    """Role index (into ROLES) of every position of a left- or right-padded batch; PAD where the mask is 0.

    The sink is the first real token whatever it holds, and BOS wherever it stands: prepended audio puts BOS after
    the clip, and an LM parks its spare attention on BOS there too — weight that says nothing about listening.
    Text between two clips counts as "after". `audio_id` marks an audio position (shardkit's placeholder, or a
    family's own audio token such as Qwen2-Audio's `<|AUDIO|>`). Shapes: [b, s] → [b, s] (long).
    """
    real = attention_mask.bool()
    audio = (input_ids == audio_id) & real
    seen_audio = audio.long().cumsum(-1) > 0  # at or after the first audio slot
    roles = torch.where(seen_audio, torch.tensor(ROLES.index("after")), torch.tensor(ROLES.index("before")))
    roles = torch.where(audio, torch.tensor(ROLES.index("audio")), roles)
    first = (real.long().cumsum(-1) == 1) & real  # the first real position of each row
    if bos_id is not None:
        first = first | ((input_ids == bos_id) & real)
    roles = torch.where(first, torch.tensor(ROLES.index("sink")), roles)
    return torch.where(real, roles, torch.tensor(PAD))


def _attention_modules(lm: nn.Module) -> list[nn.Module]:
    """The self-attention module of each decoder layer, in order."""
    layers = getattr(lm.get_decoder(), "layers", None)
    if layers is None or not all(hasattr(x, "self_attn") for x in layers):
        raise ShardkitError(f"{type(lm).__name__}: no decoder layers with a self_attn module to measure")
    return [x.self_attn for x in layers]


class AttentionShares(AbstractContextManager):
    """Inside `with AttentionShares(lm, roles, queries) as shares:` every forward of `lm` adds, per measured layer,
    the attention that each row's query positions (`queries`, bool [b, s], or m sets of them [b, m, s]) give to
    each key role (`roles` from `token_roles`, [b, s]), averaged over those queries: `shares.result()` is
    [layers, b, heads, (m,) len(ROLES)], each [.., roles] row summing to 1 (causal attention spreads all of its
    weight over real keys).

    Memory: the hook holds one layer's weights [b, heads, s, s] for the length of its call — what eager attention
    computes anyway — and reduces them through [b, heads, m, s] (the asked query sets only) to [b, heads, m, roles];
    the result is [layers, b, heads, (m,) roles].
    Set roles and queries for each batch with `set_batch` when one context serves several forwards.
    """

    def __init__(self, lm: nn.Module, roles: torch.Tensor | None = None, queries: torch.Tensor | None = None,
                 layers: list[int] | None = None):
        self.lm, self.modules = lm, _attention_modules(lm)
        self.layers = list(range(len(self.modules))) if layers is None else list(layers)
        bad = [k for k in self.layers if not 0 <= k < len(self.modules)]
        if bad:
            raise ShardkitError(f"layers {bad} do not exist; the model has {len(self.modules)} (0..."
                                f"{len(self.modules) - 1})")
        self.roles, self.queries = roles, queries
        self._out: dict[int, torch.Tensor] = {}
        self._hooks: list = []
        self._impl = None

    def set_batch(self, roles: torch.Tensor, queries: torch.Tensor) -> None:
        """Roles and query positions of the next forward's batch; clears the previous result."""
        self.roles, self.queries, self._out = roles, queries, {}

    def __enter__(self) -> "AttentionShares":
        self._impl = self.lm.config._attn_implementation
        self.lm.set_attn_implementation("eager")
        for k in self.layers:
            self._hooks.append(self.modules[k].register_forward_hook(self._hook(k)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self.lm.set_attn_implementation(self._impl)

    def _hook(self, layer: int):
        def reduce(module, args, output) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise ShardkitError(f"layer {layer}'s attention returned no weights; it must run eager")
            self._out[layer] = shares(weights, self.roles, self.queries)
        return reduce

    def result(self) -> torch.Tensor:
        """[layers, b, heads, roles] of the last forward, in `self.layers` order."""
        missing = [k for k in self.layers if k not in self._out]
        if missing:
            raise ShardkitError(f"no forward has run through layers {missing} inside this context")
        return torch.stack([self._out[k] for k in self.layers])


def shares(weights: torch.Tensor, roles: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Attention probabilities [b, h, s, s] (query, key) → the mean over each row's query positions of the weight
    on each key role, in float32: [b, h, len(ROLES)] for queries [b, s], or [b, h, m, len(ROLES)] for m sets of
    query positions [b, m, s] (the answer position and the candidate's tokens, from one forward). A set without
    positions gives NaN."""
    if roles is None or queries is None:
        raise ShardkitError("set the batch's token roles and query positions before the forward (set_batch)")
    b, _, s, k = weights.shape
    sets = queries if queries.dim() == 3 else queries[:, None]  # [b, m, s]
    if roles.shape != (b, k) or sets.shape[::2] != (b, s):
        raise ShardkitError(f"roles {tuple(roles.shape)} / queries {tuple(queries.shape)} do not match attention "
                            f"weights {tuple(weights.shape)}")
    onehot = torch.stack([roles == r for r in range(len(ROLES))], -1).to(weights.device, torch.float32)  # [b, k, R]
    picked = sets.to(weights.device, torch.float32)  # [b, m, s]
    asked = torch.einsum("bhqk,bmq->bhmk", weights.to(torch.float32), picked)  # the asked queries' rows only
    total = torch.einsum("bhmk,bkr->bhmr", asked, onehot) / picked.sum(-1)[:, None, :, None]  # [b, h, m, R]
    return (total if queries.dim() == 3 else total[:, :, 0]).cpu()


def answer_and_word(mask: torch.Tensor, words: list[list[int]]) -> torch.Tensor:
    """The two query sets every family measures, for a left-padded batch: the last position (where yes/no is read)
    and the word's tokens, given as positions from each row's first real token. Shapes: mask [b, s] → [b, 2, s]."""
    b, s = mask.shape
    queries = torch.zeros(b, 2, s, dtype=torch.bool)
    queries[:, 0, -1] = True  # left padding puts every row's last token in the last column
    for row, at in enumerate(words):
        start = s - int(mask[row].sum())
        queries[row, 1, [start + k for k in at]] = True
    return queries
