"""A tiny random LLaMA and a word-level tokenizer built in code: the real stock classes, no hub, fast on CPU."""

import torch
from torch import nn

WORDS = ("is the sound in this audio clip a kind of animal dog cat bird siren what it yes no Yes No "
         "### Instruction: Response: another word for ? . , \n").split(" ")


def tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", *dict.fromkeys(WORDS)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def llama(vocab_size: int, hidden: int = 32, layers: int = 2, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=64, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()


def gpt2(vocab_size: int, hidden: int = 32, layers: int = 2, seed: int = 0):
    """Absolute position embeddings: unlike RoPE, wrong position ids after left padding change its logits."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=4, n_positions=256,
                     bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


class MeanPoolEncoder(nn.Module):
    """Stand-in audio tower: frames [n, f, d_in] → n_a tokens by average pooling, then a linear map."""

    def __init__(self, d_in: int, d_out: int, n_tokens: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool1d(n_tokens)
        self.proj = nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.proj(self.pool(x.transpose(1, 2)).transpose(1, 2))


def assert_batched_equals_alone(adapter, requests, atol: float = 1e-4) -> None:
    """The request-level contract every adapter keeps: yes/no, generate and cloze give the same answers for a
    batch as for each request alone."""
    import numpy as np

    from shardkit.models.adapter import Request

    together = adapter.yes_no(requests)
    alone = [adapter.yes_no([r])[0] for r in requests]
    assert all(x.error is None for x in together)
    assert np.allclose([x.value for x in together], [y.value for y in alone], atol=atol, rtol=0)
    gen = adapter.generate(requests, max_new_tokens=4)
    assert [g.value for g in gen] == [adapter.generate([r], max_new_tokens=4)[0].value for r in requests]
    cz = [Request(r.prompt, r.audio, r.placement, (" dog", " cat bird")) for r in requests]
    for x, y in zip(adapter.cloze(cz), [adapter.cloze([r])[0] for r in cz], strict=True):
        assert len(x.value) == 2 and np.allclose(x.value, y.value, atol=atol, rtol=0)
