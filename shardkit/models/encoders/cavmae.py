"""The audio branch of a fine-tuned CAV-MAE: the ViT that LTU uses to hear.

Parameter names follow LTU's checkpoint below `audio_encoder.` (`CAVMAEFTAudio` in LTU's modified
`modeling_llama.py`), so loading is a plain key rename: patch_embed_a.proj, pos_embed_a, modality_a, blocks_a.N,
blocks_u.N, norm_a. Each block carries the three LayerNorm pairs of the audio-visual model; audio-only inference
uses `norm1/norm2` in the modality-specific blocks and `norm1_a/norm2_a` in the shared one, never the `_v` pair.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shardkit.errors import ShardkitError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CavMaeConfig:
    dim: int = 768  # ViT-Base width (LTU's audio_proj maps 768 → LLM width)
    depth_a: int = 11  # audio-specific blocks: CAV-MAE's modality_specific_depth
    depth_u: int = 1  # shared (unified) blocks: 12 - 11
    heads: int = 12  # ViT-Base
    mlp_ratio: float = 4.0  # ViT-Base
    freq_bins: int = 128  # LTU's fbank has 128 mel bins
    frames: int = 1024  # LTU pads or cuts to 1024 frames (10.24 s)
    patch: int = 16  # non-overlapping 16×16 patches: 8 (frequency) × 64 (time) = 512 tokens

    def __post_init__(self):
        if min(self.dim, self.depth_a, self.heads, self.patch) < 1 or self.depth_u < 0 or self.mlp_ratio <= 0:
            raise ShardkitError(f"CavMaeConfig: dim, depth_a, heads and patch must be >= 1, depth_u >= 0 and "
                                f"mlp_ratio > 0; got {self}")
        problems = []
        if self.dim % self.heads:
            problems.append(f"dim={self.dim} is not divisible by heads={self.heads}")
        if self.dim % 4:
            problems.append(f"dim={self.dim} must be a multiple of 4 for the 2-D sin-cos position embedding")
        for name in ("freq_bins", "frames"):
            if getattr(self, name) % self.patch:
                problems.append(f"{name}={getattr(self, name)} is not a multiple of patch={self.patch}")
        if problems:
            raise ShardkitError(f"CavMaeConfig: {'; '.join(problems)}")

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (frequency rows, time columns): (8, 64) for LTU."""
        return self.freq_bins // self.patch, self.frames // self.patch


def sincos_2d(dim: int, rows: int, cols: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (MAE style) for a rows × cols grid, flattened row-major.

    The first half of each vector encodes the column (time), the second half the row (frequency), each as
    [sin(p·ω_k), cos(p·ω_k)] with ω_k = 10000^(-k / (dim/4)).

    Shapes: → [rows * cols, dim]; index r * cols + c.
    """
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))  # [dim/4]
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")  # each [rows, cols]

    def enc(pos: np.ndarray) -> np.ndarray:
        angle = pos.reshape(-1, 1) * omega[None]  # [rows*cols, dim/4]
        return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)  # [rows*cols, dim/2]

    return torch.from_numpy(np.concatenate([enc(c), enc(r)], axis=1)).float()  # [rows*cols, dim]


class PatchEmbed(nn.Module):
    """Holds the patch convolution under the checkpoint's name `patch_embed_a.proj`."""

    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection laid out as [3, heads, head_dim] (timm's layout)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # [3, b, h, n, hd]
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [b, h, n, hd]; scale hd^-0.5
        return self.proj(out.transpose(1, 2).reshape(b, n, d))  # [b, n, d]


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm ViT block with CAV-MAE's three LayerNorm pairs: shared (`norm1/2`), audio (`_a`), visual (`_v`)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.norm1_a, self.norm1_v = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2, self.norm2_a, self.norm2_v = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, audio_mode: bool = False) -> torch.Tensor:
        """audio_mode=False: no modality (norm1/norm2), as blocks_a run; True: norm1_a/norm2_a, as blocks_u run."""
        n1, n2 = (self.norm1_a, self.norm2_a) if audio_mode else (self.norm1, self.norm2)
        x = x + self.attn(n1(x))
        return x + self.mlp(n2(x))


class CavMae(nn.Module):
    """CAV-MAE audio branch: fbank [b, frames, freq_bins] → one token per 16×16 patch, frequency-major."""

    def __init__(self, cfg: CavMaeConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or CavMaeConfig()
        rows, cols = cfg.grid
        self.patch_embed_a = PatchEmbed(cfg.dim, cfg.patch)
        self.pos_embed_a = nn.Parameter(sincos_2d(cfg.dim, rows, cols)[None])  # [1, rows*cols, dim]
        self.modality_a = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.blocks_a = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth_a))
        self.blocks_u = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth_u))
        self.norm_a = nn.LayerNorm(cfg.dim)
        self._init_weights()

    def _init_weights(self) -> None:
        """ViT/MAE initialisation (overwritten by any checkpoint): xavier linears and patch kernel, zero biases."""
        w = self.patch_embed_a.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.modality_a, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, fbank: torch.Tensor) -> torch.Tensor:
        """Patch tokens plus position and modality embeddings, before any block.

        Shapes: fbank [b, f, m] (time, frequency) → [b, n, d], n = (m/16)·(f/16), index = row·(f/16) + column.
        """
        if tuple(fbank.shape[1:]) != (self.cfg.frames, self.cfg.freq_bins):
            raise ShardkitError(f"CavMae: expected fbank of shape [b, {self.cfg.frames}, {self.cfg.freq_bins}], got "
                                f"{list(fbank.shape)}; compute it with shardkit.audio.features.ltu_fbank")
        x = fbank.unsqueeze(1).transpose(2, 3)  # [b, 1, m, f]: frequency rows, time columns
        x = self.patch_embed_a.proj(x.to(self.pos_embed_a.dtype))  # [b, d, m/16, f/16]
        x = x.flatten(2).transpose(1, 2)  # [b, n, d], frequency-major
        return x + self.pos_embed_a + self.modality_a

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """Shapes: fbank [b, f, m] → [b, n, d] (LTU: [b, 1024, 128] → [b, 512, 768])."""
        x = self.embed(fbank)
        for blk in self.blocks_a:
            x = blk(x)
        for blk in self.blocks_u:
            x = blk(x, audio_mode=True)
        return self.norm_a(x)
