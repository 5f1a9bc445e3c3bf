"""Attention shares by token role (models/attention.py): exact on a model whose attention is known, equal to the same
sums taken from the full `output_attentions`, and in the right place when audio is spliced in."""

import pytest
import torch
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.attention import PAD, ROLES, AttentionShares, token_roles
from shardkit.models.audio_llm import AudioLLM
from shardkit.models.prompts import AUDIO_ID, TEMPLATES, collate, encode
from shardkit.names import Placement
from tests.models.tiny import MeanPoolEncoder, llama, tokenizer

S, B, A, F = (ROLES.index(r) for r in ("sink", "before", "audio", "after"))
N_A = 4


def test_roles_of_interleaved_prepended_and_text_only_rows():
    ids = torch.tensor([[0, 5, 6, AUDIO_ID, AUDIO_ID, 7],
                        [AUDIO_ID, AUDIO_ID, 5, 6, 7, 8],
                        [0, 0, 0, 5, 6, 7]])
    mask = (torch.arange(6) >= torch.tensor([[1], [0], [3]])).long()
    assert token_roles(ids, mask).tolist() == [[PAD, S, B, A, A, F],
                                               [S, A, F, F, F, F],  # audio before BOS: the first slot is the sink
                                               [PAD, PAD, PAD, S, B, B]]
    # BOS (id 5 here) is a sink wherever it stands: after prepended audio, LMs park attention on it
    assert token_roles(ids, mask, bos_id=5).tolist()[1] == [S, A, S, F, F, F]


def _uniform(lm: nn.Module) -> nn.Module:
    """Zero queries and keys: every score is 0, so each query spreads its weight evenly over the real keys up to it."""
    for layer in lm.model.layers:
        nn.init.zeros_(layer.self_attn.q_proj.weight)
        nn.init.zeros_(layer.self_attn.k_proj.weight)
    return lm


def test_known_attention_gives_exact_shares():
    tok = tokenizer()
    lm = _uniform(llama(len(tok), layers=3))
    ids = torch.tensor([[0, 0, 1, 5, 6, 7, 8, 9], [1, 5, 6, 7, 8, 9, 10, 11]])  # text only: sink + before
    mask = (ids != 0).long()
    last = torch.zeros_like(mask, dtype=torch.bool)
    last[:, -1] = True
    impl = lm.config._attn_implementation
    with torch.no_grad(), AttentionShares(lm, token_roles(ids, mask), last) as sh:
        assert lm.config._attn_implementation == "eager"
        lm(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))
    out = sh.result()  # [layers, b, heads, roles]
    assert out.shape == (3, 2, 4, len(ROLES))
    expected = torch.tensor([[1 / 6, 5 / 6, 0, 0], [1 / 8, 7 / 8, 0, 0]])  # 6 and 8 real keys up to the last query
    assert torch.allclose(out, expected[None, :, None, :].expand_as(out), atol=1e-6)
    assert lm.config._attn_implementation == impl  # the model's own attention is back
    assert not any(m._forward_hooks for m in (x.self_attn for x in lm.model.layers))


@pytest.fixture(scope="module")
def audio_llm():
    tok = tokenizer()
    torch.manual_seed(1)
    m = AudioLLM(MeanPoolEncoder(6, 8, N_A), nn.Linear(8, 32), llama(len(tok), layers=2), tok, N_A,
                 TEMPLATES["alpaca_short"])
    return m.eval()


def _batch(model, prompts, placement):
    return collate([encode(model.tokenizer, p, 1, N_A, placement, model.template)[0] for p in prompts], model.pad_id)


@pytest.mark.parametrize("placement", [Placement.INTERLEAVED, Placement.PREPENDED])
def test_hook_sums_equal_the_full_attention_maps(audio_llm, placement):
    """The aggregate taken in the hooks is the sum, by hand, over `output_attentions` of the same forward."""
    b = _batch(audio_llm, ["is the <audio> sound a kind of dog ?", "what <audio> it ?"], placement)
    audio = audio_llm.encode_audio(torch.randn(2, 10, 6, generator=torch.Generator().manual_seed(0)))
    roles = token_roles(b["input_ids"], b["attention_mask"])
    queries = torch.zeros_like(roles, dtype=torch.bool)
    queries[:, -1] = True  # the answer position
    queries[0, -3] = True  # and a candidate token of the first question
    impl = audio_llm.lm.config._attn_implementation
    with torch.no_grad(), AttentionShares(audio_llm.lm, roles, queries) as sh:
        audio_llm(b["input_ids"], b["attention_mask"], b["position_ids"], audio)
    assert audio_llm.lm.config._attn_implementation == impl  # the model's own attention is back
    got = sh.result()
    audio_llm.lm.set_attn_implementation("eager")
    with torch.no_grad():
        embeds = audio_llm.splice(b["input_ids"], audio)
        maps = audio_llm.lm(inputs_embeds=embeds, attention_mask=b["attention_mask"],
                            position_ids=b["position_ids"], output_attentions=True).attentions
    audio_llm.lm.set_attn_implementation(impl)
    for layer, w in enumerate(maps):  # [b, h, s, s]
        for i in range(w.shape[0]):
            qs = queries[i].nonzero().flatten()
            for r in range(len(ROLES)):
                keys = (roles[i] == r).nonzero().flatten()
                want = w[i][:, qs][:, :, keys].sum(-1).mean(-1)  # [heads]
                assert torch.allclose(got[layer, i, :, r], want, atol=1e-6), (layer, i, ROLES[r])
    assert torch.allclose(got.sum(-1), torch.ones_like(got.sum(-1)), atol=1e-5)  # all weight lands on real keys
    audio_share = got[..., A].mean()
    assert 0 < audio_share < 1  # the audio rows are where the slots are, and get some of the weight


def test_only_the_layers_asked_and_clear_errors(audio_llm):
    b = _batch(audio_llm, ["what <audio> it ?"], Placement.INTERLEAVED)
    audio = audio_llm.encode_audio(torch.randn(1, 10, 6))
    roles = token_roles(b["input_ids"], b["attention_mask"])
    last = torch.zeros_like(roles, dtype=torch.bool)
    last[:, -1] = True
    with torch.no_grad(), AttentionShares(audio_llm.lm, layers=[1]) as sh:
        with pytest.raises(ShardkitError, match="set_batch"):
            audio_llm(b["input_ids"], b["attention_mask"], b["position_ids"], audio)
        with pytest.raises(ShardkitError, match="no forward"):
            sh.result()
        sh.set_batch(roles, last)
        audio_llm(b["input_ids"], b["attention_mask"], b["position_ids"], audio)
    assert sh.result().shape == (1, 1, 4, len(ROLES))
    with pytest.raises(ShardkitError, match="layers \\[5\\] do not exist"):
        AttentionShares(audio_llm.lm, layers=[5])


def test_several_query_sets_in_one_forward_equal_one_at_a_time(audio_llm):
    b = _batch(audio_llm, ["is the <audio> sound a kind of dog ?", "what <audio> it ?"], Placement.INTERLEAVED)
    audio = audio_llm.encode_audio(torch.randn(2, 10, 6, generator=torch.Generator().manual_seed(2)))
    roles = token_roles(b["input_ids"], b["attention_mask"])
    last, word = torch.zeros_like(roles, dtype=torch.bool), torch.zeros_like(roles, dtype=torch.bool)
    last[:, -1], word[:, -3:-1] = True, True
    got = []
    for queries in (torch.stack([last, word], 1), last, word):
        with torch.no_grad(), AttentionShares(audio_llm.lm, roles, queries) as sh:
            audio_llm(b["input_ids"], b["attention_mask"], b["position_ids"], audio)
        got.append(sh.result())
    assert got[0].shape == (2, 2, 4, 2, len(ROLES))
    assert torch.allclose(got[0][:, :, :, 0], got[1], atol=1e-6)
    assert torch.allclose(got[0][:, :, :, 1], got[2], atol=1e-6)
