"""The splice's backbone: equivalence tests in float32 on CPU (tolerance 1e-4 on logits)."""

import pytest
import torch
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.audio_llm import AudioLLM
from shardkit.models.prompts import AUDIO_ID, TEMPLATES, collate, encode, truncate
from shardkit.names import Placement
from tests.models.tiny import MeanPoolEncoder, gpt2, llama, tokenizer

N_A, D_ENC, TOL = 4, 8, 1e-4


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request):
    tok = tokenizer()
    lm = {"llama": llama, "gpt2": gpt2}[request.param](len(tok))
    torch.manual_seed(1)
    m = AudioLLM(MeanPoolEncoder(6, D_ENC, N_A), nn.Sequential(nn.LayerNorm(D_ENC, elementwise_affine=False),
                                                                 nn.Linear(D_ENC, 32)),
                 lm, tok, N_A, TEMPLATES["alpaca_short"])
    return m.eval()


def clips(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, 6, generator=g)  # [n, frames, d_in]


def batch(model, prompts, placement=Placement.INTERLEAVED, template=None):
    seqs = [encode(model.tokenizer, p, n, N_A, placement, template or model.template)[0] for p, n in prompts]
    return collate(seqs, model.pad_id)


def real_logits(model, b, audio):
    """Logits at real (non-pad) positions of each row: list of [len_i, vocab]."""
    out = model(b["input_ids"], b["attention_mask"], b["position_ids"], audio).logits
    return [out[i][b["attention_mask"][i].bool()] for i in range(out.shape[0])]


def test_interleaved_at_position_0_is_ltu_prepended(model):
    """LTU concatenates [audio, embed(ids)] with positions 0..; ours must give the same logits, by both routes."""
    tok, audio = model.tokenizer, model.encode_audio(clips(1))
    plain = TEMPLATES["plain"]
    text_ids = [tok.bos_token_id] + tok("is it a dog ?", add_special_tokens=False).input_ids
    with torch.no_grad():
        emb = torch.cat([audio, model.lm.get_input_embeddings()(torch.tensor([text_ids]))], dim=1)
        ref = model.lm(inputs_embeds=emb, position_ids=torch.arange(emb.shape[1])[None]).logits[0]  # LTU's way
        pre = real_logits(model, batch(model, [("is it a dog ?", 1)], Placement.PREPENDED, plain), audio)[0]
        inter = real_logits(model, batch(model, [("<audio>is it a dog ?", 1)], Placement.INTERLEAVED, plain), audio)[0]
    assert torch.allclose(pre, ref, atol=TOL) and torch.allclose(inter, ref, atol=TOL)
    assert (pre - ref).abs().max() < TOL


def test_splice_puts_each_clip_where_its_marker_stands(model):
    """Transparent check: the spliced rows at audio slots are exactly the clip rows, in reading order."""
    prompts = [("<audio> is it a dog ?", 1), ("is <audio> a cat or <audio> a bird ?", 2), ("what is it ? <audio>", 1)]
    b = batch(model, prompts)
    audio = model.encode_audio(clips(4))  # [4, n_a, d]
    emb = model.splice(b["input_ids"], audio)
    slots = b["input_ids"] == AUDIO_ID
    assert torch.equal(emb[slots], audio.reshape(-1, audio.shape[-1]))
    text = ~slots
    assert torch.equal(emb[text], model.lm.get_input_embeddings()(b["input_ids"][text]))
    # each row has one run of N_A per marker, at the marker's place
    row1 = b["input_ids"][1][b["attention_mask"][1].bool()].tolist()
    assert row1.count(AUDIO_ID) == 2 * N_A
    prepended = batch(model, [("is it a dog ?", 2)], Placement.PREPENDED)["input_ids"][0].tolist()
    assert prepended[: 2 * N_A] == [AUDIO_ID] * (2 * N_A) and prepended[2 * N_A] == model.tokenizer.bos_token_id


def test_batch_with_mixed_positions_equals_one_by_one(model):
    prompts = [("<audio> is it a dog ?", 1), ("is <audio> a cat or <audio> a bird ?", 2),
               ("what is it ? <audio>", 1), ("is the sound in this audio clip <audio> a kind of animal ?", 1)]
    audio = model.encode_audio(clips(5))
    with torch.no_grad():
        batched = real_logits(model, batch(model, prompts), audio)
        k = 0
        for (p, n), got in zip(prompts, batched, strict=True):
            alone = real_logits(model, batch(model, [(p, n)]), audio[k:k + n])[0]
            k += n
            assert (got - alone).abs().max() < TOL


def test_cached_greedy_equals_full_recompute(model):
    prompts = [("<audio> is it a dog ?", 1), ("what is it ? <audio>", 1)]
    b = batch(model, prompts)
    audio = model.encode_audio(clips(2))
    out = model.generate(b["input_ids"], b["attention_mask"], audio, max_new_tokens=6, do_sample=False,
                         output_logits=True, return_dict_in_generate=True, min_new_tokens=6)
    for i, (p, n) in enumerate(prompts):
        ids, _ = encode(model.tokenizer, p, n, N_A, Placement.INTERLEAVED, model.template)
        seq = list(ids)
        for step in range(6):  # full recomputation, no cache, one sequence
            c = collate([seq], model.pad_id)
            with torch.no_grad():
                logits = model(c["input_ids"], c["attention_mask"], c["position_ids"], audio[i:i + 1]).logits[0, -1]
            assert (logits - out.logits[step][i]).abs().max() < TOL
            nxt = int(out.sequences[i, step])
            logits[model.tokenizer.eos_token_id] = -float("inf")  # min_new_tokens forbids EOS
            assert nxt == int(logits.argmax())
            seq.append(nxt)


def test_batched_generation_equals_one_by_one(model):
    prompts = [("<audio> is it a dog ?", 1), ("is <audio> a cat or <audio> a bird ?", 2)]
    audio = model.encode_audio(clips(3))
    b = batch(model, prompts)
    both = model.generate(b["input_ids"], b["attention_mask"], audio, max_new_tokens=5, do_sample=False,
                          min_new_tokens=5)
    k = 0
    for i, (p, n) in enumerate(prompts):
        one = batch(model, [(p, n)])
        alone = model.generate(one["input_ids"], one["attention_mask"], audio[k:k + n], max_new_tokens=5,
                               do_sample=False, min_new_tokens=5)
        k += n
        assert both[i].tolist() == alone[0].tolist()


def test_yes_no_and_cloze_batched_equal_single(model):
    prompts = [("<audio> is it a dog ?", 1), ("what is it ? <audio>", 1), ("is <audio> a cat or <audio> a bird ?", 2)]
    audio = model.encode_audio(clips(4))
    b = batch(model, prompts)
    both = model.yes_no(b["input_ids"], b["attention_mask"], b["position_ids"], audio)
    k = 0
    for i, (p, n) in enumerate(prompts):
        one = batch(model, [(p, n)])
        alone = model.yes_no(one["input_ids"], one["attention_mask"], one["position_ids"], audio[k:k + n])
        k += n
        assert abs(float(both[i] - alone[0])) < TOL
    # cloze: the same as summing log-softmax over the continuation by hand
    tok = model.tokenizer
    ids, _ = encode(tok, "is <audio> a kind of", 1, N_A, Placement.INTERLEAVED, model.template)
    cont = tok("animal .", add_special_tokens=False).input_ids
    c = collate([ids + cont, ids + cont[:1]], model.pad_id)
    two = torch.cat([audio[:1], audio[:1]])
    got = model.continuation_logprob(c["input_ids"], c["attention_mask"], c["position_ids"], [2, 1], two)
    with torch.no_grad():
        full = model(c["input_ids"][:1], c["attention_mask"][:1], c["position_ids"][:1], audio[:1]).logits[0]
    lp = full.log_softmax(-1)
    s = c["input_ids"].shape[1]
    manual = lp[s - 3, cont[0]] + lp[s - 2, cont[1]]
    assert abs(float(got[0] - manual)) < TOL and abs(float(got[1] - lp[s - 3, cont[0]])) < 1e-3


def test_gradients_reach_only_trainable_parameters(model):
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.projector.parameters():
        p.requires_grad_(True)
    b = batch(model, [("<audio> is it a dog ?", 1), ("what is it ? <audio>", 1)])
    out = model(b["input_ids"], b["attention_mask"], b["position_ids"], model.encode_audio(clips(2)),
                labels=b["labels"])
    out.loss.backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None and p.grad.abs().sum() > 0) == name.startswith("projector."), name
    model.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(True)


def test_labels_ignore_audio_padding_and_optionally_prompt(model):
    tok = model.tokenizer
    a, na = encode(tok, "<audio> what is it ?", 1, N_A, Placement.INTERLEAVED, model.template, answer="dog")
    b, nb = encode(tok, "is it a dog ?", 1, N_A, Placement.PREPENDED, model.template, answer="yes")
    c = collate([a, b], model.pad_id, n_prompt=[na, nb], train_on_prompt=False)
    trained = c["labels"] != -100
    assert trained.sum() == 4  # "dog" </s>  and  "yes" </s>
    assert not trained[c["input_ids"] == AUDIO_ID].any() and not trained[c["attention_mask"] == 0].any()
    c = collate([a, b], model.pad_id)
    assert (c["labels"] != -100).sum() == (c["attention_mask"].bool() & (c["input_ids"] != AUDIO_ID)).sum()


def test_bad_counts_and_truncation_fail_before_compute(model):
    tok = model.tokenizer
    with pytest.raises(ShardkitError, match="2 <audio> marker.* but 1 clip"):
        encode(tok, "<audio> or <audio> ?", 1, N_A, Placement.INTERLEAVED, model.template)
    with pytest.raises(ShardkitError, match="0 <audio> marker.* but 1 clip"):
        encode(tok, "what is it ?", 1, N_A, Placement.INTERLEAVED, model.template)
    ids, _ = encode(tok, "is it a dog ? <audio>", 1, N_A, Placement.INTERLEAVED, model.template)
    with pytest.raises(ShardkitError, match="would cut audio tokens"):
        truncate(ids, len(ids) - 3)
    assert truncate(ids, len(ids)) == ids
    b = batch(model, [("<audio> is it ?", 1)])
    with pytest.raises(ShardkitError, match="4 audio slots .* but 8 audio rows"):
        model.splice(b["input_ids"], model.encode_audio(clips(2)))
    with pytest.raises(ShardkitError, match=f"encoder gave {N_A + 1} audio tokens per clip, model expects {N_A}"):
        model.project(torch.randn(1, N_A + 1, D_ENC))  # the training path (frozen encoder) checks it too


def test_projection_follows_the_projector_dtype(model):
    """Training keeps the projector in float32 over a bfloat16 model: encoder outputs are cast to it, not to the LM."""
    tokens = torch.randn(2, N_A, D_ENC)
    assert torch.equal(model.project(tokens.bfloat16()), model.projector(tokens.bfloat16().float()))
    assert model.project(tokens).shape == (2, N_A, 32)


def test_shared_prefix_yes_no_equals_full_recompute(model):
    """KV reuse: prefixes (text + audio) run once and their cache is shared by every question's suffix; the
    log-odds equal scoring each whole prompt (rows of different suffix lengths, prefixes of different lengths)."""
    audio = model.encode_audio(clips(2))
    questions = [("is the sound <audio> a kind of animal ?", 0), ("is the sound <audio> a dog ?", 0),
                 ("is it <audio> a cat or a bird ?", 1), ("is the sound <audio> what ?", 0)]
    full = batch(model, [(q, 1) for q, _ in questions])
    want = model.yes_no(full["input_ids"], full["attention_mask"], full["position_ids"],
                        audio[[c for _, c in questions]])
    prefixes, rows, owner = {}, [], []
    for q, c in questions:
        ids = encode(model.tokenizer, q, 1, N_A, Placement.INTERLEAVED, model.template)[0]
        cut = max(k for k, x in enumerate(ids) if x == AUDIO_ID) + 1  # everything up to the audio's end is shared
        owner.append(prefixes.setdefault((c, tuple(ids[:cut])), len(prefixes)))
        rows.append(ids[cut:])
    assert len(prefixes) == 2  # three questions about clip 0 share one prefix
    t = max(map(len, rows))
    suffix = torch.tensor([r + [model.pad_id] * (t - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (t - len(r)) for r in rows])
    pre = collate([list(p) for _, p in prefixes], model.pad_id)
    got = model.yes_no_prefixed(pre, audio[[c for c, _ in prefixes]], suffix, mask, torch.tensor(owner))
    assert torch.allclose(got, want, atol=TOL)
