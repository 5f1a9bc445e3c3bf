"""The training loss: the LM head and cross-entropy over a few rows at a time, never the whole batch's logits.

A batch trained on the prompt (LTU's default) has a target at nearly every text position: 16 samples of 108 text
tokens are 1,728 rows of 49,152 float32 logits, 340 MB — and log-softmax and its gradient make three such tensors.
Past one chunk, each chunk of rows gets its logits, its loss and, while they exist, the gradient of that loss with
respect to its hidden states (softmax − one-hot, times the head's weight: what the matmul backward would do, done
early); only those gradients, [rows, d], are kept for backward. Same FLOPs as autograd's path, memory of one chunk.
Up to one chunk (every batch of the shipped CPU presets at batch 8: at most 511 rows), autograd's own path runs, so
their runs are the arithmetic of before, to the bit (checked on stage-0, instruct and FT-Large batches).
"""

import torch
from torch import nn

CHUNK_BYTES = 128 * 2**20  # float32 logits per chunk: 682 rows of SmolLM2's 49,152-word vocabulary


class _HeadCrossEntropy(torch.autograd.Function):
    """Σ over rows of −log softmax(h W^T)[target], for a head weight W that does not train."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, rows: int) -> torch.Tensor:
        grad = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        total = hidden.new_zeros((), dtype=torch.float32)
        for s in range(0, hidden.shape[0], rows):
            logits = (hidden[s:s + rows] @ weight.T).float()  # [c, vocab]
            logp = logits.log_softmax(-1)
            t = target[s:s + rows, None]
            total += -logp.gather(1, t).sum()
            if grad is not None:  # d loss / d logits = softmax − one-hot
                p = logp.exp_().scatter_add_(1, t, torch.full_like(t, -1, dtype=logp.dtype))
                grad[s:s + rows] = p.to(weight.dtype) @ weight  # [c, d]
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx, upstream: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return (grad * upstream).to(grad.dtype) if grad is not None else None, None, None, None


def head_loss(hidden: torch.Tensor, head: nn.Module, target: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy of `head(hidden)` against `target`, a chunk of rows at a time.

    Shapes: hidden [n, d] (the rows whose target counts); target [n] → scalar (float32). Rows that fit one chunk,
    and a head that trains or has a bias, take autograd's path over all rows at once.
    """
    weight = head.weight
    rows = max(1, CHUNK_BYTES // (4 * weight.shape[0]))
    if hidden.shape[0] <= rows or weight.requires_grad or getattr(head, "bias", None) is not None:
        return torch.nn.functional.cross_entropy(head(hidden).float(), target, reduction="sum")
    return _HeadCrossEntropy.apply(hidden, weight, target, rows)
