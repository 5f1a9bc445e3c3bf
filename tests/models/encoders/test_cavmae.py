"""CAV-MAE's audio branch: its frequency-major patch layout, its input check and its config's checks."""

import pytest
import torch

from shardkit.errors import ShardkitError
from shardkit.models.encoders.cavmae import CavMae, CavMaeConfig, sincos_2d

TINY = CavMaeConfig(dim=16, depth_a=2, depth_u=1, heads=2)  # full 1024 × 128 input, 512 tokens


def test_patches_are_frequency_major():
    """Token f*64 + t holds the patch at frequency row f, time column t."""
    enc = CavMae(CavMaeConfig(dim=4, depth_a=1, depth_u=0, heads=1))
    with torch.no_grad():
        enc.patch_embed_a.proj.weight.fill_(1 / 256)  # each output = patch mean
        enc.patch_embed_a.proj.bias.zero_()
        enc.pos_embed_a.zero_()
        enc.modality_a.zero_()
        t, f = torch.meshgrid(torch.arange(1024), torch.arange(128), indexing="ij")  # [1024, 128] each
        fbank = ((f // 16) * 1000 + t // 16).float()[None]  # [1, 1024, 128]: (time, freq) layout
        tokens = enc.embed(fbank)[0, :, 0]  # [512]
    idx = torch.arange(512)
    assert torch.allclose(tokens, (idx // 64) * 1000.0 + idx % 64)


def test_wrong_fbank_shape_is_one_line_error():
    with pytest.raises(ShardkitError, match=r"\[b, 1024, 128\]"):
        CavMae(TINY)(torch.zeros(1, 1000, 128))


def test_position_embedding_halves_are_time_then_frequency():
    pe = sincos_2d(8, rows=2, cols=3)  # [6, 8], index row * 3 + column
    assert pe.shape == (6, 8)
    assert torch.equal(pe[0], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))  # (0, 0): sin 0 and cos 0 in both halves
    assert torch.equal(pe[1, :4], pe[4, :4]) and not torch.equal(pe[1, 4:], pe[4, 4:])  # same column, other row
    assert torch.equal(pe[3, 4:], pe[5, 4:]) and not torch.equal(pe[3, :4], pe[5, :4])  # same row, other column


def test_config_reports_every_problem_in_one_line():
    assert CavMaeConfig().grid == (8, 64) and TINY.grid == (8, 64)
    with pytest.raises(ShardkitError) as e:
        CavMaeConfig(dim=18, heads=4, frames=1000)
    assert str(e.value) == ("CavMaeConfig: dim=18 is not divisible by heads=4; dim=18 must be a multiple of 4 for "
                            "the 2-D sin-cos position embedding; frames=1000 is not a multiple of patch=16")
    with pytest.raises(ShardkitError, match=r"^CavMaeConfig: dim, depth_a, heads and patch must be >= 1"):
        CavMaeConfig(depth_a=0)
