"""Prompts as token ids, with no model: where the marker goes, where the audio runs go, truncation and collation."""

import pytest
import torch

from shardkit.errors import ShardkitError
from shardkit.models.prompts import (
    AUDIO_ID,
    IGNORE,
    TEMPLATES,
    collate,
    encode,
    encode_spans,
    place_marker,
    rendered,
    truncate,
)
from shardkit.names import Placement
from tests.models.tiny import tokenizer

N_A = 4
RUN = [AUDIO_ID] * N_A


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def test_place_marker_variants():
    q = "Is {subject} a kind of animal?"
    assert place_marker(q, "start", cue=True) == "<audio> Is the sound in this audio clip a kind of animal?"
    assert place_marker(q, "end", cue=False) == "Is the sound a kind of animal? <audio>"
    with pytest.raises(ShardkitError, match="marker position"):
        place_marker(q, "left")


def test_place_marker_default_is_middle_and_needs_a_subject_slot():
    assert place_marker("Is {subject} a kind of animal?") == "Is the sound in this audio clip <audio> a kind of animal?"
    with pytest.raises(ShardkitError, match=r"needs a \{subject\} slot: 'Is it a dog\?'"):
        place_marker("Is it a dog?")


def test_prepended_puts_every_audio_run_before_bos(tok):
    alpaca = TEMPLATES["alpaca_short"]
    ids, n_prompt = encode(tok, "is <audio> a cat or <audio> a bird ?", 2, N_A, Placement.PREPENDED, alpaca)
    assert ids[: 2 * N_A] == RUN * 2 and ids[2 * N_A] == tok.bos_token_id
    assert ids.count(AUDIO_ID) == 2 * N_A and n_prompt == len(ids)
    # the markers are dropped from the text: the same ids as the question written without them
    assert ids == encode(tok, "is a cat or a bird ?", 2, N_A, Placement.PREPENDED, alpaca)[0]


def test_interleaved_puts_each_run_where_its_marker_stands(tok):
    plain = TEMPLATES["plain"]
    ids, _ = encode(tok, "is <audio> a cat or <audio> a bird ?", 2, N_A, Placement.INTERLEAVED, plain)
    words = tok("is a cat or a bird ?", add_special_tokens=False).input_ids
    assert ids == [tok.bos_token_id, words[0], *RUN, *words[1:4], *RUN, *words[4:]]
    # a marker at the very start of the rendered prompt goes before BOS: interleaved-at-0 is prepended
    at_start = encode(tok, "<audio> is it a dog ?", 1, N_A, Placement.INTERLEAVED, plain)[0]
    assert at_start == encode(tok, "is it a dog ?", 1, N_A, Placement.PREPENDED, plain)[0]
    assert at_start[:N_A + 1] == [*RUN, tok.bos_token_id]


def test_answer_ends_with_eos_after_the_prompt_and_chatml_adds_no_bos(tok):
    assert TEMPLATES["alpaca_short"].render("Q") == "### Instruction:\nQ\n\n### Response:\n"
    ids, n_prompt = encode(tok, "what is it ? <audio>", 1, N_A, "interleaved", TEMPLATES["plain"], answer="dog")
    assert ids[n_prompt:] == [*tok("dog", add_special_tokens=False).input_ids, tok.eos_token_id]
    assert ids[n_prompt - N_A:n_prompt] == RUN
    chatml = encode(tok, "is it a dog ?", 1, N_A, Placement.PREPENDED, TEMPLATES["chatml"])[0]
    assert chatml[:N_A] == RUN and tok.bos_token_id not in chatml


@pytest.mark.parametrize("placement, prompt, n_markers, n_clips", [
    (Placement.INTERLEAVED, "<audio> or <audio> ?", 2, 1),
    (Placement.INTERLEAVED, "what is it ?", 0, 2),
    (Placement.PREPENDED, "is <audio> a cat or a bird ?", 1, 2),
])
def test_marker_and_clip_counts_must_agree_in_one_line(tok, placement, prompt, n_markers, n_clips):
    with pytest.raises(ShardkitError, match=rf"^prompt has {n_markers} <audio> marker\(s\) but {n_clips} clip\(s\)"):
        encode(tok, prompt, n_clips, N_A, placement, TEMPLATES["plain"])


def test_truncate_cuts_from_the_right_but_never_through_audio():
    ids = [1, AUDIO_ID, AUDIO_ID, 5, 6, 7]
    assert truncate(ids, 4) == [1, AUDIO_ID, AUDIO_ID, 5] and truncate(ids, 6) == ids == truncate(ids, 10)
    with pytest.raises(ShardkitError, match="sequence of 6 tokens cut to 2 would cut audio tokens"):
        truncate(ids, 2)


def test_collate_left_pads_and_counts_positions_over_real_tokens():
    seqs = [[1, AUDIO_ID, 5, 6], [1, 7]]
    c = collate(seqs, pad_id=0, n_prompt=[3, 1], train_on_prompt=False)
    assert all(v.dtype == torch.long and v.shape == (2, 4) for v in c.values())
    assert c["input_ids"].tolist() == [[1, AUDIO_ID, 5, 6], [0, 0, 1, 7]]
    assert c["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]
    assert c["position_ids"].tolist() == [[0, 1, 2, 3], [0, 0, 0, 1]]
    assert c["labels"].tolist() == [[IGNORE, IGNORE, IGNORE, 6], [IGNORE, IGNORE, IGNORE, 7]]
    assert collate(seqs, pad_id=0)["labels"].tolist() == [[1, IGNORE, 5, 6], [IGNORE, IGNORE, 1, 7]]


@pytest.mark.parametrize("placement", [Placement.INTERLEAVED, Placement.PREPENDED])
def test_spans_find_each_word_of_the_question_among_the_ids(tok, placement):
    q = "is the sound <audio> another word for dog ?"
    ids, n_prompt, spans = encode_spans(tok, q, 1, 3, placement, TEMPLATES["alpaca_short"], answer="yes")
    assert (ids, n_prompt) == encode(tok, q, 1, 3, placement, TEMPLATES["alpaca_short"], answer="yes")
    text = rendered(q, placement, TEMPLATES["alpaca_short"])
    start = text.rindex("dog")
    at = [k for k, (a, b) in enumerate(spans) if a < start + 3 and b > start]
    assert len(at) == 1 and tok.convert_ids_to_tokens(ids[at[0]]) == "dog"
    assert all(spans[k] == (-1, -1) for k, x in enumerate(ids) if x == AUDIO_ID or k >= n_prompt)
    assert ("<audio>" in text) == (placement is Placement.INTERLEAVED)
