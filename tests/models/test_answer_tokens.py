"""Yes/no answer ids are the first token after the rendered template, not the word tokenised alone.

A LLaMA-style SentencePiece tokenizer is trained here in code (Metaspace, dummy prefix on the first piece only), so
"Yes" alone is `▁Yes` but after "### Response:\\n" it is `Yes`: the case LTU's alpaca_short template hits.
"""

import pytest
from torch import nn

from shardkit.errors import ShardkitError
from shardkit.models.audio_llm import NO, YES, AudioLLM, answer_token_ids
from shardkit.models.prompts import TEMPLATES

ALPACA = TEMPLATES["alpaca_short"].render("Q")  # "### Instruction:\nQ\n\n### Response:\n"
CORPUS = [f"{ALPACA}Yes", f"{ALPACA}No", "Yes", "No", " Yes", " No", "yes no YES NO",
          "is it a dog ? Yes it is . No it is not ."] * 20


def sentencepiece_like(merges: bool = True):
    """A tiny BPE with LLaMA's Metaspace pre-tokenizer and newlines as their own pieces, in the stock Llama class.

    Without merges every word is split into characters, so no answer is a whole token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizerFast

    special = ["<unk>", "<s>", "</s>"]
    if merges:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
    else:
        chars = sorted(set("".join(CORPUS).replace(" ", "▁")))
        tok = Tokenizer(models.BPE({c: i for i, c in enumerate(special + chars)}, [], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("\n", "isolated"),
                                                 pre_tokenizers.Metaspace("▁", prepend_scheme="first")])
    tok.decoder = decoders.Metaspace("▁", prepend_scheme="first")
    if merges:
        tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=120, special_tokens=special))
    return LlamaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False).input_ids


def in_context(tok, prompt: str, word: str) -> int:
    """The token that actually follows the prompt when the answer is written after it."""
    return ids(tok, prompt + word)[len(ids(tok, prompt))]


def standalone(tok, words: tuple[str, ...]) -> set[int]:
    """The old rule: each spelling tokenised alone, kept when it is one token."""
    return {ids(tok, w)[0] for w in words if len(ids(tok, w)) == 1}


def yes_no_ids(tok, template: str) -> tuple[list[int], list[int]]:
    """What AudioLLM reads for yes/no under a template (encoder, projector and LM play no part)."""
    return AudioLLM(nn.Identity(), nn.Identity(), nn.Identity(), tok, 1, TEMPLATES[template])._yes_no_ids()


@pytest.fixture(scope="module")
def llama_tok():
    return sentencepiece_like()


def test_sentencepiece_answer_follows_the_template(llama_tok):
    tok = llama_tok
    for word, words, found in (("Yes", YES, yes_no_ids(tok, "alpaca_short")[0]),
                               ("No", NO, yes_no_ids(tok, "alpaca_short")[1])):
        after = in_context(tok, ALPACA, word)
        assert tok.convert_ids_to_tokens([after, *ids(tok, word)]) == [word, f"▁{word}"]  # the fixture has the bug
        assert after not in standalone(tok, words)  # the old rule never read the token the model emits here
        assert after in found and ids(tok, word)[0] in found  # new: in-context id, and "▁Yes" after "\n Yes"
        assert found == answer_token_ids(tok, words, ALPACA)
        assert {tok.decode([i]).strip(" ▁").lower() for i in found} == {word.lower()}


def test_smollm2_chatml_reads_the_assistant_tokens():
    from transformers import AutoTokenizer

    from shardkit.models.tiny_ltu import smollm2_dir

    tok = AutoTokenizer.from_pretrained(smollm2_dir())
    prompt = TEMPLATES["chatml"].render("Q")
    yes, no = yes_no_ids(tok, "chatml")
    assert in_context(tok, prompt, "Yes") == 10539 and in_context(tok, prompt, "No") == 5230  # "Yes", "No"
    assert 10539 in yes and 5230 in no and not set(yes) & set(no)


def test_fragment_only_answer_raises():
    tok = sentencepiece_like(merges=False)
    assert tok.convert_ids_to_tokens(ids(tok, ALPACA + "Yes"))[-3:] == ["Y", "e", "s"]
    with pytest.raises(ShardkitError, match="'yes'"):
        answer_token_ids(tok, YES, ALPACA)
