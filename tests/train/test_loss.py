"""train/loss: the chunked head + cross-entropy equals autograd over full logits — loss and gradients, at every
chunk size, scaled by whatever multiplies the loss afterwards; up to one chunk, autograd's own path runs."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shardkit.train import loss as loss_mod
from shardkit.train.loss import head_loss


def _case(n: int = 37, d: int = 16, vocab: int = 50):
    g = torch.Generator().manual_seed(0)
    head = nn.Linear(d, vocab, bias=False)
    head.weight.data = torch.randn(vocab, d, generator=g)
    head.weight.requires_grad_(False)
    hidden = torch.randn(n, d, generator=g)
    target = torch.randint(0, vocab, (n,), generator=g)
    return hidden, head, target


@pytest.mark.parametrize("rows", [1, 5, 36])  # 37 rows: chunks of 1, 5, or 36 and 1
def test_every_chunk_size_gives_the_full_logits_loss_and_gradient(monkeypatch, rows):
    hidden, head, target = _case()
    monkeypatch.setattr(loss_mod, "CHUNK_BYTES", rows * 4 * head.weight.shape[0])
    h1 = hidden.clone().requires_grad_()
    got = head_loss(h1, head, target)
    (got * 3.5).backward()  # the trainer scales the sum by its token mean
    h2 = hidden.clone().requires_grad_()
    want = F.cross_entropy(head(h2), target, reduction="sum")
    (want * 3.5).backward()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(h1.grad, h2.grad, rtol=1e-5, atol=1e-5)  # gradients of order 1


def test_a_head_that_trains_takes_autograds_path():
    hidden, head, target = _case()
    head.weight.requires_grad_(True)
    head_loss(hidden, head, target).backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


def test_no_gradient_wanted_none_computed():
    hidden, head, target = _case()
    with torch.no_grad():
        got = head_loss(hidden, head, target)
    assert got == pytest.approx(float(F.cross_entropy(head(hidden), target, reduction="sum")), rel=1e-6)


def test_rows_that_fit_one_chunk_take_autograds_path(monkeypatch):
    hidden, head, target = _case()
    calls = []
    monkeypatch.setattr(loss_mod._HeadCrossEntropy, "apply", lambda *a: calls.append(a) or torch.zeros(()))
    monkeypatch.setattr(loss_mod, "CHUNK_BYTES", 37 * 4 * head.weight.shape[0])
    head_loss(hidden, head, target)
    assert calls == []
    monkeypatch.setattr(loss_mod, "CHUNK_BYTES", 36 * 4 * head.weight.shape[0])
    head_loss(hidden, head, target)
    assert len(calls) == 1 and calls[0][3] == 36
